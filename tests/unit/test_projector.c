/*
 * test_projector.c - cm/projector.h: what an event writes into the read model, the event
 * as JSON, the time format; and the consumer's start offsets (cm/kafka.h) that
 * cm-projector relies on, against an in-process mock cluster.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "cm/kafka.h"
#include "cm/projector.h"
#include "../check_main.h"

static cm_spec_t *make_spec(int nodes)
{
        cm_spec_t *s = calloc(1, sizeof(*s));
        ck_assert_int_eq(cm_spec_init_defaults(s), 0);
        s->name = strdup("prod");
        s->ssh_user = strdup("root");
        s->manager_address = strdup("10.9.9.9");
        s->cluster_domain = strdup("cluster.local");
        s->nodes = calloc((size_t)nodes, sizeof(cm_node_t));
        s->node_count = (size_t)nodes;
        for (int i = 0; i < nodes; i++) {
                s->nodes[i].name = strdup(i ? "w" : "cp");
                s->nodes[i].address = strdup(i ? "10.0.0.2" : "10.0.0.1");
                s->nodes[i].roles = calloc(1, sizeof(char *));
                s->nodes[i].roles[0] = strdup(i ? "worker" : "controlplane");
                s->nodes[i].role_count = 1;
        }
        return s;
}

static void fill(cm_cluster_event_t *ev, int64_t seq, const char *type, const char *to)
{
        memset(ev, 0, sizeof(*ev));
        ev->cluster = strdup("prod");
        ev->seq = seq;
        ev->event_id = strdup("0b5c7c1e-2f6f-4a8b-a0f6-3b0f3c8d2a10");
        ev->type = strdup(type);
        ev->to_state = to ? strdup(to) : NULL;
        ev->at = 1767225600999LL;
        ev->actor.name = strdup("alice");
        ev->actor.role = strdup("admin");
}

START_TEST(test_time_format)
{
        char buf[32];
        ck_assert_int_eq(cm_time_format_ms(1767225600999LL, buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "2026-01-01T00:00:00.999Z");
        ck_assert_int_eq(cm_time_format_ms(0, buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
        ck_assert_int_eq(cm_time_format_ms(-1, buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "1969-12-31T23:59:59.999Z");
        ck_assert_int_eq(cm_time_format_ms(INT64_MAX, buf, sizeof(buf)), -1);
        ck_assert_int_eq(cm_time_format_ms(INT64_MIN, buf, sizeof(buf)), -1);
        ck_assert_int_eq(cm_time_format_ms(0, buf, 10), -1);
}
END_TEST

START_TEST(test_create_event)
{
        cm_cluster_event_t ev;
        cm_projection_t p;
        char err[256];
        fill(&ev, 1, "CreateRequested", "Creating");
        ev.command_id = strdup("cmd-1");
        ev.spec = make_spec(2);
        ck_assert_int_eq(cm_projection_from_event(&p, &ev, err, sizeof(err)), 0);
        ck_assert_int_eq(p.kind, CM_PROJECTION_CLUSTER);
        ck_assert_str_eq(p.state, "Creating");
        ck_assert_int_eq(p.ready, 0);
        ck_assert_int_eq(p.starts_cluster, 1);
        ck_assert_int_eq(p.clears_error, 0);
        ck_assert_str_eq(p.seq_text, "1");
        ck_assert_str_eq(p.node_count_text, "2");
        ck_assert_str_eq(p.command_id, "cmd-1");
        ck_assert_str_eq(p.at_text, "2026-01-01T00:00:00.999Z");
        ck_assert_ptr_nonnull(strstr(p.spec_json, "\"clusterDomain\":\"cluster.local\""));

        json_error_t jerr;
        json_t *j = json_loads(p.payload_json, 0, &jerr);
        ck_assert_ptr_nonnull(j);
        ck_assert_str_eq(json_string_value(json_object_get(j, "type")),
                         "CreateRequested");
        ck_assert_int_eq(json_integer_value(json_object_get(j, "seq")), 1);
        ck_assert_str_eq(json_string_value(json_object_get(j, "at")),
                         "2026-01-01T00:00:00.999Z");
        ck_assert_str_eq(
            json_string_value(json_object_get(json_object_get(j, "actor"), "role")),
            "admin");
        ck_assert_int_eq(
            json_array_size(json_object_get(json_object_get(j, "spec"), "nodes")), 2);
        ck_assert_ptr_null(json_object_get(j, "fromState")); /* absent: left out */
        ck_assert_ptr_null(json_object_get(j, "jobId"));
        ck_assert_ptr_null(strstr(p.payload_json, "sshKey"));
        json_decref(j);
        cm_projection_destroy(&p);
        cm_cluster_event_destroy(&ev);
}
END_TEST

START_TEST(test_running_without_spec)
{
        cm_cluster_event_t ev;
        cm_projection_t p;
        char err[256];
        fill(&ev, 4, "ProbeSucceeded", "Running");
        ck_assert_int_eq(cm_projection_from_event(&p, &ev, err, sizeof(err)), 0);
        ck_assert_int_eq(p.ready, 1);
        ck_assert_int_eq(p.clears_error, 1);
        ck_assert_int_eq(p.starts_cluster, 0);
        ck_assert_ptr_null(p.spec_json); /* keep the row's spec */
        ck_assert_str_eq(p.node_count_text, "");
        ck_assert_ptr_null(p.command_id);
        cm_projection_destroy(&p);
        cm_cluster_event_destroy(&ev);

        fill(&ev, 3, "ProbeFailed", "Unreachable");
        ck_assert_int_eq(cm_projection_from_event(&p, &ev, err, sizeof(err)), 0);
        ck_assert_int_eq(p.ready, 1);
        ck_assert_int_eq(p.clears_error, 0);
        cm_projection_destroy(&p);
        cm_cluster_event_destroy(&ev);
}
END_TEST

START_TEST(test_rejections)
{
        cm_cluster_event_t ev;
        cm_projection_t p;
        char err[256];
        fill(&ev, 0, "CommandRejected", NULL);
        ev.command_id = strdup("cmd-9");
        ev.error = strdup("cluster \"prod\" can't be updated while Creating");
        ck_assert_int_eq(cm_projection_from_event(&p, &ev, err, sizeof(err)), 0);
        ck_assert_int_eq(p.kind, CM_PROJECTION_REJECTION);
        ck_assert_str_eq(p.code, "conflict");
        ck_assert_str_eq(p.message, ev.error);
        ck_assert_ptr_null(p.payload_json);
        cm_projection_destroy(&p);
        free(ev.type);
        ev.type = strdup("CommandInvalid");
        ck_assert_int_eq(cm_projection_from_event(&p, &ev, err, sizeof(err)), 0);
        ck_assert_str_eq(p.code, "invalid");
        cm_projection_destroy(&p);
        free(ev.command_id);
        ev.command_id = NULL;
        ck_assert_int_eq(cm_projection_from_event(&p, &ev, err, sizeof(err)), -1);
        ck_assert_ptr_nonnull(strstr(err, "commandId"));
        cm_cluster_event_destroy(&ev);
}
END_TEST

START_TEST(test_errors_name_field_and_value)
{
        cm_cluster_event_t ev;
        cm_projection_t p;
        char err[256];
        fill(&ev, 2, "JobSucceeded", "Bogus");
        ck_assert_int_eq(cm_projection_from_event(&p, &ev, err, sizeof(err)), -1);
        ck_assert_ptr_nonnull(strstr(err, "toState: \"Bogus\""));
        cm_cluster_event_destroy(&ev);

        fill(&ev, 2, "JobSucceeded", NULL);
        ck_assert_int_eq(cm_projection_from_event(&p, &ev, err, sizeof(err)), -1);
        ck_assert_ptr_nonnull(strstr(err, "toState"));
        cm_cluster_event_destroy(&ev);

        fill(&ev, -3, "JobSucceeded", "Running");
        ck_assert_int_eq(cm_projection_from_event(&p, &ev, err, sizeof(err)), -1);
        ck_assert_ptr_nonnull(strstr(err, "seq: -3"));
        cm_cluster_event_destroy(&ev);

        fill(&ev, 0, "JobSucceeded", "Running");
        ev.command_id = strdup("c");
        ck_assert_int_eq(cm_projection_from_event(&p, &ev, err, sizeof(err)), -1);
        ck_assert_ptr_nonnull(strstr(err, "type: \"JobSucceeded\" with seq 0"));
        cm_cluster_event_destroy(&ev);

        fill(&ev, 1, "CreateRequested", "Creating");
        ev.at = INT64_MAX;
        ck_assert_int_eq(cm_projection_from_event(&p, &ev, err, sizeof(err)), -1);
        ck_assert_ptr_nonnull(strstr(err, "at: "));
        cm_cluster_event_destroy(&ev);

        fill(&ev, 1, "CreateRequested", "Creating");
        free(ev.error);
        ev.error = strdup("bad \xff utf-8");
        ck_assert_int_eq(cm_projection_from_event(&p, &ev, err, sizeof(err)), -1);
        ck_assert_ptr_nonnull(strstr(err, "UTF-8"));
        cm_cluster_event_destroy(&ev);

        fill(&ev, 1, "CreateRequested", "Creating");
        free(ev.cluster);
        ev.cluster = strdup("");
        ck_assert_int_eq(cm_projection_from_event(&p, &ev, err, sizeof(err)), -1);
        ck_assert_ptr_nonnull(strstr(err, "cluster: empty"));
        cm_cluster_event_destroy(&ev);
}
END_TEST

/* ------------------------------------------------------- consumer start offsets */

static int64_t want_offset;
static int start_calls;

static int start_cb(const cm_kafka_partition_t *parts, size_t cnt, int64_t *offsets,
                    void *opaque)
{
        (void)opaque;
        start_calls++;
        for (size_t i = 0; i < cnt; i++) {
                ck_assert_int_eq(offsets[i], CM_KAFKA_OFFSET_COMMITTED);
                ck_assert_str_eq(parts[i].topic, "t");
                offsets[i] = want_offset;
        }
        return 0;
}

static int fail_cb(const cm_kafka_partition_t *parts, size_t cnt, int64_t *offsets,
                   void *opaque)
{
        (void)parts, (void)cnt, (void)offsets, (void)opaque;
        start_calls++;
        return -1;
}

/* Reads from a fresh group with the callback; returns the first offset read (-1: none).
 */
static int64_t first_offset(const char *bootstrap, const char *group,
                            cm_kafka_start_offsets_cb_t *cb, int timeout_ms)
{
        cm_kafka_conf_t kc = {.bootstrap_servers = bootstrap,
                              .group_id = group,
                              .session_timeout_ms = 6000};
        char err[512];
        const char *topic = "t";
        cm_kafka_consumer_t *c = cm_kafka_consumer_new(&kc, NULL, NULL, err, sizeof(err));
        int64_t got = -1, high = -1;
        ck_assert_msg(c, "%s", err);
        cm_kafka_consumer_set_start_offsets(c, cb, NULL);
        ck_assert_int_eq(cm_kafka_consumer_subscribe(c, &topic, 1, err, sizeof(err)), 0);
        for (int waited = 0; waited < timeout_ms && got < 0; waited += 200) {
                cm_kafka_message_t *m = NULL;
                if (cm_kafka_consumer_poll(c, 200, &m, err, sizeof(err)) == CM_KAFKA_OK &&
                    m) {
                        got = m->offset;
                        cm_kafka_consumer_watermarks(c, "t", 0, NULL, &high);
                        ck_assert_int_eq(high, 10);
                        cm_kafka_message_destroy(m);
                }
        }
        cm_kafka_consumer_destroy(c);
        return got;
}

START_TEST(test_start_offsets)
{
        char err[512], bootstrap[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        ck_assert_msg(rk, "%s", err);
        rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
        ck_assert_int_eq(rd_kafka_mock_topic_create(mc, "t", 1, 1), 0);
        snprintf(bootstrap, sizeof(bootstrap), "%s",
                 rd_kafka_mock_cluster_bootstraps(mc));

        cm_kafka_conf_t kc = {.bootstrap_servers = bootstrap};
        cm_kafka_producer_t *p = cm_kafka_producer_new(&kc, NULL, NULL, err, sizeof(err));
        ck_assert_msg(p, "%s", err);
        for (int i = 0; i < 10; i++)
                ck_assert_int_eq(cm_kafka_produce_sync(p, "t", "k", 1, "v", 1, NULL, 0,
                                                       10000, NULL, NULL, err,
                                                       sizeof(err)),
                                 CM_KAFKA_OK);
        cm_kafka_producer_destroy(p, 1000);

        want_offset = 7;
        ck_assert_int_eq(first_offset(bootstrap, "g1", start_cb, 15000), 7);
        ck_assert_int_eq(start_calls, 1);
        want_offset = CM_KAFKA_OFFSET_BEGINNING;
        ck_assert_int_eq(first_offset(bootstrap, "g2", start_cb, 15000), 0);
        /* a failing callback: nothing is read from an unknown position */
        start_calls = 0;
        ck_assert_int_eq(first_offset(bootstrap, "g3", fail_cb, 5000), -1);
        ck_assert_int_ge(start_calls, 1);

        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("projector");
        TCase *tc = tcase_create("projection");
        tcase_add_test(tc, test_time_format);
        tcase_add_test(tc, test_create_event);
        tcase_add_test(tc, test_running_without_spec);
        tcase_add_test(tc, test_rejections);
        tcase_add_test(tc, test_errors_name_field_and_value);
        suite_add_tcase(s, tc);
        TCase *kafka = tcase_create("start_offsets");
        tcase_set_timeout(kafka, 90);
        tcase_add_test(kafka, test_start_offsets);
        suite_add_tcase(s, kafka);
        return cm_check_run(s);
}
