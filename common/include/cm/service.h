/*
 * cm/service.h - what every cm process does around its own work: load the configuration,
 * start logging, handle SIGTERM/SIGINT, serve /healthz and /readyz, wait for PostgreSQL and
 * migrate it, and report readiness of the database and the broker.
 *
 * One cm_service_t per process, used from the main thread; the readiness checks it registers
 * run on the health server's threads and are thread-safe.
 */
#ifndef CM_SERVICE_H
#define CM_SERVICE_H

#include <stddef.h>

#include "cm/config.h"
#include "cm/health.h"
#include "cm/kafka.h"
#include "cm/pg.h"

typedef struct cm_service_s {
        const char *component;   /* "api", "worker", "projector" (static string) */
        cm_config_t conf;        /* owned */
        cm_pg_t *pg;             /* the main thread's connection, owned */
        cm_health_t *health;     /* owned; serving once cm_service_serve_health() ran */
        /* Set by the service so /readyz can ask the broker; not owned. */
        cm_kafka_producer_t *ready_producer;
        cm_kafka_consumer_t *ready_consumer;
        const char *ready_topic; /* topic that must exist for /readyz (default: commands) */
        void *priv_; /* readiness state (its own PostgreSQL connection and lock) */
} cm_service_t;

/*
 * Parses the options every service takes: -c/--config FILE and -h/--help (usage printed).
 * Returns 0 with *config_path set (NULL when not given; it points into argv), 1 when the
 * caller should exit 0 (help), 2 on a usage error (printed on stderr).
 */
int cm_service_parse_args(int argc, char **argv, const char *progname,
                          const char **config_path);

/*
 * Loads the configuration at config_path (NULL: defaults and environment only), starts
 * logging as component, installs SIGTERM/SIGINT handlers and creates (without connecting)
 * the PostgreSQL handles. Returns 0, or -1 with errstr naming the file, line and key.
 * On success the caller owns *svc and frees it with cm_service_destroy().
 */
int cm_service_init(cm_service_t *svc, const char *component, const char *config_path,
                    char *errstr, size_t errstr_size);

/* Serves /healthz, /readyz (database + broker checks) and /metrics on listen, so the
 * process answers while it waits for its dependencies. Returns 0 or -1 with errstr. */
int cm_service_serve_health(cm_service_t *svc, const char *listen, char *errstr,
                            size_t errstr_size);

/*
 * Connects to PostgreSQL, retrying with the configured backoff until it answers or a stop
 * is requested, then applies the migrations. Returns 0, 1 when a stop was requested first,
 * or -1 with errstr (a migration failed: the process must not run on a schema it does not
 * know).
 */
int cm_service_connect_db(cm_service_t *svc, char *errstr, size_t errstr_size);

/* 1 once SIGTERM or SIGINT arrived (or cm_service_request_stop ran). Async-signal-safe. */
int cm_service_stopping(void);
void cm_service_request_stop(void);

/* Sleeps up to ms, returning early when a stop is requested. */
void cm_service_sleep_ms(int ms);

/* Frees everything svc owns (not the Kafka handles it was lent). Safe on a zeroed svc. */
void cm_service_destroy(cm_service_t *svc);

#endif
