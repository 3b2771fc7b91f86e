/*
 * pg_testdb.h - throwaway databases for integration tests, on the server CM_TEST_PG
 * names.
 *
 * pg_testdb_create() makes a fresh, uniquely named database and returns a conninfo for
 * it; pg_testdb_drop_all() drops every database this test program created (call at the
 * end of main(); Check's forked tests that fail skip their teardown).
 */
#ifndef CM_PG_TESTDB_H
#define CM_PG_TESTDB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <libpq-fe.h>

static pid_t pg_testdb_owner; /* pid of main(): forked tests inherit it */

/* Fails the program with a clear message when CM_TEST_PG is missing. */
static const char *pg_testdb_base(void)
{
        const char *c = getenv("CM_TEST_PG");
        if (!c || !*c) {
                fprintf(stderr,
                        "CM_TEST_PG is not set: it must be the libpq conninfo of a "
                        "throwaway PostgreSQL server where this test may CREATE "
                        "DATABASE (scripts/test sets it; see scripts/lib/pg.sh)\n");
                exit(1);
        }
        return c;
}

/* base conninfo with dbname replaced; malloc'd. */
static char *pg_testdb_conninfo(const char *dbname)
{
        char *err = NULL, *out;
        size_t cap = 1024, n = 0;
        PQconninfoOption *opts = PQconninfoParse(pg_testdb_base(), &err);
        ck_assert_msg(opts != NULL, "CM_TEST_PG is not a valid conninfo: %s", err);
        out = calloc(1, cap);
        for (PQconninfoOption *o = opts; o->keyword; o++) {
                const char *v = strcmp(o->keyword, "dbname") ? o->val : dbname;
                if (!v)
                        continue;
                n += snprintf(out + n, cap - n, "%s='", o->keyword);
                for (; *v && n + 4 < cap; v++) {
                        if (*v == '\'' || *v == '\\')
                                out[n++] = '\\';
                        out[n++] = *v;
                }
                n += snprintf(out + n, cap - n, "' ");
                ck_assert_int_lt(n, cap - 1);
        }
        PQconninfoFree(opts);
        return out;
}

static void pg_testdb_admin_exec(const char *sql)
{
        PGconn *c = PQconnectdb(pg_testdb_base());
        PGresult *r;
        ck_assert_msg(PQstatus(c) == CONNECTION_OK, "cannot connect to CM_TEST_PG: %s",
                      PQerrorMessage(c));
        r = PQexec(c, sql);
        ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK ||
                          PQresultStatus(r) == PGRES_TUPLES_OK,
                      "%s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
        PQfinish(c);
}

/* Creates a fresh database; *name_out (65 bytes) gets its name. Returns its conninfo. */
static char *pg_testdb_create(char name_out[65])
{
        static unsigned counter;
        char sql[160];
        if (!pg_testdb_owner)
                pg_testdb_owner = getpid();
        snprintf(name_out, 65, "cm_it_%d_%d_%u_%ld", (int)pg_testdb_owner, (int)getpid(),
                 counter++, random() % 100000);
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name_out);
        pg_testdb_admin_exec(sql);
        return pg_testdb_conninfo(name_out);
}

static void pg_testdb_drop(const char *name)
{
        char sql[160];
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
        pg_testdb_admin_exec(sql);
}

static void pg_testdb_drop_all(void)
{
        PGconn *c = PQconnectdb(pg_testdb_base());
        char sql[200];
        PGresult *r;
        if (PQstatus(c) != CONNECTION_OK) {
                PQfinish(c);
                return;
        }
        snprintf(sql, sizeof(sql),
                 "SELECT datname FROM pg_database WHERE datname LIKE 'cm\\_it\\_%d\\_%%'",
                 (int)pg_testdb_owner);
        r = PQexec(c, sql);
        for (int i = 0; i < PQntuples(r); i++) {
                PGresult *d;
                snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
                         PQgetvalue(r, i, 0));
                d = PQexec(c, sql);
                PQclear(d);
        }
        PQclear(r);
        PQfinish(c);
}

#endif
