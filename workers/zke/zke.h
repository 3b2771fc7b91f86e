/*
 * zke.h - the zke-up and zke-remove jobs (DESIGN §7): Kubernetes installed, changed or
 * torn down on a cluster's nodes over SSH, idempotently.
 *
 * zke_up runs, over every node in parallel (at most zke.parallelism at once):
 *   1 connect     public-key auth; host keys pinned per address (first key trusted)
 *   2 precheck    container runtime and version, swap, ports the node's roles need,
 *                 disk space, clock skew, unique host names: every failure of every node
 *                 in one error
 *   3 pki         certificates built, or reused from the given bundle and renewed
 *   4 distribute  files per node by role (SFTP), only those whose content differs
 *   5 etcd, controlplane, worker planes: each container inspected, then created,
 *                 started, replaced or left alone (the plan's io.cm.plan-hash label);
 *                 worker nodes no longer in the spec are torn down
 *   7 health      the plan's health command on every controlplane node until it answers
 *   6 addons      network plugin and DNS, new clusters only (after health: kubectl apply
 *                 needs the API server)
 *   7 kubeconfig  the admin kubeconfig
 * zke_remove tears down every node: worker, controlplane, then etcd containers, any other
 * container with the plan label, then the plan's cleanup folders.
 *
 * This interface knows nothing of the job runner: the caller unseals the SSH key and the
 * certificate keys into memory, calls, then seals what comes back and stores it with the
 * host keys.
 *
 * Cancellation: ctx->canceled is polled every 100 ms from a thread of the job; once it
 * answers non-zero, remote commands are killed and the call returns within about 2 s
 * with result->canceled = 1.
 *
 * Progress: ctx->progress(opaque, step, node, status, lines, n) is called from the job's
 * threads, never two calls at once. step is one of connect, precheck, pki, distribute,
 * etcd, controlplane, worker, teardown, health, addons, kubeconfig, zke-up, zke-remove;
 * node is a node name or NULL for the whole cluster; status one of started, done,
 * unchanged, changed, failed, canceled. lines (bounded, no secrets) say what was done.
 *
 * Thread safety: one call per ctx at a time; distinct calls may run concurrently.
 */
#ifndef CM_ZKE_H
#define CM_ZKE_H

#include <stddef.h>
#include <jansson.h>

#include "cm/config.h"
#include "cm/spec.h"

typedef struct zke_ctx_s {
        const cm_config_t
            *conf;           /* zke.parallelism, command_timeout_s, connect_timeout_s */
        const char *cluster; /* for messages; spec->name when NULL */
        const char *job_id;
        int attempt;
        const cm_spec_t
            *spec; /* the wanted cluster (zke_remove: the cluster to remove) */
        /* On update, the nodes as they were: worker nodes not in spec are torn down, new
         * etcd nodes join the existing etcd cluster. NULL/0 on create. */
        const cm_node_t *previous_nodes;
        size_t previous_node_count;
        const unsigned char *ssh_key; /* private key text, unsealed; borrowed */
        size_t ssh_key_len;
        /* {"<address>": "ssh-ed25519 AAAA..."}: in, the pins (may be empty); out, with
         * every newly trusted key added. Required. */
        json_t *host_keys;
        /* The stored bundle (cm/pki.h storage form), keys unsealed; NULL on create. */
        const char *pki_public_json, *pki_keys_json;
        size_t pki_keys_len; /* 0: strlen(pki_keys_json) */
        /* Folder under which the plan's absolute paths live on each node, with
         * {{node_name}} / {{node_address}} filled in; NULL or "": the node's "/". For
         * test rigs where all "nodes" share one machine (the containers' binds are not
         * rewritten). */
        const char *node_root;
        int (*canceled)(void *opaque); /* may be NULL */
        void *cancel_opaque;
        void (*progress)(void *opaque, const char *step, const char *node,
                         const char *status, const char *const *lines, size_t n);
        void *progress_opaque; /* progress may be NULL */
} zke_ctx_t;

typedef struct zke_result_s {
        char *kubeconfig;      /* zke_up: admin kubeconfig YAML, SECRET: caller seals */
        char *pki_public_json; /* zke_up: certificates, no private key */
        char *pki_keys_json;   /* zke_up: private keys, SECRET: caller seals */
        char *error;           /* on failure: one message naming node(s) and reason(s) */
        int canceled;          /* 1 when the job stopped because it was canceled */
        int changed;           /* number of files and containers changed (0: no-op) */
} zke_result_t;

/*
 * Installs or changes the cluster. Returns 0 with result's kubeconfig and PKI filled, or
 * -1 with result->error (and result->canceled when canceled). result must be zeroed by
 * the caller and freed with zke_result_free() in both cases.
 */
int zke_up(const zke_ctx_t *ctx, zke_result_t *result);

/* Tears the cluster down on every node of ctx->spec. Return value as zke_up's; nothing
 * but error/canceled is set. */
int zke_remove(const zke_ctx_t *ctx, zke_result_t *result);

/* Wipes the secrets and frees every field of result (not result), zeroing it. */
void zke_result_free(zke_result_t *result);

#endif
