/* test_kubeconfig.c - cm_kubeconfig: the context, cluster and user picked from valid
 * kubeconfigs, and the exact message of every way an unusable one is refused. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "cm/kubeconfig.h"
#include "../check_main.h"

/* PEM material made once: a CA, a client certificate and key, a second key, an expired
 * certificate (with its key), and an encrypted key. */
static char *ca_pem, *cert_pem, *key_pem, *other_key_pem, *expired_pem, *expired_key_pem,
    *encrypted_key_pem;
static char *ca_b64, *cert_b64, *key_b64;

static char *bio_text(BIO *b)
{
        char *data;
        long n = BIO_get_mem_data(b, &data);
        char *s = strndup(data, (size_t)n);
        BIO_free(b);
        return s;
}

static EVP_PKEY *new_key(char **pem)
{
        EVP_PKEY *k = EVP_EC_gen("P-256");
        ck_assert_ptr_nonnull(k);
        BIO *b = BIO_new(BIO_s_mem());
        ck_assert_int_eq(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
        *pem = bio_text(b);
        return k;
}

/* A self-signed certificate for key, valid from now+from_s to now+to_s seconds. */
static char *new_cert(EVP_PKEY *k, const char *cn, long from_s, long to_s)
{
        X509 *x = X509_new();
        ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
        X509_set_version(x, 2);
        X509_gmtime_adj(X509_getm_notBefore(x), from_s);
        X509_gmtime_adj(X509_getm_notAfter(x), to_s);
        X509_NAME *n = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
                                   -1, 0);
        X509_set_issuer_name(x, n);
        X509_set_pubkey(x, k);
        ck_assert_int_gt(X509_sign(x, k, EVP_sha256()), 0);
        BIO *b = BIO_new(BIO_s_mem());
        PEM_write_bio_X509(b, x);
        X509_free(x);
        return bio_text(b);
}

static char *b64(const char *s)
{
        size_t n = sodium_base64_encoded_len(strlen(s), sodium_base64_VARIANT_ORIGINAL);
        char *out = malloc(n);
        sodium_bin2base64(out, n, (const unsigned char *)s, strlen(s),
                          sodium_base64_VARIANT_ORIGINAL);
        return out;
}

static void make_pki(void)
{
        char *ca_key_pem;
        EVP_PKEY *ca = new_key(&ca_key_pem), *cl = new_key(&key_pem),
                 *other = new_key(&other_key_pem), *old = new_key(&expired_key_pem);
        ca_pem = new_cert(ca, "test-ca", 0, 86400);
        cert_pem = new_cert(cl, "admin", 0, 86400);
        expired_pem = new_cert(old, "admin", -7200, -3600);
        BIO *b = BIO_new(BIO_s_mem());
        PEM_write_bio_PrivateKey(b, cl, EVP_aes_256_cbc(), NULL, 0, NULL, "pass");
        encrypted_key_pem = bio_text(b);
        EVP_PKEY_free(ca), EVP_PKEY_free(cl), EVP_PKEY_free(other), EVP_PKEY_free(old);
        free(ca_key_pem);
        ca_b64 = b64(ca_pem), cert_b64 = b64(cert_pem), key_b64 = b64(key_pem);
}

static void free_pki(void)
{
        free(ca_pem), free(cert_pem), free(key_pem), free(other_key_pem),
            free(expired_pem);
        free(expired_key_pem), free(encrypted_key_pem), free(ca_b64), free(cert_b64);
        free(key_b64);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
        char *s;
        va_list ap;
        va_start(ap, f);
        ck_assert_int_ge(vasprintf(&s, f, ap), 0);
        va_end(ap);
        return s;
}

/* A one-context kubeconfig: cluster "c" with cluster_body, user "u" with user_body. */
static char *simple(const char *cluster_body, const char *user_body)
{
        return fmt("apiVersion: v1\n"
                   "kind: Config\n"
                   "clusters:\n"
                   "- name: c\n"
                   "  cluster:\n%s"
                   "contexts:\n"
                   "- name: ctx\n"
                   "  context: {cluster: c, user: u}\n"
                   "current-context: ctx\n"
                   "users:\n"
                   "- name: u\n"
                   "  user:\n%s",
                   cluster_body, user_body);
}

static char *cluster_ok(void)
{
        return fmt("    server: https://10.0.0.5:6443\n"
                   "    certificate-authority-data: %s\n",
                   ca_b64);
}

static char *user_cert(void)
{
        return fmt("    client-certificate-data: %s\n    client-key-data: %s\n", cert_b64,
                   key_b64);
}

static cm_kubeconfig_t *parse_ok(const char *text, const char *context)
{
        char err[512] = "unset";
        cm_kubeconfig_t *kc = NULL;
        cm_kubeconfig_err_t e =
            cm_kubeconfig_parse(text, strlen(text), context, &kc, err, sizeof(err));
        ck_assert_msg(e == CM_KUBECONFIG_OK, "parse failed (%d): %s", e, err);
        ck_assert_ptr_nonnull(kc);
        return kc;
}

/* Parses text, which must fail with err_code and exactly the message want. Frees text. */
static void expect_error(char *text, cm_kubeconfig_err_t err_code, const char *want)
{
        char err[512];
        cm_kubeconfig_t *kc = (cm_kubeconfig_t *)1;
        cm_kubeconfig_err_t e =
            cm_kubeconfig_parse(text, strlen(text), NULL, &kc, err, sizeof(err));
        ck_assert_msg(e == err_code, "code %d, want %d (%s)", e, err_code, err);
        ck_assert_ptr_null(kc);
        ck_assert_str_eq(err, want);
        ck_assert_ptr_null(strstr(err, key_b64));
        free(text);
}

START_TEST(test_cert_auth)
{
        char *cl = fmt("    server: https://10.0.0.5:6443/\n"
                       "    certificate-authority-data: %s\n"
                       "    tls-server-name: kubernetes.default\n",
                       ca_b64);
        char *us = user_cert(), *text = simple(cl, us);
        cm_kubeconfig_t *kc = parse_ok(text, NULL);
        ck_assert_str_eq(kc->context, "ctx");
        ck_assert_str_eq(kc->cluster, "c");
        ck_assert_str_eq(kc->user, "u");
        ck_assert_str_eq(kc->server, "https://10.0.0.5:6443"); /* trailing / dropped */
        ck_assert_uint_eq(kc->ca_pem_len, strlen(ca_pem));
        ck_assert_str_eq((char *)kc->ca_pem, ca_pem);
        ck_assert_str_eq((char *)kc->client_cert_pem, cert_pem);
        ck_assert_uint_eq(kc->client_key_pem_len, strlen(key_pem));
        ck_assert_str_eq((char *)kc->client_key_pem, key_pem);
        ck_assert_ptr_null(kc->token);
        ck_assert(!kc->insecure_skip_tls_verify);
        ck_assert_str_eq(kc->tls_server_name, "kubernetes.default");

        cm_kubeconfig_t *d = cm_kubeconfig_dup(kc);
        cm_kubeconfig_free(kc);
        ck_assert_str_eq((char *)d->client_key_pem, key_pem);
        ck_assert_str_eq(d->server, "https://10.0.0.5:6443");
        ck_assert_str_eq(d->tls_server_name, "kubernetes.default");
        cm_kubeconfig_free(d);
        cm_kubeconfig_free(NULL);
        free(cl), free(us), free(text);
}
END_TEST

START_TEST(test_token_auth_and_insecure)
{
        char *text = simple("    server: https://k8s.example.com\n"
                            "    insecure-skip-tls-verify: true\n",
                            "    token: eyJhbGciOi.abc-def_123\n");
        cm_kubeconfig_t *kc = parse_ok(text, NULL);
        ck_assert_str_eq(kc->server, "https://k8s.example.com");
        ck_assert_str_eq(kc->token, "eyJhbGciOi.abc-def_123");
        ck_assert(kc->insecure_skip_tls_verify);
        ck_assert_ptr_null(kc->ca_pem);
        ck_assert_ptr_null(kc->client_cert_pem);
        ck_assert_ptr_null(kc->client_key_pem);
        ck_assert_ptr_null(kc->tls_server_name);
        cm_kubeconfig_free(kc);
        free(text);
}
END_TEST

START_TEST(test_cert_and_token_and_unpadded_base64)
{
        /* base64 without padding and folded over lines is still read */
        char *ca = strdup(ca_b64);
        char *pad = strchr(ca, '=');
        if (pad)
                *pad = '\0';
        /* a file path beside its embedded data is not needed, so not refused */
        char *cl = fmt("    server: https://h:1\n"
                       "    certificate-authority: /etc/kubernetes/pki/ca.crt\n"
                       "    extensions: [{name: x, extension: {a: 1}}]\n"
                       "    certificate-authority-data: \"%.40s\\n  %s\"\n",
                       ca, ca + 40);
        char *us = fmt("    client-certificate-data: %s\n    client-key-data: %s\n"
                       "    token: t0k3n\n    tokenFile: /run/token\n",
                       cert_b64, key_b64);
        char *text = simple(cl, us);
        cm_kubeconfig_t *kc = parse_ok(text, NULL);
        ck_assert_str_eq((char *)kc->ca_pem, ca_pem);
        ck_assert_str_eq(kc->token, "t0k3n");
        ck_assert_ptr_nonnull(kc->client_key_pem);
        cm_kubeconfig_free(kc);
        free(ca), free(cl), free(us), free(text);
}
END_TEST

static char *multi(const char *current)
{
        return fmt(
            "apiVersion: v1\nkind: Config\n"
            "clusters:\n"
            "- name: dev\n  cluster: {server: 'https://dev:6443', "
            "insecure-skip-tls-verify: true}\n"
            "- name: prod\n  cluster:\n    server: https://prod:6443\n"
            "    certificate-authority-data: %s\n"
            "users:\n"
            "- name: dev-user\n  user: {token: devtoken}\n"
            "- name: prod-admin\n  user:\n"
            "    client-certificate-data: %s\n    client-key-data: %s\n"
            "contexts:\n"
            "- name: dev\n  context: {cluster: dev, user: dev-user, namespace: x}\n"
            "- name: prod\n  context: {cluster: prod, user: prod-admin}\n"
            "%s",
            ca_b64, cert_b64, key_b64, current);
}

START_TEST(test_several_contexts)
{
        char *text = multi("current-context: prod\n");
        cm_kubeconfig_t *kc = parse_ok(text, NULL);
        ck_assert_str_eq(kc->context, "prod");
        ck_assert_str_eq(kc->server, "https://prod:6443");
        ck_assert_str_eq(kc->user, "prod-admin");
        ck_assert_ptr_nonnull(kc->client_cert_pem);
        ck_assert_ptr_null(kc->token);
        cm_kubeconfig_free(kc);

        kc = parse_ok(text, "dev"); /* an explicit context wins over current-context */
        ck_assert_str_eq(kc->context, "dev");
        ck_assert_str_eq(kc->server, "https://dev:6443");
        ck_assert_str_eq(kc->token, "devtoken");
        ck_assert(kc->insecure_skip_tls_verify);
        cm_kubeconfig_free(kc);

        char err[512];
        ck_assert_int_eq(
            cm_kubeconfig_parse(text, strlen(text), "qa", &kc, err, sizeof(err)),
            CM_KUBECONFIG_ERR_INVALID);
        ck_assert_str_eq(err, "kubeconfig: context \"qa\" is not defined in contexts");
        free(text);

        expect_error(multi("current-context: \"\"\n"), CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: current-context is not set and there are 2 contexts "
                     "(\"dev\", \"prod\"): set current-context");
        expect_error(
            multi("current-context: staging\n"), CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: current-context \"staging\" is not defined in contexts");
}
END_TEST

START_TEST(test_only_context_and_json)
{
        /* no current-context, one context: that one; JSON is YAML too */
        char *text =
            fmt("{\"kind\": \"Config\", \"apiVersion\": \"v1\",\n"
                " \"clusters\": [{\"name\": \"j\", \"cluster\": {\"server\": "
                "\"https://127.0.0.1:6443\", \"certificate-authority-data\": "
                "\"%s\"}}],\n"
                " \"users\": [{\"name\": \"j\", \"user\": {\"token\": \"abc\"}}],\n"
                " \"contexts\": [{\"name\": \"j\", \"context\": {\"cluster\": "
                "\"j\", \"user\": \"j\"}}]}\n",
                ca_b64);
        cm_kubeconfig_t *kc = parse_ok(text, NULL);
        ck_assert_str_eq(kc->context, "j");
        ck_assert_str_eq(kc->server, "https://127.0.0.1:6443");
        ck_assert_str_eq(kc->token, "abc");
        ck_assert_str_eq((char *)kc->ca_pem, ca_pem);
        cm_kubeconfig_free(kc);
        free(text);
}
END_TEST

START_TEST(test_yaml_syntax_errors)
{
        expect_error(
            strdup("apiVersion: v1\n"
                   "kind: Config\n"
                   "clusters:\n"
                   "- name: c\n"
                   "  cluster:\n"
                   "    server: https://h:1\n"
                   "  bad: key: value\n"),
            CM_KUBECONFIG_ERR_SYNTAX,
            "kubeconfig: line 7 column 11: mapping values are not allowed in this "
            "context");
        expect_error(strdup("clusters:\n- name: c\n\tcluster: {}\n"),
                     CM_KUBECONFIG_ERR_SYNTAX,
                     "kubeconfig: line 3 column 1: found a tab character that violates "
                     "indentation (while scanning a plain scalar at line 2 column 9)");
        expect_error(
            strdup("users: [ {name: a}\n"), CM_KUBECONFIG_ERR_SYNTAX,
            "kubeconfig: line 2 column 1: did not find expected ',' or ']' (while "
            "parsing a flow sequence at line 1 column 8)");
        expect_error(strdup("kind: Config\n\xff\xfe\n"), CM_KUBECONFIG_ERR_SYNTAX,
                     "kubeconfig: byte 13: invalid leading UTF-8 octet");
        char *big = calloc(1, CM_KUBECONFIG_MAX_BYTES + 2);
        memset(big, '#', CM_KUBECONFIG_MAX_BYTES + 1);
        expect_error(big, CM_KUBECONFIG_ERR_SYNTAX,
                     "kubeconfig: 1048577 bytes is larger than the 1048576 allowed");
}
END_TEST

START_TEST(test_document_shape_errors)
{
        expect_error(strdup(""), CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: the document is empty");
        expect_error(strdup("# only a comment\n"), CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: the document is empty");
        expect_error(
            strdup("- a\n- b\n"), CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: expected a mapping at the top level, found a list (line 1 "
            "column 1)");
        expect_error(strdup("kind: Pod\n"), CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: kind: \"Pod\" is not Config");
        expect_error(
            strdup("kind: Config\nclusters: {a: b}\n"), CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: clusters: expected a list, found a mapping (line 2 column "
            "11)");
        expect_error(strdup("clusters:\n- name: c\n  cluster: [1]\n"),
                     CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: clusters[0].cluster: expected a mapping, found a list "
                     "(line 3 column 12)");
        expect_error(strdup("clusters:\n- cluster: {server: x}\n"),
                     CM_KUBECONFIG_ERR_INVALID, "kubeconfig: clusters[0].name: missing");
        expect_error(strdup("users:\n- name: a\n- name: b\n- name: a\n"),
                     CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: users[2].name: duplicate name \"a\" (also users[0])");
        expect_error(strdup("kind: Config\n"), CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: contexts: no context is defined");

        char *cl = cluster_ok(), *us = user_cert(), *text = simple(cl, us);
        expect_error(fmt("%s---\nkind: Config\n", text), CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: line 18: a second YAML document; a kubeconfig is one "
                     "document");
        char *dup = fmt("%s    server: https://other:6443\n", cl);
        expect_error(simple(dup, us), CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: line 8 column 5: clusters[0].cluster: duplicate key "
                     "\"server\"");
        free(cl), free(us), free(text), free(dup);
}
END_TEST

START_TEST(test_dangling_names)
{
        char *cl = cluster_ok(), *us = user_cert();
        char *text = simple(cl, us);
        /* the context's cluster / user point nowhere */
        char *p = strstr(text, "{cluster: c, user: u}");
        memcpy(p, "{cluster: x, user: u}", 21);
        expect_error(
            strdup(text), CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: context \"ctx\" names cluster \"x\" which is not defined");
        memcpy(p, "{cluster: c, user: v}", 21);
        expect_error(strdup(text), CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: context \"ctx\" names user \"v\" which is not defined");
        memcpy(p, "{cluster: c, usr:  u}", 21);
        expect_error(strdup(text), CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: contexts[0].context.user: missing (context \"ctx\")");
        memcpy(p, "{clustr: c, user: u} ", 21);
        expect_error(
            strdup(text), CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: contexts[0].context.cluster: missing (context \"ctx\")");
        free(text);
        expect_error(fmt("contexts:\n- name: prod\ncurrent-context: prod\n"),
                     CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: contexts[0].context: missing (context \"prod\")");
        free(cl), free(us);
}
END_TEST

START_TEST(test_cluster_errors)
{
        char *us = user_cert();
        expect_error(simple("    certificate-authority-data: eA==\n", us),
                     CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: clusters[0].cluster.server: missing (cluster \"c\")");
        expect_error(
            simple("    server: http://10.0.0.5:8080\n", us), CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: clusters[0].cluster.server: \"http://10.0.0.5:8080\" is "
            "not an https:// URL (cluster \"c\")");
        expect_error(
            simple("    server: 10.0.0.5:6443\n", us), CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: clusters[0].cluster.server: \"10.0.0.5:6443\" is not an "
            "https:// URL (cluster \"c\")");
        /* found by fuzz_kubeconfig: curl reads "https:/h/x" as host h */
        expect_error(
            simple("    server: https:/2o/k8s.example:443/\n", us),
            CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: clusters[0].cluster.server: \"https:/2o/k8s.example:443/\" is "
            "not an https:// URL (cluster \"c\")");
        expect_error(simple("    server: https://admin:hunter2@10.0.0.5:6443\n", us),
                     CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: clusters[0].cluster.server: a user name or password in "
                     "the URL is not supported (cluster \"c\")");
        expect_error(
            simple("    server: https://h:6443/?watch=1\n", us),
            CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: clusters[0].cluster.server: \"https://h:6443/?watch=1\" "
            "must not have a query or fragment (cluster \"c\")");
        expect_error(simple("    server: {url: https://h}\n", us),
                     CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: clusters[0].cluster.server: expected a string, found a "
                     "mapping (line 6 column 13)");
        expect_error(
            simple("    server: https://h\n"
                   "    certificate-authority-data: 'not base64!'\n",
                   us),
            CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: clusters[0].cluster.certificate-authority-data: not valid "
            "base64 (cluster \"c\")");
        expect_error(simple("    server: https://h\n"
                            "    certificate-authority-data: aGVsbG8gd29ybGQ=\n",
                            us),
                     CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: clusters[0].cluster.certificate-authority-data: the "
                     "decoded data holds no PEM certificate (cluster \"c\")");
        expect_error(
            simple("    server: https://h\n"
                   "    certificate-authority: /etc/kubernetes/pki/ca.crt\n",
                   us),
            CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: clusters[0].cluster.certificate-authority: file paths are "
            "not supported in an imported kubeconfig; embed "
            "certificate-authority-data (cluster \"c\")");
        expect_error(
            simple("    server: https://h\n"
                   "    insecure-skip-tls-verify: maybe\n",
                   us),
            CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: clusters[0].cluster.insecure-skip-tls-verify: \"maybe\" is "
            "not true or false (cluster \"c\")");
        char *ok = cluster_ok();
        char *both = fmt("%s    insecure-skip-tls-verify: true\n", ok);
        free(ok);
        expect_error(simple(both, us), CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: clusters[0].cluster: insecure-skip-tls-verify and "
                     "certificate-authority-data exclude each other (cluster \"c\")");
        expect_error(
            simple("    server: https://h\n"
                   "    tls-server-name: 'a b/c'\n",
                   us),
            CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: clusters[0].cluster.tls-server-name: \"a b/c\" is not a "
            "host name (cluster \"c\")");
        free(both);
        free(us);
}
END_TEST

START_TEST(test_user_errors)
{
        char *cl = cluster_ok();
        char *u;
        expect_error(
            simple(cl, "    namespace: default\n"), CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: users[0].user: no client-certificate-data/client-key-data "
            "or token (user \"u\")");
        expect_error(simple(cl, ""), CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: users[0].user: missing (user \"u\")");
        u = fmt("    client-certificate-data: %s\n", cert_b64);
        expect_error(simple(cl, u), CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: users[0].user: client-certificate-data without "
                     "client-key-data (user \"u\")");
        free(u);
        u = fmt("    client-key-data: %s\n", key_b64);
        expect_error(simple(cl, u), CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: users[0].user: client-key-data without "
                     "client-certificate-data (user \"u\")");
        free(u);
        u = fmt(
            "    client-certificate-data: %s\n    client-key: /home/me/.kube/key.pem\n",
            cert_b64);
        expect_error(
            simple(cl, u), CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: users[0].user.client-key: file paths are not supported in "
            "an imported kubeconfig; embed client-key-data (user \"u\")");
        free(u);
        expect_error(simple(cl, "    client-certificate: a.crt\n    client-key: a.key\n"),
                     CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: users[0].user.client-certificate: file paths are not "
                     "supported in an imported kubeconfig; embed client-certificate-data "
                     "(user \"u\")");
        expect_error(
            simple(cl, "    tokenFile: /var/run/secrets/token\n"),
            CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: users[0].user.tokenFile: file paths are not supported in an "
            "imported kubeconfig; embed token (user \"u\")");
        expect_error(
            simple(cl, "    exec:\n      command: aws\n"), CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: users[0].user.exec: credential plugins are not supported "
            "in an imported kubeconfig; embed client-certificate-data/"
            "client-key-data or a token (user \"u\")");
        expect_error(
            simple(cl, "    auth-provider: {name: gcp}\n"), CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: users[0].user.auth-provider: credential plugins are not "
            "supported in an imported kubeconfig; embed client-certificate-data/"
            "client-key-data or a token (user \"u\")");
        expect_error(
            simple(cl, "    username: admin\n    password: hunter2\n"),
            CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: users[0].user: basic authentication (username/password) "
            "is not supported; embed client-certificate-data/client-key-data or a "
            "token (user \"u\")");
        expect_error(
            simple(cl, "    token: \"abc\\r\\nX-Injected: 1\"\n"),
            CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: users[0].user.token: contains a character not allowed in a "
            "bearer token (user \"u\")");
        free(cl);
}
END_TEST

START_TEST(test_client_certificate_errors)
{
        char *cl = cluster_ok(), *u, *other = b64(other_key_pem), *exp = b64(expired_pem),
             *exp_key = b64(expired_key_pem), *enc = b64(encrypted_key_pem);
        u = fmt("    client-certificate-data: %s\n    client-key-data: '%%%%%%'\n",
                cert_b64);
        expect_error(simple(cl, u), CM_KUBECONFIG_ERR_INVALID,
                     "kubeconfig: users[0].user.client-key-data: not valid base64 (user "
                     "\"u\")");
        free(u);
        u = fmt("    client-certificate-data: %s\n    client-key-data: %s\n", key_b64,
                key_b64);
        expect_error(
            simple(cl, u), CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: users[0].user.client-certificate-data: the decoded data "
            "holds no PEM certificate (user \"u\")");
        free(u);
        u = fmt("    client-certificate-data: %s\n    client-key-data: %s\n", cert_b64,
                cert_b64);
        expect_error(
            simple(cl, u), CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: users[0].user.client-key-data: the decoded data holds no "
            "PEM private key (user \"u\")");
        free(u);
        u = fmt("    client-certificate-data: %s\n    client-key-data: %s\n", cert_b64,
                other);
        expect_error(
            simple(cl, u), CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: users[0].user.client-key-data: the key does not belong to "
            "client-certificate-data (user \"u\")");
        free(u);
        u = fmt("    client-certificate-data: %s\n    client-key-data: %s\n", cert_b64,
                enc);
        expect_error(
            simple(cl, u), CM_KUBECONFIG_ERR_INVALID,
            "kubeconfig: users[0].user.client-key-data: the key is encrypted; embed "
            "an unencrypted key (user \"u\")");
        free(u);
        u = fmt("    client-certificate-data: %s\n    client-key-data: %s\n", exp,
                exp_key);
        char err[512];
        cm_kubeconfig_t *kc;
        char *text = simple(cl, u);
        ck_assert_int_eq(
            cm_kubeconfig_parse(text, strlen(text), NULL, &kc, err, sizeof(err)),
            CM_KUBECONFIG_ERR_INVALID);
        ck_assert_msg(strstr(err,
                             "kubeconfig: users[0].user.client-certificate-data: the "
                             "certificate expired on ") == err &&
                          strstr(err, " GMT (user \"u\")"),
                      "%s", err);
        free(u), free(text);
        free(cl), free(other), free(exp), free(exp_key), free(enc);
}
END_TEST

START_TEST(test_bad_arguments)
{
        char err[64];
        cm_kubeconfig_t *kc = (cm_kubeconfig_t *)1;
        ck_assert_int_eq(cm_kubeconfig_parse(NULL, 0, NULL, &kc, err, sizeof(err)),
                         CM_KUBECONFIG_ERR_ARG);
        ck_assert_ptr_null(kc);
        ck_assert_int_eq(cm_kubeconfig_parse("a", 1, NULL, NULL, err, sizeof(err)),
                         CM_KUBECONFIG_ERR_ARG);
        /* a tiny error buffer is truncated, never overrun */
        char tiny[8];
        ck_assert_int_eq(
            cm_kubeconfig_parse("kind: Pod", 9, NULL, &kc, tiny, sizeof(tiny)),
            CM_KUBECONFIG_ERR_INVALID);
        ck_assert_str_eq(tiny, "kubecon");
        ck_assert_ptr_null(cm_kubeconfig_dup(NULL));
        ck_assert_str_eq(cm_kubeconfig_err2str(CM_KUBECONFIG_ERR_INVALID),
                         "not a usable kubeconfig");
}
END_TEST

static Suite *kubeconfig_suite(void)
{
        Suite *s = suite_create("kubeconfig");
        TCase *tc = tcase_create("kubeconfig");
        tcase_add_checked_fixture(tc, make_pki, free_pki);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_cert_auth);
        tcase_add_test(tc, test_token_auth_and_insecure);
        tcase_add_test(tc, test_cert_and_token_and_unpadded_base64);
        tcase_add_test(tc, test_several_contexts);
        tcase_add_test(tc, test_only_context_and_json);
        tcase_add_test(tc, test_yaml_syntax_errors);
        tcase_add_test(tc, test_document_shape_errors);
        tcase_add_test(tc, test_dangling_names);
        tcase_add_test(tc, test_cluster_errors);
        tcase_add_test(tc, test_user_errors);
        tcase_add_test(tc, test_client_certificate_errors);
        tcase_add_test(tc, test_bad_arguments);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return cm_check_run(kubeconfig_suite());
}
