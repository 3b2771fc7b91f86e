/*
 * producer/api/api.h - the parts of cm-api (internal to the cm-api binary).
 *
 *   api_main.c       process start, --create-token
 *   api_server.c     HTTP server (MHD thread pool), bodies, suspend/resume, errors
 *   api_routes.c     the route table (path templates), public endpoints
 *   api_auth.c       bearer tokens checked against api_tokens (sha256), token creation,
 *                    the per-thread PostgreSQL connection
 *   api_ratelimit.c  token bucket per token / client address (429)
 *   api_body.c       a body as one JSON object (no HTTP), its nesting depth limit
 *   api_json.c       request bodies as JSON (400 with line and column), field errors
 *   api_clusters.c   create, update, delete, cancel, import: parse, validate, command
 *   api_commands.c   command ids, pending rows, Prefer: wait, GET /v1/commands/{id}
 *   api_produce.c    commands onto cm.commands, the request suspended until the broker
 *                    acknowledges (no pool thread waits for Kafka)
 *   api_reads.c      reads from the read model, kubeconfig from the write model
 *   api_watch.c      live event streams (SSE), one consumer of cm.events and cm.progress
 *   api_watch_backlog.c
 *                    the events a resumed stream missed (Last-Event-ID / ?after), read
 *                    from the read model by the loader thread, and the SSE frame live
 *                    events share
 *   api_metrics.c    /metrics: requests by route and status, latency histogram, commands
 *                    produced by kind, open streams
 *
 * Threading: handlers run on the MHD pool threads; each thread has its own PostgreSQL
 * connection (api_db). Produces, Prefer: wait, event streams and the backlog reads of
 * resumed streams suspend their connection instead of blocking a pool thread.
 */
#ifndef CM_API_H
#define CM_API_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>

#include "cm/command.h"
#include "cm/pg.h"
#include "cm/seal.h"
#include "cm/service.h"
#include "cm/spec.h"

struct MHD_Response;
struct MHD_Connection;
struct MHD_Daemon;

typedef enum { API_ROLE_NONE = 0, API_ROLE_USER, API_ROLE_ADMIN } api_role_t;

typedef struct api_wait_s api_wait_t;
typedef struct api_produce_s api_produce_t;
typedef struct api_watch_s api_watch_t;
typedef struct api_conn_s api_conn_t;

typedef struct api_s {
        cm_service_t *svc;
        cm_kafka_producer_t *producer;
        cm_seal_keypair_t *keys;
        char *publickey_b64;
        struct MHD_Daemon *daemon;
        int port;
        atomic_long open_requests; /* begun, not completed (api_server.c) */
        api_produce_t *produce;    /* commands in flight (api_produce.c) */
        api_wait_t *wait;          /* Prefer: wait (api_commands.c) */
        api_watch_t *watch;        /* event streams (api_watch.c) */
} api_t;

#define API_PARAM_MAX                                                                    \
        256 /* a path parameter: a cluster name (253) or a command id (200) */

/* A request after routing: what a handler needs and what it answers. */
typedef struct api_request_s {
        api_t *api;
        const char *method;
        const char *url;
        const char *route; /* route template for metrics, e.g. "/v1/clusters/{name}" */
        char *body;        /* NUL-terminated, NULL when empty */
        size_t body_len;
        struct MHD_Connection *conn;
        api_role_t role;           /* of the bearer token, API_ROLE_NONE when absent */
        char *actor;               /* token name, NULL when absent */
        unsigned int status;       /* set when the answer is queued (for metrics) */
        char param[API_PARAM_MAX]; /* {name} or {id} of the route, "" when none */
        api_conn_t *c;             /* the server's per-connection state */
} api_request_t;

typedef int (*api_handler_t)(api_request_t *req);

/* ---- rate limiting (api_ratelimit.c) */
/* Takes one token from the caller's bucket (bearer token, else client address). Returns 1
 * when the caller is over api.rate_limit_per_s, with the seconds to wait in
 * *retry_after_s.
 * Thread-safe. */
int api_ratelimit_check(const api_request_t *req, int *retry_after_s);

/* ---- server */
int api_server_start(api_t *api, const char *listen, int threads, char *errstr,
                     size_t errstr_size);
void api_server_stop(api_t *api);

/* Answers status with body (a JSON value, reference stolen). Returns the MHD result. */
int api_respond_json(api_request_t *req, unsigned int status, json_t *body);
/* Same, with one extra header (name, value; both may be NULL). */
int api_respond_json_header(api_request_t *req, unsigned int status, json_t *body,
                            const char *name, const char *value);
/* Answers an error {"error":{"code","message"}}; message is printf-style. */
int api_respond_error(api_request_t *req, unsigned int status, const char *code,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Answers {"error":{"code","message","fields":[{"field","message"}...]}}. */
int api_respond_fields(api_request_t *req, unsigned int status, const char *code,
                       const char *message, const cm_field_errors_t *errs);
/* Queues an MHD response already built (takes care of metrics status). */
int api_respond_raw(api_request_t *req, unsigned int status, struct MHD_Response *r);

/* A header of the request, or NULL. */
const char *api_header(const api_request_t *req, const char *name);
/* A query argument of the request, or NULL. */
const char *api_query(const api_request_t *req, const char *name);

/*
 * Suspends the request's connection: the handler returns MHD_YES without answering, and
 * once some other thread calls MHD_resume_connection(req->conn), cb(req, state) runs on
 * a pool thread to answer (and may suspend req again, with a new state).
 * free_state(state) runs once cb returns, or when the connection ends without being
 * resumed. Must be called from the handler, before the connection is made visible to the
 * resuming thread.
 */
typedef int (*api_resume_cb_t)(api_request_t *req, void *state);
void api_request_suspend(api_request_t *req, api_resume_cb_t cb, void *state,
                         void (*free_state)(void *));

/* ---- routes (api_routes.c) */
typedef enum { API_AUTH_PUBLIC, API_AUTH_ANY } api_auth_t;

typedef struct api_route_s {
        const char *method;
        const char *path; /* template: "{name}" / "{id}" match one non-empty segment */
        api_auth_t auth;
        const char
            *admin_only; /* the 403 message when the caller is not admin, or NULL */
        int json_body;   /* 1: the request must carry a JSON object */
        api_handler_t handler;
} api_route_t;

/*
 * The route for method and url (HEAD matches GET). param receives the template's
 * parameter. NULL when none: *path_known says whether another method would match (405).
 */
const api_route_t *api_route_match(const char *method, const char *url, char *param,
                                   size_t param_size, int *path_known);

/* 1 when s is a DNS-1123 subdomain (a possible cluster name). */
int api_name_valid(const char *s);

/* ---- auth (api_auth.c) */
/*
 * Looks up the bearer token of the request on this thread's own PostgreSQL connection.
 * Returns 0 and sets req->role/actor when the token is valid, 1 when absent or unknown
 * or revoked (401), -1 when the database cannot be reached (503, errstr set).
 */
int api_auth_check(api_request_t *req, char *errstr, size_t errstr_size);

/*
 * Creates a token named name with role ("admin" | "user") and writes it (a malloc'd
 * string the caller frees, shown once) to *token; only its sha256 is stored. replace: an
 * existing token of that name is deleted first (in the same transaction). Returns 0 or -1
 * with errstr.
 */
int api_auth_create_token(cm_pg_t *pg, const char *name, const char *role, int replace,
                          char **token, char *errstr, size_t errstr_size);

/* This pool thread's PostgreSQL connection, connected; NULL with errstr when it cannot be
 * reached. Owned by the thread (closed when it ends). */
cm_pg_t *api_thread_pg(api_t *api, char *errstr, size_t errstr_size);

/* ---- JSON bodies without HTTP (api_body.c) */
#define API_JSON_MAX_DEPTH 64 /* arrays/objects inside one another in a request body */
/* 1 when the JSON text s[0..len) opens more than max arrays/objects inside one another
 * (a scan of the text that neither parses nor recurses), 0 otherwise. Thread-safe. */
int api_json_too_deep(const char *s, size_t len, int max);
/*
 * Parses body[0..len) as one JSON object (duplicate keys rejected). Returns it (caller
 * owns the reference), or NULL with errstr saying why: nested deeper than
 * API_JSON_MAX_DEPTH, malformed (line and column), or not an object. Thread-safe.
 */
json_t *api_json_parse_object(const char *body, size_t len, char *errstr,
                              size_t errstr_size);

/* ---- JSON bodies and database helpers (api_json.c) */
/*
 * Parses the request body as one JSON object (duplicate keys rejected). On failure it
 * answers 400 (naming line and column) and returns NULL: the handler returns *ret.
 */
json_t *api_body_object(api_request_t *req, int *ret);

/* Like api_thread_pg, but answers 503 itself when the database is down (NULL, *ret). */
cm_pg_t *api_db(api_request_t *req, int *ret);

/* Answers 503 naming what failed in the database (the detail goes to the log). */
int api_respond_db_error(api_request_t *req, const char *what, const char *err);

/* Joins errs as "field: message; field: message" (malloc'd). */
char *api_fields_join(const cm_field_errors_t *errs);

/* ---- mutations (api_clusters.c) */
int api_handle_cluster_create(api_request_t *req);
int api_handle_cluster_update(api_request_t *req);
int api_handle_cluster_delete(api_request_t *req);
int api_handle_cluster_cancel(api_request_t *req);
int api_handle_cluster_import(api_request_t *req);

/* ---- commands (api_commands.c) */
/*
 * Completes cmd (id from Idempotency-Key or a new UUID, actor, issuedAt), records it as
 * pending, produces it and answers 202 - or, with Prefer: wait=N, suspends until the
 * outcome (201/200/409/422) or N seconds pass (202). Secrets in cmd must be sealed
 * already. Takes ownership of cmd (destroyed here). Returns the MHD result.
 */
int api_command_submit(api_request_t *req, cm_command_t *cmd);
/* The broker has command id: answers 202, or with wait_s > 0 suspends req until its
 * outcome (api_wait). Returns the MHD result. Pool threads only. */
int api_command_produced(api_request_t *req, const char *id, const char *cluster,
                         cm_command_kind_t kind, int wait_s);
int api_handle_command_get(api_request_t *req);
int api_wait_start(api_t *api, char *errstr, size_t errstr_size);
/* Answers every waiting request (202) and stops the poller. */
void api_wait_stop(api_t *api);

/* ---- producing commands (api_produce.c) */
/* Creates api->producer, whose delivery reports resume the requests. 0 or -1 with
 * errstr. */
int api_produce_start(api_t *api, char *errstr, size_t errstr_size);
/*
 * Encodes cmd (not taken) and enqueues it on cm.commands keyed by its cluster, then
 * suspends req; the delivery report resumes it and a pool thread answers through
 * api_command_produced (wait_s as given), or 503 naming the command when the broker did
 * not take it. Answers 500 at once when cmd cannot be encoded, 503 when cm-api is
 * stopping. Returns the MHD result. Pool threads only.
 */
int api_produce_command(api_request_t *req, const cm_command_t *cmd, int wait_s);
/* Refuses new commands (503) and waits for the delivery report of every command in
 * flight (at most kafka.message_timeout_ms + 10 s), so no request stays suspended. */
void api_produce_stop(api_t *api);
/* Destroys the producer (flushing it) and the state. After api_server_stop. */
void api_produce_free(api_t *api);

/* ---- reads (api_reads.c) */
int api_handle_clusters_list(api_request_t *req);
int api_handle_cluster_get(api_request_t *req);
int api_handle_cluster_events(api_request_t *req);
int api_handle_cluster_kubeconfig(api_request_t *req);
/*
 * The cluster resource of name from the read model: a new JSON object (caller owns), or
 * NULL with *found 0 when absent or Deleted. Returns -1 on a database error (errstr).
 */
int api_cluster_load(cm_pg_t *pg, const char *name, json_t **out, char *errstr,
                     size_t errstr_size);
/* cluster_events columns that api_event_row_json reads, in its order. */
#define API_TS(col)                                                                      \
        "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define API_EVENT_COLUMNS                                                                \
        "seq, event_id, type, from_state, to_state, command_id, job_id, actor, "         \
        "actor_role, "                                                                   \
        "error, " API_TS("at") ", payload::text"
/* One cluster_events row (columns of API_EVENT_COLUMNS) as the JSON of an event. */
json_t *api_event_row_json(PGresult *res, int row);

/* ---- event streams (api_watch.c) */
int api_watch_start(api_t *api, char *errstr, size_t errstr_size);
/* Ends every open stream and stops the consumer (before MHD stops). */
void api_watch_stop(api_t *api);
/* Frees what is left, after MHD stopped (its last streams may be freed by MHD_stop). */
void api_watch_free(api_t *api);
/*
 * Opens a stream of cluster req->param (Accept: text/event-stream). after < 0: live
 * frames only. after >= 0 (Last-Event-ID / ?after, validated, cluster known to exist):
 * first every cluster event with seq > after from the read model (at most
 * API_WATCH_BACKLOG_MAX_EVENTS / _BYTES; past that the stream ends and the client
 * resumes from the last id), then the live frames, none twice.
 */
int api_watch_open(api_request_t *req, long long after);

/* ---- SSE frames and the backlog of a resumed stream (api_watch_backlog.c) */
#define API_WATCH_BACKLOG_MAX_EVENTS 10000
#define API_WATCH_BACKLOG_MAX_BYTES  (8u << 20)

/* One SSE frame queued on a stream. seq: the id of a cluster-event frame, 0 for others.
 */
typedef struct api_frame_s {
        struct api_frame_s *next;
        long long seq;
        size_t len, off;
        char data[];
} api_frame_t;

api_frame_t *api_watch_frame_new(const char *data, size_t len, long long seq);
/*
 * "event: <type>\n[id: <id>\n]data: <json>\n\n" (id when > 0) as a new frame; data is
 * stolen. Keys are written sorted, so a live event and the same event read back from
 * the read model (whose payload jsonb reorders keys) give the same bytes. NULL when data
 * is NULL or memory runs out.
 */
api_frame_t *api_watch_frame_json(const char *type, long long id, json_t *data);
/*
 * The rule of a resumed stream for its next frame: 1 to send it (progress frames, seq 0,
 * always; a cluster event of seq *last + 1, which *last becomes), 0 to drop it (that seq
 * or an earlier one was sent already, or lies before the resume point *last started at),
 * -1 when it would skip seqs (*last + 1 is neither sent nor queued: the stream ends so
 * the client resumes from *last).
 */
int api_watch_frame_keep(long long *last, long long seq);

typedef struct api_watch_backlog_s {
        api_frame_t *head, *tail;
        size_t bytes;
        long count;
        long long last; /* seq of the last frame, the resume point when none */
        int truncated;  /* more events exist after last */
} api_watch_backlog_t;

/*
 * Reads the cluster events of cluster with seq > after, oldest first, into b (zeroed
 * first) as cluster-event frames, up to the caps. Returns 0, or -1 with errstr (b is
 * then empty).
 */
int api_watch_backlog_load(cm_pg_t *pg, const char *cluster, long long after,
                           api_watch_backlog_t *b, char *errstr, size_t errstr_size);
void api_watch_backlog_free(api_watch_backlog_t *b);

/*
 * Backlog reads off the pool threads. A pool thread serves many connections; a read
 * held up there (a lock on cluster_events, a large backlog) would stall every stream
 * and request of that thread. So a resumed stream's request is suspended, and one
 * loader thread, with its own PostgreSQL connection, reads the backlogs in turn and
 * resumes each connection when its read is done.
 */
typedef struct api_watch_loader_s api_watch_loader_t;
typedef struct api_watch_load_s {
        struct api_watch_load_s *next; /* the loader's queue */
        struct MHD_Connection *conn;   /* suspended; resumed when the read is done */
        char cluster[API_PARAM_MAX];
        long long after;
        int rc; /* 0: b holds the backlog; -1: err says why there is none */
        char err[512];
        api_watch_backlog_t b;
} api_watch_load_t;

/* Starts the loader thread (it connects on its first read). NULL with errstr. */
api_watch_loader_t *api_watch_loader_new(const cm_config_t *conf, char *errstr,
                                         size_t errstr_size);
/*
 * Queues ld, whose connection the caller has suspended; the loader sets rc and b or
 * err, then resumes ld->conn and never touches ld again. The caller owns ld throughout
 * (it may free it once resumed). Thread-safe.
 */
void api_watch_loader_submit(api_watch_loader_t *l, api_watch_load_t *ld);
/*
 * Lets the read under way finish, fails the queued ones ("cm-api is stopping") and
 * resumes their connections, then stops the thread. Reads submitted later fail at
 * once the same way. Not thread-safe with itself; NULL is a no-op.
 */
void api_watch_loader_stop(api_watch_loader_t *l);
/* Stops l if it runs, then frees it. NULL is a no-op. */
void api_watch_loader_free(api_watch_loader_t *l);
/* Open streams now, and whether the consumer is positioned (1) or not yet (0). */
void api_watch_stats(api_t *api, unsigned long *streams, int *ready);

/* ---- metrics (api_metrics.c) */
void api_metrics_observe(const char *route, unsigned int status, double seconds);
void api_metrics_command_produced(cm_command_kind_t kind);
size_t api_metrics_render(void *opaque, char *buf, size_t size);

#endif
