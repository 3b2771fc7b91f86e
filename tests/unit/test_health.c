/* test_health - /healthz, /readyz and /metrics of a service (common/cm_health.c), over
 * real HTTP on loopback. */
#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cm/health.h"
#include "../check_main.h"

/* GET path on 127.0.0.1:port (HTTP/1.0: the server closes). The whole answer, malloc'd,
 * and *fd_used the client socket's descriptor; NULL when nothing came back. */
static char *http_get(int port, const char *path, int *fd_used)
{
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_ge(fd, 0);
        if (fd_used)
                *fd_used = fd;
        struct timeval tv = {.tv_sec = 10};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        char req[256];
        int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: t\r\n\r\n", path);
        ck_assert_int_eq(write(fd, req, (size_t)n), n);
        size_t len = 0, cap = 4096;
        char *buf = malloc(cap);
        ssize_t r;
        while ((r = read(fd, buf + len, cap - len - 1)) > 0) {
                len += (size_t)r;
                if (cap - len < 1024)
                        buf = realloc(buf, cap *= 2);
        }
        close(fd);
        buf[len] = '\0';
        if (len == 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

static int status_of(const char *answer)
{
        int status = 0;
        return answer && sscanf(answer, "HTTP/1.%*d %d", &status) == 1 ? status : 0;
}

static int check_ok(void *opaque, char *errstr, size_t errstr_size)
{
        (void)opaque;
        (void)errstr;
        (void)errstr_size;
        return 0;
}

static int check_down(void *opaque, char *errstr, size_t errstr_size)
{
        snprintf(errstr, errstr_size, "%s", (const char *)opaque);
        return 1;
}

static size_t extra_metrics(void *opaque, char *buf, size_t size)
{
        (void)opaque;
        return (size_t)snprintf(buf, size, "cm_test_widgets_total 7\n");
}

static cm_health_t *serve(cm_health_t *h)
{
        char err[256];
        ck_assert_msg(cm_health_serve(h, "127.0.0.1:0", err, sizeof(err)) == 0, "%s",
                      err);
        ck_assert_int_gt(cm_health_port(h), 0);
        return h;
}

START_TEST(test_healthz_and_readyz)
{
        cm_health_t *h = cm_health_new("tester");
        ck_assert_int_eq(cm_health_add_check(h, "database", check_ok, NULL), 0);
        ck_assert_int_eq(
            cm_health_add_check(h, "broker", check_down, "no broker at 127.0.0.1:1"), 0);
        cm_health_set_metrics(h, extra_metrics, NULL);
        serve(h);
        int port = cm_health_port(h);

        char *a = http_get(port, "/healthz", NULL);
        ck_assert_int_eq(status_of(a), 200);
        free(a);
        /* Not ready, and the answer says which check failed and why. */
        a = http_get(port, "/readyz", NULL);
        ck_assert_msg(status_of(a) == 503, "%s", a);
        ck_assert_msg(strstr(a, "\"broker\"") && strstr(a, "no broker at 127.0.0.1:1"),
                      "%s", a);
        ck_assert_msg(strstr(a, "\"database\""), "%s", a);
        free(a);
        a = http_get(port, "/metrics", NULL);
        ck_assert_int_eq(status_of(a), 200);
        ck_assert_msg(strstr(a, "cm_test_widgets_total 7\n"), "%s", a);
        free(a);
        a = http_get(port, "/nosuch", NULL);
        ck_assert_int_eq(status_of(a), 404);
        free(a);
        cm_health_destroy(h);

        /* Every check passing: ready. */
        h = serve(cm_health_new("tester"));
        ck_assert_int_eq(cm_health_add_check(h, "database", check_ok, NULL), 0);
        a = http_get(cm_health_port(h), "/readyz", NULL);
        ck_assert_msg(status_of(a) == 200, "%s", a);
        free(a);
        cm_health_destroy(h);
}
END_TEST

/*
 * A worker probing many clusters holds more than FD_SETSIZE (1024) descriptors. A
 * server built on select() refuses every connection whose descriptor is >= 1024, and the
 * worker would look dead to its liveness probe.
 */
START_TEST(test_answers_above_fd_setsize)
{
        struct rlimit rl;
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        if (rl.rlim_cur < 2048) {
                ck_assert_msg(rl.rlim_max >= 2048,
                              "this test needs 2048 descriptors; the hard limit is %lu",
                              (unsigned long)rl.rlim_max);
                rl.rlim_cur = 2048;
                ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        }
        cm_health_t *h = serve(cm_health_new("tester"));
        int held[1200], n = 0;
        while (n < 1200) {
                held[n] = open("/dev/null", O_RDONLY);
                ck_assert_int_ge(held[n], 0);
                if (held[n++] > 1100)
                        break;
        }
        int client_fd = -1;
        char *a = http_get(cm_health_port(h), "/healthz", &client_fd);
        /* The server's side of the connection is above 1024 as well. */
        ck_assert_int_gt(client_fd, 1024);
        ck_assert_msg(status_of(a) == 200, "no answer with %d descriptors open: %s", n,
                      a ? a : "(connection closed)");
        free(a);
        while (n > 0)
                close(held[--n]);
        cm_health_destroy(h);
}
END_TEST

START_TEST(test_listen_errors_name_the_value)
{
        char err[256];
        struct sockaddr_in sa;
        ck_assert_int_eq(cm_health_parse_listen("localhost", &sa, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, "\"localhost\"") && strstr(err, "host:port"), "%s",
                      err);
        ck_assert_int_eq(cm_health_parse_listen("127.0.0.1:99999", &sa, err, sizeof(err)),
                         -1);
        ck_assert_msg(strstr(err, "127.0.0.1:99999"), "%s", err);
        ck_assert_int_eq(cm_health_parse_listen("127.0.0.1:8081", &sa, err, sizeof(err)),
                         0);
        ck_assert_int_eq(ntohs(sa.sin_port), 8081);

        /* A port already taken is named with the setting. */
        cm_health_t *a = serve(cm_health_new("tester"));
        char listen[64];
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", cm_health_port(a));
        cm_health_t *b = cm_health_new("tester");
        ck_assert_int_eq(cm_health_serve(b, listen, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, "health.listen") && strstr(err, listen), "%s", err);
        cm_health_destroy(b);
        cm_health_destroy(a);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("health");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_healthz_and_readyz);
        tcase_add_test(tc, test_answers_above_fd_setsize);
        tcase_add_test(tc, test_listen_errors_name_the_value);
        suite_add_tcase(s, tc);
        return cm_check_run(s);
}
