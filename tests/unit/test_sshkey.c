/*
 * test_sshkey.c - cm_sshkey_inspect against keys made at test time by ssh-keygen and
 * openssl (no key file is committed): every accepted type and format with its public key
 * checked against `ssh-keygen -y`, every refusal with its exact message, damaged keys,
 * and no key material in any message. Inputs are passed in buffers of exactly their
 * length (not NUL-terminated), so the sanitizer build catches any read past the end.
 */
#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/sshkey.h"
#include "../check_main.h"

static char g_dir[] = "/tmp/test_sshkey.XXXXXX";

/* Every key file, made in main() before the tests fork. */
static const struct {
        const char *file;
        const char *cmd; /* run in g_dir; %s = file */
} gen[] = {
    {"ed", "ssh-keygen -q -t ed25519 -N '' -C me@host -f %s"},
    {"edpem", "ssh-keygen -q -t ed25519 -m PEM -N '' -f %s"},
    {"ec256", "ssh-keygen -q -t ecdsa -b 256 -N '' -f %s"},
    {"ec384", "ssh-keygen -q -t ecdsa -b 384 -N '' -f %s"},
    {"ec521", "ssh-keygen -q -t ecdsa -b 521 -N '' -f %s"},
    {"ecpem", "ssh-keygen -q -t ecdsa -m PEM -N '' -f %s"},
    {"ecpem384", "ssh-keygen -q -t ecdsa -b 384 -m PEM -N '' -f %s"},
    {"ecp8", "ssh-keygen -q -t ecdsa -m PKCS8 -N '' -f %s"},
    {"edp8", "openssl genpkey -algorithm ed25519 -out %s"},
    {"ec521p8", "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -out %s"},
    {"ecparam", "openssl ecparam -name prime256v1 -genkey -out %s"},
    {"rsa", "ssh-keygen -q -t rsa -b 2048 -N '' -f %s"},
    {"rsapem", "ssh-keygen -q -t rsa -b 2048 -m PEM -N '' -f %s"},
    {"rsap8", "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s"},
    {"rsaenc", "ssh-keygen -q -t rsa -b 2048 -N passphrase -f %s"},
    {"edenc", "ssh-keygen -q -t ed25519 -N passphrase -f %s"},
    {"ecpemenc", "ssh-keygen -q -t ecdsa -m PEM -N passphrase -f %s"},
    {"ecp8enc", "ssh-keygen -q -t ecdsa -m PKCS8 -N passphrase -f %s"},
    {"edp8enc", "openssl genpkey -algorithm ed25519 -aes256 -pass pass:secret -out %s"},
    {"dsa", "ssh-keygen -q -t dsa -N '' -f %s"},
    {"dsapem", "ssh-keygen -q -t dsa -m PEM -N '' -f %s"},
    {"k1", "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -out %s"},
    {"x25519", "openssl genpkey -algorithm X25519 -out %s"},
    {"ed448", "openssl genpkey -algorithm ED448 -out %s"},
    {"pubpem", "openssl pkey -in ec256p8src -pubout -out %s"},
    {"rfc4716", "ssh-keygen -e -f ed.pub > %s"},
    {"cert",
     "openssl req -x509 -newkey ed25519 -nodes -keyout /dev/null -subj /CN=x -out %s "
     "2>/dev/null"},
    {"putty", "printf 'PuTTY-User-Key-File-3: ssh-ed25519\\nEncryption: none\\n' > %s"},
    {"garbage", "printf 'hello, this is not a key\\n' > %s"},
    /* the expected public keys: ssh-keygen -y, or for PKCS#8 ed25519 (which OpenSSH 9.2
     * cannot read) the raw key from openssl in the OpenSSH blob */
    {"expect",
     "for k in ed edpem ec256 ec384 ec521 ecpem ecpem384 ecp8 ec521p8 ecparam; do "
     "ssh-keygen -y -f $k | cut -d' ' -f1,2 > $k.expect || exit 1; done; "
     "{ printf 'ssh-ed25519 '; { printf '\\0\\0\\0\\013ssh-ed25519\\0\\0\\0\\040'; "
     "openssl pkey -in edp8 -pubout -outform DER | tail -c 32; } | base64 -w0; } "
     "> edp8.expect; : %s"},
};

/* The file's bytes in a malloc'd buffer of exactly its length. */
static unsigned char *slurp(const char *file, size_t *len)
{
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", g_dir, file);
        FILE *f = fopen(path, "rb");
        ck_assert_msg(f != NULL, "no key file %s", path);
        unsigned char tmp[65536];
        *len = fread(tmp, 1, sizeof(tmp), f);
        fclose(f);
        unsigned char *buf = malloc(*len ? *len : 1);
        memcpy(buf, tmp, *len);
        return buf;
}

static char *slurp_text(const char *file)
{
        size_t n;
        unsigned char *b = slurp(file, &n);
        char *s = malloc(n + 1);
        memcpy(s, b, n);
        s[n] = '\0';
        free(b);
        s[strcspn(s, "\n")] = '\0';
        return s;
}

/* No 12 consecutive characters of any base64 line of key appear in msg. */
static void assert_no_key_material(const unsigned char *key, size_t len, const char *msg)
{
        char *text = strndup((const char *)key, len);
        for (char *line = strtok(text, "\r\n"); line; line = strtok(NULL, "\r\n")) {
                size_t n = strlen(line);
                if (strncmp(line, "-----", 5) == 0 || n < 16)
                        continue;
                for (size_t i = 0; i + 12 <= n; i++) {
                        char window[13];
                        memcpy(window, line + i, 12);
                        window[12] = '\0';
                        ck_assert_msg(strstr(msg, window) == NULL, "key material in: %s",
                                      msg);
                }
        }
        free(text);
}

/* ---- accepted ------------------------------------------------------------------------
 */

static const struct {
        const char *file;
        cm_sshkey_type_t type;
        cm_sshkey_format_t format;
} accepted[] = {
    {"ed", CM_SSHKEY_ED25519, CM_SSHKEY_FORMAT_OPENSSH},
    {"edpem", CM_SSHKEY_ED25519,
     CM_SSHKEY_FORMAT_OPENSSH}, /* ssh-keygen ignores -m PEM */
    {"ec256", CM_SSHKEY_ECDSA_P256, CM_SSHKEY_FORMAT_OPENSSH},
    {"ec384", CM_SSHKEY_ECDSA_P384, CM_SSHKEY_FORMAT_OPENSSH},
    {"ec521", CM_SSHKEY_ECDSA_P521, CM_SSHKEY_FORMAT_OPENSSH},
    {"ecpem", CM_SSHKEY_ECDSA_P256, CM_SSHKEY_FORMAT_PEM_EC},
    {"ecpem384", CM_SSHKEY_ECDSA_P384, CM_SSHKEY_FORMAT_PEM_EC},
    {"ecp8", CM_SSHKEY_ECDSA_P256, CM_SSHKEY_FORMAT_PKCS8},
    {"edp8", CM_SSHKEY_ED25519, CM_SSHKEY_FORMAT_PKCS8},
    {"ec521p8", CM_SSHKEY_ECDSA_P521, CM_SSHKEY_FORMAT_PKCS8},
    {"ecparam", CM_SSHKEY_ECDSA_P256, CM_SSHKEY_FORMAT_PEM_EC}, /* EC PARAMETERS first */
};

START_TEST(accepts)
{
        size_t len;
        unsigned char *key = slurp(accepted[_i].file, &len);
        char expect_file[64], err[512];
        snprintf(expect_file, sizeof(expect_file), "%s.expect", accepted[_i].file);
        char *expect = slurp_text(expect_file);
        cm_sshkey_info_t info;
        cm_sshkey_err_t rc = cm_sshkey_inspect(key, len, &info, err, sizeof(err));
        ck_assert_msg(rc == CM_SSHKEY_OK, "%s refused (%d): %s", accepted[_i].file, rc,
                      err);
        ck_assert_int_eq(info.type, accepted[_i].type);
        ck_assert_int_eq(info.format, accepted[_i].format);
        ck_assert_str_eq(info.public_key, expect);
        ck_assert(strncmp(info.public_key, cm_sshkey_type_name(info.type),
                          strlen(cm_sshkey_type_name(info.type))) == 0);
        /* info and errstr are optional */
        ck_assert_int_eq(cm_sshkey_inspect(key, len, NULL, NULL, 0), CM_SSHKEY_OK);
        free(expect);
        free(key);
}
END_TEST

START_TEST(accepts_crlf_and_surrounding_text)
{
        size_t len;
        unsigned char *key = slurp("ed", &len);
        char *crlf = malloc(len * 2 + 64), err[256];
        size_t n = 0;
        n += (size_t)sprintf(crlf, "\r\n\n  ");
        for (size_t i = 0; i < len; i++) {
                if (key[i] == '\n')
                        crlf[n++] = '\r';
                crlf[n++] = (char)key[i];
        }
        n += (size_t)sprintf(crlf + n, "trailing comment\n");
        ck_assert_int_eq(
            cm_sshkey_inspect((unsigned char *)crlf, n, NULL, err, sizeof(err)),
            CM_SSHKEY_OK);
        free(crlf);
        free(key);
}
END_TEST

START_TEST(type_and_format_names)
{
        ck_assert_str_eq(cm_sshkey_type_name(CM_SSHKEY_ED25519), "ssh-ed25519");
        ck_assert_str_eq(cm_sshkey_type_name(CM_SSHKEY_ECDSA_P521),
                         "ecdsa-sha2-nistp521");
        ck_assert_str_eq(cm_sshkey_type_name(0), "unknown");
        ck_assert_str_eq(cm_sshkey_format_name(CM_SSHKEY_FORMAT_PKCS8), "PKCS#8");
}
END_TEST

/* ---- refused ------------------------------------------------------------------------
 */

#define RSA_MSG                                                                          \
        "RSA keys are refused: Debian 12's libssh2 1.10 signs RSA user keys only with "  \
        "ssh-rsa "                                                                       \
        "(SHA-1), which OpenSSH 8.8 and later refuse by default; use an ed25519 "        \
        "(ssh-keygen "                                                                   \
        "-t ed25519) or ECDSA key"
#define DSA_MSG                                                                          \
        "DSA keys are not supported (OpenSSH 7.0 and later refuse them); use an "        \
        "ed25519 "                                                                       \
        "(ssh-keygen -t ed25519) or ECDSA key"
#define PUBLIC_MSG                                                                       \
        "this is a public key; give the private key (the file without .pub, e.g. "       \
        "~/.ssh/id_ed25519)"
#define NOT_KEY_MSG                                                                      \
        "not a private key: expected an OpenSSH (-----BEGIN OPENSSH PRIVATE KEY-----) "  \
        "or PEM "                                                                        \
        "(-----BEGIN EC PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----) key"

static const struct {
        const char *file;
        cm_sshkey_err_t code;
        const char *msg;
} refused[] = {
    {"rsa", CM_SSHKEY_E_RSA, RSA_MSG},
    {"rsapem", CM_SSHKEY_E_RSA, RSA_MSG},
    {"rsap8", CM_SSHKEY_E_RSA, RSA_MSG},
    {"rsaenc", CM_SSHKEY_E_RSA, RSA_MSG},
    {"edenc", CM_SSHKEY_E_ENCRYPTED,
     "the key is encrypted (cipher \"aes256-ctr\"); give an unencrypted key"},
    {"ecpemenc", CM_SSHKEY_E_ENCRYPTED,
     "the key is encrypted (cipher \"AES-128-CBC\"); give an unencrypted key"},
    {"ecp8enc", CM_SSHKEY_E_ENCRYPTED,
     "the key is encrypted (PKCS#8 \"ENCRYPTED PRIVATE KEY\"); give an unencrypted key"},
    {"edp8enc", CM_SSHKEY_E_ENCRYPTED,
     "the key is encrypted (PKCS#8 \"ENCRYPTED PRIVATE KEY\"); give an unencrypted key"},
    {"dsa", CM_SSHKEY_E_UNSUPPORTED, DSA_MSG},
    {"dsapem", CM_SSHKEY_E_UNSUPPORTED, DSA_MSG},
    {"k1", CM_SSHKEY_E_UNSUPPORTED,
     "EC curve \"secp256k1\" is not usable with SSH; use an ed25519 (ssh-keygen -t "
     "ed25519) "
     "or ECDSA P-256, P-384 or P-521 key"},
    {"x25519", CM_SSHKEY_E_UNSUPPORTED,
     "key type \"X25519\" is not supported; use an ed25519 (ssh-keygen -t ed25519) or "
     "ECDSA "
     "key"},
    {"ed448", CM_SSHKEY_E_UNSUPPORTED,
     "key type \"ED448\" is not supported; use an ed25519 (ssh-keygen -t ed25519) or "
     "ECDSA "
     "key"},
    {"ed.pub", CM_SSHKEY_E_PUBLIC, PUBLIC_MSG},
    {"ec256.pub", CM_SSHKEY_E_PUBLIC, PUBLIC_MSG},
    {"pubpem", CM_SSHKEY_E_PUBLIC, PUBLIC_MSG},
    {"rfc4716", CM_SSHKEY_E_PUBLIC, PUBLIC_MSG},
    {"cert", CM_SSHKEY_E_NOT_A_KEY, NOT_KEY_MSG},
    {"garbage", CM_SSHKEY_E_NOT_A_KEY, NOT_KEY_MSG},
    {"putty", CM_SSHKEY_E_FORMAT,
     "a PuTTY key is not supported; export it in OpenSSH format (puttygen KEY.ppk -O "
     "private-openssh -o KEY)"},
};

START_TEST(refuses)
{
        size_t len;
        unsigned char *key = slurp(refused[_i].file, &len);
        char err[512];
        cm_sshkey_info_t info;
        cm_sshkey_err_t rc = cm_sshkey_inspect(key, len, &info, err, sizeof(err));
        ck_assert_msg(rc == refused[_i].code, "%s: code %d, expected %d: %s",
                      refused[_i].file, rc, refused[_i].code, err);
        ck_assert_str_eq(err, refused[_i].msg);
        ck_assert_str_eq(info.public_key, "");
        assert_no_key_material(key, len, err);
        free(key);
}
END_TEST

static cm_sshkey_err_t inspect_text(const char *text, size_t len, char *err, size_t size)
{
        unsigned char *buf = malloc(len ? len : 1); /* exactly len: no terminator */
        memcpy(buf, text, len);
        cm_sshkey_err_t rc = cm_sshkey_inspect(buf, len, NULL, err, size);
        assert_no_key_material(buf, len, err);
        free(buf);
        return rc;
}

START_TEST(refuses_empty_and_huge)
{
        char err[256];
        ck_assert_int_eq(cm_sshkey_inspect(NULL, 0, NULL, err, sizeof(err)),
                         CM_SSHKEY_E_EMPTY);
        ck_assert_str_eq(err, "the key is empty");
        ck_assert_int_eq(inspect_text(" \r\n\t\n", 5, err, sizeof(err)),
                         CM_SSHKEY_E_EMPTY);
        size_t big = CM_SSHKEY_MAX_LEN + 1;
        char *huge = malloc(big);
        memset(huge, 'A', big);
        ck_assert_int_eq(inspect_text(huge, big, err, sizeof(err)),
                         CM_SSHKEY_E_TOO_LARGE);
        ck_assert_str_eq(
            err, "16385 bytes is too large for an SSH private key (at most 16384)");
        free(huge);
        const char *other =
            "-----BEGIN FOO PRIVATE KEY-----\nAAAA\n-----END FOO PRIVATE KEY-----\n";
        ck_assert_int_eq(inspect_text(other, strlen(other), err, sizeof(err)),
                         CM_SSHKEY_E_FORMAT);
        ck_assert_str_eq(
            err, "a \"FOO PRIVATE KEY\" block is not a supported key format; give "
                 "an OpenSSH or PEM (EC or PKCS#8) private key");
}
END_TEST

/* ---- damaged keys --------------------------------------------------------------------
 */

/* The key of file with line `drop` (1-based) removed, or cut to its first `cut` bytes. */
static char *damaged(const char *file, int drop, size_t cut, size_t *out_len)
{
        size_t len;
        unsigned char *key = slurp(file, &len);
        char *out = malloc(len + 1);
        size_t n = 0;
        int line = 1;
        for (size_t i = 0; i < len && (!cut || i < cut); i++) {
                if (line != drop)
                        out[n++] = (char)key[i];
                if (key[i] == '\n')
                        line++;
        }
        free(key);
        *out_len = n;
        return out;
}

START_TEST(refuses_truncated)
{
        char err[256];
        size_t n;
        char *k = damaged("ed", 0, 150, &n);
        ck_assert_int_eq(inspect_text(k, n, err, sizeof(err)), CM_SSHKEY_E_CORRUPT);
        ck_assert_str_eq(
            err, "the key is truncated (no \"-----END OPENSSH PRIVATE KEY-----\" line)");
        free(k);
        k = damaged("ecpem", 0, 120, &n);
        ck_assert_int_eq(inspect_text(k, n, err, sizeof(err)), CM_SSHKEY_E_CORRUPT);
        ck_assert_str_eq(
            err, "the key is truncated (no \"-----END EC PRIVATE KEY-----\" line)");
        free(k);
        for (int drop = 2; drop <= 5; drop++) { /* each base64 line of an ed25519 key */
                k = damaged("ed", drop, 0, &n);
                ck_assert_int_eq(inspect_text(k, n, err, sizeof(err)),
                                 CM_SSHKEY_E_CORRUPT);
                ck_assert_msg(strncmp(err, "the key", 7) == 0, "line %d: %s", drop, err);
                free(k);
        }
        k = damaged("ec521", 4, 0, &n);
        ck_assert_int_eq(inspect_text(k, n, err, sizeof(err)), CM_SSHKEY_E_CORRUPT);
        free(k);
        k = damaged("ecp8", 3, 0, &n);
        ck_assert_int_eq(inspect_text(k, n, err, sizeof(err)), CM_SSHKEY_E_CORRUPT);
        ck_assert_str_eq(err,
                         "the PKCS#8 key could not be decoded (truncated or corrupt)");
        free(k);
        k = damaged("ecpem", 2, 0, &n);
        ck_assert_int_eq(inspect_text(k, n, err, sizeof(err)), CM_SSHKEY_E_CORRUPT);
        ck_assert_str_eq(err,
                         "the PEM EC key could not be decoded (truncated or corrupt)");
        free(k);
}
END_TEST

/* Re-encodes the OpenSSH key of file after mutate() changed its decoded bytes. */
static char *reencode(const char *file, void (*mutate)(unsigned char *, size_t *),
                      size_t *out_len)
{
        size_t len;
        unsigned char *key = slurp(file, &len);
        const char *b = memchr(key, '\n', len) + 1;
        const char *e = memmem(key, len, "-----END", 8);
        unsigned char bin[4096];
        size_t bin_len;
        ck_assert_int_eq(sodium_base642bin(bin, sizeof(bin), b, (size_t)(e - b), "\r\n",
                                           &bin_len, NULL,
                                           sodium_base64_VARIANT_ORIGINAL),
                         0);
        mutate(bin, &bin_len);
        size_t b64 = sodium_base64_ENCODED_LEN(bin_len, sodium_base64_VARIANT_ORIGINAL);
        char *out = malloc(b64 + 128);
        int n = sprintf(out, "-----BEGIN OPENSSH PRIVATE KEY-----\n");
        sodium_bin2base64(out + n, b64, bin, bin_len, sodium_base64_VARIANT_ORIGINAL);
        n += (int)strlen(out + n);
        n += sprintf(out + n, "\n-----END OPENSSH PRIVATE KEY-----\n");
        free(key);
        *out_len = (size_t)n;
        return out;
}

/* The private section ends: private key string, comment string, padding 1,2,3... Flips
 * the byte `back` bytes before the comment's length: for ed25519 50 is in the seed, for
 * ECDSA 10 is in the private scalar. */
static void flip_before_comment(unsigned char *bin, size_t len, size_t back)
{
        size_t i = len;
        while (i > 0 && bin[i - 1] < 8)
                i--; /* padding */
        size_t comment_len = 0;
        while (comment_len < i && bin[i - 1 - comment_len] >= 0x20)
                comment_len++;
        bin[i - comment_len - 4 - back] ^= 0x01;
}

static void flip_seed(unsigned char *bin, size_t *len)
{
        flip_before_comment(bin, *len, 50);
}

static void flip_scalar(unsigned char *bin, size_t *len)
{
        flip_before_comment(bin, *len, 10);
}

static void flip_check_int(unsigned char *bin, size_t *len)
{
        (void)len;
        size_t off =
            15; /* magic; then cipher, kdf, kdfopts strings, nkeys, pubkey string */
        for (int s = 0; s < 3; s++)
                off += 4 + ((size_t)bin[off] << 24 | (size_t)bin[off + 1] << 16 |
                            (size_t)bin[off + 2] << 8 | bin[off + 3]);
        off += 4;
        off += 4 + ((size_t)bin[off] << 24 | (size_t)bin[off + 1] << 16 |
                    (size_t)bin[off + 2] << 8 | bin[off + 3]);
        bin[off + 4 + 1] ^= 0x80; /* first check integer */
}

static void two_keys(unsigned char *bin, size_t *len)
{
        (void)len;
        size_t off = 15;
        for (int s = 0; s < 3; s++)
                off += 4 + bin[off + 3]; /* short strings */
        bin[off + 3] = 2;
}

START_TEST(refuses_corrupt_openssh)
{
        char err[256];
        size_t n;
        char *k = reencode("ed", flip_seed, &n);
        ck_assert_int_eq(inspect_text(k, n, err, sizeof(err)), CM_SSHKEY_E_CORRUPT);
        ck_assert_str_eq(
            err, "the key is corrupt (the private key does not match the public key)");
        free(k);
        k = reencode("ec256", flip_scalar, &n);
        ck_assert_int_eq(inspect_text(k, n, err, sizeof(err)), CM_SSHKEY_E_CORRUPT);
        ck_assert_str_eq(
            err, "the key is corrupt (the private key does not match the public key)");
        free(k);
        k = reencode("ec384", flip_check_int, &n);
        ck_assert_int_eq(inspect_text(k, n, err, sizeof(err)), CM_SSHKEY_E_CORRUPT);
        ck_assert_str_eq(err, "the key is corrupt (check integers differ)");
        free(k);
        k = reencode("ed", two_keys, &n);
        ck_assert_int_eq(inspect_text(k, n, err, sizeof(err)), CM_SSHKEY_E_FORMAT);
        ck_assert_str_eq(err, "the file holds 2 keys; give exactly one");
        free(k);
}
END_TEST

/* An OpenSSH container around a public key blob of type `type` (nothing else valid). */
static char *container(const char *cipher, const char *type, size_t *out_len)
{
        unsigned char bin[512], *p = bin;
        const char *strings[] = {cipher, "none", ""};
        memcpy(p, "openssh-key-v1", 15);
        p += 15;
        for (int i = 0; i < 3; i++) {
                size_t l = strlen(strings[i]);
                *p++ = 0, *p++ = 0, *p++ = 0, *p++ = (unsigned char)l;
                memcpy(p, strings[i], l);
                p += l;
        }
        *p++ = 0, *p++ = 0, *p++ = 0, *p++ = 1; /* one key */
        size_t tl = strlen(type);
        *p++ = 0, *p++ = 0, *p++ = 0, *p++ = (unsigned char)(4 + tl + 4 + 32);
        *p++ = 0, *p++ = 0, *p++ = 0, *p++ = (unsigned char)tl;
        memcpy(p, type, tl);
        p += tl;
        *p++ = 0, *p++ = 0, *p++ = 0, *p++ = 32;
        memset(p, 0x5a, 32);
        p += 32;
        *p++ = 0, *p++ = 0, *p++ = 0, *p++ = 8;
        memset(p, 7, 8);
        p += 8;
        size_t b64 =
            sodium_base64_ENCODED_LEN((size_t)(p - bin), sodium_base64_VARIANT_ORIGINAL);
        char *out = malloc(b64 + 128);
        int n = sprintf(out, "-----BEGIN OPENSSH PRIVATE KEY-----\n");
        sodium_bin2base64(out + n, b64, bin, (size_t)(p - bin),
                          sodium_base64_VARIANT_ORIGINAL);
        n += (int)strlen(out + n);
        n += sprintf(out + n, "\n-----END OPENSSH PRIVATE KEY-----\n");
        *out_len = (size_t)n;
        return out;
}

START_TEST(refuses_other_openssh_types)
{
        char err[256];
        size_t n;
        char *k = container("none", "sk-ssh-ed25519@openssh.com", &n);
        ck_assert_int_eq(inspect_text(k, n, err, sizeof(err)), CM_SSHKEY_E_UNSUPPORTED);
        ck_assert_str_eq(
            err, "security-key type \"sk-ssh-ed25519@openssh.com\" is not supported "
                 "(it needs its hardware token at every connection); use an "
                 "ed25519 (ssh-keygen -t ed25519) or ECDSA key");
        free(k);
        k = container("none", "x-\"evil\"\nname", &n);
        ck_assert_int_eq(inspect_text(k, n, err, sizeof(err)), CM_SSHKEY_E_UNSUPPORTED);
        ck_assert_str_eq(err,
                         "key type \"x-?evil??name\" is not supported; use an ed25519 "
                         "(ssh-keygen -t ed25519) or ECDSA key");
        free(k);
        k = container("chacha20-poly1305@openssh.com", "ssh-ed25519", &n);
        ck_assert_int_eq(inspect_text(k, n, err, sizeof(err)), CM_SSHKEY_E_ENCRYPTED);
        ck_assert_str_eq(
            err, "the key is encrypted (cipher \"chacha20-poly1305@openssh.com\"); "
                 "give an unencrypted key");
        free(k);
}
END_TEST

int main(void)
{
        if (!mkdtemp(g_dir) || sodium_init() < 0)
                return 1;
        char cmd[1024];
        snprintf(
            cmd, sizeof(cmd),
            "cd %s && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
            "-out ec256p8src 2>/dev/null",
            g_dir);
        if (system(cmd) != 0)
                return 1;
        for (size_t i = 0; i < sizeof(gen) / sizeof(gen[0]); i++) {
                char c[512];
                snprintf(c, sizeof(c), gen[i].cmd, gen[i].file);
                snprintf(cmd, sizeof(cmd), "cd %s && { %s; } >gen.log 2>&1", g_dir, c);
                if (system(cmd) != 0) {
                        fprintf(stderr, "test_sshkey: key generation failed: %s\n", c);
                        snprintf(cmd, sizeof(cmd), "cat %s/gen.log >&2", g_dir);
                        if (system(cmd) != 0)
                                fprintf(stderr, "(no output)\n");
                        return 1;
                }
        }

        Suite *s = suite_create("sshkey");
        TCase *tc = tcase_create("accepted");
        tcase_add_loop_test(tc, accepts, 0, sizeof(accepted) / sizeof(accepted[0]));
        tcase_add_test(tc, accepts_crlf_and_surrounding_text);
        tcase_add_test(tc, type_and_format_names);
        suite_add_tcase(s, tc);
        tc = tcase_create("refused");
        tcase_add_loop_test(tc, refuses, 0, sizeof(refused) / sizeof(refused[0]));
        tcase_add_test(tc, refuses_empty_and_huge);
        tcase_add_test(tc, refuses_truncated);
        tcase_add_test(tc, refuses_corrupt_openssh);
        tcase_add_test(tc, refuses_other_openssh_types);
        suite_add_tcase(s, tc);

        int failed = cm_check_run(s);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
        if (system(cmd) != 0)
                fprintf(stderr, "test_sshkey: could not remove %s\n", g_dir);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
