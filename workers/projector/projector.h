/*
 * projector.h - cm-projector's engine: consume cm.events in batches and apply each batch
 * to the read model in one PostgreSQL transaction together with the partitions' next
 * offsets (projector_offsets), so every event is applied exactly once however often Kafka
 * delivers it (DESIGN §2, docs/command-path.md "cm-projector").
 *
 * Used by the main thread only, except projector_metrics() and projector_check(), which
 * the health server's threads call (they read atomics or take the lock).
 */
#ifndef CM_PROJECTOR_ENGINE_H
#define CM_PROJECTOR_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/kafka.h"
#include "cm/pg.h"

#define PROJECTOR_BATCH_MAX 200 /* events per transaction at most */

/* Next offset per assigned partition, for the lag gauge. */
typedef struct projector_part_s {
        int32_t partition;
        int64_t next; /* offset of the next message to apply; -1: the oldest in the log */
} projector_part_t;

typedef struct projector_s {
        cm_pg_t *pg;                   /* borrowed: the main thread's connection */
        cm_kafka_consumer_t *consumer; /* borrowed */
        const char *topic;             /* borrowed */

        projector_part_t *parts; /* main thread only */
        size_t part_cnt;

        /* /metrics (monotonic counters) */
        atomic_ullong projected;   /* events applied (cluster events and rejections) */
        atomic_ullong duplicates;  /* events already applied, ignored */
        atomic_ullong undecodable; /* messages that are no cm.ClusterEvent, skipped */
        atomic_ullong invalid; /* decoded events the read model cannot take, skipped */
        atomic_ullong gaps;    /* events applied after a hole in a cluster's seq */
        atomic_ullong late;    /* events older than the cluster's seq that filled a
                                  hole in its history */
        atomic_ullong batches; /* transactions committed */
        atomic_ullong retries; /* batches retried (database lost or failed) */
        atomic_llong lag;      /* messages behind the log end; -1 unknown */

        pthread_mutex_t lock; /* guards what follows */
        int db_down;          /* the last attempt on the database failed */
        int started;          /* subscribed: consuming */
        char db_error[512];
} projector_t;

/* Zeroes p and sets its borrowed handles. Returns 0 or -1. */
int projector_init(projector_t *p, cm_pg_t *pg, cm_kafka_consumer_t *consumer,
                   const char *topic);
void projector_destroy(projector_t *p);

/*
 * Registers the statements of projector_sql.h on p->pg. Returns 0, or -1 with errstr
 * when the server refused one (a statement that does not match the schema: a bug).
 */
int projector_prepare(projector_t *p, char *errstr, size_t errstr_size);

/* Subscribes to the topic with the start offsets read from projector_offsets. */
int projector_subscribe(projector_t *p, char *errstr, size_t errstr_size);

/*
 * Polls one batch (waiting up to poll_ms for its first event) and applies it, retrying
 * through a lost database until it is committed. Returns 1 when a batch was applied, 0
 * when nothing arrived, -1 when a stop was requested before the batch could be
 * committed (it is read again on the next start).
 */
int projector_run_once(projector_t *p, int poll_ms);

/* cm_health_metrics_fn: the counters above in Prometheus text format. */
size_t projector_metrics(void *opaque, char *buf, size_t size);

/* cm_health_check_fn "projection": fails while the projector cannot reach its database
 * or before it consumes. */
int projector_check(void *opaque, char *errstr, size_t errstr_size);

/* cm_kafka_rebalance_cb_t: forgets revoked partitions (lag). */
void projector_on_rebalance(int assigned, const cm_kafka_partition_t *parts, size_t cnt,
                            void *opaque);

#endif
