/*
 * worker_harness.h - what the cm-worker integration tests share: their own cm-devbroker,
 * their own database, real cm-worker processes, seal keys and an SSH key, commands built
 * and produced like cm-api does, and SQL / Kafka / HTTP probes.
 *
 * Processes are started with PR_SET_PDEATHSIG, so a test that dies takes its workers and
 * broker with it. Everything is single-threaded; include once per test program.
 */
#ifndef CM_WORKER_HARNESS_H
#define CM_WORKER_HARNESS_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <libpq-fe.h>
#include <uuid/uuid.h>

#include "free_port.h"
#include "cm/command.h"
#include "cm/event.h"
#include "cm/kafka.h"
#include "cm/seal.h"
#include "cm/spec.h"
#include "pg_testdb.h"

#define WH_MAX_WORKERS 4
#define T_CMD_MS       30000 /* how long a command may take to be handled */

typedef struct wh_env_s {
        char dir[256];
        char bootstrap[512];
        char dbname[65];
        char *conninfo;
        char pub[300], sec[300];
        pid_t broker;
        pid_t workers[WH_MAX_WORKERS];
        int health_port[WH_MAX_WORKERS];
        int worker_count;
        unsigned char *ssh_key; /* plaintext test key (never sent unsealed) */
        size_t ssh_key_len;
} wh_env_t;

static wh_env_t wh;
static PGconn *wh_db;
static cm_kafka_producer_t *wh_producer;
static cm_seal_keypair_t *wh_keys;

static long long wh_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wh_sleep_ms(int ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

static const char *wh_bindir(void)
{
        const char *b = getenv("CM_BINARY_DIR");
        if (!b || !*b) {
                fprintf(stderr, "CM_BINARY_DIR is not set (run through ctest)\n");
                exit(1);
        }
        return b;
}

/* Starts argv with extra environment (NAME=VALUE, NULL-terminated), output to log. */
static pid_t wh_spawn(char *const argv[], char *const env[], const char *log)
{
        pid_t parent = getpid(), pid = fork();
        ck_assert(pid >= 0);
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (getppid() != parent)
                        _exit(1);
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                        close(fd);
                }
                for (int i = 0; env && env[i]; i++)
                        putenv(env[i]);
                execv(argv[0], argv);
                _exit(127);
        }
        return pid;
}

static void wh_stop(pid_t *pid, int sig)
{
        if (*pid <= 0)
                return;
        kill(*pid, sig);
        for (int i = 0; i < 150; i++) {
                if (waitpid(*pid, NULL, WNOHANG) == *pid) {
                        *pid = 0;
                        return;
                }
                wh_sleep_ms(100);
        }
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
        *pid = 0;
}

static char *wh_read_file(const char *path, size_t *len)
{
        FILE *f = fopen(path, "rb");
        if (!f)
                return NULL;
        char *buf = calloc(1, 1 << 20);
        size_t n = fread(buf, 1, (1 << 20) - 1, f);
        fclose(f);
        if (len)
                *len = n;
        return buf;
}

static void wh_start_broker(void)
{
        char bin[512], bfile[400], log[400];
        snprintf(bin, sizeof(bin), "%s/tools/cm-devbroker", wh_bindir());
        snprintf(bfile, sizeof(bfile), "%s/bootstrap", wh.dir);
        snprintf(log, sizeof(log), "%s/devbroker.log", wh.dir);
        char *argv[] = {bin, "--bootstrap-file", bfile, NULL};
        wh.broker = wh_spawn(argv, NULL, log);
        for (int i = 0; i < 100; i++) {
                size_t n = 0;
                char *b = wh_read_file(bfile, &n);
                if (b && n > 0) {
                        while (n && (b[n - 1] == '\n' || b[n - 1] == ' '))
                                b[--n] = '\0';
                        snprintf(wh.bootstrap, sizeof(wh.bootstrap), "%s", b);
                        free(b);
                        return;
                }
                free(b);
                wh_sleep_ms(100);
        }
        ck_abort_msg("cm-devbroker did not start (see %s)", log);
}

/* Starts cm-worker number i (its log: DIR/worker-i.log). */
static void wh_start_worker(int i)
{
        char bin[512], log[400];
        static char env[10][700];
        char *envp[11];
        snprintf(bin, sizeof(bin), "%s/workers/cm-worker", wh_bindir());
        snprintf(log, sizeof(log), "%s/worker-%d.log", wh.dir, i);
        if (!wh.health_port[i])
                wh.health_port[i] = cm_test_port();
        snprintf(env[0], sizeof(env[0]), "CM_POSTGRES_CONNINFO=%s", wh.conninfo);
        snprintf(env[1], sizeof(env[1]), "CM_KAFKA_BOOTSTRAP_SERVERS=%s", wh.bootstrap);
        snprintf(env[2], sizeof(env[2]), "CM_HEALTH_LISTEN=127.0.0.1:%d",
                 wh.health_port[i]);
        snprintf(env[3], sizeof(env[3]), "CM_SEAL_PUBLIC_KEY_FILE=%s", wh.pub);
        snprintf(env[4], sizeof(env[4]), "CM_SEAL_SECRET_KEY_FILE=%s", wh.sec);
        snprintf(env[5], sizeof(env[5]), "CM_KAFKA_SESSION_TIMEOUT_MS=6000");
        snprintf(env[6], sizeof(env[6]), "CM_KAFKA_MESSAGE_TIMEOUT_MS=15000");
        snprintf(env[7], sizeof(env[7]), "CM_LOG_LEVEL=info");
        /* The command-side tests check what commands leave behind (a queued job, a
         * Canceling cluster): their workers run no job unless the test asks for runners
         * (CM_JOB_RUNNERS in its environment, as it_jobs does). */
        snprintf(env[8], sizeof(env[8]), "CM_JOB_RUNNERS=%s",
                 getenv("CM_JOB_RUNNERS") ? getenv("CM_JOB_RUNNERS") : "0");
        for (int k = 0; k < 9; k++)
                envp[k] = env[k];
        envp[9] = NULL;
        char *argv[] = {bin, NULL};
        wh.workers[i] = wh_spawn(argv, envp, log);
        if (i >= wh.worker_count)
                wh.worker_count = i + 1;
}

/* The pid of main(): forked tests share its folder, removed when every test passed. */
static pid_t pg_testdb_owner_pid(void)
{
        static pid_t main_pid;
        if (!main_pid)
                main_pid = pg_testdb_owner ? pg_testdb_owner : getpid();
        return main_pid;
}

static void wh_remove_dir(void)
{
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf /tmp/it-worker-%d",
                 (int)pg_testdb_owner_pid());
        if (system(cmd) != 0)
                fprintf(stderr, "cannot remove /tmp/it-worker-%d\n",
                        (int)pg_testdb_owner_pid());
}

/* Temporary folder, keys, SSH key, database; no process yet. */
static void wh_prepare(const char *tag)
{
        char cmd[700], err[512];
        free(wh.ssh_key); /* a fixture of an earlier case, inherited through fork */
        free(wh.conninfo);
        if (wh_db)
                PQfinish(wh_db);
        wh_db = NULL;
        memset(&wh, 0, sizeof(wh));
        snprintf(wh.dir, sizeof(wh.dir), "/tmp/it-worker-%d/%s",
                 (int)pg_testdb_owner_pid(), tag);
        snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s", wh.dir, wh.dir);
        ck_assert_int_eq(system(cmd), 0);
        snprintf(wh.pub, sizeof(wh.pub), "%s/seal.pub", wh.dir);
        snprintf(wh.sec, sizeof(wh.sec), "%s/seal.key", wh.dir);
        ck_assert_msg(cm_seal_keypair_generate(wh.pub, wh.sec, false, NULL, err,
                                               sizeof(err)) == CM_SEAL_OK,
                      "%s", err);
        snprintf(cmd, sizeof(cmd),
                 "ssh-keygen -q -t ed25519 -N '' -C it -f %s/id_ed25519", wh.dir);
        ck_assert_int_eq(system(cmd), 0);
        snprintf(cmd, sizeof(cmd), "%s/id_ed25519", wh.dir);
        wh.ssh_key = (unsigned char *)wh_read_file(cmd, &wh.ssh_key_len);
        ck_assert(wh.ssh_key && wh.ssh_key_len > 0);
        wh.conninfo = pg_testdb_create(wh.dbname);
}

static void wh_shutdown(void)
{
        (void)pg_testdb_drop;
        for (int i = 0; i < wh.worker_count; i++)
                wh_stop(&wh.workers[i], SIGTERM);
        wh_stop(&wh.broker, SIGTERM);
}

/* ---------------------------------------------------------------- database */

static PGconn *wh_pg(void)
{
        if (!wh_db) {
                wh_db = PQconnectdb(wh.conninfo);
                ck_assert_msg(PQstatus(wh_db) == CONNECTION_OK, "%s",
                              PQerrorMessage(wh_db));
        }
        return wh_db;
}

/* Runs sql with text parameters; the result is the caller's (PQclear). */
static PGresult *wh_sql(const char *sql, int n, const char *const *params)
{
        PGresult *r = PQexecParams(wh_pg(), sql, n, NULL, params, NULL, NULL, 0);
        ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK ||
                          PQresultStatus(r) == PGRES_COMMAND_OK,
                      "%s: %s", sql, PQresultErrorMessage(r));
        return r;
}

/* The first column of the first row as a malloc'd string ("<none>" when no row). */
static char *wh_scalar(const char *sql, int n, const char *const *params)
{
        PGresult *r = wh_sql(sql, n, params);
        char *s =
            strdup(PQntuples(r) ? (PQgetisnull(r, 0, 0) ? "<null>" : PQgetvalue(r, 0, 0))
                                : "<none>");
        PQclear(r);
        return s;
}

static long wh_count(const char *sql, const char *p1)
{
        const char *p[1] = {p1};
        char *s = wh_scalar(sql, p1 ? 1 : 0, p);
        long v = strtol(s, NULL, 10);
        free(s);
        return v;
}

/* Waits until the schema exists (the workers migrate it at start). */
static void wh_wait_schema(int timeout_ms)
{
        long long end = wh_now_ms() + timeout_ms;
        PGconn *c = wh_pg();
        while (wh_now_ms() < end) {
                PGresult *r = PQexec(c, "SELECT 1 FROM outbox LIMIT 0");
                int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
                PQclear(r);
                if (ok)
                        return;
                wh_sleep_ms(200);
        }
        ck_abort_msg("the workers did not migrate the database in %d ms", timeout_ms);
}

/* Waits for applied_commands to hold id; returns its result ("applied"/"rejected"). */
static char *wh_wait_command(const char *id, int timeout_ms)
{
        const char *p[1] = {id};
        long long end = wh_now_ms() + timeout_ms;
        while (wh_now_ms() < end) {
                char *s = wh_scalar(
                    "SELECT result FROM applied_commands WHERE command_id = $1", 1, p);
                if (strcmp(s, "<none>") != 0)
                        return s;
                free(s);
                wh_sleep_ms(100);
        }
        ck_abort_msg("command %s was not handled in %d ms", id, timeout_ms);
        return NULL;
}

/* Waits until sql (one parameter) returns expect as its scalar. */
static void wh_wait_scalar(const char *sql, const char *p1, const char *expect,
                           int timeout_ms)
{
        const char *p[1] = {p1};
        long long end = wh_now_ms() + timeout_ms;
        char *s = NULL;
        while (wh_now_ms() < end) {
                free(s);
                s = wh_scalar(sql, p1 ? 1 : 0, p);
                if (strcmp(s, expect) == 0) {
                        free(s);
                        return;
                }
                wh_sleep_ms(100);
        }
        ck_abort_msg("%s [%s]: expected %s, got %s after %d ms", sql, p1 ? p1 : "",
                     expect, s, timeout_ms);
}

/* ---------------------------------------------------------------- commands */

static void wh_uuid(char out[37])
{
        uuid_t u;
        uuid_generate_random(u);
        uuid_unparse_lower(u, out);
}

static cm_seal_keypair_t *wh_keypair(void)
{
        char err[512];
        if (!wh_keys)
                ck_assert_msg(cm_seal_keypair_load(&wh_keys, wh.pub, wh.sec, err,
                                                   sizeof(err)) == CM_SEAL_OK,
                              "%s", err);
        return wh_keys;
}

static void wh_seal(const void *plain, size_t len, unsigned char **out, size_t *out_len)
{
        char err[256];
        ck_assert(cm_seal_seal(cm_seal_keypair_pubkey(wh_keypair()), plain, len, out,
                               out_len, err, sizeof(err)) == CM_SEAL_OK);
}

static cm_command_t *wh_cmd(cm_command_kind_t kind, const char *cluster)
{
        cm_command_t *c = calloc(1, sizeof(*c));
        char id[37];
        wh_uuid(id);
        c->id = strdup(id);
        c->cluster = strdup(cluster);
        c->actor.name = strdup("it-admin");
        c->actor.role = strdup("admin");
        c->issued_at = (int64_t)time(NULL) * 1000;
        c->kind = kind;
        return c;
}

/* A valid spec for cluster as JSON: two nodes (controlplane+etcd, worker). */
static json_t *wh_spec_json(const char *cluster)
{
        return json_pack("{s:s,s:s,s:i,s:s,s:s,s:[{s:s,s:s,s:[s,s]},{s:s,s:s,s:[s]}]}",
                         "name", cluster, "sshUser", "ops", "sshPort", 22,
                         "managerAddress", "10.9.9.9", "clusterDomain", "cluster.local",
                         "nodes", "name", "n1", "address", "10.0.0.1", "roles",
                         "controlplane", "etcd", "name", "n2", "address", "10.0.0.2",
                         "roles", "worker");
}

static cm_command_t *wh_cmd_create_json(const char *cluster, json_t *spec)
{
        cm_command_t *c = wh_cmd(CM_COMMAND_CREATE, cluster);
        cm_field_errors_t errs = {0};
        ck_assert_int_eq(cm_spec_from_json(&c->create.spec, spec, &errs), 0);
        json_decref(spec);
        wh_seal(wh.ssh_key, wh.ssh_key_len, &c->create.ssh_key, &c->create.ssh_key_len);
        return c;
}

static cm_command_t *wh_cmd_create(const char *cluster)
{
        return wh_cmd_create_json(cluster, wh_spec_json(cluster));
}

static const char wh_kubeconfig[] =
    "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n    server: "
    "https://10.1.1.1:6443\nusers:\n- name: u\n  user:\n    token: it-secret-token-42\n";

static cm_command_t *wh_cmd_import(const char *cluster)
{
        cm_command_t *c = wh_cmd(CM_COMMAND_IMPORT, cluster);
        wh_seal(wh_kubeconfig, strlen(wh_kubeconfig), &c->import.kubeconfig,
                &c->import.kubeconfig_len);
        return c;
}

static cm_kafka_producer_t *wh_prod(void)
{
        char err[512];
        if (!wh_producer) {
                cm_kafka_conf_t kc = {.bootstrap_servers = wh.bootstrap,
                                      .client_id = "it_worker",
                                      .message_timeout_ms = 15000};
                wh_producer = cm_kafka_producer_new(&kc, NULL, NULL, err, sizeof(err));
                ck_assert_msg(wh_producer != NULL, "%s", err);
        }
        return wh_producer;
}

static void wh_produce_raw(const char *topic, const char *key, const void *value,
                           size_t len)
{
        char err[512];
        ck_assert_msg(cm_kafka_produce_sync(wh_prod(), topic, key, strlen(key), value,
                                            len, NULL, 0, 20000, NULL, NULL, err,
                                            sizeof(err)) == CM_KAFKA_OK,
                      "%s", err);
}

/* Encodes and produces cmd (keyed by its cluster); cmd stays the caller's. */
static void wh_send(const cm_command_t *cmd)
{
        unsigned char *buf;
        size_t len;
        char err[512];
        ck_assert_msg(cm_command_encode(cmd, &buf, &len, err, sizeof(err)) == 0, "%s",
                      err);
        wh_produce_raw("cm.commands", cmd->cluster, buf, len);
        free(buf);
}

static void wh_cmd_free(cm_command_t *c)
{
        cm_command_destroy(c);
        free(c);
}

/* ---------------------------------------------------------------- Kafka reads */

typedef struct wh_msg_s {
        char *key;
        unsigned char *value;
        size_t len;
        char *headers; /* "name=value\n"... */
} wh_msg_t;

/*
 * Reads topic from the start in a fresh group until want messages whose key satisfies
 * match (NULL: any) arrived, or timeout. Returns how many were stored in out.
 */
static size_t wh_consume_until(const char *topic,
                               int (*match)(const char *key, void *arg), void *arg,
                               wh_msg_t *out, size_t want,
                               int (*done)(const wh_msg_t *msgs, size_t got),
                               int timeout_ms)
{
        char group[64], err[512];
        wh_uuid(group);
        cm_kafka_conf_t kc = {.bootstrap_servers = wh.bootstrap,
                              .client_id = "it_worker_reader",
                              .group_id = group,
                              .session_timeout_ms = 6000};
        cm_kafka_consumer_t *c = cm_kafka_consumer_new(&kc, NULL, NULL, err, sizeof(err));
        ck_assert_msg(c != NULL, "%s", err);
        ck_assert(cm_kafka_consumer_subscribe(c, &topic, 1, err, sizeof(err)) ==
                  CM_KAFKA_OK);
        size_t got = 0;
        long long end = wh_now_ms() + timeout_ms;
        while (got < want && !(done && done(out, got)) && wh_now_ms() < end) {
                cm_kafka_message_t *m = NULL;
                cm_kafka_consumer_poll(c, 200, &m, err, sizeof(err));
                if (!m)
                        continue;
                char *key = strndup(m->key ? m->key : "", m->key_len);
                if (!match || match(key, arg)) {
                        out[got].key = key;
                        out[got].value = malloc(m->value_len + 1);
                        if (m->value_len) /* a DLQ record may have no value */
                                memcpy(out[got].value, m->value, m->value_len);
                        out[got].len = m->value_len;
                        size_t hn = cm_kafka_message_header_cnt(m), cap = 4096, n = 0;
                        out[got].headers = calloc(1, cap);
                        for (size_t i = 0; i < hn; i++) {
                                const char *name;
                                const void *v;
                                size_t vl;
                                cm_kafka_message_header_at(m, i, &name, &v, &vl);
                                n += snprintf(out[got].headers + n, cap - n, "%s=%.*s\n",
                                              name, (int)vl, v ? (const char *)v : "");
                                if (n >= cap)
                                        n = cap - 1;
                        }
                        got++;
                } else {
                        free(key);
                }
                cm_kafka_message_destroy(m);
        }
        cm_kafka_consumer_destroy(c);
        return got;
}

static size_t wh_consume(const char *topic, int (*match)(const char *key, void *arg),
                         void *arg, wh_msg_t *out, size_t want, int timeout_ms)
{
        return wh_consume_until(topic, match, arg, out, want, NULL, timeout_ms);
}

static void wh_msgs_free(wh_msg_t *m, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(m[i].key);
                free(m[i].value);
                free(m[i].headers);
        }
}

static int wh_match_prefix(const char *key, void *arg)
{
        return strncmp(key, arg, strlen(arg)) == 0;
}

/* ---------------------------------------------------------------- HTTP */

/* GET path from 127.0.0.1:port; returns the malloc'd response (headers and body). */
static char *wh_http_get(int port, const char *path)
{
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(0x7f000001)};
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
                if (fd >= 0)
                        close(fd);
                return NULL;
        }
        char req[256];
        int n = snprintf(
            req, sizeof(req),
            "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
        if (write(fd, req, (size_t)n) != n) {
                close(fd);
                return NULL;
        }
        size_t cap = 65536, len = 0;
        char *buf = calloc(1, cap);
        ssize_t r;
        while ((r = read(fd, buf + len, cap - len - 1)) > 0)
                len += (size_t)r;
        close(fd);
        return buf;
}

/* The value of a metric line "name value" summed over the running workers. */
static long wh_metric(const char *name)
{
        long sum = 0;
        for (int i = 0; i < wh.worker_count; i++) {
                if (wh.workers[i] <= 0)
                        continue;
                char *body = wh_http_get(wh.health_port[i], "/metrics");
                ck_assert_msg(body != NULL, "worker %d: /metrics did not answer", i);
                for (char *p = strstr(body, name); p; p = strstr(p + 1, name))
                        if ((p == body || p[-1] == '\n') && p[strlen(name)] == ' ')
                                sum += strtol(p + strlen(name) + 1, NULL, 10);
                free(body);
        }
        return sum;
}

/* Waits until worker i answers /readyz 200. */
static void wh_wait_ready(int i, int timeout_ms)
{
        long long end = wh_now_ms() + timeout_ms;
        while (wh_now_ms() < end) {
                char *r = wh_http_get(wh.health_port[i], "/readyz");
                int ok = r && strstr(r, " 200 ") != NULL;
                free(r);
                if (ok)
                        return;
                wh_sleep_ms(200);
        }
        ck_abort_msg("worker %d not ready in %d ms (see %s/worker-%d.log)", i, timeout_ms,
                     wh.dir, i);
}

/* ---------------------------------------------------------------- assertions */

static void decode_event(const unsigned char *buf, size_t len, cm_cluster_event_t *ev)
{
        char err[512];
        ck_assert_msg(cm_cluster_event_decode(buf, len, ev, err, sizeof(err)) == 0, "%s",
                      err);
}

/* Reads the event bytes of one row (sql with one parameter, bytea in column 0). */
static int read_event(const char *sql, int n, const char *const *p,
                      cm_cluster_event_t *ev)
{
        PGresult *r = PQexecParams(wh_pg(), sql, n, NULL, p, NULL, NULL, 1);
        ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s",
                      PQresultErrorMessage(r));
        int found = PQntuples(r) == 1;
        if (found)
                decode_event((const unsigned char *)PQgetvalue(r, 0, 0),
                             (size_t)PQgetlength(r, 0, 0), ev);
        PQclear(r);
        return found;
}

static void rejection_of(const char *cmd_id, cm_cluster_event_t *ev)
{
        const char *p[1] = {cmd_id};
        ck_assert_msg(
            read_event("SELECT event FROM rejection_outbox WHERE command_id = $1", 1, p,
                       ev),
            "no rejection_outbox row for %s", cmd_id);
}

static void outbox_of(const char *cluster, long seq, cm_cluster_event_t *ev)
{
        char s[24];
        snprintf(s, sizeof(s), "%ld", seq);
        const char *p[2] = {cluster, s};
        ck_assert_msg(
            read_event("SELECT event FROM outbox WHERE cluster = $1 AND seq = $2", 2, p,
                       ev),
            "no outbox row %s/%ld", cluster, seq);
}

static void assert_event(const cm_cluster_event_t *ev, const char *cluster, long seq,
                         const char *type, const char *from, const char *to)
{
        ck_assert_str_eq(ev->cluster, cluster);
        ck_assert_int_eq(ev->seq, seq);
        ck_assert_str_eq(ev->type, type);
        if (from)
                ck_assert_msg(ev->from_state && strcmp(ev->from_state, from) == 0,
                              "%s/%ld fromState %s, expected %s", cluster, seq,
                              ev->from_state ? ev->from_state : "null", from);
        else
                ck_assert_msg(!ev->from_state, "%s/%ld fromState %s, expected null",
                              cluster, seq, ev->from_state);
        if (to)
                ck_assert_msg(ev->to_state && strcmp(ev->to_state, to) == 0,
                              "%s/%ld toState %s, expected %s", cluster, seq,
                              ev->to_state ? ev->to_state : "null", to);
        else
                ck_assert_msg(!ev->to_state, "toState %s, expected null", ev->to_state);
}

/* No plaintext secret in buf: no private key block, no line of the SSH key body, no
 * kubeconfig token. */
static void assert_no_secret(const void *buf, size_t len, const char *what)
{
        /* a message may name the format "-----BEGIN OPENSSH PRIVATE KEY-----"; a key is
         * that line followed by its body (raw, or escaped in JSON) */
        ck_assert_msg(!memmem(buf, len, "PRIVATE KEY-----\n", 17) &&
                          !memmem(buf, len, "PRIVATE KEY-----\\n", 18),
                      "%s holds a private key", what);
        ck_assert_msg(!memmem(buf, len, wh_kubeconfig + 60, 20),
                      "%s holds the kubeconfig", what);
        ck_assert_msg(!memmem(buf, len, "it-secret-token-42", 18), "%s holds a token",
                      what);
        const char *body = memchr(wh.ssh_key, '\n', wh.ssh_key_len);
        ck_assert(body);
        ck_assert_msg(!memmem(buf, len, body + 1, 40), "%s holds the SSH key", what);
}

static void fixture_row(const char *name, const char *state, long seq, long version,
                        int imported)
{
        json_t *j = wh_spec_json(name);
        char *spec = json_dumps(j, JSON_COMPACT), s[24], v[24];
        json_decref(j);
        snprintf(s, sizeof(s), "%ld", seq);
        snprintf(v, sizeof(v), "%ld", version);
        const char *p[6] = {name, state, s, v, spec, imported ? "true" : "false"};
        PQclear(wh_sql(
            "INSERT INTO cluster_state (name, state, seq, version, spec, imported,"
            " ssh_key_sealed) VALUES ($1, $2, $3, $4, $5::jsonb, $6::boolean, '\\x01')",
            6, p));
        free(spec);
}

static char *row_snapshot(const char *name)
{
        const char *p[1] = {name};
        return wh_scalar(
            "SELECT concat_ws('|', state, seq, version, spec::text, imported,"
            " updated_at, last_error) FROM cluster_state WHERE name = $1",
            1, p);
}

static void expect_result(const char *id, const char *result)
{
        char *r = wh_wait_command(id, T_CMD_MS);
        ck_assert_msg(strcmp(r, result) == 0, "command %s: %s, expected %s", id, r,
                      result);
        free(r);
}

static char *state_of(const char *name)
{
        const char *p[1] = {name};
        return wh_scalar("SELECT state || ' ' || seq FROM cluster_state WHERE name = $1",
                         1, p);
}

#define ASSERT_STATE(name, expect)                                                       \
        do {                                                                             \
                char *s_ = state_of(name);                                               \
                ck_assert_msg(strcmp(s_, expect) == 0, "%s is \"%s\", expected \"%s\"",  \
                              name, s_, expect);                                         \
                free(s_);                                                                \
        } while (0)

static int match_exact(const char *key, void *arg)
{
        return strcmp(key, arg) == 0;
}

#endif
