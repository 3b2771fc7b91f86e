/*
 * cm_log.c - structured logs, one JSON object per line.
 *
 * A line is built in memory and written with one write(2) under a mutex, so lines of
 * concurrent threads never interleave. Secrets are masked here rather than trusted to
 * callers: a key that names a secret hides its value, and key=value / URL passwords
 * inside any text are masked.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cm/log.h"
#include "cm/utf8.h"

/* Longest msg or value written; the rest is cut and marked, so one call cannot flood. */
#define CM_LOG_MAX_VALUE 16384
#define CM_LOG_REDACTED  "[redacted]"

static pthread_mutex_t cm_log_lock = PTHREAD_MUTEX_INITIALIZER;
static char cm_log_component[64] = "cm";
static atomic_int cm_log_min_level = CM_LOG_INFO;
static atomic_int cm_log_fd = 2;

static const char *const cm_log_level_names[] = {"debug", "info", "warn", "error"};

typedef struct {
        char *p;
        size_t len, cap;
        int oom;
} cm_log_buf_t;

/* Room for n more bytes and a NUL; 0 when memory ran out (b->oom). */
static int cm_log_reserve(cm_log_buf_t *b, size_t n)
{
        if (b->oom)
                return 0;
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 256;
                while (cap < b->len + n + 1)
                        cap *= 2;
                char *p = realloc(b->p, cap);
                if (!p) {
                        b->oom = 1;
                        return 0;
                }
                b->p = p;
                b->cap = cap;
        }
        return 1;
}

static void cm_log_put(cm_log_buf_t *b, const char *s, size_t n)
{
        if (!cm_log_reserve(b, n))
                return;
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

static void cm_log_puts(cm_log_buf_t *b, const char *s)
{
        cm_log_put(b, s, strlen(s));
}

void cm_log_init(const char *component, cm_log_level_t min_level)
{
        pthread_mutex_lock(&cm_log_lock);
        snprintf(cm_log_component, sizeof(cm_log_component), "%s",
                 component ? component : "cm");
        pthread_mutex_unlock(&cm_log_lock);
        atomic_store(&cm_log_min_level, (int)min_level);
}

int cm_log_level_parse(const char *s)
{
        if (!s)
                return -1;
        for (int i = 0; i < 4; i++)
                if (strcmp(s, cm_log_level_names[i]) == 0)
                        return i;
        return -1;
}

void cm_log_set_fd(int fd)
{
        atomic_store(&cm_log_fd, fd);
}

int cm_log_enabled(cm_log_level_t level)
{
        return (int)level >= atomic_load(&cm_log_min_level);
}

static int cm_log_is_ident(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

/* Secret test on the first n bytes of key, ignoring case and the separators _ - . */
static int cm_log_key_is_secret_n(const char *key, size_t n)
{
        static const char *const anywhere[] = {
            "password", "passwd",        "secret",     "token",  "kubeconfig",
            "conninfo", "authorization", "privatekey", "sshkey", "credential",
        };
        char norm[128];
        size_t len = 0;

        for (size_t i = 0; i < n && key[i] && len < sizeof(norm) - 1; i++) {
                char c = key[i];
                if (c == '_' || c == '-' || c == '.' || c == ' ')
                        continue;
                norm[len++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        norm[len] = '\0';
        for (size_t i = 0; i < sizeof(anywhere) / sizeof(anywhere[0]); i++)
                if (strstr(norm, anywhere[i]))
                        return 1;
        /* "key" as the whole key or its last word: sshKey, apiKey, api_key, keys */
        return (len >= 3 && strcmp(norm + len - 3, "key") == 0) ||
               (len >= 4 && strcmp(norm + len - 4, "keys") == 0);
}

int cm_log_key_is_secret(const char *key)
{
        return key && cm_log_key_is_secret_n(key, strlen(key));
}

static size_t cm_log_ci_prefix(const char *s, size_t n, const char *word)
{
        size_t wl = strlen(word);
        if (n < wl || strncasecmp(s, word, wl) != 0)
                return 0;
        return wl;
}

/*
 * Length of the value that starts at s (after "secret=" or "secret":): a quoted string
 * including its quotes, or a run up to a blank or a separator.
 */
static size_t cm_log_value_len(const char *s, size_t n)
{
        size_t i = 0;

        if (n > 0 && (s[0] == '\'' || s[0] == '"')) {
                for (i = 1; i < n && s[i] != s[0]; i++)
                        if (s[i] == '\\' && i + 1 < n)
                                i++;
                return i < n ? i + 1 : n;
        }
        while (i < n && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' &&
               s[i] != '&' && s[i] != ';' && s[i] != ',' && s[i] != '"' && s[i] != '\'')
                i++;
        return i;
}

/* If s[0..n) starts with "scheme://user:pass@", the offset and length of "pass", else 0.
 */
static int cm_log_url_password(const char *s, size_t n, size_t *off, size_t *len)
{
        size_t colon = 0;

        if (n < 3 || memcmp(s, "://", 3) != 0)
                return 0;
        for (size_t i = 3; i < n; i++) {
                char c = s[i];
                if (c == '/' || c == '?' || c == '#' || c == ' ' || c == '\t' ||
                    c == '\n' || c == '"' || c == '\'')
                        return 0;
                if (c == ':' && !colon)
                        colon = i;
                if (c == '@') {
                        if (!colon)
                                return 0;
                        *off = colon + 1;
                        *len = i - colon - 1;
                        return 1;
                }
        }
        return 0;
}

/*
 * Copies s into out with the secrets inside text masked: key=value and "key": "value"
 * where the key names a secret (password=..., PGPASSWORD=..., token=...), the password of
 * a URL (postgresql://user:pw@host) and a bearer token.
 */
static void cm_log_mask(cm_log_buf_t *out, const char *s, size_t n)
{
        size_t i = 0, start = 0;

        while (i < n) {
                size_t off, len, skip = 0, keep = 0;

                if (s[i] == '=' || (s[i] == ':' && i > 0 && s[i - 1] == '"')) {
                        size_t end = s[i] == ':' ? i - 1 : i, b = end;
                        while (b > 0 && cm_log_is_ident((unsigned char)s[b - 1]))
                                b--;
                        if (b < end && cm_log_key_is_secret_n(s + b, end - b)) {
                                keep = i + 1;
                                while (keep < n && s[i] == ':' && s[keep] == ' ')
                                        keep++;
                                skip = cm_log_value_len(s + keep, n - keep);
                        }
                } else if (s[i] == ':' && cm_log_url_password(s + i, n - i, &off, &len) &&
                           len > 0) {
                        keep = i + off;
                        skip = len;
                } else if ((i == 0 || !cm_log_is_ident((unsigned char)s[i - 1])) &&
                           (off = cm_log_ci_prefix(s + i, n - i, "bearer ")) > 0) {
                        keep = i + off;
                        skip = cm_log_value_len(s + keep, n - keep);
                }
                if (skip > 0) {
                        cm_log_put(out, s + start, keep - start);
                        cm_log_puts(out, CM_LOG_REDACTED);
                        i = start = keep + skip;
                } else {
                        i++;
                }
        }
        cm_log_put(out, s + start, n - start);
}

/* Appends s[0..n) escaped for the inside of a JSON string; invalid UTF-8 becomes U+FFFD.
 */
static void cm_log_put_escaped(cm_log_buf_t *b, const char *s, size_t n)
{
        size_t need = cm_utf8_json_escape(s, n, NULL);
        if (!cm_log_reserve(b, need))
                return;
        b->len += cm_utf8_json_escape(s, n, b->p + b->len);
        b->p[b->len] = '\0';
}

static void cm_log_put_json(cm_log_buf_t *b, const char *s, size_t n)
{
        cm_log_put(b, "\"", 1);
        cm_log_put_escaped(b, s, n);
        cm_log_put(b, "\"", 1);
}

/* Appends text as a JSON string, masked and cut to CM_LOG_MAX_VALUE. */
static void cm_log_put_text(cm_log_buf_t *b, const char *text)
{
        cm_log_buf_t masked = {0};
        size_t n;

        cm_log_mask(&masked, text, strlen(text));
        if (masked.oom || !masked.p) {
                cm_log_puts(b, masked.oom ? "\"[out of memory]\"" : "\"\"");
                free(masked.p);
                return;
        }
        n = masked.len;
        if (n > CM_LOG_MAX_VALUE) {
                n = CM_LOG_MAX_VALUE;
                /* do not split a UTF-8 sequence: it would show as U+FFFD */
                while (n > 0 && ((unsigned char)masked.p[n] & 0xC0) == 0x80)
                        n--;
        }
        cm_log_put(b, "\"", 1);
        cm_log_put_escaped(b, masked.p, n);
        if (n < masked.len)
                cm_log_puts(b, "...[truncated]");
        cm_log_put(b, "\"", 1);
        free(masked.p);
}

static void cm_log_put_time(cm_log_buf_t *b)
{
        struct timespec ts;
        struct tm tm;
        char s[96]; /* room for any int the compiler imagines in the fields */

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(s, sizeof(s), "\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, (long)(ts.tv_nsec / 1000000) % 1000);
        cm_log_puts(b, s);
}

static int cm_log_reserved(const char *key)
{
        return strcmp(key, "time") == 0 || strcmp(key, "level") == 0 ||
               strcmp(key, "component") == 0 || strcmp(key, "msg") == 0;
}

static void cm_log_write(cm_log_buf_t *b)
{
        size_t off = 0;
        int fd = atomic_load(&cm_log_fd);

        if (b->oom || !b->p)
                return;
        /* one write(2) for any line a pipe takes atomically; the loop only for partial
         * writes */
        while (off < b->len) {
                ssize_t n = write(fd, b->p + off, b->len - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return;
                off += (size_t)n;
        }
}

static void cm_log_emit(cm_log_level_t level, const char *msg, va_list ap)
{
        cm_log_buf_t b = {0};
        const char *key, *val;

        if ((int)level < CM_LOG_DEBUG || (int)level > CM_LOG_ERROR)
                level = CM_LOG_ERROR;
        cm_log_puts(&b, "{\"time\":");
        cm_log_put_time(&b);
        cm_log_puts(&b, ",\"level\":\"");
        cm_log_puts(&b, cm_log_level_names[level]);
        cm_log_puts(&b, "\",\"component\":");
        pthread_mutex_lock(&cm_log_lock);
        cm_log_put_json(&b, cm_log_component, strlen(cm_log_component));
        pthread_mutex_unlock(&cm_log_lock);
        cm_log_puts(&b, ",\"msg\":");
        cm_log_put_text(&b, msg ? msg : "");
        while ((key = va_arg(ap, const char *)) != NULL) {
                val = va_arg(ap, const char *);
                /* a field named like the line's own ones is written as "_msg" etc. */
                cm_log_puts(&b, cm_log_reserved(key) ? ",\"_" : ",\"");
                cm_log_put_escaped(&b, key, strlen(key));
                cm_log_puts(&b, "\":");
                if (!val)
                        cm_log_puts(&b, "null");
                else if (cm_log_key_is_secret(key))
                        cm_log_puts(&b, "\"" CM_LOG_REDACTED "\"");
                else
                        cm_log_put_text(&b, val);
        }
        cm_log_puts(&b, "}\n");

        pthread_mutex_lock(&cm_log_lock);
        cm_log_write(&b);
        pthread_mutex_unlock(&cm_log_lock);
        free(b.p);
}

void cm_log(cm_log_level_t level, const char *msg, ...)
{
        va_list ap;

        if (!cm_log_enabled(level))
                return;
        va_start(ap, msg);
        cm_log_emit(level, msg, ap);
        va_end(ap);
}

static void cm_log_fields(cm_log_level_t level, const char *msg, ...)
{
        va_list ap;

        va_start(ap, msg);
        cm_log_emit(level, msg, ap);
        va_end(ap);
}

void cm_logf(cm_log_level_t level, const char *fmt, ...)
{
        va_list ap;
        char *msg = NULL;

        if (!cm_log_enabled(level))
                return;
        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        cm_log_fields(level, msg ? msg : fmt, (const char *)NULL);
        free(msg);
}
