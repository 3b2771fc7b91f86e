/* test_spec.c - cm_spec: defaults, JSON in and out, structural errors, copy/destroy. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cm/spec.h"
#include "../check_main.h"

static const char *FULL_JSON =
    "{\"name\":\"prod\",\"sshUser\":\"zcloud\",\"sshPort\":2222,"
    "\"managerAddress\":\"10.0.0.1:8090\",\"clusterDomain\":\"cluster.local\","
    "\"kubernetesVersion\":\"v1.29.1\",\"clusterCidr\":\"10.52.0.0/16\","
    "\"serviceCidr\":\"10.53.0.0/16\",\"clusterDNSServiceIP\":\"10.53.0.10\","
    "\"clusterUpstreamDNS\":[\"8.8.8.8\",\"1.1.1.1\"],\"network\":{\"plugin\":\"calico\"}"
    ","
    "\"nodes\":[{\"name\":\"m1\",\"address\":\"10.0.0.11\",\"roles\":[\"controlplane\","
    "\"etcd\"]},{\"name\":\"w1\",\"address\":\"10.0.0.21\",\"roles\":[\"worker\"]}]}";

static json_t *parse(const char *text)
{
        json_error_t jerr;
        json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
        ck_assert_msg(j != NULL, "test JSON does not parse: %s: %s", jerr.text, text);
        return j;
}

/* Parses text into spec; returns the from_json result. errs is filled. */
static int from_text(cm_spec_t *spec, const char *text, cm_field_errors_t *errs)
{
        json_t *j = parse(text);
        int r = cm_spec_from_json(spec, j, errs);
        json_decref(j);
        return r;
}

/* Index of the error on field, or -1. */
static int find_err(const cm_field_errors_t *errs, const char *field)
{
        for (size_t i = 0; i < errs->count; i++)
                if (strcmp(errs->items[i].field, field) == 0)
                        return (int)i;
        return -1;
}

static void assert_err(const cm_field_errors_t *errs, const char *field,
                       const char *message)
{
        int i = find_err(errs, field);
        ck_assert_msg(i >= 0, "no error on field %s (%zu errors)", field, errs->count);
        ck_assert_str_eq(errs->items[i].message, message);
}

START_TEST(test_defaults)
{
        cm_spec_t s;
        ck_assert_int_eq(cm_spec_init_defaults(&s), 0);
        ck_assert_int_eq(s.ssh_port, 22);
        ck_assert_str_eq(s.kubernetes_version, "v1.28.15");
        ck_assert_str_eq(s.cluster_cidr, "10.42.0.0/16");
        ck_assert_str_eq(s.service_cidr, "10.43.0.0/16");
        ck_assert_str_eq(s.cluster_dns_service_ip, "10.43.0.10");
        ck_assert_str_eq(s.network_plugin, "flannel");
        ck_assert_ptr_null(s.name);
        ck_assert_ptr_null(s.ssh_user);
        ck_assert_ptr_null(s.manager_address);
        ck_assert_ptr_null(s.cluster_domain);
        ck_assert_uint_eq(s.cluster_upstream_dns_count, 0);
        ck_assert_uint_eq(s.node_count, 0);
        cm_spec_destroy(&s);
        ck_assert_ptr_null(s.kubernetes_version);
        cm_spec_destroy(&s); /* safe on a zeroed spec */
}
END_TEST

START_TEST(test_from_json_minimal_keeps_defaults)
{
        cm_spec_t s;
        cm_field_errors_t errs = {0};
        ck_assert_int_eq(
            from_text(&s,
                      "{\"name\":\"a\",\"sshUser\":\"u\",\"sshKey\":\"secret\","
                      "\"singleCloudAddress\":\"10.0.0.1\",\"clusterDomain\":"
                      "\"c.local\",\"sshPort\":null,\"network\":{},"
                      "\"nodes\":[]}",
                      &errs),
            0);
        ck_assert_uint_eq(errs.count, 0);
        ck_assert_str_eq(s.name, "a");
        ck_assert_str_eq(s.manager_address, "10.0.0.1"); /* the seed's alias */
        ck_assert_int_eq(s.ssh_port, 22);
        ck_assert_str_eq(s.network_plugin, "flannel");
        ck_assert_str_eq(s.cluster_cidr, "10.42.0.0/16");
        ck_assert_uint_eq(s.node_count, 0);
        cm_spec_destroy(&s);
}
END_TEST

START_TEST(test_full_round_trip)
{
        cm_spec_t s, s2;
        cm_field_errors_t errs = {0};
        ck_assert_int_eq(from_text(&s, FULL_JSON, &errs), 0);
        ck_assert_uint_eq(errs.count, 0);
        ck_assert_str_eq(s.name, "prod");
        ck_assert_str_eq(s.ssh_user, "zcloud");
        ck_assert_int_eq(s.ssh_port, 2222);
        ck_assert_str_eq(s.manager_address, "10.0.0.1:8090");
        ck_assert_str_eq(s.cluster_domain, "cluster.local");
        ck_assert_str_eq(s.kubernetes_version, "v1.29.1");
        ck_assert_str_eq(s.cluster_cidr, "10.52.0.0/16");
        ck_assert_str_eq(s.service_cidr, "10.53.0.0/16");
        ck_assert_str_eq(s.cluster_dns_service_ip, "10.53.0.10");
        ck_assert_uint_eq(s.cluster_upstream_dns_count, 2);
        ck_assert_str_eq(s.cluster_upstream_dns[0], "8.8.8.8");
        ck_assert_str_eq(s.cluster_upstream_dns[1], "1.1.1.1");
        ck_assert_str_eq(s.network_plugin, "calico");
        ck_assert_uint_eq(s.node_count, 2);
        ck_assert_str_eq(s.nodes[0].name, "m1");
        ck_assert_str_eq(s.nodes[0].address, "10.0.0.11");
        ck_assert_uint_eq(s.nodes[0].role_count, 2);
        ck_assert_str_eq(s.nodes[0].roles[0], "controlplane");
        ck_assert_str_eq(s.nodes[0].roles[1], "etcd");
        ck_assert_str_eq(s.nodes[1].roles[0], "worker");

        /* spec -> JSON is the same document (canonical key names) */
        json_t *out = cm_spec_to_json(&s);
        ck_assert_ptr_nonnull(out);
        json_t *in = parse(FULL_JSON);
        ck_assert_msg(json_equal(out, in), "to_json differs from the input");

        /* and JSON -> spec again gives an equal spec */
        ck_assert_int_eq(cm_spec_from_json(&s2, out, &errs), 0);
        ck_assert(cm_spec_equal(&s, &s2));
        free(s2.nodes[1].roles[0]);
        s2.nodes[1].roles[0] = strdup("etcd");
        ck_assert(!cm_spec_equal(&s, &s2));
        json_decref(in);
        json_decref(out);
        cm_spec_destroy(&s);
        cm_spec_destroy(&s2);
}
END_TEST

START_TEST(test_to_json_no_secret_and_unset_left_out)
{
        cm_spec_t s;
        cm_field_errors_t errs = {0};
        ck_assert_int_eq(
            from_text(&s,
                      "{\"name\":\"a\",\"sshKey\":\"-----BEGIN OPENSSH PRIVATE "
                      "KEY-----\\nAAAA\\n\",\"nodes\":[{\"name\":\"n\"}]}",
                      &errs),
            0);
        json_t *out = cm_spec_to_json(&s);
        char *text = json_dumps(out, JSON_COMPACT);
        ck_assert_ptr_null(strstr(text, "sshKey"));
        ck_assert_ptr_null(strstr(text, "PRIVATE"));
        ck_assert_ptr_null(json_object_get(out, "sshUser"));
        ck_assert_ptr_null(json_object_get(out, "managerAddress"));
        ck_assert_int_eq(json_integer_value(json_object_get(out, "sshPort")), 22);
        json_t *node = json_array_get(json_object_get(out, "nodes"), 0);
        ck_assert_ptr_null(json_object_get(node, "address"));
        ck_assert_uint_eq(json_array_size(json_object_get(node, "roles")), 0);
        free(text);
        json_decref(out);
        cm_spec_destroy(&s);
}
END_TEST

START_TEST(test_type_errors)
{
        cm_spec_t s;
        cm_field_errors_t errs = {0};
        ck_assert_int_eq(
            from_text(&s,
                      "{\"name\":5,\"sshUser\":true,\"sshPort\":\"abc\","
                      "\"managerAddress\":[1],\"clusterDomain\":{\"a\":1},"
                      "\"kubernetesVersion\":1.5,\"clusterCidr\":false,"
                      "\"serviceCidr\":[],\"clusterDNSServiceIP\":10,"
                      "\"clusterUpstreamDNS\":\"8.8.8.8\",\"network\":\"calico\","
                      "\"nodes\":{\"name\":\"x\"}}",
                      &errs),
            -1);
        assert_err(&errs, "name", "expected a string, got 5");
        assert_err(&errs, "sshUser", "expected a string, got true");
        assert_err(&errs, "sshPort", "expected an integer, got \"abc\"");
        assert_err(&errs, "managerAddress", "expected a string, got [1]");
        assert_err(&errs, "clusterDomain", "expected a string, got {\"a\":1}");
        assert_err(&errs, "kubernetesVersion", "expected a string, got 1.5");
        assert_err(&errs, "clusterCidr", "expected a string, got false");
        assert_err(&errs, "serviceCidr", "expected a string, got []");
        assert_err(&errs, "clusterDNSServiceIP", "expected a string, got 10");
        assert_err(&errs, "clusterUpstreamDNS",
                   "expected an array of strings, got \"8.8.8.8\"");
        assert_err(&errs, "network", "expected an object, got \"calico\"");
        assert_err(&errs, "nodes", "expected an array of objects, got {\"name\":\"x\"}");
        ck_assert_uint_eq(errs.count, 12);
        /* wrong values leave the defaults in place */
        ck_assert_int_eq(s.ssh_port, 22);
        ck_assert_str_eq(s.network_plugin, "flannel");
        ck_assert_ptr_null(s.name);
        cm_field_errors_clear(&errs);
        ck_assert_uint_eq(errs.count, 0);
        cm_spec_destroy(&s);
}
END_TEST

START_TEST(test_nested_type_errors)
{
        cm_spec_t s;
        cm_field_errors_t errs = {0};
        ck_assert_int_eq(
            from_text(&s,
                      "{\"sshPort\":22.0,\"clusterUpstreamDNS\":[\"8.8.8.8\",7,null],"
                      "\"network\":{\"plugin\":3},"
                      "\"nodes\":[{\"name\":1,\"address\":\"a\",\"roles\":\"worker\"},"
                      "\"n2\",{\"roles\":[\"etcd\",{}]}]}",
                      &errs),
            -1);
        assert_err(&errs, "sshPort", "expected an integer, got 22.0");
        assert_err(&errs, "clusterUpstreamDNS[1]", "expected a string, got 7");
        assert_err(&errs, "clusterUpstreamDNS[2]", "expected a string, got null");
        assert_err(&errs, "network.plugin", "expected a string, got 3");
        assert_err(&errs, "nodes[0].name", "expected a string, got 1");
        assert_err(&errs, "nodes[0].roles",
                   "expected an array of strings, got \"worker\"");
        assert_err(&errs, "nodes[1]", "expected an object, got \"n2\"");
        assert_err(&errs, "nodes[2].roles[1]", "expected a string, got {}");
        ck_assert_uint_eq(errs.count, 8);
        /* the good parts were kept, indexes follow the request */
        ck_assert_uint_eq(s.cluster_upstream_dns_count, 1);
        ck_assert_uint_eq(s.node_count, 3);
        ck_assert_str_eq(s.nodes[0].address, "a");
        ck_assert_ptr_null(s.nodes[1].name);
        ck_assert_uint_eq(s.nodes[2].role_count, 1);
        ck_assert_str_eq(s.nodes[2].roles[0], "etcd");
        cm_field_errors_clear(&errs);
        cm_spec_destroy(&s);
}
END_TEST

START_TEST(test_port_out_of_int_range)
{
        cm_spec_t s;
        cm_field_errors_t errs = {0};
        ck_assert_int_eq(from_text(&s, "{\"sshPort\":99999999999}", &errs), -1);
        assert_err(&errs, "sshPort", "out of range, got 99999999999");
        ck_assert_int_eq(s.ssh_port, 22);
        cm_spec_destroy(&s);
        cm_field_errors_clear(&errs);

        /* in int range but not a port: stored, left to validation */
        ck_assert_int_eq(from_text(&s, "{\"sshPort\":70000}", &errs), 0);
        ck_assert_int_eq(s.ssh_port, 70000);
        cm_spec_destroy(&s);
}
END_TEST

START_TEST(test_unknown_fields)
{
        cm_spec_t s;
        cm_field_errors_t errs = {0};
        ck_assert_int_eq(
            from_text(&s,
                      "{\"name\":\"a\",\"sshuser\":\"u\",\"state\":\"Running\","
                      "\"network\":{\"plugin\":\"calico\",\"mtu\":1400},"
                      "\"nodes\":[{\"name\":\"n0\",\"roles\":[]},"
                      "{\"name\":\"n1\",\"rolez\":[\"worker\"],\"port\":22}]}",
                      &errs),
            -1);
        assert_err(&errs, "sshuser", "unknown field");
        assert_err(&errs, "state", "unknown field");
        assert_err(&errs, "network.mtu", "unknown field");
        assert_err(&errs, "nodes[1].rolez", "unknown field");
        assert_err(&errs, "nodes[1].port", "unknown field");
        ck_assert_uint_eq(errs.count, 5);
        /* collected in document order */
        ck_assert_str_eq(errs.items[0].field, "sshuser");
        ck_assert_str_eq(errs.items[4].field, "nodes[1].port");
        /* known fields around them were read */
        ck_assert_str_eq(s.name, "a");
        ck_assert_str_eq(s.network_plugin, "calico");
        ck_assert_str_eq(s.nodes[1].name, "n1");
        cm_field_errors_clear(&errs);
        cm_spec_destroy(&s);
}
END_TEST

START_TEST(test_unknown_field_long_key_cut)
{
        cm_spec_t s;
        cm_field_errors_t errs = {0};
        char text[1200];
        char key[1001];
        memset(key, 'k', 1000);
        key[1000] = '\0';
        snprintf(text, sizeof(text), "{\"%s\":1}", key);
        ck_assert_int_eq(from_text(&s, text, &errs), -1);
        ck_assert_uint_eq(errs.count, 1);
        ck_assert_uint_eq(strlen(errs.items[0].field), 64 + 3);
        ck_assert_str_eq(errs.items[0].message, "unknown field");
        cm_field_errors_clear(&errs);
        cm_spec_destroy(&s);
}
END_TEST

START_TEST(test_multiple_errors_collected)
{
        cm_spec_t s;
        cm_field_errors_t errs = {0};
        /* one type error, one unknown field, one nested of each kind: all four reported
         */
        ck_assert_int_eq(from_text(&s,
                                   "{\"sshPort\":\"abc\",\"bogus\":1,"
                                   "\"nodes\":[{\"name\":\"n\"},{\"address\":5,"
                                   "\"rolez\":[]}]}",
                                   &errs),
                         -1);
        ck_assert_uint_eq(errs.count, 4);
        ck_assert_str_eq(errs.items[0].field, "sshPort");
        ck_assert_str_eq(errs.items[1].field, "bogus");
        ck_assert_str_eq(errs.items[2].field, "nodes[1].address");
        ck_assert_str_eq(errs.items[3].field, "nodes[1].rolez");

        /* errs is appended to, never reset, by a second call */
        cm_spec_t s2;
        ck_assert_int_eq(from_text(&s2, "{\"x\":1}", &errs), -1);
        ck_assert_uint_eq(errs.count, 5);
        ck_assert_str_eq(errs.items[4].field, "x");

        json_t *arr = cm_field_errors_to_json(&errs);
        ck_assert_uint_eq(json_array_size(arr), 5);
        ck_assert_str_eq(
            json_string_value(json_object_get(json_array_get(arr, 0), "message")),
            "expected an integer, got \"abc\"");
        json_decref(arr);
        cm_field_errors_clear(&errs);
        cm_spec_destroy(&s);
        cm_spec_destroy(&s2);
}
END_TEST

START_TEST(test_long_value_cut)
{
        cm_spec_t s;
        cm_field_errors_t errs = {0};
        char text[600];
        char val[501];
        memset(val, 'v', 500);
        val[500] = '\0';
        snprintf(text, sizeof(text), "{\"sshPort\":\"%s\"}", val);
        ck_assert_int_eq(from_text(&s, text, &errs), -1);
        ck_assert_uint_eq(errs.count, 1);
        ck_assert(strlen(errs.items[0].message) < 100);
        ck_assert_ptr_nonnull(strstr(errs.items[0].message, "got \"vvvv"));
        ck_assert_ptr_nonnull(strstr(errs.items[0].message, "..."));
        cm_field_errors_clear(&errs);
        cm_spec_destroy(&s);
}
END_TEST

/* A cut never splits a character: the 400 body is JSON, and JSON strings are UTF-8. */
START_TEST(test_cut_keeps_utf8_whole)
{
        cm_spec_t s;
        cm_field_errors_t errs = {0};
        /* "a" then 70 two-byte characters: a cut at 64 bytes would fall inside one */
        char many[160] = "a";
        for (int i = 0; i < 70; i++)
                strcat(many, "\u00e9");
        char text[1200];
        snprintf(text, sizeof(text),
                 "{\"%s\":1,\"sshPort\":[\"%s\"],\"network\":{\"%s\":2}}", many, many,
                 many);
        ck_assert_int_eq(from_text(&s, text, &errs), -1);
        ck_assert_uint_eq(errs.count, 3);
        json_t *arr = cm_field_errors_to_json(&errs);
        ck_assert_ptr_nonnull(arr);
        ck_assert_uint_eq(json_array_size(arr), 3);
        const char *f0 =
            json_string_value(json_object_get(json_array_get(arr, 0), "field"));
        /* "a" + 31 whole characters (63 bytes), then "..." */
        ck_assert_uint_eq(strlen(f0), 63 + 3);
        ck_assert_str_eq(f0 + 63, "...");
        ck_assert_ptr_nonnull(strstr(errs.items[1].message, "..."));
        json_decref(arr);
        cm_field_errors_clear(&errs);
        cm_spec_destroy(&s);
}
END_TEST

START_TEST(test_manager_address_alias)
{
        cm_spec_t s;
        cm_field_errors_t errs = {0};
        ck_assert_int_eq(
            from_text(&s, "{\"managerAddress\":\"m\",\"singleCloudAddress\":\"m\"}",
                      &errs),
            0);
        ck_assert_str_eq(s.manager_address, "m");
        cm_spec_destroy(&s);

        ck_assert_int_eq(
            from_text(&s, "{\"managerAddress\":\"m\",\"singleCloudAddress\":\"x\"}",
                      &errs),
            -1);
        assert_err(&errs, "singleCloudAddress",
                   "is another name for managerAddress and must match it: got \"x\" and "
                   "managerAddress \"m\"");
        ck_assert_uint_eq(errs.count, 1);
        cm_field_errors_clear(&errs);
        cm_spec_destroy(&s);

        ck_assert_int_eq(from_text(&s, "{\"singleCloudAddress\":7}", &errs), -1);
        assert_err(&errs, "singleCloudAddress", "expected a string, got 7");
        cm_field_errors_clear(&errs);
        cm_spec_destroy(&s);
}
END_TEST

START_TEST(test_ssh_key_any_type_skipped)
{
        cm_spec_t s;
        cm_field_errors_t errs = {0};
        ck_assert_int_eq(from_text(&s, "{\"sshKey\":{\"not\":\"checked here\"}}", &errs),
                         0);
        ck_assert_uint_eq(errs.count, 0);
        cm_spec_destroy(&s);
}
END_TEST

START_TEST(test_not_an_object_and_nul)
{
        cm_spec_t s;
        cm_field_errors_t errs = {0};
        ck_assert_int_eq(from_text(&s, "[1,2]", &errs), -1);
        assert_err(&errs, "$", "expected an object, got [1,2]");
        ck_assert_int_eq(s.ssh_port,
                         22); /* defaults still set, spec owned by the caller */
        cm_spec_destroy(&s);
        cm_field_errors_clear(&errs);

        /* a document parsed with JSON_ALLOW_NUL, or built in code */
        json_t *j = json_pack("{s:o}", "name", json_stringn("a\0b", 3));
        ck_assert_int_eq(cm_spec_from_json(&s, j, &errs), -1);
        json_decref(j);
        assert_err(&errs, "name", "must not contain a NUL character");
        cm_spec_destroy(&s);
        cm_field_errors_clear(&errs);
}
END_TEST

START_TEST(test_nodes_from_json)
{
        cm_node_t *nodes = NULL;
        size_t n = 0;
        cm_field_errors_t errs = {0};
        json_t *arr =
            parse("[{\"name\":\"a\",\"address\":\"1.2.3.4\",\"roles\":[\"worker\"]},"
                  "{\"name\":\"b\",\"address\":\"1.2.3.5\",\"roles\":[\"etcd\","
                  "\"controlplane\"]}]");
        ck_assert_int_eq(cm_nodes_from_json(&nodes, &n, arr, &errs), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_str_eq(nodes[1].roles[1], "controlplane");
        json_t *back = cm_nodes_to_json(nodes, n);
        ck_assert(json_equal(back, arr));
        json_decref(back);
        json_decref(arr);

        cm_node_t *copy = NULL;
        ck_assert_int_eq(cm_nodes_copy(&copy, nodes, n), 0);
        ck_assert(cm_nodes_equal(copy, n, nodes, n));
        ck_assert_ptr_ne(copy[0].name, nodes[0].name);
        cm_nodes_free(copy, n);
        cm_nodes_free(nodes, n);

        arr = parse("[{\"name\":\"a\",\"x\":1}, 3]");
        ck_assert_int_eq(cm_nodes_from_json(&nodes, &n, arr, &errs), -1);
        assert_err(&errs, "nodes[0].x", "unknown field");
        assert_err(&errs, "nodes[1]", "expected an object, got 3");
        ck_assert_uint_eq(n, 2);
        cm_nodes_free(nodes, n);
        json_decref(arr);
        cm_field_errors_clear(&errs);

        arr = parse("{\"nodes\":[]}");
        ck_assert_int_eq(cm_nodes_from_json(&nodes, &n, arr, &errs), -1);
        assert_err(&errs, "nodes", "expected an array of objects, got {\"nodes\":[]}");
        ck_assert_ptr_null(nodes);
        ck_assert_uint_eq(n, 0);
        json_decref(arr);
        cm_field_errors_clear(&errs);
}
END_TEST

START_TEST(test_copy_destroy)
{
        cm_spec_t s, c;
        cm_field_errors_t errs = {0};
        ck_assert_int_eq(from_text(&s, FULL_JSON, &errs), 0);
        ck_assert_int_eq(cm_spec_copy(&c, &s), 0);
        ck_assert(cm_spec_equal(&s, &c));
        /* deep: no string is shared */
        ck_assert_ptr_ne(c.name, s.name);
        ck_assert_ptr_ne(c.cluster_upstream_dns, s.cluster_upstream_dns);
        ck_assert_ptr_ne(c.cluster_upstream_dns[0], s.cluster_upstream_dns[0]);
        ck_assert_ptr_ne(c.nodes, s.nodes);
        ck_assert_ptr_ne(c.nodes[0].roles[0], s.nodes[0].roles[0]);
        cm_spec_destroy(&s); /* the copy outlives the original */
        ck_assert_str_eq(c.nodes[0].roles[1], "etcd");
        ck_assert_str_eq(c.cluster_upstream_dns[1], "1.1.1.1");
        ck_assert_int_eq(c.ssh_port, 2222);

        /* a copy of a zeroed / partially set spec */
        cm_spec_t z = {0}, zc;
        ck_assert_int_eq(cm_spec_copy(&zc, &z), 0);
        ck_assert(cm_spec_equal(&z, &zc));
        ck_assert_ptr_null(zc.nodes);
        cm_spec_destroy(&zc);
        cm_spec_destroy(&c);
}
END_TEST

static Suite *spec_suite(void)
{
        Suite *s = suite_create("spec");
        TCase *tc = tcase_create("spec");
        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_from_json_minimal_keeps_defaults);
        tcase_add_test(tc, test_full_round_trip);
        tcase_add_test(tc, test_to_json_no_secret_and_unset_left_out);
        tcase_add_test(tc, test_type_errors);
        tcase_add_test(tc, test_nested_type_errors);
        tcase_add_test(tc, test_port_out_of_int_range);
        tcase_add_test(tc, test_unknown_fields);
        tcase_add_test(tc, test_unknown_field_long_key_cut);
        tcase_add_test(tc, test_multiple_errors_collected);
        tcase_add_test(tc, test_long_value_cut);
        tcase_add_test(tc, test_cut_keeps_utf8_whole);
        tcase_add_test(tc, test_manager_address_alias);
        tcase_add_test(tc, test_ssh_key_any_type_skipped);
        tcase_add_test(tc, test_not_an_object_and_nul);
        tcase_add_test(tc, test_nodes_from_json);
        tcase_add_test(tc, test_copy_destroy);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return cm_check_run(spec_suite());
}
