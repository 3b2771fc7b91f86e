/*
 * worker_sql.c - every SQL statement of cm-worker, prepared by name on each connection.
 *
 * Cluster names are compared as text ($1::text): a command may name a cluster that is no
 * valid cm_cluster_name, and the domain's check must not turn a lookup into an error.
 */
#include <stdio.h>
#include <string.h>

#include "worker.h"

#define CM_STR__(x) #x
#define CM_STR_(x)  CM_STR__(x)

static const cm_pg_statement_t worker_stmts[] = {
    {WSQL_STATE_LOCK, 1,
     "SELECT state, seq, version, spec::text, imported, ssh_key_sealed IS NOT NULL"
     "  FROM cluster_state WHERE name = $1::text FOR UPDATE"},
    {WSQL_CMD_SEEN, 1, "SELECT result FROM applied_commands WHERE command_id = $1"},
    {WSQL_CMD_RECORD, 4,
     "INSERT INTO applied_commands (command_id, cluster, result, message)"
     " VALUES ($1, $2, $3, $4)"},
    /* A new name: its first event is seq 1. */
    {WSQL_STATE_INSERT, 7,
     "INSERT INTO cluster_state (name, state, seq, version, spec, ssh_key_sealed,"
     "                           kubeconfig_sealed, imported)"
     " VALUES ($1, $2, $3, 1, $4::jsonb, $5, $6, $7::boolean) RETURNING version"},
    /* Create / Import of a Deleted name: the same row starts again, seq continues. */
    {WSQL_STATE_RESTART, 7,
     "UPDATE cluster_state SET state = $2, seq = $3, version = version + 1,"
     "       spec = $4::jsonb, ssh_key_sealed = $5, kubeconfig_sealed = $6,"
     "       imported = $7::boolean, certificates = '{}', certificate_keys_sealed = NULL,"
     "       host_keys = '{}', last_error = NULL, created_at = now(), updated_at = now()"
     " WHERE name = $1::text RETURNING version"},
    /* Any other transition: NULL keeps a column; $10 says whether last_error becomes $11.
     */
    {WSQL_STATE_UPDATE, 11,
     "UPDATE cluster_state SET state = $2, seq = $3, version = version + 1,"
     "       spec = COALESCE($4::jsonb, spec),"
     "       ssh_key_sealed = COALESCE($5, ssh_key_sealed),"
     "       kubeconfig_sealed = COALESCE($6, kubeconfig_sealed),"
     "       certificates = COALESCE($7::jsonb, certificates),"
     "       certificate_keys_sealed = COALESCE($8, certificate_keys_sealed),"
     "       host_keys = COALESCE($9::jsonb, host_keys),"
     "       last_error = CASE WHEN $10::boolean THEN $11 ELSE last_error END,"
     "       updated_at = now()"
     " WHERE name = $1::text RETURNING version"},
    {WSQL_OUTBOX_APPEND, 3,
     "INSERT INTO outbox (cluster, seq, event) VALUES ($1, $2, $3)"},
    {WSQL_REJECTION_APPEND, 3,
     "INSERT INTO rejection_outbox (command_id, cluster, event) VALUES ($1, $2, $3)"
     " ON CONFLICT (command_id) DO NOTHING"},
    {WSQL_NOTIFY, 1, "SELECT pg_notify('" WORKER_NOTIFY_CHANNEL "', $1)"},
    {WSQL_JOB_INSERT, 4,
     "INSERT INTO jobs (id, cluster, kind, payload) VALUES ($1::uuid, $2, $3, "
     "$4::jsonb)"},
    {WSQL_JOB_SIGNAL_CANCEL, 1,
     "UPDATE jobs SET cancel_requested = true, updated_at = now()"
     " WHERE cluster = $1::text AND state IN ('queued', 'running') RETURNING id::text"},
    {WSQL_RELAY_CLUSTERS, 1,
     "SELECT cluster FROM outbox WHERE sent_at IS NULL"
     " GROUP BY cluster ORDER BY min(created_at) LIMIT $1::integer"},
    {WSQL_RELAY_LOCK, 1,
     "SELECT pg_try_advisory_xact_lock(" CM_STR_(
         WORKER_RELAY_LOCK_CLASS) ", hashtext($1))"},
    {WSQL_RELAY_FETCH, 2,
     "SELECT seq, event FROM outbox WHERE cluster = $1::text AND sent_at IS NULL"
     " ORDER BY seq LIMIT $2::integer"},
    {WSQL_RELAY_MARK, 2,
     "UPDATE outbox SET sent_at = now()"
     " WHERE cluster = $1::text AND seq <= $2::bigint AND sent_at IS NULL"},
    {WSQL_REJ_FETCH, 1,
     "SELECT command_id, cluster, event FROM rejection_outbox WHERE sent_at IS NULL"
     " ORDER BY created_at LIMIT $1::integer FOR UPDATE SKIP LOCKED"},
    {WSQL_REJ_MARK, 1,
     "UPDATE rejection_outbox SET sent_at = now() WHERE command_id = $1"},
};

cm_pg_err_t worker_sql_prepare(cm_pg_t *pg, char *errstr, size_t errstr_size)
{
        return cm_pg_prepare_all(pg, worker_stmts,
                                 sizeof(worker_stmts) / sizeof(worker_stmts[0]), errstr,
                                 errstr_size);
}

cm_pg_err_t worker_sql_exec(cm_pg_t *pg, const char *name, int nparams,
                            const char *const *values, const int *lengths,
                            unsigned binary_mask, PGresult **res, char *errstr,
                            size_t errstr_size)
{
        int lens[16] = {0}, fmts[16] = {0};
        if (nparams > 16) {
                snprintf(errstr, errstr_size, "%s: too many parameters (%d)", name,
                         nparams);
                return CM_PG_ERR_ARG;
        }
        for (int i = 0; i < nparams; i++) {
                if (binary_mask & (1u << i)) {
                        fmts[i] = 1;
                        lens[i] = lengths ? lengths[i] : 0;
                }
        }
        return cm_pg_exec_prepared(pg, name, nparams, values, lens, fmts, 0, res, errstr,
                                   errstr_size);
}

worker_err_t worker_pg_err(cm_pg_t *pg, cm_pg_err_t e)
{
        if (e == CM_PG_OK)
                return WORKER_OK;
        if (e == CM_PG_ERR_CONN)
                return WORKER_ERR_RETRY;
        const char *st = cm_pg_sqlstate(pg);
        if (e == CM_PG_ERR_QUERY &&
            (cm_pg_sqlstate_retryable(st) || strcmp(st, "23505") == 0 ||
             strncmp(st, "08", 2) == 0 || strcmp(st, "57P01") == 0))
                return WORKER_ERR_RETRY;
        return WORKER_ERR_FAIL;
}
