/*
 * it_kafka_roundtrip - one side of a cross-process Kafka exchange through cm/kafka.h.
 *
 * Without arguments (as ctest runs it): against CM_TEST_BOOTSTRAP (fails if unset), a
 * child process produces a command and another child process consumes it in a fresh
 * group.
 *
 * Modes used by tests/integration/devbroker_cross_process.sh:
 *   produce BOOTSTRAP TOPIC KEY VALUE [NAME=VALUE header...]
 *           prints "PARTITION OFFSET" once the broker has durably written the message
 *   consume BOOTSTRAP GROUP TOPIC COUNT TIMEOUT_MS
 *           prints COUNT lines "PARTITION OFFSET KEY VALUE [NAME=VALUE...]", committing
 * each message after printing it; exit 1 if fewer arrive in time find    BOOTSTRAP GROUP
 * TOPIC KEY VALUE TIMEOUT_MS reads until KEY/VALUE is seen (other messages skipped),
 * prints its line member  BOOTSTRAP GROUP TOPIC OUTFILE stays in the group until SIGTERM;
 * after each rebalance writes its partitions
 *           ("0 3 6 9", atomically) to OUTFILE
 *   ready   BOOTSTRAP TIMEOUT_MS
 *           exit 0 if the cluster answers within TIMEOUT_MS, else prints why and exit 1
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cm/kafka.h"
#include "cm/log.h"

#define MAX_HEADERS 8

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
        (void)sig;
        stop = 1;
}

static long long now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static cm_kafka_conf_t conf_for(const char *bootstrap, const char *group)
{
        cm_kafka_conf_t kc = {0};

        kc.bootstrap_servers = bootstrap;
        kc.client_id = "it_kafka_roundtrip";
        kc.group_id = group;
        kc.session_timeout_ms = 6000;
        kc.message_timeout_ms = 15000;
        return kc;
}

static int do_produce(int argc, char **argv)
{
        cm_kafka_conf_t kc = conf_for(argv[0], NULL);
        cm_kafka_header_t hdrs[MAX_HEADERS];
        cm_kafka_producer_t *p;
        char errstr[512] = "";
        size_t nh = 0;
        int32_t part;
        int64_t off;
        int i, rc;

        for (i = 4; i < argc && nh < MAX_HEADERS; i++) {
                char *eq = strchr(argv[i], '=');

                if (!eq) {
                        fprintf(stderr, "produce: header \"%s\" is not NAME=VALUE\n",
                                argv[i]);
                        return 2;
                }
                *eq = '\0';
                hdrs[nh].name = argv[i];
                hdrs[nh].value = eq + 1;
                hdrs[nh].value_len = strlen(eq + 1);
                nh++;
        }
        p = cm_kafka_producer_new(&kc, NULL, NULL, errstr, sizeof(errstr));
        if (!p) {
                fprintf(stderr, "produce: %s\n", errstr);
                return 1;
        }
        rc = cm_kafka_produce_sync(p, argv[1], argv[2], strlen(argv[2]), argv[3],
                                   strlen(argv[3]), hdrs, nh, 20000, &part, &off, errstr,
                                   sizeof(errstr));
        if (rc == CM_KAFKA_OK)
                printf("%d %lld\n", (int)part, (long long)off);
        else
                fprintf(stderr, "produce: %s\n", errstr);
        cm_kafka_producer_destroy(p, 5000);
        return rc == CM_KAFKA_OK ? 0 : 1;
}

static void print_msg(const cm_kafka_message_t *m)
{
        size_t i, n = cm_kafka_message_header_cnt(m), len;
        const char *name;
        const void *val;

        printf("%d %lld %.*s %.*s", (int)m->partition, (long long)m->offset,
               (int)m->key_len, m->key ? (const char *)m->key : "", (int)m->value_len,
               m->value ? (const char *)m->value : "");
        for (i = 0; i < n; i++)
                if (cm_kafka_message_header_at(m, i, &name, &val, &len) == 0)
                        printf(" %s=%.*s", name, (int)len, val ? (const char *)val : "");
        printf("\n");
        fflush(stdout);
}

static cm_kafka_consumer_t *consumer_for(const char *bootstrap, const char *group,
                                         const char *topic, cm_kafka_rebalance_cb_t *cb,
                                         void *opaque)
{
        cm_kafka_conf_t kc = conf_for(bootstrap, group);
        cm_kafka_consumer_t *c;
        char errstr[512] = "";

        c = cm_kafka_consumer_new(&kc, cb, opaque, errstr, sizeof(errstr));
        if (!c) {
                fprintf(stderr, "consumer: %s\n", errstr);
                return NULL;
        }
        if (cm_kafka_consumer_subscribe(c, &topic, 1, errstr, sizeof(errstr))) {
                fprintf(stderr, "consumer: %s\n", errstr);
                cm_kafka_consumer_destroy(c);
                return NULL;
        }
        return c;
}

/*
 * Reads until count messages (match_key NULL) or until the one with
 * match_key/match_value, committing each printed message. Returns 0 when done in time.
 */
static int consume_loop(const char *bootstrap, const char *group, const char *topic,
                        int count, const char *match_key, const char *match_value,
                        int timeout_ms)
{
        cm_kafka_consumer_t *c = consumer_for(bootstrap, group, topic, NULL, NULL);
        long long end = now_ms() + timeout_ms;
        cm_kafka_message_t *m;
        char errstr[512];
        int got = 0, found = 0;

        if (!c)
                return 1;
        while (now_ms() < end && !found && (match_key || got < count)) {
                if (cm_kafka_consumer_poll(c, 200, &m, errstr, sizeof(errstr)) !=
                    CM_KAFKA_OK)
                        fprintf(stderr, "consume: %s\n", errstr);
                if (!m)
                        continue;
                if (match_key) {
                        found = m->key_len == strlen(match_key) &&
                                memcmp(m->key, match_key, m->key_len) == 0 &&
                                m->value_len == strlen(match_value) &&
                                memcmp(m->value, match_value, m->value_len) == 0;
                        if (found)
                                print_msg(m);
                } else {
                        print_msg(m);
                        got++;
                }
                if (cm_kafka_consumer_commit(c, m, errstr, sizeof(errstr)) !=
                    CM_KAFKA_OK) {
                        fprintf(stderr, "consume: %s\n", errstr);
                        cm_kafka_message_destroy(m);
                        cm_kafka_consumer_destroy(c);
                        return 1;
                }
                cm_kafka_message_destroy(m);
        }
        cm_kafka_consumer_destroy(c);
        if (match_key ? !found : got < count) {
                fprintf(stderr, "consume: timed out after %d ms (%d of %d)\n", timeout_ms,
                        got, count);
                return 1;
        }
        return 0;
}

static int write_assignment(const char *path, cm_kafka_consumer_t *c)
{
        cm_kafka_partition_t *parts;
        char tmp[4096], errstr[256];
        size_t cnt, i;
        FILE *fp;

        if (cm_kafka_consumer_assignment(c, &parts, &cnt, errstr, sizeof(errstr))) {
                fprintf(stderr, "member: %s\n", errstr);
                return -1;
        }
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        fp = fopen(tmp, "w");
        if (!fp) {
                free(parts);
                return -1;
        }
        for (i = 0; i < cnt; i++)
                fprintf(fp, "%s%d", i ? " " : "", (int)parts[i].partition);
        fprintf(fp, "\n");
        fclose(fp);
        free(parts);
        return rename(tmp, path);
}

static int do_member(char **argv)
{
        cm_kafka_consumer_t *c = consumer_for(argv[0], argv[1], argv[2], NULL, NULL);
        cm_kafka_message_t *m;
        unsigned seen = 0;
        char errstr[512];

        if (!c)
                return 1;
        signal(SIGTERM, on_term);
        signal(SIGINT, on_term);
        while (!stop) {
                cm_kafka_consumer_poll(c, 100, &m, errstr, sizeof(errstr));
                cm_kafka_message_destroy(m);
                if (cm_kafka_consumer_generation(c) != seen) {
                        seen = cm_kafka_consumer_generation(c);
                        if (write_assignment(argv[3], c)) {
                                cm_kafka_consumer_destroy(c);
                                return 1;
                        }
                }
        }
        cm_kafka_consumer_destroy(c);
        return 0;
}

static int do_ready(char **argv)
{
        cm_kafka_conf_t kc = conf_for(argv[0], NULL);
        cm_kafka_producer_t *p;
        char errstr[512] = "";
        int rc;

        p = cm_kafka_producer_new(&kc, NULL, NULL, errstr, sizeof(errstr));
        if (!p) {
                fprintf(stderr, "ready: %s\n", errstr);
                return 1;
        }
        rc = cm_kafka_producer_ready(p, NULL, atoi(argv[1]), errstr, sizeof(errstr));
        if (rc)
                printf("%s\n", errstr);
        cm_kafka_producer_destroy(p, 0);
        return rc ? 1 : 0;
}

/* Runs this program with args in a child and captures its stdout (one line). */
static int run_self(char *const args[], char *out, size_t out_size)
{
        int fds[2], status;
        ssize_t n;
        size_t off = 0;
        pid_t pid;

        if (pipe(fds))
                return -1;
        pid = fork();
        if (pid == 0) {
                dup2(fds[1], 1);
                close(fds[0]);
                close(fds[1]);
                execv("/proc/self/exe", args);
                _exit(127);
        }
        close(fds[1]);
        while (off + 1 < out_size &&
               (n = read(fds[0], out + off, out_size - off - 1)) > 0)
                off += (size_t)n;
        out[off] = '\0';
        close(fds[0]);
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
                return -1;
        return WEXITSTATUS(status);
}

/* ctest mode: producer process -> broker at CM_TEST_BOOTSTRAP -> consumer process. */
static int self_test(void)
{
        const char *bs = getenv("CM_TEST_BOOTSTRAP");
        char key[64], value[64], group[64], out1[512], out2[1024], want[256];
        int part;
        long long off;

        if (!bs || !*bs) {
                fprintf(stderr, "it_kafka_roundtrip: CM_TEST_BOOTSTRAP is not set "
                                "(scripts/test starts cm-devbroker and sets it)\n");
                return 1;
        }
        snprintf(key, sizeof(key), "it-rt-%ld-%lld", (long)getpid(), now_ms());
        snprintf(value, sizeof(value), "cmd-%lld", now_ms());
        snprintf(group, sizeof(group), "it-rt-group-%ld", (long)getpid());
        {
                char *const args[] = {"it_kafka_roundtrip", "produce", (char *)bs,
                                      "cm.commands",        key,       value,
                                      "cm.test=roundtrip",  NULL};
                if (run_self(args, out1, sizeof(out1)) != 0 ||
                    sscanf(out1, "%d %lld", &part, &off) != 2) {
                        fprintf(stderr, "FAIL: produce process: \"%s\"\n", out1);
                        return 1;
                }
        }
        {
                char *const args[] = {"it_kafka_roundtrip",
                                      "find",
                                      (char *)bs,
                                      group,
                                      "cm.commands",
                                      key,
                                      value,
                                      "30000",
                                      NULL};
                if (run_self(args, out2, sizeof(out2)) != 0) {
                        fprintf(stderr, "FAIL: consume process did not see %s\n", key);
                        return 1;
                }
        }
        snprintf(want, sizeof(want), "%d %lld %s %s cm.test=roundtrip\n", part, off, key,
                 value);
        if (strcmp(out2, want) != 0) {
                fprintf(stderr, "FAIL: consumed \"%s\", want \"%s\"\n", out2, want);
                return 1;
        }
        printf("ok: %s", out2);
        return 0;
}

int main(int argc, char **argv)
{
        cm_log_init("it_kafka_roundtrip", CM_LOG_WARN);
        if (argc == 1)
                return self_test();
        if (strcmp(argv[1], "produce") == 0 && argc >= 6)
                return do_produce(argc - 2, argv + 2);
        if (strcmp(argv[1], "consume") == 0 && argc == 7)
                return consume_loop(argv[2], argv[3], argv[4], atoi(argv[5]), NULL, NULL,
                                    atoi(argv[6]));
        if (strcmp(argv[1], "find") == 0 && argc == 8)
                return consume_loop(argv[2], argv[3], argv[4], 0, argv[5], argv[6],
                                    atoi(argv[7]));
        if (strcmp(argv[1], "member") == 0 && argc == 6)
                return do_member(argv + 2);
        if (strcmp(argv[1], "ready") == 0 && argc == 4)
                return do_ready(argv + 2);
        fprintf(stderr,
                "usage: it_kafka_roundtrip [produce|consume|find|member|ready] ...\n");
        return 2;
}
