/*
 * bench_main.c - cm-bench: options, subcommand dispatch and the helpers of bench.h.
 *
 *   cm-bench commands   --bootstrap B --topic T --conninfo C --pub F --sshkey F --n N
 * --prefix P cm-bench worker-sql --conninfo C --pub F --sshkey F --n N --prefix P
 *   cm-bench events     --bootstrap B --topic T --conninfo C --n N --prefix P
 *   cm-bench copy       --conninfo C
 *   cm-bench pace       --url U --token T --sshkey F --conninfo C --rate R --seconds S
 *                       --prefix P [--concurrency M]
 *   cm-bench zke-precheck --n N --user U --port P --sshkey F
 *   cm-bench zke-script
 *   cm-bench imports    --bootstrap B --topic T --conninfo C --pub F --kubeconfig LIST
 *                       --n N --start I --prefix P
 * Each prints one JSON object on stdout; progress and errors go to stderr.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uuid/uuid.h>

#include "bench.h"
#include "cm/log.h"

double bench_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t bench_epoch_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bench_sleep_ms(int ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

void bench_uuid(char buf[37])
{
        uuid_t u;
        uuid_generate_random(u);
        uuid_unparse_lower(u, buf);
}

void bench_die(const char *fmt, ...)
{
        va_list ap;
        fputs("cm-bench: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(1);
}

char *bench_read_file(const char *path, size_t *len)
{
        FILE *f = fopen(path, "rb");
        if (!f)
                bench_die("cannot read %s", path);
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *buf = calloc(1, (size_t)(size > 0 ? size : 0) + 1);
        if (!buf || (size > 0 && fread(buf, 1, (size_t)size, f) != (size_t)size))
                bench_die("cannot read %s", path);
        fclose(f);
        if (len)
                *len = (size_t)size;
        return buf;
}

PGconn *bench_pg_connect(const char *conninfo)
{
        PGconn *db = PQconnectdb(conninfo);
        if (PQstatus(db) != CONNECTION_OK)
                bench_die("cannot connect to PostgreSQL: %s", PQerrorMessage(db));
        return db;
}

long long bench_pg_count(PGconn *db, const char *sql)
{
        PGresult *r = PQexec(db, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
                bench_die("%s: %s", sql, PQerrorMessage(db));
        long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        return v;
}

long long bench_pg_wait_count(PGconn *db, const char *sql, long long want, int timeout_s)
{
        double end = bench_now() + timeout_s;
        long long got;
        while ((got = bench_pg_count(db, sql)) < want && bench_now() < end)
                bench_sleep_ms(10);
        return got;
}

double bench_percentile(const double *sorted, size_t n, double p)
{
        if (!n)
                return 0;
        size_t rank = (size_t)(p * (double)n + 0.999999);
        if (rank < 1)
                rank = 1;
        return sorted[(rank > n ? n : rank) - 1];
}

void bench_spec(cm_spec_t *spec, const char *name)
{
        char text[1024];
        json_error_t jerr;
        cm_field_errors_t errs = {0};
        snprintf(text, sizeof(text), BENCH_SPEC_JSON_FMT, name);
        json_t *j = json_loads(text, 0, &jerr);
        if (!j || cm_spec_from_json(spec, j, &errs) != 0)
                bench_die("the benchmark spec does not parse: %s",
                          errs.count ? errs.items[0].message : jerr.text);
        json_decref(j);
}

void bench_create_command(cm_command_t *cmd, const char *name, const cm_seal_pubkey_t *pk,
                          const unsigned char *key, size_t key_len)
{
        char id[37], err[256];
        memset(cmd, 0, sizeof(*cmd));
        bench_uuid(id);
        cmd->id = strdup(id);
        cmd->cluster = strdup(name);
        cmd->actor.name = strdup("bench");
        cmd->actor.role = strdup("admin");
        cmd->issued_at = bench_epoch_ms();
        cmd->kind = CM_COMMAND_CREATE;
        bench_spec(&cmd->create.spec, name);
        if (cm_seal_seal(pk, key, key_len, &cmd->create.ssh_key, &cmd->create.ssh_key_len,
                         err, sizeof(err)) != CM_SEAL_OK)
                bench_die("cannot seal the SSH key: %s", err);
}

void bench_free_messages(char **keys, unsigned char **msgs, size_t *lens, long n)
{
        for (long i = 0; i < n; i++) {
                free(keys[i]);
                free(msgs[i]);
        }
        free(keys);
        free(msgs);
        free(lens);
}

static void usage(FILE *fp)
{
        fputs("usage: cm-bench commands|worker-sql|events|copy|pace|zke-precheck|"
              "zke-script|imports [options]\n"
              "  --bootstrap B --topic T --conninfo C --pub FILE --sshkey FILE\n"
              "  --n N --prefix P --url U --token T --rate R --seconds S\n"
              "  --concurrency M --timeout S --user U --port P --kubeconfig LIST\n"
              "  --start I\n",
              fp);
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"bootstrap", required_argument, NULL, 'b'},
            {"topic", required_argument, NULL, 't'},
            {"conninfo", required_argument, NULL, 'd'},
            {"pub", required_argument, NULL, 'k'},
            {"sshkey", required_argument, NULL, 's'},
            {"prefix", required_argument, NULL, 'p'},
            {"url", required_argument, NULL, 'u'},
            {"token", required_argument, NULL, 'a'},
            {"n", required_argument, NULL, 'n'},
            {"rate", required_argument, NULL, 'r'},
            {"seconds", required_argument, NULL, 'S'},
            {"concurrency", required_argument, NULL, 'c'},
            {"timeout", required_argument, NULL, 'T'},
            {"user", required_argument, NULL, 'U'},
            {"port", required_argument, NULL, 'P'},
            {"kubeconfig", required_argument, NULL, 'K'},
            {"start", required_argument, NULL, 'I'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0}};
        bench_opts_t o = {.prefix = "bench", .concurrency = 64, .timeout_s = 120};
        int c;

        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        const char *sub = argv[1];
        optind = 2;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                switch (c) {
                case 'b':
                        o.bootstrap = optarg;
                        break;
                case 't':
                        o.topic = optarg;
                        break;
                case 'd':
                        o.conninfo = optarg;
                        break;
                case 'k':
                        o.pub = optarg;
                        break;
                case 's':
                        o.sshkey = optarg;
                        break;
                case 'p':
                        o.prefix = optarg;
                        break;
                case 'u':
                        o.url = optarg;
                        break;
                case 'a':
                        o.token = optarg;
                        break;
                case 'n':
                        o.n = atol(optarg);
                        break;
                case 'r':
                        o.rate = atof(optarg);
                        break;
                case 'S':
                        o.seconds = atof(optarg);
                        break;
                case 'c':
                        o.concurrency = atoi(optarg);
                        break;
                case 'T':
                        o.timeout_s = atoi(optarg);
                        break;
                case 'U':
                        o.user = optarg;
                        break;
                case 'P':
                        o.port = atoi(optarg);
                        break;
                case 'K':
                        o.kubeconfig = optarg;
                        break;
                case 'I':
                        o.start = atol(optarg);
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        cm_log_init("cm-bench", CM_LOG_WARN);
        cm_log_set_fd(2);
        if (cm_seal_init() != 0)
                bench_die("libsodium does not start");
        if (strcmp(sub, "commands") == 0)
                return bench_commands(&o);
        if (strcmp(sub, "worker-sql") == 0)
                return bench_worker_sql(&o);
        if (strcmp(sub, "events") == 0)
                return bench_events(&o);
        if (strcmp(sub, "copy") == 0)
                return bench_copy(&o);
        if (strcmp(sub, "pace") == 0)
                return bench_pace(&o);
        if (strcmp(sub, "zke-precheck") == 0)
                return bench_zke_precheck(&o);
        if (strcmp(sub, "zke-script") == 0)
                return bench_zke_script();
        if (strcmp(sub, "imports") == 0)
                return bench_imports(&o);
        fprintf(stderr, "cm-bench: unknown subcommand \"%s\"\n", sub);
        usage(stderr);
        return 2;
}
