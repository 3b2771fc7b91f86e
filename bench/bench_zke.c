/*
 * bench_zke.c - the zke fan-out row: cm's pre-check step (zke's connect and precheck
 * steps, workers/zke, called directly as zke_up calls them) over N sshd nodes of
 * tests/fixtures/sshd_nodes.sh, timed from the first connection to the last session
 * closed; and the very probe script it sends, for the baselines (pssh, Ansible).
 *
 *   cm-bench zke-precheck --n N --user U --port P --sshkey KEY
 *       node i (1..N) is 127.0.0.(10+i):P; zke.parallelism from the configuration
 *       (default 50, CM_ZKE_PARALLELISM); prints
 *       {"row":"zke-precheck","n":N,"done":<nodes connected and probed>,"passed":<nodes
 *        whose pre-checks all passed>,"seconds":S,"rate":<nodes/s>,"parallelism":50,
 *        "error":"<zke's message, when a node failed>"}
 *   cm-bench zke-script
 *       prints the script the pre-check runs on a node (node root ""), nothing else
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bench.h"
#include "cm/config.h"
#include "zke_int.h"

int bench_zke_script(void)
{
        /* What probe_one sends for a node without a node root. */
        printf("ZKE_ROOT=''\n%s", zke_precheck_probe());
        return 0;
}

/* The spec of the benchmark: node1 controlplane+etcd, the others workers. */
static void zke_spec(cm_spec_t *spec, const bench_opts_t *o)
{
        json_t *nodes = json_array();
        for (long i = 1; i <= o->n; i++) {
                char name[32], addr[32];
                snprintf(name, sizeof(name), "node%ld", i);
                snprintf(addr, sizeof(addr), "127.0.0.%ld", 10 + i);
                json_t *roles = i == 1 ? json_pack("[ss]", "controlplane", "etcd")
                                       : json_pack("[s]", "worker");
                json_array_append_new(nodes, json_pack("{s:s,s:s,s:o}", "name", name,
                                                       "address", addr, "roles", roles));
        }
        json_t *j = json_pack("{s:s,s:s,s:i,s:s,s:s,s:o}", "name", "bench-zke", "sshUser",
                              o->user, "sshPort", o->port, "managerAddress", "127.0.0.1",
                              "clusterDomain", "cluster.local", "nodes", nodes);
        cm_field_errors_t errs = {0};
        if (!j || cm_spec_from_json(spec, j, &errs) != 0)
                bench_die("the zke benchmark spec does not parse: %s",
                          errs.count ? errs.items[0].message : "out of memory");
        json_decref(j);
}

static int close_fn(size_t i, void *opaque, char *errstr, size_t size)
{
        (void)errstr, (void)size;
        zke_run_t *run = opaque;
        cm_ssh_close(run->nodes[i].ssh);
        run->nodes[i].ssh = NULL;
        return 0;
}

typedef struct {
        long connected, probed, passed;
} zke_count_t;

/* Counts the nodes' outcomes from zke's progress calls (serialized by zke). */
static void progress(void *opaque, const char *step, const char *node, const char *status,
                     const char *const *lines, size_t n)
{
        (void)lines, (void)n;
        zke_count_t *c = opaque;
        if (!node)
                return;
        if (strcmp(step, "connect") == 0 && strcmp(status, "done") == 0)
                c->connected++;
        if (strcmp(step, "precheck") == 0 && strcmp(status, "started") == 0)
                c->probed++;
        if (strcmp(step, "precheck") == 0 && strcmp(status, "done") == 0)
                c->passed++;
}

int bench_zke_precheck(const bench_opts_t *o)
{
        if (o->n < 1 || o->n > 200 || !o->user || o->port < 1 || !o->sshkey)
                bench_die("zke-precheck needs --n 1..200 --user U --port P --sshkey KEY");
        cm_config_t conf;
        char err[1024];
        if (cm_config_load(&conf, NULL, err, sizeof(err)) != CM_CONFIG_OK)
                bench_die("configuration: %s", err);
        cm_spec_t spec;
        zke_spec(&spec, o);
        size_t key_len = 0;
        char *key = bench_read_file(o->sshkey, &key_len);
        zke_count_t count = {0};
        zke_ctx_t ctx = {.conf = &conf,
                         .cluster = "bench-zke",
                         .job_id = "bench",
                         .attempt = 1,
                         .spec = &spec,
                         .ssh_key = (const unsigned char *)key,
                         .ssh_key_len = key_len,
                         .host_keys = json_object(),
                         .node_root = "",
                         .progress = progress,
                         .progress_opaque = &count};
        zke_result_t result = {0};
        /* The run as zke.c's run_init makes it for zke_up (no previous nodes, no node
         * root, nothing to cancel). */
        zke_run_t run;
        memset(&run, 0, sizeof(run));
        run.ctx = &ctx;
        run.result = &result;
        run.cluster = ctx.cluster;
        pthread_mutex_init(&run.mu, NULL);
        run.parallelism = conf.zke.parallelism > 0 ? conf.zke.parallelism : 1;
        run.timeout_ms = conf.zke.command_timeout_s * 1000;
        run.connect_timeout_ms = conf.zke.connect_timeout_s * 1000;
        run.nodes = calloc(spec.node_count, sizeof(*run.nodes));
        if (!run.nodes)
                bench_die("out of memory");
        for (size_t i = 0; i < spec.node_count; i++) {
                zke_node_t *z = &run.nodes[i];
                z->node = &spec.nodes[i];
                z->root = strdup("");
                snprintf(z->label, sizeof(z->label), "%s (%s)", z->node->name,
                         z->node->address);
        }
        run.n = spec.node_count;
        if (cm_ssh_key_new(ctx.ssh_key, ctx.ssh_key_len, &run.key, err, sizeof(err)) !=
            CM_SSH_OK)
                bench_die("sshKey: %s", err);

        double t0 = bench_now();
        int rc = zke_connect(&run);
        if (rc == 0)
                rc = zke_precheck(&run);
        cm_ssh_node_result_t *res = calloc(run.n, sizeof(*res));
        if (!res || cm_ssh_parallel(run.n, run.parallelism, close_fn, &run, res) < 0)
                for (size_t i = 0; i < run.n; i++)
                        close_fn(i, &run, NULL, 0);
        double secs = bench_now() - t0;
        free(res);

        json_t *line = json_pack(
            "{s:s,s:I,s:I,s:I,s:f,s:f,s:i}", "row", "zke-precheck", "n", (json_int_t)o->n,
            "done",
            (json_int_t)(count.connected < count.probed ? count.connected : count.probed),
            "passed", (json_int_t)count.passed, "seconds", secs, "rate",
            secs > 0 ? (double)o->n / secs : 0.0, "parallelism", run.parallelism);
        if (result.error)
                json_object_set_new(line, "error", json_string(result.error));
        char *text = json_dumps(line, JSON_COMPACT);
        printf("%s\n", text);
        free(text);
        json_decref(line);
        if (rc != 0)
                fprintf(stderr, "cm-bench: zke-precheck: %s\n",
                        result.error ? result.error : "failed");

        for (size_t i = 0; i < run.n; i++)
                free(run.nodes[i].root);
        free(run.nodes);
        cm_ssh_key_free(run.key);
        pthread_mutex_destroy(&run.mu);
        zke_result_free(&result);
        json_decref(ctx.host_keys);
        cm_spec_destroy(&spec);
        cm_config_destroy(&conf);
        free(key);
        return rc == 0 ? 0 : 1;
}
