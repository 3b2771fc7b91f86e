/*
 * worker_zke.c - job kinds zke-up and zke-remove (DESIGN §7): what the job needs is read
 * from cluster_state (spec, sealed SSH key, certificates and their sealed keys, pinned
 * host keys) and from the job payload (reason, nodes, previousNodes), the secrets are
 * opened in memory only, workers/zke does the work, and what comes back is sealed with
 * this manager's key and handed to the runner, which stores it with the outcome.
 *
 * Every plaintext secret (SSH key, certificate keys, kubeconfig) is zeroed before it is
 * freed; none is logged or published (zke's progress lines hold none).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/log.h"
#include "worker.h"
#include "zke.h"

cm_pg_err_t worker_zke_prepare(cm_pg_t *pg, char *errstr, size_t errstr_size)
{
        return cm_pg_prepare(pg, WSQL_ZKE_LOAD,
                             "SELECT spec::text, ssh_key_sealed, certificates::text,"
                             "       certificate_keys_sealed, host_keys::text"
                             " FROM cluster_state WHERE name = $1::text",
                             1, errstr, errstr_size);
}

/* What one run holds; secrets are zeroed by zrun_clear. */
typedef struct zrun_s {
        cm_spec_t spec;
        cm_node_t *prev;
        size_t prev_count;
        unsigned char *ssh_key; /* SECRET */
        size_t ssh_key_len;
        char *pki_public;        /* NULL: none stored (create) */
        unsigned char *pki_keys; /* SECRET, NUL-terminated */
        size_t pki_keys_len;
        json_t *host_keys;
} zrun_t;

static void zrun_clear(zrun_t *z)
{
        cm_spec_destroy(&z->spec);
        cm_nodes_free(z->prev, z->prev_count);
        cm_seal_plaintext_free(z->ssh_key, z->ssh_key_len);
        cm_seal_plaintext_free(z->pki_keys, z->pki_keys_len);
        free(z->pki_public);
        json_decref(z->host_keys);
        memset(z, 0, sizeof(*z));
}

/* Opens the bytea column col of r (hex text form) into *plain. */
static worker_err_t open_column(worker_t *w, PGresult *r, int col, const char *what,
                                unsigned char **plain, size_t *plain_len, char *errstr,
                                size_t errstr_size)
{
        size_t sealed_len = 0;
        unsigned char *sealed =
            PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, col), &sealed_len);
        if (!sealed) {
                snprintf(errstr, errstr_size, "%s: out of memory", what);
                return WORKER_ERR_RETRY;
        }
        char err[256];
        cm_seal_err_t se =
            cm_seal_open(w->keys, sealed, sealed_len, plain, plain_len, err, sizeof(err));
        PQfreemem(sealed);
        if (se != CM_SEAL_OK) {
                snprintf(errstr, errstr_size,
                         "%s: the sealed value of %zu bytes cannot be opened with this "
                         "manager's key (%s)",
                         what, sealed_len, cm_seal_err2str(se));
                return WORKER_ERR_FAIL;
        }
        return WORKER_OK;
}

/* Reads nodes from payload member key into *nodes (none when absent). */
static worker_err_t payload_nodes(const json_t *payload, const char *key,
                                  cm_node_t **nodes, size_t *count, char *errstr,
                                  size_t errstr_size)
{
        const json_t *arr = json_object_get(payload, key);
        *nodes = NULL;
        *count = 0;
        if (!arr || json_is_null(arr))
                return WORKER_OK;
        cm_field_errors_t errs = {0};
        int rc = cm_nodes_from_json(nodes, count, arr, &errs);
        if (rc != 0) {
                snprintf(errstr, errstr_size, "job payload: %s: %s", key,
                         errs.count ? errs.items[0].message : "cannot be read");
                cm_field_errors_clear(&errs);
                cm_nodes_free(*nodes, *count);
                *nodes = NULL;
                *count = 0;
                return WORKER_ERR_FAIL;
        }
        cm_field_errors_clear(&errs);
        return WORKER_OK;
}

static worker_err_t zrun_load(worker_job_t *job, zrun_t *z, int want_pki, char *errstr,
                              size_t errstr_size)
{
        worker_t *w = job->w;
        PGresult *r = NULL;
        const char *v[1] = {job->cluster};
        if (cm_pg_exec_prepared(job->pg, WSQL_ZKE_LOAD, 1, v, NULL, NULL, 0, &r, errstr,
                                errstr_size) != CM_PG_OK)
                return WORKER_ERR_RETRY;
        worker_err_t e = WORKER_OK;
        if (PQntuples(r) != 1) {
                snprintf(errstr, errstr_size, "cluster \"%s\" has no stored state",
                         job->cluster);
                e = WORKER_ERR_FAIL;
                goto out;
        }
        json_t *spec = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
        cm_field_errors_t errs = {0};
        int rc = spec ? cm_spec_from_json(&z->spec, spec, &errs) : -1;
        json_decref(spec);
        if (rc != 0) {
                snprintf(errstr, errstr_size, "stored spec of \"%s\": %s%s%s",
                         job->cluster, errs.count ? errs.items[0].field : "not JSON",
                         errs.count ? ": " : "", errs.count ? errs.items[0].message : "");
                cm_field_errors_clear(&errs);
                e = WORKER_ERR_FAIL;
                goto out;
        }
        cm_field_errors_clear(&errs);
        /* the nodes the job was queued with (the stored spec's, or the last ones known
           for a delete) */
        cm_node_t *nodes = NULL;
        size_t count = 0;
        e = payload_nodes(job->payload, "nodes", &nodes, &count, errstr, errstr_size);
        if (e != WORKER_OK)
                goto out;
        if (count) {
                cm_nodes_free(z->spec.nodes, z->spec.node_count);
                z->spec.nodes = nodes;
                z->spec.node_count = count;
        }
        e = payload_nodes(job->payload, "previousNodes", &z->prev, &z->prev_count, errstr,
                          errstr_size);
        if (e != WORKER_OK)
                goto out;
        if (PQgetisnull(r, 0, 1)) {
                snprintf(errstr, errstr_size, "sshKey: cluster \"%s\" has none stored",
                         job->cluster);
                e = WORKER_ERR_FAIL;
                goto out;
        }
        e = open_column(w, r, 1, "sshKey", &z->ssh_key, &z->ssh_key_len, errstr,
                        errstr_size);
        if (e != WORKER_OK)
                goto out;
        if (want_pki && !PQgetisnull(r, 0, 3)) {
                e = open_column(w, r, 3, "certificate keys", &z->pki_keys,
                                &z->pki_keys_len, errstr, errstr_size);
                if (e != WORKER_OK)
                        goto out;
                z->pki_public = strdup(PQgetvalue(r, 0, 2));
                if (!z->pki_public) {
                        snprintf(errstr, errstr_size, "out of memory");
                        e = WORKER_ERR_RETRY;
                        goto out;
                }
        }
        z->host_keys = json_loads(PQgetvalue(r, 0, 4), 0, NULL);
        if (!json_is_object(z->host_keys)) {
                json_decref(z->host_keys);
                z->host_keys = json_object();
        }
out:
        PQclear(r);
        return e;
}

/* zke's status words onto the progress schema's. */
static const char *progress_status(const char *zke_status)
{
        if (strcmp(zke_status, "done") == 0 || strcmp(zke_status, "changed") == 0)
                return "ok";
        if (strcmp(zke_status, "unchanged") == 0)
                return "skipped";
        if (strcmp(zke_status, "failed") == 0 || strcmp(zke_status, "canceled") == 0 ||
            strcmp(zke_status, "started") == 0)
                return zke_status;
        return "ok";
}

static void zke_progress_cb(void *opaque, const char *step, const char *node,
                            const char *status, const char *const *lines, size_t n)
{
        worker_job_progress(opaque, step, node, progress_status(status), lines, n);
}

static int zke_canceled_cb(void *opaque)
{
        return worker_job_stop_reason(opaque) != WORKER_STOP_NONE;
}

/* Seals len bytes of plain for this manager into *out. */
static int seal_out(worker_t *w, const void *plain, size_t len, unsigned char **out,
                    size_t *out_len, char *errstr, size_t errstr_size)
{
        return cm_seal_seal(cm_seal_keypair_pubkey(w->keys), plain, len, out, out_len,
                            errstr, errstr_size) == CM_SEAL_OK
                   ? 0
                   : -1;
}

static worker_run_t zke_run(worker_job_t *job, int remove, char *error, size_t error_size)
{
        worker_t *w = job->w;
        char err[1024];
        zrun_t z = {0};
        const char *reason = json_string_value(json_object_get(job->payload, "reason"));
        if (!reason)
                reason = remove ? "delete" : "create";
        worker_err_t e = zrun_load(job, &z, !remove && strcmp(reason, "update") == 0, err,
                                   sizeof(err));
        if (e != WORKER_OK) {
                const char *line = err;
                worker_job_progress(job, job->kind, NULL, "failed", &line, 1);
                snprintf(error, error_size, "%s", err);
                zrun_clear(&z);
                return e == WORKER_ERR_RETRY ? WORKER_RUN_RETRY : WORKER_RUN_FAILED;
        }
        const char *root = w->conf->zke.node_root;
        zke_ctx_t ctx = {
            .conf = w->conf,
            .cluster = job->cluster,
            .job_id = job->id,
            .attempt = job->attempt,
            .spec = &z.spec,
            .previous_nodes = z.prev,
            .previous_node_count = z.prev_count,
            .ssh_key = z.ssh_key,
            .ssh_key_len = z.ssh_key_len,
            .host_keys = z.host_keys,
            .pki_public_json = z.pki_public,
            .pki_keys_json = (const char *)z.pki_keys,
            .pki_keys_len = z.pki_keys_len,
            .node_root = root && root[0] ? root : NULL,
            .canceled = zke_canceled_cb,
            .cancel_opaque = job,
            .progress = zke_progress_cb,
            .progress_opaque = job,
        };
        zke_result_t res = {0};
        int rc = remove ? zke_remove(&ctx, &res) : zke_up(&ctx, &res);
        worker_run_t rr = WORKER_RUN_SUCCEEDED;
        /* the host keys trusted so far are kept whatever the outcome */
        job->host_keys_json = json_dumps(z.host_keys, JSON_COMPACT | JSON_SORT_KEYS);
        if (rc != 0) {
                if (res.canceled || worker_job_stop_reason(job) != WORKER_STOP_NONE) {
                        rr = worker_job_stop_reason(job) != WORKER_STOP_NONE
                                 ? WORKER_RUN_STOPPED
                                 : WORKER_RUN_FAILED;
                        snprintf(error, error_size, "%s",
                                 res.error ? res.error : "canceled");
                } else {
                        rr = WORKER_RUN_FAILED;
                        snprintf(error, error_size, "%s",
                                 res.error ? res.error : "zke failed without a message");
                }
        } else if (!remove) {
                if (!res.kubeconfig || !res.pki_public_json || !res.pki_keys_json) {
                        snprintf(error, error_size,
                                 "zke-up succeeded without a kubeconfig or certificates");
                        rr = WORKER_RUN_FAILED;
                } else if (seal_out(w, res.kubeconfig, strlen(res.kubeconfig),
                                    &job->kubeconfig_sealed, &job->kubeconfig_sealed_len,
                                    err, sizeof(err)) != 0 ||
                           seal_out(w, res.pki_keys_json, strlen(res.pki_keys_json),
                                    &job->certificate_keys_sealed,
                                    &job->certificate_keys_sealed_len, err,
                                    sizeof(err)) != 0 ||
                           !(job->certificates_json = strdup(res.pki_public_json))) {
                        snprintf(error, error_size, "cannot seal the zke-up outcome: %s",
                                 err);
                        free(job->kubeconfig_sealed);
                        job->kubeconfig_sealed = NULL;
                        free(job->certificate_keys_sealed);
                        job->certificate_keys_sealed = NULL;
                        rr = WORKER_RUN_RETRY;
                }
        }
        if (rr == WORKER_RUN_SUCCEEDED || rr == WORKER_RUN_FAILED)
                job->outcome = json_pack("{s:s,s:i,s:i}", "reason", reason, "changed",
                                         res.changed, "nodes", (int)z.spec.node_count);
        if (rr != WORKER_RUN_SUCCEEDED && rr != WORKER_RUN_STOPPED)
                cm_log_warn("zke job failed", "cluster", job->cluster, "jobId", job->id,
                            "kind", job->kind, "error", error);
        zke_result_free(&res);
        zrun_clear(&z);
        return rr;
}

worker_run_t worker_zke_up_run(worker_job_t *job, char *error, size_t error_size)
{
        return zke_run(job, 0, error, error_size);
}

worker_run_t worker_zke_remove_run(worker_job_t *job, char *error, size_t error_size)
{
        return zke_run(job, 1, error, error_size);
}
