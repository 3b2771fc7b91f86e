/*
 * it_ssh.c - the SSH executor (cm/ssh.h) against three real OpenSSH servers
 * (it_ssh_fixture.h): commands with exit status and output, failure messages, timeouts
 * and cancellation ending the remote command, SFTP uploads, and the parallel runner's
 * bound. Host keys, authentication and keys: it_ssh_auth.c.
 */
#include "it_ssh_fixture.h"

START_TEST(test_exec_output_and_status)
{
        cm_ssh_t *s = node(1);
        cm_ssh_result_t r;
        char err[1024];
        cm_ssh_err_t rc = cm_ssh_exec(s, "echo out; echo err >&2; echo $CM_TEST_NODE",
                                      NULL, &r, err, sizeof(err));
        ck_assert_msg(rc == CM_SSH_OK, "%s", err);
        ck_assert_int_eq(r.exit_status, 0);
        ck_assert_str_eq(r.out, "out\nnode1\n");
        ck_assert_str_eq(r.err, "err\n");
        ck_assert_uint_eq(r.out_dropped, 0);
        cm_ssh_result_free(&r);

        /* stdin reaches the command; the node's bin folder is first on its PATH */
        char path[512];
        snprintf(path, sizeof(path), "%s/cm-fake-tool", node_env(1, "BIN"));
        FILE *f = fopen(path, "w");
        ck_assert(f != NULL);
        fputs("#!/bin/sh\necho fake tool on $CM_TEST_NODE\n", f);
        fclose(f);
        chmod(path, 0755);
        cm_ssh_exec_opts_t o = {.stdin_data = "secret-ish input\n", .stdin_len = 17};
        rc = cm_ssh_exec(s, "cat; cm-fake-tool", &o, &r, err, sizeof(err));
        ck_assert_msg(rc == CM_SSH_OK, "%s", err);
        ck_assert_str_eq(r.out, "secret-ish input\nfake tool on node1\n");
        cm_ssh_result_free(&r);
        unlink(path);

        /* a non-zero exit: status kept, output captured, message with the last stderr */
        rc = cm_ssh_exec(s, "echo partial; echo 'no such container' >&2; exit 7", NULL,
                         &r, err, sizeof(err));
        ck_assert_int_eq(rc, CM_SSH_ERR_EXIT);
        ck_assert_int_eq(r.exit_status, 7);
        ck_assert_str_eq(r.out, "partial\n");
        ck_assert_str_eq(err,
                         "command \"echo partial; echo 'no such container' >&2; exit 7\" "
                         "exited 7: no such container");
        cm_ssh_result_free(&r);

        /* killed by a signal */
        rc = cm_ssh_exec(s, "kill -KILL $$", NULL, &r, err, sizeof(err));
        ck_assert_int_eq(rc, CM_SSH_ERR_EXIT);
        ck_assert_str_eq(r.exit_signal, "KILL");
        ck_assert_int_eq(r.exit_status, -1);
        ck_assert_msg(strstr(err, "killed by signal KILL") != NULL, "%s", err);
        cm_ssh_result_free(&r);
        cm_ssh_close(s);
}
END_TEST

START_TEST(test_exit_message_last_lines)
{
        cm_ssh_t *s = node(2);
        char err[1024];
        cm_ssh_err_t rc =
            cm_ssh_exec(s,
                        "for i in 1 2 3 4 5 6 7; do echo line$i >&2; done; echo "
                        "stdout-line; exit 3",
                        NULL, NULL, err, sizeof(err));
        ck_assert_int_eq(rc, CM_SSH_ERR_EXIT);
        /* the command is cut at 60 characters; the last 5 stderr lines follow */
        ck_assert_str_eq(
            err, "command \"for i in 1 2 3 4 5 6 7; do echo line$i >&2; done; echo "
                 "stdou...\" exited 3: line3 | line4 | line5 | line6 | line7");
        /* no stderr: the last stdout lines instead */
        rc = cm_ssh_exec(s, "echo only-stdout; exit 2", NULL, NULL, err, sizeof(err));
        ck_assert_int_eq(rc, CM_SSH_ERR_EXIT);
        ck_assert_str_eq(err,
                         "command \"echo only-stdout; exit 2\" exited 2: only-stdout");
        cm_ssh_close(s);
}
END_TEST

/* 1 if a live process runs "sleep <arg>" (the nodes are this machine, so /proc tells; a
   zombie has an empty command line and does not count). */
static int remote_running(const char *arg)
{
        char want[64], path[64], buf[64];
        int wlen = snprintf(want, sizeof(want), "sleep%c%s%c", 0, arg, 0);
        DIR *d = opendir("/proc");
        struct dirent *e;
        int found = 0;
        while (!found && (e = readdir(d)) != NULL) {
                if (e->d_name[0] < '0' || e->d_name[0] > '9')
                        continue;
                snprintf(path, sizeof(path), "/proc/%.20s/cmdline", e->d_name);
                FILE *f = fopen(path, "rb");
                if (f == NULL)
                        continue;
                size_t n = fread(buf, 1, sizeof(buf), f);
                fclose(f);
                found = n == (size_t)wlen && memcmp(buf, want, n) == 0;
        }
        closedir(d);
        return found;
}

START_TEST(test_timeout_kills_remote_command)
{
        cm_ssh_t *s = node(1);
        char err[1024];
        cm_ssh_exec_opts_t o = {.timeout_ms = 1000};
        long t0 = now_ms();
        cm_ssh_err_t rc = cm_ssh_exec(s, "sleep 107", &o, NULL, err, sizeof(err));
        long took = now_ms() - t0;
        ck_assert_int_eq(rc, CM_SSH_ERR_TIMEOUT);
        ck_assert_str_eq(err, "command \"sleep 107\" timed out after 1 s");
        ck_assert_msg(took >= 1000 && took < 2500, "took %ld ms", took);
        /* TERM ended the command, and the session is still usable */
        usleep(200 * 1000);
        ck_assert_msg(!remote_running("107"), "sleep 107 still runs on the node");
        cm_ssh_result_t r;
        rc = cm_ssh_exec(s, "echo still-here", NULL, &r, err, sizeof(err));
        ck_assert_msg(rc == CM_SSH_OK, "%s", err);
        ck_assert_str_eq(r.out, "still-here\n");
        cm_ssh_result_free(&r);

        /* a command that ignores TERM gets KILL */
        o.timeout_ms = 500;
        t0 = now_ms();
        rc = cm_ssh_exec(s, "trap '' TERM; sleep 108; echo survived", &o, NULL, err,
                         sizeof(err));
        took = now_ms() - t0;
        ck_assert_int_eq(rc, CM_SSH_ERR_TIMEOUT);
        ck_assert_str_eq(err,
                         "command \"trap '' TERM; sleep 108; echo survived\" timed out "
                         "after 0.5 s");
        ck_assert_msg(took < 2500, "took %ld ms", took);
        usleep(200 * 1000);
        ck_assert_msg(!remote_running("108"), "sleep 108 still runs on the node");
        cm_ssh_close(s);
}
END_TEST

static void *raise_cancel(void *arg)
{
        usleep((useconds_t)(intptr_t)arg * 1000);
        atomic_store(&cancel_flag, 1);
        return NULL;
}

START_TEST(test_cancel_during_sleep)
{
        cm_ssh_t *s = node(3);
        char err[1024];
        pthread_t th;
        atomic_store(&cancel_flag, 0);
        long t0 = now_ms();
        pthread_create(&th, NULL, raise_cancel, (void *)(intptr_t)500);
        cm_ssh_err_t rc = cm_ssh_exec(s, "sleep 30.01", NULL, NULL, err, sizeof(err));
        long took = now_ms() - t0;
        pthread_join(th, NULL);
        ck_assert_int_eq(rc, CM_SSH_ERR_CANCELED);
        ck_assert_msg(strncmp(err, "command \"sleep 30.01\" canceled after ", 37) == 0,
                      "%s", err);
        /* raised at 500 ms: honored well within 2 s */
        ck_assert_msg(took < 500 + 2000, "cancel took %ld ms after the flag", took - 500);
        cm_ssh_close(s);

        /* the remote sleep was ended; a fresh session (flag down) works */
        usleep(200 * 1000);
        ck_assert_msg(!remote_running("30.01"), "sleep 30.01 still runs on the node");
        atomic_store(&cancel_flag, 0);
        s = node(3);
        ck_assert_int_eq(cm_ssh_exec(s, "true", NULL, NULL, err, sizeof(err)), CM_SSH_OK);
        cm_ssh_close(s);

        /* a raised flag stops a connect too */
        atomic_store(&cancel_flag, 1);
        cm_ssh_t *s2 = NULL;
        rc = connect_to(node_env(3, "ADDR"), port(), key_ed, NULL, 5000, &s2, err,
                        sizeof(err));
        ck_assert_int_eq(rc, CM_SSH_ERR_CANCELED);
        ck_assert_ptr_null(s2);
        atomic_store(&cancel_flag, 0);
}
END_TEST

START_TEST(test_upload)
{
        cm_ssh_t *s = node(2);
        char err[1024], path[512], local[512];
        const char *root = node_env(2, "ROOT");
        snprintf(path, sizeof(path), "%s/etc/kubernetes/ssl/ca.pem", root);
        const char *body =
            "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n";
        cm_ssh_err_t rc = cm_ssh_upload(s, path, body, strlen(body), 0640,
                                        CM_SSH_UPLOAD_MKDIRS, 5000, err, sizeof(err));
        ck_assert_msg(rc == CM_SSH_OK, "%s", err);
        struct stat st;
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0640);
        char *got = read_file(path, NULL);
        ck_assert_str_eq(got, body);
        free(got);
        snprintf(local, sizeof(local), "%s/etc/kubernetes/ssl", root);
        struct stat dst;
        ck_assert_int_eq(stat(local, &dst), 0);
        ck_assert_uint_eq(dst.st_mode & 0777, 0755);

        /* again over the existing file: replaced, new mode exactly (no umask), no
         * leftovers */
        size_t big_len = 1 << 20;
        char *big = malloc(big_len);
        for (size_t i = 0; i < big_len; i++)
                big[i] = (char)('a' + (i * 7919) % 26);
        rc = cm_ssh_upload(s, path, big, big_len, 0600, 0, 10000, err, sizeof(err));
        ck_assert_msg(rc == CM_SSH_OK, "%s", err);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);
        ck_assert_int_eq((long)st.st_size, (long)big_len);
        size_t n;
        got = read_file(path, &n);
        ck_assert(n == big_len && memcmp(got, big, big_len) == 0);
        free(got);
        free(big);
        rc = cm_ssh_upload(s, path, "x", 1, 0775, 0, 5000, err, sizeof(err));
        ck_assert_msg(rc == CM_SSH_OK, "%s", err);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0775);
        DIR *d = opendir(local);
        struct dirent *e;
        int entries = 0;
        while ((e = readdir(d)) != NULL)
                if (e->d_name[0] != '.' || strstr(e->d_name, "cm-tmp"))
                        ck_assert_msg(strcmp(e->d_name, "ca.pem") == 0, "left over: %s",
                                      e->d_name),
                            entries++;
        closedir(d);
        ck_assert_int_eq(entries, 1);

        /* missing folder without MKDIRS; a folder the user may not write */
        snprintf(path, sizeof(path), "%s/missing/f.txt", root);
        rc = cm_ssh_upload(s, path, "x", 1, 0644, 0, 5000, err, sizeof(err));
        ck_assert_int_eq(rc, CM_SSH_ERR_SFTP);
        char want[1024], peer[64];
        snprintf(want, sizeof(want),
                 "upload to %s:%s: creating %s/missing/.f.txt.cm-tmp-",
                 peer_of(2, peer, sizeof(peer)), path, root);
        ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
        ck_assert_msg(strstr(err, ": no such file or folder") != NULL, "%s", err);
        snprintf(path, sizeof(path), "%s/node2/denied.txt", fixture_dir);
        rc = cm_ssh_upload(s, path, "x", 1, 0644, 0, 5000, err, sizeof(err));
        if (geteuid() ==
            0) { /* the fixture's folders belong to root, the user is cm-test */
                ck_assert_int_eq(rc, CM_SSH_ERR_SFTP);
                ck_assert_msg(strstr(err, ": permission denied") != NULL, "%s", err);
        }
        rc = cm_ssh_upload(s, "relative/path", "x", 1, 0644, 0, 5000, err, sizeof(err));
        ck_assert_int_eq(rc, CM_SSH_ERR_ARG);
        cm_ssh_close(s);
}
END_TEST

typedef struct {
        const char *pins[NODES];
        const char *cmds[NODES];
        char out[NODES][256];
} per_node_t;

static int per_node(size_t i, void *ctx, char *err, size_t err_size)
{
        per_node_t *c = ctx;
        cm_ssh_t *s = NULL;
        cm_ssh_err_t rc = connect_to(node_env((int)i + 1, "ADDR"), port(), key_ed,
                                     c->pins[i], 5000, &s, err, err_size);
        if (rc != CM_SSH_OK)
                return rc;
        cm_ssh_result_t r;
        rc = cm_ssh_exec(s, c->cmds[i], NULL, &r, err, err_size);
        snprintf(c->out[i], sizeof(c->out[i]), "%s", r.out ? r.out : "");
        cm_ssh_result_free(&r);
        cm_ssh_close(s);
        return rc;
}

START_TEST(test_parallel_nodes)
{
        per_node_t c = {0};
        cm_ssh_node_result_t res[NODES];
        for (int i = 0; i < NODES; i++) {
                c.pins[i] = node_env(i + 1, "HOSTKEY");
                c.cmds[i] = "echo $CM_TEST_NODE";
        }
        ck_assert_int_eq(cm_ssh_parallel(NODES, 50, per_node, &c, res), 0);
        for (int i = 0; i < NODES; i++) {
                char want[32];
                snprintf(want, sizeof(want), "node%d\n", i + 1);
                ck_assert_str_eq(c.out[i], want);
                ck_assert_int_eq(res[i].rc, 0);
                ck_assert_str_eq(res[i].error, "");
        }
        const char *names[NODES] = {"node1", "node2", "node3"};
        ck_assert_ptr_null(cm_ssh_parallel_summary(NODES, names, res));

        /* two failures of different kinds: both reported, the healthy node still ran */
        c.pins[0] = node_env(2, "HOSTKEY");
        c.cmds[2] = "echo disk full >&2; exit 4";
        ck_assert_int_eq(cm_ssh_parallel(NODES, 2, per_node, &c, res), 2);
        ck_assert_int_eq(res[0].rc, CM_SSH_ERR_HOSTKEY);
        ck_assert_int_eq(res[1].rc, 0);
        ck_assert_str_eq(c.out[1], "node2\n");
        ck_assert_int_eq(res[2].rc, CM_SSH_ERR_EXIT);
        char *sum = cm_ssh_parallel_summary(NODES, names, res);
        char peer[64], want[2048];
        snprintf(want, sizeof(want),
                 "2 of 3 nodes failed: node1: host key for %s changed: ",
                 peer_of(1, peer, sizeof(peer)));
        ck_assert_msg(strncmp(sum, want, strlen(want)) == 0, "%s", sum);
        ck_assert_msg(
            strstr(sum, "; refusing to connect; node3: command \"echo disk full >&2; "
                        "exit 4\" exited 4: disk full") != NULL,
            "%s", sum);
        free(sum);
}
END_TEST

static atomic_int active, active_max;

static int bounded(size_t i, void *ctx, char *err, size_t err_size)
{
        const char *dir = ctx;
        int now = atomic_fetch_add(&active, 1) + 1, m = atomic_load(&active_max);
        while (now > m && !atomic_compare_exchange_weak(&active_max, &m, now))
                ;
        int n = (int)(i % NODES) + 1;
        cm_ssh_t *s = NULL;
        cm_ssh_err_t rc = connect_to(node_env(n, "ADDR"), port(), key_ed,
                                     node_env(n, "HOSTKEY"), 5000, &s, err, err_size);
        if (rc == CM_SSH_OK) {
                /* counts the commands running at once across all nodes (one machine),
                   under flock: cur goes up, max keeps the highest, cur goes down after
                   0.3 s */
                char cmd[1024];
                snprintf(
                    cmd, sizeof(cmd),
                    "cd %s && exec 9>>lock && flock 9 && c=$(( $(cat cur 2>/dev/null || "
                    "echo 0) + 1 )) && echo $c >cur && m=$(cat max 2>/dev/null || echo "
                    "0) "
                    "&& if [ $c -gt $m ]; then echo $c >max; fi && flock -u 9 && sleep "
                    "0.3 "
                    "&& flock 9 && echo $(( $(cat cur) - 1 )) >cur",
                    dir);
                rc = cm_ssh_exec(s, cmd, NULL, NULL, err, err_size);
                cm_ssh_close(s);
        }
        atomic_fetch_sub(&active, 1);
        return rc;
}

START_TEST(test_parallel_bound)
{
        char dir[512], path[600];
        snprintf(dir, sizeof(dir), "%s", node_env(1, "ROOT"));
        cm_ssh_node_result_t res[30];
        long t0 = now_ms();
        int failed = cm_ssh_parallel(30, 4, bounded, dir, res);
        long took = now_ms() - t0;
        for (int i = 0; i < 30; i++)
                ck_assert_msg(res[i].rc == 0, "item %d: %s", i, res[i].error);
        ck_assert_int_eq(failed, 0);
        snprintf(path, sizeof(path), "%s/max", dir);
        char *m = read_file(path, NULL);
        ck_assert(m != NULL);
        int remote_max = atoi(m);
        free(m);
        snprintf(path, sizeof(path), "%s/cur", dir);
        char *cur = read_file(path, NULL);
        ck_assert_int_eq(atoi(cur), 0);
        free(cur);
        ck_assert_msg(remote_max >= 2 && remote_max <= 4, "remote concurrency %d",
                      remote_max);
        ck_assert_msg(atomic_load(&active_max) <= 4, "local concurrency %d",
                      atomic_load(&active_max));
        /* 30 x 0.3 s of sleep at 4 at once: about 2.3 s; serial would be 9 s */
        ck_assert_msg(took < 8000, "took %ld ms", took);
}
END_TEST

START_TEST(test_output_bound)
{
        cm_ssh_t *s = node(3);
        char err[1024];
        cm_ssh_result_t r;
        cm_ssh_exec_opts_t o = {.output_max = 4096};
        cm_ssh_err_t rc =
            cm_ssh_exec(s,
                        "head -c 204800 /dev/zero | tr '\\0' a; printf END; "
                        "head -c 10000 /dev/zero | tr '\\0' e >&2; printf ERR >&2",
                        &o, &r, err, sizeof(err));
        ck_assert_msg(rc == CM_SSH_OK, "%s", err);
        ck_assert_uint_eq(r.out_len, 4096);
        ck_assert_uint_eq(r.out_dropped, 204800 + 3 - 4096);
        ck_assert_uint_eq(strlen(r.out), 4096);
        ck_assert_str_eq(r.out + 4093, "END");
        ck_assert_int_eq(r.out[0], 'a');
        ck_assert_uint_eq(r.err_len, 4096);
        ck_assert_uint_eq(r.err_dropped, 10003 - 4096);
        ck_assert_str_eq(r.err + 4093, "ERR");
        cm_ssh_result_free(&r);
        cm_ssh_close(s);
}
END_TEST

int main(void)
{
        Suite *su = suite_create("ssh");
        TCase *tc = tcase_create("sshd");
        tcase_add_unchecked_fixture(tc, fixture_start, fixture_stop);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_exec_output_and_status);
        tcase_add_test(tc, test_exit_message_last_lines);
        tcase_add_test(tc, test_timeout_kills_remote_command);
        tcase_add_test(tc, test_cancel_during_sleep);
        tcase_add_test(tc, test_upload);
        tcase_add_test(tc, test_parallel_nodes);
        tcase_add_test(tc, test_parallel_bound);
        tcase_add_test(tc, test_output_bound);
        suite_add_tcase(su, tc);
        return cm_check_run(su);
}
