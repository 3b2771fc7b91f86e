/*
 * it_zke.c - the zke jobs (workers/zke/zke.h) against real OpenSSH servers
 * (tests/fixtures/sshd_nodes.sh, 4 nodes on 127.0.0.11-14) whose container runtime is
 * tests/fixtures/fake-docker: create, a second run that changes nothing, certificates
 * checked with the openssl CLI, pre-check failures of every node at once, a wrong SSH
 * key, a changed host key, an update adding then removing a worker, cancel within 2 s
 * and a resumed install starting no container twice, and zke_remove leaving nothing.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "cm/config.h"
#include "cm/pki.h"
#include "zke.h"
#include "../check_main.h"

/* libssh2 1.10 leaks 56 bytes per ECDSA authentication (tests/lsan.supp). */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
        return "leak:libssh2_userauth_publickey_frommemory\n";
}

#define NODES 4

static char dir[256];
static char env_keys[64][1400], env_vals[64][1400];
static int env_count;
static cm_config_t conf;
static char node_root[512];

static const char *env(const char *key)
{
        for (int i = 0; i < env_count; i++)
                if (strcmp(env_keys[i], key) == 0)
                        return env_vals[i];
        ck_abort_msg("fixture did not print %s", key);
        return NULL;
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
        char cmd[4096];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

/* Output of a shell command (malloc'd). */
static char *sh_out(const char *cmd)
{
        FILE *p = popen(cmd, "r");
        ck_assert(p != NULL);
        char *buf = calloc(1, 1 << 20);
        size_t n = fread(buf, 1, (1 << 20) - 1, p);
        buf[n] = '\0';
        pclose(p);
        return buf;
}

static char *read_file(const char *path, size_t *len)
{
        FILE *f = fopen(path, "rb");
        if (!f)
                return NULL;
        char *buf = calloc(1, 1 << 21);
        size_t n = fread(buf, 1, (1 << 21) - 1, f);
        fclose(f);
        if (len)
                *len = n;
        return buf;
}

static void fixture_start(void)
{
        const char *src = getenv("CM_SOURCE_DIR");
        ck_assert_msg(src != NULL, "CM_SOURCE_DIR is not set (run through ctest)");
        snprintf(dir, sizeof(dir), "/tmp/cm-it-zke.XXXXXX");
        ck_assert(mkdtemp(dir) != NULL);
        sh("bash %s/tests/fixtures/sshd_nodes.sh start %s --nodes %d </dev/null "
           ">/dev/null",
           src, dir, NODES);
        for (int i = 1; i <= NODES; i++)
                sh("%s/tests/fixtures/fake-docker install %s/node%d", src, dir, i);
        char path[512], line[1400];
        snprintf(path, sizeof(path), "%s/env", dir);
        FILE *f = fopen(path, "r");
        ck_assert(f != NULL);
        while (fgets(line, sizeof(line), f) && env_count < 64) {
                char *eq = strchr(line, '=');
                if (!eq)
                        continue;
                *eq = '\0';
                char *v = eq + 1;
                v[strcspn(v, "\n")] = '\0';
                if (*v == '\'')
                        v++, v[strlen(v) - 1] = '\0';
                snprintf(env_keys[env_count], sizeof(env_keys[0]), "%s", line);
                snprintf(env_vals[env_count], sizeof(env_vals[0]), "%s", v);
                env_count++;
        }
        fclose(f);
        char err[256];
        ck_assert(cm_config_load(&conf, NULL, err, sizeof(err)) == 0);
        conf.zke.command_timeout_s = 20;
        conf.zke.connect_timeout_s = 5;
        snprintf(node_root, sizeof(node_root), "%s/{{node_name}}/root", dir);
}

static void fixture_stop(void)
{
        const char *src = getenv("CM_SOURCE_DIR");
        if (src && dir[0])
                sh("bash %s/tests/fixtures/sshd_nodes.sh stop %s", src, dir);
        cm_config_destroy(&conf);
}

/* Every node as new: no containers, files, log or knobs. */
static void nodes_reset(void)
{
        sh("for n in %s/node*; do rm -rf \"$n/docker\" \"$n/docker.log\" "
           "\"$n/fake-docker.env\"; find \"$n/root\" -mindepth 1 -delete; "
           "%s/tests/fixtures/fake-docker install \"$n\"; done",
           dir, getenv("CM_SOURCE_DIR"));
}

static void knob(int node, const char *line)
{
        sh("echo '%s' >>%s/node%d/fake-docker.env", line, dir, node);
}

/* ---- a job run ---- */

typedef struct {
        cm_spec_t spec;
        cm_node_t *prev;
        size_t prev_count;
        json_t *host_keys;
        char *key;
        size_t key_len;
        char *pki_public, *pki_keys;
        atomic_int cancel;
        char progress[65536];
        pthread_mutex_t mu;
} job_t;

static int canceled(void *opaque)
{
        return atomic_load(&((job_t *)opaque)->cancel);
}

static void progress(void *opaque, const char *step, const char *node, const char *status,
                     const char *const *lines, size_t n)
{
        job_t *j = opaque;
        pthread_mutex_lock(&j->mu);
        size_t used = strlen(j->progress);
        snprintf(j->progress + used, sizeof(j->progress) - used, "%s %s %s%s%s\n", step,
                 node ? node : "-", status, n ? ": " : "", n ? lines[0] : "");
        pthread_mutex_unlock(&j->mu);
}

static void job_init(job_t *j, const char *nodes_json, const char *key_path)
{
        memset(j, 0, sizeof(*j));
        pthread_mutex_init(&j->mu, NULL);
        char text[4096];
        snprintf(
            text, sizeof(text),
            "{\"name\": \"itzke\", \"sshUser\": \"%s\", \"sshPort\": %s, "
            "\"managerAddress\": \"127.0.0.1\", \"clusterDomain\": \"cluster.local\", "
            "\"nodes\": %s}",
            env("CM_SSHD_USER"), env("CM_SSHD_PORT"), nodes_json);
        json_t *o = json_loads(text, 0, NULL);
        ck_assert(o != NULL);
        cm_field_errors_t errs = {0};
        ck_assert_int_eq(cm_spec_from_json(&j->spec, o, &errs), 0);
        json_decref(o);
        j->host_keys = json_object();
        j->key = read_file(key_path ? key_path : env("CM_SSHD_KEY"), &j->key_len);
        ck_assert(j->key != NULL);
}

static const char *THREE =
    "[{\"name\": \"node1\", \"address\": \"127.0.0.11\", \"roles\": [\"controlplane\", "
    "\"etcd\"]}, {\"name\": \"node2\", \"address\": \"127.0.0.12\", \"roles\": "
    "[\"worker\"]}, {\"name\": \"node3\", \"address\": \"127.0.0.13\", \"roles\": "
    "[\"worker\"]}]";
static const char *FOUR =
    "[{\"name\": \"node1\", \"address\": \"127.0.0.11\", \"roles\": [\"controlplane\", "
    "\"etcd\"]}, {\"name\": \"node2\", \"address\": \"127.0.0.12\", \"roles\": "
    "[\"worker\"]}, {\"name\": \"node3\", \"address\": \"127.0.0.13\", \"roles\": "
    "[\"worker\"]}, {\"name\": \"node4\", \"address\": \"127.0.0.14\", \"roles\": "
    "[\"worker\"]}]";

/* THREE with node2 an etcd node too, and node4 a new worker+etcd node. */
static const char *ETCD3 =
    "[{\"name\": \"node1\", \"address\": \"127.0.0.11\", \"roles\": [\"controlplane\", "
    "\"etcd\"]}, {\"name\": \"node2\", \"address\": \"127.0.0.12\", \"roles\": "
    "[\"worker\", \"etcd\"]}, {\"name\": \"node3\", \"address\": \"127.0.0.13\", "
    "\"roles\": [\"worker\"]}, {\"name\": \"node4\", \"address\": \"127.0.0.14\", "
    "\"roles\": [\"worker\", \"etcd\"]}]";

static zke_ctx_t ctx_of(job_t *j)
{
        zke_ctx_t c = {
            .conf = &conf,
            .cluster = "itzke",
            .job_id = "job-1",
            .attempt = 1,
            .spec = &j->spec,
            .previous_nodes = j->prev,
            .previous_node_count = j->prev_count,
            .ssh_key = (const unsigned char *)j->key,
            .ssh_key_len = j->key_len,
            .host_keys = j->host_keys,
            .pki_public_json = j->pki_public,
            .pki_keys_json = j->pki_keys,
            .node_root = node_root,
            .canceled = canceled,
            .cancel_opaque = j,
            .progress = progress,
            .progress_opaque = j,
        };
        return c;
}

/* After a successful run: keep what the caller would store, for the next run. */
static void job_keep(job_t *j, zke_result_t *r)
{
        free(j->pki_public);
        free(j->pki_keys);
        j->pki_public = strdup(r->pki_public_json);
        j->pki_keys = strdup(r->pki_keys_json);
        cm_nodes_free(j->prev, j->prev_count);
        ck_assert_int_eq(cm_nodes_copy(&j->prev, j->spec.nodes, j->spec.node_count), 0);
        j->prev_count = j->spec.node_count;
}

static void job_set_nodes(job_t *j, const char *nodes_json)
{
        json_t *arr = json_loads(nodes_json, 0, NULL);
        cm_field_errors_t errs = {0};
        cm_nodes_free(j->spec.nodes, j->spec.node_count);
        ck_assert_int_eq(
            cm_nodes_from_json(&j->spec.nodes, &j->spec.node_count, arr, &errs), 0);
        json_decref(arr);
}

static void job_free(job_t *j)
{
        cm_spec_destroy(&j->spec);
        cm_nodes_free(j->prev, j->prev_count);
        json_decref(j->host_keys);
        free(j->key);
        free(j->pki_public);
        free(j->pki_keys);
}

static void up_ok(job_t *j, zke_result_t *r)
{
        zke_ctx_t c = ctx_of(j);
        memset(r, 0, sizeof(*r));
        int rc = zke_up(&c, r);
        ck_assert_msg(rc == 0, "zke_up: %s\nprogress:\n%s", r->error ? r->error : "?",
                      j->progress);
}

/* Fresh nodes with the cluster of nodes_json created on them, kept for an update. */
static void job_created(job_t *j, const char *nodes_json)
{
        zke_result_t r;
        nodes_reset();
        job_init(j, nodes_json, NULL);
        up_ok(j, &r);
        job_keep(j, &r);
        zke_result_free(&r);
}

/* Size of node i's fixture log (an offset to read the calls after it). */
static long log_size(int node)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/node%d/docker.log", dir, node);
        FILE *f = fopen(path, "r");
        if (!f)
                return 0;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fclose(f);
        return n;
}

/* The finished docker calls of node i after offset that changed something. */
static char *mutations_since(int node, long offset)
{
        char cmd[1024];
        snprintf(
            cmd, sizeof(cmd),
            "tail -c +%ld %s/node%d/docker.log 2>/dev/null | grep ' rc=' | "
            "grep -Ev ' rc=[0-9]+ docker (inspect|version|info|ps|exec|image inspect) ' "
            "|| true",
            offset + 1, dir, node);
        return sh_out(cmd);
}

static int containers_on(int node)
{
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "ls %s/node%d/docker/containers 2>/dev/null | wc -l",
                 dir, node);
        char *o = sh_out(cmd);
        int n = atoi(o);
        free(o);
        return n;
}

static bool has_container(int node, const char *name)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/node%d/docker/containers/%s.json", dir, node,
                 name);
        return access(path, F_OK) == 0;
}

/* Certificate PEM of entry name from the public JSON, written to path. */
static void write_cert(const char *public_json, const char *name, const char *path)
{
        json_t *o = json_loads(public_json, 0, NULL);
        const char *pem = json_string_value(json_object_get(o, name));
        ck_assert_msg(pem != NULL, "no certificate %s", name);
        FILE *f = fopen(path, "w");
        fputs(pem, f);
        fclose(f);
        json_decref(o);
}

START_TEST(test_create_rerun_remove)
{
        nodes_reset();
        job_t j;
        job_init(&j, THREE, NULL);
        zke_result_t r;
        up_ok(&j, &r);
        ck_assert(r.kubeconfig &&
                  strstr(r.kubeconfig, "server: \"https://127.0.0.11:6443\""));
        ck_assert(r.pki_keys_json && strstr(r.pki_keys_json, "PRIVATE KEY"));
        ck_assert(!strstr(r.pki_public_json, "PRIVATE KEY"));
        ck_assert_int_eq((int)json_object_size(j.host_keys), 3);
        ck_assert_msg(strstr(j.progress, "connect node2 done: connected to 127.0.0.12") &&
                          strstr(j.progress, "trusted on first use"),
                      "%s", j.progress);
        /* containers by role, files by role and mode */
        const char *cp[] = {
            "etcd",    "kube-apiserver", "kube-controller-manager", "kube-scheduler",
            "kubelet", "kube-proxy",     "service-sidekick"};
        for (size_t k = 0; k < 7; k++)
                ck_assert_msg(has_container(1, cp[k]), "node1 lacks %s", cp[k]);
        ck_assert(has_container(2, "nginx-proxy") && has_container(2, "kubelet"));
        ck_assert(!has_container(2, "etcd") && !has_container(3, "kube-apiserver"));
        sh("test \"$(stat -c %%a "
           "%s/node1/root/etc/kubernetes/ssl/kube-apiserver-key.pem)\" = "
           "600",
           dir);
        sh("test -f %s/node2/root/etc/kubernetes/ssl/kube-node.pem && ! test -e "
           "%s/node2/root/etc/kubernetes/ssl/kube-apiserver.pem",
           dir, dir);
        sh("grep -q 'rc=0 docker run --rm .* apply -f "
           "/etc/kubernetes/addons/flannel.yaml' "
           "%s/node1/docker.log",
           dir);
        /* certificates: the kubeconfig's client certificate and the API server's verify
           against the CA; the API server's carries the SANs */
        char ca[600], api[600], adm[600], kc[600];
        snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
        snprintf(api, sizeof(api), "%s/apiserver.pem", dir);
        snprintf(adm, sizeof(adm), "%s/admin.pem", dir);
        snprintf(kc, sizeof(kc), "%s/kubeconfig", dir);
        write_cert(r.pki_public_json, CM_PKI_CA, ca);
        write_cert(r.pki_public_json, "kube-apiserver", api);
        FILE *f = fopen(kc, "w");
        fputs(r.kubeconfig, f);
        fclose(f);
        sh("grep client-certificate-data %s | awk '{print $2}' | base64 -d >%s", kc, adm);
        sh("openssl verify -CAfile %s %s >/dev/null && openssl verify -CAfile %s %s "
           ">/dev/null",
           ca, adm, ca, api);
        sh("grep certificate-authority-data %s | awk '{print $2}' | base64 -d | cmp - %s",
           kc, ca);
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "openssl x509 -in %s -noout -ext subjectAltName", api);
        char *sans = sh_out(cmd);
        ck_assert_msg(strstr(sans, "IP Address:127.0.0.11") &&
                          strstr(sans, "IP Address:10.43.0.1") &&
                          strstr(sans, "DNS:kubernetes.default.svc.cluster.local"),
                      "%s", sans);
        free(sans);
        snprintf(cmd, sizeof(cmd), "openssl x509 -in %s -noout -subject", adm);
        char *subj = sh_out(cmd);
        ck_assert_msg(strstr(subj, "O = system:masters") &&
                          strstr(subj, "CN = kube-admin"),
                      "%s", subj);
        free(subj);
        job_keep(&j, &r);
        zke_result_free(&r);

        /* the second run changes nothing, and says so */
        long off[NODES + 1];
        for (int i = 1; i <= 3; i++)
                off[i] = log_size(i);
        j.progress[0] = '\0';
        up_ok(&j, &r);
        ck_assert_int_eq(r.changed, 0);
        ck_assert_msg(strstr(j.progress, "zke-up - unchanged: nothing changed"), "%s",
                      j.progress);
        ck_assert(strstr(j.progress, "distribute node1 unchanged") &&
                  strstr(j.progress, "etcd node1 unchanged"));
        for (int i = 1; i <= 3; i++) {
                char *m = mutations_since(i, off[i]);
                ck_assert_msg(m[0] == '\0', "node%d changed on a second run:\n%s", i, m);
                free(m);
        }
        zke_result_free(&r);

        /* zke_remove: nothing left, and a second remove is a no-op */
        for (int round = 0; round < 2; round++) {
                zke_ctx_t c = ctx_of(&j);
                memset(&r, 0, sizeof(r));
                j.progress[0] = '\0';
                ck_assert_msg(zke_remove(&c, &r) == 0, "zke_remove: %s", r.error);
                ck_assert_int_eq(r.changed > 0, round == 0);
                zke_result_free(&r);
                for (int i = 1; i <= 3; i++) {
                        ck_assert_int_eq(containers_on(i), 0);
                        sh("test -z \"$(find %s/node%d/root -mindepth 1 -type f)\" && ! "
                           "test -e "
                           "%s/node%d/root/etc/kubernetes",
                           dir, i, dir, i);
                }
        }
        ck_assert_msg(strstr(j.progress, "teardown node1 unchanged"), "%s", j.progress);
        job_free(&j);
}
END_TEST

START_TEST(test_prechecks_every_node)
{
        nodes_reset();
        knob(1, "MISSING=1");
        knob(3, "SWAP=on");
        knob(3, "VERSION=19.03.15");
        /* a listener on node2's kubelet port */
        int s = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(10250)};
        inet_pton(AF_INET, "127.0.0.12", &a.sin_addr);
        ck_assert_msg(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(s, 1) == 0,
                      "cannot listen on 127.0.0.12:10250");
        job_t j;
        job_init(&j, THREE, NULL);
        zke_ctx_t c = ctx_of(&j);
        zke_result_t r = {0};
        ck_assert_int_eq(zke_up(&c, &r), -1);
        close(s);
        const char *e = r.error;
        ck_assert_msg(
            e && strstr(e, "pre-checks failed on 3 of 3 nodes") &&
                strstr(e, "node1 (127.0.0.11): container runtime missing") &&
                strstr(e, "command not found") &&
                strstr(e, "node2 (127.0.0.12): port 10250 (kubelet) is in use on "
                          "127.0.0.12") &&
                strstr(e, "node3 (127.0.0.13): container runtime: docker 19.03.15 is "
                          "older than 20.10") &&
                strstr(e, "swap is on (/swapfile)"),
            "%s", e ? e : "(null)");
        ck_assert(!r.canceled && !r.kubeconfig);
        for (int i = 1; i <= 3; i++) {
                char *m = mutations_since(i, 0);
                ck_assert_msg(m[0] == '\0',
                              "node%d changed despite failed pre-checks:\n%s", i, m);
                free(m);
        }
        zke_result_free(&r);
        job_free(&j);
}
END_TEST

START_TEST(test_wrong_key_and_changed_host_key)
{
        nodes_reset();
        char other[600];
        snprintf(other, sizeof(other), "%s/other_key", dir);
        sh("rm -f %s %s.pub && ssh-keygen -q -t ed25519 -N '' -f %s </dev/null", other,
           other, other);
        job_t j;
        job_init(&j, THREE, other);
        zke_ctx_t c = ctx_of(&j);
        zke_result_t r = {0};
        ck_assert_int_eq(zke_up(&c, &r), -1);
        ck_assert_msg(r.error && strstr(r.error, "connect: 3 of 3 nodes failed") &&
                          strstr(r.error, "auth failed for user"),
                      "%s", r.error);
        zke_result_free(&r);
        job_free(&j);

        job_init(&j, THREE, NULL);
        /* node1's address pinned to node2's key: a changed host key */
        json_object_set_new(j.host_keys, "127.0.0.11",
                            json_string(env("CM_SSHD_NODE_2_HOSTKEY")));
        c = ctx_of(&j);
        ck_assert_int_eq(zke_up(&c, &r), -1);
        ck_assert_msg(r.error && strstr(r.error, "node1: host key for 127.0.0.11:") &&
                          strstr(r.error, "changed: pinned SHA256:") &&
                          strstr(r.error, "offered SHA256:") && strstr(r.error, "1 of 3"),
                      "%s", r.error);
        ck_assert_str_eq(json_string_value(json_object_get(j.host_keys, "127.0.0.11")),
                         env("CM_SSHD_NODE_2_HOSTKEY"));
        for (int i = 1; i <= 3; i++)
                ck_assert_int_eq(log_size(i), 0); /* nothing ran anywhere */
        zke_result_free(&r);
        job_free(&j);
}
END_TEST

START_TEST(test_update_adds_and_removes_worker)
{
        job_t j;
        zke_result_t r;
        job_created(&j, THREE);
        long off[NODES + 1];
        for (int i = 1; i <= 3; i++)
                off[i] = log_size(i);
        job_set_nodes(&j, FOUR);
        j.progress[0] = '\0';
        up_ok(&j, &r);
        ck_assert(has_container(4, "kubelet") && has_container(4, "nginx-proxy"));
        ck_assert(json_object_get(j.host_keys, "127.0.0.14") != NULL);
        for (int i = 1; i <= 3; i++) {
                char *m = mutations_since(i, off[i]);
                ck_assert_msg(m[0] == '\0', "node%d touched by adding node4:\n%s", i, m);
                free(m);
        }
        ck_assert_msg(!strstr(j.progress, "addons"), "add-ons on update:\n%s",
                      j.progress);
        job_keep(&j, &r);
        zke_result_free(&r);

        /* removing node4 again tears it down and touches no other node */
        for (int i = 1; i <= 3; i++)
                off[i] = log_size(i);
        job_set_nodes(&j, THREE);
        up_ok(&j, &r);
        ck_assert_int_eq(containers_on(4), 0);
        sh("test -z \"$(find %s/node4/root -type f)\"", dir);
        for (int i = 1; i <= 3; i++) {
                char *m = mutations_since(i, off[i]);
                ck_assert_msg(m[0] == '\0', "node%d touched by removing node4:\n%s", i,
                              m);
                free(m);
        }
        zke_result_free(&r);
        job_free(&j);
}
END_TEST

/* How many finished calls on node i after offset match the extended regex re. */
static int calls_since(int node, long offset, const char *re)
{
        char cmd[1024];
        snprintf(cmd, sizeof(cmd),
                 "tail -c +%ld %s/node%d/docker.log 2>/dev/null | grep ' rc=' | "
                 "grep -cE '%s' || true",
                 offset + 1, dir, node, re);
        char *o = sh_out(cmd);
        int n = atoi(o);
        free(o);
        return n;
}

/*
 * An update adding etcd members (node2 gains the role, node4 is new): each becomes a
 * member on node1 first, then starts with initial-cluster-state existing, one at a time
 * (the fixture, like etcd, refuses a member that was not added and a second add while
 * one is unstarted); node1's etcd is not replaced. A run cut after the add resumes
 * without adding twice, and a second run changes nothing.
 */
START_TEST(test_update_adds_etcd_members)
{
        job_t j;
        zke_result_t r;
        job_created(&j, THREE);
        long off1 = log_size(1);

        /* node4's first etcd start fails after node1 has added it */
        job_set_nodes(&j, ETCD3);
        knob(4, "FAIL_RUN=docker: Error response from daemon: no space left on device");
        zke_ctx_t c = ctx_of(&j);
        memset(&r, 0, sizeof(r));
        ck_assert_int_ne(zke_up(&c, &r), 0);
        ck_assert_msg(r.error && strstr(r.error, "node4") && strstr(r.error, "no space"),
                      "%s", r.error ? r.error : "(no error)");
        zke_result_free(&r);
        ck_assert_int_eq(calls_since(1, off1,
                                     "rc=0 docker exec etcd etcdctl member add "
                                     "etcd-node2 --peer-urls=https://127.0.0.12:2380"),
                         1);
        ck_assert_int_eq(calls_since(1, off1,
                                     "rc=0 docker exec etcd etcdctl member add "
                                     "etcd-node4 --peer-urls=https://127.0.0.14:2380"),
                         1);

        /* resumed: node4 is a member already, so only its container starts */
        sh("rm -f %s/node4/fake-docker.env", dir);
        j.progress[0] = '\0';
        up_ok(&j, &r);
        ck_assert_int_eq(
            calls_since(1, off1, "rc=[0-9]+ docker exec etcd etcdctl member add"), 2);
        ck_assert_msg(strstr(j.progress, "etcd node4 joining") &&
                          strstr(j.progress, "already a member on node1"),
                      "%s", j.progress);
        for (int n = 2; n <= 4; n += 2) {
                ck_assert(has_container(n, "etcd"));
                ck_assert_int_eq(calls_since(n, 0,
                                             "rc=0 docker run .*--name etcd .*"
                                             "--initial-cluster-state=existing"),
                                 1);
        }
        ck_assert_int_eq(
            calls_since(1, off1, "rc=0 docker (rm -f etcd|run .*--name etcd)"), 0);
        char cmd[512];
        snprintf(
            cmd, sizeof(cmd),
            "%s/node1/bin/docker exec etcd etcdctl member list | grep -c ', started, '",
            dir);
        char *members = sh_out(cmd);
        ck_assert_msg(atoi(members) == 3, "started members: %s", members);
        free(members);
        job_keep(&j, &r);
        zke_result_free(&r);

        /* again: nothing to add, nothing changed on any node */
        long off[NODES + 1];
        for (int i = 1; i <= NODES; i++)
                off[i] = log_size(i);
        up_ok(&j, &r);
        for (int i = 1; i <= NODES; i++) {
                char *m = mutations_since(i, off[i]);
                ck_assert_msg(m[0] == '\0', "node%d changed by a second run:\n%s", i, m);
                free(m);
        }
        ck_assert_int_eq(calls_since(1, off[1], "etcdctl member add"), 0);
        zke_result_free(&r);
        job_free(&j);
}
END_TEST

typedef struct {
        job_t *j;
        zke_result_t r;
        int rc;
        atomic_int done;
} bg_t;

static void *bg_up(void *opaque)
{
        bg_t *b = opaque;
        zke_ctx_t c = ctx_of(b->j);
        b->rc = zke_up(&c, &b->r);
        atomic_store(&b->done, 1);
        return NULL;
}

static long now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

START_TEST(test_cancel_then_resume)
{
        nodes_reset();
        knob(2, "SLOW_RUN=60");
        knob(2, "SLOW_MATCH=--name kubelet");
        job_t j;
        job_init(&j, THREE, NULL);
        bg_t b = {.j = &j};
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, bg_up, &b), 0);
        char probe[1024];
        snprintf(probe, sizeof(probe),
                 "grep -q 'begin docker run -d --name kubelet' %s/node2/docker.log "
                 "2>/dev/null",
                 dir);
        long start = now_ms();
        while (system(probe) != 0 && !atomic_load(&b.done) && now_ms() - start < 60000)
                usleep(100 * 1000);
        ck_assert_msg(!atomic_load(&b.done), "zke_up ended before the slow step: %s",
                      b.r.error ? b.r.error : "ok");
        usleep(300 * 1000);
        long t0 = now_ms();
        atomic_store(&j.cancel, 1);
        pthread_join(t, NULL);
        long took = now_ms() - t0;
        ck_assert_msg(b.rc == -1 && b.r.canceled, "rc %d canceled %d error %s", b.rc,
                      b.r.canceled, b.r.error);
        ck_assert_msg(took <= 2000, "cancel took %ld ms", took);
        ck_assert(!has_container(2, "kubelet"));
        zke_result_free(&b.r);

        /* resumed: the same job again (nothing stored: it never succeeded) */
        sh("rm -f %s/node2/fake-docker.env", dir);
        atomic_store(&j.cancel, 0);
        zke_result_t r;
        up_ok(&j, &r);
        ck_assert(has_container(2, "kubelet"));
        for (int i = 1; i <= 3; i++) {
                char cmd[1024];
                snprintf(cmd, sizeof(cmd),
                         "grep -oE 'rc=0 docker (run -d|create) --name [^ ]+' "
                         "%s/node%d/docker.log | sort | uniq -d",
                         dir, i);
                char *twice = sh_out(cmd);
                ck_assert_msg(twice[0] == '\0', "node%d started twice: %s", i, twice);
                free(twice);
        }
        zke_result_free(&r);
        job_free(&j);
}
END_TEST

static Suite *suite(void)
{
        Suite *s = suite_create("zke");
        TCase *tc = tcase_create("nodes");
        tcase_add_unchecked_fixture(tc, fixture_start, fixture_stop);
        tcase_set_timeout(tc, 240);
        tcase_add_test(tc, test_create_rerun_remove);
        tcase_add_test(tc, test_prechecks_every_node);
        tcase_add_test(tc, test_wrong_key_and_changed_host_key);
        tcase_add_test(tc, test_update_adds_and_removes_worker);
        tcase_add_test(tc, test_update_adds_etcd_members);
        tcase_add_test(tc, test_cancel_then_resume);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return cm_check_run(suite());
}
