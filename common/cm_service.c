/* cm_service.c - the start, readiness and stop of every cm process. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/log.h"
#include "cm/migrate.h"
#include "cm/service.h"

static volatile sig_atomic_t cm_service_stop_flag;

typedef struct {
        pthread_mutex_t lock; /* the readiness connection is used by one check at a time */
        cm_pg_t *pg;
} cm_service_ready_t;

static void cm_service_on_signal(int sig)
{
        (void)sig;
        cm_service_stop_flag = 1;
}

int cm_service_stopping(void)
{
        return cm_service_stop_flag != 0;
}

void cm_service_request_stop(void)
{
        cm_service_stop_flag = 1;
}

void cm_service_sleep_ms(int ms)
{
        while (ms > 0 && !cm_service_stopping()) {
                int step = ms < 100 ? ms : 100;
                struct timespec ts = {0, (long)step * 1000000L};
                nanosleep(&ts, NULL);
                ms -= step;
        }
}

int cm_service_parse_args(int argc, char **argv, const char *progname,
                          const char **config_path)
{
        static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
        const char *usage = "usage: %s [-c FILE]\n"
                            "  -c, --config FILE  configuration file (every key is documented "
                            "in config/cm.conf.example);\n"
                            "                     CM_<SECTION>_<KEY> variables override it\n";
        int c;
        *config_path = NULL;
        optind = 1;
        while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
                if (c == 'c') {
                        *config_path = optarg;
                } else if (c == 'h') {
                        printf(usage, progname);
                        return 1;
                } else {
                        fprintf(stderr, usage, progname);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "%s: unexpected argument \"%s\"\n", progname, argv[optind]);
                fprintf(stderr, usage, progname);
                return 2;
        }
        return 0;
}

int cm_service_init(cm_service_t *svc, const char *component, const char *config_path,
                    char *errstr, size_t errstr_size)
{
        memset(svc, 0, sizeof(*svc));
        svc->component = component;
        cm_log_init(component, CM_LOG_INFO);
        if (cm_config_load(&svc->conf, config_path, errstr, errstr_size) != CM_CONFIG_OK)
                return -1;
        cm_log_init(svc->conf.log.component[0] ? svc->conf.log.component : component,
                    (cm_log_level_t)cm_log_level_parse(svc->conf.log.level));

        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = cm_service_on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        cm_service_ready_t *ready = calloc(1, sizeof(*ready));
        if (!ready) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        pthread_mutex_init(&ready->lock, NULL);
        svc->priv_ = ready;
        if (!(svc->pg = cm_pg_new_config(&svc->conf, errstr, errstr_size)) ||
            !(ready->pg = cm_pg_new_config(&svc->conf, errstr, errstr_size)))
                return -1;
        if (!(svc->health = cm_health_new(component))) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        return 0;
}

static int cm_service_check_db(void *opaque, char *errstr, size_t errstr_size)
{
        cm_service_ready_t *ready = opaque;
        pthread_mutex_lock(&ready->lock);
        int rc = cm_pg_ensure(ready->pg, 1000, errstr, errstr_size) != CM_PG_OK ||
                 cm_pg_ping(ready->pg, 1000, errstr, errstr_size) != CM_PG_OK;
        pthread_mutex_unlock(&ready->lock);
        return rc;
}

static int cm_service_check_broker(void *opaque, char *errstr, size_t errstr_size)
{
        cm_service_t *svc = opaque;
        int timeout = svc->conf.health.broker_timeout_ms;
        const char *topic = svc->ready_topic ? svc->ready_topic : svc->conf.kafka.commands_topic;
        if (svc->ready_producer)
                return cm_kafka_producer_ready(svc->ready_producer, topic, timeout, errstr,
                                               errstr_size) != CM_KAFKA_OK;
        if (svc->ready_consumer)
                return cm_kafka_consumer_ready(svc->ready_consumer, topic, timeout, errstr,
                                               errstr_size) != CM_KAFKA_OK;
        snprintf(errstr, errstr_size, "no broker connection yet");
        return 1;
}

int cm_service_serve_health(cm_service_t *svc, const char *listen, char *errstr,
                            size_t errstr_size)
{
        if (cm_health_add_check(svc->health, "database", cm_service_check_db, svc->priv_) ||
            cm_health_add_check(svc->health, "broker", cm_service_check_broker, svc))
                return -1;
        if (listen && cm_health_serve(svc->health, listen, errstr, errstr_size))
                return -1;
        if (listen) {
                char port[16];
                snprintf(port, sizeof(port), "%d", cm_health_port(svc->health));
                cm_log_info("health endpoints serving", "listen", listen, "port", port);
        }
        return 0;
}

int cm_service_connect_db(cm_service_t *svc, char *errstr, size_t errstr_size)
{
        char err[512];
        int applied = 0;
        while (cm_pg_ensure(svc->pg, 2000, err, sizeof(err)) != CM_PG_OK) {
                if (cm_service_stopping())
                        return 1;
                cm_log_warn("waiting for PostgreSQL", "error", err);
        }
        cm_migrate_err_t merr;
        while ((merr = cm_migrate_run(svc->pg, &applied, err, sizeof(err))) ==
               CM_MIGRATE_ERR_CONN) {
                if (cm_service_stopping())
                        return 1;
                cm_log_warn("connection lost while migrating; retrying", "error", err);
                cm_pg_ensure(svc->pg, 2000, err, sizeof(err));
        }
        if (merr != CM_MIGRATE_OK) {
                snprintf(errstr, errstr_size, "migrations: %s", err);
                return -1;
        }
        char n[16];
        snprintf(n, sizeof(n), "%d", applied);
        cm_log_info("database ready", "target", cm_pg_target(svc->pg), "migrations_applied", n);
        return 0;
}

void cm_service_destroy(cm_service_t *svc)
{
        cm_service_ready_t *ready = svc->priv_;
        cm_health_destroy(svc->health); /* stops the checks before their state goes */
        if (ready) {
                cm_pg_destroy(ready->pg);
                pthread_mutex_destroy(&ready->lock);
                free(ready);
        }
        cm_pg_destroy(svc->pg);
        cm_config_destroy(&svc->conf);
        memset(svc, 0, sizeof(*svc));
}
