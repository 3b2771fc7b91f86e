/*
 * api_clusters.c - the mutations of DESIGN §6: create, update, delete, cancel, import.
 *
 * Each handler checks the request's structure (400: malformed JSON, unknown fields, wrong
 * types), runs the validation of DESIGN §4 that needs no state, or the read model's spec
 * for an update (422, every field error), seals the secret it carries and hands a command
 * to api_command_submit(). The worker validates again against the write model: it is the
 * authority, this is the fast answer. Plaintext secrets live only in the request's memory
 * and are zeroed before it is freed.
 */
#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cm/log.h"
#include "cm/validate.h"

/* Fields of the cluster resource a client may send back unchanged with an update (GET,
 * edit the nodes, PUT): accepted and ignored. */
static const char *const api_resource_fields[] = {"state",     "ready",     "nodeCount",
                                                  "lastError", "createdAt", "updatedAt"};

static const char *api_json_type(const json_t *v)
{
        switch (json_typeof(v)) {
        case JSON_OBJECT:
                return "an object";
        case JSON_ARRAY:
                return "an array";
        case JSON_STRING:
                return "a string";
        case JSON_INTEGER:
        case JSON_REAL:
                return "a number";
        case JSON_TRUE:
        case JSON_FALSE:
                return "a boolean";
        default:
                return "null";
        }
}

/* A secret field (sshKey, kubeconfig): a string or absent/null. Never echoes the value.
 */
static const char *api_secret_field(const json_t *obj, const char *field, size_t *len,
                                    cm_field_errors_t *errs)
{
        json_t *v = json_object_get(obj, field);
        *len = 0;
        if (!v || json_is_null(v))
                return NULL;
        if (!json_is_string(v)) {
                cm_field_errors_add(errs, field, "must be a string, got %s",
                                    api_json_type(v));
                return NULL;
        }
        *len = json_string_length(v);
        return json_string_value(v);
}

/* Zeroes the plaintext of a secret field before the JSON tree is freed. */
static void api_secret_wipe(json_t *obj, const char *field)
{
        json_t *v = json_object_get(obj, field);
        if (json_is_string(v))
                sodium_memzero((char *)json_string_value(v), json_string_length(v));
}

static int api_seal(api_request_t *req, const char *field, const char *plain, size_t len,
                    unsigned char **out, size_t *out_len, int *ret)
{
        char err[256];
        if (cm_seal_seal(cm_seal_keypair_pubkey(req->api->keys), plain, len, out, out_len,
                         err, sizeof(err)) != CM_SEAL_OK) {
                cm_log_error("cannot seal a secret", "field", field, "error", err);
                *ret = api_respond_error(req, 500, "internal", "cannot seal %s", field);
                return -1;
        }
        return 0;
}

static int api_respond_structure(api_request_t *req, const cm_field_errors_t *errs)
{
        char *msg = api_fields_join(errs);
        int ret = api_respond_fields(req, MHD_HTTP_BAD_REQUEST, "bad_request",
                                     msg ? msg : "bad request", errs);
        free(msg);
        return ret;
}

static int api_respond_invalid(api_request_t *req, const cm_field_errors_t *errs)
{
        char *msg = api_fields_join(errs);
        int ret = api_respond_fields(req, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid",
                                     msg ? msg : "invalid request", errs);
        free(msg);
        return ret;
}

static int api_respond_no_cluster(api_request_t *req)
{
        return api_respond_error(req, MHD_HTTP_NOT_FOUND, "not_found",
                                 "cluster \"%s\" doesn't exist", req->param);
}

int api_handle_cluster_create(api_request_t *req)
{
        int ret;
        json_t *obj = api_body_object(req, &ret);
        if (!obj)
                return ret;
        cm_field_errors_t errs = {0};
        cm_command_t cmd = {.kind = CM_COMMAND_CREATE};
        size_t klen;
        const char *key = api_secret_field(obj, "sshKey", &klen, &errs);
        cm_spec_from_json(&cmd.create.spec, obj, &errs);
        if (errs.count) {
                ret = api_respond_structure(req, &errs);
                goto out;
        }
        if (cm_validate_create(&cmd.create.spec, (const unsigned char *)key, klen,
                               &errs) > 0 ||
            errs.count) {
                ret = api_respond_invalid(req, &errs);
                goto out;
        }
        if (api_seal(req, "sshKey", key, klen, &cmd.create.ssh_key,
                     &cmd.create.ssh_key_len, &ret))
                goto out;
        if (!(cmd.cluster = strdup(cmd.create.spec.name))) {
                ret = MHD_NO;
                goto out;
        }
        api_secret_wipe(obj, "sshKey");
        json_decref(obj);
        cm_field_errors_clear(&errs);
        return api_command_submit(req, &cmd);
out:
        api_secret_wipe(obj, "sshKey");
        json_decref(obj);
        cm_field_errors_clear(&errs);
        cm_command_destroy(&cmd);
        return ret;
}

/* The stored spec of a cluster that exists (not Deleted) in the read model. Returns 1
 * found, 0 absent, -1 database error (answered). */
static int api_current_spec(api_request_t *req, cm_spec_t *spec, int *ret)
{
        cm_pg_t *pg = api_db(req, ret);
        if (!pg)
                return -1;
        char err[512];
        const char *params[] = {req->param};
        PGresult *res = NULL;
        if (cm_pg_exec_params(pg,
                              "SELECT spec FROM clusters WHERE name = $1 AND state <> "
                              "'Deleted'",
                              1, params, &res, err, sizeof(err)) != CM_PG_OK) {
                *ret = api_respond_db_error(req, "read the cluster's spec", err);
                return -1;
        }
        int found = PQntuples(res) == 1;
        if (found) {
                cm_field_errors_t errs = {0};
                json_t *j = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
                if (!j || cm_spec_from_json(spec, j, &errs) != 0) {
                        char *m = api_fields_join(&errs);
                        cm_log_error("the read model holds a spec that does not parse",
                                     "cluster", req->param, "error", m ? m : "");
                        free(m);
                        *ret =
                            api_respond_error(req, 500, "internal",
                                              "the stored spec of cluster \"%s\" cannot "
                                              "be read",
                                              req->param);
                        found = -1;
                }
                json_decref(j);
                cm_field_errors_clear(&errs);
        }
        PQclear(res);
        return found;
}

/* Update body: nodes and sshKey; the other fields of the resource are accepted and
 * ignored (DESIGN §4), unknown ones refused. Fills *spec (its nodes are the new list). */
static void api_update_parse(api_request_t *req, json_t *obj, cm_spec_t *spec,
                             cm_field_errors_t *errs)
{
        json_t *copy = json_copy(obj);
        for (size_t i = 0;
             i < sizeof(api_resource_fields) / sizeof(api_resource_fields[0]); i++)
                json_object_del(copy, api_resource_fields[i]);
        cm_spec_from_json(spec, copy, errs);
        json_decref(copy);
        if (spec->name && strcmp(spec->name, req->param) != 0)
                cm_field_errors_add(
                    errs, "name",
                    "\"%s\" does not match the cluster in the path (\"%s\")", spec->name,
                    req->param);
}

int api_handle_cluster_update(api_request_t *req)
{
        int ret;
        if (!api_name_valid(req->param))
                return api_respond_no_cluster(req);
        json_t *obj = api_body_object(req, &ret);
        if (!obj)
                return ret;
        cm_field_errors_t errs = {0};
        cm_command_t cmd = {.kind = CM_COMMAND_UPDATE};
        cm_spec_t spec = {0}, current = {0};
        size_t klen;
        const char *key = api_secret_field(obj, "sshKey", &klen, &errs);
        api_update_parse(req, obj, &spec, &errs);
        if (errs.count) {
                ret = api_respond_structure(req, &errs);
                goto out;
        }
        int found = api_current_spec(req, &current, &ret);
        if (found < 0)
                goto out;
        if (!found) {
                ret = api_respond_no_cluster(req);
                goto out;
        }
        if (!json_object_get(obj, "nodes"))
                cm_field_errors_add(&errs, "nodes", "is required: the new list of nodes");
        cm_validate_update(&current, spec.nodes, spec.node_count,
                           (const unsigned char *)key, klen, &errs);
        if (errs.count) {
                ret = api_respond_invalid(req, &errs);
                goto out;
        }
        if (key && api_seal(req, "sshKey", key, klen, &cmd.update.ssh_key,
                            &cmd.update.ssh_key_len, &ret))
                goto out;
        if (!(cmd.cluster = strdup(req->param))) {
                ret = MHD_NO;
                goto out;
        }
        cmd.update.nodes = spec.nodes;
        cmd.update.node_count = spec.node_count;
        spec.nodes = NULL;
        spec.node_count = 0;
        api_secret_wipe(obj, "sshKey");
        json_decref(obj);
        cm_spec_destroy(&spec);
        cm_spec_destroy(&current);
        return api_command_submit(req, &cmd);
out:
        api_secret_wipe(obj, "sshKey");
        json_decref(obj);
        cm_field_errors_clear(&errs);
        cm_spec_destroy(&spec);
        cm_spec_destroy(&current);
        cm_command_destroy(&cmd);
        return ret;
}

/* Delete and Cancel carry no payload; whether the cluster exists and may take them is the
 * worker's decision (the read model may lag behind a cluster created a moment ago). */
static int api_simple_command(api_request_t *req, cm_command_kind_t kind)
{
        if (!api_name_valid(req->param))
                return api_respond_no_cluster(req);
        cm_command_t cmd = {.kind = kind};
        if (!(cmd.cluster = strdup(req->param)))
                return MHD_NO;
        return api_command_submit(req, &cmd);
}

int api_handle_cluster_delete(api_request_t *req)
{
        return api_simple_command(req, CM_COMMAND_DELETE);
}

int api_handle_cluster_cancel(api_request_t *req)
{
        return api_simple_command(req, CM_COMMAND_CANCEL);
}

int api_handle_cluster_import(api_request_t *req)
{
        int ret;
        json_t *obj = api_body_object(req, &ret);
        if (!obj)
                return ret;
        cm_field_errors_t errs = {0};
        cm_command_t cmd = {.kind = CM_COMMAND_IMPORT};
        const char *key;
        json_t *v;
        json_object_foreach(obj, key, v)
        {
                if (strcmp(key, "name") != 0 && strcmp(key, "kubeconfig") != 0)
                        cm_field_errors_add(&errs, key, "unknown field");
        }
        json_t *name = json_object_get(obj, "name");
        if (name && !json_is_string(name) && !json_is_null(name))
                cm_field_errors_add(&errs, "name", "must be a string, got %s",
                                    api_json_type(name));
        size_t klen;
        const char *kubeconfig = api_secret_field(obj, "kubeconfig", &klen, &errs);
        if (errs.count) {
                ret = api_respond_structure(req, &errs);
                goto out;
        }
        const char *n = json_is_string(name) ? json_string_value(name) : "";
        if (cm_validate_import(n, klen, &errs) > 0 || errs.count) {
                ret = api_respond_invalid(req, &errs);
                goto out;
        }
        if (api_seal(req, "kubeconfig", kubeconfig, klen, &cmd.import.kubeconfig,
                     &cmd.import.kubeconfig_len, &ret))
                goto out;
        if (!(cmd.cluster = strdup(n))) {
                ret = MHD_NO;
                goto out;
        }
        api_secret_wipe(obj, "kubeconfig");
        json_decref(obj);
        return api_command_submit(req, &cmd);
out:
        api_secret_wipe(obj, "kubeconfig");
        json_decref(obj);
        cm_field_errors_clear(&errs);
        cm_command_destroy(&cmd);
        return ret;
}
