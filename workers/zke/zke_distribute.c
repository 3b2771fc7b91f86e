/*
 * zke_distribute.c - step 4: every file the plan places on a node (certificates, keys,
 * component kubeconfigs, add-on manifests), by role. The node is asked for the sha256
 * and mode of what it has in one command; only files that differ are uploaded (SFTP,
 * atomic rename, exact mode), so a second run writes nothing.
 */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zke_int.h"

typedef struct {
        const cm_plan_file_t *f;
        const char *data; /* borrowed from the bundle or the plan */
        char remote[4096];
} place_t;

static const char *file_data(zke_run_t *run, const cm_plan_file_t *f, char *errstr,
                             size_t size)
{
        if (f->kind == CM_PLAN_FILE_TEXT)
                return f->content ? f->content : "";
        const cm_pki_entry_t *e = cm_pki_bundle_find(run->bundle, f->entry);
        const char *d = !e                             ? NULL
                        : f->kind == CM_PLAN_FILE_CERT ? e->cert_pem
                                                       : e->key_pem;
        if (!d)
                snprintf(errstr, size, "file %s: no certificate \"%s\" in the bundle",
                         f->path, f->entry ? f->entry : "");
        return d;
}

static void sha_hex(const char *data, char out[65])
{
        unsigned char md[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)data, strlen(data), md);
        for (int k = 0; k < SHA256_DIGEST_LENGTH; k++)
                snprintf(out + 2 * k, 3, "%02x", md[k]);
}

/* Does the node's "<sha> <mode> <path>" listing hold path with this sha and mode? */
static bool same(const char *listing, const char *path, const char *sha, unsigned mode)
{
        char want[4300];
        snprintf(want, sizeof(want), "%s %o %s\n", sha, mode, path);
        return listing && strstr(listing, want) != NULL;
}

static int distribute_one(zke_run_t *run, size_t i, void *arg, char *errstr, size_t size)
{
        (void)arg;
        zke_node_t *z = &run->nodes[i];
        const cm_plan_steps_t *st = run->steps;
        size_t nfiles = 0;
        for (size_t s = 0; s < st->count; s++)
                if (strcmp(st->steps[s].address, z->node->address) == 0)
                        nfiles += st->steps[s].file_count;
        place_t *pl = calloc(nfiles + 1, sizeof(*pl));
        char *cmd = malloc(64 + nfiles * 4200);
        if (!pl || !cmd) {
                free(pl);
                free(cmd);
                snprintf(errstr, size, "out of memory");
                return -1;
        }
        size_t n = 0;
        strcpy(cmd, "for f in");
        for (size_t s = 0; s < st->count; s++) {
                const cm_plan_step_t *step = &st->steps[s];
                if (strcmp(step->address, z->node->address) != 0)
                        continue;
                for (size_t k = 0; k < step->file_count; k++) {
                        const cm_plan_file_t *f = &step->files[k];
                        bool dup = false;
                        for (size_t j = 0; j < n; j++)
                                dup |= strcmp(pl[j].f->path, f->path) == 0;
                        if (dup)
                                continue;
                        pl[n].f = f;
                        snprintf(pl[n].remote, sizeof(pl[n].remote), "%s%s", z->root,
                                 f->path);
                        char *q = zke_shell_quote(pl[n].remote);
                        if (q) {
                                strcat(cmd, " ");
                                strcat(cmd, q);
                        }
                        free(q);
                        if (!(pl[n].data = file_data(run, f, errstr, size))) {
                                free(pl);
                                free(cmd);
                                return -1;
                        }
                        n++;
                }
        }
        strcat(cmd, "; do [ -f \"$f\" ] && echo \"$(sha256sum <\"$f\" | cut -c1-64) "
                    "$(stat -c %a \"$f\") $f\"; done; true");
        zke_progress(run, "distribute", z->node->name, "started", NULL, 0);
        char *listing = NULL;
        cm_ssh_err_t rc = zke_exec(run, i, cmd, NULL, &listing, errstr, size);
        free(cmd);
        size_t uploaded = 0;
        char lines[8][256];
        const char *lp[8];
        for (size_t k = 0; rc == CM_SSH_OK && k < n; k++) {
                char sha[65];
                sha_hex(pl[k].data, sha);
                if (same(listing, pl[k].remote, sha, pl[k].f->mode))
                        continue;
                if (zke_canceled(run)) {
                        rc = CM_SSH_ERR_CANCELED;
                        snprintf(errstr, size, "canceled");
                        break;
                }
                rc = cm_ssh_upload(z->ssh, pl[k].remote, pl[k].data, strlen(pl[k].data),
                                   (int)pl[k].f->mode, CM_SSH_UPLOAD_MKDIRS,
                                   run->timeout_ms, errstr, size);
                if (rc == CM_SSH_OK && uploaded < 8) {
                        snprintf(lines[uploaded], sizeof(lines[0]), "placed %s (%o)",
                                 pl[k].f->path, pl[k].f->mode);
                        lp[uploaded] = lines[uploaded];
                }
                if (rc == CM_SSH_OK)
                        uploaded++;
        }
        free(listing);
        free(pl);
        if (rc != CM_SSH_OK) {
                zke_progressf(run, "distribute", z->node->name,
                              rc == CM_SSH_ERR_CANCELED ? "canceled" : "failed", "%s",
                              errstr);
                return rc;
        }
        atomic_fetch_add(&run->changed, (int)uploaded);
        if (uploaded)
                zke_progress(run, "distribute", z->node->name, "changed", lp,
                             uploaded < 8 ? uploaded : 8);
        else
                zke_progressf(run, "distribute", z->node->name, "unchanged",
                              "all %zu files already in place", n);
        if (uploaded > 8)
                zke_progressf(run, "distribute", z->node->name, "changed",
                              "%zu files placed in all", uploaded);
        return 0;
}

int zke_distribute(zke_run_t *run)
{
        return zke_each_node(run, "distribute", false, distribute_one, NULL);
}
