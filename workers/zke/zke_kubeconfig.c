/*
 * zke_kubeconfig.c - step 7: wait until the API server answers the plan's health command
 * on every controlplane node (retried each second, for at most zke.command_timeout_s),
 * then build the admin kubeconfig (server: the first controlplane node).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zke_int.h"

static int health_one(zke_run_t *run, size_t i, void *arg, char *errstr, size_t size)
{
        (void)arg;
        zke_node_t *z = &run->nodes[i];
        const json_t *h = json_object_get(run->plan_json, "health");
        const char *cmd = json_string_value(json_object_get(h, "command"));
        const char *expect = json_string_value(json_object_get(h, "expect"));
        if (!cmd || !expect) {
                snprintf(errstr, size, "plan %s has no health.command/expect",
                         run->steps->plan);
                return -1;
        }
        zke_progress(run, "health", z->node->name, "started", NULL, 0);
        time_t deadline = time(NULL) + run->timeout_ms / 1000;
        char last[1024] = "";
        int tries = 0;
        for (;;) {
                char err[1024], *out = NULL;
                int st = -1;
                tries++;
                cm_ssh_err_t rc = zke_exec(run, i, cmd, &st, &out, err, sizeof(err));
                if (rc == CM_SSH_ERR_CANCELED) {
                        free(out);
                        snprintf(errstr, size, "canceled");
                        return rc;
                }
                if (rc == CM_SSH_OK && out) {
                        size_t l = strlen(out);
                        while (l && (out[l - 1] == '\n' || out[l - 1] == ' '))
                                out[--l] = '\0';
                        if (strcmp(out, expect) == 0) {
                                free(out);
                                zke_progressf(run, "health", z->node->name, "done",
                                              "kube-apiserver healthy (attempt %d)",
                                              tries);
                                return 0;
                        }
                        snprintf(last, sizeof(last), "answered \"%.200s\"", out);
                } else
                        snprintf(last, sizeof(last), "%s", err);
                free(out);
                if (time(NULL) >= deadline) {
                        snprintf(errstr, size,
                                 "kube-apiserver not healthy after %d s: %s",
                                 run->timeout_ms / 1000, last);
                        zke_progressf(run, "health", z->node->name, "failed", "%s",
                                      errstr);
                        return CM_SSH_ERR_TIMEOUT;
                }
                for (int k = 0; k < 10; k++) {
                        if (zke_canceled(run)) {
                                snprintf(errstr, size, "canceled");
                                return CM_SSH_ERR_CANCELED;
                        }
                        usleep(100 * 1000);
                }
        }
}

int zke_health(zke_run_t *run)
{
        size_t idx[run->n ? run->n : 1], count = 0;
        for (size_t i = 0; i < run->n; i++)
                if (!run->nodes[i].removed &&
                    cm_pki_node_has_role(run->nodes[i].node, "controlplane"))
                        idx[count++] = i;
        return zke_each(run, "health", idx, count, health_one, NULL);
}

int zke_kubeconfig(zke_run_t *run)
{
        char err[1024];
        if (zke_canceled(run))
                return -1;
        run->result->kubeconfig =
            cm_pki_admin_kubeconfig(run->ctx->spec, run->bundle, err, sizeof(err));
        if (!run->result->kubeconfig) {
                zke_fail(run, "kubeconfig: %s", err);
                return -1;
        }
        zke_progressf(run, "kubeconfig", NULL, "done",
                      "admin kubeconfig built for %s (user kube-admin)", run->cluster);
        return 0;
}
