/*
 * cm_command.c - cm.Command <-> cm_command_t, and its single-object encoding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/err.h"
#include "cm/avro.h"
#include "cm/command.h"
#include "cm/spec_avro.h"

static const char *const kind_names[] = {"Create", "Update", "Delete", "Cancel",
                                         "Import"};

const char *cm_command_kind_name(cm_command_kind_t kind)
{
        if ((int)kind < 0 || (size_t)kind >= sizeof(kind_names) / sizeof(kind_names[0]))
                return "?";
        return kind_names[kind];
}

/* ---- actor ---- */

void cm_actor_destroy(cm_actor_t *actor)
{
        if (!actor)
                return;
        free(actor->name);
        free(actor->role);
        memset(actor, 0, sizeof(*actor));
}

int cm_actor_to_avro(const cm_actor_t *actor, avro_value_t *rec, char *errstr,
                     size_t errstr_size)
{
        int rc;

        if ((rc = cm_avro_set_string(rec, "name", actor->name, errstr, errstr_size)) ||
            (rc = cm_avro_set_string(rec, "role", actor->role, errstr, errstr_size)))
                return rc;
        return 0;
}

int cm_actor_from_avro(cm_actor_t *actor, const avro_value_t *rec, char *errstr,
                       size_t errstr_size)
{
        int rc;

        memset(actor, 0, sizeof(*actor));
        if ((rc = cm_avro_get_string(rec, "name", &actor->name, errstr, errstr_size)) ||
            (rc = cm_avro_get_string(rec, "role", &actor->role, errstr, errstr_size))) {
                cm_actor_destroy(actor);
                return rc;
        }
        return 0;
}

/* ---- command ---- */

void cm_command_destroy(cm_command_t *cmd)
{
        if (!cmd)
                return;
        free(cmd->id);
        free(cmd->cluster);
        cm_actor_destroy(&cmd->actor);
        cm_spec_destroy(&cmd->create.spec);
        free(cmd->create.ssh_key);
        cm_nodes_free(cmd->update.nodes, cmd->update.node_count);
        free(cmd->update.ssh_key);
        free(cmd->import.kubeconfig);
        memset(cmd, 0, sizeof(*cmd));
}

static int child_with_prefix(const avro_value_t *rec, const char *field,
                             avro_value_t *child, const char *prefix, char *errstr,
                             size_t errstr_size)
{
        int rc = cm_avro_field(rec, field, child, errstr, errstr_size);
        if (rc)
                cm_avro_errprefix(errstr, errstr_size, prefix);
        return rc;
}

static int payload_to_avro(const cm_command_t *cmd, avro_value_t *p, char *errstr,
                           size_t errstr_size)
{
        avro_value_t v;
        int rc = 0;

        switch (cmd->kind) {
        case CM_COMMAND_CREATE:
                if ((rc = child_with_prefix(p, "spec", &v, "Create.", errstr,
                                            errstr_size)))
                        return rc;
                if ((rc = cm_spec_to_avro(&cmd->create.spec, &v, errstr, errstr_size))) {
                        cm_avro_errprefix(errstr, errstr_size, "Create.spec.");
                        return rc;
                }
                if (!cmd->create.ssh_key)
                        return cm_errf(
                            errstr, errstr_size, CM_AVRO_ERR_INVALID,
                            "Create.sshKey: NULL (the sealed key is required)");
                rc = cm_avro_set_bytes(p, "sshKey", cmd->create.ssh_key,
                                       cmd->create.ssh_key_len, errstr, errstr_size);
                if (rc)
                        cm_avro_errprefix(errstr, errstr_size, "Create.");
                return rc;
        case CM_COMMAND_UPDATE:
                if ((rc = child_with_prefix(p, "nodes", &v, "Update.", errstr,
                                            errstr_size)))
                        return rc;
                if ((rc = cm_nodes_to_avro(cmd->update.nodes, cmd->update.node_count, &v,
                                           errstr, errstr_size))) {
                        cm_avro_errprefix(errstr, errstr_size, "Update.nodes");
                        return rc;
                }
                rc = cm_avro_set_opt_bytes(p, "sshKey", cmd->update.ssh_key,
                                           cmd->update.ssh_key_len, errstr, errstr_size);
                if (rc)
                        cm_avro_errprefix(errstr, errstr_size, "Update.");
                return rc;
        case CM_COMMAND_DELETE:
        case CM_COMMAND_CANCEL:
                return 0;
        case CM_COMMAND_IMPORT:
                if (!cmd->import.kubeconfig)
                        return cm_errf(
                            errstr, errstr_size, CM_AVRO_ERR_INVALID,
                            "Import.kubeconfig: NULL (the sealed kubeconfig is "
                            "required)");
                rc = cm_avro_set_bytes(p, "kubeconfig", cmd->import.kubeconfig,
                                       cmd->import.kubeconfig_len, errstr, errstr_size);
                if (rc)
                        cm_avro_errprefix(errstr, errstr_size, "Import.");
                return rc;
        }
        return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INVALID,
                       ": unknown command kind %d", (int)cmd->kind);
}

int cm_command_to_avro(const cm_command_t *cmd, avro_value_t *rec, char *errstr,
                       size_t errstr_size)
{
        avro_value_t v, branch;
        int rc;

        if ((rc = cm_avro_set_string(rec, "id", cmd->id, errstr, errstr_size)) ||
            (rc =
                 cm_avro_set_string(rec, "cluster", cmd->cluster, errstr, errstr_size)) ||
            (rc = cm_avro_set_long(rec, "issuedAt", cmd->issued_at, errstr, errstr_size)))
                return rc;
        if ((rc = cm_avro_field(rec, "actor", &v, errstr, errstr_size)))
                return rc;
        if ((rc = cm_actor_to_avro(&cmd->actor, &v, errstr, errstr_size))) {
                cm_avro_errprefix(errstr, errstr_size, "actor.");
                return rc;
        }
        if ((rc = cm_avro_field(rec, "expectedVersion", &v, errstr, errstr_size)))
                return rc;
        if (avro_value_set_branch(&v, cmd->has_expected_version ? 1 : 0, &branch) ||
            (cmd->has_expected_version
                 ? avro_value_set_long(&branch, cmd->expected_version)
                 : avro_value_set_null(&branch)))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INTERNAL,
                               "expectedVersion: cannot set: %s", avro_strerror());
        if ((rc = cm_avro_field(rec, "payload", &v, errstr, errstr_size)))
                return rc;
        if ((int)cmd->kind < 0 || cmd->kind > CM_COMMAND_IMPORT)
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INVALID,
                               "payload: unknown command kind %d", (int)cmd->kind);
        if (avro_value_set_branch(&v, (int)cmd->kind, &branch))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INTERNAL,
                               "payload: cannot select %s: %s",
                               cm_command_kind_name(cmd->kind), avro_strerror());
        if ((rc = payload_to_avro(cmd, &branch, errstr, errstr_size)))
                cm_avro_errprefix(errstr, errstr_size, "payload.");
        return rc;
}

static int payload_from_avro(cm_command_t *cmd, const avro_value_t *p, char *errstr,
                             size_t errstr_size)
{
        avro_value_t v;
        int rc;

        switch (cmd->kind) {
        case CM_COMMAND_CREATE:
                if ((rc = child_with_prefix(p, "spec", &v, "Create.", errstr,
                                            errstr_size)))
                        return rc;
                if ((rc =
                         cm_spec_from_avro(&cmd->create.spec, &v, errstr, errstr_size))) {
                        cm_avro_errprefix(errstr, errstr_size, "Create.spec.");
                        return rc;
                }
                rc = cm_avro_get_bytes(p, "sshKey", &cmd->create.ssh_key,
                                       &cmd->create.ssh_key_len, errstr, errstr_size);
                if (rc)
                        cm_avro_errprefix(errstr, errstr_size, "Create.");
                return rc;
        case CM_COMMAND_UPDATE:
                if ((rc = child_with_prefix(p, "nodes", &v, "Update.", errstr,
                                            errstr_size)))
                        return rc;
                if ((rc = cm_nodes_from_avro(&cmd->update.nodes, &cmd->update.node_count,
                                             &v, errstr, errstr_size))) {
                        cm_avro_errprefix(errstr, errstr_size, "Update.nodes");
                        return rc;
                }
                rc = cm_avro_get_opt_bytes(p, "sshKey", &cmd->update.ssh_key,
                                           &cmd->update.ssh_key_len, errstr, errstr_size);
                if (rc)
                        cm_avro_errprefix(errstr, errstr_size, "Update.");
                return rc;
        case CM_COMMAND_DELETE:
        case CM_COMMAND_CANCEL:
                return 0;
        case CM_COMMAND_IMPORT:
                rc = cm_avro_get_bytes(p, "kubeconfig", &cmd->import.kubeconfig,
                                       &cmd->import.kubeconfig_len, errstr, errstr_size);
                if (rc)
                        cm_avro_errprefix(errstr, errstr_size, "Import.");
                return rc;
        }
        return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INVALID, ": unknown branch %d",
                       (int)cmd->kind);
}

static int command_fields_from_avro(cm_command_t *cmd, const avro_value_t *rec,
                                    char *errstr, size_t errstr_size)
{
        avro_value_t v, branch;
        int disc, rc;

        if ((rc = cm_avro_get_string(rec, "id", &cmd->id, errstr, errstr_size)) ||
            (rc = cm_avro_get_string(rec, "cluster", &cmd->cluster, errstr,
                                     errstr_size)) ||
            (rc =
                 cm_avro_get_long(rec, "issuedAt", &cmd->issued_at, errstr, errstr_size)))
                return rc;
        if ((rc = cm_avro_field(rec, "actor", &v, errstr, errstr_size)))
                return rc;
        if ((rc = cm_actor_from_avro(&cmd->actor, &v, errstr, errstr_size))) {
                cm_avro_errprefix(errstr, errstr_size, "actor.");
                return rc;
        }
        if ((rc = cm_avro_field(rec, "expectedVersion", &v, errstr, errstr_size)))
                return rc;
        if (avro_value_get_current_branch(&v, &branch))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INVALID,
                               "expectedVersion: no branch selected");
        if (avro_value_get_type(&branch) == AVRO_INT64) {
                cmd->has_expected_version = 1;
                avro_value_get_long(&branch, &cmd->expected_version);
        }
        if ((rc = cm_avro_field(rec, "payload", &v, errstr, errstr_size)))
                return rc;
        if (avro_value_get_discriminant(&v, &disc) ||
            avro_value_get_current_branch(&v, &branch) || disc < 0 ||
            disc > CM_COMMAND_IMPORT)
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INVALID,
                               "payload: no valid branch selected");
        cmd->kind = (cm_command_kind_t)disc;
        if ((rc = payload_from_avro(cmd, &branch, errstr, errstr_size)))
                cm_avro_errprefix(errstr, errstr_size, "payload.");
        return rc;
}

int cm_command_from_avro(cm_command_t *cmd, const avro_value_t *rec, char *errstr,
                         size_t errstr_size)
{
        int rc;

        memset(cmd, 0, sizeof(*cmd));
        if ((rc = command_fields_from_avro(cmd, rec, errstr, errstr_size)))
                cm_command_destroy(cmd);
        return rc;
}

int cm_command_encode(const cm_command_t *cmd, unsigned char **buf, size_t *len,
                      char *errstr, size_t errstr_size)
{
        avro_value_t rec;
        int rc;

        *buf = NULL;
        *len = 0;
        if ((rc = cm_avro_value_new(CM_AVRO_SCHEMA_COMMAND, &rec, errstr, errstr_size)))
                return rc;
        if ((rc = cm_command_to_avro(cmd, &rec, errstr, errstr_size)))
                cm_avro_errprefix(errstr, errstr_size, "cm.Command.");
        else
                rc = cm_avro_encode(CM_AVRO_SCHEMA_COMMAND, &rec, buf, len, errstr,
                                    errstr_size);
        avro_value_decref(&rec);
        return rc;
}

int cm_command_decode(const unsigned char *buf, size_t len, cm_command_t *cmd,
                      char *errstr, size_t errstr_size)
{
        avro_value_t rec;
        int rc;

        memset(cmd, 0, sizeof(*cmd));
        if ((rc = cm_avro_decode(buf, len, CM_AVRO_SCHEMA_COMMAND, &rec, NULL, errstr,
                                 errstr_size)))
                return rc;
        if ((rc = cm_command_from_avro(cmd, &rec, errstr, errstr_size)))
                cm_avro_errprefix(errstr, errstr_size, "cm.Command.");
        avro_value_decref(&rec);
        return rc;
}
