/*
 * cm_kafka_consumer.c - the group consumer of cm/kafka.h (manual commits, eager
 * rebalances).
 */
#include "cm/kafka.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "cm/log.h"
#include "cm_kafka_int.h"

#define CM_KAFKA_DEFAULT_STRATEGY   "roundrobin"
#define CM_KAFKA_DEFAULT_SESSION_MS 10000

/* ---------------------------------------------------------------- consumer */

struct cm_kafka_consumer_s {
        rd_kafka_t *rk;
        cm_kafka_rebalance_cb_t *rebalance_cb;
        void *rebalance_opaque;
        cm_kafka_start_offsets_cb_t *start_cb;
        void *start_opaque;
        atomic_uint generation;
};

static int part_cmp(const void *a, const void *b)
{
        const cm_kafka_partition_t *x = a, *y = b;
        int r = strcmp(x->topic, y->topic);

        if (r)
                return r;
        return (x->partition > y->partition) - (x->partition < y->partition);
}

/* Copies a librdkafka list into a sorted malloc'd array (NULL when empty). */
static cm_kafka_partition_t *parts_copy(const rd_kafka_topic_partition_list_t *list,
                                        size_t *cntp)
{
        cm_kafka_partition_t *parts;
        int i;

        *cntp = 0;
        if (!list || list->cnt == 0)
                return NULL;
        parts = calloc((size_t)list->cnt, sizeof(*parts));
        if (!parts)
                return NULL;
        for (i = 0; i < list->cnt; i++) {
                snprintf(parts[i].topic, sizeof(parts[i].topic), "%s",
                         list->elems[i].topic);
                parts[i].partition = list->elems[i].partition;
        }
        qsort(parts, (size_t)list->cnt, sizeof(*parts), part_cmp);
        *cntp = (size_t)list->cnt;
        return parts;
}

/* "cm.commands[0,1,2] cm.events[3]"-style text of a list, for the log. */
static void parts_format(const cm_kafka_partition_t *parts, size_t cnt, char *buf,
                         size_t size)
{
        size_t i, off = 0;
        int n;

        buf[0] = '\0';
        for (i = 0; i < cnt && off < size; i++) {
                bool first = i == 0 || strcmp(parts[i - 1].topic, parts[i].topic) != 0;
                bool last =
                    i + 1 == cnt || strcmp(parts[i + 1].topic, parts[i].topic) != 0;

                n = snprintf(buf + off, size - off, "%s%s%s%d%s", first && i ? " " : "",
                             first ? parts[i].topic : "", first ? "[" : ",",
                             parts[i].partition, last ? "]" : "");
                if (n < 0)
                        break;
                off += (size_t)n;
        }
}

/*
 * Asks the caller's start-offsets callback where each partition of list starts and sets
 * the offsets in list. Returns 0, or -1 when the callback failed (or out of memory).
 */
static int start_offsets(cm_kafka_consumer_t *c, rd_kafka_topic_partition_list_t *list)
{
        cm_kafka_partition_t *parts;
        int64_t *offsets;
        size_t cnt, i;
        char off[32];
        int rc = -1;

        if (list->cnt == 0)
                return 0;
        parts = parts_copy(list, &cnt);
        offsets = calloc(cnt ? cnt : 1, sizeof(*offsets));
        if (!parts || !offsets)
                goto out;
        for (i = 0; i < cnt; i++)
                offsets[i] = CM_KAFKA_OFFSET_COMMITTED;
        if (c->start_cb(parts, cnt, offsets, c->start_opaque) != 0)
                goto out;
        for (i = 0; i < cnt; i++) {
                rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(
                    list, parts[i].topic, parts[i].partition);
                int64_t o = offsets[i];

                if (!tp)
                        continue;
                if (o == CM_KAFKA_OFFSET_COMMITTED)
                        tp->offset = RD_KAFKA_OFFSET_INVALID; /* the committed one */
                else if (o == CM_KAFKA_OFFSET_BEGINNING)
                        tp->offset = RD_KAFKA_OFFSET_BEGINNING;
                else if (o == CM_KAFKA_OFFSET_END)
                        tp->offset = RD_KAFKA_OFFSET_END;
                else if (o >= 0)
                        tp->offset = o;
                else {
                        snprintf(off, sizeof(off), "%lld", (long long)o);
                        cm_log_error("kafka start offset out of range: using the "
                                     "committed offset",
                                     "topic", parts[i].topic, "offset", off);
                        tp->offset = RD_KAFKA_OFFSET_INVALID;
                }
        }
        rc = 0;
out:
        free(parts);
        free(offsets);
        return rc;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *list, void *opaque)
{
        cm_kafka_consumer_t *c = opaque;
        bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
        bool assigned = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
        rd_kafka_error_t *error = NULL;
        rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;
        cm_kafka_partition_t *parts;
        char text[1024];
        size_t cnt;

        if (assigned && c->start_cb && start_offsets(c, list) != 0) {
                /* Nothing is read from an unknown position: leave them unassigned. */
                cm_log_error("kafka partitions left unassigned: no start offsets",
                             "client", rd_kafka_name(rk));
                if (!cooperative)
                        aerr = rd_kafka_assign(rk, NULL);
        } else if (assigned) {
                if (cooperative)
                        error = rd_kafka_incremental_assign(rk, list);
                else
                        aerr = rd_kafka_assign(rk, list);
        } else {
                if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
                        cm_log_warn("kafka rebalance error", "client", rd_kafka_name(rk),
                                    "error", rd_kafka_err2str(err));
                if (cooperative)
                        error = rd_kafka_incremental_unassign(rk, list);
                else
                        aerr = rd_kafka_assign(rk, NULL);
        }
        if (error) {
                cm_log_error("kafka (un)assign failed", "client", rd_kafka_name(rk),
                             "error", rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        } else if (aerr) {
                cm_log_error("kafka (un)assign failed", "client", rd_kafka_name(rk),
                             "error", rd_kafka_err2str(aerr));
        }
        atomic_fetch_add(&c->generation, 1);

        parts = parts_copy(list, &cnt);
        parts_format(parts, cnt, text, sizeof(text));
        cm_log_info(assigned ? "kafka partitions assigned" : "kafka partitions revoked",
                    "client", rd_kafka_name(rk), "partitions", text);
        if (c->rebalance_cb)
                c->rebalance_cb(assigned, parts, cnt, c->rebalance_opaque);
        free(parts);
}

/* Each comma-separated item must be an assignor librdkafka knows. */
static int strategy_check(const char *s, char *errstr, size_t errstr_size)
{
        static const char *const known[] = {"range", "roundrobin", "cooperative-sticky"};
        const char *p = s;
        size_t i, len;
        bool ok;

        while (*p) {
                while (*p == ' ' || *p == ',')
                        p++;
                len = strcspn(p, ", ");
                if (len == 0)
                        break;
                ok = false;
                for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                        if (strlen(known[i]) == len && strncmp(p, known[i], len) == 0)
                                ok = true;
                if (!ok) {
                        cm_kafka_set_err_(
                            errstr, errstr_size,
                            "kafka.assignment_strategy: unsupported value \"%s\" "
                            "(range, roundrobin or cooperative-sticky)",
                            s);
                        return -1;
                }
                p += len;
        }
        return 0;
}

cm_kafka_consumer_t *cm_kafka_consumer_new(const cm_kafka_conf_t *conf,
                                           cm_kafka_rebalance_cb_t *rebalance_cb_fn,
                                           void *rebalance_opaque, char *errstr,
                                           size_t errstr_size)
{
        cm_kafka_consumer_t *c;
        rd_kafka_conf_t *rc;
        const char *strategy;
        char why[512];
        int session;

        if (conf && (!conf->group_id || !*conf->group_id)) {
                cm_kafka_set_err_(errstr, errstr_size, "kafka: consumer group_id: empty");
                return NULL;
        }
        strategy = conf && conf->assignment_strategy && *conf->assignment_strategy
                       ? conf->assignment_strategy
                       : CM_KAFKA_DEFAULT_STRATEGY;
        if (strategy_check(strategy, errstr, errstr_size))
                return NULL;
        rc = cm_kafka_conf_base_(conf, errstr, errstr_size);
        if (!rc)
                return NULL;
        session = conf->session_timeout_ms > 0 ? conf->session_timeout_ms
                                               : CM_KAFKA_DEFAULT_SESSION_MS;
        if (cm_kafka_conf_set_(rc, "group.id", conf->group_id, errstr, errstr_size) ||
            cm_kafka_conf_set_(rc, "enable.auto.commit", "false", errstr, errstr_size) ||
            cm_kafka_conf_set_(rc, "enable.auto.offset.store", "false", errstr,
                               errstr_size) ||
            cm_kafka_conf_set_(rc, "auto.offset.reset", "earliest", errstr,
                               errstr_size) ||
            cm_kafka_conf_set_(rc, "partition.assignment.strategy", strategy, errstr,
                               errstr_size) ||
            cm_kafka_conf_set_int_(rc, "session.timeout.ms", session, errstr,
                                   errstr_size) ||
            (conf->fetch_wait_max_ms > 0 &&
             cm_kafka_conf_set_int_(rc, "fetch.wait.max.ms", conf->fetch_wait_max_ms, errstr,
                                    errstr_size)) ||
            cm_kafka_conf_set_int_(rc, "heartbeat.interval.ms",
                                   session / 3 > 0 ? session / 3 : 1, errstr,
                                   errstr_size)) {
                rd_kafka_conf_destroy(rc);
                return NULL;
        }

        c = calloc(1, sizeof(*c));
        if (!c) {
                rd_kafka_conf_destroy(rc);
                cm_kafka_set_err_(errstr, errstr_size, "kafka: out of memory");
                return NULL;
        }
        c->rebalance_cb = rebalance_cb_fn;
        c->rebalance_opaque = rebalance_opaque;
        rd_kafka_conf_set_opaque(rc, c);
        rd_kafka_conf_set_rebalance_cb(rc, rebalance_cb);

        c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, rc, why, sizeof(why));
        if (!c->rk) {
                rd_kafka_conf_destroy(rc);
                cm_kafka_set_err_(errstr, errstr_size, "kafka: consumer: %s", why);
                free(c);
                return NULL;
        }
        /* Errors, logs and rebalances are then served by cm_kafka_consumer_poll(). */
        rd_kafka_poll_set_consumer(c->rk);
        cm_log_info("kafka consumer created", "client", rd_kafka_name(c->rk), "group",
                    conf->group_id, "assignment_strategy", strategy, "bootstrap_servers",
                    conf->bootstrap_servers);
        return c;
}

void cm_kafka_consumer_set_start_offsets(cm_kafka_consumer_t *c,
                                         cm_kafka_start_offsets_cb_t *cb, void *opaque)
{
        c->start_cb = cb;
        c->start_opaque = opaque;
}

cm_kafka_err_t cm_kafka_consumer_subscribe(cm_kafka_consumer_t *c,
                                           const char *const *topics, size_t topic_cnt,
                                           char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err;
        size_t i;

        if (topic_cnt == 0) {
                cm_kafka_set_err_(errstr, errstr_size, "kafka: subscribe: no topic");
                return CM_KAFKA_ERR_ARG;
        }
        list = rd_kafka_topic_partition_list_new((int)topic_cnt);
        for (i = 0; i < topic_cnt; i++) {
                if (!topics[i] || !*topics[i]) {
                        rd_kafka_topic_partition_list_destroy(list);
                        cm_kafka_set_err_(errstr, errstr_size,
                                          "kafka: subscribe: topic %zu is empty", i);
                        return CM_KAFKA_ERR_ARG;
                }
                rd_kafka_topic_partition_list_add(list, topics[i], RD_KAFKA_PARTITION_UA);
        }
        err = rd_kafka_subscribe(c->rk, list);
        rd_kafka_topic_partition_list_destroy(list);
        if (err) {
                cm_kafka_set_err_(errstr, errstr_size,
                                  "kafka: subscribe to \"%s\"...: %s", topics[0],
                                  rd_kafka_err2str(err));
                return CM_KAFKA_ERR_SUBSCRIBE;
        }
        return CM_KAFKA_OK;
}

cm_kafka_err_t cm_kafka_consumer_poll(cm_kafka_consumer_t *c, int timeout_ms,
                                      cm_kafka_message_t **msgp, char *errstr,
                                      size_t errstr_size)
{
        rd_kafka_message_t *rkm;
        cm_kafka_message_t *m;

        *msgp = NULL;
        rkm = rd_kafka_consumer_poll(c->rk, timeout_ms);
        if (!rkm)
                return CM_KAFKA_OK;
        if (rkm->err) {
                const char *topic = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "";
                char part[16];

                snprintf(part, sizeof(part), "%d", (int)rkm->partition);
                cm_kafka_set_err_(errstr, errstr_size, "kafka: consume %s[%d]: %s", topic,
                                  (int)rkm->partition, rd_kafka_message_errstr(rkm));
                cm_log_warn("kafka consumer error", "client", rd_kafka_name(c->rk),
                            "topic", topic, "partition", part, "error",
                            rd_kafka_message_errstr(rkm));
                rd_kafka_message_destroy(rkm);
                return CM_KAFKA_ERR_CONSUME;
        }
        m = calloc(1, sizeof(*m));
        if (!m) {
                rd_kafka_message_destroy(rkm);
                cm_kafka_set_err_(errstr, errstr_size, "kafka: out of memory");
                return CM_KAFKA_ERR_CONSUME;
        }
        m->topic = rd_kafka_topic_name(rkm->rkt);
        m->partition = rkm->partition;
        m->offset = rkm->offset;
        m->timestamp_ms = rd_kafka_message_timestamp(rkm, NULL);
        m->key = rkm->key;
        m->key_len = rkm->key_len;
        m->value = rkm->payload;
        m->value_len = rkm->len;
        m->priv_ = rkm;
        *msgp = m;
        return CM_KAFKA_OK;
}

size_t cm_kafka_message_header_cnt(const cm_kafka_message_t *m)
{
        rd_kafka_headers_t *hdrs;

        if (rd_kafka_message_headers(m->priv_, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
                return 0;
        return rd_kafka_header_cnt(hdrs);
}

int cm_kafka_message_header_at(const cm_kafka_message_t *m, size_t idx, const char **name,
                               const void **value, size_t *value_len)
{
        rd_kafka_headers_t *hdrs;

        if (rd_kafka_message_headers(m->priv_, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
                return -1;
        if (rd_kafka_header_get_all(hdrs, idx, name, value, value_len))
                return -1;
        return 0;
}

int cm_kafka_message_header_find(const cm_kafka_message_t *m, const char *name,
                                 const void **value, size_t *value_len)
{
        rd_kafka_headers_t *hdrs;

        if (rd_kafka_message_headers(m->priv_, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
                return -1;
        if (rd_kafka_header_get_last(hdrs, name, value, value_len))
                return -1;
        return 0;
}

void cm_kafka_message_destroy(cm_kafka_message_t *m)
{
        if (!m)
                return;
        rd_kafka_message_destroy(m->priv_);
        free(m);
}

cm_kafka_err_t cm_kafka_consumer_commit_offset(cm_kafka_consumer_t *c, const char *topic,
                                               int32_t partition, int64_t next_offset,
                                               char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_resp_err_t err;

        rd_kafka_topic_partition_list_add(list, topic, partition)->offset = next_offset;
        err = rd_kafka_commit(c->rk, list, 0 /* sync */);
        if (!err)
                err = list->elems[0].err;
        rd_kafka_topic_partition_list_destroy(list);
        if (err) {
                cm_kafka_set_err_(
                    errstr, errstr_size, "kafka: commit %s[%d] offset %lld: %s", topic,
                    (int)partition, (long long)next_offset, rd_kafka_err2str(err));
                return CM_KAFKA_ERR_COMMIT;
        }
        return CM_KAFKA_OK;
}

cm_kafka_err_t cm_kafka_consumer_commit(cm_kafka_consumer_t *c,
                                        const cm_kafka_message_t *m, char *errstr,
                                        size_t errstr_size)
{
        return cm_kafka_consumer_commit_offset(c, m->topic, m->partition, m->offset + 1,
                                               errstr, errstr_size);
}

cm_kafka_err_t cm_kafka_consumer_assignment(cm_kafka_consumer_t *c,
                                            cm_kafka_partition_t **partsp, size_t *cntp,
                                            char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *list = NULL;
        rd_kafka_resp_err_t err;

        *partsp = NULL;
        *cntp = 0;
        err = rd_kafka_assignment(c->rk, &list);
        if (err) {
                cm_kafka_set_err_(errstr, errstr_size, "kafka: assignment: %s",
                                  rd_kafka_err2str(err));
                return CM_KAFKA_ERR_CONSUME;
        }
        *partsp = parts_copy(list, cntp);
        if (list->cnt > 0 && !*partsp) {
                rd_kafka_topic_partition_list_destroy(list);
                cm_kafka_set_err_(errstr, errstr_size, "kafka: out of memory");
                return CM_KAFKA_ERR_CONSUME;
        }
        rd_kafka_topic_partition_list_destroy(list);
        return CM_KAFKA_OK;
}

unsigned cm_kafka_consumer_generation(cm_kafka_consumer_t *c)
{
        return atomic_load(&c->generation);
}

void cm_kafka_consumer_watermarks(cm_kafka_consumer_t *c, const char *topic,
                                  int32_t partition, int64_t *low, int64_t *high)
{
        int64_t lo = -1, hi = -1;

        if (rd_kafka_get_watermark_offsets(c->rk, topic, partition, &lo, &hi) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
                lo = -1;
                hi = -1;
        }
        if (low)
                *low = lo;
        if (high)
                *high = hi;
}

cm_kafka_err_t cm_kafka_consumer_ready(cm_kafka_consumer_t *c, const char *topic,
                                       int timeout_ms, char *errstr, size_t errstr_size)
{
        return cm_kafka_ready_rk_(c->rk, topic, timeout_ms, errstr, errstr_size);
}

cm_kafka_err_t cm_kafka_consumer_partition_count(cm_kafka_consumer_t *c,
                                                 const char *topic, int timeout_ms,
                                                 int32_t *cnt, char *errstr,
                                                 size_t errstr_size)
{
        return cm_kafka_partition_count_rk_(c->rk, topic, timeout_ms, cnt, errstr,
                                            errstr_size);
}

void cm_kafka_consumer_destroy(cm_kafka_consumer_t *c)
{
        rd_kafka_resp_err_t err;

        if (!c)
                return;
        err = rd_kafka_consumer_close(c->rk);
        if (err)
                cm_log_warn("kafka consumer close", "client", rd_kafka_name(c->rk),
                            "error", rd_kafka_err2str(err));
        rd_kafka_destroy(c->rk);
        free(c);
}
