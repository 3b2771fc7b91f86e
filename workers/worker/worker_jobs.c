/*
 * worker_jobs.c - the job rows a transition creates or signals. Claiming, leases and
 * running jobs belong to the job runner; here a job is only queued (state 'queued') or
 * asked to stop (cancel_requested), in the transaction of the transition.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

const char *worker_job_kind_name(worker_job_kind_t kind)
{
        switch (kind) {
        case WORKER_JOB_ZKE_UP:
                return "zke-up";
        case WORKER_JOB_CONNECT:
                return "connect";
        case WORKER_JOB_ZKE_REMOVE:
                return "zke-remove";
        }
        return "?";
}

worker_err_t worker_job_queue(cm_pg_t *pg, const char *cluster, worker_job_kind_t kind,
                              const json_t *payload, char job_id[40], char *errstr,
                              size_t errstr_size)
{
        char id[37];
        char *json = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
        if (!json) {
                snprintf(errstr, errstr_size,
                         "job payload of \"%s\" cannot be written as JSON", cluster);
                return WORKER_ERR_FAIL;
        }
        worker_uuid(id);
        const char *v[4] = {id, cluster, worker_job_kind_name(kind), json};
        cm_pg_err_t e = worker_sql_exec(pg, WSQL_JOB_INSERT, 4, v, NULL, 0, NULL, errstr,
                                        errstr_size);
        free(json);
        if (e == CM_PG_OK)
                snprintf(job_id, 40, "%s", id);
        return worker_pg_err(pg, e);
}

worker_err_t worker_job_signal_cancel(cm_pg_t *pg, const char *cluster, char job_id[40],
                                      char *errstr, size_t errstr_size)
{
        PGresult *r = NULL;
        const char *v[1] = {cluster};
        job_id[0] = '\0';
        cm_pg_err_t e = worker_sql_exec(pg, WSQL_JOB_SIGNAL_CANCEL, 1, v, NULL, 0, &r,
                                        errstr, errstr_size);
        if (e != CM_PG_OK)
                return worker_pg_err(pg, e);
        if (PQntuples(r) > 0)
                snprintf(job_id, 40, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        return WORKER_OK;
}
