/*
 * worker_prober.c - the prober (DESIGN §3 "Running ⇄ Unreachable", §7): every
 * probe.interval_s it probes the API server of every Running/Unreachable cluster this
 * worker is responsible for, and applies ProbeFailed / ProbeSucceeded through the
 * transition function when the answer differs from the state.
 *
 * Responsibility follows the commands: a cluster belongs to the worker whose consumer is
 * assigned the partition of cm.commands its name maps to, so the live workers share the
 * clusters and a worker that dies hands its clusters over with its partitions. Created
 * and imported clusters alike keep their kubeconfig sealed in cluster_state.
 *
 * One cm_probe handle per cluster is kept across rounds (the TLS connection is reused
 * while the server keeps it open) and dropped when the cluster leaves this worker, its
 * Running/Unreachable states, or gets another kubeconfig. Probes of different clusters
 * run on up to probe.parallelism threads at once, each handle on one thread at a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/kubeconfig.h"
#include "cm/log.h"
#include "cm/probe.h"
#include "cm/service.h"
#include "worker.h"

#define PSQL_LIST "w_probe_list"

typedef struct probe_entry_s {
        char *name;
        char digest[40];   /* md5 of the sealed kubeconfig the handle was made from */
        cm_probe_t *probe; /* NULL when the kubeconfig could not be used */
        char setup_error[1100];
        cm_state_t state; /* as read at the start of the round */
        int seen;         /* listed in this round */
        int ok;           /* result of this round */
        char error[1100];
} probe_entry_t;

struct worker_prober_s {
        worker_t *w;
        cm_pg_t *pg;
        pthread_t thread;
        int started;
        probe_entry_t *entries;
        size_t count, cap;
        int32_t partitions; /* of the commands topic (0: unknown) */
        unsigned generation;
        atomic_size_t next; /* the next entry a probing thread takes */
};

static probe_entry_t *entry_find(worker_prober_t *p, const char *name)
{
        for (size_t i = 0; i < p->count; i++)
                if (strcmp(p->entries[i].name, name) == 0)
                        return &p->entries[i];
        return NULL;
}

static void entry_clear(probe_entry_t *e)
{
        cm_probe_destroy(e->probe);
        free(e->name);
        memset(e, 0, sizeof(*e));
}

/* Drops the entries not seen in this round. */
static void entries_sweep(worker_prober_t *p)
{
        size_t k = 0;
        for (size_t i = 0; i < p->count; i++) {
                if (!p->entries[i].seen) {
                        entry_clear(&p->entries[i]);
                        continue;
                }
                if (k != i)
                        p->entries[k] = p->entries[i];
                k++;
        }
        p->count = k;
}

static int stop_cb(void *opaque)
{
        (void)opaque;
        return cm_service_stopping();
}

/* (Re)makes the handle of e from the stored kubeconfig. */
static void entry_setup(worker_prober_t *p, probe_entry_t *e, const char *digest)
{
        cm_kubeconfig_t *kc = NULL;
        char err[1024];
        cm_probe_destroy(e->probe);
        e->probe = NULL;
        e->setup_error[0] = '\0';
        snprintf(e->digest, sizeof(e->digest), "%s", digest);
        worker_err_t we =
            worker_kubeconfig_load(p->w, p->pg, e->name, &kc, err, sizeof(err));
        if (we != WORKER_OK) {
                snprintf(e->setup_error, sizeof(e->setup_error), "%s", err);
                if (we == WORKER_ERR_RETRY)
                        e->digest[0] = '\0'; /* try again next round */
                return;
        }
        if (cm_probe_new(kc, &e->probe, err, sizeof(err)) != CM_PROBE_OK) {
                snprintf(e->setup_error, sizeof(e->setup_error),
                         "cannot probe the API server: %s", err);
                e->digest[0] = '\0';
        }
        cm_kubeconfig_free(kc);
        if (e->probe) {
                long t = (long)p->w->conf->probe.timeout_s * 1000;
                cm_probe_set_timeouts(e->probe, t, t);
                cm_probe_set_cancel(e->probe, stop_cb, NULL);
        }
}

/* Is name this worker's? (its commands partition is assigned here) */
static int is_mine(const worker_prober_t *p, const char *name, const unsigned char *mine)
{
        int32_t part = cm_kafka_partition_for_key(name, strlen(name), p->partitions);
        return part >= 0 && part < p->partitions && mine[part];
}

/* The partitions of the commands topic assigned to this worker into mine[]; returns
 * how many, or -1 when unknown. */
static int assigned(worker_prober_t *p, unsigned char **mine)
{
        worker_t *w = p->w;
        char err[512];
        unsigned gen = cm_kafka_consumer_generation(w->consumer);
        if (p->partitions <= 0 || gen != p->generation) {
                int32_t cnt = 0;
                if (cm_kafka_consumer_partition_count(
                        w->consumer, w->conf->kafka.commands_topic, 5000, &cnt, err,
                        sizeof(err)) != CM_KAFKA_OK) {
                        cm_log_warn("prober cannot read the partition count", "error",
                                    err);
                        return -1;
                }
                p->partitions = cnt;
                p->generation = gen;
        }
        cm_kafka_partition_t *parts = NULL;
        size_t n = 0;
        if (cm_kafka_consumer_assignment(w->consumer, &parts, &n, err, sizeof(err)) !=
            CM_KAFKA_OK) {
                cm_log_warn("prober cannot read the assignment", "error", err);
                return -1;
        }
        *mine = calloc((size_t)p->partitions, 1);
        int count = 0;
        for (size_t i = 0; *mine && i < n; i++) {
                if (strcmp(parts[i].topic, w->conf->kafka.commands_topic) == 0 &&
                    parts[i].partition >= 0 && parts[i].partition < p->partitions) {
                        (*mine)[parts[i].partition] = 1;
                        count++;
                }
        }
        free(parts);
        return *mine ? count : -1;
}

/* Lists this worker's Running/Unreachable clusters into the entries. */
static int round_list(worker_prober_t *p)
{
        char err[512];
        PGresult *r = NULL;
        unsigned char *mine = NULL;
        if (assigned(p, &mine) < 0)
                return -1;
        if (cm_pg_exec_prepared(p->pg, PSQL_LIST, 0, NULL, NULL, NULL, 0, &r, err,
                                sizeof(err)) != CM_PG_OK) {
                cm_log_warn("prober cannot list clusters", "error", err);
                free(mine);
                return -1;
        }
        for (size_t i = 0; i < p->count; i++)
                p->entries[i].seen = 0;
        for (int i = 0; i < PQntuples(r) && !cm_service_stopping(); i++) {
                const char *name = PQgetvalue(r, i, 0), *digest = PQgetvalue(r, i, 2);
                if (!is_mine(p, name, mine))
                        continue;
                probe_entry_t *e = entry_find(p, name);
                if (!e) {
                        if (p->count == p->cap) {
                                size_t cap = p->cap ? p->cap * 2 : 64;
                                probe_entry_t *ne =
                                    realloc(p->entries, cap * sizeof(*ne));
                                if (!ne)
                                        break;
                                p->entries = ne;
                                p->cap = cap;
                        }
                        e = &p->entries[p->count];
                        memset(e, 0, sizeof(*e));
                        if (!(e->name = strdup(name)))
                                break;
                        p->count++;
                }
                e->seen = 1;
                e->state = cm_state_parse(PQgetvalue(r, i, 1));
                if (strcmp(e->digest, digest) != 0)
                        entry_setup(p, e, digest);
        }
        PQclear(r);
        free(mine);
        entries_sweep(p);
        return 0;
}

static void *probe_thread(void *arg)
{
        worker_prober_t *p = arg;
        size_t i;
        while ((i = atomic_fetch_add(&p->next, 1)) < p->count && !cm_service_stopping()) {
                probe_entry_t *e = &p->entries[i];
                if (!e->probe) {
                        e->ok = 0;
                        snprintf(e->error, sizeof(e->error), "%s", e->setup_error);
                        continue;
                }
                e->ok = cm_probe_version(e->probe, NULL, e->error, sizeof(e->error)) ==
                        CM_PROBE_OK;
        }
        return NULL;
}

/* Probes every entry, probe.parallelism at a time. */
static void round_probe(worker_prober_t *p)
{
        int threads = p->w->conf->probe.parallelism;
        if ((size_t)threads > p->count)
                threads = (int)p->count;
        pthread_t *t = calloc((size_t)threads + 1, sizeof(*t));
        int started = 0;
        atomic_store(&p->next, 0);
        for (int i = 0; t && i < threads; i++)
                if (pthread_create(&t[i], NULL, probe_thread, p) == 0)
                        started++;
        if (!started) /* no thread: probe on this one */
                probe_thread(p);
        for (int i = 0; i < started; i++)
                pthread_join(t[i], NULL);
        free(t);
}

/* Applies ProbeFailed / ProbeSucceeded for e in its own transaction. */
static void apply_change(worker_prober_t *p, probe_entry_t *e, cm_trigger_t trigger)
{
        worker_t *w = p->w;
        char err[1024], rb[128];
        cm_actor_t actor = {w->id, "system"};
        worker_cause_t cause = {NULL, NULL, &actor};
        worker_change_t change = {.error = trigger == CM_TRIGGER_PROBE_FAILED ? e->error
                                                                              : NULL};
        worker_outcome_t out;
        for (int attempt = 0; attempt < 3 && !cm_service_stopping(); attempt++) {
                worker_err_t we = WORKER_ERR_RETRY;
                if (cm_pg_ensure(p->pg, 2000, err, sizeof(err)) == CM_PG_OK &&
                    cm_pg_begin(p->pg, err, sizeof(err)) == CM_PG_OK) {
                        we = worker_transition_apply(w, p->pg, e->name, trigger, &cause,
                                                     &change, &out, err, sizeof(err));
                        if (we == WORKER_OK)
                                we = worker_pg_err(p->pg,
                                                   cm_pg_commit(p->pg, err, sizeof(err)));
                }
                if (we == WORKER_OK) {
                        if (out.result != WORKER_TX_APPLIED)
                                return; /* the state moved meanwhile: nothing to do */
                        atomic_fetch_add(&w->metrics.probe_transitions, 1);
                        e->state = out.to;
                        if (trigger == CM_TRIGGER_PROBE_FAILED)
                                cm_log_warn("cluster unreachable", "cluster", e->name,
                                            "error", e->error);
                        else
                                cm_log_info("cluster reachable again", "cluster",
                                            e->name);
                        return;
                }
                cm_pg_rollback(p->pg, rb, sizeof(rb));
                if (we == WORKER_ERR_FAIL)
                        break;
        }
        cm_log_warn("prober cannot apply a probe result; next round tries again",
                    "cluster", e->name, "trigger", cm_fsm_event_type(trigger), "error",
                    err);
}

static void round_apply(worker_prober_t *p)
{
        for (size_t i = 0; i < p->count && !cm_service_stopping(); i++) {
                probe_entry_t *e = &p->entries[i];
                atomic_fetch_add(
                    e->ok ? &p->w->metrics.probes_ok : &p->w->metrics.probes_failed, 1);
                if (e->state == CM_STATE_RUNNING && !e->ok)
                        apply_change(p, e, CM_TRIGGER_PROBE_FAILED);
                else if (e->state == CM_STATE_UNREACHABLE && e->ok)
                        apply_change(p, e, CM_TRIGGER_PROBE_SUCCEEDED);
        }
}

static void *prober_main(void *arg)
{
        worker_prober_t *p = arg;
        char err[512];
        int interval = p->w->conf->probe.interval_s * 1000;
        while (!cm_service_stopping()) {
                int64_t start = worker_mono_ms();
                if (cm_pg_ensure(p->pg, 2000, err, sizeof(err)) != CM_PG_OK) {
                        cm_log_warn("prober waiting for PostgreSQL", "error", err);
                        cm_service_sleep_ms(1000);
                        continue;
                }
                if (round_list(p) == 0) {
                        if (p->count > 0) {
                                round_probe(p);
                                round_apply(p);
                        }
                        worker_metrics_t *m = &p->w->metrics;
                        atomic_store(&m->probe_round_ms,
                                     (unsigned long)(worker_mono_ms() - start));
                        atomic_store(&m->probe_round_clusters, (unsigned long)p->count);
                        unsigned long rounds = atomic_fetch_add(&m->probe_rounds, 1) + 1;
                        if (p->count > 0) {
                                char cl[32], secs[32], nr[32];
                                snprintf(cl, sizeof(cl), "%zu", p->count);
                                snprintf(secs, sizeof(secs), "%.3f",
                                         (double)atomic_load(&m->probe_round_ms) /
                                             1000.0);
                                snprintf(nr, sizeof(nr), "%lu", rounds);
                                cm_log_info("prober round", "round", nr, "clusters", cl,
                                            "seconds", secs);
                        }
                }
                int64_t left = interval - (worker_mono_ms() - start);
                if (left > 0)
                        cm_service_sleep_ms((int)left);
        }
        return NULL;
}

int worker_prober_start(worker_t *w, char *errstr, size_t errstr_size)
{
        worker_prober_t *p = calloc(1, sizeof(*p));
        if (!p) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        p->w = w;
        w->prober = p;
        if (!(p->pg = cm_pg_new_config(w->conf, errstr, errstr_size)))
                return -1;
        cm_pg_err_t e = worker_sql_prepare(p->pg, errstr, errstr_size);
        if (!cm_pg_err_is_bad_statement(e))
                e = worker_kubeconfig_prepare(p->pg, errstr, errstr_size);
        if (!cm_pg_err_is_bad_statement(e))
                e = cm_pg_prepare(p->pg, PSQL_LIST,
                                  "SELECT name, state, md5(kubeconfig_sealed)"
                                  "  FROM cluster_state"
                                  " WHERE state IN ('Running', 'Unreachable')"
                                  "   AND kubeconfig_sealed IS NOT NULL ORDER BY name",
                                  0, errstr, errstr_size);
        if (cm_pg_err_is_bad_statement(e))
                return -1;
        if (pthread_create(&p->thread, NULL, prober_main, p) != 0) {
                snprintf(errstr, errstr_size, "cannot start the prober thread");
                return -1;
        }
        p->started = 1;
        return 0;
}

void worker_prober_join(worker_t *w)
{
        worker_prober_t *p = w->prober;
        if (!p)
                return;
        if (p->started)
                pthread_join(p->thread, NULL);
        for (size_t i = 0; i < p->count; i++)
                entry_clear(&p->entries[i]);
        free(p->entries);
        cm_pg_destroy(p->pg);
        free(p);
        w->prober = NULL;
}
