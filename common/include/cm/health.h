/*
 * cm/health.h - liveness, readiness and metrics endpoints of a cm service.
 *
 * /healthz answers 200 while the process serves requests. /readyz runs every registered check
 * (database reachable, broker reachable, ...) and answers 200 when all pass, 503 otherwise,
 * with a JSON body naming each check and its error. cm-api mounts these routes on its own
 * server (cm_health_readyz); cm-worker and cm-projector serve them on health.listen.
 */
#ifndef CM_HEALTH_H
#define CM_HEALTH_H

#include <stddef.h>

typedef struct cm_health_s cm_health_t;

/* A readiness check: returns 0 when ready, or non-zero with a reason in errstr. Called from
 * the HTTP server's threads: must be thread-safe and return within a few seconds. */
typedef int (cm_health_check_fn)(void *opaque, char *errstr, size_t errstr_size);

/* Writes extra Prometheus text lines to buf (at most size bytes); returns the length written.
 * Called from the HTTP server's threads: must be thread-safe. */
typedef size_t (cm_health_metrics_fn)(void *opaque, char *buf, size_t size);

/* New registry owned by the caller (free with cm_health_destroy). component names the
 * service in /metrics. Returns NULL on allocation failure. */
cm_health_t *cm_health_new(const char *component);

/* Registers a check under name (copied). Not thread-safe: register before serving. */
int cm_health_add_check(cm_health_t *h, const char *name, cm_health_check_fn *fn, void *opaque);

/* Sets the producer of extra metrics. Not thread-safe: set before serving. */
void cm_health_set_metrics(cm_health_t *h, cm_health_metrics_fn *fn, void *opaque);

/* Runs the checks; *json receives a malloc'd body the caller frees. Returns 200 or 503.
 * Thread-safe. */
int cm_health_readyz(cm_health_t *h, char **json);

/* Renders /metrics (Prometheus text format: up, readiness per check, extra metrics) into a
 * malloc'd string the caller frees. Thread-safe. */
char *cm_health_metrics(cm_health_t *h);

/* Serves /healthz, /readyz and /metrics on listen ("host:port", port 0 = any free port) in
 * background threads. Returns 0 or -1 with errstr set. */
int cm_health_serve(cm_health_t *h, const char *listen, char *errstr, size_t errstr_size);

/* The TCP port served (useful when listen asked for port 0), or 0 when not serving. */
int cm_health_port(const cm_health_t *h);

/* Stops serving and frees h. */
void cm_health_destroy(cm_health_t *h);

/* Parses "host:port" into a sockaddr_in for loopback/IPv4 listeners; returns 0 or -1 with
 * errstr naming the value. Shared by cm-api's own listener. */
struct sockaddr_in;
int cm_health_parse_listen(const char *listen, struct sockaddr_in *sa, char *errstr,
                           size_t errstr_size);

#endif
