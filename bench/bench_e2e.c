/*
 * bench_e2e.c - the end-to-end row: POST /v1/clusters at a fixed rate (open loop: request
 * i is due at t0 + i/rate, whatever happened to the earlier ones, with at most
 * --concurrency in flight) and, per accepted command, the time from sending the POST to
 * its row appearing in the read model's clusters table.
 *
 * "Appearing" is the commit of the projector's transaction: bench/run adds to the
 * benchmark's database a trigger that NOTIFYs cm_bench_visible with the cluster's name on
 * each INSERT into clusters, and a notification is delivered at commit. A listener thread
 * of this process takes the time on the same clock as the POST.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "bench.h"

#define E2E_CHANNEL "cm_bench_visible"

typedef struct e2e_s {
        const bench_opts_t *o;
        long total;
        double *sent, *seen; /* per request; 0 = not yet */
        int *status;
        PGconn *listen;
        atomic_long seen_count;
        atomic_int stop;
} e2e_t;

typedef struct e2e_req_s {
        CURL *h;
        long idx;
        struct curl_slist *headers;
} e2e_req_t;

static void *listener(void *opaque)
{
        e2e_t *e = opaque;
        size_t plen = strlen(e->o->prefix);
        struct pollfd pfd = {.fd = PQsocket(e->listen), .events = POLLIN};
        while (!atomic_load(&e->stop)) {
                if (poll(&pfd, 1, 50) < 0)
                        continue;
                if (!PQconsumeInput(e->listen)) {
                        fprintf(stderr, "cm-bench: listener: %s",
                                PQerrorMessage(e->listen));
                        return NULL;
                }
                PGnotify *n;
                double now = bench_now();
                while ((n = PQnotifies(e->listen))) {
                        const char *name = n->extra;
                        if (strncmp(name, e->o->prefix, plen) == 0 && name[plen] == '-') {
                                long i = atol(name + plen + 1);
                                if (i >= 0 && i < e->total && e->seen[i] == 0) {
                                        e->seen[i] = now;
                                        atomic_fetch_add(&e->seen_count, 1);
                                }
                        }
                        PQfreemem(n);
                }
        }
        return NULL;
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *opaque)
{
        (void)ptr, (void)opaque;
        return size * nmemb;
}

/* The POST body of request i: the benchmark spec plus the SSH key (cm-api seals it). */
static char *body_for(const bench_opts_t *o, const char *key, long i)
{
        char name[200], text[1024];
        json_error_t jerr;
        snprintf(name, sizeof(name), "%s-%ld", o->prefix, i);
        snprintf(text, sizeof(text), BENCH_SPEC_JSON_FMT, name);
        json_t *j = json_loads(text, 0, &jerr);
        if (!j)
                bench_die("the benchmark spec does not parse: %s", jerr.text);
        json_object_set_new(j, "sshKey", json_string(key));
        char *b = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!b)
                bench_die("out of memory");
        return b;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static void report(e2e_t *e, double first_send, double last_send, long sent)
{
        long accepted = 0, visible = 0, errors = 0;
        int first_error = 0;
        double *lat = calloc((size_t)e->total + 1, sizeof(double));
        for (long i = 0; i < e->total; i++) {
                if (e->status[i] != 202) {
                        if (e->status[i] && !first_error)
                                first_error = e->status[i];
                        errors += e->status[i] != 0;
                        continue;
                }
                accepted++;
                if (e->seen[i] > 0)
                        lat[visible++] = (e->seen[i] - e->sent[i]) * 1000.0;
        }
        qsort(lat, (size_t)visible, sizeof(double), cmp_double);
        double span = last_send - first_send;
        double achieved = sent > 1 && span > 0 ? (double)(sent - 1) / span : 0;
        printf(
            "{\"row\":\"e2e\",\"target_rate\":%.1f,\"achieved_rate\":%.1f,\"sent\":%ld,"
            "\"accepted\":%ld,\"visible\":%ld,\"http_errors\":%ld,\"first_error\":%d,"
            "\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f}\n",
            e->o->rate, achieved, sent, accepted, visible, errors, first_error,
            bench_percentile(lat, (size_t)visible, 0.50),
            bench_percentile(lat, (size_t)visible, 0.99),
            visible ? lat[visible - 1] : 0.0);
        free(lat);
}

int bench_pace(const bench_opts_t *o)
{
        char url[600], auth[600];
        if (!o->url || !o->token || !o->sshkey || !o->conninfo || o->rate <= 0 ||
            o->seconds <= 0)
                bench_die(
                    "--url, --token, --sshkey, --conninfo, --rate and --seconds are "
                    "required");
        e2e_t e = {.o = o, .total = (long)(o->rate * o->seconds + 0.5)};
        if (e.total < 1)
                bench_die("--rate x --seconds is below one request");
        char *key = bench_read_file(o->sshkey, NULL);
        char **bodies = calloc((size_t)e.total, sizeof(char *));
        for (long i = 0; i < e.total; i++)
                bodies[i] = body_for(o, key, i);
        free(key);
        e.sent = calloc((size_t)e.total, sizeof(double));
        e.seen = calloc((size_t)e.total, sizeof(double));
        e.status = calloc((size_t)e.total, sizeof(int));

        e.listen = bench_pg_connect(o->conninfo);
        PGresult *r = PQexec(e.listen, "LISTEN " E2E_CHANNEL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
                bench_die("LISTEN: %s", PQerrorMessage(e.listen));
        PQclear(r);
        pthread_t th;
        if (pthread_create(&th, NULL, listener, &e) != 0)
                bench_die("cannot start the listener thread");

        curl_global_init(CURL_GLOBAL_DEFAULT);
        CURLM *multi = curl_multi_init();
        curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)o->concurrency);
        snprintf(url, sizeof(url), "%s/v1/clusters", o->url);
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->token);
        e2e_req_t *pool = calloc((size_t)o->concurrency, sizeof(*pool));
        int free_cnt = o->concurrency;
        e2e_req_t **free_list = calloc((size_t)o->concurrency, sizeof(*free_list));
        for (int i = 0; i < o->concurrency; i++) {
                pool[i].h = curl_easy_init();
                pool[i].headers = curl_slist_append(NULL, auth);
                pool[i].headers =
                    curl_slist_append(pool[i].headers, "Content-Type: application/json");
                pool[i].headers = curl_slist_append(pool[i].headers, "Expect:");
                free_list[i] = &pool[i];
        }

        long next = 0, sent = 0;
        int running = 0;
        double t0 = bench_now(), first_send = 0, last_send = 0;
        double give_up = t0 + o->seconds + o->timeout_s;
        while ((next < e.total || running > 0) && bench_now() < give_up) {
                double now = bench_now();
                while (next < e.total && free_cnt > 0 &&
                       now >= t0 + (double)next / o->rate) {
                        e2e_req_t *q = free_list[--free_cnt];
                        q->idx = next;
                        curl_easy_reset(q->h);
                        curl_easy_setopt(q->h, CURLOPT_URL, url);
                        curl_easy_setopt(q->h, CURLOPT_HTTPHEADER, q->headers);
                        curl_easy_setopt(q->h, CURLOPT_POSTFIELDS, bodies[next]);
                        curl_easy_setopt(q->h, CURLOPT_WRITEFUNCTION, discard);
                        curl_easy_setopt(q->h, CURLOPT_NOSIGNAL, 1L);
                        curl_easy_setopt(q->h, CURLOPT_TIMEOUT, 30L);
                        curl_easy_setopt(q->h, CURLOPT_PRIVATE, q);
                        e.sent[next] = bench_now();
                        if (!sent)
                                first_send = e.sent[next];
                        last_send = e.sent[next];
                        curl_multi_add_handle(multi, q->h);
                        next++, sent++, running++;
                }
                curl_multi_perform(multi, &running);
                CURLMsg *m;
                int left;
                while ((m = curl_multi_info_read(multi, &left))) {
                        if (m->msg != CURLMSG_DONE)
                                continue;
                        e2e_req_t *q;
                        long code = 0;
                        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&q);
                        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
                        e.status[q->idx] = m->data.result == CURLE_OK ? (int)code : -1;
                        curl_multi_remove_handle(multi, q->h);
                        free_list[free_cnt++] = q;
                }
                double due =
                    next < e.total ? t0 + (double)next / o->rate - bench_now() : 0.005;
                int wait_ms = due <= 0 ? 0 : due > 0.005 ? 5 : (int)(due * 1000);
                if (free_cnt == 0 || next >= e.total || wait_ms > 0)
                        curl_multi_poll(multi, NULL, 0, wait_ms ? wait_ms : 1, NULL);
        }

        long accepted = 0;
        for (long i = 0; i < e.total; i++)
                accepted += e.status[i] == 202;
        double end = bench_now() + o->timeout_s;
        while (atomic_load(&e.seen_count) < accepted && bench_now() < end)
                bench_sleep_ms(20);
        atomic_store(&e.stop, 1);
        pthread_join(th, NULL);
        report(&e, first_send, last_send, sent);

        for (int i = 0; i < o->concurrency; i++) {
                curl_easy_cleanup(pool[i].h);
                curl_slist_free_all(pool[i].headers);
        }
        curl_multi_cleanup(multi);
        curl_global_cleanup();
        for (long i = 0; i < e.total; i++)
                free(bodies[i]);
        free(bodies);
        free(pool);
        free(free_list);
        PQfinish(e.listen);
        long seen = atomic_load(&e.seen_count);
        free(e.sent);
        free(e.seen);
        free(e.status);
        return accepted == 0 || seen < accepted;
}
