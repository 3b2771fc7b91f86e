/*
 * projector_sql.h - every SQL statement of cm-projector, in one place (schemas/sql/
 * 002_read_model.sql has the tables). Each is registered with cm_pg_prepare_all() under
 * its name, so a log line naming a statement leads here.
 *
 * Statements run inside the projector's batch transaction; each event has its own
 * savepoint, and the offsets of the batch are written in the same transaction.
 */
#ifndef CM_PROJECTOR_SQL_H
#define CM_PROJECTOR_SQL_H

#include "cm/pg.h"

/* Where each assigned partition starts: $1 topic. */
#define PRJ_OFFSETS_LOAD "prj_offsets_load"
#define PRJ_OFFSETS_LOAD_SQL                                                             \
        "SELECT \"partition\", next_offset FROM projector_offsets WHERE topic = $1"

/*
 * $1 topic, $2 partition, $3 next offset. Never moves back: a member that lost the
 * partition in a rebalance while its batch was in flight cannot undo the progress of the
 * new owner (re-reading is harmless, every event is idempotent, but needless). An
 * operator replays a partition by deleting its row (or lowering it) while the projector
 * is stopped.
 */
#define PRJ_OFFSET_SAVE "prj_offset_save"
#define PRJ_OFFSET_SAVE_SQL                                                              \
        "INSERT INTO projector_offsets (topic, \"partition\", next_offset, updated_at) " \
        "VALUES ($1, $2::integer, $3::bigint, now()) "                                   \
        "ON CONFLICT (topic, \"partition\") DO UPDATE SET "                              \
        "next_offset = GREATEST(projector_offsets.next_offset, EXCLUDED.next_offset), "  \
        "updated_at = now()"

/* The seq applied so far for a name (none: 0), row locked until the batch commits. */
#define PRJ_CLUSTER_LOCK     "prj_cluster_lock"
#define PRJ_CLUSTER_LOCK_SQL "SELECT seq FROM clusters WHERE name = $1 FOR UPDATE"

/*
 * Applies an event (seq >= 1) to its cluster unless that seq was applied already: the
 * WHERE makes a duplicate (or a concurrent insert by another member) change nothing and
 * return no row. $1 name, $2 state, $3 ready, $4 seq, $5 spec JSON (NULL: keep the
 * row's), $6 node count (NULL: keep), $7 error, $8 at, $9 starts the cluster
 * (Create/Import: created_at and last_error start again), $10 reaches Running (last_error
 * cleared).
 */
#define PRJ_CLUSTER_UPSERT "prj_cluster_upsert"
#define PRJ_CLUSTER_UPSERT_SQL                                                           \
        "INSERT INTO clusters AS c (name, state, ready, seq, spec, node_count, "         \
        "last_error, created_at, updated_at) "                                           \
        "VALUES ($1, $2, $3::boolean, $4::bigint, COALESCE($5::jsonb, '{}'::jsonb), "    \
        "COALESCE($6::integer, 0), CASE WHEN $10::boolean THEN NULL ELSE $7 END, "       \
        "$8::timestamptz, $8::timestamptz) "                                             \
        "ON CONFLICT (name) DO UPDATE SET state = EXCLUDED.state, "                      \
        "ready = EXCLUDED.ready, seq = EXCLUDED.seq, "                                   \
        "spec = COALESCE($5::jsonb, c.spec), "                                           \
        "node_count = COALESCE($6::integer, c.node_count), "                             \
        "last_error = CASE WHEN $10::boolean THEN NULL WHEN $9::boolean THEN $7 "        \
        "ELSE COALESCE($7, c.last_error) END, "                                          \
        "created_at = CASE WHEN $9::boolean THEN EXCLUDED.created_at "                   \
        "ELSE c.created_at END, "                                                        \
        "updated_at = EXCLUDED.updated_at "                                              \
        "WHERE c.seq < EXCLUDED.seq RETURNING seq"

/*
 * History row; a row already there (same (cluster, seq) or event id) is a duplicate and
 * returns no row. $1 cluster, $2 seq, $3 event id, $4 type, $5 from, $6 to, $7 command
 * id, $8 job id, $9 actor, $10 actor role, $11 error, $12 at, $13 the event as JSON.
 */
#define PRJ_EVENT_INSERT "prj_event_insert"
#define PRJ_EVENT_INSERT_SQL                                                             \
        "INSERT INTO cluster_events (cluster, seq, event_id, type, from_state, "         \
        "to_state, command_id, job_id, actor, actor_role, error, at, payload) "          \
        "VALUES ($1, $2::bigint, $3::uuid, $4, $5, $6, $7, $8::uuid, $9, $10, $11, "     \
        "$12::timestamptz, $13::jsonb) ON CONFLICT DO NOTHING RETURNING seq"

/*
 * The outcome of a command: replaces only 'pending' (what cm-api inserted before
 * producing) or no row at all; a second event of the same command (e.g. Deleting, then
 * Deleted) or a redelivery changes nothing and returns no row.
 * Applied: $1 command id, $2 cluster, $3 at.
 */
#define PRJ_COMMAND_APPLIED "prj_command_applied"
#define PRJ_COMMAND_APPLIED_SQL                                                          \
        "INSERT INTO command_results AS r (command_id, cluster, status, code, message, " \
        "updated_at) VALUES ($1, $2, 'applied', NULL, NULL, $3::timestamptz) "           \
        "ON CONFLICT (command_id) DO UPDATE SET status = 'applied', code = NULL, "       \
        "message = NULL, cluster = EXCLUDED.cluster, updated_at = EXCLUDED.updated_at "  \
        "WHERE r.status = 'pending' RETURNING 1"

/* Rejected: $1 command id, $2 cluster, $3 code, $4 message, $5 at. */
#define PRJ_COMMAND_REJECTED "prj_command_rejected"
#define PRJ_COMMAND_REJECTED_SQL                                                         \
        "INSERT INTO command_results AS r (command_id, cluster, status, code, message, " \
        "updated_at) VALUES ($1, $2, 'rejected', $3, $4, $5::timestamptz) "              \
        "ON CONFLICT (command_id) DO UPDATE SET status = 'rejected', "                   \
        "code = EXCLUDED.code, message = EXCLUDED.message, cluster = EXCLUDED.cluster, " \
        "updated_at = EXCLUDED.updated_at WHERE r.status = 'pending' RETURNING 1"

/* Per-event savepoint: a bad event (data or constraint error) is undone alone. */
#define PRJ_SAVEPOINT_SQL "SAVEPOINT prj_event"
#define PRJ_RELEASE_SQL   "RELEASE SAVEPOINT prj_event"
#define PRJ_UNDO_SQL      "ROLLBACK TO SAVEPOINT prj_event; RELEASE SAVEPOINT prj_event"

/* The statements registered at start, for cm_pg_prepare(). */
static const cm_pg_statement_t projector_stmts[] = {
    {PRJ_OFFSETS_LOAD, 1, PRJ_OFFSETS_LOAD_SQL},
    {PRJ_OFFSET_SAVE, 3, PRJ_OFFSET_SAVE_SQL},
    {PRJ_CLUSTER_LOCK, 1, PRJ_CLUSTER_LOCK_SQL},
    {PRJ_CLUSTER_UPSERT, 10, PRJ_CLUSTER_UPSERT_SQL},
    {PRJ_EVENT_INSERT, 13, PRJ_EVENT_INSERT_SQL},
    {PRJ_COMMAND_APPLIED, 3, PRJ_COMMAND_APPLIED_SQL},
    {PRJ_COMMAND_REJECTED, 5, PRJ_COMMAND_REJECTED_SQL},
};

#endif
