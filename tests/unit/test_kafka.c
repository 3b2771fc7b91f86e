/*
 * test_kafka.c - cm/kafka.h against an in-process librdkafka mock cluster (3 brokers).
 * Each test runs in its own forked child with a fresh cluster (checked fixture).
 */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "cm/kafka.h"
#include "cm/log.h"
#include "../check_main.h"

#define T12 "t12" /* 12 partitions, like cm.commands */
#define T1  "t1"  /* 1 partition: a total order to reason about offsets */

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mcluster;
static char bootstraps[512];

static void setup(void)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[256];

        cm_log_init("test_kafka", CM_LOG_WARN);
        mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        ck_assert_msg(mock_rk, "%s", errstr);
        mcluster = rd_kafka_mock_cluster_new(mock_rk, 3);
        ck_assert_ptr_nonnull(mcluster);
        ck_assert_int_eq(rd_kafka_mock_topic_create(mcluster, T12, 12, 3), 0);
        ck_assert_int_eq(rd_kafka_mock_topic_create(mcluster, T1, 1, 3), 0);
        snprintf(bootstraps, sizeof(bootstraps), "%s",
                 rd_kafka_mock_cluster_bootstraps(mcluster));
}

static void teardown(void)
{
        rd_kafka_mock_cluster_destroy(mcluster);
        rd_kafka_destroy(mock_rk);
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static cm_kafka_conf_t conf_for(const char *bootstrap, const char *group)
{
        cm_kafka_conf_t kc = {0};

        kc.bootstrap_servers = bootstrap;
        kc.client_id = "test_kafka";
        kc.group_id = group;
        kc.session_timeout_ms = 6000;
        kc.message_timeout_ms = 10000;
        return kc;
}

static cm_kafka_producer_t *producer(cm_kafka_delivery_cb_t *cb, void *opaque)
{
        cm_kafka_conf_t kc = conf_for(bootstraps, NULL);
        char errstr[512] = "";
        cm_kafka_producer_t *p =
            cm_kafka_producer_new(&kc, cb, opaque, errstr, sizeof(errstr));

        ck_assert_msg(p, "producer: %s", errstr);
        return p;
}

static cm_kafka_consumer_t *consumer(const char *group, const char *topic)
{
        cm_kafka_conf_t kc = conf_for(bootstraps, group);
        char errstr[512] = "";
        cm_kafka_consumer_t *c =
            cm_kafka_consumer_new(&kc, NULL, NULL, errstr, sizeof(errstr));

        ck_assert_msg(c, "consumer: %s", errstr);
        ck_assert_int_eq(
            cm_kafka_consumer_subscribe(c, &topic, 1, errstr, sizeof(errstr)),
            CM_KAFKA_OK);
        return c;
}

/* Next message within timeout_ms, or NULL. Consumer errors fail the test. */
static cm_kafka_message_t *next_msg(cm_kafka_consumer_t *c, int timeout_ms)
{
        int64_t end = now_ms() + timeout_ms;
        cm_kafka_message_t *m = NULL;
        char errstr[512];

        while (!m && now_ms() < end) {
                cm_kafka_err_t err =
                    cm_kafka_consumer_poll(c, 200, &m, errstr, sizeof(errstr));

                ck_assert_msg(err == CM_KAFKA_OK, "poll: %s", errstr);
        }
        return m;
}

static void produce_sync_ok(cm_kafka_producer_t *p, const char *topic, const char *key,
                            const char *value, int32_t *partition, int64_t *offset)
{
        char errstr[512] = "";
        cm_kafka_err_t err =
            cm_kafka_produce_sync(p, topic, key, strlen(key), value, strlen(value), NULL,
                                  0, 10000, partition, offset, errstr, sizeof(errstr));

        ck_assert_msg(err == CM_KAFKA_OK, "produce_sync %s: %s (%s)", key,
                      cm_kafka_err2str(err), errstr);
}

/* ---------------------------------------------------------------- murmur2 */

START_TEST(test_murmur2_java_vectors)
{
        /* Apache Kafka clients, UtilsTest.testMurmur2. */
        static const struct {
                const char *key;
                int32_t hash;
        } v[] = {
            {"21", -973932308},
            {"foobar", -790332482},
            {"a-little-bit-long-string", -985981536},
            {"a-little-bit-longer-string", -1486304829},
            {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
            {"abc", 479470107},
        };
        size_t i;

        for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
                ck_assert_int_eq(cm_kafka_murmur2(v[i].key, strlen(v[i].key)), v[i].hash);
                ck_assert_int_eq(
                    cm_kafka_partition_for_key(v[i].key, strlen(v[i].key), 12),
                    (int32_t)(((uint32_t)v[i].hash & 0x7fffffffu) % 12u));
        }
        ck_assert_int_eq(cm_kafka_partition_for_key("abc", 3, 0), -1);
}
END_TEST

/* Where the broker put each key is where a Java client would put it. */
START_TEST(test_key_partition_matches_murmur2)
{
        static const struct {
                const char *key;
                int32_t
                    hash; /* Kafka's own vector, so the test does not trust our hash */
        } v[] = {
            {"21", -973932308},
            {"foobar", -790332482},
            {"a-little-bit-long-string", -985981536},
            {"a-little-bit-longer-string", -1486304829},
            {"abc", 479470107},
        };
        cm_kafka_producer_t *p = producer(NULL, NULL);
        const char *names[] = {"prod", "staging-eu-1", "cluster-42", "x"};
        int32_t part;
        int64_t off;
        size_t i;

        for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
                produce_sync_ok(p, T12, v[i].key, "v", &part, &off);
                ck_assert_msg(part ==
                                  (int32_t)(((uint32_t)v[i].hash & 0x7fffffffu) % 12u),
                              "key %s landed on %d", v[i].key, part);
                ck_assert_int_ge(off, 0);
        }
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                produce_sync_ok(p, T12, names[i], "v", &part, &off);
                ck_assert_int_eq(
                    part, cm_kafka_partition_for_key(names[i], strlen(names[i]), 12));
        }
        cm_kafka_producer_destroy(p, 5000);
}
END_TEST

/* ---------------------------------------------------------------- producer */

typedef struct {
        pthread_mutex_t lock;
        int cnt, ok;
        int seen[64]; /* per msg_opaque index: delivery count */
        int64_t offset[64];
        int32_t partition[64];
} reports_t;

static void on_delivery(const cm_kafka_delivery_t *dr, void *opaque)
{
        reports_t *r = opaque;
        intptr_t idx = (intptr_t)dr->msg_opaque;

        pthread_mutex_lock(&r->lock);
        r->cnt++;
        if (dr->err == CM_KAFKA_OK)
                r->ok++;
        if (idx >= 0 && idx < 64) {
                r->seen[idx]++;
                r->offset[idx] = dr->offset;
                r->partition[idx] = dr->partition;
        }
        pthread_mutex_unlock(&r->lock);
}

START_TEST(test_produce_delivery_reports)
{
        reports_t r = {.lock = PTHREAD_MUTEX_INITIALIZER};
        cm_kafka_producer_t *p = producer(on_delivery, &r);
        char errstr[512], value[32];
        intptr_t i;

        for (i = 0; i < 20; i++) {
                snprintf(value, sizeof(value), "m%d", (int)i);
                ck_assert_int_eq(cm_kafka_produce(p, T1, "k", 1, value, strlen(value),
                                                  NULL, 0, (void *)i, errstr,
                                                  sizeof(errstr)),
                                 CM_KAFKA_OK);
        }
        ck_assert_msg(cm_kafka_producer_flush(p, 10000, errstr, sizeof(errstr)) ==
                          CM_KAFKA_OK,
                      "%s", errstr);
        pthread_mutex_lock(&r.lock);
        ck_assert_int_eq(r.cnt, 20);
        ck_assert_int_eq(r.ok, 20);
        for (i = 0; i < 20; i++) {
                ck_assert_int_eq(r.seen[i], 1);
                ck_assert_int_eq(r.partition[i], 0);
                ck_assert_int_eq(r.offset[i], i); /* in order, once each */
        }
        pthread_mutex_unlock(&r.lock);
        cm_kafka_producer_destroy(p, 5000);
}
END_TEST

/*
 * Produce requests fail with retriable errors: the idempotent producer retries, and each
 * message is written exactly once and in order.
 */
START_TEST(test_idempotent_retries_keep_order)
{
        cm_kafka_producer_t *p = producer(NULL, NULL);
        cm_kafka_consumer_t *c;
        cm_kafka_message_t *m;
        char value[32];
        int64_t off;
        int i;

        produce_sync_ok(p, T1, "warm", "up", NULL, &off); /* producer id acquired */
        rd_kafka_mock_push_request_errors(
            mcluster, 0 /* Produce */, 3, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
        for (i = 0; i < 5; i++) {
                snprintf(value, sizeof(value), "m%d", i);
                produce_sync_ok(p, T1, "k", value, NULL, &off);
                ck_assert_int_eq(off, i + 1);
        }
        cm_kafka_producer_destroy(p, 5000);

        c = consumer("g-idem", T1);
        m = next_msg(c, 20000);
        ck_assert_ptr_nonnull(m);
        ck_assert_int_eq(m->offset, 0);
        cm_kafka_message_destroy(m);
        for (i = 0; i < 5; i++) {
                m = next_msg(c, 10000);
                ck_assert_ptr_nonnull(m);
                snprintf(value, sizeof(value), "m%d", i);
                ck_assert_int_eq(m->value_len, strlen(value));
                ck_assert_mem_eq(m->value, value, m->value_len);
                cm_kafka_message_destroy(m);
        }
        ck_assert_ptr_null(next_msg(c, 1500)); /* no duplicate */
        cm_kafka_consumer_destroy(c);
}
END_TEST

/* Nothing is reachable: produce_sync fails by the message timeout, not by hanging. */
START_TEST(test_produce_sync_unreachable)
{
        cm_kafka_conf_t kc = conf_for("127.0.0.1:1", NULL);
        cm_kafka_producer_t *p;
        char errstr[512] = "";
        cm_kafka_err_t err;
        int64_t t0;

        kc.message_timeout_ms = 1000;
        p = cm_kafka_producer_new(&kc, NULL, NULL, errstr, sizeof(errstr));
        ck_assert_msg(p, "%s", errstr);
        t0 = now_ms();
        err = cm_kafka_produce_sync(p, "cm.commands", "k", 1, "v", 1, NULL, 0, 10000,
                                    NULL, NULL, errstr, sizeof(errstr));
        ck_assert_int_eq(err, CM_KAFKA_ERR_DELIVERY);
        ck_assert_int_lt(now_ms() - t0, 5000);
        ck_assert_msg(strstr(errstr, "cm.commands"), "errstr names the topic: %s",
                      errstr);

        /* Shorter wait than the message timeout: the caller learns "not yet known". */
        kc.message_timeout_ms = 5000;
        cm_kafka_producer_destroy(p, 100);
        p = cm_kafka_producer_new(&kc, NULL, NULL, errstr, sizeof(errstr));
        ck_assert_ptr_nonnull(p);
        err = cm_kafka_produce_sync(p, "cm.commands", "k", 1, "v", 1, NULL, 0, 200, NULL,
                                    NULL, errstr, sizeof(errstr));
        ck_assert_int_eq(err, CM_KAFKA_ERR_TIMEOUT);
        ck_assert_msg(strstr(errstr, "200 ms"), "%s", errstr);
        cm_kafka_producer_destroy(p, 100); /* frees the abandoned waiter via purge */
}
END_TEST

/* Destroy with undelivered messages: each caller still learns its message failed. */
START_TEST(test_destroy_reports_undelivered)
{
        reports_t r = {.lock = PTHREAD_MUTEX_INITIALIZER};
        cm_kafka_conf_t kc = conf_for("127.0.0.1:1", NULL);
        cm_kafka_producer_t *p;
        char errstr[512] = "";
        int64_t t0;
        intptr_t i;

        p = cm_kafka_producer_new(&kc, on_delivery, &r, errstr, sizeof(errstr));
        ck_assert_ptr_nonnull(p);
        for (i = 0; i < 3; i++)
                ck_assert_int_eq(cm_kafka_produce(p, "cm.events", "k", 1, "v", 1, NULL, 0,
                                                  (void *)i, errstr, sizeof(errstr)),
                                 CM_KAFKA_OK);
        ck_assert_int_eq(cm_kafka_producer_flush(p, 300, errstr, sizeof(errstr)),
                         CM_KAFKA_ERR_TIMEOUT);
        t0 = now_ms();
        cm_kafka_producer_destroy(p, 300);
        ck_assert_int_lt(now_ms() - t0, 8000);
        ck_assert_int_eq(r.cnt, 3);
        ck_assert_int_eq(r.ok, 0);
        for (i = 0; i < 3; i++)
                ck_assert_int_eq(r.seen[i], 1);
}
END_TEST

/* ---------------------------------------------------------------- consumer */

START_TEST(test_headers_round_trip)
{
        static const unsigned char bin[] = {0xc3, 0x01, 0x00, 0xff};
        cm_kafka_header_t hdrs[] = {
            {"cm.error", "unknown schema fingerprint", 26},
            {"cm.raw", bin, sizeof(bin)},
            {"cm.empty", NULL, 0},
            {"cm.error", "second", 6},
        };
        cm_kafka_producer_t *p = producer(NULL, NULL);
        cm_kafka_consumer_t *c;
        cm_kafka_message_t *m;
        const char *name;
        const void *val;
        size_t len;
        char errstr[512] = "";

        ck_assert_msg(cm_kafka_produce_sync(p, T1, "prod", 4, "body", 4, hdrs, 4, 10000,
                                            NULL, NULL, errstr,
                                            sizeof(errstr)) == CM_KAFKA_OK,
                      "%s", errstr);
        cm_kafka_producer_destroy(p, 5000);

        c = consumer("g-hdr", T1);
        m = next_msg(c, 20000);
        ck_assert_ptr_nonnull(m);
        ck_assert_str_eq(m->topic, T1);
        ck_assert_int_eq(m->key_len, 4);
        ck_assert_mem_eq(m->key, "prod", 4);
        ck_assert_int_ge(m->timestamp_ms, 0);
        ck_assert_uint_eq(cm_kafka_message_header_cnt(m), 4);
        ck_assert_int_eq(cm_kafka_message_header_at(m, 1, &name, &val, &len), 0);
        ck_assert_str_eq(name, "cm.raw");
        ck_assert_uint_eq(len, sizeof(bin));
        ck_assert_mem_eq(val, bin, sizeof(bin));
        ck_assert_int_eq(cm_kafka_message_header_at(m, 2, &name, &val, &len), 0);
        ck_assert_str_eq(name, "cm.empty");
        ck_assert_ptr_null(val);
        ck_assert_int_eq(cm_kafka_message_header_at(m, 4, &name, &val, &len), -1);
        ck_assert_int_eq(cm_kafka_message_header_find(m, "cm.error", &val, &len), 0);
        ck_assert_uint_eq(len, 6); /* the last one wins */
        ck_assert_mem_eq(val, "second", 6);
        ck_assert_int_eq(cm_kafka_message_header_find(m, "missing", &val, &len), -1);
        cm_kafka_message_destroy(m);
        cm_kafka_consumer_destroy(c);
}
END_TEST

/*
 * Manual commit: the first member commits after message 3 and leaves; the next member of
 * the group resumes at message 4 (what was consumed but not committed is delivered
 * again).
 */
START_TEST(test_commit_survives_restart)
{
        cm_kafka_producer_t *p = producer(NULL, NULL);
        cm_kafka_consumer_t *c;
        cm_kafka_message_t *m;
        char value[16], errstr[512] = "";
        int i;

        for (i = 0; i < 6; i++) {
                snprintf(value, sizeof(value), "c%d", i);
                produce_sync_ok(p, T1, "prod", value, NULL, NULL);
        }

        c = consumer("g-restart", T1);
        for (i = 0; i < 5; i++) {
                m = next_msg(c, 20000);
                ck_assert_ptr_nonnull(m);
                ck_assert_int_eq(m->offset, i);
                if (i == 2)
                        ck_assert_msg(cm_kafka_consumer_commit(
                                          c, m, errstr, sizeof(errstr)) == CM_KAFKA_OK,
                                      "commit: %s", errstr);
                cm_kafka_message_destroy(m); /* 3 and 4 consumed, not committed */
        }
        cm_kafka_consumer_destroy(c);

        c = consumer("g-restart", T1);
        m = next_msg(c, 20000);
        ck_assert_ptr_nonnull(m);
        ck_assert_int_eq(m->offset, 3);
        ck_assert_mem_eq(m->value, "c3", 2);
        cm_kafka_message_destroy(m);
        m = next_msg(c, 10000);
        ck_assert_ptr_nonnull(m);
        ck_assert_int_eq(m->offset, 4);
        cm_kafka_message_destroy(m);
        cm_kafka_consumer_destroy(c);

        /* Another group has its own offsets: it starts at the earliest. */
        c = consumer("g-other", T1);
        m = next_msg(c, 20000);
        ck_assert_ptr_nonnull(m);
        ck_assert_int_eq(m->offset, 0);
        cm_kafka_message_destroy(m);
        cm_kafka_consumer_destroy(c);
        cm_kafka_producer_destroy(p, 5000);
}
END_TEST

typedef struct {
        int assigned_calls, revoked_calls;
        size_t last_cnt;
} rebal_t;

static void on_rebalance(int assigned, const cm_kafka_partition_t *parts, size_t cnt,
                         void *opaque)
{
        rebal_t *r = opaque;

        (void)parts;
        if (assigned) {
                r->assigned_calls++;
                r->last_cnt = cnt;
        } else {
                r->revoked_calls++;
        }
}

static size_t assigned_cnt(cm_kafka_consumer_t *c, cm_kafka_partition_t **parts)
{
        char errstr[256];
        size_t cnt;

        ck_assert_int_eq(
            cm_kafka_consumer_assignment(c, parts, &cnt, errstr, sizeof(errstr)),
            CM_KAFKA_OK);
        return cnt;
}

/* Two members of a group split 12 partitions 6/6 (eager roundrobin), disjointly. */
START_TEST(test_group_splits_partitions)
{
        cm_kafka_conf_t kc = conf_for(bootstraps, "g-split");
        const char *topic = T12;
        cm_kafka_partition_t *pa = NULL, *pb = NULL;
        cm_kafka_consumer_t *a, *b;
        cm_kafka_message_t *m;
        rebal_t ra = {0};
        char errstr[512] = "";
        unsigned gen;
        int64_t end;
        size_t i, j, na = 0, nb = 0;

        a = cm_kafka_consumer_new(&kc, on_rebalance, &ra, errstr, sizeof(errstr));
        ck_assert_msg(a, "%s", errstr);
        ck_assert_int_eq(
            cm_kafka_consumer_subscribe(a, &topic, 1, errstr, sizeof(errstr)), 0);
        end = now_ms() + 20000;
        while (now_ms() < end && (na = assigned_cnt(a, &pa)) != 12) {
                free(pa);
                pa = NULL;
                ck_assert_int_eq(
                    cm_kafka_consumer_poll(a, 100, &m, errstr, sizeof(errstr)), 0);
                cm_kafka_message_destroy(m);
        }
        ck_assert_uint_eq(na, 12);
        ck_assert_int_ge(ra.assigned_calls, 1);
        ck_assert_uint_eq(ra.last_cnt, 12);
        for (i = 0; i < 12; i++) {
                ck_assert_str_eq(pa[i].topic, T12);
                ck_assert_int_eq(pa[i].partition, (int32_t)i); /* sorted */
        }
        free(pa);
        pa = NULL;
        gen = cm_kafka_consumer_generation(a);

        b = consumer("g-split", T12);
        end = now_ms() + 30000;
        while (now_ms() < end) {
                ck_assert_int_eq(
                    cm_kafka_consumer_poll(a, 100, &m, errstr, sizeof(errstr)), 0);
                cm_kafka_message_destroy(m);
                ck_assert_int_eq(
                    cm_kafka_consumer_poll(b, 100, &m, errstr, sizeof(errstr)), 0);
                cm_kafka_message_destroy(m);
                na = assigned_cnt(a, &pa);
                nb = assigned_cnt(b, &pb);
                if (na == 6 && nb == 6)
                        break;
                free(pa);
                free(pb);
                pa = pb = NULL;
        }
        ck_assert_msg(na == 6 && nb == 6, "split %zu/%zu", na, nb);
        for (i = 0; i < na; i++)
                for (j = 0; j < nb; j++)
                        ck_assert_int_ne(pa[i].partition, pb[j].partition);
        ck_assert_uint_gt(cm_kafka_consumer_generation(a), gen);
        ck_assert_int_ge(ra.revoked_calls, 1);
        free(pa);
        free(pb);
        cm_kafka_consumer_destroy(b);
        cm_kafka_consumer_destroy(a);
}
END_TEST

/* ---------------------------------------------------------------- readiness, config */

START_TEST(test_ready)
{
        cm_kafka_producer_t *p = producer(NULL, NULL);
        char errstr[512] = "";

        ck_assert_msg(cm_kafka_producer_ready(p, NULL, 5000, errstr, sizeof(errstr)) == 0,
                      "%s", errstr);
        ck_assert_msg(cm_kafka_producer_ready(p, T12, 5000, errstr, sizeof(errstr)) == 0,
                      "%s", errstr);
        ck_assert_int_eq(
            cm_kafka_producer_ready(p, "no.such.topic", 5000, errstr, sizeof(errstr)),
            CM_KAFKA_ERR_NO_TOPIC);
        ck_assert_msg(strstr(errstr, "no.such.topic"), "%s", errstr);
        cm_kafka_producer_destroy(p, 1000);
}
END_TEST

START_TEST(test_unreachable_not_ready_in_time)
{
        cm_kafka_conf_t kc = conf_for("127.0.0.1:1", "g-unreach");
        cm_kafka_consumer_t *c;
        char errstr[512] = "";
        cm_kafka_err_t err;
        int64_t t0, took;

        c = cm_kafka_consumer_new(&kc, NULL, NULL, errstr, sizeof(errstr));
        ck_assert_msg(c, "%s", errstr);
        t0 = now_ms();
        err = cm_kafka_consumer_ready(c, NULL, 1500, errstr, sizeof(errstr));
        took = now_ms() - t0;
        ck_assert_int_eq(err, CM_KAFKA_ERR_UNREACHABLE);
        ck_assert_msg(took < 3000, "took %lld ms", (long long)took);
        ck_assert_msg(strstr(errstr, "1500 ms"), "%s", errstr);
        cm_kafka_consumer_destroy(c);
}
END_TEST

START_TEST(test_conf_errors_name_the_key)
{
        cm_kafka_conf_t kc = conf_for("", "g");
        char errstr[512] = "";

        ck_assert_ptr_null(
            cm_kafka_producer_new(&kc, NULL, NULL, errstr, sizeof(errstr)));
        ck_assert_msg(strstr(errstr, "kafka.bootstrap_servers"), "%s", errstr);

        kc = conf_for(bootstraps, "g");
        kc.assignment_strategy = "sticky-please";
        ck_assert_ptr_null(
            cm_kafka_consumer_new(&kc, NULL, NULL, errstr, sizeof(errstr)));
        ck_assert_msg(strstr(errstr, "kafka.assignment_strategy") &&
                          strstr(errstr, "sticky-please"),
                      "%s", errstr);

        kc = conf_for(bootstraps, NULL);
        ck_assert_ptr_null(
            cm_kafka_consumer_new(&kc, NULL, NULL, errstr, sizeof(errstr)));
        ck_assert_msg(strstr(errstr, "group_id"), "%s", errstr);

        kc = conf_for(bootstraps, "g");
        kc.session_timeout_ms = 4000000; /* above librdkafka's maximum (1 h) */
        ck_assert_ptr_null(
            cm_kafka_consumer_new(&kc, NULL, NULL, errstr, sizeof(errstr)));
        ck_assert_msg(strstr(errstr, "session.timeout.ms"), "%s", errstr);

        kc = conf_for(bootstraps, "g");
        kc.assignment_strategy = "range,cooperative-sticky";
        ck_assert_ptr_null(
            cm_kafka_consumer_new(&kc, NULL, NULL, errstr, sizeof(errstr)));
}
END_TEST

START_TEST(test_conf_from_config)
{
        cm_config_t conf;
        cm_kafka_conf_t kc;

        memset(&conf, 0, sizeof(conf));
        conf.kafka.bootstrap_servers = "b:9092";
        conf.kafka.client_id = "cm-worker";
        conf.kafka.assignment_strategy = "range";
        conf.kafka.session_timeout_ms = 7000;
        conf.kafka.message_timeout_ms = 9000;
        cm_kafka_conf_from_config(&kc, &conf, "cm-worker");
        ck_assert_str_eq(kc.bootstrap_servers, "b:9092");
        ck_assert_str_eq(kc.client_id, "cm-worker");
        ck_assert_str_eq(kc.group_id, "cm-worker");
        ck_assert_str_eq(kc.assignment_strategy, "range");
        ck_assert_int_eq(kc.session_timeout_ms, 7000);
        ck_assert_int_eq(kc.message_timeout_ms, 9000);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("kafka");
        TCase *pure = tcase_create("pure");
        TCase *mock = tcase_create("mock");

        tcase_add_test(pure, test_murmur2_java_vectors);
        tcase_add_test(pure, test_conf_from_config);
        suite_add_tcase(s, pure);

        tcase_add_checked_fixture(mock, setup, teardown);
        tcase_set_timeout(mock, 90);
        tcase_add_test(mock, test_key_partition_matches_murmur2);
        tcase_add_test(mock, test_produce_delivery_reports);
        tcase_add_test(mock, test_idempotent_retries_keep_order);
        tcase_add_test(mock, test_produce_sync_unreachable);
        tcase_add_test(mock, test_destroy_reports_undelivered);
        tcase_add_test(mock, test_headers_round_trip);
        tcase_add_test(mock, test_commit_survives_restart);
        tcase_add_test(mock, test_group_splits_partitions);
        tcase_add_test(mock, test_ready);
        tcase_add_test(mock, test_unreachable_not_ready_in_time);
        tcase_add_test(mock, test_conf_errors_name_the_key);
        suite_add_tcase(s, mock);

        return cm_check_run(s);
}
