/*
 * worker_runner.c - the job runner (DESIGN §2 "Long work ... runs as jobs", §3 "A job
 * whose worker died is resumed by another worker after its lease expires").
 *
 * job.runners threads, each with its own connection, claim one job at a time:
 *
 *   queued with not_before <= now(), or running with lease_until < now() (its worker
 *   died: resume it), of a kind this worker runs, oldest first, FOR UPDATE SKIP LOCKED;
 *   then state = running, owner = this worker, lease_until = now() + job.lease_s,
 *   attempt + 1.
 *
 * A kind no worker runs yet stays queued, visible in the jobs table, never faked. A
 * claim whose attempt exceeds job.max_attempts applies JobFailed naming the attempts.
 *
 * The lease keeper (worker_keeper.c) extends the leases of the running jobs, notices
 * cancels and marks lost a run whose row or lease is gone; the run then stops.
 *
 * The outcome goes through worker_transition_apply() in ONE transaction with the job's
 * final state: the cluster row is locked first, then the job row (the order of the
 * command path, so the two never deadlock), the owner is checked, the transition and
 * its event are written, the job row is finished and the run's job_runs row ended.
 *
 * Every claim inserts a job_runs row in the claim statement; every way a run ends
 * writes its end once the run has stopped doing work (worker_runs.c): finished with
 * the outcome, released / stopped with the job queued again, abandoned (lease lost, or
 * no outcome written), taken-over (the row was another claim's by the outcome).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/kubeconfig.h"
#include "cm/log.h"
#include "cm/progress.h"
#include "cm/service.h"
#include "worker.h"
#include "worker_runner_int.h"

#define RSQL_CLAIM    "w_job_claim"
#define RSQL_JOB_LOCK "w_job_lock"
#define RSQL_FINISH   "w_job_finish"

static const cm_pg_statement_t runner_stmts[] = {
    /* $1 owner, $2 lease_s, $3 kinds ('{connect}'). The job_runs row of the claim is
     * inserted by the same statement; its run number is safe to compute while the job
     * row is locked. */
    {RSQL_CLAIM, 3,
     "WITH c AS (SELECT id, state AS prev_state, owner AS prev_owner FROM jobs"
     "  WHERE state IN ('queued', 'running') AND kind = ANY($3::text[])"
     "    AND ((state = 'queued' AND not_before <= now())"
     "         OR (state = 'running' AND lease_until < now()))"
     "  ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED),"
     " u AS (UPDATE jobs j SET state = 'running', owner = $1,"
     "       lease_until = now() + $2::integer * interval '1 second',"
     "       attempt = j.attempt + 1, updated_at = now()"
     "  FROM c WHERE j.id = c.id"
     "  RETURNING j.id, j.cluster, j.kind, j.attempt, j.payload, j.cancel_requested,"
     "       j.created_at, j.error, c.prev_state, c.prev_owner),"
     " r AS (INSERT INTO job_runs (job_id, run, attempt, owner)"
     "  SELECT u.id, coalesce((SELECT max(x.run) FROM job_runs x"
     "                          WHERE x.job_id = u.id), 0) + 1, u.attempt, $1 FROM u"
     "  RETURNING run)"
     " SELECT u.id::text, u.cluster, u.kind, u.attempt, u.payload::text,"
     "       u.cancel_requested, (extract(epoch FROM u.created_at) * 1000)::bigint,"
     "       u.error, u.prev_state, u.prev_owner, r.run FROM u, r"},
    {RSQL_JOB_LOCK, 1,
     "SELECT state, owner, attempt FROM jobs WHERE id = $1::uuid FOR UPDATE"},
    /* $1 id, $2 final state, $3 error, $4 outcome */
    {RSQL_FINISH, 4,
     "UPDATE jobs SET state = $2, error = $3, outcome = $4::jsonb, lease_until = NULL,"
     "       updated_at = now() WHERE id = $1::uuid"},
};

/* The job kinds this worker runs. */
static const struct {
        const char *kind;
        worker_job_fn *run;
} runner_kinds[] = {
    {"connect", worker_connect_run},
    {"zke-up", worker_zke_up_run},
    {"zke-remove", worker_zke_remove_run},
};

static cm_pg_err_t runner_sql_prepare(cm_pg_t *pg, char *errstr, size_t errstr_size)
{
        return cm_pg_prepare_all(pg, runner_stmts,
                                 sizeof(runner_stmts) / sizeof(runner_stmts[0]), errstr,
                                 errstr_size);
}

/* Every statement a run may use, on a runner's connection. */
static cm_pg_err_t runner_prepare(cm_pg_t *pg, char *errstr, size_t errstr_size)
{
        cm_pg_err_t (*const prepare[])(cm_pg_t *, char *, size_t) = {
            worker_sql_prepare, worker_kubeconfig_prepare, worker_zke_prepare,
            worker_runs_prepare, runner_sql_prepare};
        cm_pg_err_t worst = CM_PG_OK;
        for (size_t i = 0; i < sizeof(prepare) / sizeof(prepare[0]); i++) {
                cm_pg_err_t e = prepare[i](pg, errstr, errstr_size);
                if (cm_pg_err_is_bad_statement(e))
                        return e;
                if (e != CM_PG_OK)
                        worst = e; /* not connected: prepared on connect */
        }
        return worst;
}

/* ---------------------------------------------------------------- what jobs see */

worker_stop_t worker_job_stop_reason(const worker_job_t *job)
{
        if (atomic_load(&job->slot->lost))
                return WORKER_STOP_LOST;
        if (atomic_load(&job->slot->canceled))
                return WORKER_STOP_CANCELED;
        if (cm_service_stopping())
                return WORKER_STOP_SHUTDOWN;
        return WORKER_STOP_NONE;
}

worker_stop_t worker_job_sleep(const worker_job_t *job, int ms)
{
        int64_t end = worker_mono_ms() + ms;
        worker_stop_t r;
        while ((r = worker_job_stop_reason(job)) == WORKER_STOP_NONE) {
                int64_t left = end - worker_mono_ms();
                if (left <= 0)
                        break;
                struct timespec ts = {0, (long)(left < 100 ? left : 100) * 1000000L};
                nanosleep(&ts, NULL);
        }
        return r;
}

void worker_job_progress(const worker_job_t *job, const char *step, const char *node,
                         const char *status, const char *const *lines, size_t n)
{
        char *cut[WORKER_PROGRESS_LINES];
        char err[256];
        unsigned char *buf = NULL;
        size_t len = 0;
        if (n > WORKER_PROGRESS_LINES) { /* the latest lines tell the most */
                lines += n - WORKER_PROGRESS_LINES;
                n = WORKER_PROGRESS_LINES;
        }
        for (size_t i = 0; i < n; i++) {
                if (!(cut[i] =
                          strndup(lines[i] ? lines[i] : "", WORKER_PROGRESS_LINE_SZ))) {
                        n = i; /* out of memory: the lines so far */
                        break;
                }
        }
        cm_job_progress_t p = {
            .cluster = (char *)job->cluster,
            .job_id = (char *)job->id,
            .kind = (char *)job->kind,
            .attempt = job->attempt,
            .step = (char *)step,
            .node = (char *)node,
            .status = (char *)status,
            .at = worker_now_ms(),
            .lines = n ? cut : NULL,
            .line_count = n,
        };
        int rc = cm_job_progress_encode(&p, &buf, &len, err, sizeof(err));
        for (size_t i = 0; i < n; i++)
                free(cut[i]);
        if (rc != 0) {
                cm_log_warn("cannot encode job progress", "jobId", job->id, "error", err);
                return;
        }
        const char *topic = job->w->conf->kafka.progress_topic;
        if (cm_kafka_produce(job->w->producer, topic, job->cluster, strlen(job->cluster),
                             buf, len, NULL, 0, NULL, err, sizeof(err)) != CM_KAFKA_OK)
                cm_log_warn("cannot publish job progress", "jobId", job->id, "topic",
                            topic, "error", err);
        free(buf);
}

/* ---------------------------------------------------------------- slots */

static void slot_set(worker_slot_t *s, const char *job_id, int attempt)
{
        pthread_mutex_lock(&s->lock);
        snprintf(s->job_id, sizeof(s->job_id), "%s", job_id ? job_id : "");
        s->attempt = attempt;
        s->lease_ok_ms = worker_mono_ms();
        atomic_store(&s->canceled, 0);
        atomic_store(&s->lost, 0);
        pthread_mutex_unlock(&s->lock);
}

/* ---------------------------------------------------------------- outcomes */

typedef struct finish_s {
        cm_trigger_t trigger;
        const char *job_state; /* succeeded | failed | canceled */
        const char *error;
        const char *outcome_json;
} finish_t;

/* The outcome transaction. *lost is set when the row is no longer ours: 1 when another
 * run has it, 2 when this run's outcome is in it already (an earlier try committed, but
 * the connection dropped before the commit's reply came back). */
static worker_err_t finish_tx(runner_t *r, const worker_job_t *job, const finish_t *f,
                              worker_outcome_t *out, int *lost, char *errstr,
                              size_t errstr_size)
{
        worker_t *w = r->w;
        worker_row_t row;
        PGresult *res = NULL;
        *lost = 0;
        cm_pg_err_t pe = cm_pg_begin(r->pg, errstr, errstr_size);
        if (pe != CM_PG_OK)
                return worker_pg_err(r->pg, pe);
        worker_err_t e =
            worker_state_lock(r->pg, job->cluster, &row, errstr, errstr_size);
        if (e != WORKER_OK)
                return e;
        int canceling = row.exists && row.state == CM_STATE_CANCELING;
        worker_row_clear(&row);
        const char *v[4] = {job->id};
        pe = worker_sql_exec(r->pg, RSQL_JOB_LOCK, 1, v, NULL, 0, &res, errstr,
                             errstr_size);
        if (pe != CM_PG_OK)
                return worker_pg_err(r->pg, pe);
        int mine = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 1), w->id) == 0 &&
                   atoi(PQgetvalue(res, 0, 2)) == job->attempt;
        if (!mine || strcmp(PQgetvalue(res, 0, 0), "running") != 0)
                *lost = mine && strcmp(PQgetvalue(res, 0, 0), f->job_state) == 0 ? 2 : 1;
        PQclear(res);
        if (*lost)
                return worker_pg_err(r->pg, cm_pg_rollback(r->pg, errstr, errstr_size));

        worker_cause_t cause = {NULL, job->id, &(cm_actor_t){w->id, "system"}};
        worker_change_t change = {
            .error = f->error,
            .kubeconfig_sealed = job->kubeconfig_sealed,
            .kubeconfig_sealed_len = job->kubeconfig_sealed_len,
            .certificates_json = job->certificates_json,
            .certificate_keys_sealed = job->certificate_keys_sealed,
            .certificate_keys_sealed_len = job->certificate_keys_sealed_len,
            .host_keys_json = job->host_keys_json,
        };
        if (canceling && f->trigger == CM_TRIGGER_JOB_SUCCEEDED)
                change.error = "canceled: the job had finished when the cancel arrived";
        e = worker_transition_apply(w, r->pg, job->cluster, f->trigger, &cause, &change,
                                    out, errstr, errstr_size);
        if (e != WORKER_OK)
                return e;
        if (out->result != WORKER_TX_APPLIED)
                cm_log_warn("job outcome rejected by the state machine", "cluster",
                            job->cluster, "jobId", job->id, "error", out->message);
        v[1] = f->job_state;
        v[2] = f->error;
        v[3] = f->outcome_json;
        pe =
            worker_sql_exec(r->pg, RSQL_FINISH, 4, v, NULL, 0, NULL, errstr, errstr_size);
        if (pe == CM_PG_OK)
                pe = worker_run_end_tx(r->pg, job, "finished", errstr, errstr_size);
        if (pe == CM_PG_OK)
                pe = cm_pg_commit(r->pg, errstr, errstr_size);
        return worker_pg_err(r->pg, pe);
}

/* Applies the outcome, retrying the transaction until done, lost, or stopping. */
static void finish(runner_t *r, const worker_job_t *job, const finish_t *f)
{
        worker_t *w = r->w;
        char err[1024], rb[256];
        int delay = 200, hard = 0, lost = 0;
        worker_outcome_t out;
        for (;;) {
                worker_err_t e = WORKER_ERR_RETRY;
                if (cm_pg_ensure(r->pg, 2000, err, sizeof(err)) == CM_PG_OK)
                        e = finish_tx(r, job, f, &out, &lost, err, sizeof(err));
                if (e == WORKER_OK)
                        break;
                cm_pg_rollback(r->pg, rb, sizeof(rb));
                if (e == WORKER_ERR_FAIL && ++hard >= WORKER_MAX_HARD_RETRIES) {
                        cm_log_error(
                            "job outcome cannot be applied; the lease will expire "
                            "and the job run again",
                            "cluster", job->cluster, "jobId", job->id, "error", err);
                        worker_run_end(r->pg, job, "abandoned");
                        return;
                }
                if (cm_service_stopping()) {
                        cm_log_warn(
                            "stopping before the job outcome was applied; it will "
                            "run again",
                            "cluster", job->cluster, "jobId", job->id, "error", err);
                        worker_run_end(r->pg, job, "abandoned");
                        return;
                }
                cm_log_warn("job outcome transaction failed; retrying", "cluster",
                            job->cluster, "jobId", job->id, "error", err);
                cm_service_sleep_ms(delay);
                delay = delay < 2000 ? delay * 2 : 2000;
        }
        if (lost == 2) {
                atomic_fetch_add(
                    strcmp(f->job_state, "succeeded") == 0  ? &w->metrics.jobs_succeeded
                    : strcmp(f->job_state, "canceled") == 0 ? &w->metrics.jobs_canceled
                                                            : &w->metrics.jobs_failed,
                    1);
                cm_log_info("job finished (its outcome was committed; the connection "
                            "dropped before the commit was confirmed)",
                            "cluster", job->cluster, "jobId", job->id, "kind", job->kind,
                            "result", f->job_state, "error", f->error);
                return;
        }
        if (lost) {
                atomic_fetch_add(&w->metrics.jobs_abandoned, 1);
                cm_log_warn("job was taken over by another worker; outcome dropped",
                            "cluster", job->cluster, "jobId", job->id);
                worker_run_end(r->pg, job, "taken-over");
                return;
        }
        atomic_fetch_add(
            strcmp(f->job_state, "succeeded") == 0  ? &w->metrics.jobs_succeeded
            : strcmp(f->job_state, "canceled") == 0 ? &w->metrics.jobs_canceled
                                                    : &w->metrics.jobs_failed,
            1);
        char seq[24];
        snprintf(seq, sizeof(seq), "%lld", (long long)out.seq);
        cm_log_info("job finished", "cluster", job->cluster, "jobId", job->id, "kind",
                    job->kind, "result", f->job_state, "from", cm_state_name(out.from),
                    "to", cm_state_name(out.to), "seq", seq, "error", f->error);
}

/* Queues the job again (owner kept for the record) and ends the run: a transient
 * failure (delay_ms, the attempt counts) or a stop (the attempt is given back). */
static void release(runner_t *r, const worker_job_t *job, int delay_ms, const char *error,
                    int give_back)
{
        worker_run_release(r->pg, job, delay_ms, error, give_back);
        atomic_fetch_add(&r->w->metrics.jobs_abandoned, 1);
}

/* ---------------------------------------------------------------- one job */

static worker_job_fn *kind_run(const char *kind)
{
        for (size_t i = 0; i < sizeof(runner_kinds) / sizeof(runner_kinds[0]); i++)
                if (strcmp(runner_kinds[i].kind, kind) == 0)
                        return runner_kinds[i].run;
        return NULL;
}

static void run_claimed(runner_t *r, worker_job_t *job, int cancel_requested,
                        const char *last_error)
{
        worker_t *w = r->w;
        char error[2048] = "", *outcome = NULL;
        finish_t f = {CM_TRIGGER_JOB_FAILED, "failed", error, NULL};

        if (job->attempt > w->conf->job.max_attempts) {
                snprintf(error, sizeof(error),
                         "job %s gave up after %d attempts (job.max_attempts = %d): %s",
                         job->kind, job->attempt - 1, w->conf->job.max_attempts,
                         last_error ? last_error
                                    : "each attempt ended without an outcome (its "
                                      "worker stopped or lost its lease)");
                worker_job_progress(job, job->kind, NULL, "failed",
                                    (const char *[]){error}, 1);
                finish(r, job, &f);
                return;
        }
        if (cancel_requested)
                atomic_store(&r->slot.canceled, 1);
        worker_run_t rr = WORKER_RUN_STOPPED;
        if (!cancel_requested)
                rr = kind_run(job->kind)(job, error, sizeof(error));
        worker_stop_t why = worker_job_stop_reason(job);
        if (rr == WORKER_RUN_STOPPED && why == WORKER_STOP_NONE)
                why = WORKER_STOP_SHUTDOWN; /* a run function must not stop unasked */
        switch (rr) {
        case WORKER_RUN_SUCCEEDED:
                f.trigger = CM_TRIGGER_JOB_SUCCEEDED;
                f.job_state = "succeeded";
                f.error = NULL;
                break;
        case WORKER_RUN_FAILED:
                break;
        case WORKER_RUN_RETRY: {
                int delay = job->attempt * 2000;
                release(r, job, delay < 30000 ? delay : 30000, error, 0);
                return;
        }
        case WORKER_RUN_STOPPED:
                if (why == WORKER_STOP_LOST) {
                        atomic_fetch_add(&w->metrics.jobs_abandoned, 1);
                        cm_log_warn("job run abandoned: its lease was lost", "cluster",
                                    job->cluster, "jobId", job->id);
                        worker_run_end(r->pg, job, "abandoned");
                        return;
                }
                if (why == WORKER_STOP_SHUTDOWN) {
                        release(r, job, 0, NULL, 1);
                        return;
                }
                snprintf(error, sizeof(error), "canceled");
                f.job_state = "canceled";
                if (cancel_requested)
                        worker_job_progress(job, job->kind, NULL, "canceled", NULL, 0);
                break;
        }
        if (job->outcome)
                outcome = json_dumps(job->outcome, JSON_COMPACT | JSON_SORT_KEYS);
        f.outcome_json = outcome;
        finish(r, job, &f);
        free(outcome);
}

/* Claims one job. Returns 1 and runs it, 0 when there was none, -1 on an error. */
static int runner_once(runner_t *r)
{
        worker_t *w = r->w;
        char err[512], lease[16];
        PGresult *res = NULL;
        snprintf(lease, sizeof(lease), "%d", w->conf->job.lease_s);
        const char *v[3] = {w->id, lease, w->runners->kinds};
        if (cm_pg_exec_prepared(r->pg, RSQL_CLAIM, 3, v, NULL, NULL, 0, &res, err,
                                sizeof(err)) != CM_PG_OK) {
                cm_log_warn("cannot claim a job", "error", err);
                return -1;
        }
        if (PQntuples(res) != 1) {
                PQclear(res);
                return 0;
        }
        worker_job_t job = {.w = w, .pg = r->pg, .slot = &r->slot};
        snprintf(job.id, sizeof(job.id), "%s", PQgetvalue(res, 0, 0));
        snprintf(job.cluster, sizeof(job.cluster), "%s", PQgetvalue(res, 0, 1));
        snprintf(job.kind, sizeof(job.kind), "%s", PQgetvalue(res, 0, 2));
        job.attempt = atoi(PQgetvalue(res, 0, 3));
        job.payload = json_loads(PQgetvalue(res, 0, 4), 0, NULL);
        if (!job.payload)
                job.payload = json_object();
        int cancel_requested = PQgetvalue(res, 0, 5)[0] == 't';
        job.created_ms = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
        char *last_error = PQgetisnull(res, 0, 7) ? NULL : strdup(PQgetvalue(res, 0, 7));
        int resumed = strcmp(PQgetvalue(res, 0, 8), "running") == 0;
        char prev_owner[160];
        snprintf(prev_owner, sizeof(prev_owner), "%s", PQgetvalue(res, 0, 9));
        job.run = atoi(PQgetvalue(res, 0, 10));
        PQclear(res);

        slot_set(&r->slot, job.id, job.attempt);
        atomic_fetch_add(&w->metrics.jobs_claimed, 1);
        if (resumed)
                atomic_fetch_add(&w->metrics.jobs_resumed, 1);
        char attempt[12], run[12];
        snprintf(attempt, sizeof(attempt), "%d", job.attempt);
        snprintf(run, sizeof(run), "%d", job.run);
        cm_log_info(resumed ? "job resumed: its lease had expired" : "job claimed",
                    "cluster", job.cluster, "jobId", job.id, "kind", job.kind, "attempt",
                    attempt, "run", run, "previousOwner", resumed ? prev_owner : NULL);
        run_claimed(r, &job, cancel_requested, last_error);
        slot_set(&r->slot, NULL, 0);
        free(last_error);
        json_decref(job.payload);
        json_decref(job.outcome);
        free(job.kubeconfig_sealed);
        free(job.certificates_json);
        free(job.certificate_keys_sealed);
        free(job.host_keys_json);
        return 1;
}

static void *runner_main(void *arg)
{
        runner_t *r = arg;
        char err[512];
        while (!cm_service_stopping()) {
                if (cm_pg_ensure(r->pg, 2000, err, sizeof(err)) != CM_PG_OK) {
                        cm_log_warn("job runner waiting for PostgreSQL", "error", err);
                        cm_service_sleep_ms(500);
                        continue;
                }
                int n = runner_once(r);
                if (n <= 0) /* idle (jittered so runners do not poll in step) */
                        cm_service_sleep_ms(WORKER_JOB_IDLE_MS + r->index * 97 % 250);
        }
        return NULL;
}

/* ---------------------------------------------------------------- start / stop */

int worker_runner_start(worker_t *w, char *errstr, size_t errstr_size)
{
        if (w->conf->job.runners == 0) {
                cm_log_info("this worker runs no job (job.runners = 0)");
                return 0;
        }
        worker_runners_t *rs = calloc(1, sizeof(*rs));
        if (!rs ||
            !(rs->runners = calloc((size_t)w->conf->job.runners, sizeof(runner_t)))) {
                free(rs);
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        w->runners = rs;
        size_t n = snprintf(rs->kinds, sizeof(rs->kinds), "{");
        for (size_t i = 0; i < sizeof(runner_kinds) / sizeof(runner_kinds[0]); i++)
                n += snprintf(rs->kinds + n, sizeof(rs->kinds) - n, "%s%s", i ? "," : "",
                              runner_kinds[i].kind);
        snprintf(rs->kinds + n, sizeof(rs->kinds) - n, "}");
        rs->count = w->conf->job.runners;
        for (int i = 0; i < rs->count; i++) {
                runner_t *r = &rs->runners[i];
                r->w = w;
                r->index = i;
                pthread_mutex_init(&r->slot.lock, NULL);
        }
        for (int i = 0; i < rs->count; i++) {
                runner_t *r = &rs->runners[i];
                if (!(r->pg = cm_pg_new_config(w->conf, errstr, errstr_size)))
                        return -1;
                if (cm_pg_err_is_bad_statement(
                        runner_prepare(r->pg, errstr, errstr_size)))
                        return -1;
                if (pthread_create(&r->thread, NULL, runner_main, r) != 0) {
                        snprintf(errstr, errstr_size, "cannot start job runner %d", i);
                        return -1;
                }
                r->started = 1;
        }
        if (worker_keeper_start(w, errstr, errstr_size) != 0)
                return -1;
        cm_log_info("job runners started", "kinds", rs->kinds);
        return 0;
}

void worker_runner_join(worker_t *w)
{
        worker_runners_t *rs = w->runners;
        if (!rs)
                return;
        for (int i = 0; i < rs->count; i++) {
                runner_t *r = &rs->runners[i];
                if (r->started)
                        pthread_join(r->thread, NULL);
                cm_pg_destroy(r->pg);
                pthread_mutex_destroy(&r->slot.lock);
        }
        worker_keeper_join(w);
        free(rs->runners);
        free(rs);
        w->runners = NULL;
}

size_t worker_runner_metrics_render(worker_t *w, char *buf, size_t size)
{
        worker_metrics_t *m = &w->metrics;
        int n = snprintf(
            buf, size,
            "# HELP cm_worker_jobs_claimed_total Jobs claimed (a resumed job counts "
            "again).\n"
            "# TYPE cm_worker_jobs_claimed_total counter\n"
            "cm_worker_jobs_claimed_total %lu\n"
            "# HELP cm_worker_jobs_resumed_total Claims of jobs whose lease had "
            "expired.\n"
            "# TYPE cm_worker_jobs_resumed_total counter\n"
            "cm_worker_jobs_resumed_total %lu\n"
            "# HELP cm_worker_jobs_total Jobs finished by this worker, by result.\n"
            "# TYPE cm_worker_jobs_total counter\n"
            "cm_worker_jobs_total{result=\"succeeded\"} %lu\n"
            "cm_worker_jobs_total{result=\"failed\"} %lu\n"
            "cm_worker_jobs_total{result=\"canceled\"} %lu\n"
            "cm_worker_jobs_total{result=\"abandoned\"} %lu\n"
            "# HELP cm_worker_probes_total Prober probes of clusters, by result.\n"
            "# TYPE cm_worker_probes_total counter\n"
            "cm_worker_probes_total{result=\"ok\"} %lu\n"
            "cm_worker_probes_total{result=\"failed\"} %lu\n"
            "# HELP cm_worker_probe_transitions_total ProbeFailed / ProbeSucceeded "
            "applied.\n"
            "# TYPE cm_worker_probe_transitions_total counter\n"
            "cm_worker_probe_transitions_total %lu\n"
            "# HELP cm_worker_probe_rounds_total Prober rounds completed.\n"
            "# TYPE cm_worker_probe_rounds_total counter\n"
            "cm_worker_probe_rounds_total %lu\n"
            "# HELP cm_worker_probe_round_seconds Duration of the last prober round "
            "(list, probe, apply).\n"
            "# TYPE cm_worker_probe_round_seconds gauge\n"
            "cm_worker_probe_round_seconds %.3f\n"
            "# HELP cm_worker_probe_round_clusters Clusters probed in the last prober "
            "round.\n"
            "# TYPE cm_worker_probe_round_clusters gauge\n"
            "cm_worker_probe_round_clusters %lu\n",
            atomic_load(&m->jobs_claimed), atomic_load(&m->jobs_resumed),
            atomic_load(&m->jobs_succeeded), atomic_load(&m->jobs_failed),
            atomic_load(&m->jobs_canceled), atomic_load(&m->jobs_abandoned),
            atomic_load(&m->probes_ok), atomic_load(&m->probes_failed),
            atomic_load(&m->probe_transitions), atomic_load(&m->probe_rounds),
            (double)atomic_load(&m->probe_round_ms) / 1000.0,
            atomic_load(&m->probe_round_clusters));
        return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}
