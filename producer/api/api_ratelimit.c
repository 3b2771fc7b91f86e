/*
 * api_ratelimit.c - a token bucket per API token (per client address without one), so one
 * caller cannot starve the others. Buckets live in a fixed table; when a probe run is
 * full, the longest-idle bucket is reused (an idle caller's bucket would be full anyway).
 */
#include <arpa/inet.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"

#define API_RL_SLOTS 8192 /* power of two */
#define API_RL_PROBE 16
#define API_RL_LOCKS 64

typedef struct {
        unsigned char
            key[crypto_generichash_BYTES_MIN]; /* 16 bytes: hash of the caller */
        int used;
        double tokens;
        double last; /* monotonic seconds of the last refill */
} api_rl_slot_t;

static api_rl_slot_t api_rl_slots[API_RL_SLOTS];
static pthread_mutex_t api_rl_locks[API_RL_LOCKS];
static pthread_once_t api_rl_once = PTHREAD_ONCE_INIT;

static void api_rl_init(void)
{
        for (int i = 0; i < API_RL_LOCKS; i++)
                pthread_mutex_init(&api_rl_locks[i], NULL);
}

static double api_rl_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The caller's identity: the bearer token when one is sent, else the client address. The
 * token itself is only hashed, never kept. */
static void api_rl_key(const api_request_t *req,
                       unsigned char key[crypto_generichash_BYTES_MIN])
{
        const char *auth = api_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
        char addr[INET6_ADDRSTRLEN + 2] = "a:?";
        const char *id = addr;
        if (auth && strncasecmp(auth, "Bearer ", 7) == 0 && auth[7]) {
                id = auth; /* "Bearer ..." never equals an "a:" address key */
        } else {
                const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
                    req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
                const struct sockaddr *sa = ci ? ci->client_addr : NULL;
                if (sa && sa->sa_family == AF_INET)
                        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
                                  addr + 2, sizeof(addr) - 2);
                else if (sa && sa->sa_family == AF_INET6)
                        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
                                  addr + 2, sizeof(addr) - 2);
        }
        crypto_generichash(key, crypto_generichash_BYTES_MIN, (const unsigned char *)id,
                           strlen(id), NULL, 0);
}

int api_ratelimit_check(const api_request_t *req, int *retry_after_s)
{
        const cm_config_t *conf = &req->api->svc->conf;
        double rate = conf->api.rate_limit_per_s, burst = conf->api.rate_limit_burst;
        unsigned char key[crypto_generichash_BYTES_MIN];
        if (rate <= 0)
                return 0;
        pthread_once(&api_rl_once, api_rl_init);
        api_rl_key(req, key);

        uint32_t h;
        memcpy(&h, key, sizeof(h));
        size_t base = h & (API_RL_SLOTS - 1);
        /* Slots form runs of API_RL_PROBE; a key probes only its own run, which one lock
         * guards. */
        base &= ~(size_t)(API_RL_PROBE - 1);
        pthread_mutex_t *lock = &api_rl_locks[(base / API_RL_PROBE) % API_RL_LOCKS];
        double now = api_rl_now();
        int limited = 0;

        pthread_mutex_lock(lock);
        api_rl_slot_t *slot = NULL, *oldest = &api_rl_slots[base];
        for (size_t i = 0; i < API_RL_PROBE; i++) {
                api_rl_slot_t *s = &api_rl_slots[base + i];
                if (s->used && memcmp(s->key, key, sizeof(key)) == 0) {
                        slot = s;
                        break;
                }
                if (!s->used || (oldest->used && s->last < oldest->last))
                        oldest = s;
        }
        if (!slot) {
                slot = oldest;
                memcpy(slot->key, key, sizeof(key));
                slot->used = 1;
                slot->tokens = burst;
                slot->last = now;
        }
        slot->tokens = fmin(burst, slot->tokens + (now - slot->last) * rate);
        slot->last = now;
        if (slot->tokens >= 1) {
                slot->tokens -= 1;
        } else {
                limited = 1;
                *retry_after_s = (int)ceil((1 - slot->tokens) / rate);
                if (*retry_after_s < 1)
                        *retry_after_s = 1;
        }
        pthread_mutex_unlock(lock);
        return limited;
}
