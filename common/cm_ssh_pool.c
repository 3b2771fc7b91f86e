/*
 * cm_ssh_pool.c - a function per node on a bounded pool of threads, every result kept.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/ssh.h"

typedef struct {
        size_t n;
        atomic_size_t next;
        cm_ssh_node_fn fn;
        void *ctx;
        cm_ssh_node_result_t *results;
} pool_t;

static void *worker(void *arg)
{
        pool_t *p = arg;
        for (;;) {
                size_t i = atomic_fetch_add(&p->next, 1);
                if (i >= p->n)
                        return NULL;
                cm_ssh_node_result_t *r = &p->results[i];
                r->error[0] = '\0';
                r->rc = p->fn(i, p->ctx, r->error, sizeof(r->error));
                if (r->rc != 0 && r->error[0] == '\0')
                        snprintf(r->error, sizeof(r->error),
                                 "failed (code %d) without a message", r->rc);
                if (r->rc == 0)
                        r->error[0] = '\0';
        }
}

int cm_ssh_parallel(size_t n, int parallelism, cm_ssh_node_fn fn, void *ctx,
                    cm_ssh_node_result_t *results)
{
        if (n == 0)
                return 0;
        pool_t p = {.n = n, .fn = fn, .ctx = ctx, .results = results};
        atomic_init(&p.next, 0);
        size_t nthreads = parallelism < 1 ? 1 : (size_t)parallelism;
        if (nthreads > n)
                nthreads = n;
        pthread_t *tids = calloc(nthreads, sizeof(*tids));
        if (tids == NULL)
                return -1;
        size_t started = 0;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        /* 2 MiB: ample for libssh2, OpenSSL and a job's node function (also under ASan);
           50 threads x 8 MiB of address space would be needless */
        pthread_attr_setstacksize(&attr, 2 * 1024 * 1024);
        for (; started < nthreads; started++)
                if (pthread_create(&tids[started], &attr, worker, &p) != 0)
                        break;
        pthread_attr_destroy(&attr);
        if (started == 0) {
                free(tids);
                return -1;
        }
        /* fewer threads than asked (resource limits): the ones running take every item */
        for (size_t i = 0; i < started; i++)
                pthread_join(tids[i], NULL);
        free(tids);
        int failed = 0;
        for (size_t i = 0; i < n; i++)
                failed += results[i].rc != 0;
        return failed;
}

char *cm_ssh_parallel_summary(size_t n, const char *const *names,
                              const cm_ssh_node_result_t *results)
{
        size_t failed = 0, size = 64;
        for (size_t i = 0; i < n; i++) {
                if (results[i].rc == 0)
                        continue;
                failed++;
                size += strlen(names && names[i] ? names[i] : "") +
                        strlen(results[i].error) + 32;
        }
        if (failed == 0)
                return NULL;
        char *out = malloc(size);
        if (out == NULL)
                return NULL;
        size_t o = (size_t)snprintf(out, size, "%zu of %zu node%s failed: ", failed, n,
                                    n == 1 ? "" : "s");
        const char *sep = "";
        for (size_t i = 0; i < n; i++) {
                if (results[i].rc == 0)
                        continue;
                if (names && names[i])
                        o += (size_t)snprintf(out + o, size - o, "%s%s: %s", sep,
                                              names[i], results[i].error);
                else
                        o += (size_t)snprintf(out + o, size - o, "%s#%zu: %s", sep, i,
                                              results[i].error);
                sep = "; ";
        }
        return out;
}
