/*
 * cm_spec.c - the cluster spec: defaults, deep copy, and its camelCase JSON form.
 *
 * Only the structure is checked here (JSON types, unknown fields); what the values mean
 * (required fields, roles, CIDRs...) is the validation module's job, so that cm-api and
 * cm-worker run the same checks on a spec however it arrived (JSON or Avro).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/spec.h"
#include "cm/utf8.h"

/* Longest rendering of an offending JSON value in a message: enough to recognise it, and
 * a huge or misplaced value cannot flood the response. */
#define VALUE_MAX 64
/* Longest key echoed in a field path (unknown fields can be anything a client sends). */
#define KEY_MAX 64

/* ---- field errors ------------------------------------------------------------------ */

int cm_field_errors_add(cm_field_errors_t *errs, const char *field, const char *fmt, ...)
{
        if (errs->count == errs->cap) {
                size_t cap = errs->cap ? errs->cap * 2 : 8;
                cm_field_error_t *items = realloc(errs->items, cap * sizeof(*items));
                if (!items)
                        return -1;
                errs->items = items;
                errs->cap = cap;
        }
        char *f = strdup(field ? field : "");
        char *m = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&m, fmt, ap);
        va_end(ap);
        if (!f || n < 0) {
                free(f);
                if (n >= 0)
                        free(m);
                return -1;
        }
        errs->items[errs->count].field = f;
        errs->items[errs->count].message = m;
        errs->count++;
        return 0;
}

void cm_field_errors_clear(cm_field_errors_t *errs)
{
        for (size_t i = 0; i < errs->count; i++) {
                free(errs->items[i].field);
                free(errs->items[i].message);
        }
        free(errs->items);
        errs->items = NULL;
        errs->count = 0;
        errs->cap = 0;
}

json_t *cm_field_errors_to_json(const cm_field_errors_t *errs)
{
        json_t *arr = json_array();
        if (!arr)
                return NULL;
        for (size_t i = 0; i < errs->count; i++) {
                json_t *o = json_pack("{s:s, s:s}", "field", errs->items[i].field,
                                      "message", errs->items[i].message);
                if (!o || json_array_append_new(arr, o) != 0) {
                        json_decref(arr);
                        return NULL;
                }
        }
        return arr;
}

/* ---- parsing context ----------------------------------------------------------------
 */

typedef struct {
        cm_field_errors_t *errs;
        bool failed; /* an error was added, or memory ran out */
        bool nomem;
} pctx_t;

static void perr(pctx_t *p, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void perr(pctx_t *p, const char *field, const char *fmt, ...)
{
        char *m = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&m, fmt, ap);
        va_end(ap);
        p->failed = true;
        if (n < 0 || cm_field_errors_add(p->errs, field, "%s", m) != 0)
                p->nomem = true;
        if (n >= 0)
                free(m);
}

/* Renders v as compact JSON (strings quoted), cut to VALUE_MAX characters. */
static void render(const json_t *v, char *buf, size_t size)
{
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        if (!s) {
                snprintf(buf, size, "(unprintable)");
                return;
        }
        if (strlen(s) > VALUE_MAX)
                snprintf(buf, size, "%.*s...", (int)cm_utf8_cut(s, VALUE_MAX), s);
        else
                snprintf(buf, size, "%s", s);
        free(s);
}

static void type_error(pctx_t *p, const char *field, const char *expected,
                       const json_t *v)
{
        char val[VALUE_MAX + 8];
        render(v, val, sizeof(val));
        perr(p, field, "expected %s, got %s", expected, val);
}

/* Field path of key under prefix ("" for the top level), key cut to KEY_MAX. */
static void path_key(char *buf, size_t size, const char *prefix, const char *key)
{
        const char *ell = strlen(key) > KEY_MAX ? "..." : "";
        int cut = (int)cm_utf8_cut(key, KEY_MAX);
        if (*prefix)
                snprintf(buf, size, "%s.%.*s%s", prefix, cut, key, ell);
        else
                snprintf(buf, size, "%.*s%s", cut, key, ell);
}

#define PATH_MAX_LEN 256

/* Reads a JSON string into *dst (replacing it). JSON null keeps *dst: absent. */
static void read_string(pctx_t *p, char **dst, const json_t *v, const char *field)
{
        if (json_is_null(v))
                return;
        if (!json_is_string(v)) {
                type_error(p, field, "a string", v);
                return;
        }
        const char *s = json_string_value(v);
        if (strlen(s) != json_string_length(v)) {
                perr(p, field, "must not contain a NUL character");
                return;
        }
        char *copy = strdup(s);
        if (!copy) {
                p->nomem = p->failed = true;
                return;
        }
        free(*dst);
        *dst = copy;
}

static void free_strv(char **v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* Reads an array of strings into *dst / *count (replacing them); bad elements are
 * reported and left out. JSON null keeps *dst. */
static void read_string_list(pctx_t *p, char ***dst, size_t *count, const json_t *v,
                             const char *field)
{
        if (json_is_null(v))
                return;
        if (!json_is_array(v)) {
                type_error(p, field, "an array of strings", v);
                return;
        }
        size_t n = json_array_size(v), k = 0;
        char **out = calloc(n ? n : 1, sizeof(*out));
        if (!out) {
                p->nomem = p->failed = true;
                return;
        }
        for (size_t i = 0; i < n; i++) {
                char path[PATH_MAX_LEN];
                snprintf(path, sizeof(path), "%s[%zu]", field, i);
                const json_t *e = json_array_get(v, i);
                if (json_is_null(e)) {
                        type_error(p, path, "a string", e);
                        continue;
                }
                read_string(p, &out[k], e, path);
                if (out[k])
                        k++;
        }
        free_strv(*dst, *count);
        *dst = out;
        *count = k;
}

/* ---- nodes --------------------------------------------------------------------------
 */

void cm_node_destroy(cm_node_t *node)
{
        if (!node)
                return;
        free(node->name);
        free(node->address);
        free_strv(node->roles, node->role_count);
        memset(node, 0, sizeof(*node));
}

void cm_nodes_free(cm_node_t *nodes, size_t count)
{
        if (!nodes)
                return;
        for (size_t i = 0; i < count; i++)
                cm_node_destroy(&nodes[i]);
        free(nodes);
}

static void node_from_json(pctx_t *p, cm_node_t *node, const json_t *obj,
                           const char *prefix)
{
        char path[PATH_MAX_LEN];
        if (!json_is_object(obj)) {
                type_error(p, prefix, "an object", obj);
                return;
        }
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)obj, key, v)
        {
                path_key(path, sizeof(path), prefix, key);
                if (strcmp(key, "name") == 0)
                        read_string(p, &node->name, v, path);
                else if (strcmp(key, "address") == 0)
                        read_string(p, &node->address, v, path);
                else if (strcmp(key, "roles") == 0)
                        read_string_list(p, &node->roles, &node->role_count, v, path);
                else
                        perr(p, path, "unknown field");
        }
}

/* Reads arr into a new node array; every element gets a node (empty when it is not an
 * object) so that indexes in later messages match the request. */
static void nodes_read(pctx_t *p, cm_node_t **nodes, size_t *count, const json_t *arr)
{
        *nodes = NULL;
        *count = 0;
        if (json_is_null(arr))
                return;
        if (!json_is_array(arr)) {
                type_error(p, "nodes", "an array of objects", arr);
                return;
        }
        size_t n = json_array_size(arr);
        cm_node_t *out = calloc(n ? n : 1, sizeof(*out));
        if (!out) {
                p->nomem = p->failed = true;
                return;
        }
        for (size_t i = 0; i < n; i++) {
                char path[PATH_MAX_LEN];
                snprintf(path, sizeof(path), "nodes[%zu]", i);
                node_from_json(p, &out[i], json_array_get(arr, i), path);
        }
        *nodes = out;
        *count = n;
}

static int finish(pctx_t *p)
{
        if (p->nomem)
                errno = ENOMEM;
        return p->failed ? -1 : 0;
}

int cm_nodes_from_json(cm_node_t **nodes, size_t *count, const json_t *arr,
                       cm_field_errors_t *errs)
{
        pctx_t p = {.errs = errs};
        nodes_read(&p, nodes, count, arr);
        return finish(&p);
}

int cm_nodes_copy(cm_node_t **dst, const cm_node_t *src, size_t count)
{
        *dst = NULL;
        if (count == 0)
                return 0;
        cm_node_t *out = calloc(count, sizeof(*out));
        if (!out)
                return -1;
        for (size_t i = 0; i < count; i++) {
                const cm_node_t *s = &src[i];
                cm_node_t *d = &out[i];
                if ((s->name && !(d->name = strdup(s->name))) ||
                    (s->address && !(d->address = strdup(s->address))))
                        goto fail;
                if (s->role_count) {
                        d->roles = calloc(s->role_count, sizeof(*d->roles));
                        if (!d->roles)
                                goto fail;
                        d->role_count = s->role_count;
                        for (size_t r = 0; r < s->role_count; r++)
                                if (!(d->roles[r] = strdup(s->roles[r])))
                                        goto fail;
                }
        }
        *dst = out;
        return 0;
fail:
        cm_nodes_free(out, count);
        errno = ENOMEM;
        return -1;
}

static json_t *strv_to_json(char *const *v, size_t n)
{
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < n; i++) {
                if (json_array_append_new(arr, json_string(v[i])) != 0) {
                        json_decref(arr);
                        return NULL;
                }
        }
        return arr;
}

/* Sets key to a new reference; a NULL value (allocation failure) fails the whole object.
 */
static int set_new(json_t *obj, const char *key, json_t *v)
{
        return v ? json_object_set_new(obj, key, v) : -1;
}

/* Sets key only when s is set: an unset string has no JSON form but its absence. */
static int set_opt_string(json_t *obj, const char *key, const char *s)
{
        return s ? set_new(obj, key, json_string(s)) : 0;
}

static json_t *node_to_json(const cm_node_t *n)
{
        json_t *o = json_object();
        if (!o)
                return NULL;
        if (set_opt_string(o, "name", n->name) ||
            set_opt_string(o, "address", n->address) ||
            set_new(o, "roles", strv_to_json(n->roles, n->role_count))) {
                json_decref(o);
                return NULL;
        }
        return o;
}

json_t *cm_nodes_to_json(const cm_node_t *nodes, size_t count)
{
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < count; i++) {
                /* json_array_append_new() fails (and frees nothing) on NULL */
                if (json_array_append_new(arr, node_to_json(&nodes[i])) != 0) {
                        json_decref(arr);
                        return NULL;
                }
        }
        return arr;
}

/* ---- spec ---------------------------------------------------------------------------
 */

int cm_spec_init_defaults(cm_spec_t *spec)
{
        memset(spec, 0, sizeof(*spec));
        spec->ssh_port = CM_SPEC_DEFAULT_SSH_PORT;
        spec->kubernetes_version = strdup(CM_SPEC_DEFAULT_K8S_VERSION);
        spec->cluster_cidr = strdup(CM_SPEC_DEFAULT_CLUSTER_CIDR);
        spec->service_cidr = strdup(CM_SPEC_DEFAULT_SERVICE_CIDR);
        spec->cluster_dns_service_ip = strdup(CM_SPEC_DEFAULT_DNS_SERVICE_IP);
        spec->network_plugin = strdup(CM_SPEC_DEFAULT_NETWORK_PLUGIN);
        if (!spec->kubernetes_version || !spec->cluster_cidr || !spec->service_cidr ||
            !spec->cluster_dns_service_ip || !spec->network_plugin) {
                cm_spec_destroy(spec);
                errno = ENOMEM;
                return -1;
        }
        return 0;
}

void cm_spec_destroy(cm_spec_t *spec)
{
        if (!spec)
                return;
        free(spec->name);
        free(spec->ssh_user);
        free(spec->manager_address);
        free(spec->cluster_domain);
        free(spec->kubernetes_version);
        free(spec->cluster_cidr);
        free(spec->service_cidr);
        free(spec->cluster_dns_service_ip);
        free_strv(spec->cluster_upstream_dns, spec->cluster_upstream_dns_count);
        free(spec->network_plugin);
        cm_nodes_free(spec->nodes, spec->node_count);
        memset(spec, 0, sizeof(*spec));
}

static int dup_opt(char **dst, const char *src)
{
        *dst = NULL;
        return src && !(*dst = strdup(src)) ? -1 : 0;
}

int cm_spec_copy(cm_spec_t *dst, const cm_spec_t *src)
{
        memset(dst, 0, sizeof(*dst));
        dst->ssh_port = src->ssh_port;
        if (dup_opt(&dst->name, src->name) || dup_opt(&dst->ssh_user, src->ssh_user) ||
            dup_opt(&dst->manager_address, src->manager_address) ||
            dup_opt(&dst->cluster_domain, src->cluster_domain) ||
            dup_opt(&dst->kubernetes_version, src->kubernetes_version) ||
            dup_opt(&dst->cluster_cidr, src->cluster_cidr) ||
            dup_opt(&dst->service_cidr, src->service_cidr) ||
            dup_opt(&dst->cluster_dns_service_ip, src->cluster_dns_service_ip) ||
            dup_opt(&dst->network_plugin, src->network_plugin))
                goto fail;
        if (src->cluster_upstream_dns_count) {
                size_t n = src->cluster_upstream_dns_count;
                dst->cluster_upstream_dns = calloc(n, sizeof(char *));
                if (!dst->cluster_upstream_dns)
                        goto fail;
                dst->cluster_upstream_dns_count = n;
                for (size_t i = 0; i < n; i++)
                        if (dup_opt(&dst->cluster_upstream_dns[i],
                                    src->cluster_upstream_dns[i]))
                                goto fail;
        }
        if (cm_nodes_copy(&dst->nodes, src->nodes, src->node_count))
                goto fail;
        dst->node_count = src->node_count;
        return 0;
fail:
        cm_spec_destroy(dst);
        errno = ENOMEM;
        return -1;
}

static bool str_eq(const char *a, const char *b)
{
        return a == b || (a && b && strcmp(a, b) == 0);
}

static bool strv_eq(char *const *a, size_t na, char *const *b, size_t nb)
{
        if (na != nb)
                return false;
        for (size_t i = 0; i < na; i++)
                if (!str_eq(a[i], b[i]))
                        return false;
        return true;
}

bool cm_nodes_equal(const cm_node_t *a, size_t na, const cm_node_t *b, size_t nb)
{
        if (na != nb)
                return false;
        for (size_t i = 0; i < na; i++)
                if (!str_eq(a[i].name, b[i].name) ||
                    !str_eq(a[i].address, b[i].address) ||
                    !strv_eq(a[i].roles, a[i].role_count, b[i].roles, b[i].role_count))
                        return false;
        return true;
}

bool cm_spec_equal(const cm_spec_t *a, const cm_spec_t *b)
{
        return a->ssh_port == b->ssh_port && str_eq(a->name, b->name) &&
               str_eq(a->ssh_user, b->ssh_user) &&
               str_eq(a->manager_address, b->manager_address) &&
               str_eq(a->cluster_domain, b->cluster_domain) &&
               str_eq(a->kubernetes_version, b->kubernetes_version) &&
               str_eq(a->cluster_cidr, b->cluster_cidr) &&
               str_eq(a->service_cidr, b->service_cidr) &&
               str_eq(a->cluster_dns_service_ip, b->cluster_dns_service_ip) &&
               strv_eq(a->cluster_upstream_dns, a->cluster_upstream_dns_count,
                       b->cluster_upstream_dns, b->cluster_upstream_dns_count) &&
               str_eq(a->network_plugin, b->network_plugin) &&
               cm_nodes_equal(a->nodes, a->node_count, b->nodes, b->node_count);
}

/* The plain string fields of the top level, by JSON key. */
static const struct {
        const char *key;
        size_t off;
} spec_strings[] = {
    {"name", offsetof(cm_spec_t, name)},
    {"sshUser", offsetof(cm_spec_t, ssh_user)},
    {"clusterDomain", offsetof(cm_spec_t, cluster_domain)},
    {"kubernetesVersion", offsetof(cm_spec_t, kubernetes_version)},
    {"clusterCidr", offsetof(cm_spec_t, cluster_cidr)},
    {"serviceCidr", offsetof(cm_spec_t, service_cidr)},
    {"clusterDNSServiceIP", offsetof(cm_spec_t, cluster_dns_service_ip)},
};

static void read_port(pctx_t *p, int *dst, const json_t *v)
{
        if (json_is_null(v))
                return;
        if (!json_is_integer(v)) {
                type_error(p, "sshPort", "an integer", v);
                return;
        }
        json_int_t n = json_integer_value(v);
        /* The 1-65535 range is validation's; here only what cannot be stored is refused.
         */
        if (n < INT_MIN || n > INT_MAX) {
                perr(p, "sshPort", "out of range, got %" JSON_INTEGER_FORMAT, n);
                return;
        }
        *dst = (int)n;
}

static void read_network(pctx_t *p, cm_spec_t *spec, const json_t *v)
{
        if (json_is_null(v))
                return;
        if (!json_is_object(v)) {
                type_error(p, "network", "an object", v);
                return;
        }
        const char *key;
        json_t *e;
        json_object_foreach((json_t *)v, key, e)
        {
                char path[PATH_MAX_LEN];
                path_key(path, sizeof(path), "network", key);
                if (strcmp(key, "plugin") == 0)
                        read_string(p, &spec->network_plugin, e, path);
                else
                        perr(p, path, "unknown field");
        }
}

/* managerAddress is the name of DESIGN §4; singleCloudAddress the seed's. Either may be
 * given; both only when they agree, since picking one silently would hide a mistake. */
static void read_manager_address(pctx_t *p, cm_spec_t *spec, const json_t *obj)
{
        const json_t *m = json_object_get(obj, "managerAddress");
        const json_t *s = json_object_get(obj, "singleCloudAddress");
        if (m && json_is_null(m))
                m = NULL;
        if (s && json_is_null(s))
                s = NULL;
        if (m && s && json_is_string(m) && json_is_string(s) && !json_equal(m, s)) {
                char vm[VALUE_MAX + 8], vs[VALUE_MAX + 8];
                render(m, vm, sizeof(vm));
                render(s, vs, sizeof(vs));
                perr(p, "singleCloudAddress",
                     "is another name for managerAddress and must match it: got %s and "
                     "managerAddress %s",
                     vs, vm);
                return;
        }
        if (m)
                read_string(p, &spec->manager_address, m, "managerAddress");
        if (s && (!m || !json_is_string(m)))
                read_string(p, &spec->manager_address, s, "singleCloudAddress");
}

int cm_spec_from_json(cm_spec_t *spec, const json_t *obj, cm_field_errors_t *errs)
{
        pctx_t p = {.errs = errs};
        if (cm_spec_init_defaults(spec) != 0) {
                p.nomem = p.failed = true;
                return finish(&p);
        }
        if (!json_is_object(obj)) {
                type_error(&p, "$", "an object", obj);
                return finish(&p);
        }
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)obj, key, v)
        {
                bool done = false;
                for (size_t i = 0; i < sizeof(spec_strings) / sizeof(spec_strings[0]);
                     i++) {
                        if (strcmp(key, spec_strings[i].key) == 0) {
                                read_string(&p,
                                            (char **)((char *)spec + spec_strings[i].off),
                                            v, key);
                                done = true;
                                break;
                        }
                }
                if (done || strcmp(key, "sshKey") == 0 ||
                    strcmp(key, "managerAddress") == 0 ||
                    strcmp(key, "singleCloudAddress") == 0)
                        continue;
                if (strcmp(key, "sshPort") == 0) {
                        read_port(&p, &spec->ssh_port, v);
                } else if (strcmp(key, "clusterUpstreamDNS") == 0) {
                        read_string_list(&p, &spec->cluster_upstream_dns,
                                         &spec->cluster_upstream_dns_count, v, key);
                } else if (strcmp(key, "network") == 0) {
                        read_network(&p, spec, v);
                } else if (strcmp(key, "nodes") == 0) {
                        cm_nodes_free(spec->nodes, spec->node_count);
                        nodes_read(&p, &spec->nodes, &spec->node_count, v);
                } else {
                        char path[PATH_MAX_LEN];
                        path_key(path, sizeof(path), "", key);
                        perr(&p, path, "unknown field");
                }
        }
        read_manager_address(&p, spec, obj);
        return finish(&p);
}

json_t *cm_spec_to_json(const cm_spec_t *spec)
{
        json_t *o = json_object();
        if (!o)
                return NULL;
        json_t *net = json_object();
        if (set_opt_string(o, "name", spec->name) ||
            set_opt_string(o, "sshUser", spec->ssh_user) ||
            set_new(o, "sshPort", json_integer(spec->ssh_port)) ||
            set_opt_string(o, "managerAddress", spec->manager_address) ||
            set_opt_string(o, "clusterDomain", spec->cluster_domain) ||
            set_opt_string(o, "kubernetesVersion", spec->kubernetes_version) ||
            set_opt_string(o, "clusterCidr", spec->cluster_cidr) ||
            set_opt_string(o, "serviceCidr", spec->service_cidr) ||
            set_opt_string(o, "clusterDNSServiceIP", spec->cluster_dns_service_ip) ||
            set_new(o, "clusterUpstreamDNS",
                    strv_to_json(spec->cluster_upstream_dns,
                                 spec->cluster_upstream_dns_count)) ||
            !net || set_opt_string(net, "plugin", spec->network_plugin) ||
            set_new(o, "network", json_incref(net)) ||
            set_new(o, "nodes", cm_nodes_to_json(spec->nodes, spec->node_count))) {
                json_decref(net);
                json_decref(o);
                return NULL;
        }
        json_decref(net);
        return o;
}
