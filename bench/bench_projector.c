/*
 * bench_projector.c - the projector row: cluster events produced onto cm.events and the
 * time until cm-projector has them all in the read model (cluster_events), and its
 * baseline: COPY of the very rows the projector wrote (clusters, cluster_events,
 * command_results) back into the same, emptied tables, in one transaction.
 *
 * Each event is a cluster's first (CreateRequested, seq 1, with a command id), as the
 * worker's relay publishes it, so every event makes one row in each of the three tables.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cm/event.h"
#include "cm/fsm.h"

int bench_events(const bench_opts_t *o)
{
        char err[512], name[200], id[37], event_id[37];
        if (o->n <= 0 || !o->conninfo)
                bench_die("--n and --conninfo are required");
        const cm_fsm_transition_t *t =
            cm_fsm_apply(CM_STATE_NONE, CM_TRIGGER_CREATE, "x", err, sizeof(err));
        if (!t)
                bench_die("the state machine refuses Create: %s", err);

        char **keys = calloc((size_t)o->n + 1, sizeof(char *));
        unsigned char **msgs = calloc((size_t)o->n + 1, sizeof(unsigned char *));
        size_t *lens = calloc((size_t)o->n + 1, sizeof(size_t));
        for (long i = 0; i <= o->n; i++) { /* [n]: the warm-up */
                cm_spec_t spec;
                snprintf(name, sizeof(name), "%s-%ld", o->prefix, i);
                bench_spec(&spec, name);
                bench_uuid(id);
                bench_uuid(event_id);
                cm_cluster_event_t ev = {0};
                ev.cluster = name;
                ev.seq = 1;
                ev.event_id = event_id;
                ev.command_id = id;
                ev.type = (char *)cm_fsm_event_type(CM_TRIGGER_CREATE);
                ev.to_state = (char *)cm_state_name(t->to);
                ev.at = bench_epoch_ms();
                ev.actor.name = "bench";
                ev.actor.role = "admin";
                ev.spec = &spec;
                if (cm_cluster_event_encode(&ev, &msgs[i], &lens[i], err, sizeof(err)) !=
                    0)
                        bench_die("event encode: %s", err);
                keys[i] = strdup(name);
                cm_spec_destroy(&spec);
        }
        PGconn *db = bench_pg_connect(o->conninfo);
        long long before = bench_pg_count(db, "SELECT count(*) FROM cluster_events");
        PQfinish(db);
        int rc = bench_produce_and_wait(o, "events", keys, msgs, lens,
                                        "SELECT count(*) FROM cluster_events", before);
        bench_free_messages(keys, msgs, lens, o->n + 1);
        return rc;
}

/* ------------------------------------------------------------------ the baseline */

static const char *const copy_tables[] = {"clusters", "cluster_events",
                                          "command_results"};
#define COPY_TABLES (sizeof(copy_tables) / sizeof(copy_tables[0]))

typedef struct copy_buf_s {
        char *data;
        size_t len, cap;
        long long rows;
} copy_buf_t;

static void exec_ok(PGconn *db, const char *sql, ExecStatusType want)
{
        PGresult *r = PQexec(db, sql);
        if (PQresultStatus(r) != want)
                bench_die("%s: %s", sql, PQerrorMessage(db));
        PQclear(r);
}

/* COPY table TO STDOUT (text format) into b. */
static void copy_out(PGconn *db, const char *table, copy_buf_t *b)
{
        char sql[200];
        char *line;
        int n;
        snprintf(sql, sizeof(sql), "COPY %s TO STDOUT", table);
        exec_ok(db, sql, PGRES_COPY_OUT);
        while ((n = PQgetCopyData(db, &line, 0)) > 0) {
                if (b->len + (size_t)n > b->cap) {
                        b->cap = (b->len + (size_t)n) * 2;
                        if (!(b->data = realloc(b->data, b->cap)))
                                bench_die("out of memory");
                }
                memcpy(b->data + b->len, line, (size_t)n);
                b->len += (size_t)n;
                b->rows++;
                PQfreemem(line);
        }
        PGresult *r = PQgetResult(db);
        if (n != -1 || PQresultStatus(r) != PGRES_COMMAND_OK)
                bench_die("%s: %s", sql, PQerrorMessage(db));
        PQclear(r);
}

/* COPY table FROM STDIN of b. */
static void copy_in(PGconn *db, const char *table, const copy_buf_t *b)
{
        char sql[200];
        snprintf(sql, sizeof(sql), "COPY %s FROM STDIN", table);
        exec_ok(db, sql, PGRES_COPY_IN);
        for (size_t off = 0; off < b->len; off += 65536) {
                size_t chunk = b->len - off < 65536 ? b->len - off : 65536;
                if (PQputCopyData(db, b->data + off, (int)chunk) != 1)
                        bench_die("%s: %s", sql, PQerrorMessage(db));
        }
        if (PQputCopyEnd(db, NULL) != 1)
                bench_die("%s: %s", sql, PQerrorMessage(db));
        PGresult *r = PQgetResult(db);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
                bench_die("%s: %s", sql, PQerrorMessage(db));
        PQclear(r);
        while ((r = PQgetResult(db)))
                PQclear(r);
}

int bench_copy(const bench_opts_t *o)
{
        copy_buf_t bufs[COPY_TABLES] = {0};
        char sql[200];
        long long rows = 0;
        if (!o->conninfo)
                bench_die("--conninfo is required");
        PGconn *db = bench_pg_connect(o->conninfo);
        long long events = bench_pg_count(db, "SELECT count(*) FROM cluster_events");
        if (events <= 0)
                bench_die("the read model has no events to copy");
        for (size_t i = 0; i < COPY_TABLES; i++) {
                copy_out(db, copy_tables[i], &bufs[i]);
                rows += bufs[i].rows;
        }
        exec_ok(db, "TRUNCATE clusters, cluster_events, command_results",
                PGRES_COMMAND_OK);
        exec_ok(db, "CHECKPOINT", PGRES_COMMAND_OK);

        double t0 = bench_now();
        exec_ok(db, "BEGIN", PGRES_COMMAND_OK);
        for (size_t i = 0; i < COPY_TABLES; i++)
                copy_in(db, copy_tables[i], &bufs[i]);
        exec_ok(db, "COMMIT", PGRES_COMMAND_OK);
        double secs = bench_now() - t0;

        int bad = 0;
        for (size_t i = 0; i < COPY_TABLES; i++) {
                snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", copy_tables[i]);
                long long got = bench_pg_count(db, sql);
                if (got != bufs[i].rows) {
                        fprintf(stderr,
                                "cm-bench: %s has %lld rows after COPY, not %lld\n",
                                copy_tables[i], got, bufs[i].rows);
                        bad = 1;
                }
                free(bufs[i].data);
        }
        printf(
            "{\"row\":\"copy\",\"n\":%lld,\"done\":%lld,\"rows\":%lld,\"seconds\":%.4f,"
            "\"rate\":%.1f,\"rows_per_s\":%.1f}\n",
            events, bad ? 0 : events, rows, secs, (double)events / secs,
            (double)rows / secs);
        PQfinish(db);
        return bad;
}
