/*
 * cm_ssh_key.c - the cluster key object (the key rule is cm/sshkey.h's, shared with the
 * validation), public key parsing and fingerprints: the pure part of cm/ssh.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cm/ssh.h"
#include "cm/sshkey.h"
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

int cm_ssh_key_check(const unsigned char *key, size_t len, char *errstr,
                     size_t errstr_size)
{
        /* One rule for the whole manager: the validation's (cm/sshkey.h). */
        if (cm_sshkey_inspect(key, len, NULL, errstr, errstr_size) != CM_SSHKEY_OK)
                return -1;
        return 0;
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
                snprintf(errstr, errstr_size,
                         "libssh2 or libsodium failed to initialize");
                return CM_SSH_ERR_KEY;
        }
        cm_sshkey_info_t info;
        if (cm_sshkey_inspect(key, len, &info, errstr, errstr_size) != CM_SSHKEY_OK)
                return CM_SSH_ERR_KEY;
        cm_ssh_key_t *k = calloc(1, sizeof(*k));
        /* NUL-terminated: libssh2 1.10 runs strlen() over the key despite its length
           (seen reading into sodium_malloc's guard page) */
        if (k == NULL || (k->pem = sodium_malloc(len + 1)) == NULL) {
                free(k);
                snprintf(errstr, errstr_size, "out of memory for the SSH key");
                return CM_SSH_ERR_KEY;
        }
        memcpy(k->pem, key, len);
        k->pem[len] = '\0';
        k->len = len;
        k->type = info.type == CM_SSHKEY_ED25519 ? CM_SSH_KEY_ED25519 : CM_SSH_KEY_ECDSA;
        sodium_memzero(&info, sizeof(info));
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
