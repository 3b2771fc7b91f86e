/*
 * it_projector - the real cm-projector against its own cm-devbroker and a fresh database:
 * events produced onto cm.events (cm_cluster_event_encode, key = cluster name) end up in
 * the read model exactly once.
 *   lifecycle: Create → Running → Unreachable → Running → Delete → Deleted moves the
 *     cluster from the unready view to the ready view and out of both; history 1..n;
 *     command results applied / rejected (conflict, invalid) over cm-api's pending row;
 *     last_error set and cleared; a re-created name continues its seq; the same event
 *     twice is ignored; undecodable messages and an event the read model refuses are
 *     skipped and what follows them is applied; a gap is applied and counted, and the
 * late event fills the history. restarts: SIGTERM then start resumes from the stored
 * offsets (nothing reapplied); a replay of every partition after resetting the offsets
 * changes nothing; a lost database makes /readyz fail and the batch is applied once it is
 * back. kill -9 in the middle of a stream, then a restart: exactly the right rows. Needs
 * CM_TEST_PG (fails without it) and the built binaries (CM_BINARY_DIR).
 */
#include "projector_stack.h"

#include "cm/projector.h"
#include "cm/spec.h"
#include "../check_main.h"

#define T0_MS 1767225600000LL /* 2026-01-01T00:00:00Z */
#define WAIT  30000

static stack_t_ st;

static void setup(void)
{
        stack_start(&st);
}

static void teardown(void)
{
        stack_stop(&st);
}

static cm_spec_t *make_spec(const char *name, int nodes)
{
        cm_spec_t *s = calloc(1, sizeof(*s));
        ck_assert_int_eq(cm_spec_init_defaults(s), 0);
        s->name = strdup(name);
        s->ssh_user = strdup("root");
        s->manager_address = strdup("10.9.9.9");
        s->cluster_domain = strdup("cluster.local");
        s->nodes = calloc((size_t)nodes, sizeof(cm_node_t));
        s->node_count = (size_t)nodes;
        for (int i = 0; i < nodes; i++) {
                char n[32], a[32];
                snprintf(n, sizeof(n), "node-%d", i);
                snprintf(a, sizeof(a), "10.0.0.%d", i + 1);
                s->nodes[i].name = strdup(n);
                s->nodes[i].address = strdup(a);
                s->nodes[i].roles = calloc(2, sizeof(char *));
                s->nodes[i].roles[0] = strdup(i ? "worker" : "controlplane");
                s->nodes[i].role_count = 1;
                if (!i) {
                        s->nodes[i].roles[1] = strdup("etcd");
                        s->nodes[i].role_count = 2;
                }
        }
        return s;
}

static unsigned name_hash(const char *s)
{
        unsigned h = 5381;
        while (*s)
                h = h * 33 + (unsigned char)*s++;
        return h;
}

/* One encoded event; the same (cluster, seq) always gets the same event id and bytes. */
static unsigned char *event_bytes(const char *cluster, int64_t seq, const char *type,
                                  const char *from, const char *to, const char *cmd,
                                  const char *error, int nodes, size_t *len)
{
        cm_cluster_event_t ev = {0};
        unsigned char *buf = NULL;
        char id[64], err[512];
        snprintf(id, sizeof(id), "%08x-0000-4000-8000-%012llx", name_hash(cluster),
                 (unsigned long long)seq);
        ev.cluster = strdup(cluster);
        ev.seq = seq;
        ev.event_id = strdup(id);
        ev.type = strdup(type);
        ev.from_state = from ? strdup(from) : NULL;
        ev.to_state = to ? strdup(to) : NULL;
        ev.command_id = cmd ? strdup(cmd) : NULL;
        if (!cmd && seq > 0)
                ev.job_id = strdup("6f1c2a4e-0000-4000-8000-000000000001");
        ev.at = T0_MS + seq * 1000;
        ev.actor.name = strdup(cmd ? "alice" : "worker-1");
        ev.actor.role = strdup(cmd ? "admin" : "system");
        ev.spec = nodes ? make_spec(cluster, nodes) : NULL;
        ev.error = error ? strdup(error) : NULL;
        ck_assert_msg(cm_cluster_event_encode(&ev, &buf, len, err, sizeof(err)) == 0,
                      "%s", err);
        cm_cluster_event_destroy(&ev);
        return buf;
}

static void emit(const char *cluster, int64_t seq, const char *type, const char *from,
                 const char *to, const char *cmd, const char *error, int nodes)
{
        size_t len;
        unsigned char *b =
            event_bytes(cluster, seq, type, from, to, cmd, error, nodes, &len);
        stack_produce(&st, cluster, b, len);
        free(b);
}

static void wait_ready(int want_status, const char *body_part)
{
        long long end = stack_now_ms() + WAIT;
        int status = 0;
        const char *body = "";
        while (stack_now_ms() < end) {
                body = stack_http_get(&st, "/readyz", &status);
                if (status == want_status && (!body_part || strstr(body, body_part)))
                        return;
                usleep(200 * 1000);
        }
        stack_tail_projector(&st);
        ck_abort_msg("/readyz: %d %s, want %d with \"%s\"", status, body, want_status,
                     body_part ? body_part : "");
}

#define CLUSTER_ROW(name)                                                                \
        "SELECT state || ',' || ready || ',' || seq || ',' || node_count || ',' || "     \
        "coalesce(last_error, '-') FROM clusters WHERE name = '" name "'"
#define VIEWS(name)                                                                      \
        "SELECT (SELECT count(*) FROM unready_clusters WHERE name = '" name "') || ',' " \
        "|| (SELECT count(*) FROM ready_clusters WHERE name = '" name "')"
#define RESULT(id)                                                                       \
        "SELECT status || ',' || coalesce(code, '-') || ',' || coalesce(message, '-') "  \
        "FROM command_results WHERE command_id = '" id "'"
#define HISTORY(name)                                                                    \
        "SELECT string_agg(seq::text, ',' ORDER BY seq) FROM cluster_events WHERE "      \
        "cluster = '" name "'"

START_TEST(test_lifecycle)
{
        wait_ready(200, NULL);
        /* cm-api inserts pending before producing */
        stack_exec(&st,
                   "INSERT INTO command_results (command_id, cluster, status) VALUES "
                   "('cmd-create', 'prod', 'pending'), ('cmd-late', 'prod', 'pending')");

        emit("prod", 1, "CreateRequested", NULL, "Creating", "cmd-create", NULL, 3);
        stack_wait_sql(&st, CLUSTER_ROW("prod"), "Creating,false,1,3,-", WAIT);
        ck_assert_str_eq(stack_sql(&st, VIEWS("prod")), "1,0");
        ck_assert_str_eq(stack_sql(&st, RESULT("cmd-create")), "applied,-,-");
        ck_assert_str_eq(stack_sql(&st, "SELECT spec->>'clusterDomain' || ',' || "
                                        "(spec ? 'sshKey') || ',' || "
                                        "jsonb_array_length(spec->'nodes') FROM clusters "
                                        "WHERE name = 'prod'"),
                         "cluster.local,false,3");
        ck_assert_str_eq(stack_sql(&st,
                                   "SELECT created_at = updated_at AND created_at = "
                                   "'2026-01-01T00:00:01Z'::timestamptz FROM clusters "
                                   "WHERE name = 'prod'"),
                         "t");

        emit("prod", 2, "JobSucceeded", "Creating", "Running", NULL, NULL, 3);
        stack_wait_sql(&st, CLUSTER_ROW("prod"), "Running,true,2,3,-", WAIT);
        ck_assert_str_eq(stack_sql(&st, VIEWS("prod")), "0,1");
        emit("prod", 3, "ProbeFailed", "Running", "Unreachable", NULL, NULL, 0);
        stack_wait_sql(&st, CLUSTER_ROW("prod"), "Unreachable,true,3,3,-", WAIT);
        ck_assert_str_eq(stack_sql(&st, VIEWS("prod")), "0,1");
        emit("prod", 4, "ProbeSucceeded", "Unreachable", "Running", NULL, NULL, 0);

        /* the same events again, garbage, a truncated event, an unknown state */
        emit("prod", 4, "ProbeSucceeded", "Unreachable", "Running", NULL, NULL, 0);
        emit("prod", 2, "JobSucceeded", "Creating", "Running", NULL, NULL, 3);
        stack_produce(&st, "prod", "not avro at all", 15);
        size_t len;
        unsigned char *b = event_bytes("prod", 5, "DeleteRequested", "Running",
                                       "Deleting", "cmd-delete", NULL, 3, &len);
        stack_produce(&st, "prod", b, len / 2);
        emit("prod", 5, "DeleteRequested", "Running", "Bogus", "cmd-delete", NULL, 3);
        /* refused by the read model: not a DNS-1123 name */
        emit("Bad_Name", 1, "CreateRequested", NULL, "Creating", "cmd-bad-name", NULL, 1);

        stack_produce(&st, "prod", b, len);
        free(b);
        stack_wait_sql(&st, CLUSTER_ROW("prod"), "Deleting,false,5,3,-", WAIT);
        ck_assert_str_eq(stack_sql(&st, VIEWS("prod")), "1,0");
        emit("prod", 6, "JobSucceeded", "Deleting", "Deleted", NULL, NULL, 3);
        stack_wait_sql(&st, CLUSTER_ROW("prod"), "Deleted,false,6,3,-", WAIT);
        ck_assert_str_eq(stack_sql(&st, VIEWS("prod")), "0,0");
        ck_assert_str_eq(stack_sql(&st, HISTORY("prod")), "1,2,3,4,5,6");
        ck_assert_str_eq(stack_sql(&st, "SELECT string_agg(type, ',' ORDER BY seq) FROM "
                                        "cluster_events WHERE cluster = 'prod'"),
                         "CreateRequested,JobSucceeded,ProbeFailed,ProbeSucceeded,"
                         "DeleteRequested,JobSucceeded");
        ck_assert_str_eq(stack_sql(&st,
                                   "SELECT payload->>'toState' || ',' || "
                                   "(payload->>'at') || ',' || (payload->>'commandId') "
                                   "|| ',' || (payload->'spec'->>'name') || ',' || "
                                   "actor || ',' || actor_role FROM cluster_events "
                                   "WHERE cluster = 'prod' AND seq = 5"),
                         "Deleting,2026-01-01T00:00:05.000Z,cmd-delete,prod,alice,admin");
        ck_assert_str_eq(stack_sql(&st, RESULT("cmd-delete")), "applied,-,-");
        ck_assert_str_eq(stack_sql(&st, "SELECT count(*) FROM clusters WHERE name = "
                                        "'Bad_Name'"),
                         "0");

        /* rejections: seq 0, never in the history */
        emit("prod", 0, "CommandRejected", "Deleted", NULL, "cmd-late",
             "cluster \"prod\" doesn't exist", 0);
        emit("prod", 0, "CommandInvalid", NULL, NULL, "cmd-invalid",
             "nodes[0].address: \"\" is empty; sshUser: \"\" is empty", 0);
        emit("prod", 0, "CommandRejected", "Deleted", NULL, "cmd-late",
             "cluster \"prod\" doesn't exist", 0);
        stack_wait_sql(
            &st, RESULT("cmd-invalid"),
            "rejected,invalid,nodes[0].address: \"\" is empty; sshUser: \"\" is "
            "empty",
            WAIT);
        ck_assert_str_eq(stack_sql(&st, RESULT("cmd-late")),
                         "rejected,conflict,cluster \"prod\" doesn't exist");

        /* a re-created name continues its seq and starts created_at again */
        emit("prod", 7, "CreateRequested", "Deleted", "Creating", "cmd-again", NULL, 2);
        stack_wait_sql(&st, CLUSTER_ROW("prod"), "Creating,false,7,2,-", WAIT);
        ck_assert_str_eq(stack_sql(&st, "SELECT created_at = '2026-01-01T00:00:07Z' FROM "
                                        "clusters WHERE name = 'prod'"),
                         "t");

        /* last_error: set by a failure, kept by an update, cleared when Running */
        emit("edge", 1, "CreateRequested", NULL, "Creating", "cmd-e1", NULL, 3);
        emit("edge", 2, "JobFailed", "Creating", "Unavailable", NULL,
             "zke up: node-1: exit 1", 0);
        stack_wait_sql(&st, CLUSTER_ROW("edge"),
                       "Unavailable,false,2,3,zke up: node-1: exit 1", WAIT);
        emit("edge", 3, "UpdateRequested", "Unavailable", "Updating", "cmd-e3", NULL, 4);
        stack_wait_sql(&st, CLUSTER_ROW("edge"),
                       "Updating,false,3,4,zke up: node-1: exit 1", WAIT);
        emit("edge", 4, "JobSucceeded", "Updating", "Running", NULL, NULL, 4);
        stack_wait_sql(&st, CLUSTER_ROW("edge"), "Running,true,4,4,-", WAIT);

        /* a gap (5 lost upstream): applied and counted; 5 arriving late fills the history
         */
        emit("edge", 6, "ProbeFailed", "Running", "Unreachable", NULL, NULL, 0);
        stack_wait_sql(&st, CLUSTER_ROW("edge"), "Unreachable,true,6,4,-", WAIT);
        ck_assert_str_eq(stack_sql(&st, HISTORY("edge")), "1,2,3,4,6");
        emit("edge", 5, "ProbeFailed", "Running", "Unreachable", NULL, NULL, 0);
        stack_wait_sql(&st, HISTORY("edge"), "1,2,3,4,5,6", WAIT);
        ck_assert_str_eq(stack_sql(&st, CLUSTER_ROW("edge")), "Unreachable,true,6,4,-");

        /* prod 1-7, 2 rejections, edge 1-4 and 6 */
        stack_wait_metric(&st, "cm_projector_events_projected_total", 14, WAIT);
        stack_wait_metric(&st, "cm_projector_events_duplicate_total", 3, WAIT);
        stack_wait_metric(&st, "cm_projector_events_undecodable_total", 3, WAIT);
        stack_wait_metric(&st, "cm_projector_events_invalid_total", 1, WAIT);
        stack_wait_metric(&st, "cm_projector_sequence_gaps_total", 1, WAIT);
        stack_wait_metric(&st, "cm_projector_events_late_total", 1, WAIT);
        stack_wait_metric(&st, "cm_projector_lag_messages", 0, WAIT);
        /* every message, the skipped ones too, is behind the stored offsets */
        ck_assert_str_eq(stack_sql(&st, "SELECT sum(next_offset) FROM projector_offsets"),
                         "22");
}
END_TEST

/* Five clusters, seq 1..4 each: Creating, Running, Unreachable, Running. */
static void emit_four(const char *prefix, int clusters)
{
        for (int c = 0; c < clusters; c++) {
                char name[32];
                snprintf(name, sizeof(name), "%s-%d", prefix, c);
                emit(name, 1, "CreateRequested", NULL, "Creating", NULL, NULL, 3);
                emit(name, 2, "JobSucceeded", "Creating", "Running", NULL, NULL, 3);
                emit(name, 3, "ProbeFailed", "Running", "Unreachable", NULL, NULL, 0);
                emit(name, 4, "ProbeSucceeded", "Unreachable", "Running", NULL, NULL, 0);
        }
}

START_TEST(test_restarts)
{
        char sql[256];
        wait_ready(200, NULL);
        emit_four("r", 5);
        stack_wait_sql(&st, "SELECT count(*) FROM cluster_events", "20", WAIT);
        stack_wait_metric(&st, "cm_projector_events_projected_total", 20, WAIT);
        ck_assert_int_eq(stack_stop_projector(&st, SIGTERM), 0);
        ck_assert_str_eq(stack_sql(&st, "SELECT sum(next_offset) FROM projector_offsets"),
                         "20");

        /* restart: resumes from the stored offsets */
        stack_start_projector(&st);
        emit("r-0", 5, "DeleteRequested", "Running", "Deleting", "cmd-r0", NULL, 3);
        stack_wait_sql(&st, CLUSTER_ROW("r-0"), "Deleting,false,5,3,-", WAIT);
        stack_wait_metric(&st, "cm_projector_events_projected_total", 1, WAIT);
        ck_assert_int_eq(stack_metric(&st, "cm_projector_events_duplicate_total"), 0);
        ck_assert_int_eq(stack_stop_projector(&st, SIGTERM), 0);

        /* reset: every partition replayed from the beginning, nothing applied twice */
        stack_exec(&st, "DELETE FROM projector_offsets");
        stack_start_projector(&st);
        emit("r-1", 5, "DeleteRequested", "Running", "Deleting", "cmd-r1", NULL, 3);
        stack_wait_sql(&st, CLUSTER_ROW("r-1"), "Deleting,false,5,3,-", WAIT);
        stack_wait_metric(&st, "cm_projector_events_duplicate_total", 21, WAIT);
        ck_assert_int_eq(stack_metric(&st, "cm_projector_events_projected_total"), 1);
        ck_assert_str_eq(stack_sql(&st, "SELECT count(*) || ',' || count(DISTINCT "
                                        "(cluster, seq)) FROM cluster_events"),
                         "22,22");
        stack_wait_sql(&st, "SELECT sum(next_offset) FROM projector_offsets", "22", WAIT);

        /* the database goes away: not ready; back: the waiting batch is applied once */
        wait_ready(200, NULL);
        snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS false",
                 st.dbname);
        pg_testdb_admin_exec(sql);
        snprintf(sql, sizeof(sql),
                 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                 "'%s'",
                 st.dbname);
        pg_testdb_admin_exec(sql);
        emit("r-2", 5, "DeleteRequested", "Running", "Deleting", "cmd-r2", NULL, 3);
        wait_ready(503, "database lost, retrying");
        snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS true", st.dbname);
        pg_testdb_admin_exec(sql);
        PQreset(st.db);
        ck_assert_msg(PQstatus(st.db) == CONNECTION_OK, "%s", PQerrorMessage(st.db));
        stack_wait_sql(&st, CLUSTER_ROW("r-2"), "Deleting,false,5,3,-", WAIT);
        wait_ready(200, NULL);
        ck_assert_int_gt(stack_metric(&st, "cm_projector_batch_retries_total"), 0);
        ck_assert_int_eq(stack_metric(&st, "cm_projector_events_projected_total"), 2);
        ck_assert_str_eq(stack_sql(&st, "SELECT count(*) FROM cluster_events"), "23");
        ck_assert_str_eq(stack_sql(&st, RESULT("cmd-r2")), "applied,-,-");
}
END_TEST

/* seq 1 Creating, 2 Running, then Unreachable (odd) and Running (even). */
static void produce_range(int clusters, int from, int to)
{
        char err[512];
        for (int seq = from; seq <= to; seq++)
                for (int c = 0; c < clusters; c++) {
                        char name[32];
                        size_t len;
                        snprintf(name, sizeof(name), "k-%d", c);
                        unsigned char *b =
                            seq == 1   ? event_bytes(name, 1, "CreateRequested", NULL,
                                                     "Creating", NULL, NULL, 3, &len)
                            : seq == 2 ? event_bytes(name, 2, "JobSucceeded", "Creating",
                                                     "Running", NULL, NULL, 3, &len)
                            : seq % 2
                                ? event_bytes(name, seq, "ProbeFailed", "Running",
                                              "Unreachable", NULL, NULL, 0, &len)
                                : event_bytes(name, seq, "ProbeSucceeded", "Unreachable",
                                              "Running", NULL, NULL, 0, &len);
                        ck_assert_msg(cm_kafka_produce(st.producer, STACK_TOPIC, name,
                                                       strlen(name), b, len, NULL, 0,
                                                       NULL, err,
                                                       sizeof(err)) == CM_KAFKA_OK,
                                      "%s", err);
                        free(b);
                }
        ck_assert_msg(cm_kafka_producer_flush(st.producer, 20000, err, sizeof(err)) ==
                          CM_KAFKA_OK,
                      "%s", err);
}

START_TEST(test_kill9_mid_stream)
{
        const int clusters = 40, half = 10, total = 40 * 20;
        wait_ready(200, NULL);
        produce_range(clusters, 1, half);
        /* kill as soon as the first rows are in, while the batches are flowing */
        long long end = stack_now_ms() + WAIT;
        while (atoi(stack_sql(&st, "SELECT count(*) FROM cluster_events")) == 0 &&
               stack_now_ms() < end)
                usleep(2000);
        ck_assert_int_eq(stack_stop_projector(&st, SIGKILL), 128 + SIGKILL);
        usleep(300 * 1000); /* a COMMIT already sent may still finish on the server */
        int before = atoi(stack_sql(&st, "SELECT count(*) FROM cluster_events"));
        fprintf(stderr, "it_projector: killed with %d of %d events applied\n", before,
                total);
        ck_assert_int_gt(before, 0);
        ck_assert_str_eq(stack_sql(&st, "SELECT count(*) FROM (SELECT cluster FROM "
                                        "cluster_events GROUP BY cluster HAVING "
                                        "max(seq) <> count(*)) AS holes"),
                         "0");

        produce_range(clusters, half + 1, 20);
        stack_start_projector(&st);
        char want[16];
        snprintf(want, sizeof(want), "%d", total);
        stack_wait_sql(&st, "SELECT count(*) FROM cluster_events", want, 60000);
        stack_wait_sql(&st, "SELECT sum(next_offset) FROM projector_offsets", want, WAIT);
        ck_assert_str_eq(stack_sql(&st,
                                   "SELECT count(*) FROM clusters WHERE seq = 20 AND "
                                   "state = 'Running' AND ready AND node_count = 3"),
                         "40");
        ck_assert_str_eq(stack_sql(&st,
                                   "SELECT count(*) FROM (SELECT cluster FROM "
                                   "cluster_events GROUP BY cluster HAVING count(*) = "
                                   "20 AND min(seq) = 1 AND max(seq) = 20) AS full_"),
                         "40");
        /* the new process applied exactly what the killed one had not committed */
        stack_wait_metric(&st, "cm_projector_events_projected_total", total - before,
                          WAIT);
        ck_assert_int_eq(stack_metric(&st, "cm_projector_events_duplicate_total"), 0);
}
END_TEST

int main(void)
{
        pg_testdb_base(); /* fail, not skip, without CM_TEST_PG */
        Suite *s = suite_create("projector");
        TCase *tc = tcase_create("stack");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 150);
        tcase_add_test(tc, test_lifecycle);
        tcase_add_test(tc, test_restarts);
        tcase_add_test(tc, test_kill9_mid_stream);
        suite_add_tcase(s, tc);
        int failed = cm_check_run(s);
        pg_testdb_drop_all();
        return failed ? 1 : 0;
}
