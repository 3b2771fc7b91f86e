/*
 * fuzz_api_json - a request body through what cm-api does with it before producing
 * (producer/api/api_clusters.c): api_json_parse_object (depth limit, jansson, object
 * check), then the create path (cm_spec_from_json, cm_validate_create), the update path
 * (cm_nodes_from_json, cm_validate_update against the body's own spec and a fixed one),
 * the import path (cm_validate_import) and the field errors as JSON. A spec that passes
 * validation must survive cm.Command encoding and decoding unchanged.
 */
#include <string.h>

#include "../../producer/api/api.h"
#include "cm/command.h"
#include "cm/validate.h"
#include "fuzz.h"

static const char fuzz_current_json[] =
    "{\"name\":\"c1\",\"sshUser\":\"root\",\"managerAddress\":\"10.9.0.1\","
    "\"clusterDomain\":\"cluster.local\",\"nodes\":[{\"name\":\"cp1\",\"address\":"
    "\"10.9.0.2\",\"roles\":[\"controlplane\",\"etcd\"]},{\"name\":\"w1\",\"address\":"
    "\"10.9.0.3\",\"roles\":[\"worker\"]}]}";

static void fuzz_errors_json(const cm_field_errors_t *errs)
{
        json_t *f = cm_field_errors_to_json(errs);
        FUZZ_CHECK(f || errs->count == 0, "no JSON for %zu field errors", errs->count);
        char *s = f ? json_dumps(f, 0) : NULL;
        free(s);
        json_decref(f);
}

/* A valid create must make a command that encodes and decodes to the same spec. */
static void fuzz_command_roundtrip(const cm_spec_t *spec)
{
        cm_command_t cmd = {.kind = CM_COMMAND_CREATE}, back;
        unsigned char *buf = NULL, sealed[48] = {0};
        size_t len;
        char err[512];

        cmd.id = "00000000-0000-4000-8000-000000000000";
        cmd.cluster = spec->name;
        cmd.actor.name = "fuzz";
        cmd.actor.role = "admin";
        cmd.create.spec = *spec;
        cmd.create.ssh_key = sealed;
        cmd.create.ssh_key_len = sizeof(sealed);
        int rc = cm_command_encode(&cmd, &buf, &len, err, sizeof(err));
        FUZZ_CHECK(rc == 0, "a valid spec does not encode: %s", err);
        rc = cm_command_decode(buf, len, &back, err, sizeof(err));
        FUZZ_CHECK(rc == 0, "an encoded command does not decode: %s", err);
        FUZZ_CHECK(cm_spec_equal(&back.create.spec, spec), "the spec changed in Avro");
        cm_command_destroy(&back);
        free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static cm_spec_t current;
        static int have_current;
        char err[512];

        if (!have_current) {
                cm_field_errors_t e = {0};
                json_t *c = json_loads(fuzz_current_json, 0, NULL);
                FUZZ_CHECK(c && cm_spec_from_json(&current, c, &e) == 0, "fixture spec");
                json_decref(c);
                have_current = 1;
        }
        err[0] = '\0';
        json_t *obj = api_json_parse_object((const char *)data, size, err, sizeof(err));
        if (!obj) {
                FUZZ_CHECK(err[0], "refused without a message");
                return 0;
        }
        json_t *key = json_object_get(obj, "sshKey");
        const unsigned char *k =
            json_is_string(key) ? (const unsigned char *)json_string_value(key) : NULL;
        size_t klen = k ? json_string_length(key) : 0;

        /* create */
        cm_field_errors_t errs = {0};
        cm_spec_t spec = {0};
        json_t *copy = json_copy(obj);
        json_object_del(copy, "sshKey");
        int structure = cm_spec_from_json(&spec, copy, &errs), spec_valid = 0;
        json_decref(copy);
        if (structure == 0 && errs.count == 0) {
                int bad = cm_validate_create(&spec, k, klen, &errs);
                FUZZ_CHECK((bad == 0) == (errs.count == 0), "%d problems, %zu errors",
                           bad, errs.count);
                /* the key is the only thing a fuzzer cannot make valid: judge the spec */
                cm_field_errors_t spec_only = {0};
                for (size_t i = 0; i < errs.count; i++)
                        if (strcmp(errs.items[i].field, "sshKey") != 0)
                                cm_field_errors_add(&spec_only, errs.items[i].field, "%s",
                                                    errs.items[i].message);
                if (spec_only.count == 0) {
                        spec_valid = 1;
                        fuzz_command_roundtrip(&spec);
                }
                cm_field_errors_clear(&spec_only);
                json_t *back = cm_spec_to_json(&spec);
                json_decref(back);
        }
        fuzz_errors_json(&errs);
        cm_field_errors_clear(&errs);

        /* update: the new node list against the body's own spec and a fixed one */
        cm_node_t *nodes = NULL;
        size_t n = 0;
        cm_nodes_from_json(&nodes, &n, json_object_get(obj, "nodes"), &errs);
        if (errs.count == 0) {
                cm_validate_update(&current, nodes, n, k, klen, &errs);
                if (spec_valid) /* a stored spec is always a valid one */
                        cm_validate_update(&spec, nodes, n, NULL, 0, &errs);
        }
        fuzz_errors_json(&errs);
        cm_field_errors_clear(&errs);
        cm_nodes_free(nodes, n);
        cm_spec_destroy(&spec);

        /* import */
        json_t *name = json_object_get(obj, "name");
        cm_validate_import(json_is_string(name) ? json_string_value(name) : "",
                           json_string_length(json_object_get(obj, "kubeconfig")), &errs);
        fuzz_errors_json(&errs);
        cm_field_errors_clear(&errs);
        json_decref(obj);
        return 0;
}
