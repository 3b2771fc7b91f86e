/*
 * cm_pg_exec.c - the statements of a cm_pg connection (cm/pg.h): registered by name and
 * prepared on every new connection (cm_pg_prepare, cm_pg_prepare_all), session
 * statements (cm_pg_on_connect), execution and transactions. Nothing here reconnects: a
 * lost connection is CM_PG_ERR_CONN, and the caller runs cm_pg_ensure() (cm_pg.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/pg.h"
#include "cm_pg_int.h"

/* Names a statement in messages by its first line, without echoing a whole script. */
static void pg_label(char *what, size_t size, const char *sql)
{
        size_t n = strcspn(sql, "\n");
        if (!strncmp(sql, "--", 2) || n == 0) {
                snprintf(what, size, "query");
                return;
        }
        snprintf(what, size, "%.*s%s", (int)(n > 60 ? 60 : n), sql,
                 n > 60 || sql[n] ? "..." : "");
}

static cm_pg_stmt_t *pg_find(cm_pg_t *pg, const char *name)
{
        for (size_t i = 0; i < pg->nstmts; i++)
                if (!strcmp(pg->stmts[i].name, name))
                        return &pg->stmts[i];
        return NULL;
}

cm_pg_err_t cm_pg_prepare(cm_pg_t *pg, const char *name, const char *sql, int nparams,
                          char *errstr, size_t errstr_size)
{
        cm_pg_stmt_t *st;
        cm_pg_err_t err;

        if (!name || !*name || !sql || nparams < 0) {
                cm_pg_seterr_(errstr, errstr_size,
                              "cm_pg_prepare: name, sql and nparams >= 0 "
                              "are required");
                return CM_PG_ERR_ARG;
        }
        if ((st = pg_find(pg, name)) != NULL) {
                if (!strcmp(st->sql, sql) && st->nparams == nparams)
                        return CM_PG_OK;
                cm_pg_seterr_(errstr, errstr_size,
                              "statement \"%s\" is already registered with other SQL",
                              name);
                return CM_PG_ERR_ARG;
        }
        if (pg->nstmts == pg->cap) {
                size_t cap = pg->cap ? pg->cap * 2 : 16;
                cm_pg_stmt_t *n = realloc(pg->stmts, cap * sizeof(*n));
                if (!n) {
                        cm_pg_seterr_(errstr, errstr_size, "out of memory");
                        return CM_PG_ERR_ARG;
                }
                pg->stmts = n;
                pg->cap = cap;
        }
        st = &pg->stmts[pg->nstmts];
        st->name = strdup(name);
        st->sql = strdup(sql);
        st->nparams = nparams;
        st->gen = 0;
        if (!st->name || !st->sql) {
                free(st->name);
                free(st->sql);
                cm_pg_seterr_(errstr, errstr_size, "out of memory");
                return CM_PG_ERR_ARG;
        }
        pg->nstmts++;
        if (!cm_pg_connected(pg))
                return cm_pg_not_connected_(pg, "statement registered", errstr,
                                            errstr_size);
        err = cm_pg_prepare_one_(pg, st, errstr, errstr_size);
        if (err == CM_PG_ERR_QUERY) { /* bad SQL: forget it */
                pg->nstmts--;
                free(st->name);
                free(st->sql);
        }
        return err;
}

cm_pg_err_t cm_pg_on_connect(cm_pg_t *pg, const char *sql, char *errstr,
                             size_t errstr_size)
{
        char *copy;

        if (!sql || !*sql || pg->nsession == CM_PG_SESSION_MAX) {
                cm_pg_seterr_(errstr, errstr_size, "cm_pg_on_connect: %s",
                              !sql || !*sql ? "no SQL given"
                                            : "too many session statements");
                return CM_PG_ERR_ARG;
        }
        if (cm_pg_connected(pg)) {
                cm_pg_err_t err = cm_pg_exec(pg, sql, NULL, errstr, errstr_size);
                if (err == CM_PG_ERR_QUERY)
                        return err; /* the server refuses it: not registered */
        }
        if (!(copy = strdup(sql))) {
                cm_pg_seterr_(errstr, errstr_size, "out of memory");
                return CM_PG_ERR_ARG;
        }
        pg->session[pg->nsession++] = copy;
        return cm_pg_connected(pg) ? CM_PG_OK : CM_PG_ERR_CONN;
}

cm_pg_err_t cm_pg_prepare_all(cm_pg_t *pg, const cm_pg_statement_t *stmts, size_t n,
                              char *errstr, size_t errstr_size)
{
        cm_pg_err_t worst = CM_PG_OK;

        for (size_t i = 0; i < n; i++) {
                cm_pg_err_t e = cm_pg_prepare(pg, stmts[i].name, stmts[i].sql,
                                              stmts[i].nparams, errstr, errstr_size);
                if (cm_pg_err_is_bad_statement(e))
                        return e;
                if (e != CM_PG_OK)
                        worst = e;
        }
        return worst;
}

/* A good result goes to *res, or is cleared when the caller wants none. */
static void pg_keep(PGresult *r, PGresult **res)
{
        if (res)
                *res = r;
        else
                PQclear(r);
}

/* Checks r, then keeps it (pg_keep) when it is good. */
static cm_pg_err_t pg_result(cm_pg_t *pg, PGresult *r, const char *what, PGresult **res,
                             char *errstr, size_t errstr_size)
{
        cm_pg_err_t err = cm_pg_check_(pg, r, what, errstr, errstr_size);
        if (err == CM_PG_OK)
                pg_keep(r, res);
        return err;
}

cm_pg_err_t cm_pg_exec_prepared(cm_pg_t *pg, const char *name, int nparams,
                                const char *const *values, const int *lengths,
                                const int *formats, int result_format, PGresult **res,
                                char *errstr, size_t errstr_size)
{
        cm_pg_stmt_t *st = pg_find(pg, name);
        char what[160];
        cm_pg_err_t err;
        PGresult *r;

        if (res)
                *res = NULL;
        if (!st) {
                cm_pg_seterr_(errstr, errstr_size,
                              "statement \"%s\" is not registered (cm_pg_prepare)", name);
                return CM_PG_ERR_ARG;
        }
        if (nparams != st->nparams) {
                cm_pg_seterr_(errstr, errstr_size,
                              "statement \"%s\" takes %d parameter(s), %d given", name,
                              st->nparams, nparams);
                return CM_PG_ERR_ARG;
        }
        snprintf(what, sizeof(what), "statement \"%s\"", name);
        if (!cm_pg_connected(pg))
                return cm_pg_not_connected_(pg, what, errstr, errstr_size);
        for (int tries = 0;; tries++) {
                if (st->gen != pg->gen &&
                    (err = cm_pg_prepare_one_(pg, st, errstr, errstr_size)) != CM_PG_OK)
                        return err;
                r = PQexecPrepared(pg->conn, name, nparams, values, lengths, formats,
                                   result_format);
                err = cm_pg_check_(pg, r, what, errstr, errstr_size);
                /* Deallocated behind our back (DEALLOCATE ALL on the raw connection, or a
                 * pooler): prepare again, once, if no transaction would be lost. */
                if (err == CM_PG_ERR_QUERY && !strcmp(pg->sqlstate, "26000") &&
                    tries == 0 && PQtransactionStatus(pg->conn) == PQTRANS_IDLE) {
                        st->gen = 0;
                        continue;
                }
                break;
        }
        if (err == CM_PG_OK)
                pg_keep(r, res);
        return err;
}

cm_pg_err_t cm_pg_exec(cm_pg_t *pg, const char *sql, PGresult **res, char *errstr,
                       size_t errstr_size)
{
        char what[96];

        if (res)
                *res = NULL;
        pg_label(what, sizeof(what), sql);
        if (!cm_pg_connected(pg))
                return cm_pg_not_connected_(pg, what, errstr, errstr_size);
        return pg_result(pg, PQexec(pg->conn, sql), what, res, errstr, errstr_size);
}

cm_pg_err_t cm_pg_exec_params(cm_pg_t *pg, const char *sql, int nparams,
                              const char *const *values, PGresult **res, char *errstr,
                              size_t errstr_size)
{
        char what[96];

        if (res)
                *res = NULL;
        pg_label(what, sizeof(what), sql);
        if (!cm_pg_connected(pg))
                return cm_pg_not_connected_(pg, what, errstr, errstr_size);
        return pg_result(
            pg, PQexecParams(pg->conn, sql, nparams, NULL, values, NULL, NULL, 0), what,
            res, errstr, errstr_size);
}

cm_pg_err_t cm_pg_begin(cm_pg_t *pg, char *errstr, size_t errstr_size)
{
        return cm_pg_exec(pg, "BEGIN", NULL, errstr, errstr_size);
}

cm_pg_err_t cm_pg_commit(cm_pg_t *pg, char *errstr, size_t errstr_size)
{
        cm_pg_err_t err;
        PGresult *r;
        if (!cm_pg_connected(pg))
                return cm_pg_not_connected_(pg, "COMMIT", errstr, errstr_size);
        r = PQexec(pg->conn, "COMMIT");
        err = cm_pg_check_(pg, r, "COMMIT", errstr, errstr_size);
        if (err != CM_PG_OK)
                return err;
        /* COMMIT of a failed transaction answers ROLLBACK, not an error: report it as one
         */
        if (!strcmp(PQcmdStatus(r), "ROLLBACK")) {
                PQclear(r);
                snprintf(pg->sqlstate, sizeof(pg->sqlstate), "25P02");
                cm_pg_seterr_(errstr, errstr_size,
                              "COMMIT: the transaction had failed and was rolled back "
                              "(SQLSTATE 25P02)");
                return CM_PG_ERR_QUERY;
        }
        PQclear(r);
        return CM_PG_OK;
}

cm_pg_err_t cm_pg_rollback(cm_pg_t *pg, char *errstr, size_t errstr_size)
{
        cm_pg_err_t err;
        if (!cm_pg_connected(pg))
                return CM_PG_OK;
        err = cm_pg_exec(pg, "ROLLBACK", NULL, errstr, errstr_size);
        return err == CM_PG_ERR_CONN ? CM_PG_OK : err;
}
