/*
 * cm_pki_store.c - a certificate bundle to and from its stored forms (public JSON, sealed
 * keys JSON), the admin kubeconfig, and the service CIDR's first address.
 *
 * Private keys are only ever in buffers this file allocates and wipes: the keys JSON is
 * written and read by hand (no jansson copies left behind in freed memory), and OpenSSL's
 * memory BIOs clear their buffers when freed.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cm/err.h"
#include "cm/pki.h"
#include "cm/utf8.h"
#include "cm_pki_int.h"

void cm_pki_secret_free(char *secret)
{
        if (!secret)
                return;
        OPENSSL_cleanse(secret, strlen(secret));
        free(secret);
}

/* ---- PEM -------------------------------------------------------------------------- */

X509 *cm_pki_cert_from_pem(const char *pem)
{
        BIO *bio = pem ? BIO_new_mem_buf(pem, -1) : NULL;
        X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        return x;
}

EVP_PKEY *cm_pki_key_from_pem(const char *pem)
{
        BIO *bio = pem ? BIO_new_mem_buf(pem, -1) : NULL;
        EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        return k;
}

static char *bio_text(BIO *bio, int ok)
{
        char *data = NULL, *out = NULL;
        long len = ok ? BIO_get_mem_data(bio, &data) : 0;
        if (len > 0 && (out = malloc((size_t)len + 1))) {
                memcpy(out, data, (size_t)len);
                out[len] = '\0';
        }
        BIO_free(bio); /* a memory BIO clears its buffer when freed */
        return out;
}

char *cm_pki_cert_to_pem(X509 *x)
{
        BIO *bio = BIO_new(BIO_s_mem());
        return bio ? bio_text(bio, PEM_write_bio_X509(bio, x)) : NULL;
}

char *cm_pki_key_to_pem(EVP_PKEY *key)
{
        BIO *bio = BIO_new(BIO_s_mem());
        return bio ? bio_text(bio, PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL,
                                                            NULL))
                   : NULL;
}

/* ---- bundle ----------------------------------------------------------------------- */

static void entry_clear(cm_pki_entry_t *e)
{
        free(e->name);
        free(e->cert_pem);
        cm_pki_secret_free(e->key_pem);
        *e = (cm_pki_entry_t){0};
}

void cm_pki_bundle_free(cm_pki_bundle_t *bundle)
{
        if (!bundle)
                return;
        for (size_t i = 0; i < bundle->count; i++)
                entry_clear(&bundle->entries[i]);
        free(bundle->entries);
        free(bundle);
}

const cm_pki_entry_t *cm_pki_bundle_find(const cm_pki_bundle_t *bundle, const char *name)
{
        for (size_t i = 0; bundle && i < bundle->count; i++)
                if (bundle->entries[i].name && strcmp(bundle->entries[i].name, name) == 0)
                        return &bundle->entries[i];
        return NULL;
}

char *cm_pki_bundle_public_json(const cm_pki_bundle_t *bundle)
{
        json_t *obj = json_object();
        char *out = NULL;
        if (!obj)
                return NULL;
        for (size_t i = 0; i < bundle->count; i++)
                if (json_object_set_new(obj, bundle->entries[i].name,
                                        json_string(bundle->entries[i].cert_pem)) != 0)
                        goto out;
        out = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT);
out:
        json_decref(obj);
        return out;
}

/* JSON string escape of s into out (when non-NULL); returns the length written/needed. */
static size_t escape(const char *s, char *out)
{
        return cm_utf8_json_escape(s, strlen(s), out);
}

char *cm_pki_bundle_keys_json(const cm_pki_bundle_t *bundle)
{
        size_t len = 2;
        for (size_t i = 0; i < bundle->count; i++)
                len += escape(bundle->entries[i].name, NULL) +
                       escape(bundle->entries[i].key_pem, NULL) + 6;
        char *out = malloc(len + 1), *p = out;
        if (!out)
                return NULL;
        *p++ = '{';
        for (size_t i = 0; i < bundle->count; i++) {
                if (i)
                        *p++ = ',';
                *p++ = '"';
                p += escape(bundle->entries[i].name, p);
                *p++ = '"';
                *p++ = ':';
                *p++ = '"';
                p += escape(bundle->entries[i].key_pem, p);
                *p++ = '"';
        }
        *p++ = '}';
        *p = '\0';
        return out;
}

/* ---- the keys JSON, read by hand ------------------------------------------------------
 */

typedef struct kparser_s {
        const char *s;
        size_t len, pos;
} kparser_t;

static void skip_ws(kparser_t *p)
{
        while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]) && p->s[p->pos])
                p->pos++;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* A JSON string of ASCII text (PEM and entry names are): malloc'd into *out. */
static int parse_string(kparser_t *p, char **out)
{
        if (p->pos >= p->len || p->s[p->pos] != '"')
                return -1;
        size_t start = ++p->pos, end = start;
        while (end < p->len && p->s[end] != '"')
                end += p->s[end] == '\\' ? 2 : 1;
        if (end >= p->len)
                return -1;
        char *v = malloc(end - start + 1), *w = v;
        if (!v)
                return -1;
        for (size_t i = start; i < end; i++) {
                unsigned char c = (unsigned char)p->s[i];
                if (c < 0x20)
                        goto bad;
                if (c != '\\') {
                        *w++ = (char)c;
                        continue;
                }
                c = (unsigned char)p->s[++i];
                const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
                const char *k = c ? strchr(from, c) : NULL;
                if (k) {
                        *w++ = to[k - from];
                } else if (c == 'u' && i + 4 < end) {
                        int code = 0;
                        for (int j = 1; j <= 4; j++) {
                                int h = hexval(p->s[i + (size_t)j]);
                                if (h < 0)
                                        goto bad;
                                code = code * 16 + h;
                        }
                        if (code == 0 || code > 0x7f)
                                goto bad;
                        *w++ = (char)code;
                        i += 4;
                } else
                        goto bad;
        }
        *w = '\0';
        p->pos = end + 1;
        *out = v;
        return 0;
bad:
        OPENSSL_cleanse(v, end - start + 1);
        free(v);
        return -1;
}

/* Fills entries[i].key_pem from the keys object; names must be certificates of entries.
 */
static int parse_keys(kparser_t *p, cm_pki_entry_t *entries, size_t count, char *errstr,
                      size_t errstr_size)
{
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos++] != '{')
                goto syntax;
        skip_ws(p);
        bool first = true;
        while (p->pos < p->len && p->s[p->pos] != '}') {
                char *name = NULL, *key = NULL;
                if (!first) {
                        if (p->s[p->pos++] != ',')
                                goto syntax;
                        skip_ws(p);
                }
                first = false;
                if (parse_string(p, &name) != 0)
                        goto syntax;
                skip_ws(p);
                if (p->pos >= p->len || p->s[p->pos++] != ':') {
                        free(name);
                        goto syntax;
                }
                skip_ws(p);
                if (parse_string(p, &key) != 0) {
                        free(name);
                        goto syntax;
                }
                skip_ws(p);
                cm_pki_entry_t *e = NULL;
                for (size_t i = 0; i < count && !e; i++)
                        if (strcmp(entries[i].name, name) == 0)
                                e = &entries[i];
                if (!e || e->key_pem) {
                        cm_seterr(errstr, errstr_size, "keys: entry \"%s\": %s", name,
                                  e ? "key given twice" : "key without a certificate");
                        free(name);
                        cm_pki_secret_free(key);
                        return -1;
                }
                e->key_pem = key;
                free(name);
        }
        if (p->pos >= p->len)
                goto syntax;
        p->pos++;
        skip_ws(p);
        if (p->pos < p->len && !(p->s[p->pos] == '\0' && p->pos + 1 == p->len))
                goto syntax;
        return 0;
syntax:
        cm_seterr(errstr, errstr_size, "keys: malformed JSON object at offset %zu",
                  p->pos);
        return -1;
}

int cm_pki_bundle_from_json(const char *public_json, const char *keys_json,
                            size_t keys_len, cm_pki_bundle_t **out, char *errstr,
                            size_t errstr_size)
{
        json_error_t jerr;
        json_t *pub =
            json_loads(public_json ? public_json : "", JSON_REJECT_DUPLICATES, &jerr);
        cm_pki_bundle_t *b = calloc(1, sizeof(*b));
        const char *k;
        json_t *v;
        *out = NULL;
        if (!b) {
                cm_seterr(errstr, errstr_size, "out of memory");
                goto fail;
        }
        if (!json_is_object(pub)) {
                cm_seterr(errstr, errstr_size, "certificates: not a JSON object%s%s",
                          pub ? "" : ": ", pub ? "" : jerr.text);
                goto fail;
        }
        if (!(b->entries = calloc(json_object_size(pub) + 1, sizeof(*b->entries)))) {
                cm_seterr(errstr, errstr_size, "out of memory");
                goto fail;
        }
        json_object_foreach(pub, k, v)
        {
                if (!json_is_string(v) || strstr(json_string_value(v), "PRIVATE KEY")) {
                        cm_seterr(
                            errstr, errstr_size,
                            "certificates: entry \"%s\" is not a certificate PEM string",
                            k);
                        goto fail;
                }
                cm_pki_entry_t *e = &b->entries[b->count++];
                if (!(e->name = strdup(k)) ||
                    !(e->cert_pem = strdup(json_string_value(v)))) {
                        cm_seterr(errstr, errstr_size, "out of memory");
                        goto fail;
                }
        }
        kparser_t kp = {keys_json ? keys_json : "", keys_json ? keys_len : 0, 0};
        if (parse_keys(&kp, b->entries, b->count, errstr, errstr_size) != 0)
                goto fail;
        for (size_t i = 0; i < b->count; i++)
                if (!b->entries[i].key_pem) {
                        cm_seterr(errstr, errstr_size,
                                  "keys: entry \"%s\": certificate without a key",
                                  b->entries[i].name);
                        goto fail;
                }
        json_decref(pub);
        *out = b;
        return 0;
fail:
        json_decref(pub);
        cm_pki_bundle_free(b);
        return -1;
}

/* ---- service IP ---------------------------------------------------------------------
 */

int cm_pki_first_service_ip(const char *cidr, char *out, size_t out_size, char *errstr,
                            size_t errstr_size)
{
        char addr[INET_ADDRSTRLEN];
        const char *slash = strchr(cidr, '/');
        struct in_addr in;
        char *end = NULL;
        long bits = slash ? strtol(slash + 1, &end, 10) : -1;
        size_t alen = slash ? (size_t)(slash - cidr) : 0;
        if (!slash || alen >= sizeof(addr) || end == slash + 1 || *end || bits < 0 ||
            bits > 32) {
                cm_seterr(errstr, errstr_size, "serviceCidr: \"%s\" is not an IPv4 CIDR",
                          cidr);
                return -1;
        }
        memcpy(addr, cidr, alen);
        addr[alen] = '\0';
        if (inet_pton(AF_INET, addr, &in) != 1) {
                cm_seterr(errstr, errstr_size, "serviceCidr: \"%s\" is not an IPv4 CIDR",
                          cidr);
                return -1;
        }
        if (bits > 30) {
                cm_seterr(errstr, errstr_size,
                          "serviceCidr: \"%s\" has no room for services (/%ld)", cidr,
                          bits);
                return -1;
        }
        uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
        in.s_addr = htonl((ntohl(in.s_addr) & mask) + 1);
        if (!inet_ntop(AF_INET, &in, out, (socklen_t)out_size)) {
                cm_seterr(errstr, errstr_size, "serviceCidr: output buffer too small");
                return -1;
        }
        return 0;
}

/* ---- admin kubeconfig ---------------------------------------------------------------
 */

static char *b64(const char *s)
{
        size_t n = strlen(s);
        char *out = malloc(4 * ((n + 2) / 3) + 1);
        if (out)
                EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
        return out;
}

char *cm_pki_admin_kubeconfig(const cm_spec_t *spec, const cm_pki_bundle_t *bundle,
                              char *errstr, size_t errstr_size)
{
        const cm_pki_entry_t *ca = cm_pki_bundle_find(bundle, CM_PKI_CA);
        const cm_pki_entry_t *admin = cm_pki_bundle_find(bundle, "kube-admin");
        const cm_node_t *cp = NULL;
        for (size_t i = 0; i < spec->node_count && !cp; i++)
                if (cm_pki_node_has_role(&spec->nodes[i], "controlplane"))
                        cp = &spec->nodes[i];
        if (!cp || !cp->address) {
                cm_seterr(errstr, errstr_size,
                          "nodes: no controlplane node for the server");
                return NULL;
        }
        if (!ca || !admin) {
                cm_seterr(errstr, errstr_size, "certificates: no \"%s\" entry",
                          ca ? "kube-admin" : CM_PKI_CA);
                return NULL;
        }
        char *ca64 = b64(ca->cert_pem), *crt64 = b64(admin->cert_pem);
        char *key64 = b64(admin->key_pem), *out = NULL;
        bool v6 = strchr(cp->address, ':') != NULL;
        if (ca64 && crt64 && key64) {
                const char *fmt = "apiVersion: v1\n"
                                  "kind: Config\n"
                                  "clusters:\n"
                                  "- name: \"%s\"\n"
                                  "  cluster:\n"
                                  "    server: \"https://%s%s%s:6443\"\n"
                                  "    certificate-authority-data: %s\n"
                                  "contexts:\n"
                                  "- name: \"%s\"\n"
                                  "  context:\n"
                                  "    cluster: \"%s\"\n"
                                  "    user: \"%s\"\n"
                                  "current-context: \"%s\"\n"
                                  "users:\n"
                                  "- name: \"%s\"\n"
                                  "  user:\n"
                                  "    client-certificate-data: %s\n"
                                  "    client-key-data: %s\n";
                const char *nm = spec->name, *lb = v6 ? "[" : "", *rb = v6 ? "]" : "";
                int len = snprintf(NULL, 0, fmt, nm, lb, cp->address, rb, ca64, nm, nm,
                                   nm, nm, nm, crt64, key64);
                if (len > 0 && (out = malloc((size_t)len + 1)))
                        snprintf(out, (size_t)len + 1, fmt, nm, lb, cp->address, rb, ca64,
                                 nm, nm, nm, nm, nm, crt64, key64);
        }
        if (!out)
                cm_seterr(errstr, errstr_size, "out of memory");
        free(ca64);
        free(crt64);
        cm_pki_secret_free(key64);
        return out;
}
