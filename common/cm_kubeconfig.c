/*
 * cm_kubeconfig.c - a kubeconfig's current context, its cluster and its user (libyaml's
 * document loader), checked up front so that an import fails at once with a reason.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <yaml.h>

#include "cm/kubeconfig.h"

typedef struct {
        yaml_document_t *doc;
        char *err;
        size_t err_size;
} kc_ctx_t;

/* A named entry of clusters / contexts / users. */
typedef struct {
        const char *name;
        yaml_node_t *body; /* the "cluster" / "context" / "user" value, may be NULL */
        int index;
} kc_entry_t;

typedef struct {
        const char *list; /* "clusters" */
        const char *body; /* "cluster" */
        kc_entry_t *v;
        int n;
} kc_list_t;

const char *cm_kubeconfig_err2str(cm_kubeconfig_err_t err)
{
        switch (err) {
        case CM_KUBECONFIG_OK:
                return "ok";
        case CM_KUBECONFIG_ERR_ARG:
                return "invalid argument";
        case CM_KUBECONFIG_ERR_NOMEM:
                return "out of memory";
        case CM_KUBECONFIG_ERR_SYNTAX:
                return "not a YAML document";
        case CM_KUBECONFIG_ERR_INVALID:
                return "not a usable kubeconfig";
        }
        return "unknown error";
}

__attribute__((format(printf, 2, 3))) static cm_kubeconfig_err_t
fail(kc_ctx_t *c, const char *fmt, ...)
{
        if (c->err_size == 0)
                return CM_KUBECONFIG_ERR_INVALID;
        int n = snprintf(c->err, c->err_size, "kubeconfig: ");
        va_list ap;
        va_start(ap, fmt);
        if (n >= 0 && (size_t)n < c->err_size)
                vsnprintf(c->err + n, c->err_size - (size_t)n, fmt, ap);
        va_end(ap);
        return CM_KUBECONFIG_ERR_INVALID;
}

/* "value" quoted for an error message: at most 100 bytes, control characters as '?'. */
static const char *q(char buf[112], const char *s)
{
        size_t o = 0;
        buf[o++] = '"';
        for (size_t i = 0; s[i] && o < 104; i++)
                buf[o++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
        if (strlen(s) > 101) {
                memcpy(buf + o, "...", 3);
                o += 3;
        }
        buf[o++] = '"';
        buf[o] = '\0';
        return buf;
}

static const char *kind_name(const yaml_node_t *n)
{
        switch (n->type) {
        case YAML_SCALAR_NODE:
                return "a scalar";
        case YAML_SEQUENCE_NODE:
                return "a list";
        case YAML_MAPPING_NODE:
                return "a mapping";
        default:
                return "nothing";
        }
}

static cm_kubeconfig_err_t wrong_type(kc_ctx_t *c, const char *path, const yaml_node_t *n,
                                      const char *want)
{
        return fail(c, "%s: expected %s, found %s (line %zu column %zu)", path, want,
                    kind_name(n), n->start_mark.line + 1, n->start_mark.column + 1);
}

/* A plain scalar spelling YAML's null (or nothing at all). */
static bool is_null(const yaml_node_t *n)
{
        if (n == NULL)
                return true;
        if (n->type != YAML_SCALAR_NODE ||
            n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        const char *v = (const char *)n->data.scalar.value;
        return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
               !strcmp(v, "NULL");
}

/*
 * The value of key in mapping map, or NULL when absent. A key given twice is an error
 * (*e set): YAML forbids it, and libyaml would silently keep both.
 */
static yaml_node_t *map_get(kc_ctx_t *c, yaml_node_t *map, const char *key,
                            const char *path, cm_kubeconfig_err_t *e)
{
        yaml_node_t *found = NULL;
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
             p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
                if (!k || k->type != YAML_SCALAR_NODE ||
                    strcmp((const char *)k->data.scalar.value, key))
                        continue;
                if (found) {
                        *e = fail(c, "line %zu column %zu: %s: duplicate key \"%s\"",
                                  k->start_mark.line + 1, k->start_mark.column + 1, path,
                                  key);
                        return NULL;
                }
                found = yaml_document_get_node(c->doc, p->value);
        }
        return is_null(found) ? NULL : found;
}

/*
 * *out = the string value of key in map (NULL when absent). A value with a NUL byte or
 * a non-scalar value is an error naming path.key.
 */
static cm_kubeconfig_err_t get_str(kc_ctx_t *c, yaml_node_t *map, const char *key,
                                   const char *path, const char **out)
{
        cm_kubeconfig_err_t e = CM_KUBECONFIG_OK;
        char p[160];
        snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", key);
        *out = NULL;
        yaml_node_t *v = map_get(c, map, key, path, &e);
        if (e)
                return e;
        if (!v)
                return CM_KUBECONFIG_OK;
        if (v->type != YAML_SCALAR_NODE)
                return wrong_type(c, p, v, "a string");
        if (strlen((const char *)v->data.scalar.value) != v->data.scalar.length)
                return fail(c, "%s: contains a NUL character", p);
        *out = (const char *)v->data.scalar.value;
        return CM_KUBECONFIG_OK;
}

/* Whether key is in map with a non-null value (duplicates are the real lookup's concern).
 */
static bool has_key(kc_ctx_t *c, yaml_node_t *map, const char *key)
{
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
             p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
                if (k && k->type == YAML_SCALAR_NODE &&
                    !strcmp((const char *)k->data.scalar.value, key) &&
                    !is_null(yaml_document_get_node(c->doc, p->value)))
                        return true;
        }
        return false;
}

/* Reads list `l->list` (a list of {name, <l->body>} mappings) from the root. */
static cm_kubeconfig_err_t read_list(kc_ctx_t *c, yaml_node_t *root, kc_list_t *l)
{
        cm_kubeconfig_err_t e = CM_KUBECONFIG_OK;
        char path[64], b1[112];
        yaml_node_t *seq = map_get(c, root, l->list, "", &e);
        if (e || !seq)
                return e;
        if (seq->type != YAML_SEQUENCE_NODE)
                return wrong_type(c, l->list, seq, "a list");
        size_t n =
            (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
        l->v = calloc(n ? n : 1, sizeof(*l->v));
        if (!l->v)
                return CM_KUBECONFIG_ERR_NOMEM;
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *item =
                    yaml_document_get_node(c->doc, seq->data.sequence.items.start[i]);
                snprintf(path, sizeof(path), "%s[%zu]", l->list, i);
                if (!item || item->type != YAML_MAPPING_NODE)
                        return item ? wrong_type(c, path, item, "a mapping")
                                    : fail(c, "%s: empty entry", path);
                kc_entry_t *en = &l->v[l->n];
                if ((e = get_str(c, item, "name", path, &en->name)))
                        return e;
                if (!en->name || !*en->name)
                        return fail(c, "%s.name: missing", path);
                for (int j = 0; j < l->n; j++)
                        if (!strcmp(l->v[j].name, en->name))
                                return fail(c, "%s.name: duplicate name %s (also %s[%d])",
                                            path, q(b1, en->name), l->list, j);
                en->body = map_get(c, item, l->body, path, &e);
                if (e)
                        return e;
                if (en->body && en->body->type != YAML_MAPPING_NODE) {
                        char p2[96];
                        snprintf(p2, sizeof(p2), "%s.%s", path, l->body);
                        return wrong_type(c, p2, en->body, "a mapping");
                }
                en->index = (int)i;
                l->n++;
        }
        return CM_KUBECONFIG_OK;
}

static kc_entry_t *find(kc_list_t *l, const char *name)
{
        for (int i = 0; i < l->n; i++)
                if (!strcmp(l->v[i].name, name))
                        return &l->v[i];
        return NULL;
}

/* Chooses the context: the one asked for, current-context, or the only one. */
static cm_kubeconfig_err_t pick_context(kc_ctx_t *c, yaml_node_t *root, kc_list_t *ctxs,
                                        const char *want, kc_entry_t **out)
{
        cm_kubeconfig_err_t e;
        char b1[112];
        const char *cur;
        if ((e = get_str(c, root, "current-context", "", &cur)))
                return e;
        if (want) {
                if (!(*out = find(ctxs, want)))
                        return fail(c, "context %s is not defined in contexts",
                                    q(b1, want));
                return CM_KUBECONFIG_OK;
        }
        if (cur && *cur) {
                if (!(*out = find(ctxs, cur)))
                        return fail(c, "current-context %s is not defined in contexts",
                                    q(b1, cur));
                return CM_KUBECONFIG_OK;
        }
        if (ctxs->n == 0)
                return fail(c, "contexts: no context is defined");
        if (ctxs->n > 1) {
                char names[256] = "";
                for (int i = 0; i < ctxs->n && strlen(names) < 200; i++)
                        snprintf(names + strlen(names), sizeof(names) - strlen(names),
                                 "%s%s", i ? ", " : "", q(b1, ctxs->v[i].name));
                return fail(c,
                            "current-context is not set and there are %d contexts (%s): "
                            "set current-context",
                            ctxs->n, names);
        }
        *out = &ctxs->v[0];
        return CM_KUBECONFIG_OK;
}

/* Decodes standard base64 (padded or not; whitespace ignored) into a NUL-terminated
 * buffer. */
static cm_kubeconfig_err_t b64_decode(kc_ctx_t *c, const char *b64, const char *path,
                                      const char *owner, unsigned char **out,
                                      size_t *outlen)
{
        size_t cap = strlen(b64) / 4 * 3 + 4;
        unsigned char *buf = malloc(cap);
        if (!buf)
                return CM_KUBECONFIG_ERR_NOMEM;
        const int variants[] = {sodium_base64_VARIANT_ORIGINAL,
                                sodium_base64_VARIANT_ORIGINAL_NO_PADDING};
        for (size_t i = 0; i < 2; i++) {
                const char *end = NULL;
                if (sodium_base642bin(buf, cap - 1, b64, strlen(b64), " \t\r\n", outlen,
                                      &end, variants[i]) == 0 &&
                    end && *end == '\0' && *outlen > 0) {
                        buf[*outlen] = '\0';
                        *out = buf;
                        return CM_KUBECONFIG_OK;
                }
        }
        sodium_memzero(buf, cap);
        free(buf);
        return fail(c, "%s: not valid base64 (%s)", path, owner);
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
        (void)buf, (void)size, (void)rwflag, (void)u;
        return -1; /* never prompt on a terminal for an encrypted key */
}

/* Checks that pem holds at least one certificate; returns the first one (caller frees)
 * when first is not NULL. */
static bool pem_certs(const unsigned char *pem, size_t len, X509 **first)
{
        BIO *bio = BIO_new_mem_buf(pem, (int)len);
        int n = 0;
        X509 *x;
        while (bio && (x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL))) {
                if (n++ == 0 && first)
                        *first = x;
                else
                        X509_free(x);
        }
        BIO_free(bio);
        ERR_clear_error();
        return n > 0;
}

static cm_kubeconfig_err_t read_cluster(kc_ctx_t *c, kc_entry_t *en, cm_kubeconfig_t *kc)
{
        cm_kubeconfig_err_t e;
        char path[64], owner[128], b1[112];
        const char *server, *ca, *ca_file, *insecure, *sni;
        snprintf(path, sizeof(path), "clusters[%d].cluster", en->index);
        snprintf(owner, sizeof(owner), "cluster %s", q(b1, en->name));
        if (!en->body)
                return fail(c, "%s: missing (%s)", path, owner);
        if ((e = get_str(c, en->body, "server", path, &server)) ||
            (e = get_str(c, en->body, "certificate-authority-data", path, &ca)) ||
            (e = get_str(c, en->body, "certificate-authority", path, &ca_file)) ||
            (e = get_str(c, en->body, "insecure-skip-tls-verify", path, &insecure)) ||
            (e = get_str(c, en->body, "tls-server-name", path, &sni)))
                return e;

        if (!server || !*server)
                return fail(c, "%s.server: missing (%s)", path, owner);
        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL, *user = NULL, *query = NULL, *frag = NULL;
        CURLUcode uc =
            u ? curl_url_set(u, CURLUPART_URL, server, 0) : CURLUE_OUT_OF_MEMORY;
        if (uc == CURLUE_OK) {
                curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
                curl_url_get(u, CURLUPART_HOST, &host, 0);
                curl_url_get(u, CURLUPART_USER, &user, 0);
                curl_url_get(u, CURLUPART_QUERY, &query, 0);
                curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
        }
        /* curl also reads "https:/h" and "https:h" as host h: insist on the spelled-out
         * form, so the URL used is the one the operator reads */
        bool https = scheme && !strcmp(scheme, "https") && host && *host &&
                     !strncasecmp(server, "https://", 8);
        bool userinfo = user != NULL, extra = query || frag;
        curl_free(scheme);
        curl_free(host);
        curl_free(user);
        curl_free(query);
        curl_free(frag);
        curl_url_cleanup(u);
        if (uc == CURLUE_OUT_OF_MEMORY)
                return CM_KUBECONFIG_ERR_NOMEM;
        if (userinfo) /* the value is not echoed: it holds a credential */
                return fail(c,
                            "%s.server: a user name or password in the URL is not "
                            "supported (%s)",
                            path, owner);
        if (uc != CURLUE_OK || !https)
                return fail(c, "%s.server: %s is not an https:// URL (%s)", path,
                            q(b1, server), owner);
        if (extra)
                return fail(c, "%s.server: %s must not have a query or fragment (%s)",
                            path, q(b1, server), owner);
        if (!(kc->server = strdup(server)))
                return CM_KUBECONFIG_ERR_NOMEM;
        for (size_t n = strlen(kc->server); n > 8 && kc->server[n - 1] == '/'; n--)
                kc->server[n - 1] = '\0';

        if (insecure) {
                if (!strcasecmp(insecure, "true"))
                        kc->insecure_skip_tls_verify = true;
                else if (strcasecmp(insecure, "false"))
                        return fail(
                            c,
                            "%s.insecure-skip-tls-verify: %s is not true or false "
                            "(%s)",
                            path, q(b1, insecure), owner);
        }
        if (ca) {
                char p[96];
                snprintf(p, sizeof(p), "%s.certificate-authority-data", path);
                if ((e = b64_decode(c, ca, p, owner, &kc->ca_pem, &kc->ca_pem_len)))
                        return e;
                if (!pem_certs(kc->ca_pem, kc->ca_pem_len, NULL))
                        return fail(c,
                                    "%s: the decoded data holds no PEM certificate (%s)",
                                    p, owner);
        } else if (ca_file) {
                return fail(
                    c,
                    "%s.certificate-authority: file paths are not supported in an "
                    "imported kubeconfig; embed certificate-authority-data (%s)",
                    path, owner);
        }
        if (kc->ca_pem && kc->insecure_skip_tls_verify)
                return fail(c,
                            "%s: insecure-skip-tls-verify and certificate-authority-data "
                            "exclude each other (%s)",
                            path, owner);
        if (sni && *sni) {
                for (const char *s = sni; *s; s++)
                        if (!isalnum((unsigned char)*s) && !strchr(".-_", *s))
                                return fail(
                                    c, "%s.tls-server-name: %s is not a host name (%s)",
                                    path, q(b1, sni), owner);
                if (!(kc->tls_server_name = strdup(sni)))
                        return CM_KUBECONFIG_ERR_NOMEM;
        }
        return CM_KUBECONFIG_OK;
}

/* Decodes and checks the client certificate and key: PEM, unexpired, matching. */
static cm_kubeconfig_err_t read_client_cert(kc_ctx_t *c, const char *path,
                                            const char *owner, const char *cert,
                                            const char *key, cm_kubeconfig_t *kc)
{
        cm_kubeconfig_err_t e;
        char p[96];
        snprintf(p, sizeof(p), "%s.client-certificate-data", path);
        if ((e = b64_decode(c, cert, p, owner, &kc->client_cert_pem,
                            &kc->client_cert_pem_len)))
                return e;
        snprintf(p, sizeof(p), "%s.client-key-data", path);
        if ((e = b64_decode(c, key, p, owner, &kc->client_key_pem,
                            &kc->client_key_pem_len)))
                return e;

        X509 *x = NULL;
        if (!pem_certs(kc->client_cert_pem, kc->client_cert_pem_len, &x))
                return fail(c,
                            "%s.client-certificate-data: the decoded data holds no PEM "
                            "certificate (%s)",
                            path, owner);
        BIO *bio = BIO_new_mem_buf(kc->client_key_pem, (int)kc->client_key_pem_len);
        EVP_PKEY *pk =
            bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
        BIO_free(bio);
        ERR_clear_error();
        bool encrypted = strstr((const char *)kc->client_key_pem, "ENCRYPTED") != NULL;
        e = CM_KUBECONFIG_OK;
        if (!pk)
                e = fail(c, "%s.client-key-data: %s (%s)", path,
                         encrypted ? "the key is encrypted; embed an unencrypted key"
                                   : "the decoded data holds no PEM private key",
                         owner);
        else if (X509_check_private_key(x, pk) != 1)
                e = fail(c,
                         "%s.client-key-data: the key does not belong to "
                         "client-certificate-data (%s)",
                         path, owner);
        else if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
                char when[64] = "?";
                BIO *mb = BIO_new(BIO_s_mem());
                if (mb && ASN1_TIME_print(mb, X509_get0_notAfter(x)) > 0) {
                        int n = BIO_read(mb, when, sizeof(when) - 1);
                        when[n > 0 ? n : 0] = '\0';
                }
                BIO_free(mb);
                e = fail(c,
                         "%s.client-certificate-data: the certificate expired on %s (%s)",
                         path, when, owner);
        }
        ERR_clear_error();
        EVP_PKEY_free(pk);
        X509_free(x);
        return e;
}

static cm_kubeconfig_err_t read_user(kc_ctx_t *c, kc_entry_t *en, cm_kubeconfig_t *kc)
{
        cm_kubeconfig_err_t e;
        char path[64], owner[128], b1[112];
        const char *cert, *key, *token, *cert_file, *key_file;
        snprintf(path, sizeof(path), "users[%d].user", en->index);
        snprintf(owner, sizeof(owner), "user %s", q(b1, en->name));
        if (!en->body)
                return fail(c, "%s: missing (%s)", path, owner);
        yaml_node_t *u = en->body;
        if ((e = get_str(c, u, "client-certificate-data", path, &cert)) ||
            (e = get_str(c, u, "client-key-data", path, &key)) ||
            (e = get_str(c, u, "token", path, &token)) ||
            (e = get_str(c, u, "client-certificate", path, &cert_file)) ||
            (e = get_str(c, u, "client-key", path, &key_file)))
                return e;

        const char *embed =
            "file paths are not supported in an imported kubeconfig; embed";
        if (cert && !key)
                return key_file ? fail(c, "%s.client-key: %s client-key-data (%s)", path,
                                       embed, owner)
                                : fail(c,
                                       "%s: client-certificate-data without "
                                       "client-key-data (%s)",
                                       path, owner);
        if (key && !cert)
                return cert_file ? fail(c,
                                        "%s.client-certificate: %s "
                                        "client-certificate-data (%s)",
                                        path, embed, owner)
                                 : fail(c,
                                        "%s: client-key-data without "
                                        "client-certificate-data (%s)",
                                        path, owner);
        if (cert && (e = read_client_cert(c, path, owner, cert, key, kc)))
                return e;
        if (token) {
                for (const char *s = token; *s; s++)
                        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
                                return fail(
                                    c,
                                    "%s.token: contains a character not allowed in "
                                    "a bearer token (%s)",
                                    path, owner);
                if (!(kc->token = strdup(token)))
                        return CM_KUBECONFIG_ERR_NOMEM;
        }
        if (cert || token)
                return CM_KUBECONFIG_OK;

        /* No usable credential: say why, naming what is there instead. */
        if (cert_file)
                return fail(c, "%s.client-certificate: %s client-certificate-data (%s)",
                            path, embed, owner);
        if (key_file)
                return fail(c, "%s.client-key: %s client-key-data (%s)", path, embed,
                            owner);
        if (has_key(c, u, "tokenFile"))
                return fail(c, "%s.tokenFile: %s token (%s)", path, embed, owner);
        const char *plugins[] = {"exec", "auth-provider"};
        for (size_t i = 0; i < 2; i++)
                if (has_key(c, u, plugins[i]))
                        return fail(
                            c,
                            "%s.%s: credential plugins are not supported in an "
                            "imported kubeconfig; embed "
                            "client-certificate-data/client-key-data or a token (%s)",
                            path, plugins[i], owner);
        if (has_key(c, u, "username") || has_key(c, u, "password"))
                return fail(
                    c,
                    "%s: basic authentication (username/password) is not supported; "
                    "embed client-certificate-data/client-key-data or a token (%s)",
                    path, owner);
        return fail(c, "%s: no client-certificate-data/client-key-data or token (%s)",
                    path, owner);
}

/* The whole check, on a loaded document. */
static cm_kubeconfig_err_t read_doc(kc_ctx_t *c, const char *want, cm_kubeconfig_t *kc)
{
        cm_kubeconfig_err_t e;
        char b1[112], b2[112], b3[112];
        yaml_node_t *root = yaml_document_get_root_node(c->doc);
        if (!root || is_null(root))
                return fail(c, "the document is empty");
        if (root->type != YAML_MAPPING_NODE)
                return fail(c,
                            "expected a mapping at the top level, found %s (line %zu "
                            "column %zu)",
                            kind_name(root), root->start_mark.line + 1,
                            root->start_mark.column + 1);
        const char *kind;
        if ((e = get_str(c, root, "kind", "", &kind)))
                return e;
        if (kind && strcmp(kind, "Config"))
                return fail(c, "kind: %s is not Config", q(b1, kind));

        kc_list_t clusters = {"clusters", "cluster", NULL, 0};
        kc_list_t contexts = {"contexts", "context", NULL, 0};
        kc_list_t users = {"users", "user", NULL, 0};
        kc_entry_t *ctx, *cl, *us;
        const char *cl_name, *us_name;
        char path[64], owner[128];
        if ((e = read_list(c, root, &clusters)) || (e = read_list(c, root, &contexts)) ||
            (e = read_list(c, root, &users)) ||
            (e = pick_context(c, root, &contexts, want, &ctx)))
                goto out;
        snprintf(path, sizeof(path), "contexts[%d].context", ctx->index);
        snprintf(owner, sizeof(owner), "context %s", q(b1, ctx->name));
        if (!ctx->body) {
                e = fail(c, "%s: missing (%s)", path, owner);
                goto out;
        }
        if ((e = get_str(c, ctx->body, "cluster", path, &cl_name)) ||
            (e = get_str(c, ctx->body, "user", path, &us_name)))
                goto out;
        if (!cl_name || !*cl_name) {
                e = fail(c, "%s.cluster: missing (%s)", path, owner);
                goto out;
        }
        if (!(cl = find(&clusters, cl_name))) {
                e = fail(c, "context %s names cluster %s which is not defined",
                         q(b1, ctx->name), q(b2, cl_name));
                goto out;
        }
        if (!us_name || !*us_name) {
                e = fail(c, "%s.user: missing (%s)", path, owner);
                goto out;
        }
        if (!(us = find(&users, us_name))) {
                e = fail(c, "context %s names user %s which is not defined",
                         q(b1, ctx->name), q(b3, us_name));
                goto out;
        }
        if (!(kc->context = strdup(ctx->name)) || !(kc->cluster = strdup(cl->name)) ||
            !(kc->user = strdup(us->name))) {
                e = CM_KUBECONFIG_ERR_NOMEM;
                goto out;
        }
        if ((e = read_cluster(c, cl, kc)) == CM_KUBECONFIG_OK)
                e = read_user(c, us, kc);
out:
        free(clusters.v);
        free(contexts.v);
        free(users.v);
        return e;
}

/* Zeroes what libyaml holds of the input before it frees it (it has no allocator hook,
 * so its scanner's short-lived temporaries stay out of reach). */
static void scrub_document(yaml_document_t *doc)
{
        for (yaml_node_t *n = doc->nodes.start; n && n < doc->nodes.top; n++)
                if (n->type == YAML_SCALAR_NODE && n->data.scalar.value)
                        sodium_memzero(n->data.scalar.value, n->data.scalar.length);
}

static void scrub_parser(yaml_parser_t *p)
{
        if (p->buffer.start)
                sodium_memzero(p->buffer.start,
                               (size_t)(p->buffer.end - p->buffer.start));
        if (p->raw_buffer.start)
                sodium_memzero(p->raw_buffer.start,
                               (size_t)(p->raw_buffer.end - p->raw_buffer.start));
        for (yaml_token_t *t = p->tokens.head; t && t < p->tokens.tail; t++)
                if (t->type == YAML_SCALAR_TOKEN && t->data.scalar.value)
                        sodium_memzero(t->data.scalar.value, t->data.scalar.length);
}

static cm_kubeconfig_err_t syntax_error(kc_ctx_t *c, const yaml_parser_t *p)
{
        const char *problem = p->problem ? p->problem : "cannot parse the document";
        if (p->error == YAML_MEMORY_ERROR)
                return CM_KUBECONFIG_ERR_NOMEM;
        if (p->error == YAML_READER_ERROR)
                fail(c, "byte %zu: %s", p->problem_offset, problem);
        else if (p->context)
                fail(c, "line %zu column %zu: %s (%s at line %zu column %zu)",
                     p->problem_mark.line + 1, p->problem_mark.column + 1, problem,
                     p->context, p->context_mark.line + 1, p->context_mark.column + 1);
        else
                fail(c, "line %zu column %zu: %s", p->problem_mark.line + 1,
                     p->problem_mark.column + 1, problem);
        return CM_KUBECONFIG_ERR_SYNTAX;
}

cm_kubeconfig_err_t cm_kubeconfig_parse(const void *data, size_t len, const char *context,
                                        cm_kubeconfig_t **out, char *errstr,
                                        size_t errstr_size)
{
        kc_ctx_t c = {NULL, errstr, errstr_size};
        if (errstr_size)
                errstr[0] = '\0';
        if (!out)
                return CM_KUBECONFIG_ERR_ARG;
        *out = NULL;
        if (!data) {
                fail(&c, "no data");
                return CM_KUBECONFIG_ERR_ARG;
        }
        if (len > CM_KUBECONFIG_MAX_BYTES) {
                fail(&c, "%zu bytes is larger than the %d allowed", len,
                     CM_KUBECONFIG_MAX_BYTES);
                return CM_KUBECONFIG_ERR_SYNTAX;
        }

        yaml_parser_t parser;
        yaml_document_t doc, extra;
        if (!yaml_parser_initialize(&parser))
                return CM_KUBECONFIG_ERR_NOMEM;
        yaml_parser_set_input_string(&parser, data, len);
        cm_kubeconfig_err_t e;
        if (!yaml_parser_load(&parser, &doc)) {
                e = syntax_error(&c, &parser);
                scrub_parser(&parser);
                yaml_parser_delete(&parser);
                return e;
        }
        c.doc = &doc;
        cm_kubeconfig_t *kc = calloc(1, sizeof(*kc));
        e = kc ? read_doc(&c, context, kc) : CM_KUBECONFIG_ERR_NOMEM;
        if (e == CM_KUBECONFIG_OK) {
                /* A second document would be ignored by us but not by the user. */
                if (!yaml_parser_load(&parser, &extra)) {
                        e = syntax_error(&c, &parser);
                } else {
                        yaml_node_t *r = yaml_document_get_root_node(&extra);
                        if (r)
                                e = fail(&c,
                                         "line %zu: a second YAML document; a kubeconfig "
                                         "is one document",
                                         r->start_mark.line + 1);
                        scrub_document(&extra);
                        yaml_document_delete(&extra);
                }
        }
        scrub_document(&doc);
        yaml_document_delete(&doc);
        scrub_parser(&parser);
        yaml_parser_delete(&parser);
        if (e != CM_KUBECONFIG_OK) {
                cm_kubeconfig_free(kc);
                return e;
        }
        *out = kc;
        return CM_KUBECONFIG_OK;
}
