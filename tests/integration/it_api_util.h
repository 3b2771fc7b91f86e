/*
 * it_api_util.h - what it_api.c needs around the real cm-api: child processes
 * (cm-devbroker, cm-api) stopped at exit also on failure, HTTP calls through libcurl, SQL
 * on the test's database, and event streams read on their own thread.
 */
#ifndef CM_IT_API_UTIL_H
#define CM_IT_API_UTIL_H

#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char it_conninfo[1024]; /* the test's own database */
static char it_url[64];        /* http://127.0.0.1:PORT */

static long long it_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void it_sleep_ms(int ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------- children */

static pid_t it_children[4];
static int it_child_count;
static pid_t it_owner;

static void it_children_stop(void)
{
        if (getpid() != it_owner) /* a forked Check test exiting */
                return;
        for (int i = it_child_count - 1; i >= 0; i--) {
                if (it_children[i] <= 0)
                        continue;
                kill(it_children[i], SIGTERM);
                for (int t = 0; t < 100 && waitpid(it_children[i], NULL, WNOHANG) == 0;
                     t++)
                        it_sleep_ms(50);
                kill(it_children[i], SIGKILL);
                waitpid(it_children[i], NULL, 0);
                it_children[i] = 0;
        }
}

/* Starts argv with stdout and stderr to logfile; stopped at exit. */
static pid_t it_spawn(char *const argv[], const char *logfile)
{
        if (!it_owner) {
                it_owner = getpid();
                atexit(it_children_stop);
        }
        pid_t pid = fork();
        if (pid == 0) {
                FILE *f = freopen(logfile, "w", stdout);
                if (!f || dup2(fileno(stdout), 2) < 0)
                        _exit(127);
                execv(argv[0], argv);
                _exit(127);
        }
        if (pid > 0)
                it_children[it_child_count++] = pid;
        return pid;
}

/* SIGTERM one child and wait; returns its exit status (or -1). */
static int it_stop_child(pid_t pid, int timeout_ms)
{
        int st = 0;
        kill(pid, SIGTERM);
        for (int t = 0; t < timeout_ms / 20; t++) {
                if (waitpid(pid, &st, WNOHANG) == pid) {
                        for (int i = 0; i < it_child_count; i++)
                                if (it_children[i] == pid)
                                        it_children[i] = 0;
                        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
                }
                it_sleep_ms(20);
        }
        return -1;
}

/* ---------------------------------------------------------------- HTTP */

typedef struct {
        long status;
        char *body;
        size_t len;
        char *headers;
        size_t hlen;
} it_resp_t;

static size_t it_append(char **buf, size_t *len, const char *p, size_t n)
{
        char *b = realloc(*buf, *len + n + 1);
        if (!b)
                return 0;
        memcpy(b + *len, p, n);
        *len += n;
        b[*len] = '\0';
        *buf = b;
        return n;
}

static size_t it_body_cb(char *p, size_t size, size_t n, void *ud)
{
        it_resp_t *r = ud;
        return it_append(&r->body, &r->len, p, size * n);
}

static size_t it_header_cb(char *p, size_t size, size_t n, void *ud)
{
        it_resp_t *r = ud;
        return it_append(&r->headers, &r->hlen, p, size * n);
}

static void it_resp_free(it_resp_t *r)
{
        free(r->body);
        free(r->headers);
        memset(r, 0, sizeof(*r));
}

/* The value of response header name (case-insensitive), malloc'd, or NULL. */
static char *it_resp_header(const it_resp_t *r, const char *name)
{
        size_t nl = strlen(name);
        for (const char *p = r->headers; p && *p;) {
                const char *eol = strstr(p, "\r\n");
                size_t n = eol ? (size_t)(eol - p) : strlen(p);
                if (n > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
                        const char *v = p + nl + 1;
                        while (*v == ' ')
                                v++;
                        return strndup(v, (size_t)(p + n - v));
                }
                p = eol ? eol + 2 : p + n;
        }
        return NULL;
}

/*
 * One request. token NULL: no Authorization header. extra: NULL-terminated list of
 * "Name: value" headers. body NULL: none; content_type NULL with a body:
 * application/json.
 */
static it_resp_t it_http(const char *method, const char *path, const char *token,
                         const char *const *extra, const char *body, size_t body_len,
                         const char *content_type)
{
        it_resp_t r = {0};
        char url[1024], auth[256], ct[256];
        CURL *c = curl_easy_init();
        struct curl_slist *h = NULL;
        snprintf(url, sizeof(url), "%s%s", it_url, path);
        if (token) {
                snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
                h = curl_slist_append(h, auth);
        }
        if (body) {
                snprintf(ct, sizeof(ct), "Content-Type: %s",
                         content_type ? content_type : "application/json");
                h = curl_slist_append(h, ct);
        }
        for (; extra && *extra; extra++)
                h = curl_slist_append(h, *extra);
        h = curl_slist_append(h, "Expect:");
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, it_body_cb);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, it_header_cb);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
        if (body) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        }
        CURLcode rc = curl_easy_perform(c);
        ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        if (!r.body)
                r.body = strdup("");
        return r;
}

#define IT_GET(path, token) it_http("GET", path, token, NULL, NULL, 0, NULL)
static it_resp_t it_send(const char *method, const char *path, const char *token,
                         const char *body)
{
        return it_http(method, path, token, NULL, body, body ? strlen(body) : 0, NULL);
}
#define IT_SEND it_send

/* Parses a JSON response body (fails the test when it is not JSON). */
static json_t *it_json(const it_resp_t *r)
{
        json_error_t e;
        json_t *j = json_loads(r->body, 0, &e);
        ck_assert_msg(j != NULL, "response is not JSON (%s): %s", e.text, r->body);
        return j;
}

/* error.message of an error response. */
static const char *it_error_message(json_t *j)
{
        return json_string_value(json_object_get(json_object_get(j, "error"), "message"));
}

/* error.code of an error response (inline: not every test reads it). */
static inline const char *it_error_code(json_t *j)
{
        return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

/* Does error.fields hold an entry for field? */
static int it_has_field(json_t *j, const char *field)
{
        json_t *fields = json_object_get(json_object_get(j, "error"), "fields");
        size_t i;
        json_t *f;
        json_array_foreach(fields, i, f)
        {
                if (strcmp(json_string_value(json_object_get(f, "field")), field) == 0)
                        return 1;
        }
        return 0;
}

/* ---------------------------------------------------------------- SQL */

static PGresult *it_sqlp(const char *sql, int n, const char *const *values,
                         const int *lengths, const int *formats)
{
        PGconn *c = PQconnectdb(it_conninfo);
        ck_assert_msg(PQstatus(c) == CONNECTION_OK, "test database: %s",
                      PQerrorMessage(c));
        PGresult *r = PQexecParams(c, sql, n, NULL, values, lengths, formats, 0);
        ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK ||
                          PQresultStatus(r) == PGRES_TUPLES_OK,
                      "%s: %s", sql, PQresultErrorMessage(r));
        PQfinish(c);
        return r;
}

static void it_sql(const char *sql)
{
        PQclear(it_sqlp(sql, 0, NULL, NULL, NULL));
}

/* The first column of the first row as a malloc'd string ("" when no row). */
static char *it_sql_value(const char *sql, const char *param)
{
        const char *v[] = {param};
        PGresult *r = it_sqlp(sql, param ? 1 : 0, v, NULL, NULL);
        char *s = strdup(PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
        PQclear(r);
        return s;
}

/* ---------------------------------------------------------------- event streams */

typedef struct {
        char path[256];
        char header[256]; /* one more request header ("Name: value"), "" when none */
        const char *token;
        pthread_t thread;
        pthread_mutex_t lock;
        char *buf;
        size_t len;
        volatile int stop;
        long status;
} it_stream_t;

static size_t it_stream_cb(char *p, size_t size, size_t n, void *ud)
{
        it_stream_t *s = ud;
        if (s->stop)
                return 0;
        pthread_mutex_lock(&s->lock);
        size_t r = it_append(&s->buf, &s->len, p, size * n);
        pthread_mutex_unlock(&s->lock);
        return r;
}

static int it_stream_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c,
                              curl_off_t d)
{
        it_stream_t *s = ud;
        (void)a, (void)b, (void)c, (void)d;
        return s->stop ? 1 : 0;
}

static void *it_stream_main(void *arg)
{
        it_stream_t *s = arg;
        char url[1024], auth[256];
        CURL *c = curl_easy_init();
        struct curl_slist *h = NULL;
        snprintf(url, sizeof(url), "%s%s", it_url, s->path);
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", s->token);
        h = curl_slist_append(h, auth);
        h = curl_slist_append(h, "Accept: text/event-stream");
        if (s->header[0])
                h = curl_slist_append(h, s->header);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, it_stream_cb);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, it_stream_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
        curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &s->status);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        return NULL;
}

/* Opens a stream of path, with one more request header (NULL: none). */
static void it_stream_open_h(it_stream_t *s, const char *path, const char *token,
                             const char *header)
{
        memset(s, 0, sizeof(*s));
        snprintf(s->path, sizeof(s->path), "%s", path);
        snprintf(s->header, sizeof(s->header), "%s", header ? header : "");
        s->token = token;
        pthread_mutex_init(&s->lock, NULL);
        ck_assert_int_eq(pthread_create(&s->thread, NULL, it_stream_main, s), 0);
}

static void it_stream_open(it_stream_t *s, const char *path, const char *token)
{
        it_stream_open_h(s, path, token, NULL);
}

/* Waits up to timeout_ms for needle in what the stream received. */
static int it_stream_wait(it_stream_t *s, const char *needle, int timeout_ms)
{
        long long end = it_now_ms() + timeout_ms;
        do {
                pthread_mutex_lock(&s->lock);
                int found = s->buf && strstr(s->buf, needle);
                pthread_mutex_unlock(&s->lock);
                if (found)
                        return 1;
                it_sleep_ms(20);
        } while (it_now_ms() < end);
        return 0;
}

static void it_stream_close(it_stream_t *s)
{
        s->stop = 1;
        pthread_join(s->thread, NULL);
        free(s->buf);
        pthread_mutex_destroy(&s->lock);
}

#endif
