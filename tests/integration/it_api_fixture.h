/*
 * it_api_fixture.h - the fixture of it_api.c: its database, cm-devbroker, sealing keys,
 * SSH key, tokens and the cm-api process (it_setup), request bodies and read-model rows,
 * and finding a produced command on cm.commands.
 */
#ifndef CM_IT_API_FIXTURE_H
#define CM_IT_API_FIXTURE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "free_port.h"
#include "cm/command.h"
#include "cm/kafka.h"
#include "cm/seal.h"
#include "it_api_util.h"
#include "pg_testdb.h"

static char it_dir[256];
static char it_bootstrap[512];
static char it_admin[128], it_user[128];
static char *it_sshkey; /* a real unencrypted ed25519 private key (OpenSSH format) */
static cm_seal_keypair_t *it_keys;
static pid_t it_api_pid;
static char it_broker_ctl[300]; /* cm-devbroker's fault-injection socket */

#define IT_KUBECONFIG                                                                    \
        "apiVersion: v1\nkind: Config\nclusters: []\n# it-api-kubeconfig-marker\n"

/* ---------------------------------------------------------------- fixtures */

static char *it_read_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        ck_assert_msg(f != NULL, "cannot open %s", path);
        char *buf = NULL;
        size_t len = 0;
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                it_append(&buf, &len, chunk, n);
        fclose(f);
        return buf ? buf : strdup("");
}

/* A cluster create body; name and extra (a JSON fragment: ,"key":value or "") vary. */
static char *it_create_body(const char *name, const char *extra)
{
        json_t *key = json_string(it_sshkey);
        char *k = json_dumps(key, JSON_ENCODE_ANY);
        json_decref(key);
        char *b = NULL;
        ck_assert(
            asprintf(&b,
                     "{\"name\":\"%s\",\"sshUser\":\"root\",\"managerAddress\":"
                     "\"10.9.0.1\",\"clusterDomain\":\"cluster.local\",\"sshKey\":%s,"
                     "\"nodes\":[{\"name\":\"cp1\",\"address\":\"10.9.0.2\",\"roles\":"
                     "[\"controlplane\",\"etcd\"]},{\"name\":\"w1\",\"address\":"
                     "\"10.9.0.3\",\"roles\":[\"worker\"]}]%s}",
                     name, k, extra) > 0);
        free(k);
        return b;
}

static const char *it_spec_json =
    "{\"sshUser\":\"root\",\"sshPort\":22,\"managerAddress\":\"10.9.0.1\","
    "\"clusterDomain\":\"cluster.local\",\"kubernetesVersion\":\"v1.28.15\","
    "\"clusterCidr\":\"10.42.0.0/16\",\"serviceCidr\":\"10.43.0.0/16\","
    "\"clusterDNSServiceIP\":\"10.43.0.10\",\"clusterUpstreamDNS\":[],"
    "\"network\":{\"plugin\":\"flannel\"},\"nodes\":[{\"name\":\"cp1\",\"address\":"
    "\"10.9.0.2\",\"roles\":[\"controlplane\",\"etcd\"]},{\"name\":\"w1\",\"address\":"
    "\"10.9.0.3\",\"roles\":[\"worker\"]}]}";

/* A read-model row as the projector writes it. */
static void it_insert_cluster(const char *name, const char *state, const char *last_error)
{
        const char *v[] = {name, state, it_spec_json, last_error};
        PQclear(it_sqlp(
            "INSERT INTO clusters (name, state, ready, seq, spec, node_count, "
            "last_error, created_at, updated_at) VALUES ($1::text, $2::text, "
            "$2::text IN ('Running','Unreachable'), 2, jsonb_set($3::jsonb, '{name}', "
            "to_jsonb($1::text)), 2, $4::text, '2026-01-02T03:04:05.678Z', "
            "'2026-01-02T03:05:00Z') ON CONFLICT (name) DO UPDATE SET state = "
            "EXCLUDED.state, ready = EXCLUDED.ready",
            4, v, NULL, NULL));
}

/* Finds the command with id on cm.commands (fresh group, from the start). On success
 * *cmd is decoded and *raw / *key hold the message bytes (caller frees). */
static void it_find_command(const char *id, cm_command_t *cmd, unsigned char **raw,
                            size_t *raw_len, char **key)
{
        static int n;
        char group[96], err[512];
        snprintf(group, sizeof(group), "it-api-%d-%d-%ld", (int)getpid(), n++, random());
        cm_kafka_conf_t kc = {.bootstrap_servers = it_bootstrap,
                              .group_id = group,
                              .client_id = "it_api",
                              .session_timeout_ms = 6000};
        cm_kafka_consumer_t *c = cm_kafka_consumer_new(&kc, NULL, NULL, err, sizeof(err));
        ck_assert_msg(c != NULL, "%s", err);
        const char *topics[] = {"cm.commands"};
        ck_assert_int_eq(cm_kafka_consumer_subscribe(c, topics, 1, err, sizeof(err)), 0);
        long long end = it_now_ms() + 30000;
        int found = 0;
        while (!found && it_now_ms() < end) {
                cm_kafka_message_t *m = NULL;
                if (cm_kafka_consumer_poll(c, 200, &m, err, sizeof(err)) != CM_KAFKA_OK ||
                    !m)
                        continue;
                cm_command_t d;
                if (m->value && cm_command_decode(m->value, m->value_len, &d, err,
                                                  sizeof(err)) == 0) {
                        if (strcmp(d.id, id) == 0) {
                                *cmd = d;
                                *raw = malloc(m->value_len);
                                memcpy(*raw, m->value, m->value_len);
                                *raw_len = m->value_len;
                                *key = strndup(m->key, m->key_len);
                                found = 1;
                        } else {
                                cm_command_destroy(&d);
                        }
                }
                cm_kafka_message_destroy(m);
        }
        cm_kafka_consumer_destroy(c);
        ck_assert_msg(found, "command %s not found on cm.commands", id);
}

/* Opens sealed bytes with the test's key pair and compares them with want. */
static void it_assert_opens_to(const unsigned char *sealed, size_t len, const char *want)
{
        unsigned char *plain = NULL;
        size_t plen = 0;
        char err[256];
        ck_assert_int_eq(
            cm_seal_open(it_keys, sealed, len, &plain, &plen, err, sizeof(err)),
            CM_SEAL_OK);
        ck_assert_uint_eq(plen, strlen(want));
        ck_assert(memcmp(plain, want, plen) == 0);
        cm_seal_plaintext_free(plain, plen);
}

/* The value of a metric on /metrics (-1 when absent). */
static long it_metric(const char *name)
{
        it_resp_t r = IT_GET("/metrics", NULL);
        char *p = strstr(r.body, name);
        long v = -1;
        while (p && p > r.body && p[-1] != '\n')
                p = strstr(p + 1, name);
        if (p)
                v = strtol(p + strlen(name) + 1, NULL, 10);
        it_resp_free(&r);
        return v;
}

static void it_produce(const char *topic, const char *key, const unsigned char *v,
                       size_t len)
{
        char err[512];
        cm_kafka_conf_t kc = {.bootstrap_servers = it_bootstrap, .client_id = "it_api"};
        cm_kafka_producer_t *p = cm_kafka_producer_new(&kc, NULL, NULL, err, sizeof(err));
        ck_assert_msg(p != NULL, "%s", err);
        ck_assert_int_eq(cm_kafka_produce_sync(p, topic, key, strlen(key), v, len, NULL,
                                               0, 15000, NULL, NULL, err, sizeof(err)),
                         CM_KAFKA_OK);
        cm_kafka_producer_destroy(p, 5000);
}

static void it_create_token(const char *api, const char *name, const char *role,
                            char *out, size_t size)
{
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "%s --create-token %s --role %s 2>>%s/tokens.log", api,
                 name, role, it_dir);
        FILE *p = popen(cmd, "r");
        if (!p || !fgets(out, (int)size, p)) {
                fprintf(stderr, "it_api: cannot create token %s\n", name);
                exit(1);
        }
        out[strcspn(out, "\n")] = '\0';
        pclose(p);
}

static void it_setup(void)
{
        const char *bin = getenv("CM_BINARY_DIR");
        char dbname[65], path[512], api[512], pub[300], sec[300], logf[300];
        if (!bin) {
                fprintf(stderr, "it_api: CM_BINARY_DIR is not set (run through ctest)\n");
                exit(1);
        }
        char *ci = pg_testdb_create(dbname);
        snprintf(it_conninfo, sizeof(it_conninfo), "%s", ci);
        free(ci);
        snprintf(it_dir, sizeof(it_dir), "/tmp/it_api.XXXXXX");
        if (!mkdtemp(it_dir))
                exit(1);

        snprintf(path, sizeof(path), "%s/tools/cm-devbroker", bin);
        char bootfile[300];
        snprintf(bootfile, sizeof(bootfile), "%s/bootstrap", it_dir);
        snprintf(logf, sizeof(logf), "%s/devbroker.log", it_dir);
        snprintf(it_broker_ctl, sizeof(it_broker_ctl), "%s/devbroker.sock", it_dir);
        char *dargv[] = {path,        "--bootstrap-file", bootfile,
                         "--control", it_broker_ctl,      NULL};
        it_spawn(dargv, logf);
        for (int i = 0; i < 100 && access(bootfile, F_OK) != 0; i++)
                it_sleep_ms(100);
        char *boot = it_read_file(bootfile);
        boot[strcspn(boot, "\n")] = '\0';
        snprintf(it_bootstrap, sizeof(it_bootstrap), "%s", boot);
        free(boot);

        char err[256];
        snprintf(pub, sizeof(pub), "%s/seal.pub", it_dir);
        snprintf(sec, sizeof(sec), "%s/seal.key", it_dir);
        if (cm_seal_keypair_generate(pub, sec, false, &it_keys, err, sizeof(err)) !=
            CM_SEAL_OK) {
                fprintf(stderr, "it_api: keygen: %s\n", err);
                exit(1);
        }
        snprintf(path, sizeof(path),
                 "ssh-keygen -q -t ed25519 -N '' -C it -f %s/id_ed25519", it_dir);
        if (system(path) != 0)
                exit(1);
        snprintf(path, sizeof(path), "%s/id_ed25519", it_dir);
        it_sshkey = it_read_file(path);

        int port = cm_test_port();
        char listen[32];
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
        snprintf(it_url, sizeof(it_url), "http://%s", listen);
        setenv("CM_POSTGRES_CONNINFO", it_conninfo, 1);
        setenv("CM_KAFKA_BOOTSTRAP_SERVERS", it_bootstrap, 1);
        setenv("CM_API_LISTEN", listen, 1);
        setenv("CM_SEAL_PUBLIC_KEY_FILE", pub, 1);
        setenv("CM_SEAL_SECRET_KEY_FILE", sec, 1);
        setenv("CM_API_SSE_KEEPALIVE_S", "1", 1);
        setenv("CM_API_WAIT_MAX_S", "10", 1);
        setenv("CM_LOG_LEVEL", "debug", 1);
        snprintf(api, sizeof(api), "%s/producer/cm-api", bin);
        it_create_token(api, "it-admin", "admin", it_admin, sizeof(it_admin));
        it_create_token(api, "it-user", "user", it_user, sizeof(it_user));
        snprintf(logf, sizeof(logf), "%s/cm-api.log", it_dir);
        char *aargv[] = {api, NULL};
        it_api_pid = it_spawn(aargv, logf);
        for (int i = 0; i < 200; i++) {
                CURL *c = curl_easy_init();
                char u[256];
                long st = 0;
                snprintf(u, sizeof(u), "%s/readyz", it_url);
                curl_easy_setopt(c, CURLOPT_URL, u);
                curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
                if (curl_easy_perform(c) == CURLE_OK)
                        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
                curl_easy_cleanup(c);
                if (st == 200)
                        return;
                it_sleep_ms(100);
        }
        fprintf(stderr, "it_api: cm-api did not become ready; see %s\n", logf);
        exit(1);
}

/* ---------------------------------------------------------------- main */

/* The start of main(): the test server's base database (fails at once without
 * CM_TEST_PG) and libcurl. */
static void it_api_begin(void)
{
        pg_testdb_base();
        (void)pg_testdb_drop;
        curl_global_init(CURL_GLOBAL_ALL);
}

/*
 * The end of main(): runs s in this process (CK_NOFORK: cm-api and cm-devbroker are
 * this runner's children, and a test may stop cm-api and reap it), shows the end of
 * cm-api's log when a test failed, then stops the children and removes what it_setup
 * made. Takes s. Returns main()'s exit status.
 */
static int it_api_run(Suite *s)
{
        SRunner *sr = srunner_create(s);
        srunner_set_fork_status(sr, CK_NOFORK);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        if (failed) {
                char cmd[400];
                snprintf(cmd, sizeof(cmd), "tail -n 40 %s/cm-api.log >&2", it_dir);
                if (system(cmd) != 0)
                        fprintf(stderr, "(no cm-api log)\n");
        }
        it_children_stop();
        cm_seal_keypair_destroy(it_keys);
        free(it_sshkey);
        pg_testdb_drop_all();
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", it_dir);
        if (system(cmd) != 0)
                fprintf(stderr, "cannot remove %s\n", it_dir);
        curl_global_cleanup();
        return failed ? 1 : 0;
}

#endif
