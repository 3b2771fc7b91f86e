/*
 * avro_seeds - writes the seed corpus of fuzz_avro into DIR: valid Command (every kind),
 * ClusterEvent (with and without a spec) and JobProgress messages in fuzz_avro's input
 * format (a selector byte, then the body; or 0xff, then a whole message).
 *
 *   fuzz_avro_seeds DIR     (tests/fuzz/corpus/avro holds its output, committed)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/avro.h"
#include "cm/command.h"
#include "cm/event.h"
#include "cm/progress.h"

static const char *dir;

static void put(const char *name, int selector, const unsigned char *m, size_t len)
{
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        FILE *f = fopen(path, "wb");
        if (!f) {
                perror(path);
                exit(1);
        }
        unsigned char sel = (unsigned char)selector;
        fwrite(&sel, 1, 1, f);
        if (selector <= 2)
                fwrite(m + CM_AVRO_HEADER_LEN, 1, len - CM_AVRO_HEADER_LEN, f);
        else
                fwrite(m, 1, len, f);
        fclose(f);
}

static void spec_fill(cm_spec_t *s)
{
        static char *roles_cp[] = {"controlplane", "etcd"}, *roles_w[] = {"worker"};
        static char *dns[] = {"1.1.1.1"};
        static cm_node_t nodes[2] = {{"cp1", "10.0.0.2", roles_cp, 2},
                                     {"w1", "10.0.0.3", roles_w, 1}};
        memset(s, 0, sizeof(*s));
        s->name = "c1";
        s->ssh_user = "root";
        s->ssh_port = 22;
        s->manager_address = "10.0.0.1";
        s->cluster_domain = "cluster.local";
        s->kubernetes_version = "v1.28.15";
        s->cluster_cidr = "10.42.0.0/16";
        s->service_cidr = "10.43.0.0/16";
        s->cluster_dns_service_ip = "10.43.0.10";
        s->cluster_upstream_dns = dns;
        s->cluster_upstream_dns_count = 1;
        s->network_plugin = "flannel";
        s->nodes = nodes;
        s->node_count = 2;
}

static void command(const char *name, cm_command_kind_t kind)
{
        static unsigned char sealed[32] = {1, 2, 3};
        cm_command_t c = {.kind = kind};
        unsigned char *buf;
        size_t len;
        char err[512];
        c.id = "3f0c1a52-8f3e-4c1e-9d7a-0b5e2d1c4a11";
        c.cluster = "c1";
        c.actor.name = "seed";
        c.actor.role = "admin";
        c.issued_at = 1700000000000;
        c.has_expected_version = kind == CM_COMMAND_DELETE;
        c.expected_version = 3;
        spec_fill(&c.create.spec);
        c.create.ssh_key = sealed;
        c.create.ssh_key_len = sizeof(sealed);
        c.update.nodes = c.create.spec.nodes;
        c.update.node_count = c.create.spec.node_count;
        c.update.ssh_key = kind == CM_COMMAND_UPDATE ? sealed : NULL;
        c.update.ssh_key_len = c.update.ssh_key ? sizeof(sealed) : 0;
        c.import.kubeconfig = sealed;
        c.import.kubeconfig_len = sizeof(sealed);
        if (cm_command_encode(&c, &buf, &len, err, sizeof(err)) != 0) {
                fprintf(stderr, "%s: %s\n", name, err);
                exit(1);
        }
        put(name, 0, buf, len);
        if (kind == CM_COMMAND_CREATE) {
                char full[64];
                snprintf(full, sizeof(full), "full-%s", name);
                put(full, 0xff, buf, len);
        }
        free(buf);
}

int main(int argc, char **argv)
{
        unsigned char *buf;
        size_t len;
        char err[512];
        if (argc != 2) {
                fprintf(stderr, "usage: %s DIR\n", argv[0]);
                return 2;
        }
        dir = argv[1];
        command("command-create", CM_COMMAND_CREATE);
        command("command-update", CM_COMMAND_UPDATE);
        command("command-delete", CM_COMMAND_DELETE);
        command("command-cancel", CM_COMMAND_CANCEL);
        command("command-import", CM_COMMAND_IMPORT);

        cm_spec_t spec;
        spec_fill(&spec);
        cm_cluster_event_t ev = {.cluster = "c1",
                                 .seq = 2,
                                 .event_id = "8d1c2b3a-0000-4000-8000-00000000e001",
                                 .command_id = "3f0c1a52-8f3e-4c1e-9d7a-0b5e2d1c4a11",
                                 .type = "ClusterCreating",
                                 .from_state = "Creating",
                                 .to_state = "Running",
                                 .at = 1700000000001,
                                 .actor = {"seed", "system"},
                                 .spec = &spec};
        if (cm_cluster_event_encode(&ev, &buf, &len, err, sizeof(err)) != 0)
                return fprintf(stderr, "event: %s\n", err), 1;
        put("event-spec", 1, buf, len);
        free(buf);
        ev.spec = NULL;
        ev.error = "cluster \"c1\" can't be deleted while Creating";
        ev.type = "CommandRejected";
        if (cm_cluster_event_encode(&ev, &buf, &len, err, sizeof(err)) != 0)
                return fprintf(stderr, "event: %s\n", err), 1;
        put("event-rejected", 1, buf, len);
        free(buf);

        char *lines[] = {"TASK [etcd] ok", "ssh 10.0.0.2: connected"};
        cm_job_progress_t p = {.cluster = "c1",
                               .job_id = "5b2e0f00-0000-4000-8000-00000000a001",
                               .kind = "zke-up",
                               .attempt = 1,
                               .step = "etcd",
                               .node = "cp1",
                               .status = "ok",
                               .at = 1700000000002,
                               .lines = lines,
                               .line_count = 2};
        if (cm_job_progress_encode(&p, &buf, &len, err, sizeof(err)) != 0)
                return fprintf(stderr, "progress: %s\n", err), 1;
        put("progress", 2, buf, len);
        put("full-progress", 0xff, buf, len);
        free(buf);
        return 0;
}
