/*
 * zke_precheck.c - step 2: one probe script per node (runtime and its version, cgroup
 * driver, swap, listening sockets, free disk, clock, host name), judged here against the
 * node's roles. Every failure of every node is collected and reported in one error:
 *   pre-checks failed on 2 of 3 nodes: node1 (127.0.0.11): container runtime missing
 *   (docker: command not found); node2 (127.0.0.12): port 6443 (kube-apiserver) is in
 *   use on 127.0.0.12, swap is on (/swapfile) ...
 * A port held by the container that will use it (a second run) is not a conflict.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zke_int.h"

#define REASONS_MAX 2048

typedef struct {
        char **reasons; /* per node index, REASONS_MAX each */
} pre_t;

static const char *PROBE =
    "export LC_ALL=C\n"
    "v=$(docker version --format '{{.Server.Version}}' 2>&1); echo \"runtime_rc=$?\"\n"
    "printf 'runtime=%s\\n' \"$(printf '%s' \"$v\" | tr '\\n' ' ' | cut -c1-200)\"\n"
    "echo \"cgroup=$(docker info --format '{{.CgroupDriver}}' 2>/dev/null | head -1)\"\n"
    "echo \"containers= $(docker ps -a --format '{{.Names}}' 2>/dev/null | tr '\\n' ' "
    "')\"\n"
    "if command -v swapon >/dev/null 2>&1; then\n"
    "  s=$(swapon --noheadings --show=NAME 2>/dev/null | tr '\\n' ' ')\n"
    "else s=$(tail -n +2 /proc/swaps 2>/dev/null | awk '{printf \"%s \", $1}'); fi\n"
    "echo \"swap=$s\"\n"
    "echo \"listen= $(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | "
    "awk '$4==\"0A\"{printf \"%s \", $2}')\"\n"
    "d=\"$ZKE_ROOT/var/lib\"; while [ ! -d \"$d\" ]; do d=$(dirname \"$d\"); done\n"
    "echo \"disk_dir=$d\"\n"
    "echo \"disk_kb=$(df -Pk \"$d\" | awk 'NR==2{print $4}')\"\n"
    "echo \"hostname=$(hostname)\"\n"
    "echo \"time=$(date +%s)\"\n";

const char *zke_precheck_probe(void)
{
        return PROBE;
}

/* The value of "key=" in the probe's output (a copy in buf), or NULL. */
static const char *field(const char *out, const char *key, char *buf, size_t size)
{
        size_t kl = strlen(key);
        for (const char *p = out; p && *p;) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
                        size_t vl = len - kl - 1;
                        if (vl >= size)
                                vl = size - 1;
                        memcpy(buf, p + kl + 1, vl);
                        buf[vl] = '\0';
                        return buf;
                }
                p = nl ? nl + 1 : NULL;
        }
        return NULL;
}

static bool has_word(const char *list, const char *word)
{
        size_t wl = strlen(word);
        for (const char *p = list; (p = strstr(p, word)); p += wl)
                if ((p == list || p[-1] == ' ') && (p[wl] == ' ' || p[wl] == '\0'))
                        return true;
        return false;
}

/* Is port listened on for the wildcard or addr, in the probe's "listen" list? */
static bool port_taken(const char *listen, const char *addr, int port)
{
        struct in_addr a;
        char mine[16] = "", mapped[48] = "", suffix[8];
        if (inet_pton(AF_INET, addr, &a) == 1) {
                snprintf(mine, sizeof(mine), "%08X", (unsigned)a.s_addr);
                snprintf(mapped, sizeof(mapped), "0000000000000000FFFF0000%s", mine);
        }
        snprintf(suffix, sizeof(suffix), ":%04X", port);
        char buf[64];
        for (const char *p = listen; *p;) {
                while (*p == ' ')
                        p++;
                size_t len = strcspn(p, " ");
                if (len == 0)
                        break;
                if (len < sizeof(buf)) {
                        memcpy(buf, p, len);
                        buf[len] = '\0';
                        char *colon = strrchr(buf, ':');
                        if (colon && strcmp(colon, suffix) == 0) {
                                *colon = '\0';
                                if (strspn(buf, "0") == strlen(buf) ||
                                    (*mine && (strcmp(buf, mine) == 0 ||
                                               strcmp(buf, mapped) == 0)))
                                        return true;
                        }
                }
                p += len;
        }
        return false;
}

static void judge(zke_run_t *run, size_t i, const char *out, time_t t0, time_t t1,
                  char *r)
{
        zke_node_t *z = &run->nodes[i];
        const cm_node_t *n = z->node;
        char v[4096], rt[256];
        int rrc = atoi(field(out, "runtime_rc", v, sizeof(v)) ? v : "1");
        field(out, "runtime", rt, sizeof(rt));
        if (rrc == 127)
                zke_append(r, REASONS_MAX, ", ", "container runtime missing (%s)", rt);
        else if (rrc != 0)
                zke_append(r, REASONS_MAX, ", ",
                           "container runtime: docker version failed: %s", rt);
        else {
                int major = 0, minor = 0;
                if (sscanf(rt, "%d.%d", &major, &minor) != 2)
                        zke_append(r, REASONS_MAX, ", ",
                                   "container runtime: unreadable docker version \"%s\"",
                                   rt);
                else if (major < ZKE_MIN_DOCKER_MAJOR ||
                         (major == ZKE_MIN_DOCKER_MAJOR && minor < ZKE_MIN_DOCKER_MINOR))
                        zke_append(r, REASONS_MAX, ", ",
                                   "container runtime: docker %s is older than %d.%d", rt,
                                   ZKE_MIN_DOCKER_MAJOR, ZKE_MIN_DOCKER_MINOR);
                if (field(out, "cgroup", v, sizeof(v)))
                        snprintf(z->cgroup_driver, sizeof(z->cgroup_driver), "%.63s", v);
        }
        if (field(out, "swap", v, sizeof(v)) && strspn(v, " ") != strlen(v)) {
                size_t l = strlen(v);
                while (l && v[l - 1] == ' ')
                        v[--l] = '\0';
                zke_append(r, REASONS_MAX, ", ",
                           "swap is on (%s): kubelet runs with --fail-swap-on", v);
        }
        char containers[4096] = "", listen[65536 / 4];
        field(out, "containers", containers, sizeof(containers));
        const char *lp = field(out, "listen", listen, sizeof(listen));
        static const struct {
                int port;
                const char *what, *role, *owner;
        } ports[] = {{2379, "etcd client", "etcd", "etcd"},
                     {2380, "etcd peer", "etcd", "etcd"},
                     {6443, "kube-apiserver", "controlplane", "kube-apiserver"},
                     {10250, "kubelet", "controlplane", "kubelet"},
                     {10250, "kubelet", "worker", "kubelet"}};
        for (size_t k = 0; lp && k < sizeof(ports) / sizeof(ports[0]); k++) {
                if (!cm_pki_node_has_role(n, ports[k].role) ||
                    has_word(containers, ports[k].owner))
                        continue;
                if (k == 4 && cm_pki_node_has_role(n, "controlplane"))
                        continue; /* already checked as a controlplane node */
                if (port_taken(lp, n->address, ports[k].port))
                        zke_append(r, REASONS_MAX, ", ", "port %d (%s) is in use on %s",
                                   ports[k].port, ports[k].what, n->address);
        }
        char dir[1024] = "/";
        field(out, "disk_dir", dir, sizeof(dir));
        if (field(out, "disk_kb", v, sizeof(v))) {
                long kb = atol(v);
                if (kb < ZKE_MIN_DISK_KB)
                        zke_append(r, REASONS_MAX, ", ",
                                   "disk: %.1f GiB free under %s, needs %.0f GiB",
                                   kb / 1048576.0, dir, ZKE_MIN_DISK_KB / 1048576.0);
        }
        if (field(out, "time", v, sizeof(v))) {
                long remote = atol(v), mid = (long)(t0 + t1) / 2;
                long skew = remote > mid ? remote - mid : mid - remote;
                if (skew > ZKE_MAX_CLOCK_SKEW_S + (t1 - t0) / 2)
                        zke_append(r, REASONS_MAX, ", ",
                                   "clock: %ld s off the manager's (at most %d s)", skew,
                                   ZKE_MAX_CLOCK_SKEW_S);
        }
        if (field(out, "hostname", v, sizeof(v)))
                snprintf(z->hostname, sizeof(z->hostname), "%.255s", v);
}

static int probe_one(zke_run_t *run, size_t i, void *arg, char *errstr, size_t size)
{
        pre_t *pre = arg;
        zke_node_t *z = &run->nodes[i];
        char *root = zke_shell_quote(z->root);
        size_t len = strlen(PROBE) + (root ? strlen(root) : 0) + 32;
        char *script = malloc(len);
        if (!root || !script) {
                free(root);
                free(script);
                snprintf(errstr, size, "out of memory");
                return -1;
        }
        snprintf(script, len, "ZKE_ROOT=%s\n%s", root, PROBE);
        free(root);
        zke_progress(run, "precheck", z->node->name, "started", NULL, 0);
        time_t t0 = time(NULL);
        char *out = NULL;
        int st = -1;
        cm_ssh_err_t rc = zke_exec(run, i, script, &st, &out, errstr, size);
        time_t t1 = time(NULL);
        free(script);
        if (rc != CM_SSH_OK) {
                free(out);
                zke_append(pre->reasons[i], REASONS_MAX, ", ", "probe: %s", errstr);
                return rc == CM_SSH_ERR_CANCELED ? rc : 0;
        }
        judge(run, i, out ? out : "", t0, t1, pre->reasons[i]);
        free(out);
        return 0;
}

int zke_precheck(zke_run_t *run)
{
        size_t *idx = calloc(run->n + 1, sizeof(*idx)), count = 0;
        pre_t pre = {calloc(run->n + 1, sizeof(char *))};
        bool oom = !idx || !pre.reasons;
        for (size_t i = 0; !oom && i < run->n; i++) {
                oom |= !(pre.reasons[i] = calloc(1, REASONS_MAX));
                if (!run->nodes[i].removed)
                        idx[count++] = i;
        }
        int rc = oom ? -1 : zke_each(run, "precheck", idx, count, probe_one, &pre);
        if (oom)
                zke_fail(run, "precheck: out of memory");
        if (rc == 0) {
                /* Across nodes: host names, and one cgroup driver for the plan. */
                const zke_node_t *first_driver = NULL;
                for (size_t a = 0; a < count; a++) {
                        zke_node_t *za = &run->nodes[idx[a]];
                        for (size_t b = 0; b < count; b++) {
                                zke_node_t *zb = &run->nodes[idx[b]];
                                if (a != b && za->hostname[0] &&
                                    strcmp(za->hostname, zb->hostname) == 0) {
                                        zke_append(pre.reasons[idx[a]], REASONS_MAX, ", ",
                                                   "hostname \"%s\" is also %s's",
                                                   za->hostname, zb->node->name);
                                        break;
                                }
                        }
                        if (!za->cgroup_driver[0])
                                continue;
                        if (!first_driver)
                                first_driver = za;
                        else if (strcmp(first_driver->cgroup_driver, za->cgroup_driver))
                                zke_append(
                                    pre.reasons[idx[a]], REASONS_MAX, ", ",
                                    "cgroup driver \"%s\" differs from %s's \"%s\"",
                                    za->cgroup_driver, first_driver->node->name,
                                    first_driver->cgroup_driver);
                }
                snprintf(run->cgroup_driver, sizeof(run->cgroup_driver), "%s",
                         first_driver ? first_driver->cgroup_driver : "systemd");
                char *msg = calloc(1, 16384);
                size_t failed = 0;
                for (size_t a = 0; msg && a < count; a++) {
                        const char *r = pre.reasons[idx[a]];
                        const char *name = run->nodes[idx[a]].node->name;
                        if (*r) {
                                failed++;
                                zke_append(msg, 16384, "; ", "%s: %s",
                                           run->nodes[idx[a]].label, r);
                                zke_progressf(run, "precheck", name, "failed", "%s", r);
                        } else
                                zke_progressf(run, "precheck", name, "done",
                                              "docker, swap, ports, disk, clock and "
                                              "hostname \"%s\" fine",
                                              run->nodes[idx[a]].hostname);
                }
                if (failed) {
                        zke_fail(run, "pre-checks failed on %zu of %zu nodes: %s", failed,
                                 count, msg ? msg : "");
                        rc = -1;
                }
                free(msg);
        }
        for (size_t i = 0; pre.reasons && i < run->n; i++)
                free(pre.reasons[i]);
        free(pre.reasons);
        free(idx);
        return rc;
}
