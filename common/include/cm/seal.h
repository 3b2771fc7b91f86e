/*
 * cm/seal.h - secrets (SSH keys, kubeconfigs) sealed with libsodium sealed boxes
 * (crypto_box_seal: X25519 + XSalsa20-Poly1305, an ephemeral sender key per message).
 *
 * Anyone holding the manager's public key can seal; only the key pair opens. cm-api and
 * cm-worker load the pair from the two files of the [seal] config section; GET
 * /v1/publickey serves cm_seal_pubkey_to_base64() so that outside publishers can seal
 * too.
 *
 * Key files (written by cm_seal_keypair_generate / cm-keygen) are two lines of text:
 *
 *     cm-seal-v1 x25519-public          cm-seal-v1 x25519-secret
 *     <base64 of the 32-byte key>       <base64 of the 32-byte key>
 *
 * base64 is the standard alphabet with padding (RFC 4648 §4). The secret key file must be
 * a regular file with no permission for group or others (e.g. 0600 or 0400); loading
 * refuses anything else, naming the file and its mode. The public key file is written
 * 0644.
 *
 * The secret key lives in sodium_malloc'd memory (guard pages, mlock where allowed) and
 * is zeroed when the key pair is destroyed. Every function is thread-safe; a key pair may
 * be used from many threads at once (it is never written after loading).
 */
#ifndef CM_SEAL_H
#define CM_SEAL_H

#include <stdbool.h>
#include <stddef.h>

#define CM_SEAL_KEY_BYTES 32 /* crypto_box_PUBLICKEYBYTES == crypto_box_SECRETKEYBYTES   \
                              */
#define CM_SEAL_OVERHEAD 48  /* crypto_box_SEALBYTES: sealed length = plaintext + this */

#define CM_SEAL_PUBLIC_HEADER "cm-seal-v1 x25519-public"
#define CM_SEAL_SECRET_HEADER "cm-seal-v1 x25519-secret"

typedef enum {
        CM_SEAL_OK = 0,
        CM_SEAL_ERR_INIT,     /* sodium_init() failed */
        CM_SEAL_ERR_ARG,      /* NULL or contradictory argument */
        CM_SEAL_ERR_NOMEM,    /* allocation failed */
        CM_SEAL_ERR_IO,       /* a key file cannot be opened, read or written */
        CM_SEAL_ERR_FORMAT,   /* a key file or base64 key is malformed (header, base64,
                                 length) */
        CM_SEAL_ERR_MODE,     /* the secret key file is accessible by group or others */
        CM_SEAL_ERR_EXISTS,   /* generate: a key file exists and overwriting was not asked
                               */
        CM_SEAL_ERR_MISMATCH, /* the secret key does not belong to the public key */
        CM_SEAL_ERR_KEY,      /* the public key is unusable (low-order point) */
        CM_SEAL_ERR_OPEN, /* sealed data tampered, truncated, or sealed for another key */
} cm_seal_err_t;

/* A public key: plain bytes, freely copied. */
typedef struct cm_seal_pubkey_s {
        unsigned char bytes[CM_SEAL_KEY_BYTES];
} cm_seal_pubkey_t;

/* A public key and its secret key (opaque: the secret never leaves cm_seal.c). */
typedef struct cm_seal_keypair_s cm_seal_keypair_t;

/* A static, human-readable name of err ("tampered or wrong key" ...). */
const char *cm_seal_err2str(cm_seal_err_t err);

/* Initializes libsodium once per process; every function below calls it, so calling it
 * first is only needed to fail early. Returns 0, or -1 if libsodium cannot start. */
int cm_seal_init(void);

/*
 * Loads a key pair from its two files and checks that they belong together. On success
 * *kpp is a new key pair owned by the caller (cm_seal_keypair_destroy). On failure errstr
 * names the file and the problem (never the key); the content of the secret key file is
 * never echoed.
 */
cm_seal_err_t cm_seal_keypair_load(cm_seal_keypair_t **kpp, const char *public_key_file,
                                   const char *secret_key_file, char *errstr,
                                   size_t errstr_size);

/*
 * Generates a new key pair and writes both files: the secret key file is created 0600
 * (never readable by anyone else, even for a moment), the public key file 0644. Without
 * force, refuses (CM_SEAL_ERR_EXISTS, naming the file) when either file exists, and
 * writes neither; with force, each file is replaced atomically (written beside it, then
 * renamed). The two paths must differ. If kpp is not NULL, *kpp receives the new pair
 * (caller owns it).
 */
cm_seal_err_t cm_seal_keypair_generate(const char *public_key_file,
                                       const char *secret_key_file, bool force,
                                       cm_seal_keypair_t **kpp, char *errstr,
                                       size_t errstr_size);

/* Zeroes the secret key and frees kp. NULL is a no-op. */
void cm_seal_keypair_destroy(cm_seal_keypair_t *kp);

/* The public half of kp; the pointer lives as long as kp. */
const cm_seal_pubkey_t *cm_seal_keypair_pubkey(const cm_seal_keypair_t *kp);

/* Loads a public key file alone (for processes that seal but never open). */
cm_seal_err_t cm_seal_pubkey_load(cm_seal_pubkey_t *pk, const char *public_key_file,
                                  char *errstr, size_t errstr_size);

/* Returns the base64 of pk (standard alphabet, padded, NUL-terminated), malloc'd: the
 * caller frees it. NULL on allocation failure. */
char *cm_seal_pubkey_to_base64(const cm_seal_pubkey_t *pk);

/* Parses the base64 of a public key (surrounding whitespace ignored) into *pk. */
cm_seal_err_t cm_seal_pubkey_from_base64(cm_seal_pubkey_t *pk, const char *b64,
                                         char *errstr, size_t errstr_size);

/*
 * Seals len bytes of plaintext (len 0 is allowed) for pk. On success *sealed is a
 * malloc'd buffer of *sealed_len = len + CM_SEAL_OVERHEAD bytes, owned by the caller
 * (free()). Two seals of the same plaintext differ (a fresh ephemeral key each time).
 */
cm_seal_err_t cm_seal_seal(const cm_seal_pubkey_t *pk, const void *plaintext, size_t len,
                           unsigned char **sealed, size_t *sealed_len, char *errstr,
                           size_t errstr_size);

/*
 * Opens sealed data with kp. On success *plaintext is a malloc'd buffer of *plaintext_len
 * bytes plus a terminating NUL (so a text secret is also a C string), owned by the
 * caller, who releases it with cm_seal_plaintext_free() so the secret is zeroed. Data
 * that was tampered with, truncated, or sealed for another key gives CM_SEAL_ERR_OPEN and
 * no output.
 */
cm_seal_err_t cm_seal_open(const cm_seal_keypair_t *kp, const unsigned char *sealed,
                           size_t sealed_len, unsigned char **plaintext,
                           size_t *plaintext_len, char *errstr, size_t errstr_size);

/* Zeroes and frees a plaintext returned by cm_seal_open (len as returned). NULL is a
 * no-op. */
void cm_seal_plaintext_free(unsigned char *plaintext, size_t len);

#endif
