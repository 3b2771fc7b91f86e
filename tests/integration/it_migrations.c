/*
 * it_migrations.c - schemas/sql/ applied by cm_migrate against a real PostgreSQL
 * (CM_TEST_PG): order, idempotence, concurrent starts, tamper detection, and the schema's
 * own constraints.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "cm/embedded.h"
#include "cm/migrate.h"
#include "cm/pg.h"
#include "pg_testdb.h"
#include "../check_main.h"

static char dbname[65];
static char *conninfo;
static cm_pg_t *pg;

static void setup(void)
{
        char err[512];
        conninfo = pg_testdb_create(dbname);
        pg = cm_pg_new(conninfo, err, sizeof(err));
        ck_assert_msg(pg != NULL, "%s", err);
        ck_assert_msg(cm_pg_ensure(pg, 10000, err, sizeof(err)) == CM_PG_OK, "%s", err);
}

static void teardown(void)
{
        cm_pg_destroy(pg);
        pg = NULL;
        pg_testdb_drop(dbname);
        free(conninfo);
}

static int sql_file_count(void)
{
        int n = 0;
        for (size_t i = 0; i < cm_embedded_file_count; i++)
                n += !strncmp(cm_embedded_files[i].path, "sql/", 4);
        return n;
}

static void migrate_ok(cm_pg_t *p, int expect_applied)
{
        char err[1024];
        int applied = -1;
        cm_migrate_err_t e = cm_migrate_run(p, &applied, err, sizeof(err));
        ck_assert_msg(e == CM_MIGRATE_OK, "migrate: %d %s", e, err);
        ck_assert_int_eq(applied, expect_applied);
}

/* Runs sql, expects exactly one value, returns it (static buffer). */
static const char *scalar(const char *sql)
{
        static char out[256];
        char err[512];
        PGresult *r;
        ck_assert_msg(cm_pg_exec(pg, sql, &r, err, sizeof(err)) == CM_PG_OK, "%s: %s",
                      sql, err);
        ck_assert_msg(PQntuples(r) == 1, "%s: %d rows", sql, PQntuples(r));
        snprintf(out, sizeof(out), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        return out;
}

/* Runs sql and expects the server to refuse it with sqlstate. */
static void refused(const char *sql, const char *sqlstate)
{
        char err[512];
        cm_pg_err_t e = cm_pg_exec(pg, sql, NULL, err, sizeof(err));
        ck_assert_msg(e == CM_PG_ERR_QUERY, "accepted: %s", sql);
        ck_assert_msg(!strcmp(cm_pg_sqlstate(pg), sqlstate),
                      "%s: SQLSTATE %s, want %s (%s)", sql, cm_pg_sqlstate(pg), sqlstate,
                      err);
        ck_assert(cm_pg_connected(pg));
}

static void accepted(const char *sql)
{
        char err[512];
        ck_assert_msg(cm_pg_exec(pg, sql, NULL, err, sizeof(err)) == CM_PG_OK, "%s: %s",
                      sql, err);
}

START_TEST(test_applies_all_then_nothing)
{
        char q[256];
        int n = sql_file_count();
        ck_assert_int_ge(n, 3);
        migrate_ok(pg, n);
        snprintf(q, sizeof(q), "SELECT count(*) FROM schema_migrations");
        ck_assert_int_eq(atoi(scalar(q)), n);
        /* recorded checksums are those of the embedded files, in version order */
        for (size_t i = 0, v = 0; i < cm_embedded_file_count; i++) {
                const cm_embedded_file_t *f = &cm_embedded_files[i];
                char sum[65];
                if (strncmp(f->path, "sql/", 4))
                        continue;
                cm_migrate_checksum(f->data, f->len, sum);
                snprintf(q, sizeof(q),
                         "SELECT name || ' ' || checksum FROM schema_migrations "
                         "ORDER BY version LIMIT 1 OFFSET %zu",
                         v++);
                char want[160];
                snprintf(want, sizeof(want), "%s %s", f->path + 4, sum);
                ck_assert_str_eq(scalar(q), want);
        }
        migrate_ok(pg, 0);
        ck_assert_int_eq(atoi(scalar("SELECT count(*) FROM schema_migrations")), n);
}
END_TEST

struct racer {
        pthread_barrier_t *barrier;
        int applied;
        cm_migrate_err_t err;
        char errstr[512];
};

static void *race(void *arg)
{
        struct racer *r = arg;
        cm_pg_t *p = cm_pg_new(conninfo, r->errstr, sizeof(r->errstr));
        r->err = CM_MIGRATE_ERR_CONN;
        if (p && cm_pg_ensure(p, 10000, r->errstr, sizeof(r->errstr)) == CM_PG_OK) {
                pthread_barrier_wait(r->barrier);
                r->err = cm_migrate_run(p, &r->applied, r->errstr, sizeof(r->errstr));
        } else {
                pthread_barrier_wait(r->barrier);
        }
        cm_pg_destroy(p);
        return NULL;
}

START_TEST(test_concurrent_starts_apply_once)
{
        enum { N = 4 };
        pthread_t t[N];
        struct racer r[N];
        pthread_barrier_t b;
        int total = 0;

        pthread_barrier_init(&b, NULL, N);
        for (int i = 0; i < N; i++) {
                memset(&r[i], 0, sizeof(r[i]));
                r[i].barrier = &b;
                pthread_create(&t[i], NULL, race, &r[i]);
        }
        for (int i = 0; i < N; i++)
                pthread_join(t[i], NULL);
        pthread_barrier_destroy(&b);
        for (int i = 0; i < N; i++) {
                ck_assert_msg(r[i].err == CM_MIGRATE_OK, "racer %d: %s", i, r[i].errstr);
                total += r[i].applied;
        }
        ck_assert_int_eq(total, sql_file_count());
        ck_assert_int_eq(atoi(scalar("SELECT count(*) FROM schema_migrations")),
                         sql_file_count());
}
END_TEST

START_TEST(test_every_table_and_view_exists)
{
        static const char *const cols[][2] = {
            {"cluster_state", "name"},
            {"cluster_state", "state"},
            {"cluster_state", "seq"},
            {"cluster_state", "version"},
            {"cluster_state", "spec"},
            {"cluster_state", "ssh_key_sealed"},
            {"cluster_state", "kubeconfig_sealed"},
            {"cluster_state", "certificates"},
            {"cluster_state", "certificate_keys_sealed"},
            {"cluster_state", "host_keys"},
            {"cluster_state", "imported"},
            {"cluster_state", "last_error"},
            {"cluster_state", "created_at"},
            {"cluster_state", "updated_at"},
            {"applied_commands", "command_id"},
            {"applied_commands", "cluster"},
            {"applied_commands", "result"},
            {"applied_commands", "message"},
            {"applied_commands", "at"},
            {"jobs", "id"},
            {"jobs", "cluster"},
            {"jobs", "kind"},
            {"jobs", "state"},
            {"jobs", "attempt"},
            {"jobs", "owner"},
            {"jobs", "lease_until"},
            {"jobs", "cancel_requested"},
            {"jobs", "outcome"},
            {"jobs", "error"},
            {"jobs", "payload"},
            {"jobs", "created_at"},
            {"jobs", "updated_at"},
            {"outbox", "cluster"},
            {"outbox", "seq"},
            {"outbox", "event"},
            {"outbox", "created_at"},
            {"outbox", "sent_at"},
            {"clusters", "name"},
            {"clusters", "state"},
            {"clusters", "ready"},
            {"clusters", "seq"},
            {"clusters", "spec"},
            {"clusters", "node_count"},
            {"clusters", "last_error"},
            {"clusters", "created_at"},
            {"clusters", "updated_at"},
            {"ready_clusters", "name"},
            {"ready_clusters", "ready"},
            {"unready_clusters", "name"},
            {"unready_clusters", "state"},
            {"cluster_events", "cluster"},
            {"cluster_events", "seq"},
            {"cluster_events", "event_id"},
            {"cluster_events", "type"},
            {"cluster_events", "from_state"},
            {"cluster_events", "to_state"},
            {"cluster_events", "command_id"},
            {"cluster_events", "job_id"},
            {"cluster_events", "actor"},
            {"cluster_events", "error"},
            {"cluster_events", "at"},
            {"cluster_events", "payload"},
            {"command_results", "command_id"},
            {"command_results", "cluster"},
            {"command_results", "status"},
            {"command_results", "message"},
            {"command_results", "updated_at"},
            {"projector_offsets", "topic"},
            {"projector_offsets", "partition"},
            {"projector_offsets", "next_offset"},
            {"api_tokens", "token_sha256"},
            {"api_tokens", "name"},
            {"api_tokens", "role"},
            {"api_tokens", "created_at"},
            {"api_tokens", "revoked_at"},
        };
        static const char *const keys[][2] = {
            /* table, primary key columns in order */
            {"cluster_state", "name"},
            {"applied_commands", "command_id"},
            {"jobs", "id"},
            {"outbox", "cluster,seq"},
            {"clusters", "name"},
            {"cluster_events", "cluster,seq"},
            {"command_results", "command_id"},
            {"projector_offsets", "topic,partition"},
            {"api_tokens", "token_sha256"},
        };
        char q[512];

        migrate_ok(pg, sql_file_count());
        for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
                snprintf(q, sizeof(q),
                         "SELECT count(*) FROM information_schema.columns WHERE "
                         "table_schema = 'public' AND table_name = '%s' AND column_name "
                         "= '%s'",
                         cols[i][0], cols[i][1]);
                ck_assert_msg(!strcmp(scalar(q), "1"), "missing column %s.%s", cols[i][0],
                              cols[i][1]);
        }
        ck_assert_str_eq(
            scalar("SELECT string_agg(table_name, ',' ORDER BY table_name) FROM "
                   "information_schema.views WHERE table_schema = 'public'"),
            "ready_clusters,unready_clusters");
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                snprintf(
                    q, sizeof(q),
                    "SELECT string_agg(k.column_name, ',' ORDER BY k.ordinal_position) "
                    "FROM information_schema.table_constraints c JOIN "
                    "information_schema.key_column_usage k USING (constraint_schema, "
                    "constraint_name) WHERE c.table_name = '%s' AND c.constraint_type = "
                    "'PRIMARY KEY'",
                    keys[i][0]);
                ck_assert_msg(!strcmp(scalar(q), keys[i][1]), "primary key of %s is (%s)",
                              keys[i][0], scalar(q));
        }
        /* runnable jobs are claimed through a partial index of unfinished jobs */
        ck_assert_str_eq(
            scalar("SELECT indexdef FROM pg_indexes WHERE indexname = "
                   "'jobs_claimable'"),
            "CREATE INDEX jobs_claimable ON public.jobs USING btree (created_at) "
            "WHERE (state = ANY (ARRAY['queued'::text, 'running'::text]))");
        ck_assert_str_eq(
            scalar("SELECT count(*) FROM pg_indexes WHERE indexname = "
                   "'outbox_unsent' AND indexdef LIKE '%WHERE (sent_at IS NULL)'"),
            "1");
}
END_TEST

START_TEST(test_constraints_reject_invalid_values)
{
        migrate_ok(pg, sql_file_count());
        accepted(
            "INSERT INTO cluster_state (name, state, spec) VALUES ('prod', 'Creating', "
            "'{\"name\":\"prod\"}')");
        refused(
            "INSERT INTO cluster_state (name, state, spec) VALUES ('dev', 'Bogus', '{}')",
            "23514");
        refused("UPDATE cluster_state SET state = 'running' WHERE name = 'prod'",
                "23514");
        refused("INSERT INTO cluster_state (name, state, spec) VALUES ('Not_DNS', "
                "'Creating', "
                "'{}')",
                "23514");
        refused("UPDATE cluster_state SET certificates = '{\"ca\": \"-----BEGIN PRIVATE "
                "KEY-----\"}' WHERE name = 'prod'",
                "23514");
        accepted("INSERT INTO api_tokens (token_sha256, name, role) VALUES "
                 "(sha256('t1'), 'ops', 'admin')");
        refused("INSERT INTO api_tokens (token_sha256, name, role) VALUES "
                "(sha256('t2'), 'eve', 'root')",
                "23514");
        refused("INSERT INTO api_tokens (token_sha256, name, role) VALUES "
                "('\\x00', 'short', 'user')",
                "23514");
        refused("INSERT INTO api_tokens (token_sha256, name, role) VALUES "
                "(sha256('t3'), 'ops', 'user')",
                "23505");
        refused("INSERT INTO applied_commands (command_id, cluster, result) VALUES "
                "('c1', 'prod', 'maybe')",
                "23514");
        refused("INSERT INTO command_results (command_id, cluster, status) VALUES "
                "('c1', 'prod', 'done')",
                "23514");
        accepted("INSERT INTO jobs (id, cluster, kind) VALUES "
                 "('00000000-0000-0000-0000-000000000001', 'prod', 'zke-up')");
        refused("INSERT INTO jobs (id, cluster, kind, state) VALUES "
                "('00000000-0000-0000-0000-000000000002', 'prod', 'connect', 'paused')",
                "23514");
        refused("INSERT INTO jobs (id, cluster, kind) VALUES "
                "('00000000-0000-0000-0000-000000000003', 'prod', 'format-disk')",
                "23514");
        /* one unfinished job per cluster */
        refused("INSERT INTO jobs (id, cluster, kind) VALUES "
                "('00000000-0000-0000-0000-000000000004', 'prod', 'zke-remove')",
                "23505");
        /* a running job has an owner and a lease */
        refused("UPDATE jobs SET state = 'running'", "23514");
        accepted("UPDATE jobs SET state = 'running', owner = 'w1', lease_until = now()");
        /* job_runs: one row per claim, keyed by (job, run); an end names how */
        accepted("INSERT INTO job_runs (job_id, run, attempt, owner) VALUES "
                 "('00000000-0000-0000-0000-000000000001', 1, 1, 'w1')");
        refused("INSERT INTO job_runs (job_id, run, attempt, owner) VALUES "
                "('00000000-0000-0000-0000-000000000001', 1, 2, 'w2')",
                "23505");
        refused("INSERT INTO job_runs (job_id, run, attempt, owner) VALUES "
                "('00000000-0000-0000-0000-000000000009', 1, 1, 'w1')",
                "23503");
        refused("UPDATE job_runs SET ended_at = now()", "23514");
        refused("UPDATE job_runs SET ended_at = now(), how = 'vanished'", "23514");
        accepted("UPDATE job_runs SET ended_at = now(), how = 'taken-over'");
        accepted("INSERT INTO job_runs (job_id, run, attempt, owner) VALUES "
                 "('00000000-0000-0000-0000-000000000001', 2, 1, 'w2')");
        ck_assert_str_eq(scalar("SELECT string_agg(run || ' ' || attempt || ' ' || owner "
                                "|| ' ' || coalesce(how, 'open'), '; ' ORDER BY run) "
                                "FROM job_runs"),
                         "1 1 w1 taken-over; 2 1 w2 open");
        refused("INSERT INTO jobs (id, cluster, kind) VALUES "
                "('00000000-0000-0000-0000-000000000005', 'nope', 'zke-up')",
                "23503");
        /* the read model's ready flag cannot contradict its state */
        refused("INSERT INTO clusters (name, state, ready, seq, spec, created_at, "
                "updated_at) "
                "VALUES ('prod', 'Creating', true, 1, '{}', now(), now())",
                "23514");
        refused(
            "INSERT INTO cluster_events (cluster, seq, event_id, type, to_state, actor, "
            "at) VALUES ('prod', 1, '00000000-0000-0000-0000-000000000001', 'Created', "
            "'Started', 'ops', now())",
            "23514");
        refused("INSERT INTO outbox (cluster, seq, event) VALUES ('prod', 0, '\\x00')",
                "23514");
        /* a job's runs go with it */
        accepted("DELETE FROM jobs");
        ck_assert_str_eq(scalar("SELECT count(*) FROM job_runs"), "0");
}
END_TEST

START_TEST(test_views_split_by_state)
{
        static const char *const states[] = {"Creating",  "Connecting",  "Updating",
                                             "Canceling", "Unavailable", "Deleting",
                                             "Running",   "Unreachable", "Deleted"};
        char q[512];
        migrate_ok(pg, sql_file_count());
        for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
                int ready =
                    !strcmp(states[i], "Running") || !strcmp(states[i], "Unreachable");
                snprintf(
                    q, sizeof(q),
                    "INSERT INTO clusters (name, state, ready, seq, spec, node_count, "
                    "created_at, updated_at) VALUES ('c%zu', '%s', %s, 1, '{}', 3, "
                    "now(), "
                    "now())",
                    i, states[i], ready ? "true" : "false");
                accepted(q);
        }
        ck_assert_str_eq(scalar("SELECT string_agg(state, ',' ORDER BY state) FROM "
                                "ready_clusters"),
                         "Running,Unreachable");
        ck_assert_str_eq(scalar("SELECT string_agg(state, ',' ORDER BY state) FROM "
                                "unready_clusters"),
                         "Canceling,Connecting,Creating,Deleting,Unavailable,Updating");
        ck_assert_str_eq(
            scalar("SELECT count(*) FROM ready_clusters r JOIN unready_clusters "
                   "u USING (name)"),
            "0");
        ck_assert_str_eq(scalar("SELECT bool_and(ready) FROM ready_clusters"), "t");
        /* a state change moves a row between the views */
        accepted("UPDATE clusters SET state = 'Unavailable', ready = false WHERE "
                 "state = 'Running'");
        ck_assert_str_eq(scalar("SELECT string_agg(state, ',') FROM ready_clusters"),
                         "Unreachable");
}
END_TEST

START_TEST(test_tampered_checksum_names_the_file)
{
        char err[1024];
        int applied = -1;
        cm_migrate_err_t e;

        migrate_ok(pg, sql_file_count());
        accepted(
            "UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE version = 2");
        e = cm_migrate_run(pg, &applied, err, sizeof(err));
        ck_assert_int_eq(e, CM_MIGRATE_ERR_CHECKSUM);
        ck_assert_int_eq(applied, 0);
        ck_assert_msg(strstr(err, "sql/002_read_model.sql") != NULL, "%s", err);
        ck_assert_msg(strstr(err, "changed after it was applied") != NULL, "%s", err);
        /* the lock was released: another connection can still migrate (and fails the
         * same) */
        {
                char err2[1024];
                cm_pg_t *p2 = cm_pg_new(conninfo, err2, sizeof(err2));
                ck_assert(cm_pg_ensure(p2, 5000, err2, sizeof(err2)) == CM_PG_OK);
                ck_assert_int_eq(cm_migrate_run(p2, NULL, err2, sizeof(err2)),
                                 CM_MIGRATE_ERR_CHECKSUM);
                cm_pg_destroy(p2);
        }
}
END_TEST

#define FILE_OF(p, s)                                                                    \
        {                                                                                \
                p, (const unsigned char *)(s), sizeof(s) - 1                             \
        }

START_TEST(test_failed_migration_rolls_back_and_names_file)
{
        const cm_embedded_file_t files[] = {
            FILE_OF("sql/001_one.sql", "CREATE TABLE t1 (a int);"),
            FILE_OF("sql/002_two.sql", "CREATE TABLE t2 (a int);\n"
                                       "INSERT INTO no_such_table VALUES (1);"),
            FILE_OF("sql/003_three.sql", "CREATE TABLE t3 (a int);"),
        };
        char err[1024];
        int applied = -1;
        cm_migrate_err_t e =
            cm_migrate_run_files(pg, files, 3, &applied, err, sizeof(err));
        ck_assert_int_eq(e, CM_MIGRATE_ERR_SQL);
        ck_assert_int_eq(applied, 1);
        ck_assert_msg(strstr(err, "sql/002_two.sql") && strstr(err, "no_such_table"),
                      "%s", err);
        ck_assert_str_eq(scalar("SELECT string_agg(version::text, ',') FROM "
                                "schema_migrations"),
                         "1");
        ck_assert_str_eq(scalar("SELECT count(*) FROM pg_tables WHERE tablename IN "
                                "('t1', 't2', 't3')"),
                         "1");
        /* fixed file: the rest applies */
        const cm_embedded_file_t fixed[] = {
            files[0],
            FILE_OF("sql/002_two.sql", "CREATE TABLE t2 (a int);"),
            files[2],
        };
        ck_assert_int_eq(cm_migrate_run_files(pg, fixed, 3, &applied, err, sizeof(err)),
                         CM_MIGRATE_OK);
        ck_assert_int_eq(applied, 2);
}
END_TEST

START_TEST(test_bad_file_names_and_order)
{
        const cm_embedded_file_t bad_name[] = {FILE_OF("sql/initial.sql", "SELECT 1;")};
        const cm_embedded_file_t unordered[] = {
            FILE_OF("sql/002_b.sql", "SELECT 1;"),
            FILE_OF("sql/002_c.sql", "SELECT 1;"),
        };
        char err[512];
        ck_assert_int_eq(cm_migrate_run_files(pg, bad_name, 1, NULL, err, sizeof(err)),
                         CM_MIGRATE_ERR_FILE);
        ck_assert_msg(strstr(err, "sql/initial.sql") != NULL, "%s", err);
        ck_assert_int_eq(cm_migrate_run_files(pg, unordered, 2, NULL, err, sizeof(err)),
                         CM_MIGRATE_ERR_FILE);
        ck_assert_msg(strstr(err, "sql/002_c.sql") && strstr(err, "sql/002_b.sql"), "%s",
                      err);
}
END_TEST

START_TEST(test_newer_database_is_accepted_but_missing_one_is_not)
{
        char err[1024];
        migrate_ok(pg, sql_file_count());
        accepted("INSERT INTO schema_migrations (version, name, checksum) VALUES "
                 "(999, '999_future.sql', 'x')");
        migrate_ok(pg, 0);
        accepted("DELETE FROM schema_migrations WHERE version = 999");
        accepted("UPDATE schema_migrations SET version = 0 WHERE version = 1");
        ck_assert_int_eq(cm_migrate_run(pg, NULL, err, sizeof(err)),
                         CM_MIGRATE_ERR_CHECKSUM);
        ck_assert_msg(strstr(err, "001_write_model.sql") &&
                          strstr(err, "does not have it"),
                      "%s", err);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("migrations");
        TCase *tc = tcase_create("pg");
        int failed;

        pg_testdb_base(); /* exits with a clear message when CM_TEST_PG is unset */
        pg_testdb_owner = getpid();
        srandom((unsigned)getpid());
        tcase_set_timeout(tc, 120);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_applies_all_then_nothing);
        tcase_add_test(tc, test_concurrent_starts_apply_once);
        tcase_add_test(tc, test_every_table_and_view_exists);
        tcase_add_test(tc, test_constraints_reject_invalid_values);
        tcase_add_test(tc, test_views_split_by_state);
        tcase_add_test(tc, test_tampered_checksum_names_the_file);
        tcase_add_test(tc, test_failed_migration_rolls_back_and_names_file);
        tcase_add_test(tc, test_bad_file_names_and_order);
        tcase_add_test(tc, test_newer_database_is_accepted_but_missing_one_is_not);
        suite_add_tcase(s, tc);
        failed = cm_check_run(s);
        pg_testdb_drop_all();
        return failed ? 1 : 0;
}
