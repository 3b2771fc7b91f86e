/* test_plan.c - cm_plan: the embedded v1.28 plan rendered for specs: plane order and
 * placement, placeholders, determinism, errors, and the idempotence decision. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cm/plan.h"
#include "cm/spec.h"
#include "../check_main.h"

/* m1: controlplane+etcd, w1: worker+etcd, w2: worker only. */
#define NODES                                                                            \
        "{\"name\":\"m1\",\"address\":\"10.0.0.1\",\"roles\":[\"controlplane\","         \
        "\"etcd\"]},"                                                                    \
        "{\"name\":\"w1\",\"address\":\"10.0.0.2\",\"roles\":[\"worker\",\"etcd\"]},"    \
        "{\"name\":\"w2\",\"address\":\"10.0.0.3\",\"roles\":[\"worker\"]}"

static void load_spec(cm_spec_t *spec, const char *extra, const char *nodes)
{
        char text[4096];
        snprintf(text, sizeof(text),
                 "{\"name\":\"prod\",\"sshUser\":\"u\",\"managerAddress\":\"10.9.9.9\","
                 "\"clusterDomain\":\"cluster.local\"%s,\"nodes\":[%s]}",
                 extra, nodes);
        json_error_t jerr;
        json_t *j = json_loads(text, 0, &jerr);
        ck_assert_msg(j != NULL, "%s", jerr.text);
        cm_field_errors_t errs = {0};
        ck_assert_int_eq(cm_spec_from_json(spec, j, &errs), 0);
        json_decref(j);
}

static cm_plan_steps_t *render(const cm_spec_t *spec, const cm_plan_options_t *o)
{
        char err[1024] = "";
        cm_plan_t *plan = cm_plan_load(spec->kubernetes_version, err, sizeof(err));
        ck_assert_msg(plan != NULL, "load: %s", err);
        cm_plan_steps_t *s = NULL;
        ck_assert_msg(cm_plan_render(plan, spec, o, &s, err, sizeof(err)) == 0,
                      "render: %s", err);
        cm_plan_free(plan);
        return s;
}

static const cm_plan_container_t *container(const cm_plan_step_t *st, const char *name)
{
        for (size_t i = 0; i < st->container_count; i++)
                if (strcmp(st->containers[i].name, name) == 0)
                        return &st->containers[i];
        return NULL;
}

static const cm_plan_step_t *step(const cm_plan_steps_t *s, const char *plane,
                                  const char *node)
{
        for (size_t i = 0; i < s->count; i++)
                if (strcmp(s->steps[i].plane, plane) == 0 &&
                    strcmp(s->steps[i].node, node) == 0)
                        return &s->steps[i];
        return NULL;
}

static bool starts_with(const char *s, const char *prefix)
{
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void assert_no_placeholder(const char *what, const char *s)
{
        ck_assert_msg(s && !strstr(s, "{{") && !strstr(s, "}}"),
                      "%s left a placeholder: %s", what, s ? s : "(null)");
}

START_TEST(test_three_nodes)
{
        cm_spec_t spec;
        load_spec(&spec, "", NODES);
        cm_plan_steps_t *s = render(&spec, NULL);
        ck_assert_str_eq(s->plan, "v1.28");
        ck_assert_str_eq(s->kubernetes_version, "v1.28.15");
        /* etcd on m1, w1; control plane on m1; worker plane on all three; add-ons on m1
         */
        const char *want[][2] = {
            {"etcd", "m1"},   {"etcd", "w1"},   {"controlplane", "m1"}, {"worker", "m1"},
            {"worker", "w1"}, {"worker", "w2"}, {"addons", "m1"}};
        ck_assert_uint_eq(s->count, 7);
        for (size_t i = 0; i < 7; i++) {
                ck_assert_str_eq(s->steps[i].plane, want[i][0]);
                ck_assert_str_eq(s->steps[i].node, want[i][1]);
        }
        ck_assert_str_eq(step(s, "etcd", "w1")->address, "10.0.0.2");
        const cm_plan_container_t *etcd = container(step(s, "etcd", "w1"), "etcd");
        ck_assert_ptr_nonnull(etcd);
        ck_assert_ptr_nonnull(
            strstr(etcd->create,
                   "--initial-cluster=etcd-m1=https://10.0.0.1:2380,etcd-w1=https://"
                   "10.0.0.2:2380 "));
        ck_assert_ptr_nonnull(
            strstr(etcd->create, "--advertise-client-urls=https://10.0.0.2:2379"));
        ck_assert_ptr_nonnull(strstr(etcd->create, "--initial-cluster-state=new"));
        ck_assert_ptr_nonnull(
            strstr(etcd->create, " rancher/mirrored-coreos-etcd:v3.5.10 "));
        ck_assert(starts_with(etcd->create,
                              "docker run -d --name etcd --label io.cm.plan-hash="));
        ck_assert_ptr_nonnull(strstr(etcd->create, etcd->hash));
        ck_assert_ptr_nonnull(strstr(etcd->create, "--restart=unless-stopped"));
        ck_assert_str_eq(etcd->inspect, "docker inspect --type=container etcd");
        ck_assert_str_eq(etcd->remove, "docker rm -f etcd");
        ck_assert_str_eq(etcd->start, "docker start etcd");
        const cm_plan_container_t *api =
            container(step(s, "controlplane", "m1"), "kube-apiserver");
        ck_assert_ptr_nonnull(strstr(
            api->create, "--etcd-servers=https://10.0.0.1:2379,https://10.0.0.2:2379 "));
        ck_assert_ptr_nonnull(
            strstr(api->create, "--service-cluster-ip-range=10.43.0.0/16 "));
        ck_assert_ptr_nonnull(
            strstr(api->create, " rancher/hyperkube:v1.28.15-rancher1 "));
        for (size_t i = 3; i <= 5; i++) {
                const cm_plan_step_t *st = &s->steps[i];
                const cm_plan_container_t *kl = container(st, "kubelet");
                ck_assert_ptr_nonnull(kl);
                ck_assert_ptr_nonnull(container(st, "kube-proxy"));
                char flag[128];
                snprintf(flag, sizeof(flag), "--hostname-override=%s ", st->node);
                ck_assert_ptr_nonnull(strstr(kl->create, flag));
                ck_assert_ptr_nonnull(strstr(kl->create, "--cluster-dns=10.43.0.10 "));
                ck_assert_ptr_nonnull(
                    strstr(kl->create, "--cluster-domain=cluster.local "));
                /* nodes without an apiserver reach it through nginx-proxy */
                const cm_plan_container_t *np = container(st, "nginx-proxy");
                ck_assert_int_eq(np != NULL, strcmp(st->node, "m1") != 0);
                if (np)
                        ck_assert_ptr_nonnull(strstr(np->create, "CP_HOSTS=10.0.0.1 "));
                const cm_plan_container_t *sk = container(st, "service-sidekick");
                ck_assert(!sk->run);
                ck_assert(starts_with(sk->create,
                                      "docker create --name service-sidekick --label "));
        }
        ck_assert_ptr_null(step(s, "controlplane", "w1"));
        ck_assert_ptr_null(step(s, "etcd", "w2"));
        /* add-ons: flannel and coredns manifests placed and applied */
        const cm_plan_step_t *ad = step(s, "addons", "m1");
        ck_assert_uint_eq(ad->file_count, 2);
        ck_assert_str_eq(ad->files[0].path, "/etc/kubernetes/addons/flannel.yaml");
        ck_assert_ptr_nonnull(
            strstr(ad->files[0].content, "\"Network\": \"10.42.0.0/16\""));
        ck_assert_str_eq(ad->files[1].path, "/etc/kubernetes/addons/coredns.yaml");
        ck_assert_ptr_nonnull(strstr(ad->files[1].content, "clusterIP: 10.43.0.10\n"));
        ck_assert_ptr_nonnull(
            strstr(ad->files[1].content, "forward . /etc/resolv.conf\n"));
        ck_assert_uint_eq(ad->command_count, 2);
        ck_assert_ptr_nonnull(
            strstr(ad->commands[0], "apply -f /etc/kubernetes/addons/flannel.yaml"));
        /* files: keys 0600, the per-node certificates named after the node */
        bool saw_kubelet_key = false;
        for (size_t i = 0; i < s->count; i++) {
                const cm_plan_step_t *st = &s->steps[i];
                for (size_t j = 0; j < st->file_count; j++) {
                        const cm_plan_file_t *f = &st->files[j];
                        assert_no_placeholder(f->path, f->path);
                        if (f->kind == CM_PLAN_FILE_KEY)
                                ck_assert_msg(f->mode == 0600, "%s mode %o", f->path,
                                              f->mode);
                        if (f->kind == CM_PLAN_FILE_TEXT)
                                assert_no_placeholder(f->path, f->content);
                        else
                                assert_no_placeholder(f->path, f->entry);
                        if (strcmp(st->node, "w2") == 0 && f->kind == CM_PLAN_FILE_KEY &&
                            strcmp(f->path, "/etc/kubernetes/ssl/kube-node-key.pem") ==
                                0) {
                                ck_assert_str_eq(f->entry, "kube-node-w2");
                                saw_kubelet_key = true;
                        }
                        ck_assert_msg(!(f->kind == CM_PLAN_FILE_KEY &&
                                        strcmp(f->entry, "kube-ca") == 0 &&
                                        strcmp(st->plane, "controlplane") != 0),
                                      "CA key placed outside the control plane");
                }
                for (size_t j = 0; j < st->container_count; j++) {
                        const cm_plan_container_t *c = &st->containers[j];
                        assert_no_placeholder(c->name, c->create);
                        assert_no_placeholder(c->name, c->pull);
                }
                for (size_t j = 0; j < st->command_count; j++)
                        assert_no_placeholder("command", st->commands[j]);
        }
        ck_assert(saw_kubelet_key);
        cm_plan_steps_free(s);
        cm_spec_destroy(&spec);
}
END_TEST

static char *dump(const cm_spec_t *spec, const cm_plan_options_t *o)
{
        cm_plan_steps_t *s = render(spec, o);
        json_t *j = cm_plan_steps_to_json(s, true);
        char *text = json_dumps(j, JSON_PRESERVE_ORDER);
        json_decref(j);
        cm_plan_steps_free(s);
        ck_assert_ptr_nonnull(text);
        return text;
}

START_TEST(test_deterministic_and_sensitive)
{
        cm_spec_t a, b;
        load_spec(&a, "", NODES);
        load_spec(&b, ",\"clusterCidr\":\"10.52.0.0/16\"", NODES);
        char *t1 = dump(&a, NULL), *t2 = dump(&a, NULL);
        ck_assert_str_eq(t1, t2);
        ck_assert_ptr_null(strstr(t1, "{{"));
        free(t2);
        /* another pod CIDR changes kube-proxy and the controller manager, not etcd */
        cm_plan_steps_t *sa = render(&a, NULL), *sb = render(&b, NULL);
        ck_assert_str_eq(container(step(sa, "etcd", "m1"), "etcd")->hash,
                         container(step(sb, "etcd", "m1"), "etcd")->hash);
        ck_assert_str_ne(container(step(sa, "worker", "w2"), "kube-proxy")->hash,
                         container(step(sb, "worker", "w2"), "kube-proxy")->hash);
        ck_assert_str_eq(container(step(sa, "worker", "w2"), "kubelet")->hash,
                         container(step(sb, "worker", "w2"), "kubelet")->hash);
        ck_assert_ptr_nonnull(strstr(
            container(step(sb, "controlplane", "m1"), "kube-controller-manager")->create,
            "--cluster-cidr=10.52.0.0/16 "));
        cm_plan_steps_free(sa);
        cm_plan_steps_free(sb);
        free(t1);
        cm_spec_destroy(&a);
        cm_spec_destroy(&b);
}
END_TEST

START_TEST(test_update_and_calico)
{
        cm_spec_t before, after;
        load_spec(&before, "", NODES);
        load_spec(
            &after,
            ",\"network\":{\"plugin\":\"calico\"},\"clusterUpstreamDNS\":[\"1.1.1.1\"]",
            NODES ",{\"name\":\"w3\",\"address\":\"10.0.0.4\",\"roles\":[\"worker\","
                  "\"etcd\"]}");
        cm_plan_options_t o = {.update = true,
                               .previous_nodes = before.nodes,
                               .previous_node_count = before.node_count,
                               .cgroup_driver = "cgroupfs"};
        cm_plan_steps_t *s = render(&after, &o);
        ck_assert_ptr_null(step(s, "addons", "m1"));
        ck_assert_str_eq(s->steps[s->count - 1].plane, "worker");
        ck_assert_ptr_nonnull(strstr(container(step(s, "etcd", "w3"), "etcd")->create,
                                     "--initial-cluster-state=existing "));
        ck_assert_ptr_nonnull(strstr(container(step(s, "etcd", "m1"), "etcd")->create,
                                     "--initial-cluster-state=new "));
        ck_assert_ptr_nonnull(
            strstr(container(step(s, "worker", "w3"), "kubelet")->create,
                   "--cgroup-driver=cgroupfs "));
        cm_plan_steps_free(s);
        /* a new cluster with calico: its manifest, not flannel's */
        s = render(&after, NULL);
        const cm_plan_step_t *ad = step(s, "addons", "m1");
        ck_assert_str_eq(ad->files[0].path, "/etc/kubernetes/addons/calico.yaml");
        ck_assert_ptr_nonnull(strstr(ad->files[0].content, "value: \"10.42.0.0/16\""));
        ck_assert_ptr_nonnull(
            strstr(ad->files[0].content, "rancher/mirrored-calico-node:v3.27.4"));
        ck_assert_ptr_nonnull(strstr(ad->files[1].content, "forward . 1.1.1.1\n"));
        cm_plan_steps_free(s);
        cm_spec_destroy(&before);
        cm_spec_destroy(&after);
}
END_TEST

START_TEST(test_versions)
{
        char err[512], known[128];
        cm_plan_known_versions(known, sizeof(known));
        ck_assert_str_eq(known, "v1.28");
        cm_plan_t *p = cm_plan_load("1.28", err, sizeof(err));
        ck_assert_ptr_nonnull(p);
        cm_plan_free(p);
        p = cm_plan_load("v1.28.3", err, sizeof(err));
        ck_assert_ptr_nonnull(p);
        cm_plan_free(p);
        const char *bad[] = {"v1.99.1", "v1.2", "latest", "", "v1", "v1.28x"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
                err[0] = '\0';
                ck_assert_ptr_null(cm_plan_load(bad[i], err, sizeof(err)));
                char quoted[64];
                snprintf(quoted, sizeof(quoted), "\"%s\"", bad[i]);
                ck_assert_msg(strstr(err, "kubernetesVersion") && strstr(err, quoted) &&
                                  strstr(err, "known: v1.28"),
                              "%s: %s", bad[i], err);
        }
}
END_TEST

static const char *MINI =
    "{\"kubernetesVersion\":\"v9.9.9\",\"images\":{\"img\":\"busybox:1\"},"
    "\"planes\":[{\"name\":\"worker\",\"roles\":[\"worker\"],\"files\":[],"
    "\"containers\":[{\"name\":\"c\",\"image\":\"img\",\"args\":[\"%s\"]}]}]}";

static int render_mini(const char *arg, const char *nodes, cm_plan_steps_t **s, char *err,
                       size_t errsize)
{
        char text[1024];
        snprintf(text, sizeof(text), MINI, arg);
        cm_plan_t *p = cm_plan_parse("mini", text, err, errsize);
        ck_assert_msg(p != NULL, "%s", err);
        cm_spec_t spec;
        load_spec(&spec, "", nodes);
        int rc = cm_plan_render(p, &spec, NULL, s, err, errsize);
        cm_spec_destroy(&spec);
        cm_plan_free(p);
        return rc;
}

START_TEST(test_render_errors_and_quoting)
{
        char err[512];
        cm_plan_steps_t *s = NULL;
        ck_assert_int_eq(
            render_mini("--x={{no_such_thing}}", NODES, &s, err, sizeof(err)), -1);
        ck_assert_ptr_null(s);
        ck_assert_msg(strstr(err, "{{no_such_thing}}") && strstr(err, "containers[0]"),
                      "%s", err);
        ck_assert_int_eq(render_mini("--x={{node_name", NODES, &s, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, "unknown placeholder"), "%s", err);
        /* an argument with a space and a quote is one shell word */
        ck_assert_int_eq(render_mini("it's {{node_name}}", NODES, &s, err, sizeof(err)),
                         0);
        ck_assert_ptr_nonnull(
            strstr(s->steps[0].containers[0].create, " busybox:1 'it'\\''s w1'"));
        cm_plan_steps_free(s);
        /* a value that would break a command line is refused */
        ck_assert_int_eq(render_mini("x",
                                     "{\"name\":\"m1\",\"address\":\"10.0.0.1;reboot\","
                                     "\"roles\":[\"controlplane\",\"etcd\"]}",
                                     &s, err, sizeof(err)),
                         -1);
        ck_assert_msg(strstr(err, "nodes[0]") && strstr(err, "10.0.0.1;reboot"), "%s",
                      err);
        ck_assert_ptr_null(cm_plan_parse("broken", "{\"planes\":[]}", err, sizeof(err)));
        ck_assert_msg(strstr(err, "plan broken"), "%s", err);
}
END_TEST

START_TEST(test_decide)
{
        cm_spec_t spec;
        load_spec(&spec, "", NODES);
        cm_plan_steps_t *s = render(&spec, NULL);
        const cm_plan_container_t *kl = container(step(s, "worker", "w2"), "kubelet");
        const cm_plan_container_t *sk =
            container(step(s, "worker", "w2"), "service-sidekick");
        char out[512];
        ck_assert_int_eq(cm_plan_decide(kl, 1, "Error: No such container: kubelet"),
                         CM_PLAN_ACTION_CREATE);
        snprintf(
            out, sizeof(out),
            "[{\"State\":{\"Running\":true},\"Config\":{\"Labels\":{\"%s\":\"%s\"}}}]",
            CM_PLAN_HASH_LABEL, kl->hash);
        ck_assert_int_eq(cm_plan_decide(kl, 0, out), CM_PLAN_ACTION_NONE);
        snprintf(
            out, sizeof(out),
            "[{\"State\":{\"Running\":false},\"Config\":{\"Labels\":{\"%s\":\"%s\"}}}]",
            CM_PLAN_HASH_LABEL, kl->hash);
        ck_assert_int_eq(cm_plan_decide(kl, 0, out), CM_PLAN_ACTION_START);
        snprintf(
            out, sizeof(out),
            "[{\"State\":{\"Running\":false},\"Config\":{\"Labels\":{\"%s\":\"%s\"}}}]",
            CM_PLAN_HASH_LABEL, sk->hash);
        ck_assert_int_eq(cm_plan_decide(sk, 0, out), CM_PLAN_ACTION_NONE);
        snprintf(
            out, sizeof(out),
            "[{\"State\":{\"Running\":true},\"Config\":{\"Labels\":{\"%s\":\"0000\"}}}]",
            CM_PLAN_HASH_LABEL);
        ck_assert_int_eq(cm_plan_decide(kl, 0, out), CM_PLAN_ACTION_REPLACE);
        ck_assert_int_eq(
            cm_plan_decide(
                kl, 0, "[{\"State\":{\"Running\":true},\"Config\":{\"Labels\":null}}]"),
            CM_PLAN_ACTION_REPLACE);
        ck_assert_int_eq(cm_plan_decide(kl, 0, "not json"), CM_PLAN_ACTION_REPLACE);
        ck_assert_str_eq(cm_plan_action_name(CM_PLAN_ACTION_REPLACE), "replace");
        cm_plan_steps_free(s);
        cm_spec_destroy(&spec);
}
END_TEST

static Suite *plan_suite(void)
{
        Suite *s = suite_create("plan");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_three_nodes);
        tcase_add_test(tc, test_deterministic_and_sensitive);
        tcase_add_test(tc, test_update_and_calico);
        tcase_add_test(tc, test_versions);
        tcase_add_test(tc, test_render_errors_and_quoting);
        tcase_add_test(tc, test_decide);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return cm_check_run(plan_suite());
}
