/*
 * it_api_sse - resuming an event stream (GET /v1/clusters/{name}/events, Accept:
 * text/event-stream) with Last-Event-ID or ?after=N, over real HTTP against the real
 * cm-api with its own cm-devbroker and database (it_api_fixture.h's it_setup).
 *
 * The test plays the projector: it writes cluster_events rows with the projector's own
 * statement (PRJ_EVENT_INSERT_SQL) and values (cm_projection_from_event), and produces
 * the same events onto cm.events for the live side. Covered: the backlog then live
 * events, each id once and in order; the header winning over ?after; 400 on a malformed
 * resume point, 404 on an unknown cluster; a replayed frame byte-identical to the live
 * one; an event published while the backlog is read (the read held up by a table lock)
 * sent once; a stream ending rather than skipping an event the read model does not have
 * yet; the caps (10,000 events, 8 MiB) ending the stream so the client resumes.
 */
/* it_api.c's fixture: this test uses only part of its helpers */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "../../workers/projector/projector_sql.h"
#include "cm/event.h"
#include "cm/projector.h"
#include "cm/spec.h"
#include "it_api_fixture.h"

/* An event of cluster with seq; spec: also carry it_spec_json as the spec. */
static void it_event_make(cm_cluster_event_t *ev, const char *cluster, long long seq,
                          int spec, char id[37])
{
        static cm_actor_t actor = {"it-admin", "admin"};
        memset(ev, 0, sizeof(*ev));
        unsigned h = 2166136261u; /* event ids are unique across clusters */
        for (const char *c = cluster; *c; c++)
                h = (h ^ (unsigned char)*c) * 16777619u;
        snprintf(id, 37, "%08x-6f0e-4d38-9f55-%012lld", h, seq);
        ev->cluster = (char *)cluster;
        ev->seq = seq;
        ev->event_id = id;
        ev->command_id = seq == 1 ? "rs-cmd" : NULL;
        ev->type = seq == 1 ? "CreateRequested" : "JobProgressed";
        ev->from_state = seq == 1 ? NULL : "Creating";
        ev->to_state = "Creating";
        ev->at = 1767322800000LL + seq * 1001;
        ev->actor = actor;
        if (spec) {
                cm_field_errors_t errs = {0};
                json_t *j = json_loads(it_spec_json, 0, NULL);
                ev->spec = calloc(1, sizeof(*ev->spec));
                json_object_set_new(j, "name", json_string(cluster));
                ck_assert_int_eq(cm_spec_from_json(ev->spec, j, &errs), 0);
                cm_field_errors_clear(&errs);
                json_decref(j);
        }
}

static void it_event_free(cm_cluster_event_t *ev)
{
        if (ev->spec) {
                cm_spec_destroy(ev->spec);
                free(ev->spec);
        }
}

/* Writes ev's cluster_events row as cm-projector does. */
static void it_project(const cm_cluster_event_t *ev)
{
        cm_projection_t pr;
        char err[256];
        ck_assert_msg(cm_projection_from_event(&pr, ev, err, sizeof(err)) == 0, "%s",
                      err);
        const char *v[13] = {pr.cluster,     pr.seq_text,    ev->event_id,  ev->type,
                             ev->from_state, ev->to_state,   pr.command_id, ev->job_id,
                             ev->actor.name, ev->actor.role, ev->error,     pr.at_text,
                             pr.payload_json};
        PGresult *r = it_sqlp(PRJ_EVENT_INSERT_SQL, 13, v, NULL, NULL);
        ck_assert_msg(PQntuples(r) == 1, "event %lld of %s not inserted",
                      (long long)ev->seq, ev->cluster);
        PQclear(r);
        cm_projection_destroy(&pr);
}

/* Produces ev onto cm.events (what cm-api's stream consumer reads). */
static void it_publish(const cm_cluster_event_t *ev)
{
        unsigned char *buf;
        size_t len;
        char err[256];
        ck_assert_msg(cm_cluster_event_encode(ev, &buf, &len, err, sizeof(err)) == 0,
                      "%s", err);
        it_produce("cm.events", ev->cluster, buf, len);
        free(buf);
}

static void it_event_both(const char *cluster, long long seq, int spec, int project,
                          int publish)
{
        cm_cluster_event_t ev;
        char id[37];
        it_event_make(&ev, cluster, seq, spec, id);
        if (project)
                it_project(&ev);
        if (publish)
                it_publish(&ev);
        it_event_free(&ev);
}

/* The ids of the cluster-event frames received so far, as "1,2,3". */
static void it_stream_ids(it_stream_t *s, char *out, size_t size)
{
        out[0] = '\0';
        pthread_mutex_lock(&s->lock);
        for (const char *p = s->buf; p && (p = strstr(p, "event: cluster-event\nid: "));
             p++) {
                size_t n = strlen(out);
                snprintf(out + n, size - n, "%s%lld", n ? "," : "",
                         strtoll(p + strlen("event: cluster-event\nid: "), NULL, 10));
        }
        pthread_mutex_unlock(&s->lock);
}

/* The whole frame of id (malloc'd), or NULL. */
static char *it_stream_frame(it_stream_t *s, long long id)
{
        char needle[64];
        char *out = NULL;
        snprintf(needle, sizeof(needle), "event: cluster-event\nid: %lld\n", id);
        pthread_mutex_lock(&s->lock);
        char *p = s->buf ? strstr(s->buf, needle) : NULL;
        char *end = p ? strstr(p, "\n\n") : NULL;
        if (end)
                out = strndup(p, (size_t)(end - p + 2));
        pthread_mutex_unlock(&s->lock);
        return out;
}

static void it_wait_consumer_ready(void)
{
        long long end = it_now_ms() + 30000;
        while (it_metric("cm_api_event_stream_consumer_ready") != 1 && it_now_ms() < end)
                it_sleep_ms(100);
        ck_assert_int_eq(it_metric("cm_api_event_stream_consumer_ready"), 1);
}

#define IT_EXPECT_IDS(s, want)                                                           \
        do {                                                                             \
                char ids_[65536];                                                        \
                it_stream_ids(s, ids_, sizeof(ids_));                                    \
                ck_assert_msg(strcmp(ids_, want) == 0, "%s: ids %s, want %s", (s)->path, \
                              ids_, want);                                               \
        } while (0)

/* ---------------------------------------------------------------- backlog, then live */

START_TEST(test_resume_backlog_then_live)
{
        it_wait_consumer_ready();
        it_insert_cluster("rs-a", "Creating", NULL);
        for (int i = 1; i <= 3; i++)
                it_event_both("rs-a", i, i == 1, 1, 0);
        /* static: a failed check leaves the reader threads running */
        static it_stream_t s_after, s_lei0, s_lei2, s_both, s_live;
        it_stream_open(&s_after, "/v1/clusters/rs-a/events?after=0", it_user);
        it_stream_open_h(&s_lei0, "/v1/clusters/rs-a/events", it_user,
                         "Last-Event-ID: 0");
        it_stream_open_h(&s_lei2, "/v1/clusters/rs-a/events", it_user,
                         "Last-Event-ID: 2");
        /* An EventSource reconnecting to a URL with ?after: the header is newer. */
        it_stream_open_h(&s_both, "/v1/clusters/rs-a/events?after=0", it_user,
                         "Last-Event-ID: 2");
        it_stream_open(&s_live, "/v1/clusters/rs-a/events", it_user);
        it_stream_t *all[] = {&s_after, &s_lei0, &s_lei2, &s_both, &s_live};
        for (int i = 0; i < 4; i++)
                ck_assert_msg(it_stream_wait(all[i], "id: 3\n", 10000), "%s: %s",
                              all[i]->path, all[i]->buf);
        ck_assert(it_stream_wait(&s_live, "watching cluster rs-a", 5000));

        /* Event 4, published after every stream is open: live on each. */
        it_event_both("rs-a", 4, 1, 1, 1);
        for (int i = 0; i < 5; i++)
                ck_assert_msg(it_stream_wait(all[i], "id: 4\n", 10000), "%s: %s",
                              all[i]->path, all[i]->buf);
        it_sleep_ms(1500); /* a duplicate would follow by now (keep-alive: 1 s) */
        IT_EXPECT_IDS(&s_after, "1,2,3,4");
        IT_EXPECT_IDS(&s_lei0, "1,2,3,4");
        IT_EXPECT_IDS(&s_lei2, "3,4");
        IT_EXPECT_IDS(&s_both, "3,4");
        IT_EXPECT_IDS(&s_live, "4"); /* no resume point: no backlog, as before */
        ck_assert(it_stream_wait(&s_after, "\"commandId\":\"rs-cmd\"", 10));

        /* Event 4 replayed from the read model is the very frame it was live. */
        static it_stream_t s_replay;
        it_stream_open_h(&s_replay, "/v1/clusters/rs-a/events", it_user,
                         "Last-Event-ID: 3");
        ck_assert_msg(it_stream_wait(&s_replay, "id: 4\n", 10000), "%s", s_replay.buf);
        char *live = it_stream_frame(&s_live, 4), *replay = it_stream_frame(&s_replay, 4);
        ck_assert_ptr_nonnull(live);
        ck_assert_ptr_nonnull(replay);
        ck_assert_str_eq(replay, live);
        ck_assert_msg(strstr(live, "\"spec\":{") != NULL, "%s", live);
        free(live);
        free(replay);
        for (int i = 0; i < 5; i++) {
                ck_assert_int_eq(all[i]->status, 0); /* still open */
                it_stream_close(all[i]);
        }
        it_stream_close(&s_replay);
}
END_TEST

/* ---------------------------------------------------------------- errors */

static void it_expect_status(const char *path, const char *header, long status,
                             const char *const *words)
{
        const char *hdr[] = {"Accept: text/event-stream", header, NULL};
        it_resp_t r = it_http("GET", path, it_user, hdr, NULL, 0, NULL);
        ck_assert_msg(r.status == status, "%s [%s]: %ld %s", path, header ? header : "",
                      r.status, r.body);
        for (; words && *words; words++)
                ck_assert_msg(strstr(r.body, *words) != NULL, "%s: no %s in %s", path,
                              *words, r.body);
        it_resp_free(&r);
}

START_TEST(test_resume_errors)
{
        it_insert_cluster("rs-e", "Running", NULL);
        const char *lei[] = {"Last-Event-ID", "\\\"abc\\\"", NULL};
        it_expect_status("/v1/clusters/rs-e/events", "Last-Event-ID: abc", 400, lei);
        const char *lei_neg[] = {"Last-Event-ID", "\\\"-3\\\"", NULL};
        it_expect_status("/v1/clusters/rs-e/events", "Last-Event-ID: -3", 400, lei_neg);
        /* A malformed header is refused even when ?after is fine. */
        const char *lei_1x[] = {"Last-Event-ID", "\\\"1x\\\"", NULL};
        it_expect_status("/v1/clusters/rs-e/events?after=1", "Last-Event-ID: 1x", 400,
                         lei_1x);
        const char *after[] = {"\"field\":\"after\"", "\\\"-1\\\"", NULL};
        it_expect_status("/v1/clusters/rs-e/events?after=-1", NULL, 400, after);
        const char *after_x[] = {"\"field\":\"after\"", "\\\"x9\\\"", NULL};
        it_expect_status("/v1/clusters/rs-e/events?after=x9", NULL, 400, after_x);
        /* The JSON form keeps its own check. */
        it_resp_t r = IT_GET("/v1/clusters/rs-e/events?after=-1", it_user);
        ck_assert_int_eq(r.status, 400);
        ck_assert(strstr(r.body, "\"field\":\"after\"") != NULL);
        it_resp_free(&r);

        const char *absent[] = {"cluster \\\"rs-nosuch\\\" doesn't exist", NULL};
        it_expect_status("/v1/clusters/rs-nosuch/events", "Last-Event-ID: 0", 404,
                         absent);
        it_expect_status("/v1/clusters/rs-nosuch/events?after=0", NULL, 404, absent);
        r = IT_GET("/v1/clusters/rs-nosuch/events?after=0", it_user);
        ck_assert_int_eq(r.status, 404);
        it_resp_free(&r);
        /* A backlog that cannot be read: 503 naming what failed, and cm-api goes on. */
        it_sql("ALTER TABLE cluster_events RENAME TO cluster_events_away");
        const char *unread[] = {"\"unavailable\"", "read the events", NULL};
        it_expect_status("/v1/clusters/rs-e/events", "Last-Event-ID: 0", 503, unread);
        it_sql("ALTER TABLE cluster_events_away RENAME TO cluster_events");
        /* A read held up past its timeout (10 s) is 503 too, not a request that hangs. */
        PGconn *lock = PQconnectdb(it_conninfo);
        ck_assert(PQstatus(lock) == CONNECTION_OK);
        PQclear(PQexec(lock, "SET idle_in_transaction_session_timeout = '30s'"));
        PQclear(PQexec(lock, "BEGIN"));
        PQclear(PQexec(lock, "LOCK TABLE cluster_events IN ACCESS EXCLUSIVE MODE"));
        it_expect_status("/v1/clusters/rs-e/events", "Last-Event-ID: 0", 503, unread);
        PQclear(PQexec(lock, "ROLLBACK"));
        PQfinish(lock);
        static it_stream_t ok;
        it_stream_open_h(&ok, "/v1/clusters/rs-e/events", it_user, "Last-Event-ID: 0");
        ck_assert_msg(it_stream_wait(&ok, "watching cluster rs-e", 5000), "%s", ok.buf);
        it_stream_close(&ok);
        /* Without a resume point a stream may still watch a cluster not created yet. */
        static it_stream_t s;
        it_stream_open(&s, "/v1/clusters/rs-nosuch/events", it_user);
        ck_assert_msg(it_stream_wait(&s, "watching cluster rs-nosuch", 5000), "%s",
                      s.buf);
        it_stream_close(&s);
}
END_TEST

/* ---------------------------------------------------------------- the race */

/*
 * The streams' backlog reads are held up by a lock the test takes on cluster_events, and
 * events 3 and 4 are published meanwhile, so both are queued live on the registered
 * streams. Event 3 was projected before (the projector is ahead of cm-api's consumer):
 * the backlog has it too. Event 4 is projected inside the locking transaction: the
 * backlog may or may not see it. Either way each stream sends 3 and 4, once each.
 *
 * There are more held-up streams (IT_HELD) than cm-api has pool threads (api.threads,
 * 4): a backlog read that waited on its pool thread would stall the live watcher of
 * that thread, and with every thread waiting, the watcher whichever thread it is on.
 */
#define IT_HELD 6
START_TEST(test_resume_race_no_duplicate)
{
        it_wait_consumer_ready();
        it_insert_cluster("rs-r", "Creating", NULL);
        it_event_both("rs-r", 1, 1, 1, 0);
        it_event_both("rs-r", 2, 0, 1, 0);
        it_event_both("rs-r", 3, 0, 1, 0);
        /* Streams of the tests before are noticed gone at a keep-alive (1 s): from 0,
         * the count says when the stream below is registered. */
        long long end = it_now_ms() + 10000;
        while (it_metric("cm_api_event_streams") != 0 && it_now_ms() < end)
                it_sleep_ms(50);
        ck_assert_int_eq(it_metric("cm_api_event_streams"), 0);
        PGconn *lock = PQconnectdb(it_conninfo);
        ck_assert(PQstatus(lock) == CONNECTION_OK);
        /* If a check fails below, the server ends the transaction (and the lock). */
        PQclear(PQexec(lock, "SET idle_in_transaction_session_timeout = '15s'"));
        PQclear(PQexec(lock, "BEGIN"));
        PGresult *lr = PQexec(lock, "LOCK TABLE cluster_events IN ACCESS EXCLUSIVE MODE");
        ck_assert_msg(PQresultStatus(lr) == PGRES_COMMAND_OK, "%s",
                      PQresultErrorMessage(lr));
        PQclear(lr);

        static it_stream_t watcher, held[IT_HELD];
        it_stream_open(&watcher, "/v1/clusters/rs-r/events", it_user);
        ck_assert(it_stream_wait(&watcher, "watching cluster rs-r", 5000));
        for (int i = 0; i < IT_HELD; i++)
                it_stream_open_h(&held[i], "/v1/clusters/rs-r/events", it_user,
                                 "Last-Event-ID: 2");
        /* Registered (counted) before their backlog reads, which now wait on the lock. */
        end = it_now_ms() + 10000;
        while (it_metric("cm_api_event_streams") != 1 + IT_HELD && it_now_ms() < end)
                it_sleep_ms(50);
        ck_assert_int_eq(it_metric("cm_api_event_streams"), 1 + IT_HELD);

        it_event_both("rs-r", 3, 0, 0, 1);
        cm_cluster_event_t ev;
        char id[37];
        it_event_make(&ev, "rs-r", 4, 0, id);
        it_publish(&ev);
        /* The watcher has them, so the held-up streams have them queued (same push). */
        ck_assert_msg(it_stream_wait(&watcher, "id: 4\n", 10000),
                      "held-up backlog reads stalled a live stream: %s", watcher.buf);
        for (int i = 0; i < IT_HELD; i++)
                ck_assert_msg(!it_stream_wait(&held[i], "watching", i ? 0 : 200),
                              "the backlog read was not held up: %s", held[i].buf);
        /* Plain requests go on too. */
        it_resp_t hz = IT_GET("/healthz", NULL);
        ck_assert_int_eq(hz.status, 200);
        it_resp_free(&hz);
        cm_projection_t pr;
        char err[256];
        ck_assert_int_eq(cm_projection_from_event(&pr, &ev, err, sizeof(err)), 0);
        const char *v[13] = {pr.cluster,     pr.seq_text,   ev.event_id,   ev.type,
                             ev.from_state,  ev.to_state,   pr.command_id, ev.job_id,
                             ev.actor.name,  ev.actor.role, ev.error,      pr.at_text,
                             pr.payload_json};
        lr = PQexecParams(lock, PRJ_EVENT_INSERT_SQL, 13, NULL, v, NULL, NULL, 0);
        ck_assert_msg(PQresultStatus(lr) == PGRES_TUPLES_OK && PQntuples(lr) == 1, "%s",
                      PQresultErrorMessage(lr));
        PQclear(lr);
        cm_projection_destroy(&pr);
        it_event_free(&ev);
        PQclear(PQexec(lock, "COMMIT"));
        PQfinish(lock);

        for (int i = 0; i < IT_HELD; i++)
                ck_assert_msg(it_stream_wait(&held[i], "id: 4\n", 10000), "%s",
                              held[i].buf);
        it_event_both("rs-r", 5, 0, 1, 1);
        for (int i = 0; i < IT_HELD; i++)
                ck_assert_msg(it_stream_wait(&held[i], "id: 5\n", 10000), "%s",
                              held[i].buf);
        it_sleep_ms(1500);
        for (int i = 0; i < IT_HELD; i++) {
                IT_EXPECT_IDS(&held[i], "3,4,5");
                it_stream_close(&held[i]);
        }
        IT_EXPECT_IDS(&watcher, "3,4,5");
        it_stream_close(&watcher);
}
END_TEST

/* Waits until the stream ended (the server closed it); returns 1 when it did. */
static int it_stream_ended(it_stream_t *s, int timeout_ms)
{
        long long end = it_now_ms() + timeout_ms;
        while (s->status == 0 && it_now_ms() < end)
                it_sleep_ms(50);
        return s->status != 0;
}

/* ---------------------------------------------------------------- a gap */

/*
 * The projector is behind: event 3 is not in the read model, and the live side only
 * brings event 4 (3 went by before the stream was registered). The stream must not send
 * 4 (its client would never see 3): it ends, and the client resumes from 2 later.
 */
START_TEST(test_resume_gap_ends_stream)
{
        it_wait_consumer_ready();
        it_insert_cluster("rs-g", "Creating", NULL);
        it_event_both("rs-g", 1, 0, 1, 0);
        it_event_both("rs-g", 2, 0, 1, 0);
        static it_stream_t s;
        it_stream_open_h(&s, "/v1/clusters/rs-g/events", it_user, "Last-Event-ID: 1");
        ck_assert_msg(it_stream_wait(&s, "id: 2\n", 10000), "%s", s.buf);
        it_event_both("rs-g", 4, 0, 0, 1);
        ck_assert_msg(it_stream_ended(&s, 10000), "a stream at a gap must end: %s",
                      s.buf);
        ck_assert_msg(it_stream_wait(&s, ": event 3 is not in the history yet", 10), "%s",
                      s.buf);
        IT_EXPECT_IDS(&s, "2");
        it_stream_close(&s);
        /* The projector catches up; the client comes back with the last id it got. */
        it_event_both("rs-g", 3, 0, 1, 0);
        it_event_both("rs-g", 4, 0, 1, 0);
        it_stream_open_h(&s, "/v1/clusters/rs-g/events", it_user, "Last-Event-ID: 2");
        ck_assert_msg(it_stream_wait(&s, "id: 4\n", 10000), "%s", s.buf);
        IT_EXPECT_IDS(&s, "3,4");
        ck_assert_int_eq(s.status, 0);
        it_stream_close(&s);
}
END_TEST

/* ---------------------------------------------------------------- caps */

START_TEST(test_resume_caps)
{
        it_insert_cluster("rs-c", "Creating", NULL);
        it_sql("INSERT INTO cluster_events (cluster, seq, event_id, type, to_state, "
               "actor, at) SELECT 'rs-c', g, gen_random_uuid(), 'JobProgressed', "
               "'Creating', 'worker', '2026-01-02T03:04:05Z' FROM "
               "generate_series(1, 10005) g");
        static it_stream_t s;
        it_stream_open(&s, "/v1/clusters/rs-c/events?after=0", it_user);
        ck_assert_msg(it_stream_ended(&s, 30000), "a cut backlog must end the stream");
        ck_assert_int_eq(s.status, 200);
        ck_assert(it_stream_wait(&s, "more events after id 10000", 10));
        char *last = it_stream_frame(&s, 10000);
        ck_assert_ptr_nonnull(last);
        free(last);
        ck_assert_ptr_null(it_stream_frame(&s, 10001));
        char ids[128];
        it_stream_ids(&s, ids, sizeof(ids));
        ck_assert_msg(strncmp(ids, "1,2,3,", 6) == 0, "%s", ids);
        it_stream_close(&s);
        /* The client resumes from the last id and gets the rest, and stays. */
        it_stream_open_h(&s, "/v1/clusters/rs-c/events", it_user, "Last-Event-ID: 10000");
        ck_assert_msg(it_stream_wait(&s, "id: 10005\n", 10000), "%s", s.buf);
        IT_EXPECT_IDS(&s, "10001,10002,10003,10004,10005");
        ck_assert(!it_stream_wait(&s, "more events after", 10));
        ck_assert_int_eq(s.status, 0);
        it_stream_close(&s);

        /* 8 MiB: three events of 3 MB each: two go, then the stream ends. */
        it_insert_cluster("rs-big", "Creating", NULL);
        it_sql("INSERT INTO cluster_events (cluster, seq, event_id, type, to_state, "
               "actor, at, payload) SELECT 'rs-big', g, gen_random_uuid(), "
               "'UpdateRequested', 'Updating', 'it-admin', '2026-01-02T03:04:05Z', "
               "jsonb_build_object('spec', jsonb_build_object('note', "
               "repeat('x', 3000000))) FROM generate_series(1, 3) g");
        it_stream_open(&s, "/v1/clusters/rs-big/events?after=0", it_user);
        ck_assert_msg(it_stream_ended(&s, 30000), "a cut backlog must end the stream");
        ck_assert(it_stream_wait(&s, "more events after id 2", 10));
        IT_EXPECT_IDS(&s, "1,2");
        it_stream_close(&s);
}
END_TEST

/* Last: cm-api stops cleanly with resumed streams behind it (under the sanitizer build a
 * leak or a bad access makes its exit status non-zero). */
START_TEST(test_api_stops_clean)
{
        static it_stream_t s;
        it_stream_open_h(&s, "/v1/clusters/rs-a/events", it_user, "Last-Event-ID: 1");
        ck_assert_msg(it_stream_wait(&s, "id: 4\n", 10000), "%s", s.buf);
        int rc = it_stop_child(it_api_pid, 15000);
        ck_assert_msg(rc == 0, "cm-api exit status %d", rc);
        it_stream_close(&s);
}
END_TEST

int main(void)
{
        it_api_begin();
        Suite *su = suite_create("api_sse");
        TCase *tc = tcase_create("api_sse");
        tcase_set_timeout(tc, 90);
        tcase_add_unchecked_fixture(tc, it_setup, NULL);
        tcase_add_test(tc, test_resume_errors);
        tcase_add_test(tc, test_resume_backlog_then_live);
        tcase_add_test(tc, test_resume_race_no_duplicate);
        tcase_add_test(tc, test_resume_gap_ends_stream);
        tcase_add_test(tc, test_resume_caps);
        tcase_add_test(tc, test_api_stops_clean); /* last: stops cm-api */
        suite_add_tcase(su, tc);
        return it_api_run(su);
}
