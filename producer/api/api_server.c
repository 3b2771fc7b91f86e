/*
 * api_server.c - the HTTP side of cm-api: a libmicrohttpd thread pool, request bodies with a
 * size limit, routing by method and path template, authentication and JSON errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "cm/health.h"
#include "cm/log.h"

typedef enum { API_AUTH_PUBLIC, API_AUTH_ANY } api_auth_t;

typedef int (*api_handler_t)(api_request_t *req);

typedef struct {
        const char *method;
        const char *path; /* exact path; templates arrive with the cluster routes */
        api_auth_t auth;
        api_handler_t handler;
} api_route_t;

/* Per-connection state between the calls MHD makes for one request. */
typedef struct {
        char *body;
        size_t len;
        int too_large;
        struct timespec start;
} api_conn_t;

static int api_handle_healthz(api_request_t *req)
{
        return api_respond_json(req, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
}

static int api_handle_readyz(api_request_t *req)
{
        char *body = NULL;
        int status = cm_health_readyz(req->api->svc->health, &body);
        json_t *j = body ? json_loads(body, 0, NULL) : NULL;
        free(body);
        return api_respond_json(req, (unsigned)status, j ? j : json_object());
}

static int api_handle_publickey(api_request_t *req)
{
        return api_respond_json(req, MHD_HTTP_OK,
                                json_pack("{s:s,s:s,s:s}", "algorithm",
                                          "libsodium crypto_box_seal (X25519, XSalsa20-Poly1305)",
                                          "encoding", "base64", "publicKey",
                                          req->api->publickey_b64));
}

static int api_handle_metrics(api_request_t *req)
{
        char *text = cm_health_metrics(req->api->svc->health);
        if (!text)
                return api_respond_error(req, 500, "internal", "out of memory");
        struct MHD_Response *r =
                MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
        int ret = MHD_queue_response(req->conn, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        req->status = MHD_HTTP_OK;
        return ret;
}

static const api_route_t api_routes[] = {
        {"GET", "/healthz", API_AUTH_PUBLIC, api_handle_healthz},
        {"GET", "/readyz", API_AUTH_PUBLIC, api_handle_readyz},
        {"GET", "/metrics", API_AUTH_PUBLIC, api_handle_metrics},
        {"GET", "/v1/publickey", API_AUTH_PUBLIC, api_handle_publickey},
};
#define API_ROUTE_COUNT (sizeof(api_routes) / sizeof(api_routes[0]))

static int api_respond(api_request_t *req, unsigned int status, json_t *body)
{
        char *text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (!text)
                text = strdup("{}");
        struct MHD_Response *r =
                MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(r, "Content-Type", "application/json");
        MHD_add_response_header(r, "Cache-Control", "no-store");
        int ret = MHD_queue_response(req->conn, status, r);
        MHD_destroy_response(r);
        req->status = status;
        return ret;
}

int api_respond_json(api_request_t *req, unsigned int status, json_t *body)
{
        return api_respond(req, status, body ? body : json_null());
}

int api_respond_error(api_request_t *req, unsigned int status, const char *code,
                      const char *fmt, ...)
{
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return api_respond(req, status,
                           json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

static double api_elapsed(const struct timespec *start)
{
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double)(now.tv_sec - start->tv_sec) + (now.tv_nsec - start->tv_nsec) / 1e9;
}

static const api_route_t *api_route_find(const char *method, const char *url, int *path_known)
{
        *path_known = 0;
        for (size_t i = 0; i < API_ROUTE_COUNT; i++) {
                if (strcmp(api_routes[i].path, url) != 0)
                        continue;
                *path_known = 1;
                if (strcmp(api_routes[i].method, method) == 0 ||
                    (strcmp(method, "HEAD") == 0 && strcmp(api_routes[i].method, "GET") == 0))
                        return &api_routes[i];
        }
        return NULL;
}

static int api_dispatch(api_t *api, struct MHD_Connection *conn, const char *method,
                        const char *url, api_conn_t *c)
{
        api_request_t req = {.api = api, .method = method, .url = url, .route = url,
                             .body = c->body, .body_len = c->len, .conn = conn};
        unsigned int status;
        int ret;
        int path_known;
        const api_route_t *route = api_route_find(method, url, &path_known);
        char err[512];

        if (!route) {
                req.route = "unmatched";
                status = path_known ? MHD_HTTP_METHOD_NOT_ALLOWED : MHD_HTTP_NOT_FOUND;
                ret = path_known ? api_respond_error(&req, status, "method_not_allowed",
                                                     "%s is not allowed on %s", method, url)
                                 : api_respond_error(&req, status, "not_found",
                                                     "no such endpoint: %s %s", method, url);
                goto done;
        }
        if (c->too_large) {
                status = MHD_HTTP_CONTENT_TOO_LARGE;
                ret = api_respond_error(&req, status, "too_large",
                                        "request body is larger than %d bytes",
                                        api->svc->conf.api.max_body_bytes);
                goto done;
        }
        if (route->auth != API_AUTH_PUBLIC) {
                int a = api_auth_check(&req, err, sizeof(err));
                if (a < 0) {
                        status = MHD_HTTP_SERVICE_UNAVAILABLE;
                        cm_log_warn("cannot check a token", "error", err);
                        ret = api_respond_error(&req, status, "unavailable",
                                                "the database cannot be reached to check the "
                                                "token; retry");
                        goto done;
                }
                if (a > 0) {
                        status = MHD_HTTP_UNAUTHORIZED;
                        ret = api_respond_error(&req, status, "unauthorized",
                                                "a valid \"Authorization: Bearer <token>\" "
                                                "header is required");
                        goto done;
                }
        }
        ret = route->handler(&req);
done:
        api_metrics_observe(req.route, req.status, api_elapsed(&c->start));
        free(req.actor);
        return ret;
}

static enum MHD_Result api_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version,
                                   const char *upload_data, size_t *upload_data_size,
                                   void **con_cls)
{
        api_t *api = cls;
        api_conn_t *c = *con_cls;
        (void)version;
        if (!c) { /* first call: headers only */
                if (!(c = calloc(1, sizeof(*c))))
                        return MHD_NO;
                clock_gettime(CLOCK_MONOTONIC, &c->start);
                *con_cls = c;
                return MHD_YES;
        }
        if (*upload_data_size) {
                size_t max = (size_t)api->svc->conf.api.max_body_bytes;
                if (!c->too_large && c->len + *upload_data_size <= max) {
                        char *b = realloc(c->body, c->len + *upload_data_size + 1);
                        if (!b)
                                return MHD_NO;
                        memcpy(b + c->len, upload_data, *upload_data_size);
                        c->len += *upload_data_size;
                        b[c->len] = '\0';
                        c->body = b;
                } else {
                        c->too_large = 1; /* keep reading to answer 413 cleanly */
                }
                *upload_data_size = 0;
                return MHD_YES;
        }
        return api_dispatch(api, conn, method, url, c) == MHD_YES ? MHD_YES : MHD_NO;
}

static void api_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
        api_conn_t *c = *con_cls;
        (void)cls;
        (void)conn;
        (void)toe;
        if (c) {
                free(c->body);
                free(c);
                *con_cls = NULL;
        }
}

int api_server_start(api_t *api, const char *listen, int threads, char *errstr,
                     size_t errstr_size)
{
        struct sockaddr_in sa;
        if (cm_health_parse_listen(listen, &sa, errstr, errstr_size))
                return -1;
        api->daemon = MHD_start_daemon(
                MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL,
                NULL, api_handler, api, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)threads,
                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
                MHD_OPTION_NOTIFY_COMPLETED, api_completed, api, MHD_OPTION_END);
        if (!api->daemon) {
                snprintf(errstr, errstr_size, "api.listen \"%s\": cannot listen: %s", listen,
                         strerror(errno ? errno : EADDRINUSE));
                return -1;
        }
        const union MHD_DaemonInfo *info =
                MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_BIND_PORT);
        api->port = info ? info->port : ntohs(sa.sin_port);
        return 0;
}

void api_server_stop(api_t *api)
{
        if (api->daemon)
                MHD_stop_daemon(api->daemon);
        api->daemon = NULL;
}
