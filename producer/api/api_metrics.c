/* api_metrics.c - request counters and latency histogram for /metrics (Prometheus text).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "api.h"

#define API_METRICS_MAX_SERIES 128
#define API_METRICS_ROUTE_MAX  64

static const double api_metrics_buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,  0.5,   1,    2.5,   5,    10};
#define API_METRICS_NBUCKETS                                                             \
        (sizeof(api_metrics_buckets) / sizeof(api_metrics_buckets[0]))

typedef struct {
        char route[API_METRICS_ROUTE_MAX];
        unsigned int status;
        unsigned long long count;
} api_metrics_counter_t;

typedef struct {
        char route[API_METRICS_ROUTE_MAX];
        unsigned long long buckets[API_METRICS_NBUCKETS];
        unsigned long long count;
        double sum;
} api_metrics_histogram_t;

static pthread_mutex_t api_metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static api_metrics_counter_t api_metrics_counters[API_METRICS_MAX_SERIES];
static size_t api_metrics_counter_count;
static api_metrics_histogram_t api_metrics_histograms[API_METRICS_MAX_SERIES];
static size_t api_metrics_histogram_count;
static unsigned long long api_metrics_commands[CM_COMMAND_IMPORT + 1];

/* Route templates are a small fixed set, so a linear search stays cheap. */
static api_metrics_histogram_t *api_metrics_histogram(const char *route)
{
        for (size_t i = 0; i < api_metrics_histogram_count; i++)
                if (strcmp(api_metrics_histograms[i].route, route) == 0)
                        return &api_metrics_histograms[i];
        if (api_metrics_histogram_count == API_METRICS_MAX_SERIES)
                return NULL;
        api_metrics_histogram_t *h =
            &api_metrics_histograms[api_metrics_histogram_count++];
        snprintf(h->route, sizeof(h->route), "%s", route);
        return h;
}

static api_metrics_counter_t *api_metrics_counter(const char *route, unsigned int status)
{
        for (size_t i = 0; i < api_metrics_counter_count; i++)
                if (api_metrics_counters[i].status == status &&
                    strcmp(api_metrics_counters[i].route, route) == 0)
                        return &api_metrics_counters[i];
        if (api_metrics_counter_count == API_METRICS_MAX_SERIES)
                return NULL;
        api_metrics_counter_t *c = &api_metrics_counters[api_metrics_counter_count++];
        snprintf(c->route, sizeof(c->route), "%s", route);
        c->status = status;
        return c;
}

void api_metrics_observe(const char *route, unsigned int status, double seconds)
{
        pthread_mutex_lock(&api_metrics_lock);
        api_metrics_counter_t *c = api_metrics_counter(route, status);
        if (c)
                c->count++;
        api_metrics_histogram_t *h = api_metrics_histogram(route);
        if (h) {
                for (size_t i = 0; i < API_METRICS_NBUCKETS; i++)
                        if (seconds <= api_metrics_buckets[i])
                                h->buckets[i]++;
                h->count++;
                h->sum += seconds;
        }
        pthread_mutex_unlock(&api_metrics_lock);
}

void api_metrics_command_produced(cm_command_kind_t kind)
{
        if ((int)kind < 0 || kind > CM_COMMAND_IMPORT)
                return;
        pthread_mutex_lock(&api_metrics_lock);
        api_metrics_commands[kind]++;
        pthread_mutex_unlock(&api_metrics_lock);
}

#define API_METRICS_PUT(...)                                                             \
        do {                                                                             \
                if (n < size)                                                            \
                        n += (size_t)snprintf(buf + n, size - n, __VA_ARGS__);           \
        } while (0)

size_t api_metrics_render(void *opaque, char *buf, size_t size)
{
        size_t n = 0;
        unsigned long streams;
        int ready;
        api_watch_stats(opaque, &streams, &ready);
        API_METRICS_PUT(
            "# HELP cm_api_event_streams Open event streams (SSE).\n"
            "# TYPE cm_api_event_streams gauge\n"
            "cm_api_event_streams %lu\n"
            "# HELP cm_api_event_stream_consumer_ready 1 once the event stream "
            "consumer is positioned on cm.events and cm.progress.\n"
            "# TYPE cm_api_event_stream_consumer_ready gauge\n"
            "cm_api_event_stream_consumer_ready %d\n",
            streams, ready);
        pthread_mutex_lock(&api_metrics_lock);
        API_METRICS_PUT("# HELP cm_api_commands_produced_total Commands produced to the "
                        "commands topic, by kind.\n"
                        "# TYPE cm_api_commands_produced_total counter\n");
        for (int k = CM_COMMAND_CREATE; k <= CM_COMMAND_IMPORT; k++)
                API_METRICS_PUT("cm_api_commands_produced_total{kind=\"%s\"} %llu\n",
                                cm_command_kind_name((cm_command_kind_t)k),
                                api_metrics_commands[k]);
        API_METRICS_PUT(
            "# HELP cm_api_requests_total HTTP requests by route and status.\n"
            "# TYPE cm_api_requests_total counter\n");
        for (size_t i = 0; i < api_metrics_counter_count; i++)
                API_METRICS_PUT(
                    "cm_api_requests_total{route=\"%s\",status=\"%u\"} %llu\n",
                    api_metrics_counters[i].route, api_metrics_counters[i].status,
                    api_metrics_counters[i].count);
        API_METRICS_PUT(
            "# HELP cm_api_request_duration_seconds Request latency by route.\n"
            "# TYPE cm_api_request_duration_seconds histogram\n");
        for (size_t i = 0; i < api_metrics_histogram_count; i++) {
                const api_metrics_histogram_t *h = &api_metrics_histograms[i];
                for (size_t b = 0; b < API_METRICS_NBUCKETS; b++)
                        API_METRICS_PUT(
                            "cm_api_request_duration_seconds_bucket{route=\"%s\","
                            "le=\"%g\"} %llu\n",
                            h->route, api_metrics_buckets[b], h->buckets[b]);
                API_METRICS_PUT("cm_api_request_duration_seconds_bucket{route=\"%s\","
                                "le=\"+Inf\"} %llu\n",
                                h->route, h->count);
                API_METRICS_PUT(
                    "cm_api_request_duration_seconds_sum{route=\"%s\"} %.6f\n", h->route,
                    h->sum);
                API_METRICS_PUT(
                    "cm_api_request_duration_seconds_count{route=\"%s\"} %llu\n",
                    h->route, h->count);
        }
        pthread_mutex_unlock(&api_metrics_lock);
        return n < size ? n : size ? size - 1 : 0;
}
