/*
 * zke_pki.c - step 3: the cluster's certificates (cm/pki.h), built on create and reused
 * from the stored bundle on update (renewed when they near expiry or their SANs change;
 * new nodes get theirs, removed nodes lose theirs).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zke_int.h"

static const char *change_name(cm_pki_change_kind_t k)
{
        return k == CM_PKI_CHANGE_NEW        ? "new"
               : k == CM_PKI_CHANGE_REISSUED ? "reissued"
                                             : "removed";
}

int zke_pki(zke_run_t *run)
{
        const zke_ctx_t *ctx = run->ctx;
        char err[1024];
        cm_pki_bundle_t *old = NULL;
        if (zke_canceled(run))
                return -1;
        zke_progress(run, "pki", NULL, "started", NULL, 0);
        if (ctx->pki_public_json && ctx->pki_keys_json) {
                size_t len =
                    ctx->pki_keys_len ? ctx->pki_keys_len : strlen(ctx->pki_keys_json);
                if (cm_pki_bundle_from_json(ctx->pki_public_json, ctx->pki_keys_json, len,
                                            &old, err, sizeof(err)) != 0) {
                        zke_fail(run, "pki: the stored certificates: %s", err);
                        return -1;
                }
        }
        cm_pki_changes_t ch = {0};
        int rc = cm_pki_bundle_build(ctx->spec, old, NULL, &run->bundle, &ch, err,
                                     sizeof(err));
        cm_pki_bundle_free(old);
        if (rc != 0) {
                zke_fail(run, "pki: %s", err);
                zke_progressf(run, "pki", NULL, "failed", "%s", err);
                return -1;
        }
        if (ch.count == 0) {
                zke_progressf(run, "pki", NULL, "unchanged",
                              "%zu certificates reused from the cluster state",
                              run->bundle->count);
        } else {
                size_t n = ch.count < 64 ? ch.count : 64;
                char(*buf)[256] = calloc(n, sizeof(*buf));
                const char **lines = calloc(n, sizeof(*lines));
                for (size_t k = 0; buf && lines && k < n; k++) {
                        snprintf(buf[k], sizeof(buf[k]), "%s: %s (%s)", ch.items[k].name,
                                 change_name(ch.items[k].kind),
                                 ch.items[k].reason ? ch.items[k].reason : "");
                        lines[k] = buf[k];
                }
                zke_progress(run, "pki", NULL, "changed", buf && lines ? lines : NULL, n);
                free(buf);
                free(lines);
        }
        cm_pki_changes_free(&ch);
        return 0;
}
