/*
 * it_probe.c - cm_probe against the fake Kubernetes API server of tests/fixtures
 * (k8s_api_server.py, PKI and kubeconfigs from make_k8s_pki.sh): the right client
 * certificate or token gets the server's gitVersion over one reused connection; a wrong
 * CA, a wrong or missing client certificate, a wrong token, a wrong tls-server-name, a
 * stopped server and a server that never answers each fail with their own message; a
 * restarted server is reached again; a cancel callback stops a probe at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <sodium.h>

#include "cm/kubeconfig.h"
#include "cm/probe.h"
#include "../check_main.h"

#define PYTHON "/usr/bin/python3"
#define TOKEN  "fixture-token-0123456789"

static char work[64];         /* PKI a/ and b/, logs */
static char fixtures[512];    /* tests/fixtures */
static pid_t server_pid = -1; /* the server of the running test */
static int server_port;       /* its port */
static char server_log[600];  /* its stderr */
static cm_probe_t *probe;     /* the probe of the running test */
static cm_kubeconfig_t *kc;   /* the kubeconfig of the running test */

static long now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static char *read_file(const char *path)
{
        FILE *f = fopen(path, "r");
        ck_assert_msg(f != NULL, "cannot open %s: %s", path, strerror(errno));
        char *buf = NULL;
        size_t cap = 0, len = 0, n;
        do {
                if (len + 4096 + 1 > cap) {
                        cap = (cap + 4096) * 2;
                        buf = realloc(buf, cap);
                }
                n = fread(buf + len, 1, cap - len - 1, f);
                len += n;
        } while (n > 0);
        fclose(f);
        buf[len] = '\0';
        return buf;
}

/* base64 of file pki/name, e.g. ("a", "ca.crt"). */
static char *b64_file(const char *pki, const char *name)
{
        char path[256];
        snprintf(path, sizeof(path), "%s/%s/%s", work, pki, name);
        char *pem = read_file(path);
        size_t n = sodium_base64_encoded_len(strlen(pem), sodium_base64_VARIANT_ORIGINAL);
        char *out = malloc(n);
        sodium_bin2base64(out, n, (unsigned char *)pem, strlen(pem),
                          sodium_base64_VARIANT_ORIGINAL);
        free(pem);
        return out;
}

/* Runs make_k8s_pki.sh with args (a shell fragment); fails the test on error. */
static void make_pki(const char *args)
{
        char cmd[1200];
        snprintf(cmd, sizeof(cmd), "bash '%s/make_k8s_pki.sh' %s", fixtures, args);
        int rc = system(cmd);
        ck_assert_msg(rc == 0, "%s: exit %d", cmd, rc);
}

/*
 * Starts k8s_api_server.py with PKI a/ (client CA a/ca.crt, token TOKEN) on port (0 =
 * any) plus extra arguments (NULL-terminated), and waits for its port file.
 */
static void server_start(int port, ...)
{
        static int n;
        char port_file[300], portstr[16];
        /* tests run in forked processes: the pid keeps their files apart */
        snprintf(port_file, sizeof(port_file), "%s/port.%d.%d", work, (int)getpid(), ++n);
        snprintf(server_log, sizeof(server_log), "%s/server.%d.%d.log", work,
                 (int)getpid(), n);
        snprintf(portstr, sizeof(portstr), "%d", port);
        char script[600], cert[300], key[300], ca[300];
        snprintf(script, sizeof(script), "%s/k8s_api_server.py", fixtures);
        snprintf(cert, sizeof(cert), "%s/a/server.crt", work);
        snprintf(key, sizeof(key), "%s/a/server.key", work);
        snprintf(ca, sizeof(ca), "%s/a/ca.crt", work);
        const char *argv[32] = {PYTHON,        script,    "--port",      portstr,
                                "--port-file", port_file, "--cert",      cert,
                                "--key",       key,       "--client-ca", ca,
                                "--token",     TOKEN};
        int argc = 14;
        va_list ap;
        va_start(ap, port);
        for (const char *a; (a = va_arg(ap, const char *)) && argc < 30;)
                argv[argc++] = a;
        va_end(ap);
        argv[argc] = NULL;

        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int fd = open(server_log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                dup2(fd, 1);
                dup2(fd, 2);
                execv(PYTHON, (char *const *)argv);
                _exit(127);
        }
        server_pid = pid;
        long deadline = now_ms() + 15000;
        struct stat st;
        while (stat(port_file, &st) != 0) {
                int status;
                ck_assert_msg(waitpid(pid, &status, WNOHANG) == 0,
                              "the fixture server exited at start; see %s", server_log);
                ck_assert_msg(now_ms() < deadline, "no port file after 15 s; see %s",
                              server_log);
                usleep(20 * 1000);
        }
        char *p = read_file(port_file);
        server_port = atoi(p);
        free(p);
        ck_assert_int_gt(server_port, 0);
}

/* SIGTERM; the fixture must exit 0 within 5 s. */
static void server_stop(void)
{
        if (server_pid <= 0)
                return;
        pid_t pid = server_pid;
        server_pid = -1;
        kill(pid, SIGTERM);
        int status = 0;
        long deadline = now_ms() + 5000;
        while (waitpid(pid, &status, WNOHANG) == 0) {
                if (now_ms() > deadline) {
                        kill(pid, SIGKILL);
                        waitpid(pid, &status, 0);
                        ck_abort_msg("the fixture server ignored SIGTERM for 5 s");
                }
                usleep(20 * 1000);
        }
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "the fixture server did not exit 0 on SIGTERM (status %d); see %s",
                      status, server_log);
}

static void setup(void)
{
        server_pid = -1;
        probe = NULL;
        kc = NULL;
}

static void teardown(void)
{
        cm_probe_destroy(probe);
        cm_kubeconfig_free(kc);
        if (server_pid > 0) {
                kill(server_pid, SIGKILL);
                waitpid(server_pid, NULL, 0);
        }
}

static cm_kubeconfig_t *parse(const char *text)
{
        char err[512];
        cm_kubeconfig_t *k = NULL;
        ck_assert_msg(cm_kubeconfig_parse(text, strlen(text), NULL, &k, err,
                                          sizeof(err)) == CM_KUBECONFIG_OK,
                      "%s", err);
        return k;
}

/*
 * A kubeconfig for https://127.0.0.1:<server_port>: CA from ca_pki (NULL: none), client
 * certificate from cert_pki (NULL: none), token (NULL: none), extra cluster lines.
 */
static cm_kubeconfig_t *kubeconfig(const char *ca_pki, const char *cert_pki,
                                   const char *token, const char *extra)
{
        char *ca = ca_pki ? b64_file(ca_pki, "ca.crt") : NULL;
        char *cert = cert_pki ? b64_file(cert_pki, "client.crt") : NULL;
        char *key = cert_pki ? b64_file(cert_pki, "client.key") : NULL;
        char *text;
        size_t len;
        FILE *f = open_memstream(&text, &len);
        fprintf(f, "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:%d\n",
                server_port);
        if (ca)
                fprintf(f, "    certificate-authority-data: %s\n", ca);
        fprintf(f, "%susers:\n- name: u\n  user:\n", extra ? extra : "");
        if (cert)
                fprintf(f, "    client-certificate-data: %s\n    client-key-data: %s\n",
                        cert, key);
        if (token)
                fprintf(f, "    token: %s\n", token);
        fprintf(f, "contexts:\n- name: x\n  context: {cluster: c, user: u}\n");
        fclose(f);
        cm_kubeconfig_t *k = parse(text);
        free(text), free(ca), free(cert), free(key);
        return k;
}

static cm_probe_t *new_probe(const cm_kubeconfig_t *k)
{
        char err[512];
        cm_probe_t *p = NULL;
        ck_assert_msg(cm_probe_new(k, &p, err, sizeof(err)) == CM_PROBE_OK, "%s", err);
        cm_probe_set_timeouts(p, 3000, 5000);
        return p;
}

/* "GET https://127.0.0.1:<port>/version: " + rest */
static char *expect_prefix(const char *rest)
{
        static char buf[512];
        snprintf(buf, sizeof(buf), "GET https://127.0.0.1:%d/version: %s", server_port,
                 rest);
        return buf;
}

static void assert_starts(const char *s, const char *prefix)
{
        ck_assert_msg(strncmp(s, prefix, strlen(prefix)) == 0,
                      "\"%s\" does not start \"%s\"", s, prefix);
}

static int count_lines(const char *path, const char *needle)
{
        char *text = read_file(path);
        int n = 0;
        for (char *p = text; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        free(text);
        return n;
}

START_TEST(test_client_cert_ok_and_connection_reused)
{
        char err[512], dir[128], port[16];
        cm_probe_result_t r;
        server_start(0, "--git-version", "v1.28.15-cm.7", NULL);
        /* the fixture script's own kubeconfig, for this port */
        snprintf(dir, sizeof(dir), "%s/a", work);
        snprintf(port, sizeof(port), "%d", server_port);
        char args[256];
        snprintf(args, sizeof(args), "--token %s '%s' %s", TOKEN, dir, port);
        make_pki(args);
        char path[300];
        snprintf(path, sizeof(path), "%s/kubeconfig", dir);
        char *text = read_file(path);
        kc = parse(text);
        free(text);
        ck_assert_ptr_nonnull(kc->client_key_pem);
        probe = new_probe(kc);
        char url[64];
        snprintf(url, sizeof(url), "https://127.0.0.1:%d/version", server_port);
        ck_assert_str_eq(cm_probe_url(probe), url);

        ck_assert_msg(cm_probe_version(probe, &r, err, sizeof(err)) == CM_PROBE_OK, "%s",
                      err);
        ck_assert_str_eq(r.git_version, "v1.28.15-cm.7");
        ck_assert_str_eq(r.major, "1");
        ck_assert_str_eq(r.minor, "28");
        ck_assert_int_eq(r.http_status, 200);
        ck_assert_int_eq(r.num_connects, 1);
        ck_assert_str_eq(err, "");
        for (int i = 0; i < 3; i++) {
                ck_assert_msg(cm_probe_version(probe, &r, err, sizeof(err)) ==
                                  CM_PROBE_OK,
                              "%s", err);
                ck_assert_str_eq(r.git_version, "v1.28.15-cm.7");
                ck_assert_int_eq(r.num_connects, 0); /* reused */
        }
        /* and the server saw one TLS connection for the four requests */
        ck_assert_int_eq(count_lines(server_log, "TLS connection accepted"), 1);
        ck_assert_int_eq(count_lines(server_log, "\"GET /version HTTP/1.1\" 200"), 4);
}
END_TEST

START_TEST(test_token_auth)
{
        char err[512];
        cm_probe_result_t r;
        server_start(0, NULL);
        kc = kubeconfig("a", NULL, TOKEN, NULL);
        probe = new_probe(kc);
        ck_assert_msg(cm_probe_version(probe, &r, err, sizeof(err)) == CM_PROBE_OK, "%s",
                      err);
        ck_assert_str_eq(r.git_version, "v1.28.15");

        cm_probe_destroy(probe);
        cm_kubeconfig_free(kc);
        kc = kubeconfig("a", NULL, "wrong-token", NULL);
        probe = new_probe(kc);
        ck_assert_int_eq(cm_probe_version(probe, &r, err, sizeof(err)),
                         CM_PROBE_ERR_HTTP);
        ck_assert_str_eq(err, expect_prefix("HTTP 401: Unauthorized"));
        ck_assert_int_eq(r.http_status, 401);
        ck_assert_ptr_null(strstr(err, "wrong-token"));
}
END_TEST

START_TEST(test_no_credentials_is_401)
{
        char err[512];
        cm_probe_result_t r;
        server_start(0, NULL);
        kc = kubeconfig("a", NULL, TOKEN, NULL);
        free(kc->token); /* as if the user had none: the server must say 401 */
        kc->token = NULL;
        probe = new_probe(kc);
        ck_assert_int_eq(cm_probe_version(probe, &r, err, sizeof(err)),
                         CM_PROBE_ERR_HTTP);
        ck_assert_str_eq(err, expect_prefix("HTTP 401: Unauthorized"));
}
END_TEST

START_TEST(test_wrong_ca)
{
        char err[512];
        cm_probe_result_t r;
        server_start(0, NULL);
        kc = kubeconfig("b", "a", NULL, NULL); /* the server's certificate is a's */
        probe = new_probe(kc);
        ck_assert_int_eq(cm_probe_version(probe, &r, err, sizeof(err)), CM_PROBE_ERR_TLS);
        assert_starts(err, expect_prefix("TLS: certificate verify failed ("));
        ck_assert_int_eq(r.http_status, 0);
        ck_assert_int_eq(count_lines(server_log, "GET /version"), 0);
}
END_TEST

START_TEST(test_wrong_client_cert)
{
        char err[512];
        cm_probe_result_t r;
        server_start(0, NULL);
        kc = kubeconfig("a", "b", NULL, NULL); /* b's client certificate, unknown to a */
        probe = new_probe(kc);
        ck_assert_int_eq(cm_probe_version(probe, &r, err, sizeof(err)), CM_PROBE_ERR_TLS);
        assert_starts(err,
                      expect_prefix("TLS: the server refused the client certificate ("));
        ck_assert_int_eq(count_lines(server_log, "GET /version"), 0);
}
END_TEST

START_TEST(test_tls_server_name)
{
        char err[512];
        cm_probe_result_t r;
        server_start(0, NULL);
        /* the certificate names localhost: verified against it while connecting to the IP
         */
        kc = kubeconfig("a", "a", NULL, "    tls-server-name: localhost\n");
        probe = new_probe(kc);
        ck_assert_msg(cm_probe_version(probe, &r, err, sizeof(err)) == CM_PROBE_OK, "%s",
                      err);
        ck_assert_str_eq(r.git_version, "v1.28.15");

        cm_probe_destroy(probe);
        cm_kubeconfig_free(kc);
        kc = kubeconfig("a", "a", NULL, "    tls-server-name: api.example.com\n");
        probe = new_probe(kc);
        ck_assert_int_eq(cm_probe_version(probe, &r, err, sizeof(err)), CM_PROBE_ERR_TLS);
        assert_starts(err, expect_prefix("TLS: certificate verify failed ("));
        ck_assert_msg(strstr(err, "api.example.com"), "%s", err);
}
END_TEST

START_TEST(test_insecure_and_system_ca)
{
        char err[512];
        cm_probe_result_t r;
        server_start(0, NULL);
        /* no CA: the system store, which does not know the fixture's CA */
        kc = kubeconfig(NULL, NULL, TOKEN, NULL);
        probe = new_probe(kc);
        ck_assert_int_eq(cm_probe_version(probe, &r, err, sizeof(err)), CM_PROBE_ERR_TLS);
        assert_starts(err, expect_prefix("TLS: certificate verify failed ("));

        cm_probe_destroy(probe);
        cm_kubeconfig_free(kc);
        kc = kubeconfig(NULL, NULL, TOKEN, "    insecure-skip-tls-verify: true\n");
        probe = new_probe(kc);
        ck_assert_msg(cm_probe_version(probe, &r, err, sizeof(err)) == CM_PROBE_OK, "%s",
                      err);
        ck_assert_str_eq(r.git_version, "v1.28.15");
}
END_TEST

START_TEST(test_http_error_status)
{
        char err[512];
        cm_probe_result_t r;
        server_start(0, "--status", "403", NULL);
        kc = kubeconfig("a", "a", NULL, NULL);
        probe = new_probe(kc);
        ck_assert_int_eq(cm_probe_version(probe, &r, err, sizeof(err)),
                         CM_PROBE_ERR_HTTP);
        ck_assert_str_eq(err, expect_prefix("HTTP 403: status 403 forced by --status"));
        ck_assert_int_eq(r.http_status, 403);
        ck_assert_str_eq(r.git_version, "");
}
END_TEST

START_TEST(test_server_stopped_then_restarted)
{
        char err[512];
        cm_probe_result_t r;
        server_start(0, NULL);
        int port = server_port;
        kc = kubeconfig("a", "a", NULL, NULL);
        probe = new_probe(kc);
        ck_assert_msg(cm_probe_version(probe, &r, err, sizeof(err)) == CM_PROBE_OK, "%s",
                      err);

        server_stop(); /* asserts a clean exit 0 on SIGTERM */
        ck_assert_int_eq(cm_probe_version(probe, &r, err, sizeof(err)),
                         CM_PROBE_ERR_CONNECT);
        ck_assert_str_eq(err, expect_prefix("connection refused"));
        ck_assert_int_eq(r.http_status, 0);

        /* the same handle reaches the server again once it is back (Unreachable →
         * Running) */
        server_start(port, NULL);
        ck_assert_int_eq(server_port, port);
        ck_assert_msg(cm_probe_version(probe, &r, err, sizeof(err)) == CM_PROBE_OK, "%s",
                      err);
        ck_assert_int_eq(r.num_connects, 1);
        server_stop();
}
END_TEST

/* A port that accepts connections (the kernel completes them) but never answers. */
static int silent_listener(int *port)
{
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(0x7f000001)};
        ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
        ck_assert_int_eq(listen(s, 16), 0);
        socklen_t len = sizeof(a);
        getsockname(s, (struct sockaddr *)&a, &len);
        *port = ntohs(a.sin_port);
        return s;
}

/* One probe against a silent port with these timeouts: must time out in [lo, hi) ms. */
static void expect_timeout(long connect_ms, long total_ms, long lo, long hi)
{
        char err[512];
        cm_probe_result_t r;
        cm_probe_set_timeouts(probe, connect_ms, total_ms);
        long t0 = now_ms();
        ck_assert_int_eq(cm_probe_version(probe, &r, err, sizeof(err)),
                         CM_PROBE_ERR_TIMEOUT);
        long took = now_ms() - t0;
        assert_starts(err, expect_prefix("timed out after "));
        ck_assert_msg(took >= lo && took < hi, "took %ld ms, want [%ld, %ld): %s", took,
                      lo, hi, err);
        ck_assert_int_ge(r.elapsed_ms, lo);
        ck_assert_int_eq(r.http_status, 0);
}

START_TEST(test_timeout_on_silent_server)
{
        int s = silent_listener(&server_port);
        kc = kubeconfig("a", "a", NULL, NULL);
        probe = new_probe(kc);
        /* TCP connects (the kernel accepts) but the TLS handshake never ends: the connect
         * timeout covers the handshake, then the total timeout bounds everything */
        expect_timeout(800, 5000, 750, 2500);
        expect_timeout(5000, 1200, 1150, 3000);
        close(s);
}
END_TEST

static int cancel_after(void *opaque)
{
        return now_ms() >= *(long *)opaque;
}

START_TEST(test_cancel_stops_a_probe)
{
        char err[512];
        cm_probe_result_t r;
        int s = silent_listener(&server_port);
        kc = kubeconfig("a", "a", NULL, NULL);
        probe = new_probe(kc);
        cm_probe_set_timeouts(probe, 10000, 20000);
        long t0 = now_ms(), when = t0 + 300;
        cm_probe_set_cancel(probe, cancel_after, &when);
        ck_assert_int_eq(cm_probe_version(probe, &r, err, sizeof(err)),
                         CM_PROBE_ERR_CANCELED);
        long took = now_ms() - t0;
        ck_assert_str_eq(err, expect_prefix("canceled"));
        ck_assert_msg(took >= 250 && took < 2000, "took %ld ms", took);
        close(s);
}
END_TEST

START_TEST(test_bad_arguments)
{
        char err[256];
        cm_probe_t *p = (cm_probe_t *)1;
        ck_assert_int_eq(cm_probe_new(NULL, &p, err, sizeof(err)), CM_PROBE_ERR_ARG);
        ck_assert_ptr_null(p);
        ck_assert_str_eq(err, "probe: no kubeconfig or no server");
        ck_assert_int_eq(cm_probe_version(NULL, NULL, err, sizeof(err)),
                         CM_PROBE_ERR_ARG);
        cm_probe_destroy(NULL);
        ck_assert_str_eq(cm_probe_err2str(CM_PROBE_ERR_TLS), "TLS failed");
}
END_TEST

static Suite *probe_suite(void)
{
        Suite *s = suite_create("probe");
        TCase *tc = tcase_create("probe");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_client_cert_ok_and_connection_reused);
        tcase_add_test(tc, test_token_auth);
        tcase_add_test(tc, test_no_credentials_is_401);
        tcase_add_test(tc, test_wrong_ca);
        tcase_add_test(tc, test_wrong_client_cert);
        tcase_add_test(tc, test_tls_server_name);
        tcase_add_test(tc, test_insecure_and_system_ca);
        tcase_add_test(tc, test_http_error_status);
        tcase_add_test(tc, test_server_stopped_then_restarted);
        tcase_add_test(tc, test_timeout_on_silent_server);
        tcase_add_test(tc, test_cancel_stops_a_probe);
        tcase_add_test(tc, test_bad_arguments);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        const char *src = getenv("CM_SOURCE_DIR");
        if (!src || !*src) {
                fprintf(stderr,
                        "it_probe: CM_SOURCE_DIR is not set (run through ctest)\n");
                return EXIT_FAILURE;
        }
        snprintf(fixtures, sizeof(fixtures), "%s/tests/fixtures", src);
        snprintf(work, sizeof(work), "/tmp/cm-it-probe.XXXXXX");
        if (!mkdtemp(work)) {
                perror("mkdtemp");
                return EXIT_FAILURE;
        }
        /* Two unrelated PKIs: a/ is the server's, b/ the impostor's. */
        char cmd[1400];
        snprintf(cmd, sizeof(cmd),
                 "bash '%s/make_k8s_pki.sh' --name a '%s/a' && "
                 "bash '%s/make_k8s_pki.sh' --name b '%s/b'",
                 fixtures, work, fixtures, work);
        if (system(cmd) != 0) {
                fprintf(stderr, "it_probe: %s failed\n", cmd);
                return EXIT_FAILURE;
        }
        int failed = cm_check_run(probe_suite());
        if (failed == 0) {
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
                if (system(cmd) != 0)
                        fprintf(stderr, "it_probe: cannot remove %s\n", work);
        } else {
                fprintf(stderr, "it_probe: fixture logs kept in %s\n", work);
        }
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
