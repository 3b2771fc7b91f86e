/*
 * cm_config.c - loading the configuration of every cm service: defaults, then the file,
 * then the environment, each value checked against the key table (cm_config_keys.c).
 */
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/config.h"
#include "cm_config_int.h"

/* Where a key's value came from: "file:line", "CM_X_Y", or "" for the default. */
typedef char cm_config_origin_t[256];

const char *cm_config_err2str(cm_config_err_t err)
{
        switch (err) {
        case CM_CONFIG_OK:
                return "success";
        case CM_CONFIG_ERR_IO:
                return "configuration file cannot be read";
        case CM_CONFIG_ERR_SYNTAX:
                return "configuration syntax error";
        case CM_CONFIG_ERR_UNKNOWN_KEY:
                return "unknown configuration key or section";
        case CM_CONFIG_ERR_TYPE:
                return "configuration value of the wrong type";
        case CM_CONFIG_ERR_RANGE:
                return "configuration value out of range";
        }
        return "unknown error";
}

static char **cm_config_str_field(cm_config_t *conf, const cm_config_key_t *k)
{
        return (char **)((char *)conf + k->offset);
}

static int *cm_config_int_field(cm_config_t *conf, const cm_config_key_t *k)
{
        return (int *)((char *)conf + k->offset);
}

static cm_config_err_t cm_config_fail(char *errstr, size_t errstr_size,
                                      cm_config_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static cm_config_err_t cm_config_fail(char *errstr, size_t errstr_size,
                                      cm_config_err_t err, const char *fmt, ...)
{
        va_list ap;

        if (errstr && errstr_size > 0) {
                va_start(ap, fmt);
                vsnprintf(errstr, errstr_size, fmt, ap);
                va_end(ap);
        }
        return err;
}

/* Edit distance, for "did you mean". Names longer than 63 bytes are never suggested. */
static size_t cm_config_distance(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b), row[64], prev, tmp;

        if (la >= 64 || lb >= 64)
                return SIZE_MAX;
        for (size_t j = 0; j <= lb; j++)
                row[j] = j;
        for (size_t i = 1; i <= la; i++) {
                prev = row[0];
                row[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t best = prev + (a[i - 1] != b[j - 1]);
                        if (row[j] + 1 < best)
                                best = row[j] + 1;
                        if (row[j - 1] + 1 < best)
                                best = row[j - 1] + 1;
                        tmp = row[j];
                        row[j] = best;
                        prev = tmp;
                }
        }
        return row[lb];
}

/* Writes " (did you mean 'x'?)" into out when a candidate is close to name, else "". */
static void cm_config_suggest(const char *name, int sections, char *out, size_t out_size)
{
        char full[160];
        const char *best = NULL, *best_sec = NULL;
        size_t best_d = SIZE_MAX, limit = strlen(name) / 3 + 1;

        for (size_t i = 0; i < CM_CONFIG_NKEYS; i++) {
                size_t d;
                if (sections) {
                        d = cm_config_distance(name, cm_config_keys[i].section);
                } else {
                        snprintf(full, sizeof(full), "%s.%s", cm_config_keys[i].section,
                                 cm_config_keys[i].key);
                        d = cm_config_distance(name, full);
                }
                if (d < best_d) {
                        best_d = d;
                        best =
                            sections ? cm_config_keys[i].section : cm_config_keys[i].key;
                        best_sec = sections ? NULL : cm_config_keys[i].section;
                }
        }
        if (!best || best_d > limit || best_d > 3)
                out[0] = '\0';
        else if (best_sec)
                snprintf(out, out_size, " (did you mean '%s.%s'?)", best_sec, best);
        else
                snprintf(out, out_size, " (did you mean '%s'?)", best);
}

static int cm_config_section_known(const char *name)
{
        for (size_t i = 0; i < CM_CONFIG_NKEYS; i++)
                if (strcmp(cm_config_keys[i].section, name) == 0)
                        return 1;
        return 0;
}

static const cm_config_key_t *cm_config_find(const char *section, const char *key)
{
        for (size_t i = 0; i < CM_CONFIG_NKEYS; i++)
                if (strcmp(cm_config_keys[i].section, section) == 0 &&
                    strcmp(cm_config_keys[i].key, key) == 0)
                        return &cm_config_keys[i];
        return NULL;
}

static const char *cm_config_type_name(int type)
{
        switch (type) {
        case CONFIG_TYPE_GROUP:
                return "a group";
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:
                return "an integer";
        case CONFIG_TYPE_FLOAT:
                return "a float";
        case CONFIG_TYPE_STRING:
                return "a string";
        case CONFIG_TYPE_BOOL:
                return "a boolean";
        case CONFIG_TYPE_ARRAY:
                return "an array";
        case CONFIG_TYPE_LIST:
                return "a list";
        }
        return "nothing";
}

/* Range and set checks shared by the file and the environment; origin prefixes the
 * message. */
static cm_config_err_t cm_config_check_int(const cm_config_key_t *k, long long v,
                                           const char *origin, char *errstr,
                                           size_t errstr_size)
{
        if (v < k->min || v > k->max)
                return cm_config_fail(errstr, errstr_size, CM_CONFIG_ERR_RANGE,
                                      "%s: %lld is out of range %lld..%lld", origin, v,
                                      k->min, k->max);
        return CM_CONFIG_OK;
}

static cm_config_err_t cm_config_check_str(const cm_config_key_t *k, const char *v,
                                           const char *origin, char *errstr,
                                           size_t errstr_size)
{
        char set[256];

        if (k->type == CM_CONFIG_T_ENUM) {
                for (size_t i = 0; k->allowed[i]; i++)
                        if (strcmp(k->allowed[i], v) == 0)
                                return CM_CONFIG_OK;
                cm_config_allowed_list(k, set, sizeof(set));
                return cm_config_fail(errstr, errstr_size, CM_CONFIG_ERR_RANGE,
                                      "%s: \"%.64s\" is not one of %s", origin, v, set);
        }
        if (strlen(v) < (size_t)k->min)
                return cm_config_fail(errstr, errstr_size, CM_CONFIG_ERR_RANGE,
                                      "%s: must not be empty", origin);
        return CM_CONFIG_OK;
}

static cm_config_err_t cm_config_set_str(cm_config_t *conf, const cm_config_key_t *k,
                                         const char *v, char *errstr, size_t errstr_size)
{
        char **field = cm_config_str_field(conf, k);
        char *copy = strdup(v);

        if (!copy)
                return cm_config_fail(errstr, errstr_size, CM_CONFIG_ERR_IO,
                                      "%s.%s: out of memory", k->section, k->key);
        free(*field);
        *field = copy;
        return CM_CONFIG_OK;
}

static cm_config_err_t cm_config_set_defaults(cm_config_t *conf, char *errstr,
                                              size_t errstr_size)
{
        cm_config_err_t err;

        for (size_t i = 0; i < CM_CONFIG_NKEYS; i++) {
                const cm_config_key_t *k = &cm_config_keys[i];
                if (k->type == CM_CONFIG_T_INT) {
                        *cm_config_int_field(conf, k) = (int)k->def_int;
                } else if ((err = cm_config_set_str(conf, k, k->def_str, errstr,
                                                    errstr_size))) {
                        return err;
                }
        }
        return CM_CONFIG_OK;
}

/* The text of a configuration being read: the main file's, in memory. */
typedef struct cm_config_src_s {
        const char *name; /* the main file's name, as in messages */
        const char *text;
        size_t len;
} cm_config_src_t;

/* Line `line` (from 1) of text[0..len), without its newline, into buf. */
static int cm_config_text_line(const char *text, size_t len, unsigned line, char *buf,
                               size_t size)
{
        size_t i = 0, n;
        for (unsigned l = 1; l < line; l++) {
                const char *nl = memchr(text + i, '\n', len - i);
                if (!nl)
                        return 0;
                i = (size_t)(nl - text) + 1;
        }
        const char *nl = memchr(text + i, '\n', len - i);
        n = (nl ? (size_t)(nl - text) : len) - i;
        if (n >= size)
                n = size - 1;
        memcpy(buf, text + i, n);
        buf[n] = '\0';
        return 1;
}

/* Line `line` of the file at path (an @include'd one) into buf. */
static int cm_config_file_line(const char *path, unsigned line, char *buf, size_t size)
{
        FILE *fp = fopen(path, "r");
        unsigned n = 0;

        if (!fp)
                return 0;
        while (fgets(buf, (int)size, fp))
                if ((strchr(buf, '\n') || feof(fp)) && ++n == line)
                        break;
        fclose(fp);
        return n == line;
}

/*
 * libconfig 1.5 stores an integer literal without the L suffix with atoi(), so
 * 99999999999 silently becomes 1215752191. Re-read the literal from the source line:
 * returns 1 and its value when "name = <integer>" is found there, 0 otherwise (then
 * libconfig's value stands).
 */
static int cm_config_int_literal(const cm_config_src_t *src, const char *file,
                                 unsigned line, const char *name, int parsed,
                                 long long *value)
{
        char buf[1024], *p, *end;
        size_t nl = strlen(name);
        int found = 0;

        if (nl == 0)
                return 0;
        if (!(strcmp(file, src->name) == 0
                  ? cm_config_text_line(src->text, src->len, line, buf, sizeof(buf))
                  : cm_config_file_line(file, line, buf, sizeof(buf))))
                return 0;
        for (p = buf; !found && (p = strstr(p, name)) != NULL; p += nl) {
                if (p > buf &&
                    (p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z') ||
                     (p[-1] >= 'A' && p[-1] <= 'Z') || (p[-1] >= '0' && p[-1] <= '9')))
                        continue;
                char *q = p + nl;
                while (*q == ' ' || *q == '\t')
                        q++;
                if (*q != '=' && *q != ':')
                        continue;
                q++;
                while (*q == ' ' || *q == '\t')
                        q++;
                int neg = *q == '-';
                if (*q == '-' || *q == '+')
                        q++;
                int hex = q[0] == '0' && (q[1] == 'x' || q[1] == 'X');
                if (!(hex ? ((q[2] >= '0' && q[2] <= '9') ||
                             (q[2] >= 'a' && q[2] <= 'f') || (q[2] >= 'A' && q[2] <= 'F'))
                          : (q[0] >= '0' && q[0] <= '9')))
                        continue;
                errno = 0;
                unsigned long long u = strtoull(q, &end, hex ? 16 : 10);
                if (errno == ERANGE || u > (unsigned long long)LLONG_MAX)
                        u = (unsigned long long)LLONG_MAX;
                *value = neg ? -(long long)u : (long long)u;
                /* the same literal libconfig read, not "name = 9" inside a string */
                found = (int)(unsigned)(unsigned long long)*value == parsed;
        }
        return found;
}

/* Applies one setting of a section from the file. */
static cm_config_err_t
cm_config_apply_setting(cm_config_t *conf, const cm_config_src_t *src,
                        const char *section, const config_setting_t *s,
                        cm_config_origin_t *origins, char *errstr, size_t errstr_size)
{
        const char *file =
            config_setting_source_file(s) ? config_setting_source_file(s) : src->name;
        unsigned line = config_setting_source_line(s);
        const char *name = config_setting_name(s);
        const cm_config_key_t *k;
        char origin[256], full[160], hint[200];
        int type = config_setting_type(s);

        if (!name) /* element of a list: cannot happen inside a group, but stay safe */
                name = "(unnamed)";
        k = cm_config_find(section, name);
        if (!k) {
                snprintf(full, sizeof(full), "%s.%s", section, name);
                cm_config_suggest(full, 0, hint, sizeof(hint));
                return cm_config_fail(errstr, errstr_size, CM_CONFIG_ERR_UNKNOWN_KEY,
                                      "%s:%u: unknown key '%s'%s", file, line, full,
                                      hint);
        }
        snprintf(origins[k - cm_config_keys], sizeof(*origins), "%s:%u", file, line);
        snprintf(origin, sizeof(origin), "%s:%u: %s.%s", file, line, section, name);

        if (k->type == CM_CONFIG_T_INT) {
                if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
                        return cm_config_fail(errstr, errstr_size, CM_CONFIG_ERR_TYPE,
                                              "%s: expected an integer, got %s", origin,
                                              cm_config_type_name(type));
                long long v = config_setting_get_int64(s), lit;
                if (type == CONFIG_TYPE_INT &&
                    cm_config_int_literal(src, file, line, name,
                                          config_setting_get_int(s), &lit))
                        v = lit;
                cm_config_err_t err =
                    cm_config_check_int(k, v, origin, errstr, errstr_size);
                if (err)
                        return err;
                *cm_config_int_field(conf, k) = (int)v;
                return CM_CONFIG_OK;
        }
        if (type != CONFIG_TYPE_STRING)
                return cm_config_fail(errstr, errstr_size, CM_CONFIG_ERR_TYPE,
                                      "%s: expected a string, got %s", origin,
                                      cm_config_type_name(type));
        const char *v = config_setting_get_string(s);
        cm_config_err_t err = cm_config_check_str(k, v, origin, errstr, errstr_size);
        if (err)
                return err;
        return cm_config_set_str(conf, k, v, errstr, errstr_size);
}

/* Top level: only known sections, each a group of known keys. */
static cm_config_err_t cm_config_apply_root(cm_config_t *conf, const cm_config_src_t *src,
                                            const config_setting_t *root,
                                            cm_config_origin_t *origins, char *errstr,
                                            size_t errstr_size)
{
        int n = config_setting_length(root);
        char hint[200];
        cm_config_err_t err;

        for (int i = 0; i < n; i++) {
                const config_setting_t *sec = config_setting_get_elem(root, (unsigned)i);
                const char *file = config_setting_source_file(sec)
                                       ? config_setting_source_file(sec)
                                       : src->name;
                unsigned line = config_setting_source_line(sec);
                const char *name = config_setting_name(sec);

                if (!cm_config_section_known(name)) {
                        cm_config_suggest(name, 1, hint, sizeof(hint));
                        if (!config_setting_is_group(sec) && !hint[0]) {
                                /* "threads = 4;" at top level: probably a missing section
                                 */
                                for (size_t j = 0; j < CM_CONFIG_NKEYS; j++)
                                        if (strcmp(cm_config_keys[j].key, name) == 0) {
                                                snprintf(hint, sizeof(hint),
                                                         " (did you mean '%s.%s'?)",
                                                         cm_config_keys[j].section, name);
                                                break;
                                        }
                        }
                        return cm_config_fail(
                            errstr, errstr_size, CM_CONFIG_ERR_UNKNOWN_KEY,
                            "%s:%u: unknown section '%s'%s", file, line, name, hint);
                }
                if (!config_setting_is_group(sec))
                        return cm_config_fail(
                            errstr, errstr_size, CM_CONFIG_ERR_TYPE,
                            "%s:%u: %s: expected a section (%s: { ... }), got "
                            "%s",
                            file, line, name, name,
                            cm_config_type_name(config_setting_type(sec)));
                int m = config_setting_length(sec);
                for (int j = 0; j < m; j++) {
                        const config_setting_t *s =
                            config_setting_get_elem(sec, (unsigned)j);
                        err = cm_config_apply_setting(conf, src, name, s, origins, errstr,
                                                      errstr_size);
                        if (err)
                                return err;
                }
        }
        return CM_CONFIG_OK;
}

/* Applies the configuration text src (the file src->name, read already). */
static cm_config_err_t cm_config_apply_text(cm_config_t *conf, const cm_config_src_t *src,
                                            cm_config_origin_t *origins, char *errstr,
                                            size_t errstr_size)
{
        config_t cfg;
        char *dir, *slash, *text;
        const char *nul;
        cm_config_err_t err;

        /* libconfig reads a C string: a NUL byte would silently end the file there. */
        if ((nul = memchr(src->text, '\0', src->len)) != NULL) {
                unsigned line = 1;
                for (const char *q = src->text; q < nul; q++)
                        line += *q == '\n';
                return cm_config_fail(errstr, errstr_size, CM_CONFIG_ERR_SYNTAX,
                                      "%s:%u: syntax error: a NUL byte", src->name, line);
        }
        if (!(text = malloc(src->len + 1)))
                return cm_config_fail(errstr, errstr_size, CM_CONFIG_ERR_IO,
                                      "out of memory");
        memcpy(text, src->text, src->len);
        text[src->len] = '\0';
        /* @include "x.conf" is relative to the directory of the file. */
        if (!(dir = strdup(src->name))) {
                free(text);
                return cm_config_fail(errstr, errstr_size, CM_CONFIG_ERR_IO,
                                      "out of memory");
        }
        slash = strrchr(dir, '/');
        if (slash)
                *slash = '\0';
        config_init(&cfg);
        config_set_include_dir(&cfg, slash ? (dir[0] ? dir : "/") : ".");

        if (!config_read_string(&cfg, text)) {
                const char *file =
                    config_error_file(&cfg) ? config_error_file(&cfg) : src->name;
                if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
                        err = cm_config_fail(errstr, errstr_size, CM_CONFIG_ERR_IO,
                                             "%s: cannot read: %s", file,
                                             config_error_text(&cfg));
                else if (strcmp(config_error_text(&cfg), "syntax error") == 0)
                        err = cm_config_fail(errstr, errstr_size, CM_CONFIG_ERR_SYNTAX,
                                             "%s:%d: syntax error", file,
                                             config_error_line(&cfg));
                else
                        err = cm_config_fail(errstr, errstr_size, CM_CONFIG_ERR_SYNTAX,
                                             "%s:%d: syntax error: %s", file,
                                             config_error_line(&cfg),
                                             config_error_text(&cfg));
        } else {
                err = cm_config_apply_root(conf, src, config_root_setting(&cfg), origins,
                                           errstr, errstr_size);
        }
        config_destroy(&cfg);
        free(text);
        free(dir);
        return err;
}

/* Reads the whole file at path into *text (malloc'd) / *len. */
static cm_config_err_t cm_config_read(const char *path, char **text, size_t *len,
                                      char *errstr, size_t errstr_size)
{
        FILE *fp;
        char *buf = NULL, *nb;
        size_t n = 0, cap = 0, got;

        if (!(fp = fopen(path, "r")))
                return cm_config_fail(errstr, errstr_size, CM_CONFIG_ERR_IO,
                                      "%s: cannot open: %s", path, strerror(errno));
        do {
                if (n == cap) {
                        cap = cap ? cap * 2 : 4096;
                        if (!(nb = realloc(buf, cap))) {
                                free(buf);
                                fclose(fp);
                                return cm_config_fail(errstr, errstr_size,
                                                      CM_CONFIG_ERR_IO, "out of memory");
                        }
                        buf = nb;
                }
                got = fread(buf + n, 1, cap - n, fp);
                n += got;
        } while (got > 0);
        if (ferror(fp)) {
                cm_config_err_t err =
                    cm_config_fail(errstr, errstr_size, CM_CONFIG_ERR_IO,
                                   "%s: cannot read: %s", path, strerror(errno));
                free(buf);
                fclose(fp);
                return err;
        }
        fclose(fp);
        *text = buf;
        *len = n;
        return CM_CONFIG_OK;
}

static cm_config_err_t cm_config_apply_env(cm_config_t *conf, cm_config_origin_t *origins,
                                           char *errstr, size_t errstr_size)
{
        char var[128];
        cm_config_err_t err;

        for (size_t i = 0; i < CM_CONFIG_NKEYS; i++) {
                const cm_config_key_t *k = &cm_config_keys[i];
                const char *v;

                cm_config_env_name(k, var, sizeof(var));
                if (!(v = getenv(var)))
                        continue;
                snprintf(origins[i], sizeof(origins[i]), "%s", var);
                if (k->type != CM_CONFIG_T_INT) {
                        if ((err = cm_config_check_str(k, v, var, errstr, errstr_size)) ||
                            (err = cm_config_set_str(conf, k, v, errstr, errstr_size)))
                                return err;
                        continue;
                }
                char *end = (char *)v;
                long long n = 0;
                errno = 0;
                /* strtoll skips leading blanks and accepts "" - neither is an integer
                 * here */
                if ((v[0] >= '0' && v[0] <= '9') || v[0] == '-' || v[0] == '+')
                        n = strtoll(v, &end, 10);
                if (end == v || *end != '\0')
                        return cm_config_fail(errstr, errstr_size, CM_CONFIG_ERR_TYPE,
                                              "%s: expected an integer, got \"%.64s\"",
                                              var, v);
                if (errno == ERANGE)
                        return cm_config_fail(errstr, errstr_size, CM_CONFIG_ERR_RANGE,
                                              "%s: %.64s is out of range %lld..%lld", var,
                                              v, k->min, k->max);
                if ((err = cm_config_check_int(k, n, var, errstr, errstr_size)))
                        return err;
                *cm_config_int_field(conf, k) = (int)n;
        }
        return CM_CONFIG_OK;
}

/* Constraints between keys, checked once every source is applied. */
static cm_config_err_t cm_config_check_relations(const cm_config_t *conf,
                                                 cm_config_origin_t *origins,
                                                 char *errstr, size_t errstr_size)
{
        static const struct {
                const char *lsec, *lkey, *rsec, *rkey;
                int strict; /* lhs < rhs instead of lhs <= rhs */
        } rel[] = {
            {"postgres", "reconnect_min_ms", "postgres", "reconnect_max_ms", 0},
            {"job", "heartbeat_s", "job", "lease_s", 1},
        };

        for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
                const cm_config_key_t *l = cm_config_find(rel[i].lsec, rel[i].lkey);
                const cm_config_key_t *r = cm_config_find(rel[i].rsec, rel[i].rkey);
                int lv = *cm_config_int_field((cm_config_t *)conf, l);
                int rv = *cm_config_int_field((cm_config_t *)conf, r);
                const char *where = origins[l - cm_config_keys][0]
                                        ? origins[l - cm_config_keys]
                                        : origins[r - cm_config_keys];

                if (rel[i].strict ? lv < rv : lv <= rv)
                        continue;
                return cm_config_fail(errstr, errstr_size, CM_CONFIG_ERR_RANGE,
                                      "%s%s%s.%s (%d) must be %s %s.%s (%d)", where,
                                      where[0] ? ": " : "", l->section, l->key, lv,
                                      rel[i].strict ? "less than" : "at most", r->section,
                                      r->key, rv);
        }
        return CM_CONFIG_OK;
}

/* Defaults, then src (NULL: no file), then the environment, then the relations. */
static cm_config_err_t cm_config_load_src(cm_config_t *conf, const cm_config_src_t *src,
                                          char *errstr, size_t errstr_size)
{
        cm_config_origin_t *origins;
        cm_config_err_t err;

        if (!(origins = calloc(CM_CONFIG_NKEYS, sizeof(*origins))))
                return cm_config_fail(errstr, errstr_size, CM_CONFIG_ERR_IO,
                                      "out of memory");
        err = cm_config_set_defaults(conf, errstr, errstr_size);
        if (!err && src)
                err = cm_config_apply_text(conf, src, origins, errstr, errstr_size);
        if (!err)
                err = cm_config_apply_env(conf, origins, errstr, errstr_size);
        if (!err)
                err = cm_config_check_relations(conf, origins, errstr, errstr_size);
        if (!err && src && !(conf->path = strdup(src->name)))
                err = cm_config_fail(errstr, errstr_size, CM_CONFIG_ERR_IO,
                                     "out of memory");
        free(origins);
        if (err)
                cm_config_destroy(conf);
        return err;
}

cm_config_err_t cm_config_load(cm_config_t *conf, const char *path, char *errstr,
                               size_t errstr_size)
{
        cm_config_src_t src = {.name = path};
        char *text = NULL;
        cm_config_err_t err;

        memset(conf, 0, sizeof(*conf));
        if (errstr && errstr_size > 0)
                errstr[0] = '\0';
        if (!path)
                return cm_config_load_src(conf, NULL, errstr, errstr_size);
        if ((err = cm_config_read(path, &text, &src.len, errstr, errstr_size)))
                return err;
        src.text = text ? text : "";
        err = cm_config_load_src(conf, &src, errstr, errstr_size);
        free(text);
        return err;
}

cm_config_err_t cm_config_load_string(cm_config_t *conf, const char *text, size_t len,
                                      const char *name, char *errstr, size_t errstr_size)
{
        cm_config_src_t src = {.name = name ? name : "(string)",
                               .text = text ? text : "",
                               .len = text ? len : 0};

        memset(conf, 0, sizeof(*conf));
        if (errstr && errstr_size > 0)
                errstr[0] = '\0';
        return cm_config_load_src(conf, &src, errstr, errstr_size);
}

void cm_config_destroy(cm_config_t *conf)
{
        if (!conf)
                return;
        for (size_t i = 0; i < CM_CONFIG_NKEYS; i++) {
                const cm_config_key_t *k = &cm_config_keys[i];
                if (k->type != CM_CONFIG_T_INT) {
                        char **field = cm_config_str_field(conf, k);
                        free(*field);
                        *field = NULL;
                }
        }
        free(conf->path);
        conf->path = NULL;
}
