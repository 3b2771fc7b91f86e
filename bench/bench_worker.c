/*
 * bench_worker.c - the worker row: Create commands produced onto cm.commands as fast as
 * possible and the time until one cm-worker has applied them all (applied_commands), and
 * its baseline: the statements the worker issues per Create command (worker_sql.c's, the
 * same text and parameters, one transaction per command) over one connection.
 *
 * The baseline computes every parameter (spec JSON, sealed key, encoded event, job
 * payload) before its clock starts: it measures the database alone, so the ratio is what
 * the worker costs beyond its SQL (Kafka, decoding, unsealing, validation, the relay).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cm/event.h"
#include "cm/fsm.h"
#include "cm/migrate.h"
#include "cm/pg.h"
#include "worker.h"

static atomic_long delivery_failures;

static void on_delivery(const cm_kafka_delivery_t *dr, void *opaque)
{
        (void)opaque;
        if (dr->err != CM_KAFKA_OK)
                atomic_fetch_add(&delivery_failures, 1);
}

static void load_keys(const bench_opts_t *o, cm_seal_pubkey_t *pk, unsigned char **key,
                      size_t *key_len)
{
        char err[256];
        if (!o->pub || !o->sshkey)
                bench_die("--pub and --sshkey are required");
        if (cm_seal_pubkey_load(pk, o->pub, err, sizeof(err)) != CM_SEAL_OK)
                bench_die("%s", err);
        *key = (unsigned char *)bench_read_file(o->sshkey, key_len);
}

cm_kafka_producer_t *bench_producer(const bench_opts_t *o)
{
        char err[512];
        if (!o->bootstrap || !o->topic)
                bench_die("--bootstrap and --topic are required");
        cm_kafka_conf_t kc = {.bootstrap_servers = o->bootstrap, .client_id = "cm-bench"};
        cm_kafka_producer_t *p =
            cm_kafka_producer_new(&kc, on_delivery, NULL, err, sizeof(err));
        if (!p)
                bench_die("producer: %s", err);
        if (cm_kafka_producer_ready(p, o->topic, 10000, err, sizeof(err)) != CM_KAFKA_OK)
                bench_die("broker not ready: %s", err);
        return p;
}

/* Enqueues one message, waiting while the producer's local queue is full. */
static void produce_one(cm_kafka_producer_t *p, const bench_opts_t *o, const char *key,
                        const unsigned char *msg, size_t len)
{
        char err[512];
        cm_kafka_err_t e;
        int tries = 0; /* a full local queue empties as the broker takes them */
        while ((e = cm_kafka_produce(p, o->topic, key, strlen(key), msg, len, NULL, 0,
                                     NULL, err, sizeof(err))) == CM_KAFKA_ERR_PRODUCE &&
               ++tries < 10000)
                bench_sleep_ms(1);
        if (e != CM_KAFKA_OK)
                bench_die("produce: %s", err);
}

int bench_produce_and_wait(const bench_opts_t *o, const char *what, char **keys,
                           unsigned char **msgs, size_t *lens, const char *count_sql,
                           long long before)
{
        char err[512];
        cm_kafka_producer_t *p = bench_producer(o);
        PGconn *db = bench_pg_connect(o->conninfo);

        /* Warm-up: the last message alone, until it is there, so that the consumer's
         * group join and partition assignment are not on the clock. */
        produce_one(p, o, keys[o->n], msgs[o->n], lens[o->n]);
        if (cm_kafka_producer_flush(p, 60000, err, sizeof(err)) != CM_KAFKA_OK)
                bench_die("flush: %s", err);
        if (bench_pg_wait_count(db, count_sql, before + 1, o->timeout_s) < before + 1)
                bench_die("the warm-up message did not arrive within %d s", o->timeout_s);
        before++;

        double t0 = bench_now();
        for (long i = 0; i < o->n; i++)
                produce_one(p, o, keys[i], msgs[i], lens[i]);
        if (cm_kafka_producer_flush(p, 60000, err, sizeof(err)) != CM_KAFKA_OK)
                bench_die("flush: %s", err);
        double produced = bench_now() - t0;
        long long got = bench_pg_wait_count(db, count_sql, before + o->n, o->timeout_s);
        double secs = bench_now() - t0;
        long long done = got - before;
        printf(
            "{\"row\":\"%s\",\"n\":%ld,\"done\":%lld,\"produce_s\":%.4f,\"seconds\":%.4f,"
            "\"rate\":%.1f,\"delivery_failures\":%ld}\n",
            what, o->n, done, produced, secs, done > 0 ? (double)done / secs : 0.0,
            atomic_load(&delivery_failures));
        PQfinish(db);
        cm_kafka_producer_destroy(p, 5000);
        if (done < o->n)
                fprintf(stderr, "cm-bench: only %lld of %ld %s arrived within %d s\n",
                        done, o->n, what, o->timeout_s);
        return done < o->n;
}

int bench_commands(const bench_opts_t *o)
{
        cm_seal_pubkey_t pk;
        unsigned char *key;
        size_t key_len;
        char err[512], name[200];
        load_keys(o, &pk, &key, &key_len);
        if (o->n <= 0 || !o->conninfo)
                bench_die("--n and --conninfo are required");

        char **keys = calloc((size_t)o->n + 1, sizeof(char *));
        unsigned char **msgs = calloc((size_t)o->n + 1, sizeof(unsigned char *));
        size_t *lens = calloc((size_t)o->n + 1, sizeof(size_t));
        for (long i = 0; i <= o->n; i++) { /* [n]: the warm-up */
                cm_command_t cmd;
                snprintf(name, sizeof(name), "%s-%ld", o->prefix, i);
                bench_create_command(&cmd, name, &pk, key, key_len);
                if (cm_command_encode(&cmd, &msgs[i], &lens[i], err, sizeof(err)) != 0)
                        bench_die("encode: %s", err);
                keys[i] = strdup(name);
                cm_command_destroy(&cmd);
        }
        free(key);
        PGconn *db = bench_pg_connect(o->conninfo);
        long long before = bench_pg_count(db, "SELECT count(*) FROM applied_commands");
        PQfinish(db);
        int rc = bench_produce_and_wait(o, "commands", keys, msgs, lens,
                                        "SELECT count(*) FROM applied_commands", before);
        bench_free_messages(keys, msgs, lens, o->n + 1);
        return rc;
}

/* ------------------------------------------------------------------ the baseline */

typedef struct sql_cmd_s {
        char name[200], id[37], job_id[37];
        const char *to; /* the state a Create leads to */
        char *spec_json, *payload;
        unsigned char *key_sealed, *event;
        size_t key_sealed_len, event_len;
} sql_cmd_t;

/* The parameters the worker computes for an accepted Create of name. */
static void sql_cmd_build(sql_cmd_t *s, const char *name, const cm_seal_pubkey_t *pk,
                          const unsigned char *key, size_t key_len, const char *to)
{
        cm_command_t cmd;
        char err[512];
        bench_create_command(&cmd, name, pk, key, key_len);
        snprintf(s->name, sizeof(s->name), "%s", name);
        s->to = to;
        snprintf(s->id, sizeof(s->id), "%s", cmd.id);
        bench_uuid(s->job_id);
        json_t *j = cm_spec_to_json(&cmd.create.spec);
        s->spec_json = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(j);
        s->key_sealed = cmd.create.ssh_key;
        s->key_sealed_len = cmd.create.ssh_key_len;
        cmd.create.ssh_key = NULL;

        char event_id[37];
        bench_uuid(event_id);
        cm_cluster_event_t ev = {0};
        ev.cluster = s->name;
        ev.seq = 1;
        ev.event_id = event_id;
        ev.command_id = s->id;
        ev.type = (char *)cm_fsm_event_type(CM_TRIGGER_CREATE);
        ev.to_state = (char *)to;
        ev.at = bench_epoch_ms();
        ev.actor = cmd.actor;
        ev.spec = &cmd.create.spec;
        if (cm_cluster_event_encode(&ev, &s->event, &s->event_len, err, sizeof(err)) != 0)
                bench_die("event encode: %s", err);

        json_t *p = json_pack(
            "{s:s,s:s,s:o}", "reason", "create", "commandId", s->id, "nodes",
            cm_nodes_to_json(cmd.create.spec.nodes, cmd.create.spec.node_count));
        s->payload = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(p);
        if (!s->spec_json || !s->payload)
                bench_die("out of memory");
        cm_command_destroy(&cmd);
}

static void must(cm_pg_t *pg, cm_pg_err_t e, const char *what, const char *err)
{
        if (e != CM_PG_OK)
                bench_die("%s: %s (SQLSTATE %s)", what, err, cm_pg_sqlstate(pg));
}

/* One Create as cm-worker runs it (worker_commands.c command_tx, worker_transition.c). */
static void sql_cmd_run(cm_pg_t *pg, const sql_cmd_t *s)
{
        char err[1024];
        PGresult *r = NULL;
        const char *lock_v[1] = {s->name};
        const char *seen_v[1] = {s->id};
        const char *ins_v[7] = {
            s->name, s->to,  "1", s->spec_json, (const char *)s->key_sealed,
            NULL,    "false"};
        int ins_l[7] = {0, 0, 0, 0, (int)s->key_sealed_len, 0, 0};
        const char *out_v[3] = {s->name, "1", (const char *)s->event};
        int out_l[3] = {0, 0, (int)s->event_len};
        const char *job_v[4] = {s->job_id, s->name, "zke-up", s->payload};
        const char *notify_v[1] = {s->name};
        const char *rec_v[4] = {s->id, s->name, "applied", NULL};

        must(pg, cm_pg_begin(pg, err, sizeof(err)), "BEGIN", err);
        for (int lock = 0; lock < 2; lock++) { /* command_tx, then the transition */
                must(pg,
                     worker_sql_exec(pg, WSQL_STATE_LOCK, 1, lock_v, NULL, 0, &r, err,
                                     sizeof(err)),
                     WSQL_STATE_LOCK, err);
                PQclear(r);
                if (lock)
                        break;
                must(pg,
                     worker_sql_exec(pg, WSQL_CMD_SEEN, 1, seen_v, NULL, 0, &r, err,
                                     sizeof(err)),
                     WSQL_CMD_SEEN, err);
                PQclear(r);
        }
        must(pg,
             worker_sql_exec(pg, WSQL_STATE_INSERT, 7, ins_v, ins_l,
                             (1u << 4) | (1u << 5), &r, err, sizeof(err)),
             WSQL_STATE_INSERT, err);
        PQclear(r);
        must(pg,
             worker_sql_exec(pg, WSQL_OUTBOX_APPEND, 3, out_v, out_l, 1u << 2, NULL, err,
                             sizeof(err)),
             WSQL_OUTBOX_APPEND, err);
        must(pg,
             worker_sql_exec(pg, WSQL_JOB_INSERT, 4, job_v, NULL, 0, NULL, err,
                             sizeof(err)),
             WSQL_JOB_INSERT, err);
        must(pg,
             worker_sql_exec(pg, WSQL_NOTIFY, 1, notify_v, NULL, 0, NULL, err,
                             sizeof(err)),
             WSQL_NOTIFY, err);
        must(pg,
             worker_sql_exec(pg, WSQL_CMD_RECORD, 4, rec_v, NULL, 0, NULL, err,
                             sizeof(err)),
             WSQL_CMD_RECORD, err);
        must(pg, cm_pg_commit(pg, err, sizeof(err)), "COMMIT", err);
}

int bench_worker_sql(const bench_opts_t *o)
{
        cm_seal_pubkey_t pk;
        unsigned char *key;
        size_t key_len;
        char err[1024], name[200];
        load_keys(o, &pk, &key, &key_len);
        if (o->n <= 0 || !o->conninfo)
                bench_die("--n and --conninfo are required");

        cm_pg_t *pg = cm_pg_new(o->conninfo, err, sizeof(err));
        if (!pg)
                bench_die("%s", err);
        must(pg, cm_pg_ensure(pg, 10000, err, sizeof(err)), "connect", err);
        if (cm_migrate_run(pg, NULL, err, sizeof(err)) != CM_MIGRATE_OK)
                bench_die("migrate: %s", err);
        must(pg, worker_sql_prepare(pg, err, sizeof(err)), "prepare", err);

        const cm_fsm_transition_t *t =
            cm_fsm_apply(CM_STATE_NONE, CM_TRIGGER_CREATE, "x", err, sizeof(err));
        if (!t)
                bench_die("the state machine refuses Create: %s", err);
        sql_cmd_t *cmds = calloc((size_t)o->n, sizeof(*cmds));
        for (long i = 0; i < o->n; i++) {
                snprintf(name, sizeof(name), "%s-%ld", o->prefix, i);
                sql_cmd_build(&cmds[i], name, &pk, key, key_len, cm_state_name(t->to));
        }
        double t0 = bench_now();
        for (long i = 0; i < o->n; i++)
                sql_cmd_run(pg, &cmds[i]);
        double secs = bench_now() - t0;

        PGresult *r = NULL;
        must(
            pg,
            cm_pg_exec(pg, "SELECT count(*) FROM applied_commands", &r, err, sizeof(err)),
            "count", err);
        long long done = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        printf("{\"row\":\"worker-sql\",\"n\":%ld,\"done\":%lld,\"seconds\":%.4f,"
               "\"rate\":%.1f}\n",
               o->n, done, secs, (double)o->n / secs);
        for (long i = 0; i < o->n; i++) {
                free(cmds[i].spec_json);
                free(cmds[i].payload);
                free(cmds[i].key_sealed);
                free(cmds[i].event);
        }
        free(cmds);
        free(key);
        cm_pg_destroy(pg);
        return done < o->n;
}
