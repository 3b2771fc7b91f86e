/*
 * api_commands.c - producing commands (docs/command-path.md) and waiting for their
 * outcome.
 *
 * A command id is the Idempotency-Key header (1-200 printable ASCII characters) or a new
 * UUID. Before producing (api_produce.c), command_results gets a 'pending' row so
 * GET /v1/commands/{id} knows the id at once; the projector later writes the outcome over
 * it. With
 * "Prefer: wait=N" the request is suspended (no pool thread blocks) and one poller thread
 * watches command_results for every waiting request, resuming each when its command left
 * 'pending' or its N seconds passed.
 */
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <uuid/uuid.h>

#include "api.h"
#include "cm/kafka.h"
#include "cm/log.h"

#define API_ID_MAX       200
#define API_WAIT_POLL_MS 100

typedef enum {
        API_WAIT_PENDING = 0,
        API_WAIT_OUTCOME,
        API_WAIT_TIMEOUT
} api_wait_state_t;

typedef struct api_waiter_s {
        struct api_waiter_s *next;
        struct MHD_Connection *conn;
        char id[API_ID_MAX + 1];
        char cluster[API_PARAM_MAX];
        cm_command_kind_t kind;
        long long deadline_ms; /* CLOCK_MONOTONIC */
        api_wait_state_t state;
        char status[16]; /* applied | rejected */
        char code[16];   /* conflict | invalid | "" */
        char *message;
} api_waiter_t;

struct api_wait_s {
        api_t *api;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        api_waiter_t *head;
        int stopping;
        pthread_t thread;
        cm_pg_t *pg; /* the poller's own connection */
};

static long long api_now_ms(clockid_t clk)
{
        struct timespec ts;
        clock_gettime(clk, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- ids and answers */

/* Percent-encodes s for a path segment (RFC 3986 unreserved characters kept). */
static void api_path_escape(char *out, size_t size, const char *s)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t n = 0;
        for (; *s && n + 4 < size; s++) {
                unsigned char ch = (unsigned char)*s;
                if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
                    ch == '~') {
                        out[n++] = (char)ch;
                } else {
                        out[n++] = '%';
                        out[n++] = hex[ch >> 4];
                        out[n++] = hex[ch & 15];
                }
        }
        out[n] = '\0';
}

static int api_respond_accepted(api_request_t *req, const char *id)
{
        char loc[3 * API_ID_MAX + 32] = "/v1/commands/";
        api_path_escape(loc + strlen(loc), sizeof(loc) - strlen(loc), id);
        return api_respond_json_header(
            req, MHD_HTTP_ACCEPTED, json_pack("{s:s}", "commandId", id), "Location", loc);
}

/* The command id: the Idempotency-Key header, or a new UUID. 0, or -1 answered (400). */
static int api_command_id(api_request_t *req, char id[API_ID_MAX + 1], int *ret)
{
        const char *h = api_header(req, "Idempotency-Key");
        if (!h) {
                uuid_t u;
                uuid_generate_random(u);
                uuid_unparse_lower(u, id);
                return 0;
        }
        size_t len = strlen(h), bad = len;
        for (size_t i = 0; i < len && bad == len; i++)
                if ((unsigned char)h[i] < 0x20 || (unsigned char)h[i] > 0x7e)
                        bad = i;
        if (len == 0 || len > API_ID_MAX || bad < len) {
                cm_field_errors_t errs = {0};
                if (bad < len)
                        cm_field_errors_add(&errs, "Idempotency-Key",
                                            "must be printable ASCII: byte %zu is 0x%02x",
                                            bad + 1, (unsigned)(unsigned char)h[bad]);
                else
                        cm_field_errors_add(&errs, "Idempotency-Key",
                                            "must be 1 to %d characters long, got %zu",
                                            API_ID_MAX, len);
                *ret = api_respond_fields(req, MHD_HTTP_BAD_REQUEST, "bad_request",
                                          "invalid Idempotency-Key header", &errs);
                cm_field_errors_clear(&errs);
                return -1;
        }
        memcpy(id, h, len + 1);
        return 0;
}

/* "Prefer: respond-async, wait=10" (RFC 7240): the wait in seconds, or -1. */
static int api_prefer_wait(const char *h)
{
        while (h && *h) {
                h += strspn(h, " \t,;");
                if (strncasecmp(h, "wait", 4) == 0) {
                        const char *p = h + 4;
                        p += strspn(p, " \t");
                        if (*p == '=') {
                                p++;
                                p += strspn(p, " \t\"");
                                char *end;
                                long v = strtol(p, &end, 10);
                                if (end != p && v >= 0)
                                        return v > 86400 ? 86400 : (int)v;
                        }
                }
                h += strcspn(h, ",");
        }
        return -1;
}

/* Records the id as pending. 0 ok, -1 answered (503, or 409 for a key of another
 * cluster). */
static int api_command_pending(api_request_t *req, const char *id, const char *cluster,
                               int *ret)
{
        char err[512];
        cm_pg_t *pg = api_db(req, ret);
        if (!pg)
                return -1;
        const char *params[] = {id, cluster};
        PGresult *res = NULL;
        /* One round trip: the new row's cluster, or the one an earlier use of the key
         * recorded (a retry, or the same key on another cluster). */
        if (cm_pg_exec_params(
                pg,
                "WITH ins AS (INSERT INTO command_results (command_id, cluster, status) "
                "VALUES ($1, $2, 'pending') ON CONFLICT (command_id) DO NOTHING "
                "RETURNING cluster) "
                "SELECT cluster FROM ins UNION ALL "
                "SELECT cluster FROM command_results WHERE command_id = $1 "
                "AND NOT EXISTS (SELECT 1 FROM ins)",
                2, params, &res, err, sizeof(err)) != CM_PG_OK) {
                *ret = api_respond_db_error(req, "record the command", err);
                return -1;
        }
        if (PQntuples(res) == 0) {
                /* The key's row was committed by a concurrent request after this
                 * statement's snapshot was taken: read it now. */
                PQclear(res);
                res = NULL;
                if (cm_pg_exec_params(
                        pg, "SELECT cluster FROM command_results WHERE command_id = $1",
                        1, params, &res, err, sizeof(err)) != CM_PG_OK) {
                        *ret = api_respond_db_error(req, "record the command", err);
                        return -1;
                }
        }
        int rc = 0;
        if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), cluster) != 0) {
                *ret = api_respond_error(req, MHD_HTTP_CONFLICT, "conflict",
                                         "Idempotency-Key \"%s\" was already used for a "
                                         "command on cluster \"%s\"",
                                         id, PQgetvalue(res, 0, 0));
                rc = -1;
        }
        PQclear(res);
        return rc;
}

/* ---------------------------------------------------------------- waiting */

static void api_waiter_free(void *p)
{
        api_waiter_t *w = p;
        if (w)
                free(w->message);
        free(w);
}

/* "field: message; field: message" (the worker's CommandInvalid error) as fields. A
 * message may itself hold "; " (e.g. "\"etcd\" cannot stand alone; a node must be ..."):
 * a piece that does not start with "field: " (a field path has no space) continues the
 * previous message. */
static void api_fields_split(const char *msg, cm_field_errors_t *errs)
{
        const char *p = msg;
        while (p && *p) {
                const char *end = strstr(p, "; ");
                int n = end ? (int)(end - p) : (int)strlen(p);
                const char *colon = memchr(p, ':', (size_t)n);
                int is_field = colon && colon > p && colon + 1 < p + n &&
                               colon[1] == ' ' && !memchr(p, ' ', (size_t)(colon - p));
                if (is_field) {
                        char field[256];
                        snprintf(field, sizeof(field), "%.*s", (int)(colon - p), p);
                        cm_field_errors_add(errs, field, "%.*s", n - (int)(colon + 2 - p),
                                            colon + 2);
                } else if (errs->count > 0) {
                        cm_field_error_t *e = &errs->items[errs->count - 1];
                        char *m = NULL;
                        if (asprintf(&m, "%s; %.*s", e->message, n, p) > 0) {
                                free(e->message);
                                e->message = m;
                        }
                } else {
                        cm_field_errors_add(errs, "$", "%.*s", n, p);
                }
                p = end ? end + 2 : NULL;
        }
}

static int api_wait_resume(api_request_t *req, void *state)
{
        api_waiter_t *w = state;
        if (w->state != API_WAIT_OUTCOME)
                return api_respond_accepted(req, w->id);
        const char *msg = w->message ? w->message : "";
        if (strcmp(w->status, "rejected") == 0) {
                if (strcmp(w->code, "invalid") == 0) {
                        cm_field_errors_t errs = {0};
                        api_fields_split(msg, &errs);
                        int ret = api_respond_fields(req, MHD_HTTP_UNPROCESSABLE_CONTENT,
                                                     "invalid", msg, &errs);
                        cm_field_errors_clear(&errs);
                        return ret;
                }
                return api_respond_error(req, MHD_HTTP_CONFLICT, "conflict", "%s", msg);
        }
        int ret;
        char err[512];
        json_t *cluster = NULL;
        cm_pg_t *pg = api_db(req, &ret);
        if (!pg)
                return ret;
        if (api_cluster_load(pg, w->cluster, &cluster, err, sizeof(err)) < 0)
                return api_respond_db_error(req, "read the cluster", err);
        int created = w->kind == CM_COMMAND_CREATE || w->kind == CM_COMMAND_IMPORT;
        if (!cluster) /* deleted at once (an imported cluster) */
                cluster = json_pack("{s:s,s:s}", "name", w->cluster, "state", "Deleted");
        json_object_set_new(cluster, "commandId", json_string(w->id));
        char loc[API_PARAM_MAX + 16];
        snprintf(loc, sizeof(loc), "/v1/clusters/%s", w->cluster);
        return api_respond_json_header(req, created ? MHD_HTTP_CREATED : MHD_HTTP_OK,
                                       cluster, created ? "Location" : NULL, loc);
}

/* Takes w out of the list (lock held) and lets MHD answer it. */
static void api_waiter_finish(api_wait_t *wt, api_waiter_t **link, api_wait_state_t st)
{
        api_waiter_t *w = *link;
        *link = w->next;
        w->next = NULL;
        w->state = st;
        (void)wt;
        MHD_resume_connection(w->conn);
}

/* Queries the outcome of id; 1 when it left pending (fields set), 0 pending, -1 error. */
static int api_wait_query(api_wait_t *wt, const char *id, char status[16], char code[16],
                          char **message)
{
        char err[512];
        if (cm_pg_ensure(wt->pg, 1000, err, sizeof(err)) != CM_PG_OK)
                return -1;
        const char *params[] = {id};
        PGresult *res = NULL;
        if (cm_pg_exec_params(
                wt->pg,
                "SELECT status, coalesce(code, ''), message FROM "
                "command_results WHERE command_id = $1 AND status <> 'pending'",
                1, params, &res, err, sizeof(err)) != CM_PG_OK) {
                cm_log_warn("cannot read a command's outcome", "command", id, "error",
                            err);
                return -1;
        }
        int found = PQntuples(res) == 1;
        if (found) {
                snprintf(status, 16, "%s", PQgetvalue(res, 0, 0));
                snprintf(code, 16, "%s", PQgetvalue(res, 0, 1));
                *message = PQgetisnull(res, 0, 2) ? NULL : strdup(PQgetvalue(res, 0, 2));
        }
        PQclear(res);
        return found;
}

/* One round: the outcome of every waiting id, then the deadlines. */
static void api_wait_round(api_wait_t *wt)
{
        size_t n = 0, cap = 0;
        char(*ids)[API_ID_MAX + 1] = NULL;
        pthread_mutex_lock(&wt->lock);
        for (api_waiter_t *w = wt->head; w; w = w->next) {
                if (n == cap) {
                        size_t nc = cap ? cap * 2 : 16;
                        void *p = realloc(ids, nc * sizeof(*ids));
                        if (!p)
                                break;
                        ids = p;
                        cap = nc;
                }
                memcpy(ids[n++], w->id, sizeof(w->id));
        }
        pthread_mutex_unlock(&wt->lock);

        for (size_t i = 0; i < n; i++) {
                char status[16], code[16];
                char *message = NULL;
                if (i > 0 && strcmp(ids[i], ids[i - 1]) == 0)
                        continue;
                if (api_wait_query(wt, ids[i], status, code, &message) != 1)
                        continue;
                pthread_mutex_lock(&wt->lock);
                for (api_waiter_t **l = &wt->head; *l;) {
                        api_waiter_t *w = *l;
                        if (strcmp(w->id, ids[i]) != 0) {
                                l = &w->next;
                                continue;
                        }
                        memcpy(w->status, status, sizeof(status));
                        memcpy(w->code, code, sizeof(code));
                        w->message = message ? strdup(message) : NULL;
                        api_waiter_finish(wt, l, API_WAIT_OUTCOME);
                }
                pthread_mutex_unlock(&wt->lock);
                free(message);
        }
        free(ids);

        long long now = api_now_ms(CLOCK_MONOTONIC);
        pthread_mutex_lock(&wt->lock);
        for (api_waiter_t **l = &wt->head; *l;) {
                if ((*l)->deadline_ms <= now)
                        api_waiter_finish(wt, l, API_WAIT_TIMEOUT);
                else
                        l = &(*l)->next;
        }
        pthread_mutex_unlock(&wt->lock);
}

static void *api_wait_main(void *arg)
{
        api_wait_t *wt = arg;
        for (;;) {
                pthread_mutex_lock(&wt->lock);
                while (!wt->head && !wt->stopping)
                        pthread_cond_wait(&wt->cond, &wt->lock);
                int stop = wt->stopping;
                pthread_mutex_unlock(&wt->lock);
                if (stop)
                        break;
                api_wait_round(wt);
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += API_WAIT_POLL_MS * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                pthread_mutex_lock(&wt->lock);
                if (!wt->stopping)
                        pthread_cond_timedwait(&wt->cond, &wt->lock, &ts);
                pthread_mutex_unlock(&wt->lock);
        }
        return NULL;
}

int api_wait_start(api_t *api, char *errstr, size_t errstr_size)
{
        api_wait_t *wt = calloc(1, sizeof(*wt));
        if (!wt) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        wt->api = api;
        pthread_mutex_init(&wt->lock, NULL);
        pthread_cond_init(&wt->cond, NULL);
        if (!(wt->pg = cm_pg_new_config(&api->svc->conf, errstr, errstr_size)) ||
            pthread_create(&wt->thread, NULL, api_wait_main, wt) != 0) {
                if (wt->pg)
                        snprintf(errstr, errstr_size, "cannot start the wait thread");
                cm_pg_destroy(wt->pg);
                free(wt);
                return -1;
        }
        api->wait = wt;
        return 0;
}

void api_wait_stop(api_t *api)
{
        api_wait_t *wt = api->wait;
        if (!wt)
                return;
        pthread_mutex_lock(&wt->lock);
        wt->stopping = 1;
        while (wt->head)
                api_waiter_finish(wt, &wt->head, API_WAIT_TIMEOUT);
        pthread_cond_broadcast(&wt->cond);
        pthread_mutex_unlock(&wt->lock);
        pthread_join(wt->thread, NULL);
        cm_pg_destroy(wt->pg);
        pthread_mutex_destroy(&wt->lock);
        pthread_cond_destroy(&wt->cond);
        free(wt);
        api->wait = NULL;
}

/* Suspends req until the outcome of cmd or wait_s seconds. 0 suspended, -1 not (the
 * caller answers 202 at once: the process is stopping). */
static int api_wait_enqueue(api_request_t *req, const char *id, const char *cluster,
                            cm_command_kind_t kind, int wait_s)
{
        api_wait_t *wt = req->api->wait;
        api_waiter_t *w = calloc(1, sizeof(*w));
        if (!w || !wt)
                goto fail;
        w->conn = req->conn;
        snprintf(w->id, sizeof(w->id), "%s", id);
        snprintf(w->cluster, sizeof(w->cluster), "%s", cluster);
        w->kind = kind;
        w->deadline_ms = api_now_ms(CLOCK_MONOTONIC) + (long long)wait_s * 1000;
        pthread_mutex_lock(&wt->lock);
        if (wt->stopping) {
                pthread_mutex_unlock(&wt->lock);
                goto fail;
        }
        /* Suspended before the poller can see it: it may resume it at once. */
        api_request_suspend(req, api_wait_resume, w, api_waiter_free);
        w->next = wt->head;
        wt->head = w;
        pthread_cond_broadcast(&wt->cond);
        pthread_mutex_unlock(&wt->lock);
        return 0;
fail:
        free(w);
        return -1;
}

/* ---------------------------------------------------------------- submit, GET */

int api_command_submit(api_request_t *req, cm_command_t *cmd)
{
        int ret;
        char id[API_ID_MAX + 1];
        if (api_command_id(req, id, &ret))
                goto out;
        if (!(cmd->id = strdup(id)) || !(cmd->actor.name = strdup(req->actor)) ||
            !(cmd->actor.role = strdup(req->role == API_ROLE_ADMIN ? "admin" : "user"))) {
                ret = MHD_NO;
                goto out;
        }
        cmd->issued_at = api_now_ms(CLOCK_REALTIME);
        if (api_command_pending(req, id, cmd->cluster, &ret))
                goto out;
        int wait_s = api_prefer_wait(api_header(req, "Prefer"));
        int max = req->api->svc->conf.api.wait_max_s;
        if (wait_s > max)
                wait_s = max;
        /* Answered from api_command_produced once the broker has the command. */
        ret = api_produce_command(req, cmd, wait_s);
out:
        cm_command_destroy(cmd);
        return ret;
}

int api_command_produced(api_request_t *req, const char *id, const char *cluster,
                         cm_command_kind_t kind, int wait_s)
{
        if (wait_s > 0 && api_wait_enqueue(req, id, cluster, kind, wait_s) == 0)
                return MHD_YES;
        return api_respond_accepted(req, id);
}

int api_handle_command_get(api_request_t *req)
{
        int ret;
        char err[512];
        cm_pg_t *pg = api_db(req, &ret);
        if (!pg)
                return ret;
        const char *params[] = {req->param};
        PGresult *res = NULL;
        if (cm_pg_exec_params(pg,
                              "SELECT command_id, cluster, status, code, message, "
                              "to_char(updated_at AT TIME ZONE 'UTC', "
                              "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
                              "FROM command_results WHERE command_id = $1",
                              1, params, &res, err, sizeof(err)) != CM_PG_OK)
                return api_respond_db_error(req, "read the command", err);
        if (PQntuples(res) != 1) {
                PQclear(res);
                return api_respond_error(req, MHD_HTTP_NOT_FOUND, "not_found",
                                         "command \"%s\" is unknown", req->param);
        }
        json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "commandId", PQgetvalue(res, 0, 0),
                              "cluster", PQgetvalue(res, 0, 1), "status",
                              PQgetvalue(res, 0, 2), "updatedAt", PQgetvalue(res, 0, 5));
        if (j && !PQgetisnull(res, 0, 3))
                json_object_set_new(j, "code", json_string(PQgetvalue(res, 0, 3)));
        if (j && !PQgetisnull(res, 0, 4))
                json_object_set_new(j, "message", json_string(PQgetvalue(res, 0, 4)));
        PQclear(res);
        return api_respond_json(req, MHD_HTTP_OK, j);
}
