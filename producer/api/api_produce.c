/*
 * api_produce.c - a command onto cm.commands without holding a pool thread.
 *
 * A pool thread serves many connections. Waiting there for the broker's acknowledgement
 * (acks=all: linger.ms plus a round trip to every in-sync replica) capped cm-api at
 * api.threads requests in flight. Instead the request is suspended, the command is
 * enqueued on the idempotent producer, and the delivery report - on the producer's poll
 * thread - resumes the connection; a pool thread then answers 202 (or starts the
 * Prefer: wait), or 503 when the broker did not take the command. Many requests are in
 * flight at once and librdkafka batches them.
 *
 * Stopping: MHD must not stop while a connection is suspended. api_produce_stop refuses
 * new commands (503: retry, e.g. on another cm-api) and waits for the report of every
 * command in flight, which librdkafka delivers within kafka.message_timeout_ms.
 */
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "cm/kafka.h"
#include "cm/log.h"

/* One command between its produce and its delivery report (a suspended request). */
typedef struct api_inflight_s {
        api_t *api;
        struct MHD_Connection *conn;
        char *id, *cluster, *actor;
        cm_command_kind_t kind;
        int wait_s;
        cm_kafka_err_t err; /* set by the report */
        char errstr[512];
        int32_t partition;
        int64_t offset;
} api_inflight_t;

struct api_produce_s {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        unsigned long inflight;
        int stopping;
};

static void api_inflight_free(void *p)
{
        api_inflight_t *f = p;
        if (!f)
                return;
        free(f->id);
        free(f->cluster);
        free(f->actor);
        free(f);
}

/* Counts one more command in flight; -1 when stopping (nothing counted). */
static int api_produce_admit(api_produce_t *pr)
{
        pthread_mutex_lock(&pr->lock);
        int ok = !pr->stopping;
        if (ok)
                pr->inflight++;
        pthread_mutex_unlock(&pr->lock);
        return ok ? 0 : -1;
}

/* The report of f is in: its request goes on, on a pool thread. f is not ours after. */
static void api_produce_done(api_inflight_t *f)
{
        api_produce_t *pr = f->api->produce;
        MHD_resume_connection(f->conn);
        pthread_mutex_lock(&pr->lock);
        pr->inflight--;
        pthread_cond_broadcast(&pr->cond);
        pthread_mutex_unlock(&pr->lock);
}

/* The producer's delivery callback (its poll thread). */
static void api_produce_delivered(const cm_kafka_delivery_t *dr, void *opaque)
{
        api_inflight_t *f = dr->msg_opaque;
        (void)opaque;
        f->err = dr->err;
        snprintf(f->errstr, sizeof(f->errstr), "%s", dr->errstr);
        f->partition = dr->partition;
        f->offset = dr->offset;
        api_produce_done(f);
}

static int api_produce_refused(api_request_t *req, const char *id, const char *cluster,
                               const char *why)
{
        cm_log_warn("the broker did not take a command", "command", id, "cluster",
                    cluster, "error", why);
        return api_respond_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                                 "the broker did not take command \"%s\" (%s); retry "
                                 "with header Idempotency-Key: %s",
                                 id, why, id);
}

/* Back on a pool thread with the report. */
static int api_produce_resumed(api_request_t *req, void *state)
{
        api_inflight_t *f = state;
        if (f->err != CM_KAFKA_OK) {
                char why[600];
                snprintf(why, sizeof(why), "%s: %s", cm_kafka_err2str(f->err), f->errstr);
                return api_produce_refused(req, f->id, f->cluster, why);
        }
        char p[16], o[24];
        snprintf(p, sizeof(p), "%d", (int)f->partition);
        snprintf(o, sizeof(o), "%lld", (long long)f->offset);
        cm_log_info("command produced", "command", f->id, "kind",
                    cm_command_kind_name(f->kind), "cluster", f->cluster, "actor",
                    f->actor, "partition", p, "offset", o);
        api_metrics_command_produced(f->kind);
        return api_command_produced(req, f->id, f->cluster, f->kind, f->wait_s);
}

int api_produce_command(api_request_t *req, const cm_command_t *cmd, int wait_s)
{
        api_t *api = req->api;
        const cm_config_t *conf = &api->svc->conf;
        char err[512];
        unsigned char *buf = NULL;
        size_t len = 0;
        if (cm_command_encode(cmd, &buf, &len, err, sizeof(err)) != 0) {
                cm_log_error("cannot encode a command", "command", cmd->id, "error", err);
                return api_respond_error(req, 500, "internal",
                                         "cannot encode the command: %s", err);
        }
        api_inflight_t *f = calloc(1, sizeof(*f));
        if (!f || !(f->id = strdup(cmd->id)) || !(f->cluster = strdup(cmd->cluster)) ||
            !(f->actor = strdup(cmd->actor.name))) {
                api_inflight_free(f);
                free(buf);
                return MHD_NO;
        }
        f->api = api;
        f->conn = req->conn;
        f->kind = cmd->kind;
        f->wait_s = wait_s;
        if (api_produce_admit(api->produce)) {
                int ret =
                    api_produce_refused(req, f->id, f->cluster, "cm-api is stopping");
                api_inflight_free(f);
                free(buf);
                return ret;
        }
        /* Suspended before the report can come: it may resume the request at once. */
        api_request_suspend(req, api_produce_resumed, f, api_inflight_free);
        cm_kafka_err_t kerr = cm_kafka_produce(api->producer, conf->kafka.commands_topic,
                                               cmd->cluster, strlen(cmd->cluster), buf,
                                               len, NULL, 0, f, err, sizeof(err));
        free(buf);
        if (kerr != CM_KAFKA_OK) { /* not enqueued: no report will come */
                f->err = kerr;
                snprintf(f->errstr, sizeof(f->errstr), "%s", err);
                api_produce_done(f);
        }
        return MHD_YES;
}

int api_produce_start(api_t *api, char *errstr, size_t errstr_size)
{
        api_produce_t *pr = calloc(1, sizeof(*pr));
        if (!pr) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        pthread_mutex_init(&pr->lock, NULL);
        pthread_cond_init(&pr->cond, NULL);
        cm_kafka_conf_t kc;
        cm_kafka_conf_from_config(&kc, &api->svc->conf, NULL);
        api->producer =
            cm_kafka_producer_new(&kc, api_produce_delivered, NULL, errstr, errstr_size);
        if (!api->producer) {
                pthread_mutex_destroy(&pr->lock);
                pthread_cond_destroy(&pr->cond);
                free(pr);
                return -1;
        }
        api->produce = pr;
        return 0;
}

void api_produce_stop(api_t *api)
{
        api_produce_t *pr = api->produce;
        if (!pr)
                return;
        /* Every report comes within message.timeout.ms; the margin is for the last
         * broker round trip and the poll thread. */
        int limit_ms = api->svc->conf.kafka.message_timeout_ms + 10000;
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += limit_ms / 1000;
        pthread_mutex_lock(&pr->lock);
        pr->stopping = 1;
        int rc = 0;
        while (pr->inflight > 0 && rc != ETIMEDOUT)
                rc = pthread_cond_timedwait(&pr->cond, &pr->lock, &deadline);
        unsigned long left = pr->inflight;
        pthread_mutex_unlock(&pr->lock);
        if (left) {
                char n[24];
                snprintf(n, sizeof(n), "%lu", left);
                cm_log_error("commands still without a delivery report at stop", "count",
                             n);
        }
}

void api_produce_free(api_t *api)
{
        api_produce_t *pr = api->produce;
        cm_kafka_producer_destroy(api->producer, 5000);
        api->producer = NULL;
        if (!pr)
                return;
        pthread_mutex_destroy(&pr->lock);
        pthread_cond_destroy(&pr->cond);
        free(pr);
        api->produce = NULL;
}
