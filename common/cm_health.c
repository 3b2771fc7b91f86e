/* cm_health.c - /healthz, /readyz and /metrics for every cm service (libmicrohttpd). */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/health.h"

#define CM_HEALTH_MAX_CHECKS  8
#define CM_HEALTH_METRICS_MAX 65536

typedef struct {
        char *name;
        cm_health_check_fn *fn;
        void *opaque;
} cm_health_check_t;

struct cm_health_s {
        char *component;
        cm_health_check_t checks[CM_HEALTH_MAX_CHECKS];
        int check_count;
        cm_health_metrics_fn *metrics_fn;
        void *metrics_opaque;
        struct MHD_Daemon *daemon;
        int port;
        time_t started;
};

cm_health_t *cm_health_new(const char *component)
{
        cm_health_t *h = calloc(1, sizeof(*h));
        if (!h)
                return NULL;
        h->component = strdup(component ? component : "cm");
        if (!h->component) {
                free(h);
                return NULL;
        }
        h->started = time(NULL);
        return h;
}

int cm_health_add_check(cm_health_t *h, const char *name, cm_health_check_fn *fn,
                        void *opaque)
{
        if (h->check_count == CM_HEALTH_MAX_CHECKS)
                return -1;
        cm_health_check_t *c = &h->checks[h->check_count];
        if (!(c->name = strdup(name)))
                return -1;
        c->fn = fn;
        c->opaque = opaque;
        h->check_count++;
        return 0;
}

void cm_health_set_metrics(cm_health_t *h, cm_health_metrics_fn *fn, void *opaque)
{
        h->metrics_fn = fn;
        h->metrics_opaque = opaque;
}

/* Runs every check once; ok[i] receives its outcome. Returns 1 when all passed. */
static int cm_health_run_checks(cm_health_t *h, int ok[CM_HEALTH_MAX_CHECKS],
                                char err[CM_HEALTH_MAX_CHECKS][256])
{
        int all = 1;
        for (int i = 0; i < h->check_count; i++) {
                err[i][0] = '\0';
                ok[i] = h->checks[i].fn(h->checks[i].opaque, err[i], sizeof(err[i])) == 0;
                all &= ok[i];
        }
        return all;
}

int cm_health_readyz(cm_health_t *h, char **json)
{
        int ok[CM_HEALTH_MAX_CHECKS];
        char err[CM_HEALTH_MAX_CHECKS][256];
        int all = cm_health_run_checks(h, ok, err);
        json_t *checks = json_object();
        for (int i = 0; i < h->check_count; i++) {
                json_t *c = json_pack("{s:b}", "ok", ok[i]);
                if (!ok[i])
                        json_object_set_new(c, "error", json_string(err[i]));
                json_object_set_new(checks, h->checks[i].name, c);
        }
        json_t *body = json_pack("{s:b,s:s,s:o}", "ready", all, "component", h->component,
                                 "checks", checks);
        *json = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        return all ? 200 : 503;
}

char *cm_health_metrics(cm_health_t *h)
{
        int ok[CM_HEALTH_MAX_CHECKS];
        char err[CM_HEALTH_MAX_CHECKS][256];
        char *buf = malloc(CM_HEALTH_METRICS_MAX);
        if (!buf)
                return NULL;
        cm_health_run_checks(h, ok, err);
        size_t n =
            (size_t)snprintf(buf, CM_HEALTH_METRICS_MAX,
                             "# HELP cm_up 1 while the process serves requests.\n"
                             "# TYPE cm_up gauge\n"
                             "cm_up{component=\"%s\"} 1\n"
                             "# HELP cm_start_time_seconds Process start, Unix time.\n"
                             "# TYPE cm_start_time_seconds gauge\n"
                             "cm_start_time_seconds{component=\"%s\"} %lld\n"
                             "# HELP cm_ready 1 when the named dependency is reachable.\n"
                             "# TYPE cm_ready gauge\n",
                             h->component, h->component, (long long)h->started);
        for (int i = 0; i < h->check_count && n < CM_HEALTH_METRICS_MAX; i++)
                n += (size_t)snprintf(buf + n, CM_HEALTH_METRICS_MAX - n,
                                      "cm_ready{component=\"%s\",check=\"%s\"} %d\n",
                                      h->component, h->checks[i].name, ok[i]);
        if (h->metrics_fn && n < CM_HEALTH_METRICS_MAX)
                n += h->metrics_fn(h->metrics_opaque, buf + n, CM_HEALTH_METRICS_MAX - n);
        if (n >= CM_HEALTH_METRICS_MAX)
                n = CM_HEALTH_METRICS_MAX - 1;
        buf[n] = '\0';
        return buf;
}

static enum MHD_Result cm_health_respond(struct MHD_Connection *conn, unsigned int status,
                                         const char *ctype, char *body)
{
        struct MHD_Response *r =
            MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(r, "Content-Type", ctype);
        MHD_add_response_header(r, "Cache-Control", "no-store");
        enum MHD_Result ret = MHD_queue_response(conn, status, r);
        MHD_destroy_response(r);
        return ret;
}

static enum MHD_Result cm_health_handler(void *cls, struct MHD_Connection *conn,
                                         const char *url, const char *method,
                                         const char *version, const char *upload_data,
                                         size_t *upload_data_size, void **con_cls)
{
        cm_health_t *h = cls;
        (void)version;
        (void)upload_data;
        (void)con_cls;
        if (*upload_data_size) {
                *upload_data_size = 0; /* bodies are ignored */
                return MHD_YES;
        }
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
                return cm_health_respond(
                    conn, 405, "application/json",
                    strdup("{\"error\":{\"code\":\"method_not_allowed\","
                           "\"message\":\"only GET is served here\"}}"));
        if (strcmp(url, "/healthz") == 0)
                return cm_health_respond(conn, 200, "application/json",
                                         strdup("{\"status\":\"ok\"}"));
        if (strcmp(url, "/readyz") == 0) {
                char *json = NULL;
                int status = cm_health_readyz(h, &json);
                return cm_health_respond(conn, (unsigned)status, "application/json",
                                         json);
        }
        if (strcmp(url, "/metrics") == 0)
                return cm_health_respond(conn, 200, "text/plain; version=0.0.4",
                                         cm_health_metrics(h));
        return cm_health_respond(
            conn, 404, "application/json",
            strdup("{\"error\":{\"code\":\"not_found\",\"message\":"
                   "\"served here: /healthz, /readyz, /metrics\"}}"));
}

int cm_health_parse_listen(const char *listen, struct sockaddr_in *sa, char *errstr,
                           size_t errstr_size)
{
        const char *colon = listen ? strrchr(listen, ':') : NULL;
        char host[64];
        char *end;
        if (!colon || (size_t)(colon - listen) >= sizeof(host)) {
                snprintf(errstr, errstr_size, "listen address \"%s\": expected host:port",
                         listen ? listen : "");
                return -1;
        }
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
        errno = 0;
        long port = strtol(colon + 1, &end, 10);
        if (errno || *end || end == colon + 1 || port < 0 || port > 65535) {
                snprintf(errstr, errstr_size,
                         "listen address \"%s\": port \"%s\" is not 0..65535", listen,
                         colon + 1);
                return -1;
        }
        memset(sa, 0, sizeof(*sa));
        sa->sin_family = AF_INET;
        sa->sin_port = htons((uint16_t)port);
        if (strcmp(host, "localhost") == 0)
                strcpy(host, "127.0.0.1");
        if (inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &sa->sin_addr) != 1) {
                snprintf(errstr, errstr_size,
                         "listen address \"%s\": host \"%s\" is not an IPv4 address",
                         listen, host);
                return -1;
        }
        return 0;
}

int cm_health_serve(cm_health_t *h, const char *listen, char *errstr, size_t errstr_size)
{
        struct sockaddr_in sa;
        if (cm_health_parse_listen(listen, &sa, errstr, errstr_size))
                return -1;
        h->daemon = MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                MHD_USE_POLL | MHD_USE_ERROR_LOG,
            0, NULL, NULL, cm_health_handler, h, MHD_OPTION_SOCK_ADDR,
            (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
            MHD_OPTION_END);
        if (!h->daemon) {
                snprintf(errstr, errstr_size, "health.listen \"%s\": cannot listen: %s",
                         listen, strerror(errno ? errno : EADDRINUSE));
                return -1;
        }
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
        h->port = info ? info->port : ntohs(sa.sin_port);
        return 0;
}

int cm_health_port(const cm_health_t *h)
{
        return h->port;
}

void cm_health_destroy(cm_health_t *h)
{
        if (!h)
                return;
        if (h->daemon)
                MHD_stop_daemon(h->daemon);
        for (int i = 0; i < h->check_count; i++)
                free(h->checks[i].name);
        free(h->component);
        free(h);
}
