/*
 * bench.h - cm-bench, the drivers of bench/run: each subcommand loads one part of cm (or
 * its baseline) as fast as it can, or at a fixed pace, and prints one JSON line with what
 * it measured. bench/run starts the services, pairs the rows and writes the results.
 *
 *   bench_main.c       options, subcommand dispatch, shared helpers (this header)
 *   bench_worker.c     commands: Create commands onto cm.commands, until applied;
 *                      worker-sql: the worker's own statements over one connection
 *   bench_projector.c  events: cluster events onto cm.events, until projected;
 *                      copy: COPY of the projected rows into the same tables
 *   bench_e2e.c        pace: POST /v1/clusters at a fixed rate, latency to the read model
 *   bench_zke.c        zke-precheck: zke's connect + precheck steps over sshd nodes;
 *                      zke-script: the probe script the pre-check runs (for baselines)
 *   bench_prober.c     imports: Import commands onto cm.commands, until Running
 *
 * Single-threaded except bench_e2e.c's listener. Traffic goes to the addresses given on
 * the command line only (bench/run gives 127.0.0.1).
 */
#ifndef CM_BENCH_H
#define CM_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "cm/command.h"
#include "cm/kafka.h"
#include "cm/seal.h"
#include "cm/spec.h"

typedef struct bench_opts_s {
        const char *bootstrap; /* Kafka bootstrap servers */
        const char *topic;
        const char *conninfo;   /* PostgreSQL */
        const char *pub;        /* the manager's sealing public key file */
        const char *sshkey;     /* an SSH private key file (sealed before it leaves) */
        const char *prefix;     /* cluster names: <prefix>-<i> */
        const char *url;        /* cm-api base URL */
        const char *token;      /* cm-api admin token */
        long n;                 /* how many commands / events */
        double rate;            /* pace: requests per second */
        double seconds;         /* pace: how long */
        int concurrency;        /* pace: connections at most */
        int timeout_s;          /* how long to wait for the last row */
        const char *user;       /* zke-precheck: the nodes' SSH user */
        int port;               /* zke-precheck: the nodes' SSH port */
        const char *kubeconfig; /* imports: a kubeconfig file per line of this list */
        long start;             /* imports: first index of the names */
} bench_opts_t;

/* Seconds on the monotonic clock. */
double bench_now(void);
/* Milliseconds since the Unix epoch. */
int64_t bench_epoch_ms(void);
void bench_sleep_ms(int ms);
/* A new lower-case UUID into buf[37]. */
void bench_uuid(char buf[37]);
/* The whole file, NUL-terminated (caller frees), or NULL with a message on stderr. */
char *bench_read_file(const char *path, size_t *len);
/* Prints "cm-bench: <message>" on stderr and exits 1. */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* A connection or exit. */
PGconn *bench_pg_connect(const char *conninfo);
/* The first column of the first row of sql as a number (exits on error). */
long long bench_pg_count(PGconn *db, const char *sql);
/* Polls sql every 10 ms until it returns >= want or timeout_s passes; returns the count.
 */
long long bench_pg_wait_count(PGconn *db, const char *sql, long long want, int timeout_s);
/* p in [0,1] of sorted values[0..n) (nearest rank); 0 when n is 0. */
double bench_percentile(const double *sorted, size_t n, double p);

/* The spec every benchmark cluster has: loopback addresses only (bench/run's rule). */
#define BENCH_SPEC_JSON_FMT                                                              \
        "{\"name\":\"%s\",\"sshUser\":\"root\",\"managerAddress\":\"127.0.0.1\","        \
        "\"clusterDomain\":\"cluster.local\",\"nodes\":[{\"name\":\"cp1\",\"address\":"  \
        "\"127.0.0.2\",\"roles\":[\"controlplane\",\"etcd\"]},{\"name\":\"w1\","         \
        "\"address\":\"127.0.0.3\",\"roles\":[\"worker\"]}]}"

/* The benchmark spec of cluster name into *spec (owned by the caller). */
void bench_spec(cm_spec_t *spec, const char *name);
/* A Create command of cluster name, as cm-api builds it: sshKey sealed for pk. */
void bench_create_command(cm_command_t *cmd, const char *name, const cm_seal_pubkey_t *pk,
                          const unsigned char *key, size_t key_len);

/* A producer for o->bootstrap, once o->topic is there (exits on failure). */
cm_kafka_producer_t *bench_producer(const bench_opts_t *o);
/*
 * Produces msgs[o->n] (key keys[o->n]) and waits until count_sql counts it (the warm-up:
 * the consumer has joined and been assigned), then, on the clock, the o->n messages
 * msgs[i] (key keys[i]) onto o->topic as fast as the producer takes them, and polls
 * count_sql until it counts them all. Prints the JSON line
 * (row what); returns 0 when every row arrived within o->timeout_s.
 */
int bench_produce_and_wait(const bench_opts_t *o, const char *what, char **keys,
                           unsigned char **msgs, size_t *lens, const char *count_sql,
                           long long before);

/* Frees n keys and messages and the three arrays. */
void bench_free_messages(char **keys, unsigned char **msgs, size_t *lens, long n);

int bench_commands(const bench_opts_t *o);
int bench_worker_sql(const bench_opts_t *o);
int bench_events(const bench_opts_t *o);
int bench_copy(const bench_opts_t *o);
int bench_pace(const bench_opts_t *o);
int bench_zke_precheck(const bench_opts_t *o);
int bench_zke_script(void);
int bench_imports(const bench_opts_t *o);

#endif
