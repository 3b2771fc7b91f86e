/*
 * zke_planes.c - step 5: the plan rendered for the spec (cm/plan.h), then the etcd plane,
 * the control plane and the worker plane in that order, each over its nodes in parallel.
 * Every container is inspected first and then created, started, replaced or left alone
 * (the io.cm.plan-hash label), so nodes an update does not touch see only inspects.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/embedded.h"
#include "zke_int.h"

int zke_render(zke_run_t *run, bool update)
{
        const cm_spec_t *spec = run->ctx->spec;
        char err[1024];
        if (zke_canceled(run))
                return -1;
        run->plan = cm_plan_load(spec->kubernetes_version, err, sizeof(err));
        if (!run->plan)
                return zke_fail(run, "plan: %s", err), -1;
        cm_plan_options_t opts = {
            .update = update,
            .cgroup_driver = run->cgroup_driver[0] ? run->cgroup_driver : NULL,
            .previous_nodes = run->ctx->previous_nodes,
            .previous_node_count = run->ctx->previous_node_count,
        };
        if (cm_plan_render(run->plan, spec, &opts, &run->steps, err, sizeof(err)) != 0)
                return zke_fail(run, "plan: %s", err), -1;
        char path[128];
        snprintf(path, sizeof(path), "plans/%s.json", run->steps->plan);
        const cm_embedded_file_t *f = cm_embedded_find(path);
        if (f)
                run->plan_json = json_loads((const char *)f->data, 0, NULL);
        if (!run->plan_json)
                return zke_fail(run, "plan: %s is not embedded", path), -1;
        return 0;
}

static const cm_plan_step_t *find_step(zke_run_t *run, const char *plane,
                                       const char *addr)
{
        for (size_t s = 0; s < run->steps->count; s++)
                if (strcmp(run->steps->steps[s].plane, plane) == 0 &&
                    strcmp(run->steps->steps[s].address, addr) == 0)
                        return &run->steps->steps[s];
        return NULL;
}

/* Runs a command that must succeed; its failure names the container. */
static cm_ssh_err_t must(zke_run_t *run, size_t i, const char *what, const char *cmd,
                         char *errstr, size_t size)
{
        if (zke_canceled(run)) {
                snprintf(errstr, size, "canceled");
                return CM_SSH_ERR_CANCELED;
        }
        char err[1024];
        cm_ssh_err_t rc = zke_exec(run, i, cmd, NULL, NULL, err, sizeof(err));
        if (rc != CM_SSH_OK)
                snprintf(errstr, size, "%s: %s", what, err);
        return rc;
}

static cm_ssh_err_t reconcile(zke_run_t *run, size_t i, const cm_plan_container_t *c,
                              cm_plan_action_t *action, char *errstr, size_t size)
{
        char err[1024];
        int st = -1;
        char *out = NULL;
        if (zke_canceled(run)) {
                snprintf(errstr, size, "canceled");
                return CM_SSH_ERR_CANCELED;
        }
        cm_ssh_err_t rc = zke_exec(run, i, c->inspect, &st, &out, err, sizeof(err));
        if (rc != CM_SSH_OK && rc != CM_SSH_ERR_EXIT) {
                free(out);
                snprintf(errstr, size, "%s: %s", c->name, err);
                return rc;
        }
        *action = cm_plan_decide(c, rc == CM_SSH_OK ? 0 : (st ? st : 1), out);
        free(out);
        switch (*action) {
        case CM_PLAN_ACTION_NONE:
                return CM_SSH_OK;
        case CM_PLAN_ACTION_START:
                return must(run, i, c->name, c->start, errstr, size);
        case CM_PLAN_ACTION_REPLACE:
                if ((rc = must(run, i, c->name, c->pull, errstr, size)) != CM_SSH_OK ||
                    (rc = must(run, i, c->name, c->remove, errstr, size)) != CM_SSH_OK)
                        return rc;
                return must(run, i, c->name, c->create, errstr, size);
        case CM_PLAN_ACTION_CREATE:
                if ((rc = must(run, i, c->name, c->pull, errstr, size)) != CM_SSH_OK)
                        return rc;
                return must(run, i, c->name, c->create, errstr, size);
        }
        return CM_SSH_OK;
}

static int plane_one(zke_run_t *run, size_t i, void *arg, char *errstr, size_t size)
{
        const char *plane = arg;
        zke_node_t *z = &run->nodes[i];
        const cm_plan_step_t *step = find_step(run, plane, z->node->address);
        if (!step)
                return 0;
        zke_progress(run, plane, z->node->name, "started", NULL, 0);
        char lines[32][160];
        const char *lp[32];
        size_t nl = 0;
        int changed = 0;
        cm_ssh_err_t rc = CM_SSH_OK;
        for (size_t k = 0; rc == CM_SSH_OK && k < step->container_count; k++) {
                const cm_plan_container_t *c = &step->containers[k];
                cm_plan_action_t a = CM_PLAN_ACTION_NONE;
                rc = reconcile(run, i, c, &a, errstr, size);
                if (rc == CM_SSH_OK && nl < 32) {
                        snprintf(lines[nl], sizeof(lines[0]), "%s: %s", c->name,
                                 a == CM_PLAN_ACTION_NONE ? "unchanged"
                                                          : cm_plan_action_name(a));
                        lp[nl] = lines[nl];
                        nl++;
                }
                if (rc == CM_SSH_OK && a != CM_PLAN_ACTION_NONE)
                        changed++;
        }
        for (size_t k = 0; rc == CM_SSH_OK && k < step->command_count; k++)
                rc = must(run, i, "command", step->commands[k], errstr, size);
        if (rc != CM_SSH_OK) {
                zke_progressf(run, plane, z->node->name,
                              rc == CM_SSH_ERR_CANCELED ? "canceled" : "failed", "%s",
                              errstr);
                return rc;
        }
        atomic_fetch_add(&run->changed, changed);
        zke_progress(run, plane, z->node->name, changed ? "changed" : "unchanged", lp,
                     nl);
        return 0;
}

int zke_planes(zke_run_t *run)
{
        static const char *planes[] = {"etcd", "controlplane", "worker"};
        for (size_t p = 0; p < 3; p++) {
                size_t idx[run->n ? run->n : 1], count = 0;
                for (size_t i = 0; i < run->n; i++)
                        if (!run->nodes[i].removed &&
                            find_step(run, planes[p], run->nodes[i].node->address))
                                idx[count++] = i;
                char what[64];
                snprintf(what, sizeof(what), "%s plane", planes[p]);
                if (zke_each(run, what, idx, count, plane_one, (void *)planes[p]) != 0)
                        return -1;
        }
        return 0;
}
