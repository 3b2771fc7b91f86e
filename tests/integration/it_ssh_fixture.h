/*
 * it_ssh_fixture.h - three real OpenSSH servers (tests/fixtures/sshd_nodes.sh, on
 * 127.0.0.11-13) and the helpers the SSH executor's tests share (it_ssh.c,
 * it_ssh_auth.c). Each test program includes it once.
 */
#ifndef CM_IT_SSH_FIXTURE_H
#define CM_IT_SSH_FIXTURE_H

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "cm/ssh.h"
#include "../check_main.h"

#define NODES 3

/* The leak of tests/lsan.supp, also when ctest runs without scripts/test's LSAN_OPTIONS:
   libssh2 1.10 leaks 56 bytes per ECDSA authentication. The slow unwinder is needed to
   see libssh2's frame under libcrypto's (built without frame pointers). */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
        return "leak:libssh2_userauth_publickey_frommemory\n";
}
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
        return "fast_unwind_on_malloc=0";
}

static char fixture_dir[256];
static char env_keys[64][700];
static char env_vals[64][512];
static int env_count;
static cm_ssh_key_t *key_ed, *key_ec, *key_ec_pem;
static atomic_int cancel_flag;

static long now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static const char *env(const char *key)
{
        for (int i = 0; i < env_count; i++)
                if (strcmp(env_keys[i], key) == 0)
                        return env_vals[i];
        ck_abort_msg("fixture did not print %s", key);
        return NULL;
}

static const char *node_env(int i, const char *what)
{
        char k[64];
        snprintf(k, sizeof(k), "CM_SSHD_NODE_%d_%s", i, what);
        return env(k);
}

static int port(void)
{
        return atoi(env("CM_SSHD_PORT"));
}

static char *read_file(const char *path, size_t *len)
{
        FILE *f = fopen(path, "rb");
        if (f == NULL)
                return NULL;
        char *buf = malloc(1 << 21);
        size_t n = fread(buf, 1, (1 << 21) - 1, f);
        fclose(f);
        buf[n] = '\0';
        if (len)
                *len = n;
        return buf;
}

static cm_ssh_key_t *load_key(const char *path)
{
        size_t len;
        char err[512];
        char *pem = read_file(path, &len);
        ck_assert_msg(pem != NULL, "cannot read %s", path);
        cm_ssh_key_t *k = NULL;
        cm_ssh_err_t rc = cm_ssh_key_new((unsigned char *)pem, len, &k, err, sizeof(err));
        memset(pem, 0, len);
        free(pem);
        ck_assert_msg(rc == CM_SSH_OK, "%s: %s", path, err);
        return k;
}

static void run(const char *cmd)
{
        ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

static void fixture_start(void)
{
        const char *src = getenv("CM_SOURCE_DIR");
        ck_assert_msg(src != NULL, "CM_SOURCE_DIR is not set (run through ctest)");
        snprintf(fixture_dir, sizeof(fixture_dir), "/tmp/cm-it-ssh.XXXXXX");
        ck_assert(mkdtemp(fixture_dir) != NULL);
        char cmd[1024];
        snprintf(cmd, sizeof(cmd),
                 "bash %s/tests/fixtures/sshd_nodes.sh start %s --nodes %d </dev/null "
                 ">/dev/null",
                 src, fixture_dir, NODES);
        run(cmd);
        char path[512];
        snprintf(path, sizeof(path), "%s/env", fixture_dir);
        FILE *f = fopen(path, "r");
        ck_assert(f != NULL);
        char line[700];
        while (fgets(line, sizeof(line), f) && env_count < 64) {
                char *eq = strchr(line, '=');
                if (eq == NULL)
                        continue;
                *eq = '\0';
                char *v = eq + 1;
                v[strcspn(v, "\n")] = '\0';
                if (*v == '\'') /* KEY='value' */
                        v++, v[strlen(v) - 1] = '\0';
                snprintf(env_keys[env_count], sizeof(env_keys[0]), "%s", line);
                snprintf(env_vals[env_count], sizeof(env_vals[0]), "%s", v);
                env_count++;
        }
        fclose(f);
        key_ed = load_key(env("CM_SSHD_KEY"));
        key_ec = load_key(env("CM_SSHD_KEY_ECDSA"));
        key_ec_pem = load_key(env("CM_SSHD_KEY_ECDSA_PEM"));
}

static void fixture_stop(void)
{
        const char *src = getenv("CM_SOURCE_DIR");
        char cmd[1024];
        cm_ssh_key_free(key_ed);
        cm_ssh_key_free(key_ec);
        cm_ssh_key_free(key_ec_pem);
        if (getenv("CM_IT_SSH_KEEP")) { /* debugging: leave the nodes and their logs */
                fprintf(stderr, "it_ssh: fixture kept in %s\n", fixture_dir);
                return;
        }
        if (src && fixture_dir[0]) {
                snprintf(cmd, sizeof(cmd), "bash %s/tests/fixtures/sshd_nodes.sh stop %s",
                         src, fixture_dir);
                (void)system(cmd);
        }
}

static cm_ssh_err_t connect_to(const char *host, int p, const cm_ssh_key_t *key,
                               const char *pin, int timeout_ms, cm_ssh_t **s, char *err,
                               size_t err_size)
{
        cm_ssh_target_t t = {.host = host,
                             .port = p,
                             .user = env("CM_SSHD_USER"),
                             .key = key,
                             .host_key = pin,
                             .connect_timeout_ms = timeout_ms,
                             .cancel = &cancel_flag};
        return cm_ssh_connect(&t, s, err, err_size);
}

/* A session to node i (1-based), its host key pinned from the fixture. */
static cm_ssh_t *node(int i)
{
        char err[1024];
        cm_ssh_t *s = NULL;
        cm_ssh_err_t rc = connect_to(node_env(i, "ADDR"), port(), key_ed,
                                     node_env(i, "HOSTKEY"), 5000, &s, err, sizeof(err));
        ck_assert_msg(rc == CM_SSH_OK, "node%d: %s", i, err);
        return s;
}

static char *peer_of(int i, char *buf, size_t size)
{
        snprintf(buf, size, "%s:%d", node_env(i, "ADDR"), port());
        return buf;
}

#endif
