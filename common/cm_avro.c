/*
 * cm_avro.c - registry of the embedded Avro schemas and single-object encoding.
 *
 * Decoding never hands unchecked bytes to avro-c: its binary reader trusts lengths (a
 * negative or huge string length makes it allocate or write out of bounds in some
 * versions), so cm_avro_validate_body() walks the body against the schema first, with
 * bounds checks, and only a body that is exactly one well-formed datum is then read by
 * avro_value_read().
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/err.h"
#include "cm/avro.h"
#include "cm/embedded.h"

#define VALIDATE_MAX_DEPTH 64

const char *cm_avro_err2str(int err)
{
        switch (err) {
        case CM_AVRO_OK:
                return "ok";
        case CM_AVRO_ERR_SCHEMA:
                return "invalid schema";
        case CM_AVRO_ERR_TOO_SHORT:
                return "message too short";
        case CM_AVRO_ERR_BAD_MAGIC:
                return "bad magic";
        case CM_AVRO_ERR_UNKNOWN_FP:
                return "unknown schema fingerprint";
        case CM_AVRO_ERR_WRONG_SCHEMA:
                return "unexpected schema";
        case CM_AVRO_ERR_MALFORMED:
                return "malformed body";
        case CM_AVRO_ERR_TRAILING:
                return "trailing bytes";
        case CM_AVRO_ERR_INVALID:
                return "invalid field";
        case CM_AVRO_ERR_NOMEM:
                return "out of memory";
        case CM_AVRO_ERR_INTERNAL:
                return "internal error";
        }
        return "unknown error";
}

/* ---- registry ---- */

static const struct {
        const char *fullname;
        const char *path;
} registry_defs[CM_AVRO_SCHEMA__COUNT] = {
    [CM_AVRO_SCHEMA_ACTOR] = {"cm.Actor", "avro/Actor.avsc"},
    [CM_AVRO_SCHEMA_NODE] = {"cm.Node", "avro/Node.avsc"},
    [CM_AVRO_SCHEMA_CLUSTER_SPEC] = {"cm.ClusterSpec", "avro/ClusterSpec.avsc"},
    [CM_AVRO_SCHEMA_COMMAND] = {"cm.Command", "avro/Command.avsc"},
    [CM_AVRO_SCHEMA_CLUSTER_EVENT] = {"cm.ClusterEvent", "avro/ClusterEvent.avsc"},
    [CM_AVRO_SCHEMA_JOB_PROGRESS] = {"cm.JobProgress", "avro/JobProgress.avsc"},
};

static cm_avro_schema_t registry[CM_AVRO_SCHEMA__COUNT];
static int registry_rc = -1;
static char registry_errstr[512];
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

static int registry_load_one(cm_avro_schema_t *e, cm_avro_schema_id_t id)
{
        const cm_embedded_file_t *f = cm_embedded_find(registry_defs[id].path);
        char err[256];

        e->id = id;
        e->fullname = registry_defs[id].fullname;
        e->path = registry_defs[id].path;
        if (!f)
                return cm_errf(registry_errstr, sizeof(registry_errstr),
                               CM_AVRO_ERR_SCHEMA, "schema %s is not embedded in libcm",
                               e->path);
        e->json = (const char *)f->data;
        e->canonical = cm_avro_canonical_form(e->json, f->len, err, sizeof(err));
        if (!e->canonical)
                return cm_errf(registry_errstr, sizeof(registry_errstr),
                               CM_AVRO_ERR_SCHEMA, "schema %s: %s", e->path, err);
        e->fingerprint = cm_avro_crc64(e->canonical, strlen(e->canonical));
        if (avro_schema_from_json_length(e->json, f->len, &e->schema))
                return cm_errf(registry_errstr, sizeof(registry_errstr),
                               CM_AVRO_ERR_SCHEMA, "schema %s: avro-c: %s", e->path,
                               avro_strerror());
        if (!is_avro_record(e->schema) ||
            strcmp(avro_schema_name(e->schema), strchr(e->fullname, '.') + 1) != 0)
                return cm_errf(registry_errstr, sizeof(registry_errstr),
                               CM_AVRO_ERR_SCHEMA,
                               "schema %s defines \"%s\", expected %s", e->path,
                               avro_schema_name(e->schema), e->fullname);
        e->iface = avro_generic_class_from_schema(e->schema);
        if (!e->iface)
                return cm_errf(registry_errstr, sizeof(registry_errstr),
                               CM_AVRO_ERR_SCHEMA, "schema %s: avro-c generic class: %s",
                               e->path, avro_strerror());
        return 0;
}

static void registry_build(void)
{
        for (int id = 0; id < CM_AVRO_SCHEMA__COUNT; id++) {
                if ((registry_rc = registry_load_one(&registry[id], id)))
                        return;
        }
        for (int i = 0; i < CM_AVRO_SCHEMA__COUNT; i++)
                for (int j = i + 1; j < CM_AVRO_SCHEMA__COUNT; j++)
                        if (registry[i].fingerprint == registry[j].fingerprint) {
                                registry_rc =
                                    cm_errf(registry_errstr, sizeof(registry_errstr),
                                            CM_AVRO_ERR_SCHEMA,
                                            "schemas %s and %s have the same fingerprint",
                                            registry[i].path, registry[j].path);
                                return;
                        }
        registry_rc = 0;
}

int cm_avro_registry_init(char *errstr, size_t errstr_size)
{
        pthread_once(&registry_once, registry_build);
        if (registry_rc)
                cm_errf(errstr, errstr_size, registry_rc, "%s", registry_errstr);
        return registry_rc;
}

const cm_avro_schema_t *cm_avro_schema_get(cm_avro_schema_id_t id)
{
        if (cm_avro_registry_init(NULL, 0) || id < 0 || id >= CM_AVRO_SCHEMA__COUNT)
                return NULL;
        return &registry[id];
}

const cm_avro_schema_t *cm_avro_schema_by_fingerprint(uint64_t fp)
{
        if (cm_avro_registry_init(NULL, 0))
                return NULL;
        for (int id = 0; id < CM_AVRO_SCHEMA__COUNT; id++)
                if (registry[id].fingerprint == fp)
                        return &registry[id];
        return NULL;
}

static const cm_avro_schema_t *schema_get_err(cm_avro_schema_id_t id, char *errstr,
                                              size_t errstr_size)
{
        const cm_avro_schema_t *e;
        int rc = cm_avro_registry_init(errstr, errstr_size);

        if (rc)
                return NULL;
        if (!(e = cm_avro_schema_get(id)))
                cm_errf(errstr, errstr_size, CM_AVRO_ERR_SCHEMA,
                        "no Avro schema with id %d", (int)id);
        return e;
}

int cm_avro_value_new(cm_avro_schema_id_t id, avro_value_t *value, char *errstr,
                      size_t errstr_size)
{
        const cm_avro_schema_t *e = schema_get_err(id, errstr, errstr_size);

        if (!e)
                return CM_AVRO_ERR_SCHEMA;
        if (avro_generic_value_new(e->iface, value))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_NOMEM,
                               "cannot allocate a %s value", e->fullname);
        return 0;
}

/* ---- single-object encoding ---- */

int cm_avro_encode(cm_avro_schema_id_t id, avro_value_t *value, unsigned char **buf,
                   size_t *len, char *errstr, size_t errstr_size)
{
        const cm_avro_schema_t *e = schema_get_err(id, errstr, errstr_size);
        avro_schema_t vs;
        avro_writer_t w;
        unsigned char *out;
        size_t size;

        *buf = NULL;
        *len = 0;
        if (!e)
                return CM_AVRO_ERR_SCHEMA;
        vs = avro_value_get_schema(value);
        if (!vs || (vs != e->schema && !avro_schema_equal(vs, e->schema)))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_WRONG_SCHEMA,
                               "value to encode is a %s, not a %s",
                               vs ? avro_schema_type_name(vs) : "value without schema",
                               e->fullname);
        if (avro_value_sizeof(value, &size))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INVALID,
                               "%s value is incomplete: %s", e->fullname,
                               avro_strerror());
        if (!(out = malloc(CM_AVRO_HEADER_LEN + size)))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_NOMEM,
                               "cannot allocate %zu bytes for a %s message",
                               CM_AVRO_HEADER_LEN + size, e->fullname);
        out[0] = CM_AVRO_MAGIC0;
        out[1] = CM_AVRO_MAGIC1;
        for (int i = 0; i < 8; i++)
                out[2 + i] = (unsigned char)(e->fingerprint >> (8 * i));
        w = avro_writer_memory((const char *)out + CM_AVRO_HEADER_LEN, (int64_t)size);
        if (!w || avro_value_write(w, value) || avro_writer_tell(w) != (int64_t)size) {
                int rc = cm_errf(
                    errstr, errstr_size, w ? CM_AVRO_ERR_INVALID : CM_AVRO_ERR_NOMEM,
                    "cannot write %s value: %s", e->fullname, avro_strerror());
                if (w)
                        avro_writer_free(w);
                free(out);
                return rc;
        }
        avro_writer_free(w);
        *buf = out;
        *len = CM_AVRO_HEADER_LEN + size;
        return 0;
}

int cm_avro_peek_fingerprint(const unsigned char *buf, size_t len, uint64_t *fp,
                             char *errstr, size_t errstr_size)
{
        if (!buf || len < CM_AVRO_HEADER_LEN)
                return cm_errf(
                    errstr, errstr_size, CM_AVRO_ERR_TOO_SHORT,
                    "message too short: %zu bytes, an Avro single-object message "
                    "has at least %d (C3 01 + 8-byte fingerprint)",
                    buf ? len : 0, CM_AVRO_HEADER_LEN);
        if (buf[0] != CM_AVRO_MAGIC0 || buf[1] != CM_AVRO_MAGIC1)
                return cm_errf(
                    errstr, errstr_size, CM_AVRO_ERR_BAD_MAGIC,
                    "bad magic: message starts with 0x%02X 0x%02X, expected 0xC3 "
                    "0x01 (Avro single-object encoding)",
                    buf[0], buf[1]);
        *fp = 0;
        for (int i = 0; i < 8; i++)
                *fp |= (uint64_t)buf[2 + i] << (8 * i);
        return 0;
}

int cm_avro_decode(const unsigned char *buf, size_t len, cm_avro_schema_id_t expect,
                   avro_value_t *value, const cm_avro_schema_t **schema, char *errstr,
                   size_t errstr_size)
{
        const cm_avro_schema_t *e;
        avro_reader_t r;
        uint64_t fp;
        int rc;

        if (schema)
                *schema = NULL;
        if ((rc = cm_avro_peek_fingerprint(buf, len, &fp, errstr, errstr_size)))
                return rc;
        if ((rc = cm_avro_registry_init(errstr, errstr_size)))
                return rc;
        if (!(e = cm_avro_schema_by_fingerprint(fp)))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_UNKNOWN_FP,
                               "unknown schema fingerprint 0x%016" PRIx64
                               " (CRC-64-AVRO of no schema in schemas/avro)",
                               fp);
        if (expect != CM_AVRO_SCHEMA_ANY && e->id != expect) {
                const cm_avro_schema_t *want = cm_avro_schema_get(expect);
                return cm_errf(
                    errstr, errstr_size, CM_AVRO_ERR_WRONG_SCHEMA,
                    "message is a %s (fingerprint 0x%016" PRIx64 "), expected a %s",
                    e->fullname, fp, want ? want->fullname : "(bad schema id)");
        }
        rc = cm_avro_validate_body(e->schema, buf + CM_AVRO_HEADER_LEN,
                                   len - CM_AVRO_HEADER_LEN, errstr, errstr_size);
        if (rc) {
                cm_avro_errprefix(errstr, errstr_size, ": ");
                cm_avro_errprefix(errstr, errstr_size, e->fullname);
                return rc;
        }
        if (avro_generic_value_new(e->iface, value))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_NOMEM,
                               "cannot allocate a %s value", e->fullname);
        r = avro_reader_memory((const char *)buf + CM_AVRO_HEADER_LEN,
                               (int64_t)(len - CM_AVRO_HEADER_LEN));
        if (!r) {
                avro_value_decref(value);
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_NOMEM,
                               "cannot allocate an avro-c reader");
        }
        if (avro_value_read(r, value)) {
                rc = cm_errf(errstr, errstr_size, CM_AVRO_ERR_MALFORMED,
                             "malformed %s body: %s", e->fullname, avro_strerror());
                avro_reader_free(r);
                avro_value_decref(value);
                return rc;
        }
        avro_reader_free(r);
        if (schema)
                *schema = e;
        return 0;
}

/* ---- body validation ---- */

typedef struct vctx_s {
        const unsigned char *p;
        size_t len;
        size_t off;
        size_t items_left; /* bounds zero-width array/map items (e.g. arrays of null) */
        char path[256];
        char *errstr;
        size_t errstr_size;
} vctx_t;

static int v_fail(vctx_t *c, int truncated, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int v_fail(vctx_t *c, int truncated, const char *fmt, ...)
{
        char what[192];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        return cm_errf(c->errstr, c->errstr_size, CM_AVRO_ERR_MALFORMED,
                       "%s body at body byte %zu, field %s: %s",
                       truncated ? "truncated" : "malformed", c->off,
                       c->path[0] ? c->path : "(top)", what);
}

static size_t v_push(vctx_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static size_t v_push(vctx_t *c, const char *fmt, ...)
{
        size_t old = strlen(c->path);
        va_list ap;

        va_start(ap, fmt);
        if (old < sizeof(c->path))
                vsnprintf(c->path + old, sizeof(c->path) - old, fmt, ap);
        va_end(ap);
        return old;
}

static int v_long(vctx_t *c, int64_t *out, const char *what)
{
        uint64_t v = 0;

        for (int i = 0; i < 10; i++) {
                if (c->off >= c->len)
                        return v_fail(c, 1, "%s: varint cut off", what);
                unsigned char b = c->p[c->off++];
                v |= (uint64_t)(b & 0x7f) << (7 * i);
                if (!(b & 0x80)) {
                        *out = (int64_t)((v >> 1) ^ -(v & 1));
                        return 0;
                }
        }
        return v_fail(c, 0, "%s: varint longer than 10 bytes", what);
}

static int v_skip(vctx_t *c, int64_t n, const char *what)
{
        if (n < 0)
                return v_fail(c, 0, "%s: negative length %" PRId64, what, n);
        if ((uint64_t)n > c->len - c->off)
                return v_fail(c, 1, "%s of %" PRId64 " bytes, only %zu left", what, n,
                              c->len - c->off);
        c->off += (size_t)n;
        return 0;
}

static int v_datum(vctx_t *c, avro_schema_t s, int depth);

/* Arrays and maps: blocks of count items, a negative count followed by the block size. */
static int v_blocks(vctx_t *c, avro_schema_t items, int is_map, int depth)
{
        size_t mark, n = 0;
        int64_t count, bsize;
        int rc;

        for (;;) {
                if ((rc = v_long(c, &count, "block count")))
                        return rc;
                if (count == 0)
                        return 0;
                bsize = -1;
                if (count < 0) {
                        if (count == INT64_MIN)
                                return v_fail(c, 0, "block count out of range");
                        count = -count;
                        if ((rc = v_long(c, &bsize, "block size")))
                                return rc;
                        if (bsize < 0 || (uint64_t)bsize > c->len - c->off)
                                return v_fail(c, bsize >= 0,
                                              "block size %" PRId64
                                              " with %zu bytes left",
                                              bsize, c->len - c->off);
                }
                if ((uint64_t)count > c->items_left)
                        return v_fail(c, 1,
                                      "block of %" PRId64 " items, more than the body "
                                      "can hold",
                                      count);
                c->items_left -= (size_t)count;
                size_t start = c->off;
                for (int64_t i = 0; i < count; i++, n++) {
                        mark = v_push(c, "[%zu]", n);
                        if (is_map) {
                                int64_t klen;
                                if ((rc = v_long(c, &klen, "map key length")) ||
                                    (rc = v_skip(c, klen, "map key")))
                                        return rc;
                        }
                        rc = v_datum(c, items, depth + 1);
                        c->path[mark] = '\0';
                        if (rc)
                                return rc;
                }
                if (bsize >= 0 && c->off - start != (size_t)bsize)
                        return v_fail(c, 0,
                                      "block size %" PRId64 " but its items take %zu",
                                      bsize, c->off - start);
        }
}

static int v_record(vctx_t *c, avro_schema_t s, int depth)
{
        size_t n = avro_schema_record_size(s);

        for (size_t i = 0; i < n; i++) {
                size_t mark = v_push(c, "%s%s", c->path[0] ? "." : "",
                                     avro_schema_record_field_name(s, (int)i));
                int rc = v_datum(c, avro_schema_record_field_get_by_index(s, (int)i),
                                 depth + 1);
                c->path[mark] = '\0';
                if (rc)
                        return rc;
        }
        return 0;
}

static int v_union(vctx_t *c, avro_schema_t s, int depth)
{
        int64_t idx;
        size_t n = avro_schema_union_size(s), mark;
        avro_schema_t branch;
        int rc;

        if ((rc = v_long(c, &idx, "union branch")))
                return rc;
        if (idx < 0 || (uint64_t)idx >= n)
                return v_fail(c, 0, "union branch %" PRId64 " out of range 0..%zu", idx,
                              n - 1);
        branch = avro_schema_union_branch(s, (int)idx);
        if (is_avro_link(branch))
                branch = avro_schema_link_target(branch);
        mark = strlen(c->path);
        if (is_avro_record(branch))
                v_push(c, "%s%s", c->path[0] ? "." : "", avro_schema_name(branch));
        rc = v_datum(c, branch, depth + 1);
        c->path[mark] = '\0';
        return rc;
}

static int v_datum(vctx_t *c, avro_schema_t s, int depth)
{
        int64_t v;
        int rc;

        if (depth > VALIDATE_MAX_DEPTH)
                return v_fail(c, 0, "nested deeper than %d", VALIDATE_MAX_DEPTH);
        switch (avro_typeof(s)) {
        case AVRO_NULL:
                return 0;
        case AVRO_BOOLEAN:
                if (c->off >= c->len)
                        return v_fail(c, 1, "boolean cut off");
                if (c->p[c->off] > 1)
                        return v_fail(c, 0, "boolean byte 0x%02X is neither 0 nor 1",
                                      c->p[c->off]);
                c->off++;
                return 0;
        case AVRO_INT32:
                if ((rc = v_long(c, &v, "int")))
                        return rc;
                if (v < INT32_MIN || v > INT32_MAX)
                        return v_fail(c, 0, "int value %" PRId64 " out of 32-bit range",
                                      v);
                return 0;
        case AVRO_INT64:
                return v_long(c, &v, "long");
        case AVRO_FLOAT:
                return v_skip(c, 4, "float");
        case AVRO_DOUBLE:
                return v_skip(c, 8, "double");
        case AVRO_STRING:
        case AVRO_BYTES: {
                const char *what = avro_typeof(s) == AVRO_STRING ? "string" : "bytes";
                if ((rc = v_long(c, &v, what)))
                        return rc;
                return v_skip(c, v, what);
        }
        case AVRO_FIXED:
                return v_skip(c, avro_schema_fixed_size(s), "fixed");
        case AVRO_ENUM:
                if ((rc = v_long(c, &v, "enum")))
                        return rc;
                if (v < 0 || v >= avro_schema_enum_number_of_symbols(s))
                        return v_fail(c, 0, "enum symbol %" PRId64 " out of range", v);
                return 0;
        case AVRO_RECORD:
                return v_record(c, s, depth);
        case AVRO_UNION:
                return v_union(c, s, depth);
        case AVRO_ARRAY:
                return v_blocks(c, avro_schema_array_items(s), 0, depth);
        case AVRO_MAP:
                return v_blocks(c, avro_schema_map_values(s), 1, depth);
        case AVRO_LINK:
                return v_datum(c, avro_schema_link_target(s), depth + 1);
        default:
                return v_fail(c, 0, "schema type %d not supported", (int)avro_typeof(s));
        }
}

int cm_avro_validate_body(avro_schema_t schema, const unsigned char *body, size_t len,
                          char *errstr, size_t errstr_size)
{
        vctx_t c = {.p = body,
                    .len = len,
                    .items_left = len + 1024,
                    .errstr = errstr,
                    .errstr_size = errstr_size};
        int rc = v_datum(&c, schema, 0);

        if (rc)
                return rc;
        if (c.off != len)
                return cm_errf(
                    errstr, errstr_size, CM_AVRO_ERR_TRAILING,
                    "trailing bytes: %zu bytes left after a complete body of %zu "
                    "bytes",
                    len - c.off, c.off);
        return 0;
}
