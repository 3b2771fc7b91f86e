/*
 * cm/command.h - cm.Command (schemas/avro/Command.avsc) as a C struct, and its
 * single-object Avro encoding for the cm.commands topic (DESIGN §5).
 *
 * Ownership: a cm_command_t owns every string and byte buffer it points to; release it
 * with cm_command_destroy(). Encoders only read the struct; decoders fill a struct the
 * caller then owns. Secrets (sshKey, kubeconfig) are carried sealed, as opaque bytes:
 * this module neither seals nor opens them and never puts them in an error message.
 * Thread-safety: thread-safe on distinct structs (the Avro registry is shared,
 * read-only).
 */
#ifndef CM_COMMAND_H
#define CM_COMMAND_H

#include <stddef.h>
#include <stdint.h>
#include <avro.h>

#include "cm/spec.h"

/* Who caused a command or event (cm.Actor): an API token's name and role, or a component.
 */
typedef struct cm_actor_s {
        char *name;
        char *role; /* admin | user | system */
} cm_actor_t;

/* The payload union's branches, in the schema's order (the value is the branch index). */
typedef enum {
        CM_COMMAND_CREATE = 0,
        CM_COMMAND_UPDATE = 1,
        CM_COMMAND_DELETE = 2,
        CM_COMMAND_CANCEL = 3,
        CM_COMMAND_IMPORT = 4,
} cm_command_kind_t;

typedef struct cm_command_s {
        char *id;      /* UUID string: the idempotency key */
        char *cluster; /* also the Kafka key */
        cm_actor_t actor;
        int64_t issued_at; /* milliseconds since the Unix epoch, UTC */
        int has_expected_version;
        int64_t expected_version; /* meaningful when has_expected_version */
        cm_command_kind_t kind;
        /* Only the member matching kind is encoded; cm_command_destroy frees all of them.
         */
        struct {
                cm_spec_t spec;
                unsigned char *ssh_key; /* sealed box */
                size_t ssh_key_len;
        } create;
        struct {
                cm_node_t *nodes;
                size_t node_count;
                unsigned char *ssh_key; /* sealed box, or NULL: keep the current key */
                size_t ssh_key_len;
        } update;
        struct {
                unsigned char *kubeconfig; /* sealed box */
                size_t kubeconfig_len;
        } import;
} cm_command_t;

/* "Create", "Update", "Delete", "Cancel", "Import" (the schema's record names), or "?".
 */
const char *cm_command_kind_name(cm_command_kind_t kind);

/*
 * Encodes cmd as a cm.Command single-object message. On success *buf (caller frees with
 * free()) and *len are set. Returns 0 or a cm_avro_err_t (CM_AVRO_ERR_INVALID names the
 * field, e.g. "payload.Create.spec.nodes[0].address: NULL string (required)").
 */
int cm_command_encode(const cm_command_t *cmd, unsigned char **buf, size_t *len,
                      char *errstr, size_t errstr_size);

/*
 * Decodes a cm.Command single-object message into *cmd (zeroed first). On success the
 * caller owns *cmd (cm_command_destroy); on error nothing is left to free. Returns 0 or a
 * cm_avro_err_t (see cm_avro_decode; WRONG_SCHEMA when the message is another record).
 */
int cm_command_decode(const unsigned char *buf, size_t len, cm_command_t *cmd,
                      char *errstr, size_t errstr_size);

/* Frees everything cmd owns and zeroes it. Safe on a zeroed struct. */
void cm_command_destroy(cm_command_t *cmd);

/* Conversions to/from a cm.Command generic value
 * (cm_avro_value_new(CM_AVRO_SCHEMA_COMMAND)). */
int cm_command_to_avro(const cm_command_t *cmd, avro_value_t *rec, char *errstr,
                       size_t errstr_size);
int cm_command_from_avro(cm_command_t *cmd, const avro_value_t *rec, char *errstr,
                         size_t errstr_size);

/* cm.Actor record value <-> cm_actor_t (the decoder zeroes *actor first; free with
 * cm_actor_destroy). */
int cm_actor_to_avro(const cm_actor_t *actor, avro_value_t *rec, char *errstr,
                     size_t errstr_size);
int cm_actor_from_avro(cm_actor_t *actor, const avro_value_t *rec, char *errstr,
                       size_t errstr_size);
void cm_actor_destroy(cm_actor_t *actor);

#endif
