/*
 * it_jobs - the job runner's pieces that are hard to see end to end (DESIGN §2, §3):
 * heartbeats keep a lease alive, a row taken by another owner is abandoned by its run
 * and resumed once its lease expires, attempt > job.max_attempts applies JobFailed
 * naming the attempts, a zke-up job is run and its failure ends it (JobFailed with zke's
 * error, no retry), a cancel stops a run at
 * once, a worker that stops gracefully hands its job over without spending an
 * attempt, and a job whose worker was killed is resumed by another once its lease ran
 * out. Each run of a job leaves a job_runs row (owner, attempt, start, end and how it
 * ended) whose end is written once the run has stopped. An outcome whose COMMIT
 * succeeded but whose reply was lost counts as finished, not as taken over. Its own
 * cm-devbroker, database and two real cm-worker processes (job.lease_s 3, job.heartbeat_s
 * 1, job.runners 4; the last test starts a third); the connect jobs probe a closed port,
 * so they keep retrying until the test acts.
 */

/* the harness serves several programs: this one uses part of it */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "worker_harness.h"

#define LEASE_S 3

static char worker_ids[WH_MAX_WORKERS][200];
static int closed_port;

static void jobs_setup(void)
{
        setenv("CM_JOB_LEASE_S", "3", 1); /* inherited by the workers */
        setenv("CM_JOB_HEARTBEAT_S", "1", 1);
        setenv("CM_JOB_RUNNERS", "4", 1);
        setenv("CM_JOB_MAX_ATTEMPTS", "3", 1);
        setenv("CM_PROBE_INTERVAL_S", "1", 1);
        wh_prepare("jobs");
        wh_start_broker();
        wh_start_worker(0);
        wh_start_worker(1);
        wh_wait_schema(60000);
        wh_wait_ready(0, 60000);
        wh_wait_ready(1, 60000);
        char host[128] = "localhost";
        gethostname(host, sizeof(host) - 1);
        for (int i = 0; i < 2; i++)
                snprintf(worker_ids[i], sizeof(worker_ids[i]), "%s:%d", host,
                         (int)wh.workers[i]);
        closed_port = cm_test_port(); /* nothing listens there */
        PQfinish(wh_db);
        wh_db = NULL;
}

static void jobs_teardown(void)
{
        wh_shutdown();
}

/* Imports cluster with a kubeconfig whose server refuses connections. */
static void import_unreachable(const char *cluster)
{
        char kc[512];
        snprintf(
            kc, sizeof(kc),
            "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n    "
            "server: https://127.0.0.1:%d\ncontexts:\n- name: c\n  context: {cluster: k, "
            "user: u}\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: "
            "it-secret-token-42\n",
            closed_port);
        cm_command_t *c = wh_cmd(CM_COMMAND_IMPORT, cluster);
        wh_seal(kc, strlen(kc), &c->import.kubeconfig, &c->import.kubeconfig_len);
        wh_send(c);
        expect_result(c->id, "applied");
        wh_cmd_free(c);
}

static char *job_field(const char *cluster, const char *expr)
{
        char sql[300];
        const char *p[1] = {cluster};
        snprintf(sql, sizeof(sql), "SELECT %s FROM jobs WHERE cluster = $1", expr);
        return wh_scalar(sql, 1, p);
}

/* Waits until the cluster's job runs; returns its owner (malloc'd). */
static char *wait_running(const char *cluster, const char *attempt)
{
        char expect[32];
        snprintf(expect, sizeof(expect), "running %s", attempt);
        wh_wait_scalar("SELECT state || ' ' || attempt FROM jobs WHERE cluster = $1",
                       cluster, expect, 20000);
        return job_field(cluster, "owner");
}

static int is_worker(const char *owner)
{
        return strcmp(owner, worker_ids[0]) == 0 || strcmp(owner, worker_ids[1]) == 0;
}

/* "w0", "w1", "w2" for the test's workers' ids, else owner itself. */
static const char *wname(const char *owner)
{
        static const char *const names[] = {"w0", "w1", "w2", "w3"};
        for (int i = 0; i < WH_MAX_WORKERS; i++)
                if (worker_ids[i][0] && strcmp(owner, worker_ids[i]) == 0)
                        return names[i];
        return owner;
}

/* The job_runs rows of the cluster's jobs in run order, "run attempt owner how" each
 * ('; '-joined; owner as wname(), how "open" while ended_at is NULL), malloc'd. */
static char *runs_of(const char *cluster)
{
        const char *p[5] = {cluster, worker_ids[0], worker_ids[1], worker_ids[2],
                            worker_ids[3]};
        return wh_scalar(
            "SELECT string_agg(r.run || ' ' || r.attempt || ' ' || CASE r.owner"
            "  WHEN $2 THEN 'w0' WHEN $3 THEN 'w1' WHEN $4 THEN 'w2' WHEN $5 THEN 'w3'"
            "  ELSE r.owner END || ' ' || coalesce(r.how, 'open')"
            "  || CASE WHEN (r.ended_at IS NULL) <> (r.how IS NULL) THEN ' inconsistent'"
            "     ELSE '' END, '; ' ORDER BY j.created_at, r.run)"
            " FROM job_runs r JOIN jobs j ON j.id = r.job_id WHERE j.cluster = $1",
            5, p);
}

/* Waits until runs_of(cluster) is expect. */
static void wait_runs(const char *cluster, const char *expect, int timeout_ms)
{
        char *got = NULL;
        long long end = wh_now_ms() + timeout_ms;
        do {
                free(got);
                got = runs_of(cluster);
                if (strcmp(got, expect) == 0)
                        break;
                wh_sleep_ms(100);
        } while (wh_now_ms() < end);
        ck_assert_msg(strcmp(got, expect) == 0, "job_runs of %s: \"%s\", expected \"%s\"",
                      cluster, got, expect);
        free(got);
}

/* Whether run b of the cluster's job started at or after run a's end (or, when a has
 * no end, after instant): "t" / "f" / "<none>". */
static char *run_started_after(const char *cluster, int a, int b, const char *instant)
{
        char sa[12], sb[12];
        snprintf(sa, sizeof(sa), "%d", a);
        snprintf(sb, sizeof(sb), "%d", b);
        const char *p[4] = {cluster, sa, sb, instant};
        return wh_scalar(
            "SELECT (rb.started_at >= coalesce(ra.ended_at, $4::timestamptz))::text"
            " FROM jobs j JOIN job_runs ra ON ra.job_id = j.id AND ra.run = $2::integer"
            " JOIN job_runs rb ON rb.job_id = j.id AND rb.run = $3::integer"
            " WHERE j.cluster = $1",
            4, p);
}

static int log_has(const char *needle)
{
        int found = 0;
        for (int i = 0; i < 2 && !found; i++) {
                char path[400];
                snprintf(path, sizeof(path), "%s/worker-%d.log", wh.dir, i);
                char *log = wh_read_file(path, NULL);
                found = log && strstr(log, needle) != NULL;
                free(log);
        }
        return found;
}

/* ---------------------------------------------------------------- tests */

START_TEST(test_heartbeat_keeps_the_lease)
{
        import_unreachable("hb");
        char *owner = wait_running("hb", "1");
        ck_assert_msg(is_worker(owner), "owner %s is no worker", owner);
        char *first = job_field("hb", "extract(epoch FROM lease_until)::text");
        /* three lease periods: without heartbeats the lease would expire and the other
         * worker resume the job (attempt 2) */
        for (int i = 0; i < 3 * LEASE_S * 2; i++) {
                wh_sleep_ms(500);
                char *s =
                    job_field("hb", "state || ' ' || attempt || ' ' || owner || ' ' "
                                    "|| (lease_until > now())");
                char expect[300];
                snprintf(expect, sizeof(expect), "running 1 %s true", owner);
                ck_assert_msg(strcmp(s, expect) == 0, "after %d ms: %s, expected %s",
                              (i + 1) * 500, s, expect);
                free(s);
        }
        char *last = job_field("hb", "extract(epoch FROM lease_until)::text");
        ck_assert_msg(strtod(last, NULL) >= strtod(first, NULL) + 2 * LEASE_S,
                      "lease_until moved from %s to %s only", first, last);
        ASSERT_STATE("hb", "Connecting 1");
        char expect[300];
        snprintf(expect, sizeof(expect), "1 1 %s open", wname(owner));
        wait_runs("hb", expect, 0);
        free(first);
        free(last);
        free(owner);
}
END_TEST

START_TEST(test_row_taken_over_is_abandoned_and_resumed_after_lease_expiry)
{
        import_unreachable("rs");
        char *owner = wait_running("rs", "1");
        long abandoned = wh_metric("cm_worker_jobs_total{result=\"abandoned\"}");
        long resumed = wh_metric("cm_worker_jobs_resumed_total");
        /* another owner takes the row; its lease runs out at once (it "died") */
        PGresult *res = wh_sql("UPDATE jobs SET owner = 'dead-worker:1', lease_until = "
                               "now() - interval '1 second' WHERE cluster = 'rs'"
                               " RETURNING lease_until::text",
                               0, NULL);
        ck_assert_int_eq(PQntuples(res), 1);
        char lease_end[64];
        snprintf(lease_end, sizeof(lease_end), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        char *now_owner = wait_running("rs", "2");
        ck_assert_msg(is_worker(now_owner), "resumed by %s", now_owner);
        long long end = wh_now_ms() + 5000;
        while (wh_now_ms() < end &&
               wh_metric("cm_worker_jobs_total{result=\"abandoned\"}") <= abandoned)
                wh_sleep_ms(100);
        ck_assert_msg(wh_metric("cm_worker_jobs_total{result=\"abandoned\"}") > abandoned,
                      "the first run was not abandoned");
        ck_assert_int_eq(wh_metric("cm_worker_jobs_resumed_total"), resumed + 1);
        ck_assert(log_has("job row is no longer ours"));
        ck_assert(log_has("job resumed: its lease had expired"));
        ck_assert(log_has("\"previousOwner\":\"dead-worker:1\""));
        /* the abandoned run applied nothing */
        ASSERT_STATE("rs", "Connecting 1");
        /* job_runs: the first run ended when it noticed (abandoned, by its own worker),
         * the second started after the first's lease had run out and goes on */
        char expect[400];
        int n = snprintf(expect, sizeof(expect), "1 1 %s abandoned; ", wname(owner));
        snprintf(expect + n, sizeof(expect) - n, "2 2 %s open", wname(now_owner));
        wait_runs("rs", expect, 5000);
        char *after_lease = wh_scalar(
            "SELECT (r.started_at > $1::timestamptz)::text FROM job_runs r"
            " JOIN jobs j ON j.id = r.job_id WHERE j.cluster = 'rs' AND r.run = 2",
            1, (const char *[]){lease_end});
        ck_assert_str_eq(after_lease, "true");
        free(after_lease);
        free(owner);
        free(now_owner);
}
END_TEST

START_TEST(test_attempt_over_max_attempts_applies_job_failed)
{
        import_unreachable("mx");
        char *first = wait_running("mx", "1");
        PQclear(wh_sql("UPDATE jobs SET owner = 'dead-worker:2', attempt = 3, error = "
                       "'the node exploded', lease_until = now() - interval '1 second'"
                       " WHERE cluster = 'mx'",
                       0, NULL));
        wh_wait_scalar("SELECT state FROM cluster_state WHERE name = $1", "mx",
                       "Unavailable", 20000);
        const char *want = "job connect gave up after 3 attempts (job.max_attempts = 3): "
                           "the node exploded";
        char *row = job_field("mx", "state || ' ' || attempt || ' | ' || error");
        char expect[300];
        snprintf(expect, sizeof(expect), "failed 4 | %s", want);
        ck_assert_str_eq(row, expect);
        free(row);
        const char *p[1] = {"mx"};
        char *last =
            wh_scalar("SELECT last_error FROM cluster_state WHERE name = $1", 1, p);
        ck_assert_str_eq(last, want);
        free(last);
        cm_cluster_event_t ev;
        outbox_of("mx", 2, &ev);
        assert_event(&ev, "mx", 2, "JobFailed", "Connecting", "Unavailable");
        ck_assert_str_eq(ev.error, want);
        ck_assert(ev.job_id && !ev.command_id);
        ck_assert_str_eq(ev.actor.role, "system");
        ck_assert(is_worker(ev.actor.name));
        /* the first run lost its row (abandoned); the claim past the limit is a run of
         * its own, ended with the JobFailed it applied */
        char runs[400];
        int n = snprintf(runs, sizeof(runs), "1 1 %s abandoned; ", wname(first));
        snprintf(runs + n, sizeof(runs) - n, "2 4 %s finished", wname(ev.actor.name));
        wait_runs("mx", runs, 5000);
        cm_cluster_event_destroy(&ev);
        free(first);
}
END_TEST

START_TEST(test_zke_up_runs_and_fails_for_good)
{
        /* the harness's nodes (10.0.0.1, 10.0.0.2) answer no SSH: zke-up is claimed,
           fails to connect, and that failure is final */
        cm_command_t *c = wh_cmd_create("zk");
        wh_send(c);
        expect_result(c->id, "applied");
        wh_cmd_free(c);
        char *row = NULL;
        for (int i = 0; i < 300; i++) {
                free(row);
                row = job_field("zk", "kind || ' ' || state || ' ' || attempt");
                if (strcmp(row, "zke-up failed 1") == 0)
                        break;
                wh_sleep_ms(100);
        }
        ck_assert_str_eq(row, "zke-up failed 1");
        free(row);
        ASSERT_STATE("zk", "Unavailable 2");
        /* one run, ended with its outcome in the outcome's transaction, by the worker
         * the job row names */
        char *owner = job_field("zk", "owner");
        ck_assert(is_worker(owner));
        char expect[300];
        snprintf(expect, sizeof(expect), "1 1 %s finished", wname(owner));
        wait_runs("zk", expect, 0);
        char *times = wh_scalar(
            "SELECT (r.ended_at >= r.started_at AND r.ended_at = j.updated_at"
            "        AND r.started_at >= j.created_at)::text"
            " FROM job_runs r JOIN jobs j ON j.id = r.job_id WHERE j.cluster = 'zk'",
            0, NULL);
        ck_assert_str_eq(times, "true");
        free(times);
        free(owner);
        char *err = job_field("zk", "error");
        ck_assert_msg(strstr(err, "connect: 2 of 2 nodes failed") && strstr(err, "n1") &&
                          strstr(err, "10.0.0.1"),
                      "%s", err);
        free(err);
        cm_cluster_event_t ev;
        outbox_of("zk", 2, &ev);
        assert_event(&ev, "zk", 2, "JobFailed", "Creating", "Unavailable");
        ck_assert(ev.error && strstr(ev.error, "connect: 2 of 2 nodes failed"));
        cm_cluster_event_destroy(&ev);
}
END_TEST

START_TEST(test_cancel_stops_the_run_within_two_seconds)
{
        import_unreachable("cn");
        char *owner = wait_running("cn", "1");
        cm_command_t *c = wh_cmd(CM_COMMAND_CANCEL, "cn");
        wh_send(c);
        expect_result(c->id, "applied");
        long long t0 = wh_now_ms();
        wh_wait_scalar("SELECT state FROM cluster_state WHERE name = $1", "cn",
                       "Unavailable", 5000);
        long long took = wh_now_ms() - t0;
        ck_assert_msg(took < 2000, "the run stopped %lld ms after the cancel", took);
        char *row = job_field("cn", "state || ' ' || error || ' ' || cancel_requested");
        ck_assert_str_eq(row, "canceled canceled true");
        free(row);
        cm_cluster_event_t ev;
        outbox_of("cn", 3, &ev);
        assert_event(&ev, "cn", 3, "JobFailed", "Canceling", "Unavailable");
        ck_assert_str_eq(ev.error, "canceled");
        cm_cluster_event_destroy(&ev);
        wh_cmd_free(c);
        char expect[300];
        snprintf(expect, sizeof(expect), "1 1 %s finished", wname(owner));
        wait_runs("cn", expect, 0);
        free(owner);
}
END_TEST

START_TEST(test_graceful_stop_hands_the_job_over)
{
        import_unreachable("gs");
        char *owner = wait_running("gs", "1");
        int i = strcmp(owner, worker_ids[0]) == 0 ? 0 : 1;
        ck_assert(is_worker(owner));
        /* (a forked test cannot reap the worker: the fixture's teardown does) */
        ck_assert_int_eq(kill(wh.workers[i], SIGTERM), 0);
        /* released with its attempt given back, and claimed by the other worker at once
         * (no lease to wait for) */
        char expect[300];
        snprintf(expect, sizeof(expect), "running 1 %s", worker_ids[1 - i]);
        wh_wait_scalar(
            "SELECT state || ' ' || attempt || ' ' || owner FROM jobs WHERE cluster = $1",
            "gs", expect, 10000);
        ck_assert(log_has("\"job released\""));
        ASSERT_STATE("gs", "Connecting 1");
        /* two runs of attempt 1 (the first gave it back): the first ended "stopped"
         * before the second started */
        char runs[400];
        snprintf(runs, sizeof(runs), "1 1 %s stopped; 2 1 %s open", wname(owner),
                 wname(worker_ids[1 - i]));
        wait_runs("gs", runs, 0);
        char *after = run_started_after("gs", 1, 2, "infinity");
        ck_assert_str_eq(after, "true");
        free(after);
        free(owner);
        /* the kubeconfigs' token reached no log line and no job row */
        for (int k = 0; k < 2; k++) {
                char path[400];
                size_t len = 0;
                snprintf(path, sizeof(path), "%s/worker-%d.log", wh.dir, k);
                char *log = wh_read_file(path, &len);
                ck_assert(log && len > 0);
                assert_no_secret(log, len, path);
                free(log);
        }
        char *rows =
            wh_scalar("SELECT string_agg(payload::text || coalesce(error, '') || "
                      "coalesce(outcome::text, ''), ' ') FROM jobs",
                      0, NULL);
        assert_no_secret(rows, strlen(rows), "jobs");
        free(rows);
}
END_TEST

/* Runs last: the graceful stop test left one worker; this one starts a third. */
START_TEST(test_killed_worker_s_run_stays_open_and_the_job_resumes_after_its_lease)
{
        import_unreachable("kl");
        char *owner = wait_running("kl", "1");
        ck_assert(is_worker(owner));
        pid_t victim = (pid_t)atol(strrchr(owner, ':') + 1);
        /* the next run's worker, with room for every job the victim runs */
        setenv("CM_JOB_RUNNERS", "8", 1);
        wh_start_worker(2);
        wh_wait_ready(2, 60000);
        char host[128] = "localhost";
        gethostname(host, sizeof(host) - 1);
        snprintf(worker_ids[2], sizeof(worker_ids[2]), "%s:%d", host, (int)wh.workers[2]);
        ck_assert_int_eq(kill(victim, SIGKILL), 0);
        char *killed_at = wh_scalar("SELECT now()::text", 0, NULL);
        char *lease_end = job_field("kl", "lease_until::text");
        char *now_owner = wait_running("kl", "2");
        ck_assert_str_eq(now_owner, worker_ids[2]);
        /* the dead worker's run has no end; the second started once its lease ran out */
        char expect[400];
        snprintf(expect, sizeof(expect), "1 1 %s open; 2 2 w2 open", wname(owner));
        wait_runs("kl", expect, 0);
        char *after = run_started_after("kl", 1, 2, lease_end);
        ck_assert_msg(strcmp(after, "true") == 0, "run 2 started before %s", lease_end);
        free(after);
        after = run_started_after("kl", 1, 2, killed_at);
        ck_assert_str_eq(after, "true");
        free(after);
        /* a graceful stop of the third ends its run "stopped" */
        wh_stop(&wh.workers[2], SIGTERM);
        snprintf(expect, sizeof(expect), "1 1 %s open; 2 2 w2 stopped", wname(owner));
        wait_runs("kl", expect, 0);
        /* queued again with the attempt given back; no worker is left to claim it */
        after = job_field("kl", "state || ' ' || attempt");
        ck_assert_str_eq(after, "queued 1");
        free(after);
        free(killed_at);
        free(lease_end);
        free(now_owner);
        free(owner);
}
END_TEST

/*
 * Runs last: the workers left stop, and a fourth reaches PostgreSQL through a proxy
 * (tests/fixtures/pg_commit_cut.py) that loses the reply to its job outcome's COMMIT.
 * The outcome is committed; the worker's retry finds the row with its own outcome and
 * counts the job finished (not "taken over", not abandoned).
 */
/*
 * Stops every worker and starts worker 3 reaching PostgreSQL only through
 * tests/fixtures/pg_commit_cut.py (its COMMIT reply cut once after a Bind of statement;
 * "-": never), with room for the jobs earlier tests left queued. Returns the proxy.
 */
static pid_t start_worker_behind_proxy(const char *statement, const char *log)
{
        for (int i = 0; i < WH_MAX_WORKERS; i++)
                wh_stop(&wh.workers[i], SIGTERM);
        PQconninfoOption *opts = PQconninfoParse(wh.conninfo, NULL);
        ck_assert(opts != NULL);
        char pg_host[256] = "127.0.0.1", pg_port[16] = "5432";
        for (PQconninfoOption *o = opts; o->keyword; o++) {
                if (strcmp(o->keyword, "host") == 0 && o->val)
                        snprintf(pg_host, sizeof(pg_host), "%s", o->val);
                if (strcmp(o->keyword, "port") == 0 && o->val)
                        snprintf(pg_port, sizeof(pg_port), "%s", o->val);
        }
        PQconninfoFree(opts);
        char script[512], port[16];
        snprintf(script, sizeof(script), "%s/tests/fixtures/pg_commit_cut.py",
                 getenv("CM_SOURCE_DIR"));
        snprintf(port, sizeof(port), "%d", cm_test_port());
        char *argv[] = {"/usr/bin/python3", script, port, pg_host, pg_port,
                        (char *)statement,  NULL};
        pid_t proxy = wh_spawn(argv, NULL, log);
        char *out = NULL;
        for (int i = 0; i < 100; i++) {
                free(out);
                out = wh_read_file(log, NULL);
                if (out && strstr(out, "listening"))
                        break;
                wh_sleep_ms(100);
        }
        ck_assert_msg(out && strstr(out, "listening"), "proxy: %s", out ? out : "");
        free(out);
        /* the later host and port win over the test database's own */
        char *direct = wh.conninfo, proxied[1200];
        snprintf(proxied, sizeof(proxied), "%s host=127.0.0.1 port=%s", direct, port);
        wh.conninfo = proxied;
        setenv("CM_JOB_RUNNERS", "8", 1);
        wh_start_worker(3);
        wh.conninfo = direct;
        wh_wait_ready(3, 60000);
        char host[128] = "localhost";
        gethostname(host, sizeof(host) - 1);
        snprintf(worker_ids[3], sizeof(worker_ids[3]), "%s:%d", host, (int)wh.workers[3]);
        return proxy;
}

START_TEST(test_outcome_committed_but_its_reply_lost)
{
        char log[400];
        snprintf(log, sizeof(log), "%s/pg_commit_cut.log", wh.dir);
        pid_t proxy = start_worker_behind_proxy("w_job_finish", log);
        char *out = NULL;

        /* a zke-up that fails at connect (the harness's nodes answer no SSH) */
        cm_command_t *c = wh_cmd_create("lc");
        wh_send(c);
        expect_result(c->id, "applied");
        wh_cmd_free(c);
        wh_wait_scalar("SELECT kind || ' ' || state || ' ' || attempt FROM jobs "
                       "WHERE cluster = $1",
                       "lc", "zke-up failed 1", 60000);
        out = wh_read_file(log, NULL);
        ck_assert_msg(out && strstr(out, "cut COMMIT"), "the proxy cut nothing: %s",
                      out ? out : "");
        free(out);
        wait_runs("lc", "1 1 w3 finished", 10000);
        ASSERT_STATE("lc", "Unavailable 2");
        /* counted as failed (its outcome), once, and not as abandoned */
        long long end = wh_now_ms() + 10000;
        while (wh_metric("cm_worker_jobs_total{result=\"failed\"}") != 1 &&
               wh_now_ms() < end)
                wh_sleep_ms(100);
        ck_assert_int_eq(wh_metric("cm_worker_jobs_total{result=\"failed\"}"), 1);
        ck_assert_int_eq(wh_metric("cm_worker_jobs_total{result=\"abandoned\"}"), 0);
        snprintf(log, sizeof(log), "%s/worker-3.log", wh.dir);
        out = wh_read_file(log, NULL);
        ck_assert_msg(out && strstr(out, "the connection dropped before the commit was "
                                         "confirmed"),
                      "worker-3.log does not say the commit's reply was lost");
        ck_assert_msg(!strstr(out, "taken over"), "the run was reported taken over");
        free(out);
        wh_stop(&wh.workers[3], SIGTERM);
        wh_stop(&proxy, SIGTERM);
}
END_TEST

/*
 * A worker cut off from PostgreSQL cannot extend its leases: its runs must stop once a
 * lease has run out, while the database still does not answer (another worker may take
 * the job by then). Worker 3 reaches the database through a proxy, which is killed while
 * it runs a connect job; its log must show the run abandoned within LEASE_S of the
 * lease's end (the keeper's round, a wait for the database, the run's next check).
 */
START_TEST(test_cut_off_worker_stops_its_runs_when_leases_run_out)
{
        char log[400];
        snprintf(log, sizeof(log), "%s/pg_proxy.log", wh.dir);
        pid_t proxy = start_worker_behind_proxy("-", log);
        import_unreachable("co");
        char *owner = wait_running("co", "1");
        ck_assert_str_eq(owner, worker_ids[3]);
        free(owner);
        /* a heartbeat or two, then the cut */
        wh_sleep_ms(1500);
        wh_stop(&proxy, SIGKILL);
        char *lease_end = job_field("co", "lease_until::text");
        char path[400];
        snprintf(path, sizeof(path), "%s/worker-3.log", wh.dir);
        const char *needle = "\"msg\":\"job run abandoned: its lease was lost\","
                             "\"cluster\":\"co\"";
        char *wlog = NULL, *line = NULL;
        long long end = wh_now_ms() + (LEASE_S + 10) * 1000;
        while (wh_now_ms() < end) {
                free(wlog);
                wlog = wh_read_file(path, NULL);
                if (wlog && (line = strstr(wlog, needle)))
                        break;
                wh_sleep_ms(200);
        }
        ck_assert_msg(line != NULL,
                      "worker 3 went on running job co %d s after losing the database "
                      "(lease until %s)",
                      LEASE_S + 10, lease_end);
        /* when: the "time" of that log line, against the lease's end */
        char *start = line;
        while (start > wlog && start[-1] != '\n')
                start--;
        char when[40] = "";
        sscanf(start, "{\"time\":\"%39[^\"]", when);
        const char *p[2] = {when, lease_end};
        char *late = wh_scalar(
            "SELECT round(extract(epoch FROM $1::timestamptz - $2::timestamptz) * 1000)",
            2, p);
        ck_assert_msg(atol(late) <= LEASE_S * 1000,
                      "the run stopped %s ms after its lease ended (%s, lease until %s)",
                      late, when, lease_end);
        free(late);
        free(wlog);
        free(lease_end);
        wh_stop(&wh.workers[3], SIGTERM);
}
END_TEST

int main(void)
{
        pg_testdb_base(); /* fails at once without CM_TEST_PG */
        pg_testdb_owner_pid();
        Suite *s = suite_create("jobs");
        TCase *tc = tcase_create("runner");
        tcase_set_timeout(tc, 120);
        tcase_add_unchecked_fixture(tc, jobs_setup, jobs_teardown);
        tcase_add_test(tc, test_heartbeat_keeps_the_lease);
        tcase_add_test(tc,
                       test_row_taken_over_is_abandoned_and_resumed_after_lease_expiry);
        tcase_add_test(tc, test_attempt_over_max_attempts_applies_job_failed);
        tcase_add_test(tc, test_zke_up_runs_and_fails_for_good);
        tcase_add_test(tc, test_cancel_stops_the_run_within_two_seconds);
        tcase_add_test(tc, test_graceful_stop_hands_the_job_over);
        tcase_add_test(
            tc, test_killed_worker_s_run_stays_open_and_the_job_resumes_after_its_lease);
        tcase_add_test(tc, test_outcome_committed_but_its_reply_lost);
        tcase_add_test(tc, test_cut_off_worker_stops_its_runs_when_leases_run_out);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_VERBOSE);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        pg_testdb_drop_all();
        if (!failed)
                wh_remove_dir(); /* kept for its logs when something failed */
        return failed ? 1 : 0;
}
