/*
 * test_log.c - the JSON lines of cm_log(): fields, escaping, level filtering, secret
 * redaction and whole lines under concurrent writers. Output goes to a temporary file via
 * cm_log_set_fd.
 */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cm/log.h"
#include "../check_main.h"

static char cap_path[64];
static int cap_fd = -1;

static void cap_start(void)
{
        snprintf(cap_path, sizeof(cap_path), "/tmp/cm-log-XXXXXX");
        cap_fd = mkstemp(cap_path);
        ck_assert_int_ge(cap_fd, 0);
        cm_log_set_fd(cap_fd);
}

/* Everything logged since cap_start(); the caller frees it. */
static char *cap_text(void)
{
        off_t n = lseek(cap_fd, 0, SEEK_END);
        char *buf = malloc((size_t)n + 1);

        ck_assert_int_eq(pread(cap_fd, buf, (size_t)n, 0), n);
        buf[n] = '\0';
        return buf;
}

static void cap_stop(void)
{
        cm_log_set_fd(2);
        close(cap_fd);
        unlink(cap_path);
}

/* The lines logged, parsed; each must be a JSON object ending in a newline. */
static json_t *cap_lines(void)
{
        char *text = cap_text(), *line, *save = NULL;
        json_t *arr = json_array();
        json_error_t jerr;

        ck_assert_msg(text[0] == '\0' || text[strlen(text) - 1] == '\n',
                      "unterminated line");
        for (line = strtok_r(text, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                json_t *obj = json_loads(line, 0, &jerr);
                ck_assert_msg(obj != NULL, "not JSON (%s): %s", jerr.text, line);
                ck_assert(json_is_object(obj));
                json_array_append_new(arr, obj);
        }
        free(text);
        return arr;
}

/* The single line logged. */
static json_t *cap_one(void)
{
        json_t *arr = cap_lines(), *obj;

        ck_assert_int_eq(json_array_size(arr), 1);
        obj = json_incref(json_array_get(arr, 0));
        json_decref(arr);
        return obj;
}

static const char *field(json_t *obj, const char *key)
{
        json_t *v = json_object_get(obj, key);
        ck_assert_msg(v != NULL, "no field '%s'", key);
        ck_assert_msg(json_is_string(v), "field '%s' is not a string", key);
        return json_string_value(v);
}

START_TEST(test_fields)
{
        json_t *o;
        char *raw;
        struct tm tm = {0};
        int ms;

        cm_log_init("worker", CM_LOG_DEBUG);
        cap_start();
        /* the clock cm_log reads: time() may lag it by a tick (a coarse clock) */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        time_t before = ts.tv_sec;
        cm_log(CM_LOG_INFO, "command applied", "cluster", "prod", "seq", "4", "cause",
               NULL, NULL);
        clock_gettime(CLOCK_REALTIME, &ts);
        time_t after = ts.tv_sec;
        raw = cap_text();
        o = cap_one();

        /* order: time, level, component, msg, then the fields as given */
        ck_assert_msg(strncmp(raw, "{\"time\":\"", 9) == 0, "%s", raw);
        ck_assert_ptr_nonnull(strstr(raw,
                                     "\",\"level\":\"info\",\"component\":\"worker\","
                                     "\"msg\":\"command applied\",\"cluster\":\"prod\","
                                     "\"seq\":\"4\",\"cause\":null}\n"));

        const char *t = field(o, "time");
        ck_assert_int_eq(strlen(t), 24); /* 2026-11-21T12:00:00.123Z */
        ck_assert_ptr_nonnull(strptime(t, "%Y-%m-%dT%H:%M:%S", &tm));
        ck_assert_int_eq(sscanf(t + 19, ".%3dZ", &ms), 1);
        ck_assert_int_eq(t[23], 'Z');
        time_t logged = timegm(&tm);
        ck_assert(logged >= before && logged <= after);

        ck_assert_str_eq(field(o, "level"), "info");
        ck_assert_str_eq(field(o, "component"), "worker");
        ck_assert_str_eq(field(o, "msg"), "command applied");
        ck_assert_str_eq(field(o, "cluster"), "prod");
        ck_assert_str_eq(field(o, "seq"), "4");
        ck_assert(json_is_null(json_object_get(o, "cause")));
        json_decref(o);
        free(raw);
        cap_stop();
}
END_TEST

START_TEST(test_reserved_field_names)
{
        json_t *o;

        cm_log_init("api", CM_LOG_INFO);
        cap_start();
        cm_log_info("real", "msg", "fake", "level", "x");
        o = cap_one();
        ck_assert_str_eq(field(o, "msg"), "real");
        ck_assert_str_eq(field(o, "level"), "info");
        ck_assert_str_eq(field(o, "_msg"), "fake");
        ck_assert_str_eq(field(o, "_level"), "x");
        json_decref(o);
        cap_stop();
}
END_TEST

START_TEST(test_escaping)
{
        json_t *o;

        cm_log_init("a\"b", CM_LOG_INFO);
        cap_start();
        cm_log_info("q\" b\\ n\n r\r t\t c\x01\x1f d\x7f", "k\"ey",
                    "caf\xc3\xa9 \xe2\x9c\x93 "
                    "\xf0\x9f\x98\x80",
                    "bad",
                    "a\xff"
                    "b\xc3"
                    "c\xc0\xaf"
                    "d\xed\xa0\x80"
                    "e\xf4\x90\x80\x80"
                    "f");
        o = cap_one();
        ck_assert_str_eq(field(o, "component"), "a\"b");
        ck_assert_str_eq(field(o, "msg"), "q\" b\\ n\n r\r t\t c\x01\x1f d\x7f");
        /* valid UTF-8 passes through unchanged */
        ck_assert_str_eq(field(o, "k\"ey"), "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80");
        /* each invalid byte becomes U+FFFD: stray, truncated, overlong, surrogate, >
         * U+10FFFF */
        ck_assert_str_eq(field(o, "bad"),
                         "a\xef\xbf\xbd"
                         "b\xef\xbf\xbd"
                         "c\xef\xbf\xbd\xef\xbf\xbd"
                         "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                         "e\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                         "f");
        json_decref(o);
        cap_stop();
}
END_TEST

START_TEST(test_long_value_is_cut)
{
        json_t *o;
        size_t n = 100000;
        char *big = malloc(n + 1);

        memset(big, 'a', n);
        big[n] = '\0';
        big[16383] = '\xc3'; /* a two-byte character across the cut */
        big[16384] = '\xa9';
        cm_log_init("t", CM_LOG_INFO);
        cap_start();
        cm_log_info("m", "output", big);
        o = cap_one();
        const char *v = field(o, "output");
        ck_assert_uint_lt(strlen(v), 16400);
        ck_assert_str_eq(v + strlen(v) - 14, "...[truncated]");
        ck_assert_ptr_null(strstr(v, "\xef\xbf\xbd"));
        json_decref(o);
        free(big);
        cap_stop();
}
END_TEST

START_TEST(test_level_filtering)
{
        json_t *arr;

        ck_assert_int_eq(cm_log_level_parse("debug"), CM_LOG_DEBUG);
        ck_assert_int_eq(cm_log_level_parse("info"), CM_LOG_INFO);
        ck_assert_int_eq(cm_log_level_parse("warn"), CM_LOG_WARN);
        ck_assert_int_eq(cm_log_level_parse("error"), CM_LOG_ERROR);
        ck_assert_int_eq(cm_log_level_parse("INFO"), -1);
        ck_assert_int_eq(cm_log_level_parse("warning"), -1);
        ck_assert_int_eq(cm_log_level_parse(NULL), -1);

        cm_log_init("f", CM_LOG_WARN);
        ck_assert(!cm_log_enabled(CM_LOG_INFO));
        ck_assert(cm_log_enabled(CM_LOG_ERROR));
        cap_start();
        cm_log_debug("d");
        cm_log_info("i");
        cm_logf(CM_LOG_INFO, "fi %d", 1);
        cm_log_warn("w");
        cm_log_error("e");
        cm_logf(CM_LOG_ERROR, "fe %d %s", 2, "x");
        arr = cap_lines();
        ck_assert_int_eq(json_array_size(arr), 3);
        ck_assert_str_eq(field(json_array_get(arr, 0), "msg"), "w");
        ck_assert_str_eq(field(json_array_get(arr, 0), "level"), "warn");
        ck_assert_str_eq(field(json_array_get(arr, 1), "msg"), "e");
        ck_assert_str_eq(field(json_array_get(arr, 1), "level"), "error");
        ck_assert_str_eq(field(json_array_get(arr, 2), "msg"), "fe 2 x");
        json_decref(arr);
        cap_stop();
}
END_TEST

START_TEST(test_secret_keys_redacted)
{
        static const char *const secret[] = {
            "sshKey",        "ssh_key",       "SSHKEY",      "kubeconfig",
            "kubeConfig",    "token",         "accessToken", "refresh_token",
            "password",      "PGPASSWORD",    "db-password", "secret",
            "clientSecret",  "privateKey",    "private_key", "key",
            "apiKey",        "api_key",       "Key",         "conninfo",
            "Authorization", "authorization", "credentials",
        };
        static const char *const plain[] = {"cluster", "keyspace", "public_key_file",
                                            "seq",     "keyId",    "node"};
        json_t *o;
        char *raw;
        size_t ns = sizeof(secret) / sizeof(secret[0]),
               np = sizeof(plain) / sizeof(plain[0]);

        cm_log_init("r", CM_LOG_INFO);
        for (size_t i = 0; i < ns; i++) {
                cap_start();
                cm_log_info("m", secret[i], "hunter2-sensitive");
                raw = cap_text();
                ck_assert_msg(strstr(raw, "hunter2") == NULL, "%s leaked: %s", secret[i],
                              raw);
                o = cap_one();
                ck_assert_str_eq(field(o, secret[i]), "[redacted]");
                json_decref(o);
                free(raw);
                cap_stop();
        }
        for (size_t i = 0; i < np; i++) {
                cap_start();
                cm_log_info("m", plain[i], "visible");
                o = cap_one();
                ck_assert_str_eq(field(o, plain[i]), "visible");
                json_decref(o);
                cap_stop();
        }
}
END_TEST

/* Logs text as msg and as a plain field; both must read want. */
static void expect_masked(const char *text, const char *want)
{
        json_t *o;

        cap_start();
        cm_log_info(text, "detail", text);
        o = cap_one();
        ck_assert_str_eq(field(o, "msg"), want);
        ck_assert_str_eq(field(o, "detail"), want);
        json_decref(o);
        cap_stop();
}

START_TEST(test_inline_secrets_masked)
{
        cm_log_init("r", CM_LOG_INFO);
        expect_masked("connect failed: host=db password=hunter2 user=cm",
                      "connect failed: host=db password=[redacted] user=cm");
        expect_masked("host=db password='hun ter2' dbname=cm",
                      "host=db password=[redacted] dbname=cm");
        expect_masked("PASSWORD=hunter2", "PASSWORD=[redacted]");
        expect_masked("env PGPASSWORD=hunter2;next", "env PGPASSWORD=[redacted];next");
        expect_masked("GET /x?user=a&token=abc123&b=2",
                      "GET /x?user=a&token=[redacted]&b=2");
        expect_masked("postgresql://cm:hunter2@db:5432/cm",
                      "postgresql://cm:[redacted]@db:5432/cm");
        expect_masked("body {\"name\":\"a\",\"password\": \"hun\\\"ter2\"}",
                      "body {\"name\":\"a\",\"password\": [redacted]}");
        expect_masked("Authorization: Bearer eyJhbGc.x.y rest",
                      "Authorization: Bearer [redacted] rest");
        /* no secret: unchanged */
        expect_masked("host=db user=cm http://example.com:80/a",
                      "host=db user=cm http://example.com:80/a");
        expect_masked("password=", "password=");

        /* and through cm_logf */
        cap_start();
        cm_logf(CM_LOG_ERROR, "pq: %s", "password=hunter2 host=x");
        json_t *o = cap_one();
        ck_assert_str_eq(field(o, "msg"), "pq: password=[redacted] host=x");
        json_decref(o);
        cap_stop();
}
END_TEST

#define THREADS    8
#define PER_THREAD 400

static void *writer(void *arg)
{
        char id[16], seq[16], pad[600];

        snprintf(id, sizeof(id), "%d", (int)(long)arg);
        memset(pad, 'x', sizeof(pad) - 1);
        pad[sizeof(pad) - 1] = '\0';
        for (int i = 0; i < PER_THREAD; i++) {
                snprintf(seq, sizeof(seq), "%d", i);
                cm_log_info("concurrent", "thread", id, "seq", seq, "pad", pad);
        }
        return NULL;
}

START_TEST(test_concurrent_lines_whole)
{
        pthread_t th[THREADS];
        json_t *arr;
        int next[THREADS] = {0};

        cm_log_init("mt", CM_LOG_INFO);
        cap_start();
        for (long i = 0; i < THREADS; i++)
                ck_assert_int_eq(pthread_create(&th[i], NULL, writer, (void *)i), 0);
        for (int i = 0; i < THREADS; i++)
                pthread_join(th[i], NULL);
        arr = cap_lines(); /* fails on any torn or interleaved line */
        ck_assert_int_eq(json_array_size(arr), THREADS * PER_THREAD);
        for (size_t i = 0; i < json_array_size(arr); i++) {
                json_t *o = json_array_get(arr, i);
                int t = atoi(field(o, "thread")), s = atoi(field(o, "seq"));
                ck_assert_int_eq(s, next[t]); /* each thread's lines in its order */
                next[t]++;
        }
        json_decref(arr);
        cap_stop();
}
END_TEST

static Suite *log_suite(void)
{
        Suite *s = suite_create("log");
        TCase *tc = tcase_create("log");

        tcase_add_test(tc, test_fields);
        tcase_add_test(tc, test_reserved_field_names);
        tcase_add_test(tc, test_escaping);
        tcase_add_test(tc, test_long_value_is_cut);
        tcase_add_test(tc, test_level_filtering);
        tcase_add_test(tc, test_secret_keys_redacted);
        tcase_add_test(tc, test_inline_secrets_masked);
        tcase_add_test(tc, test_concurrent_lines_whole);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return cm_check_run(log_suite());
}
