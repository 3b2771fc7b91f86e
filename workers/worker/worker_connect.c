/*
 * worker_connect.c - job kind connect (import, DESIGN §3 and §7): parse the cluster's
 * kubeconfig and probe its API server (GET /version over TLS with the kubeconfig's
 * credentials) until it answers, the job is canceled, or connect.deadline_s since the
 * job was created passes.
 *
 * The kubeconfig is read sealed from cluster_state and opened in memory only; the
 * plaintext is zeroed as soon as it is parsed, and the parsed struct (which holds the
 * client key or token) lives only in the probe handle.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/kubeconfig.h"
#include "cm/log.h"
#include "cm/probe.h"
#include "worker.h"

cm_pg_err_t worker_kubeconfig_prepare(cm_pg_t *pg, char *errstr, size_t errstr_size)
{
        return cm_pg_prepare(pg, WSQL_KUBECONFIG,
                             "SELECT kubeconfig_sealed FROM cluster_state"
                             " WHERE name = $1::text",
                             1, errstr, errstr_size);
}

worker_err_t worker_kubeconfig_load(worker_t *w, cm_pg_t *pg, const char *cluster,
                                    cm_kubeconfig_t **kc, char *errstr,
                                    size_t errstr_size)
{
        PGresult *r = NULL;
        const char *v[1] = {cluster};
        *kc = NULL;
        cm_pg_err_t pe = cm_pg_exec_prepared(pg, WSQL_KUBECONFIG, 1, v, NULL, NULL, 1, &r,
                                             errstr, errstr_size);
        if (pe != CM_PG_OK)
                return WORKER_ERR_RETRY;
        if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
                snprintf(errstr, errstr_size,
                         "kubeconfig: cluster \"%s\" has none stored", cluster);
                PQclear(r);
                return WORKER_ERR_FAIL;
        }
        unsigned char *plain = NULL;
        size_t plain_len = 0, sealed_len = (size_t)PQgetlength(r, 0, 0);
        char err[256];
        cm_seal_err_t se =
            cm_seal_open(w->keys, (const unsigned char *)PQgetvalue(r, 0, 0), sealed_len,
                         &plain, &plain_len, err, sizeof(err));
        PQclear(r);
        if (se != CM_SEAL_OK) {
                snprintf(
                    errstr, errstr_size,
                    "kubeconfig: the sealed value of %zu bytes cannot be opened with "
                    "this manager's key (%s)",
                    sealed_len, cm_seal_err2str(se));
                return WORKER_ERR_FAIL;
        }
        cm_kubeconfig_err_t ke =
            cm_kubeconfig_parse(plain, plain_len, NULL, kc, errstr, errstr_size);
        cm_seal_plaintext_free(plain, plain_len);
        if (ke == CM_KUBECONFIG_ERR_NOMEM)
                return WORKER_ERR_RETRY;
        return ke == CM_KUBECONFIG_OK ? WORKER_OK : WORKER_ERR_FAIL;
}

/* Appends a line to the bounded ring of the probe step's log. */
typedef struct connect_log_s {
        char lines[WORKER_PROGRESS_LINES][WORKER_PROGRESS_LINE_SZ];
        size_t count; /* lines ever added */
} connect_log_t;

static void log_add(connect_log_t *l, const char *fmt, const char *a, const char *b)
{
        snprintf(l->lines[l->count % WORKER_PROGRESS_LINES], WORKER_PROGRESS_LINE_SZ, fmt,
                 a, b);
        l->count++;
}

static void log_publish(const worker_job_t *job, const connect_log_t *l,
                        const char *status)
{
        const char *lines[WORKER_PROGRESS_LINES];
        size_t n = l->count < WORKER_PROGRESS_LINES ? l->count : WORKER_PROGRESS_LINES;
        for (size_t i = 0; i < n; i++)
                lines[i] = l->lines[(l->count - n + i) % WORKER_PROGRESS_LINES];
        worker_job_progress(job, "probe-api", NULL, status, lines, n);
}

static int connect_cancel_cb(void *opaque)
{
        return worker_job_stop_reason(opaque) != WORKER_STOP_NONE;
}

/* Probes until an answer, a stop, or the deadline. */
static worker_run_t connect_probe(worker_job_t *job, cm_probe_t *p, char *error,
                                  size_t error_size)
{
        const cm_config_t *conf = job->w->conf;
        int64_t deadline = job->created_ms + (int64_t)conf->connect.deadline_s * 1000;
        int delay = WORKER_CONNECT_BACKOFF_MIN_MS, attempts = 0;
        int64_t published = worker_now_ms();
        char last[1024] = "no probe was made", num[16];
        connect_log_t *l = calloc(1, sizeof(*l));
        if (!l) {
                snprintf(error, error_size, "out of memory");
                return WORKER_RUN_RETRY;
        }
        cm_probe_set_cancel(p, connect_cancel_cb, job);
        log_add(l, "probing %s%s", cm_probe_url(p), "");
        log_publish(job, l, "started");
        worker_run_t rr;
        for (;;) {
                if (worker_job_stop_reason(job) != WORKER_STOP_NONE) {
                        log_add(l, "stopped: %s%s",
                                worker_job_stop_reason(job) == WORKER_STOP_CANCELED
                                    ? "canceled"
                                    : "the worker is stopping or lost the job",
                                "");
                        log_publish(job, l, "canceled");
                        rr = WORKER_RUN_STOPPED;
                        break;
                }
                int64_t left = deadline - worker_now_ms();
                long total = (long)conf->probe.timeout_s * 1000;
                if (left < total && attempts > 0)
                        total = left > 1000 ? (long)left : 1000;
                cm_probe_set_timeouts(p, total, total);
                cm_probe_result_t res;
                cm_probe_err_t pe = cm_probe_version(p, &res, last, sizeof(last));
                attempts++;
                if (pe == CM_PROBE_OK) {
                        log_add(l, "%s answered: %s", cm_probe_url(p), res.git_version);
                        log_publish(job, l, "ok");
                        job->outcome = json_pack("{s:s,s:i}", "gitVersion",
                                                 res.git_version, "probes", attempts);
                        rr = WORKER_RUN_SUCCEEDED;
                        break;
                }
                if (pe == CM_PROBE_ERR_CANCELED ||
                    worker_job_stop_reason(job) != WORKER_STOP_NONE)
                        continue; /* stopped: said at the top */
                snprintf(num, sizeof(num), "%d", attempts);
                log_add(l, "attempt %s: %s", num, last);
                if (worker_now_ms() >= deadline) {
                        snprintf(error, error_size,
                                 "API server did not answer within %d s: %s",
                                 conf->connect.deadline_s, last);
                        log_add(l, "%s%s", error, "");
                        log_publish(job, l, "failed");
                        rr = WORKER_RUN_FAILED;
                        break;
                }
                if (worker_now_ms() - published >= 10000) { /* still trying: say so */
                        log_publish(job, l, "started");
                        published = worker_now_ms();
                }
                left = deadline - worker_now_ms();
                worker_job_sleep(job, left < delay ? (int)left : delay);
                delay = delay * 2 < WORKER_CONNECT_BACKOFF_MAX_MS
                            ? delay * 2
                            : WORKER_CONNECT_BACKOFF_MAX_MS;
        }
        free(l);
        return rr;
}

worker_run_t worker_connect_run(worker_job_t *job, char *error, size_t error_size)
{
        cm_kubeconfig_t *kc = NULL;
        cm_probe_t *p = NULL;
        char err[1024];
        worker_job_progress(job, "kubeconfig", NULL, "started", NULL, 0);
        worker_err_t e =
            worker_kubeconfig_load(job->w, job->pg, job->cluster, &kc, err, sizeof(err));
        if (e != WORKER_OK) {
                const char *line = err;
                worker_job_progress(job, "kubeconfig", NULL, "failed", &line, 1);
                snprintf(error, error_size, "%s", err);
                return e == WORKER_ERR_RETRY ? WORKER_RUN_RETRY : WORKER_RUN_FAILED;
        }
        snprintf(err, sizeof(err), "context \"%s\": cluster \"%s\" at %s, user \"%s\"",
                 kc->context, kc->cluster, kc->server, kc->user);
        const char *line = err;
        worker_job_progress(job, "kubeconfig", NULL, "ok", &line, 1);
        cm_probe_err_t pe = cm_probe_new(kc, &p, err, sizeof(err));
        cm_kubeconfig_free(kc);
        if (pe != CM_PROBE_OK) {
                snprintf(error, error_size, "cannot probe the API server: %s", err);
                return pe == CM_PROBE_ERR_NOMEM || pe == CM_PROBE_ERR_INTERNAL
                           ? WORKER_RUN_RETRY
                           : WORKER_RUN_FAILED;
        }
        worker_run_t rr = connect_probe(job, p, error, error_size);
        cm_probe_destroy(p);
        return rr;
}
