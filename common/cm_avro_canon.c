/*
 * cm_avro_canon.c - Avro Parsing Canonical Form and the CRC-64-AVRO fingerprint.
 *
 * Written against the Avro 1.11 specification ("Parsing Canonical Form for Schemas" and
 * "Schema Fingerprints") rather than taken from avro-c, which has neither: the
 * fingerprint in every message header must match what Java and Python producers compute.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cm/avro.h"

/* ---- CRC-64-AVRO ---- */

static uint64_t crc64_table[256];
static pthread_once_t crc64_once = PTHREAD_ONCE_INIT;

static void crc64_init(void)
{
        for (unsigned i = 0; i < 256; i++) {
                uint64_t fp = i;
                for (int j = 0; j < 8; j++)
                        fp = (fp >> 1) ^ (CM_AVRO_CRC64_EMPTY & -(fp & 1));
                crc64_table[i] = fp;
        }
}

uint64_t cm_avro_crc64(const void *data, size_t len)
{
        const unsigned char *p = data;
        uint64_t fp = CM_AVRO_CRC64_EMPTY;

        pthread_once(&crc64_once, crc64_init);
        for (size_t i = 0; i < len; i++)
                fp = (fp >> 8) ^ crc64_table[(fp ^ p[i]) & 0xff];
        return fp;
}

/* ---- growable output buffer ---- */

typedef struct canon_buf_s {
        char *data;
        size_t len;
        size_t cap;
        int oom;
} canon_buf_t;

static void cb_put(canon_buf_t *b, const char *s, size_t n)
{
        if (b->oom)
                return;
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 256;
                while (b->len + n + 1 > cap)
                        cap *= 2;
                char *p = realloc(b->data, cap);
                if (!p) {
                        b->oom = 1;
                        return;
                }
                b->data = p;
                b->cap = cap;
        }
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
}

static void cb_puts(canon_buf_t *b, const char *s)
{
        cb_put(b, s, strlen(s));
}

/*
 * STRINGS: escapes are already decoded by jansson, so the text is written as raw UTF-8;
 * only what JSON requires (quote, backslash, control characters) is escaped again.
 */
static void cb_put_json_string(canon_buf_t *b, const char *s)
{
        cb_put(b, "\"", 1);
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                char esc[8];
                if (*p == '"' || *p == '\\') {
                        esc[0] = '\\';
                        esc[1] = (char)*p;
                        cb_put(b, esc, 2);
                } else if (*p < 0x20) {
                        snprintf(esc, sizeof(esc), "\\u%04x", *p);
                        cb_put(b, esc, 6);
                } else {
                        cb_put(b, (const char *)p, 1);
                }
        }
        cb_put(b, "\"", 1);
}

/* ---- canonical form ---- */

static const char *const primitives[] = {"null",  "boolean", "int",   "long",
                                         "float", "double",  "bytes", "string"};

static int is_primitive(const char *name)
{
        for (size_t i = 0; i < sizeof(primitives) / sizeof(primitives[0]); i++)
                if (strcmp(name, primitives[i]) == 0)
                        return 1;
        return 0;
}

static int canon_err(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int canon_err(char *errstr, size_t errstr_size, const char *fmt, ...)
{
        if (errstr && errstr_size) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(errstr, errstr_size, fmt, ap);
                va_end(ap);
        }
        return CM_AVRO_ERR_SCHEMA;
}

/* FULLNAMES: a dotted name is already full; otherwise it lives in the enclosing
 * namespace. */
static void cb_put_fullname(canon_buf_t *b, const char *name, const char *ns)
{
        cb_put(b, "\"", 1);
        if (!strchr(name, '.') && ns && *ns) {
                cb_puts(b, ns);
                cb_put(b, ".", 1);
        }
        cb_puts(b, name);
        cb_put(b, "\"", 1);
}

static int canon_schema(canon_buf_t *b, json_t *s, const char *ns, char *errstr,
                        size_t errstr_size);

static int canon_fields(canon_buf_t *b, json_t *fields, const char *full, const char *ns,
                        char *errstr, size_t errstr_size)
{
        size_t i;
        json_t *f;

        if (!json_is_array(fields))
                return canon_err(errstr, errstr_size,
                                 "record \"%s\": \"fields\" must be an array", full);
        cb_puts(b, ",\"fields\":[");
        json_array_foreach(fields, i, f)
        {
                json_t *fname = json_object_get(f, "name");
                json_t *ftype = json_object_get(f, "type");
                if (!json_is_string(fname))
                        return canon_err(
                            errstr, errstr_size,
                            "record \"%s\": field %zu has no string \"name\"", full, i);
                if (!ftype)
                        return canon_err(errstr, errstr_size,
                                         "record \"%s\": field \"%s\" has no \"type\"",
                                         full, json_string_value(fname));
                cb_puts(b, i ? ",{\"name\":" : "{\"name\":");
                cb_put_json_string(b, json_string_value(fname));
                cb_puts(b, ",\"type\":");
                int rc = canon_schema(b, ftype, ns, errstr, errstr_size);
                if (rc)
                        return rc;
                cb_put(b, "}", 1);
        }
        cb_put(b, "]", 1);
        return 0;
}

static int canon_symbols(canon_buf_t *b, json_t *symbols, const char *full, char *errstr,
                         size_t errstr_size)
{
        size_t i;
        json_t *sym;

        if (!json_is_array(symbols))
                return canon_err(errstr, errstr_size,
                                 "enum \"%s\": \"symbols\" must be an array", full);
        cb_puts(b, ",\"symbols\":[");
        json_array_foreach(symbols, i, sym)
        {
                if (!json_is_string(sym))
                        return canon_err(errstr, errstr_size,
                                         "enum \"%s\": symbol %zu is not a string", full,
                                         i);
                if (i)
                        cb_put(b, ",", 1);
                cb_put_json_string(b, json_string_value(sym));
        }
        cb_put(b, "]", 1);
        return 0;
}

/* record, error, enum, fixed: ORDER is name, type, then fields | symbols | size. */
static int canon_named(canon_buf_t *b, json_t *s, const char *type, const char *ns,
                       char *errstr, size_t errstr_size)
{
        json_t *jname = json_object_get(s, "name");
        json_t *jns = json_object_get(s, "namespace");
        const char *name, *dot;
        char *full = NULL, *newns = NULL;
        int rc = 0;

        if (!json_is_string(jname))
                return canon_err(errstr, errstr_size, "%s without a string \"name\"",
                                 type);
        name = json_string_value(jname);
        if ((dot = strrchr(name, '.'))) {
                full = strdup(name);
                newns = strndup(name, (size_t)(dot - name));
        } else {
                if (json_is_string(jns))
                        ns = json_string_value(jns);
                else if (jns && !json_is_null(jns))
                        return canon_err(errstr, errstr_size,
                                         "%s \"%s\": \"namespace\" must be a string",
                                         type, name);
                newns = strdup(ns ? ns : "");
                if (newns && *newns) {
                        if (asprintf(&full, "%s.%s", newns, name) < 0)
                                full = NULL;
                } else {
                        full = strdup(name);
                }
        }
        if (!full || !newns) {
                rc = canon_err(errstr, errstr_size, "out of memory");
                goto out;
        }

        cb_puts(b, "{\"name\":");
        cb_put_json_string(b, full);
        cb_puts(b, ",\"type\":");
        cb_put_json_string(b, type);
        if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0) {
                rc = canon_fields(b, json_object_get(s, "fields"), full, newns, errstr,
                                  errstr_size);
        } else if (strcmp(type, "enum") == 0) {
                rc = canon_symbols(b, json_object_get(s, "symbols"), full, errstr,
                                   errstr_size);
        } else { /* fixed; INTEGERS: jansson already dropped leading zeros */
                json_t *size = json_object_get(s, "size");
                char num[32];
                if (!json_is_integer(size)) {
                        rc = canon_err(errstr, errstr_size,
                                       "fixed \"%s\": \"size\" must be an integer", full);
                        goto out;
                }
                snprintf(num, sizeof(num), ",\"size\":%" JSON_INTEGER_FORMAT,
                         json_integer_value(size));
                cb_puts(b, num);
        }
        if (!rc)
                cb_put(b, "}", 1);
out:
        free(full);
        free(newns);
        return rc;
}

static int canon_object(canon_buf_t *b, json_t *s, const char *ns, char *errstr,
                        size_t errstr_size)
{
        json_t *jtype = json_object_get(s, "type");
        const char *type;
        int rc;

        if (!jtype)
                return canon_err(errstr, errstr_size, "schema object without \"type\"");
        if (json_is_object(jtype) || json_is_array(jtype))
                return canon_schema(b, jtype, ns, errstr, errstr_size);
        if (!json_is_string(jtype))
                return canon_err(errstr, errstr_size,
                                 "\"type\" must be a string, an object or an array");
        type = json_string_value(jtype);

        /* PRIMITIVES: every other attribute, logicalType included, is dropped. */
        if (is_primitive(type)) {
                cb_put_json_string(b, type);
                return 0;
        }
        if (!strcmp(type, "record") || !strcmp(type, "error") || !strcmp(type, "enum") ||
            !strcmp(type, "fixed"))
                return canon_named(b, s, type, ns, errstr, errstr_size);
        if (!strcmp(type, "array") || !strcmp(type, "map")) {
                const char *key = type[0] == 'a' ? "items" : "values";
                json_t *child = json_object_get(s, key);
                if (!child)
                        return canon_err(errstr, errstr_size, "%s without \"%s\"", type,
                                         key);
                cb_puts(b, "{\"type\":");
                cb_put_json_string(b, type);
                cb_puts(b, type[0] == 'a' ? ",\"items\":" : ",\"values\":");
                if ((rc = canon_schema(b, child, ns, errstr, errstr_size)))
                        return rc;
                cb_put(b, "}", 1);
                return 0;
        }
        /* {"type":"Node"}: a reference to a named type defined earlier. */
        cb_put_fullname(b, type, ns);
        return 0;
}

static int canon_schema(canon_buf_t *b, json_t *s, const char *ns, char *errstr,
                        size_t errstr_size)
{
        size_t i;
        json_t *branch;
        int rc;

        if (json_is_string(s)) {
                const char *name = json_string_value(s);
                if (is_primitive(name))
                        cb_put_json_string(b, name);
                else
                        cb_put_fullname(b, name, ns);
                return 0;
        }
        if (json_is_array(s)) { /* union */
                cb_put(b, "[", 1);
                json_array_foreach(s, i, branch)
                {
                        if (i)
                                cb_put(b, ",", 1);
                        if ((rc = canon_schema(b, branch, ns, errstr, errstr_size)))
                                return rc;
                }
                cb_put(b, "]", 1);
                return 0;
        }
        if (json_is_object(s))
                return canon_object(b, s, ns, errstr, errstr_size);
        return canon_err(errstr, errstr_size,
                         "a schema is a string, an object or an array, not a JSON %s",
                         json_is_number(s)    ? "number"
                         : json_is_boolean(s) ? "boolean"
                                              : "null");
}

char *cm_avro_canonical_form(const char *json, size_t len, char *errstr,
                             size_t errstr_size)
{
        json_error_t jerr;
        canon_buf_t b = {0};
        json_t *root;
        int rc;

        root = json_loadb(json, len, JSON_DECODE_ANY, &jerr);
        if (!root) {
                canon_err(errstr, errstr_size, "schema JSON: %s (line %d, column %d)",
                          jerr.text, jerr.line, jerr.column);
                return NULL;
        }
        rc = canon_schema(&b, root, "", errstr, errstr_size);
        json_decref(root);
        if (!rc && b.oom)
                rc = canon_err(errstr, errstr_size, "out of memory");
        if (rc) {
                free(b.data);
                return NULL;
        }
        return b.data;
}
