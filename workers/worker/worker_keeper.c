/*
 * worker_keeper.c - the lease keeper of the job runners (DESIGN §3 "A job whose worker
 * died is resumed by another worker after its lease expires"; §2 cancel within 2 s).
 *
 * One thread and connection per worker extends the leases of this worker's running
 * jobs every job.heartbeat_s while the row is still ours, and polls cancel_requested
 * every WORKER_JOB_POLL_MS, so a cancel stops a run within a second. A row that is no
 * longer ours (another worker resumed it after our lease expired) or a lease the keeper
 * could not extend for job.lease_s makes the run stop: abandoned. The second is checked
 * every round, also while PostgreSQL does not answer (a worker cut off from the
 * database stops its runs as their leases end).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "cm/service.h"
#include "worker.h"
#include "worker_runner_int.h"

#define KSQL_POLL      "w_job_poll"
#define KSQL_HEARTBEAT "w_job_heartbeat"

static const cm_pg_statement_t keeper_stmts[] = {
    /* $1 '{id,...}' of the busy slots, $2 owner: the rows still ours, and their cancel
     * flag */
    {KSQL_POLL, 2,
     "SELECT id::text, cancel_requested, attempt FROM jobs"
     " WHERE id = ANY($1::uuid[]) AND owner = $2 AND state = 'running'"},
    /* $3 lease_s: the leases still ours, extended */
    {KSQL_HEARTBEAT, 3,
     "UPDATE jobs SET lease_until = now() + $3::integer * interval '1 second'"
     " WHERE id = ANY($1::uuid[]) AND owner = $2 AND state = 'running' RETURNING "
     "id::text"},
};

/* '{id,id,...}' of the busy slots into buf; returns how many. */
static int keeper_ids(worker_runners_t *rs, char *buf, size_t size)
{
        size_t n = 0;
        int count = 0;
        n += snprintf(buf + n, size - n, "{");
        for (int i = 0; i < rs->count; i++) {
                worker_slot_t *s = &rs->runners[i].slot;
                pthread_mutex_lock(&s->lock);
                if (s->job_id[0] && n + 42 < size) {
                        n += snprintf(buf + n, size - n, "%s%s", count ? "," : "",
                                      s->job_id);
                        count++;
                }
                pthread_mutex_unlock(&s->lock);
        }
        snprintf(buf + n, size - n, "}");
        return count;
}

/* Marks the lease of every slot running job id as extended at now. Slot locks held. */
static void keeper_extended(worker_runners_t *rs, const char *id, int64_t now)
{
        for (int i = 0; i < rs->count; i++)
                if (strcmp(rs->runners[i].slot.job_id, id) == 0)
                        rs->runners[i].slot.lease_ok_ms = now;
}

/* One poll: cancel flags and lost rows; and, when due, one heartbeat. */
static void keeper_tick(worker_t *w, worker_runners_t *rs, int heartbeat)
{
        char lease[16], err[512];
        PGresult *r = NULL;
        size_t ids_size = (size_t)rs->count * 40 + 8;
        char *ids = malloc(ids_size);
        if (!ids || keeper_ids(rs, ids, ids_size) == 0) {
                free(ids);
                return;
        }
        const char *v[3] = {ids, w->id, lease};
        snprintf(lease, sizeof(lease), "%d", w->conf->job.lease_s);
        int64_t now = worker_mono_ms();
        if (heartbeat) {
                if (cm_pg_exec_prepared(rs->keeper_pg, KSQL_HEARTBEAT, 3, v, NULL, NULL,
                                        0, &r, err, sizeof(err)) == CM_PG_OK) {
                        for (int i = 0; i < rs->count; i++)
                                pthread_mutex_lock(&rs->runners[i].slot.lock);
                        for (int k = 0; k < PQntuples(r); k++)
                                keeper_extended(rs, PQgetvalue(r, k, 0), now);
                        for (int i = 0; i < rs->count; i++)
                                pthread_mutex_unlock(&rs->runners[i].slot.lock);
                        PQclear(r);
                } else {
                        cm_log_warn("cannot extend job leases", "error", err);
                }
        }
        int polled = cm_pg_exec_prepared(rs->keeper_pg, KSQL_POLL, 2, v, NULL, NULL, 0,
                                         &r, err, sizeof(err)) == CM_PG_OK;
        if (!polled)
                cm_log_warn("cannot poll job rows", "error", err);
        for (int i = 0; i < rs->count; i++) {
                worker_slot_t *s = &rs->runners[i].slot;
                pthread_mutex_lock(&s->lock);
                if (!s->job_id[0] || strstr(ids, s->job_id) == NULL) {
                        pthread_mutex_unlock(&s->lock);
                        continue; /* idle, or claimed after the ids were read */
                }
                int found = 0;
                for (int k = 0; polled && k < PQntuples(r); k++) {
                        if (strcmp(PQgetvalue(r, k, 0), s->job_id) != 0 ||
                            atoi(PQgetvalue(r, k, 2)) != s->attempt)
                                continue; /* claimed again since: not this run's */
                        found = 1;
                        if (PQgetvalue(r, k, 1)[0] == 't' && !atomic_load(&s->canceled)) {
                                atomic_store(&s->canceled, 1);
                                cm_log_info("job cancel noticed", "jobId", s->job_id);
                        }
                }
                if (polled && !found && !atomic_load(&s->lost)) {
                        atomic_store(&s->lost, 1);
                        cm_log_warn("job row is no longer ours", "jobId", s->job_id);
                }
                pthread_mutex_unlock(&s->lock);
        }
        PQclear(r);
        free(ids);
}

/*
 * Marks lost every run whose lease was last known extended more than job.lease_s ago:
 * another worker may claim its job now, so the run stops. Called on every round, also
 * while PostgreSQL does not answer - a worker cut off from the database cannot extend
 * its leases, and must not go on running next to the run that takes over.
 */
static void keeper_expire(worker_t *w, worker_runners_t *rs, int64_t now)
{
        for (int i = 0; i < rs->count; i++) {
                worker_slot_t *s = &rs->runners[i].slot;
                pthread_mutex_lock(&s->lock);
                if (s->job_id[0] && !atomic_load(&s->lost) &&
                    now - s->lease_ok_ms > (int64_t)w->conf->job.lease_s * 1000) {
                        atomic_store(&s->lost, 1);
                        cm_log_warn("job lease could not be extended in time", "jobId",
                                    s->job_id);
                }
                pthread_mutex_unlock(&s->lock);
        }
}

static void *keeper_main(void *arg)
{
        worker_t *w = arg;
        worker_runners_t *rs = w->runners;
        char err[512];
        int64_t last_hb = 0;
        while (!cm_service_stopping()) {
                if (cm_pg_ensure(rs->keeper_pg, 1000, err, sizeof(err)) == CM_PG_OK) {
                        int64_t now = worker_mono_ms();
                        int hb =
                            now - last_hb >= (int64_t)w->conf->job.heartbeat_s * 1000;
                        keeper_tick(w, rs, hb);
                        if (hb)
                                last_hb = now;
                } else {
                        cm_log_warn("lease keeper waiting for PostgreSQL", "error", err);
                }
                keeper_expire(w, rs, worker_mono_ms());
                cm_service_sleep_ms(WORKER_JOB_POLL_MS);
        }
        return NULL;
}

int worker_keeper_start(worker_t *w, char *errstr, size_t errstr_size)
{
        worker_runners_t *rs = w->runners;
        if (!(rs->keeper_pg = cm_pg_new_config(w->conf, errstr, errstr_size)))
                return -1;
        /* PostgreSQL not up yet is fine: the statements are prepared on connect */
        if (cm_pg_err_is_bad_statement(cm_pg_prepare_all(
                rs->keeper_pg, keeper_stmts,
                sizeof(keeper_stmts) / sizeof(keeper_stmts[0]), errstr, errstr_size)))
                return -1;
        if (pthread_create(&rs->keeper, NULL, keeper_main, w) != 0) {
                snprintf(errstr, errstr_size, "cannot start the lease keeper");
                return -1;
        }
        rs->keeper_started = 1;
        return 0;
}

void worker_keeper_join(worker_t *w)
{
        worker_runners_t *rs = w->runners;
        if (rs->keeper_started)
                pthread_join(rs->keeper, NULL);
        rs->keeper_started = 0;
        cm_pg_destroy(rs->keeper_pg);
        rs->keeper_pg = NULL;
}
