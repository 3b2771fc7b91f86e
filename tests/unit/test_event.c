/*
 * test_event.c - cm.ClusterEvent round trips (with and without every optional field),
 * field errors and hostile input.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cm/avro.h"
#include "cm/event.h"
#include "cm/spec_avro.h"
#include "../check_main.h"

static cm_spec_t *make_spec(void)
{
        cm_spec_t *s = calloc(1, sizeof(*s));
        s->name = strdup("edge");
        s->ssh_user = strdup("root");
        s->ssh_port = 22;
        s->manager_address = strdup("10.9.9.9");
        s->cluster_domain = strdup("edge.local");
        s->kubernetes_version = strdup("v1.28.15");
        s->cluster_cidr = strdup("10.42.0.0/16");
        s->service_cidr = strdup("10.43.0.0/16");
        s->cluster_dns_service_ip = strdup("10.43.0.10");
        s->network_plugin = strdup("flannel"); /* no upstream DNS: empty array */
        s->nodes = calloc(2, sizeof(cm_node_t));
        s->node_count = 2;
        for (int i = 0; i < 2; i++) {
                s->nodes[i].name = strdup(i ? "w" : "cp");
                s->nodes[i].address = strdup(i ? "10.0.0.2" : "10.0.0.1");
                s->nodes[i].roles = calloc(2, sizeof(char *));
                s->nodes[i].roles[0] = strdup(i ? "worker" : "controlplane");
                s->nodes[i].role_count = 1;
                if (!i) {
                        s->nodes[i].roles[1] = strdup("etcd");
                        s->nodes[i].role_count = 2;
                }
        }
        return s;
}

static void fill_event(cm_cluster_event_t *ev, int full)
{
        memset(ev, 0, sizeof(*ev));
        ev->cluster = strdup("edge");
        ev->seq = full ? 5000000000LL : 1;
        ev->event_id = strdup("0b5c7c1e-2f6f-4a8b-a0f6-3b0f3c8d2a10");
        ev->type = strdup(full ? "ClusterUnavailable" : "ClusterCreating");
        ev->at = 1767225600999LL;
        ev->actor.name = strdup(full ? "cm-worker" : "alice");
        ev->actor.role = strdup(full ? "system" : "admin");
        if (full) {
                ev->command_id = strdup("cmd-1");
                ev->job_id = strdup("job-1");
                ev->from_state = strdup("Creating");
                ev->to_state = strdup("Unavailable");
                ev->spec = make_spec();
                ev->error = strdup("zke up failed on node \"w\": exit 1");
        }
}

static void assert_opt_str(const char *a, const char *b)
{
        if (!a || !b)
                ck_assert_ptr_eq(a, b);
        else
                ck_assert_str_eq(a, b);
}

static void assert_event_eq(const cm_cluster_event_t *a, const cm_cluster_event_t *b)
{
        ck_assert_str_eq(a->cluster, b->cluster);
        ck_assert_int_eq(a->seq, b->seq);
        ck_assert_str_eq(a->event_id, b->event_id);
        assert_opt_str(a->command_id, b->command_id);
        assert_opt_str(a->job_id, b->job_id);
        ck_assert_str_eq(a->type, b->type);
        assert_opt_str(a->from_state, b->from_state);
        assert_opt_str(a->to_state, b->to_state);
        ck_assert_int_eq(a->at, b->at);
        ck_assert_str_eq(a->actor.name, b->actor.name);
        ck_assert_str_eq(a->actor.role, b->actor.role);
        assert_opt_str(a->error, b->error);
        ck_assert_int_eq(!a->spec, !b->spec);
        if (!a->spec)
                return;
        const cm_spec_t *x = a->spec, *y = b->spec;
        ck_assert_str_eq(x->name, y->name);
        ck_assert_str_eq(x->ssh_user, y->ssh_user);
        ck_assert_int_eq(x->ssh_port, y->ssh_port);
        ck_assert_str_eq(x->manager_address, y->manager_address);
        ck_assert_str_eq(x->cluster_domain, y->cluster_domain);
        ck_assert_str_eq(x->kubernetes_version, y->kubernetes_version);
        ck_assert_str_eq(x->cluster_cidr, y->cluster_cidr);
        ck_assert_str_eq(x->service_cidr, y->service_cidr);
        ck_assert_str_eq(x->cluster_dns_service_ip, y->cluster_dns_service_ip);
        ck_assert_uint_eq(x->cluster_upstream_dns_count, y->cluster_upstream_dns_count);
        ck_assert_ptr_null(y->cluster_upstream_dns);
        ck_assert_str_eq(x->network_plugin, y->network_plugin);
        ck_assert_uint_eq(x->node_count, y->node_count);
        for (size_t i = 0; i < x->node_count; i++) {
                ck_assert_str_eq(x->nodes[i].name, y->nodes[i].name);
                ck_assert_str_eq(x->nodes[i].address, y->nodes[i].address);
                ck_assert_uint_eq(x->nodes[i].role_count, y->nodes[i].role_count);
                for (size_t r = 0; r < x->nodes[i].role_count; r++)
                        ck_assert_str_eq(x->nodes[i].roles[r], y->nodes[i].roles[r]);
        }
}

START_TEST(test_roundtrip)
{
        for (int full = 0; full < 2; full++) {
                cm_cluster_event_t ev, out;
                unsigned char *buf;
                size_t len;
                char err[512] = "";
                fill_event(&ev, full);
                ck_assert_msg(
                    cm_cluster_event_encode(&ev, &buf, &len, err, sizeof(err)) == 0, "%s",
                    err);
                ck_assert_msg(cm_cluster_event_decode(buf, len, &out, err, sizeof(err)) ==
                                  0,
                              "%s", err);
                assert_event_eq(&ev, &out);
                if (!full) {
                        ck_assert_ptr_null(out.command_id);
                        ck_assert_ptr_null(out.spec);
                        ck_assert_ptr_null(out.error);
                }
                cm_cluster_event_destroy(&out);
                cm_cluster_event_destroy(&ev);
                free(buf);
        }
}
END_TEST

START_TEST(test_encode_errors)
{
        cm_cluster_event_t ev;
        unsigned char *buf;
        size_t len;
        char err[512] = "";
        fill_event(&ev, 1);
        free(ev.spec->nodes[1].roles[0]);
        ev.spec->nodes[1].roles[0] = NULL;
        ck_assert_int_eq(cm_cluster_event_encode(&ev, &buf, &len, err, sizeof(err)),
                         CM_AVRO_ERR_INVALID);
        ck_assert_str_eq(
            err, "cm.ClusterEvent.spec.nodes[1].roles[0]: NULL string (required)");
        free(ev.type);
        ev.type = NULL;
        ck_assert_int_eq(cm_cluster_event_encode(&ev, &buf, &len, err, sizeof(err)),
                         CM_AVRO_ERR_INVALID);
        ck_assert_str_eq(err, "cm.ClusterEvent.type: NULL string (required)");
        cm_cluster_event_destroy(&ev);
}
END_TEST

START_TEST(test_decode_errors_and_noise)
{
        cm_cluster_event_t ev, out;
        unsigned char *buf;
        size_t len;
        char err[512] = "";
        fill_event(&ev, 1);
        ck_assert_int_eq(cm_cluster_event_encode(&ev, &buf, &len, err, sizeof(err)), 0);
        for (size_t n = 0; n < len; n++) {
                int rc = cm_cluster_event_decode(buf, n, &out, err, sizeof(err));
                ck_assert_int_eq(rc,
                                 n < 10 ? CM_AVRO_ERR_TOO_SHORT : CM_AVRO_ERR_MALFORMED);
                ck_assert_ptr_null(out.cluster);
        }
        unsigned int seed = 7;
        unsigned char *m = malloc(len);
        for (int round = 0; round < 3000; round++) {
                memcpy(m, buf, len);
                for (int k = 0; k < 3; k++)
                        m[10 + (size_t)rand_r(&seed) % (len - 10)] =
                            (unsigned char)rand_r(&seed);
                int rc = cm_cluster_event_decode(m, len, &out, err, sizeof(err));
                if (rc == 0)
                        cm_cluster_event_destroy(&out);
                else
                        ck_assert_msg(rc == CM_AVRO_ERR_MALFORMED ||
                                          rc == CM_AVRO_ERR_TRAILING ||
                                          rc == CM_AVRO_ERR_INVALID,
                                      "rc %d: %s", rc, err);
        }
        free(m);
        free(buf);
        cm_cluster_event_destroy(&ev);
}
END_TEST

/* The standalone cm.ClusterSpec and cm.Node schemas use the same conversions. */
START_TEST(test_standalone_spec_and_node)
{
        cm_cluster_event_t a = {0}, b = {0};
        avro_value_t v, out;
        unsigned char *buf;
        size_t len;
        char err[512] = "";
        a.spec = make_spec();
        b.spec = calloc(1, sizeof(cm_spec_t));
        ck_assert_int_eq(
            cm_avro_value_new(CM_AVRO_SCHEMA_CLUSTER_SPEC, &v, err, sizeof(err)), 0);
        ck_assert_msg(cm_spec_to_avro(a.spec, &v, err, sizeof(err)) == 0, "%s", err);
        ck_assert_int_eq(
            cm_avro_encode(CM_AVRO_SCHEMA_CLUSTER_SPEC, &v, &buf, &len, err, sizeof(err)),
            0);
        avro_value_decref(&v);
        ck_assert_msg(cm_avro_decode(buf, len, CM_AVRO_SCHEMA_CLUSTER_SPEC, &out, NULL,
                                     err, sizeof(err)) == 0,
                      "%s", err);
        ck_assert_msg(cm_spec_from_avro(b.spec, &out, err, sizeof(err)) == 0, "%s", err);
        avro_value_decref(&out);
        free(buf);
        a.cluster = b.cluster = a.event_id = b.event_id = a.type = b.type = "x";
        a.actor.name = b.actor.name = a.actor.role = b.actor.role = "x";
        assert_event_eq(&a, &b); /* compares every spec field */

        cm_node_t n;
        ck_assert_int_eq(cm_avro_value_new(CM_AVRO_SCHEMA_NODE, &v, err, sizeof(err)), 0);
        ck_assert_int_eq(cm_node_to_avro(&a.spec->nodes[0], &v, err, sizeof(err)), 0);
        ck_assert_int_eq(
            cm_avro_encode(CM_AVRO_SCHEMA_NODE, &v, &buf, &len, err, sizeof(err)), 0);
        avro_value_decref(&v);
        ck_assert_int_eq(
            cm_avro_decode(buf, len, CM_AVRO_SCHEMA_NODE, &out, NULL, err, sizeof(err)),
            0);
        ck_assert_int_eq(cm_node_from_avro(&n, &out, err, sizeof(err)), 0);
        ck_assert_str_eq(n.name, "cp");
        ck_assert_str_eq(n.address, "10.0.0.1");
        ck_assert_uint_eq(n.role_count, 2);
        ck_assert_str_eq(n.roles[1], "etcd");
        cm_node_destroy(&n);
        avro_value_decref(&out);
        free(buf);
        cm_spec_destroy(a.spec);
        cm_spec_destroy(b.spec);
        free(a.spec);
        free(b.spec);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("event");
        TCase *tc = tcase_create("core");
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_roundtrip);
        tcase_add_test(tc, test_encode_errors);
        tcase_add_test(tc, test_decode_errors_and_noise);
        tcase_add_test(tc, test_standalone_spec_and_node);
        suite_add_tcase(s, tc);
        return cm_check_run(s);
}
