/*
 * cm/probe.h - is a Kubernetes API server answering? GET <server>/version over TLS.
 *
 * The connect job (import) probes until the server answers, the job is canceled or its
 * deadline passes; the prober probes every Running/Unreachable cluster (DESIGN §7). Both
 * use one probe handle per cluster:
 *
 *   cm_probe_t *p;
 *   if (cm_probe_new(kc, &p, err, sizeof(err)) != CM_PROBE_OK) ...
 *   cm_probe_result_t r;
 *   if (cm_probe_version(p, &r, err, sizeof(err)) == CM_PROBE_OK)
 *           ... r.git_version is "v1.28.15" ...
 *   else
 *           ... err is "GET https://10.0.0.5:6443/version: connection refused" ...
 *   cm_probe_destroy(p);
 *
 * TLS uses the kubeconfig's credentials as kubectl would: certificate-authority-data as
 * the only trusted CA (the system's CA store when the kubeconfig has none), the server
 * name from the URL or tls-server-name (sent as SNI and verified),
 * insecure-skip-tls-verify, the client certificate and key from memory, and/or
 * `Authorization: Bearer <token>`. Redirects are not followed; only https is spoken.
 * Proxies from the environment (https_proxy, no_proxy) apply, as they do for kubectl.
 *
 * A handle keeps its libcurl easy handle, so repeated probes of one cluster reuse the TLS
 * connection while the server keeps it open (cm_probe_result_t.num_connects is 0 then).
 *
 * Ownership and threads: a handle owns a copy of the kubeconfig it was made from (zeroed
 * when destroyed); the caller's kubeconfig may be freed at once. A handle is used by one
 * thread at a time (the prober's thread, or the job's); different handles may be used by
 * different threads at the same time. libcurl's global initialization runs once per
 * process (pthread_once) on the first cm_probe_new(). Nothing here logs; error strings
 * never hold the client key or the token.
 */
#ifndef CM_PROBE_H
#define CM_PROBE_H

#include <stddef.h>

#include "cm/kubeconfig.h"

#define CM_PROBE_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define CM_PROBE_DEFAULT_TIMEOUT_MS         10000
#define CM_PROBE_MAX_BODY                   (64 * 1024) /* a larger answer is an error */

typedef enum {
        CM_PROBE_OK = 0,
        CM_PROBE_ERR_ARG,      /* NULL argument, or a kubeconfig without server */
        CM_PROBE_ERR_NOMEM,    /* allocation failed */
        CM_PROBE_ERR_CONNECT,  /* no TCP connection: refused, unreachable, unknown host,
                                  connection closed without an answer */
        CM_PROBE_ERR_TIMEOUT,  /* the connect or total timeout passed */
        CM_PROBE_ERR_TLS,      /* handshake failed: certificate verify failed, client
                                  certificate refused ... */
        CM_PROBE_ERR_HTTP,     /* the server answered with a status other than 200 */
        CM_PROBE_ERR_RESPONSE, /* 200, but not a Kubernetes version object */
        CM_PROBE_ERR_CANCELED, /* the cancel callback asked to stop */
        CM_PROBE_ERR_INTERNAL, /* libcurl could not start or failed otherwise */
} cm_probe_err_t;

typedef struct {
        long http_status;     /* the answer's status, 0 when there was none */
        char git_version[64]; /* "v1.28.15" (on CM_PROBE_OK) */
        char major[16];       /* "1" (may be empty) */
        char minor[16];       /* "28" (may be empty; "28+" on some distributions) */
        long num_connects;    /* connections this probe opened: 0 = reused one */
        long elapsed_ms;      /* the whole probe */
} cm_probe_result_t;

/* A probe handle (opaque). */
typedef struct cm_probe_s cm_probe_t;

/* Returns 1 to stop the probe in progress, 0 to go on. libcurl calls it on the probing
 * thread often while data moves and at least once a second while waiting. */
typedef int(cm_probe_cancel_cb_t)(void *opaque);

/* A static, human-readable name of err. */
const char *cm_probe_err2str(cm_probe_err_t err);

/*
 * Creates a probe of kc's server (see above). On success *out is a new handle owned by
 * the caller (cm_probe_destroy). Timeouts start at the defaults above. Fails only on
 * bad arguments, memory, or libcurl's global initialization (errstr says which).
 */
cm_probe_err_t cm_probe_new(const cm_kubeconfig_t *kc, cm_probe_t **out, char *errstr,
                            size_t errstr_size);

/* Sets the connect timeout (TCP connect and TLS handshake, as libcurl counts it) and the
 * total timeout of each probe, in milliseconds (values <= 0 keep the current setting). */
void cm_probe_set_timeouts(cm_probe_t *p, long connect_ms, long total_ms);

/* Installs a callback polled during a probe (NULL removes it): the connect job uses it to
 * stop probing at once when the job is canceled. */
void cm_probe_set_cancel(cm_probe_t *p, cm_probe_cancel_cb_t *cb, void *opaque);

/* The URL probed ("https://10.0.0.5:6443/version"); lives as long as p. */
const char *cm_probe_url(const cm_probe_t *p);

/*
 * Probes once: GET <server>/version. On CM_PROBE_OK, res holds the server's version.
 * Otherwise errstr says "GET <url>: <what happened>" (e.g. "connection refused",
 * "timed out after 2000 ms", "TLS: certificate verify failed (...)", "HTTP 401:
 * Unauthorized") and res still holds http_status, num_connects and elapsed_ms. res may
 * be NULL.
 */
cm_probe_err_t cm_probe_version(cm_probe_t *p, cm_probe_result_t *res, char *errstr,
                                size_t errstr_size);

/* Closes the connection, zeroes the credentials and frees p. NULL is a no-op. */
void cm_probe_destroy(cm_probe_t *p);

#endif
