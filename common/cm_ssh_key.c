/*
 * cm_ssh_key.c - private key detection and the cluster key object, public key parsing and
 * fingerprints: the pure part of cm/ssh.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libssh2.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "cm/ssh.h"
#include "cm_ssh_int.h"

struct cm_ssh_key_s {
        unsigned char *pem; /* sodium_malloc'd: guard pages, mlock'd, zeroed on free */
        size_t len;
        cm_ssh_key_type_t type;
};

const char *cm_ssh_key_type_name(cm_ssh_key_type_t type)
{
        switch (type) {
        case CM_SSH_KEY_ED25519:
                return "ed25519";
        case CM_SSH_KEY_ECDSA:
                return "ECDSA";
        case CM_SSH_KEY_RSA:
                return "RSA";
        case CM_SSH_KEY_DSA:
                return "DSA";
        case CM_SSH_KEY_SK:
                return "security-key";
        default:
                return "unknown";
        }
}

/* A big-endian SSH "string" at *p (of end): its bytes and length; -1 if truncated. */
static int read_string(const unsigned char **p, const unsigned char *end,
                       const unsigned char **s, size_t *len)
{
        if (end - *p < 4)
                return -1;
        uint32_t n = ((uint32_t)(*p)[0] << 24) | ((uint32_t)(*p)[1] << 16) |
                     ((uint32_t)(*p)[2] << 8) | (*p)[3];
        *p += 4;
        if ((size_t)(end - *p) < n)
                return -1;
        *s = *p;
        *len = n;
        *p += n;
        return 0;
}

static int str_eq(const unsigned char *s, size_t len, const char *lit)
{
        return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

/* The type of an SSH public key type name ("ssh-ed25519", "ecdsa-sha2-nistp256", ...). */
static cm_ssh_key_type_t type_of_name(const unsigned char *s, size_t len)
{
        if (str_eq(s, len, "ssh-ed25519"))
                return CM_SSH_KEY_ED25519;
        if (str_eq(s, len, "ecdsa-sha2-nistp256") ||
            str_eq(s, len, "ecdsa-sha2-nistp384") ||
            str_eq(s, len, "ecdsa-sha2-nistp521"))
                return CM_SSH_KEY_ECDSA;
        if (str_eq(s, len, "ssh-rsa"))
                return CM_SSH_KEY_RSA;
        if (str_eq(s, len, "ssh-dss"))
                return CM_SSH_KEY_DSA;
        if (len > 3 && memcmp(s, "sk-", 3) == 0)
                return CM_SSH_KEY_SK;
        return CM_SSH_KEY_UNKNOWN;
}

/* Finds "-----BEGIN <label>-----" in key: copies the label, points *body after the line
 * marker; NULL if there is none. */
static const char *pem_label(const char *key, size_t len, char *label, size_t label_size,
                             const char **body)
{
        static const char begin[] = "-----BEGIN ";
        const char *p = memmem(key, len, begin, sizeof(begin) - 1);
        if (p == NULL)
                return NULL;
        p += sizeof(begin) - 1;
        const char *end = memmem(p, len - (size_t)(p - key), "-----", 5);
        if (end == NULL || (size_t)(end - p) >= label_size)
                return NULL;
        memcpy(label, p, (size_t)(end - p));
        label[end - p] = '\0';
        *body = end + 5;
        return label;
}

/* OpenSSH's own format: "openssh-key-v1\0", cipher, kdf, kdf options, count, public key.
 */
static cm_ssh_key_type_t detect_openssh(const char *body, size_t body_len, int *encrypted)
{
        const char *end = memmem(body, body_len, "-----END OPENSSH PRIVATE KEY-----", 33);
        if (end == NULL)
                return CM_SSH_KEY_UNKNOWN;
        size_t b64_len = (size_t)(end - body);
        size_t cap = b64_len / 4 * 3 + 3;
        unsigned char *bin = malloc(cap ? cap : 1);
        size_t bin_len = 0;
        cm_ssh_key_type_t type = CM_SSH_KEY_UNKNOWN;
        if (bin == NULL)
                return CM_SSH_KEY_UNKNOWN;
        if (sodium_base642bin(bin, cap, body, b64_len, " \t\r\n", &bin_len, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0)
                goto out;
        static const char magic[] = "openssh-key-v1"; /* with its NUL: 15 bytes */
        if (bin_len < sizeof(magic) || memcmp(bin, magic, sizeof(magic)) != 0)
                goto out;
        const unsigned char *p = bin + sizeof(magic), *e = bin + bin_len, *s, *pub;
        size_t n, pub_len;
        if (read_string(&p, e, &s, &n) != 0)
                goto out;
        int enc = !str_eq(s, n, "none");
        if (read_string(&p, e, &s, &n) != 0 || read_string(&p, e, &s, &n) != 0 ||
            e - p < 4)
                goto out;
        p += 4; /* number of keys: OpenSSH writes 1 */
        if (read_string(&p, e, &pub, &pub_len) != 0 ||
            read_string(&pub, pub + pub_len, &s, &n) != 0)
                goto out;
        type = type_of_name(s, n);
        if (encrypted != NULL)
                *encrypted = enc;
out:
        sodium_memzero(bin, cap);
        free(bin);
        return type;
}

static int refuse_password_cb(char *buf, int size, int rwflag, void *u)
{
        (void)buf, (void)size, (void)rwflag, (void)u;
        return -1;
}

/* PEM formats through OpenSSL (which parses PKCS#1, SEC1, DSA and PKCS#8 alike). */
static cm_ssh_key_type_t detect_pem(const char *key, size_t len, const char *label,
                                    const char *body, int *encrypted)
{
        if (strcmp(label, "ENCRYPTED PRIVATE KEY") == 0) {
                *encrypted = 1;
                return CM_SSH_KEY_UNKNOWN; /* the type is inside the encryption */
        }
        /* "Proc-Type: 4,ENCRYPTED" of a traditional PEM key ('-' and ':' are not base64)
         */
        const char *proc = memmem(body, len - (size_t)(body - key), "Proc-Type:", 10);
        const char *eol = proc ? memchr(proc, '\n', len - (size_t)(proc - key)) : NULL;
        if (proc != NULL &&
            memmem(proc, eol ? (size_t)(eol - proc) : len - (size_t)(proc - key),
                   "ENCRYPTED", 9) != NULL) {
                *encrypted = 1;
                if (strcmp(label, "RSA PRIVATE KEY") == 0)
                        return CM_SSH_KEY_RSA;
                if (strcmp(label, "EC PRIVATE KEY") == 0)
                        return CM_SSH_KEY_ECDSA;
                if (strcmp(label, "DSA PRIVATE KEY") == 0)
                        return CM_SSH_KEY_DSA;
                return CM_SSH_KEY_UNKNOWN;
        }
        if (len > INT32_MAX)
                return CM_SSH_KEY_UNKNOWN;
        BIO *bio = BIO_new_mem_buf(key, (int)len);
        if (bio == NULL)
                return CM_SSH_KEY_UNKNOWN;
        EVP_PKEY *pk = PEM_read_bio_PrivateKey(bio, NULL, refuse_password_cb, NULL);
        BIO_free(bio);
        cm_ssh_key_type_t type = CM_SSH_KEY_UNKNOWN;
        if (pk != NULL) {
                switch (EVP_PKEY_get_base_id(pk)) {
                case EVP_PKEY_ED25519:
                        type = CM_SSH_KEY_ED25519;
                        break;
                case EVP_PKEY_EC: {
                        char group[64] = "";
                        size_t glen = 0;
                        EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen);
                        /* the curves SSH defines (nistp256/384/521); others are unknown
                         */
                        if (strcmp(group, "prime256v1") == 0 ||
                            strcmp(group, "secp384r1") == 0 ||
                            strcmp(group, "secp521r1") == 0)
                                type = CM_SSH_KEY_ECDSA;
                        break;
                }
                case EVP_PKEY_RSA:
                case EVP_PKEY_RSA_PSS:
                        type = CM_SSH_KEY_RSA;
                        break;
                case EVP_PKEY_DSA:
                        type = CM_SSH_KEY_DSA;
                        break;
                default:
                        break;
                }
                EVP_PKEY_free(pk);
        }
        ERR_clear_error();
        return type;
}

cm_ssh_key_type_t cm_ssh_key_detect(const unsigned char *key, size_t len, int *encrypted)
{
        int enc = 0;
        char label[64];
        const char *body;
        cm_ssh_key_type_t type = CM_SSH_KEY_UNKNOWN;
        (void)cm_ssh_global_init();
        if (key != NULL && len > 0 &&
            pem_label((const char *)key, len, label, sizeof(label), &body) != NULL) {
                if (strcmp(label, "OPENSSH PRIVATE KEY") == 0)
                        type = detect_openssh(
                            body, len - (size_t)(body - (const char *)key), &enc);
                else if (strstr(label, "PRIVATE KEY") != NULL)
                        type = detect_pem((const char *)key, len, label, body, &enc);
        }
        if (encrypted != NULL)
                *encrypted = enc;
        return type;
}

int cm_ssh_key_check(const unsigned char *key, size_t len, char *errstr,
                     size_t errstr_size)
{
        int enc = 0;
        cm_ssh_key_type_t type = cm_ssh_key_detect(key, len, &enc);
        if (key == NULL || len == 0) {
                snprintf(errstr, errstr_size, "SSH private key is empty");
                return -1;
        }
        if (type == CM_SSH_KEY_RSA) {
                snprintf(
                    errstr, errstr_size,
                    "RSA keys are not supported: this manager's libssh2 (%s) signs with "
                    "RSA keys only as ssh-rsa (SHA-1), which OpenSSH 8.8 and later "
                    "refuse "
                    "by default (signature algorithm ssh-rsa not in "
                    "PubkeyAcceptedAlgorithms); use an ed25519 key (ssh-keygen -t "
                    "ed25519) or an ECDSA key (ssh-keygen -t ecdsa)",
                    libssh2_version(0) ? libssh2_version(0) : "1.10");
                return -1;
        }
        if (enc) {
                snprintf(
                    errstr, errstr_size,
                    "SSH private key is encrypted with a passphrase; give the key "
                    "unencrypted (ssh-keygen -p -N '' -f KEY on a copy): it is sealed "
                    "at rest by the manager");
                return -1;
        }
        switch (type) {
        case CM_SSH_KEY_ED25519:
        case CM_SSH_KEY_ECDSA:
                return 0;
        case CM_SSH_KEY_DSA:
                snprintf(errstr, errstr_size,
                         "DSA keys are not supported (OpenSSH disabled ssh-dss); use an "
                         "ed25519 or ECDSA key");
                return -1;
        case CM_SSH_KEY_SK:
                snprintf(errstr, errstr_size,
                         "security-key (FIDO) SSH keys need a hardware token and are not "
                         "supported; use an ed25519 or ECDSA key");
                return -1;
        default:
                snprintf(errstr, errstr_size,
                         "not an SSH private key this manager can use: expected an "
                         "unencrypted ed25519 or ECDSA (nistp256/384/521) private key in "
                         "OpenSSH or PEM format");
                return -1;
        }
}

int cm_ssh_fingerprint(const unsigned char *blob, size_t len, char *out, size_t out_size)
{
        unsigned char h[crypto_hash_sha256_BYTES];
        /* 32 bytes: 43 base64 characters unpadded */
        if (out_size < 7 + 43 + 1)
                return -1;
        (void)cm_ssh_global_init();
        crypto_hash_sha256(h, blob, len);
        memcpy(out, "SHA256:", 7);
        sodium_bin2base64(out + 7, out_size - 7, h, sizeof(h),
                          sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
        return 0;
}

int cm_ssh_pubkey_parse(const char *line, char *type, size_t type_size,
                        unsigned char **blob, size_t *blob_len, char *errstr,
                        size_t errstr_size)
{
        *blob = NULL;
        *blob_len = 0;
        if (line == NULL)
                line = "";
        const char *p = line + strspn(line, " \t");
        size_t tlen = strcspn(p, " \t\r\n");
        const char *b64 = p + tlen;
        b64 += strspn(b64, " \t");
        size_t blen = strcspn(b64, " \t\r\n");
        if (tlen == 0 || blen == 0 || tlen >= type_size) {
                snprintf(errstr, errstr_size, "expected \"type base64\", got \"%.80s\"",
                         line);
                return -1;
        }
        (void)cm_ssh_global_init();
        size_t cap = blen / 4 * 3 + 3;
        unsigned char *bin = malloc(cap);
        size_t n = 0;
        if (bin == NULL) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
        }
        const unsigned char *q = bin, *s;
        size_t slen;
        if (sodium_base642bin(bin, cap, b64, blen, NULL, &n, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            read_string(&q, bin + n, &s, &slen) != 0 || slen != tlen ||
            memcmp(s, p, tlen) != 0) {
                snprintf(errstr, errstr_size,
                         "\"%.*s %.*s\" is not a %.*s public key (bad base64 or type)",
                         (int)(tlen > 40 ? 40 : tlen), p, (int)(blen > 24 ? 24 : blen),
                         b64, (int)(tlen > 40 ? 40 : tlen), p);
                free(bin);
                return -1;
        }
        memcpy(type, p, tlen);
        type[tlen] = '\0';
        *blob = bin;
        *blob_len = n;
        return 0;
}

int cm_ssh_pubkey_fingerprint(const char *line, char *out, size_t out_size)
{
        char type[64], err[160];
        unsigned char *blob;
        size_t len;
        if (cm_ssh_pubkey_parse(line, type, sizeof(type), &blob, &len, err,
                                sizeof(err)) != 0)
                return -1;
        int rc = cm_ssh_fingerprint(blob, len, out, out_size);
        free(blob);
        return rc;
}

char *cm_ssh_format_peer(const char *host, int port, char *out, size_t out_size)
{
        if (host != NULL && strchr(host, ':') != NULL)
                snprintf(out, out_size, "[%s]:%d", host, port);
        else
                snprintf(out, out_size, "%s:%d", host ? host : "", port);
        return out;
}

cm_ssh_err_t cm_ssh_key_new(const unsigned char *key, size_t len, cm_ssh_key_t **out,
                            char *errstr, size_t errstr_size)
{
        *out = NULL;
        if (cm_ssh_global_init() != 0) {
                snprintf(errstr, errstr_size, "libssh2 or libsodium failed to initialize");
                return CM_SSH_ERR_KEY;
        }
        if (cm_ssh_key_check(key, len, errstr, errstr_size) != 0)
                return CM_SSH_ERR_KEY;
        cm_ssh_key_t *k = calloc(1, sizeof(*k));
        /* NUL-terminated: libssh2 1.10 runs strlen() over the key despite its length (seen
           reading into sodium_malloc's guard page) */
        if (k == NULL || (k->pem = sodium_malloc(len + 1)) == NULL) {
                free(k);
                snprintf(errstr, errstr_size, "out of memory for the SSH key");
                return CM_SSH_ERR_KEY;
        }
        memcpy(k->pem, key, len);
        k->pem[len] = '\0';
        k->len = len;
        k->type = cm_ssh_key_detect(key, len, NULL);
        *out = k;
        return CM_SSH_OK;
}

cm_ssh_key_type_t cm_ssh_key_type(const cm_ssh_key_t *key)
{
        return key ? key->type : CM_SSH_KEY_UNKNOWN;
}

const unsigned char *cm_ssh_key_bytes(const cm_ssh_key_t *key, size_t *len)
{
        *len = key->len;
        return key->pem;
}

void cm_ssh_key_free(cm_ssh_key_t *key)
{
        if (key == NULL)
                return;
        sodium_free(key->pem); /* zeroes before unmapping */
        free(key);
}

const char *cm_ssh_err2str(cm_ssh_err_t err)
{
        switch (err) {
        case CM_SSH_OK:
                return "success";
        case CM_SSH_ERR_KEY:
                return "unusable SSH private key";
        case CM_SSH_ERR_CONNECT:
                return "cannot connect";
        case CM_SSH_ERR_TIMEOUT:
                return "timed out";
        case CM_SSH_ERR_HOSTKEY:
                return "host key mismatch";
        case CM_SSH_ERR_AUTH:
                return "authentication failed";
        case CM_SSH_ERR_PROTOCOL:
                return "SSH protocol error";
        case CM_SSH_ERR_EXIT:
                return "remote command failed";
        case CM_SSH_ERR_SFTP:
                return "SFTP error";
        case CM_SSH_ERR_CANCELED:
                return "canceled";
        case CM_SSH_ERR_ARG:
                return "invalid argument";
        }
        return "unknown error";
}
