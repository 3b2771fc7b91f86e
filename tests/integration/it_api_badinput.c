/*
 * it_api_badinput - cm-api facing bodies built to hurt it (the "bad input" part of the
 * robustness work): deeply nested JSON, a body over api.max_body_bytes, huge values and
 * a huge node list within the limit. Each is refused with a clear error (or answered)
 * promptly, and cm-api goes on serving. Own database, cm-devbroker and cm-api (it_setup).
 */
/* it_api.c's fixture: this test uses only part of its helpers */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "it_api_fixture.h"

/* POSTs body to /v1/clusters and checks status, error code and exact message. */
static void expect_refused(const char *body, size_t len, long status, const char *code,
                           const char *message)
{
        it_resp_t r = it_http("POST", "/v1/clusters", it_admin, NULL, body, len, NULL);
        ck_assert_msg(r.status == status, "status %ld, want %ld: %.300s", r.status,
                      status, r.body);
        json_t *j = it_json(&r);
        ck_assert_str_eq(it_error_code(j), code);
        if (message)
                ck_assert_str_eq(it_error_message(j), message);
        json_decref(j);
        it_resp_free(&r);
}

/* cm-api still answers a valid request (202: produced). */
static void expect_still_serving(const char *name)
{
        char *body = it_create_body(name, "");
        it_resp_t r = IT_SEND("POST", "/v1/clusters", it_admin, body);
        ck_assert_msg(r.status == 202, "%ld: %s", r.status, r.body);
        it_resp_free(&r);
        free(body);
}

static char *repeat(const char *unit, size_t times, const char *tail)
{
        size_t ul = strlen(unit), tl = strlen(tail);
        char *b = malloc(ul * times + tl + 1);
        for (size_t i = 0; i < times; i++)
                memcpy(b + i * ul, unit, ul);
        memcpy(b + ul * times, tail, tl + 1);
        return b;
}

START_TEST(test_deep_nesting_refused)
{
        const char *msg = "request body nests deeper than 64 levels";
        char *b = repeat("[", 100000, "");
        expect_refused(b, strlen(b), 400, "malformed", msg);
        free(b);
        b = repeat("{\"a\":", 100000, "1");
        expect_refused(b, strlen(b), 400, "malformed", msg);
        free(b);

        /* exactly 64 levels is JSON cm-api reads: the field is then named */
        char *inner = repeat("[", 63, "");
        char *body = NULL;
        ck_assert(
            asprintf(&body, "{\"name\":\"deep\",\"x\":%s%.63s}", inner,
                     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
                     "]]]]]]") > 0);
        it_resp_t r = IT_SEND("POST", "/v1/clusters", it_admin, body);
        ck_assert_msg(r.status == 400, "%ld: %s", r.status, r.body);
        json_t *j = it_json(&r);
        ck_assert_str_eq(it_error_code(j), "bad_request");
        ck_assert_msg(it_has_field(j, "x"), "%s", r.body);
        json_decref(j);
        it_resp_free(&r);
        free(body);
        /* 65 levels is refused, before any parsing */
        ck_assert(asprintf(&body, "{\"x\":[%s]}", inner) > 0);
        expect_refused(body, strlen(body), 400, "malformed", msg);
        free(body);
        free(inner);

        /* brackets inside strings are text, not nesting */
        char *name = repeat("[", 5000, "");
        ck_assert(asprintf(&body, "{\"name\":\"%s\\\"{{\"}", name) > 0);
        r = IT_SEND("POST", "/v1/clusters", it_admin, body);
        ck_assert_msg(r.status == 422, "%ld: %.300s", r.status, r.body);
        ck_assert_msg(!strstr(r.body, "nests deeper"), "%.300s", r.body);
        it_resp_free(&r);
        free(body);
        free(name);
        expect_still_serving("after-deep");
}
END_TEST

START_TEST(test_huge_body_refused)
{
        size_t big = 8u << 20;
        char *huge = malloc(big);
        memset(huge, ' ', big);
        huge[0] = '{';
        huge[big - 1] = '}';
        long long t0 = it_now_ms();
        expect_refused(huge, big, 413, "too_large",
                       "request body is larger than 1048576 bytes");
        ck_assert_int_lt(it_now_ms() - t0, 20000);
        /* a huge body of JSON nesting is refused for its size first */
        memset(huge, '[', big);
        expect_refused(huge, big, 413, "too_large",
                       "request body is larger than 1048576 bytes");
        free(huge);
        expect_still_serving("after-huge");
}
END_TEST

/* Within the size limit, huge values and lists: answered at once, the error bounded. */
START_TEST(test_huge_values_answered_promptly)
{
        /* a 1,000,000-character name: named, quoted in part */
        char *name = repeat("a", 1000000, "");
        char *body = NULL;
        ck_assert(asprintf(&body, "{\"name\":\"%s\"}", name) > 0);
        it_resp_t r = IT_SEND("POST", "/v1/clusters", it_admin, body);
        ck_assert_msg(r.status == 422, "%ld", r.status);
        ck_assert_msg(strlen(r.body) < 8192, "an error of %zu bytes", strlen(r.body));
        json_t *j = it_json(&r);
        ck_assert(it_has_field(j, "name"));
        json_decref(j);
        it_resp_free(&r);
        free(body);
        free(name);

        /* 15,000 distinct nodes: validated in well under a second (was minutes) */
        size_t n = 15000, len = 0, first5 = 0;
        char *nodes = malloc(n * 80 + 1);
        for (size_t i = 0; i < n; i++) {
                len += (size_t)sprintf(
                    nodes + len,
                    "%s{\"name\":\"n%zu\",\"address\":\"10.%zu.%zu.%zu\","
                    "\"roles\":[\"worker\"]}",
                    i ? "," : "", i, (i >> 16) & 255, (i >> 8) & 255, i & 255);
                if (i == 4)
                        first5 = len;
        }
        ck_assert(
            asprintf(&body,
                     "{\"name\":\"many\",\"sshUser\":\"root\",\"managerAddress\":"
                     "\"10.9.0.1\",\"clusterDomain\":\"cluster.local\",\"nodes\":[%s]}",
                     nodes) > 0);
        ck_assert_int_lt(strlen(body), 1048576);
        long long t0 = it_now_ms();
        r = IT_SEND("POST", "/v1/clusters", it_admin, body);
        long long took = it_now_ms() - t0;
        ck_assert_msg(r.status == 422, "%ld: %.300s", r.status, r.body);
        j = it_json(&r);
        ck_assert(it_has_field(j, "sshKey")); /* and nothing about duplicates */
        ck_assert_msg(!strstr(r.body, "is also the address"), "%.300s", r.body);
        json_decref(j);
        it_resp_free(&r);
        ck_assert_msg(took < 10000, "15,000 nodes took %lld ms", took);
        free(body);

        /* the same nodes twice: every duplicate named, promptly */
        ck_assert(asprintf(&body, "{\"name\":\"many\",\"nodes\":[%s,%.*s]}", nodes,
                           (int)first5, nodes) > 0);
        t0 = it_now_ms();
        r = IT_SEND("POST", "/v1/clusters", it_admin, body);
        took = it_now_ms() - t0;
        ck_assert_msg(r.status == 422, "%ld: %.300s", r.status, r.body);
        ck_assert_msg(strstr(r.body, "10.0.0.0\\\" is also the address of nodes[0]"),
                      "%.300s", r.body);
        it_resp_free(&r);
        ck_assert_msg(took < 10000, "took %lld ms", took);
        free(body);
        free(nodes);
        expect_still_serving("after-values");
}
END_TEST

int main(void)
{
        it_api_begin();
        Suite *s = suite_create("api_badinput");
        TCase *tc = tcase_create("badinput");
        tcase_set_timeout(tc, 120);
        tcase_add_unchecked_fixture(tc, it_setup, NULL);
        tcase_add_test(tc, test_deep_nesting_refused);
        tcase_add_test(tc, test_huge_body_refused);
        tcase_add_test(tc, test_huge_values_answered_promptly);
        suite_add_tcase(s, tc);
        return it_api_run(s);
}
