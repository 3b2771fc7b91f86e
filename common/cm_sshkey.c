/*
 * cm_sshkey.c - reads an SSH private key just far enough to say whether the zke jobs can
 * use it (DESIGN §7): unencrypted ed25519 or ECDSA (P-256/384/521), in OpenSSH format
 * (parsed here, PROTOCOL.key) or PEM (SEC 1 "EC PRIVATE KEY" or PKCS#8 "PRIVATE KEY",
 * decoded by OpenSSL). Everything else is refused with a reason a user can act on.
 *
 * The OpenSSH parser checks the whole structure (check integers, private part matching
 * the public part, padding) and that the private key really belongs to the public one, so
 * a truncated or edited file is refused here rather than at the first SSH connection.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "cm/sshkey.h"

#define USE_INSTEAD "use an ed25519 (ssh-keygen -t ed25519) or ECDSA key"

static const char OPENSSH_MAGIC[] = "openssh-key-v1"; /* followed by its NUL */

typedef struct {
        const char *ssh_name; /* key type in the OpenSSH wire format */
        const char *curve; /* ECDSA: curve identifier in the blob; OpenSSL group name */
        const char *group;
        size_t point_len; /* ECDSA: uncompressed point length */
} key_kind_t;

static const key_kind_t kinds[] = {
    [CM_SSHKEY_ED25519] = {"ssh-ed25519", NULL, NULL, 0},
    [CM_SSHKEY_ECDSA_P256] = {"ecdsa-sha2-nistp256", "nistp256", "prime256v1", 65},
    [CM_SSHKEY_ECDSA_P384] = {"ecdsa-sha2-nistp384", "nistp384", "secp384r1", 97},
    [CM_SSHKEY_ECDSA_P521] = {"ecdsa-sha2-nistp521", "nistp521", "secp521r1", 133},
};
#define KIND_COUNT (sizeof(kinds) / sizeof(kinds[0]))

const char *cm_sshkey_type_name(cm_sshkey_type_t type)
{
        if ((size_t)type >= 1 && (size_t)type < KIND_COUNT)
                return kinds[type].ssh_name;
        return "unknown";
}

const char *cm_sshkey_format_name(cm_sshkey_format_t format)
{
        switch (format) {
        case CM_SSHKEY_FORMAT_OPENSSH:
                return "OpenSSH";
        case CM_SSHKEY_FORMAT_PEM_EC:
                return "PEM EC";
        case CM_SSHKEY_FORMAT_PKCS8:
                return "PKCS#8";
        }
        return "unknown";
}

/* ---- helpers ----------------------------------------------------------------------- */

typedef struct {
        char *errstr;
        size_t errstr_size;
} out_t;

static cm_sshkey_err_t fail(out_t *o, cm_sshkey_err_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static cm_sshkey_err_t fail(out_t *o, cm_sshkey_err_t code, const char *fmt, ...)
{
        if (o->errstr && o->errstr_size) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(o->errstr, o->errstr_size, fmt, ap);
                va_end(ap);
        }
        return code;
}

/* A name read from the key file (cipher, key type, PEM label), made safe to quote: at
 * most 40 printable ASCII characters, anything else '?'. Never used for key bytes. */
static const char *printable(const void *p, size_t n, char *buf, size_t size)
{
        const unsigned char *s = p;
        size_t i, j = 0;
        for (i = 0; i < n && j + 4 < size && i < 40; i++)
                buf[j++] =
                    (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? (char)s[i] : '?';
        if (i < n && j + 4 < size) {
                memcpy(buf + j, "...", 3);
                j += 3;
        }
        buf[j] = '\0';
        return buf;
}

static cm_sshkey_type_t kind_by_ssh_name(const unsigned char *name, size_t n)
{
        for (size_t k = 1; k < KIND_COUNT; k++)
                if (strlen(kinds[k].ssh_name) == n &&
                    memcmp(kinds[k].ssh_name, name, n) == 0)
                        return (cm_sshkey_type_t)k;
        return 0;
}

static bool name_is(const unsigned char *s, size_t n, const char *lit)
{
        return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static bool name_starts(const unsigned char *s, size_t n, const char *lit)
{
        return strlen(lit) <= n && memcmp(s, lit, strlen(lit)) == 0;
}

/* The refusal for a key type that is not ed25519/ECDSA P-256/384/521 (OpenSSH names). */
static cm_sshkey_err_t refuse_type(out_t *o, const unsigned char *name, size_t n)
{
        char q[64];
        if (name_is(n ? name : (const unsigned char *)"", n, "ssh-rsa"))
                return fail(
                    o, CM_SSHKEY_E_RSA,
                    "RSA keys are refused: Debian 12's libssh2 1.10 signs RSA user keys "
                    "only with ssh-rsa (SHA-1), which OpenSSH 8.8 and later refuse by "
                    "default; " USE_INSTEAD);
        if (name_is(name, n, "ssh-dss"))
                return fail(
                    o, CM_SSHKEY_E_UNSUPPORTED,
                    "DSA keys are not supported (OpenSSH 7.0 and later refuse them); "
                    "" USE_INSTEAD);
        if (name_starts(name, n, "sk-"))
                return fail(
                    o, CM_SSHKEY_E_UNSUPPORTED,
                    "security-key type \"%s\" is not supported (it needs its hardware "
                    "token at every connection); " USE_INSTEAD,
                    printable(name, n, q, sizeof(q)));
        return fail(o, CM_SSHKEY_E_UNSUPPORTED,
                    "key type \"%s\" is not supported; " USE_INSTEAD,
                    printable(name, n, q, sizeof(q)));
}

/* Builds "type base64(blob)" into info->public_key. */
static int set_public(cm_sshkey_info_t *info, cm_sshkey_type_t type,
                      const unsigned char *blob, size_t blob_len)
{
        const char *name = kinds[type].ssh_name;
        size_t nl = strlen(name);
        size_t b64 = sodium_base64_ENCODED_LEN(blob_len, sodium_base64_VARIANT_ORIGINAL);
        if (nl + 1 + b64 > sizeof(info->public_key))
                return -1;
        memcpy(info->public_key, name, nl);
        info->public_key[nl] = ' ';
        sodium_bin2base64(info->public_key + nl + 1, b64, blob, blob_len,
                          sodium_base64_VARIANT_ORIGINAL);
        return 0;
}

/* ---- SSH wire format reader (RFC 4251 strings and integers)
 * ---------------------------- */

typedef struct {
        const unsigned char *p;
        size_t left;
} rd_t;

static bool rd_u32(rd_t *r, uint32_t *v)
{
        if (r->left < 4)
                return false;
        *v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 |
             r->p[3];
        r->p += 4;
        r->left -= 4;
        return true;
}

static bool rd_string(rd_t *r, const unsigned char **s, size_t *n)
{
        uint32_t len;
        if (!rd_u32(r, &len) || len > r->left)
                return false;
        *s = r->p;
        *n = len;
        r->p += len;
        r->left -= len;
        return true;
}

/* ---- OpenSSH format
 * -------------------------------------------------------------------- */

/* The public key blob: its type, and for a supported type its key (ed25519 pk / EC
 * point). */
static cm_sshkey_err_t parse_public_blob(out_t *o, const unsigned char *blob, size_t n,
                                         cm_sshkey_type_t *type,
                                         const unsigned char **pub, size_t *pub_len)
{
        rd_t r = {blob, n};
        const unsigned char *name, *curve;
        size_t name_len, curve_len;
        if (!rd_string(&r, &name, &name_len))
                return fail(o, CM_SSHKEY_E_CORRUPT,
                            "the key is corrupt (bad public key)");
        *type = kind_by_ssh_name(name, name_len);
        if (!*type)
                return refuse_type(o, name, name_len);
        if (*type != CM_SSHKEY_ED25519 &&
            (!rd_string(&r, &curve, &curve_len) ||
             !name_is(curve, curve_len, kinds[*type].curve)))
                return fail(o, CM_SSHKEY_E_CORRUPT,
                            "the key is corrupt (ECDSA curve mismatch)");
        if (!rd_string(&r, pub, pub_len) || r.left != 0)
                return fail(o, CM_SSHKEY_E_CORRUPT,
                            "the key is corrupt (bad public key)");
        bool ok = *type == CM_SSHKEY_ED25519
                      ? *pub_len == crypto_sign_PUBLICKEYBYTES
                      : *pub_len == kinds[*type].point_len && (*pub)[0] == 0x04;
        if (!ok)
                return fail(o, CM_SSHKEY_E_CORRUPT,
                            "the key is corrupt (bad public key length)");
        return CM_SSHKEY_OK;
}

/* True when the ECDSA private scalar d (an SSH mpint) belongs to the point q. */
static bool ecdsa_pair_matches(cm_sshkey_type_t type, const unsigned char *d,
                               size_t d_len, const unsigned char *q, size_t q_len)
{
        bool ok = false;
        BIGNUM *bn = BN_bin2bn(d, (int)d_len, NULL);
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        OSSL_PARAM *params = NULL;
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        EVP_PKEY *pkey = NULL;
        EVP_PKEY_CTX *check = NULL;
        if (!bn || !bld || !ctx ||
            !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                             kinds[type].group, 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, q, q_len) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bn) ||
            !(params = OSSL_PARAM_BLD_to_param(bld)) ||
            EVP_PKEY_fromdata_init(ctx) <= 0 ||
            EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) <= 0)
                goto out;
        check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        ok = check && EVP_PKEY_pairwise_check(check) == 1;
out:
        EVP_PKEY_CTX_free(check);
        EVP_PKEY_free(pkey);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
        EVP_PKEY_CTX_free(ctx);
        BN_clear_free(bn);
        ERR_clear_error();
        return ok;
}

/* The unencrypted private section: check integers, the same key as the public blob, a
 * private key that derives that public key, a comment, and padding 1, 2, 3... */
static cm_sshkey_err_t parse_private_section(out_t *o, const unsigned char *sec, size_t n,
                                             cm_sshkey_type_t type,
                                             const unsigned char *pub, size_t pub_len)
{
        rd_t r = {sec, n};
        uint32_t c1, c2;
        const unsigned char *name, *s, *comment;
        size_t name_len, s_len, comment_len;
        if (!rd_u32(&r, &c1) || !rd_u32(&r, &c2) || c1 != c2)
                return fail(o, CM_SSHKEY_E_CORRUPT,
                            "the key is corrupt (check integers differ)");
        if (!rd_string(&r, &name, &name_len) || kind_by_ssh_name(name, name_len) != type)
                return fail(o, CM_SSHKEY_E_CORRUPT,
                            "the key is corrupt (private and public key types differ)");
        if (type != CM_SSHKEY_ED25519 &&
            (!rd_string(&r, &s, &s_len) || !name_is(s, s_len, kinds[type].curve)))
                return fail(o, CM_SSHKEY_E_CORRUPT,
                            "the key is corrupt (ECDSA curve mismatch)");
        if (!rd_string(&r, &s, &s_len) || s_len != pub_len ||
            memcmp(s, pub, pub_len) != 0)
                return fail(o, CM_SSHKEY_E_CORRUPT,
                            "the key is corrupt (private and public parts differ)");
        if (!rd_string(&r, &s, &s_len))
                return fail(o, CM_SSHKEY_E_CORRUPT,
                            "the key is truncated (no private key)");
        if (type == CM_SSHKEY_ED25519) {
                unsigned char pk[crypto_sign_PUBLICKEYBYTES];
                if (s_len != crypto_sign_SECRETKEYBYTES ||
                    crypto_sign_ed25519_sk_to_pk(pk, s) != 0 ||
                    memcmp(pk, pub, pub_len) != 0)
                        return fail(
                            o, CM_SSHKEY_E_CORRUPT,
                            "the key is corrupt (the private key does not match the "
                            "public key)");
                unsigned char seed_pk[crypto_sign_PUBLICKEYBYTES];
                unsigned char seed_sk[crypto_sign_SECRETKEYBYTES];
                int rc = crypto_sign_seed_keypair(seed_pk, seed_sk, s);
                sodium_memzero(seed_sk, sizeof(seed_sk));
                if (rc != 0 || memcmp(seed_pk, pub, pub_len) != 0)
                        return fail(
                            o, CM_SSHKEY_E_CORRUPT,
                            "the key is corrupt (the private key does not match the "
                            "public key)");
        } else if (s_len == 0 || s_len > kinds[type].point_len / 2 + 1 ||
                   !ecdsa_pair_matches(type, s, s_len, pub, pub_len)) {
                return fail(
                    o, CM_SSHKEY_E_CORRUPT,
                    "the key is corrupt (the private key does not match the public "
                    "key)");
        }
        if (!rd_string(&r, &comment, &comment_len))
                return fail(o, CM_SSHKEY_E_CORRUPT, "the key is truncated (no comment)");
        for (size_t i = 0; i < r.left; i++)
                if (r.p[i] != (unsigned char)(i + 1))
                        return fail(o, CM_SSHKEY_E_CORRUPT,
                                    "the key is corrupt (bad padding)");
        return CM_SSHKEY_OK;
}

static cm_sshkey_err_t parse_openssh(out_t *o, const unsigned char *bin, size_t n,
                                     cm_sshkey_info_t *info)
{
        rd_t r = {bin, n};
        const unsigned char *cipher, *kdf, *kdfopts, *blob, *sec, *pub;
        size_t cipher_len, kdf_len, kdfopts_len, blob_len, sec_len, pub_len;
        uint32_t nkeys;
        char q[64];
        cm_sshkey_type_t type = 0;
        if (n < sizeof(OPENSSH_MAGIC) ||
            memcmp(bin, OPENSSH_MAGIC, sizeof(OPENSSH_MAGIC)) != 0)
                return fail(
                    o, CM_SSHKEY_E_CORRUPT,
                    "the key is corrupt (no \"openssh-key-v1\" header after base64 "
                    "decoding)");
        r.p += sizeof(OPENSSH_MAGIC);
        r.left -= sizeof(OPENSSH_MAGIC);
        if (!rd_string(&r, &cipher, &cipher_len) || !rd_string(&r, &kdf, &kdf_len) ||
            !rd_string(&r, &kdfopts, &kdfopts_len) || !rd_u32(&r, &nkeys))
                return fail(o, CM_SSHKEY_E_CORRUPT, "the key is truncated or corrupt");
        if (nkeys != 1)
                return fail(o, CM_SSHKEY_E_FORMAT,
                            "the file holds %u keys; give exactly one", (unsigned)nkeys);
        if (!rd_string(&r, &blob, &blob_len))
                return fail(o, CM_SSHKEY_E_CORRUPT, "the key is truncated or corrupt");
        /* the type first: an RSA key is refused for its type, passphrase or not */
        cm_sshkey_err_t rc = parse_public_blob(o, blob, blob_len, &type, &pub, &pub_len);
        if (rc != CM_SSHKEY_OK)
                return rc;
        if (!name_is(cipher, cipher_len, "none"))
                return fail(
                    o, CM_SSHKEY_E_ENCRYPTED,
                    "the key is encrypted (cipher \"%s\"); give an unencrypted key",
                    printable(cipher, cipher_len, q, sizeof(q)));
        if (!name_is(kdf, kdf_len, "none") || kdfopts_len != 0)
                return fail(o, CM_SSHKEY_E_CORRUPT,
                            "the key is corrupt (cipher \"none\" with kdf \"%s\")",
                            printable(kdf, kdf_len, q, sizeof(q)));
        if (!rd_string(&r, &sec, &sec_len) || r.left != 0 || sec_len % 8 != 0)
                return fail(o, CM_SSHKEY_E_CORRUPT, "the key is truncated or corrupt");
        rc = parse_private_section(o, sec, sec_len, type, pub, pub_len);
        if (rc != CM_SSHKEY_OK)
                return rc;
        if (info) {
                info->type = type;
                info->format = CM_SSHKEY_FORMAT_OPENSSH;
                if (set_public(info, type, blob, blob_len) != 0)
                        return fail(o, CM_SSHKEY_E_CORRUPT, "the key is corrupt");
        }
        return CM_SSHKEY_OK;
}

/* ---- PEM (OpenSSL) ----------------------------------------------------------------- */

/* Never prompt, never decrypt: an encrypted key is refused before OpenSSL sees it. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
        (void)buf, (void)size, (void)rwflag, (void)u;
        return -1;
}

static void put_string(unsigned char **p, const void *s, size_t n)
{
        (*p)[0] = (unsigned char)(n >> 24);
        (*p)[1] = (unsigned char)(n >> 16);
        (*p)[2] = (unsigned char)(n >> 8);
        (*p)[3] = (unsigned char)n;
        memcpy(*p + 4, s, n);
        *p += 4 + n;
}

/* The OpenSSH public key blob of an accepted key: string type, [string curve], string key
 */
static int pem_public(cm_sshkey_info_t *info, cm_sshkey_type_t type,
                      const unsigned char *key, size_t key_len)
{
        unsigned char blob[256], *p = blob;
        const key_kind_t *k = &kinds[type];
        put_string(&p, k->ssh_name, strlen(k->ssh_name));
        if (k->curve)
                put_string(&p, k->curve, strlen(k->curve));
        put_string(&p, key, key_len);
        return set_public(info, type, blob, (size_t)(p - blob));
}

static cm_sshkey_err_t classify_pkey(out_t *o, EVP_PKEY *pk, cm_sshkey_type_t *type,
                                     unsigned char *pub, size_t *pub_len)
{
        char group[64] = "";
        size_t glen = 0;
        switch (EVP_PKEY_get_base_id(pk)) {
        case EVP_PKEY_ED25519:
                *type = CM_SSHKEY_ED25519;
                *pub_len = crypto_sign_PUBLICKEYBYTES;
                if (EVP_PKEY_get_raw_public_key(pk, pub, pub_len) != 1 ||
                    *pub_len != crypto_sign_PUBLICKEYBYTES)
                        return fail(o, CM_SSHKEY_E_CORRUPT, "the key is corrupt");
                return CM_SSHKEY_OK;
        case EVP_PKEY_EC:
                if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                    sizeof(group), &glen))
                        return fail(o, CM_SSHKEY_E_UNSUPPORTED,
                                    "an EC key without a named curve is not supported; "
                                    "" USE_INSTEAD);
                *type = 0;
                for (size_t k = CM_SSHKEY_ECDSA_P256; k < KIND_COUNT; k++)
                        if (strcmp(group, kinds[k].group) == 0)
                                *type = (cm_sshkey_type_t)k;
                if (!*type)
                        return fail(
                            o, CM_SSHKEY_E_UNSUPPORTED,
                            "EC curve \"%s\" is not usable with SSH; use an ed25519 "
                            "(ssh-keygen -t ed25519) or ECDSA P-256, P-384 or P-521 key",
                            printable(group, strlen(group), (char[64]){0}, 64));
                if (!EVP_PKEY_get_octet_string_param(
                        pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub,
                        kinds[*type].point_len, pub_len) ||
                    *pub_len != kinds[*type].point_len || pub[0] != 0x04)
                        return fail(o, CM_SSHKEY_E_CORRUPT,
                                    "the key is corrupt (EC point)");
                return CM_SSHKEY_OK;
        case EVP_PKEY_RSA:
        case EVP_PKEY_RSA_PSS:
                return refuse_type(o, (const unsigned char *)"ssh-rsa", 7);
        case EVP_PKEY_DSA:
                return refuse_type(o, (const unsigned char *)"ssh-dss", 7);
        default: {
                const char *t = EVP_PKEY_get0_type_name(pk);
                return refuse_type(o, (const unsigned char *)(t ? t : "?"),
                                   strlen(t ? t : "?"));
        }
        }
}

/* pem[0..n) is one BEGIN..END block, unencrypted, of label EC PRIVATE KEY or PRIVATE KEY
 */
static cm_sshkey_err_t parse_pem(out_t *o, const char *pem, size_t n,
                                 cm_sshkey_format_t format, cm_sshkey_info_t *info)
{
        BIO *bio = BIO_new_mem_buf(pem, (int)n);
        if (!bio)
                return fail(o, CM_SSHKEY_E_NOMEM, "out of memory");
        EVP_PKEY *pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
        BIO_free(bio);
        ERR_clear_error();
        if (!pk)
                return fail(o, CM_SSHKEY_E_CORRUPT,
                            "the %s key could not be decoded (truncated or corrupt)",
                            cm_sshkey_format_name(format));
        cm_sshkey_type_t type = 0;
        unsigned char pub[160];
        size_t pub_len = 0;
        cm_sshkey_err_t rc = classify_pkey(o, pk, &type, pub, &pub_len);
        EVP_PKEY_free(pk);
        ERR_clear_error();
        if (rc == CM_SSHKEY_OK && format == CM_SSHKEY_FORMAT_PEM_EC &&
            type == CM_SSHKEY_ED25519)
                rc = fail(o, CM_SSHKEY_E_CORRUPT, "the key is corrupt");
        if (rc == CM_SSHKEY_OK && info) {
                info->type = type;
                info->format = format;
                if (pem_public(info, type, pub, pub_len) != 0)
                        rc = fail(o, CM_SSHKEY_E_CORRUPT, "the key is corrupt");
        }
        return rc;
}

/* ---- framing: which block, which format -----------------------------------------------
 */

typedef struct {
        const char *label; /* inside "-----BEGIN " ... "-----" */
        size_t label_len;
        const char *begin; /* start of the BEGIN line */
        const char *body;  /* after the BEGIN line */
        const char *end;   /* start of the END line, NULL when missing */
        const char *after; /* after the END line */
} block_t;

static const char *find(const char *s, size_t n, const char *lit)
{
        return memmem(s, n, lit, strlen(lit));
}

/* Next "-----BEGIN X-----" at a line start in s[0..n); fills b. */
static bool next_block(const char *s, size_t n, block_t *b)
{
        const char *lim = s + n, *p = s;
        while ((p = find(p, (size_t)(lim - p), "-----BEGIN ")) != NULL) {
                if (p == s || p[-1] == '\n') {
                        const char *l = p + 11;
                        const char *d = find(l, (size_t)(lim - l), "-----");
                        const char *nl = memchr(l, '\n', (size_t)(lim - l));
                        if (d && (!nl || d < nl)) {
                                b->begin = p;
                                b->label = l;
                                b->label_len = (size_t)(d - l);
                                b->body = d + 5;
                                char endl[96];
                                int m = snprintf(endl, sizeof(endl), "-----END %.*s-----",
                                                 (int)b->label_len, b->label);
                                b->end = NULL;
                                b->after = lim;
                                if (m > 0 && (size_t)m < sizeof(endl)) {
                                        b->end =
                                            find(b->body, (size_t)(lim - b->body), endl);
                                        if (b->end)
                                                b->after = b->end + m;
                                }
                                return true;
                        }
                }
                p += 11;
        }
        return false;
}

static bool label_is(const block_t *b, const char *lit)
{
        return name_is((const unsigned char *)b->label, b->label_len, lit);
}

/* A one-line OpenSSH public key ("ssh-ed25519 AAAA...") or an RFC 4716 one. */
static bool looks_public(const char *s, size_t n)
{
        static const char *const prefixes[] = {"ssh-", "ecdsa-sha2-", "sk-ssh-",
                                               "sk-ecdsa-", "---- BEGIN SSH2 PUBLIC KEY"};
        for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
                if (n >= strlen(prefixes[i]) &&
                    memcmp(s, prefixes[i], strlen(prefixes[i])) == 0)
                        return true;
        return false;
}

static cm_sshkey_err_t openssh_block(out_t *o, const block_t *b, cm_sshkey_info_t *info)
{
        size_t body_len = (size_t)(b->end - b->body);
        size_t cap = body_len / 4 * 3 + 3;
        unsigned char *bin = sodium_malloc(cap ? cap : 1);
        size_t bin_len = 0;
        const char *stop = NULL;
        if (!bin)
                return fail(o, CM_SSHKEY_E_NOMEM, "out of memory");
        cm_sshkey_err_t rc;
        if (sodium_base642bin(bin, cap, b->body, body_len, " \t\r\n", &bin_len, &stop,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            stop != b->end)
                rc = fail(
                    o, CM_SSHKEY_E_CORRUPT,
                    "the key's base64 is invalid or truncated (the OpenSSH key could "
                    "not be decoded)");
        else
                rc = parse_openssh(o, bin, bin_len, info);
        sodium_free(bin); /* wipes */
        return rc;
}

static cm_sshkey_err_t pem_block(out_t *o, const block_t *b, cm_sshkey_format_t format,
                                 cm_sshkey_info_t *info)
{
        const char *hdr_end = b->end;
        const char *proc = find(b->body, (size_t)(hdr_end - b->body), "Proc-Type:");
        if (proc && find(proc, (size_t)(hdr_end - proc), "ENCRYPTED")) {
                const char *dek = find(b->body, (size_t)(hdr_end - b->body), "DEK-Info:");
                char q[64] = "unknown";
                if (dek) {
                        const char *c = dek + 9;
                        while (c < hdr_end && *c == ' ')
                                c++;
                        size_t cl = 0;
                        while (c + cl < hdr_end && !strchr(",\r\n", c[cl]))
                                cl++;
                        printable(c, cl, q, sizeof(q));
                }
                return fail(
                    o, CM_SSHKEY_E_ENCRYPTED,
                    "the key is encrypted (cipher \"%s\"); give an unencrypted key", q);
        }
        return parse_pem(o, b->begin, (size_t)(b->after - b->begin), format, info);
}

/* The private key block among those of s: refusing what can be named, skipping what is
 * harmless (EC PARAMETERS before an EC key, certificates...). */
static cm_sshkey_err_t dispatch(out_t *o, const char *s, size_t n, cm_sshkey_info_t *info)
{
        block_t b;
        const char *p = s;
        bool public_seen = false;
        char q[64];
        while (next_block(p, (size_t)(s + n - p), &b)) {
                bool private = find(b.label, b.label_len, "PRIVATE KEY") != NULL;
                if (!private) {
                        public_seen |= find(b.label, b.label_len, "PUBLIC KEY") != NULL;
                        p = b.body;
                        continue;
                }
                if (label_is(&b, "ENCRYPTED PRIVATE KEY"))
                        return fail(
                            o, CM_SSHKEY_E_ENCRYPTED,
                            "the key is encrypted (PKCS#8 \"ENCRYPTED PRIVATE KEY\"); "
                            "give an unencrypted key");
                if (label_is(&b, "RSA PRIVATE KEY"))
                        return refuse_type(o, (const unsigned char *)"ssh-rsa", 7);
                if (label_is(&b, "DSA PRIVATE KEY"))
                        return refuse_type(o, (const unsigned char *)"ssh-dss", 7);
                cm_sshkey_format_t format =
                    label_is(&b, "OPENSSH PRIVATE KEY") ? CM_SSHKEY_FORMAT_OPENSSH
                    : label_is(&b, "EC PRIVATE KEY")    ? CM_SSHKEY_FORMAT_PEM_EC
                    : label_is(&b, "PRIVATE KEY")       ? CM_SSHKEY_FORMAT_PKCS8
                                                        : 0;
                if (!format)
                        return fail(
                            o, CM_SSHKEY_E_FORMAT,
                            "a \"%s\" block is not a supported key format; give an "
                            "OpenSSH or PEM (EC or PKCS#8) private key",
                            printable(b.label, b.label_len, q, sizeof(q)));
                if (!b.end)
                        return fail(o, CM_SSHKEY_E_CORRUPT,
                                    "the key is truncated (no \"-----END %s-----\" line)",
                                    printable(b.label, b.label_len, q, sizeof(q)));
                if (format == CM_SSHKEY_FORMAT_OPENSSH)
                        return openssh_block(o, &b, info);
                return pem_block(o, &b, format, info);
        }
        if (public_seen || looks_public(s, n))
                return fail(
                    o, CM_SSHKEY_E_PUBLIC,
                    "this is a public key; give the private key (the file without "
                    ".pub, e.g. ~/.ssh/id_ed25519)");
        if (n >= 20 && memcmp(s, "PuTTY-User-Key-File-", 20) == 0)
                return fail(o, CM_SSHKEY_E_FORMAT,
                            "a PuTTY key is not supported; export it in OpenSSH format "
                            "(puttygen KEY.ppk -O private-openssh -o KEY)");
        return fail(
            o, CM_SSHKEY_E_NOT_A_KEY,
            "not a private key: expected an OpenSSH (-----BEGIN OPENSSH PRIVATE "
            "KEY-----) or PEM (-----BEGIN EC PRIVATE KEY----- or -----BEGIN PRIVATE "
            "KEY-----) key");
}

cm_sshkey_err_t cm_sshkey_inspect(const unsigned char *key, size_t len,
                                  cm_sshkey_info_t *info, char *errstr,
                                  size_t errstr_size)
{
        out_t o = {errstr, errstr_size};
        if (errstr && errstr_size)
                errstr[0] = '\0';
        if (info)
                memset(info, 0, sizeof(*info));
        if (len > CM_SSHKEY_MAX_LEN)
                return fail(&o, CM_SSHKEY_E_TOO_LARGE,
                            "%zu bytes is too large for an SSH private key (at most %d)",
                            len, CM_SSHKEY_MAX_LEN);
        const char *s = (const char *)key;
        if (!key)
                len = 0;
        while (len && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
                s++;
                len--;
        }
        if (len == 0)
                return fail(&o, CM_SSHKEY_E_EMPTY, "the key is empty");
        if (sodium_init() < 0)
                return fail(&o, CM_SSHKEY_E_NOMEM, "libsodium could not be initialised");
        cm_sshkey_err_t rc = dispatch(&o, s, len, info);
        if (rc != CM_SSHKEY_OK && info)
                memset(info, 0, sizeof(*info));
        return rc;
}
