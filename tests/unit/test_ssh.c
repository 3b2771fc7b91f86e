/*
 * test_ssh.c - the pure helpers of cm/ssh.h: the cluster key object (formats accepted,
 * RSA and encrypted keys refused with their reason, types named), public key parsing and
 * SHA256 fingerprints (checked against ssh-keygen -l), peer formatting, and the parallel
 * runner's bound and result collection without any SSH.
 *
 * The keys below were generated for this test only (ssh-keygen, openssl) and protect
 * nothing.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "cm/ssh.h"
#include "../check_main.h"

static const char ED25519_OPENSSH[] =
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACAwS7y9hH8KHqMsuXVX/f1L9yN7x/J8+8djgIkq+1fp1AAAAIjXEJjb1xCY\n"
    "2wAAAAtzc2gtZWQyNTUxOQAAACAwS7y9hH8KHqMsuXVX/f1L9yN7x/J8+8djgIkq+1fp1A\n"
    "AAAEDILpfuAuLzXnuehOJ3gqQbFqy5vNDRx/p8CTVkh65uADBLvL2Efwoeoyy5dVf9/Uv3\n"
    "I3vH8nz7x2OAiSr7V+nUAAAAAAECAwQF\n"
    "-----END OPENSSH PRIVATE KEY-----\n";

static const char ECDSA_OPENSSH[] =
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAiAAAABNlY2RzYS\n"
    "1zaGEyLW5pc3RwMzg0AAAACG5pc3RwMzg0AAAAYQRcGpfvpdUWwkLUiQ13uSFNeqiN/GsQ\n"
    "aCFpJ8wG2v6XW5R0J26ySkILhddXxjd8e7U03sfhvXqZ1RRaitUbNvxo7en4PcI1hx1vaC\n"
    "9G89Rqwjpxx2I2vhKVyqp7rai1V8EAAADQyHgKb8h4Cm8AAAATZWNkc2Etc2hhMi1uaXN0\n"
    "cDM4NAAAAAhuaXN0cDM4NAAAAGEEXBqX76XVFsJC1IkNd7khTXqojfxrEGghaSfMBtr+l1\n"
    "uUdCduskpCC4XXV8Y3fHu1NN7H4b16mdUUWorVGzb8aO3p+D3CNYcdb2gvRvPUasI6ccdi\n"
    "Nr4Slcqqe62otVfBAAAAMQDt2liL6LPwrlwph3ZwFXEMbu7zmnj6zPhOtGP8tB1+W7pP4d\n"
    "y9ZjodLuN0DjtRJFoAAAAAAQIDBAUGBw==\n"
    "-----END OPENSSH PRIVATE KEY-----\n";

static const char ECDSA_PEM[] =
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MIGkAgEBBDDt2liL6LPwrlwph3ZwFXEMbu7zmnj6zPhOtGP8tB1+W7pP4dy9Zjod\n"
    "LuN0DjtRJFqgBwYFK4EEACKhZANiAARcGpfvpdUWwkLUiQ13uSFNeqiN/GsQaCFp\n"
    "J8wG2v6XW5R0J26ySkILhddXxjd8e7U03sfhvXqZ1RRaitUbNvxo7en4PcI1hx1v\n"
    "aC9G89Rqwjpxx2I2vhKVyqp7rai1V8E=\n"
    "-----END EC PRIVATE KEY-----\n";

static const char RSA_OPENSSH[] =
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAlwAAAAdzc2gtcn\n"
    "NhAAAAAwEAAQAAAIEA0UluJADq/l9OFim8cylKr04/Jw9kqlHYVJNsck/BQhnNahUDDgyX\n"
    "yX5N9htldMVVYi8SnRKMgMCZ43132rFia5ze6EOZar0gb8r61A7UJ3ZxaGU2BanIfOq5sf\n"
    "hgb82NIK8VM9cZftt5qqcpkj+Mg/I9dipCYz9bfH3hN5T3aw8AAAH43PR5D9z0eQ8AAAAH\n"
    "c3NoLXJzYQAAAIEA0UluJADq/l9OFim8cylKr04/Jw9kqlHYVJNsck/BQhnNahUDDgyXyX\n"
    "5N9htldMVVYi8SnRKMgMCZ43132rFia5ze6EOZar0gb8r61A7UJ3ZxaGU2BanIfOq5sfhg\n"
    "b82NIK8VM9cZftt5qqcpkj+Mg/I9dipCYz9bfH3hN5T3aw8AAAADAQABAAAAgBV2g14b3f\n"
    "2iRn7NXu8sf+VEkANwd7Fj3VynFcsPVNFzlfZYG00Yi4R1eIdRvfDgv+Xmz/Dd0xztI5sJ\n"
    "5f2+jUouS91Lt6LBposC0TA8UXmIA7Vbc0aPrBg55ctckOeFR0dpKf4Qc2LGAfTH/0AZsi\n"
    "1QaV4h7LStBWiXjlxK0MiZAAAAQG2AIRirEqKHgwCrxxuEm1rZhG0MDqc6QFuqEuZqxZ89\n"
    "dO1kaxHMwBxU97zEtUDaiuu1JCCVqMT0ymXGDl4jqBIAAABBAP1VUasC3jVjE3a4/gVgLl\n"
    "ZIIQ8ZIh9uYpJhbEmdZf+m1CESb3+BsRbjRFW/LiMTsCIC43eRGlX+aTPzg9SoGrsAAABB\n"
    "ANN9akaVduJrZ6DFgny5HIfBeG2Dii8tu4CazgeTnQ02TImw+t6adiWcp4d2pvXgbj6Cni\n"
    "bfMq17yk99zP91nb0AAAAAAQID\n"
    "-----END OPENSSH PRIVATE KEY-----\n";

static const char RSA_PEM[] =
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIICXQIBAAKBgQDRSW4kAOr+X04WKbxzKUqvTj8nD2SqUdhUk2xyT8FCGc1qFQMO\n"
    "DJfJfk32G2V0xVViLxKdEoyAwJnjfXfasWJrnN7oQ5lqvSBvyvrUDtQndnFoZTYF\n"
    "qch86rmx+GBvzY0grxUz1xl+23mqpymSP4yD8j12KkJjP1t8feE3lPdrDwIDAQAB\n"
    "AoGAFXaDXhvd/aJGfs1e7yx/5USQA3B3sWPdXKcVyw9U0XOV9lgbTRiLhHV4h1G9\n"
    "8OC/5ebP8N3THO0jmwnl/b6NSi5L3Uu3osGmiwLRMDxReYgDtVtzRo+sGDnly1yQ\n"
    "54VHR2kp/hBzYsYB9Mf/QBmyLVBpXiHstK0FaJeOXErQyJkCQQD9VVGrAt41YxN2\n"
    "uP4FYC5WSCEPGSIfbmKSYWxJnWX/ptQhEm9/gbEW40RVvy4jE7AiAuN3kRpV/mkz\n"
    "84PUqBq7AkEA031qRpV24mtnoMWCfLkch8F4bYOKLy27gJrOB5OdDTZMibD63pp2\n"
    "JZynh3am9eBuPoKeJt8yrXvKT33M/3WdvQJBALrzd61oFGv5jaeTpYJ6FDgASsVF\n"
    "mvTvFTdJRgydZ2RezTUK0dWa9AEb/pX43CdupBC1aQAXyQOlGCYKk0MgO3kCQQCR\n"
    "sNT0eORkB+9kbot8lhzUXHA0qSgZZhzD9GC4EXVgc6Z4OCYqESgQswEprZBI02m+\n"
    "wEZoqtuDbUKqThRZa1HVAkBtgCEYqxKih4MAq8cbhJta2YRtDA6nOkBbqhLmasWf\n"
    "PXTtZGsRzMAcVPe8xLVA2orrtSQglajE9Mplxg5eI6gS\n"
    "-----END RSA PRIVATE KEY-----\n";

static const char ED25519_ENCRYPTED[] =
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABDtZMOn9+\n"
    "nJYH9SqJlzCAVvAAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIDBLvL2Efwoeoyy5\n"
    "dVf9/Uv3I3vH8nz7x2OAiSr7V+nUAAAAkM30jwr/Tt1UxDe29zT75GQTE6m2aEu65ts7mL\n"
    "kn5SrSa0ssRzecuXe0ogXFsflOvkXLnYMB8oLTOHFRufhXbBNHzXF7UGW49qdJupkK/DOY\n"
    "XW79ngX0dIXqJakvmk5ic77r1DtoZx2KXRMbJg7wfNd3PKONC8EBhJVS7ep0vHY5xy/Kb3\n"
    "kCAaMxQ4RxxBQyLQ==\n"
    "-----END OPENSSH PRIVATE KEY-----\n";

static const char ED25519_PKCS8[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIAM7ToyjeO9GeW4cd0iZKMXjjIOHlQXlnFMt1VPjQpa+\n"
    "-----END PRIVATE KEY-----\n";

static const char ECDSA_PKCS8[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgwcrNQnAtx6oJFg80\n"
    "quwcCNFVkFTl8tLPBHPVlaWmvQahRANCAARRLlp81uVN1erGamQglLV/oTU7meFe\n"
    "ti3HyLn7b44BoHHbHD21zOWZBDEjJ5ra2m5Gyv1VfV1ezC1Fa1is9Zur\n"
    "-----END PRIVATE KEY-----\n";

static const char ECDSA_PEM_ENCRYPTED[] =
    "-----BEGIN EC PRIVATE KEY-----\n"
    "Proc-Type: 4,ENCRYPTED\n"
    "DEK-Info: AES-128-CBC,184FC6D2BA319486F2AD8AE92C360094\n"
    "\n"
    "jocj3aDcrJmuMXHQDVpE8Rt2cTaKVC3EyIHmahSwhq6t1bSC+NMAVRGz1WM27O1X\n"
    "MxIiYPImvujV/BahouQzP+pPzXJZrEtE9HZJrV5YZShgDOnbKGHFyMhi9Mx4v+kf\n"
    "JxH6MdToCnDMZiGZfcTWFGNL/9Ryq96lI7goaPc40Ld2ynZz7wsHAmZJEnFJqu3P\n"
    "2Jtnkd4EcdbBeSL1q28U/AX+llY0tUUxPZ8XSvVbjXI=\n"
    "-----END EC PRIVATE KEY-----\n";

static const char ED25519_PKCS8_ENCRYPTED[] =
    "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
    "MIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAhXTzw2X9Gk9wICCAAw\n"
    "DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEC9MVxwY2cyFy+T1uXXidk4EQAuh\n"
    "+s9VpuSoJpUoSCrXhDgYEst8qGVm5LS8Y/atLiVCCSVlvdsCXRXV9cXAJwIP7WrJ\n"
    "v+gefEF5MWp2Bna2Mw4=\n"
    "-----END ENCRYPTED PRIVATE KEY-----\n";

static const char ECDSA_SECP256K1[] =
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MHQCAQEEIOQI+SkRLsykCr4Cv4l44w3hmJJ02wk/W8bkEZ221l3qoAcGBSuBBAAK\n"
    "oUQDQgAEnwhJXd6f4wMm2YSUcyUQWO4uKBGTzNFN4gRHc7T7FJM3Av2uHNVC6hA6\n"
    "M1Xx9aBxNyg4E9Lq4tQ0E9h9/mTMoQ==\n"
    "-----END EC PRIVATE KEY-----\n";

static const char ED25519_PUB[] =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDBLvL2Efwoeoyy5dVf9/Uv3I3vH8nz7x2OAiSr7V+nU";
static const char ED25519_FP[] =
    "SHA256:9dDF0fAb5EWoVb8R0jjpNGdaqELKTuj0+pRnV96gR+w"; /* ssh-keygen -l */
static const char ECDSA_PUB[] =
    "ecdsa-sha2-nistp384 "
    "AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBFwal++"
    "l1RbCQtSJDXe5IU16qI38axBoIWknzAba/pdblHQnbrJKQguF11fGN3x7tTTex+G9epnVFFqK1Rs2/"
    "Gjt6fg9wjWHHW9oL0bz1GrCOnHHYja+EpXKqnutqLVXwQ==";
static const char ECDSA_FP[] = "SHA256:L7B9ZhsjYjF5SLJTwP2z26BX7N3kqywQX7Lt+7n2LqQ";

#define K(v) (const unsigned char *)(v), strlen(v)

/* The executor accepts exactly what libssh2 1.10 can sign with (ed25519, ECDSA P-256/384/
   521 in OpenSSH, SEC1 PEM and PKCS#8 form), by the validation's rule, and reports the
   type its messages name. */
START_TEST(test_key_accepted)
{
        struct {
                const char *name;
                const char *pem;
                cm_ssh_key_type_t type;
        } cases[] = {
            {"ed25519 OpenSSH", ED25519_OPENSSH, CM_SSH_KEY_ED25519},
            {"ECDSA OpenSSH", ECDSA_OPENSSH, CM_SSH_KEY_ECDSA},
            {"ECDSA SEC1 PEM", ECDSA_PEM, CM_SSH_KEY_ECDSA},
            {"ed25519 PKCS#8", ED25519_PKCS8, CM_SSH_KEY_ED25519},
            {"ECDSA PKCS#8", ECDSA_PKCS8, CM_SSH_KEY_ECDSA},
        };
        char err[512];
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                ck_assert_msg(cm_ssh_key_check(K(cases[i].pem), err, sizeof(err)) == 0,
                              "%s: %s", cases[i].name, err);
                cm_ssh_key_t *k = NULL;
                ck_assert_int_eq(cm_ssh_key_new(K(cases[i].pem), &k, err, sizeof(err)),
                                 CM_SSH_OK);
                ck_assert_msg(cm_ssh_key_type(k) == cases[i].type, "%s: %s",
                              cases[i].name, cm_ssh_key_type_name(cm_ssh_key_type(k)));
                cm_ssh_key_free(k);
        }
}
END_TEST

START_TEST(test_key_refused)
{
        struct {
                const char *name;
                const char *pem;
                const char *reason; /* start of the message */
        } cases[] = {
            {"RSA OpenSSH", RSA_OPENSSH,
             "RSA keys are refused: Debian 12's libssh2 1.10"},
            {"RSA PKCS#1 PEM", RSA_PEM, "RSA keys are refused: Debian 12's libssh2 1.10"},
            {"ed25519 OpenSSH encrypted", ED25519_ENCRYPTED, "the key is encrypted"},
            {"ECDSA PEM encrypted", ECDSA_PEM_ENCRYPTED, "the key is encrypted"},
            {"PKCS#8 encrypted", ED25519_PKCS8_ENCRYPTED, "the key is encrypted"},
            {"secp256k1", ECDSA_SECP256K1, ""},
            {"public key", ED25519_PUB, ""},
            {"garbage", "hello", ""},
        };
        char err[1024];
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                err[0] = '\0';
                ck_assert_msg(cm_ssh_key_check(K(cases[i].pem), err, sizeof(err)) == -1,
                              "%s", cases[i].name);
                ck_assert_msg(strncmp(err, cases[i].reason, strlen(cases[i].reason)) == 0,
                              "%s: %s", cases[i].name, err);
                ck_assert_msg(err[0] != '\0', "%s: no reason", cases[i].name);
                /* the message never echoes key material */
                ck_assert_msg(strstr(err, "MII") == NULL && strstr(err, "b3Blbn") == NULL,
                              "%s: %s", cases[i].name, err);
                cm_ssh_key_t *k = (cm_ssh_key_t *)0x1;
                ck_assert_int_eq(cm_ssh_key_new(K(cases[i].pem), &k, err, sizeof(err)),
                                 CM_SSH_ERR_KEY);
                ck_assert_ptr_null(k);
        }
        /* RSA: the reason of DESIGN §7 and what to use instead */
        ck_assert_int_eq(cm_ssh_key_check(K(RSA_PEM), err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, "ssh-rsa (SHA-1)") && strstr(err, "OpenSSH 8.8") &&
                          strstr(err, "ssh-keygen -t ed25519"),
                      "%s", err);
        ck_assert_int_eq(cm_ssh_key_check(NULL, 0, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_key_object)
{
        char err[512];
        cm_ssh_key_free(NULL);
        ck_assert_str_eq(cm_ssh_key_type_name(CM_SSH_KEY_ED25519), "ed25519");
        ck_assert_str_eq(cm_ssh_key_type_name(CM_SSH_KEY_ECDSA), "ECDSA");
        ck_assert_str_eq(cm_ssh_key_type_name(CM_SSH_KEY_UNKNOWN), "unknown");
        ck_assert_int_eq(cm_ssh_key_type(NULL), CM_SSH_KEY_UNKNOWN);
        /* the key is copied: the caller may wipe its own copy at once */
        char copy[sizeof(ED25519_OPENSSH)];
        memcpy(copy, ED25519_OPENSSH, sizeof(copy));
        cm_ssh_key_t *k = NULL;
        ck_assert_int_eq(cm_ssh_key_new(K(copy), &k, err, sizeof(err)), CM_SSH_OK);
        memset(copy, 0, sizeof(copy));
        ck_assert_int_eq(cm_ssh_key_type(k), CM_SSH_KEY_ED25519);
        cm_ssh_key_free(k);
}
END_TEST

START_TEST(test_fingerprints)
{
        char fp[64];
        ck_assert_int_eq(cm_ssh_pubkey_fingerprint(ED25519_PUB, fp, sizeof(fp)), 0);
        ck_assert_str_eq(fp, ED25519_FP);
        ck_assert_int_eq(cm_ssh_pubkey_fingerprint(ECDSA_PUB, fp, sizeof(fp)), 0);
        ck_assert_str_eq(fp, ECDSA_FP);
        ck_assert_uint_eq(strlen(fp), 50);
        /* a comment after the key changes nothing */
        char with_comment[512];
        snprintf(with_comment, sizeof(with_comment), "%s root@node1\n", ED25519_PUB);
        ck_assert_int_eq(cm_ssh_pubkey_fingerprint(with_comment, fp, sizeof(fp)), 0);
        ck_assert_str_eq(fp, ED25519_FP);
        /* too small a buffer */
        ck_assert_int_eq(cm_ssh_fingerprint((const unsigned char *)"x", 1, fp, 50), -1);
        /* SHA-256 of "abc" = ba7816bf...: base64
         * "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0" */
        ck_assert_int_eq(
            cm_ssh_fingerprint((const unsigned char *)"abc", 3, fp, sizeof(fp)), 0);
        ck_assert_str_eq(fp, "SHA256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0");
}
END_TEST

START_TEST(test_pubkey_parse)
{
        char type[64], err[256];
        unsigned char *blob;
        size_t len;
        ck_assert_int_eq(cm_ssh_pubkey_parse(ECDSA_PUB, type, sizeof(type), &blob, &len,
                                             err, sizeof(err)),
                         0);
        ck_assert_str_eq(type, "ecdsa-sha2-nistp384");
        ck_assert_uint_eq(len, 136); /* string type, string curve, string point (97) */
        ck_assert_int_eq(memcmp(blob + 4, "ecdsa-sha2-nistp384", 19), 0);
        free(blob);

        /* the leading type must be the one inside the blob */
        char lie[256];
        snprintf(lie, sizeof(lie), "ssh-rsa %s", strchr(ED25519_PUB, ' ') + 1);
        ck_assert_int_eq(
            cm_ssh_pubkey_parse(lie, type, sizeof(type), &blob, &len, err, sizeof(err)),
            -1);
        ck_assert_ptr_null(blob);
        ck_assert_msg(strstr(err, "is not a ssh-rsa public key") != NULL, "%s", err);
        ck_assert_int_eq(cm_ssh_pubkey_parse("ssh-ed25519 %%%%", type, sizeof(type),
                                             &blob, &len, err, sizeof(err)),
                         -1);
        ck_assert_int_eq(cm_ssh_pubkey_parse("ssh-ed25519", type, sizeof(type), &blob,
                                             &len, err, sizeof(err)),
                         -1);
        ck_assert_str_eq(err, "expected \"type base64\", got \"ssh-ed25519\"");
        ck_assert_int_eq(
            cm_ssh_pubkey_parse(NULL, type, sizeof(type), &blob, &len, err, sizeof(err)),
            -1);
        ck_assert_int_eq(cm_ssh_pubkey_fingerprint("", type, sizeof(type)), -1);
}
END_TEST

START_TEST(test_format_peer)
{
        char buf[128];
        ck_assert_str_eq(cm_ssh_format_peer("127.0.0.12", 22, buf, sizeof(buf)),
                         "127.0.0.12:22");
        ck_assert_str_eq(cm_ssh_format_peer("fd00::1", 2222, buf, sizeof(buf)),
                         "[fd00::1]:2222");
        ck_assert_str_eq(cm_ssh_format_peer("node1.example", 22, buf, sizeof(buf)),
                         "node1.example:22");
        for (int e = CM_SSH_OK; e <= CM_SSH_ERR_ARG; e++)
                ck_assert_str_ne(cm_ssh_err2str((cm_ssh_err_t)e), "unknown error");
}
END_TEST

static atomic_int active, peak;

static int busy(size_t i, void *ctx, char *err, size_t err_size)
{
        (void)ctx;
        int now = atomic_fetch_add(&active, 1) + 1, m = atomic_load(&peak);
        while (now > m && !atomic_compare_exchange_weak(&peak, &m, now))
                ;
        usleep(20 * 1000);
        atomic_fetch_sub(&active, 1);
        if (i % 5 == 3) {
                snprintf(err, err_size, "item %zu broke", i);
                return 7;
        }
        if (i == 4)
                return 2; /* a failure without a message */
        return 0;
}

START_TEST(test_parallel_runner)
{
        cm_ssh_node_result_t res[20];
        atomic_store(&peak, 0);
        int failed = cm_ssh_parallel(20, 3, busy, NULL, res);
        ck_assert_int_le(atomic_load(&peak), 3);
        ck_assert_int_ge(atomic_load(&peak), 2);
        ck_assert_int_eq(failed, 5); /* 3, 8, 13, 18 and 4 */
        ck_assert_int_eq(res[3].rc, 7);
        ck_assert_str_eq(res[3].error, "item 3 broke");
        ck_assert_int_eq(res[4].rc, 2);
        ck_assert_str_eq(res[4].error, "failed (code 2) without a message");
        ck_assert_int_eq(res[0].rc, 0);
        ck_assert_str_eq(res[0].error, "");

        /* parallelism above n, and below 1 */
        atomic_store(&peak, 0);
        ck_assert_int_eq(cm_ssh_parallel(5, 50, busy, NULL, res), 2);
        ck_assert_int_le(atomic_load(&peak), 5);
        atomic_store(&peak, 0);
        ck_assert_int_eq(cm_ssh_parallel(4, 0, busy, NULL, res), 1);
        ck_assert_int_eq(atomic_load(&peak), 1);
        ck_assert_int_eq(cm_ssh_parallel(0, 4, busy, NULL, res), 0);
}
END_TEST

START_TEST(test_parallel_summary)
{
        cm_ssh_node_result_t res[3] = {{0, ""},
                                       {5, "connect 127.0.0.12:22: connection refused"},
                                       {7, "command \"true\" exited 1: x"}};
        const char *names[3] = {"node1 (127.0.0.11:22)", "node2 (127.0.0.12:22)",
                                "node3 (127.0.0.13:22)"};
        char *s = cm_ssh_parallel_summary(3, names, res);
        ck_assert_str_eq(s, "2 of 3 nodes failed: node2 (127.0.0.12:22): connect "
                            "127.0.0.12:22: connection refused; node3 (127.0.0.13:22): "
                            "command \"true\" exited 1: x");
        free(s);
        s = cm_ssh_parallel_summary(3, NULL, res);
        ck_assert_str_eq(s, "2 of 3 nodes failed: #1: connect 127.0.0.12:22: connection "
                            "refused; #2: command \"true\" exited 1: x");
        free(s);
        res[1].rc = res[2].rc = 0;
        ck_assert_ptr_null(cm_ssh_parallel_summary(3, names, res));
}
END_TEST

int main(void)
{
        Suite *s = suite_create("ssh");
        TCase *tc = tcase_create("helpers");
        tcase_add_test(tc, test_key_accepted);
        tcase_add_test(tc, test_key_refused);
        tcase_add_test(tc, test_key_object);
        tcase_add_test(tc, test_fingerprints);
        tcase_add_test(tc, test_pubkey_parse);
        tcase_add_test(tc, test_format_peer);
        tcase_add_test(tc, test_parallel_runner);
        tcase_add_test(tc, test_parallel_summary);
        suite_add_tcase(s, tc);
        return cm_check_run(s);
}
