/*
 * it_api - the REST API of DESIGN §6 over real HTTP, against the real cm-api binary with
 * its own cm-devbroker and its own database on CM_TEST_PG.
 *
 * The test plays the other parts itself: it reads the commands cm-api produces from
 * cm.commands (and decodes and opens them), writes the read model rows the projector
 * would write (clusters, cluster_events, command_results), a sealed kubeconfig into the
 * write model, and produces events and job progress onto cm.events / cm.progress for the
 * live streams. Covered: the role matrix, every 4xx, 202 + Location + the produced
 * command (sealed secrets that open with the key pair), Idempotency-Key, Prefer: wait
 * (201, 409, 422, timeout 202), reads, kubeconfig, SSE per cluster, metrics, no secret in
 * the log, and a clean SIGTERM while streams are open.
 */

#include "cm/command.h"
#include "cm/event.h"
#include "cm/kafka.h"
#include "cm/progress.h"
#include "cm/seal.h"
#include "it_api_fixture.h"

/* ---------------------------------------------------------------- role matrix */

typedef struct {
        const char *method, *path, *body;
        const char *admin_only; /* 403 wording for a user, NULL: readable by every role */
        long admin_status;
} it_endpoint_t;

START_TEST(test_role_matrix)
{
        char *create = it_create_body("rm-new", "");
        char *update = NULL;
        ck_assert(
            asprintf(&update,
                     "{\"nodes\":[{\"name\":\"cp1\",\"address\":\"10.9.0.2\",\"roles\":"
                     "[\"controlplane\",\"etcd\"]},{\"name\":\"w1\",\"address\":"
                     "\"10.9.0.3\",\"roles\":[\"worker\"]},{\"name\":\"w2\","
                     "\"address\":\"10.9.0.4\",\"roles\":[\"worker\"]}]}") > 0);
        it_insert_cluster("rm1", "Running", NULL);
        it_sql("INSERT INTO command_results (command_id, cluster, status) VALUES "
               "('rm-cmd', 'rm1', 'pending')");
        const char *kv[] = {"rm1", "Running", it_spec_json};
        PQclear(
            it_sqlp("INSERT INTO cluster_state (name, state, seq, spec) VALUES ($1, $2, "
                    "2, $3::jsonb)",
                    3, kv, NULL, NULL));
        const it_endpoint_t eps[] = {
            {"GET", "/v1/clusters", NULL, NULL, 200},
            {"POST", "/v1/clusters", create, "only admin can create cluster", 202},
            {"GET", "/v1/clusters/rm1", NULL, NULL, 200},
            {"PUT", "/v1/clusters/rm1", update, "only admin can update cluster", 202},
            {"DELETE", "/v1/clusters/rm1", NULL, "only admin can delete cluster", 202},
            {"POST", "/v1/clusters/rm1/cancel", NULL,
             "only admin can call cluster action apis", 202},
            {"POST", "/v1/clusters/import",
             "{\"name\":\"rm-imp\",\"kubeconfig\":\"apiVersion: v1\\n\"}",
             "only admin can call cluster action apis", 202},
            {"GET", "/v1/clusters/rm1/kubeconfig", NULL,
             "only admin can get cluster kubeconfig", 404},
            {"GET", "/v1/clusters/rm1/events", NULL, NULL, 200},
            {"GET", "/v1/commands/rm-cmd", NULL, NULL, 200},
        };
        for (size_t i = 0; i < sizeof(eps) / sizeof(eps[0]); i++) {
                const it_endpoint_t *e = &eps[i];
                it_resp_t r = IT_SEND(e->method, e->path, NULL, e->body);
                ck_assert_msg(r.status == 401, "%s %s without token: %ld", e->method,
                              e->path, r.status);
                json_t *j = it_json(&r);
                ck_assert_str_eq(json_string_value(json_object_get(
                                     json_object_get(j, "error"), "code")),
                                 "unauthorized");
                json_decref(j);
                it_resp_free(&r);
                r = IT_SEND(e->method, e->path, "cm_not-a-token", e->body);
                ck_assert_msg(r.status == 401, "%s %s bad token: %ld", e->method, e->path,
                              r.status);
                it_resp_free(&r);

                r = IT_SEND(e->method, e->path, it_user, e->body);
                if (e->admin_only) {
                        ck_assert_msg(r.status == 403, "%s %s as user: %ld %s", e->method,
                                      e->path, r.status, r.body);
                        j = it_json(&r);
                        ck_assert_str_eq(it_error_message(j), e->admin_only);
                        json_decref(j);
                } else {
                        ck_assert_msg(r.status == e->admin_status,
                                      "%s %s as user: %ld %s", e->method, e->path,
                                      r.status, r.body);
                }
                it_resp_free(&r);
                r = IT_SEND(e->method, e->path, it_admin, e->body);
                ck_assert_msg(r.status == e->admin_status, "%s %s as admin: %ld %s",
                              e->method, e->path, r.status, r.body);
                it_resp_free(&r);
        }
        it_resp_t r = IT_GET("/v1/publickey", NULL);
        ck_assert_int_eq(r.status, 200);
        it_resp_free(&r);
        free(create);
        free(update);
}
END_TEST

/* ---------------------------------------------------------------- 4xx */

START_TEST(test_errors)
{
        it_resp_t r =
            IT_SEND("POST", "/v1/clusters", it_admin, "{\"name\": \"a\",\n  \"x\": }");
        ck_assert_int_eq(r.status, 400);
        json_t *j = it_json(&r);
        ck_assert_msg(strstr(it_error_message(j), "line 2, column 8") != NULL, "%s",
                      r.body);
        json_decref(j);
        it_resp_free(&r);

        r = IT_SEND("POST", "/v1/clusters", it_admin, "{\"name\":\"a\",\"name\":\"b\"}");
        ck_assert_int_eq(r.status, 400);
        ck_assert_msg(strstr(r.body, "duplicate") != NULL, "%s", r.body);
        it_resp_free(&r);

        char *body = it_create_body("err1", ",\"colour\":\"blue\",\"sshPort\":\"22\"");
        r = IT_SEND("POST", "/v1/clusters", it_admin, body);
        ck_assert_int_eq(r.status, 400);
        j = it_json(&r);
        ck_assert_msg(it_has_field(j, "colour") && it_has_field(j, "sshPort"), "%s",
                      r.body);
        ck_assert_msg(strstr(r.body, "BEGIN OPENSSH") == NULL, "the key was echoed");
        json_decref(j);
        it_resp_free(&r);

        r = it_http("POST", "/v1/clusters", it_admin, NULL, body, strlen(body),
                    "text/plain");
        ck_assert_int_eq(r.status, 415);
        it_resp_free(&r);
        free(body);

        size_t big = 1100000;
        char *huge = malloc(big + 1);
        memset(huge, ' ', big);
        huge[0] = '{';
        huge[big - 1] = '}';
        huge[big] = '\0';
        r = it_http("POST", "/v1/clusters", it_admin, NULL, huge, big, NULL);
        ck_assert_int_eq(r.status, 413);
        it_resp_free(&r);
        free(huge);

        /* Several validation errors at once, each naming its field. */
        r = IT_SEND("POST", "/v1/clusters", it_admin,
                    "{\"name\":\"Bad_Name\",\"managerAddress\":\"10.9.0.1\","
                    "\"clusterDomain\":\"cluster.local\",\"nodes\":[{\"name\":\"n1\","
                    "\"address\":\"10.9.0.2\",\"roles\":[\"etcd\"]}]}");
        ck_assert_int_eq(r.status, 422);
        j = it_json(&r);
        ck_assert_str_eq(
            json_string_value(json_object_get(json_object_get(j, "error"), "code")),
            "invalid");
        ck_assert_msg(it_has_field(j, "name") && it_has_field(j, "sshUser") &&
                          it_has_field(j, "sshKey"),
                      "%s", r.body);
        ck_assert_msg(strstr(r.body, "Bad_Name") != NULL, "offending value not named");
        json_decref(j);
        it_resp_free(&r);

        r = IT_SEND("POST", "/v1/clusters/import", it_admin,
                    "{\"name\":\"i\",\"extra\":1}");
        ck_assert_int_eq(r.status, 400);
        j = it_json(&r);
        ck_assert(it_has_field(j, "extra"));
        json_decref(j);
        it_resp_free(&r);
        r = IT_SEND("POST", "/v1/clusters/import", it_admin, "{\"name\":\"i\"}");
        ck_assert_int_eq(r.status, 422);
        j = it_json(&r);
        ck_assert(it_has_field(j, "kubeconfig"));
        json_decref(j);
        it_resp_free(&r);

        char long_key[240] = "Idempotency-Key: ";
        memset(long_key + strlen(long_key), 'k', 201);
        const char *bad_key[] = {long_key, NULL};
        body = it_create_body("err2", "");
        r = it_http("POST", "/v1/clusters", it_admin, bad_key, body, strlen(body), NULL);
        ck_assert_int_eq(r.status, 400);
        ck_assert_msg(strstr(r.body, "Idempotency-Key") != NULL, "%s", r.body);
        it_resp_free(&r);
        free(body);

        it_insert_cluster("err-gone", "Deleted", NULL);
        const char *absent[] = {
            "/v1/clusters/nosuch",        "/v1/clusters/err-gone",
            "/v1/commands/nosuch",        "/v1/clusters/nosuch/kubeconfig",
            "/v1/clusters/nosuch/events", "/v1/nowhere"};
        for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
                r = IT_GET(absent[i], it_admin);
                ck_assert_msg(r.status == 404, "GET %s: %ld", absent[i], r.status);
                it_resp_free(&r);
        }
        r = IT_SEND("PUT", "/v1/clusters/nosuch", it_admin, "{\"nodes\":[]}");
        ck_assert_int_eq(r.status, 404);
        ck_assert_msg(strstr(r.body, "cluster \\\"nosuch\\\" doesn't exist") != NULL,
                      "%s", r.body);
        it_resp_free(&r);
        r = IT_GET("/v1/clusters?ready=maybe", it_admin);
        ck_assert_int_eq(r.status, 400);
        it_resp_free(&r);
        r = IT_SEND("PATCH", "/v1/clusters", it_admin, NULL);
        ck_assert_int_eq(r.status, 405);
        it_resp_free(&r);
}
END_TEST

/* ---------------------------------------------------------------- producing */

START_TEST(test_produce_create)
{
        const char *hdr[] = {"Idempotency-Key: it-create-1", NULL};
        char *body = it_create_body("pc1", "");
        it_resp_t r =
            it_http("POST", "/v1/clusters", it_admin, hdr, body, strlen(body), NULL);
        ck_assert_int_eq(r.status, 202);
        json_t *j = it_json(&r);
        ck_assert_str_eq(json_string_value(json_object_get(j, "commandId")),
                         "it-create-1");
        char *loc = it_resp_header(&r, "Location");
        ck_assert_str_eq(loc, "/v1/commands/it-create-1");
        free(loc);
        json_decref(j);
        it_resp_free(&r);

        /* The same key again: the same id, one pending row. */
        r = it_http("POST", "/v1/clusters", it_admin, hdr, body, strlen(body), NULL);
        ck_assert_int_eq(r.status, 202);
        j = it_json(&r);
        ck_assert_str_eq(json_string_value(json_object_get(j, "commandId")),
                         "it-create-1");
        json_decref(j);
        it_resp_free(&r);
        char *n = it_sql_value(
            "SELECT count(*) FROM command_results WHERE command_id = $1", "it-create-1");
        ck_assert_str_eq(n, "1");
        free(n);
        r = IT_GET("/v1/commands/it-create-1", it_user);
        ck_assert_int_eq(r.status, 200);
        j = it_json(&r);
        ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "pending");
        ck_assert_str_eq(json_string_value(json_object_get(j, "cluster")), "pc1");
        json_decref(j);
        it_resp_free(&r);
        free(body);

        cm_command_t cmd;
        unsigned char *raw;
        size_t raw_len;
        char *key;
        it_find_command("it-create-1", &cmd, &raw, &raw_len, &key);
        ck_assert_str_eq(key, "pc1");
        ck_assert_int_eq(cmd.kind, CM_COMMAND_CREATE);
        ck_assert_str_eq(cmd.cluster, "pc1");
        ck_assert_str_eq(cmd.actor.name, "it-admin");
        ck_assert_str_eq(cmd.actor.role, "admin");
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        ck_assert(llabs((long long)now.tv_sec * 1000 - cmd.issued_at) < 120000);
        ck_assert_str_eq(cmd.create.spec.name, "pc1");
        ck_assert_str_eq(cmd.create.spec.ssh_user, "root");
        ck_assert_str_eq(cmd.create.spec.manager_address, "10.9.0.1");
        ck_assert_int_eq(cmd.create.spec.ssh_port, 22);
        ck_assert_uint_eq(cmd.create.spec.node_count, 2);
        ck_assert_str_eq(cmd.create.spec.nodes[1].address, "10.9.0.3");
        /* Sealed: no line of the key appears in the message, and it opens to the key. */
        char *copy = strdup(it_sshkey);
        for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n"))
                ck_assert_msg(strlen(line) < 8 ||
                                  !memmem(raw, raw_len, line, strlen(line)),
                              "key line in the message: %s", line);
        free(copy);
        ck_assert(!memmem(raw, raw_len, "PRIVATE KEY", 11));
        ck_assert_uint_eq(cmd.create.ssh_key_len, strlen(it_sshkey) + CM_SEAL_OVERHEAD);
        it_assert_opens_to(cmd.create.ssh_key, cmd.create.ssh_key_len, it_sshkey);
        cm_command_destroy(&cmd);
        free(raw);
        free(key);

        /* The same key for another cluster is refused. */
        body = it_create_body("pc2", "");
        r = it_http("POST", "/v1/clusters", it_admin, hdr, body, strlen(body), NULL);
        ck_assert_int_eq(r.status, 409);
        it_resp_free(&r);
        free(body);
}
END_TEST

START_TEST(test_produce_update_import)
{
        it_insert_cluster("pu1", "Running", NULL);
        json_t *key = json_string(it_sshkey);
        char *k = json_dumps(key, JSON_ENCODE_ANY), *body = NULL;
        json_decref(key);
        /* A GET-edit-PUT body: resource fields are accepted and ignored. */
        ck_assert(
            asprintf(&body,
                     "{\"name\":\"pu1\",\"state\":\"Running\",\"ready\":true,"
                     "\"sshKey\":%s,\"nodes\":[{\"name\":\"cp1\",\"address\":"
                     "\"10.9.0.2\",\"roles\":[\"controlplane\",\"etcd\"]},{\"name\":"
                     "\"w1\",\"address\":\"10.9.0.3\",\"roles\":[\"worker\"]},{\"name\":"
                     "\"w9\",\"address\":\"10.9.0.9\",\"roles\":[\"worker\"]}]}",
                     k) > 0);
        free(k);
        const char *hdr[] = {"Idempotency-Key: it-update-1", NULL};
        it_resp_t r =
            it_http("PUT", "/v1/clusters/pu1", it_admin, hdr, body, strlen(body), NULL);
        ck_assert_msg(r.status == 202, "%ld %s", r.status, r.body);
        it_resp_free(&r);
        free(body);
        cm_command_t cmd;
        unsigned char *raw;
        size_t raw_len;
        char *mkey;
        it_find_command("it-update-1", &cmd, &raw, &raw_len, &mkey);
        ck_assert_int_eq(cmd.kind, CM_COMMAND_UPDATE);
        ck_assert_uint_eq(cmd.update.node_count, 3);
        ck_assert_str_eq(cmd.update.nodes[2].name, "w9");
        ck_assert(!memmem(raw, raw_len, "PRIVATE KEY", 11));
        it_assert_opens_to(cmd.update.ssh_key, cmd.update.ssh_key_len, it_sshkey);
        cm_command_destroy(&cmd);
        free(raw);
        free(mkey);

        /* Removing the controlplane node of the stored spec is refused (422). */
        r = IT_SEND("PUT", "/v1/clusters/pu1", it_admin,
                    "{\"nodes\":[{\"name\":\"w1\",\"address\":\"10.9.0.3\",\"roles\":"
                    "[\"worker\"]}]}");
        ck_assert_msg(r.status == 422, "%ld %s", r.status, r.body);
        it_resp_free(&r);

        const char *ihdr[] = {"Idempotency-Key: it-import-1", NULL};
        const char *ibody = "{\"name\":\"pi1\",\"kubeconfig\":\"apiVersion: v1\\nkind: "
                            "Config\\n# it-api-kubeconfig-marker\\n\"}";
        r = it_http("POST", "/v1/clusters/import", it_admin, ihdr, ibody, strlen(ibody),
                    NULL);
        ck_assert_int_eq(r.status, 202);
        it_resp_free(&r);
        it_find_command("it-import-1", &cmd, &raw, &raw_len, &mkey);
        ck_assert_int_eq(cmd.kind, CM_COMMAND_IMPORT);
        ck_assert_str_eq(mkey, "pi1");
        ck_assert(!memmem(raw, raw_len, "it-api-kubeconfig-marker", 24));
        it_assert_opens_to(cmd.import.kubeconfig, cmd.import.kubeconfig_len,
                           "apiVersion: v1\nkind: Config\n# it-api-kubeconfig-marker\n");
        cm_command_destroy(&cmd);
        free(raw);
        free(mkey);

        const char *dhdr[] = {"Idempotency-Key: it-delete-1", NULL};
        r = it_http("DELETE", "/v1/clusters/pu1", it_admin, dhdr, NULL, 0, NULL);
        ck_assert_int_eq(r.status, 202);
        it_resp_free(&r);
        it_find_command("it-delete-1", &cmd, &raw, &raw_len, &mkey);
        ck_assert_int_eq(cmd.kind, CM_COMMAND_DELETE);
        ck_assert_str_eq(cmd.cluster, "pu1");
        cm_command_destroy(&cmd);
        free(raw);
        free(mkey);
}
END_TEST

/* ---------------------------------------------------------------- Prefer: wait */

typedef struct {
        const char *id, *sql;
        int delay_ms;
} it_projector_t;

/* Plays the projector: once the pending row exists, writes the outcome after delay_ms. */
static void *it_projector_main(void *arg)
{
        it_projector_t *p = arg;
        for (int i = 0; i < 200; i++) {
                char *n = it_sql_value("SELECT count(*) FROM command_results WHERE "
                                       "command_id = $1",
                                       p->id);
                int seen = strcmp(n, "1") == 0;
                free(n);
                if (seen)
                        break;
                it_sleep_ms(50);
        }
        it_sleep_ms(p->delay_ms);
        const char *v[] = {p->id};
        PQclear(it_sqlp(p->sql, 1, v, NULL, NULL));
        return NULL;
}

static it_resp_t it_wait_request(const char *id, const char *method, const char *path,
                                 const char *body, const char *sql, const char *prefer)
{
        char idh[128], pref[64];
        snprintf(idh, sizeof(idh), "Idempotency-Key: %s", id);
        snprintf(pref, sizeof(pref), "Prefer: %s", prefer);
        const char *hdr[] = {idh, pref, NULL};
        it_projector_t p = {id, sql, 600};
        pthread_t t;
        if (sql)
                pthread_create(&t, NULL, it_projector_main, &p);
        it_resp_t r =
            it_http(method, path, it_admin, hdr, body, body ? strlen(body) : 0, NULL);
        if (sql)
                pthread_join(t, NULL);
        return r;
}

START_TEST(test_prefer_wait)
{
        char *body = it_create_body("pw1", "");
        long long t0 = it_now_ms();
        it_resp_t r = it_wait_request(
            "it-wait-applied", "POST", "/v1/clusters", body,
            "WITH c AS (INSERT INTO clusters (name, state, ready, seq, spec, node_count, "
            "created_at, updated_at) VALUES ('pw1', 'Creating', false, 1, "
            "'{\"sshUser\":\"root\"}', 2, now(), now())) UPDATE command_results SET "
            "status = 'applied' WHERE command_id = $1",
            "respond-async, wait=8");
        ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
        ck_assert(it_now_ms() - t0 >= 500);
        json_t *j = it_json(&r);
        ck_assert_str_eq(json_string_value(json_object_get(j, "name")), "pw1");
        ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "Creating");
        ck_assert(json_is_false(json_object_get(j, "ready")));
        ck_assert_int_eq(json_integer_value(json_object_get(j, "nodeCount")), 2);
        ck_assert(json_object_get(j, "sshKey") == NULL);
        json_decref(j);
        it_resp_free(&r);
        free(body);

        r = it_wait_request(
            "it-wait-conflict", "DELETE", "/v1/clusters/pw2", NULL,
            "UPDATE command_results SET status = 'rejected', code = "
            "'conflict', message = 'cluster \"pw2\" can''t be deleted while "
            "Creating' WHERE command_id = $1",
            "wait=8");
        ck_assert_msg(r.status == 409, "%ld %s", r.status, r.body);
        j = it_json(&r);
        ck_assert_str_eq(it_error_message(j),
                         "cluster \"pw2\" can't be deleted while Creating");
        json_decref(j);
        it_resp_free(&r);

        r = it_wait_request("it-wait-invalid", "POST", "/v1/clusters/pw3/cancel", NULL,
                            "UPDATE command_results SET status = 'rejected', code = "
                            "'invalid', message = 'nodes[0].roles: \"etcd\" cannot stand "
                            "alone; a node must be controlplane or worker; sshKey: is "
                            "required' WHERE command_id = $1",
                            "wait=8");
        ck_assert_msg(r.status == 422, "%ld %s", r.status, r.body);
        j = it_json(&r);
        ck_assert(it_has_field(j, "nodes[0].roles") && it_has_field(j, "sshKey"));
        ck_assert_msg(strstr(r.body,
                             "\"message\":\"\\\"etcd\\\" cannot stand alone; a node "
                             "must be controlplane or worker\"") != NULL,
                      "%s", r.body);
        ck_assert_int_eq(
            json_array_size(json_object_get(json_object_get(j, "error"), "fields")), 2);
        json_decref(j);
        it_resp_free(&r);

        /* Nobody answers: 202 once the wait is over. */
        t0 = it_now_ms();
        r = it_wait_request("it-wait-timeout", "DELETE", "/v1/clusters/pw4", NULL, NULL,
                            "wait=1");
        ck_assert_int_eq(r.status, 202);
        ck_assert(it_now_ms() - t0 >= 900);
        char *loc = it_resp_header(&r, "Location");
        ck_assert_str_eq(loc, "/v1/commands/it-wait-timeout");
        free(loc);
        it_resp_free(&r);
}
END_TEST

/* ---------------------------------------------------------------- reads */

START_TEST(test_reads)
{
        it_insert_cluster("rd-a", "Running", NULL);
        it_insert_cluster("rd-b", "Unavailable", "zke-up failed on node w1: timeout");
        it_insert_cluster("rd-c", "Deleted", NULL);
        it_resp_t r = IT_GET("/v1/clusters", it_user);
        ck_assert_int_eq(r.status, 200);
        ck_assert(strstr(r.body, "\"rd-a\"") && strstr(r.body, "\"rd-b\"") &&
                  !strstr(r.body, "\"rd-c\""));
        it_resp_free(&r);
        r = IT_GET("/v1/clusters?ready=true", it_user);
        ck_assert(strstr(r.body, "\"rd-a\"") && !strstr(r.body, "\"rd-b\""));
        it_resp_free(&r);
        r = IT_GET("/v1/clusters?ready=false", it_user);
        ck_assert(!strstr(r.body, "\"rd-a\"") && strstr(r.body, "\"rd-b\"") &&
                  !strstr(r.body, "\"rd-c\""));
        it_resp_free(&r);

        r = IT_GET("/v1/clusters/rd-b", it_user);
        ck_assert_int_eq(r.status, 200);
        json_t *j = it_json(&r);
        ck_assert_str_eq(json_string_value(json_object_get(j, "name")), "rd-b");
        ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "Unavailable");
        ck_assert(json_is_false(json_object_get(j, "ready")));
        ck_assert_int_eq(json_integer_value(json_object_get(j, "nodeCount")), 2);
        ck_assert_str_eq(json_string_value(json_object_get(j, "sshUser")), "root");
        ck_assert_str_eq(json_string_value(json_object_get(j, "managerAddress")),
                         "10.9.0.1");
        ck_assert_int_eq(json_array_size(json_object_get(j, "nodes")), 2);
        ck_assert_str_eq(json_string_value(json_object_get(j, "lastError")),
                         "zke-up failed on node w1: timeout");
        ck_assert_str_eq(json_string_value(json_object_get(j, "createdAt")),
                         "2026-01-02T03:04:05.678Z");
        ck_assert(json_object_get(j, "updatedAt") && !json_object_get(j, "sshKey"));
        json_decref(j);
        it_resp_free(&r);

        it_sql(
            "INSERT INTO cluster_events (cluster, seq, event_id, type, from_state, "
            "to_state, "
            "command_id, actor, actor_role, at, payload) VALUES "
            "('rd-a', 2, gen_random_uuid(), 'JobSucceeded', 'Creating', 'Running', NULL, "
            "'worker-1', 'system', '2026-01-02T03:05:00Z', '{}'), "
            "('rd-a', 1, gen_random_uuid(), 'CreateRequested', NULL, 'Creating', 'c-1', "
            "'it-admin', 'admin', '2026-01-02T03:04:05Z', "
            "'{\"spec\":{\"name\":\"rd-a\"}}')");
        r = IT_GET("/v1/clusters/rd-a/events", it_user);
        ck_assert_int_eq(r.status, 200);
        j = it_json(&r);
        json_t *ev = json_object_get(j, "events");
        ck_assert_int_eq(json_array_size(ev), 2);
        ck_assert_int_eq(
            json_integer_value(json_object_get(json_array_get(ev, 0), "seq")), 1);
        ck_assert_str_eq(
            json_string_value(json_object_get(json_array_get(ev, 0), "type")),
            "CreateRequested");
        ck_assert_str_eq(
            json_string_value(json_object_get(json_array_get(ev, 0), "commandId")),
            "c-1");
        ck_assert_int_eq(
            json_integer_value(json_object_get(json_array_get(ev, 1), "seq")), 2);
        ck_assert_str_eq(
            json_string_value(json_object_get(json_array_get(ev, 1), "toState")),
            "Running");
        json_decref(j);
        it_resp_free(&r);

        it_sql(
            "INSERT INTO command_results (command_id, cluster, status, code, message) "
            "VALUES ('rd-rejected', 'rd-a', 'rejected', 'conflict', 'duplicate cluster "
            "\"rd-a\"')");
        r = IT_GET("/v1/commands/rd-rejected", it_user);
        ck_assert_int_eq(r.status, 200);
        j = it_json(&r);
        ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "rejected");
        ck_assert_str_eq(json_string_value(json_object_get(j, "code")), "conflict");
        ck_assert_str_eq(json_string_value(json_object_get(j, "message")),
                         "duplicate cluster \"rd-a\"");
        json_decref(j);
        it_resp_free(&r);
}
END_TEST

START_TEST(test_kubeconfig)
{
        unsigned char *sealed = NULL;
        size_t slen = 0;
        char err[256];
        ck_assert_int_eq(cm_seal_seal(cm_seal_keypair_pubkey(it_keys), IT_KUBECONFIG,
                                      strlen(IT_KUBECONFIG), &sealed, &slen, err,
                                      sizeof(err)),
                         CM_SEAL_OK);
        const char *v[] = {"kc1", it_spec_json, (const char *)sealed};
        const int len[] = {0, 0, (int)slen};
        const int fmt[] = {0, 0, 1};
        PQclear(it_sqlp(
            "INSERT INTO cluster_state (name, state, seq, spec, kubeconfig_sealed) "
            "VALUES ($1, 'Running', 3, $2::jsonb, $3)",
            3, v, len, fmt));
        PQclear(it_sqlp("INSERT INTO cluster_state (name, state, seq, spec) VALUES "
                        "('kc2', 'Creating', 1, $1::jsonb)",
                        1, (const char *[]){it_spec_json}, NULL, NULL));
        free(sealed);
        it_resp_t r = IT_GET("/v1/clusters/kc1/kubeconfig", it_admin);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(r.body, IT_KUBECONFIG);
        char *ct = it_resp_header(&r, "Content-Type");
        ck_assert_str_eq(ct, "application/yaml");
        free(ct);
        it_resp_free(&r);
        r = IT_GET("/v1/clusters/kc1/kubeconfig", it_user);
        ck_assert_int_eq(r.status, 403);
        ck_assert(strstr(r.body, "only admin can get cluster kubeconfig") != NULL);
        ck_assert(strstr(r.body, "marker") == NULL);
        it_resp_free(&r);
        r = IT_GET("/v1/clusters/kc2/kubeconfig", it_admin);
        ck_assert_int_eq(r.status, 404);
        ck_assert(strstr(r.body, "no kubeconfig yet") != NULL);
        it_resp_free(&r);
        /* No GET returns a secret. */
        it_insert_cluster("kc1", "Running", NULL);
        r = IT_GET("/v1/clusters/kc1", it_admin);
        ck_assert(strstr(r.body, "marker") == NULL && strstr(r.body, "sshKey") == NULL);
        it_resp_free(&r);
}
END_TEST

/* ---------------------------------------------------------------- SSE */

START_TEST(test_sse)
{
        long long end = it_now_ms() + 30000;
        while (it_metric("cm_api_event_stream_consumer_ready") != 1 && it_now_ms() < end)
                it_sleep_ms(100);
        ck_assert_int_eq(it_metric("cm_api_event_stream_consumer_ready"), 1);
        it_stream_t s1, s2;
        it_stream_open(&s1, "/v1/clusters/sse-one/events", it_user);
        it_stream_open(&s2, "/v1/clusters/sse-two/events", it_user);
        ck_assert(it_stream_wait(&s1, "watching cluster sse-one", 5000));
        ck_assert(it_stream_wait(&s2, "watching cluster sse-two", 5000));
        ck_assert_int_eq(it_metric("cm_api_event_streams"), 2);

        cm_actor_t actor = {"it-admin", "admin"};
        cm_cluster_event_t ev = {.cluster = "sse-one",
                                 .seq = 7,
                                 .event_id = "0b7c4a52-6f0e-4d38-9f55-2a51f0c1e001",
                                 .command_id = "sse-cmd",
                                 .type = "CreateRequested",
                                 .to_state = "Creating",
                                 .at = 1767322800000,
                                 .actor = actor};
        unsigned char *buf;
        size_t len;
        char err[256];
        ck_assert_int_eq(cm_cluster_event_encode(&ev, &buf, &len, err, sizeof(err)), 0);
        it_produce("cm.events", "sse-one", buf, len);
        free(buf);
        char *lines[] = {"[etcd] container started"};
        cm_job_progress_t pr = {.cluster = "sse-one",
                                .job_id = "0b7c4a52-6f0e-4d38-9f55-2a51f0c1e002",
                                .kind = "zke-up",
                                .attempt = 1,
                                .step = "etcd-plane",
                                .node = "cp1",
                                .status = "ok",
                                .at = 1767322801000,
                                .lines = lines,
                                .line_count = 1};
        ck_assert_int_eq(cm_job_progress_encode(&pr, &buf, &len, err, sizeof(err)), 0);
        it_produce("cm.progress", "sse-one", buf, len);
        free(buf);

        ck_assert_msg(it_stream_wait(&s1, "event: cluster-event\nid: 7\ndata: {", 10000),
                      "event not streamed: %s", s1.buf);
        ck_assert(it_stream_wait(&s1, "\"commandId\":\"sse-cmd\"", 1000));
        ck_assert(it_stream_wait(&s1, "\"at\":\"2026-01-02T03:00:00.000Z\"", 1000));
        ck_assert_msg(it_stream_wait(&s1, "event: progress\ndata: {", 10000), "%s",
                      s1.buf);
        ck_assert(it_stream_wait(&s1, "[etcd] container started", 1000));
        ck_assert(it_stream_wait(&s2, ": keep-alive", 5000));
        ck_assert_msg(!it_stream_wait(&s2, "sse-one\"", 500),
                      "other cluster's stream got: %s", s2.buf);
        ck_assert_int_eq(s1.status, 0); /* still open */
        it_stream_close(&s1);
        /* The client left: noticed at the next keep-alive (1 s here), the stream freed.
         */
        end = it_now_ms() + 10000;
        while (it_metric("cm_api_event_streams") != 1 && it_now_ms() < end)
                it_sleep_ms(100);
        ck_assert_int_eq(it_metric("cm_api_event_streams"), 1);
        it_stream_close(&s2);
}
END_TEST

/* ---------------------------------------------------------------- metrics, logs, stop */

START_TEST(test_metrics)
{
        ck_assert(it_metric("cm_api_commands_produced_total{kind=\"Create\"}") >= 1);
        ck_assert(it_metric("cm_api_commands_produced_total{kind=\"Import\"}") >= 1);
        ck_assert(it_metric("cm_api_commands_produced_total{kind=\"Delete\"}") >= 1);
}
END_TEST

/* Last: SIGTERM with a stream open and a request
 * waiting ends both cleanly and exits 0; no secret, token or error in the log. */
static void *it_stop_waiter(void *arg)
{
        it_resp_t *r = arg;
        const char *hdr[] = {"Idempotency-Key: it-stop-wait", "Prefer: wait=10", NULL};
        *r = it_http("DELETE", "/v1/clusters/stop-one", it_admin, hdr, NULL, 0, NULL);
        return NULL;
}

#define IT_CHECK(cond, ...)                                                              \
        do {                                                                             \
                if (!(cond)) {                                                           \
                        fprintf(stderr, "it_api: stop: " __VA_ARGS__);                   \
                        fputc('\n', stderr);                                             \
                        failed++;                                                        \
                }                                                                        \
        } while (0)

START_TEST(test_stop_and_log)
{
        int failed = 0;
        it_stream_t s;
        it_resp_t wr = {0};
        pthread_t t;
        it_stream_open(&s, "/v1/clusters/stop-one/events", it_admin);
        IT_CHECK(it_stream_wait(&s, "watching cluster", 5000), "stream did not open");
        pthread_create(&t, NULL, it_stop_waiter, &wr);
        long long end = it_now_ms() + 10000;
        for (char *n = NULL; it_now_ms() < end; it_sleep_ms(50)) {
                n = it_sql_value(
                    "SELECT count(*) FROM command_results WHERE command_id = $1",
                    "it-stop-wait");
                int seen = strcmp(n, "1") == 0;
                free(n);
                if (seen)
                        break;
        }
        it_sleep_ms(300); /* produced and suspended by now */
        long long t0 = it_now_ms();
        int rc = it_stop_child(it_api_pid, 15000);
        IT_CHECK(rc == 0, "cm-api exit status %d", rc);
        pthread_join(t, NULL);
        IT_CHECK(wr.status == 202, "waiting request answered %ld at stop", wr.status);
        IT_CHECK(it_now_ms() - t0 < 8000, "stop took %lld ms", it_now_ms() - t0);
        it_resp_free(&wr);
        it_stream_close(&s);
        char path[300];
        snprintf(path, sizeof(path), "%s/cm-api.log", it_dir);
        char *log = it_read_file(path);
        IT_CHECK(!strstr(log, "PRIVATE KEY") && !strstr(log, "kubeconfig-marker"),
                 "a secret is in the log");
        IT_CHECK(!strstr(log, it_admin) && !strstr(log, it_user),
                 "a token is in the log");
        IT_CHECK(!strstr(log, "\"level\":\"error\""), "an error was logged");
        free(log);
        ck_assert_int_eq(failed, 0);
}
END_TEST

/* ---------------------------------------------------------------- main */

int main(void)
{
        it_api_begin();
        Suite *s = suite_create("api");
        TCase *tc = tcase_create("api");
        tcase_set_timeout(tc, 90);
        /* In the runner's process (not a forked test): cm-api stays its child. */
        tcase_add_unchecked_fixture(tc, it_setup, NULL);
        tcase_add_test(tc, test_role_matrix);
        tcase_add_test(tc, test_errors);
        tcase_add_test(tc, test_produce_create);
        tcase_add_test(tc, test_produce_update_import);
        tcase_add_test(tc, test_prefer_wait);
        tcase_add_test(tc, test_reads);
        tcase_add_test(tc, test_kubeconfig);
        tcase_add_test(tc, test_sse);
        tcase_add_test(tc, test_metrics);
        tcase_add_test(tc, test_stop_and_log); /* last: stops cm-api */
        suite_add_tcase(s, tc);
        return it_api_run(s);
}
