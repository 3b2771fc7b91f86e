/*
 * it_ssh_auth.c - the SSH executor's trust and identity (cm/ssh.h) against real OpenSSH
 * servers (it_ssh_fixture.h): host key pinning (first key trusted, a changed one refused
 * with both fingerprints), public-key authentication with ed25519 (OpenSSH and PKCS#8)
 * and ECDSA keys, auth failures naming the user and key, RSA keys refused, and connection
 * failures (refused, unreachable, bad pin) with clear messages.
 */
/* the fixture serves two programs: this one uses part of it */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "it_ssh_fixture.h"

/* ssh-keygen's own fingerprint of node i's host key, to check ours against. */
static void keygen_fingerprint(int i, char *out, size_t size)
{
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "ssh-keygen -l -f %s/node%d/ssh_host_ed25519_key.pub",
                 fixture_dir, i);
        FILE *p = popen(cmd, "r");
        ck_assert(p != NULL);
        char line[512] = "";
        ck_assert(fgets(line, sizeof(line), p) != NULL);
        pclose(p);
        char *fp = strchr(line, ' ') + 1;
        fp[strcspn(fp, " ")] = '\0';
        snprintf(out, size, "%s", fp);
}

START_TEST(test_host_key_pinning)
{
        char err[1024], peer[64], want[1024], fp2[128], fp3[128];
        cm_ssh_t *s = NULL;
        /* first contact: trusted and handed back */
        cm_ssh_err_t rc = connect_to(node_env(2, "ADDR"), port(), key_ed, NULL, 5000, &s,
                                     err, sizeof(err));
        ck_assert_msg(rc == CM_SSH_OK, "%s", err);
        ck_assert_int_eq(cm_ssh_host_key_is_new(s), 1);
        ck_assert_str_eq(cm_ssh_host_key(s), node_env(2, "HOSTKEY"));
        ck_assert_str_eq(cm_ssh_peer(s), peer_of(2, peer, sizeof(peer)));
        char *pinned = strdup(cm_ssh_host_key(s));
        cm_ssh_close(s);

        /* with that pin */
        rc = connect_to(node_env(2, "ADDR"), port(), key_ed, pinned, 5000, &s, err,
                        sizeof(err));
        ck_assert_msg(rc == CM_SSH_OK, "%s", err);
        ck_assert_int_eq(cm_ssh_host_key_is_new(s), 0);
        ck_assert_str_eq(cm_ssh_host_key(s), pinned);
        cm_ssh_close(s);
        free(pinned);

        /* another node's key as the pin: refused, both fingerprints as ssh-keygen prints
         */
        keygen_fingerprint(2, fp2, sizeof(fp2));
        keygen_fingerprint(3, fp3, sizeof(fp3));
        s = NULL;
        rc = connect_to(node_env(2, "ADDR"), port(), key_ed, node_env(3, "HOSTKEY"), 5000,
                        &s, err, sizeof(err));
        ck_assert_int_eq(rc, CM_SSH_ERR_HOSTKEY);
        ck_assert_ptr_null(s);
        snprintf(want, sizeof(want),
                 "host key for %s changed: pinned %s, offered %s; refusing to connect",
                 peer, fp3, fp2);
        ck_assert_str_eq(err, want);

        /* a pin that is not a key */
        rc = connect_to(node_env(2, "ADDR"), port(), key_ed, "ssh-ed25519 not-base64!",
                        5000, &s, err, sizeof(err));
        ck_assert_int_eq(rc, CM_SSH_ERR_HOSTKEY);
        ck_assert_msg(strstr(err, "pinned host key for ") == err &&
                          strstr(err, "refusing to connect") != NULL,
                      "%s", err);
}
END_TEST

START_TEST(test_auth)
{
        char err[1024], peer[64], want[512], path[512], cmd[1024];
        cm_ssh_t *s = NULL;
        /* ECDSA in OpenSSH and PEM format */
        cm_ssh_err_t rc = connect_to(node_env(1, "ADDR"), port(), key_ec,
                                     node_env(1, "HOSTKEY"), 5000, &s, err, sizeof(err));
        ck_assert_msg(rc == CM_SSH_OK, "%s", err);
        ck_assert_int_eq(cm_ssh_exec(s, "true", NULL, NULL, err, sizeof(err)), CM_SSH_OK);
        cm_ssh_close(s);
        rc = connect_to(node_env(1, "ADDR"), port(), key_ec_pem, node_env(1, "HOSTKEY"),
                        5000, &s, err, sizeof(err));
        ck_assert_msg(rc == CM_SSH_OK, "%s", err);
        cm_ssh_close(s);

        /* a key the node does not know */
        snprintf(path, sizeof(path), "%s/stranger", fixture_dir);
        snprintf(cmd, sizeof(cmd), "ssh-keygen -q -t ed25519 -N '' -f %s </dev/null",
                 path);
        run(cmd);
        cm_ssh_key_t *stranger = load_key(path);
        s = NULL;
        rc = connect_to(node_env(1, "ADDR"), port(), stranger, node_env(1, "HOSTKEY"),
                        5000, &s, err, sizeof(err));
        ck_assert_int_eq(rc, CM_SSH_ERR_AUTH);
        ck_assert_ptr_null(s);
        snprintf(want, sizeof(want),
                 "auth failed for user \"%s\" with the cluster's ed25519 key on %s",
                 env("CM_SSHD_USER"), peer_of(1, peer, sizeof(peer)));
        ck_assert_str_eq(err, want);
        cm_ssh_key_free(stranger);

        /* a user the node does not let in */
        cm_ssh_target_t t = {.host = node_env(1, "ADDR"),
                             .port = port(),
                             .user = "cm-nobody",
                             .key = key_ec,
                             .host_key = node_env(1, "HOSTKEY")};
        rc = cm_ssh_connect(&t, &s, err, sizeof(err));
        ck_assert_int_eq(rc, CM_SSH_ERR_AUTH);
        snprintf(want, sizeof(want),
                 "auth failed for user \"cm-nobody\" with the cluster's ECDSA key on %s",
                 peer);
        ck_assert_str_eq(err, want);
}
END_TEST

/* An ed25519 key in PKCS#8 PEM (openssl genpkey), which validation accepts, also logs
 * in: its public key (the last 32 bytes of the DER SubjectPublicKeyInfo) is added to the
 * nodes' authorized keys as an OpenSSH line. */
START_TEST(test_ed25519_pkcs8_key)
{
        char path[512], cmd[2048], err[1024];
        snprintf(path, sizeof(path), "%s/ed_pkcs8.pem", fixture_dir);
        snprintf(
            cmd, sizeof(cmd),
            "openssl genpkey -algorithm ed25519 -out %s 2>/dev/null && chmod 600 %s && "
            "openssl pkey -in %s -pubout -outform DER | python3 -c '"
            "import base64, struct, sys; pk = sys.stdin.buffer.read()[-32:]; "
            "s = lambda b: struct.pack(\">I\", len(b)) + b; "
            "print(\"ssh-ed25519 \" + base64.b64encode(s(b\"ssh-ed25519\") + "
            "s(pk)).decode() + \" pkcs8\")' >>%s/authorized_keys",
            path, path, path, env("CM_SSHD_DIR"));
        run(cmd);
        size_t len;
        char *pem = read_file(path, &len);
        ck_assert(strstr(pem, "-----BEGIN PRIVATE KEY-----") == pem);
        cm_ssh_key_t *k = NULL;
        cm_ssh_err_t rc = cm_ssh_key_new((unsigned char *)pem, len, &k, err, sizeof(err));
        free(pem);
        ck_assert_msg(rc == CM_SSH_OK, "%s", err);
        ck_assert_int_eq(cm_ssh_key_type(k), CM_SSH_KEY_ED25519);
        cm_ssh_t *s = NULL;
        rc = connect_to(node_env(1, "ADDR"), port(), k, node_env(1, "HOSTKEY"), 5000, &s,
                        err, sizeof(err));
        ck_assert_msg(rc == CM_SSH_OK, "%s", err);
        cm_ssh_result_t r;
        rc = cm_ssh_exec(s, "echo in", NULL, &r, err, sizeof(err));
        ck_assert_msg(rc == CM_SSH_OK, "%s", err);
        ck_assert_str_eq(r.out, "in\n");
        cm_ssh_result_free(&r);
        cm_ssh_close(s);
        cm_ssh_key_free(k);
}
END_TEST

START_TEST(test_rsa_key_refused)
{
        char path[512], cmd[1024], err[1024];
        snprintf(path, sizeof(path), "%s/rsa", fixture_dir);
        snprintf(cmd, sizeof(cmd), "ssh-keygen -q -t rsa -b 2048 -N '' -f %s </dev/null",
                 path);
        run(cmd);
        size_t len;
        char *pem = read_file(path, &len);
        cm_ssh_key_t *k = (cm_ssh_key_t *)0x1;
        cm_ssh_err_t rc = cm_ssh_key_new((unsigned char *)pem, len, &k, err, sizeof(err));
        free(pem);
        ck_assert_int_eq(rc, CM_SSH_ERR_KEY);
        ck_assert_ptr_null(k);
        ck_assert_msg(strstr(err, "RSA keys are refused: ") == err, "%s", err);
        ck_assert_msg(strstr(err, "ssh-rsa (SHA-1)") && strstr(err, "OpenSSH 8.8") &&
                          strstr(err, "ssh-keygen -t ed25519"),
                      "%s", err);
        /* no key at all: refused before any connection */
        cm_ssh_target_t t = {.host = node_env(1, "ADDR"), .port = port(), .user = "x"};
        cm_ssh_t *s = NULL;
        ck_assert_int_eq(cm_ssh_connect(&t, &s, err, sizeof(err)), CM_SSH_ERR_KEY);
}
END_TEST

START_TEST(test_connect_failures)
{
        char err[1024], want[512];
        cm_ssh_t *s = NULL;
        /* 127.0.0.14: no node listens there */
        cm_ssh_err_t rc =
            connect_to("127.0.0.14", port(), key_ed, NULL, 3000, &s, err, sizeof(err));
        ck_assert_int_eq(rc, CM_SSH_ERR_CONNECT);
        snprintf(want, sizeof(want), "connect 127.0.0.14:%d: connection refused", port());
        ck_assert_str_eq(err, want);

        /* a listener that never speaks SSH: the handshake runs out of time */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        ck_assert_int_eq(listen(fd, 4), 0);
        socklen_t alen = sizeof(a);
        getsockname(fd, (struct sockaddr *)&a, &alen);
        int p = ntohs(a.sin_port);
        long t0 = now_ms();
        rc = connect_to("127.0.0.1", p, key_ed, NULL, 1000, &s, err, sizeof(err));
        long took = now_ms() - t0;
        close(fd);
        ck_assert_int_eq(rc, CM_SSH_ERR_TIMEOUT);
        snprintf(want, sizeof(want),
                 "timeout after 1 s connecting to 127.0.0.1:%d (SSH handshake)", p);
        ck_assert_str_eq(err, want);
        ck_assert_msg(took >= 1000 && took < 1600, "took %ld ms", took);

        rc = connect_to("no-such-host.invalid", 22, key_ed, NULL, 1000, &s, err,
                        sizeof(err));
        ck_assert_int_eq(rc, CM_SSH_ERR_CONNECT);
        ck_assert_msg(
            strstr(err, "connect no-such-host.invalid:22: cannot resolve host: ") == err,
            "%s", err);
        rc = connect_to("127.0.0.11", 70000, key_ed, NULL, 1000, &s, err, sizeof(err));
        ck_assert_int_eq(rc, CM_SSH_ERR_ARG);
}
END_TEST

int main(void)
{
        Suite *su = suite_create("ssh_auth");
        TCase *tc = tcase_create("sshd");
        tcase_add_unchecked_fixture(tc, fixture_start, fixture_stop);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_host_key_pinning);
        tcase_add_test(tc, test_auth);
        tcase_add_test(tc, test_ed25519_pkcs8_key);
        tcase_add_test(tc, test_rsa_key_refused);
        tcase_add_test(tc, test_connect_failures);
        suite_add_tcase(su, tc);
        return cm_check_run(su);
}
