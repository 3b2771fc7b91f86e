/*
 * worker_outbox.c - the outbox relay (docs/command-path.md "Events").
 *
 * Every worker runs one relay thread; any of them may publish any cluster's rows, one at
 * a time per cluster: the relay holds pg_try_advisory_xact_lock(class, hashtext(cluster))
 * for the whole publish, reads the cluster's unsent rows in seq order, produces them with
 * the idempotent producer (order kept within the partition), waits for their delivery,
 * then marks the delivered prefix sent and commits. A crash between delivery and commit
 * publishes those rows again: consumers dedupe by (cluster, seq). Rows written while no
 * worker ran are sent by whichever worker starts next. Rejections (seq 0) go the same
 * way from rejection_outbox, in any order. The thread wakes on NOTIFY cm_outbox and
 * polls every WORKER_RELAY_POLL_MS whatever happens to notifications.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/log.h"
#include "cm/service.h"
#include "worker.h"

typedef struct relay_batch_s relay_batch_t;

typedef struct relay_slot_s {
        relay_batch_t *batch;
        cm_kafka_err_t err;
        int produced;
} relay_slot_t;

struct relay_batch_s {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        size_t pending;
        relay_slot_t slots[WORKER_RELAY_BATCH];
};

void worker_outbox_delivery_cb(const cm_kafka_delivery_t *dr, void *cb_opaque)
{
        relay_slot_t *slot = dr->msg_opaque;
        (void)cb_opaque;
        if (!slot)
                return;
        relay_batch_t *b = slot->batch;
        pthread_mutex_lock(&b->lock);
        slot->err = dr->err;
        if (dr->err != CM_KAFKA_OK)
                cm_log_warn("event not delivered", "topic", dr->topic, "error",
                            dr->errstr);
        b->pending--;
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
}

/*
 * Produces values[0..n) keyed by keys[i] and waits for every report (librdkafka reports
 * each message within message.timeout.ms). Returns how many leading messages were
 * delivered: the rest must be published again.
 */
static size_t relay_publish(worker_t *w, relay_batch_t *b, char *const *keys,
                            unsigned char *const *values, const size_t *lens, size_t n)
{
        char err[512];
        b->pending = 0;
        for (size_t i = 0; i < n; i++)
                b->slots[i] = (relay_slot_t){b, CM_KAFKA_ERR_PRODUCE, 0};
        for (size_t i = 0; i < n; i++) {
                pthread_mutex_lock(&b->lock);
                b->pending++;
                pthread_mutex_unlock(&b->lock);
                if (cm_kafka_produce(w->producer, w->conf->kafka.events_topic, keys[i],
                                     strlen(keys[i]), values[i], lens[i], NULL, 0,
                                     &b->slots[i], err, sizeof(err)) != CM_KAFKA_OK) {
                        pthread_mutex_lock(&b->lock);
                        b->pending--;
                        pthread_mutex_unlock(&b->lock);
                        cm_log_warn("cannot enqueue an event", "cluster", keys[i],
                                    "error", err);
                        break; /* keep order: nothing after a gap */
                }
                b->slots[i].produced = 1;
        }
        pthread_mutex_lock(&b->lock);
        while (b->pending > 0)
                pthread_cond_wait(&b->cond, &b->lock);
        pthread_mutex_unlock(&b->lock);
        size_t ok = 0;
        while (ok < n && b->slots[ok].produced && b->slots[ok].err == CM_KAFKA_OK)
                ok++;
        return ok;
}

typedef struct relay_rows_s {
        size_t n;
        char *keys[WORKER_RELAY_BATCH];
        unsigned char *values[WORKER_RELAY_BATCH];
        size_t lens[WORKER_RELAY_BATCH];
} relay_rows_t;

static void relay_rows_free(relay_rows_t *rows)
{
        for (size_t i = 0; i < rows->n; i++)
                PQfreemem(rows->values[i]);
        rows->n = 0;
}

/* Reads column col (bytea, text format) of each row of r into rows, keyed by key_col. */
static int relay_rows_load(PGresult *r, int key_col, const char *key, int col,
                           relay_rows_t *rows)
{
        rows->n = 0;
        for (int i = 0; i < PQntuples(r) && i < WORKER_RELAY_BATCH; i++) {
                rows->keys[i] = key ? (char *)key : PQgetvalue(r, i, key_col);
                rows->values[i] = PQunescapeBytea(
                    (const unsigned char *)PQgetvalue(r, i, col), &rows->lens[i]);
                if (!rows->values[i])
                        return -1;
                rows->n++;
        }
        return 0;
}

static int relay_fail(worker_t *w, const char *what, const char *cluster, const char *err)
{
        char rb[128];
        cm_pg_rollback(w->relay_pg, rb, sizeof(rb));
        cm_log_warn("outbox relay failed", "step", what, "cluster", cluster, "error",
                    err);
        return -1;
}

/* Publishes one cluster's unsent rows if no other relay holds the cluster. Returns the
 * number published, or -1. */
static int relay_cluster(worker_t *w, relay_batch_t *b, const char *cluster)
{
        cm_pg_t *pg = w->relay_pg;
        char err[512], limit[16], last[24];
        PGresult *r = NULL;
        relay_rows_t rows = {0};
        const char *v[2] = {cluster, limit};

        snprintf(limit, sizeof(limit), "%d", WORKER_RELAY_BATCH);
        if (cm_pg_begin(pg, err, sizeof(err)) != CM_PG_OK)
                return relay_fail(w, "begin", cluster, err);
        if (worker_sql_exec(pg, WSQL_RELAY_LOCK, 1, v, NULL, 0, &r, err, sizeof(err)) !=
            CM_PG_OK)
                return relay_fail(w, "lock", cluster, err);
        int locked = PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
        if (!locked) { /* another worker is publishing this cluster */
                cm_pg_rollback(pg, err, sizeof(err));
                return 0;
        }
        if (worker_sql_exec(pg, WSQL_RELAY_FETCH, 2, v, NULL, 0, &r, err, sizeof(err)) !=
            CM_PG_OK)
                return relay_fail(w, "fetch", cluster, err);
        if (relay_rows_load(r, -1, cluster, 1, &rows) != 0) {
                relay_rows_free(&rows);
                PQclear(r);
                return relay_fail(w, "fetch", cluster, "out of memory");
        }
        size_t ok = relay_publish(w, b, rows.keys, rows.values, rows.lens, rows.n);
        if (ok > 0)
                snprintf(last, sizeof(last), "%s", PQgetvalue(r, (int)ok - 1, 0));
        size_t n = rows.n;
        relay_rows_free(&rows);
        PQclear(r);
        if (ok > 0) {
                const char *mv[2] = {cluster, last};
                if (worker_sql_exec(pg, WSQL_RELAY_MARK, 2, mv, NULL, 0, NULL, err,
                                    sizeof(err)) != CM_PG_OK)
                        return relay_fail(w, "mark", cluster, err);
        }
        if (cm_pg_commit(pg, err, sizeof(err)) != CM_PG_OK)
                return relay_fail(w, "commit", cluster, err);
        atomic_fetch_add(&w->metrics.relayed, ok);
        if (ok > 0 && cm_log_enabled(CM_LOG_DEBUG))
                cm_log_debug("events relayed", "cluster", cluster, "through_seq", last);
        return ok < n ? -1 : (int)ok;
}

/* Publishes a batch of rejections (seq 0). Returns the number published, or -1. */
static int relay_rejections(worker_t *w, relay_batch_t *b)
{
        cm_pg_t *pg = w->relay_pg;
        char err[512], limit[16];
        PGresult *r = NULL;
        relay_rows_t rows = {0};
        const char *v[1] = {limit};

        snprintf(limit, sizeof(limit), "%d", WORKER_RELAY_BATCH);
        if (cm_pg_begin(pg, err, sizeof(err)) != CM_PG_OK)
                return relay_fail(w, "begin", NULL, err);
        if (worker_sql_exec(pg, WSQL_REJ_FETCH, 1, v, NULL, 0, &r, err, sizeof(err)) !=
            CM_PG_OK)
                return relay_fail(w, "rejections", NULL, err);
        if (PQntuples(r) == 0) {
                PQclear(r);
                cm_pg_rollback(pg, err, sizeof(err));
                return 0;
        }
        if (relay_rows_load(r, 1, NULL, 2, &rows) != 0) {
                relay_rows_free(&rows);
                PQclear(r);
                return relay_fail(w, "rejections", NULL, "out of memory");
        }
        relay_publish(w, b, rows.keys, rows.values, rows.lens, rows.n);
        int sent = 0, failed = 0;
        for (size_t i = 0; i < rows.n && !failed; i++) {
                if (!b->slots[i].produced || b->slots[i].err != CM_KAFKA_OK)
                        continue;
                const char *mv[1] = {PQgetvalue(r, (int)i, 0)};
                failed = worker_sql_exec(pg, WSQL_REJ_MARK, 1, mv, NULL, 0, NULL, err,
                                         sizeof(err)) != CM_PG_OK;
                sent++;
        }
        relay_rows_free(&rows);
        PQclear(r);
        if (failed)
                return relay_fail(w, "rejections", NULL, err);
        if (cm_pg_commit(pg, err, sizeof(err)) != CM_PG_OK)
                return relay_fail(w, "commit", NULL, err);
        atomic_fetch_add(&w->metrics.relayed_rejections, (unsigned long)sent);
        return sent;
}

/* One pass over every cluster with unsent rows, then the rejections. */
static int relay_pass(worker_t *w, relay_batch_t *b)
{
        char err[512], limit[16];
        PGresult *r = NULL;
        const char *v[1] = {limit};
        int total = 0, failed = 0;

        snprintf(limit, sizeof(limit), "%d", 1000);
        if (worker_sql_exec(w->relay_pg, WSQL_RELAY_CLUSTERS, 1, v, NULL, 0, &r, err,
                            sizeof(err)) != CM_PG_OK) {
                cm_log_warn("outbox relay cannot list clusters", "error", err);
                return -1;
        }
        for (int i = 0; i < PQntuples(r) && !cm_service_stopping(); i++) {
                int n = relay_cluster(w, b, PQgetvalue(r, i, 0));
                if (n < 0)
                        failed = 1;
                else
                        total += n;
        }
        PQclear(r);
        int n = relay_rejections(w, b);
        if (n < 0)
                failed = 1;
        else
                total += n;
        return failed && !total ? -1 : total;
}

/* Waits up to ms for a NOTIFY on the relay's connection (or returns at once if one is
 * already buffered). */
static void relay_wait(worker_t *w, int ms)
{
        PGconn *c = cm_pg_conn(w->relay_pg);
        PGnotify *n;
        int got = 0;
        if (!c) {
                cm_service_sleep_ms(ms);
                return;
        }
        PQconsumeInput(c);
        while ((n = PQnotifies(c))) {
                got = 1;
                PQfreemem(n);
        }
        if (got)
                return;
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
        if (pfd.fd < 0 || poll(&pfd, 1, ms) <= 0)
                return;
        PQconsumeInput(c);
        while ((n = PQnotifies(c)))
                PQfreemem(n);
}

static void *relay_main(void *arg)
{
        worker_t *w = arg;
        relay_batch_t *b = calloc(1, sizeof(*b));
        char err[512];
        if (!b) {
                cm_log_error("outbox relay: out of memory");
                return NULL;
        }
        pthread_mutex_init(&b->lock, NULL);
        pthread_cond_init(&b->cond, NULL);
        while (!cm_service_stopping()) {
                if (cm_pg_ensure(w->relay_pg, 2000, err, sizeof(err)) != CM_PG_OK) {
                        cm_log_warn("outbox relay waiting for PostgreSQL", "error", err);
                        cm_service_sleep_ms(500);
                        continue;
                }
                int n = relay_pass(w, b);
                if (n > 0)
                        continue; /* more may be waiting */
                relay_wait(w, n < 0 ? WORKER_RELAY_POLL_MS / 2 : WORKER_RELAY_POLL_MS);
        }
        pthread_cond_destroy(&b->cond);
        pthread_mutex_destroy(&b->lock);
        free(b);
        return NULL;
}

int worker_relay_start(worker_t *w, char *errstr, size_t errstr_size)
{
        if (!(w->relay_pg = cm_pg_new_config(w->conf, errstr, errstr_size)))
                return -1;
        /* LISTEN on every session: a reconnect would otherwise stop the notifications */
        if (cm_pg_err_is_bad_statement(cm_pg_on_connect(
                w->relay_pg, "LISTEN " WORKER_NOTIFY_CHANNEL, errstr, errstr_size)) ||
            cm_pg_err_is_bad_statement(
                worker_sql_prepare(w->relay_pg, errstr, errstr_size)))
                return -1;
        if (pthread_create(&w->relay_thread, NULL, relay_main, w) != 0) {
                snprintf(errstr, errstr_size, "cannot start the outbox relay thread");
                return -1;
        }
        w->relay_started = 1;
        return 0;
}

void worker_relay_join(worker_t *w)
{
        if (w->relay_started)
                pthread_join(w->relay_thread, NULL);
        w->relay_started = 0;
        cm_pg_destroy(w->relay_pg);
        w->relay_pg = NULL;
}

size_t worker_metrics_render(void *opaque, char *buf, size_t size)
{
        worker_t *w = opaque;
        int n = snprintf(
            buf, size,
            "# HELP cm_worker_commands_total Commands handled by this worker, by "
            "result.\n"
            "# TYPE cm_worker_commands_total counter\n"
            "cm_worker_commands_total{result=\"applied\"} %lu\n"
            "cm_worker_commands_total{result=\"rejected\"} %lu\n"
            "cm_worker_commands_total{result=\"invalid\"} %lu\n"
            "cm_worker_commands_total{result=\"duplicate\"} %lu\n"
            "cm_worker_commands_total{result=\"dead_lettered\"} %lu\n"
            "# HELP cm_worker_events_relayed_total Outbox events published to the events "
            "topic.\n"
            "# TYPE cm_worker_events_relayed_total counter\n"
            "cm_worker_events_relayed_total %lu\n"
            "# HELP cm_worker_rejections_relayed_total Rejection events (seq 0) "
            "published.\n"
            "# TYPE cm_worker_rejections_relayed_total counter\n"
            "cm_worker_rejections_relayed_total %lu\n"
            "# HELP cm_worker_transaction_retries_total Command transactions run again.\n"
            "# TYPE cm_worker_transaction_retries_total counter\n"
            "cm_worker_transaction_retries_total %lu\n",
            atomic_load(&w->metrics.applied), atomic_load(&w->metrics.rejected),
            atomic_load(&w->metrics.invalid), atomic_load(&w->metrics.duplicate),
            atomic_load(&w->metrics.dead_lettered), atomic_load(&w->metrics.relayed),
            atomic_load(&w->metrics.relayed_rejections),
            atomic_load(&w->metrics.tx_retries));
        if (n < 0)
                return 0;
        if ((size_t)n >= size)
                return size - 1;
        n += (int)worker_runner_metrics_render(w, buf + n, size - (size_t)n);
        return (size_t)n;
}
