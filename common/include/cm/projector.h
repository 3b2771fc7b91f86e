/*
 * cm/projector.h - the pure part of cm-projector (DESIGN §2, §5, docs/command-path.md):
 * what one cm.ClusterEvent writes into the read model, and the event as JSON (the
 * payload of cluster_events, also what an API serving history or a live stream shows).
 *
 * No I/O here: workers/projector/ runs the SQL. Everything is thread-safe on distinct
 * structs.
 */
#ifndef CM_PROJECTOR_H
#define CM_PROJECTOR_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "cm/event.h"

/* The read-model code of a rejection (command_results.code). */
#define CM_PROJECTION_CODE_CONFLICT "conflict" /* CommandRejected: HTTP 409 */
#define CM_PROJECTION_CODE_INVALID  "invalid"  /* CommandInvalid: HTTP 422 */
#define CM_EVENT_TYPE_INVALID       "CommandInvalid"

typedef enum {
        CM_PROJECTION_CLUSTER =
            0,                   /* seq >= 1: clusters, cluster_events, command_results */
        CM_PROJECTION_REJECTION, /* seq 0: command_results 'rejected' only */
} cm_projection_kind_t;

/*
 * One event, ready for the statements of the projector. Strings marked borrowed point
 * into the event (which must outlive the projection) or to static storage; the others
 * are owned and freed by cm_projection_destroy().
 */
typedef struct cm_projection_s {
        cm_projection_kind_t kind;
        const char *cluster; /* borrowed */
        int64_t seq;
        char seq_text[24];      /* seq in decimal, for text parameters */
        char at_text[32];       /* event.at as RFC 3339 UTC, "2026-01-01T00:00:00.999Z" */
        const char *command_id; /* borrowed; NULL when the event has none */
        /* CLUSTER only */
        const char *state;  /* toState, canonical (static) */
        int ready;          /* cm_state_is_ready(state) */
        int starts_cluster; /* CreateRequested / ImportRequested: created_at and
                               last_error start again (a re-created name) */
        int clears_error;   /* reaches Running: last_error is cleared */
        char *spec_json;    /* owned; NULL when the event has no spec (keep the row's) */
        char node_count_text[16]; /* "" when the event has no spec */
        char *payload_json;       /* owned: cm_cluster_event_to_json() as compact text */
        /* REJECTION only */
        const char *code;    /* CM_PROJECTION_CODE_* (static) */
        const char *message; /* borrowed: event.error (may be NULL) */
} cm_projection_t;

/*
 * Fills *p (zeroed first) from ev. Returns 0, or -1 with errstr naming the field and the
 * offending value when the event cannot be projected (no cluster, negative seq, seq >= 1
 * without a known toState, seq 0 that is not a CommandRejected/CommandInvalid with a
 * commandId, a time out of range, a string that is not UTF-8); nothing is then left to
 * free. On success the caller frees *p with cm_projection_destroy().
 */
int cm_projection_from_event(cm_projection_t *p, const cm_cluster_event_t *ev,
                             char *errstr, size_t errstr_size);

/* Frees what p owns and zeroes it. Safe on a zeroed struct. */
void cm_projection_destroy(cm_projection_t *p);

/*
 * The event as a JSON object (caller owns the reference), camelCase as in the Avro
 * schema: cluster, seq, eventId, commandId, jobId, type, fromState, toState, at (RFC 3339
 * UTC text, millisecond precision), actor {name, role}, spec (cm_spec_to_json: no
 * secret), error. Absent optional fields are left out. NULL on allocation failure, a
 * string that is not UTF-8 or a time out of range.
 */
json_t *cm_cluster_event_to_json(const cm_cluster_event_t *ev);

/*
 * Writes ms (milliseconds since the Unix epoch) as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf.
 * Returns 0, or -1 when the year is outside 1..9999 or buf is too small (24 bytes do).
 */
int cm_time_format_ms(int64_t ms, char *buf, size_t size);

#endif
