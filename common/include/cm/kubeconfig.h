/*
 * cm/kubeconfig.h - the parts of a kubeconfig that reach a cluster's API server.
 *
 * An imported cluster is given as a kubeconfig (YAML or JSON, the format kubectl reads).
 * cm_kubeconfig_parse() picks current-context (or the only context when current-context
 * is unset), follows it to its cluster and its user and checks, up front, that what they
 * hold can be used from this manager:
 *
 *   cluster: server (an https:// URL), certificate-authority-data (base64 of PEM
 *            certificates; without it the system's CA store is used),
 *            insecure-skip-tls-verify, tls-server-name;
 *   user:    client-certificate-data + client-key-data (base64 of PEM, the key must match
 *            the certificate), and/or token.
 *
 * File references (certificate-authority, client-certificate, client-key, tokenFile),
 * credential plugins (exec, auth-provider) and basic auth (username/password) are refused
 * when they are what the context would have to use (an embedded -data field or a token,
 * when present, is used instead): the kubeconfig travels sealed through Kafka to a worker
 * on another machine, where those files and programs do not exist. Fields this module
 * does not use (namespace, extensions, preferences, proxy-url ...) are ignored. The
 * expiry of the client certificate is checked; the CA's is left to the TLS handshake.
 *
 * Errors are one line starting "kubeconfig: ": a YAML syntax error gives the parser's
 * message and position ("kubeconfig: line 7 column 3: mapping values are not allowed in
 * this context"); anything else names the field and, when it is not a secret, the value
 * ("kubeconfig: context \"prod\" names cluster \"x\" which is not defined",
 * "kubeconfig: users[0].user: no client-certificate-data/client-key-data or token (user
 * \"admin\")"). Secret values (keys, tokens) never appear in an error.
 *
 * Secrets: the returned struct holds the client key and the token; cm_kubeconfig_free()
 * zeroes them (and every other field) before freeing. While parsing, libyaml's copies of
 * the document are zeroed too before they are freed. Never log a cm_kubeconfig_t's
 * client_key or token.
 *
 * All functions are thread-safe (no shared state); a parsed struct is never written by
 * this module after it is returned, so many threads may read one.
 */
#ifndef CM_KUBECONFIG_H
#define CM_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* A kubeconfig larger than this is refused (real ones are a few KiB). */
#define CM_KUBECONFIG_MAX_BYTES (1024 * 1024)

typedef enum {
        CM_KUBECONFIG_OK = 0,
        CM_KUBECONFIG_ERR_ARG,     /* NULL argument */
        CM_KUBECONFIG_ERR_NOMEM,   /* allocation failed */
        CM_KUBECONFIG_ERR_SYNTAX,  /* not YAML, or too large */
        CM_KUBECONFIG_ERR_INVALID, /* YAML, but not a usable kubeconfig (see errstr) */
} cm_kubeconfig_err_t;

typedef struct cm_kubeconfig_s {
        char *context; /* the context used (never NULL) */
        char *cluster; /* its cluster's name (never NULL) */
        char *user;    /* its user's name (never NULL) */

        /* cluster */
        char *server;          /* "https://host[:port][/prefix]", no trailing '/' */
        unsigned char *ca_pem; /* decoded certificate-authority-data (PEM, NUL-terminated
                                  after ca_pem_len bytes), or NULL: system CA store */
        size_t ca_pem_len;
        bool insecure_skip_tls_verify;
        char *tls_server_name; /* name to verify the server certificate against and to
                                  send as SNI, or NULL: the server URL's host */

        /* user: a client certificate and key, a token, or both (never neither) */
        unsigned char *client_cert_pem; /* NUL-terminated, or NULL */
        size_t client_cert_pem_len;
        unsigned char *client_key_pem; /* SECRET. NUL-terminated, or NULL */
        size_t client_key_pem_len;
        char *token; /* SECRET. bearer token, or NULL */
} cm_kubeconfig_t;

/* A static, human-readable name of err. */
const char *cm_kubeconfig_err2str(cm_kubeconfig_err_t err);

/*
 * Parses len bytes of kubeconfig text (no NUL needed; at most CM_KUBECONFIG_MAX_BYTES)
 * and selects the context named `context`, or, when context is NULL, current-context
 * (the only context if current-context is unset or empty). On success *out is a new
 * struct owned by the caller (cm_kubeconfig_free). On failure *out is NULL and errstr
 * holds the reason (see above).
 */
cm_kubeconfig_err_t cm_kubeconfig_parse(const void *data, size_t len, const char *context,
                                        cm_kubeconfig_t **out, char *errstr,
                                        size_t errstr_size);

/* A deep copy of kc, owned by the caller (cm_kubeconfig_free); NULL on allocation
 * failure or when kc is NULL. */
cm_kubeconfig_t *cm_kubeconfig_dup(const cm_kubeconfig_t *kc);

/* Zeroes every field (secrets included) and frees kc. NULL is a no-op. */
void cm_kubeconfig_free(cm_kubeconfig_t *kc);

#endif
