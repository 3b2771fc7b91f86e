/*
 * cm_progress.c - cm.JobProgress <-> cm_job_progress_t, and its single-object encoding.
 */
#include <stdlib.h>
#include <string.h>

#include "cm/avro.h"
#include "cm/progress.h"

void cm_job_progress_destroy(cm_job_progress_t *p)
{
        if (!p)
                return;
        free(p->cluster);
        free(p->job_id);
        free(p->kind);
        free(p->step);
        free(p->node);
        free(p->status);
        cm_avro_free_strings(p->lines, p->line_count);
        memset(p, 0, sizeof(*p));
}

int cm_job_progress_to_avro(const cm_job_progress_t *p, avro_value_t *rec, char *errstr,
                            size_t errstr_size)
{
        int rc;

        if ((rc = cm_avro_set_string(rec, "cluster", p->cluster, errstr, errstr_size)) ||
            (rc = cm_avro_set_string(rec, "jobId", p->job_id, errstr, errstr_size)) ||
            (rc = cm_avro_set_string(rec, "kind", p->kind, errstr, errstr_size)) ||
            (rc = cm_avro_set_int(rec, "attempt", p->attempt, errstr, errstr_size)) ||
            (rc = cm_avro_set_string(rec, "step", p->step, errstr, errstr_size)) ||
            (rc = cm_avro_set_opt_string(rec, "node", p->node, errstr, errstr_size)) ||
            (rc = cm_avro_set_string(rec, "status", p->status, errstr, errstr_size)) ||
            (rc = cm_avro_set_long(rec, "at", p->at, errstr, errstr_size)) ||
            (rc = cm_avro_set_string_array(rec, "lines", p->lines, p->line_count, errstr,
                                           errstr_size)))
                return rc;
        return 0;
}

int cm_job_progress_from_avro(cm_job_progress_t *p, const avro_value_t *rec, char *errstr,
                              size_t errstr_size)
{
        int rc;

        memset(p, 0, sizeof(*p));
        if ((rc = cm_avro_get_string(rec, "cluster", &p->cluster, errstr, errstr_size)) ||
            (rc = cm_avro_get_string(rec, "jobId", &p->job_id, errstr, errstr_size)) ||
            (rc = cm_avro_get_string(rec, "kind", &p->kind, errstr, errstr_size)) ||
            (rc = cm_avro_get_int(rec, "attempt", &p->attempt, errstr, errstr_size)) ||
            (rc = cm_avro_get_string(rec, "step", &p->step, errstr, errstr_size)) ||
            (rc = cm_avro_get_opt_string(rec, "node", &p->node, errstr, errstr_size)) ||
            (rc = cm_avro_get_string(rec, "status", &p->status, errstr, errstr_size)) ||
            (rc = cm_avro_get_long(rec, "at", &p->at, errstr, errstr_size)) ||
            (rc = cm_avro_get_string_array(rec, "lines", &p->lines, &p->line_count,
                                           errstr, errstr_size))) {
                cm_job_progress_destroy(p);
                return rc;
        }
        return 0;
}

int cm_job_progress_encode(const cm_job_progress_t *p, unsigned char **buf, size_t *len,
                           char *errstr, size_t errstr_size)
{
        avro_value_t rec;
        int rc;

        *buf = NULL;
        *len = 0;
        if ((rc = cm_avro_value_new(CM_AVRO_SCHEMA_JOB_PROGRESS, &rec, errstr,
                                    errstr_size)))
                return rc;
        if ((rc = cm_job_progress_to_avro(p, &rec, errstr, errstr_size)))
                cm_avro_errprefix(errstr, errstr_size, "cm.JobProgress.");
        else
                rc = cm_avro_encode(CM_AVRO_SCHEMA_JOB_PROGRESS, &rec, buf, len, errstr,
                                    errstr_size);
        avro_value_decref(&rec);
        return rc;
}

int cm_job_progress_decode(const unsigned char *buf, size_t len, cm_job_progress_t *p,
                           char *errstr, size_t errstr_size)
{
        avro_value_t rec;
        int rc;

        memset(p, 0, sizeof(*p));
        if ((rc = cm_avro_decode(buf, len, CM_AVRO_SCHEMA_JOB_PROGRESS, &rec, NULL,
                                 errstr, errstr_size)))
                return rc;
        if ((rc = cm_job_progress_from_avro(p, &rec, errstr, errstr_size)))
                cm_avro_errprefix(errstr, errstr_size, "cm.JobProgress.");
        avro_value_decref(&rec);
        return rc;
}
