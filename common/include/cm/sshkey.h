/*
 * cm/sshkey.h - what an SSH private key is, without trusting it: the key rule of DESIGN
 * §4 and §7 (an unencrypted ed25519 or ECDSA key in OpenSSH or PEM format), the key type,
 * and the public key in OpenSSH one-line form (for authorized_keys, known to the zke
 * jobs).
 *
 * Key material never reaches a message: errstr only names labels, cipher names and key
 * types. Decoded key bytes are wiped before they are freed. All functions are pure and
 * thread-safe.
 */
#ifndef CM_SSHKEY_H
#define CM_SSHKEY_H

#include <stddef.h>

/* Largest key text accepted; an ed25519 key is ~400 bytes, a P-521 PEM key ~400. */
#define CM_SSHKEY_MAX_LEN (16 * 1024)

typedef enum {
        CM_SSHKEY_ED25519 = 1,
        CM_SSHKEY_ECDSA_P256,
        CM_SSHKEY_ECDSA_P384,
        CM_SSHKEY_ECDSA_P521,
} cm_sshkey_type_t;

typedef enum {
        CM_SSHKEY_FORMAT_OPENSSH = 1, /* -----BEGIN OPENSSH PRIVATE KEY----- */
        CM_SSHKEY_FORMAT_PEM_EC,      /* -----BEGIN EC PRIVATE KEY----- (SEC 1) */
        CM_SSHKEY_FORMAT_PKCS8,       /* -----BEGIN PRIVATE KEY----- */
} cm_sshkey_format_t;

/* Why a key was refused (cm_sshkey_inspect's return value). */
typedef enum {
        CM_SSHKEY_OK = 0,
        CM_SSHKEY_E_EMPTY,       /* nothing but white space */
        CM_SSHKEY_E_TOO_LARGE,   /* over CM_SSHKEY_MAX_LEN */
        CM_SSHKEY_E_PUBLIC,      /* a public key was given */
        CM_SSHKEY_E_NOT_A_KEY,   /* no private key block at all */
        CM_SSHKEY_E_FORMAT,      /* a private key in a format we do not read (PuTTY...) */
        CM_SSHKEY_E_CORRUPT,     /* truncated, bad base64, inconsistent structure */
        CM_SSHKEY_E_ENCRYPTED,   /* passphrase-protected */
        CM_SSHKEY_E_RSA,         /* RSA: see DESIGN §7 */
        CM_SSHKEY_E_UNSUPPORTED, /* DSA, FIDO, other curves, X25519... */
        CM_SSHKEY_E_NOMEM,
} cm_sshkey_err_t;

/* ssh-ed25519 P-521: type (19) + space + base64 of a 172-byte blob (232) + NUL. */
#define CM_SSHKEY_PUBLIC_MAX 256

typedef struct cm_sshkey_info_s {
        cm_sshkey_type_t type;
        cm_sshkey_format_t format;
        /* "ssh-ed25519 AAAAC3Nza..." / "ecdsa-sha2-nistp256 AAAA...": no comment, no
         * newline */
        char public_key[CM_SSHKEY_PUBLIC_MAX];
} cm_sshkey_info_t;

/*
 * Inspects the private key text key[0..len) (need not be NUL-terminated). Returns
 * CM_SSHKEY_OK and fills *info (may be NULL) for an accepted key; otherwise the reason,
 * with a sentence for the user in errstr (no field name, no key material), e.g.
 * "the key is encrypted (cipher \"aes256-ctr\"); give an unencrypted key".
 */
cm_sshkey_err_t cm_sshkey_inspect(const unsigned char *key, size_t len,
                                  cm_sshkey_info_t *info, char *errstr,
                                  size_t errstr_size);

/* "ssh-ed25519", "ecdsa-sha2-nistp256", ... ; "unknown" otherwise. Static string. */
const char *cm_sshkey_type_name(cm_sshkey_type_t type);
/* "OpenSSH", "PEM EC", "PKCS#8"; static string. */
const char *cm_sshkey_format_name(cm_sshkey_format_t format);

#endif
