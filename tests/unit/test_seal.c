/* test_seal.c - cm_seal: key files, sealing and opening, and every way they must fail. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cm/seal.h"
#include "../check_main.h"

static char dir[64];
static char pub_path[256], sec_path[256];

static void setup(void)
{
        snprintf(dir, sizeof(dir), "/tmp/cm-test-seal.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(pub_path, sizeof(pub_path), "%s/seal.pub", dir);
        snprintf(sec_path, sizeof(sec_path), "%s/seal.key", dir);
}

static void teardown(void)
{
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        ck_assert_int_eq(system(cmd), 0);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
        unlink(path);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fchmod(fd, mode), 0);
        ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

static char *read_text(const char *path)
{
        static char buf[4096];
        FILE *f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

static mode_t file_mode(const char *path)
{
        struct stat st;
        ck_assert_int_eq(stat(path, &st), 0);
        return st.st_mode & 07777;
}

static cm_seal_keypair_t *generate(const char *pub, const char *sec)
{
        char err[512] = "";
        cm_seal_keypair_t *kp = NULL;
        ck_assert_msg(cm_seal_keypair_generate(pub, sec, false, &kp, err, sizeof(err)) ==
                          CM_SEAL_OK,
                      "generate: %s", err);
        ck_assert_ptr_nonnull(kp);
        return kp;
}

/* Loads pub_path/sec_path expecting want; errstr must name path_named. */
static void expect_load_error(cm_seal_err_t want, const char *path_named,
                              const char *also)
{
        char err[512] = "";
        cm_seal_keypair_t *kp = (cm_seal_keypair_t *)1;
        cm_seal_err_t got =
            cm_seal_keypair_load(&kp, pub_path, sec_path, err, sizeof(err));
        ck_assert_msg(got == want, "load gave %d (%s), want %d", got, err, want);
        ck_assert_ptr_null(kp);
        ck_assert_msg(strstr(err, path_named) != NULL, "message does not name %s: %s",
                      path_named, err);
        if (also)
                ck_assert_msg(strstr(err, also) != NULL, "message lacks \"%s\": %s", also,
                              err);
}

START_TEST(test_generate_load_round_trip)
{
        cm_seal_keypair_t *gen = generate(pub_path, sec_path);
        ck_assert_int_eq(file_mode(sec_path), 0600);
        ck_assert_int_eq(file_mode(pub_path), 0644);
        const char *text = read_text(pub_path);
        ck_assert(strncmp(text, CM_SEAL_PUBLIC_HEADER "\n",
                          strlen(CM_SEAL_PUBLIC_HEADER) + 1) == 0);
        char *b64 = cm_seal_pubkey_to_base64(cm_seal_keypair_pubkey(gen));
        ck_assert_uint_eq(strlen(b64), 44);
        ck_assert_ptr_nonnull(strstr(text, b64));
        ck_assert(strncmp(read_text(sec_path), CM_SEAL_SECRET_HEADER "\n",
                          strlen(CM_SEAL_SECRET_HEADER) + 1) == 0);

        char err[512] = "";
        cm_seal_keypair_t *kp = NULL;
        ck_assert_msg(cm_seal_keypair_load(&kp, pub_path, sec_path, err, sizeof(err)) ==
                          CM_SEAL_OK,
                      "%s", err);
        ck_assert_mem_eq(cm_seal_keypair_pubkey(kp)->bytes,
                         cm_seal_keypair_pubkey(gen)->bytes, CM_SEAL_KEY_BYTES);

        /* what one seals the other opens */
        unsigned char *sealed, *plain;
        size_t sealed_len, plain_len;
        ck_assert_int_eq(cm_seal_seal(cm_seal_keypair_pubkey(gen), "kubeconfig", 10,
                                      &sealed, &sealed_len, err, sizeof(err)),
                         CM_SEAL_OK);
        ck_assert_int_eq(
            cm_seal_open(kp, sealed, sealed_len, &plain, &plain_len, err, sizeof(err)),
            CM_SEAL_OK);
        ck_assert_str_eq((char *)plain, "kubeconfig");

        /* the public key file alone, and the base64 form */
        cm_seal_pubkey_t pk, pk2;
        ck_assert_int_eq(cm_seal_pubkey_load(&pk, pub_path, err, sizeof(err)),
                         CM_SEAL_OK);
        ck_assert_mem_eq(pk.bytes, cm_seal_keypair_pubkey(gen)->bytes, CM_SEAL_KEY_BYTES);
        ck_assert_int_eq(cm_seal_pubkey_from_base64(&pk2, b64, err, sizeof(err)),
                         CM_SEAL_OK);
        ck_assert_mem_eq(pk.bytes, pk2.bytes, CM_SEAL_KEY_BYTES);

        free(b64);
        free(sealed);
        cm_seal_plaintext_free(plain, plain_len);
        cm_seal_keypair_destroy(kp);
        cm_seal_keypair_destroy(gen);
}
END_TEST

static void round_trip(cm_seal_keypair_t *kp, const unsigned char *data, size_t len)
{
        char err[512] = "";
        unsigned char *sealed, *sealed2, *plain;
        size_t sealed_len, sealed2_len, plain_len;
        const cm_seal_pubkey_t *pk = cm_seal_keypair_pubkey(kp);
        ck_assert_int_eq(
            cm_seal_seal(pk, data, len, &sealed, &sealed_len, err, sizeof(err)),
            CM_SEAL_OK);
        ck_assert_uint_eq(sealed_len, len + CM_SEAL_OVERHEAD);
        if (len >= 16)
                ck_assert_msg(memmem(sealed, sealed_len, data, 16) == NULL,
                              "plaintext visible in the sealed box");
        /* a fresh ephemeral key each time */
        ck_assert_int_eq(
            cm_seal_seal(pk, data, len, &sealed2, &sealed2_len, err, sizeof(err)),
            CM_SEAL_OK);
        ck_assert(memcmp(sealed, sealed2, sealed_len) != 0);

        ck_assert_int_eq(
            cm_seal_open(kp, sealed, sealed_len, &plain, &plain_len, err, sizeof(err)),
            CM_SEAL_OK);
        ck_assert_uint_eq(plain_len, len);
        if (len)
                ck_assert_mem_eq(plain, data, len);
        ck_assert_int_eq(plain[len], '\0');
        cm_seal_plaintext_free(plain, plain_len);
        ck_assert_int_eq(
            cm_seal_open(kp, sealed2, sealed2_len, &plain, &plain_len, err, sizeof(err)),
            CM_SEAL_OK);
        ck_assert_uint_eq(plain_len, len);
        cm_seal_plaintext_free(plain, plain_len);
        free(sealed);
        free(sealed2);
}

START_TEST(test_seal_open_sizes)
{
        cm_seal_keypair_t *kp = generate(pub_path, sec_path);
        round_trip(kp, NULL, 0);
        round_trip(kp, (const unsigned char *)"", 0);
        const char *key =
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n";
        round_trip(kp, (const unsigned char *)key, strlen(key));
        size_t big = 1024 * 1024;
        unsigned char *data = malloc(big);
        randombytes_buf(data, big);
        round_trip(kp, data, big);
        free(data);
        cm_seal_keypair_destroy(kp);
}
END_TEST

START_TEST(test_tamper_rejected)
{
        cm_seal_keypair_t *kp = generate(pub_path, sec_path);
        char err[512] = "";
        unsigned char *sealed, *plain;
        size_t sealed_len, plain_len;
        const char *msg = "a secret worth protecting";
        ck_assert_int_eq(cm_seal_seal(cm_seal_keypair_pubkey(kp), msg, strlen(msg),
                                      &sealed, &sealed_len, err, sizeof(err)),
                         CM_SEAL_OK);
        /* ephemeral key, MAC, and body: a flipped bit anywhere must be caught */
        size_t positions[] = {0, 15, 31, 32, 40, 47, 48, 60, sealed_len - 1};
        for (size_t i = 0; i < sizeof(positions) / sizeof(positions[0]); i++) {
                for (unsigned bit = 0x01; bit <= 0x80; bit <<= 1) {
                        sealed[positions[i]] ^= (unsigned char)bit;
                        plain = (unsigned char *)1;
                        cm_seal_err_t r = cm_seal_open(kp, sealed, sealed_len, &plain,
                                                       &plain_len, err, sizeof(err));
                        ck_assert_msg(r == CM_SEAL_ERR_OPEN,
                                      "flip of bit %#x at byte %zu opened (%d)", bit,
                                      positions[i], r);
                        ck_assert_ptr_null(plain);
                        ck_assert_uint_eq(plain_len, 0);
                        sealed[positions[i]] ^= (unsigned char)bit;
                }
        }
        ck_assert_ptr_nonnull(strstr(err, "does not open"));
        /* restored: opens again */
        ck_assert_int_eq(
            cm_seal_open(kp, sealed, sealed_len, &plain, &plain_len, err, sizeof(err)),
            CM_SEAL_OK);
        ck_assert_str_eq((char *)plain, msg);
        cm_seal_plaintext_free(plain, plain_len);
        free(sealed);
        cm_seal_keypair_destroy(kp);
}
END_TEST

START_TEST(test_wrong_key_pair)
{
        char pub2[128], sec2[128], err[512] = "";
        snprintf(pub2, sizeof(pub2), "%s/other.pub", dir);
        snprintf(sec2, sizeof(sec2), "%s/other.key", dir);
        cm_seal_keypair_t *a = generate(pub_path, sec_path);
        cm_seal_keypair_t *b = generate(pub2, sec2);
        unsigned char *sealed, *plain = NULL;
        size_t sealed_len, plain_len;
        ck_assert_int_eq(cm_seal_seal(cm_seal_keypair_pubkey(a), "x", 1, &sealed,
                                      &sealed_len, err, sizeof(err)),
                         CM_SEAL_OK);
        ck_assert_int_eq(
            cm_seal_open(b, sealed, sealed_len, &plain, &plain_len, err, sizeof(err)),
            CM_SEAL_ERR_OPEN);
        ck_assert_ptr_null(plain);
        free(sealed);

        /* files of two different pairs mixed up */
        snprintf(sec_path, sizeof(sec_path), "%s", sec2);
        expect_load_error(CM_SEAL_ERR_MISMATCH, sec2, pub_path);
        cm_seal_keypair_destroy(a);
        cm_seal_keypair_destroy(b);
}
END_TEST

START_TEST(test_truncated)
{
        cm_seal_keypair_t *kp = generate(pub_path, sec_path);
        char err[512] = "";
        unsigned char *sealed, *plain = NULL;
        size_t sealed_len, plain_len;
        ck_assert_int_eq(cm_seal_seal(cm_seal_keypair_pubkey(kp), "hello", 5, &sealed,
                                      &sealed_len, err, sizeof(err)),
                         CM_SEAL_OK);
        size_t lens[] = {sealed_len - 1, CM_SEAL_OVERHEAD, CM_SEAL_OVERHEAD - 1, 10, 0};
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
                ck_assert_msg(cm_seal_open(kp, sealed, lens[i], &plain, &plain_len, err,
                                           sizeof(err)) == CM_SEAL_ERR_OPEN,
                              "%zu bytes opened", lens[i]);
                ck_assert_ptr_null(plain);
        }
        ck_assert_str_eq(
            err, "sealed data is 0 bytes, shorter than the 48 every sealed box has");
        ck_assert_int_eq(cm_seal_open(kp, NULL, 0, &plain, &plain_len, err, sizeof(err)),
                         CM_SEAL_ERR_OPEN);
        free(sealed);
        cm_seal_keypair_destroy(kp);
}
END_TEST

START_TEST(test_bad_key_files)
{
        cm_seal_keypair_t *kp = generate(pub_path, sec_path);
        cm_seal_keypair_destroy(kp);
        char good_pub[256], good_sec[256];
        snprintf(good_pub, sizeof(good_pub), "%s", read_text(pub_path));
        snprintf(good_sec, sizeof(good_sec), "%s", read_text(sec_path));

        /* wrong length: 16 bytes of key */
        write_file(pub_path, CM_SEAL_PUBLIC_HEADER "\nAAAAAAAAAAAAAAAAAAAAAA==\n", 0644);
        expect_load_error(CM_SEAL_ERR_FORMAT, pub_path, "16 bytes, expected 32");
        write_file(sec_path, CM_SEAL_SECRET_HEADER "\nAAAAAAAAAAAAAAAAAAAAAA==\n", 0600);
        write_file(pub_path, good_pub, 0644);
        expect_load_error(CM_SEAL_ERR_FORMAT, sec_path, "16 bytes, expected 32");

        /* bad base64 */
        write_file(sec_path, CM_SEAL_SECRET_HEADER "\n!!not*base64!!\n", 0600);
        expect_load_error(CM_SEAL_ERR_FORMAT, sec_path, "not valid base64");
        write_file(sec_path, CM_SEAL_SECRET_HEADER "\nAAAA\n", 0600); /* 3 bytes */
        expect_load_error(CM_SEAL_ERR_FORMAT, sec_path, "3 bytes");
        write_file(pub_path, CM_SEAL_PUBLIC_HEADER "\nAAAAAAAAAAAAAAAAAAAAAA=\n", 0644);
        expect_load_error(CM_SEAL_ERR_FORMAT, pub_path, "not valid base64");
        write_file(pub_path, good_pub, 0644);

        /* wrong or missing header; the secret file's content is never echoed */
        write_file(sec_path, "-----BEGIN OPENSSH PRIVATE KEY-----\nSECRETMATERIAL\n",
                   0600);
        expect_load_error(CM_SEAL_ERR_FORMAT, sec_path, CM_SEAL_SECRET_HEADER);
        char err[512];
        cm_seal_keypair_t *none = NULL;
        cm_seal_keypair_load(&none, pub_path, sec_path, err, sizeof(err));
        ck_assert_ptr_null(strstr(err, "SECRETMATERIAL"));
        ck_assert_ptr_null(strstr(err, "BEGIN"));
        /* public and secret swapped */
        write_file(sec_path, good_pub, 0600);
        expect_load_error(CM_SEAL_ERR_FORMAT, sec_path, CM_SEAL_SECRET_HEADER);
        write_file(sec_path, "", 0600);
        expect_load_error(CM_SEAL_ERR_FORMAT, sec_path, "does not start with");
        write_file(sec_path, CM_SEAL_SECRET_HEADER "\n", 0600);
        expect_load_error(CM_SEAL_ERR_FORMAT, sec_path, "key line is missing");
        char extra[300];
        snprintf(extra, sizeof(extra), "%sextra\n", good_sec);
        write_file(sec_path, extra, 0600);
        expect_load_error(CM_SEAL_ERR_FORMAT, sec_path, "unexpected text");

        /* missing files */
        write_file(sec_path, good_sec, 0600);
        unlink(pub_path);
        expect_load_error(CM_SEAL_ERR_IO, pub_path, "No such file");
        write_file(pub_path, good_pub, 0644);
        unlink(sec_path);
        expect_load_error(CM_SEAL_ERR_IO, sec_path, "No such file");

        /* a directory is not a key file */
        ck_assert_int_eq(mkdir(sec_path, 0700), 0);
        expect_load_error(CM_SEAL_ERR_IO, sec_path, "not a regular file");
        rmdir(sec_path);

        /* CRLF and no final newline are fine */
        char crlf[300];
        const char *nl = strchr(good_sec, '\n');
        snprintf(crlf, sizeof(crlf), "%.*s\r\n%.*s", (int)(nl - good_sec), good_sec,
                 (int)strlen(nl + 1) - 1, nl + 1);
        write_file(sec_path, crlf, 0600);
        ck_assert_int_eq(
            cm_seal_keypair_load(&none, pub_path, sec_path, err, sizeof(err)),
            CM_SEAL_OK);
        cm_seal_keypair_destroy(none);
}
END_TEST

START_TEST(test_secret_mode_refused)
{
        cm_seal_keypair_t *kp = generate(pub_path, sec_path);
        cm_seal_keypair_destroy(kp);
        char err[512];

        ck_assert_int_eq(chmod(sec_path, 0644), 0);
        expect_load_error(CM_SEAL_ERR_MODE, sec_path, "mode 0644");
        cm_seal_keypair_load(&kp, pub_path, sec_path, err, sizeof(err));
        ck_assert_ptr_nonnull(strstr(err, "chmod 600"));

        ck_assert_int_eq(chmod(sec_path, 0640), 0);
        expect_load_error(CM_SEAL_ERR_MODE, sec_path, "mode 0640");
        ck_assert_int_eq(chmod(sec_path, 0602), 0);
        expect_load_error(CM_SEAL_ERR_MODE, sec_path, "mode 0602");

        ck_assert_int_eq(chmod(sec_path, 0400), 0);
        ck_assert_int_eq(cm_seal_keypair_load(&kp, pub_path, sec_path, err, sizeof(err)),
                         CM_SEAL_OK);
        cm_seal_keypair_destroy(kp);

        /* the public key file may be world-readable: that is its point */
        ck_assert_int_eq(chmod(pub_path, 0644), 0);
        ck_assert_int_eq(chmod(sec_path, 0600), 0);
        ck_assert_int_eq(cm_seal_keypair_load(&kp, pub_path, sec_path, err, sizeof(err)),
                         CM_SEAL_OK);
        cm_seal_keypair_destroy(kp);
}
END_TEST

START_TEST(test_generate_refuses_overwrite)
{
        char err[512] = "";
        cm_seal_keypair_t *kp = NULL;
        /* an existing secret file blocks, and neither file is written */
        write_file(sec_path, "precious\n", 0600);
        ck_assert_int_eq(
            cm_seal_keypair_generate(pub_path, sec_path, false, &kp, err, sizeof(err)),
            CM_SEAL_ERR_EXISTS);
        ck_assert_ptr_null(kp);
        ck_assert_ptr_nonnull(strstr(err, sec_path));
        ck_assert_str_eq(read_text(sec_path), "precious\n");
        ck_assert_int_eq(access(pub_path, F_OK), -1);

        /* an existing public file blocks too */
        unlink(sec_path);
        write_file(pub_path, "old public\n", 0644);
        ck_assert_int_eq(
            cm_seal_keypair_generate(pub_path, sec_path, false, NULL, err, sizeof(err)),
            CM_SEAL_ERR_EXISTS);
        ck_assert_ptr_nonnull(strstr(err, pub_path));
        ck_assert_int_eq(access(sec_path, F_OK), -1);

        /* force replaces both, and the new secret file is 0600 whatever the old mode */
        write_file(sec_path, "precious\n", 0666);
        ck_assert_int_eq(
            cm_seal_keypair_generate(pub_path, sec_path, true, &kp, err, sizeof(err)),
            CM_SEAL_OK);
        ck_assert_int_eq(file_mode(sec_path), 0600);
        ck_assert_int_eq(file_mode(pub_path), 0644);
        cm_seal_keypair_t *loaded = NULL;
        ck_assert_int_eq(
            cm_seal_keypair_load(&loaded, pub_path, sec_path, err, sizeof(err)),
            CM_SEAL_OK);
        ck_assert_mem_eq(cm_seal_keypair_pubkey(loaded)->bytes,
                         cm_seal_keypair_pubkey(kp)->bytes, CM_SEAL_KEY_BYTES);
        cm_seal_keypair_destroy(loaded);
        cm_seal_keypair_destroy(kp);

        /* no temporary file left beside them */
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 2", dir);
        ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_generate_modes_ignore_umask)
{
        mode_t old = umask(0);
        cm_seal_keypair_t *kp = generate(pub_path, sec_path);
        ck_assert_int_eq(file_mode(sec_path), 0600);
        ck_assert_int_eq(file_mode(pub_path), 0644);
        cm_seal_keypair_destroy(kp);
        unlink(pub_path);
        unlink(sec_path);
        umask(077);
        kp = generate(pub_path, sec_path);
        ck_assert_int_eq(file_mode(sec_path), 0600);
        ck_assert_int_eq(file_mode(pub_path), 0644);
        cm_seal_keypair_destroy(kp);
        umask(old);
}
END_TEST

START_TEST(test_generate_bad_args)
{
        char err[512] = "";
        ck_assert_int_eq(
            cm_seal_keypair_generate(sec_path, sec_path, false, NULL, err, sizeof(err)),
            CM_SEAL_ERR_ARG);
        ck_assert_ptr_nonnull(strstr(err, "must differ"));
        ck_assert_int_eq(
            cm_seal_keypair_generate(pub_path, "", false, NULL, err, sizeof(err)),
            CM_SEAL_ERR_ARG);
        char nodir[200];
        snprintf(nodir, sizeof(nodir), "%s/missing/seal.key", dir);
        ck_assert_int_eq(
            cm_seal_keypair_generate(pub_path, nodir, false, NULL, err, sizeof(err)),
            CM_SEAL_ERR_IO);
        ck_assert_ptr_nonnull(strstr(err, nodir));
        ck_assert_int_eq(access(pub_path, F_OK), -1);
}
END_TEST

START_TEST(test_pubkey_base64_errors)
{
        char err[512] = "";
        cm_seal_pubkey_t pk;
        ck_assert_int_eq(cm_seal_pubkey_from_base64(&pk, "not base64!", err, sizeof(err)),
                         CM_SEAL_ERR_FORMAT);
        ck_assert_ptr_nonnull(strstr(err, "not valid base64"));
        ck_assert_int_eq(cm_seal_pubkey_from_base64(&pk, "AAAA", err, sizeof(err)),
                         CM_SEAL_ERR_FORMAT);
        ck_assert_ptr_nonnull(strstr(err, "3 bytes, expected 32"));
        ck_assert_int_eq(cm_seal_pubkey_from_base64(&pk, "", err, sizeof(err)),
                         CM_SEAL_ERR_FORMAT);
        /* surrounding whitespace, as in a fetched body, is fine */
        ck_assert_int_eq(
            cm_seal_pubkey_from_base64(
                &pk, " AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\n", err, sizeof(err)),
            CM_SEAL_OK);
        ck_assert_int_eq(pk.bytes[0], 1);
        ck_assert_int_eq(pk.bytes[31], 32);

        /* an all-zero key is a low-order point: sealing to it must fail, not leak */
        memset(&pk, 0, sizeof(pk));
        unsigned char *sealed = (unsigned char *)1;
        size_t sealed_len;
        ck_assert_int_eq(
            cm_seal_seal(&pk, "x", 1, &sealed, &sealed_len, err, sizeof(err)),
            CM_SEAL_ERR_KEY);
        ck_assert_ptr_null(sealed);
        ck_assert_str_eq(cm_seal_err2str(CM_SEAL_ERR_OPEN),
                         "sealed data is tampered, truncated or for another key");
}
END_TEST

static Suite *seal_suite(void)
{
        Suite *s = suite_create("seal");
        TCase *tc = tcase_create("seal");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_generate_load_round_trip);
        tcase_add_test(tc, test_seal_open_sizes);
        tcase_add_test(tc, test_tamper_rejected);
        tcase_add_test(tc, test_wrong_key_pair);
        tcase_add_test(tc, test_truncated);
        tcase_add_test(tc, test_bad_key_files);
        tcase_add_test(tc, test_secret_mode_refused);
        tcase_add_test(tc, test_generate_refuses_overwrite);
        tcase_add_test(tc, test_generate_modes_ignore_umask);
        tcase_add_test(tc, test_generate_bad_args);
        tcase_add_test(tc, test_pubkey_base64_errors);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return cm_check_run(seal_suite());
}
