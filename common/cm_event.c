/*
 * cm_event.c - cm.ClusterEvent <-> cm_cluster_event_t, and its single-object encoding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/avro.h"
#include "cm/event.h"
#include "cm/spec_avro.h"

void cm_cluster_event_destroy(cm_cluster_event_t *ev)
{
        if (!ev)
                return;
        free(ev->cluster);
        free(ev->event_id);
        free(ev->command_id);
        free(ev->job_id);
        free(ev->type);
        free(ev->from_state);
        free(ev->to_state);
        cm_actor_destroy(&ev->actor);
        if (ev->spec) {
                cm_spec_destroy(ev->spec);
                free(ev->spec);
        }
        free(ev->error);
        memset(ev, 0, sizeof(*ev));
}

static int spec_to_avro(const cm_spec_t *spec, avro_value_t *rec, char *errstr,
                        size_t errstr_size)
{
        avro_value_t u, branch;
        int rc;

        if ((rc = cm_avro_field(rec, "spec", &u, errstr, errstr_size)))
                return rc;
        if (avro_value_set_branch(&u, spec ? 1 : 0, &branch)) {
                if (errstr && errstr_size)
                        snprintf(errstr, errstr_size, "spec: cannot select a branch: %s",
                                 avro_strerror());
                return CM_AVRO_ERR_INTERNAL;
        }
        if (!spec)
                return avro_value_set_null(&branch) ? CM_AVRO_ERR_INTERNAL : 0;
        if ((rc = cm_spec_to_avro(spec, &branch, errstr, errstr_size)))
                cm_avro_errprefix(errstr, errstr_size, "spec.");
        return rc;
}

int cm_cluster_event_to_avro(const cm_cluster_event_t *ev, avro_value_t *rec,
                             char *errstr, size_t errstr_size)
{
        avro_value_t actor;
        int rc;

        if ((rc = cm_avro_set_string(rec, "cluster", ev->cluster, errstr, errstr_size)) ||
            (rc = cm_avro_set_long(rec, "seq", ev->seq, errstr, errstr_size)) ||
            (rc =
                 cm_avro_set_string(rec, "eventId", ev->event_id, errstr, errstr_size)) ||
            (rc = cm_avro_set_opt_string(rec, "commandId", ev->command_id, errstr,
                                         errstr_size)) ||
            (rc =
                 cm_avro_set_opt_string(rec, "jobId", ev->job_id, errstr, errstr_size)) ||
            (rc = cm_avro_set_string(rec, "type", ev->type, errstr, errstr_size)) ||
            (rc = cm_avro_set_opt_string(rec, "fromState", ev->from_state, errstr,
                                         errstr_size)) ||
            (rc = cm_avro_set_opt_string(rec, "toState", ev->to_state, errstr,
                                         errstr_size)) ||
            (rc = cm_avro_set_long(rec, "at", ev->at, errstr, errstr_size)) ||
            (rc = cm_avro_set_opt_string(rec, "error", ev->error, errstr, errstr_size)) ||
            (rc = cm_avro_field(rec, "actor", &actor, errstr, errstr_size)))
                return rc;
        if ((rc = cm_actor_to_avro(&ev->actor, &actor, errstr, errstr_size))) {
                cm_avro_errprefix(errstr, errstr_size, "actor.");
                return rc;
        }
        return spec_to_avro(ev->spec, rec, errstr, errstr_size);
}

static int spec_from_avro(cm_cluster_event_t *ev, const avro_value_t *rec, char *errstr,
                          size_t errstr_size)
{
        avro_value_t u, branch;
        int rc;

        if ((rc = cm_avro_field(rec, "spec", &u, errstr, errstr_size)))
                return rc;
        if (avro_value_get_current_branch(&u, &branch)) {
                if (errstr && errstr_size)
                        snprintf(errstr, errstr_size, "spec: no branch selected");
                return CM_AVRO_ERR_INVALID;
        }
        if (avro_value_get_type(&branch) == AVRO_NULL)
                return 0;
        if (!(ev->spec = calloc(1, sizeof(*ev->spec)))) {
                if (errstr && errstr_size)
                        snprintf(errstr, errstr_size, "spec: out of memory");
                return CM_AVRO_ERR_NOMEM;
        }
        if ((rc = cm_spec_from_avro(ev->spec, &branch, errstr, errstr_size)))
                cm_avro_errprefix(errstr, errstr_size, "spec.");
        return rc;
}

static int event_fields_from_avro(cm_cluster_event_t *ev, const avro_value_t *rec,
                                  char *errstr, size_t errstr_size)
{
        avro_value_t actor;
        int rc;

        if ((rc =
                 cm_avro_get_string(rec, "cluster", &ev->cluster, errstr, errstr_size)) ||
            (rc = cm_avro_get_long(rec, "seq", &ev->seq, errstr, errstr_size)) ||
            (rc = cm_avro_get_string(rec, "eventId", &ev->event_id, errstr,
                                     errstr_size)) ||
            (rc = cm_avro_get_opt_string(rec, "commandId", &ev->command_id, errstr,
                                         errstr_size)) ||
            (rc = cm_avro_get_opt_string(rec, "jobId", &ev->job_id, errstr,
                                         errstr_size)) ||
            (rc = cm_avro_get_string(rec, "type", &ev->type, errstr, errstr_size)) ||
            (rc = cm_avro_get_opt_string(rec, "fromState", &ev->from_state, errstr,
                                         errstr_size)) ||
            (rc = cm_avro_get_opt_string(rec, "toState", &ev->to_state, errstr,
                                         errstr_size)) ||
            (rc = cm_avro_get_long(rec, "at", &ev->at, errstr, errstr_size)) ||
            (rc =
                 cm_avro_get_opt_string(rec, "error", &ev->error, errstr, errstr_size)) ||
            (rc = cm_avro_field(rec, "actor", &actor, errstr, errstr_size)))
                return rc;
        if ((rc = cm_actor_from_avro(&ev->actor, &actor, errstr, errstr_size))) {
                cm_avro_errprefix(errstr, errstr_size, "actor.");
                return rc;
        }
        return spec_from_avro(ev, rec, errstr, errstr_size);
}

int cm_cluster_event_from_avro(cm_cluster_event_t *ev, const avro_value_t *rec,
                               char *errstr, size_t errstr_size)
{
        int rc;

        memset(ev, 0, sizeof(*ev));
        if ((rc = event_fields_from_avro(ev, rec, errstr, errstr_size)))
                cm_cluster_event_destroy(ev);
        return rc;
}

int cm_cluster_event_encode(const cm_cluster_event_t *ev, unsigned char **buf,
                            size_t *len, char *errstr, size_t errstr_size)
{
        avro_value_t rec;
        int rc;

        *buf = NULL;
        *len = 0;
        if ((rc = cm_avro_value_new(CM_AVRO_SCHEMA_CLUSTER_EVENT, &rec, errstr,
                                    errstr_size)))
                return rc;
        if ((rc = cm_cluster_event_to_avro(ev, &rec, errstr, errstr_size)))
                cm_avro_errprefix(errstr, errstr_size, "cm.ClusterEvent.");
        else
                rc = cm_avro_encode(CM_AVRO_SCHEMA_CLUSTER_EVENT, &rec, buf, len, errstr,
                                    errstr_size);
        avro_value_decref(&rec);
        return rc;
}

int cm_cluster_event_decode(const unsigned char *buf, size_t len, cm_cluster_event_t *ev,
                            char *errstr, size_t errstr_size)
{
        avro_value_t rec;
        int rc;

        memset(ev, 0, sizeof(*ev));
        if ((rc = cm_avro_decode(buf, len, CM_AVRO_SCHEMA_CLUSTER_EVENT, &rec, NULL,
                                 errstr, errstr_size)))
                return rc;
        if ((rc = cm_cluster_event_from_avro(ev, &rec, errstr, errstr_size)))
                cm_avro_errprefix(errstr, errstr_size, "cm.ClusterEvent.");
        avro_value_decref(&rec);
        return rc;
}
