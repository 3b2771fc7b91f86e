/*
 * zke_remove.c - tearing a node down (zke-remove, and worker nodes an update removes):
 * the containers that carry the plan's label, in reverse plan order (worker plane,
 * control plane, then etcd; containers of no plan first), then the plan's cleanup
 * folders under the node's root. What is already gone is skipped, so a second run does
 * nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zke_int.h"

/* Position of a container name in the plan (planes in order), or -1. */
static int plan_position(const json_t *plan, const char *name)
{
        int pos = 0;
        size_t p, c;
        json_t *plane, *cont;
        json_array_foreach(json_object_get(plan, "planes"), p, plane)
        {
                json_array_foreach(json_object_get(plane, "containers"), c, cont)
                {
                        const char *n = json_string_value(json_object_get(cont, "name"));
                        if (n && strcmp(n, name) == 0)
                                return pos;
                        pos++;
                }
        }
        return -1;
}

typedef struct {
        char name[256];
        int pos;
} victim_t;

static int by_reverse_plan(const void *a, const void *b)
{
        const victim_t *x = a, *y = b;
        int px = x->pos < 0 ? 1 << 20 : x->pos, py = y->pos < 0 ? 1 << 20 : y->pos;
        return py - px;
}

static int teardown_one(zke_run_t *run, size_t i, void *arg, char *errstr, size_t size)
{
        (void)arg;
        zke_node_t *z = &run->nodes[i];
        const char *step = "teardown";
        zke_progress(run, step, z->node->name, "started", NULL, 0);
        char *out = NULL, err[1024];
        cm_ssh_err_t rc = zke_exec(run, i,
                                   "docker ps -a --filter label=" CM_PLAN_HASH_LABEL
                                   " --format '{{.Names}}'",
                                   NULL, &out, err, sizeof(err));
        if (rc != CM_SSH_OK) {
                free(out);
                snprintf(errstr, size, "listing containers: %s", err);
                zke_progressf(run, step, z->node->name, "failed", "%s", errstr);
                return rc;
        }
        victim_t v[128];
        size_t nv = 0;
        for (char *save = NULL, *tok = strtok_r(out ? out : (char[]){""}, "\n", &save);
             tok && nv < 128; tok = strtok_r(NULL, "\n", &save)) {
                if (!*tok)
                        continue;
                snprintf(v[nv].name, sizeof(v[nv].name), "%s", tok);
                v[nv].pos = plan_position(run->plan_json, tok);
                nv++;
        }
        free(out);
        qsort(v, nv, sizeof(v[0]), by_reverse_plan);
        char lines[130][300];
        const char *lp[130];
        size_t nl = 0;
        for (size_t k = 0; k < nv; k++) {
                if (zke_canceled(run)) {
                        snprintf(errstr, size, "canceled");
                        return CM_SSH_ERR_CANCELED;
                }
                char *q = zke_shell_quote(v[k].name), cmd[512];
                snprintf(cmd, sizeof(cmd), "docker rm -f %s", q ? q : "''");
                free(q);
                if ((rc = zke_exec(run, i, cmd, NULL, NULL, err, sizeof(err))) !=
                    CM_SSH_OK) {
                        snprintf(errstr, size, "removing container %s: %s", v[k].name,
                                 err);
                        zke_progressf(run, step, z->node->name, "failed", "%s", errstr);
                        return rc;
                }
                snprintf(lines[nl], sizeof(lines[0]), "container %.255s removed",
                         v[k].name);
                lp[nl] = lines[nl];
                nl++;
        }
        /* Then the folders. */
        char cmd[8192] = "for d in";
        size_t k;
        json_t *d;
        json_array_foreach(
            json_object_get(json_object_get(run->plan_json, "cleanup"), "folders"), k, d)
        {
                char path[4096];
                snprintf(path, sizeof(path), "%s%s", z->root, json_string_value(d));
                char *q = zke_shell_quote(path);
                if (q)
                        zke_append(cmd, sizeof(cmd), " ", "%s", q);
                free(q);
        }
        zke_append(
            cmd, sizeof(cmd), NULL, "%s",
            "; do if [ -e \"$d\" ] || [ -L \"$d\" ]; then rm -rf -- \"$d\" && echo "
            "\"$d\" || exit 1; fi; done");
        if (zke_canceled(run)) {
                snprintf(errstr, size, "canceled");
                return CM_SSH_ERR_CANCELED;
        }
        if ((rc = zke_exec(run, i, cmd, NULL, &out, err, sizeof(err))) != CM_SSH_OK) {
                free(out);
                snprintf(errstr, size, "removing folders: %s", err);
                zke_progressf(run, step, z->node->name, "failed", "%s", errstr);
                return rc;
        }
        for (char *save = NULL, *tok = strtok_r(out ? out : (char[]){""}, "\n", &save);
             tok && nl < 130; tok = strtok_r(NULL, "\n", &save)) {
                snprintf(lines[nl], sizeof(lines[0]), "folder %.270s removed", tok);
                lp[nl] = lines[nl];
                nl++;
        }
        free(out);
        atomic_fetch_add(&run->changed, (int)nl);
        if (nl)
                zke_progress(run, step, z->node->name, "changed", lp, nl);
        else
                zke_progressf(run, step, z->node->name, "unchanged",
                              "no container or folder of the cluster left");
        return 0;
}

int zke_teardown(zke_run_t *run, bool removed_only)
{
        return zke_each_node(run, removed_only ? "teardown of removed nodes" : "teardown",
                             removed_only, teardown_one, NULL);
}
