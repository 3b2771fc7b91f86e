/*
 * producer/api/api.h - the parts of cm-api (internal to the cm-api binary).
 *
 *   api_main.c    process start, --create-token
 *   api_server.c  HTTP server (libmicrohttpd thread pool), routing, JSON errors, bodies
 *   api_auth.c    bearer tokens checked against api_tokens (sha256), token creation
 *   api_metrics.c /metrics counters: requests by route and status, latency histogram
 */
#ifndef CM_API_H
#define CM_API_H

#include <jansson.h>
#include <stddef.h>

#include "cm/pg.h"
#include "cm/seal.h"
#include "cm/service.h"

typedef enum { API_ROLE_NONE = 0, API_ROLE_USER, API_ROLE_ADMIN } api_role_t;

typedef struct api_s {
        cm_service_t *svc;
        cm_kafka_producer_t *producer;
        cm_seal_keypair_t *keys;
        char *publickey_b64;
        struct MHD_Daemon *daemon;
        int port;
} api_t;

/* A request after routing: what a handler needs and what it answers. */
typedef struct api_request_s {
        api_t *api;
        const char *method;
        const char *url;
        const char *route; /* route template for metrics, e.g. "/v1/clusters/{name}" */
        char *body;        /* NUL-terminated, NULL when empty */
        size_t body_len;
        struct MHD_Connection *conn;
        api_role_t role;   /* of the bearer token, API_ROLE_NONE when absent */
        char *actor;       /* token name, NULL when absent */
        unsigned int status; /* set when the answer is queued (for metrics) */
} api_request_t;

/* ---- server */
int api_server_start(api_t *api, const char *listen, int threads, char *errstr,
                     size_t errstr_size);
void api_server_stop(api_t *api);

/* Answers status with body (a JSON value, reference stolen). Returns the MHD result. */
int api_respond_json(api_request_t *req, unsigned int status, json_t *body);
/* Answers an error {"error":{"code","message"}}; message is printf-style. */
int api_respond_error(api_request_t *req, unsigned int status, const char *code,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- auth */
/*
 * Looks up the bearer token of the request on this thread's own PostgreSQL connection.
 * Returns 0 and sets req->role/actor when the token is valid, 1 when absent or unknown
 * or revoked (401), -1 when the database cannot be reached (503, errstr set).
 */
int api_auth_check(api_request_t *req, char *errstr, size_t errstr_size);

/*
 * Creates a token named name with role ("admin" | "user") and writes it (a malloc'd string
 * the caller frees, shown once) to *token; only its sha256 is stored. replace: an existing
 * token of that name is deleted first (in the same transaction). Returns 0 or -1 with errstr.
 */
int api_auth_create_token(cm_pg_t *pg, const char *name, const char *role, int replace,
                          char **token, char *errstr, size_t errstr_size);

/* ---- metrics */
void api_metrics_observe(const char *route, unsigned int status, double seconds);
size_t api_metrics_render(void *opaque, char *buf, size_t size);

#endif
