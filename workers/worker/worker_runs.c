/*
 * worker_runs.c - the record of every run of every job (job_runs, 005_job_runs.sql) and
 * the ways a run ends without an outcome that queue the job again.
 *
 * The claim statement (worker_runner.c) inserts a run's row in the claim itself. Its end
 * is written only after the run has stopped doing work (the run function returned: no
 * SSH step and no probe of it is left), so the rows prove that two runs of a job never
 * overlap: a run ended here ends before the next claim of its job can start, and one
 * whose worker died keeps ended_at NULL (it stopped when its worker died; the next claim
 * waits for its lease to run out).
 *
 * Every end names the run by (job_id, run, owner) and touches only a row not ended yet,
 * so an end written twice (a retried statement) keeps the first.
 */
#include <stdio.h>
#include <string.h>

#include "cm/log.h"
#include "worker.h"

#define RUNS_SQL_END     "w_run_end"
#define RUNS_SQL_RELEASE "w_run_release"

static const cm_pg_statement_t runs_stmts[] = {
    /* $1 job id, $2 run, $3 owner, $4 how */
    {RUNS_SQL_END, 4,
     "UPDATE job_runs SET ended_at = now(), how = $4"
     " WHERE job_id = $1::uuid AND run = $2::integer AND owner = $3 AND ended_at IS "
     "NULL"},
    /* $1 job id, $2 run, $3 owner, $4 attempt, $5 delay ms, $6 error (NULL keeps),
     * $7 attempts given back, $8 how. Queues the row again only while it is this run's
     * (owner and attempt); the run ends in the same statement either way. */
    {RUNS_SQL_RELEASE, 8,
     "WITH j AS (UPDATE jobs SET state = 'queued', lease_until = NULL,"
     "       not_before = now() + $5::integer * interval '1 millisecond',"
     "       error = COALESCE($6, error), attempt = greatest(attempt - $7::integer, 0),"
     "       updated_at = now()"
     "  WHERE id = $1::uuid AND owner = $3 AND attempt = $4::integer"
     "    AND state = 'running' RETURNING id)"
     " UPDATE job_runs SET ended_at = now(),"
     "       how = CASE WHEN EXISTS (SELECT FROM j) THEN $8 ELSE 'taken-over' END"
     " WHERE job_id = $1::uuid AND run = $2::integer AND owner = $3 AND ended_at IS NULL"
     " RETURNING how"},
};

cm_pg_err_t worker_runs_prepare(cm_pg_t *pg, char *errstr, size_t errstr_size)
{
        return cm_pg_prepare_all(pg, runs_stmts,
                                 sizeof(runs_stmts) / sizeof(runs_stmts[0]), errstr,
                                 errstr_size);
}

cm_pg_err_t worker_run_end_tx(cm_pg_t *pg, const worker_job_t *job, const char *how,
                              char *errstr, size_t errstr_size)
{
        char run[12];
        snprintf(run, sizeof(run), "%d", job->run);
        const char *v[4] = {job->id, run, job->w->id, how};
        return cm_pg_exec_prepared(pg, RUNS_SQL_END, 4, v, NULL, NULL, 0, NULL, errstr,
                                   errstr_size);
}

void worker_run_end(cm_pg_t *pg, const worker_job_t *job, const char *how)
{
        char err[512], run[12];
        snprintf(run, sizeof(run), "%d", job->run);
        if (cm_pg_ensure(pg, 2000, err, sizeof(err)) != CM_PG_OK ||
            worker_run_end_tx(pg, job, how, err, sizeof(err)) != CM_PG_OK)
                cm_log_warn(
                    "cannot record the end of the job run; job_runs keeps it open "
                    "like a run whose worker died",
                    "jobId", job->id, "run", run, "how", how, "error", err);
}

void worker_run_release(cm_pg_t *pg, const worker_job_t *job, int delay_ms,
                        const char *error, int give_back)
{
        char err[512], run[12], attempt[12], delay[16], back[8];
        const char *how = give_back ? "stopped" : "released";
        PGresult *res = NULL;
        snprintf(run, sizeof(run), "%d", job->run);
        snprintf(attempt, sizeof(attempt), "%d", job->attempt);
        snprintf(delay, sizeof(delay), "%d", delay_ms);
        snprintf(back, sizeof(back), "%d", give_back);
        const char *v[8] = {job->id, run, job->w->id, attempt, delay, error, back, how};
        if (cm_pg_ensure(pg, 2000, err, sizeof(err)) != CM_PG_OK ||
            cm_pg_exec_prepared(pg, RUNS_SQL_RELEASE, 8, v, NULL, NULL, 0, &res, err,
                                sizeof(err)) != CM_PG_OK) {
                cm_log_warn("cannot release the job; another worker resumes it when its "
                            "lease expires",
                            "jobId", job->id, "run", run, "error", err);
                return;
        }
        int taken = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), how) != 0;
        if (PQntuples(res) != 1)
                cm_log_warn("the job run has no open job_runs row", "jobId", job->id,
                            "run", run);
        PQclear(res);
        if (taken)
                cm_log_warn("job was taken over by another worker; release dropped",
                            "cluster", job->cluster, "jobId", job->id, "run", run);
        else
                cm_log_info("job released", "cluster", job->cluster, "jobId", job->id,
                            "run", run, "how", how, "error", error);
}
