/*
 * cm/spec.h - the cluster spec (DESIGN §4, seed 000's cluster resource) as a C struct,
 * with its defaults, converted to and from JSON (cm_spec.c) and Avro (cm_spec_avro.c).
 *
 * A spec holds no secret: the SSH key and kubeconfig travel sealed, beside it.
 * A cm_spec_t owns all its strings; free with cm_spec_destroy(). Functions on different
 * specs are thread-safe; a spec itself is not locked.
 */
#ifndef CM_SPEC_H
#define CM_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#define CM_SPEC_DEFAULT_SSH_PORT       22
#define CM_SPEC_DEFAULT_K8S_VERSION    "v1.28.15"
#define CM_SPEC_DEFAULT_CLUSTER_CIDR   "10.42.0.0/16"
#define CM_SPEC_DEFAULT_SERVICE_CIDR   "10.43.0.0/16"
#define CM_SPEC_DEFAULT_DNS_SERVICE_IP "10.43.0.10"
#define CM_SPEC_DEFAULT_NETWORK_PLUGIN "flannel"

typedef struct cm_node_s {
        char *name;
        char *address;
        char **roles; /* controlplane | worker | etcd | edge (checked by validation) */
        size_t role_count;
} cm_node_t;

typedef struct cm_spec_s {
        char *name;
        char *ssh_user;
        int ssh_port;
        char *manager_address;
        char *cluster_domain;
        char *kubernetes_version;
        char *cluster_cidr;
        char *service_cidr;
        char *cluster_dns_service_ip;
        char **cluster_upstream_dns;
        size_t cluster_upstream_dns_count;
        char *network_plugin; /* JSON: network.plugin */
        cm_node_t *nodes;
        size_t node_count;
} cm_spec_t;

/* A problem with one field, e.g. {"nodes[2].roles", "must be an array of strings"}. */
typedef struct cm_field_error_s {
        char *field;
        char *message;
} cm_field_error_t;

/* A growable list of field errors; errors are collected, never first-only. */
typedef struct cm_field_errors_s {
        cm_field_error_t *items;
        size_t count;
        size_t cap;
} cm_field_errors_t;

/* Appends a copy of field and the formatted message. Returns 0, or -1 on allocation
 * failure. */
int cm_field_errors_add(cm_field_errors_t *errs, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Frees the items (not errs itself); errs is empty afterwards. */
void cm_field_errors_clear(cm_field_errors_t *errs);
/* Returns a new JSON array [{"field","message"}...] (caller owns the reference), the
 * "fields" of an API error (DESIGN §6); NULL on allocation failure. */
json_t *cm_field_errors_to_json(const cm_field_errors_t *errs);

/* Zeroes spec and sets every default of DESIGN §4 (strings allocated). */
int cm_spec_init_defaults(cm_spec_t *spec);

/* Frees every string and array of spec and zeroes it. Safe on a zeroed spec. */
void cm_spec_destroy(cm_spec_t *spec);

/* Deep copy of src into *dst (owned by the caller). Returns 0 or -1 (ENOMEM). */
int cm_spec_copy(cm_spec_t *dst, const cm_spec_t *src);

/* True when a and b hold the same values (NULL strings equal only NULL). Thread-safe. */
bool cm_spec_equal(const cm_spec_t *a, const cm_spec_t *b);
bool cm_nodes_equal(const cm_node_t *a, size_t na, const cm_node_t *b, size_t nb);

/*
 * Reads the camelCase JSON of seed 000's cluster resource into *spec, which starts from
 * the defaults: name, sshUser, sshPort, singleCloudAddress|managerAddress, clusterDomain,
 * kubernetesVersion, clusterCidr, serviceCidr, clusterDNSServiceIP, clusterUpstreamDNS,
 * network {plugin}, nodes [{name, address, roles}]. "sshKey" is skipped here (the caller
 * seals it). Wrong JSON types and unknown fields are appended to errs (field named, value
 * quoted); returns 0 when errs gained nothing, -1 otherwise. The caller owns *spec either
 * way. *spec is overwritten, not freed: pass a new or destroyed spec.
 *
 * Only structure is checked: a value of the right type is stored as given (even "" or
 * port 0); the semantic checks of DESIGN §4 are the validation module's. A JSON null
 * counts as an absent field (the default stays), except as an array element.
 * managerAddress and its alias singleCloudAddress may both be given only with the same
 * value. Field paths look like "sshPort", "network.plugin", "nodes[1].roles[0]"; a
 * document that is not an object is reported on field "$". Duplicate keys are the
 * parser's business (load with JSON_REJECT_DUPLICATES). On allocation failure returns -1
 * with errno ENOMEM (errs may then be incomplete).
 */
int cm_spec_from_json(cm_spec_t *spec, const json_t *obj, cm_field_errors_t *errs);

/*
 * Nodes only (update requests): reads a JSON array of nodes into a new array *nodes /
 * *count (fields named "nodes[i]..."). Every element yields a node, an empty one when the
 * element is not an object, so indexes match the request. JSON null gives no nodes.
 * Return value as cm_spec_from_json; the caller frees *nodes with cm_nodes_free() either
 * way.
 */
int cm_nodes_from_json(cm_node_t **nodes, size_t *count, const json_t *arr,
                       cm_field_errors_t *errs);

/*
 * Returns a new JSON object (caller owns the reference) of spec, in camelCase, no
 * secrets; the manager address is written as "managerAddress", NULL strings are left out.
 * NULL on allocation failure or a string that is not UTF-8. Thread-safe.
 */
json_t *cm_spec_to_json(const cm_spec_t *spec);
/* The "nodes" array of the above, alone (caller owns the reference). */
json_t *cm_nodes_to_json(const cm_node_t *nodes, size_t count);

/* Frees the strings of one node and zeroes it. Safe on a zeroed node. */
void cm_node_destroy(cm_node_t *node);

/* Frees an array of nodes made by cm_nodes_from_json, cm_nodes_from_avro or cm_nodes_copy. */
void cm_nodes_free(cm_node_t *nodes, size_t count);
int cm_nodes_copy(cm_node_t **dst, const cm_node_t *src, size_t count);

#endif
