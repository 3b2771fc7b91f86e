/*
 * bench_prober.c - the prober scale row's setup: Import commands (kubeconfig sealed for
 * the manager's key, as cm-api builds them) onto cm.commands, then waits until the
 * worker has run their connect jobs and every imported cluster is Running.
 *
 *   cm-bench imports --bootstrap B --topic T --conninfo C --pub F --kubeconfig LIST
 *                    --n N --start I --prefix P [--timeout S]
 *       clusters <P>-<I> .. <P>-<I+N-1>; cluster i gets the kubeconfig file i mod k of
 *       the k comma-separated files of LIST. Prints
 *       {"row":"imports","n":N,"done":<Running>,"seconds":S,"rate":<clusters/s>}
 *
 * The prober's round times themselves are read from cm-worker's /metrics by bench/run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

int bench_imports(const bench_opts_t *o)
{
        char err[512];
        if (o->n <= 0 || !o->conninfo || !o->pub || !o->kubeconfig)
                bench_die("imports needs --n --conninfo --pub --kubeconfig");
        cm_seal_pubkey_t pk;
        if (cm_seal_pubkey_load(&pk, o->pub, err, sizeof(err)) != CM_SEAL_OK)
                bench_die("%s", err);
        char *files[64], *list = strdup(o->kubeconfig), *save = NULL;
        size_t lens[64], k = 0;
        for (char *f = strtok_r(list, ",", &save); f && k < 64;
             f = strtok_r(NULL, ",", &save), k++)
                files[k] = bench_read_file(f, &lens[k]);
        free(list);
        if (k == 0)
                bench_die("--kubeconfig: no file given");

        cm_kafka_producer_t *p = bench_producer(o);
        PGconn *db = bench_pg_connect(o->conninfo);
        char count_sql[512];
        snprintf(count_sql, sizeof(count_sql),
                 "SELECT count(*) FROM cluster_state WHERE state = 'Running'"
                 " AND name LIKE '%s-%%'",
                 o->prefix);
        long long before = bench_pg_count(db, count_sql);
        double t0 = bench_now();
        for (long i = o->start; i < o->start + o->n; i++) {
                char name[200], id[37];
                snprintf(name, sizeof(name), "%s-%ld", o->prefix, i);
                bench_uuid(id);
                cm_command_t cmd = {.kind = CM_COMMAND_IMPORT,
                                    .id = id,
                                    .cluster = name,
                                    .actor = {"bench", "admin"},
                                    .issued_at = bench_epoch_ms()};
                size_t f = (size_t)i % k;
                if (cm_seal_seal(&pk, (const unsigned char *)files[f], lens[f],
                                 &cmd.import.kubeconfig, &cmd.import.kubeconfig_len, err,
                                 sizeof(err)) != CM_SEAL_OK)
                        bench_die("cannot seal the kubeconfig: %s", err);
                unsigned char *msg = NULL;
                size_t len = 0;
                if (cm_command_encode(&cmd, &msg, &len, err, sizeof(err)) != 0)
                        bench_die("encode: %s", err);
                free(cmd.import.kubeconfig);
                cm_kafka_err_t e;
                int tries = 0;
                while ((e = cm_kafka_produce(p, o->topic, name, strlen(name), msg, len,
                                             NULL, 0, NULL, err, sizeof(err))) ==
                           CM_KAFKA_ERR_PRODUCE &&
                       ++tries < 10000)
                        bench_sleep_ms(1);
                free(msg);
                if (e != CM_KAFKA_OK)
                        bench_die("produce: %s", err);
        }
        if (cm_kafka_producer_flush(p, 60000, err, sizeof(err)) != CM_KAFKA_OK)
                bench_die("flush: %s", err);
        long long got = bench_pg_wait_count(db, count_sql, before + o->n, o->timeout_s);
        double secs = bench_now() - t0;
        long long done = got - before;
        printf("{\"row\":\"imports\",\"n\":%ld,\"done\":%lld,\"seconds\":%.3f,"
               "\"rate\":%.1f}\n",
               o->n, done, secs, done > 0 ? (double)done / secs : 0.0);
        if (done < o->n)
                fprintf(stderr,
                        "cm-bench: only %lld of %ld imported clusters Running "
                        "within %d s\n",
                        done, o->n, o->timeout_s);
        PQfinish(db);
        cm_kafka_producer_destroy(p, 5000);
        for (size_t i = 0; i < k; i++)
                free(files[i]);
        return done < o->n;
}
