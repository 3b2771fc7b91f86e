/*
 * cm_plan_render.c - a plan and a spec to the ordered per-node steps: etcd plane, control
 * plane, worker plane (each on the nodes holding one of the plane's roles, in spec
 * order), then the add-ons on the first controlplane node.
 *
 * Every spec value that reaches a command line or a manifest is checked against a plain
 * character set first, and every argument is shell-quoted, so a value can never become
 * a second command or flag.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/embedded.h"
#include "cm/pki.h"
#include "cm/plan.h"
#include "cm_plan_int.h"

typedef struct strv_s {
        char **v;
        size_t n;
} strv_t;

typedef struct ctx_s {
        const cm_plan_t *plan;
        const cm_spec_t *spec;
        cm_plan_vars_t vars;
        char *err;
        size_t errsize;
} ctx_t;

static int strv_push(strv_t *s, char *owned)
{
        char **v = owned ? realloc(s->v, (s->n + 1) * sizeof(char *)) : NULL;
        if (!v) {
                free(owned);
                return -1;
        }
        s->v = v;
        s->v[s->n++] = owned;
        return 0;
}

static void strv_free(strv_t *s)
{
        for (size_t i = 0; i < s->n; i++)
                free(s->v[i]);
        free(s->v);
        *s = (strv_t){0};
}

static bool plain(const char *s)
{
        if (!s || !*s)
                return false;
        for (; *s; s++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567"
                            "89.-:/_",
                            *s))
                        return false;
        return true;
}

/* Shell word: as is when it holds only safe characters, else single-quoted. */
static size_t quote(const char *s, char *out)
{
        size_t n = 0;
        bool safe = *s != '\0';
        for (const char *c = s; *c && safe; c++)
                safe =
                    strchr(
                        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        "_@%+=:,./-",
                        *c) != NULL;
        if (safe) {
                n = strlen(s);
                if (out)
                        memcpy(out, s, n);
                return n;
        }
        if (out)
                out[n] = '\'';
        n++;
        for (const char *c = s; *c; c++) {
                if (*c == '\'') {
                        if (out)
                                memcpy(out + n, "'\\''", 4);
                        n += 4;
                } else {
                        if (out)
                                out[n] = *c;
                        n++;
                }
        }
        if (out)
                out[n] = '\'';
        return n + 1;
}

static char *join(const strv_t *s)
{
        size_t len = 1;
        for (size_t i = 0; i < s->n; i++)
                len += quote(s->v[i], NULL) + 1;
        char *out = malloc(len), *p = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < s->n; i++) {
                if (i)
                        *p++ = ' ';
                p += quote(s->v[i], p);
        }
        *p = '\0';
        return out;
}

static char *fmt(const char *f, const char *a)
{
        size_t n = strlen(f) + strlen(a) + 1;
        char *out = malloc(n);
        if (out)
                snprintf(out, n, f, a);
        return out;
}

static char *fill(ctx_t *c, const char *tmpl, const char *where)
{
        return cm_plan_fill(tmpl, &c->vars, where, c->err, c->errsize);
}

/* Pushes fill(tmpl) onto s; -1 on an error (errstr set). */
static int push_filled(ctx_t *c, strv_t *s, const char *tmpl, const char *where)
{
        char *v = fill(c, tmpl, where);
        if (!v)
                return -1;
        return strv_push(s, v) == 0
                   ? 0
                   : (cm_plan_seterr(c->err, c->errsize, "out of memory"), -1);
}

/* Pushes flag then each string of arr (filled), or flag+value joined when flag ends '='.
 */
static int push_list(ctx_t *c, strv_t *s, const json_t *arr, const char *flag,
                     const char *where)
{
        size_t i;
        json_t *it;
        json_array_foreach(arr, i, it)
        {
                if (!json_is_string(it)) {
                        cm_plan_seterr(c->err, c->errsize, "%s[%zu]: not a string", where,
                                       i);
                        return -1;
                }
                if (flag && strv_push(s, strdup(flag)) != 0)
                        return -1;
                if (push_filled(c, s, json_string_value(it), where) != 0)
                        return -1;
        }
        return 0;
}

static const char *image_of(ctx_t *c, const json_t *obj, const char *where)
{
        const char *key = json_string_value(json_object_get(obj, "image"));
        const char *img = key ? json_string_value(json_object_get(
                                    json_object_get(c->plan->root, "images"), key))
                              : NULL;
        if (!img)
                cm_plan_seterr(c->err, c->errsize,
                               "%s.image: \"%s\" is not in the plan's images", where,
                               key ? key : "");
        return img;
}

static int render_container(ctx_t *c, const json_t *js, const char *where,
                            cm_plan_container_t *out)
{
        const char *name = json_string_value(json_object_get(js, "name"));
        const char *img = image_of(c, js, where);
        json_t *run_j = json_object_get(js, "run");
        strv_t a = {0};
        int rc = -1;
        if (!name || !plain(name)) {
                cm_plan_seterr(c->err, c->errsize, "%s.name: missing or not plain",
                               where);
                return -1;
        }
        if (!img)
                return -1;
        out->run = !json_is_false(run_j);
        if (strv_push(&a, strdup("docker")) ||
            strv_push(&a, strdup(out->run ? "run" : "create")))
                goto nomem;
        if (out->run && strv_push(&a, strdup("-d")))
                goto nomem;
        if (strv_push(&a, strdup("--name")) || strv_push(&a, strdup(name)))
                goto nomem;
        if (out->run && strv_push(&a, strdup("--restart=unless-stopped")))
                goto nomem;
        const char *net = json_string_value(json_object_get(js, "network"));
        const char *pid = json_string_value(json_object_get(js, "pid"));
        if (net && strv_push(&a, fmt("--network=%s", net)))
                goto nomem;
        if (pid && strv_push(&a, fmt("--pid=%s", pid)))
                goto nomem;
        if (json_is_true(json_object_get(js, "privileged")) &&
            strv_push(&a, strdup("--privileged")))
                goto nomem;
        if (push_list(c, &a, json_object_get(js, "volumesFrom"), "--volumes-from",
                      where) ||
            push_list(c, &a, json_object_get(js, "binds"), "-v", where) ||
            push_list(c, &a, json_object_get(js, "env"), "-e", where))
                goto out;
        const char *ep = json_string_value(json_object_get(js, "entrypoint"));
        if (ep &&
            (strv_push(&a, strdup("--entrypoint")) || push_filled(c, &a, ep, where)))
                goto out;
        if (strv_push(&a, strdup(img)) ||
            push_list(c, &a, json_object_get(js, "args"), NULL, where))
                goto out;
        char *plain_cmd = join(&a);
        out->hash = plain_cmd ? cm_plan_sha256_hex(plain_cmd, 16) : NULL;
        free(plain_cmd);
        if (!out->hash)
                goto nomem;
        /* after the digest: read on the first start only, they may change freely */
        if (push_list(c, &a, json_object_get(js, "bootstrapArgs"), NULL, where))
                goto out;
        /* the label goes right after the name; the hash is of the command without it */
        size_t n = strlen(CM_PLAN_HASH_LABEL) + strlen(out->hash) + 2;
        size_t at =
            out->run ? 5 : 4; /* docker run -d --name N | docker create --name N */
        strv_t b = {0};
        for (size_t i = 0; i < a.n; i++) {
                if (i == at && (strv_push(&b, strdup("--label")) ||
                                strv_push(&b, malloc(n)) == -1)) {
                        strv_free(&b);
                        goto nomem;
                }
                if (i == at)
                        snprintf(b.v[b.n - 1], n, "%s=%s", CM_PLAN_HASH_LABEL, out->hash);
                if (strv_push(&b, strdup(a.v[i]))) {
                        strv_free(&b);
                        goto nomem;
                }
        }
        out->create = join(&b);
        strv_free(&b);
        out->name = strdup(name);
        out->image = strdup(img);
        size_t pn = 2 * strlen(img) + 64;
        if ((out->pull = malloc(pn)))
                snprintf(out->pull, pn,
                         "docker image inspect %s >/dev/null 2>&1 || docker pull %s", img,
                         img);
        out->inspect = fmt("docker inspect --type=container %s", name);
        out->remove = fmt("docker rm -f %s", name);
        out->start = fmt("docker start %s", name);
        if (!out->name || !out->image || !out->create || !out->pull || !out->inspect ||
            !out->remove || !out->start)
                goto nomem;
        rc = 0;
        goto out;
nomem:
        cm_plan_seterr(c->err, c->errsize, "out of memory");
out:
        strv_free(&a);
        return rc;
}

static int parse_mode(const json_t *m, unsigned *out)
{
        const char *s = json_string_value(m);
        char *end;
        unsigned long v = s ? strtoul(s, &end, 8) : 0;
        if (!s || !*s || *end || v > 07777)
                return -1;
        *out = (unsigned)v;
        return 0;
}

static int render_file(ctx_t *c, const json_t *js, const char *where, cm_plan_file_t *f)
{
        const char *path = json_string_value(json_object_get(js, "path"));
        const char *cert = json_string_value(json_object_get(js, "cert"));
        const char *key = json_string_value(json_object_get(js, "key"));
        const char *tname = json_string_value(json_object_get(js, "template"));
        if (!path || parse_mode(json_object_get(js, "mode"), &f->mode) != 0 ||
            (!!cert + !!key + !!tname) != 1) {
                cm_plan_seterr(
                    c->err, c->errsize,
                    "%s: needs path, an octal mode string and one of cert, key, "
                    "template",
                    where);
                return -1;
        }
        if (!(f->path = fill(c, path, where)))
                return -1;
        if (cert || key) {
                f->kind = cert ? CM_PLAN_FILE_CERT : CM_PLAN_FILE_KEY;
                if (key && (f->mode & 0077)) {
                        cm_plan_seterr(c->err, c->errsize,
                                       "%s: key file %s must not be readable by others "
                                       "(mode %04o)",
                                       where, f->path, f->mode);
                        return -1;
                }
                return (f->entry = fill(c, cert ? cert : key, where)) ? 0 : -1;
        }
        f->kind = CM_PLAN_FILE_TEXT;
        const char *tmpl = json_string_value(
            json_object_get(json_object_get(c->plan->root, "templates"), tname));
        if (!tmpl) {
                cm_plan_seterr(c->err, c->errsize,
                               "%s.template: \"%s\" is not in the plan's "
                               "templates",
                               where, tname);
                return -1;
        }
        size_t mark = c->vars.count;
        const char *k;
        json_t *v;
        int rc = 0;
        json_object_foreach(json_object_get(js, "vars"), k, v)
        {
                char *val =
                    json_is_string(v) ? fill(c, json_string_value(v), where) : NULL;
                if (!val || cm_plan_vars_set(&c->vars, k, val) != 0) {
                        if (!json_is_string(v))
                                cm_plan_seterr(c->err, c->errsize,
                                               "%s.vars.%s: not a string", where, k);
                        free(val);
                        rc = -1;
                        break;
                }
                free(val);
        }
        if (rc == 0 && !(f->content = fill(c, tmpl, where)))
                rc = -1;
        cm_plan_vars_truncate(&c->vars, mark);
        return rc;
}

static bool has_any_role(const cm_node_t *n, const json_t *roles)
{
        size_t i;
        json_t *r;
        json_array_foreach(roles, i, r)
        {
                if (json_is_string(r) && cm_pki_node_has_role(n, json_string_value(r)))
                        return true;
        }
        return false;
}

static cm_plan_step_t *new_step(cm_plan_steps_t *s, const char *plane, const cm_node_t *n)
{
        cm_plan_step_t *steps = realloc(s->steps, (s->count + 1) * sizeof(*steps));
        if (!steps)
                return NULL;
        s->steps = steps;
        cm_plan_step_t *st = &steps[s->count++];
        *st = (cm_plan_step_t){0};
        st->plane = strdup(plane);
        st->node = strdup(n->name);
        st->address = strdup(n->address);
        return st->plane && st->node && st->address ? st : NULL;
}

/* The plane's "join" commands for a node an update adds to it. */
static int render_join(ctx_t *c, const json_t *plane, size_t pi, cm_plan_step_t *st)
{
        const json_t *j = json_object_get(plane, "join");
        static const char *keys[] = {"members", "peer", "add", "health"};
        char **dst[] = {&st->join.members, &st->join.peer, &st->join.add,
                        &st->join.health};
        char where[160];
        if (!j)
                return 0;
        for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
                snprintf(where, sizeof(where), "plan %s: planes[%zu].join.%s",
                         c->plan->name, pi, keys[i]);
                const char *t = json_string_value(json_object_get(j, keys[i]));
                if (!t) {
                        cm_plan_seterr(c->err, c->errsize, "%s: missing", where);
                        return -1;
                }
                if (!(*dst[i] = fill(c, t, where)))
                        return -1;
        }
        return 0;
}

static int render_plane(ctx_t *c, const json_t *plane, size_t pi, const cm_node_t *n,
                        bool joins, cm_plan_steps_t *out)
{
        const char *pname = json_string_value(json_object_get(plane, "name"));
        char where[160];
        cm_plan_step_t *st = new_step(out, pname, n);
        json_t *files = json_object_get(plane, "files"),
               *conts = json_object_get(plane, "containers");
        if (!st)
                goto nomem;
        if (!(st->files = calloc(json_array_size(files) + 1, sizeof(*st->files))) ||
            !(st->containers =
                  calloc(json_array_size(conts) + 1, sizeof(*st->containers))))
                goto nomem;
        for (size_t i = 0; i < json_array_size(files); i++) {
                snprintf(where, sizeof(where), "plan %s: planes[%zu].files[%zu]",
                         c->plan->name, pi, i);
                st->file_count++;
                if (render_file(c, json_array_get(files, i), where, &st->files[i]) != 0)
                        return -1;
        }
        for (size_t i = 0; i < json_array_size(conts); i++) {
                const json_t *js = json_array_get(conts, i);
                json_t *only = json_object_get(js, "onlyRoles"),
                       *except = json_object_get(js, "exceptRoles");
                if ((only && !has_any_role(n, only)) ||
                    (except && has_any_role(n, except)))
                        continue;
                snprintf(where, sizeof(where), "plan %s: planes[%zu].containers[%zu]",
                         c->plan->name, pi, i);
                if (render_container(c, js, where,
                                     &st->containers[st->container_count++]) != 0)
                        return -1;
        }
        return joins ? render_join(c, plane, pi, st) : 0;
nomem:
        cm_plan_seterr(c->err, c->errsize, "out of memory");
        return -1;
}

/* The add-on manifests, placed on the first controlplane node and applied there. */
static int render_addons(ctx_t *c, const cm_node_t *n, cm_plan_steps_t *out)
{
        const json_t *ad = json_object_get(c->plan->root, "addons");
        const json_t *items = json_object_get(ad, "items");
        const char *dir = json_string_value(json_object_get(ad, "dir"));
        char where[160], path[512], mpath[160];
        if (!ad)
                return 0;
        snprintf(where, sizeof(where), "plan %s: addons", c->plan->name);
        if (!dir || !json_is_array(items) ||
            !json_is_object(json_object_get(ad, "apply"))) {
                cm_plan_seterr(c->err, c->errsize, "%s: needs dir, apply {} and items []",
                               where);
                return -1;
        }
        cm_plan_step_t *st = new_step(out, "addons", n);
        if (!st ||
            !(st->files = calloc(json_array_size(items) + 1, sizeof(*st->files))) ||
            !(st->commands = calloc(json_array_size(items) + 1, sizeof(char *)))) {
                cm_plan_seterr(c->err, c->errsize, "out of memory");
                return -1;
        }
        for (size_t i = 0; i < json_array_size(items); i++) {
                const json_t *it = json_array_get(items, i);
                const char *name = json_string_value(json_object_get(it, "name"));
                const char *mf = json_string_value(json_object_get(it, "manifest"));
                const char *np = json_string_value(json_object_get(it, "networkPlugin"));
                snprintf(where, sizeof(where), "plan %s: addons.items[%zu]",
                         c->plan->name, i);
                if (!name || !plain(name) || !mf) {
                        cm_plan_seterr(c->err, c->errsize, "%s: needs name and manifest",
                                       where);
                        return -1;
                }
                if (np && strcmp(np, c->spec->network_plugin ? c->spec->network_plugin
                                                             : "") != 0)
                        continue;
                snprintf(mpath, sizeof(mpath), "plans/%s", mf);
                const cm_embedded_file_t *ef = cm_embedded_find(mpath);
                if (!ef) {
                        cm_plan_seterr(c->err, c->errsize,
                                       "%s.manifest: \"%s\" is not embedded", where, mf);
                        return -1;
                }
                snprintf(path, sizeof(path), "%s/%s.yaml", dir, name);
                cm_plan_file_t *f = &st->files[st->file_count++];
                f->kind = CM_PLAN_FILE_TEXT;
                f->mode = 0644;
                if (!(f->path = strdup(path)) ||
                    !(f->content = fill(c, (const char *)ef->data, mpath)))
                        return -1;
                size_t mark = c->vars.count;
                strv_t a = {0};
                int rc = cm_plan_vars_set(&c->vars, "manifest_path", path);
                json_t *apply = json_object_get(ad, "apply");
                const char *img = rc == 0 ? image_of(c, apply, where) : NULL;
                if (!img || strv_push(&a, strdup("docker")) ||
                    strv_push(&a, strdup("run")) || strv_push(&a, strdup("--rm")) ||
                    strv_push(&a, strdup("--network=host")) ||
                    push_list(c, &a, json_object_get(apply, "binds"), "-v", where) ||
                    strv_push(&a, strdup(img)) ||
                    push_list(c, &a, json_object_get(apply, "args"), NULL, where) ||
                    !(st->commands[st->command_count] = join(&a)))
                        rc = -1;
                else
                        st->command_count++;
                strv_free(&a);
                cm_plan_vars_truncate(&c->vars, mark);
                if (rc != 0)
                        return -1;
        }
        return 0;
}

static char *joined_nodes(const cm_spec_t *s, const char *role, const char *pre,
                          const char *post, bool with_name)
{
        size_t cap = 1;
        for (size_t i = 0; i < s->node_count; i++)
                cap += strlen(s->nodes[i].name) + strlen(s->nodes[i].address) +
                       strlen(pre) + strlen(post) + 8;
        char *out = calloc(1, cap);
        for (size_t i = 0; out && i < s->node_count; i++) {
                const cm_node_t *n = &s->nodes[i];
                if (!cm_pki_node_has_role(n, role))
                        continue;
                size_t l = strlen(out);
                snprintf(out + l, cap - l, "%s%s%s%s%s%s", l ? "," : "",
                         with_name ? "etcd-" : "", with_name ? n->name : "",
                         with_name ? "=" : "", pre, n->address);
                l = strlen(out);
                snprintf(out + l, cap - l, "%s", post);
        }
        return out;
}

static int set_globals(ctx_t *c, const cm_plan_options_t *o)
{
        const cm_spec_t *s = c->spec;
        char svc[16], dns[512] = "";
        struct {
                const char *field, *value;
        } plainv[] = {{"name", s->name},
                      {"clusterDomain", s->cluster_domain},
                      {"clusterCidr", s->cluster_cidr},
                      {"serviceCidr", s->service_cidr},
                      {"clusterDNSServiceIP", s->cluster_dns_service_ip}};
        for (size_t i = 0; i < sizeof(plainv) / sizeof(*plainv); i++)
                if (!plain(plainv[i].value)) {
                        cm_plan_seterr(c->err, c->errsize,
                                       "%s: \"%s\" is empty or has "
                                       "characters a plan cannot use",
                                       plainv[i].field,
                                       plainv[i].value ? plainv[i].value : "");
                        return -1;
                }
        for (size_t i = 0; i < s->node_count; i++)
                if (!plain(s->nodes[i].name) || !plain(s->nodes[i].address)) {
                        cm_plan_seterr(
                            c->err, c->errsize,
                            "nodes[%zu]: name \"%s\" or address \"%s\" unusable", i,
                            s->nodes[i].name ? s->nodes[i].name : "",
                            s->nodes[i].address ? s->nodes[i].address : "");
                        return -1;
                }
        for (size_t i = 0; i < s->cluster_upstream_dns_count; i++) {
                if (!plain(s->cluster_upstream_dns[i])) {
                        cm_plan_seterr(c->err, c->errsize,
                                       "clusterUpstreamDNS[%zu]: \"%s\" unusable", i,
                                       s->cluster_upstream_dns[i]);
                        return -1;
                }
                size_t l = strlen(dns);
                snprintf(dns + l, sizeof(dns) - l, "%s%s", l ? " " : "",
                         s->cluster_upstream_dns[i]);
        }
        if (cm_pki_first_service_ip(s->service_cidr, svc, sizeof(svc), c->err,
                                    c->errsize) != 0)
                return -1;
        char *eps = joined_nodes(s, "etcd", "https://", ":2379", false);
        char *init = joined_nodes(s, "etcd", "https://", ":2380", true);
        char *cps = joined_nodes(s, "controlplane", "", "", false);
        int rc = -1;
        if (!eps || !init || !cps)
                goto out;
        if (!*eps || !*cps) {
                cm_plan_seterr(c->err, c->errsize,
                               "nodes: need an etcd and a controlplane node");
                goto out;
        }
        struct {
                const char *n, *v;
        } g[] = {{"cluster_name", s->name},
                 {"cluster_domain", s->cluster_domain},
                 {"cluster_cidr", s->cluster_cidr},
                 {"service_cidr", s->service_cidr},
                 {"cluster_dns_ip", s->cluster_dns_service_ip},
                 {"kubernetes_service_ip", svc},
                 {"upstream_dns", *dns ? dns : "/etc/resolv.conf"},
                 {"etcd_endpoints", eps},
                 {"etcd_initial_cluster", init},
                 {"controlplane_addresses", cps},
                 {"cgroup_driver", o->cgroup_driver ? o->cgroup_driver : "systemd"},
                 {"kubernetes_version", json_string_value(json_object_get(
                                            c->plan->root, "kubernetesVersion"))}};
        for (size_t i = 0; i < sizeof(g) / sizeof(*g); i++)
                if (cm_plan_vars_set(&c->vars, g[i].n, g[i].v) != 0)
                        goto nomem;
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(c->plan->root, "images"), k, v)
        {
                char nm[128];
                snprintf(nm, sizeof(nm), "images.%s", k);
                if (!json_is_string(v) ||
                    cm_plan_vars_set(&c->vars, nm, json_string_value(v)))
                        goto nomem;
        }
        rc = 0;
        goto out;
nomem:
        cm_plan_seterr(c->err, c->errsize,
                       "plan %s: images: not all strings, or out of memory",
                       c->plan->name);
out:
        free(eps);
        free(init);
        free(cps);
        return rc;
}

int cm_plan_render(const cm_plan_t *plan, const cm_spec_t *spec,
                   const cm_plan_options_t *opts, cm_plan_steps_t **out, char *errstr,
                   size_t errstr_size)
{
        cm_plan_options_t o = opts ? *opts : (cm_plan_options_t){0};
        ctx_t c = {.plan = plan, .spec = spec, .err = errstr, .errsize = errstr_size};
        cm_plan_steps_t *s = calloc(1, sizeof(*s));
        const json_t *planes = json_object_get(plan->root, "planes");
        *out = NULL;
        if (!s || !(s->plan = strdup(plan->name)) ||
            !(s->kubernetes_version = strdup(
                  json_string_value(json_object_get(plan->root, "kubernetesVersion"))))) {
                cm_plan_seterr(errstr, errstr_size, "out of memory");
                goto fail;
        }
        if (set_globals(&c, &o) != 0)
                goto fail;
        size_t base = c.vars.count;
        for (size_t p = 0; p < json_array_size(planes); p++) {
                const json_t *plane = json_array_get(planes, p);
                if (!json_string_value(json_object_get(plane, "name")) ||
                    !json_is_array(json_object_get(plane, "roles"))) {
                        cm_plan_seterr(errstr, errstr_size,
                                       "plan %s: planes[%zu]: needs name and "
                                       "roles []",
                                       plan->name, p);
                        goto fail;
                }
                for (size_t i = 0; i < spec->node_count; i++) {
                        const cm_node_t *n = &spec->nodes[i];
                        if (!has_any_role(n, json_object_get(plane, "roles")))
                                continue;
                        /* new to the plane: not a node before, or one without its
                         * roles (a worker that becomes an etcd node too) */
                        bool joins = o.update;
                        for (size_t k = 0; joins && k < o.previous_node_count; k++) {
                                const cm_node_t *pn = &o.previous_nodes[k];
                                joins =
                                    !pn->address ||
                                    strcmp(pn->address, n->address) != 0 ||
                                    !has_any_role(pn, json_object_get(plane, "roles"));
                        }
                        if (cm_plan_vars_set(&c.vars, "node_name", n->name) ||
                            cm_plan_vars_set(&c.vars, "node_address", n->address) ||
                            cm_plan_vars_set(&c.vars, "etcd_initial_cluster_state",
                                             joins ? "existing" : "new")) {
                                cm_plan_seterr(errstr, errstr_size, "out of memory");
                                goto fail;
                        }
                        if (render_plane(&c, plane, p, n, joins, s) != 0)
                                goto fail;
                        cm_plan_vars_truncate(&c.vars, base);
                }
        }
        if (!o.update) {
                for (size_t i = 0; i < spec->node_count; i++)
                        if (cm_pki_node_has_role(&spec->nodes[i], "controlplane")) {
                                if (render_addons(&c, &spec->nodes[i], s) != 0)
                                        goto fail;
                                break;
                        }
        }
        cm_plan_vars_truncate(&c.vars, 0);
        *out = s;
        return 0;
fail:
        cm_plan_vars_truncate(&c.vars, 0);
        cm_plan_steps_free(s);
        return -1;
}
