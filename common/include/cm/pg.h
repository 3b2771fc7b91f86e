/*
 * cm/pg.h - one PostgreSQL connection with bounded reconnects and named prepared
 * statements.
 *
 * cm_pg_new() only parses the conninfo (a typo stops the start at once); it does NOT
 * connect, so a service can start, answer /healthz and report not-ready while PostgreSQL
 * is down. cm_pg_ensure() connects or reconnects, with exponential backoff, never longer
 * than the budget it is given. Statements are registered once by name (cm_pg_prepare) and
 * prepared again automatically on every new connection.
 *
 * Statements never reconnect by themselves: a connection lost in the middle of a
 * transaction loses that transaction, so a statement reports CM_PG_ERR_CONN and the
 * caller runs cm_pg_ensure() and then retries the WHOLE transaction (every write of cm is
 * idempotent by command id or by (cluster, seq)). CM_PG_ERR_QUERY means the server
 * answered with an error whose SQLSTATE cm_pg_sqlstate() returns (40001/40P01: retry, see
 * cm_pg_sqlstate_retryable).
 *
 * The conninfo may hold a password: it is never logged nor put in an error message.
 * Messages name the target as cm_pg_target() prints it (host, port, dbname, user only),
 * and a statement by its registered name or the first line (60 characters at most) of its
 * SQL: pass values as parameters, never spliced into SQL text.
 *
 * Failed connection attempts are logged through cm/log.h (warn, with libpq's error).
 *
 * A cm_pg_t is NOT thread-safe: use one per thread (a health endpoint pings with its
 * own). Different cm_pg_t may be used from different threads at once.
 */
#ifndef CM_PG_H
#define CM_PG_H

#include <stddef.h>
#include <libpq-fe.h>

#include "cm/config.h"

typedef enum {
        CM_PG_OK = 0,
        CM_PG_ERR_CONN,  /* not connected, or the connection was lost: cm_pg_ensure(),
                            retry */
        CM_PG_ERR_QUERY, /* the server rejected the statement: see cm_pg_sqlstate() */
        CM_PG_ERR_ARG, /* caller error: bad conninfo, unknown or conflicting statement */
} cm_pg_err_t;

typedef struct cm_pg_s cm_pg_t;

#define CM_PG_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define CM_PG_DEFAULT_RECONNECT_MIN_MS   100
#define CM_PG_DEFAULT_RECONNECT_MAX_MS   5000

/*
 * Parses conninfo (key=value or postgresql:// URI) without connecting. Returns NULL with
 * a message in errstr if it cannot be parsed (libpq's reason is quoted only when the
 * string has no password in it). The caller owns the result; free with cm_pg_destroy().
 * Thread-safe.
 */
cm_pg_t *cm_pg_new(const char *conninfo, char *errstr, size_t errstr_size);

/*
 * Same, from the [postgres] section of the configuration (conninfo, connect_timeout_s,
 * reconnect_min_ms, reconnect_max_ms). Thread-safe; conf is only read.
 */
cm_pg_t *cm_pg_new_config(const cm_config_t *conf, char *errstr, size_t errstr_size);

/*
 * Sets the longest single connection attempt and the backoff between failed attempts
 * (from min_ms, doubling up to max_ms). Values <= 0 keep the current setting; max < min
 * is raised to min.
 */
void cm_pg_set_timing(cm_pg_t *pg, int connect_timeout_ms, int reconnect_min_ms,
                      int reconnect_max_ms);

/* Closes the connection (if any) and frees pg. NULL is a no-op. */
void cm_pg_destroy(cm_pg_t *pg);

/*
 * "host=... port=... dbname=... user=..." of the target, never the password. Owned by pg,
 * valid until cm_pg_destroy().
 */
const char *cm_pg_target(const cm_pg_t *pg);

/*
 * Returns CM_PG_OK at once if connected; otherwise connects, retrying with backoff, and
 * returns within budget_ms (plus scheduling noise) in every case. The backoff state
 * persists across calls, so a caller looping on cm_pg_ensure() does not hammer a server
 * that is down: a call that comes before the next attempt is due waits for it if the
 * budget allows, or returns CM_PG_ERR_CONN with the last error. On success every
 * registered statement is prepared on the new connection. CM_PG_ERR_CONN's message names
 * the target, the number of attempts and libpq's last error.
 */
cm_pg_err_t cm_pg_ensure(cm_pg_t *pg, int budget_ms, char *errstr, size_t errstr_size);

/* 1 if pg holds a connection that libpq considers healthy (no round trip). */
int cm_pg_connected(const cm_pg_t *pg);

/* Closes the connection; the next cm_pg_ensure() reconnects (with no backoff wait). */
void cm_pg_disconnect(cm_pg_t *pg);

/*
 * Registers statement name with sql and nparams parameters (types inferred by the
 * server). If connected, prepares it now so a bad statement is reported at once
 * (CM_PG_ERR_QUERY, not registered). If the connection is down or is lost meanwhile, the
 * statement stays registered, is prepared by the next successful cm_pg_ensure(), and
 * CM_PG_ERR_CONN is returned. Registering a name again with the same SQL is a no-op; with
 * other SQL, CM_PG_ERR_ARG.
 */
cm_pg_err_t cm_pg_prepare(cm_pg_t *pg, const char *name, const char *sql, int nparams,
                          char *errstr, size_t errstr_size);

#define CM_PG_SESSION_MAX 4 /* cm_pg_on_connect() statements per connection */

/*
 * Registers sql (a session setting such as "SET statement_timeout = '10s'", or
 * "LISTEN channel") to run on every new connection, before the statements are prepared,
 * so it survives reconnects; a connection on which it fails is closed and the attempt
 * counts as failed. If connected, runs it now: CM_PG_ERR_QUERY if the server refuses it
 * (not registered, errstr says why), CM_PG_ERR_CONN if not connected or the connection
 * was lost (registered: runs on the next connection). At most CM_PG_SESSION_MAX. Not
 * thread-safe (one pg).
 */
cm_pg_err_t cm_pg_on_connect(cm_pg_t *pg, const char *sql, char *errstr,
                             size_t errstr_size);

/* One statement of a module's table of statements (cm_pg_prepare_all). */
typedef struct cm_pg_statement_s {
        const char *name;
        int nparams;
        const char *sql;
} cm_pg_statement_t;

/*
 * cm_pg_prepare() for each of the n statements. Returns at once CM_PG_ERR_QUERY or
 * CM_PG_ERR_ARG for a bad statement (errstr names it: stop the start); otherwise
 * CM_PG_ERR_CONN if the connection is down (all stay registered and are prepared on the
 * next connect), else CM_PG_OK. The table is borrowed. Not thread-safe (one pg).
 */
cm_pg_err_t cm_pg_prepare_all(cm_pg_t *pg, const cm_pg_statement_t *stmts, size_t n,
                              char *errstr, size_t errstr_size);

/* 1 if e means a statement itself is wrong (not just an unreachable server). */
static inline int cm_pg_err_is_bad_statement(cm_pg_err_t e)
{
        return e == CM_PG_ERR_QUERY || e == CM_PG_ERR_ARG;
}

/*
 * Executes registered statement name (PQexecPrepared arguments). nparams must match the
 * registration. On CM_PG_OK, *res (if res is not NULL) is the result, owned by the caller
 * (PQclear); otherwise *res is NULL. A statement not yet prepared on this connection is
 * prepared first.
 */
cm_pg_err_t cm_pg_exec_prepared(cm_pg_t *pg, const char *name, int nparams,
                                const char *const *values, const int *lengths,
                                const int *formats, int result_format, PGresult **res,
                                char *errstr, size_t errstr_size);

/*
 * Executes sql (simple protocol, may hold several statements; the result is the last
 * one's). Ownership of *res as for cm_pg_exec_prepared(); res may be NULL.
 */
cm_pg_err_t cm_pg_exec(cm_pg_t *pg, const char *sql, PGresult **res, char *errstr,
                       size_t errstr_size);

/* Executes one statement with nparams text parameters ($1..); NULL values are SQL NULL.
 */
cm_pg_err_t cm_pg_exec_params(cm_pg_t *pg, const char *sql, int nparams,
                              const char *const *values, PGresult **res, char *errstr,
                              size_t errstr_size);

/* BEGIN / COMMIT / ROLLBACK. A CM_PG_ERR_CONN from COMMIT means the outcome is unknown:
 * retry the transaction (idempotently). ROLLBACK without a connection returns CM_PG_OK:
 * the server rolls back a transaction whose connection is gone. */
cm_pg_err_t cm_pg_begin(cm_pg_t *pg, char *errstr, size_t errstr_size);
cm_pg_err_t cm_pg_commit(cm_pg_t *pg, char *errstr, size_t errstr_size);
cm_pg_err_t cm_pg_rollback(cm_pg_t *pg, char *errstr, size_t errstr_size);

/*
 * Readiness: SELECT 1 within timeout_ms. Does not connect; a connection that does not
 * answer in time is closed (CM_PG_ERR_CONN) so the next cm_pg_ensure() makes a fresh one.
 */
cm_pg_err_t cm_pg_ping(cm_pg_t *pg, int timeout_ms, char *errstr, size_t errstr_size);

/*
 * The raw connection for LISTEN/NOTIFY or COPY, or NULL when not connected. Owned by pg
 * and valid until the next call on pg that may reconnect or disconnect; do not PQfinish
 * it.
 */
PGconn *cm_pg_conn(cm_pg_t *pg);

/* SQLSTATE of the last CM_PG_ERR_QUERY/CM_PG_ERR_CONN from the server, or "" (owned by
 * pg). */
const char *cm_pg_sqlstate(const cm_pg_t *pg);

/* 1 for serialization failure (40001) and deadlock (40P01): retrying the transaction
 * helps. */
int cm_pg_sqlstate_retryable(const char *sqlstate);

/* Number of successful connections made so far (tests and metrics: counts reconnects). */
unsigned long cm_pg_connect_count(const cm_pg_t *pg);

/* "ok", "connection error", "query error", "invalid argument". Static storage. */
const char *cm_pg_err2str(cm_pg_err_t err);

#endif
