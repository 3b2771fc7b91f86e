/*
 * cm/avro.h - the Avro layer of DESIGN §5: Parsing Canonical Form and CRC-64-AVRO
 * fingerprints, the registry of the schemas embedded from schemas/avro/, and
 * single-object encoding (C3 01, 8-byte little-endian fingerprint, binary body) of avro-c
 * generic values.
 *
 * Typed records (cm/command.h, cm/event.h, cm/progress.h, cm/spec_avro.h) sit on top of
 * this.
 *
 * Errors: functions return 0 or a negative cm_avro_err_t and, where errstr is given,
 * write a message naming the field or the offending value (never the value of a secret
 * field).
 *
 * Thread-safety: everything here is thread-safe. The registry is built once
 * (pthread_once); after that its entries are immutable and shared by every thread.
 * avro-c 1.11.1 keeps its error text in one process-wide buffer (avro_strerror() is not
 * thread-local), so decoding validates the body itself first and only falls back to
 * avro_strerror() for failures inside avro-c that the validation cannot foresee.
 */
#ifndef CM_AVRO_H
#define CM_AVRO_H

#include <stddef.h>
#include <stdint.h>
#include <avro.h>

/* CRC-64-AVRO of the empty string; also the initial value of the Rabin fingerprint. */
#define CM_AVRO_CRC64_EMPTY 0xc15d213aa4d7a795ULL

/* Single-object encoding header: marker C3 01 + 8 fingerprint bytes. */
#define CM_AVRO_MAGIC0     0xC3
#define CM_AVRO_MAGIC1     0x01
#define CM_AVRO_HEADER_LEN 10

typedef enum {
        CM_AVRO_OK = 0,
        CM_AVRO_ERR_SCHEMA =
            -1, /* a schema's JSON is invalid (canonical form, registry) */
        CM_AVRO_ERR_TOO_SHORT = -2,  /* message shorter than the 10-byte header */
        CM_AVRO_ERR_BAD_MAGIC = -3,  /* first two bytes are not C3 01 */
        CM_AVRO_ERR_UNKNOWN_FP = -4, /* fingerprint of no schema in the registry */
        CM_AVRO_ERR_WRONG_SCHEMA =
            -5, /* a known schema, but not the one the caller expects */
        CM_AVRO_ERR_MALFORMED = -6, /* body malformed or truncated */
        CM_AVRO_ERR_TRAILING = -7,  /* bytes left after a complete body */
        CM_AVRO_ERR_INVALID = -8,   /* a typed record has a missing/invalid field */
        CM_AVRO_ERR_NOMEM = -9,
        CM_AVRO_ERR_INTERNAL =
            -10, /* avro-c failed where it should not (message says where) */
} cm_avro_err_t;

/* Short constant name of err, e.g. "bad magic" (for DLQ headers and logs). Thread-safe.
 */
const char *cm_avro_err2str(int err);

/* ---- Parsing Canonical Form and fingerprint (cm_avro_canon.c) ---- */

/*
 * Parsing Canonical Form (Avro spec: STRIP, ORDER, PRIMITIVES, FULLNAMES, STRINGS,
 * INTEGERS, WHITESPACE) of the schema JSON text json[0..len). A primitive with
 * attributes, including a logicalType, reduces to its bare name
 * ({"type":"long","logicalType":"timestamp-millis"} is "long"), as the spec and the Java
 * library do. Returns a NUL-terminated string the caller frees with free(), or NULL with
 * errstr set (CM_AVRO_ERR_SCHEMA: the JSON error or the offending attribute, with its
 * location).
 */
char *cm_avro_canonical_form(const char *json, size_t len, char *errstr,
                             size_t errstr_size);

/* CRC-64-AVRO (the spec's Rabin fingerprint) of data[0..len). Pure function. */
uint64_t cm_avro_crc64(const void *data, size_t len);

/* ---- Registry of the embedded schemas (cm_avro.c) ---- */

typedef enum {
        CM_AVRO_SCHEMA_ACTOR = 0,
        CM_AVRO_SCHEMA_NODE,
        CM_AVRO_SCHEMA_CLUSTER_SPEC,
        CM_AVRO_SCHEMA_COMMAND,
        CM_AVRO_SCHEMA_CLUSTER_EVENT,
        CM_AVRO_SCHEMA_JOB_PROGRESS,
        CM_AVRO_SCHEMA__COUNT,
        CM_AVRO_SCHEMA_ANY = -1, /* for cm_avro_decode: accept any registered schema */
} cm_avro_schema_id_t;

/*
 * One registered schema. Entries live as long as the process and are never modified after
 * the registry is built; do not decref schema or iface (borrow them, or incref your own).
 */
typedef struct cm_avro_schema_s {
        cm_avro_schema_id_t id;
        const char *fullname;      /* "cm.Command" */
        const char *path;          /* "avro/Command.avsc" (cm_embedded_find) */
        const char *json;          /* the embedded .avsc text */
        char *canonical;           /* Parsing Canonical Form */
        uint64_t fingerprint;      /* CRC-64-AVRO of canonical */
        avro_schema_t schema;      /* avro-c schema */
        avro_value_iface_t *iface; /* avro-c generic class of schema */
} cm_avro_schema_t;

/*
 * Builds the registry once (parses every embedded schema); later calls return the first
 * result. Returns 0, or CM_AVRO_ERR_SCHEMA with errstr naming the file. Callers need not
 * call it: every function below does, but a service calls it at start to fail early and
 * clearly.
 */
int cm_avro_registry_init(char *errstr, size_t errstr_size);

/* The entry for id, or NULL (bad id, or the registry failed to build). Static storage. */
const cm_avro_schema_t *cm_avro_schema_get(cm_avro_schema_id_t id);

/* The entry whose fingerprint is fp, or NULL. Static storage. */
const cm_avro_schema_t *cm_avro_schema_by_fingerprint(uint64_t fp);

/*
 * Initialises *value as a new, empty generic value of schema id. The caller owns it and
 * releases it with avro_value_decref(value). Returns 0 or a cm_avro_err_t.
 */
int cm_avro_value_new(cm_avro_schema_id_t id, avro_value_t *value, char *errstr,
                      size_t errstr_size);

/* ---- Single-object encoding (cm_avro.c) ---- */

/*
 * Encodes value (a generic value of registered schema id) as C3 01 + fingerprint + body.
 * On success *buf (caller frees with free()) and *len are set. Returns 0 or a
 * cm_avro_err_t.
 */
int cm_avro_encode(cm_avro_schema_id_t id, avro_value_t *value, unsigned char **buf,
                   size_t *len, char *errstr, size_t errstr_size);

/*
 * Reads the header of a single-object message: *fp gets the fingerprint. Returns 0,
 * CM_AVRO_ERR_TOO_SHORT or CM_AVRO_ERR_BAD_MAGIC. Does not look at the registry or the
 * body.
 */
int cm_avro_peek_fingerprint(const unsigned char *buf, size_t len, uint64_t *fp,
                             char *errstr, size_t errstr_size);

/*
 * Decodes a single-object message into *value, a new generic value of the schema named by
 * the fingerprint, which must be expect (or any registered schema with
 * CM_AVRO_SCHEMA_ANY). *schema (optional) gets the registry entry. On success the caller
 * owns *value (avro_value_decref); on error nothing is left to free. Never crashes on
 * arbitrary bytes: the body is validated against the schema before avro-c reads it.
 * Errors: TOO_SHORT, BAD_MAGIC (names the two bytes), UNKNOWN_FP (the fingerprint in
 * hex), WRONG_SCHEMA, MALFORMED (names the field and the byte offset), TRAILING (how many
 * bytes are left).
 */
int cm_avro_decode(const unsigned char *buf, size_t len, cm_avro_schema_id_t expect,
                   avro_value_t *value, const cm_avro_schema_t **schema, char *errstr,
                   size_t errstr_size);

/*
 * Checks that body[0..len) is exactly one binary datum of schema (no bytes left over) and
 * that avro-c can read it safely: varints of at most 10 bytes, non-negative lengths that
 * fit in what is left, union branches and enum symbols in range, int values in 32 bits,
 * nesting at most 64 deep. Returns 0, CM_AVRO_ERR_MALFORMED or CM_AVRO_ERR_TRAILING.
 */
int cm_avro_validate_body(avro_schema_t schema, const unsigned char *body, size_t len,
                          char *errstr, size_t errstr_size);

/* ---- Helpers for typed records (cm_avro.c) ---- */

/*
 * Field accessors on a record value. Setters copy; getters return malloc'd copies the
 * caller frees. Each failure returns CM_AVRO_ERR_INVALID (or NOMEM/INTERNAL) with errstr
 * naming the field, e.g. "cluster: NULL string" or "cluster: string contains a NUL byte
 * at 3". Decoded strings must be UTF-8 without NUL bytes (they become C strings and
 * PostgreSQL text).
 */
int cm_avro_set_string(avro_value_t *rec, const char *field, const char *s, char *errstr,
                       size_t errstr_size);
int cm_avro_get_string(const avro_value_t *rec, const char *field, char **out,
                       char *errstr, size_t errstr_size);
/* Optional string: ["null","string"]; NULL s sets / reads back as null. */
int cm_avro_set_opt_string(avro_value_t *rec, const char *field, const char *s,
                           char *errstr, size_t errstr_size);
int cm_avro_get_opt_string(const avro_value_t *rec, const char *field, char **out,
                           char *errstr, size_t errstr_size);
int cm_avro_set_long(avro_value_t *rec, const char *field, int64_t v, char *errstr,
                     size_t errstr_size);
int cm_avro_get_long(const avro_value_t *rec, const char *field, int64_t *v, char *errstr,
                     size_t errstr_size);
int cm_avro_set_int(avro_value_t *rec, const char *field, int32_t v, char *errstr,
                    size_t errstr_size);
int cm_avro_get_int(const avro_value_t *rec, const char *field, int32_t *v, char *errstr,
                    size_t errstr_size);
/* bytes; a NULL data with len 0 is the empty byte string. Getter: *out is never NULL. */
int cm_avro_set_bytes(avro_value_t *rec, const char *field, const unsigned char *data,
                      size_t len, char *errstr, size_t errstr_size);
int cm_avro_get_bytes(const avro_value_t *rec, const char *field, unsigned char **out,
                      size_t *len, char *errstr, size_t errstr_size);
/* Optional bytes: ["null","bytes"]; NULL data sets / reads back as null. */
int cm_avro_set_opt_bytes(avro_value_t *rec, const char *field, const unsigned char *data,
                          size_t len, char *errstr, size_t errstr_size);
int cm_avro_get_opt_bytes(const avro_value_t *rec, const char *field, unsigned char **out,
                          size_t *len, char *errstr, size_t errstr_size);
/* Array of strings. The getter returns *out (NULL when empty) and *count; free both
 * levels. */
int cm_avro_set_string_array(avro_value_t *rec, const char *field, char *const *items,
                             size_t count, char *errstr, size_t errstr_size);
int cm_avro_get_string_array(const avro_value_t *rec, const char *field, char ***out,
                             size_t *count, char *errstr, size_t errstr_size);
/* The child value of field in rec (borrowed from rec). */
int cm_avro_field(const avro_value_t *rec, const char *field, avro_value_t *child,
                  char *errstr, size_t errstr_size);

/* Prepends prefix to the message in errstr, e.g. "spec." + "nodes[1].name: NULL string".
 */
void cm_avro_errprefix(char *errstr, size_t errstr_size, const char *prefix);

/* Frees items[0..count) and items. Safe on NULL. */
void cm_avro_free_strings(char **items, size_t count);

#endif
