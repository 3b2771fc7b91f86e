/*
 * cm/kafka.h - the Kafka producer and consumer every cm service uses (librdkafka
 * underneath).
 *
 * The settings are the contract of DESIGN §5 and are not configurable here:
 *   producer: enable.idempotence=true, acks=all, partitioner=murmur2_random (a key lands
 * on the same partition as with Java clients), a short linger; consumer:
 * enable.auto.commit=false, enable.auto.offset.store=false, auto.offset.reset=earliest;
 * offsets are committed explicitly, synchronously, after the caller's database commit
 * (at-least-once). Only bootstrap servers, client id, group, assignment strategy and
 * timeouts come from the configuration, so nothing here depends on the broker being
 * cm-devbroker or real Kafka.
 *
 * librdkafka's own log lines and errors are written through cm/log.h.
 */
#ifndef CM_KAFKA_H
#define CM_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include "cm/config.h"

typedef enum {
        CM_KAFKA_OK = 0,
        CM_KAFKA_ERR_CONF,     /* a setting was refused (key and value in errstr) */
        CM_KAFKA_ERR_CREATE,   /* the client handle could not be created */
        CM_KAFKA_ERR_PRODUCE,  /* the message was not enqueued (queue full, too large...)
                                */
        CM_KAFKA_ERR_DELIVERY, /* the broker did not durably accept the message */
        CM_KAFKA_ERR_TIMEOUT,  /* the operation did not finish in time */
        CM_KAFKA_ERR_FATAL, /* the idempotent producer hit a fatal error: recreate it */
        CM_KAFKA_ERR_SUBSCRIBE, /* subscribe was refused */
        CM_KAFKA_ERR_CONSUME, /* poll returned a consumer error (logged; keep polling) */
        CM_KAFKA_ERR_COMMIT,  /* the offset commit failed (e.g. partition revoked) */
        CM_KAFKA_ERR_UNREACHABLE, /* no broker answered a metadata request in time */
        CM_KAFKA_ERR_NO_TOPIC, /* the cluster answered but a required topic is missing */
        CM_KAFKA_ERR_ARG,      /* invalid argument (named in errstr) */
} cm_kafka_err_t;

/* Returns a static name for err ("CM_KAFKA_ERR_TIMEOUT"). Thread-safe. */
const char *cm_kafka_err2str(cm_kafka_err_t err);

/*
 * Client settings. The strings are borrowed: they must stay valid while a *_new() call
 * runs (the handles copy them). Zero/NULL fields take the defaults shown.
 */
typedef struct cm_kafka_conf_s {
        const char *bootstrap_servers;   /* required, "host:port,host:port" */
        const char *client_id;           /* NULL: "cm" */
        const char *group_id;            /* consumer only, required there */
        const char *assignment_strategy; /* NULL: "roundrobin" (eager), see DESIGN §5 */
        int session_timeout_ms;          /* 0: 10000 (consumer) */
        int fetch_wait_max_ms;           /* 0: librdkafka's default (500) */
        int message_timeout_ms;          /* 0: 30000 (producer delivery timeout) */
        int linger_ms;                   /* 0: 5; negative: 0 */
        /* Producer requests in flight per broker connection; 0: librdkafka's default
         * (5, which idempotence keeps in order on a real broker). 1 keeps a client in
         * order on cm-devbroker, whose mock does not check idempotent sequence numbers
         * (docs/devbroker.md); cm's services leave it 0. */
        int max_in_flight;
} cm_kafka_conf_t;

/*
 * Fills *kc from conf->kafka.* (pointers into conf, which must outlive *kc) and sets
 * kc->group_id = group_id (may be NULL for a producer). Thread-safe.
 */
void cm_kafka_conf_from_config(cm_kafka_conf_t *kc, const cm_config_t *conf,
                               const char *group_id);

/* One message header. name is a NUL-terminated string; value may be binary or NULL. */
typedef struct cm_kafka_header_s {
        const char *name;
        const void *value;
        size_t value_len;
} cm_kafka_header_t;

/*
 * Murmur2 of Kafka's Java client (Utils.murmur2, seed 0x9747b28c), returned as the Java
 * int, and the partition a key gets with the murmur2_random partitioner: (murmur2(key) &
 * 0x7fffffff) % partition_cnt. Pure functions, thread-safe.
 */
int32_t cm_kafka_murmur2(const void *key, size_t len);
int32_t cm_kafka_partition_for_key(const void *key, size_t len, int32_t partition_cnt);

/* ---------------------------------------------------------------- producer */

typedef struct cm_kafka_producer_s cm_kafka_producer_t;

/* What happened to one produced message. Valid only during the callback. */
typedef struct cm_kafka_delivery_s {
        cm_kafka_err_t err; /* CM_KAFKA_OK: durably written (acks=all) */
        const char *errstr; /* librdkafka's reason when err != OK, else "" */
        const char *topic;
        int32_t partition; /* -1 when unknown */
        int64_t offset;    /* -1 when unknown */
        void *msg_opaque;  /* as given to cm_kafka_produce() */
} cm_kafka_delivery_t;

/*
 * Called once per message given to cm_kafka_produce(), on the producer's own poll thread
 * (not the caller's): keep it short and thread-safe.
 */
typedef void(cm_kafka_delivery_cb_t)(const cm_kafka_delivery_t *dr, void *cb_opaque);

/*
 * Creates a producer and starts its poll thread (which serves delivery reports). dr_cb
 * may be NULL if only cm_kafka_produce_sync() is used. Returns NULL with errstr set on
 * failure. The caller owns the producer and frees it with cm_kafka_producer_destroy().
 */
cm_kafka_producer_t *cm_kafka_producer_new(const cm_kafka_conf_t *conf,
                                           cm_kafka_delivery_cb_t *dr_cb, void *cb_opaque,
                                           char *errstr, size_t errstr_size);

/*
 * Enqueues one message (key and value copied; headers copied). The delivery callback
 * later reports its outcome with msg_opaque. A NULL key means "no key" (random
 * partition). Thread-safe.
 */
cm_kafka_err_t cm_kafka_produce(cm_kafka_producer_t *p, const char *topic,
                                const void *key, size_t key_len, const void *value,
                                size_t value_len, const cm_kafka_header_t *headers,
                                size_t header_cnt, void *msg_opaque, char *errstr,
                                size_t errstr_size);

/*
 * Produces one message and waits until the broker has durably written it (acks=all) or
 * timeout_ms passes. On CM_KAFKA_OK *partition and *offset (each may be NULL) say where
 * it was written. On CM_KAFKA_ERR_TIMEOUT the message may still be delivered later
 * (at-least- once: the caller may retry with the same command id). The delivery callback
 * is not called for it. Thread-safe: many threads may wait at once.
 */
cm_kafka_err_t cm_kafka_produce_sync(cm_kafka_producer_t *p, const char *topic,
                                     const void *key, size_t key_len, const void *value,
                                     size_t value_len, const cm_kafka_header_t *headers,
                                     size_t header_cnt, int timeout_ms,
                                     int32_t *partition, int64_t *offset, char *errstr,
                                     size_t errstr_size);

/* Waits until every enqueued message is reported, or timeout_ms. Thread-safe. */
cm_kafka_err_t cm_kafka_producer_flush(cm_kafka_producer_t *p, int timeout_ms,
                                       char *errstr, size_t errstr_size);

/*
 * Is the cluster reachable now (a metadata request answered within timeout_ms)? If topic
 * is not NULL it must also exist with at least one partition. For /readyz. Thread-safe.
 */
cm_kafka_err_t cm_kafka_producer_ready(cm_kafka_producer_t *p, const char *topic,
                                       int timeout_ms, char *errstr, size_t errstr_size);

/*
 * Flushes for up to flush_timeout_ms, then fails what is left (each still gets its
 * delivery report, with an error, and is logged as a count), stops the poll thread and
 * frees p. No other thread may use p during or after the call. Safe on NULL.
 */
void cm_kafka_producer_destroy(cm_kafka_producer_t *p, int flush_timeout_ms);

/* ---------------------------------------------------------------- consumer */

typedef struct cm_kafka_consumer_s cm_kafka_consumer_t;

/* A consumed message. The fields are read-only and live until cm_kafka_message_destroy().
 */
typedef struct cm_kafka_message_s {
        const char *topic;
        int32_t partition;
        int64_t offset;
        int64_t timestamp_ms; /* -1 if unknown */
        const void *key;      /* NULL if the message has no key */
        size_t key_len;
        const void *value; /* NULL for a tombstone */
        size_t value_len;
        void *priv_; /* the librdkafka message: not for callers */
} cm_kafka_message_t;

/* Number of headers of m. */
size_t cm_kafka_message_header_cnt(const cm_kafka_message_t *m);

/*
 * The idx-th header (0-based): name and value point into m (valid until m is destroyed).
 * Returns 0, or -1 if idx is out of range.
 */
int cm_kafka_message_header_at(const cm_kafka_message_t *m, size_t idx, const char **name,
                               const void **value, size_t *value_len);

/* The last header named name, or -1 if none (same ownership as above). */
int cm_kafka_message_header_find(const cm_kafka_message_t *m, const char *name,
                                 const void **value, size_t *value_len);

/* Frees m. Safe on NULL. Thread-safe for distinct messages. */
void cm_kafka_message_destroy(cm_kafka_message_t *m);

/* One assigned partition. */
typedef struct cm_kafka_partition_s {
        char topic[250];
        int32_t partition;
} cm_kafka_partition_t;

/*
 * Called from inside cm_kafka_consumer_poll() (the caller's thread) after partitions were
 * assigned (assigned=1) or revoked (assigned=0). parts is valid during the call only.
 */
typedef void(cm_kafka_rebalance_cb_t)(int assigned, const cm_kafka_partition_t *parts,
                                      size_t cnt, void *opaque);

/*
 * Start offsets a cm_kafka_start_offsets_cb_t may give a partition, besides an explicit
 * offset >= 0 (the next message to read).
 */
#define CM_KAFKA_OFFSET_BEGINNING (-2) /* the oldest message still in the log */
#define CM_KAFKA_OFFSET_END       (-1) /* only messages produced from now on */
#define CM_KAFKA_OFFSET_COMMITTED                                                        \
        (-1001) /* the group's committed offset (else the oldest) */

/*
 * Called from inside cm_kafka_consumer_poll() (the caller's thread) when partitions are
 * assigned, before they are fetched, for a consumer that keeps its offsets elsewhere
 * (e.g. in the database, written in the same transaction as the rows, like cm-projector).
 * Fill offsets[i] (preset to CM_KAFKA_OFFSET_COMMITTED) with the start offset of
 * parts[i] and return 0. A non-zero return (e.g. the process is stopping and the offsets
 * could not be read) leaves the partitions unassigned, so nothing is read from an unknown
 * position, until the next rebalance. parts and offsets are valid during the call only.
 */
typedef int(cm_kafka_start_offsets_cb_t)(const cm_kafka_partition_t *parts, size_t cnt,
                                         int64_t *offsets, void *opaque);

/*
 * Creates a group consumer (conf->group_id required). rebalance_cb may be NULL. Returns
 * NULL with errstr set on failure (e.g. "kafka.assignment_strategy: invalid value
 * \"x\""). The caller owns it and frees it with cm_kafka_consumer_destroy(). A consumer
 * is used by one thread at a time, except cm_kafka_consumer_assignment(), _ready() and
 * _generation().
 */
cm_kafka_consumer_t *cm_kafka_consumer_new(const cm_kafka_conf_t *conf,
                                           cm_kafka_rebalance_cb_t *rebalance_cb,
                                           void *rebalance_opaque, char *errstr,
                                           size_t errstr_size);

/*
 * Makes c start each assigned partition where cb says (see above) instead of at the
 * group's committed offset. Set it before cm_kafka_consumer_subscribe(); NULL restores
 * the default. The rebalance callback, if any, still runs after the assignment.
 */
void cm_kafka_consumer_set_start_offsets(cm_kafka_consumer_t *c,
                                         cm_kafka_start_offsets_cb_t *cb, void *opaque);

/* Subscribes to topic_cnt topics (replacing any earlier subscription). */
cm_kafka_err_t cm_kafka_consumer_subscribe(cm_kafka_consumer_t *c,
                                           const char *const *topics, size_t topic_cnt,
                                           char *errstr, size_t errstr_size);

/*
 * Waits up to timeout_ms for a message. CM_KAFKA_OK with *msgp set: the caller owns the
 * message (cm_kafka_message_destroy()). CM_KAFKA_OK with *msgp NULL: nothing arrived.
 * CM_KAFKA_ERR_CONSUME: a consumer error (errstr says which topic/partition); keep
 * polling. Rebalances are served here.
 */
cm_kafka_err_t cm_kafka_consumer_poll(cm_kafka_consumer_t *c, int timeout_ms,
                                      cm_kafka_message_t **msgp, char *errstr,
                                      size_t errstr_size);

/*
 * Synchronously commits m's offset + 1 for m's partition (so a restarted member of the
 * group resumes after m). Call after the database commit that applied m.
 */
cm_kafka_err_t cm_kafka_consumer_commit(cm_kafka_consumer_t *c,
                                        const cm_kafka_message_t *m, char *errstr,
                                        size_t errstr_size);

/* Same, with an explicit next offset to read (the offset after the last applied one). */
cm_kafka_err_t cm_kafka_consumer_commit_offset(cm_kafka_consumer_t *c, const char *topic,
                                               int32_t partition, int64_t next_offset,
                                               char *errstr, size_t errstr_size);

/*
 * The partitions currently assigned to this member, sorted by topic then partition, in a
 * malloc'd array the caller frees with free() (*partsp NULL when *cntp is 0).
 * Thread-safe.
 */
cm_kafka_err_t cm_kafka_consumer_assignment(cm_kafka_consumer_t *c,
                                            cm_kafka_partition_t **partsp, size_t *cntp,
                                            char *errstr, size_t errstr_size);

/* Increments on every assignment change: cheap "did my partitions change?". Thread-safe.
 */
unsigned cm_kafka_consumer_generation(cm_kafka_consumer_t *c);

/*
 * The low and high watermarks (the oldest offset and the offset after the newest) of a
 * partition this consumer fetches, as last reported by the broker in a fetch response:
 * no round trip, so cheap enough for a lag gauge. -1 when not known yet (nothing fetched
 * so far). Thread-safe.
 */
void cm_kafka_consumer_watermarks(cm_kafka_consumer_t *c, const char *topic,
                                  int32_t partition, int64_t *low, int64_t *high);

/* As cm_kafka_producer_ready(), for the consumer's connection. Thread-safe. */
cm_kafka_err_t cm_kafka_consumer_ready(cm_kafka_consumer_t *c, const char *topic,
                                       int timeout_ms, char *errstr, size_t errstr_size);

/*
 * The number of partitions of topic (a metadata round trip of at most timeout_ms), e.g.
 * to map a key to its partition with cm_kafka_partition_for_key(). CM_KAFKA_ERR_NO_TOPIC
 * when the topic does not exist. Thread-safe.
 */
cm_kafka_err_t cm_kafka_consumer_partition_count(cm_kafka_consumer_t *c,
                                                 const char *topic, int timeout_ms,
                                                 int32_t *cnt, char *errstr,
                                                 size_t errstr_size);

/* Leaves the group (revoking partitions, committing nothing) and frees c. Safe on NULL.
 */
void cm_kafka_consumer_destroy(cm_kafka_consumer_t *c);

#endif
