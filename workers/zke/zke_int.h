/*
 * zke_int.h - what the steps of a zke job share (one zke_run_t per zke_up/zke_remove
 * call). Not for use outside workers/zke/.
 */
#ifndef CM_ZKE_INT_H
#define CM_ZKE_INT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "cm/pki.h"
#include "cm/plan.h"
#include "cm/ssh.h"
#include "zke.h"

/* Pre-check limits. */
#define ZKE_MIN_DOCKER_MAJOR 20 /* 20.10: what cri-dockerd supports */
#define ZKE_MIN_DOCKER_MINOR 10
#define ZKE_MIN_DISK_KB      (2L * 1024 * 1024) /* 2 GiB free for images and etcd */
#define ZKE_MAX_CLOCK_SKEW_S 10 /* certificates and etcd leases need close clocks */
#define ZKE_JOIN_HEALTH_S    60 /* a new etcd member syncs, then answers */

typedef struct zke_node_s {
        const cm_node_t *node; /* borrowed from the spec or the previous nodes */
        bool removed;          /* a previous worker node that is no longer wanted */
        char *root;            /* ctx->node_root filled for this node ("" when none) */
        cm_ssh_t *ssh;
        char label[300]; /* "name (address)" */
        /* what the pre-check learned */
        char hostname[256];
        char cgroup_driver[64];
} zke_node_t;

typedef struct zke_run_s {
        const zke_ctx_t *ctx;
        const char *cluster;
        atomic_int cancel; /* the cm/ssh.h flag, raised by the watcher thread */
        atomic_int stop;   /* ends the watcher */
        pthread_t watcher;
        bool watching;
        pthread_mutex_t mu; /* progress calls, counters */
        cm_ssh_key_t *key;
        zke_node_t *nodes;
        size_t n;
        int parallelism;
        int timeout_ms;         /* per remote command */
        int connect_timeout_ms; /* per connection */
        cm_plan_t *plan;
        json_t *plan_json; /* the plan file itself: its health and cleanup sections */
        cm_plan_steps_t *steps;
        cm_pki_bundle_t *bundle;
        char cgroup_driver[64];
        atomic_int changed;
        zke_result_t *result;
} zke_run_t;

/* A function run for node index i (into run->nodes) by zke_each(). */
typedef int (*zke_node_fn)(zke_run_t *run, size_t i, void *arg, char *errstr,
                           size_t errstr_size);

/*
 * Runs fn for each node index in idx[0..count) in parallel (run->parallelism). On a
 * failure sets result->error to "<what>: <summary naming every failed node>" (or
 * "canceled") and returns -1; 0 when every node succeeded.
 */
int zke_each(zke_run_t *run, const char *what, const size_t *idx, size_t count,
             zke_node_fn fn, void *arg);

/* Runs fn on every node that is not `removed` (want_removed false) or that is. */
int zke_each_node(zke_run_t *run, const char *what, bool want_removed, zke_node_fn fn,
                  void *arg);

/* Progress (serialized). lines may be NULL. */
void zke_progress(zke_run_t *run, const char *step, const char *node, const char *status,
                  const char *const *lines, size_t n);
void zke_progressf(zke_run_t *run, const char *step, const char *node, const char *status,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

bool zke_canceled(zke_run_t *run);
/* Sets result->error (first one wins) to the formatted message. */
void zke_fail(zke_run_t *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Runs command on node i with the job's timeout; *out (may be NULL) receives stdout
 * (malloc'd, caller frees), *status the exit status. Returns the cm/ssh.h code with the
 * message in errstr.
 */
cm_ssh_err_t zke_exec(zke_run_t *run, size_t i, const char *command, int *status,
                      char **out, char *errstr, size_t errstr_size);

/* Appends "sep" + formatted text to buf (bounded). */
void zke_append(char *buf, size_t size, const char *sep, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A single-quoted shell word of s (malloc'd). */
char *zke_shell_quote(const char *s);

/* The pre-check's probe script, run on each node after a line "ZKE_ROOT=<root>"
 * (bench/run gives the same script to its baselines). */
const char *zke_precheck_probe(void);

/* The steps, one file each. */
int zke_connect(zke_run_t *run);
int zke_precheck(zke_run_t *run);
int zke_pki(zke_run_t *run);
int zke_render(zke_run_t *run, bool update); /* the plan's per-node steps */
int zke_distribute(zke_run_t *run);
int zke_planes(zke_run_t *run);
int zke_teardown(zke_run_t *run, bool removed_only);
int zke_health(zke_run_t *run);
int zke_addons(zke_run_t *run);
int zke_kubeconfig(zke_run_t *run);

#endif
