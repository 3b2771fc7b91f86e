/*
 * cm_avro_field.c - typed access to the fields of avro-c generic record values, shared by
 * the Command, ClusterEvent, JobProgress and ClusterSpec conversions. Every error names
 * the field, so a bad message from an outside producer is explained in its DLQ header.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/err.h"
#include "cm/avro.h"

void cm_avro_errprefix(char *errstr, size_t errstr_size, const char *prefix)
{
        size_t plen, mlen;

        if (!errstr || !errstr_size || !prefix)
                return;
        plen = strlen(prefix);
        mlen = strnlen(errstr, errstr_size - 1);
        if (plen >= errstr_size - 1) {
                snprintf(errstr, errstr_size, "%s", prefix);
                return;
        }
        if (plen + mlen > errstr_size - 1)
                mlen = errstr_size - 1 - plen;
        memmove(errstr + plen, errstr, mlen);
        memcpy(errstr, prefix, plen);
        errstr[plen + mlen] = '\0';
}

void cm_avro_free_strings(char **items, size_t count)
{
        if (!items)
                return;
        for (size_t i = 0; i < count; i++)
                free(items[i]);
        free(items);
}

/* Returns the offset of the first byte that is not valid UTF-8, or len. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
        size_t i = 0;

        while (i < len) {
                unsigned char c = s[i];
                size_t n;
                unsigned cp;
                if (c < 0x80) {
                        i++;
                        continue;
                } else if (c >= 0xC2 && c <= 0xDF) {
                        n = 1, cp = c & 0x1F;
                } else if (c >= 0xE0 && c <= 0xEF) {
                        n = 2, cp = c & 0x0F;
                } else if (c >= 0xF0 && c <= 0xF4) {
                        n = 3, cp = c & 0x07;
                } else {
                        return i;
                }
                if (i + n >= len)
                        return i;
                for (size_t k = 1; k <= n; k++) {
                        if ((s[i + k] & 0xC0) != 0x80)
                                return i;
                        cp = (cp << 6) | (s[i + k] & 0x3F);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
                    (cp >= 0xD800 && cp <= 0xDFFF))
                        return i;
                i += n + 1;
        }
        return len;
}

int cm_avro_field(const avro_value_t *rec, const char *field, avro_value_t *child,
                  char *errstr, size_t errstr_size)
{
        if (avro_value_get_by_name(rec, field, child, NULL))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INTERNAL,
                               "%s: no such field in the record", field);
        return 0;
}

/* The C string of a string value (label names it in errors); *out is malloc'd. */
static int string_of(const avro_value_t *v, const char *label, char **out, char *errstr,
                     size_t errstr_size)
{
        const char *s;
        size_t size, n, bad;

        *out = NULL;
        if (avro_value_get_type(v) != AVRO_STRING || avro_value_get_string(v, &s, &size))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INTERNAL,
                               "%s: not a string in the schema", label);
        n = size ? size - 1 : 0; /* avro-c counts the terminating NUL */
        if (strnlen(s, n) != n)
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INVALID,
                               "%s: string contains a NUL byte at offset %zu", label,
                               strnlen(s, n));
        if ((bad = utf8_invalid_at((const unsigned char *)s, n)) != n)
                return cm_errf(
                    errstr, errstr_size, CM_AVRO_ERR_INVALID,
                    "%s: string is not valid UTF-8 (byte 0x%02X at offset %zu)", label,
                    (unsigned char)s[bad], bad);
        if (!(*out = strndup(s, n)))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_NOMEM,
                               "%s: out of memory", label);
        return 0;
}

static int set_string_value(avro_value_t *v, const char *label, const char *s,
                            char *errstr, size_t errstr_size)
{
        if (!s)
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INVALID,
                               "%s: NULL string (required)", label);
        if (avro_value_set_string(v, s))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INTERNAL,
                               "%s: cannot set string: %s", label, avro_strerror());
        return 0;
}

int cm_avro_set_string(avro_value_t *rec, const char *field, const char *s, char *errstr,
                       size_t errstr_size)
{
        avro_value_t v;
        int rc;

        if ((rc = cm_avro_field(rec, field, &v, errstr, errstr_size)))
                return rc;
        return set_string_value(&v, field, s, errstr, errstr_size);
}

int cm_avro_get_string(const avro_value_t *rec, const char *field, char **out,
                       char *errstr, size_t errstr_size)
{
        avro_value_t v;
        int rc;

        *out = NULL;
        if ((rc = cm_avro_field(rec, field, &v, errstr, errstr_size)))
                return rc;
        return string_of(&v, field, out, errstr, errstr_size);
}

/* Selects the null branch (present == 0) or the other branch of an optional union. */
static int set_opt_branch(avro_value_t *rec, const char *field, int present,
                          avro_value_t *branch, char *errstr, size_t errstr_size)
{
        avro_value_t u;
        int rc;

        if ((rc = cm_avro_field(rec, field, &u, errstr, errstr_size)))
                return rc;
        if (avro_value_set_branch(&u, present ? 1 : 0, branch))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INTERNAL,
                               "%s: not an optional [\"null\", T] union: %s", field,
                               avro_strerror());
        if (!present && avro_value_set_null(branch))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INTERNAL,
                               "%s: branch 0 is not null", field);
        return 0;
}

/* *present = 0 for the null branch; otherwise *branch is the value. */
static int get_opt_branch(const avro_value_t *rec, const char *field, int *present,
                          avro_value_t *branch, char *errstr, size_t errstr_size)
{
        avro_value_t u;
        int rc;

        if ((rc = cm_avro_field(rec, field, &u, errstr, errstr_size)))
                return rc;
        if (avro_value_get_type(&u) != AVRO_UNION ||
            avro_value_get_current_branch(&u, branch))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INVALID,
                               "%s: optional value without a branch", field);
        *present = avro_value_get_type(branch) != AVRO_NULL;
        return 0;
}

int cm_avro_set_opt_string(avro_value_t *rec, const char *field, const char *s,
                           char *errstr, size_t errstr_size)
{
        avro_value_t b;
        int rc;

        if ((rc = set_opt_branch(rec, field, s != NULL, &b, errstr, errstr_size)) || !s)
                return rc;
        return set_string_value(&b, field, s, errstr, errstr_size);
}

int cm_avro_get_opt_string(const avro_value_t *rec, const char *field, char **out,
                           char *errstr, size_t errstr_size)
{
        avro_value_t b;
        int present, rc;

        *out = NULL;
        if ((rc = get_opt_branch(rec, field, &present, &b, errstr, errstr_size)) ||
            !present)
                return rc;
        return string_of(&b, field, out, errstr, errstr_size);
}

int cm_avro_set_long(avro_value_t *rec, const char *field, int64_t val, char *errstr,
                     size_t errstr_size)
{
        avro_value_t v;
        int rc;

        if ((rc = cm_avro_field(rec, field, &v, errstr, errstr_size)))
                return rc;
        if (avro_value_set_long(&v, val))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INTERNAL,
                               "%s: not a long in the schema", field);
        return 0;
}

int cm_avro_get_long(const avro_value_t *rec, const char *field, int64_t *val,
                     char *errstr, size_t errstr_size)
{
        avro_value_t v;
        int rc;

        if ((rc = cm_avro_field(rec, field, &v, errstr, errstr_size)))
                return rc;
        if (avro_value_get_long(&v, val))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INTERNAL,
                               "%s: not a long in the schema", field);
        return 0;
}

int cm_avro_set_int(avro_value_t *rec, const char *field, int32_t val, char *errstr,
                    size_t errstr_size)
{
        avro_value_t v;
        int rc;

        if ((rc = cm_avro_field(rec, field, &v, errstr, errstr_size)))
                return rc;
        if (avro_value_set_int(&v, val))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INTERNAL,
                               "%s: not an int in the schema", field);
        return 0;
}

int cm_avro_get_int(const avro_value_t *rec, const char *field, int32_t *val,
                    char *errstr, size_t errstr_size)
{
        avro_value_t v;
        int rc;

        if ((rc = cm_avro_field(rec, field, &v, errstr, errstr_size)))
                return rc;
        if (avro_value_get_int(&v, val))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INTERNAL,
                               "%s: not an int in the schema", field);
        return 0;
}

static int set_bytes_value(avro_value_t *v, const char *label, const unsigned char *data,
                           size_t len, char *errstr, size_t errstr_size)
{
        static const unsigned char empty[1];

        if (!data && len)
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INVALID,
                               "%s: NULL data with length %zu", label, len);
        if (avro_value_set_bytes(v, (void *)(data ? data : empty), len))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INTERNAL,
                               "%s: cannot set bytes: %s", label, avro_strerror());
        return 0;
}

static int bytes_of(const avro_value_t *v, const char *label, unsigned char **out,
                    size_t *len, char *errstr, size_t errstr_size)
{
        const void *p;
        size_t n;

        *out = NULL;
        *len = 0;
        if (avro_value_get_type(v) != AVRO_BYTES || avro_value_get_bytes(v, &p, &n))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INTERNAL,
                               "%s: not bytes in the schema", label);
        if (!(*out = malloc(n ? n : 1)))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_NOMEM,
                               "%s: out of memory for %zu bytes", label, n);
        if (n)
                memcpy(*out, p, n);
        *len = n;
        return 0;
}

int cm_avro_set_bytes(avro_value_t *rec, const char *field, const unsigned char *data,
                      size_t len, char *errstr, size_t errstr_size)
{
        avro_value_t v;
        int rc;

        if ((rc = cm_avro_field(rec, field, &v, errstr, errstr_size)))
                return rc;
        return set_bytes_value(&v, field, data, len, errstr, errstr_size);
}

int cm_avro_get_bytes(const avro_value_t *rec, const char *field, unsigned char **out,
                      size_t *len, char *errstr, size_t errstr_size)
{
        avro_value_t v;
        int rc;

        *out = NULL;
        *len = 0;
        if ((rc = cm_avro_field(rec, field, &v, errstr, errstr_size)))
                return rc;
        return bytes_of(&v, field, out, len, errstr, errstr_size);
}

int cm_avro_set_opt_bytes(avro_value_t *rec, const char *field, const unsigned char *data,
                          size_t len, char *errstr, size_t errstr_size)
{
        avro_value_t b;
        int rc;

        if ((rc = set_opt_branch(rec, field, data != NULL, &b, errstr, errstr_size)) ||
            !data)
                return rc;
        return set_bytes_value(&b, field, data, len, errstr, errstr_size);
}

int cm_avro_get_opt_bytes(const avro_value_t *rec, const char *field, unsigned char **out,
                          size_t *len, char *errstr, size_t errstr_size)
{
        avro_value_t b;
        int present, rc;

        *out = NULL;
        *len = 0;
        if ((rc = get_opt_branch(rec, field, &present, &b, errstr, errstr_size)) ||
            !present)
                return rc;
        return bytes_of(&b, field, out, len, errstr, errstr_size);
}

int cm_avro_set_string_array(avro_value_t *rec, const char *field, char *const *items,
                             size_t count, char *errstr, size_t errstr_size)
{
        avro_value_t arr, elem;
        char label[128];
        int rc;

        if ((rc = cm_avro_field(rec, field, &arr, errstr, errstr_size)))
                return rc;
        if (avro_value_get_type(&arr) != AVRO_ARRAY || avro_value_reset(&arr))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INTERNAL,
                               "%s: not an array in the schema", field);
        if (count && !items)
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INVALID,
                               "%s: NULL array with %zu items", field, count);
        for (size_t i = 0; i < count; i++) {
                snprintf(label, sizeof(label), "%s[%zu]", field, i);
                if (avro_value_append(&arr, &elem, NULL))
                        return cm_errf(errstr, errstr_size, CM_AVRO_ERR_NOMEM,
                                       "%s: cannot append", label);
                if ((rc = set_string_value(&elem, label, items[i], errstr, errstr_size)))
                        return rc;
        }
        return 0;
}

int cm_avro_get_string_array(const avro_value_t *rec, const char *field, char ***out,
                             size_t *count, char *errstr, size_t errstr_size)
{
        avro_value_t arr, elem;
        char label[128], **items;
        size_t n;
        int rc;

        *out = NULL;
        *count = 0;
        if ((rc = cm_avro_field(rec, field, &arr, errstr, errstr_size)))
                return rc;
        if (avro_value_get_type(&arr) != AVRO_ARRAY || avro_value_get_size(&arr, &n))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_INTERNAL,
                               "%s: not an array in the schema", field);
        if (!n)
                return 0;
        if (!(items = calloc(n, sizeof(*items))))
                return cm_errf(errstr, errstr_size, CM_AVRO_ERR_NOMEM,
                               "%s: out of memory for %zu items", field, n);
        for (size_t i = 0; i < n; i++) {
                snprintf(label, sizeof(label), "%s[%zu]", field, i);
                if (avro_value_get_by_index(&arr, i, &elem, NULL))
                        rc = cm_errf(errstr, errstr_size, CM_AVRO_ERR_INTERNAL,
                                     "%s: cannot read", label);
                else
                        rc = string_of(&elem, label, &items[i], errstr, errstr_size);
                if (rc) {
                        cm_avro_free_strings(items, n);
                        return rc;
                }
        }
        *out = items;
        *count = n;
        return 0;
}
