/*
 * api_watch.c - live event streams: GET /v1/clusters/{name}/events with
 * Accept: text/event-stream (Server-Sent Events).
 *
 * One consumer per cm-api process reads cm.events and cm.progress. It joins no group and
 * commits nothing: at start it asks each partition's high watermark and assigns itself
 * every partition from there, so it sees what is written after the process started and
 * never disturbs the groups of workers and projectors. Each message is decoded once,
 * turned into one SSE frame and queued on the streams of its cluster:
 *
 *     event: cluster-event            event: progress
 *     id: <seq>                       data: {"cluster":...,"step":...,"status":...}
 *     data: {"cluster":...,"seq":...}
 *
 * A stream's connection is suspended while it has nothing to send (no pool thread waits)
 * and resumed when a frame arrives. Every api.sse_keepalive_s an SSE comment goes to
 * every stream; writing it is also how a client that left is noticed (MHD does not watch
 * a suspended socket), after which the stream is freed. A client that does not read its
 * stream (more than API_WATCH_MAX_QUEUED bytes waiting) is cut off rather than letting
 * the queue grow. Partitions added to a topic after the start are not followed.
 *
 * A stream opened with a resume point (Last-Event-ID / ?after) first gets the events it
 * missed from the read model (api_watch_backlog.c); its cluster-event frames then go
 * through api_watch_frame_keep, so an event both replayed and seen live is sent once.
 */
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "cm/event.h"
#include "cm/log.h"
#include "cm/progress.h"
#include "cm/projector.h"

#define API_WATCH_MAX_QUEUED (4u << 20)
#define API_WATCH_BLOCK      8192

typedef struct api_sub_s {
        struct api_sub_s *next;
        api_watch_t *w;
        struct MHD_Connection *conn;
        char cluster[API_PARAM_MAX];
        api_frame_t *head, *tail;
        size_t queued;
        size_t limit; /* queued beyond this: the client does not read (cut off) */
        int suspended;
        int closing;
        int resume;         /* opened with a resume point: the drop rule applies */
        long long last_seq; /* of the last cluster event sent (resume streams) */
} api_sub_t;

struct api_watch_s {
        api_t *api;
        pthread_mutex_t lock; /* subs, count, every api_sub_t */
        api_sub_t *subs;
        unsigned long count;
        atomic_int ready;
        atomic_int stopping;
        pthread_t thread;
        rd_kafka_t *rk;
        api_watch_loader_t *loader; /* backlogs of resumed streams */
};

/* A resumed stream's request while its backlog is read (suspended). */
typedef struct api_watch_pending_s {
        api_watch_load_t load;
        api_sub_t *s;
        struct MHD_Response *r; /* until answered; destroying it frees s */
} api_watch_pending_t;

static long long api_watch_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- streams */

/* Queues a frame on s and wakes its connection (lock held). */
static void api_sub_push(api_sub_t *s, const char *data, size_t len, long long seq)
{
        if (s->closing)
                return;
        if (s->queued + len > s->limit) {
                cm_log_warn("event stream cut off: the client does not read it",
                            "cluster", s->cluster);
                s->closing = 1;
        } else {
                api_frame_t *f = api_watch_frame_new(data, len, seq);
                if (!f)
                        return;
                if (s->tail)
                        s->tail->next = f;
                else
                        s->head = f;
                s->tail = f;
                s->queued += len;
        }
        if (s->suspended) {
                s->suspended = 0;
                MHD_resume_connection(s->conn);
        }
}

/* Queues a frame on every stream of cluster (NULL: every stream). */
static void api_watch_push(api_watch_t *w, const char *cluster, const char *data,
                           size_t len, long long seq)
{
        pthread_mutex_lock(&w->lock);
        for (api_sub_t *s = w->subs; s; s = s->next)
                if (!cluster || strcmp(s->cluster, cluster) == 0)
                        api_sub_push(s, data, len, seq);
        pthread_mutex_unlock(&w->lock);
}

/* Frees every frame of s after keep, which becomes the last (lock held). */
static void api_sub_drop_after(api_sub_t *s, api_frame_t *keep)
{
        while (keep->next) {
                api_frame_t *f = keep->next;
                keep->next = f->next;
                s->queued -= f->len;
                free(f);
        }
        s->tail = keep;
}

/* Appends the notice (an SSE retry and comment) as the last frame of s, which ends after
 * it (lock held; s has a frame). */
static void api_sub_end_with(api_sub_t *s, const char *note, size_t len)
{
        api_frame_t *f = api_watch_frame_new(note, len, 0);
        if (f) {
                s->tail->next = f;
                s->tail = f;
                s->queued += len;
        }
        s->closing = 1;
}

/*
 * The next frame of s (its head) would skip events: everything behind it goes, a notice
 * takes their place and the stream ends after it (lock held). Its client reconnects from
 * the last id it got, soon, and gets the missing events from the read model.
 */
static void api_sub_end_at_gap(api_sub_t *s)
{
        char note[160];
        int n = snprintf(note, sizeof(note),
                         "retry: 1000\n: event %lld is not in the history yet: resume "
                         "from %lld\n\n",
                         s->last_seq + 1, s->last_seq);
        api_sub_drop_after(s, s->head);
        api_sub_end_with(s, note, (size_t)n);
        cm_log_info("event stream ended at a gap: the read model is behind", "cluster",
                    s->cluster);
}

/* Unlinks and frees the head frame of s (lock held; s has one). */
static void api_sub_pop(api_sub_t *s)
{
        api_frame_t *f = s->head;
        s->head = f->next;
        if (!s->head)
                s->tail = NULL;
        s->queued -= f->len;
        free(f);
}

static ssize_t api_sub_read(void *cls, uint64_t pos, char *buf, size_t max)
{
        api_sub_t *s = cls;
        size_t n = 0;
        (void)pos;
        pthread_mutex_lock(&s->w->lock);
        while (s->head && n < max) {
                api_frame_t *f = s->head;
                int keep = f->off == 0 && s->resume
                               ? api_watch_frame_keep(&s->last_seq, f->seq)
                               : 1;
                if (keep < 0)
                        api_sub_end_at_gap(s);
                if (keep <= 0) {
                        api_sub_pop(s);
                        continue;
                }
                size_t k = f->len - f->off;
                if (k > max - n)
                        k = max - n;
                memcpy(buf + n, f->data + f->off, k);
                n += k;
                f->off += k;
                if (f->off == f->len)
                        api_sub_pop(s);
        }
        ssize_t ret = (ssize_t)n;
        if (n == 0 && s->closing) {
                ret = MHD_CONTENT_READER_END_OF_STREAM;
        } else if (n == 0) {
                /* Nothing to send: park the connection until a frame arrives. */
                s->suspended = 1;
                MHD_suspend_connection(s->conn);
        }
        pthread_mutex_unlock(&s->w->lock);
        return ret;
}

/* The response is gone (the client left or the stream ended): forget the stream. */
static void api_sub_free(void *cls)
{
        api_sub_t *s = cls;
        api_watch_t *w = s->w;
        pthread_mutex_lock(&w->lock);
        for (api_sub_t **l = &w->subs; *l; l = &(*l)->next)
                if (*l == s) {
                        *l = s->next;
                        w->count--;
                        break;
                }
        pthread_mutex_unlock(&w->lock);
        while (s->head) {
                api_frame_t *f = s->head;
                s->head = f->next;
                free(f);
        }
        cm_log_debug("event stream closed", "cluster", s->cluster);
        free(s);
}

/*
 * Puts the backlog b between the greeting (always s->head: nothing was read yet) and the
 * live frames queued since the stream was registered (lock held; b is emptied). A cut
 * backlog ends the stream: the live frames behind it would skip the events between, so
 * they go, and the client reconnects from the last id sooner than the usual 3 s.
 */
static void api_watch_splice(api_sub_t *s, api_watch_backlog_t *b)
{
        api_frame_t *hello = s->head;
        if (b->truncated)
                api_sub_drop_after(s, hello);
        if (b->head) {
                b->tail->next = hello->next;
                hello->next = b->head;
                if (s->tail == hello)
                        s->tail = b->tail;
                s->queued += b->bytes;
                /* The backlog is bounded on its own; live frames keep their room. */
                s->limit += b->bytes;
        }
        if (b->truncated) {
                char note[128];
                int n = snprintf(note, sizeof(note),
                                 "retry: 500\n: more events after id %lld: resume "
                                 "from there\n\n",
                                 b->last);
                api_sub_end_with(s, note, (size_t)n);
        }
        memset(b, 0, sizeof(*b)); /* its frames are the stream's now */
}

static int api_watch_respond(api_request_t *req, struct MHD_Response *r,
                             const api_sub_t *s)
{
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "X-Accel-Buffering", "no");
        cm_log_debug("event stream opened", "cluster", s->cluster, "actor", req->actor);
        return api_respond_raw(req, MHD_HTTP_OK, r);
}

static void api_watch_pending_free(void *p)
{
        api_watch_pending_t *pd = p;
        if (pd->r) /* never answered */
                MHD_destroy_response(pd->r);
        api_watch_backlog_free(&pd->load.b);
        free(pd);
}

/* Back on a pool thread with the backlog read (or not): answer the stream. */
static int api_watch_resumed(api_request_t *req, void *state)
{
        api_watch_pending_t *pd = state;
        api_sub_t *s = pd->s;
        api_watch_t *w = s->w;
        struct MHD_Response *r = pd->r;
        pd->r = NULL;
        if (pd->load.rc) {
                MHD_destroy_response(r); /* frees s through api_sub_free */
                if (atomic_load(&w->stopping))
                        return api_respond_error(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                                                 "unavailable",
                                                 "cm-api is stopping; reconnect");
                return api_respond_db_error(req, "read the events", pd->load.err);
        }
        pthread_mutex_lock(&w->lock);
        api_watch_splice(s, &pd->load.b);
        pthread_mutex_unlock(&w->lock);
        cm_log_debug("event stream resumed", "cluster", s->cluster, "actor", req->actor);
        return api_watch_respond(req, r, s);
}

/* Suspends req while the loader reads the backlog of s (registered already). */
static int api_watch_load(api_request_t *req, api_sub_t *s, struct MHD_Response *r,
                          long long after)
{
        api_watch_pending_t *pd = calloc(1, sizeof(*pd));
        if (!pd) {
                MHD_destroy_response(r);
                return MHD_NO;
        }
        pd->s = s;
        pd->r = r;
        pd->load.conn = req->conn;
        pd->load.after = after;
        snprintf(pd->load.cluster, sizeof(pd->load.cluster), "%s", s->cluster);
        api_request_suspend(req, api_watch_resumed, pd, api_watch_pending_free);
        api_watch_loader_submit(s->w->loader, &pd->load);
        return MHD_YES;
}

int api_watch_open(api_request_t *req, long long after)
{
        api_watch_t *w = req->api->watch;
        api_sub_t *s = w ? calloc(1, sizeof(*s)) : NULL;
        if (!s)
                return api_respond_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                                         "event streams are not available");
        s->w = w;
        s->conn = req->conn;
        s->limit = API_WATCH_MAX_QUEUED;
        s->resume = after >= 0;
        s->last_seq = after; /* the client has every event up to there */
        snprintf(s->cluster, sizeof(s->cluster), "%s", req->param);
        char hello[API_PARAM_MAX + 64];
        int n = snprintf(hello, sizeof(hello), "retry: 3000\n: watching cluster %s\n\n",
                         s->cluster);
        s->head = s->tail = api_watch_frame_new(hello, (size_t)n, 0);
        s->queued = (size_t)n;
        struct MHD_Response *r = MHD_create_response_from_callback(
            MHD_SIZE_UNKNOWN, API_WATCH_BLOCK, api_sub_read, s, api_sub_free);
        if (!r || !s->head) {
                free(s->head);
                free(s);
                if (r)
                        MHD_destroy_response(r);
                return MHD_NO;
        }
        pthread_mutex_lock(&w->lock);
        if (atomic_load(&w->stopping))
                s->closing = 1;
        s->next = w->subs;
        w->subs = s;
        w->count++;
        pthread_mutex_unlock(&w->lock);
        /* Registered first, read second: an event published meanwhile is queued live
         * and maybe also read; the drop rule sends it once. */
        if (s->resume)
                return api_watch_load(req, s, r, after);
        return api_watch_respond(req, r, s);
}

void api_watch_stats(api_t *api, unsigned long *streams, int *ready)
{
        api_watch_t *w = api->watch;
        *streams = 0;
        *ready = 0;
        if (!w)
                return;
        pthread_mutex_lock(&w->lock);
        *streams = w->count;
        pthread_mutex_unlock(&w->lock);
        *ready = atomic_load(&w->ready);
}

/* ---------------------------------------------------------------- frames */

static json_t *api_time_json(int64_t ms)
{
        time_t t = (time_t)(ms / 1000);
        struct tm tm;
        char buf[48], out[64];
        gmtime_r(&t, &tm);
        strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(out, sizeof(out), "%s.%03dZ", buf, (int)(ms % 1000));
        return json_string(out);
}

static void api_opt(json_t *o, const char *key, const char *v)
{
        if (v)
                json_object_set_new(o, key, json_string(v));
}

/*
 * The event as the read model will show it (api_event_row_json), so a live frame and the
 * replay of the same event are the same bytes: cm_cluster_event_to_json is what the
 * projector stores as the payload, and where a column rather than the payload feeds the
 * row, the value is what PostgreSQL gives back - the projector stores an empty commandId
 * as none, and a uuid column prints lower case.
 */
static json_t *api_watch_event_json(const cm_cluster_event_t *ev)
{
        json_t *o = cm_cluster_event_to_json(ev);
        const char *cmd = json_string_value(json_object_get(o, "commandId"));
        if (cmd && !*cmd)
                json_object_del(o, "commandId");
        const char *uuids[] = {"eventId", "jobId"};
        for (size_t i = 0; o && i < 2; i++) {
                const char *v = json_string_value(json_object_get(o, uuids[i]));
                char low[64];
                size_t k = 0;
                if (!v || strlen(v) >= sizeof(low))
                        continue;
                for (; v[k]; k++)
                        low[k] = v[k] >= 'A' && v[k] <= 'Z' ? (char)(v[k] + 32) : v[k];
                low[k] = '\0';
                json_object_set_new(o, uuids[i], json_string(low));
        }
        return o;
}

static json_t *api_progress_json(const cm_job_progress_t *p)
{
        json_t *o = json_object();
        json_object_set_new(o, "cluster", json_string(p->cluster));
        json_object_set_new(o, "jobId", json_string(p->job_id));
        json_object_set_new(o, "kind", json_string(p->kind));
        json_object_set_new(o, "attempt", json_integer(p->attempt));
        json_object_set_new(o, "step", json_string(p->step));
        api_opt(o, "node", p->node);
        json_object_set_new(o, "status", json_string(p->status));
        json_object_set_new(o, "at", api_time_json(p->at));
        json_t *lines = json_array();
        for (size_t i = 0; i < p->line_count; i++)
                json_array_append_new(lines, json_string(p->lines[i]));
        json_object_set_new(o, "lines", lines);
        return o;
}

/* Sends the frame of data (stolen) to the streams of cluster. */
static void api_watch_send(api_watch_t *w, const char *cluster, const char *type,
                           long long id, json_t *data)
{
        api_frame_t *f = api_watch_frame_json(type, id, data);
        if (f && cluster)
                api_watch_push(w, cluster, f->data, f->len, f->seq);
        free(f);
}

static void api_watch_message(api_watch_t *w, const rd_kafka_message_t *m)
{
        const cm_config_t *conf = &w->api->svc->conf;
        const char *topic = rd_kafka_topic_name(m->rkt);
        char err[512];
        if (!m->payload)
                return;
        if (strcmp(topic, conf->kafka.events_topic) == 0) {
                cm_cluster_event_t ev;
                if (cm_cluster_event_decode(m->payload, m->len, &ev, err, sizeof(err)) !=
                    0) {
                        cm_log_debug("event stream: undecodable event skipped", "error",
                                     err);
                        return;
                }
                api_watch_send(w, ev.cluster, "cluster-event", (long long)ev.seq,
                               api_watch_event_json(&ev));
                cm_cluster_event_destroy(&ev);
        } else {
                cm_job_progress_t p;
                if (cm_job_progress_decode(m->payload, m->len, &p, err, sizeof(err)) !=
                    0) {
                        cm_log_debug("event stream: undecodable progress skipped",
                                     "error", err);
                        return;
                }
                api_watch_send(w, p.cluster, "progress", 0, api_progress_json(&p));
                cm_job_progress_destroy(&p);
        }
}

/* ---------------------------------------------------------------- consumer */

static void api_watch_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                             const char *buf)
{
        cm_log_level_t lvl = level <= LOG_ERR       ? CM_LOG_ERROR
                             : level == LOG_WARNING ? CM_LOG_WARN
                             : level <= LOG_INFO    ? CM_LOG_INFO
                                                    : CM_LOG_DEBUG;
        cm_log(lvl, buf, "client", rd_kafka_name(rk), "facility", fac, NULL);
}

static rd_kafka_t *api_watch_consumer_new(const cm_config_t *conf, char *errstr,
                                          size_t errstr_size)
{
        rd_kafka_conf_t *rc = rd_kafka_conf_new();
        char client[128], host[64] = "", group[160];
        gethostname(host, sizeof(host) - 1);
        snprintf(client, sizeof(client), "%s-api-watch-%s-%d", conf->kafka.client_id,
                 host, (int)getpid());
        /* librdkafka wants a group even for assign(); a unique one joins nothing and
         * commits nothing, so it never shares offsets with another process. */
        snprintf(group, sizeof(group), "%s-%ld", client, (long)time(NULL));
        const char *kv[][2] = {
            {"bootstrap.servers", conf->kafka.bootstrap_servers},
            {"client.id", client},
            {"group.id", group},
            {"enable.auto.commit", "false"},
            {"enable.auto.offset.store", "false"},
            {"enable.partition.eof", "false"},
            {"auto.offset.reset", "latest"},
        };
        for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
                char why[256];
                if (rd_kafka_conf_set(rc, kv[i][0], kv[i][1], why, sizeof(why)) !=
                    RD_KAFKA_CONF_OK) {
                        snprintf(errstr, errstr_size, "kafka: %s=\"%s\": %s", kv[i][0],
                                 kv[i][1], why);
                        rd_kafka_conf_destroy(rc);
                        return NULL;
                }
        }
        rd_kafka_conf_set_log_cb(rc, api_watch_log_cb);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, rc, errstr, errstr_size);
        if (!rk) {
                rd_kafka_conf_destroy(rc);
                return NULL;
        }
        rd_kafka_poll_set_consumer(rk);
        return rk;
}

/* Adds every partition of topic, positioned at its high watermark, to list. */
static int api_watch_add_topic(rd_kafka_t *rk, const char *topic,
                               rd_kafka_topic_partition_list_t *list, char *errstr,
                               size_t errstr_size)
{
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        rd_kafka_resp_err_t err = rkt ? rd_kafka_metadata(rk, 0, rkt, &md, 5000)
                                      : RD_KAFKA_RESP_ERR__INVALID_ARG;
        int rc = -1;
        if (err) {
                snprintf(errstr, errstr_size, "topic \"%s\": metadata: %s", topic,
                         rd_kafka_err2str(err));
                goto out;
        }
        if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) {
                snprintf(errstr, errstr_size, "topic \"%s\": %s", topic,
                         md->topic_cnt == 1 && md->topics[0].err
                             ? rd_kafka_err2str(md->topics[0].err)
                             : "no partitions");
                goto out;
        }
        for (int i = 0; i < md->topics[0].partition_cnt; i++) {
                int32_t p = md->topics[0].partitions[i].id;
                int64_t lo = 0, hi = 0;
                err = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 5000);
                if (err) {
                        snprintf(errstr, errstr_size, "topic \"%s\" partition %d: %s",
                                 topic, (int)p, rd_kafka_err2str(err));
                        goto out;
                }
                rd_kafka_topic_partition_list_add(list, topic, p)->offset = hi;
        }
        rc = 0;
out:
        if (md)
                rd_kafka_metadata_destroy(md);
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        return rc;
}

static int api_watch_assign(api_watch_t *w, char *errstr, size_t errstr_size)
{
        const cm_config_t *conf = &w->api->svc->conf;
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(32);
        int rc = -1;
        if (api_watch_add_topic(w->rk, conf->kafka.events_topic, list, errstr,
                                errstr_size) ||
            api_watch_add_topic(w->rk, conf->kafka.progress_topic, list, errstr,
                                errstr_size))
                goto out;
        rd_kafka_resp_err_t err = rd_kafka_assign(w->rk, list);
        if (err) {
                snprintf(errstr, errstr_size, "assign: %s", rd_kafka_err2str(err));
                goto out;
        }
        rc = 0;
out:
        rd_kafka_topic_partition_list_destroy(list);
        return rc;
}

static void *api_watch_main(void *arg)
{
        api_watch_t *w = arg;
        char err[512];
        int warned = 0;
        while (!atomic_load(&w->stopping)) {
                if (api_watch_assign(w, err, sizeof(err)) == 0)
                        break;
                if (!warned++)
                        cm_log_warn("event streams wait for the broker", "error", err);
                for (int i = 0; i < 10 && !atomic_load(&w->stopping); i++)
                        usleep(100 * 1000);
        }
        if (!atomic_load(&w->stopping)) {
                atomic_store(&w->ready, 1);
                cm_log_info("event streams ready", "events",
                            w->api->svc->conf.kafka.events_topic, "progress",
                            w->api->svc->conf.kafka.progress_topic);
        }
        long long keepalive_ms = (long long)w->api->svc->conf.api.sse_keepalive_s * 1000;
        long long last = api_watch_now_ms();
        while (!atomic_load(&w->stopping)) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(w->rk, 200);
                if (m) {
                        if (!m->err)
                                api_watch_message(w, m);
                        else
                                cm_log_debug("event stream consumer", "error",
                                             rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                }
                long long now = api_watch_now_ms();
                if (now - last >= keepalive_ms) {
                        static const char ka[] = ": keep-alive\n\n";
                        api_watch_push(w, NULL, ka, sizeof(ka) - 1, 0);
                        last = now;
                }
        }
        return NULL;
}

int api_watch_start(api_t *api, char *errstr, size_t errstr_size)
{
        api_watch_t *w = calloc(1, sizeof(*w));
        if (!w) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        w->api = api;
        pthread_mutex_init(&w->lock, NULL);
        if (!(w->loader = api_watch_loader_new(&api->svc->conf, errstr, errstr_size)))
                goto fail;
        if (!(w->rk = api_watch_consumer_new(&api->svc->conf, errstr, errstr_size)))
                goto fail;
        if (pthread_create(&w->thread, NULL, api_watch_main, w) != 0) {
                snprintf(errstr, errstr_size, "cannot start the event stream thread");
                rd_kafka_destroy(w->rk);
                goto fail;
        }
        api->watch = w;
        return 0;
fail:
        api_watch_loader_free(w->loader);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return -1;
}

void api_watch_stop(api_t *api)
{
        api_watch_t *w = api->watch;
        if (!w)
                return;
        atomic_store(&w->stopping, 1);
        pthread_join(w->thread, NULL);
        /* Streams still waiting for their backlog are answered 503 on the way. */
        api_watch_loader_stop(w->loader);
        /* End every stream; MHD must not be stopped while a connection is suspended. */
        pthread_mutex_lock(&w->lock);
        for (api_sub_t *s = w->subs; s; s = s->next) {
                s->closing = 1;
                if (s->suspended) {
                        s->suspended = 0;
                        MHD_resume_connection(s->conn);
                }
        }
        pthread_mutex_unlock(&w->lock);
        rd_kafka_consumer_close(w->rk);
        rd_kafka_destroy(w->rk);
        w->rk = NULL;
        /* Streams end as MHD writes their last chunk; wait a little for them. */
        for (int i = 0; i < 50; i++) {
                unsigned long n;
                int ready;
                api_watch_stats(api, &n, &ready);
                if (n == 0)
                        break;
                usleep(20 * 1000);
        }
}

void api_watch_free(api_t *api)
{
        api_watch_t *w = api->watch;
        if (!w)
                return;
        api_watch_loader_free(w->loader);
        pthread_mutex_destroy(&w->lock);
        free(w);
        api->watch = NULL;
}
