/*
 * projector_stack.h - what it_projector.c runs against: its own cm-devbroker, a fresh
 * database (pg_testdb.h), the real cm-projector binary (started, stopped with SIGTERM or
 * killed), a producer of cm.ClusterEvent messages, SQL and /metrics probes.
 *
 * Everything started is stopped by stack_stop(), also when an assertion failed (Check's
 * teardown runs in the forked test). Logs go to files in the stack's folder; a failing
 * wait prints the projector's last lines.
 */
#ifndef CM_PROJECTOR_STACK_H
#define CM_PROJECTOR_STACK_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <libpq-fe.h>

#include "free_port.h"
#include "cm/event.h"
#include "cm/kafka.h"
#include "pg_testdb.h"

#define STACK_TOPIC      "cm.events"
#define STACK_PARTITIONS 3

typedef struct stack_s {
        char dir[256];
        char dbname[65];
        char *conninfo;
        char bootstrap[256];
        pid_t broker;
        pid_t projector;
        int health_port;
        int starts; /* projector starts so far: each writes projector-N.log */
        PGconn *db;
        cm_kafka_producer_t *producer;
} stack_t_;

static long long stack_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *stack_bindir(void)
{
        const char *d = getenv("CM_BINARY_DIR");
        ck_assert_msg(d && *d, "CM_BINARY_DIR is not set (run through ctest)");
        return d;
}

/* Prints the last lines of a log file on stderr (diagnostics of a failure). */
static void stack_tail(const char *path)
{
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "tail -n 25 '%s' >&2", path);
        if (system(cmd) != 0)
                fprintf(stderr, "(no log at %s)\n", path);
}

static void stack_tail_projector(stack_t_ *s)
{
        char path[400];
        snprintf(path, sizeof(path), "%s/projector-%d.log", s->dir, s->starts);
        fprintf(stderr, "--- %s\n", path);
        stack_tail(path);
}

static void stack_start_broker(stack_t_ *s)
{
        char bootfile[300], log[300], parts[16];
        snprintf(bootfile, sizeof(bootfile), "%s/bootstrap", s->dir);
        snprintf(log, sizeof(log), "%s/devbroker.log", s->dir);
        snprintf(parts, sizeof(parts), "%d", STACK_PARTITIONS);
        s->broker = fork();
        ck_assert(s->broker >= 0);
        if (s->broker == 0) {
                char bin[400];
                snprintf(bin, sizeof(bin), "%s/tools/cm-devbroker", stack_bindir());
                if (!freopen(log, "w", stderr) || !freopen("/dev/null", "w", stdout))
                        _exit(127);
                execl(bin, bin, "--partitions", parts, "--bootstrap-file", bootfile,
                      (char *)NULL);
                _exit(127);
        }
        for (int i = 0; i < 200; i++) {
                FILE *f = fopen(bootfile, "r");
                if (f) {
                        int ok = fgets(s->bootstrap, sizeof(s->bootstrap), f) != NULL;
                        fclose(f);
                        if (ok) {
                                s->bootstrap[strcspn(s->bootstrap, "\n")] = '\0';
                                if (s->bootstrap[0])
                                        return;
                        }
                }
                usleep(100 * 1000);
        }
        stack_tail(log);
        ck_abort_msg("cm-devbroker did not write %s within 20 s", bootfile);
}

/* Starts cm-projector with the stack's database, broker and health port. */
static void stack_start_projector(stack_t_ *s)
{
        char log[400], listen[64];
        s->starts++;
        snprintf(log, sizeof(log), "%s/projector-%d.log", s->dir, s->starts);
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", s->health_port);
        s->projector = fork();
        ck_assert(s->projector >= 0);
        if (s->projector == 0) {
                char bin[400];
                snprintf(bin, sizeof(bin), "%s/workers/cm-projector", stack_bindir());
                if (!freopen(log, "w", stderr) || !freopen("/dev/null", "w", stdout))
                        _exit(127);
                setenv("CM_POSTGRES_CONNINFO", s->conninfo, 1);
                setenv("CM_POSTGRES_RECONNECT_MIN_MS", "50", 1);
                setenv("CM_POSTGRES_RECONNECT_MAX_MS", "500", 1);
                setenv("CM_KAFKA_BOOTSTRAP_SERVERS", s->bootstrap, 1);
                setenv("CM_KAFKA_SESSION_TIMEOUT_MS", "6000", 1);
                setenv("CM_HEALTH_LISTEN", listen, 1);
                setenv("CM_LOG_LEVEL", "info", 1);
                execl(bin, bin, (char *)NULL);
                _exit(127);
        }
}

/* SIGTERM (graceful) or SIGKILL; returns the exit status (-1 if it had to be killed). */
static int stack_stop_projector(stack_t_ *s, int sig)
{
        int status = 0;
        if (s->projector <= 0)
                return 0;
        kill(s->projector, sig);
        for (int i = 0; i < 300; i++) {
                if (waitpid(s->projector, &status, WNOHANG) == s->projector) {
                        s->projector = 0;
                        return WIFEXITED(status) ? WEXITSTATUS(status)
                                                 : 128 + WTERMSIG(status);
                }
                usleep(100 * 1000);
        }
        kill(s->projector, SIGKILL);
        waitpid(s->projector, &status, 0);
        s->projector = 0;
        return -1;
}

static void stack_start(stack_t_ *s)
{
        char err[512];
        memset(s, 0, sizeof(*s));
        snprintf(s->dir, sizeof(s->dir), "/tmp/it_projector.XXXXXX");
        ck_assert(mkdtemp(s->dir) != NULL);
        s->conninfo = pg_testdb_create(s->dbname);
        s->health_port = cm_test_port();
        stack_start_broker(s);
        cm_kafka_conf_t kc = {.bootstrap_servers = s->bootstrap,
                              .client_id = "it_projector",
                              .message_timeout_ms = 15000};
        s->producer = cm_kafka_producer_new(&kc, NULL, NULL, err, sizeof(err));
        ck_assert_msg(s->producer, "%s", err);
        stack_start_projector(s);
        s->db = PQconnectdb(s->conninfo);
        ck_assert_msg(PQstatus(s->db) == CONNECTION_OK, "%s", PQerrorMessage(s->db));
}

static void stack_stop(stack_t_ *s)
{
        char cmd[400];
        stack_stop_projector(s, SIGTERM);
        cm_kafka_producer_destroy(s->producer, 2000);
        s->producer = NULL;
        if (s->broker > 0) {
                kill(s->broker, SIGTERM);
                waitpid(s->broker, NULL, 0);
                s->broker = 0;
        }
        if (s->db)
                PQfinish(s->db);
        s->db = NULL;
        pg_testdb_drop(s->dbname);
        free(s->conninfo);
        s->conninfo = NULL;
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
                fprintf(stderr, "cannot remove %s\n", s->dir);
}

/* Produces value with key = cluster and waits until the broker has it. */
static void stack_produce(stack_t_ *s, const char *cluster, const void *value, size_t len)
{
        char err[512];
        cm_kafka_err_t rc = cm_kafka_produce_sync(s->producer, STACK_TOPIC, cluster,
                                                  strlen(cluster), value, len, NULL, 0,
                                                  15000, NULL, NULL, err, sizeof(err));
        ck_assert_msg(rc == CM_KAFKA_OK, "produce for %s: %s", cluster, err);
}

/* First value of a query (static buffer; "" for no row, "<null>" for NULL). */
static const char *stack_sql(stack_t_ *s, const char *sql)
{
        static char out[4096];
        PGresult *r = PQexec(s->db, sql);
        ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql,
                      PQresultErrorMessage(r));
        if (PQntuples(r) == 0)
                out[0] = '\0';
        else if (PQgetisnull(r, 0, 0))
                snprintf(out, sizeof(out), "<null>");
        else
                snprintf(out, sizeof(out), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        return out;
}

static void stack_exec(stack_t_ *s, const char *sql)
{
        PGresult *r = PQexec(s->db, sql);
        ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK ||
                          PQresultStatus(r) == PGRES_TUPLES_OK,
                      "%s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
}

/* Waits up to timeout_ms until the query's first value equals want. */
static void stack_wait_sql(stack_t_ *s, const char *sql, const char *want, int timeout_ms)
{
        long long end = stack_now_ms() + timeout_ms;
        const char *got;
        for (;;) {
                got = stack_sql(s, sql);
                if (strcmp(got, want) == 0)
                        return;
                if (stack_now_ms() > end)
                        break;
                usleep(100 * 1000);
        }
        stack_tail_projector(s);
        ck_abort_msg("after %d ms, %s gives \"%s\", want \"%s\"", timeout_ms, sql, got,
                     want);
}

/* GET path on the health port; the body in a static buffer, *status the HTTP status. */
static const char *stack_http_get(stack_t_ *s, const char *path, int *status)
{
        static char buf[65536];
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons(s->health_port)};
        char req[256];
        size_t n = 0;
        ssize_t r;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *status = 0;
        buf[0] = '\0';
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
                if (fd >= 0)
                        close(fd);
                return buf;
        }
        snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
        if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
                close(fd);
                return buf;
        }
        while (n + 1 < sizeof(buf) && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
                n += (size_t)r;
        close(fd);
        buf[n] = '\0';
        sscanf(buf, "HTTP/1.%*d %d", status);
        char *body = strstr(buf, "\r\n\r\n");
        return body ? body + 4 : buf;
}

/* Value of metric name on /metrics, or -2 when unreachable or missing. */
static long long stack_metric(stack_t_ *s, const char *name)
{
        int status;
        const char *body = stack_http_get(s, "/metrics", &status);
        char key[128];
        snprintf(key, sizeof(key), "\n%s ", name);
        const char *p = status == 200 ? strstr(body, key) : NULL;
        return p ? strtoll(p + strlen(key), NULL, 10) : -2;
}

static void stack_wait_metric(stack_t_ *s, const char *name, long long want,
                              int timeout_ms)
{
        long long end = stack_now_ms() + timeout_ms, got;
        while ((got = stack_metric(s, name)) != want && stack_now_ms() < end)
                usleep(100 * 1000);
        if (got != want) {
                stack_tail_projector(s);
                ck_abort_msg("%s is %lld after %d ms, want %lld", name, got, timeout_ms,
                             want);
        }
}

#endif
