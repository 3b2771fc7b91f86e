/*
 * cm/plan.h - the zke install plan as data (DESIGN §7 steps 4-6).
 *
 * Images, flags, volumes and files per plane and Kubernetes minor version live in
 * versioned plan files (workers/zke/plans/v<major>.<minor>.json, add-on manifests beside
 * them under addons/), embedded in libcm at build time under "plans/". Rendering a plan
 * for a spec gives the exact ordered per-node steps - etcd plane, control plane, worker
 * plane, then add-ons - with the files to place and the container runtime commands to
 * run, without connecting anywhere. The zke job executes them; cm-zke-plan prints them
 * for review.
 *
 * Placeholders "{{name}}" in the plan are filled per node: cluster_name, cluster_domain,
 * cluster_cidr, service_cidr, cluster_dns_ip, kubernetes_service_ip, upstream_dns,
 * etcd_endpoints, etcd_initial_cluster, etcd_initial_cluster_state,
 * controlplane_addresses, kubernetes_version, cgroup_driver, node_name, node_address,
 * images.<key>; file templates add their own "vars". An unknown placeholder is an error
 * naming it and where it is.
 *
 * Containers are made idempotent by a label io.cm.plan-hash holding a digest of their
 * create command: cm_plan_decide() compares it with what `docker inspect` reports. A
 * container's "bootstrapArgs" follow its "args" but are not part of the digest: flags a
 * program reads only on its first start (etcd's --initial-cluster*), which may change
 * later without the container being replaced for it.
 *
 * A plane may have a "join" section {members, peer, add, health} (the etcd plane): an
 * update that adds a node to the plane makes it a member on an existing one first
 * (cm_plan_join_t), one node at a time.
 * Everything here is pure and thread-safe on distinct objects.
 */
#ifndef CM_PLAN_H
#define CM_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "cm/spec.h"

#define CM_PLAN_HASH_LABEL "io.cm.plan-hash"

typedef struct cm_plan_s cm_plan_t;

typedef enum {
        CM_PLAN_FILE_CERT, /* the certificate PEM of bundle entry `entry` */
        CM_PLAN_FILE_KEY,  /* the private key PEM of bundle entry `entry` */
        CM_PLAN_FILE_TEXT, /* `content`, rendered (component kubeconfigs, manifests) */
} cm_plan_file_kind_t;

typedef struct cm_plan_file_s {
        char *path;
        unsigned mode; /* e.g. 0644, 0600 */
        cm_plan_file_kind_t kind;
        char *entry;   /* CERT/KEY */
        char *content; /* TEXT: holds no secret (kubeconfigs name key files by path) */
} cm_plan_file_t;

typedef struct cm_plan_container_s {
        char *name;
        char *image;
        bool run;   /* false: created only (a volume holder such as service-sidekick) */
        char *hash; /* digest of the create command, the io.cm.plan-hash label */
        char *pull; /* pulls the image when the node lacks it */
        char *inspect; /* `docker inspect --type=container NAME`: exit 0 and JSON if
                          present */
        char *create;  /* `docker run -d ...` (or `docker create ...` when !run) */
        char *remove;  /* `docker rm -f NAME` */
        char *start;   /* `docker start NAME` */
} cm_plan_container_t;

/*
 * How a node an update adds to a plane with a "join" section (etcd) becomes a member
 * before its containers start. All NULL when the node does not join.
 */
typedef struct cm_plan_join_s {
        char *members; /* run on a node that is a member already: lists the members */
        char *peer;    /* the node is a member once that list holds this text */
        char *add;     /* run on that member when it is not: makes the node one */
        char *health;  /* run on the node after its containers: exit 0 once it serves */
} cm_plan_join_t;

typedef struct cm_plan_step_s {
        char *plane;           /* "etcd" | "controlplane" | "worker" | "addons" */
        char *node;            /* node name */
        char *address;         /* node address */
        cm_plan_file_t *files; /* placed first, in order */
        size_t file_count;
        cm_plan_container_t *containers; /* then brought to their state, in order */
        size_t container_count;
        char **commands; /* then run in order (add-ons: kubectl apply); idempotent */
        size_t command_count;
        cm_plan_join_t join; /* join.add != NULL: the node joins (see above) */
} cm_plan_step_t;

typedef struct cm_plan_steps_s {
        char *plan;               /* "v1.28" */
        char *kubernetes_version; /* what the plan installs, e.g. "v1.28.15" */
        cm_plan_step_t *steps;
        size_t count;
} cm_plan_steps_t;

typedef struct cm_plan_options_s {
        bool update;               /* an existing cluster: no add-ons */
        const char *cgroup_driver; /* the nodes' container runtime's; NULL: "systemd" */
        /* On update, the nodes before it: a node that had none of an etcd plane's roles
         * then (by address) joins: its step gets the plane's "join" commands and
         * --initial-cluster-state=existing. The others keep "new"; that and the rest of
         * a container's "bootstrapArgs" are left out of its hash (etcd reads them only
         * when a member first starts), so adding a member replaces no other one. */
        const cm_node_t *previous_nodes;
        size_t previous_node_count;
} cm_plan_options_t;

/*
 * The embedded plan for kubernetes_version ("v1.28.15" or "1.28": major.minor selects).
 * Returns a new plan (free with cm_plan_free), or NULL with errstr naming the version and
 * listing the known ones.
 */
cm_plan_t *cm_plan_load(const char *kubernetes_version, char *errstr, size_t errstr_size);

/* A plan from JSON text (tests, or a plan under review); name is used in messages.
 * add-on manifests are looked up among the embedded files. */
cm_plan_t *cm_plan_parse(const char *name, const char *text, char *errstr,
                         size_t errstr_size);
void cm_plan_free(cm_plan_t *plan);

/* The known plan versions, e.g. "v1.28", comma-separated, into buf. */
void cm_plan_known_versions(char *buf, size_t size);

/*
 * Renders plan for spec into a new *out (free with cm_plan_steps_free). Node order is the
 * spec's. Returns 0, or -1 with errstr naming the plan path or spec field and the value.
 */
int cm_plan_render(const cm_plan_t *plan, const cm_spec_t *spec,
                   const cm_plan_options_t *opts, cm_plan_steps_t **out, char *errstr,
                   size_t errstr_size);
void cm_plan_steps_free(cm_plan_steps_t *steps);

/*
 * The rendered steps as JSON (caller owns the reference): text files are given by sha256
 * and size, and their content too when with_content.
 */
json_t *cm_plan_steps_to_json(const cm_plan_steps_t *steps, bool with_content);

typedef enum {
        CM_PLAN_ACTION_NONE,    /* present, same hash, running (or not meant to run) */
        CM_PLAN_ACTION_CREATE,  /* absent: pull, create */
        CM_PLAN_ACTION_REPLACE, /* other hash: pull, remove, create */
        CM_PLAN_ACTION_START,   /* same hash, stopped: start */
} cm_plan_action_t;

/*
 * What to do with container c given its inspect command's exit status and standard output
 * (a JSON array of one object). Unparseable output counts as a container to replace.
 */
cm_plan_action_t cm_plan_decide(const cm_plan_container_t *c, int inspect_status,
                                const char *inspect_output);
const char *cm_plan_action_name(cm_plan_action_t a);

#endif
