/*
 * cm_probe.c - GET <server>/version with a kubeconfig's credentials (libcurl, OpenSSL).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "cm/probe.h"

struct cm_probe_s {
        CURL *curl;
        cm_kubeconfig_t *kc; /* our copy: the blobs below point into it */
        struct curl_slist *headers;
        struct curl_slist *connect_to;
        char *url;     /* what is fetched (host = tls-server-name when set) */
        char *display; /* what errors name: <server>/version */
        struct curl_blob ca, cert, key;
        char errbuf[CURL_ERROR_SIZE];
        /* the answer being received */
        char *body;
        size_t body_len;
        int too_large;
        cm_probe_cancel_cb_t *cancel;
        void *cancel_opaque;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
        global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

const char *cm_probe_err2str(cm_probe_err_t err)
{
        switch (err) {
        case CM_PROBE_OK:
                return "ok";
        case CM_PROBE_ERR_ARG:
                return "invalid argument";
        case CM_PROBE_ERR_NOMEM:
                return "out of memory";
        case CM_PROBE_ERR_CONNECT:
                return "cannot connect";
        case CM_PROBE_ERR_TIMEOUT:
                return "timed out";
        case CM_PROBE_ERR_TLS:
                return "TLS failed";
        case CM_PROBE_ERR_HTTP:
                return "HTTP error status";
        case CM_PROBE_ERR_RESPONSE:
                return "not a Kubernetes version answer";
        case CM_PROBE_ERR_CANCELED:
                return "canceled";
        case CM_PROBE_ERR_INTERNAL:
                return "internal error";
        }
        return "unknown error";
}

__attribute__((format(printf, 5, 6))) static cm_probe_err_t
fail(const cm_probe_t *p, cm_probe_err_t e, char *errstr, size_t size, const char *fmt,
     ...)
{
        if (!size)
                return e;
        int n = p ? snprintf(errstr, size, "GET %s: ", p->display) : 0;
        va_list ap;
        va_start(ap, fmt);
        if (n >= 0 && (size_t)n < size)
                vsnprintf(errstr + n, size - (size_t)n, fmt, ap);
        va_end(ap);
        return e;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque)
{
        cm_probe_t *p = opaque;
        size_t n = size * nmemb;
        if (p->body_len + n > CM_PROBE_MAX_BODY) {
                p->too_large = 1;
                return 0; /* CURLE_WRITE_ERROR */
        }
        char *b = realloc(p->body, p->body_len + n + 1);
        if (!b)
                return 0;
        memcpy(b + p->body_len, data, n);
        p->body = b;
        p->body_len += n;
        p->body[p->body_len] = '\0';
        return n;
}

static int on_progress(void *opaque, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow)
{
        (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
        cm_probe_t *p = opaque;
        return p->cancel && p->cancel(p->cancel_opaque) ? 1 : 0;
}

/* Zeroes the strings of a header list (the Authorization header holds the token). */
static void slist_free_scrubbed(struct curl_slist *l)
{
        for (struct curl_slist *i = l; i; i = i->next)
                OPENSSL_cleanse(i->data, strlen(i->data));
        curl_slist_free_all(l);
}

/* Builds the URL fetched: with tls-server-name, the URL names that host (so it is the SNI
 * and the name verified) and CURLOPT_CONNECT_TO sends the connection to the real host. */
static cm_probe_err_t build_urls(cm_probe_t *p, char *errstr, size_t size)
{
        const cm_kubeconfig_t *kc = p->kc;
        if (asprintf(&p->display, "%s/version", kc->server) < 0) {
                p->display = NULL;
                return CM_PROBE_ERR_NOMEM;
        }
        if (!kc->tls_server_name)
                return (p->url = strdup(p->display)) ? CM_PROBE_OK : CM_PROBE_ERR_NOMEM;

        cm_probe_err_t e = CM_PROBE_ERR_NOMEM;
        CURLU *u = curl_url();
        char *host = NULL, *port = NULL, *to = NULL, *url = NULL;
        if (!u)
                return e;
        if (curl_url_set(u, CURLUPART_URL, p->display, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
            curl_url_set(u, CURLUPART_HOST, kc->tls_server_name, 0) != CURLUE_OK) {
                e = fail(p, CM_PROBE_ERR_ARG, errstr, size,
                         "the server URL cannot be used with tls-server-name \"%s\"",
                         kc->tls_server_name);
                goto out;
        }
        if (curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK ||
            !(p->url = strdup(url)) ||
            asprintf(&to, "%s:%s:%s:%s", kc->tls_server_name, port, host, port) < 0) {
                to = NULL;
                goto out;
        }
        if ((p->connect_to = curl_slist_append(NULL, to)))
                e = CM_PROBE_OK;
out:
        free(to);
        curl_free(url);
        curl_free(host);
        curl_free(port);
        curl_url_cleanup(u);
        return e;
}

static CURLcode setup_tls(cm_probe_t *p)
{
        const cm_kubeconfig_t *kc = p->kc;
        CURLcode rc = CURLE_OK;
        if (kc->insecure_skip_tls_verify) {
                rc |= curl_easy_setopt(p->curl, CURLOPT_SSL_VERIFYPEER, 0L);
                rc |= curl_easy_setopt(p->curl, CURLOPT_SSL_VERIFYHOST, 0L);
        } else if (kc->ca_pem) {
                /* The kubeconfig's CA is the only one trusted, as with kubectl. */
                p->ca = (struct curl_blob){kc->ca_pem, kc->ca_pem_len, CURL_BLOB_NOCOPY};
                rc |= curl_easy_setopt(p->curl, CURLOPT_CAINFO_BLOB, &p->ca);
                rc |= curl_easy_setopt(p->curl, CURLOPT_CAINFO, NULL);
                rc |= curl_easy_setopt(p->curl, CURLOPT_CAPATH, NULL);
        }
        if (kc->client_cert_pem) {
                /* NOCOPY: curl reads our copy, which cm_probe_destroy zeroes. */
                p->cert = (struct curl_blob){kc->client_cert_pem, kc->client_cert_pem_len,
                                             CURL_BLOB_NOCOPY};
                p->key = (struct curl_blob){kc->client_key_pem, kc->client_key_pem_len,
                                            CURL_BLOB_NOCOPY};
                rc |= curl_easy_setopt(p->curl, CURLOPT_SSLCERT_BLOB, &p->cert);
                rc |= curl_easy_setopt(p->curl, CURLOPT_SSLCERTTYPE, "PEM");
                rc |= curl_easy_setopt(p->curl, CURLOPT_SSLKEY_BLOB, &p->key);
                rc |= curl_easy_setopt(p->curl, CURLOPT_SSLKEYTYPE, "PEM");
        }
        return rc;
}

static cm_probe_err_t setup(cm_probe_t *p, char *errstr, size_t size)
{
        cm_probe_err_t e = build_urls(p, errstr, size);
        if (e)
                return e;
        p->headers = curl_slist_append(NULL, "Accept: application/json");
        if (!p->headers)
                return CM_PROBE_ERR_NOMEM;
        if (p->kc->token) {
                char *h;
                if (asprintf(&h, "Authorization: Bearer %s", p->kc->token) < 0)
                        return CM_PROBE_ERR_NOMEM;
                struct curl_slist *l = curl_slist_append(p->headers, h);
                OPENSSL_cleanse(h, strlen(h));
                free(h);
                if (!l)
                        return CM_PROBE_ERR_NOMEM;
                p->headers = l;
        }
        CURL *c = p->curl;
        CURLcode rc = CURLE_OK;
        rc |= curl_easy_setopt(c, CURLOPT_URL, p->url);
        if (p->connect_to)
                rc |= curl_easy_setopt(c, CURLOPT_CONNECT_TO, p->connect_to);
        rc |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, p->headers);
        rc |= curl_easy_setopt(c, CURLOPT_USERAGENT,
                               "cm-probe/"
                               "0.1");
        rc |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
        rc |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        rc |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM */
        rc |= curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
        rc |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, p->errbuf);
        rc |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        rc |= curl_easy_setopt(c, CURLOPT_WRITEDATA, p);
        rc |= curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        rc |= curl_easy_setopt(c, CURLOPT_XFERINFODATA, p);
        rc |= curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        rc |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                               (long)CM_PROBE_DEFAULT_CONNECT_TIMEOUT_MS);
        rc |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)CM_PROBE_DEFAULT_TIMEOUT_MS);
        rc |= setup_tls(p);
        if (rc != CURLE_OK)
                return fail(
                    p, CM_PROBE_ERR_INTERNAL, errstr, size,
                    "libcurl refused an option (needs libcurl >= 7.85 with OpenSSL)");
        return CM_PROBE_OK;
}

cm_probe_err_t cm_probe_new(const cm_kubeconfig_t *kc, cm_probe_t **out, char *errstr,
                            size_t errstr_size)
{
        if (errstr_size)
                errstr[0] = '\0';
        if (!out)
                return CM_PROBE_ERR_ARG;
        *out = NULL;
        if (!kc || !kc->server)
                return fail(NULL, CM_PROBE_ERR_ARG, errstr, errstr_size,
                            "probe: no kubeconfig or no server");
        pthread_once(&global_once, global_init);
        if (global_rc != CURLE_OK)
                return fail(NULL, CM_PROBE_ERR_INTERNAL, errstr, errstr_size,
                            "probe: curl_global_init: %s", curl_easy_strerror(global_rc));
        cm_probe_t *p = calloc(1, sizeof(*p));
        if (!p)
                return CM_PROBE_ERR_NOMEM;
        cm_probe_err_t e = CM_PROBE_ERR_NOMEM;
        if ((p->kc = cm_kubeconfig_dup(kc)) && (p->curl = curl_easy_init()))
                e = setup(p, errstr, errstr_size);
        if (e != CM_PROBE_OK) {
                if (e == CM_PROBE_ERR_NOMEM)
                        fail(NULL, e, errstr, errstr_size, "probe: out of memory");
                cm_probe_destroy(p);
                return e;
        }
        *out = p;
        return CM_PROBE_OK;
}

void cm_probe_set_timeouts(cm_probe_t *p, long connect_ms, long total_ms)
{
        if (!p)
                return;
        if (connect_ms > 0)
                curl_easy_setopt(p->curl, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
        if (total_ms > 0)
                curl_easy_setopt(p->curl, CURLOPT_TIMEOUT_MS, total_ms);
}

void cm_probe_set_cancel(cm_probe_t *p, cm_probe_cancel_cb_t *cb, void *opaque)
{
        if (p) {
                p->cancel = cb;
                p->cancel_opaque = opaque;
        }
}

const char *cm_probe_url(const cm_probe_t *p)
{
        return p ? p->display : NULL;
}

/* curl's error text, or the code's generic text when the buffer is empty. */
static const char *detail(const cm_probe_t *p, CURLcode rc)
{
        return p->errbuf[0] ? p->errbuf : curl_easy_strerror(rc);
}

/* The message of a transfer that failed before an HTTP answer. */
static cm_probe_err_t transfer_error(cm_probe_t *p, CURLcode rc, long elapsed_ms,
                                     char *errstr, size_t size)
{
        const char *d = detail(p, rc);
        long os_errno = 0;
        char reason[128];
        switch (rc) {
        case CURLE_COULDNT_RESOLVE_HOST:
                return fail(p, CM_PROBE_ERR_CONNECT, errstr, size,
                            "cannot resolve host (%s)", d);
        case CURLE_COULDNT_CONNECT:
                curl_easy_getinfo(p->curl, CURLINFO_OS_ERRNO, &os_errno);
                if (os_errno == 0)
                        return fail(p, CM_PROBE_ERR_CONNECT, errstr, size, "%s", d);
                snprintf(reason, sizeof(reason), "%s", strerror((int)os_errno));
                reason[0] = (char)(reason[0] >= 'A' && reason[0] <= 'Z' ? reason[0] + 32
                                                                        : reason[0]);
                return fail(p, CM_PROBE_ERR_CONNECT, errstr, size, "%s", reason);
        case CURLE_OPERATION_TIMEDOUT:
                return fail(p, CM_PROBE_ERR_TIMEOUT, errstr, size,
                            "timed out after %ld ms (%s)", elapsed_ms, d);
        case CURLE_ABORTED_BY_CALLBACK:
                return fail(p, CM_PROBE_ERR_CANCELED, errstr, size, "canceled");
        case CURLE_WRITE_ERROR:
                if (p->too_large)
                        return fail(p, CM_PROBE_ERR_RESPONSE, errstr, size,
                                    "the answer is larger than %d bytes",
                                    CM_PROBE_MAX_BODY);
                return fail(p, CM_PROBE_ERR_NOMEM, errstr, size, "out of memory");
        case CURLE_PEER_FAILED_VERIFICATION:
                return fail(p, CM_PROBE_ERR_TLS, errstr, size,
                            "TLS: certificate verify failed (%s)", d);
        case CURLE_SSL_CERTPROBLEM:
                return fail(p, CM_PROBE_ERR_TLS, errstr, size,
                            "TLS: the client certificate cannot be used (%s)", d);
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
                /* With TLS 1.3 a refused client certificate shows up after the handshake,
                 * as an alert on the first read. */
                if (strstr(d, "alert certificate required") ||
                    strstr(d, "alert bad certif") || strstr(d, "alert unknown ca") ||
                    strstr(d, "certificate unknown"))
                        return fail(p, CM_PROBE_ERR_TLS, errstr, size,
                                    "TLS: the server refused the client certificate (%s)",
                                    d);
                if (rc == CURLE_SSL_CONNECT_ERROR || strstr(d, "SSL") || strstr(d, "TLS"))
                        return fail(p, CM_PROBE_ERR_TLS, errstr, size,
                                    "TLS: handshake failed (%s)", d);
                /* A TLS 1.3 server that refuses the client certificate may reset the
                 * connection before its alert is read. */
                return fail(p, CM_PROBE_ERR_CONNECT, errstr, size,
                            "connection closed without an answer (%s)%s", d,
                            p->kc->client_cert_pem ? "; the server may have refused the "
                                                     "client certificate"
                                                   : "");
        case CURLE_OUT_OF_MEMORY:
                return fail(p, CM_PROBE_ERR_NOMEM, errstr, size, "out of memory");
        default:
                if (rc >= CURLE_SSL_ENGINE_NOTFOUND && strstr(d, "SSL"))
                        return fail(p, CM_PROBE_ERR_TLS, errstr, size, "TLS: %s", d);
                return fail(p, CM_PROBE_ERR_INTERNAL, errstr, size, "%s", d);
        }
}

/* Copies at most dstsize-1 printable bytes of src (control characters become ' '). */
static void copy_text(char *dst, size_t dstsize, const char *src)
{
        size_t i = 0;
        for (; src && src[i] && i + 1 < dstsize; i++)
                dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ? ' ' : src[i];
        dst[i] = '\0';
}

/* The answer of a transfer that completed: 200 + a version object, or an error. */
static cm_probe_err_t read_answer(cm_probe_t *p, long status, cm_probe_result_t *res,
                                  char *errstr, size_t size)
{
        json_error_t jerr;
        json_t *j = p->body ? json_loadb(p->body, p->body_len, 0, &jerr) : NULL;
        char text[200];
        cm_probe_err_t e = CM_PROBE_OK;
        if (status != 200) {
                /* Kubernetes explains itself in a Status object's message. */
                const char *msg = json_string_value(json_object_get(j, "message"));
                copy_text(text, sizeof(text), msg);
                e = fail(p, CM_PROBE_ERR_HTTP, errstr, size, "HTTP %ld%s%s", status,
                         msg ? ": " : "", msg ? text : "");
        } else {
                const char *gv = json_string_value(json_object_get(j, "gitVersion"));
                if (!gv || !*gv) {
                        e = fail(
                            p, CM_PROBE_ERR_RESPONSE, errstr, size,
                            "HTTP 200 but the body is not a Kubernetes version object "
                            "(%s)",
                            !j ? "not JSON" : "no gitVersion");
                } else {
                        copy_text(res->git_version, sizeof(res->git_version), gv);
                        copy_text(res->major, sizeof(res->major),
                                  json_string_value(json_object_get(j, "major")));
                        copy_text(res->minor, sizeof(res->minor),
                                  json_string_value(json_object_get(j, "minor")));
                }
        }
        json_decref(j);
        return e;
}

cm_probe_err_t cm_probe_version(cm_probe_t *p, cm_probe_result_t *res, char *errstr,
                                size_t errstr_size)
{
        cm_probe_result_t local;
        if (!res)
                res = &local;
        memset(res, 0, sizeof(*res));
        if (errstr_size)
                errstr[0] = '\0';
        if (!p)
                return CM_PROBE_ERR_ARG;
        free(p->body);
        p->body = NULL;
        p->body_len = 0;
        p->too_large = 0;
        p->errbuf[0] = '\0';

        CURLcode rc = curl_easy_perform(p->curl);
        curl_off_t us = 0;
        curl_easy_getinfo(p->curl, CURLINFO_TOTAL_TIME_T, &us);
        res->elapsed_ms = (long)(us / 1000);
        curl_easy_getinfo(p->curl, CURLINFO_NUM_CONNECTS, &res->num_connects);
        curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &res->http_status);

        cm_probe_err_t e =
            rc == CURLE_OK ? read_answer(p, res->http_status, res, errstr, errstr_size)
                           : transfer_error(p, rc, res->elapsed_ms, errstr, errstr_size);
        free(p->body);
        p->body = NULL;
        p->body_len = 0;
        return e;
}

void cm_probe_destroy(cm_probe_t *p)
{
        if (!p)
                return;
        if (p->curl)
                curl_easy_cleanup(p->curl); /* before the blobs it points to go */
        slist_free_scrubbed(p->headers);
        curl_slist_free_all(p->connect_to);
        free(p->url);
        free(p->display);
        free(p->body);
        cm_kubeconfig_free(p->kc);
        OPENSSL_cleanse(p, sizeof(*p));
        free(p);
}
