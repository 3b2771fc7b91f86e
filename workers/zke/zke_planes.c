/*
 * zke_planes.c - step 5: the plan rendered for the spec (cm/plan.h), then the etcd plane,
 * the control plane and the worker plane in that order, each over its nodes in parallel.
 * Every container is inspected first and then created, started, replaced or left alone
 * (the io.cm.plan-hash label), so nodes an update does not touch see only inspects.
 *
 * A node an update adds to the etcd plane joins after the members are reconciled, one at
 * a time: `etcdctl member add` on a member (skipped when the member list has it), then
 * its containers, then its health check must pass (the plan's "join" commands).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* ---------------------------------------------------------------- joining a plane */

/* What join_one needs: the plane, and a node that is a member already (-1: none). */
typedef struct join_arg_s {
        const char *plane;
        long member;
} join_arg_t;

/* Member m adds the node of step st unless its member list has it already (a run that
 * stopped after the add, resumed). */
static cm_ssh_err_t join_add(zke_run_t *run, size_t m, const cm_plan_step_t *st,
                             int *added, char *errstr, size_t size)
{
        char err[1024];
        char *out = NULL;
        *added = 0;
        if (zke_canceled(run)) {
                snprintf(errstr, size, "canceled");
                return CM_SSH_ERR_CANCELED;
        }
        cm_ssh_err_t rc =
            zke_exec(run, m, st->join.members, NULL, &out, err, sizeof(err));
        int member = rc == CM_SSH_OK && out && strstr(out, st->join.peer);
        free(out);
        if (rc != CM_SSH_OK) {
                snprintf(errstr, size, "member list on %s: %s", run->nodes[m].node->name,
                         err);
                return rc;
        }
        if (member)
                return CM_SSH_OK;
        if ((rc = zke_exec(run, m, st->join.add, NULL, NULL, err, sizeof(err))) !=
            CM_SSH_OK) {
                snprintf(errstr, size, "member add on %s: %s", run->nodes[m].node->name,
                         err);
                return rc;
        }
        *added = 1;
        return CM_SSH_OK;
}

/* Polls the node's health check until it passes, ZKE_JOIN_HEALTH_S pass, or cancel. */
static cm_ssh_err_t join_healthy(zke_run_t *run, size_t i, const cm_plan_step_t *st,
                                 char *errstr, size_t size)
{
        char err[1024] = "";
        for (int s = 0; s < ZKE_JOIN_HEALTH_S; s++) {
                if (zke_canceled(run)) {
                        snprintf(errstr, size, "canceled");
                        return CM_SSH_ERR_CANCELED;
                }
                cm_ssh_err_t rc =
                    zke_exec(run, i, st->join.health, NULL, NULL, err, sizeof(err));
                if (rc == CM_SSH_OK)
                        return CM_SSH_OK;
                if (rc != CM_SSH_ERR_EXIT)
                        break;
                for (int t = 0; t < 10 && !zke_canceled(run); t++)
                        usleep(100 * 1000);
        }
        snprintf(errstr, size, "not healthy after joining (%d s): %s", ZKE_JOIN_HEALTH_S,
                 err);
        return CM_SSH_ERR_EXIT;
}

/* A node new to the plane: made a member on an existing one, its containers brought up,
 * then it must be healthy before the next one joins (a member added but not started
 * counts against the quorum, so etcd refuses a second add meanwhile). */
static int join_one(zke_run_t *run, size_t i, void *arg, char *errstr, size_t size)
{
        const join_arg_t *ja = arg;
        const char *plane = ja->plane;
        zke_node_t *z = &run->nodes[i];
        const cm_plan_step_t *st = find_step(run, plane, z->node->address);
        long m = ja->member;
        int added = 0;
        if (m < 0) {
                snprintf(errstr, size, "no %s member to join %s to", plane,
                         z->node->name);
                return CM_SSH_ERR_EXIT;
        }
        cm_ssh_err_t rc = join_add(run, (size_t)m, st, &added, errstr, size);
        if (rc == CM_SSH_OK) {
                zke_progressf(run, plane, z->node->name, "joining", "%s on %s",
                              added ? "member added" : "already a member",
                              run->nodes[m].node->name);
                if (plane_one(run, i, (void *)plane, errstr, size) != 0)
                        return CM_SSH_ERR_EXIT; /* plane_one reported it */
                rc = join_healthy(run, i, st, errstr, size);
        }
        if (rc != CM_SSH_OK) {
                zke_progressf(run, plane, z->node->name,
                              rc == CM_SSH_ERR_CANCELED ? "canceled" : "failed", "%s",
                              errstr);
                return rc;
        }
        if (added)
                atomic_fetch_add(&run->changed, 1);
        return 0;
}

/* ---------------------------------------------------------------- the planes */

int zke_planes(zke_run_t *run)
{
        static const char *planes[] = {"etcd", "controlplane", "worker"};
        for (size_t p = 0; p < 3; p++) {
                size_t idx[run->n ? run->n : 1], count = 0;
                size_t joins[run->n ? run->n : 1], njoins = 0;
                for (size_t i = 0; i < run->n; i++) {
                        const cm_plan_step_t *st;
                        if (run->nodes[i].removed ||
                            !(st =
                                  find_step(run, planes[p], run->nodes[i].node->address)))
                                continue;
                        if (st->join.add)
                                joins[njoins++] = i;
                        else
                                idx[count++] = i;
                }
                char what[64];
                snprintf(what, sizeof(what), "%s plane", planes[p]);
                if (zke_each(run, what, idx, count, plane_one, (void *)planes[p]) != 0)
                        return -1;
                /* the members first (in parallel), then each new one alone */
                snprintf(what, sizeof(what), "%s join", planes[p]);
                join_arg_t ja = {planes[p], count ? (long)idx[0] : -1};
                for (size_t k = 0; k < njoins; k++)
                        if (zke_each(run, what, &joins[k], 1, join_one, &ja) != 0)
                                return -1;
        }
        return 0;
}
