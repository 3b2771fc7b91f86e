/*
 * worker_commands.c - cm.commands -> one PostgreSQL transaction per command -> offset
 * commit (docs/command-path.md "cm-worker").
 *
 * At-least-once delivery made idempotent: the cluster's row is locked, a command id found
 * in applied_commands is skipped, and the Kafka offset is committed only after the
 * database commit. Secrets are opened in memory only, to validate them, and stored sealed
 * as received.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/avro.h"
#include "cm/log.h"
#include "cm/service.h"
#include "cm/validate.h"
#include "worker.h"

typedef struct command_ctx_s {
        worker_t *w;
        const cm_command_t *cmd;
} command_ctx_t;

/* Opens a sealed secret into *plain (NULL with an error on field when it cannot). */
static int open_secret(worker_t *w, const unsigned char *sealed, size_t len,
                       const char *field, unsigned char **plain, size_t *plain_len,
                       cm_field_errors_t *errs)
{
        char err[256];
        *plain = NULL;
        *plain_len = 0;
        if (!sealed || !len)
                return 0;
        cm_seal_err_t e =
            cm_seal_open(w->keys, sealed, len, plain, plain_len, err, sizeof(err));
        if (e != CM_SEAL_OK) {
                cm_field_errors_add(
                    errs, field,
                    "sealed value of %zu bytes cannot be opened with this "
                    "manager's key (%s): seal it with GET /v1/publickey",
                    len, cm_seal_err2str(e));
                return -1;
        }
        return 0;
}

/* Appends the errors of from to to, leaving out those on field skip (may be NULL). */
static void errors_merge(cm_field_errors_t *to, const cm_field_errors_t *from,
                         const char *skip)
{
        for (size_t i = 0; i < from->count; i++)
                if (!skip || strcmp(from->items[i].field, skip) != 0)
                        cm_field_errors_add(to, from->items[i].field, "%s",
                                            from->items[i].message);
}

static int validate_create(void *opaque, const worker_row_t *row, cm_field_errors_t *errs,
                           char *conflict, size_t conflict_size)
{
        command_ctx_t *c = opaque;
        const cm_command_t *cmd = c->cmd;
        unsigned char *key;
        size_t key_len;
        cm_field_errors_t found = {0};
        (void)row, (void)conflict, (void)conflict_size;
        int unopenable = open_secret(c->w, cmd->create.ssh_key, cmd->create.ssh_key_len,
                                     "sshKey", &key, &key_len, errs);
        cm_validate_create(&cmd->create.spec, key, key_len, &found);
        /* a key that cannot be opened is reported once, as such, not also as missing */
        errors_merge(errs, &found, unopenable ? "sshKey" : NULL);
        if (cmd->create.spec.name && strcmp(cmd->create.spec.name, cmd->cluster) != 0)
                cm_field_errors_add(errs, "name",
                                    "\"%s\" is not the command's cluster \"%s\"",
                                    cmd->create.spec.name, cmd->cluster);
        cm_seal_plaintext_free(key, key_len);
        cm_field_errors_clear(&found);
        return 0;
}

static int validate_update(void *opaque, const worker_row_t *row, cm_field_errors_t *errs,
                           char *conflict, size_t conflict_size)
{
        command_ctx_t *c = opaque;
        const cm_command_t *cmd = c->cmd;
        unsigned char *key;
        size_t key_len;
        cm_field_errors_t found = {0};
        if (row->imported) {
                snprintf(
                    conflict, conflict_size,
                    "cluster \"%s\" was imported: its nodes are not managed here and "
                    "can't be updated",
                    cmd->cluster);
                return 1;
        }
        int unopenable = open_secret(c->w, cmd->update.ssh_key, cmd->update.ssh_key_len,
                                     "sshKey", &key, &key_len, errs);
        cm_validate_update(&row->spec, cmd->update.nodes, cmd->update.node_count,
                           unopenable ? NULL : key, key_len, &found);
        errors_merge(errs, &found, unopenable ? "sshKey" : NULL);
        cm_seal_plaintext_free(key, key_len);
        cm_field_errors_clear(&found);
        return 0;
}

static int validate_import(void *opaque, const worker_row_t *row, cm_field_errors_t *errs,
                           char *conflict, size_t conflict_size)
{
        command_ctx_t *c = opaque;
        const cm_command_t *cmd = c->cmd;
        unsigned char *kc;
        size_t kc_len;
        cm_field_errors_t found = {0};
        (void)row, (void)conflict, (void)conflict_size;
        int unopenable =
            open_secret(c->w, cmd->import.kubeconfig, cmd->import.kubeconfig_len,
                        "kubeconfig", &kc, &kc_len, errs);
        cm_validate_import(cmd->cluster, unopenable ? cmd->import.kubeconfig_len : kc_len,
                           &found);
        errors_merge(errs, &found, unopenable ? "kubeconfig" : NULL);
        cm_seal_plaintext_free(kc, kc_len);
        cm_field_errors_clear(&found);
        return 0;
}

/* An imported cluster's spec: its name; the rest is unknown (strings empty, port 0). */
static int import_spec(cm_spec_t *s, const char *name)
{
        memset(s, 0, sizeof(*s));
        char **f[] = {&s->ssh_user,
                      &s->manager_address,
                      &s->cluster_domain,
                      &s->kubernetes_version,
                      &s->cluster_cidr,
                      &s->service_cidr,
                      &s->cluster_dns_service_ip,
                      &s->network_plugin};
        if (!(s->name = strdup(name)))
                return -1;
        for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
                if (!(*f[i] = strdup("")))
                        return -1;
        return 0;
}

static cm_trigger_t command_trigger(cm_command_kind_t kind)
{
        switch (kind) {
        case CM_COMMAND_CREATE:
                return CM_TRIGGER_CREATE;
        case CM_COMMAND_UPDATE:
                return CM_TRIGGER_UPDATE;
        case CM_COMMAND_DELETE:
                return CM_TRIGGER_DELETE;
        case CM_COMMAND_CANCEL:
                return CM_TRIGGER_CANCEL;
        case CM_COMMAND_IMPORT:
                return CM_TRIGGER_IMPORT;
        }
        return CM_TRIGGER__COUNT;
}

/* One attempt of the command's transaction. *duplicate is set when the id was seen. */
static worker_err_t command_tx(worker_t *w, const cm_command_t *cmd,
                               worker_outcome_t *out, int *duplicate, char *errstr,
                               size_t errstr_size)
{
        command_ctx_t ctx = {w, cmd};
        worker_cause_t cause = {cmd->id, NULL, &cmd->actor};
        worker_change_t change = {0};
        cm_spec_t imported_spec = {0};
        worker_row_t row;
        PGresult *r = NULL;
        worker_err_t e;

        *duplicate = 0;
        cm_pg_err_t pe = cm_pg_begin(w->pg, errstr, errstr_size);
        if (pe != CM_PG_OK)
                return worker_pg_err(w->pg, pe);
        if ((e = worker_state_lock(w->pg, cmd->cluster, &row, errstr, errstr_size)) !=
            WORKER_OK)
                return e;
        worker_row_clear(&row);
        const char *seen_v[1] = {cmd->id};
        pe = worker_sql_exec(w->pg, WSQL_CMD_SEEN, 1, seen_v, NULL, 0, &r, errstr,
                             errstr_size);
        if (pe != CM_PG_OK)
                return worker_pg_err(w->pg, pe);
        *duplicate = PQntuples(r) > 0;
        PQclear(r);
        if (*duplicate)
                return worker_pg_err(w->pg, cm_pg_rollback(w->pg, errstr, errstr_size));

        change.has_expected_version = cmd->has_expected_version;
        change.expected_version = cmd->expected_version;
        change.validate_opaque = &ctx;
        switch (cmd->kind) {
        case CM_COMMAND_CREATE:
                change.spec = &cmd->create.spec;
                change.ssh_key_sealed = cmd->create.ssh_key;
                change.ssh_key_sealed_len = cmd->create.ssh_key_len;
                change.validate = validate_create;
                break;
        case CM_COMMAND_IMPORT:
                if (import_spec(&imported_spec, cmd->cluster)) {
                        cm_spec_destroy(&imported_spec);
                        snprintf(errstr, errstr_size, "out of memory");
                        return WORKER_ERR_FAIL;
                }
                change.spec = &imported_spec;
                change.kubeconfig_sealed = cmd->import.kubeconfig;
                change.kubeconfig_sealed_len = cmd->import.kubeconfig_len;
                change.imported = 1;
                change.validate = validate_import;
                break;
        case CM_COMMAND_UPDATE:
                change.replace_nodes = 1;
                change.nodes = cmd->update.nodes;
                change.node_count = cmd->update.node_count;
                change.ssh_key_sealed = cmd->update.ssh_key;
                change.ssh_key_sealed_len = cmd->update.ssh_key_len;
                change.validate = validate_update;
                break;
        default:
                break;
        }
        e = worker_transition_apply(w, w->pg, cmd->cluster, command_trigger(cmd->kind),
                                    &cause, &change, out, errstr, errstr_size);
        cm_spec_destroy(&imported_spec);
        if (e != WORKER_OK)
                return e;
        int applied = out->result == WORKER_TX_APPLIED;
        const char *rec_v[4] = {cmd->id, cmd->cluster, applied ? "applied" : "rejected",
                                applied ? NULL : out->message};
        pe = worker_sql_exec(w->pg, WSQL_CMD_RECORD, 4, rec_v, NULL, 0, NULL, errstr,
                             errstr_size);
        if (pe == CM_PG_OK)
                pe = cm_pg_commit(w->pg, errstr, errstr_size);
        return worker_pg_err(w->pg, pe);
}

static void command_log(worker_t *w, const cm_command_t *cmd, const worker_outcome_t *out)
{
        char seq[24];
        const char *kind = cm_command_kind_name(cmd->kind);
        snprintf(seq, sizeof(seq), "%lld", (long long)out->seq);
        switch (out->result) {
        case WORKER_TX_APPLIED:
                atomic_fetch_add(&w->metrics.applied, 1);
                cm_log_info("command applied", "cluster", cmd->cluster, "commandId",
                            cmd->id, "command", kind, "from", cm_state_name(out->from),
                            "to", cm_state_name(out->to), "seq", seq, "jobId",
                            out->job_id[0] ? out->job_id : NULL);
                break;
        case WORKER_TX_REJECTED:
                atomic_fetch_add(&w->metrics.rejected, 1);
                cm_log_info("command rejected", "cluster", cmd->cluster, "commandId",
                            cmd->id, "command", kind, "error", out->message);
                break;
        case WORKER_TX_INVALID:
                atomic_fetch_add(&w->metrics.invalid, 1);
                cm_log_info("command invalid", "cluster", cmd->cluster, "commandId",
                            cmd->id, "command", kind, "error", out->message);
                break;
        }
}

/*
 * Applies one decoded command, retrying its transaction. Returns 0 when the message is
 * done with (applied, rejected, skipped or dead-lettered: commit its offset), -1 when a
 * stop was requested first (leave the offset: another worker takes it over).
 */
static int command_process(worker_t *w, const cm_kafka_message_t *m,
                           const cm_command_t *cmd)
{
        char err[1024];
        worker_outcome_t out;
        int hard = 0, delay_ms = 100, duplicate = 0;

        if (!cmd->id[0] || strlen(cmd->id) > 200) {
                snprintf(err, sizeof(err), "id: must be 1 to 200 characters, got %zu",
                         strlen(cmd->id));
                return worker_dlq_send(w, m, "invalid-command-id", err);
        }
        for (;;) {
                worker_err_t e = WORKER_ERR_RETRY;
                if (cm_pg_ensure(w->pg, 2000, err, sizeof(err)) == CM_PG_OK)
                        e = command_tx(w, cmd, &out, &duplicate, err, sizeof(err));
                if (e == WORKER_OK)
                        break;
                char rb[256];
                cm_pg_rollback(w->pg, rb, sizeof(rb));
                atomic_fetch_add(&w->metrics.tx_retries, 1);
                if (e == WORKER_ERR_FAIL || strcmp(cm_pg_sqlstate(w->pg), "23505") == 0)
                        hard++;
                if (hard >= WORKER_MAX_HARD_RETRIES) {
                        cm_log_error("command cannot be applied; dead-lettering it",
                                     "cluster", cmd->cluster, "commandId", cmd->id,
                                     "error", err);
                        return worker_dlq_send(w, m, "apply-failed", err);
                }
                cm_log_warn("command transaction failed; retrying", "cluster",
                            cmd->cluster, "commandId", cmd->id, "error", err);
                if (cm_service_stopping())
                        return -1;
                cm_service_sleep_ms(delay_ms);
                delay_ms = delay_ms < 2000 ? delay_ms * 2 : 2000;
        }
        if (duplicate) {
                atomic_fetch_add(&w->metrics.duplicate, 1);
                cm_log_info("duplicate command skipped", "cluster", cmd->cluster,
                            "commandId", cmd->id);
                return 0;
        }
        command_log(w, cmd, &out);
        return 0;
}

static int message_process(worker_t *w, const cm_kafka_message_t *m)
{
        cm_command_t cmd;
        char err[1024];
        if (m->value_len > WORKER_COMMAND_MAX_BYTES) {
                snprintf(err, sizeof(err),
                         "message of %zu bytes; cm.commands carries at most %d",
                         m->value_len, WORKER_COMMAND_MAX_BYTES);
                return worker_dlq_send(w, m, "too-large", err);
        }
        int rc = cm_command_decode(m->value, m->value ? m->value_len : 0, &cmd, err,
                                   sizeof(err));
        if (rc != 0)
                return worker_dlq_send(w, m, worker_dlq_code(rc), err);
        rc = command_process(w, m, &cmd);
        cm_command_destroy(&cmd);
        return rc;
}

int worker_commands_run(worker_t *w)
{
        char err[512];
        const char *topic = w->conf->kafka.commands_topic;
        if (cm_kafka_consumer_subscribe(w->consumer, &topic, 1, err, sizeof(err)) !=
            CM_KAFKA_OK) {
                cm_log_error("cannot subscribe to the commands topic", "topic", topic,
                             "error", err);
                return -1;
        }
        while (!cm_service_stopping()) {
                cm_kafka_message_t *m = NULL;
                if (cm_kafka_consumer_poll(w->consumer, 500, &m, err, sizeof(err)) !=
                    CM_KAFKA_OK) {
                        cm_log_warn("commands consumer error", "error", err);
                        continue;
                }
                if (!m)
                        continue;
                if (message_process(w, m) == 0 &&
                    cm_kafka_consumer_commit(w->consumer, m, err, sizeof(err)) !=
                        CM_KAFKA_OK)
                        /* applied and recorded: a redelivery is skipped as a duplicate */
                        cm_log_warn("offset commit failed", "error", err);
                cm_kafka_message_destroy(m);
        }
        return 0;
}
