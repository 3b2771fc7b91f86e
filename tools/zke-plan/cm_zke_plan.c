/*
 * cm-zke-plan - renders the zke install plan for a cluster spec, without connecting to
 * any node, for review and tests; and, with --pki, makes (or renews) the cluster's
 * certificates into a folder.
 *
 *   cm-zke-plan [--update [--previous PREV.json]] [--contents]
 *               [--cgroup-driver D] SPEC.json
 *   cm-zke-plan --pki DIR SPEC.json
 *
 * The plan is printed as JSON (cm/plan.h). --pki DIR reuses DIR/certificates.json and
 * DIR/keys.json when present, writes them back, plus one <name>.pem / <name>-key.pem per
 * entry and the admin kubeconfig.yaml (keys and kubeconfig mode 0600), and prints what
 * changed, one "new|reissued|removed NAME: reason" line each. Exits 0 on success, 1 on an
 * error (message on stderr), 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cm/pki.h"
#include "cm/plan.h"
#include "cm/spec.h"

static void usage(FILE *out)
{
        fprintf(
            out,
            "usage: cm-zke-plan [--update [--previous PREV.json]] [--contents]\n"
            "                   [--cgroup-driver D] SPEC.json\n"
            "       cm-zke-plan --pki DIR SPEC.json\n"
            "\n"
            "Prints the zke install plan (ordered per-node steps, files and container\n"
            "commands) for a cluster spec as JSON, without connecting to any node.\n"
            "\n"
            "  -u, --update             plan for an existing cluster (no add-ons)\n"
            "  -P, --previous PREV.json with --update: the spec before it (nodes new to\n"
            "                           the etcd plane join it one by one; without it,\n"
            "                           every etcd node counts as new)\n"
            "  -c, --contents           include the content of rendered text files\n"
            "  -g, --cgroup-driver D    the nodes' container runtime cgroup driver\n"
            "  -p, --pki DIR            make or renew the certificates in DIR instead\n"
            "  -h, --help               show this help\n");
}

static int load_spec(const char *path, cm_spec_t *spec)
{
        json_error_t jerr;
        json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (!j) {
                fprintf(stderr, "cm-zke-plan: %s: line %d: %s\n", path, jerr.line,
                        jerr.text);
                return -1;
        }
        cm_field_errors_t errs = {0};
        int rc = cm_spec_from_json(spec, j, &errs);
        json_decref(j);
        for (size_t i = 0; i < errs.count; i++)
                fprintf(stderr, "cm-zke-plan: %s: %s: %s\n", path, errs.items[i].field,
                        errs.items[i].message);
        cm_field_errors_clear(&errs);
        return rc;
}

/* Reads a whole file into a malloc'd string; NULL with errno ENOENT when absent. */
static char *read_all(const char *path, size_t *len)
{
        FILE *f = fopen(path, "rb");
        if (!f)
                return NULL;
        size_t cap = 4096, n = 0;
        char *buf = malloc(cap);
        while (buf) {
                size_t r = fread(buf + n, 1, cap - n - 1, f);
                n += r;
                if (n + 1 < cap)
                        break;
                char *b = realloc(buf, cap * 2);
                if (!b) {
                        free(buf);
                        buf = NULL;
                        break;
                }
                buf = b;
                cap *= 2;
        }
        fclose(f);
        if (buf) {
                buf[n] = '\0';
                *len = n;
        }
        return buf;
}

/* Writes text to dir/name with mode, replacing it atomically. */
static int write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
        char path[1024], tmp[1100];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
        size_t len = strlen(text);
        if (fd < 0 || fchmod(fd, mode) != 0 || write(fd, text, len) != (ssize_t)len ||
            close(fd) != 0 || rename(tmp, path) != 0) {
                fprintf(stderr, "cm-zke-plan: %s: %s\n", path, strerror(errno));
                if (fd >= 0)
                        unlink(tmp);
                return -1;
        }
        return 0;
}

static int do_pki(const char *dir, const cm_spec_t *spec)
{
        char err[512], path[1024];
        size_t plen = 0, klen = 0;
        cm_pki_bundle_t *old = NULL, *b = NULL;
        cm_pki_changes_t ch = {0};
        char *pub = NULL, *keys = NULL, *kc = NULL;
        int rc = 1;
        snprintf(path, sizeof(path), "%s/certificates.json", dir);
        char *old_pub = read_all(path, &plen);
        snprintf(path, sizeof(path), "%s/keys.json", dir);
        char *old_keys = read_all(path, &klen);
        if (old_pub || old_keys) {
                if (!old_pub || !old_keys ||
                    cm_pki_bundle_from_json(old_pub, old_keys, klen, &old, err,
                                            sizeof(err)) != 0) {
                        fprintf(stderr, "cm-zke-plan: %s: %s\n", dir,
                                old_pub && old_keys
                                    ? err
                                    : "certificates.json and keys.json go together");
                        goto out;
                }
        }
        if (cm_pki_bundle_build(spec, old, NULL, &b, &ch, err, sizeof(err)) != 0) {
                fprintf(stderr, "cm-zke-plan: %s\n", err);
                goto out;
        }
        if (!(pub = cm_pki_bundle_public_json(b)) ||
            !(keys = cm_pki_bundle_keys_json(b)) ||
            !(kc = cm_pki_admin_kubeconfig(spec, b, err, sizeof(err)))) {
                fprintf(stderr, "cm-zke-plan: %s\n", kc ? "out of memory" : err);
                goto out;
        }
        for (size_t i = 0; i < b->count; i++) {
                char name[300];
                snprintf(name, sizeof(name), "%s.pem", b->entries[i].name);
                if (write_file(dir, name, b->entries[i].cert_pem, 0644))
                        goto out;
                snprintf(name, sizeof(name), "%s-key.pem", b->entries[i].name);
                if (write_file(dir, name, b->entries[i].key_pem, 0600))
                        goto out;
        }
        for (size_t i = 0; i < ch.count; i++) {
                const cm_pki_change_t *c = &ch.items[i];
                if (c->kind == CM_PKI_CHANGE_REMOVED) {
                        char name[300];
                        snprintf(name, sizeof(name), "%s/%s.pem", dir, c->name);
                        unlink(name);
                        snprintf(name, sizeof(name), "%s/%s-key.pem", dir, c->name);
                        unlink(name);
                }
        }
        if (write_file(dir, "kubeconfig.yaml", kc, 0600) ||
            write_file(dir, "keys.json", keys, 0600) ||
            write_file(dir, "certificates.json", pub, 0644))
                goto out;
        for (size_t i = 0; i < ch.count; i++) {
                const cm_pki_change_t *c = &ch.items[i];
                printf("%s %s: %s\n",
                       c->kind == CM_PKI_CHANGE_NEW        ? "new"
                       : c->kind == CM_PKI_CHANGE_REISSUED ? "reissued"
                                                           : "removed",
                       c->name, c->reason);
        }
        rc = 0;
out:
        free(old_pub);
        cm_pki_secret_free(old_keys);
        free(pub);
        cm_pki_secret_free(keys);
        cm_pki_secret_free(kc);
        cm_pki_changes_free(&ch);
        cm_pki_bundle_free(old);
        cm_pki_bundle_free(b);
        return rc;
}

static int do_plan(const cm_spec_t *spec, const cm_plan_options_t *o, bool contents)
{
        char err[1024];
        cm_plan_steps_t *steps = NULL;
        cm_plan_t *plan = cm_plan_load(spec->kubernetes_version, err, sizeof(err));
        if (!plan || cm_plan_render(plan, spec, o, &steps, err, sizeof(err)) != 0) {
                fprintf(stderr, "cm-zke-plan: %s\n", err);
                cm_plan_free(plan);
                return 1;
        }
        json_t *j = cm_plan_steps_to_json(steps, contents);
        int rc =
            j && json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0 ? 0 : 1;
        if (rc == 0)
                putchar('\n');
        json_decref(j);
        cm_plan_steps_free(steps);
        cm_plan_free(plan);
        return rc;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            {"update", no_argument, NULL, 'u'},
            {"previous", required_argument, NULL, 'P'},
            {"contents", no_argument, NULL, 'c'},
            {"cgroup-driver", required_argument, NULL, 'g'},
            {"pki", required_argument, NULL, 'p'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        cm_plan_options_t o = {0};
        bool contents = false;
        const char *pki = NULL, *previous = NULL;
        int c;
        while ((c = getopt_long(argc, argv, "uP:cg:p:h", opts, NULL)) != -1) {
                switch (c) {
                case 'u':
                        o.update = true;
                        break;
                case 'P':
                        previous = optarg;
                        break;
                case 'c':
                        contents = true;
                        break;
                case 'g':
                        o.cgroup_driver = optarg;
                        break;
                case 'p':
                        pki = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc - 1) {
                fprintf(stderr, "cm-zke-plan: give exactly one SPEC.json\n");
                usage(stderr);
                return 2;
        }
        if (previous && !o.update) {
                fprintf(stderr, "cm-zke-plan: --previous goes with --update\n");
                usage(stderr);
                return 2;
        }
        cm_spec_t spec = {0}, prev = {0};
        int rc = 1;
        if (load_spec(argv[optind], &spec) != 0 ||
            (previous && load_spec(previous, &prev) != 0))
                goto out;
        o.previous_nodes = prev.nodes;
        o.previous_node_count = prev.node_count;
        rc = pki ? do_pki(pki, &spec) : do_plan(&spec, &o, contents);
out:
        cm_spec_destroy(&spec);
        cm_spec_destroy(&prev);
        return rc;
}
