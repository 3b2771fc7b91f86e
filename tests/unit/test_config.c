/*
 * test_config.c - cm_config_load(): defaults, file, environment, every error kind, and
 * the committed config/cm.conf.example against cm_config_example().
 *
 * CM_CONFIG_WRITE_EXAMPLE=1 test_config rewrites config/cm.conf.example from the key
 * table.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/config.h"
#include "../check_main.h"

static char *write_tmp(const char *text)
{
        char *path = strdup("/tmp/cm-conf-XXXXXX");
        int fd = mkstemp(path);
        size_t len = strlen(text);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
        close(fd);
        return path;
}

static void drop_tmp(char *path)
{
        unlink(path);
        free(path);
}

static char *read_all(const char *path)
{
        FILE *fp = fopen(path, "r");
        char *buf;
        long n;

        if (!fp)
                return NULL;
        fseek(fp, 0, SEEK_END);
        n = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        buf = malloc((size_t)n + 1);
        ck_assert_int_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
        buf[n] = '\0';
        fclose(fp);
        return buf;
}

static void assert_defaults(const cm_config_t *c)
{
        ck_assert_str_eq(c->log.level, "info");
        ck_assert_str_eq(c->log.component, "");
        ck_assert_str_eq(c->kafka.bootstrap_servers, "127.0.0.1:9092");
        ck_assert_str_eq(c->kafka.client_id, "cm");
        ck_assert_str_eq(c->kafka.assignment_strategy, "roundrobin");
        ck_assert_str_eq(c->kafka.commands_topic, "cm.commands");
        ck_assert_str_eq(c->kafka.events_topic, "cm.events");
        ck_assert_str_eq(c->kafka.progress_topic, "cm.progress");
        ck_assert_str_eq(c->kafka.dlq_topic, "cm.commands.dlq");
        ck_assert_str_eq(c->kafka.worker_group, "cm-worker");
        ck_assert_str_eq(c->kafka.projector_group, "cm-projector");
        ck_assert_int_eq(c->kafka.session_timeout_ms, 10000);
        ck_assert_int_eq(c->kafka.message_timeout_ms, 30000);
        ck_assert_str_eq(c->postgres.conninfo,
                         "host=127.0.0.1 port=5432 dbname=cm user=cm");
        ck_assert_int_eq(c->postgres.connect_timeout_s, 5);
        ck_assert_int_eq(c->postgres.reconnect_min_ms, 100);
        ck_assert_int_eq(c->postgres.reconnect_max_ms, 5000);
        ck_assert_str_eq(c->api.listen, "127.0.0.1:8080");
        ck_assert_int_eq(c->api.threads, 4);
        ck_assert_int_eq(c->api.max_body_bytes, 1048576);
        ck_assert_int_eq(c->api.wait_max_s, 60);
        ck_assert_str_eq(c->health.listen, "127.0.0.1:0");
        ck_assert_int_eq(c->health.broker_timeout_ms, 2000);
        ck_assert_str_eq(c->seal.public_key_file, ".local/keys/seal.pub");
        ck_assert_str_eq(c->seal.secret_key_file, ".local/keys/seal.key");
        ck_assert_int_eq(c->job.runners, 4);
        ck_assert_int_eq(c->job.max_attempts, 3);
        ck_assert_int_eq(c->job.lease_s, 30);
        ck_assert_int_eq(c->job.heartbeat_s, 5);
        ck_assert_int_eq(c->probe.interval_s, 15);
        ck_assert_int_eq(c->probe.parallelism, 16);
        ck_assert_int_eq(c->probe.timeout_s, 5);
        ck_assert_int_eq(c->connect.deadline_s, 600);
        ck_assert_int_eq(c->zke.parallelism, 50);
        ck_assert_int_eq(c->zke.command_timeout_s, 600);
        ck_assert_int_eq(c->zke.connect_timeout_s, 10);
}

START_TEST(test_defaults_without_file)
{
        cm_config_t c;
        char err[512];

        ck_assert_int_eq(cm_config_load(&c, NULL, err, sizeof(err)), CM_CONFIG_OK);
        assert_defaults(&c);
        ck_assert_ptr_null(c.path);
        cm_config_destroy(&c);
        cm_config_destroy(&c); /* documented as safe */
}
END_TEST

static const char full_conf[] =
    "log: { level = \"debug\"; component = \"w1\"; };\n"
    "kafka: {\n"
    "  bootstrap_servers = \"k1:9092,k2:9092\"; client_id = \"cid\";\n"
    "  assignment_strategy = \"cooperative-sticky\";\n"
    "  commands_topic = \"c\"; events_topic = \"e\"; progress_topic = \"p\";\n"
    "  dlq_topic = \"d\"; worker_group = \"g\";\n"
    "  session_timeout_ms = 45000; message_timeout_ms = 0x2710;\n"
    "};\n"
    "postgres = { conninfo = \"host=db password=x\"; connect_timeout_s = 7;\n"
    "  reconnect_min_ms = 200; reconnect_max_ms = 9000; };\n"
    "# comment\n"
    "api: { listen = \"0.0.0.0:80\"; threads = 16; max_body_bytes = 2048;\n"
    "  wait_max_s = 0; };\n"
    "health: { listen = \"[::1]:9100\"; broker_timeout_ms = 500; };\n"
    "seal: { public_key_file = \"/k/p\"; secret_key_file = \"/k/s\"; };\n"
    "job: { max_attempts = 5; lease_s = 60; heartbeat_s = 10; };\n"
    "probe: { interval_s = 30; timeout_s = 3; };\n"
    "connect: { deadline_s = 120; };\n"
    "zke: { parallelism = 1000; command_timeout_s = 900; connect_timeout_s = 20; };\n";

START_TEST(test_full_file)
{
        cm_config_t c;
        char err[512], *path = write_tmp(full_conf);

        ck_assert_msg(cm_config_load(&c, path, err, sizeof(err)) == CM_CONFIG_OK, "%s",
                      err);
        ck_assert_str_eq(c.path, path);
        ck_assert_str_eq(c.log.level, "debug");
        ck_assert_str_eq(c.log.component, "w1");
        ck_assert_str_eq(c.kafka.bootstrap_servers, "k1:9092,k2:9092");
        ck_assert_str_eq(c.kafka.client_id, "cid");
        ck_assert_str_eq(c.kafka.assignment_strategy, "cooperative-sticky");
        ck_assert_str_eq(c.kafka.commands_topic, "c");
        ck_assert_str_eq(c.kafka.events_topic, "e");
        ck_assert_str_eq(c.kafka.progress_topic, "p");
        ck_assert_str_eq(c.kafka.dlq_topic, "d");
        ck_assert_str_eq(c.kafka.worker_group, "g");
        ck_assert_int_eq(c.kafka.session_timeout_ms, 45000);
        ck_assert_int_eq(c.kafka.message_timeout_ms, 10000);
        ck_assert_str_eq(c.postgres.conninfo, "host=db password=x");
        ck_assert_int_eq(c.postgres.connect_timeout_s, 7);
        ck_assert_int_eq(c.postgres.reconnect_min_ms, 200);
        ck_assert_int_eq(c.postgres.reconnect_max_ms, 9000);
        ck_assert_str_eq(c.api.listen, "0.0.0.0:80");
        ck_assert_int_eq(c.api.threads, 16);
        ck_assert_int_eq(c.api.max_body_bytes, 2048);
        ck_assert_int_eq(c.api.wait_max_s, 0);
        ck_assert_str_eq(c.health.listen, "[::1]:9100");
        ck_assert_int_eq(c.health.broker_timeout_ms, 500);
        ck_assert_str_eq(c.seal.public_key_file, "/k/p");
        ck_assert_str_eq(c.seal.secret_key_file, "/k/s");
        ck_assert_int_eq(c.job.max_attempts, 5);
        ck_assert_int_eq(c.job.lease_s, 60);
        ck_assert_int_eq(c.job.heartbeat_s, 10);
        ck_assert_int_eq(c.probe.interval_s, 30);
        ck_assert_int_eq(c.probe.timeout_s, 3);
        ck_assert_int_eq(c.connect.deadline_s, 120);
        ck_assert_int_eq(c.zke.parallelism, 1000);
        ck_assert_int_eq(c.zke.command_timeout_s, 900);
        ck_assert_int_eq(c.zke.connect_timeout_s, 20);
        cm_config_destroy(&c);
        drop_tmp(path);
}
END_TEST

START_TEST(test_int_literal_recheck_not_fooled)
{
        cm_config_t c;
        char err[512],
            *path = write_tmp("api: { listen = \"threads = 99\"; threads = 8; };\n");

        /* the recheck of big literals must find the real one, not the text in the string
         */
        ck_assert_msg(cm_config_load(&c, path, err, sizeof(err)) == CM_CONFIG_OK, "%s",
                      err);
        ck_assert_int_eq(c.api.threads, 8);
        ck_assert_str_eq(c.api.listen, "threads = 99");
        cm_config_destroy(&c);
        drop_tmp(path);
}
END_TEST

/* The in-memory entry point reads what a file would give, with the same messages. */
START_TEST(test_load_string)
{
        cm_config_t c;
        char err[512];
        /* no NUL at the end: len bounds the text */
        const char text[] = "api: { threads = 99999999999; };XXXX";
        ck_assert_int_eq(cm_config_load_string(&c, text, sizeof(text) - 5, "/etc/cm.conf",
                                               err, sizeof(err)),
                         CM_CONFIG_ERR_RANGE);
        ck_assert_msg(strstr(err, "/etc/cm.conf:1: api.threads") == err, "%s", err);
        ck_assert_msg(strstr(err, "99999999999"), "%s", err);

        ck_assert_msg(cm_config_load_string(&c, full_conf, strlen(full_conf), "mem.conf",
                                            err, sizeof(err)) == CM_CONFIG_OK,
                      "%s", err);
        ck_assert_str_eq(c.path, "mem.conf");
        ck_assert_int_eq(c.kafka.message_timeout_ms, 10000);
        ck_assert_str_eq(c.postgres.conninfo, "host=db password=x");
        cm_config_destroy(&c);

        const char nul[] = "api: {\n threads = 4;\0 };\n";
        ck_assert_int_eq(
            cm_config_load_string(&c, nul, sizeof(nul) - 1, "n.conf", err, sizeof(err)),
            CM_CONFIG_ERR_SYNTAX);
        ck_assert_str_eq(err, "n.conf:2: syntax error: a NUL byte");
        ck_assert_ptr_null(c.path);
}
END_TEST

START_TEST(test_partial_file_keeps_other_defaults)
{
        cm_config_t c;
        char err[512], *path = write_tmp("api: { threads = 8; };\nkafka: { };\n");

        ck_assert_msg(cm_config_load(&c, path, err, sizeof(err)) == CM_CONFIG_OK, "%s",
                      err);
        ck_assert_int_eq(c.api.threads, 8);
        ck_assert_str_eq(c.api.listen, "127.0.0.1:8080");
        ck_assert_str_eq(c.kafka.bootstrap_servers, "127.0.0.1:9092");
        cm_config_destroy(&c);
        drop_tmp(path);
}
END_TEST

START_TEST(test_env_overrides_file)
{
        cm_config_t c;
        char err[512], *path = write_tmp("kafka: { bootstrap_servers = \"file:1\"; };\n"
                                         "api: { threads = 8; };\n");

        setenv("CM_KAFKA_BOOTSTRAP_SERVERS", "env:9092", 1);
        setenv("CM_API_THREADS", "12", 1);
        setenv("CM_LOG_LEVEL", "warn", 1);
        ck_assert_msg(cm_config_load(&c, path, err, sizeof(err)) == CM_CONFIG_OK, "%s",
                      err);
        ck_assert_str_eq(c.kafka.bootstrap_servers, "env:9092");
        ck_assert_int_eq(c.api.threads, 12);
        ck_assert_str_eq(c.log.level, "warn");
        cm_config_destroy(&c);

        /* and over the defaults when there is no file; empty is a valid log.component */
        setenv("CM_LOG_COMPONENT", "", 1);
        setenv("CM_API_THREADS", "-0", 1);
        ck_assert_int_eq(cm_config_load(&c, NULL, err, sizeof(err)), CM_CONFIG_ERR_RANGE);
        setenv("CM_API_THREADS", "256", 1);
        ck_assert_msg(cm_config_load(&c, NULL, err, sizeof(err)) == CM_CONFIG_OK, "%s",
                      err);
        ck_assert_int_eq(c.api.threads, 256);
        ck_assert_str_eq(c.log.component, "");
        cm_config_destroy(&c);
        unsetenv("CM_KAFKA_BOOTSTRAP_SERVERS");
        unsetenv("CM_API_THREADS");
        unsetenv("CM_LOG_LEVEL");
        unsetenv("CM_LOG_COMPONENT");
        drop_tmp(path);
}
END_TEST

/* Loads text, expects err, and checks the message holds each of the NULL-ended needles.
 */
static void expect_error(const char *text, cm_config_err_t want, int line, ...)
{
        cm_config_t c;
        char err[512], where[600], *path = write_tmp(text);
        const char *needle;
        va_list ap;

        ck_assert_int_eq(cm_config_load(&c, path, err, sizeof(err)), want);
        snprintf(where, sizeof(where), "%s:%d: ", path, line);
        ck_assert_msg(strncmp(err, where, strlen(where)) == 0,
                      "'%s' does not start with '%s'", err, where);
        va_start(ap, line);
        while ((needle = va_arg(ap, const char *)) != NULL)
                ck_assert_msg(strstr(err, needle) != NULL, "'%s' lacks '%s'", err,
                              needle);
        va_end(ap);
        /* released on error: a destroy must be harmless */
        ck_assert_ptr_null(c.kafka.bootstrap_servers);
        cm_config_destroy(&c);
        drop_tmp(path);
}

START_TEST(test_err_syntax)
{
        expect_error("api: {\n  threads = 4;\n  listen = ;\n};\n", CM_CONFIG_ERR_SYNTAX,
                     3, "syntax error", NULL);
        /* libconfig's own message is kept */
        expect_error("kafka: { dlq_topic = \"a\"; dlq_topic = \"b\"; };\n",
                     CM_CONFIG_ERR_SYNTAX, 1, "syntax error: duplicate setting name",
                     NULL);
}
END_TEST

START_TEST(test_err_unknown_key)
{
        expect_error(
            "log: { level = \"info\"; };\n\nkafka: {\n  bootstrap_server = \"x\";\n};\n",
            CM_CONFIG_ERR_UNKNOWN_KEY, 4,
            "unknown key 'kafka.bootstrap_server' (did you mean "
            "'kafka.bootstrap_servers'?)",
            NULL);
        /* nothing close: no suggestion */
        expect_error("api: { zzzzzzzzzzzz = 1; };\n", CM_CONFIG_ERR_UNKNOWN_KEY, 1,
                     "unknown key 'api.zzzzzzzzzzzz'", NULL);
        /* a nested group is not a known key */
        expect_error("kafka: {\n  extra: { a = 1; };\n};\n", CM_CONFIG_ERR_UNKNOWN_KEY, 2,
                     "unknown key 'kafka.extra'", NULL);
}
END_TEST

START_TEST(test_err_unknown_section)
{
        expect_error("\nkafak: { bootstrap_servers = \"x\"; };\n",
                     CM_CONFIG_ERR_UNKNOWN_KEY, 2,
                     "unknown section 'kafak' (did you mean 'kafka'?)", NULL);
        /* a key at top level, outside its section */
        expect_error("threads = 4;\n", CM_CONFIG_ERR_UNKNOWN_KEY, 1,
                     "unknown section 'threads' (did you mean 'api.threads'?)", NULL);
        /* a known section that is not a group */
        expect_error("api = 4;\n", CM_CONFIG_ERR_TYPE, 1, "api: expected a section",
                     "got an integer", NULL);
}
END_TEST

START_TEST(test_err_type)
{
        expect_error("log: { };\napi: {\n  threads = \"4\";\n};\n", CM_CONFIG_ERR_TYPE, 3,
                     "api.threads: expected an integer, got a string", NULL);
        expect_error("api: { threads = 4.0; };\n", CM_CONFIG_ERR_TYPE, 1,
                     "api.threads: expected an integer, got a float", NULL);
        expect_error("kafka: { bootstrap_servers = [\"a\", \"b\"]; };\n",
                     CM_CONFIG_ERR_TYPE, 1,
                     "kafka.bootstrap_servers: expected a string, got an array", NULL);
        expect_error("log: { level = true; };\n", CM_CONFIG_ERR_TYPE, 1,
                     "log.level: expected a string, got a boolean", NULL);
        expect_error("kafka: { dlq_topic: { a = 1; }; };\n", CM_CONFIG_ERR_TYPE, 1,
                     "kafka.dlq_topic: expected a string, got a group", NULL);
}
END_TEST

START_TEST(test_err_range)
{
        expect_error("api: {\n  listen = \"x:1\";\n  threads = 0;\n};\n",
                     CM_CONFIG_ERR_RANGE, 3, "api.threads: 0 is out of range 1..256",
                     NULL);
        expect_error("zke: { parallelism = 1001; };\n", CM_CONFIG_ERR_RANGE, 1,
                     "zke.parallelism: 1001 is out of range 1..1000", NULL);
        /* libconfig 1.5 reads this as 1 (atoi); it must not be taken as 1 */
        expect_error("log: {};\nzke: { parallelism = 4294967297; };\n",
                     CM_CONFIG_ERR_RANGE, 2,
                     "zke.parallelism: 4294967297 is out of range 1..1000", NULL);
        expect_error("zke: { parallelism = 0x100000001; };\n", CM_CONFIG_ERR_RANGE, 1,
                     "zke.parallelism: 4294967297 is out of range 1..1000", NULL);
        /* last line without a newline */
        expect_error("zke: { parallelism = 4294967297; }", CM_CONFIG_ERR_RANGE, 1,
                     "zke.parallelism: 4294967297 is out of range 1..1000", NULL);
        /* does not wrap around through int */
        expect_error("api: { threads = 4294967300L; };\n", CM_CONFIG_ERR_RANGE, 1,
                     "api.threads: 4294967300 is out of range 1..256", NULL);
        expect_error("kafka: { bootstrap_servers = \"\"; };\n", CM_CONFIG_ERR_RANGE, 1,
                     "kafka.bootstrap_servers: must not be empty", NULL);
        /* between keys: the message names both */
        expect_error("job: {\n  heartbeat_s = 30;\n};\n", CM_CONFIG_ERR_RANGE, 2,
                     "job.heartbeat_s (30) must be less than job.lease_s (30)", NULL);
}
END_TEST

START_TEST(test_err_not_in_set)
{
        expect_error("log: { level = \"verbose\"; };\n", CM_CONFIG_ERR_RANGE, 1,
                     "log.level: \"verbose\" is not one of debug, info, warn, error",
                     NULL);
        expect_error(
            "\nkafka: { assignment_strategy = \"sticky\"; };\n", CM_CONFIG_ERR_RANGE, 2,
            "kafka.assignment_strategy: \"sticky\" is not one of roundrobin, range, "
            "cooperative-sticky",
            NULL);
}
END_TEST

static void expect_env_error(const char *var, const char *value, cm_config_err_t want,
                             const char *message)
{
        cm_config_t c;
        char err[512];

        setenv(var, value, 1);
        ck_assert_int_eq(cm_config_load(&c, NULL, err, sizeof(err)), want);
        ck_assert_str_eq(err, message);
        ck_assert_ptr_null(c.log.level);
        unsetenv(var);
}

START_TEST(test_err_env)
{
        expect_env_error("CM_API_THREADS", "abc", CM_CONFIG_ERR_TYPE,
                         "CM_API_THREADS: expected an integer, got \"abc\"");
        expect_env_error("CM_API_THREADS", "4x", CM_CONFIG_ERR_TYPE,
                         "CM_API_THREADS: expected an integer, got \"4x\"");
        expect_env_error("CM_API_THREADS", " 4", CM_CONFIG_ERR_TYPE,
                         "CM_API_THREADS: expected an integer, got \" 4\"");
        expect_env_error("CM_API_THREADS", "", CM_CONFIG_ERR_TYPE,
                         "CM_API_THREADS: expected an integer, got \"\"");
        expect_env_error("CM_API_THREADS", "0", CM_CONFIG_ERR_RANGE,
                         "CM_API_THREADS: 0 is out of range 1..256");
        expect_env_error(
            "CM_ZKE_PARALLELISM", "99999999999999999999", CM_CONFIG_ERR_RANGE,
            "CM_ZKE_PARALLELISM: 99999999999999999999 is out of range 1..1000");
        expect_env_error(
            "CM_LOG_LEVEL", "trace", CM_CONFIG_ERR_RANGE,
            "CM_LOG_LEVEL: \"trace\" is not one of debug, info, warn, error");
        expect_env_error("CM_KAFKA_EVENTS_TOPIC", "", CM_CONFIG_ERR_RANGE,
                         "CM_KAFKA_EVENTS_TOPIC: must not be empty");
        expect_env_error(
            "CM_POSTGRES_RECONNECT_MIN_MS", "6000", CM_CONFIG_ERR_RANGE,
            "CM_POSTGRES_RECONNECT_MIN_MS: postgres.reconnect_min_ms (6000) must "
            "be at most postgres.reconnect_max_ms (5000)");
}
END_TEST

START_TEST(test_err_io)
{
        cm_config_t c;
        char err[512];

        ck_assert_int_eq(cm_config_load(&c, "/nonexistent/cm.conf", err, sizeof(err)),
                         CM_CONFIG_ERR_IO);
        ck_assert_str_eq(err,
                         "/nonexistent/cm.conf: cannot open: No such file or directory");
        ck_assert_int_eq(cm_config_load(&c, "/", err, sizeof(err)), CM_CONFIG_ERR_IO);
        ck_assert_str_eq(err, "/: cannot read: Is a directory");
        ck_assert_str_eq(cm_config_err2str(CM_CONFIG_ERR_IO),
                         "configuration file cannot be read");
}
END_TEST

static char *example_path(void)
{
        const char *src = getenv("CM_SOURCE_DIR");
        char *path;

        ck_assert_msg(src != NULL, "CM_SOURCE_DIR is not set (run through ctest)");
        ck_assert_int_gt(asprintf(&path, "%s/config/cm.conf.example", src), 0);
        return path;
}

START_TEST(test_example_is_current)
{
        char *path = example_path(), *want = cm_config_example(), *have;

        ck_assert_ptr_nonnull(want);
        if (getenv("CM_CONFIG_WRITE_EXAMPLE")) {
                FILE *fp = fopen(path, "w");
                ck_assert_ptr_nonnull(fp);
                fputs(want, fp);
                fclose(fp);
        }
        have = read_all(path);
        ck_assert_msg(have != NULL, "%s is missing", path);
        ck_assert_msg(strcmp(have, want) == 0,
                      "%s differs from cm_config_example(); regenerate it with "
                      "CM_CONFIG_WRITE_EXAMPLE=1 tests/test_config",
                      path);
        free(have);
        free(want);
        free(path);
}
END_TEST

START_TEST(test_example_loads_to_defaults)
{
        cm_config_t c;
        char err[512], *path = example_path(), *text, *live, *tmp;

        ck_assert_msg(cm_config_load(&c, path, err, sizeof(err)) == CM_CONFIG_OK, "%s",
                      err);
        assert_defaults(&c);
        cm_config_destroy(&c);

        /* uncommented, each "# key = default;" must set the key to its default */
        text = cm_config_example();
        live = calloc(1, strlen(text) + 1);
        int keys = 0;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                size_t n = strlen(line);
                if (strncmp(line, "  # ", 4) == 0 && strstr(line, " = ") &&
                    line[n - 1] == ';') {
                        line += 4;
                        keys++;
                }
                strcat(live, line);
                strcat(live, "\n");
        }
        ck_assert_int_eq(keys, 41);
        tmp = write_tmp(live);
        ck_assert_msg(cm_config_load(&c, tmp, err, sizeof(err)) == CM_CONFIG_OK, "%s",
                      err);
        assert_defaults(&c);
        cm_config_destroy(&c);
        drop_tmp(tmp);
        free(live);
        free(text);
        free(path);
}
END_TEST

static Suite *config_suite(void)
{
        Suite *s = suite_create("config");
        TCase *tc = tcase_create("load");

        tcase_add_test(tc, test_defaults_without_file);
        tcase_add_test(tc, test_full_file);
        tcase_add_test(tc, test_load_string);
        tcase_add_test(tc, test_partial_file_keeps_other_defaults);
        tcase_add_test(tc, test_int_literal_recheck_not_fooled);
        tcase_add_test(tc, test_env_overrides_file);
        tcase_add_test(tc, test_err_syntax);
        tcase_add_test(tc, test_err_unknown_key);
        tcase_add_test(tc, test_err_unknown_section);
        tcase_add_test(tc, test_err_type);
        tcase_add_test(tc, test_err_range);
        tcase_add_test(tc, test_err_not_in_set);
        tcase_add_test(tc, test_err_env);
        tcase_add_test(tc, test_err_io);
        tcase_add_test(tc, test_example_is_current);
        tcase_add_test(tc, test_example_loads_to_defaults);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return cm_check_run(config_suite());
}
