/*
 * api_watch_backlog.c - what a resumed event stream missed, and the SSE frame that live
 * and replayed events share.
 *
 * A browser's EventSource reconnects with Last-Event-ID: <the last id it saw>; scripts
 * pass ?after=N. api_watch_open registers the stream first (live frames start queuing),
 * then reads here every cluster event with seq > N from the read model, so an event
 * published in between is in the live queue, the backlog, or both - never in neither.
 * "Both" is settled when sending: api_watch_frame_keep drops a cluster event whose seq
 * is not above the last one sent.
 *
 * The backlog is capped (API_WATCH_BACKLOG_MAX_EVENTS, API_WATCH_BACKLOG_MAX_BYTES) so
 * one reconnect cannot pin unbounded memory. A stream whose backlog is cut ends after it
 * instead of going on with live frames (that would leave a gap); the client reconnects
 * from the last id it got and receives the next part.
 *
 * The reads run on one loader thread, not on the MHD pool thread of the request: a
 * pool thread serves many connections, and one read held up by a lock or a large
 * backlog must not stall the live streams and requests that share its thread.
 */
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cm/log.h"

struct api_watch_loader_s {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        api_watch_load_t *head, *tail; /* queued reads, oldest first */
        int stopping;
        pthread_t thread;
        cm_pg_t *pg; /* the loader's own connection (statement_timeout on each session) */
};

/* A read that waits longer (a lock held on cluster_events) fails: the client retries,
 * and cm-api's stop never waits longer for the read under way. */
#define API_WATCH_LOAD_TIMEOUT "10s"

/* A frame of len bytes, not filled in yet. */
static api_frame_t *api_watch_frame_alloc(size_t len, long long seq)
{
        api_frame_t *f = malloc(sizeof(*f) + len);
        if (f) {
                f->next = NULL;
                f->seq = seq;
                f->len = len;
                f->off = 0;
        }
        return f;
}

api_frame_t *api_watch_frame_new(const char *data, size_t len, long long seq)
{
        api_frame_t *f = api_watch_frame_alloc(len, seq);
        if (f)
                memcpy(f->data, data, len);
        return f;
}

api_frame_t *api_watch_frame_json(const char *type, long long id, json_t *data)
{
        /* Sorted keys: the read model keeps the event's spec as jsonb, which does not
         * keep the order it was written in; sorting makes both sources agree byte for
         * byte, so a client cannot tell a replayed event from a live one. */
        char *text = data ? json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(data);
        if (!text)
                return NULL;
        char head[128]; /* type is one of ours ("cluster-event", "progress") */
        int h =
            id > 0 ? snprintf(head, sizeof(head), "event: %s\nid: %lld\ndata: ", type, id)
                   : snprintf(head, sizeof(head), "event: %s\ndata: ", type);
        size_t tl = strlen(text);
        api_frame_t *f = api_watch_frame_alloc((size_t)h + tl + 2, id > 0 ? id : 0);
        if (f) {
                memcpy(f->data, head, (size_t)h);
                memcpy(f->data + h, text, tl);
                memcpy(f->data + h + tl, "\n\n", 2);
        }
        free(text);
        return f;
}

int api_watch_frame_keep(long long *last, long long seq)
{
        if (seq <= 0)
                return 1;
        /* Events of one cluster share a partition key, so they arrive in seq order; an
         * older or equal seq is the backlog's copy coming again live, or a redelivery. */
        if (seq <= *last)
                return 0;
        /* seq is gap-free per cluster: a jump means an event that was published before
         * the stream was registered and is not in the read model yet (the projector is
         * behind). Sending on would lose it for good (the client's last id moves past
         * it); ending the stream has the client ask again, from the read model. */
        if (seq > *last + 1)
                return -1;
        *last = seq;
        return 1;
}

void api_watch_backlog_free(api_watch_backlog_t *b)
{
        while (b->head) {
                api_frame_t *f = b->head;
                b->head = f->next;
                free(f);
        }
        memset(b, 0, sizeof(*b));
}

static void api_watch_backlog_add(api_watch_backlog_t *b, api_frame_t *f)
{
        if (b->tail)
                b->tail->next = f;
        else
                b->head = f;
        b->tail = f;
        b->bytes += f->len;
        b->count++;
        b->last = f->seq;
}

int api_watch_backlog_load(cm_pg_t *pg, const char *cluster, long long after,
                           api_watch_backlog_t *b, char *errstr, size_t errstr_size)
{
        char as[24], limit[24];
        memset(b, 0, sizeof(*b));
        b->last = after;
        snprintf(as, sizeof(as), "%lld", after);
        /* One row more than the cap tells whether more exist. */
        snprintf(limit, sizeof(limit), "%d", API_WATCH_BACKLOG_MAX_EVENTS + 1);
        const char *params[] = {cluster, as, limit};
        PGresult *res = NULL;
        if (cm_pg_exec_params(pg,
                              "SELECT " API_EVENT_COLUMNS " FROM cluster_events "
                              "WHERE cluster = $1 AND seq > $2::bigint ORDER BY seq "
                              "LIMIT $3::integer",
                              3, params, &res, errstr, errstr_size) != CM_PG_OK)
                return -1;
        int rows = PQntuples(res);
        for (int i = 0; i < rows; i++) {
                if (b->count == API_WATCH_BACKLOG_MAX_EVENTS) {
                        b->truncated = 1;
                        break;
                }
                json_t *e = api_event_row_json(res, i);
                long long seq = strtoll(PQgetvalue(res, i, 0), NULL, 10);
                json_object_set_new(e, "cluster", json_string(cluster));
                api_frame_t *f = api_watch_frame_json("cluster-event", seq, e);
                if (!f) {
                        snprintf(errstr, errstr_size,
                                 "event %lld of cluster \"%s\": out of memory", seq,
                                 cluster);
                        PQclear(res);
                        api_watch_backlog_free(b);
                        return -1;
                }
                /* The first event always goes, however big: a stream that never moves
                 * on would have its client reconnect for ever. */
                if (b->count > 0 && b->bytes + f->len > API_WATCH_BACKLOG_MAX_BYTES) {
                        free(f);
                        b->truncated = 1;
                        break;
                }
                api_watch_backlog_add(b, f);
        }
        PQclear(res);
        return 0;
}

/* ---------------------------------------------------------------- the loader thread */

static void api_watch_load_run(api_watch_loader_t *l, api_watch_load_t *ld)
{
        ld->rc = -1;
        if (cm_pg_ensure(l->pg, 2000, ld->err, sizeof(ld->err)) != CM_PG_OK)
                return;
        ld->rc = api_watch_backlog_load(l->pg, ld->cluster, ld->after, &ld->b, ld->err,
                                        sizeof(ld->err));
}

/* Takes the oldest queued read (lock held), NULL when none. */
static api_watch_load_t *api_watch_loader_pop(api_watch_loader_t *l)
{
        api_watch_load_t *ld = l->head;
        if (ld) {
                l->head = ld->next;
                if (!l->head)
                        l->tail = NULL;
                ld->next = NULL;
        }
        return ld;
}

static void *api_watch_loader_main(void *arg)
{
        api_watch_loader_t *l = arg;
        pthread_mutex_lock(&l->lock);
        for (;;) {
                while (!l->head && !l->stopping)
                        pthread_cond_wait(&l->cond, &l->lock);
                api_watch_load_t *ld = api_watch_loader_pop(l);
                if (!ld)
                        break; /* stopping, nothing queued */
                int stopping = l->stopping;
                pthread_mutex_unlock(&l->lock);
                if (stopping) {
                        ld->rc = -1;
                        snprintf(ld->err, sizeof(ld->err), "cm-api is stopping");
                } else {
                        api_watch_load_run(l, ld);
                }
                /* ld belongs to its request again from here on. */
                MHD_resume_connection(ld->conn);
                pthread_mutex_lock(&l->lock);
        }
        pthread_mutex_unlock(&l->lock);
        return NULL;
}

api_watch_loader_t *api_watch_loader_new(const cm_config_t *conf, char *errstr,
                                         size_t errstr_size)
{
        api_watch_loader_t *l = calloc(1, sizeof(*l));
        if (!l) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        pthread_mutex_init(&l->lock, NULL);
        pthread_cond_init(&l->cond, NULL);
        if (!(l->pg = cm_pg_new_config(conf, errstr, errstr_size)))
                goto fail;
        if (cm_pg_err_is_bad_statement(cm_pg_on_connect(
                l->pg, "SET statement_timeout = '" API_WATCH_LOAD_TIMEOUT "'", errstr,
                errstr_size))) {
                cm_pg_destroy(l->pg);
                goto fail;
        }
        if (pthread_create(&l->thread, NULL, api_watch_loader_main, l) != 0) {
                snprintf(errstr, errstr_size, "cannot start the backlog loader thread");
                cm_pg_destroy(l->pg);
                goto fail;
        }
        return l;
fail:
        pthread_mutex_destroy(&l->lock);
        pthread_cond_destroy(&l->cond);
        free(l);
        return NULL;
}

void api_watch_loader_submit(api_watch_loader_t *l, api_watch_load_t *ld)
{
        ld->next = NULL;
        pthread_mutex_lock(&l->lock);
        int stopping = l->stopping;
        if (!stopping) {
                if (l->tail)
                        l->tail->next = ld;
                else
                        l->head = ld;
                l->tail = ld;
                pthread_cond_signal(&l->cond);
        }
        pthread_mutex_unlock(&l->lock);
        if (stopping) { /* the thread may be gone: nobody else would resume it */
                ld->rc = -1;
                snprintf(ld->err, sizeof(ld->err), "cm-api is stopping");
                MHD_resume_connection(ld->conn);
        }
}

void api_watch_loader_stop(api_watch_loader_t *l)
{
        if (!l)
                return;
        pthread_mutex_lock(&l->lock);
        int was = l->stopping;
        l->stopping = 1;
        pthread_cond_signal(&l->cond);
        pthread_mutex_unlock(&l->lock);
        if (!was)
                pthread_join(l->thread, NULL);
}

void api_watch_loader_free(api_watch_loader_t *l)
{
        if (!l)
                return;
        api_watch_loader_stop(l);
        cm_pg_destroy(l->pg);
        pthread_mutex_destroy(&l->lock);
        pthread_cond_destroy(&l->cond);
        free(l);
}
