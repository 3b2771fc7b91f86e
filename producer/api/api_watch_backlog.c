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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

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
