/*
 * cm_plan.c - loading the embedded plan files, filling placeholders, and deciding what to
 * do with a container from `docker inspect`. Rendering steps is cm_plan_render.c.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/embedded.h"
#include "cm/plan.h"
#include "cm_plan_int.h"

void cm_plan_seterr(char *errstr, size_t size, const char *fmt, ...)
{
        if (!errstr || size == 0)
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, size, fmt, ap);
        va_end(ap);
}

void cm_plan_known_versions(char *buf, size_t size)
{
        size_t used = 0;
        if (size)
                buf[0] = '\0';
        for (size_t i = 0; i < cm_embedded_file_count; i++) {
                const char *p = cm_embedded_files[i].path;
                size_t len = strlen(p);
                if (strncmp(p, "plans/v", 7) != 0 || strchr(p + 6, '/') || len < 12 ||
                    strcmp(p + len - 5, ".json") != 0)
                        continue;
                int n = snprintf(buf + used, size - used, "%s%.*s", used ? ", " : "",
                                 (int)(len - 11), p + 6);
                if (n < 0 || (size_t)n >= size - used)
                        break;
                used += (size_t)n;
        }
}

cm_plan_t *cm_plan_parse(const char *name, const char *text, char *errstr,
                         size_t errstr_size)
{
        json_error_t jerr;
        json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
                cm_plan_seterr(errstr, errstr_size, "plan %s: line %d: %s", name,
                               jerr.line, jerr.text);
                return NULL;
        }
        const char *kv = json_string_value(json_object_get(root, "kubernetesVersion"));
        if (!json_is_object(root) || !kv ||
            !json_is_object(json_object_get(root, "images")) ||
            !json_is_array(json_object_get(root, "planes"))) {
                cm_plan_seterr(
                    errstr, errstr_size,
                    "plan %s: needs kubernetesVersion, images {} and planes []", name);
                json_decref(root);
                return NULL;
        }
        cm_plan_t *p = calloc(1, sizeof(*p));
        if (!p || !(p->name = strdup(name))) {
                free(p);
                json_decref(root);
                cm_plan_seterr(errstr, errstr_size, "out of memory");
                return NULL;
        }
        p->root = root;
        return p;
}

cm_plan_t *cm_plan_load(const char *kubernetes_version, char *errstr, size_t errstr_size)
{
        const char *v = kubernetes_version ? kubernetes_version : "";
        const char *s = v[0] == 'v' ? v + 1 : v;
        char *end;
        char known[256], path[64], name[32];
        long major = strtol(s, &end, 10), minor = -1;
        if (end != s && *end == '.' && isdigit((unsigned char)end[1]))
                minor = strtol(end + 1, &end, 10);
        cm_plan_known_versions(known, sizeof(known));
        if (minor < 0 || !isdigit((unsigned char)*s) || (*end && *end != '.') ||
            major > 99 || minor > 999) {
                cm_plan_seterr(errstr, errstr_size,
                               "kubernetesVersion: \"%s\" is not a version like v1.28.15 "
                               "(known: %s)",
                               v, known);
                return NULL;
        }
        snprintf(name, sizeof(name), "v%ld.%ld", major, minor);
        snprintf(path, sizeof(path), "plans/%s.json", name);
        const cm_embedded_file_t *f = cm_embedded_find(path);
        if (!f) {
                cm_plan_seterr(
                    errstr, errstr_size,
                    "kubernetesVersion: \"%s\" has no install plan (known: %s)", v,
                    known);
                return NULL;
        }
        return cm_plan_parse(name, (const char *)f->data, errstr, errstr_size);
}

void cm_plan_free(cm_plan_t *plan)
{
        if (!plan)
                return;
        json_decref(plan->root);
        free(plan->name);
        free(plan);
}

/* ---- variables and placeholders ---------------------------------------------------- */

int cm_plan_vars_set(cm_plan_vars_t *v, const char *name, const char *value)
{
        for (size_t i = 0; i < v->count; i++)
                if (strcmp(v->items[i].name, name) == 0) {
                        char *nv = strdup(value);
                        if (!nv)
                                return -1;
                        free(v->items[i].value);
                        v->items[i].value = nv;
                        return 0;
                }
        cm_plan_var_t *items = realloc(v->items, (v->count + 1) * sizeof(*items));
        if (!items)
                return -1;
        v->items = items;
        items[v->count].name = strdup(name);
        items[v->count].value = strdup(value);
        if (!items[v->count].name || !items[v->count].value) {
                free(items[v->count].name);
                free(items[v->count].value);
                return -1;
        }
        v->count++;
        return 0;
}

void cm_plan_vars_truncate(cm_plan_vars_t *v, size_t count)
{
        while (v->count > count) {
                v->count--;
                free(v->items[v->count].name);
                free(v->items[v->count].value);
        }
        if (count == 0) {
                free(v->items);
                v->items = NULL;
        }
}

static const char *vars_get(const cm_plan_vars_t *v, const char *name, size_t len)
{
        /* later definitions (per-node, per-file) win over earlier (cluster-wide) ones */
        for (size_t i = v->count; i-- > 0;)
                if (strlen(v->items[i].name) == len &&
                    strncmp(v->items[i].name, name, len) == 0)
                        return v->items[i].value;
        return NULL;
}

char *cm_plan_fill(const char *tmpl, const cm_plan_vars_t *v, const char *where,
                   char *errstr, size_t errstr_size)
{
        size_t cap = strlen(tmpl) + 64, len = 0;
        char *out = malloc(cap);
        const char *p = tmpl;
        if (!out)
                goto nomem;
        while (*p) {
                const char *open = strstr(p, "{{"), *val, *copy;
                size_t n;
                if (!open) {
                        copy = p;
                        n = strlen(p);
                        p += n;
                } else if (open > p) {
                        copy = p;
                        n = (size_t)(open - p);
                        p = open;
                } else {
                        const char *close = strstr(p + 2, "}}");
                        const char *nm = p + 2;
                        while (*nm == ' ')
                                nm++;
                        size_t nl = close ? (size_t)(close - nm) : 0;
                        while (nl && nm[nl - 1] == ' ')
                                nl--;
                        if (!close || !(val = vars_get(v, nm, nl))) {
                                cm_plan_seterr(errstr, errstr_size,
                                               "%s: unknown placeholder \"%.*s\"", where,
                                               close ? (int)(close + 2 - p) : 40, p);
                                free(out);
                                return NULL;
                        }
                        copy = val;
                        n = strlen(val);
                        p = close + 2;
                }
                if (len + n + 1 > cap) {
                        cap = (len + n + 1) * 2;
                        char *o = realloc(out, cap);
                        if (!o)
                                goto nomem;
                        out = o;
                }
                memcpy(out + len, copy, n);
                len += n;
        }
        out[len] = '\0';
        return out;
nomem:
        free(out);
        cm_plan_seterr(errstr, errstr_size, "out of memory");
        return NULL;
}

/* ---- deciding ------------------------------------------------------------------------
 */

const char *cm_plan_action_name(cm_plan_action_t a)
{
        switch (a) {
        case CM_PLAN_ACTION_NONE:
                return "none";
        case CM_PLAN_ACTION_CREATE:
                return "create";
        case CM_PLAN_ACTION_REPLACE:
                return "replace";
        case CM_PLAN_ACTION_START:
                return "start";
        }
        return "?";
}

cm_plan_action_t cm_plan_decide(const cm_plan_container_t *c, int inspect_status,
                                const char *inspect_output)
{
        if (inspect_status != 0)
                return CM_PLAN_ACTION_CREATE;
        json_t *arr = inspect_output ? json_loads(inspect_output, 0, NULL) : NULL;
        json_t *obj = json_is_array(arr) ? json_array_get(arr, 0) : arr;
        json_t *labels = json_object_get(json_object_get(obj, "Config"), "Labels");
        const char *hash = json_string_value(json_object_get(labels, CM_PLAN_HASH_LABEL));
        json_t *running = json_object_get(json_object_get(obj, "State"), "Running");
        cm_plan_action_t a;
        if (!hash || strcmp(hash, c->hash) != 0 || !json_is_boolean(running))
                a = CM_PLAN_ACTION_REPLACE;
        else if (c->run && !json_is_true(running))
                a = CM_PLAN_ACTION_START;
        else
                a = CM_PLAN_ACTION_NONE;
        json_decref(arr);
        return a;
}
