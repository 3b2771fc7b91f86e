/*
 * it_pg_reconnect.c - cm_pg against a real PostgreSQL (CM_TEST_PG): a backend terminated
 * by the server is reported as a connection error, cm_pg_ensure() reconnects and prepares
 * the registered statements again; an unreachable or silent server fails within the
 * budget with a clear message that never holds the password.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "cm/log.h"
#include "cm/pg.h"
#include "pg_testdb.h"
#include "../check_main.h"

static char dbname[65];
static char *conninfo;
static cm_pg_t *pg;

static long now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static void setup(void)
{
        char err[512];
        conninfo = pg_testdb_create(dbname);
        pg = cm_pg_new(conninfo, err, sizeof(err));
        ck_assert_msg(pg != NULL, "%s", err);
        cm_pg_set_timing(pg, 3000, 20, 200);
        ck_assert_msg(cm_pg_ensure(pg, 10000, err, sizeof(err)) == CM_PG_OK, "%s", err);
}

static void teardown(void)
{
        cm_pg_destroy(pg);
        pg = NULL;
        pg_testdb_drop(dbname);
        free(conninfo);
}

/* Terminates backend pid from another connection (as an operator or a failover would). */
static void terminate(const char *pid)
{
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%s)", pid);
        pg_testdb_admin_exec(sql);
        usleep(100 * 1000); /* the server closes the socket asynchronously */
}

/* Runs statement "whoami" and returns the backend pid (static buffer). */
static cm_pg_err_t whoami(char pid[32], char *err, size_t size)
{
        const char *v[1] = {"x"};
        PGresult *r;
        cm_pg_err_t e =
            cm_pg_exec_prepared(pg, "whoami", 1, v, NULL, NULL, 0, &r, err, size);
        if (e == CM_PG_OK) {
                ck_assert_int_eq(PQntuples(r), 1);
                snprintf(pid, 32, "%s", PQgetvalue(r, 0, 0));
                ck_assert_ptr_nonnull(strstr(pid, ":x"));
                *strchr(pid, ':') = '\0';
                PQclear(r);
        }
        return e;
}

START_TEST(test_reconnects_and_reprepares_after_terminate)
{
        char err[512], pid1[32], pid2[32];
        PGresult *r;

        ck_assert_msg(cm_pg_prepare(pg, "whoami",
                                    "SELECT pg_backend_pid()::text || ':' || $1", 1, err,
                                    sizeof(err)) == CM_PG_OK,
                      "%s", err);
        ck_assert_msg(whoami(pid1, err, sizeof(err)) == CM_PG_OK, "%s", err);
        ck_assert_uint_eq(cm_pg_connect_count(pg), 1);

        terminate(pid1);
        ck_assert_int_eq(whoami(pid2, err, sizeof(err)), CM_PG_ERR_CONN);
        ck_assert_msg(strstr(err, "whoami") && strstr(err, "lost"), "%s", err);
        ck_assert(!cm_pg_connected(pg));
        ck_assert_ptr_null(cm_pg_conn(pg));
        /* statements do not reconnect by themselves: still a connection error */
        ck_assert_int_eq(whoami(pid2, err, sizeof(err)), CM_PG_ERR_CONN);
        ck_assert_msg(strstr(err, "not connected"), "%s", err);
        ck_assert_int_eq(cm_pg_ping(pg, 1000, err, sizeof(err)), CM_PG_ERR_CONN);

        ck_assert_msg(cm_pg_ensure(pg, 5000, err, sizeof(err)) == CM_PG_OK, "%s", err);
        ck_assert_uint_eq(cm_pg_connect_count(pg), 2);
        /* prepared again on the new connection by cm_pg_ensure, before any use */
        ck_assert_int_eq(cm_pg_exec(pg,
                                    "SELECT count(*) FROM pg_prepared_statements WHERE "
                                    "name = 'whoami'",
                                    &r, err, sizeof(err)),
                         CM_PG_OK);
        ck_assert_str_eq(PQgetvalue(r, 0, 0), "1");
        PQclear(r);
        ck_assert_msg(whoami(pid2, err, sizeof(err)) == CM_PG_OK, "%s", err);
        ck_assert_str_ne(pid1, pid2);
        ck_assert_int_eq(cm_pg_ping(pg, 1000, err, sizeof(err)), CM_PG_OK);
}
END_TEST

START_TEST(test_lost_transaction_is_a_connection_error)
{
        char err[512], pid[32];
        PGresult *r;

        ck_assert_int_eq(cm_pg_exec(pg, "CREATE TABLE t (a int)", NULL, err, sizeof(err)),
                         CM_PG_OK);
        ck_assert_int_eq(cm_pg_prepare(pg, "whoami",
                                       "SELECT pg_backend_pid()::text || ':' || $1", 1,
                                       err, sizeof(err)),
                         CM_PG_OK);
        ck_assert_int_eq(cm_pg_begin(pg, err, sizeof(err)), CM_PG_OK);
        ck_assert_int_eq(
            cm_pg_exec(pg, "INSERT INTO t VALUES (1)", NULL, err, sizeof(err)), CM_PG_OK);
        ck_assert_int_eq(whoami(pid, err, sizeof(err)), CM_PG_OK);
        terminate(pid);
        ck_assert_int_eq(cm_pg_commit(pg, err, sizeof(err)), CM_PG_ERR_CONN);
        /* the server's reason (57P01) is kept for the caller */
        ck_assert_msg(strstr(err, "COMMIT") && strstr(err, "lost"), "%s", err);
        ck_assert_int_eq(cm_pg_rollback(pg, err, sizeof(err)), CM_PG_OK);
        ck_assert_int_eq(cm_pg_ensure(pg, 5000, err, sizeof(err)), CM_PG_OK);
        ck_assert_int_eq(cm_pg_exec(pg, "SELECT count(*) FROM t", &r, err, sizeof(err)),
                         CM_PG_OK);
        ck_assert_str_eq(PQgetvalue(r, 0, 0),
                         "0"); /* the transaction was lost, not half-done */
        PQclear(r);
}
END_TEST

START_TEST(test_query_error_keeps_connection_and_sqlstate)
{
        char err[512];
        ck_assert_int_eq(cm_pg_exec(pg, "SELECT 1/0", NULL, err, sizeof(err)),
                         CM_PG_ERR_QUERY);
        ck_assert_str_eq(cm_pg_sqlstate(pg), "22012");
        ck_assert_msg(strstr(err, "division by zero") && strstr(err, "22012"), "%s", err);
        ck_assert(cm_pg_connected(pg));
        /* a failed transaction's COMMIT is an error, not a silent rollback */
        ck_assert_int_eq(cm_pg_begin(pg, err, sizeof(err)), CM_PG_OK);
        ck_assert_int_eq(cm_pg_exec(pg, "SELECT 1/0", NULL, err, sizeof(err)),
                         CM_PG_ERR_QUERY);
        ck_assert_int_eq(cm_pg_commit(pg, err, sizeof(err)), CM_PG_ERR_QUERY);
        ck_assert_str_eq(cm_pg_sqlstate(pg), "25P02");
        ck_assert_int_eq(cm_pg_exec(pg, "SELECT 1", NULL, err, sizeof(err)), CM_PG_OK);
        ck_assert_str_eq(cm_pg_sqlstate(pg), "");
        ck_assert(cm_pg_sqlstate_retryable("40001") && cm_pg_sqlstate_retryable("40P01"));
        ck_assert(!cm_pg_sqlstate_retryable("23505"));
}
END_TEST

START_TEST(test_prepare_registration_errors)
{
        char err[512];
        const char *v[2] = {"1", "2"};
        ck_assert_int_eq(
            cm_pg_prepare(pg, "sum", "SELECT $1::int + $2::int", 2, err, sizeof(err)),
            CM_PG_OK);
        ck_assert_int_eq(
            cm_pg_prepare(pg, "sum", "SELECT $1::int + $2::int", 2, err, sizeof(err)),
            CM_PG_OK);
        ck_assert_int_eq(
            cm_pg_prepare(pg, "sum", "SELECT $1::int - $2::int", 2, err, sizeof(err)),
            CM_PG_ERR_ARG);
        ck_assert_msg(strstr(err, "\"sum\""), "%s", err);
        ck_assert_int_eq(cm_pg_prepare(pg, "bad", "SELEC 1", 0, err, sizeof(err)),
                         CM_PG_ERR_QUERY);
        ck_assert_msg(strstr(err, "\"bad\"") && strstr(err, "42601"), "%s", err);
        ck_assert_int_eq(cm_pg_exec_prepared(pg, "bad", 0, NULL, NULL, NULL, 0, NULL, err,
                                             sizeof(err)),
                         CM_PG_ERR_ARG);
        ck_assert_msg(strstr(err, "\"bad\" is not registered"), "%s", err);
        ck_assert_int_eq(
            cm_pg_exec_prepared(pg, "sum", 1, v, NULL, NULL, 0, NULL, err, sizeof(err)),
            CM_PG_ERR_ARG);
        ck_assert_msg(strstr(err, "takes 2 parameter(s), 1 given"), "%s", err);
        /* deallocated behind cm_pg's back (e.g. by a pooler): prepared again */
        ck_assert_int_eq(cm_pg_exec(pg, "DEALLOCATE ALL", NULL, err, sizeof(err)),
                         CM_PG_OK);
        PGresult *r;
        ck_assert_msg(cm_pg_exec_prepared(pg, "sum", 2, v, NULL, NULL, 0, &r, err,
                                          sizeof(err)) == CM_PG_OK,
                      "%s", err);
        ck_assert_str_eq(PQgetvalue(r, 0, 0), "3");
        PQclear(r);
}
END_TEST

/* Registered while the server is unreachable: prepared as soon as a connection is made.
 */
START_TEST(test_prepare_while_disconnected)
{
        char err[512];
        PGresult *r;
        cm_pg_disconnect(pg);
        ck_assert_int_eq(cm_pg_prepare(pg, "two", "SELECT 2", 0, err, sizeof(err)),
                         CM_PG_ERR_CONN);
        ck_assert_int_eq(cm_pg_ensure(pg, 5000, err, sizeof(err)), CM_PG_OK);
        ck_assert_int_eq(
            cm_pg_exec_prepared(pg, "two", 0, NULL, NULL, NULL, 0, &r, err, sizeof(err)),
            CM_PG_OK);
        ck_assert_str_eq(PQgetvalue(r, 0, 0), "2");
        PQclear(r);
}
END_TEST

/* A module's table: a bad statement stops at once and is named; while disconnected the
 * whole table is registered and prepared on the next connection. */
START_TEST(test_prepare_all)
{
        static const cm_pg_statement_t bad[] = {
            {"all_one", 0, "SELECT 1"},
            {"all_typo", 0, "SELEC 2"},
            {"all_three", 0, "SELECT 3"},
        };
        static const cm_pg_statement_t good[] = {
            {"all_four", 0, "SELECT 4"},
            {"all_five", 1, "SELECT $1::int + 1"},
        };
        char err[512];
        PGresult *r;
        cm_pg_err_t e = cm_pg_prepare_all(pg, bad, 3, err, sizeof(err));
        ck_assert_int_eq(e, CM_PG_ERR_QUERY);
        ck_assert(cm_pg_err_is_bad_statement(e));
        ck_assert_msg(strstr(err, "\"all_typo\"") && strstr(err, "42601"), "%s", err);
        ck_assert_int_eq(cm_pg_exec_prepared(pg, "all_three", 0, NULL, NULL, NULL, 0,
                                             NULL, err, sizeof(err)),
                         CM_PG_ERR_ARG); /* not reached: not registered */

        cm_pg_disconnect(pg);
        e = cm_pg_prepare_all(pg, good, 2, err, sizeof(err));
        ck_assert_int_eq(e, CM_PG_ERR_CONN);
        ck_assert(!cm_pg_err_is_bad_statement(e));
        ck_assert_int_eq(cm_pg_ensure(pg, 5000, err, sizeof(err)), CM_PG_OK);
        const char *v[1] = {"4"};
        ck_assert_msg(cm_pg_exec_prepared(pg, "all_five", 1, v, NULL, NULL, 0, &r, err,
                                          sizeof(err)) == CM_PG_OK,
                      "%s", err);
        ck_assert_str_eq(PQgetvalue(r, 0, 0), "5");
        PQclear(r);
        ck_assert_int_eq(cm_pg_prepare_all(pg, good, 2, err, sizeof(err)), CM_PG_OK);
}
END_TEST

static char *show_app_name(void)
{
        static char v[64];
        char err[512];
        PGresult *r;
        ck_assert_msg(cm_pg_exec(pg, "SHOW application_name", &r, err, sizeof(err)) ==
                          CM_PG_OK,
                      "%s", err);
        snprintf(v, sizeof(v), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        return v;
}

/* Session settings survive reconnects; one the server refuses is not registered. */
START_TEST(test_on_connect_survives_reconnects)
{
        char err[512], pid[32];
        PGresult *r;
        ck_assert_int_eq(
            cm_pg_on_connect(pg, "SET no_such_setting = 1", err, sizeof(err)),
            CM_PG_ERR_QUERY);
        ck_assert_msg(strstr(err, "no_such_setting"), "%s", err);
        ck_assert_msg(cm_pg_on_connect(pg, "SET application_name = 'cm-session'", err,
                                       sizeof(err)) == CM_PG_OK,
                      "%s", err);
        ck_assert_str_eq(show_app_name(), "cm-session"); /* at once */

        ck_assert_int_eq(
            cm_pg_exec(pg, "SELECT pg_backend_pid()::text", &r, err, sizeof(err)),
            CM_PG_OK);
        snprintf(pid, sizeof(pid), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        terminate(pid);
        ck_assert_int_eq(cm_pg_ping(pg, 1000, err, sizeof(err)), CM_PG_ERR_CONN);
        /* registered while disconnected: runs on the next connection too */
        ck_assert_int_eq(
            cm_pg_on_connect(pg, "SET statement_timeout = '1234ms'", err, sizeof(err)),
            CM_PG_ERR_CONN);
        ck_assert_msg(cm_pg_ensure(pg, 5000, err, sizeof(err)) == CM_PG_OK, "%s", err);
        ck_assert_uint_eq(cm_pg_connect_count(pg), 2);
        ck_assert_str_eq(show_app_name(), "cm-session");
        ck_assert_int_eq(cm_pg_exec(pg, "SHOW statement_timeout", &r, err, sizeof(err)),
                         CM_PG_OK);
        ck_assert_str_eq(PQgetvalue(r, 0, 0), "1234ms");
        PQclear(r);
}
END_TEST

/* A loopback port where nothing listens. */
static int closed_port(void)
{
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
        ck_assert(getsockname(s, (struct sockaddr *)&a, &len) == 0);
        close(s);
        return ntohs(a.sin_port);
}

static char *read_file(FILE *f)
{
        static char buf[65536];
        size_t n;
        fflush(f);
        rewind(f);
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        return buf;
}

START_TEST(test_wrong_port_fails_within_budget)
{
        char ci[256], err[1024], port[16];
        FILE *logf = tmpfile();
        cm_pg_t *p;
        long t0, took;
        int prt = closed_port();

        snprintf(port, sizeof(port), "port=%d", prt);
        snprintf(
            ci, sizeof(ci),
            "host=127.0.0.1 %s user=cm dbname=cm password=sekrit-Pa55 connect_timeout=5",
            port);
        cm_log_set_fd(fileno(logf));
        p = cm_pg_new(ci, err, sizeof(err));
        ck_assert_msg(p != NULL, "%s", err);
        ck_assert_ptr_null(strstr(cm_pg_target(p), "sekrit"));
        cm_pg_set_timing(p, 2000, 50, 200);
        t0 = now_ms();
        ck_assert_int_eq(cm_pg_ensure(p, 800, err, sizeof(err)), CM_PG_ERR_CONN);
        took = now_ms() - t0;
        ck_assert_msg(took <= 800 + 150, "took %ld ms for a budget of 800 ms", took);
        ck_assert_msg(strstr(err, port) && strstr(err, "Connection refused") &&
                          strstr(err, "attempt(s)"),
                      "%s", err);
        ck_assert_msg(!strstr(err, "sekrit"), "password in message: %s", err);
        /* several attempts, with backoff: 0, 50, 150, 350, 550 ms */
        ck_assert_msg(atoi(strstr(err, "after ") + 6) >= 3, "%s", err);
        ck_assert_int_eq(cm_pg_ping(p, 100, err, sizeof(err)), CM_PG_ERR_CONN);
        cm_pg_destroy(p);
        cm_log_set_fd(2);
        {
                const char *logged = read_file(logf);
                ck_assert_msg(strstr(logged, "connection attempt failed") &&
                                  strstr(logged, "Connection refused"),
                              "log: %s", logged);
                ck_assert_msg(!strstr(logged, "sekrit"), "password logged: %s", logged);
        }
        fclose(logf);
}
END_TEST

/* A server that accepts TCP but never answers: each attempt is cut at the budget. */
START_TEST(test_silent_server_fails_within_budget)
{
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        char ci[256], err[1024];
        cm_pg_t *p;
        long t0, took;

        ck_assert(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
        ck_assert(listen(s, 8) == 0);
        ck_assert(getsockname(s, (struct sockaddr *)&a, &len) == 0);
        snprintf(ci, sizeof(ci),
                 "host=127.0.0.1 port=%d user=cm dbname=cm sslmode=disable",
                 ntohs(a.sin_port));
        p = cm_pg_new(ci, err, sizeof(err));
        cm_pg_set_timing(p, 10000, 50, 200);
        t0 = now_ms();
        ck_assert_int_eq(cm_pg_ensure(p, 600, err, sizeof(err)), CM_PG_ERR_CONN);
        took = now_ms() - t0;
        ck_assert_msg(took >= 550 && took <= 600 + 150, "took %ld ms for 600 ms", took);
        ck_assert_msg(strstr(err, "timed out"), "%s", err);
        cm_pg_destroy(p);
        close(s);
}
END_TEST

START_TEST(test_bad_conninfo_is_refused_without_echoing_password)
{
        char err[512];
        ck_assert_ptr_null(cm_pg_new("host=x password=top secret", err, sizeof(err)));
        ck_assert_msg(strstr(err, "postgres.conninfo") && !strstr(err, "top") &&
                          !strstr(err, "secret"),
                      "%s", err);
        ck_assert_ptr_null(cm_pg_new("host=x bogus_option=1", err, sizeof(err)));
        ck_assert_msg(strstr(err, "bogus_option"), "%s", err);
        ck_assert_ptr_null(cm_pg_new(NULL, err, sizeof(err)));
        ck_assert_msg(strstr(err, "postgres.conninfo: not set"), "%s", err);
}
END_TEST

START_TEST(test_backoff_persists_across_calls)
{
        char ci[128], err[1024];
        cm_pg_t *p;
        long t0;
        snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d user=cm dbname=cm",
                 closed_port());
        p = cm_pg_new(ci, err, sizeof(err));
        cm_pg_set_timing(p, 1000, 400, 400);
        ck_assert_int_eq(cm_pg_ensure(p, 100, err, sizeof(err)), CM_PG_ERR_CONN);
        /* the next attempt is not due for ~400 ms: a short call returns at once */
        t0 = now_ms();
        ck_assert_int_eq(cm_pg_ensure(p, 100, err, sizeof(err)), CM_PG_ERR_CONN);
        ck_assert_int_le(now_ms() - t0, 50);
        ck_assert_msg(strstr(err, "0 attempt(s)") && strstr(err, "Connection refused"),
                      "%s", err);
        cm_pg_destroy(p);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("pg_reconnect");
        TCase *tc = tcase_create("pg");
        int failed;

        pg_testdb_base(); /* exits with a clear message when CM_TEST_PG is unset */
        pg_testdb_owner = getpid();
        srandom((unsigned)getpid());
        tcase_set_timeout(tc, 60);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_reconnects_and_reprepares_after_terminate);
        tcase_add_test(tc, test_lost_transaction_is_a_connection_error);
        tcase_add_test(tc, test_query_error_keeps_connection_and_sqlstate);
        tcase_add_test(tc, test_prepare_registration_errors);
        tcase_add_test(tc, test_prepare_while_disconnected);
        tcase_add_test(tc, test_prepare_all);
        tcase_add_test(tc, test_on_connect_survives_reconnects);
        tcase_add_test(tc, test_wrong_port_fails_within_budget);
        tcase_add_test(tc, test_silent_server_fails_within_budget);
        tcase_add_test(tc, test_bad_conninfo_is_refused_without_echoing_password);
        tcase_add_test(tc, test_backoff_persists_across_calls);
        suite_add_tcase(s, tc);
        failed = cm_check_run(s);
        pg_testdb_drop_all();
        return failed ? 1 : 0;
}
