/*
 * api_routes.c - the endpoints of DESIGN §6 as one table of path templates, and the
 * public endpoints (health, readiness, metrics, public key).
 */
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cm/health.h"

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
        return api_respond_json(
            req, MHD_HTTP_OK,
            json_pack("{s:s,s:s,s:s}", "algorithm",
                      "libsodium crypto_box_seal (X25519, XSalsa20-Poly1305)", "encoding",
                      "base64", "publicKey", req->api->publickey_b64));
}

static int api_handle_metrics(api_request_t *req)
{
        char *text = cm_health_metrics(req->api->svc->health);
        if (!text)
                return api_respond_error(req, 500, "internal", "out of memory");
        struct MHD_Response *r =
            MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
        return api_respond_raw(req, MHD_HTTP_OK, r);
}

/* The 403 messages are seed 000's wording. Exact paths come before templates that would
 * also match them (POST /v1/clusters/import is not "create a cluster named import"). */
static const api_route_t api_routes[] = {
    {"GET", "/healthz", API_AUTH_PUBLIC, NULL, 0, api_handle_healthz},
    {"GET", "/readyz", API_AUTH_PUBLIC, NULL, 0, api_handle_readyz},
    {"GET", "/metrics", API_AUTH_PUBLIC, NULL, 0, api_handle_metrics},
    {"GET", "/v1/publickey", API_AUTH_PUBLIC, NULL, 0, api_handle_publickey},
    {"GET", "/v1/clusters", API_AUTH_ANY, NULL, 0, api_handle_clusters_list},
    {"POST", "/v1/clusters", API_AUTH_ANY, "only admin can create cluster", 1,
     api_handle_cluster_create},
    {"POST", "/v1/clusters/import", API_AUTH_ANY,
     "only admin can call cluster action apis", 1, api_handle_cluster_import},
    {"GET", "/v1/clusters/{name}", API_AUTH_ANY, NULL, 0, api_handle_cluster_get},
    {"PUT", "/v1/clusters/{name}", API_AUTH_ANY, "only admin can update cluster", 1,
     api_handle_cluster_update},
    {"DELETE", "/v1/clusters/{name}", API_AUTH_ANY, "only admin can delete cluster", 0,
     api_handle_cluster_delete},
    {"POST", "/v1/clusters/{name}/cancel", API_AUTH_ANY,
     "only admin can call cluster action apis", 0, api_handle_cluster_cancel},
    {"GET", "/v1/clusters/{name}/events", API_AUTH_ANY, NULL, 0,
     api_handle_cluster_events},
    {"GET", "/v1/clusters/{name}/kubeconfig", API_AUTH_ANY,
     "only admin can get cluster kubeconfig", 0, api_handle_cluster_kubeconfig},
    {"GET", "/v1/commands/{id}", API_AUTH_ANY, NULL, 0, api_handle_command_get},
};
#define API_ROUTE_COUNT (sizeof(api_routes) / sizeof(api_routes[0]))

/* Does url match the template? A "{...}" segment takes one non-empty segment of url,
 * except a final "{id}", which takes the rest: a command id (an Idempotency-Key) may hold
 * a '/' (the client sends it as %2F; MHD hands the path over decoded). */
static int api_path_match(const char *tmpl, const char *url, char *param,
                          size_t param_size)
{
        while (*tmpl && *url) {
                if (*tmpl == '{') {
                        const char *te = strchr(tmpl, '}');
                        size_t n =
                            strcmp(tmpl, "{id}") == 0 ? strlen(url) : strcspn(url, "/");
                        if (!te || n == 0 || n >= param_size)
                                return 0;
                        memcpy(param, url, n);
                        param[n] = '\0';
                        tmpl = te + 1;
                        url += n;
                        continue;
                }
                if (*tmpl++ != *url++)
                        return 0;
        }
        return *tmpl == '\0' && *url == '\0';
}

const api_route_t *api_route_match(const char *method, const char *url, char *param,
                                   size_t param_size, int *path_known)
{
        *path_known = 0;
        for (size_t i = 0; i < API_ROUTE_COUNT; i++) {
                char p[API_PARAM_MAX] = "";
                if (!api_path_match(api_routes[i].path, url, p, sizeof(p)))
                        continue;
                *path_known = 1;
                if (strcmp(api_routes[i].method, method) == 0 ||
                    (strcmp(method, "HEAD") == 0 &&
                     strcmp(api_routes[i].method, "GET") == 0)) {
                        snprintf(param, param_size, "%s", p);
                        return &api_routes[i];
                }
        }
        return NULL;
}

static int api_label_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

int api_name_valid(const char *s)
{
        size_t len = strlen(s);
        if (len == 0 || len > 253)
                return 0;
        const char *label = s;
        for (const char *p = s;; p++) {
                if (*p == '.' || *p == '\0') {
                        size_t n = (size_t)(p - label);
                        if (n == 0 || n > 63 || label[0] == '-' || p[-1] == '-')
                                return 0;
                        if (*p == '\0')
                                return 1;
                        label = p + 1;
                } else if (!api_label_char(*p)) {
                        return 0;
                }
        }
}
