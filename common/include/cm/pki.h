/*
 * cm/pki.h - the cluster's certificates (DESIGN §7 step 3), made with OpenSSL 3.
 *
 * One cluster CA (ECDSA P-256, what every Kubernetes component accepts) signs:
 *   kube-etcd-<node>           etcd server+peer, per etcd node: SANs = that node's
 * address, 127.0.0.1, localhost kube-apiserver             server: SANs = every
 * controlplane address, the first IP of serviceCidr, 127.0.0.1, kubernetes,
 * kubernetes.default, kubernetes.default.svc, kubernetes.default.svc.<clusterDomain>
 *   kube-apiserver-etcd-client client of etcd (CN kube-apiserver-etcd-client)
 *   kube-apiserver-kubelet-client  client of the kubelets (O system:masters)
 *   kube-controller-manager    CN system:kube-controller-manager
 *   kube-scheduler             CN system:kube-scheduler
 *   kube-proxy                 CN system:kube-proxy
 *   kube-node-<node>           kubelet, per node: CN system:node:<node>, O system:nodes
 *   kube-admin                 CN kube-admin, O system:masters
 *   kube-service-account-token the service account token signing key (no TLS usage)
 * The CNs are the users Kubernetes' default RBAC bindings name. Etcd certificates are per
 * node with only that node's address, so adding an etcd node leaves the others' alone.
 *
 * A bundle owns its strings; private keys are wiped (OPENSSL_cleanse) when freed.
 * Functions are thread-safe on different bundles; a bundle is not locked.
 */
#ifndef CM_PKI_H
#define CM_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "cm/spec.h"

#define CM_PKI_CA "kube-ca"

/* Validity: CA 10 years, leaves 1 year, renewed when less than 30 days are left. */
#define CM_PKI_DEFAULT_CA_DAYS    3650
#define CM_PKI_DEFAULT_CERT_DAYS  365
#define CM_PKI_DEFAULT_RENEW_DAYS 30

typedef struct cm_pki_entry_s {
        char *name;     /* e.g. "kube-apiserver", "kube-node-node1" */
        char *cert_pem; /* "-----BEGIN CERTIFICATE-----..." */
        char *key_pem;  /* PKCS#8 "-----BEGIN PRIVATE KEY-----...", wiped on free */
} cm_pki_entry_t;

/* Entries sorted by name. */
typedef struct cm_pki_bundle_s {
        cm_pki_entry_t *entries;
        size_t count;
} cm_pki_bundle_t;

typedef struct cm_pki_options_s {
        time_t now;     /* 0: time(NULL); tests move it to age certificates */
        int ca_days;    /* 0: CM_PKI_DEFAULT_CA_DAYS */
        int cert_days;  /* 0: CM_PKI_DEFAULT_CERT_DAYS */
        int renew_days; /* 0: CM_PKI_DEFAULT_RENEW_DAYS */
} cm_pki_options_t;

typedef enum {
        CM_PKI_CHANGE_NEW,      /* not in the old bundle */
        CM_PKI_CHANGE_REISSUED, /* in the old bundle, replaced (reason says why) */
        CM_PKI_CHANGE_REMOVED,  /* in the old bundle, no longer needed (node removed) */
} cm_pki_change_kind_t;

typedef struct cm_pki_change_s {
        char *name;
        cm_pki_change_kind_t kind;
        char *reason; /* e.g. "SANs changed", "expires within 30 days", "new node" */
} cm_pki_change_t;

/* What cm_pki_bundle_build changed, in entry-name order; kept entries are not listed. */
typedef struct cm_pki_changes_s {
        cm_pki_change_t *items;
        size_t count;
} cm_pki_changes_t;

/*
 * Builds the bundle spec needs into a new *out (caller frees with cm_pki_bundle_free).
 * With old (may be NULL or empty): keeps its CA and every certificate that is signed by
 * it, matches its key, has the wanted subject and SANs and is valid for longer than
 * renew_days; issues the rest. An old bundle whose CA is expired, or whose CA certificate
 * does not match its key, is an error (CA rotation is not automatic). changes (may be
 * NULL) receives what changed; free with cm_pki_changes_free. Uses: spec->name, nodes
 * (name, address, roles), service_cidr, cluster_domain. Returns 0, or -1 with a message
 * in errstr naming the field or entry and the value.
 */
int cm_pki_bundle_build(const cm_spec_t *spec, const cm_pki_bundle_t *old,
                        const cm_pki_options_t *opts, cm_pki_bundle_t **out,
                        cm_pki_changes_t *changes, char *errstr, size_t errstr_size);

/* Frees the bundle, wiping every private key first. NULL is fine. */
void cm_pki_bundle_free(cm_pki_bundle_t *bundle);
void cm_pki_changes_free(cm_pki_changes_t *changes);

/* The entry called name, or NULL. Points into bundle. */
const cm_pki_entry_t *cm_pki_bundle_find(const cm_pki_bundle_t *bundle, const char *name);

/*
 * Storage. Public: a JSON object {"kube-ca": "<certificate PEM>", ...} with sorted keys
 * and no private key (the certificates column rejects 'PRIVATE KEY'). Keys: the same
 * object with the private key PEMs, for the caller to seal; free it with
 * cm_pki_secret_free. Both return malloc'd NUL-terminated text, NULL on allocation
 * failure.
 */
char *cm_pki_bundle_public_json(const cm_pki_bundle_t *bundle);
char *cm_pki_bundle_keys_json(const cm_pki_bundle_t *bundle);

/*
 * The reverse: a bundle from the two JSON texts (keys_json as opened from its seal, len
 * bytes, need not be NUL-terminated). Every certificate needs its key and the reverse.
 * Returns 0 with *out set (caller frees), or -1 with errstr naming the entry or offset.
 * The keys text is parsed without copies outside the bundle, so wiping the input and
 * freeing the bundle leaves no key in memory.
 */
int cm_pki_bundle_from_json(const char *public_json, const char *keys_json,
                            size_t keys_len, cm_pki_bundle_t **out, char *errstr,
                            size_t errstr_size);

/* Wipes and frees a string holding secrets (keys JSON, kubeconfig). NULL is fine. */
void cm_pki_secret_free(char *secret);

/*
 * The first host address of an IPv4 CIDR ("10.43.0.0/16" gives "10.43.0.1"), the
 * kubernetes service's ClusterIP. out needs 16 bytes. Returns 0, or -1 with errstr naming
 * the value (not IPv4 CIDR, or no host address as in /31 and /32).
 */
int cm_pki_first_service_ip(const char *cidr, char *out, size_t out_size, char *errstr,
                            size_t errstr_size);

/*
 * The admin kubeconfig (YAML): cluster, context and user named spec->name, server
 * https://<first controlplane address>:6443, CA and kube-admin certificate and key inline
 * (base64). Returns malloc'd text to seal and then free with cm_pki_secret_free; NULL
 * with errstr on a missing entry or no controlplane node.
 */
char *cm_pki_admin_kubeconfig(const cm_spec_t *spec, const cm_pki_bundle_t *bundle,
                              char *errstr, size_t errstr_size);

/* The node's roles include role. */
bool cm_pki_node_has_role(const cm_node_t *node, const char *role);

#endif
