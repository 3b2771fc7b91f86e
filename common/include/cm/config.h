/*
 * cm/config.h - the configuration of every cm service, read from one libconfig file.
 *
 * Every key is declared once, in the key table of cm_config.c, with its type, default, range
 * and documentation; config/cm.conf.example documents every key. Precedence: built-in default,
 * then the file, then the environment (CM_<SECTION>_<KEY>, e.g. CM_KAFKA_BOOTSTRAP_SERVERS).
 * An unknown key, a wrong type or an out-of-range value stops the start with the file, line and
 * key named.
 */
#ifndef CM_CONFIG_H
#define CM_CONFIG_H

#include <stddef.h>

typedef enum {
        CM_CONFIG_OK = 0,
        CM_CONFIG_ERR_IO,          /* file cannot be read */
        CM_CONFIG_ERR_SYNTAX,      /* libconfig parse error */
        CM_CONFIG_ERR_UNKNOWN_KEY, /* key or section not in the table */
        CM_CONFIG_ERR_TYPE,        /* wrong type (file or environment) */
        CM_CONFIG_ERR_RANGE,       /* value outside the allowed range or set */
} cm_config_err_t;

typedef struct cm_config_s {
        struct {
                char *level;     /* debug | info | warn | error */
                char *component; /* overrides the service's own component name if set */
        } log;
        struct {
                char *bootstrap_servers;
                char *client_id;
                char *assignment_strategy; /* roundrobin | range | cooperative-sticky */
                char *commands_topic;
                char *events_topic;
                char *progress_topic;
                char *dlq_topic;
                char *worker_group;
                char *projector_group;
                int session_timeout_ms;
                int fetch_wait_max_ms;
                int message_timeout_ms;
        } kafka;
        struct {
                char *conninfo; /* libpq connection string (may hold a password: never logged) */
                int connect_timeout_s;
                int reconnect_min_ms;
                int reconnect_max_ms;
        } postgres;
        struct {
                char *listen; /* host:port of cm-api */
                int threads;
                int max_body_bytes;
                int wait_max_s; /* upper bound of Prefer: wait=N */
                int sse_keepalive_s; /* keep-alive comment interval of event streams */
                int rate_limit_per_s; /* token bucket per token / address; 0: off */
                int rate_limit_burst;
        } api;
        struct {
                char *listen; /* host:port of /healthz, /readyz, /metrics for worker/projector;
                                 port 0 picks a free port */
                int broker_timeout_ms;
        } health;
        struct {
                char *public_key_file;
                char *secret_key_file;
        } seal;
        struct {
                int runners; /* job runner threads of one cm-worker */
                int max_attempts;
                int lease_s;
                int heartbeat_s;
        } job;
        struct {
                int interval_s;
                int timeout_s;
                int parallelism; /* clusters probed at the same time */
        } probe;
        struct {
                int deadline_s;
        } connect;
        struct {
                int parallelism;
                int command_timeout_s;
                int connect_timeout_s;
                char *node_root; /* "" or a folder with {{node_name}} / {{node_address}} */
        } zke;

        char *path; /* file it was read from, or NULL for defaults only */
} cm_config_t;

/*
 * Fills *conf with the defaults, then the file at path (NULL: no file), then the environment.
 * On error returns a code and writes "file:line: key: reason" into errstr; *conf is then
 * released. The caller owns *conf and frees it with cm_config_destroy(). Not thread-safe
 * (reads the environment); call once at start.
 * An error from the environment names the variable instead: "CM_API_THREADS: expected an
 * integer, got \"abc\"". Also checked: reconnect_min_ms <= reconnect_max_ms and
 * job.heartbeat_s < job.lease_s (CM_CONFIG_ERR_RANGE, naming both keys).
 */
cm_config_err_t cm_config_load(cm_config_t *conf, const char *path, char *errstr,
                               size_t errstr_size);

/*
 * Like cm_config_load, with the file's text given in memory: text[0..len) (no NUL
 * needed; a NUL byte inside is a syntax error) is read as the file named name (NULL:
 * "(string)"), which messages name and conf->path keeps; @include is relative to name's
 * directory. cm_config_load reads its file and comes here. Not thread-safe (reads the
 * environment).
 */
cm_config_err_t cm_config_load_string(cm_config_t *conf, const char *text, size_t len,
                                      const char *name, char *errstr, size_t errstr_size);

/* A static description of err ("configuration value out of range"). Thread-safe. */
const char *cm_config_err2str(cm_config_err_t err);

/* Frees the strings of conf (not conf itself). Safe on a zeroed or destroyed conf. */
void cm_config_destroy(cm_config_t *conf);

/*
 * Writes the documented example configuration (every key, its default and its meaning) to
 * fp-compatible text in a malloc'd string the caller frees. Thread-safe.
 */
char *cm_config_example(void);

#endif
