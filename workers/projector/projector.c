/*
 * projector.c - cm.events → read model, exactly-once effects (projector.h).
 *
 * A batch is applied in one transaction: per event a savepoint, so an event the read
 * model refuses (a data or constraint error: bad input) is undone and skipped alone,
 * then the next offset of every partition in the batch. Nothing else makes the projector
 * skip anything: a lost database or any other failure rolls the batch back and retries
 * it, so an event is applied once (the seq check) and never lost (the offset moves only
 * with the rows).
 *
 * A gap (event seq > the cluster's seq + 1) means events were lost upstream: they are in
 * order per partition, so the missing ones are not coming later. The event is applied
 * anyway, logged at error level with both numbers and counted: every event carries the
 * cluster's whole state (toState and the full spec), so the views stay right and only the
 * history has a hole, whereas holding the cluster back would freeze it in the views for
 * good. An event older than the cluster's seq whose history row is missing (delivered
 * late, out of order) fills that hole without touching the cluster row.
 */
#include "projector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/event.h"
#include "cm/log.h"
#include "cm/projector.h"
#include "cm/service.h"
#include "projector_sql.h"

typedef enum {
        OUT_UNDECODABLE = 0, /* decode or projection failed before the transaction */
        OUT_PROJECTED,
        OUT_DUPLICATE,
        OUT_LATE,
        OUT_INVALID, /* the database refused the event */
} outcome_t;

typedef struct item_s {
        cm_kafka_message_t *msg;
        int decoded;
        cm_cluster_event_t ev;
        cm_projection_t pr;
        outcome_t outcome;
        int64_t prev_seq; /* the cluster's seq before the event */
        char why[512];    /* OUT_UNDECODABLE / OUT_INVALID: the reason */
} item_t;

int projector_init(projector_t *p, cm_pg_t *pg, cm_kafka_consumer_t *consumer,
                   const char *topic)
{
        memset(p, 0, sizeof(*p));
        p->pg = pg;
        p->consumer = consumer;
        p->topic = topic;
        atomic_store(&p->lag, -1);
        return pthread_mutex_init(&p->lock, NULL) ? -1 : 0;
}

void projector_destroy(projector_t *p)
{
        free(p->parts);
        pthread_mutex_destroy(&p->lock);
}

static void set_db_state(projector_t *p, int down, const char *err)
{
        pthread_mutex_lock(&p->lock);
        p->db_down = down;
        snprintf(p->db_error, sizeof(p->db_error), "%s", down && err ? err : "");
        pthread_mutex_unlock(&p->lock);
}

int projector_prepare(projector_t *p, char *errstr, size_t errstr_size)
{
        cm_pg_err_t rc = cm_pg_prepare_all(
            p->pg, projector_stmts, sizeof(projector_stmts) / sizeof(projector_stmts[0]),
            errstr, errstr_size);
        return cm_pg_err_is_bad_statement(rc) ? -1 : 0; /* CONN: prepared on connect */
}

/* ------------------------------------------------------------------ assignment */

/* Reads every stored offset of the topic; 0, or -1 (stopping) after retrying. */
static int load_offsets(projector_t *p, PGresult **res)
{
        char err[512];
        const char *params[1] = {p->topic};

        for (;;) {
                if (cm_pg_ensure(p->pg, 2000, err, sizeof(err)) == CM_PG_OK &&
                    cm_pg_exec_prepared(p->pg, PRJ_OFFSETS_LOAD, 1, params, NULL, NULL, 0,
                                        res, err, sizeof(err)) == CM_PG_OK) {
                        set_db_state(p, 0, NULL);
                        return 0;
                }
                set_db_state(p, 1, err);
                if (cm_service_stopping())
                        return -1;
                cm_log_warn("cannot read the stored offsets; retrying", "error", err);
                cm_service_sleep_ms(500);
        }
}

static int start_offsets(const cm_kafka_partition_t *parts, size_t cnt, int64_t *offsets,
                         void *opaque)
{
        projector_t *p = opaque;
        PGresult *res = NULL;
        char text[2048];
        size_t off = 0;

        if (load_offsets(p, &res))
                return -1;
        free(p->parts);
        p->parts = calloc(cnt ? cnt : 1, sizeof(*p->parts));
        p->part_cnt = 0;
        text[0] = '\0';
        for (size_t i = 0; i < cnt; i++) {
                offsets[i] = CM_KAFKA_OFFSET_BEGINNING; /* no row: from the beginning */
                if (strcmp(parts[i].topic, p->topic) != 0)
                        continue;
                for (int r = 0; r < PQntuples(res); r++)
                        if (atoi(PQgetvalue(res, r, 0)) == parts[i].partition)
                                offsets[i] = strtoll(PQgetvalue(res, r, 1), NULL, 10);
                if (p->parts) {
                        p->parts[p->part_cnt].partition = parts[i].partition;
                        p->parts[p->part_cnt++].next = offsets[i] >= 0 ? offsets[i] : -1;
                }
                if (off < sizeof(text)) {
                        int n =
                            offsets[i] >= 0
                                ? snprintf(text + off, sizeof(text) - off, "%s%d@%lld",
                                           off ? " " : "", (int)parts[i].partition,
                                           (long long)offsets[i])
                                : snprintf(text + off, sizeof(text) - off,
                                           "%s%d@beginning", off ? " " : "",
                                           (int)parts[i].partition);
                        off += n > 0 ? (size_t)n : 0;
                }
        }
        PQclear(res);
        cm_log_info("partitions start from the stored offsets", "topic", p->topic,
                    "partitions", text);
        return 0;
}

void projector_on_rebalance(int assigned, const cm_kafka_partition_t *parts, size_t cnt,
                            void *opaque)
{
        projector_t *p = opaque;
        (void)parts;
        (void)cnt;
        if (!assigned) {
                free(p->parts);
                p->parts = NULL;
                p->part_cnt = 0;
                atomic_store(&p->lag, -1);
        }
}

int projector_subscribe(projector_t *p, char *errstr, size_t errstr_size)
{
        const char *topics[1] = {p->topic};

        cm_kafka_consumer_set_start_offsets(p->consumer, start_offsets, p);
        if (cm_kafka_consumer_subscribe(p->consumer, topics, 1, errstr, errstr_size))
                return -1;
        pthread_mutex_lock(&p->lock);
        p->started = 1;
        pthread_mutex_unlock(&p->lock);
        return 0;
}

/* ------------------------------------------------------------------ one event */

/* 1 for SQLSTATE classes 22 (data exception) and 23 (constraint violation): the event,
 * not the database, is at fault. */
static int bad_input(const char *sqlstate)
{
        return sqlstate &&
               (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0);
}

static cm_pg_err_t exec_rows(projector_t *p, const char *stmt, int n,
                             const char *const *params, int *rows, int64_t *first,
                             char *err, size_t err_size)
{
        PGresult *res = NULL;
        cm_pg_err_t rc = cm_pg_exec_prepared(p->pg, stmt, n, params, NULL, NULL, 0, &res,
                                             err, err_size);
        if (rc != CM_PG_OK)
                return rc;
        *rows = PQntuples(res);
        if (first)
                *first = *rows > 0 && !PQgetisnull(res, 0, 0)
                             ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
                             : 0;
        PQclear(res);
        return CM_PG_OK;
}

static cm_pg_err_t apply_rejection(projector_t *p, item_t *it, char *err, size_t err_size)
{
        const cm_projection_t *pr = &it->pr;
        const char *params[5] = {pr->command_id, pr->cluster, pr->code, pr->message,
                                 pr->at_text};
        int rows = 0;
        cm_pg_err_t rc =
            exec_rows(p, PRJ_COMMAND_REJECTED, 5, params, &rows, NULL, err, err_size);
        if (rc == CM_PG_OK)
                it->outcome = rows ? OUT_PROJECTED : OUT_DUPLICATE;
        return rc;
}

static cm_pg_err_t apply_cluster_event(projector_t *p, item_t *it, char *err,
                                       size_t err_size)
{
        const cm_projection_t *pr = &it->pr;
        const cm_cluster_event_t *ev = &it->ev;
        const char *lock[1] = {pr->cluster};
        const char *upsert[10] = {pr->cluster,
                                  pr->state,
                                  pr->ready ? "t" : "f",
                                  pr->seq_text,
                                  pr->spec_json,
                                  pr->node_count_text[0] ? pr->node_count_text : NULL,
                                  ev->error,
                                  pr->at_text,
                                  pr->starts_cluster ? "t" : "f",
                                  pr->clears_error ? "t" : "f"};
        const char *history[13] = {
            pr->cluster,     pr->seq_text,   ev->event_id,
            ev->type,        ev->from_state, ev->to_state,
            pr->command_id,  ev->job_id,     ev->actor.name ? ev->actor.name : "",
            ev->actor.role,  ev->error,      pr->at_text,
            pr->payload_json};
        const char *command[3] = {pr->command_id, pr->cluster, pr->at_text};
        int rows = 0, advanced = 0, recorded = 0;
        cm_pg_err_t rc;

        rc = exec_rows(p, PRJ_CLUSTER_LOCK, 1, lock, &rows, &it->prev_seq, err, err_size);
        if (rc != CM_PG_OK)
                return rc;
        if (it->prev_seq < pr->seq) {
                rc = exec_rows(p, PRJ_CLUSTER_UPSERT, 10, upsert, &advanced, NULL, err,
                               err_size);
                if (rc != CM_PG_OK)
                        return rc;
        }
        rc = exec_rows(p, PRJ_EVENT_INSERT, 13, history, &recorded, NULL, err, err_size);
        if (rc != CM_PG_OK)
                return rc;
        if (pr->command_id && (advanced || recorded)) {
                rc = exec_rows(p, PRJ_COMMAND_APPLIED, 3, command, &rows, NULL, err,
                               err_size);
                if (rc != CM_PG_OK)
                        return rc;
        }
        it->outcome = advanced ? OUT_PROJECTED : recorded ? OUT_LATE : OUT_DUPLICATE;
        return CM_PG_OK;
}

/*
 * Applies one decoded event inside its savepoint. CM_PG_OK also when the database refused
 * the event as bad input (outcome OUT_INVALID, savepoint undone); anything else fails the
 * batch.
 */
static cm_pg_err_t apply_item(projector_t *p, item_t *it, char *err, size_t err_size)
{
        cm_pg_err_t rc = cm_pg_exec(p->pg, PRJ_SAVEPOINT_SQL, NULL, err, err_size);
        if (rc != CM_PG_OK)
                return rc;
        rc = it->pr.kind == CM_PROJECTION_REJECTION
                 ? apply_rejection(p, it, err, err_size)
                 : apply_cluster_event(p, it, err, err_size);
        if (rc == CM_PG_ERR_QUERY && bad_input(cm_pg_sqlstate(p->pg))) {
                snprintf(it->why, sizeof(it->why), "%s", err);
                it->outcome = OUT_INVALID;
                return cm_pg_exec(p->pg, PRJ_UNDO_SQL, NULL, err, err_size);
        }
        if (rc != CM_PG_OK)
                return rc;
        return cm_pg_exec(p->pg, PRJ_RELEASE_SQL, NULL, err, err_size);
}

/* ------------------------------------------------------------------ one batch */

/* Writes the next offset of every partition in the batch. */
static cm_pg_err_t save_offsets(projector_t *p, item_t *items, size_t n, char *err,
                                size_t err_size)
{
        for (size_t i = 0; i < n; i++) {
                int32_t part = items[i].msg->partition;
                int64_t next = items[i].msg->offset + 1;
                int seen = 0;
                for (size_t j = 0; j < i; j++)
                        seen |= items[j].msg->partition == part;
                if (seen)
                        continue;
                for (size_t j = i + 1; j < n; j++)
                        if (items[j].msg->partition == part &&
                            items[j].msg->offset + 1 > next)
                                next = items[j].msg->offset + 1;
                char ptext[16], otext[24];
                snprintf(ptext, sizeof(ptext), "%d", (int)part);
                snprintf(otext, sizeof(otext), "%lld", (long long)next);
                const char *params[3] = {items[i].msg->topic, ptext, otext};
                cm_pg_err_t rc = cm_pg_exec_prepared(p->pg, PRJ_OFFSET_SAVE, 3, params,
                                                     NULL, NULL, 0, NULL, err, err_size);
                if (rc != CM_PG_OK)
                        return rc;
        }
        return CM_PG_OK;
}

static cm_pg_err_t apply_batch(projector_t *p, item_t *items, size_t n, char *err,
                               size_t err_size)
{
        cm_pg_err_t rc = cm_pg_begin(p->pg, err, err_size);
        for (size_t i = 0; rc == CM_PG_OK && i < n; i++) {
                if (items[i].decoded) {
                        items[i].why[0] = '\0';
                        rc = apply_item(p, &items[i], err, err_size);
                } else {
                        items[i].outcome = OUT_UNDECODABLE;
                }
        }
        if (rc == CM_PG_OK)
                rc = save_offsets(p, items, n, err, err_size);
        if (rc == CM_PG_OK)
                rc = cm_pg_commit(p->pg, err, err_size);
        if (rc != CM_PG_OK) {
                char ignored[256];
                cm_pg_rollback(p->pg, ignored, sizeof(ignored));
        }
        return rc;
}

static void decode_item(projector_t *p, item_t *it)
{
        char err[512], part[16], off[24];
        const cm_kafka_message_t *m = it->msg;

        it->decoded = 0;
        if (!m->value)
                snprintf(err, sizeof(err), "empty message (tombstone)");
        else if (cm_cluster_event_decode(m->value, m->value_len, &it->ev, err,
                                         sizeof(err)) == 0) {
                if (cm_projection_from_event(&it->pr, &it->ev, err, sizeof(err)) == 0) {
                        it->decoded = 1;
                        return;
                }
                cm_cluster_event_destroy(&it->ev);
        }
        snprintf(it->why, sizeof(it->why), "%s", err);
        snprintf(part, sizeof(part), "%d", (int)m->partition);
        snprintf(off, sizeof(off), "%lld", (long long)m->offset);
        cm_log_error("undecodable event skipped", "topic", m->topic, "partition", part,
                     "offset", off, "error", err);
        (void)p;
}

/* After the commit: counters, and the log lines of what deserves one. */
static void report_item(projector_t *p, const item_t *it)
{
        char seq[24], prev[24], expect[24], part[16], off[24];

        snprintf(part, sizeof(part), "%d", (int)it->msg->partition);
        snprintf(off, sizeof(off), "%lld", (long long)it->msg->offset);
        switch (it->outcome) {
        case OUT_UNDECODABLE:
                atomic_fetch_add(&p->undecodable, 1);
                return;
        case OUT_INVALID:
                atomic_fetch_add(&p->invalid, 1);
                cm_log_error("event refused by the read model, skipped", "cluster",
                             it->ev.cluster, "seq", it->pr.seq_text, "type", it->ev.type,
                             "partition", part, "offset", off, "error", it->why);
                return;
        case OUT_DUPLICATE:
                atomic_fetch_add(&p->duplicates, 1);
                cm_log_debug("event already applied, ignored", "cluster", it->ev.cluster,
                             "seq", it->pr.seq_text, "type", it->ev.type);
                return;
        case OUT_LATE:
                atomic_fetch_add(&p->late, 1);
                snprintf(prev, sizeof(prev), "%lld", (long long)it->prev_seq);
                cm_log_warn("late event filled a hole in the cluster's history",
                            "cluster", it->ev.cluster, "seq", it->pr.seq_text,
                            "cluster_seq", prev);
                return;
        case OUT_PROJECTED:
                break;
        }
        atomic_fetch_add(&p->projected, 1);
        cm_log_debug("event projected", "cluster", it->ev.cluster, "seq", it->pr.seq_text,
                     "type", it->ev.type, "command_id", it->pr.command_id);
        if (it->pr.kind == CM_PROJECTION_CLUSTER && it->pr.seq > it->prev_seq + 1) {
                atomic_fetch_add(&p->gaps, 1);
                snprintf(seq, sizeof(seq), "%lld", (long long)it->pr.seq);
                snprintf(expect, sizeof(expect), "%lld", (long long)it->prev_seq + 1);
                cm_log_error("gap in the cluster's event sequence: events were lost "
                             "upstream; applied anyway, the history misses them",
                             "cluster", it->ev.cluster, "expected_seq", expect, "seq",
                             seq, "partition", part, "offset", off);
        }
}

/* Lag = sum over assigned partitions of (log end - next offset to apply). */
static void update_lag(projector_t *p)
{
        long long lag = 0;
        int known = p->part_cnt > 0;

        for (size_t i = 0; i < p->part_cnt; i++) {
                int64_t low, high;
                cm_kafka_consumer_watermarks(p->consumer, p->topic, p->parts[i].partition,
                                             &low, &high);
                int64_t next = p->parts[i].next >= 0 ? p->parts[i].next : low;
                if (high < 0 || next < 0) {
                        known = 0;
                        break;
                }
                lag += high > next ? high - next : 0;
        }
        atomic_store(&p->lag, known ? lag : -1);
}

static void note_progress(projector_t *p, const item_t *items, size_t n)
{
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < p->part_cnt; j++)
                        if (p->parts[j].partition == items[i].msg->partition &&
                            items[i].msg->offset + 1 > p->parts[j].next)
                                p->parts[j].next = items[i].msg->offset + 1;
}

/* Retries the batch until it commits. 0, or -1 when stopping first. */
static int commit_batch(projector_t *p, item_t *items, size_t n)
{
        char err[512], attempt[16];
        int backoff = 100;

        for (int tries = 1;; tries++) {
                cm_pg_err_t rc = cm_pg_ensure(p->pg, 2000, err, sizeof(err));
                if (rc == CM_PG_OK)
                        rc = apply_batch(p, items, n, err, sizeof(err));
                if (rc == CM_PG_OK) {
                        set_db_state(p, 0, NULL);
                        return 0;
                }
                atomic_fetch_add(&p->retries, 1);
                snprintf(attempt, sizeof(attempt), "%d", tries);
                if (rc == CM_PG_ERR_CONN) {
                        set_db_state(p, 1, err);
                        cm_log_warn("database unavailable: the batch is retried", "error",
                                    err, "attempt", attempt);
                } else if (rc == CM_PG_ERR_QUERY &&
                           cm_pg_sqlstate_retryable(cm_pg_sqlstate(p->pg))) {
                        cm_log_info("transaction conflict: the batch is retried", "error",
                                    err);
                        continue;
                } else {
                        set_db_state(p, 1, err);
                        cm_log_error("batch failed: retried after a pause", "error", err,
                                     "attempt", attempt);
                        cm_service_sleep_ms(backoff);
                        backoff = backoff < 5000 ? backoff * 2 : 5000;
                }
                if (cm_service_stopping())
                        return -1;
        }
}

int projector_run_once(projector_t *p, int poll_ms)
{
        item_t *items = calloc(PROJECTOR_BATCH_MAX, sizeof(*items));
        size_t n = 0;
        char err[512];
        int rc = 0;

        if (!items)
                return 0;
        while (n < PROJECTOR_BATCH_MAX) {
                cm_kafka_message_t *m = NULL;
                if (cm_kafka_consumer_poll(p->consumer, n ? 0 : poll_ms, &m, err,
                                           sizeof(err)) != CM_KAFKA_OK)
                        continue; /* logged by the consumer; an error is no message */
                if (!m)
                        break;
                items[n].msg = m;
                decode_item(p, &items[n++]);
        }
        if (n > 0) {
                rc = commit_batch(p, items, n) ? -1 : 1;
                if (rc == 1) {
                        atomic_fetch_add(&p->batches, 1);
                        for (size_t i = 0; i < n; i++)
                                report_item(p, &items[i]);
                        note_progress(p, items, n);
                }
        }
        for (size_t i = 0; i < n; i++) {
                if (items[i].decoded) {
                        cm_projection_destroy(&items[i].pr);
                        cm_cluster_event_destroy(&items[i].ev);
                }
                cm_kafka_message_destroy(items[i].msg);
        }
        free(items);
        update_lag(p);
        return rc;
}

/* ------------------------------------------------------------------ health */

size_t projector_metrics(void *opaque, char *buf, size_t size)
{
        projector_t *p = opaque;
        int n = snprintf(
            buf, size,
            "# HELP cm_projector_events_projected_total Events applied to the read "
            "model.\n"
            "# TYPE cm_projector_events_projected_total counter\n"
            "cm_projector_events_projected_total %llu\n"
            "# HELP cm_projector_events_duplicate_total Events already applied, "
            "ignored.\n"
            "# TYPE cm_projector_events_duplicate_total counter\n"
            "cm_projector_events_duplicate_total %llu\n"
            "# HELP cm_projector_events_undecodable_total Messages that are no "
            "cm.ClusterEvent, skipped.\n"
            "# TYPE cm_projector_events_undecodable_total counter\n"
            "cm_projector_events_undecodable_total %llu\n"
            "# HELP cm_projector_events_invalid_total Events the read model refused, "
            "skipped.\n"
            "# TYPE cm_projector_events_invalid_total counter\n"
            "cm_projector_events_invalid_total %llu\n"
            "# HELP cm_projector_sequence_gaps_total Events applied after a hole in "
            "their "
            "cluster's seq (events lost upstream).\n"
            "# TYPE cm_projector_sequence_gaps_total counter\n"
            "cm_projector_sequence_gaps_total %llu\n"
            "# HELP cm_projector_events_late_total Out-of-order events that filled a "
            "hole in the history.\n"
            "# TYPE cm_projector_events_late_total counter\n"
            "cm_projector_events_late_total %llu\n"
            "# HELP cm_projector_batches_total Transactions committed.\n"
            "# TYPE cm_projector_batches_total counter\n"
            "cm_projector_batches_total %llu\n"
            "# HELP cm_projector_batch_retries_total Batches rolled back and retried.\n"
            "# TYPE cm_projector_batch_retries_total counter\n"
            "cm_projector_batch_retries_total %llu\n"
            "# HELP cm_projector_lag_messages Messages of the assigned partitions not "
            "applied yet (-1: unknown).\n"
            "# TYPE cm_projector_lag_messages gauge\n"
            "cm_projector_lag_messages %lld\n",
            (unsigned long long)atomic_load(&p->projected),
            (unsigned long long)atomic_load(&p->duplicates),
            (unsigned long long)atomic_load(&p->undecodable),
            (unsigned long long)atomic_load(&p->invalid),
            (unsigned long long)atomic_load(&p->gaps),
            (unsigned long long)atomic_load(&p->late),
            (unsigned long long)atomic_load(&p->batches),
            (unsigned long long)atomic_load(&p->retries),
            (long long)atomic_load(&p->lag));
        if (n < 0)
                return 0;
        return (size_t)n < size ? (size_t)n : size;
}

int projector_check(void *opaque, char *errstr, size_t errstr_size)
{
        projector_t *p = opaque;
        int rc = 0;

        pthread_mutex_lock(&p->lock);
        if (!p->started) {
                snprintf(errstr, errstr_size,
                         "not consuming yet (waiting for the database)");
                rc = 1;
        } else if (p->db_down) {
                snprintf(errstr, errstr_size, "database lost, retrying: %s", p->db_error);
                rc = 1;
        }
        pthread_mutex_unlock(&p->lock);
        return rc;
}
