/*
 * zke.c - zke_up and zke_remove: the order of the steps, the run's shared helpers
 * (parallel runs over nodes, progress, cancellation watcher, remote commands).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cm/log.h"
#include "zke_int.h"

/* ---- helpers -------------------------------------------------------------------- */

void zke_append(char *buf, size_t size, const char *sep, const char *fmt, ...)
{
        size_t used = strlen(buf);
        if (used + 1 >= size)
                return;
        if (used && sep) {
                snprintf(buf + used, size - used, "%s", sep);
                used = strlen(buf);
        }
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf + used, size - used, fmt, ap);
        va_end(ap);
}

char *zke_shell_quote(const char *s)
{
        size_t n = 3;
        for (const char *p = s; *p; p++)
                n += *p == '\'' ? 4 : 1;
        char *q = malloc(n), *o = q;
        if (!q)
                return NULL;
        *o++ = '\'';
        for (const char *p = s; *p; p++) {
                if (*p == '\'') {
                        memcpy(o, "'\\''", 4);
                        o += 4;
                } else
                        *o++ = *p;
        }
        *o++ = '\'';
        *o = '\0';
        return q;
}

void zke_progress(zke_run_t *run, const char *step, const char *node, const char *status,
                  const char *const *lines, size_t n)
{
        if (!run->ctx->progress)
                return;
        pthread_mutex_lock(&run->mu);
        run->ctx->progress(run->ctx->progress_opaque, step, node, status, lines,
                           lines ? n : 0);
        pthread_mutex_unlock(&run->mu);
}

void zke_progressf(zke_run_t *run, const char *step, const char *node, const char *status,
                   const char *fmt, ...)
{
        char line[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        const char *lines[1] = {line};
        zke_progress(run, step, node, status, lines, 1);
}

bool zke_canceled(zke_run_t *run)
{
        if (atomic_load(&run->cancel))
                return true;
        if (run->ctx->canceled && run->ctx->canceled(run->ctx->cancel_opaque)) {
                atomic_store(&run->cancel, 1);
                return true;
        }
        return false;
}

void zke_fail(zke_run_t *run, const char *fmt, ...)
{
        pthread_mutex_lock(&run->mu);
        if (!run->result->error) {
                char buf[8192];
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(buf, sizeof(buf), fmt, ap);
                va_end(ap);
                run->result->error = strdup(buf);
        }
        pthread_mutex_unlock(&run->mu);
}

cm_ssh_err_t zke_exec(zke_run_t *run, size_t i, const char *command, int *status,
                      char **out, char *errstr, size_t errstr_size)
{
        cm_ssh_exec_opts_t opts = {.timeout_ms = run->timeout_ms,
                                   .output_max = 256 * 1024};
        cm_ssh_result_t res = {0};
        if (out)
                *out = NULL;
        cm_ssh_err_t rc =
            cm_ssh_exec(run->nodes[i].ssh, command, &opts, &res, errstr, errstr_size);
        if (status)
                *status = res.exit_status;
        if (out && res.out) {
                *out = res.out;
                res.out = NULL;
        }
        cm_ssh_result_free(&res);
        return rc;
}

typedef struct {
        zke_run_t *run;
        const size_t *idx;
        zke_node_fn fn;
        void *arg;
} each_ctx_t;

static int each_one(size_t k, void *opaque, char *errstr, size_t errstr_size)
{
        each_ctx_t *e = opaque;
        if (zke_canceled(e->run)) {
                snprintf(errstr, errstr_size, "canceled");
                return CM_SSH_ERR_CANCELED;
        }
        return e->fn(e->run, e->idx[k], e->arg, errstr, errstr_size);
}

int zke_each(zke_run_t *run, const char *what, const size_t *idx, size_t count,
             zke_node_fn fn, void *arg)
{
        if (count == 0)
                return zke_canceled(run) ? -1 : 0;
        cm_ssh_node_result_t *res = calloc(count, sizeof(*res));
        const char **names = calloc(count, sizeof(*names));
        if (!res || !names) {
                free(res);
                free(names);
                zke_fail(run, "%s: out of memory", what);
                return -1;
        }
        each_ctx_t e = {run, idx, fn, arg};
        int failed = cm_ssh_parallel(count, run->parallelism, each_one, &e, res);
        int rc = 0;
        if (zke_canceled(run)) {
                rc = -1;
        } else if (failed < 0) {
                zke_fail(run, "%s: cannot start threads", what);
                rc = -1;
        } else if (failed > 0) {
                for (size_t k = 0; k < count; k++)
                        names[k] = run->nodes[idx[k]].node->name;
                char *sum = cm_ssh_parallel_summary(count, names, res);
                zke_fail(run, "%s: %s", what, sum ? sum : "failed");
                free(sum);
                rc = -1;
        }
        free(res);
        free(names);
        return rc;
}

int zke_each_node(zke_run_t *run, const char *what, bool want_removed, zke_node_fn fn,
                  void *arg)
{
        size_t *idx = calloc(run->n ? run->n : 1, sizeof(*idx)), count = 0;
        if (!idx) {
                zke_fail(run, "%s: out of memory", what);
                return -1;
        }
        for (size_t i = 0; i < run->n; i++)
                if (run->nodes[i].removed == want_removed)
                        idx[count++] = i;
        int rc = zke_each(run, what, idx, count, fn, arg);
        free(idx);
        return rc;
}

/* ---- the run -------------------------------------------------------------------- */

static void *watch(void *opaque)
{
        zke_run_t *run = opaque;
        while (!atomic_load(&run->stop)) {
                if (zke_canceled(run))
                        break;
                usleep(100 * 1000);
        }
        return NULL;
}

static char *fill_root(const char *tmpl, const cm_node_t *node)
{
        if (!tmpl || !*tmpl)
                return strdup("");
        char buf[4096] = "";
        for (const char *p = tmpl; *p;) {
                if (strncmp(p, "{{node_name}}", 13) == 0) {
                        zke_append(buf, sizeof(buf), NULL, "%s", node->name);
                        p += 13;
                } else if (strncmp(p, "{{node_address}}", 16) == 0) {
                        zke_append(buf, sizeof(buf), NULL, "%s", node->address);
                        p += 16;
                } else {
                        zke_append(buf, sizeof(buf), NULL, "%c", *p);
                        p++;
                }
        }
        size_t len = strlen(buf);
        while (len > 1 && buf[len - 1] == '/')
                buf[--len] = '\0';
        return strdup(buf);
}

static int add_node(zke_run_t *run, const cm_node_t *node, bool removed)
{
        zke_node_t *z = &run->nodes[run->n];
        memset(z, 0, sizeof(*z));
        z->node = node;
        z->removed = removed;
        z->root = fill_root(run->ctx->node_root, node);
        if (!z->root)
                return -1;
        snprintf(z->label, sizeof(z->label), "%s (%s)", node->name, node->address);
        run->n++;
        return 0;
}

static int run_init(zke_run_t *run, const zke_ctx_t *ctx, zke_result_t *result,
                    bool with_removed)
{
        memset(run, 0, sizeof(*run));
        memset(result, 0, sizeof(*result));
        run->ctx = ctx;
        run->result = result;
        pthread_mutex_init(&run->mu, NULL);
        run->cluster = ctx->cluster ? ctx->cluster : ctx->spec ? ctx->spec->name : "?";
        if (!ctx->spec || !ctx->conf || !ctx->host_keys ||
            !json_is_object(ctx->host_keys) || !ctx->ssh_key) {
                zke_fail(run, "zke: spec, conf, ssh key and host_keys are required");
                return -1;
        }
        run->parallelism =
            ctx->conf->zke.parallelism > 0 ? ctx->conf->zke.parallelism : 1;
        run->timeout_ms = ctx->conf->zke.command_timeout_s * 1000;
        run->connect_timeout_ms = ctx->conf->zke.connect_timeout_s * 1000;
        const cm_spec_t *spec = ctx->spec;
        run->nodes =
            calloc(spec->node_count + ctx->previous_node_count + 1, sizeof(*run->nodes));
        if (!run->nodes) {
                zke_fail(run, "zke: out of memory");
                return -1;
        }
        for (size_t i = 0; i < spec->node_count; i++)
                if (add_node(run, &spec->nodes[i], false) != 0)
                        return zke_fail(run, "zke: out of memory"), -1;
        for (size_t i = 0; with_removed && i < ctx->previous_node_count; i++) {
                const cm_node_t *p = &ctx->previous_nodes[i];
                bool kept = false;
                for (size_t j = 0; j < spec->node_count; j++)
                        kept |= strcmp(spec->nodes[j].address, p->address) == 0;
                if (!kept && add_node(run, p, true) != 0)
                        return zke_fail(run, "zke: out of memory"), -1;
        }
        char err[512];
        if (cm_ssh_key_new(ctx->ssh_key, ctx->ssh_key_len, &run->key, err, sizeof(err)) !=
            CM_SSH_OK) {
                zke_fail(run, "sshKey: %s", err);
                return -1;
        }
        if (pthread_create(&run->watcher, NULL, watch, run) != 0) {
                zke_fail(run, "zke: cannot start the cancellation watcher");
                return -1;
        }
        run->watching = true;
        return 0;
}

static int close_one(zke_run_t *run, size_t i, void *arg, char *errstr, size_t size)
{
        (void)arg, (void)errstr, (void)size;
        cm_ssh_close(run->nodes[i].ssh);
        run->nodes[i].ssh = NULL;
        return 0;
}

static int close_fn(size_t i, void *opaque, char *errstr, size_t size)
{
        return close_one(opaque, i, NULL, errstr, size);
}

static int run_finish(zke_run_t *run, int rc, const char *job)
{
        zke_result_t *r = run->result;
        if (run->n) {
                cm_ssh_node_result_t *res = calloc(run->n, sizeof(*res));
                if (res)
                        cm_ssh_parallel(run->n, run->parallelism, close_fn, run, res);
                free(res);
                for (size_t i = 0; i < run->n; i++)
                        if (run->nodes[i].ssh)
                                close_one(run, i, NULL, NULL, 0);
        }
        if (run->watching) {
                atomic_store(&run->stop, 1);
                pthread_join(run->watcher, NULL);
        }
        if (rc != 0 && zke_canceled(run)) {
                r->canceled = 1;
                free(r->error);
                r->error = strdup("canceled");
        } else if (rc != 0 && !r->error)
                r->error = strdup("failed");
        r->changed = atomic_load(&run->changed);
        if (rc == 0)
                zke_progressf(run, job, NULL, r->changed ? "changed" : "unchanged",
                              r->changed ? "%d files and containers changed"
                                         : "nothing changed: the cluster was as wanted",
                              r->changed);
        else
                zke_progressf(run, job, NULL, r->canceled ? "canceled" : "failed", "%s",
                              r->error ? r->error : "failed");
        for (size_t i = 0; i < run->n; i++)
                free(run->nodes[i].root);
        free(run->nodes);
        cm_ssh_key_free(run->key);
        cm_plan_steps_free(run->steps);
        cm_plan_free(run->plan);
        json_decref(run->plan_json);
        cm_pki_bundle_free(run->bundle);
        pthread_mutex_destroy(&run->mu);
        if (rc != 0) {
                cm_pki_secret_free(r->kubeconfig);
                cm_pki_secret_free(r->pki_keys_json);
                free(r->pki_public_json);
                r->kubeconfig = r->pki_keys_json = r->pki_public_json = NULL;
        }
        return rc == 0 ? 0 : -1;
}

int zke_up(const zke_ctx_t *ctx, zke_result_t *result)
{
        zke_run_t run;
        int rc = run_init(&run, ctx, result, true);
        zke_progress(&run, "zke-up", NULL, "started", NULL, 0);
        bool update = ctx->pki_public_json != NULL;
        if (rc == 0)
                rc = zke_connect(&run);
        if (rc == 0)
                rc = zke_precheck(&run);
        if (rc == 0)
                rc = zke_pki(&run);
        if (rc == 0)
                rc = zke_render(&run, update);
        if (rc == 0)
                rc = zke_distribute(&run);
        if (rc == 0)
                rc = zke_planes(&run);
        if (rc == 0)
                rc = zke_teardown(&run, true);
        if (rc == 0)
                rc = zke_health(&run);
        if (rc == 0 && !update)
                rc = zke_addons(&run);
        if (rc == 0)
                rc = zke_kubeconfig(&run);
        if (rc == 0) {
                result->pki_public_json = cm_pki_bundle_public_json(run.bundle);
                result->pki_keys_json = cm_pki_bundle_keys_json(run.bundle);
                if (!result->pki_public_json || !result->pki_keys_json) {
                        zke_fail(&run, "pki: out of memory");
                        rc = -1;
                }
        }
        return run_finish(&run, rc, "zke-up");
}

int zke_remove(const zke_ctx_t *ctx, zke_result_t *result)
{
        zke_run_t run;
        int rc = run_init(&run, ctx, result, false);
        zke_progress(&run, "zke-remove", NULL, "started", NULL, 0);
        if (rc == 0)
                rc = zke_connect(&run);
        if (rc == 0)
                rc = zke_render(&run, true);
        if (rc == 0)
                rc = zke_teardown(&run, false);
        return run_finish(&run, rc, "zke-remove");
}

void zke_result_free(zke_result_t *result)
{
        if (!result)
                return;
        cm_pki_secret_free(result->kubeconfig);
        cm_pki_secret_free(result->pki_keys_json);
        free(result->pki_public_json);
        free(result->error);
        memset(result, 0, sizeof(*result));
}
