/*
 * it_worker_badinput - cm-worker given what cm-api would never write on cm.commands, in
 * addition to it_worker_commands' undecodable messages: a message larger than any cm
 * producer may write (2 MiB), and one just under the limit that is malformed. Each lands
 * in cm.commands.dlq with its error headers, and the command after it on the same
 * partition is still applied. Own cm-devbroker, database and cm-worker
 * (worker_harness.h).
 */
#include <librdkafka/rdkafka.h>

/* the shared harness: this test uses only part of its helpers */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "worker_harness.h"

#include "cm/avro.h"

static void badinput_setup(void)
{
        wh_prepare("badinput");
        wh_start_broker();
        wh_start_worker(0);
        wh_wait_schema(60000);
        wh_wait_ready(0, 60000);
        PQfinish(wh_db); /* each forked test opens its own connection */
        wh_db = NULL;
}

static void badinput_teardown(void)
{
        wh_shutdown();
}

/* Produces value with a producer that allows messages up to 16 MiB (cm's own clients
 * keep librdkafka's 1,000,000-byte default), as a foreign client could. */
static void produce_big(const char *topic, const char *key, const void *value, size_t len)
{
        char err[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        ck_assert(rd_kafka_conf_set(conf, "bootstrap.servers", wh.bootstrap, err,
                                    sizeof(err)) == RD_KAFKA_CONF_OK);
        ck_assert(rd_kafka_conf_set(conf, "message.max.bytes", "16777216", err,
                                    sizeof(err)) == RD_KAFKA_CONF_OK);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        ck_assert_msg(rk, "%s", err);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE((void *)value, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        ck_assert_msg(e == RD_KAFKA_RESP_ERR_NO_ERROR, "%s", rd_kafka_err2str(e));
        ck_assert_int_eq(rd_kafka_flush(rk, 20000), RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_destroy(rk);
}

/* A message with the Command header and len - 10 bytes of 0xff as its body. */
static unsigned char *command_garbage(size_t len)
{
        uint64_t fp = cm_avro_schema_get(CM_AVRO_SCHEMA_COMMAND)->fingerprint;
        unsigned char *m = malloc(len);
        m[0] = CM_AVRO_MAGIC0;
        m[1] = CM_AVRO_MAGIC1;
        for (int i = 0; i < 8; i++)
                m[2 + i] = (unsigned char)(fp >> (8 * i));
        memset(m + CM_AVRO_HEADER_LEN, 0xff, len - CM_AVRO_HEADER_LEN);
        return m;
}

static const char *header(const wh_msg_t *m, const char *name, char *buf, size_t size)
{
        char want[80];
        snprintf(want, sizeof(want), "%s=", name);
        const char *h = strstr(m->headers, want);
        if (!h || (h != m->headers && h[-1] != '\n'))
                return NULL;
        h += strlen(want);
        snprintf(buf, size, "%.*s", (int)strcspn(h, "\n"), h);
        return buf;
}

START_TEST(test_oversized_command_dead_lettered_and_next_applied)
{
        size_t big = 2u << 20; /* 2 MiB */
        unsigned char *m = command_garbage(big);
        produce_big("cm.commands", "big-one", m, big);
        free(m);
        /* a valid command, same key and so same partition: handled after it */
        cm_command_t *after = wh_cmd_create("big-one");
        wh_send(after);
        expect_result(after->id, "applied");
        ASSERT_STATE("big-one", "Creating 1");

        wh_msg_t d[2];
        size_t n = wh_consume("cm.commands.dlq", match_exact, "big-one", d, 1, 30000);
        ck_assert_int_eq(n, 1);
        char v[512];
        ck_assert_str_eq(header(&d[0], "cm-error-code", v, sizeof(v)), "too-large");
        ck_assert_msg(header(&d[0], "cm-error", v, sizeof(v)), "%s", d[0].headers);
        ck_assert_str_eq(v, "message of 2097152 bytes; cm.commands carries at most "
                            "1000000");
        ck_assert_str_eq(header(&d[0], "cm-source-topic", v, sizeof(v)), "cm.commands");
        ck_assert(header(&d[0], "cm-source-offset", v, sizeof(v)));
        /* the DLQ cannot hold it either: the value stays on cm.commands, named */
        ck_assert_int_eq(d[0].len, 0);
        ck_assert_str_eq(header(&d[0], "cm-value-omitted", v, sizeof(v)), "2097152");
        wh_msgs_free(d, n);
        wh_cmd_free(after);
        ck_assert_int_ge(wh_metric("cm_worker_commands_total{result=\"dead_lettered\"}"),
                         1);
}
END_TEST

START_TEST(test_largest_malformed_command_dead_lettered_whole)
{
        size_t len = 900000; /* under the limit: dead-lettered as it came */
        unsigned char *m = command_garbage(len);
        produce_big("cm.commands", "near-limit", m, len);
        cm_command_t *after = wh_cmd_create("near-limit");
        wh_send(after);
        expect_result(after->id, "applied");

        wh_msg_t d[2];
        size_t n = wh_consume("cm.commands.dlq", match_exact, "near-limit", d, 1, 30000);
        ck_assert_int_eq(n, 1);
        char v[512];
        ck_assert_str_eq(header(&d[0], "cm-error-code", v, sizeof(v)), "malformed");
        ck_assert_int_eq(d[0].len, len);
        ck_assert(memcmp(d[0].value, m, len) == 0);
        ck_assert_ptr_null(header(&d[0], "cm-value-omitted", v, sizeof(v)));
        wh_msgs_free(d, n);
        wh_cmd_free(after);
        free(m);
}
END_TEST

int main(void)
{
        pg_testdb_base(); /* fails at once without CM_TEST_PG */
        pg_testdb_owner_pid();
        Suite *s = suite_create("worker_badinput");
        TCase *tc = tcase_create("badinput");
        tcase_set_timeout(tc, 90);
        tcase_add_unchecked_fixture(tc, badinput_setup, badinput_teardown);
        tcase_add_test(tc, test_oversized_command_dead_lettered_and_next_applied);
        tcase_add_test(tc, test_largest_malformed_command_dead_lettered_whole);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_VERBOSE);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        pg_testdb_drop_all();
        if (!failed)
                wh_remove_dir(); /* kept for its logs when something failed */
        return failed ? 1 : 0;
}
