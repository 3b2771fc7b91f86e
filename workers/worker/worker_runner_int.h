/*
 * worker_runner_int.h - what the job runner (worker_runner.c) and its lease keeper
 * (worker_keeper.c) share: one slot per runner thread, saying which run it has.
 * Internal to cm-worker; job kinds see a run through worker_job_t (worker.h).
 */
#ifndef CM_WORKER_RUNNER_INT_H
#define CM_WORKER_RUNNER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "worker.h"

/* A runner's current run. The lock guards job_id, attempt and lease_ok_ms; the keeper
 * sets canceled and lost, the run reads them (worker_job_stop_reason). */
struct worker_slot_s {
        pthread_mutex_t lock;
        char job_id[40];     /* "" when idle */
        int attempt;         /* of this run: a later claim of the same row is not ours */
        int64_t lease_ok_ms; /* monotonic time the lease was last known extended */
        atomic_int canceled;
        atomic_int lost;
};

typedef struct runner_s {
        worker_t *w;
        int index;
        cm_pg_t *pg;
        pthread_t thread;
        int started;
        worker_slot_t slot;
} runner_t;

struct worker_runners_s {
        int count;
        runner_t *runners;
        cm_pg_t *keeper_pg; /* the keeper's own connection */
        pthread_t keeper;
        int keeper_started;
        char kinds[128]; /* '{connect}' */
};

/*
 * Starts the lease keeper of w->runners (its connection, statements and thread). On an
 * error returns -1 with errstr set; what was made is freed by worker_keeper_join().
 * Called once, from worker_runner_start().
 */
int worker_keeper_start(worker_t *w, char *errstr, size_t errstr_size);

/* Waits for the keeper to end (after cm_service_stop()) and frees its connection. */
void worker_keeper_join(worker_t *w);

#endif
