/*
 * cm/event.h - cm.ClusterEvent (schemas/avro/ClusterEvent.avsc) as a C struct, and its
 * single-object Avro encoding for the cm.events topic (DESIGN §5).
 *
 * Ownership: a cm_cluster_event_t owns every string it points to and its spec; release it
 * with cm_cluster_event_destroy(). Optional fields are NULL when absent. An event carries
 * no secret (the spec has none). Thread-safety: thread-safe on distinct structs (the Avro
 * registry is shared, read-only).
 */
#ifndef CM_EVENT_H
#define CM_EVENT_H

#include <stddef.h>
#include <stdint.h>
#include <avro.h>

#include "cm/command.h" /* cm_actor_t */
#include "cm/spec.h"

typedef struct cm_cluster_event_s {
        char *cluster;
        int64_t seq;      /* per cluster, gap-free, from 1 */
        char *event_id;   /* UUID */
        char *command_id; /* optional: the command that caused it */
        char *job_id;     /* optional: the job that caused it */
        char *type;       /* e.g. "ClusterCreating", "CommandRejected" */
        char *from_state; /* optional */
        char *to_state;   /* optional */
        int64_t at;       /* milliseconds since the Unix epoch, UTC */
        cm_actor_t actor;
        cm_spec_t *spec; /* optional (NULL); owned, freed by cm_cluster_event_destroy */
        char *error;     /* optional */
} cm_cluster_event_t;

/*
 * Encodes ev as a cm.ClusterEvent single-object message; *buf (caller frees with free())
 * and *len are set on success. Returns 0 or a cm_avro_err_t with errstr naming the field.
 */
int cm_cluster_event_encode(const cm_cluster_event_t *ev, unsigned char **buf,
                            size_t *len, char *errstr, size_t errstr_size);

/*
 * Decodes a cm.ClusterEvent message into *ev (zeroed first). On success the caller owns
 * *ev (cm_cluster_event_destroy); on error nothing is left to free. Errors as
 * cm_avro_decode.
 */
int cm_cluster_event_decode(const unsigned char *buf, size_t len, cm_cluster_event_t *ev,
                            char *errstr, size_t errstr_size);

/* Frees everything ev owns and zeroes it. Safe on a zeroed struct. */
void cm_cluster_event_destroy(cm_cluster_event_t *ev);

/* Conversions to/from a cm.ClusterEvent generic value. */
int cm_cluster_event_to_avro(const cm_cluster_event_t *ev, avro_value_t *rec,
                             char *errstr, size_t errstr_size);
int cm_cluster_event_from_avro(cm_cluster_event_t *ev, const avro_value_t *rec,
                               char *errstr, size_t errstr_size);

#endif
