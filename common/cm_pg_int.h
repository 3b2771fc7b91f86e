/*
 * cm_pg_int.h - what cm_pg.c (the connection: connect, reconnect, backoff, session
 * setup) and cm_pg_exec.c (statements: register, prepare, execute, transactions) share.
 * Internal to libcm.
 */
#ifndef CM_PG_INT_H
#define CM_PG_INT_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "cm/pg.h"

typedef struct cm_pg_stmt_s {
        char *name;
        char *sql;
        int nparams;
        unsigned long gen; /* connection generation it was prepared on; 0: not prepared */
} cm_pg_stmt_t;

struct cm_pg_s {
        char *conninfo;
        char target[256];
        /* this process's connection number, so logs tell connections apart */
        char no[16];
        PGconn *conn;
        unsigned long gen; /* successful connections so far; the current one's number */
        int connect_timeout_ms;
        int min_ms;
        int max_ms;
        int backoff_ms;          /* wait after the next failed attempt */
        int64_t next_attempt_ms; /* monotonic; no attempt before this */
        unsigned failures;       /* consecutive failed attempts */
        char last_error[512];
        char sqlstate[6];
        cm_pg_stmt_t *stmts;
        size_t nstmts;
        size_t cap;
        char *session[CM_PG_SESSION_MAX]; /* cm_pg_on_connect(), run on each connection */
        size_t nsession;
};

/* snprintf into errstr when it is not NULL. */
void cm_pg_seterr_(char *errstr, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Classifies result r of what (NULL: libpq gave none): CM_PG_OK (r kept for the caller),
 * else r is cleared, errstr says what failed, and a lost connection is closed
 * (CM_PG_ERR_CONN). */
cm_pg_err_t cm_pg_check_(cm_pg_t *pg, PGresult *r, const char *what, char *errstr,
                         size_t errstr_size);

/* Prepares st on the current connection and records its generation. */
cm_pg_err_t cm_pg_prepare_one_(cm_pg_t *pg, cm_pg_stmt_t *st, char *errstr,
                               size_t errstr_size);

/* CM_PG_ERR_CONN for what, closing a connection libpq still holds. */
cm_pg_err_t cm_pg_not_connected_(cm_pg_t *pg, const char *what, char *errstr,
                                 size_t errstr_size);

#endif
