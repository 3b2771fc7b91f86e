/*
 * cm/log.h - structured logs: one JSON object per line on stderr.
 *
 *   {"time":"2026-11-21T12:00:00.123Z","level":"info","component":"worker",
 *    "msg":"command applied","cluster":"prod","seq":"4"}
 *
 * Fields are key/value string pairs. A field whose key names a secret (sshKey, kubeconfig,
 * token, password, secret, privateKey, conninfo ...) is written as "[redacted]", and a
 * password=... inside any value is masked, so a careless call cannot leak a secret.
 * Likewise any secret key=value, a URL's password and a Bearer token in the message or a
 * value. Invalid UTF-8 becomes U+FFFD; a message or value over 16 KiB is cut and ends
 * with "...[truncated]"; a field named time, level, component or msg is written _time ...
 * All functions are thread-safe: each line is written with one write(2).
 */
#ifndef CM_LOG_H
#define CM_LOG_H

typedef enum {
        CM_LOG_DEBUG = 0,
        CM_LOG_INFO,
        CM_LOG_WARN,
        CM_LOG_ERROR,
} cm_log_level_t;

/* Sets the process-wide component name and minimum level. Call once at start. */
void cm_log_init(const char *component, cm_log_level_t min_level);

/* Parses "debug" | "info" | "warn" | "error"; returns -1 for anything else. */
int cm_log_level_parse(const char *s);

/*
 * Logs msg with fields given as (const char *key, const char *value) pairs ended by NULL.
 * A NULL value is written as JSON null.
 *   cm_log(CM_LOG_INFO, "command applied", "cluster", name, "seq", seqstr, NULL);
 */
void cm_log(cm_log_level_t level, const char *msg, ...) __attribute__((sentinel));

/* Same, with the message formatted printf-style and no fields. */
void cm_logf(cm_log_level_t level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Redirects output to fd (default 2) - for tests that read what was logged. */
void cm_log_set_fd(int fd);

/* 1 if a line at level would be written: lets a caller skip building costly fields. */
int cm_log_enabled(cm_log_level_t level);

/*
 * 1 if key names a secret, the rule cm_log() applies to field keys: ignoring case and
 * _ - ., the key contains password, passwd, secret, token, kubeconfig, conninfo,
 * authorization, privatekey, sshkey or credential, or ends with key/keys (key, apiKey,
 * ssh_key).
 */
int cm_log_key_is_secret(const char *key);

#define cm_log_debug(...) cm_log(CM_LOG_DEBUG, __VA_ARGS__, NULL)
#define cm_log_info(...)  cm_log(CM_LOG_INFO, __VA_ARGS__, NULL)
#define cm_log_warn(...)  cm_log(CM_LOG_WARN, __VA_ARGS__, NULL)
#define cm_log_error(...) cm_log(CM_LOG_ERROR, __VA_ARGS__, NULL)

#endif
