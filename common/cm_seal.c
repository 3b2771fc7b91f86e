/*
 * cm_seal.c - sealed boxes for secrets, and the key files they need.
 *
 * Key file problems are named precisely (file, mode, line) because they stop a service at
 * start and an operator has to fix them by hand; sealed-data problems are not detailed,
 * since an attacker probing with tampered data must learn nothing beyond "does not open".
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cm/err.h"
#include "cm/seal.h"

_Static_assert(CM_SEAL_KEY_BYTES == crypto_box_PUBLICKEYBYTES, "public key size");
_Static_assert(CM_SEAL_KEY_BYTES == crypto_box_SECRETKEYBYTES, "secret key size");
_Static_assert(CM_SEAL_OVERHEAD == crypto_box_SEALBYTES, "seal overhead");

/* A key file is two short lines; anything much bigger is not one. */
#define KEY_FILE_MAX 1024

struct cm_seal_keypair_s {
        cm_seal_pubkey_t pk;
        unsigned char *sk; /* sodium_malloc'd, CM_SEAL_KEY_BYTES */
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_result = -1;

static void do_init(void)
{
        init_result = sodium_init() < 0 ? -1 : 0;
}

int cm_seal_init(void)
{
        pthread_once(&init_once, do_init);
        return init_result;
}

#define INIT_OR_FAIL(errstr, size)                                                       \
        do {                                                                             \
                if (cm_seal_init() != 0) {                                               \
                        cm_seterr(errstr, size, "libsodium failed to initialize");       \
                        return CM_SEAL_ERR_INIT;                                         \
                }                                                                        \
        } while (0)

const char *cm_seal_err2str(cm_seal_err_t err)
{
        switch (err) {
        case CM_SEAL_OK:
                return "success";
        case CM_SEAL_ERR_INIT:
                return "libsodium failed to initialize";
        case CM_SEAL_ERR_ARG:
                return "invalid argument";
        case CM_SEAL_ERR_NOMEM:
                return "out of memory";
        case CM_SEAL_ERR_IO:
                return "key file cannot be read or written";
        case CM_SEAL_ERR_FORMAT:
                return "malformed key";
        case CM_SEAL_ERR_MODE:
                return "secret key file is accessible by group or others";
        case CM_SEAL_ERR_EXISTS:
                return "key file already exists";
        case CM_SEAL_ERR_MISMATCH:
                return "secret key does not match public key";
        case CM_SEAL_ERR_KEY:
                return "unusable public key";
        case CM_SEAL_ERR_OPEN:
                return "sealed data is tampered, truncated or for another key";
        }
        return "unknown error";
}

/* ---- key files ----------------------------------------------------------------------
 */

/* What a key file holds, for messages and the header line. */
typedef struct {
        const char *what; /* "public key file" */
        const char *header;
        bool secret;
} keyfile_kind_t;

static const keyfile_kind_t PUBLIC_KIND = {"public key file", CM_SEAL_PUBLIC_HEADER,
                                           false};
static const keyfile_kind_t SECRET_KIND = {"secret key file", CM_SEAL_SECRET_HEADER,
                                           true};

/* Reads the whole of path into buf (at most size - 1 bytes, NUL-terminated). For a secret
 * file, checks it is a regular file no one else may access, on the opened descriptor so
 * that what is checked is what is read. */
static cm_seal_err_t read_key_file(const keyfile_kind_t *kind, const char *path,
                                   char *buf, size_t size, size_t *len, char *errstr,
                                   size_t errstr_size)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                cm_seterr(errstr, errstr_size, "cannot open %s \"%s\": %s", kind->what,
                          path, strerror(errno));
                return CM_SEAL_ERR_IO;
        }
        struct stat st;
        if (fstat(fd, &st) != 0) {
                cm_seterr(errstr, errstr_size, "cannot stat %s \"%s\": %s", kind->what,
                          path, strerror(errno));
                close(fd);
                return CM_SEAL_ERR_IO;
        }
        if (!S_ISREG(st.st_mode)) {
                cm_seterr(errstr, errstr_size, "%s \"%s\" is not a regular file",
                          kind->what, path);
                close(fd);
                return CM_SEAL_ERR_IO;
        }
        if (kind->secret && (st.st_mode & (S_IRWXG | S_IRWXO))) {
                cm_seterr(
                    errstr, errstr_size,
                    "%s \"%s\" has mode %04o: it must not be accessible by group or "
                    "others (chmod 600 \"%s\")",
                    kind->what, path, (unsigned)(st.st_mode & 07777), path);
                close(fd);
                return CM_SEAL_ERR_MODE;
        }
        size_t n = 0;
        for (;;) {
                if (n == size - 1) {
                        cm_seterr(errstr, errstr_size,
                                  "%s \"%s\" is larger than %zu bytes: not a cm key file",
                                  kind->what, path, size - 1);
                        close(fd);
                        return CM_SEAL_ERR_FORMAT;
                }
                ssize_t r = read(fd, buf + n, size - 1 - n);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        cm_seterr(errstr, errstr_size, "cannot read %s \"%s\": %s",
                                  kind->what, path, strerror(errno));
                        close(fd);
                        return CM_SEAL_ERR_IO;
                }
                if (r == 0)
                        break;
                n += (size_t)r;
        }
        close(fd);
        buf[n] = '\0';
        *len = n;
        return CM_SEAL_OK;
}

static bool is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Decodes the standard, padded base64 in [b64, b64 + len) into exactly CM_SEAL_KEY_BYTES.
 * scratch (at least len bytes) receives the decoded bytes first, so that a wrong length
 * can be told apart from bad base64; the caller zeroes it when it held a secret.
 */
static cm_seal_err_t decode_key(unsigned char *key, const char *b64, size_t len,
                                unsigned char *scratch, size_t scratch_size,
                                const char *what, const char *path, char *errstr,
                                size_t errstr_size)
{
        size_t bin_len = 0;
        const char *end = NULL;
        if (len == 0 ||
            sodium_base642bin(scratch, scratch_size, b64, len, NULL, &bin_len, &end,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            end != b64 + len) {
                cm_seterr(errstr, errstr_size, "%s%s%s%s: the key is not valid base64",
                          what, path ? " \"" : "", path ? path : "", path ? "\"" : "");
                return CM_SEAL_ERR_FORMAT;
        }
        if (bin_len != CM_SEAL_KEY_BYTES) {
                cm_seterr(errstr, errstr_size,
                          "%s%s%s%s: the key is %zu bytes, expected %d", what,
                          path ? " \"" : "", path ? path : "", path ? "\"" : "", bin_len,
                          CM_SEAL_KEY_BYTES);
                return CM_SEAL_ERR_FORMAT;
        }
        memcpy(key, scratch, CM_SEAL_KEY_BYTES);
        return CM_SEAL_OK;
}

/* Parses a key file's text: the header line, one base64 line, nothing else but blank
 * space. Never quotes the text: it may be a secret, or another secret file named by
 * mistake. */
static cm_seal_err_t parse_key_file(const keyfile_kind_t *kind, const char *path,
                                    char *text, size_t len, unsigned char *key,
                                    char *errstr, size_t errstr_size)
{
        size_t hlen = strlen(kind->header);
        if (len < hlen || memcmp(text, kind->header, hlen) != 0 ||
            (len > hlen && text[hlen] != '\n' && text[hlen] != '\r')) {
                cm_seterr(errstr, errstr_size,
                          "%s \"%s\" does not start with the line \"%s\": not a cm %s "
                          "(cm-keygen writes one)",
                          kind->what, path, kind->header, kind->what);
                return CM_SEAL_ERR_FORMAT;
        }
        char *p = text + hlen;
        while (p < text + len && is_space(*p))
                p++;
        char *b64 = p;
        while (p < text + len && !is_space(*p))
                p++;
        char *b64_end = p;
        while (p < text + len && is_space(*p))
                p++;
        if (p != text + len) {
                cm_seterr(
                    errstr, errstr_size,
                    "%s \"%s\": unexpected text after the key (a key file has 2 lines)",
                    kind->what, path);
                return CM_SEAL_ERR_FORMAT;
        }
        if (b64 == b64_end) {
                cm_seterr(errstr, errstr_size, "%s \"%s\": the key line is missing",
                          kind->what, path);
                return CM_SEAL_ERR_FORMAT;
        }
        unsigned char scratch[KEY_FILE_MAX];
        cm_seal_err_t err =
            decode_key(key, b64, (size_t)(b64_end - b64), scratch, sizeof(scratch),
                       kind->what, path, errstr, errstr_size);
        sodium_memzero(scratch, sizeof(scratch));
        return err;
}

static cm_seal_err_t load_key(const keyfile_kind_t *kind, const char *path,
                              unsigned char *key, char *errstr, size_t errstr_size)
{
        char buf[KEY_FILE_MAX];
        size_t len = 0;
        cm_seal_err_t err =
            read_key_file(kind, path, buf, sizeof(buf), &len, errstr, errstr_size);
        if (err == CM_SEAL_OK)
                err = parse_key_file(kind, path, buf, len, key, errstr, errstr_size);
        sodium_memzero(buf, sizeof(buf));
        return err;
}

cm_seal_err_t cm_seal_pubkey_load(cm_seal_pubkey_t *pk, const char *public_key_file,
                                  char *errstr, size_t errstr_size)
{
        INIT_OR_FAIL(errstr, errstr_size);
        if (!pk || !public_key_file) {
                cm_seterr(errstr, errstr_size, "no public key file given");
                return CM_SEAL_ERR_ARG;
        }
        return load_key(&PUBLIC_KIND, public_key_file, pk->bytes, errstr, errstr_size);
}

static cm_seal_keypair_t *keypair_new(void)
{
        cm_seal_keypair_t *kp = calloc(1, sizeof(*kp));
        if (!kp)
                return NULL;
        kp->sk = sodium_malloc(CM_SEAL_KEY_BYTES);
        if (!kp->sk) {
                free(kp);
                return NULL;
        }
        return kp;
}

void cm_seal_keypair_destroy(cm_seal_keypair_t *kp)
{
        if (!kp)
                return;
        sodium_memzero(kp->sk, CM_SEAL_KEY_BYTES);
        sodium_free(kp->sk);
        free(kp);
}

const cm_seal_pubkey_t *cm_seal_keypair_pubkey(const cm_seal_keypair_t *kp)
{
        return &kp->pk;
}

cm_seal_err_t cm_seal_keypair_load(cm_seal_keypair_t **kpp, const char *public_key_file,
                                   const char *secret_key_file, char *errstr,
                                   size_t errstr_size)
{
        INIT_OR_FAIL(errstr, errstr_size);
        if (!kpp || !public_key_file || !secret_key_file || !*public_key_file ||
            !*secret_key_file) {
                cm_seterr(errstr, errstr_size,
                          "both a public key file and a secret key file must be given");
                return CM_SEAL_ERR_ARG;
        }
        *kpp = NULL;
        cm_seal_keypair_t *kp = keypair_new();
        if (!kp) {
                cm_seterr(errstr, errstr_size, "out of memory for the key pair");
                return CM_SEAL_ERR_NOMEM;
        }
        cm_seal_err_t err =
            load_key(&PUBLIC_KIND, public_key_file, kp->pk.bytes, errstr, errstr_size);
        if (err == CM_SEAL_OK)
                err =
                    load_key(&SECRET_KIND, secret_key_file, kp->sk, errstr, errstr_size);
        if (err == CM_SEAL_OK) {
                unsigned char derived[CM_SEAL_KEY_BYTES];
                if (crypto_scalarmult_base(derived, kp->sk) != 0 ||
                    sodium_memcmp(derived, kp->pk.bytes, CM_SEAL_KEY_BYTES) != 0) {
                        cm_seterr(
                            errstr, errstr_size,
                            "secret key file \"%s\" does not belong to public key file "
                            "\"%s\"",
                            secret_key_file, public_key_file);
                        err = CM_SEAL_ERR_MISMATCH;
                }
        }
        if (err != CM_SEAL_OK) {
                cm_seal_keypair_destroy(kp);
                return err;
        }
        *kpp = kp;
        return CM_SEAL_OK;
}

/* ---- generating ----------------------------------------------------------------------
 */

/* "<header>\n<base64>\n" of key, in sodium_malloc'd memory (it may hold the secret). */
static char *key_file_text(const char *header, const unsigned char *key, size_t *len)
{
        size_t b64_size =
            sodium_base64_ENCODED_LEN(CM_SEAL_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL);
        size_t hlen = strlen(header);
        size_t size = hlen + 1 + b64_size + 1;
        char *text = sodium_malloc(size);
        if (!text)
                return NULL;
        memcpy(text, header, hlen);
        text[hlen] = '\n';
        sodium_bin2base64(text + hlen + 1, b64_size, key, CM_SEAL_KEY_BYTES,
                          sodium_base64_VARIANT_ORIGINAL);
        size_t n = strlen(text);
        text[n] = '\n'; /* replaces the NUL that b64_size made room for */
        *len = n + 1;
        return text;
}

static int write_all(int fd, const char *buf, size_t len)
{
        while (len > 0) {
                ssize_t w = write(fd, buf, len);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return -1;
                buf += w;
                len -= (size_t)w;
        }
        return 0;
}

/*
 * Writes text to a new file with exactly mode. Without force, path itself is created
 * (O_EXCL: an existing file is never touched) and *tmp is NULL. With force, a temporary
 * file beside path is written and returned in *tmp (malloc'd) for the caller to rename
 * over path.
 */
static cm_seal_err_t write_new_file(const char *what, const char *path, const char *text,
                                    size_t len, mode_t mode, bool force, char **tmp,
                                    char *errstr, size_t errstr_size)
{
        int fd;
        *tmp = NULL;
        if (force) {
                if (asprintf(tmp, "%s.tmp.XXXXXX", path) < 0) {
                        *tmp = NULL;
                        cm_seterr(errstr, errstr_size, "out of memory");
                        return CM_SEAL_ERR_NOMEM;
                }
                fd = mkostemp(*tmp, O_CLOEXEC); /* created 0600 */
        } else {
                fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        }
        if (fd < 0) {
                int e = errno;
                cm_seterr(errstr, errstr_size, "cannot create %s \"%s\": %s", what,
                          force ? *tmp : path, strerror(e));
                free(*tmp);
                *tmp = NULL;
                return e == EEXIST ? CM_SEAL_ERR_EXISTS : CM_SEAL_ERR_IO;
        }
        const char *created = force ? *tmp : path;
        /* fchmod: the umask must not loosen nor tighten the mode operators rely on */
        if (fchmod(fd, mode) != 0 || write_all(fd, text, len) != 0 || fsync(fd) != 0) {
                cm_seterr(errstr, errstr_size, "cannot write %s \"%s\": %s", what,
                          created, strerror(errno));
                close(fd);
                unlink(created);
                free(*tmp);
                *tmp = NULL;
                return CM_SEAL_ERR_IO;
        }
        if (close(fd) != 0) {
                cm_seterr(errstr, errstr_size, "cannot write %s \"%s\": %s", what,
                          created, strerror(errno));
                unlink(created);
                free(*tmp);
                *tmp = NULL;
                return CM_SEAL_ERR_IO;
        }
        return CM_SEAL_OK;
}

static cm_seal_err_t refuse_existing(const char *what, const char *path, char *errstr,
                                     size_t errstr_size)
{
        struct stat st;
        if (lstat(path, &st) == 0) {
                cm_seterr(errstr, errstr_size,
                          "%s \"%s\" already exists: refusing to overwrite it", what,
                          path);
                return CM_SEAL_ERR_EXISTS;
        }
        if (errno != ENOENT) {
                cm_seterr(errstr, errstr_size, "cannot check %s \"%s\": %s", what, path,
                          strerror(errno));
                return CM_SEAL_ERR_IO;
        }
        return CM_SEAL_OK;
}

static bool same_file(const char *a, const char *b)
{
        struct stat sa, sb;
        if (strcmp(a, b) == 0)
                return true;
        return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
               sa.st_ino == sb.st_ino;
}

/* Writes both files of kp; see cm_seal_keypair_generate. */
static cm_seal_err_t write_pair(const cm_seal_keypair_t *kp, const char *public_key_file,
                                const char *secret_key_file, bool force, char *errstr,
                                size_t errstr_size)
{
        size_t slen = 0, plen = 0;
        char *stext = key_file_text(CM_SEAL_SECRET_HEADER, kp->sk, &slen);
        char *ptext = key_file_text(CM_SEAL_PUBLIC_HEADER, kp->pk.bytes, &plen);
        char *stmp = NULL, *ptmp = NULL;
        cm_seal_err_t err = CM_SEAL_OK;
        if (!stext || !ptext) {
                cm_seterr(errstr, errstr_size, "out of memory");
                err = CM_SEAL_ERR_NOMEM;
                goto out;
        }
        err = write_new_file(SECRET_KIND.what, secret_key_file, stext, slen, 0600, force,
                             &stmp, errstr, errstr_size);
        if (err != CM_SEAL_OK)
                goto out;
        err = write_new_file(PUBLIC_KIND.what, public_key_file, ptext, plen, 0644, force,
                             &ptmp, errstr, errstr_size);
        if (err != CM_SEAL_OK) {
                /* leave no half pair behind */
                unlink(force ? stmp : secret_key_file);
                goto out;
        }
        if (force) {
                if (rename(stmp, secret_key_file) != 0) {
                        cm_seterr(errstr, errstr_size,
                                  "cannot replace secret key file \"%s\": %s",
                                  secret_key_file, strerror(errno));
                        unlink(stmp);
                        unlink(ptmp);
                        err = CM_SEAL_ERR_IO;
                        goto out;
                }
                if (rename(ptmp, public_key_file) != 0) {
                        /* the secret is already replaced: say so, the pair is broken */
                        cm_seterr(
                            errstr, errstr_size,
                            "cannot replace public key file \"%s\": %s (secret key file "
                            "\"%s\" was already replaced: generate again)",
                            public_key_file, strerror(errno), secret_key_file);
                        unlink(ptmp);
                        err = CM_SEAL_ERR_IO;
                        goto out;
                }
        }
out:
        if (stext)
                sodium_free(stext); /* zeroes it */
        if (ptext)
                sodium_free(ptext);
        free(stmp);
        free(ptmp);
        return err;
}

cm_seal_err_t cm_seal_keypair_generate(const char *public_key_file,
                                       const char *secret_key_file, bool force,
                                       cm_seal_keypair_t **kpp, char *errstr,
                                       size_t errstr_size)
{
        INIT_OR_FAIL(errstr, errstr_size);
        if (kpp)
                *kpp = NULL;
        if (!public_key_file || !secret_key_file || !*public_key_file ||
            !*secret_key_file) {
                cm_seterr(errstr, errstr_size,
                          "both a public key file and a secret key file must be given");
                return CM_SEAL_ERR_ARG;
        }
        if (same_file(public_key_file, secret_key_file)) {
                cm_seterr(errstr, errstr_size,
                          "public and secret key files must differ (both are \"%s\")",
                          public_key_file);
                return CM_SEAL_ERR_ARG;
        }
        cm_seal_err_t err;
        if (!force) {
                if ((err = refuse_existing(SECRET_KIND.what, secret_key_file, errstr,
                                           errstr_size)) != CM_SEAL_OK ||
                    (err = refuse_existing(PUBLIC_KIND.what, public_key_file, errstr,
                                           errstr_size)) != CM_SEAL_OK)
                        return err;
        }
        cm_seal_keypair_t *kp = keypair_new();
        if (!kp) {
                cm_seterr(errstr, errstr_size, "out of memory for the key pair");
                return CM_SEAL_ERR_NOMEM;
        }
        crypto_box_keypair(kp->pk.bytes, kp->sk);
        err =
            write_pair(kp, public_key_file, secret_key_file, force, errstr, errstr_size);
        if (err != CM_SEAL_OK || !kpp)
                cm_seal_keypair_destroy(kp);
        else
                *kpp = kp;
        return err;
}

/* ---- public key as base64 ------------------------------------------------------------
 */

char *cm_seal_pubkey_to_base64(const cm_seal_pubkey_t *pk)
{
        size_t size =
            sodium_base64_ENCODED_LEN(CM_SEAL_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL);
        char *out = malloc(size);
        if (!out)
                return NULL;
        return sodium_bin2base64(out, size, pk->bytes, CM_SEAL_KEY_BYTES,
                                 sodium_base64_VARIANT_ORIGINAL);
}

cm_seal_err_t cm_seal_pubkey_from_base64(cm_seal_pubkey_t *pk, const char *b64,
                                         char *errstr, size_t errstr_size)
{
        INIT_OR_FAIL(errstr, errstr_size);
        if (!pk || !b64) {
                cm_seterr(errstr, errstr_size, "no public key given");
                return CM_SEAL_ERR_ARG;
        }
        size_t len = strlen(b64);
        while (len > 0 && is_space(*b64)) {
                b64++;
                len--;
        }
        while (len > 0 && is_space(b64[len - 1]))
                len--;
        unsigned char scratch[KEY_FILE_MAX];
        if (len > sizeof(scratch)) {
                cm_seterr(errstr, errstr_size,
                          "public key: %zu characters of base64, expected %zu", len,
                          (size_t)sodium_base64_ENCODED_LEN(
                              CM_SEAL_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL) -
                              1);
                return CM_SEAL_ERR_FORMAT;
        }
        return decode_key(pk->bytes, b64, len, scratch, sizeof(scratch), "public key",
                          NULL, errstr, errstr_size);
}

/* ---- sealing -------------------------------------------------------------------------
 */

cm_seal_err_t cm_seal_seal(const cm_seal_pubkey_t *pk, const void *plaintext, size_t len,
                           unsigned char **sealed, size_t *sealed_len, char *errstr,
                           size_t errstr_size)
{
        INIT_OR_FAIL(errstr, errstr_size);
        if (!pk || !sealed || !sealed_len || (!plaintext && len > 0)) {
                cm_seterr(errstr, errstr_size, "seal: missing argument");
                return CM_SEAL_ERR_ARG;
        }
        *sealed = NULL;
        *sealed_len = 0;
        if (len > SIZE_MAX - CM_SEAL_OVERHEAD ||
            len > crypto_box_MESSAGEBYTES_MAX - CM_SEAL_OVERHEAD) {
                cm_seterr(errstr, errstr_size,
                          "seal: plaintext of %zu bytes is too large", len);
                return CM_SEAL_ERR_ARG;
        }
        unsigned char *out = malloc(len + CM_SEAL_OVERHEAD);
        if (!out) {
                cm_seterr(errstr, errstr_size, "seal: out of memory for %zu bytes",
                          len + CM_SEAL_OVERHEAD);
                return CM_SEAL_ERR_NOMEM;
        }
        static const unsigned char empty[1];
        if (crypto_box_seal(out, len ? plaintext : empty, len, pk->bytes) != 0) {
                free(out);
                cm_seterr(errstr, errstr_size, "seal: the public key is unusable");
                return CM_SEAL_ERR_KEY;
        }
        *sealed = out;
        *sealed_len = len + CM_SEAL_OVERHEAD;
        return CM_SEAL_OK;
}

cm_seal_err_t cm_seal_open(const cm_seal_keypair_t *kp, const unsigned char *sealed,
                           size_t sealed_len, unsigned char **plaintext,
                           size_t *plaintext_len, char *errstr, size_t errstr_size)
{
        INIT_OR_FAIL(errstr, errstr_size);
        if (!kp || !plaintext || !plaintext_len || (!sealed && sealed_len > 0)) {
                cm_seterr(errstr, errstr_size, "open: missing argument");
                return CM_SEAL_ERR_ARG;
        }
        *plaintext = NULL;
        *plaintext_len = 0;
        if (sealed_len < CM_SEAL_OVERHEAD) {
                cm_seterr(
                    errstr, errstr_size,
                    "sealed data is %zu bytes, shorter than the %d every sealed box has",
                    sealed_len, CM_SEAL_OVERHEAD);
                return CM_SEAL_ERR_OPEN;
        }
        size_t len = sealed_len - CM_SEAL_OVERHEAD;
        unsigned char *out = malloc(len + 1);
        if (!out) {
                cm_seterr(errstr, errstr_size, "open: out of memory for %zu bytes",
                          len + 1);
                return CM_SEAL_ERR_NOMEM;
        }
        if (crypto_box_seal_open(out, sealed, sealed_len, kp->pk.bytes, kp->sk) != 0) {
                cm_seal_plaintext_free(out, len);
                cm_seterr(
                    errstr, errstr_size,
                    "sealed data does not open: tampered with, or sealed for another "
                    "key");
                return CM_SEAL_ERR_OPEN;
        }
        out[len] = '\0';
        *plaintext = out;
        *plaintext_len = len;
        return CM_SEAL_OK;
}

void cm_seal_plaintext_free(unsigned char *plaintext, size_t len)
{
        if (!plaintext)
                return;
        sodium_memzero(plaintext, len + 1); /* the NUL cm_seal_open added is ours too */
        free(plaintext);
}
