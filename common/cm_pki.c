/*
 * cm_pki.c - issues the cluster's certificates and decides, on update, which to keep.
 *
 * The wanted set is computed from the spec as profiles (name, CN, O, SANs, usage); an old
 * certificate is kept only when it still satisfies its profile exactly, so a change of
 * node addresses or of the service CIDR reissues precisely the certificates that name
 * them.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cm/err.h"
#include "cm/pki.h"
#include "cm_pki_int.h"

#define MAX_SANS 64

typedef enum { USE_CA, USE_SERVER_PEER, USE_SERVER, USE_CLIENT, USE_SIGNING } usage_t;

typedef struct profile_s {
        char name[160];
        char cn[160];
        const char *org; /* NULL: none */
        usage_t usage;
        char *sans[MAX_SANS]; /* "IP:1.2.3.4" / "DNS:name", sorted, owned */
        size_t san_count;
} profile_t;

bool cm_pki_node_has_role(const cm_node_t *node, const char *role)
{
        for (size_t i = 0; i < node->role_count; i++)
                if (node->roles[i] && strcmp(node->roles[i], role) == 0)
                        return true;
        return false;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static void profile_clear(profile_t *p)
{
        for (size_t i = 0; i < p->san_count; i++)
                free(p->sans[i]);
        p->san_count = 0;
}

/* A DNS name as Kubernetes and OpenSSL accept it: letters, digits, '-', '.', '*'. */
static bool is_dns_name(const char *s)
{
        if (!*s || strlen(s) > 253)
                return false;
        for (const char *c = s; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= '0' && *c <= '9') || *c == '-' || *c == '.'))
                        return false;
        return true;
}

/* Adds "IP:host" or "DNS:host" once. host is an IP address or a DNS name. */
static int add_san(profile_t *p, const char *host, const char *field, char *errstr,
                   size_t errstr_size)
{
        unsigned char buf[16];
        char san[300];
        if (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1)
                snprintf(san, sizeof(san), "IP:%s", host);
        else if (is_dns_name(host))
                snprintf(san, sizeof(san), "DNS:%s", host);
        else {
                cm_seterr(errstr, errstr_size,
                          "%s: \"%s\" is neither an IP address nor a DNS name", field,
                          host);
                return -1;
        }
        for (size_t i = 0; i < p->san_count; i++)
                if (strcmp(p->sans[i], san) == 0)
                        return 0;
        if (p->san_count == MAX_SANS) {
                cm_seterr(errstr, errstr_size,
                          "%s: more than %d names for certificate %s", field, MAX_SANS,
                          p->name);
                return -1;
        }
        if (!(p->sans[p->san_count] = strdup(san))) {
                cm_seterr(errstr, errstr_size, "out of memory");
                return -1;
        }
        p->san_count++;
        return 0;
}

/* The wanted certificates of spec, CA first. Returns the count, or -1. */
static int wanted_profiles(const cm_spec_t *spec, profile_t **out, char *errstr,
                           size_t errstr_size)
{
        size_t cap = 10 + 2 * spec->node_count, n = 0;
        profile_t *ps = calloc(cap, sizeof(*ps));
        char field[64], svc_ip[16];
        if (!ps) {
                cm_seterr(errstr, errstr_size, "out of memory");
                return -1;
        }
#define ADD(nm, c, o, u)                                                                 \
        do {                                                                             \
                snprintf(ps[n].name, sizeof(ps[n].name), "%s", (nm));                    \
                snprintf(ps[n].cn, sizeof(ps[n].cn), "%s", (c));                         \
                ps[n].org = (o);                                                         \
                ps[n].usage = (u);                                                       \
                n++;                                                                     \
        } while (0)
#define SAN(host, fld)                                                                   \
        do {                                                                             \
                if (add_san(&ps[n - 1], (host), (fld), errstr, errstr_size) != 0)        \
                        goto fail;                                                       \
        } while (0)
        if (!spec->name || !*spec->name) {
                cm_seterr(errstr, errstr_size, "name: the cluster has no name");
                goto fail;
        }
        if (!spec->cluster_domain || !is_dns_name(spec->cluster_domain)) {
                cm_seterr(errstr, errstr_size,
                          "clusterDomain: \"%s\" is not a domain name",
                          spec->cluster_domain ? spec->cluster_domain : "");
                goto fail;
        }
        if (cm_pki_first_service_ip(spec->service_cidr ? spec->service_cidr : "", svc_ip,
                                    sizeof(svc_ip), errstr, errstr_size) != 0)
                goto fail;
        for (size_t i = 0; i < spec->node_count; i++) {
                const cm_node_t *nd = &spec->nodes[i];
                if (!nd->name || !is_dns_name(nd->name) || !nd->address ||
                    !*nd->address) {
                        cm_seterr(errstr, errstr_size,
                                  "nodes[%zu]: name \"%s\" or address \"%s\" unusable", i,
                                  nd->name ? nd->name : "",
                                  nd->address ? nd->address : "");
                        goto fail;
                }
        }
        ADD(CM_PKI_CA, CM_PKI_CA, NULL, USE_CA);
        ADD("kube-apiserver", "kube-apiserver", NULL, USE_SERVER);
        size_t cps = 0;
        for (size_t i = 0; i < spec->node_count; i++) {
                if (!cm_pki_node_has_role(&spec->nodes[i], "controlplane"))
                        continue;
                snprintf(field, sizeof(field), "nodes[%zu].address", i);
                SAN(spec->nodes[i].address, field);
                cps++;
        }
        if (cps == 0) {
                cm_seterr(errstr, errstr_size, "nodes: no controlplane node");
                goto fail;
        }
        SAN(svc_ip, "serviceCidr");
        SAN("127.0.0.1", "");
        SAN("kubernetes", "");
        SAN("kubernetes.default", "");
        SAN("kubernetes.default.svc", "");
        char fqdn[300];
        snprintf(fqdn, sizeof(fqdn), "kubernetes.default.svc.%s", spec->cluster_domain);
        SAN(fqdn, "clusterDomain");
        ADD("kube-apiserver-etcd-client", "kube-apiserver-etcd-client", NULL, USE_CLIENT);
        ADD("kube-apiserver-kubelet-client", "kube-apiserver-kubelet-client",
            "system:masters", USE_CLIENT);
        ADD("kube-controller-manager", "system:kube-controller-manager", NULL,
            USE_CLIENT);
        ADD("kube-scheduler", "system:kube-scheduler", NULL, USE_CLIENT);
        ADD("kube-proxy", "system:kube-proxy", NULL, USE_CLIENT);
        ADD("kube-admin", "kube-admin", "system:masters", USE_CLIENT);
        ADD("kube-service-account-token", "kube-service-account-token", NULL,
            USE_SIGNING);
        for (size_t i = 0; i < spec->node_count; i++) {
                const cm_node_t *nd = &spec->nodes[i];
                char nm[160], cn[160];
                snprintf(nm, sizeof(nm), "kube-node-%s", nd->name);
                snprintf(cn, sizeof(cn), "system:node:%s", nd->name);
                ADD(nm, cn, "system:nodes", USE_CLIENT);
                if (!cm_pki_node_has_role(nd, "etcd"))
                        continue;
                snprintf(nm, sizeof(nm), "kube-etcd-%s", nd->name);
                ADD(nm, nm, NULL, USE_SERVER_PEER);
                snprintf(field, sizeof(field), "nodes[%zu].address", i);
                SAN(nd->address, field);
                SAN("127.0.0.1", "");
                SAN("localhost", "");
        }
        for (size_t i = 0; i < n; i++)
                qsort(ps[i].sans, ps[i].san_count, sizeof(char *), cmp_str);
        *out = ps;
        return (int)n;
#undef ADD
#undef SAN
fail:
        for (size_t i = 0; i < n; i++)
                profile_clear(&ps[i]);
        free(ps);
        return -1;
}

/* ---- issuing ---------------------------------------------------------------------- */

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        if (!ext)
                return -1;
        int rc = X509_add_ext(x, ext, -1) ? 0 : -1;
        X509_EXTENSION_free(ext);
        return rc;
}

/* SANs built as GENERAL_NAMEs, never through a config string a value could inject into.
 */
static int add_sans(X509 *x, const profile_t *p)
{
        if (p->san_count == 0)
                return 0;
        GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
        int rc = -1;
        if (!gens)
                return -1;
        for (size_t i = 0; i < p->san_count; i++) {
                GENERAL_NAME *g = NULL;
                if (strncmp(p->sans[i], "IP:", 3) == 0) {
                        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(p->sans[i] + 3);
                        if (!ip || !(g = GENERAL_NAME_new())) {
                                ASN1_OCTET_STRING_free(ip);
                                goto out;
                        }
                        GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
                } else {
                        ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
                        if (!dns || !ASN1_STRING_set(dns, p->sans[i] + 4, -1) ||
                            !(g = GENERAL_NAME_new())) {
                                ASN1_IA5STRING_free(dns);
                                goto out;
                        }
                        GENERAL_NAME_set0_value(g, GEN_DNS, dns);
                }
                if (!sk_GENERAL_NAME_push(gens, g)) {
                        GENERAL_NAME_free(g);
                        goto out;
                }
        }
        rc = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0) == 1 ? 0 : -1;
out:
        GENERAL_NAMES_free(gens);
        return rc;
}

static int set_subject(X509 *x, const profile_t *p)
{
        X509_NAME *nm = X509_get_subject_name(x);
        if (p->org &&
            !X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_UTF8,
                                        (const unsigned char *)p->org, -1, -1, 0))
                return -1;
        return X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8,
                                          (const unsigned char *)p->cn, -1, -1, 0)
                   ? 0
                   : -1;
}

static int add_usage(X509 *x, X509 *issuer, usage_t u)
{
        const char *ku = "critical,digitalSignature", *eku = NULL;
        switch (u) {
        case USE_CA:
                ku = "critical,digitalSignature,keyCertSign,cRLSign";
                break;
        case USE_SERVER_PEER:
                eku = "serverAuth,clientAuth";
                break;
        case USE_SERVER:
                eku = "serverAuth";
                break;
        case USE_CLIENT:
                eku = "clientAuth";
                break;
        case USE_SIGNING:
                break;
        }
        if (add_ext(x, issuer, NID_basic_constraints,
                    u == USE_CA ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE") !=
                0 ||
            add_ext(x, issuer, NID_key_usage, ku) != 0 ||
            (eku && add_ext(x, issuer, NID_ext_key_usage, eku) != 0) ||
            add_ext(x, issuer, NID_subject_key_identifier, "hash") != 0 ||
            add_ext(x, issuer, NID_authority_key_identifier, "keyid:always") != 0)
                return -1;
        return 0;
}

/* Issues p with a new P-256 key, signed by ca/ca_key (NULL: self-signed CA). */
static int issue(const profile_t *p, X509 *ca, EVP_PKEY *ca_key,
                 const cm_pki_options_t *o, time_t now, cm_pki_entry_t *e)
{
        EVP_PKEY *key = EVP_EC_gen("P-256");
        X509 *x = X509_new();
        BIGNUM *bn = BN_new();
        int rc = -1;
        if (!key || !x || !bn)
                goto out;
        long days = p->usage == USE_CA ? o->ca_days : o->cert_days;
        /* An hour back: nodes whose clocks lag a little still accept a fresh certificate.
         */
        if (!X509_set_version(x, 2) ||
            !BN_rand(bn, 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
            !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
            !X509_time_adj_ex(X509_getm_notBefore(x), 0, -3600, &now) ||
            !X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, &now) ||
            !X509_set_pubkey(x, key) || set_subject(x, p) != 0)
                goto out;
        X509 *issuer = ca ? ca : x;
        if (!X509_set_issuer_name(x, X509_get_subject_name(issuer)) ||
            add_usage(x, issuer, p->usage) != 0 || add_sans(x, p) != 0 ||
            !X509_sign(x, ca_key ? ca_key : key, EVP_sha256()))
                goto out;
        e->cert_pem = cm_pki_cert_to_pem(x);
        e->key_pem = cm_pki_key_to_pem(key);
        e->name = strdup(p->name);
        if (e->cert_pem && e->key_pem && e->name)
                rc = 0;
out:
        BN_free(bn);
        X509_free(x);
        EVP_PKEY_free(key);
        return rc;
}

/* ---- checking an old certificate against its profile ----------------------------------
 */

static char *name_entry(const X509_NAME *nm, int nid)
{
        int i = X509_NAME_get_index_by_NID(nm, nid, -1);
        if (i < 0)
                return NULL;
        const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, i));
        return strndup((const char *)ASN1_STRING_get0_data(s),
                       (size_t)ASN1_STRING_length(s));
}

int cm_pki_cert_sans(X509 *x, char ***out, size_t *count)
{
        GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        int n = gens ? sk_GENERAL_NAME_num(gens) : 0;
        char **v = calloc((size_t)n + 1, sizeof(char *));
        size_t k = 0;
        if (!v) {
                GENERAL_NAMES_free(gens);
                return -1;
        }
        for (int i = 0; i < n; i++) {
                GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
                char buf[300], ip[INET6_ADDRSTRLEN];
                if (g->type == GEN_DNS) {
                        snprintf(buf, sizeof(buf), "DNS:%.*s",
                                 ASN1_STRING_length(g->d.dNSName),
                                 (const char *)ASN1_STRING_get0_data(g->d.dNSName));
                } else if (g->type == GEN_IPADD) {
                        int len = ASN1_STRING_length(g->d.iPAddress);
                        int af = len == 4 ? AF_INET : len == 16 ? AF_INET6 : -1;
                        if (af < 0 ||
                            !inet_ntop(af, ASN1_STRING_get0_data(g->d.iPAddress), ip,
                                       sizeof(ip)))
                                continue;
                        snprintf(buf, sizeof(buf), "IP:%s", ip);
                } else
                        continue;
                if (!(v[k] = strdup(buf)))
                        break;
                k++;
        }
        GENERAL_NAMES_free(gens);
        qsort(v, k, sizeof(char *), cmp_str);
        *out = v;
        *count = k;
        return 0;
}

static void free_strv(char **v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                free(v[i]);
        free(v);
}

/* NULL when the old entry e still serves p; otherwise why not (static text or buf). */
static const char *stale_reason(const profile_t *p, const cm_pki_entry_t *e, X509 *ca,
                                time_t renew_at, char *buf, size_t size)
{
        X509 *x = cm_pki_cert_from_pem(e->cert_pem);
        EVP_PKEY *key = cm_pki_key_from_pem(e->key_pem);
        const char *why = NULL;
        char *cn = NULL, *org = NULL, **sans = NULL;
        size_t nsans = 0;
        if (!x || !key) {
                why = "unreadable certificate or key";
                goto out;
        }
        if (!X509_check_private_key(x, key)) {
                why = "key does not match the certificate";
                goto out;
        }
        if (ca && (X509_check_issued(ca, x) != X509_V_OK ||
                   X509_verify(x, X509_get0_pubkey(ca)) != 1)) {
                why = "not signed by the cluster CA";
                goto out;
        }
        if (X509_cmp_time(X509_get0_notAfter(x), &renew_at) <= 0) {
                why = "expires within the renewal window";
                goto out;
        }
        cn = name_entry(X509_get_subject_name(x), NID_commonName);
        org = name_entry(X509_get_subject_name(x), NID_organizationName);
        if (!cn || strcmp(cn, p->cn) != 0 || (p->org == NULL) != (org == NULL) ||
            (org && strcmp(org, p->org) != 0)) {
                why = "subject changed";
                goto out;
        }
        if (cm_pki_cert_sans(x, &sans, &nsans) != 0) {
                why = "unreadable SANs";
                goto out;
        }
        bool same = nsans == p->san_count;
        for (size_t i = 0; same && i < nsans; i++)
                same = strcmp(sans[i], p->sans[i]) == 0;
        if (!same) {
                snprintf(buf, size, "SANs changed");
                why = buf;
        }
out:
        free_strv(sans, nsans);
        free(cn);
        free(org);
        X509_free(x);
        EVP_PKEY_free(key);
        return why;
}

static int change_add(cm_pki_changes_t *ch, const char *name, cm_pki_change_kind_t kind,
                      const char *reason)
{
        if (!ch)
                return 0;
        cm_pki_change_t *items = realloc(ch->items, (ch->count + 1) * sizeof(*items));
        if (!items)
                return -1;
        ch->items = items;
        cm_pki_change_t *c = &items[ch->count];
        c->name = strdup(name);
        c->reason = strdup(reason);
        c->kind = kind;
        if (!c->name || !c->reason) {
                free(c->name);
                free(c->reason);
                return -1;
        }
        ch->count++;
        return 0;
}

static int cmp_entry(const void *a, const void *b)
{
        return strcmp(((const cm_pki_entry_t *)a)->name,
                      ((const cm_pki_entry_t *)b)->name);
}

static int cmp_change(const void *a, const void *b)
{
        return strcmp(((const cm_pki_change_t *)a)->name,
                      ((const cm_pki_change_t *)b)->name);
}

static int copy_entry(cm_pki_entry_t *dst, const cm_pki_entry_t *src)
{
        dst->name = strdup(src->name);
        dst->cert_pem = strdup(src->cert_pem);
        dst->key_pem = strdup(src->key_pem);
        return dst->name && dst->cert_pem && dst->key_pem ? 0 : -1;
}

int cm_pki_bundle_build(const cm_spec_t *spec, const cm_pki_bundle_t *old,
                        const cm_pki_options_t *opts, cm_pki_bundle_t **out,
                        cm_pki_changes_t *changes, char *errstr, size_t errstr_size)
{
        cm_pki_options_t o = opts ? *opts : (cm_pki_options_t){0};
        o.ca_days = o.ca_days > 0 ? o.ca_days : CM_PKI_DEFAULT_CA_DAYS;
        o.cert_days = o.cert_days > 0 ? o.cert_days : CM_PKI_DEFAULT_CERT_DAYS;
        o.renew_days = o.renew_days > 0 ? o.renew_days : CM_PKI_DEFAULT_RENEW_DAYS;
        time_t now = o.now ? o.now : time(NULL);
        time_t renew_at = now + (time_t)o.renew_days * 86400;
        profile_t *ps = NULL;
        cm_pki_bundle_t *b = NULL;
        X509 *ca = NULL;
        EVP_PKEY *ca_key = NULL;
        int rc = -1;
        *out = NULL;
        if (changes)
                *changes = (cm_pki_changes_t){0};
        int n = wanted_profiles(spec, &ps, errstr, errstr_size);
        if (n < 0)
                return -1;
        if (!(b = calloc(1, sizeof(*b))) ||
            !(b->entries = calloc((size_t)n, sizeof(*b->entries)))) {
                cm_seterr(errstr, errstr_size, "out of memory");
                goto out;
        }
        const cm_pki_entry_t *old_ca = old ? cm_pki_bundle_find(old, CM_PKI_CA) : NULL;
        b->count = 1; /* entries[0] is the CA, freed with b whatever happens below */
        if (old_ca) {
                ca = cm_pki_cert_from_pem(old_ca->cert_pem);
                ca_key = cm_pki_key_from_pem(old_ca->key_pem);
                if (!ca || !ca_key || !X509_check_private_key(ca, ca_key)) {
                        cm_seterr(
                            errstr, errstr_size,
                            "certificate %s: unreadable, or its key does not match; "
                            "CA rotation is not automatic",
                            CM_PKI_CA);
                        goto out;
                }
                if (X509_cmp_time(X509_get0_notAfter(ca), &now) <= 0) {
                        cm_seterr(errstr, errstr_size,
                                  "certificate %s: expired; CA rotation is not automatic",
                                  CM_PKI_CA);
                        goto out;
                }
                if (copy_entry(&b->entries[0], old_ca) != 0) {
                        cm_seterr(errstr, errstr_size, "out of memory");
                        goto out;
                }
        } else {
                if (issue(&ps[0], NULL, NULL, &o, now, &b->entries[0]) != 0 ||
                    change_add(changes, CM_PKI_CA, CM_PKI_CHANGE_NEW, "new cluster CA") !=
                        0) {
                        cm_seterr(errstr, errstr_size, "issuing %s failed", CM_PKI_CA);
                        goto out;
                }
                ca = cm_pki_cert_from_pem(b->entries[0].cert_pem);
                ca_key = cm_pki_key_from_pem(b->entries[0].key_pem);
                if (!ca || !ca_key) {
                        cm_seterr(errstr, errstr_size, "reading back %s failed",
                                  CM_PKI_CA);
                        goto out;
                }
        }
        for (int i = 1; i < n; i++) {
                const cm_pki_entry_t *prev =
                    old ? cm_pki_bundle_find(old, ps[i].name) : NULL;
                char buf[128];
                const char *why =
                    prev ? stale_reason(&ps[i], prev, ca, renew_at, buf, sizeof(buf))
                         : NULL;
                cm_pki_entry_t *e = &b->entries[b->count];
                if (prev && !why) {
                        if (copy_entry(e, prev) != 0) {
                                cm_seterr(errstr, errstr_size, "out of memory");
                                goto out;
                        }
                } else if (issue(&ps[i], ca, ca_key, &o, now, e) != 0 ||
                           change_add(changes, ps[i].name,
                                      prev ? CM_PKI_CHANGE_REISSUED : CM_PKI_CHANGE_NEW,
                                      prev ? why : "not issued before") != 0) {
                        cm_seterr(errstr, errstr_size, "issuing %s failed", ps[i].name);
                        b->count++; /* so that its parts are freed */
                        goto out;
                }
                b->count++;
        }
        for (size_t i = 0; old && i < old->count; i++) {
                bool wanted = false;
                for (int j = 0; j < n && !wanted; j++)
                        wanted = strcmp(old->entries[i].name, ps[j].name) == 0;
                if (!wanted &&
                    change_add(changes, old->entries[i].name, CM_PKI_CHANGE_REMOVED,
                               "no longer needed") != 0) {
                        cm_seterr(errstr, errstr_size, "out of memory");
                        goto out;
                }
        }
        qsort(b->entries, b->count, sizeof(*b->entries), cmp_entry);
        if (changes && changes->count)
                qsort(changes->items, changes->count, sizeof(*changes->items),
                      cmp_change);
        *out = b;
        b = NULL;
        rc = 0;
out:
        if (rc != 0 && changes)
                cm_pki_changes_free(changes);
        cm_pki_bundle_free(b);
        X509_free(ca);
        EVP_PKEY_free(ca_key);
        for (int i = 0; i < n; i++)
                profile_clear(&ps[i]);
        free(ps);
        return rc;
}

void cm_pki_changes_free(cm_pki_changes_t *changes)
{
        if (!changes)
                return;
        for (size_t i = 0; i < changes->count; i++) {
                free(changes->items[i].name);
                free(changes->items[i].reason);
        }
        free(changes->items);
        *changes = (cm_pki_changes_t){0};
}
