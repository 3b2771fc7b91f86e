/*
 * zke_addons.c - step 6: the network plugin and DNS add-ons, new clusters only. Their
 * manifests were placed in step 4; the plan's commands (kubectl apply through the
 * Kubernetes image) run on the add-ons node once the API server is healthy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zke_int.h"

static int addons_one(zke_run_t *run, size_t i, void *arg, char *errstr, size_t size)
{
        const cm_plan_step_t *step = arg;
        zke_node_t *z = &run->nodes[i];
        char lines[16][300];
        const char *lp[16];
        size_t nl = 0;
        zke_progress(run, "addons", z->node->name, "started", NULL, 0);
        for (size_t k = 0; k < step->command_count; k++) {
                char err[1024], *out = NULL;
                if (zke_canceled(run)) {
                        snprintf(errstr, size, "canceled");
                        return CM_SSH_ERR_CANCELED;
                }
                cm_ssh_err_t rc =
                    zke_exec(run, i, step->commands[k], NULL, &out, err, sizeof(err));
                if (rc != CM_SSH_OK) {
                        free(out);
                        snprintf(errstr, size, "%s", err);
                        zke_progressf(run, "addons", z->node->name, "failed", "%s", err);
                        return rc;
                }
                if (nl < 16) {
                        const char *f = strrchr(step->commands[k], ' ');
                        snprintf(lines[nl], sizeof(lines[0]), "applied %s: %.200s",
                                 f ? f + 1 : step->commands[k], out ? out : "");
                        lines[nl][strcspn(lines[nl], "\n")] = '\0';
                        lp[nl] = lines[nl];
                        nl++;
                }
                free(out);
        }
        atomic_fetch_add(&run->changed, (int)step->command_count);
        zke_progress(run, "addons", z->node->name, "done", lp, nl);
        return 0;
}

int zke_addons(zke_run_t *run)
{
        for (size_t s = 0; s < run->steps->count; s++) {
                const cm_plan_step_t *step = &run->steps->steps[s];
                if (strcmp(step->plane, "addons") != 0)
                        continue;
                for (size_t i = 0; i < run->n; i++) {
                        if (run->nodes[i].removed ||
                            strcmp(run->nodes[i].node->address, step->address) != 0)
                                continue;
                        size_t idx[1] = {i};
                        if (zke_each(run, "addons", idx, 1, addons_one, (void *)step) !=
                            0)
                                return -1;
                }
        }
        return 0;
}
