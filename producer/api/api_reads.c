/*
 * api_reads.c - reads of DESIGN §6. Clusters, their event history and command results
 * come from the read model only (cm-projector writes it); the kubeconfig is the one read
 * of the write model (cluster_state.kubeconfig_sealed), opened in memory for an admin.
 *
 * A cluster is answered in seed 000's camelCase: name, state, ready, nodeCount, the spec
 * fields (never sshKey or a kubeconfig: the spec holds no secret), lastError, createdAt,
 * updatedAt. Times are RFC 3339 UTC with milliseconds.
 */
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cm/log.h"

#define API_CLUSTER_COLUMNS                                                              \
        "name, state, ready, spec::text, node_count, last_error, " API_TS(               \
            "created_at") ", " API_TS("updated_at")

static void api_set_opt(json_t *o, const char *key, PGresult *res, int row, int col)
{
        if (!PQgetisnull(res, row, col))
                json_object_set_new(o, key, json_string(PQgetvalue(res, row, col)));
}

/* One row of API_CLUSTER_COLUMNS as the cluster resource. */
static json_t *api_cluster_row_json(PGresult *res, int row)
{
        json_t *o = json_object();
        json_t *spec = json_loads(PQgetvalue(res, row, 3), 0, NULL);
        if (!o)
                goto fail;
        json_object_set_new(o, "name", json_string(PQgetvalue(res, row, 0)));
        json_object_set_new(o, "state", json_string(PQgetvalue(res, row, 1)));
        json_object_set_new(o, "ready", json_boolean(PQgetvalue(res, row, 2)[0] == 't'));
        json_object_set_new(o, "nodeCount", json_integer(atoi(PQgetvalue(res, row, 4))));
        if (json_is_object(spec)) {
                /* The spec has no secret; the guard costs nothing. */
                json_object_del(spec, "sshKey");
                json_object_del(spec, "kubeconfig");
                json_object_del(spec, "name");
                json_object_update(o, spec);
        }
        json_object_set_new(o, "lastError",
                            PQgetisnull(res, row, 5)
                                ? json_null()
                                : json_string(PQgetvalue(res, row, 5)));
        json_object_set_new(o, "createdAt", json_string(PQgetvalue(res, row, 6)));
        json_object_set_new(o, "updatedAt", json_string(PQgetvalue(res, row, 7)));
fail:
        json_decref(spec);
        return o;
}

int api_cluster_load(cm_pg_t *pg, const char *name, json_t **out, char *errstr,
                     size_t errstr_size)
{
        const char *params[] = {name};
        PGresult *res = NULL;
        *out = NULL;
        if (cm_pg_exec_params(pg,
                              "SELECT " API_CLUSTER_COLUMNS
                              " FROM clusters WHERE name = $1 AND state <> 'Deleted'",
                              1, params, &res, errstr, errstr_size) != CM_PG_OK)
                return -1;
        if (PQntuples(res) == 1)
                *out = api_cluster_row_json(res, 0);
        PQclear(res);
        return 0;
}

int api_handle_clusters_list(api_request_t *req)
{
        const char *ready = api_query(req, "ready");
        const char *sql;
        if (!ready)
                sql = "SELECT " API_CLUSTER_COLUMNS
                      " FROM clusters WHERE state <> 'Deleted' ORDER BY name";
        else if (strcmp(ready, "true") == 0)
                sql = "SELECT " API_CLUSTER_COLUMNS " FROM ready_clusters ORDER BY name";
        else if (strcmp(ready, "false") == 0)
                sql =
                    "SELECT " API_CLUSTER_COLUMNS " FROM unready_clusters ORDER BY name";
        else {
                cm_field_errors_t errs = {0};
                cm_field_errors_add(&errs, "ready", "must be true or false, got \"%s\"",
                                    ready);
                int ret = api_respond_fields(req, MHD_HTTP_BAD_REQUEST, "bad_request",
                                             "invalid query parameter ready", &errs);
                cm_field_errors_clear(&errs);
                return ret;
        }
        int ret;
        char err[512];
        cm_pg_t *pg = api_db(req, &ret);
        if (!pg)
                return ret;
        PGresult *res = NULL;
        if (cm_pg_exec_params(pg, sql, 0, NULL, &res, err, sizeof(err)) != CM_PG_OK)
                return api_respond_db_error(req, "list the clusters", err);
        json_t *list = json_array();
        for (int i = 0; i < PQntuples(res); i++)
                json_array_append_new(list, api_cluster_row_json(res, i));
        PQclear(res);
        return api_respond_json(req, MHD_HTTP_OK, json_pack("{s:o}", "clusters", list));
}

int api_handle_cluster_get(api_request_t *req)
{
        int ret;
        char err[512];
        json_t *c = NULL;
        if (!api_name_valid(req->param))
                goto absent;
        cm_pg_t *pg = api_db(req, &ret);
        if (!pg)
                return ret;
        if (api_cluster_load(pg, req->param, &c, err, sizeof(err)) < 0)
                return api_respond_db_error(req, "read the cluster", err);
        if (c)
                return api_respond_json(req, MHD_HTTP_OK, c);
absent:
        return api_respond_error(req, MHD_HTTP_NOT_FOUND, "not_found",
                                 "cluster \"%s\" doesn't exist", req->param);
}

json_t *api_event_row_json(PGresult *res, int row)
{
        json_t *o = json_object();
        json_object_set_new(o, "cluster", json_null()); /* set by the caller */
        json_object_set_new(o, "seq",
                            json_integer(strtoll(PQgetvalue(res, row, 0), NULL, 10)));
        json_object_set_new(o, "eventId", json_string(PQgetvalue(res, row, 1)));
        json_object_set_new(o, "type", json_string(PQgetvalue(res, row, 2)));
        api_set_opt(o, "fromState", res, row, 3);
        api_set_opt(o, "toState", res, row, 4);
        api_set_opt(o, "commandId", res, row, 5);
        api_set_opt(o, "jobId", res, row, 6);
        json_t *actor = json_pack("{s:s}", "name", PQgetvalue(res, row, 7));
        api_set_opt(actor, "role", res, row, 8);
        json_object_set_new(o, "actor", actor);
        api_set_opt(o, "error", res, row, 9);
        json_object_set_new(o, "at", json_string(PQgetvalue(res, row, 10)));
        json_t *payload = json_loads(PQgetvalue(res, row, 11), 0, NULL);
        json_t *spec = json_object_get(payload, "spec");
        if (json_is_object(spec)) {
                json_object_del(spec, "sshKey");
                json_object_set(o, "spec", spec);
        }
        json_decref(payload);
        return o;
}

/*
 * A resume point (a seq >= 0) from text, the value of what (the "after" query parameter
 * or the Last-Event-ID header). 0 with *out set, or 1 after answering 400 naming what and
 * the value (*ret: the MHD result).
 */
static int api_events_after(api_request_t *req, const char *what, const char *kind,
                            const char *text, long long *out, int *ret)
{
        char *end = NULL;
        errno = 0;
        long long a = strtoll(text, &end, 10);
        if (!errno && end != text && !*end && a >= 0) {
                *out = a;
                return 0;
        }
        cm_field_errors_t errs = {0};
        char msg[128];
        cm_field_errors_add(&errs, what, "must be a sequence number >= 0, got \"%s\"",
                            text);
        snprintf(msg, sizeof(msg), "invalid %s %s", kind, what);
        *ret = api_respond_fields(req, MHD_HTTP_BAD_REQUEST, "bad_request", msg, &errs);
        cm_field_errors_clear(&errs);
        return 1;
}

int api_handle_cluster_events(api_request_t *req)
{
        const char *accept = api_header(req, MHD_HTTP_HEADER_ACCEPT);
        int stream = accept && strstr(accept, "text/event-stream");
        if (!api_name_valid(req->param))
                return api_respond_error(req, MHD_HTTP_NOT_FOUND, "not_found",
                                         "cluster \"%s\" doesn't exist", req->param);
        /* An EventSource reconnects to the same URL (?after included) with the id it saw
         * last: the header is the newer position, so it wins. */
        const char *lei = stream ? api_header(req, "Last-Event-ID") : NULL;
        const char *after = api_query(req, "after");
        long long a = 0;
        int ret;
        if (lei ? api_events_after(req, "Last-Event-ID", "header", lei, &a, &ret)
                : after &&
                      api_events_after(req, "after", "query parameter", after, &a, &ret))
                return ret;
        /* A stream without a resume point needs no database, as before: it may watch a
         * cluster that is about to be created. */
        if (stream && !lei && !after)
                return api_watch_open(req, -1);
        char err[512], as[24];
        cm_pg_t *pg = api_db(req, &ret);
        if (!pg)
                return ret;
        snprintf(as, sizeof(as), "%lld", a);
        const char *params[] = {req->param, as};
        PGresult *res = NULL;
        if (cm_pg_exec_params(pg, "SELECT 1 FROM clusters WHERE name = $1", 1, params,
                              &res, err, sizeof(err)) != CM_PG_OK)
                return api_respond_db_error(req, "read the cluster", err);
        int known = PQntuples(res) == 1;
        PQclear(res);
        if (!known)
                return api_respond_error(req, MHD_HTTP_NOT_FOUND, "not_found",
                                         "cluster \"%s\" doesn't exist", req->param);
        if (stream)
                return api_watch_open(req, a);
        if (cm_pg_exec_params(pg,
                              "SELECT " API_EVENT_COLUMNS " FROM cluster_events "
                              "WHERE cluster = $1 AND seq > $2::bigint ORDER BY seq",
                              2, params, &res, err, sizeof(err)) != CM_PG_OK)
                return api_respond_db_error(req, "read the events", err);
        json_t *list = json_array();
        for (int i = 0; i < PQntuples(res); i++) {
                json_t *e = api_event_row_json(res, i);
                json_object_set_new(e, "cluster", json_string(req->param));
                json_array_append_new(list, e);
        }
        PQclear(res);
        return api_respond_json(
            req, MHD_HTTP_OK,
            json_pack("{s:s,s:o}", "cluster", req->param, "events", list));
}

typedef struct {
        unsigned char *p;
        size_t len;
} api_secret_buf_t;

static void api_secret_buf_free(void *cls)
{
        api_secret_buf_t *b = cls;
        cm_seal_plaintext_free(b->p, b->len);
        free(b);
}

int api_handle_cluster_kubeconfig(api_request_t *req)
{
        int ret;
        char err[512];
        if (!api_name_valid(req->param))
                return api_respond_error(req, MHD_HTTP_NOT_FOUND, "not_found",
                                         "cluster \"%s\" doesn't exist", req->param);
        cm_pg_t *pg = api_db(req, &ret);
        if (!pg)
                return ret;
        const char *params[] = {req->param};
        PGresult *res = NULL;
        if (cm_pg_exec_params(pg,
                              "SELECT state, kubeconfig_sealed FROM cluster_state "
                              "WHERE name = $1",
                              1, params, &res, err, sizeof(err)) != CM_PG_OK)
                return api_respond_db_error(req, "read the kubeconfig", err);
        if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "Deleted") == 0) {
                PQclear(res);
                return api_respond_error(req, MHD_HTTP_NOT_FOUND, "not_found",
                                         "cluster \"%s\" doesn't exist", req->param);
        }
        if (PQgetisnull(res, 0, 1)) {
                PQclear(res);
                return api_respond_error(req, MHD_HTTP_NOT_FOUND, "not_found",
                                         "cluster \"%s\" has no kubeconfig yet",
                                         req->param);
        }
        size_t slen = 0;
        unsigned char *sealed =
            PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 1), &slen);
        PQclear(res);
        api_secret_buf_t *b = calloc(1, sizeof(*b));
        if (!sealed || !b) {
                PQfreemem(sealed);
                free(b);
                return api_respond_error(req, 500, "internal", "out of memory");
        }
        cm_seal_err_t serr =
            cm_seal_open(req->api->keys, sealed, slen, &b->p, &b->len, err, sizeof(err));
        PQfreemem(sealed);
        if (serr != CM_SEAL_OK) {
                free(b);
                cm_log_error("cannot open a stored kubeconfig", "cluster", req->param,
                             "error", err);
                return api_respond_error(
                    req, 500, "internal",
                    "the stored kubeconfig of cluster \"%s\" does not "
                    "open with this manager's key",
                    req->param);
        }
        struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback_cls(
            b->len, b->p, api_secret_buf_free, b);
        if (!r) {
                api_secret_buf_free(b);
                return MHD_NO;
        }
        MHD_add_response_header(r, "Content-Type", "application/yaml");
        cm_log_info("kubeconfig served", "cluster", req->param, "actor", req->actor);
        return api_respond_raw(req, MHD_HTTP_OK, r);
}
