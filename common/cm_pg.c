/*
 * cm_pg.c - one PostgreSQL connection: bounded reconnects with backoff, session
 * statements and named statements set up again on every new connection, errors
 * classified as connection or query errors. Registering and executing statements is in
 * cm_pg_exec.c.
 *
 * Connecting uses libpq's non-blocking API (PQconnectStart/PQconnectPoll) under our own
 * deadline, because libpq's connect_timeout is per host and in whole seconds, and the
 * caller's budget must hold. The conninfo is kept only to connect: messages use
 * pg->target.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/log.h"
#include "cm/pg.h"
#include "cm_pg_int.h"

static int64_t pg_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pg_sleep_ms(int64_t ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
        while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
}

/* Copies a libpq message onto one line: newlines and tabs become single spaces. */
static void pg_flatten(char *dst, size_t size, const char *src)
{
        size_t n = 0;
        int space = 0;
        if (size == 0)
                return;
        for (; src && *src && n + 1 < size; src++) {
                if (*src == '\n' || *src == '\t' || *src == '\r' || *src == ' ') {
                        space = n > 0;
                        continue;
                }
                if (space && n + 2 < size)
                        dst[n++] = ' ';
                space = 0;
                dst[n++] = *src;
        }
        dst[n] = '\0';
}

void cm_pg_seterr_(char *errstr, size_t size, const char *fmt, ...)
{
        va_list ap;
        if (!errstr || size == 0)
                return;
        va_start(ap, fmt);
        vsnprintf(errstr, size, fmt, ap);
        va_end(ap);
}

const char *cm_pg_err2str(cm_pg_err_t err)
{
        switch (err) {
        case CM_PG_OK:
                return "ok";
        case CM_PG_ERR_CONN:
                return "connection error";
        case CM_PG_ERR_QUERY:
                return "query error";
        case CM_PG_ERR_ARG:
                return "invalid argument";
        }
        return "unknown error";
}

static void pg_build_target(cm_pg_t *pg, PQconninfoOption *opts)
{
        const char *host = NULL, *hostaddr = NULL, *port = NULL, *db = NULL, *user = NULL;
        for (PQconninfoOption *o = opts; o && o->keyword; o++) {
                if (!o->val || !*o->val)
                        continue;
                if (!strcmp(o->keyword, "host"))
                        host = o->val;
                else if (!strcmp(o->keyword, "hostaddr"))
                        hostaddr = o->val;
                else if (!strcmp(o->keyword, "port"))
                        port = o->val;
                else if (!strcmp(o->keyword, "dbname"))
                        db = o->val;
                else if (!strcmp(o->keyword, "user"))
                        user = o->val;
        }
        snprintf(pg->target, sizeof(pg->target), "host=%s port=%s dbname=%s user=%s",
                 host       ? host
                 : hostaddr ? hostaddr
                            : "(default)",
                 port ? port : "(default)", db ? db : "(default)",
                 user ? user : "(default)");
}

cm_pg_t *cm_pg_new(const char *conninfo, char *errstr, size_t errstr_size)
{
        char *perr = NULL;
        PQconninfoOption *opts;
        cm_pg_t *pg;

        if (!conninfo) {
                cm_pg_seterr_(errstr, errstr_size, "postgres.conninfo: not set");
                return NULL;
        }
        opts = PQconninfoParse(conninfo, &perr);
        if (!opts) {
                char why[256] = "";
                /* libpq quotes pieces of the string: only show them if no password is in
                 * it */
                if (perr && !strstr(conninfo, "password") && !strchr(conninfo, '@'))
                        pg_flatten(why, sizeof(why), perr);
                cm_pg_seterr_(
                    errstr, errstr_size,
                    "postgres.conninfo: not a valid libpq connection string%s%s",
                    why[0] ? ": " : " (value not shown: it may hold a password)", why);
                PQfreemem(perr);
                return NULL;
        }
        pg = calloc(1, sizeof(*pg));
        if (!pg || !(pg->conninfo = strdup(conninfo))) {
                free(pg);
                PQconninfoFree(opts);
                cm_pg_seterr_(errstr, errstr_size, "out of memory");
                return NULL;
        }
        pg_build_target(pg, opts);
        PQconninfoFree(opts);
        static atomic_uint pg_count;
        snprintf(pg->no, sizeof(pg->no), "%u", atomic_fetch_add(&pg_count, 1) + 1);
        pg->connect_timeout_ms = CM_PG_DEFAULT_CONNECT_TIMEOUT_MS;
        pg->min_ms = CM_PG_DEFAULT_RECONNECT_MIN_MS;
        pg->max_ms = CM_PG_DEFAULT_RECONNECT_MAX_MS;
        pg->backoff_ms = pg->min_ms;
        return pg;
}

cm_pg_t *cm_pg_new_config(const cm_config_t *conf, char *errstr, size_t errstr_size)
{
        cm_pg_t *pg = cm_pg_new(conf->postgres.conninfo, errstr, errstr_size);
        if (pg)
                cm_pg_set_timing(pg, conf->postgres.connect_timeout_s * 1000,
                                 conf->postgres.reconnect_min_ms,
                                 conf->postgres.reconnect_max_ms);
        return pg;
}

void cm_pg_set_timing(cm_pg_t *pg, int connect_timeout_ms, int reconnect_min_ms,
                      int reconnect_max_ms)
{
        if (connect_timeout_ms > 0)
                pg->connect_timeout_ms = connect_timeout_ms;
        if (reconnect_min_ms > 0)
                pg->min_ms = reconnect_min_ms;
        if (reconnect_max_ms > 0)
                pg->max_ms = reconnect_max_ms;
        if (pg->max_ms < pg->min_ms)
                pg->max_ms = pg->min_ms;
        pg->backoff_ms = pg->min_ms;
}

static void pg_close(cm_pg_t *pg)
{
        if (pg->conn)
                PQfinish(pg->conn);
        pg->conn = NULL;
}

void cm_pg_destroy(cm_pg_t *pg)
{
        if (!pg)
                return;
        pg_close(pg);
        for (size_t i = 0; i < pg->nstmts; i++) {
                free(pg->stmts[i].name);
                free(pg->stmts[i].sql);
        }
        free(pg->stmts);
        for (size_t i = 0; i < pg->nsession; i++)
                free(pg->session[i]);
        /* the conninfo may hold a password: do not leave it in freed memory */
        explicit_bzero(pg->conninfo, strlen(pg->conninfo));
        free(pg->conninfo);
        free(pg);
}

const char *cm_pg_target(const cm_pg_t *pg)
{
        return pg->target;
}

int cm_pg_connected(const cm_pg_t *pg)
{
        return pg->conn && PQstatus(pg->conn) == CONNECTION_OK;
}

void cm_pg_disconnect(cm_pg_t *pg)
{
        pg_close(pg);
        pg->next_attempt_ms = 0;
}

PGconn *cm_pg_conn(cm_pg_t *pg)
{
        return cm_pg_connected(pg) ? pg->conn : NULL;
}

const char *cm_pg_sqlstate(const cm_pg_t *pg)
{
        return pg->sqlstate;
}

int cm_pg_sqlstate_retryable(const char *s)
{
        return s && (!strcmp(s, "40001") || !strcmp(s, "40P01"));
}

unsigned long cm_pg_connect_count(const cm_pg_t *pg)
{
        return pg->gen;
}

static void pg_notice(void *arg, const char *message)
{
        char line[512];
        (void)arg;
        pg_flatten(line, sizeof(line), message);
        cm_log(CM_LOG_DEBUG, "postgres notice", "notice", line, NULL);
}

/* The connection was lost: drop it so cm_pg_ensure() reconnects, at once the first time.
 */
static void pg_conn_lost(cm_pg_t *pg)
{
        pg_close(pg);
        pg->next_attempt_ms = 0;
        pg->backoff_ms = pg->min_ms;
}

static int pg_sqlstate_is_conn(const char *s)
{
        /* class 08: connection exception; 57P01-57P03: admin/crash shutdown, cannot
         * connect */
        return s && (!strncmp(s, "08", 2) || !strcmp(s, "57P01") || !strcmp(s, "57P02") ||
                     !strcmp(s, "57P03"));
}

/*
 * Turns a result into an error code and message; clears r on error. what names the
 * statement. Leaves out DETAIL "Failing row contains (...)": it would copy a whole row
 * into a log line.
 */
cm_pg_err_t cm_pg_check_(cm_pg_t *pg, PGresult *r, const char *what, char *errstr,
                         size_t errstr_size)
{
        char msg[512];
        const char *st, *primary, *detail;
        ExecStatusType s;

        pg->sqlstate[0] = '\0';
        if (!r) {
                pg_flatten(msg, sizeof(msg), PQerrorMessage(pg->conn));
                if (PQstatus(pg->conn) == CONNECTION_BAD) {
                        pg_conn_lost(pg);
                        cm_pg_seterr_(errstr, errstr_size,
                                      "%s: connection to %s lost: %s", what, pg->target,
                                      msg);
                        return CM_PG_ERR_CONN;
                }
                cm_pg_seterr_(errstr, errstr_size, "%s: %s", what,
                              msg[0] ? msg : "out of memory");
                return CM_PG_ERR_QUERY;
        }
        s = PQresultStatus(r);
        if (s != PGRES_FATAL_ERROR && s != PGRES_NONFATAL_ERROR &&
            s != PGRES_BAD_RESPONSE)
                return CM_PG_OK;

        st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(pg->sqlstate, sizeof(pg->sqlstate), "%s", st ? st : "");
        primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
        if (primary) {
                char d[256] = "";
                if (detail && strncmp(detail, "Failing row contains", 20))
                        pg_flatten(d, sizeof(d), detail);
                snprintf(msg, sizeof(msg), "%s%s%s (SQLSTATE %s)", primary,
                         d[0] ? ": " : "", d, pg->sqlstate[0] ? pg->sqlstate : "none");
        } else {
                pg_flatten(msg, sizeof(msg), PQresultErrorMessage(r));
        }
        PQclear(r);
        if (PQstatus(pg->conn) == CONNECTION_BAD || pg_sqlstate_is_conn(pg->sqlstate)) {
                pg_conn_lost(pg);
                cm_pg_seterr_(errstr, errstr_size, "%s: connection to %s lost: %s", what,
                              pg->target, msg);
                return CM_PG_ERR_CONN;
        }
        cm_pg_seterr_(errstr, errstr_size, "%s: %s", what, msg);
        return CM_PG_ERR_QUERY;
}

cm_pg_err_t cm_pg_not_connected_(cm_pg_t *pg, const char *what, char *errstr,
                                 size_t errstr_size)
{
        if (pg->conn)
                pg_conn_lost(pg);
        pg->sqlstate[0] = '\0';
        cm_pg_seterr_(errstr, errstr_size, "%s: not connected to PostgreSQL %s", what,
                      pg->target);
        return CM_PG_ERR_CONN;
}

cm_pg_err_t cm_pg_prepare_one_(cm_pg_t *pg, cm_pg_stmt_t *st, char *errstr,
                               size_t errstr_size)
{
        char what[160];
        cm_pg_err_t err;
        PGresult *r = PQprepare(pg->conn, st->name, st->sql, st->nparams, NULL);
        snprintf(what, sizeof(what), "preparing statement \"%s\"", st->name);
        err = cm_pg_check_(pg, r, what, errstr, errstr_size);
        if (err == CM_PG_OK) {
                PQclear(r);
                st->gen = pg->gen;
        }
        return err;
}

/* One connection attempt that gives up at deadline (monotonic ms). */
static int pg_connect_once(cm_pg_t *pg, int64_t deadline)
{
        PostgresPollingStatusType st = PGRES_POLLING_WRITING;
        PGconn *c = PQconnectStart(pg->conninfo);

        if (!c) {
                snprintf(pg->last_error, sizeof(pg->last_error), "out of memory");
                return -1;
        }
        if (PQstatus(c) == CONNECTION_BAD)
                goto fail;
        while (st != PGRES_POLLING_OK) {
                struct pollfd p = {.fd = PQsocket(c)};
                int64_t left;
                int r;
                if (st == PGRES_POLLING_FAILED)
                        goto fail;
                left = deadline - pg_now_ms();
                if (left <= 0) {
                        snprintf(pg->last_error, sizeof(pg->last_error),
                                 "connection attempt timed out");
                        PQfinish(c);
                        return -1;
                }
                if (p.fd >= 0) {
                        p.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
                        r = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
                        if (r < 0 && errno != EINTR) {
                                snprintf(pg->last_error, sizeof(pg->last_error),
                                         "poll: %s", strerror(errno));
                                PQfinish(c);
                                return -1;
                        }
                        if (r <= 0)
                                continue;
                }
                st = PQconnectPoll(c);
        }
        PQsetNoticeProcessor(c, pg_notice, NULL);
        pg->conn = c;
        return 0;
fail:
        pg_flatten(pg->last_error, sizeof(pg->last_error), PQerrorMessage(c));
        if (!pg->last_error[0])
                snprintf(pg->last_error, sizeof(pg->last_error), "connection failed");
        PQfinish(c);
        return -1;
}

/* After a new connection: prepare every registered statement. 0, or -1 (connection lost).
 */
/* Runs the session statements on a new connection; -1 (last_error set) when one fails:
 * the attempt fails, so a connection never serves without its session settings. */
static int pg_session_setup(cm_pg_t *pg)
{
        char err[512];
        for (size_t i = 0; i < pg->nsession; i++) {
                PGresult *r = PQexec(pg->conn, pg->session[i]);
                if (cm_pg_check_(pg, r, "setting up the session", err, sizeof(err)) !=
                    CM_PG_OK) {
                        snprintf(pg->last_error, sizeof(pg->last_error), "%s", err);
                        return -1;
                }
                PQclear(r);
        }
        return 0;
}

static int pg_prepare_all(cm_pg_t *pg)
{
        char err[512];
        for (size_t i = 0; i < pg->nstmts; i++) {
                cm_pg_err_t e = cm_pg_prepare_one_(pg, &pg->stmts[i], err, sizeof(err));
                if (e == CM_PG_ERR_CONN) {
                        snprintf(pg->last_error, sizeof(pg->last_error), "%s", err);
                        return -1;
                }
                /* a statement the server rejects now (e.g. before migrations ran) is
                 * tried again when it is first executed */
                if (e != CM_PG_OK)
                        cm_log(CM_LOG_WARN, "postgres statement not prepared", "target",
                               pg->target, "statement", pg->stmts[i].name, "error", err,
                               NULL);
        }
        return 0;
}

static void pg_attempt_failed(cm_pg_t *pg)
{
        char n[24], wait[24];
        pg->failures++;
        pg->next_attempt_ms = pg_now_ms() + pg->backoff_ms;
        snprintf(n, sizeof(n), "%u", pg->failures);
        snprintf(wait, sizeof(wait), "%d", pg->backoff_ms);
        cm_log(CM_LOG_WARN, "postgres connection attempt failed", "target", pg->target,
               "conn", pg->no, "attempt", n, "retryInMs", wait, "error", pg->last_error,
               NULL);
        pg->backoff_ms =
            pg->backoff_ms > pg->max_ms / 2 ? pg->max_ms : pg->backoff_ms * 2;
}

cm_pg_err_t cm_pg_ensure(cm_pg_t *pg, int budget_ms, char *errstr, size_t errstr_size)
{
        int64_t start = pg_now_ms(), deadline, now;
        int attempts = 0;

        if (cm_pg_connected(pg))
                return CM_PG_OK;
        pg_close(pg);
        deadline = start + (budget_ms > 0 ? budget_ms : 0);
        for (;;) {
                int64_t until;
                now = pg_now_ms();
                if (now < pg->next_attempt_ms) {
                        if (pg->next_attempt_ms >= deadline)
                                break;
                        pg_sleep_ms(pg->next_attempt_ms - now);
                        continue;
                }
                until = now + pg->connect_timeout_ms;
                if (until > deadline)
                        until = deadline;
                if (until <= now)
                        break;
                attempts++;
                if (pg_connect_once(pg, until) == 0) {
                        pg->gen++;
                        if (pg_session_setup(pg) == 0 && pg_prepare_all(pg) == 0) {
                                if (pg->failures > 0) {
                                        char n[24];
                                        snprintf(n, sizeof(n), "%u", pg->failures);
                                        cm_log(CM_LOG_INFO, "postgres connected",
                                               "target", pg->target, "conn", pg->no,
                                               "failedAttempts", n, NULL);
                                }
                                pg->failures = 0;
                                pg->backoff_ms = pg->min_ms;
                                pg->next_attempt_ms = 0;
                                pg->last_error[0] = '\0';
                                return CM_PG_OK;
                        }
                        pg_close(pg);
                }
                pg_attempt_failed(pg);
        }
        now = pg_now_ms();
        if (attempts == 0 && !pg->last_error[0])
                cm_pg_seterr_(
                    errstr, errstr_size,
                    "PostgreSQL %s: no connection attempt fits in a budget of %d ms",
                    pg->target, budget_ms);
        else
                cm_pg_seterr_(
                    errstr, errstr_size,
                    "PostgreSQL %s: not connected after %d attempt(s) in %lld ms "
                    "(next in %lld ms): %s",
                    pg->target, attempts, (long long)(now - start),
                    (long long)(pg->next_attempt_ms > now ? pg->next_attempt_ms - now
                                                          : 0),
                    pg->last_error);
        return CM_PG_ERR_CONN;
}

cm_pg_err_t cm_pg_ping(cm_pg_t *pg, int timeout_ms, char *errstr, size_t errstr_size)
{
        int64_t deadline = pg_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
        cm_pg_err_t err = CM_PG_OK;
        PGresult *r;

        if (!cm_pg_connected(pg))
                return cm_pg_not_connected_(pg, "ping", errstr, errstr_size);
        if (!PQsendQuery(pg->conn, "SELECT 1"))
                return cm_pg_check_(pg, NULL, "ping", errstr, errstr_size);
        for (;;) {
                while (PQisBusy(pg->conn)) {
                        struct pollfd p = {.fd = PQsocket(pg->conn), .events = POLLIN};
                        int64_t left = deadline - pg_now_ms();
                        int rc;
                        if (left <= 0) {
                                pg_conn_lost(pg);
                                cm_pg_seterr_(
                                    errstr, errstr_size,
                                    "ping: PostgreSQL %s did not answer within %d ms",
                                    pg->target, timeout_ms);
                                return CM_PG_ERR_CONN;
                        }
                        rc = poll(&p, 1, (int)left);
                        if ((rc > 0 || (rc < 0 && errno != EINTR)) &&
                            !PQconsumeInput(pg->conn))
                                return cm_pg_check_(pg, NULL, "ping", errstr,
                                                    errstr_size);
                }
                r = PQgetResult(pg->conn);
                if (!r)
                        break;
                if (err == CM_PG_OK) {
                        err = cm_pg_check_(pg, r, "ping", errstr, errstr_size);
                        if (err == CM_PG_ERR_CONN)
                                return err;
                        if (err == CM_PG_OK)
                                PQclear(r);
                } else {
                        PQclear(r);
                }
        }
        return err;
}
