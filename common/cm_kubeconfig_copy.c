/*
 * cm_kubeconfig_copy.c - the life of a parsed kubeconfig after cm_kubeconfig_parse():
 * owning copies and freeing, the secrets (CA, client certificate and key, token, and the
 * names, which say whom they belong to) wiped before their memory goes back.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cm/kubeconfig.h"

static void free_secret(void *p, size_t len)
{
        if (p) {
                OPENSSL_cleanse(p, len);
                free(p);
        }
}

static void free_str(char *s)
{
        if (s)
                free_secret(s, strlen(s));
}

void cm_kubeconfig_free(cm_kubeconfig_t *kc)
{
        if (!kc)
                return;
        free_str(kc->context);
        free_str(kc->cluster);
        free_str(kc->user);
        free_str(kc->server);
        free_secret(kc->ca_pem, kc->ca_pem_len);
        free_str(kc->tls_server_name);
        free_secret(kc->client_cert_pem, kc->client_cert_pem_len);
        free_secret(kc->client_key_pem, kc->client_key_pem_len);
        free_str(kc->token);
        OPENSSL_cleanse(kc, sizeof(*kc));
        free(kc);
}

static bool dup_bytes(unsigned char **dst, const unsigned char *src, size_t len)
{
        if (!src)
                return true;
        if (!(*dst = malloc(len + 1)))
                return false;
        memcpy(*dst, src, len);
        (*dst)[len] = '\0';
        return true;
}

static bool dup_str(char **dst, const char *src)
{
        return !src || (*dst = strdup(src)) != NULL;
}

cm_kubeconfig_t *cm_kubeconfig_dup(const cm_kubeconfig_t *kc)
{
        if (!kc)
                return NULL;
        cm_kubeconfig_t *d = calloc(1, sizeof(*d));
        if (!d)
                return NULL;
        d->ca_pem_len = kc->ca_pem_len;
        d->client_cert_pem_len = kc->client_cert_pem_len;
        d->client_key_pem_len = kc->client_key_pem_len;
        d->insecure_skip_tls_verify = kc->insecure_skip_tls_verify;
        if (!dup_str(&d->context, kc->context) || !dup_str(&d->cluster, kc->cluster) ||
            !dup_str(&d->user, kc->user) || !dup_str(&d->server, kc->server) ||
            !dup_str(&d->tls_server_name, kc->tls_server_name) ||
            !dup_str(&d->token, kc->token) ||
            !dup_bytes(&d->ca_pem, kc->ca_pem, kc->ca_pem_len) ||
            !dup_bytes(&d->client_cert_pem, kc->client_cert_pem,
                       kc->client_cert_pem_len) ||
            !dup_bytes(&d->client_key_pem, kc->client_key_pem, kc->client_key_pem_len)) {
                cm_kubeconfig_free(d);
                return NULL;
        }
        return d;
}
