/*
 * cm_kafka.c - the shared part of cm/kafka.h (settings, logging, readiness, murmur2) and
 * the producer. The consumer is in cm_kafka_consumer.c.
 */
#include "cm/kafka.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "cm/log.h"
#include "cm_kafka_int.h"

#define CM_KAFKA_DEFAULT_CLIENT_ID "cm"
#define CM_KAFKA_DEFAULT_MSG_MS    30000
#define CM_KAFKA_DEFAULT_LINGER_MS 5
#define CM_KAFKA_POLL_MS           100

void cm_kafka_set_err_(char *errstr, size_t errstr_size, const char *fmt, ...)
{
        va_list ap;

        if (!errstr || errstr_size == 0)
                return;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
}

const char *cm_kafka_err2str(cm_kafka_err_t err)
{
        switch (err) {
        case CM_KAFKA_OK:
                return "CM_KAFKA_OK";
        case CM_KAFKA_ERR_CONF:
                return "CM_KAFKA_ERR_CONF";
        case CM_KAFKA_ERR_CREATE:
                return "CM_KAFKA_ERR_CREATE";
        case CM_KAFKA_ERR_PRODUCE:
                return "CM_KAFKA_ERR_PRODUCE";
        case CM_KAFKA_ERR_DELIVERY:
                return "CM_KAFKA_ERR_DELIVERY";
        case CM_KAFKA_ERR_TIMEOUT:
                return "CM_KAFKA_ERR_TIMEOUT";
        case CM_KAFKA_ERR_FATAL:
                return "CM_KAFKA_ERR_FATAL";
        case CM_KAFKA_ERR_SUBSCRIBE:
                return "CM_KAFKA_ERR_SUBSCRIBE";
        case CM_KAFKA_ERR_CONSUME:
                return "CM_KAFKA_ERR_CONSUME";
        case CM_KAFKA_ERR_COMMIT:
                return "CM_KAFKA_ERR_COMMIT";
        case CM_KAFKA_ERR_UNREACHABLE:
                return "CM_KAFKA_ERR_UNREACHABLE";
        case CM_KAFKA_ERR_NO_TOPIC:
                return "CM_KAFKA_ERR_NO_TOPIC";
        case CM_KAFKA_ERR_ARG:
                return "CM_KAFKA_ERR_ARG";
        }
        return "CM_KAFKA_ERR_UNKNOWN";
}

void cm_kafka_conf_from_config(cm_kafka_conf_t *kc, const cm_config_t *conf,
                               const char *group_id)
{
        memset(kc, 0, sizeof(*kc));
        kc->bootstrap_servers = conf->kafka.bootstrap_servers;
        kc->client_id = conf->kafka.client_id;
        kc->group_id = group_id;
        kc->assignment_strategy = conf->kafka.assignment_strategy;
        kc->session_timeout_ms = conf->kafka.session_timeout_ms;
        kc->fetch_wait_max_ms = conf->kafka.fetch_wait_max_ms;
        kc->message_timeout_ms = conf->kafka.message_timeout_ms;
}

int32_t cm_kafka_murmur2(const void *key, size_t len)
{
        const uint32_t m = 0x5bd1e995;
        const unsigned char *d = key;
        uint32_t h = 0x9747b28cu ^ (uint32_t)len;
        size_t i, tail = len & ~(size_t)3;

        for (i = 0; i < tail; i += 4) {
                uint32_t k = (uint32_t)d[i] | (uint32_t)d[i + 1] << 8 |
                             (uint32_t)d[i + 2] << 16 | (uint32_t)d[i + 3] << 24;
                k *= m;
                k ^= k >> 24;
                k *= m;
                h *= m;
                h ^= k;
        }
        switch (len & 3) {
        case 3:
                h ^= (uint32_t)d[tail + 2] << 16;
                /* fall through */
        case 2:
                h ^= (uint32_t)d[tail + 1] << 8;
                /* fall through */
        case 1:
                h ^= (uint32_t)d[tail];
                h *= m;
        }
        h ^= h >> 13;
        h *= m;
        h ^= h >> 15;
        return (int32_t)h;
}

int32_t cm_kafka_partition_for_key(const void *key, size_t len, int32_t partition_cnt)
{
        if (partition_cnt <= 0)
                return -1;
        return (int32_t)(((uint32_t)cm_kafka_murmur2(key, len) & 0x7fffffffu) %
                         (uint32_t)partition_cnt);
}

/* ---------------------------------------------------------------- shared plumbing */

/* librdkafka's syslog levels onto cm/log.h; runs on librdkafka's threads. librdkafka
 * retries what it logs at LOG_ERR (a broker down, a request timed out), so those lines
 * are warnings here; what it cannot recover from arrives as a fatal error in error_cb. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
        cm_log_level_t lvl = level <= LOG_WARNING ? CM_LOG_WARN
                             : level <= LOG_INFO  ? CM_LOG_INFO
                                                  : CM_LOG_DEBUG;

        cm_log(lvl, buf, "client", rd_kafka_name(rk), "facility", fac, NULL);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
        char fatal[512];

        (void)opaque;
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
                cm_log_error("kafka fatal error", "client", rd_kafka_name(rk), "error",
                             fatal);
                return;
        }
        cm_log_warn("kafka error", "client", rd_kafka_name(rk), "error",
                    rd_kafka_err2name((rd_kafka_resp_err_t)err), "reason", reason);
}

int cm_kafka_conf_set_(rd_kafka_conf_t *rc, const char *name, const char *value,
                       char *errstr, size_t errstr_size)
{
        char why[256];

        if (rd_kafka_conf_set(rc, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
                cm_kafka_set_err_(errstr, errstr_size, "kafka: %s=\"%s\": %s", name,
                                  value, why);
                return -1;
        }
        return 0;
}

int cm_kafka_conf_set_int_(rd_kafka_conf_t *rc, const char *name, int value, char *errstr,
                           size_t errstr_size)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "%d", value);
        return cm_kafka_conf_set_(rc, name, buf, errstr, errstr_size);
}

/* Settings common to producer and consumer; NULL with errstr set on a bad value. */
rd_kafka_conf_t *cm_kafka_conf_base_(const cm_kafka_conf_t *kc, char *errstr,
                                     size_t errstr_size)
{
        rd_kafka_conf_t *rc;

        if (!kc || !kc->bootstrap_servers || !*kc->bootstrap_servers) {
                cm_kafka_set_err_(errstr, errstr_size, "kafka.bootstrap_servers: empty");
                return NULL;
        }
        rc = rd_kafka_conf_new();
        if (cm_kafka_conf_set_(rc, "bootstrap.servers", kc->bootstrap_servers, errstr,
                               errstr_size) ||
            cm_kafka_conf_set_(rc, "client.id",
                               kc->client_id ? kc->client_id : CM_KAFKA_DEFAULT_CLIENT_ID,
                               errstr, errstr_size)) {
                rd_kafka_conf_destroy(rc);
                return NULL;
        }
        rd_kafka_conf_set_log_cb(rc, log_cb);
        rd_kafka_conf_set_error_cb(rc, error_cb);
        return rc;
}

/* Partitions of topic in md; 0 when it is not there or has an error. */
static int32_t md_partitions(const struct rd_kafka_metadata *md, const char *topic)
{
        for (int i = 0; i < md->topic_cnt; i++)
                if (strcmp(md->topics[i].topic, topic) == 0 && !md->topics[i].err)
                        return md->topics[i].partition_cnt;
        return 0;
}

/* Metadata round trip: is a broker answering, and does topic (if any) exist? */
cm_kafka_err_t cm_kafka_ready_rk_(rd_kafka_t *rk, const char *topic, int timeout_ms,
                                  char *errstr, size_t errstr_size)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err;
        cm_kafka_err_t ret = CM_KAFKA_OK;

        /* all_topics=1: asking for one topic could auto-create it on some brokers. */
        err = rd_kafka_metadata(rk, topic ? 1 : 0, NULL, &md, timeout_ms);
        if (err) {
                cm_kafka_set_err_(errstr, errstr_size,
                                  "kafka: no broker answered within %d ms: %s",
                                  timeout_ms, rd_kafka_err2str(err));
                return CM_KAFKA_ERR_UNREACHABLE;
        }
        if (md->broker_cnt == 0) {
                cm_kafka_set_err_(errstr, errstr_size, "kafka: metadata lists no broker");
                ret = CM_KAFKA_ERR_UNREACHABLE;
        } else if (topic && md_partitions(md, topic) == 0) {
                ret = CM_KAFKA_ERR_NO_TOPIC;
                cm_kafka_set_err_(errstr, errstr_size,
                                  "kafka: topic \"%s\" does not exist", topic);
        }
        rd_kafka_metadata_destroy(md);
        return ret;
}

cm_kafka_err_t cm_kafka_partition_count_rk_(rd_kafka_t *rk, const char *topic,
                                            int timeout_ms, int32_t *cnt, char *errstr,
                                            size_t errstr_size)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err;
        cm_kafka_err_t ret = CM_KAFKA_ERR_NO_TOPIC;

        *cnt = 0;
        if (!topic) {
                cm_kafka_set_err_(errstr, errstr_size, "kafka: topic is NULL");
                return CM_KAFKA_ERR_ARG;
        }
        /* all_topics=1, as above: never auto-create the topic by asking for it. */
        err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
        if (err) {
                cm_kafka_set_err_(errstr, errstr_size,
                                  "kafka: no broker answered within %d ms: %s",
                                  timeout_ms, rd_kafka_err2str(err));
                return CM_KAFKA_ERR_UNREACHABLE;
        }
        *cnt = md_partitions(md, topic);
        if (*cnt > 0)
                ret = CM_KAFKA_OK;
        else
                cm_kafka_set_err_(errstr, errstr_size,
                                  "kafka: topic \"%s\" does not exist", topic);
        rd_kafka_metadata_destroy(md);
        return ret;
}

static rd_kafka_headers_t *headers_new(const cm_kafka_header_t *headers, size_t cnt,
                                       char *errstr, size_t errstr_size)
{
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(cnt);
        size_t i;

        for (i = 0; i < cnt; i++) {
                if (!headers[i].name) {
                        cm_kafka_set_err_(errstr, errstr_size,
                                          "kafka: header %zu: name is NULL", i);
                        rd_kafka_headers_destroy(hdrs);
                        return NULL;
                }
                rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
                                    headers[i].value ? (ssize_t)headers[i].value_len : 0);
        }
        return hdrs;
}

/* ---------------------------------------------------------------- producer */

/* A produce_sync() caller waiting for its report; freed by whichever side comes last. */
typedef struct waiter_s {
        bool done;
        bool abandoned;
        cm_kafka_err_t err;
        char errstr[256];
        int32_t partition;
        int64_t offset;
} waiter_t;

/* The per-message opaque given to librdkafka. */
typedef struct envelope_s {
        void *msg_opaque;
        waiter_t *waiter; /* NULL for cm_kafka_produce() */
} envelope_t;

struct cm_kafka_producer_s {
        rd_kafka_t *rk;
        cm_kafka_delivery_cb_t *dr_cb;
        void *cb_opaque;
        pthread_t poller;
        atomic_bool stop;
        pthread_mutex_t lock; /* guards every waiter_t */
        pthread_cond_t cond;
};

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
        cm_kafka_producer_t *p = opaque;
        envelope_t *env = rkm->_private;
        cm_kafka_delivery_t dr;

        (void)rk;
        memset(&dr, 0, sizeof(dr));
        dr.err = rkm->err ? CM_KAFKA_ERR_DELIVERY : CM_KAFKA_OK;
        dr.errstr = rkm->err ? rd_kafka_err2str(rkm->err) : "";
        dr.topic = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "";
        dr.partition = rkm->err ? -1 : rkm->partition;
        dr.offset = rkm->err ? -1 : rkm->offset;
        if (rkm->err == RD_KAFKA_RESP_ERR__FATAL)
                dr.err = CM_KAFKA_ERR_FATAL;
        if (!env)
                return;
        dr.msg_opaque = env->msg_opaque;

        if (env->waiter) {
                waiter_t *w = env->waiter;
                bool abandoned;

                pthread_mutex_lock(&p->lock);
                w->done = true;
                w->err = dr.err;
                snprintf(w->errstr, sizeof(w->errstr), "%s", dr.errstr);
                w->partition = dr.partition;
                w->offset = dr.offset;
                abandoned = w->abandoned;
                pthread_cond_broadcast(&p->cond);
                pthread_mutex_unlock(&p->lock);
                if (abandoned)
                        free(w);
        } else if (p->dr_cb) {
                p->dr_cb(&dr, p->cb_opaque);
        } else if (rkm->err) {
                cm_log_warn("kafka delivery failed", "topic", dr.topic, "error",
                            dr.errstr);
        }
        free(env);
}

static void *poller_main(void *arg)
{
        cm_kafka_producer_t *p = arg;

        while (!atomic_load(&p->stop))
                rd_kafka_poll(p->rk, CM_KAFKA_POLL_MS);
        return NULL;
}

cm_kafka_producer_t *cm_kafka_producer_new(const cm_kafka_conf_t *conf,
                                           cm_kafka_delivery_cb_t *dr_cb, void *cb_opaque,
                                           char *errstr, size_t errstr_size)
{
        cm_kafka_producer_t *p;
        rd_kafka_conf_t *rc;
        char why[512];
        int linger;

        rc = cm_kafka_conf_base_(conf, errstr, errstr_size);
        if (!rc)
                return NULL;
        linger = conf->linger_ms == 0 ? CM_KAFKA_DEFAULT_LINGER_MS
                                      : (conf->linger_ms < 0 ? 0 : conf->linger_ms);
        if (cm_kafka_conf_set_(rc, "enable.idempotence", "true", errstr, errstr_size) ||
            cm_kafka_conf_set_(rc, "acks", "all", errstr, errstr_size) ||
            cm_kafka_conf_set_(rc, "partitioner", "murmur2_random", errstr,
                               errstr_size) ||
            cm_kafka_conf_set_int_(rc, "linger.ms", linger, errstr, errstr_size) ||
            cm_kafka_conf_set_int_(rc, "message.timeout.ms",
                                   conf->message_timeout_ms > 0 ? conf->message_timeout_ms
                                                                : CM_KAFKA_DEFAULT_MSG_MS,
                                   errstr, errstr_size) ||
            (conf->max_in_flight > 0 &&
             cm_kafka_conf_set_int_(rc, "max.in.flight.requests.per.connection",
                                    conf->max_in_flight, errstr, errstr_size))) {
                rd_kafka_conf_destroy(rc);
                return NULL;
        }

        p = calloc(1, sizeof(*p));
        if (!p) {
                rd_kafka_conf_destroy(rc);
                cm_kafka_set_err_(errstr, errstr_size, "kafka: out of memory");
                return NULL;
        }
        p->dr_cb = dr_cb;
        p->cb_opaque = cb_opaque;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->cond, NULL);
        rd_kafka_conf_set_opaque(rc, p);
        rd_kafka_conf_set_dr_msg_cb(rc, dr_msg_cb);

        p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, rc, why, sizeof(why));
        if (!p->rk) {
                rd_kafka_conf_destroy(rc);
                cm_kafka_set_err_(errstr, errstr_size, "kafka: producer: %s", why);
                goto fail;
        }
        if (pthread_create(&p->poller, NULL, poller_main, p) != 0) {
                cm_kafka_set_err_(errstr, errstr_size, "kafka: producer poll thread: %s",
                                  strerror(errno));
                rd_kafka_destroy(p->rk);
                goto fail;
        }
        cm_log_info("kafka producer created", "client", rd_kafka_name(p->rk),
                    "bootstrap_servers", conf->bootstrap_servers);
        return p;

fail:
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
}

static cm_kafka_err_t produce_env(cm_kafka_producer_t *p, const char *topic,
                                  const void *key, size_t key_len, const void *value,
                                  size_t value_len, const cm_kafka_header_t *headers,
                                  size_t header_cnt, envelope_t *env, char *errstr,
                                  size_t errstr_size)
{
        rd_kafka_headers_t *hdrs = NULL;
        rd_kafka_resp_err_t err;

        if (!p || !topic || !*topic) {
                cm_kafka_set_err_(errstr, errstr_size, "kafka: produce: topic is empty");
                return CM_KAFKA_ERR_ARG;
        }
        if (header_cnt > 0) {
                hdrs = headers_new(headers, header_cnt, errstr, errstr_size);
                if (!hdrs)
                        return CM_KAFKA_ERR_ARG;
        }
        err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, key ? key_len : 0),
            RD_KAFKA_V_VALUE((void *)value, value ? value_len : 0),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(env), RD_KAFKA_V_END);
        if (err) {
                /* On failure the headers stay ours. */
                if (hdrs)
                        rd_kafka_headers_destroy(hdrs);
                cm_kafka_set_err_(errstr, errstr_size, "kafka: produce to \"%s\": %s",
                                  topic, rd_kafka_err2str(err));
                if (err == RD_KAFKA_RESP_ERR__FATAL)
                        return CM_KAFKA_ERR_FATAL;
                return CM_KAFKA_ERR_PRODUCE;
        }
        return CM_KAFKA_OK;
}

cm_kafka_err_t cm_kafka_produce(cm_kafka_producer_t *p, const char *topic,
                                const void *key, size_t key_len, const void *value,
                                size_t value_len, const cm_kafka_header_t *headers,
                                size_t header_cnt, void *msg_opaque, char *errstr,
                                size_t errstr_size)
{
        envelope_t *env = calloc(1, sizeof(*env));
        cm_kafka_err_t err;

        if (!env) {
                cm_kafka_set_err_(errstr, errstr_size, "kafka: out of memory");
                return CM_KAFKA_ERR_PRODUCE;
        }
        env->msg_opaque = msg_opaque;
        err = produce_env(p, topic, key, key_len, value, value_len, headers, header_cnt,
                          env, errstr, errstr_size);
        if (err)
                free(env);
        return err;
}

cm_kafka_err_t cm_kafka_produce_sync(cm_kafka_producer_t *p, const char *topic,
                                     const void *key, size_t key_len, const void *value,
                                     size_t value_len, const cm_kafka_header_t *headers,
                                     size_t header_cnt, int timeout_ms,
                                     int32_t *partition, int64_t *offset, char *errstr,
                                     size_t errstr_size)
{
        envelope_t *env = calloc(1, sizeof(*env));
        waiter_t *w = calloc(1, sizeof(*w));
        struct timespec deadline;
        cm_kafka_err_t err;
        int rc = 0;

        if (!env || !w) {
                free(env);
                free(w);
                cm_kafka_set_err_(errstr, errstr_size, "kafka: out of memory");
                return CM_KAFKA_ERR_PRODUCE;
        }
        env->waiter = w;
        err = produce_env(p, topic, key, key_len, value, value_len, headers, header_cnt,
                          env, errstr, errstr_size);
        if (err) {
                free(env);
                free(w);
                return err;
        }

        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&p->lock);
        while (!w->done && rc != ETIMEDOUT)
                rc = pthread_cond_timedwait(&p->cond, &p->lock, &deadline);
        if (!w->done) {
                /* The report will still come: dr_msg_cb frees w then. */
                w->abandoned = true;
                pthread_mutex_unlock(&p->lock);
                cm_kafka_set_err_(
                    errstr, errstr_size,
                    "kafka: produce to \"%s\": no delivery report within %d ms", topic,
                    timeout_ms);
                return CM_KAFKA_ERR_TIMEOUT;
        }
        pthread_mutex_unlock(&p->lock);

        err = w->err;
        if (err)
                cm_kafka_set_err_(errstr, errstr_size, "kafka: produce to \"%s\": %s",
                                  topic, w->errstr);
        if (partition)
                *partition = w->partition;
        if (offset)
                *offset = w->offset;
        free(w);
        return err;
}

cm_kafka_err_t cm_kafka_producer_flush(cm_kafka_producer_t *p, int timeout_ms,
                                       char *errstr, size_t errstr_size)
{
        rd_kafka_resp_err_t err = rd_kafka_flush(p->rk, timeout_ms);

        if (err) {
                cm_kafka_set_err_(errstr, errstr_size,
                                  "kafka: flush: %d message(s) left after %d ms",
                                  rd_kafka_outq_len(p->rk), timeout_ms);
                return CM_KAFKA_ERR_TIMEOUT;
        }
        return CM_KAFKA_OK;
}

cm_kafka_err_t cm_kafka_producer_ready(cm_kafka_producer_t *p, const char *topic,
                                       int timeout_ms, char *errstr, size_t errstr_size)
{
        return cm_kafka_ready_rk_(p->rk, topic, timeout_ms, errstr, errstr_size);
}

void cm_kafka_producer_destroy(cm_kafka_producer_t *p, int flush_timeout_ms)
{
        char left[32];
        int i;

        if (!p)
                return;
        atomic_store(&p->stop, true);
        pthread_join(p->poller, NULL);

        if (rd_kafka_flush(p->rk, flush_timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                snprintf(left, sizeof(left), "%d", rd_kafka_outq_len(p->rk));
                cm_log_warn("kafka producer closing with undelivered messages", "client",
                            rd_kafka_name(p->rk), "count", left);
                /* Fail them so every caller still gets its report and envelopes are
                 * freed. */
                rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
                for (i = 0; i < 50 && rd_kafka_outq_len(p->rk) > 0; i++)
                        rd_kafka_poll(p->rk, CM_KAFKA_POLL_MS);
        }
        rd_kafka_destroy(p->rk);
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        free(p);
}
