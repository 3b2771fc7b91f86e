/* devbroker_control.c - fault injection into the mock cluster over a Unix socket. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "cm/log.h"
#include "devbroker_control.h"

#define CTL_LINE_MAX 1024
#define CTL_MAX_ERRS 64

static const struct {
        const char *name;
        int16_t key;
} ctl_apis[] = {
    {"produce", 0},          {"fetch", 1},        {"listoffsets", 2},
    {"metadata", 3},         {"offsetcommit", 8}, {"offsetfetch", 9},
    {"findcoordinator", 10}, {"joingroup", 11},   {"heartbeat", 12},
    {"leavegroup", 13},      {"syncgroup", 14},   {"initproducerid", 22},
};

static int ctl_fill_addr(struct sockaddr_un *sa, const char *path)
{
        memset(sa, 0, sizeof(*sa));
        sa->sun_family = AF_UNIX;
        if (strlen(path) >= sizeof(sa->sun_path))
                return -1;
        strcpy(sa->sun_path, path);
        return 0;
}

int devbroker_control_listen(const char *path)
{
        struct sockaddr_un sa;
        int fd;
        if (ctl_fill_addr(&sa, path)) {
                cm_log_error("control socket path too long", "path", path);
                return -1;
        }
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
                return -1;
        unlink(path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 8)) {
                cm_log_error("cannot listen on the control socket", "path", path, "error",
                             strerror(errno));
                close(fd);
                return -1;
        }
        return fd;
}

static int ctl_parse_long(const char *s, long min, long max, long *out)
{
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || !*s || *end || v < min || v > max)
                return -1;
        *out = v;
        return 0;
}

static int ctl_api(const char *s, int16_t *key)
{
        long v;
        for (size_t i = 0; i < sizeof(ctl_apis) / sizeof(ctl_apis[0]); i++)
                if (strcasecmp(s, ctl_apis[i].name) == 0) {
                        *key = ctl_apis[i].key;
                        return 0;
                }
        if (ctl_parse_long(s, 0, 100, &v))
                return -1;
        *key = (int16_t)v;
        return 0;
}

/* A Kafka error by name (NOT_LEADER_FOR_PARTITION, _TRANSPORT) or number. */
static int ctl_error(const char *s, rd_kafka_resp_err_t *err)
{
        long v;
        if (ctl_parse_long(s, -200, 200, &v) == 0) {
                *err = (rd_kafka_resp_err_t)v;
                return 0;
        }
        for (int e = -200; e < 200; e++) {
                const char *name = rd_kafka_err2name((rd_kafka_resp_err_t)e);
                if (name && strcasecmp(name, s) == 0 && strncmp(name, "ERR_", 4) != 0) {
                        *err = (rd_kafka_resp_err_t)e;
                        return 0;
                }
        }
        return -1;
}

static int ctl_broker(const char *s, int brokers, int32_t *id)
{
        long v;
        if (ctl_parse_long(s, 1, brokers, &v))
                return -1;
        *id = (int32_t)v;
        return 0;
}

#define CTL_FAIL(...) (snprintf(out, out_size, "error: " __VA_ARGS__), -1)

static int ctl_errors(rd_kafka_mock_cluster_t *mc, char **argv, int argc, char *out,
                      size_t out_size)
{
        int16_t key;
        long cnt;
        rd_kafka_resp_err_t given[CTL_MAX_ERRS], errs[CTL_MAX_ERRS * 16];
        if (argc < 4)
                return CTL_FAIL("usage: errors API COUNT ERR [ERR...]");
        if (ctl_api(argv[1], &key))
                return CTL_FAIL("unknown API \"%s\"", argv[1]);
        if (ctl_parse_long(argv[2], 1, CTL_MAX_ERRS * 16, &cnt))
                return CTL_FAIL("COUNT \"%s\" is not 1..%d", argv[2], CTL_MAX_ERRS * 16);
        int ngiven = argc - 3 > CTL_MAX_ERRS ? CTL_MAX_ERRS : argc - 3;
        for (int i = 0; i < ngiven; i++)
                if (ctl_error(argv[3 + i], &given[i]))
                        return CTL_FAIL("unknown Kafka error \"%s\"", argv[3 + i]);
        for (long i = 0; i < cnt; i++)
                errs[i] = given[i % ngiven];
        rd_kafka_mock_push_request_errors_array(mc, key, (size_t)cnt, errs);
        snprintf(out, out_size, "ok %ld %s errors queued", cnt, argv[1]);
        if (key == 0) /* Produce */
                cm_log_warn("produce errors can lose acknowledged messages of idempotent "
                            "producers here: the mock cluster does not check their "
                            "sequence numbers (docs/devbroker.md); a real broker does");
        return 0;
}

int devbroker_control_apply(rd_kafka_mock_cluster_t *mc, int brokers, char *line,
                            char *out, size_t out_size)
{
        char *argv[CTL_MAX_ERRS + 8];
        int argc = 0;
        char *save = NULL;
        for (char *t = strtok_r(line, " \t\r\n", &save);
             t && argc < (int)(sizeof(argv) / sizeof(argv[0]));
             t = strtok_r(NULL, " \t\r\n", &save))
                argv[argc++] = t;
        if (argc == 0)
                return CTL_FAIL("empty command");
        const char *cmd = argv[0];
        int32_t id;
        long v;
        rd_kafka_resp_err_t err;

        if (strcmp(cmd, "ping") == 0) {
                snprintf(out, out_size, "ok pong");
                return 0;
        }
        if (strcmp(cmd, "broker-down") == 0 || strcmp(cmd, "broker-up") == 0) {
                if (argc != 2 || ctl_broker(argv[1], brokers, &id))
                        return CTL_FAIL("usage: %s ID (1..%d)", cmd, brokers);
                err = cmd[7] == 'd' ? rd_kafka_mock_broker_set_down(mc, id)
                                    : rd_kafka_mock_broker_set_up(mc, id);
        } else if (strcmp(cmd, "rtt") == 0) {
                if (argc != 3 || ctl_broker(argv[1], brokers, &id) ||
                    ctl_parse_long(argv[2], 0, 60000, &v))
                        return CTL_FAIL("usage: rtt ID MS (ID 1..%d, MS 0..60000)",
                                        brokers);
                err = rd_kafka_mock_broker_set_rtt(mc, id, (int)v);
        } else if (strcmp(cmd, "errors") == 0) {
                return ctl_errors(mc, argv, argc, out, out_size);
        } else if (strcmp(cmd, "clear-errors") == 0) {
                int16_t key;
                if (argc != 2 || ctl_api(argv[1], &key))
                        return CTL_FAIL("usage: clear-errors API");
                rd_kafka_mock_clear_request_errors(mc, key);
                err = RD_KAFKA_RESP_ERR_NO_ERROR;
        } else if (strcmp(cmd, "leader") == 0) {
                if (argc != 4 || ctl_parse_long(argv[2], 0, 100000, &v) ||
                    ctl_broker(argv[3], brokers, &id))
                        return CTL_FAIL("usage: leader TOPIC PARTITION ID (1..%d)",
                                        brokers);
                err = rd_kafka_mock_partition_set_leader(mc, argv[1], (int32_t)v, id);
        } else if (strcmp(cmd, "coordinator") == 0) {
                if (argc != 4 || ctl_broker(argv[3], brokers, &id) ||
                    (strcmp(argv[1], "group") && strcmp(argv[1], "transaction")))
                        return CTL_FAIL("usage: coordinator group|transaction KEY ID");
                err = rd_kafka_mock_coordinator_set(mc, argv[1], argv[2], id);
        } else {
                return CTL_FAIL(
                    "unknown command \"%s\" (ping, broker-down, broker-up, rtt, "
                    "errors, clear-errors, leader, coordinator)",
                    cmd);
        }
        if (err)
                return CTL_FAIL("%s: %s", cmd, rd_kafka_err2str(err));
        snprintf(out, out_size, "ok");
        return 0;
}

void devbroker_control_serve(int lfd, rd_kafka_mock_cluster_t *mcluster, int brokers)
{
        char line[CTL_LINE_MAX], out[512];
        size_t len = 0;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
                return;
        /* One short line from a local tool: a bounded wait keeps a silent client from
         * stalling the broker's signal handling. */
        struct pollfd p = {.fd = fd, .events = POLLIN};
        while (len < sizeof(line) - 1 && poll(&p, 1, 2000) == 1) {
                ssize_t n = read(fd, line + len, sizeof(line) - 1 - len);
                if (n <= 0)
                        break;
                len += (size_t)n;
                if (memchr(line, '\n', len))
                        break;
        }
        line[len] = '\0';
        char cmd[CTL_LINE_MAX];
        snprintf(cmd, sizeof(cmd), "%s", line);
        cmd[strcspn(cmd, "\r\n")] = '\0';
        int rc = devbroker_control_apply(mcluster, brokers, line, out, sizeof(out));
        if (rc == 0)
                cm_log_info("fault injection", "command", cmd, "result", out);
        else
                cm_log_warn("fault injection refused", "command", cmd, "result", out);
        size_t olen = strlen(out);
        out[olen++] = '\n';
        if (write(fd, out, olen) < 0)
                cm_log_warn("control answer not written", "error", strerror(errno));
        close(fd);
}

int devbroker_control_client(const char *path, int argc, char **argv)
{
        struct sockaddr_un sa;
        char line[CTL_LINE_MAX] = "", ans[512];
        int fd;
        size_t len = 0;
        for (int i = 0; i < argc; i++)
                len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s",
                                        i ? " " : "", argv[i]);
        if (len >= sizeof(line) - 1) {
                fprintf(stderr, "cm-devbroker: control command too long\n");
                return 2;
        }
        line[len++] = '\n';
        if (ctl_fill_addr(&sa, path) || (fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
            connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
                fprintf(stderr, "cm-devbroker: control socket \"%s\": %s\n", path,
                        strerror(errno));
                return 1;
        }
        ssize_t n =
            write(fd, line, len) == (ssize_t)len ? read(fd, ans, sizeof(ans) - 1) : -1;
        close(fd);
        if (n <= 0) {
                fprintf(stderr, "cm-devbroker: no answer on \"%s\"\n", path);
                return 1;
        }
        ans[n] = '\0';
        fputs(ans, stdout);
        return strncmp(ans, "ok", 2) == 0 ? 0 : 1;
}
