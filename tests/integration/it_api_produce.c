/*
 * it_api_produce - cm-api produces commands without holding its HTTP pool threads
 * (producer/api/api_produce.c), against a broker that is down and then up again.
 *
 * With every broker of cm-devbroker down, more creates than cm-api has pool threads
 * (api.threads 4) wait for their delivery reports at once; meanwhile other requests are
 * answered. Each create is then refused 503 naming its command id and how to retry
 * (kafka.message_timeout_ms, 4 s here). With the brokers up, the same Idempotency-Key
 * gives 202 and the command is on cm.commands. Own database, cm-devbroker and cm-api.
 */
/* it_api.c's fixture: this test uses only part of its helpers */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "it_api_fixture.h"

#define IT_CREATES 8

static void it_brokers(const char *updown)
{
        for (int id = 1; id <= 3; id++) {
                char cmd[700];
                snprintf(cmd, sizeof(cmd),
                         "%s/tools/cm-devbroker --ctl %s %s %d >/dev/null",
                         getenv("CM_BINARY_DIR"), it_broker_ctl, updown, id);
                ck_assert_msg(system(cmd) == 0, "%s", cmd);
        }
}

typedef struct {
        int i;
        it_resp_t r;
        long long answered_ms;
} it_create_t;

static void *it_create_thread(void *arg)
{
        it_create_t *c = arg;
        char key[64], name[32];
        snprintf(key, sizeof(key), "Idempotency-Key: it-down-%d", c->i);
        snprintf(name, sizeof(name), "down%d", c->i);
        const char *hdr[] = {key, NULL};
        char *body = it_create_body(name, "");
        c->r = it_http("POST", "/v1/clusters", it_admin, hdr, body, strlen(body), NULL);
        c->answered_ms = it_now_ms();
        free(body);
        return NULL;
}

static int it_pending_rows(void)
{
        char *n = it_sql_value("SELECT count(*) FROM command_results "
                               "WHERE command_id LIKE $1 AND status = 'pending'",
                               "it-down-%");
        int v = atoi(n);
        free(n);
        return v;
}

START_TEST(test_broker_down_then_up)
{
        /* The producer is connected and idle first. */
        it_resp_t r = IT_GET("/readyz", NULL);
        ck_assert_int_eq(r.status, 200);
        it_resp_free(&r);
        it_brokers("broker-down");

        static it_create_t c[IT_CREATES];
        pthread_t t[IT_CREATES];
        for (int i = 0; i < IT_CREATES; i++) {
                c[i].i = i;
                pthread_create(&t[i], NULL, it_create_thread, &c[i]);
        }
        /* Every create is past its pending row, i.e. waiting for the broker. */
        long long end = it_now_ms() + 10000;
        while (it_pending_rows() < IT_CREATES && it_now_ms() < end)
                it_sleep_ms(20);
        ck_assert_int_eq(it_pending_rows(), IT_CREATES);
        /* More creates wait than there are pool threads, and cm-api still answers. */
        r = IT_GET("/healthz", NULL);
        ck_assert_int_eq(r.status, 200);
        it_resp_free(&r);
        r = IT_GET("/v1/clusters", it_user);
        ck_assert_int_eq(r.status, 200);
        it_resp_free(&r);
        long long answered_reads = it_now_ms();

        for (int i = 0; i < IT_CREATES; i++) {
                pthread_join(t[i], NULL);
                char id[32];
                snprintf(id, sizeof(id), "it-down-%d", i);
                ck_assert_msg(c[i].r.status == 503, "create %d: %ld %s", i, c[i].r.status,
                              c[i].r.body);
                ck_assert_msg(c[i].answered_ms > answered_reads,
                              "create %d was answered before the reads", i);
                json_t *j = it_json(&c[i].r);
                const char *msg = it_error_message(j);
                ck_assert_str_eq(it_error_code(j), "unavailable");
                ck_assert_msg(strstr(msg, id) && strstr(msg, "Idempotency-Key: ") &&
                                  strstr(msg, "timed out"),
                              "%s", msg);
                json_decref(j);
                it_resp_free(&c[i].r);
        }

        /* Back up: the same key is taken, and the command is on the topic. */
        it_brokers("broker-up");
        const char *hdr[] = {"Idempotency-Key: it-down-0", NULL};
        char *body = it_create_body("down0", "");
        end = it_now_ms() + 30000;
        do {
                r = it_http("POST", "/v1/clusters", it_admin, hdr, body, strlen(body),
                            NULL);
                if (r.status == 202)
                        break;
                it_resp_free(&r);
                it_sleep_ms(500);
        } while (it_now_ms() < end);
        free(body);
        ck_assert_msg(r.status == 202, "after the brokers came back: %ld %s", r.status,
                      r.body ? r.body : "");
        it_resp_free(&r);
        cm_command_t cmd;
        unsigned char *raw;
        size_t raw_len;
        char *key;
        it_find_command("it-down-0", &cmd, &raw, &raw_len, &key);
        ck_assert_str_eq(key, "down0");
        ck_assert_int_eq(cmd.kind, CM_COMMAND_CREATE);
        cm_command_destroy(&cmd);
        free(raw);
        free(key);
}
END_TEST

int main(void)
{
        it_api_begin();
        setenv("CM_KAFKA_MESSAGE_TIMEOUT_MS", "4000", 1);
        Suite *s = suite_create("api_produce");
        TCase *tc = tcase_create("produce");
        tcase_set_timeout(tc, 120);
        tcase_add_unchecked_fixture(tc, it_setup, NULL);
        tcase_add_test(tc, test_broker_down_then_up);
        suite_add_tcase(s, tc);
        return it_api_run(s);
}
