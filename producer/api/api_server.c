/*
 * api_server.c - the HTTP side of cm-api: a libmicrohttpd thread pool, request bodies
 * with a size limit, routing (api_routes.c), authentication and roles, media type, JSON
 * errors, and suspended requests (Prefer: wait) answered when another thread resumes
 * them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "cm/health.h"
#include "cm/log.h"

/* How long a stop waits for the requests under way to be answered. */
#define API_STOP_DRAIN_MS 3000

/* Per-connection state between the calls MHD makes for one request. */
struct api_conn_s {
        char *body;
        size_t len;
        int too_large;
        struct timespec start;
        /* Set while the request is suspended (Prefer: wait): who answers on resume. */
        api_resume_cb_t resume_cb;
        void *resume_state;
        void (*resume_free)(void *);
        const char *route;
        api_role_t role;
        char *actor;
        char param[API_PARAM_MAX];
};

int api_respond_raw(api_request_t *req, unsigned int status, struct MHD_Response *r)
{
        MHD_add_response_header(r, "Cache-Control", "no-store");
        int ret = MHD_queue_response(req->conn, status, r);
        MHD_destroy_response(r);
        req->status = status;
        return ret;
}

int api_respond_json_header(api_request_t *req, unsigned int status, json_t *body,
                            const char *name, const char *value)
{
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        if (!text)
                text = strdup(body ? "{}" : "null");
        if (!text)
                return MHD_NO;
        struct MHD_Response *r =
            MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        if (!r) {
                free(text);
                return MHD_NO;
        }
        MHD_add_response_header(r, "Content-Type", "application/json");
        if (name && value)
                MHD_add_response_header(r, name, value);
        return api_respond_raw(req, status, r);
}

int api_respond_json(api_request_t *req, unsigned int status, json_t *body)
{
        return api_respond_json_header(req, status, body, NULL, NULL);
}

int api_respond_error(api_request_t *req, unsigned int status, const char *code,
                      const char *fmt, ...)
{
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return api_respond_json(
            req, status,
            json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

int api_respond_fields(api_request_t *req, unsigned int status, const char *code,
                       const char *message, const cm_field_errors_t *errs)
{
        json_t *fields = cm_field_errors_to_json(errs);
        if (!fields)
                return api_respond_error(req, 500, "internal", "out of memory");
        return api_respond_json(req, status,
                                json_pack("{s:{s:s,s:s,s:o}}", "error", "code", code,
                                          "message", message, "fields", fields));
}

const char *api_header(const api_request_t *req, const char *name)
{
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *api_query(const api_request_t *req, const char *name)
{
        return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

void api_request_suspend(api_request_t *req, api_resume_cb_t cb, void *state,
                         void (*free_state)(void *))
{
        api_conn_t *c = req->c;
        c->resume_cb = cb;
        c->resume_state = state;
        c->resume_free = free_state;
        c->route = req->route;
        c->role = req->role;
        c->actor = req->actor; /* the connection keeps it now */
        req->actor = NULL;
        snprintf(c->param, sizeof(c->param), "%s", req->param);
        MHD_suspend_connection(req->conn);
}

static double api_elapsed(const struct timespec *start)
{
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double)(now.tv_sec - start->tv_sec) +
               (now.tv_nsec - start->tv_nsec) / 1e9;
}

/* application/json, with or without parameters (charset). */
static int api_content_type_json(const char *ct)
{
        static const char want[] = "application/json";
        if (!ct)
                return 0;
        while (*ct == ' ')
                ct++;
        if (strncasecmp(ct, want, sizeof(want) - 1) != 0)
                return 0;
        ct += sizeof(want) - 1;
        while (*ct == ' ')
                ct++;
        return *ct == '\0' || *ct == ';';
}

/* 429 with Retry-After (seconds). */
static int api_respond_rate_limited(api_request_t *req, int retry_after_s)
{
        char secs[16];
        json_t *body =
            json_pack("{s:{s:s,s:s}}", "error", "code", "rate_limited", "message",
                      "too many requests: slow down and retry after the "
                      "Retry-After seconds");
        char *text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        struct MHD_Response *r =
            MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        snprintf(secs, sizeof(secs), "%d", retry_after_s);
        MHD_add_response_header(r, "Content-Type", "application/json");
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, secs);
        int ret = MHD_queue_response(req->conn, MHD_HTTP_TOO_MANY_REQUESTS, r);
        MHD_destroy_response(r);
        req->status = MHD_HTTP_TOO_MANY_REQUESTS;
        return ret;
}

/* The checks every route shares, in order: body size, token, role, media type. Returns
 * 1 when the request may go to its handler, 0 when an answer was queued (*ret). */
static int api_admit(api_request_t *req, const api_route_t *route, api_conn_t *c,
                     int *ret)
{
        char err[512];
        int retry = 0;
        api_t *api = req->api;
        if (c->too_large) {
                *ret = api_respond_error(req, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                                         "request body is larger than %d bytes",
                                         api->svc->conf.api.max_body_bytes);
                return 0;
        }
        if (strncmp(route->path, "/v1/", 4) == 0 && api_ratelimit_check(req, &retry)) {
                *ret = api_respond_rate_limited(req, retry);
                return 0;
        }
        if (route->auth != API_AUTH_PUBLIC) {
                int a = api_auth_check(req, err, sizeof(err));
                if (a < 0) {
                        cm_log_warn("cannot check a token", "error", err);
                        *ret = api_respond_error(
                            req, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                            "the database cannot be reached to check "
                            "the token; retry");
                        return 0;
                }
                if (a > 0) {
                        *ret =
                            api_respond_error(req, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                                              "a valid \"Authorization: Bearer <token>\" "
                                              "header is required");
                        return 0;
                }
        }
        if (route->admin_only && req->role != API_ROLE_ADMIN) {
                *ret = api_respond_error(req, MHD_HTTP_FORBIDDEN, "forbidden", "%s",
                                         route->admin_only);
                return 0;
        }
        if (route->json_body && req->body_len == 0) {
                *ret = api_respond_error(req, MHD_HTTP_BAD_REQUEST, "bad_request",
                                         "a JSON object is required as the request body");
                return 0;
        }
        if (req->body_len > 0) {
                const char *ct = api_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
                if (!api_content_type_json(ct)) {
                        *ret = api_respond_error(req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                                 "unsupported_media_type",
                                                 "Content-Type \"%s\": the body must be "
                                                 "application/json",
                                                 ct ? ct : "(none)");
                        return 0;
                }
        }
        return 1;
}

static int api_dispatch(api_t *api, struct MHD_Connection *conn, const char *method,
                        const char *url, api_conn_t *c)
{
        api_request_t req = {.api = api,
                             .method = method,
                             .url = url,
                             .route = url,
                             .body = c->body,
                             .body_len = c->len,
                             .conn = conn,
                             .c = c};
        int ret;
        int path_known;

        if (c->resume_cb) { /* back from a suspension: the saved handler answers */
                api_resume_cb_t cb = c->resume_cb;
                c->resume_cb = NULL;
                req.route = c->route;
                req.role = c->role;
                req.actor = c->actor;
                c->actor = NULL;
                snprintf(req.param, sizeof(req.param), "%s", c->param);
                /* The state is done with after cb, which may suspend req again with
                 * a new one (a produced command that then waits for its outcome). */
                void *state = c->resume_state;
                void (*state_free)(void *) = c->resume_free;
                c->resume_state = NULL;
                c->resume_free = NULL;
                ret = cb(&req, state);
                if (state_free)
                        state_free(state);
                goto done;
        }
        const api_route_t *route =
            api_route_match(method, url, req.param, sizeof(req.param), &path_known);
        if (!route) {
                req.route = "unmatched";
                ret = path_known
                          ? api_respond_error(&req, MHD_HTTP_METHOD_NOT_ALLOWED,
                                              "method_not_allowed",
                                              "%s is not allowed on %s", method, url)
                          : api_respond_error(&req, MHD_HTTP_NOT_FOUND, "not_found",
                                              "no such endpoint: %s %s", method, url);
                goto done;
        }
        req.route = route->path;
        if (api_admit(&req, route, c, &ret))
                ret = route->handler(&req);
done:
        if (req.status) /* 0: suspended, answered later */
                api_metrics_observe(req.route, req.status, api_elapsed(&c->start));
        free(req.actor);
        return ret;
}

static enum MHD_Result api_handler(void *cls, struct MHD_Connection *conn,
                                   const char *url, const char *method,
                                   const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
        api_t *api = cls;
        api_conn_t *c = *con_cls;
        (void)version;
        if (!c) { /* first call: headers only */
                if (!(c = calloc(1, sizeof(*c))))
                        return MHD_NO;
                clock_gettime(CLOCK_MONOTONIC, &c->start);
                *con_cls = c;
                atomic_fetch_add(&api->open_requests, 1);
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
        api_t *api = cls;
        (void)conn;
        (void)toe;
        if (c) {
                atomic_fetch_sub(&api->open_requests, 1);
                if (c->body) /* may hold an SSH key or a kubeconfig */
                        sodium_memzero(c->body, c->len);
                free(c->body);
                if (c->resume_free)
                        c->resume_free(c->resume_state);
                free(c->actor);
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
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                MHD_ALLOW_SUSPEND_RESUME,
            0, NULL, NULL, api_handler, api, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
            MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)threads,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120, MHD_OPTION_NOTIFY_COMPLETED,
            api_completed, api, MHD_OPTION_END);
        if (!api->daemon) {
                snprintf(errstr, errstr_size, "api.listen \"%s\": cannot listen: %s",
                         listen, strerror(errno ? errno : EADDRINUSE));
                return -1;
        }
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_BIND_PORT);
        api->port = info ? info->port : ntohs(sa.sin_port);
        return 0;
}

void api_server_stop(api_t *api)
{
        if (!api->daemon)
                return;
        /* No new connections; requests under way (among them the ones just resumed by
         * the stops before this one) get their answer out before MHD closes the
         * connections - it would drop a resumed request whose answer is not sent. */
        MHD_socket ls = MHD_quiesce_daemon(api->daemon);
        for (int i = 0;
             i < API_STOP_DRAIN_MS / 10 && atomic_load(&api->open_requests) > 0; i++)
                usleep(10 * 1000);
        long left = atomic_load(&api->open_requests);
        if (left > 0) {
                char n[24];
                snprintf(n, sizeof(n), "%ld", left);
                cm_log_warn("requests cut off at stop", "count", n);
        }
        MHD_stop_daemon(api->daemon);
        if (ls != MHD_INVALID_SOCKET)
                close(ls);
        api->daemon = NULL;
}
