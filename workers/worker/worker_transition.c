/*
 * worker_transition.c - THE transition function of cm-worker: every state change of a
 * cluster (commands now; job outcomes and probes from the job runner and prober) goes
 * through worker_transition_apply(), inside the caller's transaction, so the row, the
 * event and the effect are written together or not at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uuid/uuid.h>

#include "cm/event.h"
#include "cm/log.h"
#include "worker.h"

int64_t worker_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t worker_mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void worker_uuid(char buf[37])
{
        uuid_t u;
        uuid_generate_random(u);
        uuid_unparse_lower(u, buf);
}

void worker_row_clear(worker_row_t *row)
{
        cm_spec_destroy(&row->spec);
        memset(row, 0, sizeof(*row));
}

/* The Avro spec has no optional string: a stored spec missing one gets "". */
static int spec_fill_strings(cm_spec_t *s)
{
        char **f[] = {&s->name,
                      &s->ssh_user,
                      &s->manager_address,
                      &s->cluster_domain,
                      &s->kubernetes_version,
                      &s->cluster_cidr,
                      &s->service_cidr,
                      &s->cluster_dns_service_ip,
                      &s->network_plugin};
        for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
                if (!*f[i] && !(*f[i] = strdup("")))
                        return -1;
        return 0;
}

static worker_err_t row_parse(PGresult *r, worker_row_t *row, char *errstr,
                              size_t errstr_size)
{
        row->exists = 1;
        row->state = cm_state_parse(PQgetvalue(r, 0, 0));
        row->seq = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        row->version = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
        row->imported = PQgetvalue(r, 0, 4)[0] == 't';
        row->has_ssh_key = PQgetvalue(r, 0, 5)[0] == 't';
        json_error_t jerr;
        json_t *j = json_loads(PQgetvalue(r, 0, 3), 0, &jerr);
        cm_field_errors_t errs = {0};
        int rc = j ? cm_spec_from_json(&row->spec, j, &errs) : -1;
        json_decref(j);
        if (rc != 0 || spec_fill_strings(&row->spec) != 0) {
                snprintf(errstr, errstr_size,
                         "cluster_state.spec of \"%s\" is unreadable: %s",
                         row->spec.name ? row->spec.name : "?",
                         errs.count ? errs.items[0].message : jerr.text);
                cm_field_errors_clear(&errs);
                return WORKER_ERR_FAIL;
        }
        return WORKER_OK;
}

worker_err_t worker_state_lock(cm_pg_t *pg, const char *cluster, worker_row_t *row,
                               char *errstr, size_t errstr_size)
{
        PGresult *r = NULL;
        const char *v[1] = {cluster};
        memset(row, 0, sizeof(*row));
        cm_pg_err_t e =
            worker_sql_exec(pg, WSQL_STATE_LOCK, 1, v, NULL, 0, &r, errstr, errstr_size);
        if (e != CM_PG_OK)
                return worker_pg_err(pg, e);
        worker_err_t we = WORKER_OK;
        if (PQntuples(r) == 1)
                we = row_parse(r, row, errstr, errstr_size);
        PQclear(r);
        return we;
}

/* Encodes ev and runs stmt (cluster-or-command-id, seq-or-cluster, event bytes). */
static worker_err_t event_insert(cm_pg_t *pg, const char *stmt, const char *p1,
                                 const char *p2, const cm_cluster_event_t *ev,
                                 char *errstr, size_t errstr_size)
{
        unsigned char *buf = NULL;
        size_t len = 0;
        if (cm_cluster_event_encode(ev, &buf, &len, errstr, errstr_size) != 0)
                return WORKER_ERR_FAIL;
        const char *v[3] = {p1, p2, (const char *)buf};
        int lens[3] = {0, 0, (int)len};
        cm_pg_err_t e =
            worker_sql_exec(pg, stmt, 3, v, lens, 1u << 2, NULL, errstr, errstr_size);
        free(buf);
        return worker_pg_err(pg, e);
}

static worker_err_t notify(cm_pg_t *pg, const char *payload, char *errstr,
                           size_t errstr_size)
{
        const char *v[1] = {payload};
        return worker_pg_err(pg, worker_sql_exec(pg, WSQL_NOTIFY, 1, v, NULL, 0, NULL,
                                                 errstr, errstr_size));
}

static void event_base(cm_cluster_event_t *ev, char event_id[37], const char *cluster,
                       const worker_cause_t *cause)
{
        memset(ev, 0, sizeof(*ev));
        worker_uuid(event_id);
        ev->cluster = (char *)cluster;
        ev->event_id = event_id;
        ev->command_id = (char *)cause->command_id;
        ev->job_id = (char *)cause->job_id;
        ev->at = worker_now_ms();
        ev->actor.name = cause->actor ? cause->actor->name : NULL;
        ev->actor.role = cause->actor ? cause->actor->role : NULL;
}

/* A rejection: a seq-0 event in rejection_outbox when a command caused it. */
static worker_err_t reject(cm_pg_t *pg, const char *cluster, const worker_row_t *row,
                           worker_tx_result_t result, const worker_cause_t *cause,
                           worker_outcome_t *out, char *errstr, size_t errstr_size)
{
        out->result = result;
        if (!cause->command_id)
                return WORKER_OK;
        cm_cluster_event_t ev;
        char event_id[37];
        event_base(&ev, event_id, cluster, cause);
        ev.type = result == WORKER_TX_INVALID ? "CommandInvalid" : CM_FSM_REJECTED_EVENT;
        ev.from_state = row->exists ? (char *)cm_state_name(row->state) : NULL;
        ev.error = out->message;
        worker_err_t e = event_insert(pg, WSQL_REJECTION_APPEND, cause->command_id,
                                      cluster, &ev, errstr, errstr_size);
        return e ? e : notify(pg, "", errstr, errstr_size);
}

static void join_errors(const cm_field_errors_t *errs, char *buf, size_t size)
{
        size_t n = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < errs->count && n < size; i++)
                n += snprintf(buf + n, size - n, "%s%s: %s", i ? "; " : "",
                              errs->items[i].field, errs->items[i].message);
}

static char *dump_json(const json_t *j)
{
        return j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
}

/* Queues or signals the job of transition t. */
static worker_err_t apply_effect(cm_pg_t *pg, const char *cluster,
                                 const worker_row_t *before, const cm_fsm_transition_t *t,
                                 const worker_cause_t *cause, const cm_spec_t *spec,
                                 worker_outcome_t *out, char *errstr, size_t errstr_size)
{
        worker_job_kind_t kind;
        const char *reason;
        switch (t->effect) {
        case CM_EFFECT_JOB_ZKE_UP:
                kind = WORKER_JOB_ZKE_UP;
                reason = t->trigger == CM_TRIGGER_CREATE ? "create" : "update";
                break;
        case CM_EFFECT_JOB_CONNECT:
                kind = WORKER_JOB_CONNECT;
                reason = "import";
                break;
        case CM_EFFECT_JOB_ZKE_REMOVE:
                if (before->imported)
                        return WORKER_OK; /* no remote work: the caller finishes the
                                             delete */
                kind = WORKER_JOB_ZKE_REMOVE;
                reason = "delete";
                break;
        case CM_EFFECT_SIGNAL_CANCEL: {
                worker_err_t e = worker_job_signal_cancel(pg, cluster, out->job_id,
                                                          errstr, errstr_size);
                if (e == WORKER_OK && !out->job_id[0])
                        cm_log_warn(
                            "cancel requested but the cluster has no unfinished job",
                            "cluster", cluster, "commandId", cause->command_id);
                return e;
        }
        default:
                return WORKER_OK;
        }
        json_t *p = json_pack("{s:s}", "reason", reason);
        if (p && cause->command_id)
                json_object_set_new(p, "commandId", json_string(cause->command_id));
        if (p && cause->job_id)
                json_object_set_new(p, "jobId", json_string(cause->job_id));
        if (p && kind != WORKER_JOB_CONNECT)
                json_object_set_new(p, "nodes",
                                    cm_nodes_to_json(spec->nodes, spec->node_count));
        if (p && kind == WORKER_JOB_ZKE_UP && t->trigger == CM_TRIGGER_UPDATE)
                json_object_set_new(
                    p, "previousNodes",
                    cm_nodes_to_json(before->spec.nodes, before->spec.node_count));
        if (!p) {
                snprintf(errstr, errstr_size, "out of memory building the job payload");
                return WORKER_ERR_FAIL;
        }
        worker_err_t e =
            worker_job_queue(pg, cluster, kind, p, out->job_id, errstr, errstr_size);
        json_decref(p);
        return e;
}

/* Builds the spec the row has after the transition into *next (owned by the caller). */
static int next_spec(const worker_row_t *row, const worker_change_t *change,
                     cm_spec_t *next)
{
        memset(next, 0, sizeof(*next));
        if (change->spec) {
                if (cm_spec_copy(next, change->spec))
                        return -1;
        } else {
                if (cm_spec_copy(next, &row->spec))
                        return -1;
                if (change->replace_nodes) {
                        cm_nodes_free(next->nodes, next->node_count);
                        next->nodes = NULL;
                        next->node_count = 0;
                        if (change->node_count &&
                            cm_nodes_copy(&next->nodes, change->nodes,
                                          change->node_count))
                                return -1;
                        next->node_count = change->node_count;
                }
        }
        return spec_fill_strings(next);
}

/* Writes cluster_state, the outbox event and the effect of the accepted transition t. */
static worker_err_t transition_write(cm_pg_t *pg, const char *cluster, worker_row_t *row,
                                     const cm_fsm_transition_t *t,
                                     const worker_cause_t *cause,
                                     const worker_change_t *change, worker_outcome_t *out,
                                     char *errstr, size_t errstr_size)
{
        cm_spec_t spec;
        char *spec_json = NULL, seqs[24], imported[8];
        PGresult *r = NULL;
        worker_err_t e = WORKER_ERR_FAIL;
        int starts = !row->exists || row->state == CM_STATE_DELETED;
        int spec_changed = starts || change->spec || change->replace_nodes;
        int64_t seq = row->seq + 1;

        if (next_spec(row, change, &spec) != 0) {
                snprintf(errstr, errstr_size, "out of memory copying the spec of \"%s\"",
                         cluster);
                goto out;
        }
        if (spec_changed) {
                json_t *j = cm_spec_to_json(&spec);
                spec_json = dump_json(j);
                json_decref(j);
                if (!spec_json) {
                        snprintf(errstr, errstr_size,
                                 "spec of \"%s\" cannot be written as JSON", cluster);
                        goto out;
                }
        }
        snprintf(seqs, sizeof(seqs), "%lld", (long long)seq);
        snprintf(imported, sizeof(imported), "%s",
                 starts ? (change->imported ? "true" : "false")
                        : (row->imported ? "true" : "false"));
        const char *to = cm_state_name(t->to);
        cm_pg_err_t pe;
        if (starts) {
                const char *v[7] = {cluster,
                                    to,
                                    seqs,
                                    spec_json,
                                    (const char *)change->ssh_key_sealed,
                                    (const char *)change->kubeconfig_sealed,
                                    imported};
                int lens[7] = {0,
                               0,
                               0,
                               0,
                               (int)change->ssh_key_sealed_len,
                               (int)change->kubeconfig_sealed_len,
                               0};
                pe = worker_sql_exec(
                    pg, row->exists ? WSQL_STATE_RESTART : WSQL_STATE_INSERT, 7, v, lens,
                    (1u << 4) | (1u << 5), &r, errstr, errstr_size);
        } else {
                int set_error = t->to == CM_STATE_RUNNING || change->error != NULL;
                const char *v[11] = {cluster,
                                     to,
                                     seqs,
                                     spec_json,
                                     (const char *)change->ssh_key_sealed,
                                     (const char *)change->kubeconfig_sealed,
                                     change->certificates_json,
                                     (const char *)change->certificate_keys_sealed,
                                     change->host_keys_json,
                                     set_error ? "true" : "false",
                                     t->to == CM_STATE_RUNNING ? NULL : change->error};
                int lens[11] = {0};
                lens[4] = (int)change->ssh_key_sealed_len;
                lens[5] = (int)change->kubeconfig_sealed_len;
                lens[7] = (int)change->certificate_keys_sealed_len;
                pe = worker_sql_exec(pg, WSQL_STATE_UPDATE, 11, v, lens,
                                     (1u << 4) | (1u << 5) | (1u << 7), &r, errstr,
                                     errstr_size);
        }
        if ((e = worker_pg_err(pg, pe)) != WORKER_OK)
                goto out;
        int64_t version = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;

        cm_cluster_event_t ev;
        char event_id[37];
        event_base(&ev, event_id, cluster, cause);
        ev.seq = seq;
        ev.type = (char *)cm_fsm_event_type(t->trigger);
        ev.from_state = row->exists ? (char *)cm_state_name(row->state) : NULL;
        ev.to_state = (char *)to;
        ev.spec = &spec;
        ev.error = (char *)change->error;
        if ((e = event_insert(pg, WSQL_OUTBOX_APPEND, cluster, seqs, &ev, errstr,
                              errstr_size)) != WORKER_OK)
                goto out;
        if ((e = apply_effect(pg, cluster, row, t, cause, &spec, out, errstr,
                              errstr_size)) != WORKER_OK ||
            (e = notify(pg, cluster, errstr, errstr_size)) != WORKER_OK)
                goto out;

        if (starts)
                row->imported = change->imported;
        row->exists = 1;
        row->state = t->to;
        row->seq = seq;
        row->version = version;
        cm_spec_destroy(&row->spec);
        row->spec = spec;
        memset(&spec, 0, sizeof(spec));
        out->to = t->to;
        out->seq = seq;
        out->events++;
out:
        PQclear(r);
        free(spec_json);
        cm_spec_destroy(&spec);
        return e;
}

worker_err_t worker_transition_apply(worker_t *w, cm_pg_t *pg, const char *cluster,
                                     cm_trigger_t trigger, const worker_cause_t *cause,
                                     const worker_change_t *change, worker_outcome_t *out,
                                     char *errstr, size_t errstr_size)
{
        static const worker_change_t none;
        worker_row_t row;
        cm_field_errors_t errs = {0};
        (void)w;
        if (!change)
                change = &none;
        memset(out, 0, sizeof(*out));
        worker_err_t e = worker_state_lock(pg, cluster, &row, errstr, errstr_size);
        if (e != WORKER_OK)
                return e;
        out->from = out->to = row.state;

        const cm_fsm_transition_t *t =
            cm_fsm_apply(row.state, trigger, cluster, out->message, sizeof(out->message));
        if (!t) {
                e = reject(pg, cluster, &row, WORKER_TX_REJECTED, cause, out, errstr,
                           errstr_size);
                goto done;
        }
        if (change->has_expected_version && row.exists &&
            row.version != change->expected_version) {
                snprintf(out->message, sizeof(out->message),
                         "cluster \"%s\" is at version %lld, not %lld", cluster,
                         (long long)row.version, (long long)change->expected_version);
                e = reject(pg, cluster, &row, WORKER_TX_REJECTED, cause, out, errstr,
                           errstr_size);
                goto done;
        }
        if (change->validate) {
                char conflict[1024] = "";
                change->validate(change->validate_opaque, &row, &errs, conflict,
                                 sizeof(conflict));
                if (conflict[0] || errs.count) {
                        if (conflict[0])
                                snprintf(out->message, sizeof(out->message), "%s",
                                         conflict);
                        else
                                join_errors(&errs, out->message, sizeof(out->message));
                        e = reject(pg, cluster, &row,
                                   conflict[0] ? WORKER_TX_REJECTED : WORKER_TX_INVALID,
                                   cause, out, errstr, errstr_size);
                        goto done;
                }
        }
        int was_imported = row.exists && row.imported;
        e = transition_write(pg, cluster, &row, t, cause, change, out, errstr,
                             errstr_size);
        if (e == WORKER_OK && trigger == CM_TRIGGER_DELETE && was_imported) {
                /* An imported cluster has nothing to tear down: Deleting, then Deleted.
                 */
                static const worker_change_t nothing;
                char msg[256];
                const cm_fsm_transition_t *done_t = cm_fsm_apply(
                    row.state, CM_TRIGGER_JOB_SUCCEEDED, cluster, msg, sizeof(msg));
                if (!done_t) {
                        snprintf(errstr, errstr_size, "finishing the delete: %s", msg);
                        e = WORKER_ERR_FAIL;
                } else {
                        e = transition_write(pg, cluster, &row, done_t, cause, &nothing,
                                             out, errstr, errstr_size);
                }
        }
        out->result = WORKER_TX_APPLIED;
done:
        cm_field_errors_clear(&errs);
        worker_row_clear(&row);
        return e;
}
