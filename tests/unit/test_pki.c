/* test_pki.c - cm_pki: every certificate as Kubernetes needs it, reuse on update, storage
 * forms, the admin kubeconfig, and the errors. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <yaml.h>

#include "cm/pki.h"
#include "cm/spec.h"
#include "../check_main.h"

#define NODES3                                                                           \
        "{\"name\":\"n1\",\"address\":\"10.0.0.1\",\"roles\":[\"controlplane\","         \
        "\"etcd\"]},"                                                                    \
        "{\"name\":\"n2\",\"address\":\"10.0.0.2\",\"roles\":[\"controlplane\","         \
        "\"etcd\"]},"                                                                    \
        "{\"name\":\"n3\",\"address\":\"10.0.0.3\",\"roles\":[\"worker\",\"etcd\"]}"
#define W4  ",{\"name\":\"n4\",\"address\":\"10.0.0.4\",\"roles\":[\"worker\"]}"
#define CP5 ",{\"name\":\"n5\",\"address\":\"10.0.0.5\",\"roles\":[\"controlplane\"]}"

static void load_spec(cm_spec_t *spec, const char *nodes)
{
        char text[4096];
        snprintf(text, sizeof(text),
                 "{\"name\":\"prod\",\"sshUser\":\"u\",\"managerAddress\":\"10.9.9.9\","
                 "\"clusterDomain\":\"cluster.local\",\"serviceCidr\":\"10.43.0.0/16\","
                 "\"nodes\":[%s]}",
                 nodes);
        json_error_t jerr;
        json_t *j = json_loads(text, 0, &jerr);
        ck_assert_msg(j != NULL, "%s", jerr.text);
        cm_field_errors_t errs = {0};
        ck_assert_int_eq(cm_spec_from_json(spec, j, &errs), 0);
        json_decref(j);
}

static cm_pki_bundle_t *build(const cm_spec_t *spec, const cm_pki_bundle_t *old,
                              time_t now, cm_pki_changes_t *ch)
{
        char err[512] = "";
        cm_pki_bundle_t *b = NULL;
        cm_pki_options_t o = {.now = now};
        ck_assert_msg(cm_pki_bundle_build(spec, old, &o, &b, ch, err, sizeof(err)) == 0,
                      "build: %s", err);
        ck_assert_ptr_nonnull(b);
        return b;
}

static X509 *pem_cert(const char *pem)
{
        BIO *bio = BIO_new_mem_buf(pem, -1);
        X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
        ck_assert_ptr_nonnull(x);
        return x;
}

static EVP_PKEY *pem_key(const char *pem)
{
        BIO *bio = BIO_new_mem_buf(pem, -1);
        EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
        ck_assert_ptr_nonnull(k);
        return k;
}

/* X509_verify_cert of cert against ca for purpose (X509_PURPOSE_*; 0: any). */
static int verify(const char *ca_pem, const char *pem, int purpose, time_t at)
{
        X509 *ca = pem_cert(ca_pem), *x = pem_cert(pem);
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        X509_STORE_add_cert(store, ca);
        X509_STORE_CTX_init(ctx, store, x, NULL);
        if (purpose)
                X509_STORE_CTX_set_purpose(ctx, purpose);
        if (at)
                X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), at);
        int ok = X509_verify_cert(ctx);
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        X509_free(ca);
        X509_free(x);
        return ok;
}

/* "CN=..;O=.." style: the subject's CN and O (O "" when absent). */
static void subject(const char *pem, char *cn, char *o)
{
        X509 *x = pem_cert(pem);
        X509_NAME *nm = X509_get_subject_name(x);
        cn[0] = o[0] = '\0';
        X509_NAME_get_text_by_NID(nm, NID_commonName, cn, 200);
        X509_NAME_get_text_by_NID(nm, NID_organizationName, o, 200);
        ck_assert_int_le(X509_NAME_entry_count(nm), 2);
        X509_free(x);
}

/* The SANs as "IP:..,DNS:.." in certificate order, comma-joined, into out. */
static void sans(const char *pem, char *out, size_t size)
{
        X509 *x = pem_cert(pem);
        GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        out[0] = '\0';
        for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
                GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
                char item[300], ip[64];
                if (g->type == GEN_DNS)
                        snprintf(item, sizeof(item), "DNS:%s",
                                 (const char *)ASN1_STRING_get0_data(g->d.dNSName));
                else {
                        ck_assert_int_eq(g->type, GEN_IPADD);
                        ck_assert_int_eq(ASN1_STRING_length(g->d.iPAddress), 4);
                        inet_ntop(AF_INET, ASN1_STRING_get0_data(g->d.iPAddress), ip,
                                  sizeof(ip));
                        snprintf(item, sizeof(item), "IP:%s", ip);
                }
                if (out[0])
                        strncat(out, ",", size - strlen(out) - 1);
                strncat(out, item, size - strlen(out) - 1);
        }
        GENERAL_NAMES_free(gens);
        X509_free(x);
}

static const char *const ALL3[] = {"kube-admin",
                                   "kube-apiserver",
                                   "kube-apiserver-etcd-client",
                                   "kube-apiserver-kubelet-client",
                                   "kube-ca",
                                   "kube-controller-manager",
                                   "kube-etcd-n1",
                                   "kube-etcd-n2",
                                   "kube-etcd-n3",
                                   "kube-node-n1",
                                   "kube-node-n2",
                                   "kube-node-n3",
                                   "kube-proxy",
                                   "kube-scheduler",
                                   "kube-service-account-token"};

START_TEST(test_first_service_ip)
{
        char ip[16], err[256];
        ck_assert_int_eq(
            cm_pki_first_service_ip("10.43.0.0/16", ip, sizeof(ip), err, 256), 0);
        ck_assert_str_eq(ip, "10.43.0.1");
        ck_assert_int_eq(
            cm_pki_first_service_ip("10.43.7.9/16", ip, sizeof(ip), err, 256), 0);
        ck_assert_str_eq(ip, "10.43.0.1");
        ck_assert_int_eq(
            cm_pki_first_service_ip("172.16.8.0/22", ip, sizeof(ip), err, 256), 0);
        ck_assert_str_eq(ip, "172.16.8.1");
        ck_assert_int_eq(
            cm_pki_first_service_ip("192.168.1.4/30", ip, sizeof(ip), err, 256), 0);
        ck_assert_str_eq(ip, "192.168.1.5");
        const char *bad[] = {"10.43.0.0",  "10.43.0.0/33", "x/16",
                             "10.43.0.0/", "10.0.0.0/32",  "10.0.0.0/31",
                             "10.43.0/16", "10.43.0.0/16x"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
                err[0] = '\0';
                ck_assert_int_eq(
                    cm_pki_first_service_ip(bad[i], ip, sizeof(ip), err, sizeof(err)),
                    -1);
                ck_assert_msg(strstr(err, "serviceCidr") && strstr(err, bad[i]),
                              "error for %s: %s", bad[i], err);
        }
}
END_TEST

START_TEST(test_fresh_bundle)
{
        cm_spec_t spec;
        cm_pki_changes_t ch;
        load_spec(&spec, NODES3);
        time_t now = time(NULL);
        cm_pki_bundle_t *b = build(&spec, NULL, 0, &ch);
        size_t n = sizeof(ALL3) / sizeof(*ALL3);
        ck_assert_uint_eq(b->count, n);
        ck_assert_uint_eq(ch.count, n);
        for (size_t i = 0; i < n; i++) {
                ck_assert_str_eq(b->entries[i].name, ALL3[i]);
                ck_assert_str_eq(ch.items[i].name, ALL3[i]);
                ck_assert_int_eq(ch.items[i].kind, CM_PKI_CHANGE_NEW);
        }
        const char *ca = cm_pki_bundle_find(b, "kube-ca")->cert_pem;
        for (size_t i = 0; i < b->count; i++) {
                const cm_pki_entry_t *e = &b->entries[i];
                ck_assert_msg(verify(ca, e->cert_pem, 0, 0) == 1, "%s does not verify",
                              e->name);
                ck_assert_ptr_nonnull(strstr(e->key_pem, "-----BEGIN PRIVATE KEY-----"));
                X509 *x = pem_cert(e->cert_pem);
                EVP_PKEY *k = pem_key(e->key_pem);
                ck_assert_msg(X509_check_private_key(x, k) == 1, "%s: key mismatch",
                              e->name);
                ck_assert_int_eq(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
                ck_assert_int_eq(EVP_PKEY_get_bits(k), 256);
                /* validity: CA 10 years, leaves 1 year, both starting about now */
                int days, secs;
                ck_assert(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)));
                int want = strcmp(e->name, "kube-ca") == 0 ? 3650 : 365;
                ck_assert_msg(days >= want - 1 && days <= want, "%s valid %d days",
                              e->name, days);
                ck_assert_int_le(X509_cmp_time(X509_get0_notBefore(x), &now), 0);
                uint32_t ku = X509_get_key_usage(x);
                ck_assert(ku & KU_DIGITAL_SIGNATURE);
                if (strcmp(e->name, "kube-ca") == 0) {
                        ck_assert_int_eq(X509_check_ca(x), 1);
                        ck_assert(ku & KU_KEY_CERT_SIGN);
                        ck_assert(ku & KU_CRL_SIGN);
                } else {
                        ck_assert_int_eq(X509_check_ca(x), 0);
                        ck_assert(!(ku & KU_KEY_CERT_SIGN));
                }
                bool server = strcmp(e->name, "kube-apiserver") == 0 ||
                              strncmp(e->name, "kube-etcd-", 10) == 0;
                bool client = strcmp(e->name, "kube-apiserver") != 0 &&
                              strcmp(e->name, "kube-ca") != 0 &&
                              strcmp(e->name, "kube-service-account-token") != 0;
                uint32_t xku = X509_get_extended_key_usage(x);
                if (strcmp(e->name, "kube-ca") != 0 &&
                    strcmp(e->name, "kube-service-account-token") != 0) {
                        ck_assert_msg(!!(xku & XKU_SSL_SERVER) == server, "%s serverAuth",
                                      e->name);
                        ck_assert_msg(!!(xku & XKU_SSL_CLIENT) == client, "%s clientAuth",
                                      e->name);
                }
                /* the service account key's certificate carries no EKU: not checked */
                if (strcmp(e->name, "kube-service-account-token") != 0)
                        ck_assert_msg(
                            verify(ca, e->cert_pem, X509_PURPOSE_SSL_SERVER, 0) ==
                                (server || strcmp(e->name, "kube-ca") == 0),
                            "%s: serverAuth purpose", e->name);
                if (client)
                        ck_assert_int_eq(
                            verify(ca, e->cert_pem, X509_PURPOSE_SSL_CLIENT, 0), 1);
                /* a leaf no longer verifies once expired */
                ck_assert_int_eq(verify(ca, e->cert_pem, 0, now + 366L * 86400),
                                 strcmp(e->name, "kube-ca") == 0 ? 1 : 0);
                EVP_PKEY_free(k);
                X509_free(x);
        }
        /* subjects */
        struct {
                const char *name, *cn, *o;
        } subj[] = {{"kube-ca", "kube-ca", ""},
                    {"kube-admin", "kube-admin", "system:masters"},
                    {"kube-apiserver", "kube-apiserver", ""},
                    {"kube-apiserver-kubelet-client", "kube-apiserver-kubelet-client",
                     "system:masters"},
                    {"kube-controller-manager", "system:kube-controller-manager", ""},
                    {"kube-scheduler", "system:kube-scheduler", ""},
                    {"kube-proxy", "system:kube-proxy", ""},
                    {"kube-node-n1", "system:node:n1", "system:nodes"},
                    {"kube-node-n3", "system:node:n3", "system:nodes"},
                    {"kube-etcd-n2", "kube-etcd-n2", ""}};
        for (size_t i = 0; i < sizeof(subj) / sizeof(*subj); i++) {
                char cn[256], o[256];
                subject(cm_pki_bundle_find(b, subj[i].name)->cert_pem, cn, o);
                ck_assert_str_eq(cn, subj[i].cn);
                ck_assert_str_eq(o, subj[i].o);
        }
        /* SANs, exactly */
        char s[2048];
        sans(cm_pki_bundle_find(b, "kube-apiserver")->cert_pem, s, sizeof(s));
        ck_assert_str_eq(
            s, "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,"
               "DNS:kubernetes.default.svc.cluster.local,IP:10.0.0.1,IP:10.0.0.2,"
               "IP:10.43.0.1,IP:127.0.0.1");
        sans(cm_pki_bundle_find(b, "kube-etcd-n3")->cert_pem, s, sizeof(s));
        ck_assert_str_eq(s, "DNS:localhost,IP:10.0.0.3,IP:127.0.0.1");
        sans(cm_pki_bundle_find(b, "kube-admin")->cert_pem, s, sizeof(s));
        ck_assert_str_eq(s, "");
        cm_pki_changes_free(&ch);
        cm_pki_bundle_free(b);
        cm_spec_destroy(&spec);
}
END_TEST

static void assert_same(const cm_pki_bundle_t *a, const cm_pki_bundle_t *b,
                        const char *name)
{
        const cm_pki_entry_t *x = cm_pki_bundle_find(a, name),
                             *y = cm_pki_bundle_find(b, name);
        ck_assert_msg(x && y, "%s missing", name);
        ck_assert_msg(strcmp(x->cert_pem, y->cert_pem) == 0, "%s certificate changed",
                      name);
        ck_assert_msg(strcmp(x->key_pem, y->key_pem) == 0, "%s key changed", name);
}

START_TEST(test_reuse)
{
        cm_spec_t s3, s4, s5, s2;
        cm_pki_changes_t ch;
        load_spec(&s3, NODES3);
        load_spec(&s4, NODES3 W4);
        load_spec(&s5, NODES3 W4 CP5);
        cm_pki_bundle_t *b3 = build(&s3, NULL, 0, NULL);

        /* same spec: nothing changes, byte for byte */
        cm_pki_bundle_t *again = build(&s3, b3, 0, &ch);
        ck_assert_uint_eq(ch.count, 0);
        ck_assert_uint_eq(again->count, b3->count);
        for (size_t i = 0; i < b3->count; i++)
                assert_same(b3, again, b3->entries[i].name);
        cm_pki_bundle_free(again);

        /* a new worker: only its kubelet certificate */
        cm_pki_bundle_t *b4 = build(&s4, b3, 0, &ch);
        ck_assert_uint_eq(ch.count, 1);
        ck_assert_str_eq(ch.items[0].name, "kube-node-n4");
        ck_assert_int_eq(ch.items[0].kind, CM_PKI_CHANGE_NEW);
        cm_pki_changes_free(&ch);
        ck_assert_uint_eq(b4->count, b3->count + 1);
        for (size_t i = 0; i < b3->count; i++)
                assert_same(b3, b4, b3->entries[i].name);
        ck_assert_int_eq(verify(cm_pki_bundle_find(b4, "kube-ca")->cert_pem,
                                cm_pki_bundle_find(b4, "kube-node-n4")->cert_pem, 0, 0),
                         1);

        /* a new controlplane: its kubelet cert, and the apiserver's SANs name it */
        cm_pki_bundle_t *b5 = build(&s5, b4, 0, &ch);
        ck_assert_uint_eq(ch.count, 2);
        ck_assert_str_eq(ch.items[0].name, "kube-apiserver");
        ck_assert_int_eq(ch.items[0].kind, CM_PKI_CHANGE_REISSUED);
        ck_assert_str_eq(ch.items[0].reason, "SANs changed");
        ck_assert_str_eq(ch.items[1].name, "kube-node-n5");
        cm_pki_changes_free(&ch);
        char s[1024];
        sans(cm_pki_bundle_find(b5, "kube-apiserver")->cert_pem, s, sizeof(s));
        ck_assert_ptr_nonnull(strstr(s, "IP:10.0.0.5"));
        assert_same(b4, b5, "kube-ca");
        assert_same(b4, b5, "kube-etcd-n1");

        /* a removed worker: reported, gone from the bundle, the rest untouched */
        load_spec(&s2, NODES3 CP5);
        cm_pki_bundle_t *b6 = build(&s2, b5, 0, &ch);
        ck_assert_uint_eq(ch.count, 1);
        ck_assert_str_eq(ch.items[0].name, "kube-node-n4");
        ck_assert_int_eq(ch.items[0].kind, CM_PKI_CHANGE_REMOVED);
        cm_pki_changes_free(&ch);
        ck_assert_ptr_null(cm_pki_bundle_find(b6, "kube-node-n4"));
        assert_same(b5, b6, "kube-apiserver");

        /* 340 days on: every leaf is renewed, the CA kept */
        time_t later = time(NULL) + 340L * 86400;
        cm_pki_bundle_t *b7 = build(&s2, b6, later, &ch);
        ck_assert_uint_eq(ch.count, b6->count - 1);
        for (size_t i = 0; i < ch.count; i++) {
                ck_assert_int_eq(ch.items[i].kind, CM_PKI_CHANGE_REISSUED);
                ck_assert_str_eq(ch.items[i].reason, "expires within the renewal window");
        }
        cm_pki_changes_free(&ch);
        assert_same(b6, b7, "kube-ca");
        ck_assert_int_eq(verify(cm_pki_bundle_find(b7, "kube-ca")->cert_pem,
                                cm_pki_bundle_find(b7, "kube-admin")->cert_pem, 0,
                                later + 300L * 86400),
                         1);

        /* the CA expired: an error, never a silent new CA */
        char err[256] = "";
        cm_pki_bundle_t *none = NULL;
        cm_pki_options_t o = {.now = time(NULL) + 3651L * 86400};
        ck_assert_int_eq(cm_pki_bundle_build(&s2, b7, &o, &none, &ch, err, sizeof(err)),
                         -1);
        ck_assert_ptr_null(none);
        ck_assert_msg(strstr(err, "kube-ca") && strstr(err, "expired"), "%s", err);

        /* a certificate from another CA is reissued */
        cm_pki_bundle_t *other = build(&s3, NULL, 0, NULL);
        cm_pki_entry_t *e = (cm_pki_entry_t *)cm_pki_bundle_find(b3, "kube-proxy");
        const cm_pki_entry_t *foreign = cm_pki_bundle_find(other, "kube-proxy");
        char *keep_c = e->cert_pem, *keep_k = e->key_pem;
        e->cert_pem = foreign->cert_pem;
        e->key_pem = foreign->key_pem;
        cm_pki_bundle_t *b8 = build(&s3, b3, 0, &ch);
        ck_assert_uint_eq(ch.count, 1);
        ck_assert_str_eq(ch.items[0].name, "kube-proxy");
        ck_assert_str_eq(ch.items[0].reason, "not signed by the cluster CA");
        cm_pki_changes_free(&ch);
        e->cert_pem = keep_c;
        e->key_pem = keep_k;

        cm_pki_bundle_free(b8);
        cm_pki_bundle_free(other);
        cm_pki_bundle_free(b7);
        cm_pki_bundle_free(b6);
        cm_pki_bundle_free(b5);
        cm_pki_bundle_free(b4);
        cm_pki_bundle_free(b3);
        cm_spec_destroy(&s2);
        cm_spec_destroy(&s3);
        cm_spec_destroy(&s4);
        cm_spec_destroy(&s5);
}
END_TEST

START_TEST(test_json_roundtrip)
{
        cm_spec_t spec;
        char err[256];
        load_spec(&spec, NODES3);
        cm_pki_bundle_t *b = build(&spec, NULL, 0, NULL);
        char *pub = cm_pki_bundle_public_json(b), *keys = cm_pki_bundle_keys_json(b);
        ck_assert_ptr_nonnull(pub);
        ck_assert_ptr_nonnull(keys);
        ck_assert_ptr_null(strstr(pub, "PRIVATE KEY"));
        json_error_t jerr;
        json_t *j = json_loads(pub, JSON_REJECT_DUPLICATES, &jerr);
        ck_assert_ptr_nonnull(j);
        ck_assert_uint_eq(json_object_size(j), b->count);
        ck_assert_str_eq(json_string_value(json_object_get(j, "kube-apiserver")),
                         cm_pki_bundle_find(b, "kube-apiserver")->cert_pem);
        json_decref(j);
        /* the hand-written keys JSON is valid JSON, read back the same by jansson */
        j = json_loads(keys, JSON_REJECT_DUPLICATES, &jerr);
        ck_assert_msg(j != NULL, "keys JSON: %s", jerr.text);
        ck_assert_str_eq(json_string_value(json_object_get(j, "kube-ca")),
                         cm_pki_bundle_find(b, "kube-ca")->key_pem);
        json_decref(j);

        cm_pki_bundle_t *back = NULL;
        ck_assert_msg(cm_pki_bundle_from_json(pub, keys, strlen(keys), &back, err,
                                              sizeof(err)) == 0,
                      "%s", err);
        ck_assert_uint_eq(back->count, b->count);
        for (size_t i = 0; i < b->count; i++)
                assert_same(b, back, b->entries[i].name);
        cm_pki_bundle_free(back);
        /* jansson's own formatting, with \/ escapes and whitespace, is read too */
        j = json_loads(keys, 0, &jerr);
        char *pretty = json_dumps(j, JSON_INDENT(2) | JSON_ESCAPE_SLASH);
        json_decref(j);
        ck_assert_int_eq(cm_pki_bundle_from_json(pub, pretty, strlen(pretty) + 1, &back,
                                                 err, sizeof(err)),
                         0);
        assert_same(b, back, "kube-node-n2");
        cm_pki_bundle_free(back);
        free(pretty);

        /* errors name the entry */
        const char *k1 = "{\"kube-ca\":\"x\"}";
        ck_assert_int_eq(
            cm_pki_bundle_from_json(pub, k1, strlen(k1), &back, err, sizeof(err)), -1);
        ck_assert_ptr_null(back);
        ck_assert_msg(strstr(err, "certificate without a key"), "%s", err);
        const char *k2 = "{\"kube-zzz\":\"x\"}";
        ck_assert_int_eq(
            cm_pki_bundle_from_json(pub, k2, strlen(k2), &back, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, "\"kube-zzz\"") && strstr(err, "without a certificate"),
                      "%s", err);
        const char *k3 = "{\"kube-ca\":\"x\",}";
        ck_assert_int_eq(
            cm_pki_bundle_from_json(pub, k3, strlen(k3), &back, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, "malformed"), "%s", err);
        ck_assert_int_eq(
            cm_pki_bundle_from_json(pub, keys, strlen(keys) - 1, &back, err, sizeof(err)),
            -1);
        ck_assert_int_eq(
            cm_pki_bundle_from_json("{\"kube-ca\":\"-----BEGIN PRIVATE KEY\"}", "{}", 2,
                                    &back, err, sizeof(err)),
            -1);
        ck_assert_msg(strstr(err, "\"kube-ca\""), "%s", err);
        ck_assert_int_eq(cm_pki_bundle_from_json("[]", "{}", 2, &back, err, sizeof(err)),
                         -1);
        ck_assert_msg(strstr(err, "certificates"), "%s", err);
        cm_pki_secret_free(keys);
        free(pub);
        cm_pki_bundle_free(b);
        cm_spec_destroy(&spec);
}
END_TEST

/* The scalar at path a.b (sequences: first element) of a YAML mapping, or NULL. */
static const char *yget(yaml_document_t *doc, const char *const *path)
{
        yaml_node_t *n = yaml_document_get_root_node(doc);
        for (; *path && n; path++) {
                if (n->type == YAML_SEQUENCE_NODE)
                        n = yaml_document_get_node(doc, *n->data.sequence.items.start);
                if (!n || n->type != YAML_MAPPING_NODE)
                        return NULL;
                yaml_node_t *next = NULL;
                for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
                     p < n->data.mapping.pairs.top && !next; p++) {
                        yaml_node_t *k = yaml_document_get_node(doc, p->key);
                        if (k->type == YAML_SCALAR_NODE &&
                            strcmp((char *)k->data.scalar.value, *path) == 0)
                                next = yaml_document_get_node(doc, p->value);
                }
                n = next;
        }
        return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value
                                                : NULL;
}

static char *unb64(const char *s)
{
        size_t n = strlen(s);
        unsigned char *out = calloc(1, n + 1);
        int len = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
        ck_assert_int_gt(len, 0);
        return (char *)out;
}

START_TEST(test_kubeconfig)
{
        cm_spec_t spec;
        char err[256];
        load_spec(
            &spec,
            "{\"name\":\"w0\",\"address\":\"10.0.0.9\",\"roles\":[\"worker\"]}," NODES3);
        cm_pki_bundle_t *b = build(&spec, NULL, 0, NULL);
        char *kc = cm_pki_admin_kubeconfig(&spec, b, err, sizeof(err));
        ck_assert_msg(kc != NULL, "%s", err);
        yaml_parser_t parser;
        yaml_document_t doc;
        yaml_parser_initialize(&parser);
        yaml_parser_set_input_string(&parser, (unsigned char *)kc, strlen(kc));
        ck_assert_int_eq(yaml_parser_load(&parser, &doc), 1);
        ck_assert_ptr_nonnull(yaml_document_get_root_node(&doc));
        const char *p_server[] = {"clusters", "cluster", "server", NULL};
        const char *p_ca[] = {"clusters", "cluster", "certificate-authority-data", NULL};
        const char *p_cname[] = {"clusters", "name", NULL};
        const char *p_ctx[] = {"contexts", "name", NULL};
        const char *p_ctx_c[] = {"contexts", "context", "cluster", NULL};
        const char *p_ctx_u[] = {"contexts", "context", "user", NULL};
        const char *p_cur[] = {"current-context", NULL};
        const char *p_user[] = {"users", "name", NULL};
        const char *p_crt[] = {"users", "user", "client-certificate-data", NULL};
        const char *p_key[] = {"users", "user", "client-key-data", NULL};
        const char *p_kind[] = {"kind", NULL};
        ck_assert_str_eq(yget(&doc, p_server), "https://10.0.0.1:6443");
        ck_assert_str_eq(yget(&doc, p_kind), "Config");
        const char *const *names[] = {p_cname, p_ctx, p_ctx_c, p_ctx_u, p_cur, p_user};
        for (size_t i = 0; i < 6; i++)
                ck_assert_str_eq(yget(&doc, names[i]), "prod");
        char *ca = unb64(yget(&doc, p_ca)), *crt = unb64(yget(&doc, p_crt));
        char *key = unb64(yget(&doc, p_key));
        ck_assert_str_eq(ca, cm_pki_bundle_find(b, "kube-ca")->cert_pem);
        ck_assert_int_eq(verify(ca, crt, X509_PURPOSE_SSL_CLIENT, 0), 1);
        char cn[256], o[256];
        subject(crt, cn, o);
        ck_assert_str_eq(cn, "kube-admin");
        ck_assert_str_eq(o, "system:masters");
        X509 *x = pem_cert(crt);
        EVP_PKEY *k = pem_key(key);
        ck_assert_int_eq(X509_check_private_key(x, k), 1);
        EVP_PKEY_free(k);
        X509_free(x);
        free(ca);
        free(crt);
        free(key);
        yaml_document_delete(&doc);
        yaml_parser_delete(&parser);
        cm_pki_secret_free(kc);

        cm_pki_bundle_t empty = {0};
        ck_assert_ptr_null(cm_pki_admin_kubeconfig(&spec, &empty, err, sizeof(err)));
        ck_assert_msg(strstr(err, "kube-ca"), "%s", err);
        cm_pki_bundle_free(b);
        cm_spec_destroy(&spec);
}
END_TEST

static void expect_build_error(const char *nodes, const char *domain, const char *cidr,
                               const char *want1, const char *want2)
{
        cm_spec_t spec;
        char err[512] = "";
        cm_pki_bundle_t *b = (cm_pki_bundle_t *)1;
        load_spec(&spec, nodes);
        if (domain) {
                free(spec.cluster_domain);
                spec.cluster_domain = strdup(domain);
        }
        if (cidr) {
                free(spec.service_cidr);
                spec.service_cidr = strdup(cidr);
        }
        ck_assert_int_eq(
            cm_pki_bundle_build(&spec, NULL, NULL, &b, NULL, err, sizeof(err)), -1);
        ck_assert_ptr_null(b);
        ck_assert_msg(strstr(err, want1) && strstr(err, want2), "error: %s", err);
        cm_spec_destroy(&spec);
}

START_TEST(test_build_errors)
{
        expect_build_error(
            "{\"name\":\"w\",\"address\":\"10.0.0.1\",\"roles\":[\"worker\"]}", NULL,
            NULL, "nodes", "no controlplane");
        expect_build_error(NODES3, "bad domain!", NULL, "clusterDomain", "bad domain!");
        expect_build_error(NODES3, NULL, "10.43.0.0/40", "serviceCidr", "10.43.0.0/40");
        expect_build_error("{\"name\":\"n1\",\"address\":\"10.0.0.1,DNS:evil\","
                           "\"roles\":[\"controlplane\"]}",
                           NULL, NULL, "nodes[0].address", "10.0.0.1,DNS:evil");
}
END_TEST

static Suite *pki_suite(void)
{
        Suite *s = suite_create("pki");
        TCase *tc = tcase_create("core");
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_first_service_ip);
        tcase_add_test(tc, test_fresh_bundle);
        tcase_add_test(tc, test_reuse);
        tcase_add_test(tc, test_json_roundtrip);
        tcase_add_test(tc, test_kubeconfig);
        tcase_add_test(tc, test_build_errors);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return cm_check_run(pki_suite());
}
