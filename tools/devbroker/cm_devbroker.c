/*
 * cm-devbroker - a Kafka-protocol broker on loopback for development and tests:
 * librdkafka's mock cluster (in memory, N brokers), with cm's topics created before any
 * client connects.
 *
 *   cm-devbroker [--brokers N] [--partitions P] [--topics a,b,c] [--bootstrap-file PATH]
 *                [--control PATH] [--coordinator GROUP=ID]... [--log-level LEVEL]
 *   cm-devbroker --ctl PATH COMMAND...      (fault injection client: devbroker_control.h)
 *
 * Once the topics exist it writes the bootstrap servers to PATH (atomically) and prints
 * them on stdout, one line. It runs until SIGTERM or SIGINT, then destroys the cluster,
 * removes the bootstrap file it wrote (the ports are gone) and exits 0.
 *
 * main() is an event loop over a set of file descriptors: the signalfd and, with
 * --control, the fault-injection socket (broker down/up, request errors, RTT, leaders).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "cm/log.h"
#include "devbroker_control.h"

#define DEVBROKER_DEFAULT_TOPICS "cm.commands,cm.events,cm.progress,cm.commands.dlq"
#define DEVBROKER_MAX_TOPICS     64
#define DEVBROKER_MAX_FDS        8
#define DEVBROKER_MAX_COORDS     8

/* A consumer group pinned to a broker (--coordinator GROUP=ID). */
typedef struct devbroker_coord_s {
        const char *group;
        int broker;
} devbroker_coord_t;

typedef struct devbroker_opts_s {
        int brokers;
        int partitions;
        char *topics[DEVBROKER_MAX_TOPICS];
        int topic_cnt;
        const char *bootstrap_file;
        const char *control_path;
        devbroker_coord_t coords[DEVBROKER_MAX_COORDS];
        int coord_cnt;
        cm_log_level_t log_level;
} devbroker_opts_t;

typedef struct devbroker_s {
        devbroker_opts_t opts;
        rd_kafka_t *rk; /* the handle that owns the mock cluster */
        rd_kafka_mock_cluster_t *mcluster;
        char *bootstraps;
        int sigfd;
        int ctlfd;
        int running;
} devbroker_t;

/* One watched descriptor of the event loop and what to do when it is readable. */
typedef struct devbroker_watch_s {
        int fd;
        int (*on_readable)(devbroker_t *db, int fd);
} devbroker_watch_t;

static void usage(FILE *fp)
{
        fprintf(fp,
                "usage: cm-devbroker [options]\n"
                "  --brokers N            brokers in the mock cluster (default 3)\n"
                "  --partitions P         partitions per topic (default 12)\n"
                "  --topics a,b,c         topics to create (default %s)\n"
                "  --bootstrap-file PATH  write the bootstrap servers there once ready\n"
                "  --control PATH         serve fault injection on this Unix socket\n"
                "  --coordinator GROUP=ID make broker ID the coordinator of consumer\n"
                "                         group GROUP (repeatable; default: a hash)\n"
                "  --ctl PATH COMMAND...  send one fault-injection command and exit\n"
                "  --log-level LEVEL      debug | info | warn | error (default info)\n"
                "  -h, --help             this text\n",
                DEVBROKER_DEFAULT_TOPICS);
}

static int parse_int(const char *name, const char *s, int min, int max, int *out)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max) {
                cm_log_error("invalid option value", "option", name, "value", s);
                fprintf(stderr,
                        "cm-devbroker: %s: \"%s\" is not an integer in [%d, %d]\n", name,
                        s, min, max);
                return -1;
        }
        *out = (int)v;
        return 0;
}

static int parse_topics(devbroker_opts_t *o, const char *list)
{
        char *copy = strdup(list), *save = NULL, *t;

        o->topic_cnt = 0;
        for (t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (o->topic_cnt == DEVBROKER_MAX_TOPICS) {
                        fprintf(stderr, "cm-devbroker: --topics: more than %d topics\n",
                                DEVBROKER_MAX_TOPICS);
                        free(copy);
                        return -1;
                }
                o->topics[o->topic_cnt++] = strdup(t);
        }
        free(copy);
        if (o->topic_cnt == 0) {
                fprintf(stderr, "cm-devbroker: --topics: \"%s\" names no topic\n", list);
                return -1;
        }
        return 0;
}

/* GROUP=ID into o->coords; the broker count is checked once all options are read. */
static int parse_coord(devbroker_opts_t *o, char *arg)
{
        char *eq = strrchr(arg, '=');
        if (!eq || eq == arg) {
                fprintf(stderr,
                        "cm-devbroker: --coordinator: \"%s\" is not GROUP=BROKER_ID\n",
                        arg);
                return -1;
        }
        if (o->coord_cnt == DEVBROKER_MAX_COORDS) {
                fprintf(stderr, "cm-devbroker: --coordinator: at most %d groups\n",
                        DEVBROKER_MAX_COORDS);
                return -1;
        }
        devbroker_coord_t *c = &o->coords[o->coord_cnt];
        *eq = '\0';
        c->group = arg;
        if (parse_int("--coordinator", eq + 1, 1, 64, &c->broker))
                return -1;
        o->coord_cnt++;
        return 0;
}

/* Returns 0 to run, 1 to exit 0 (help), -1 to exit 2 (bad usage). */
static int parse_args(devbroker_opts_t *o, int argc, char **argv)
{
        static const struct option longopts[] = {
            {"brokers", required_argument, NULL, 'b'},
            {"partitions", required_argument, NULL, 'p'},
            {"topics", required_argument, NULL, 't'},
            {"bootstrap-file", required_argument, NULL, 'f'},
            {"log-level", required_argument, NULL, 'l'},
            {"control", required_argument, NULL, 'c'},
            {"coordinator", required_argument, NULL, 'o'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char *topics = DEVBROKER_DEFAULT_TOPICS;
        int c, lvl;

        o->brokers = 3;
        o->partitions = 12;
        o->log_level = CM_LOG_INFO;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                switch (c) {
                case 'b':
                        if (parse_int("--brokers", optarg, 1, 64, &o->brokers))
                                return -1;
                        break;
                case 'p':
                        if (parse_int("--partitions", optarg, 1, 10000, &o->partitions))
                                return -1;
                        break;
                case 't':
                        topics = optarg;
                        break;
                case 'f':
                        o->bootstrap_file = optarg;
                        break;
                case 'c':
                        o->control_path = optarg;
                        break;
                case 'o':
                        if (parse_coord(o, optarg))
                                return -1;
                        break;
                case 'l':
                        lvl = cm_log_level_parse(optarg);
                        if (lvl < 0) {
                                fprintf(stderr,
                                        "cm-devbroker: --log-level: \"%s\" is not debug, "
                                        "info, warn or error\n",
                                        optarg);
                                return -1;
                        }
                        o->log_level = (cm_log_level_t)lvl;
                        break;
                case 'h':
                        usage(stdout);
                        return 1;
                default:
                        usage(stderr);
                        return -1;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "cm-devbroker: unexpected argument \"%s\"\n",
                        argv[optind]);
                return -1;
        }
        for (int i = 0; i < o->coord_cnt; i++) {
                if (o->coords[i].broker > o->brokers) {
                        fprintf(stderr,
                                "cm-devbroker: --coordinator %s=%d: there are only %d "
                                "brokers\n",
                                o->coords[i].group, o->coords[i].broker, o->brokers);
                        return -1;
                }
        }
        return parse_topics(o, topics);
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
        (void)rk;
        cm_log(level <= 3   ? CM_LOG_ERROR
               : level == 4 ? CM_LOG_WARN
                            : CM_LOG_DEBUG,
               buf, "facility", fac, NULL);
}

static int cluster_start(devbroker_t *db)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        int replication = db->opts.brokers < 3 ? db->opts.brokers : 3;
        char errstr[512], num[16];
        rd_kafka_resp_err_t err;
        int i;

        rd_kafka_conf_set_log_cb(conf, log_cb);
        if (rd_kafka_conf_set(conf, "client.id", "cm-devbroker", errstr,
                              sizeof(errstr))) {
                cm_log_error("devbroker conf", "error", errstr);
                rd_kafka_conf_destroy(conf);
                return -1;
        }
        /* No bootstrap.servers: this handle only hosts the mock cluster. */
        db->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!db->rk) {
                cm_log_error("devbroker handle", "error", errstr);
                rd_kafka_conf_destroy(conf);
                return -1;
        }
        db->mcluster = rd_kafka_mock_cluster_new(db->rk, db->opts.brokers);
        if (!db->mcluster) {
                cm_log_error("mock cluster could not be created (ports on 127.0.0.1?)");
                return -1;
        }
        for (i = 0; i < db->opts.topic_cnt; i++) {
                err = rd_kafka_mock_topic_create(db->mcluster, db->opts.topics[i],
                                                 db->opts.partitions, replication);
                if (err) {
                        cm_log_error("topic create failed", "topic", db->opts.topics[i],
                                     "error", rd_kafka_err2str(err));
                        return -1;
                }
                snprintf(num, sizeof(num), "%d", db->opts.partitions);
                cm_log_info("topic created", "topic", db->opts.topics[i], "partitions",
                            num);
        }
        /* Pinned before any client asks (FindCoordinator): a fault test can then take
         * down every broker but the coordinators (docs/devbroker.md). */
        for (i = 0; i < db->opts.coord_cnt; i++) {
                const devbroker_coord_t *c = &db->opts.coords[i];
                err = rd_kafka_mock_coordinator_set(db->mcluster, "group", c->group,
                                                    c->broker);
                if (err) {
                        cm_log_error("coordinator set failed", "group", c->group, "error",
                                     rd_kafka_err2str(err));
                        return -1;
                }
                snprintf(num, sizeof(num), "%d", c->broker);
                cm_log_info("group coordinator pinned", "group", c->group, "broker", num);
        }
        db->bootstraps = strdup(rd_kafka_mock_cluster_bootstraps(db->mcluster));
        return 0;
}

static void cluster_stop(devbroker_t *db)
{
        if (db->mcluster)
                rd_kafka_mock_cluster_destroy(db->mcluster);
        db->mcluster = NULL;
        if (db->rk)
                rd_kafka_destroy(db->rk);
        db->rk = NULL;
}

/* Write to PATH.tmp.PID, fsync, rename: a reader never sees a partial line. */
static int bootstrap_file_write(const char *path, const char *bootstraps)
{
        char tmp[PATH_MAX];
        size_t len = strlen(bootstraps);
        int fd, ok;

        snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                goto fail;
        ok = write(fd, bootstraps, len) == (ssize_t)len && write(fd, "\n", 1) == 1 &&
             fsync(fd) == 0;
        if (close(fd) != 0 || !ok) {
                unlink(tmp);
                goto fail;
        }
        if (rename(tmp, path) != 0) {
                unlink(tmp);
                goto fail;
        }
        return 0;
fail:
        cm_log_error("cannot write bootstrap file", "path", path, "error",
                     strerror(errno));
        return -1;
}

/* Removes path only if it still holds our bootstraps (not a newer devbroker's). */
static void bootstrap_file_remove(const char *path, const char *bootstraps)
{
        char buf[4096];
        FILE *fp = fopen(path, "r");

        if (!fp)
                return;
        if (fgets(buf, sizeof(buf), fp)) {
                buf[strcspn(buf, "\n")] = '\0';
                if (strcmp(buf, bootstraps) == 0)
                        unlink(path);
        }
        fclose(fp);
}

static int on_signal(devbroker_t *db, int fd)
{
        struct signalfd_siginfo si;

        if (read(fd, &si, sizeof(si)) != sizeof(si))
                return 0;
        cm_log_info("signal received, stopping", "signal", strsignal((int)si.ssi_signo));
        db->running = 0;
        return 0;
}

static int on_control(devbroker_t *db, int fd)
{
        devbroker_control_serve(fd, db->mcluster, db->opts.brokers);
        return 0;
}

static int event_loop(devbroker_t *db, const devbroker_watch_t *watches, int cnt)
{
        struct pollfd pfds[DEVBROKER_MAX_FDS];
        int i, n;

        for (i = 0; i < cnt; i++) {
                pfds[i].fd = watches[i].fd;
                pfds[i].events = POLLIN;
        }
        while (db->running) {
                n = poll(pfds, (nfds_t)cnt, -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        cm_log_error("poll failed", "error", strerror(errno));
                        return -1;
                }
                for (i = 0; i < cnt; i++)
                        if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR))
                                if (watches[i].on_readable(db, watches[i].fd) < 0)
                                        return -1;
        }
        return 0;
}

int main(int argc, char **argv)
{
        devbroker_t db;
        sigset_t mask;
        int rc, i, status = 1;

        memset(&db, 0, sizeof(db));
        db.sigfd = -1;
        db.ctlfd = -1;
        cm_log_init("devbroker", CM_LOG_INFO);
        if (argc >= 4 && strcmp(argv[1], "--ctl") == 0)
                return devbroker_control_client(argv[2], argc - 3, argv + 3);
        rc = parse_args(&db.opts, argc, argv);
        if (rc != 0)
                return rc > 0 ? 0 : 2;
        cm_log_init("devbroker", db.opts.log_level);

        /* Blocked before librdkafka starts its threads, so only the signalfd sees them.
         */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        db.sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (db.sigfd < 0) {
                cm_log_error("signalfd failed", "error", strerror(errno));
                goto out;
        }

        if (cluster_start(&db) != 0)
                goto out;
        /* The control socket listens before the bootstrap file appears: whoever waits
         * for the file (scripts/lib/devbroker.sh) may send a fault at once. */
        if (db.opts.control_path &&
            (db.ctlfd = devbroker_control_listen(db.opts.control_path)) < 0)
                goto out;
        if (db.opts.bootstrap_file &&
            bootstrap_file_write(db.opts.bootstrap_file, db.bootstraps))
                goto out;
        printf("%s\n", db.bootstraps);
        fflush(stdout);
        cm_log_info("devbroker ready", "bootstrap_servers", db.bootstraps,
                    "bootstrap_file", db.opts.bootstrap_file);

        {
                const devbroker_watch_t watches[] = {{db.sigfd, on_signal},
                                                     {db.ctlfd, on_control}};

                db.running = 1;
                if (event_loop(&db, watches, db.ctlfd >= 0 ? 2 : 1) == 0)
                        status = 0;
        }

out:
        cluster_stop(&db);
        if (db.bootstraps && db.opts.bootstrap_file)
                bootstrap_file_remove(db.opts.bootstrap_file, db.bootstraps);
        if (db.sigfd >= 0)
                close(db.sigfd);
        if (db.ctlfd >= 0) {
                close(db.ctlfd);
                unlink(db.opts.control_path);
        }
        free(db.bootstraps);
        for (i = 0; i < db.opts.topic_cnt; i++)
                free(db.opts.topics[i]);
        cm_log_info("devbroker stopped", "status", status == 0 ? "0" : "1");
        return status;
}
