/*
 * zke_connect.c - step 1: an SSH session to every node at once, host keys checked
 * against the pins of ctx->host_keys (by address); a node seen for the first time has
 * its key trusted and added there for the caller to store. A changed key is refused with
 * both fingerprints (cm/ssh.h's message).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zke_int.h"

static int connect_one(zke_run_t *run, size_t i, void *arg, char *errstr, size_t size)
{
        (void)arg;
        zke_node_t *z = &run->nodes[i];
        const cm_spec_t *spec = run->ctx->spec;
        pthread_mutex_lock(&run->mu);
        const char *pin =
            json_string_value(json_object_get(run->ctx->host_keys, z->node->address));
        char *pin_copy = pin ? strdup(pin) : NULL;
        pthread_mutex_unlock(&run->mu);
        cm_ssh_target_t t = {
            .host = z->node->address,
            .port = spec->ssh_port,
            .user = spec->ssh_user,
            .key = run->key,
            .host_key = pin_copy,
            .connect_timeout_ms = run->connect_timeout_ms,
            .cancel = &run->cancel,
        };
        zke_progress(run, "connect", z->node->name, "started", NULL, 0);
        cm_ssh_err_t rc = cm_ssh_connect(&t, &z->ssh, errstr, size);
        free(pin_copy);
        if (rc != CM_SSH_OK) {
                zke_progressf(run, "connect", z->node->name, "failed", "%s", errstr);
                return rc;
        }
        if (cm_ssh_host_key_is_new(z->ssh)) {
                char fp[64] = "";
                cm_ssh_pubkey_fingerprint(cm_ssh_host_key(z->ssh), fp, sizeof(fp));
                pthread_mutex_lock(&run->mu);
                json_object_set_new(run->ctx->host_keys, z->node->address,
                                    json_string(cm_ssh_host_key(z->ssh)));
                pthread_mutex_unlock(&run->mu);
                zke_progressf(run, "connect", z->node->name, "done",
                              "connected to %s; host key %s trusted on first use and "
                              "pinned",
                              cm_ssh_peer(z->ssh), fp);
        } else {
                zke_progressf(run, "connect", z->node->name, "done",
                              "connected to %s; host key matches its pin",
                              cm_ssh_peer(z->ssh));
        }
        return 0;
}

int zke_connect(zke_run_t *run)
{
        /* Every node, the removed ones too: they are torn down later. */
        size_t idx[run->n ? run->n : 1];
        for (size_t i = 0; i < run->n; i++)
                idx[i] = i;
        return zke_each(run, "connect", idx, run->n, connect_one, NULL);
}
