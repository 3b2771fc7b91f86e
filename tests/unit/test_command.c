/*
 * test_command.c - cm.Command: round trips of every payload, field errors, hostile input,
 * and interoperability with an outside producer/consumer (Debian's python3-avro).
 */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cm/avro.h"
#include "cm/command.h"
#include "cm/spec_avro.h"
#include "../check_main.h"

/* ---- fixtures (cm_spec.c is another module: specs are filled by hand here) ---- */

static char **strv(size_t n, ...)
{
        va_list ap;
        char **v = calloc(n ? n : 1, sizeof(*v));
        va_start(ap, n);
        for (size_t i = 0; i < n; i++)
                v[i] = strdup(va_arg(ap, const char *));
        va_end(ap);
        return v;
}

static void fill_node(cm_node_t *n, const char *name, const char *addr, size_t nroles,
                      ...)
{
        va_list ap;
        n->name = strdup(name);
        n->address = strdup(addr);
        n->roles = calloc(nroles, sizeof(char *));
        n->role_count = nroles;
        va_start(ap, nroles);
        for (size_t i = 0; i < nroles; i++)
                n->roles[i] = strdup(va_arg(ap, const char *));
        va_end(ap);
}

static cm_node_t *three_nodes(size_t *count)
{
        cm_node_t *n = calloc(3, sizeof(*n));
        fill_node(&n[0], "cp-1", "10.0.0.11", 2, "controlplane", "etcd");
        fill_node(&n[1], "worker-1", "10.0.0.21", 1, "worker");
        fill_node(&n[2], "edge-1", "10.0.0.31:2222", 2, "worker", "edge");
        *count = 3;
        return n;
}

static void fill_spec(cm_spec_t *s)
{
        memset(s, 0, sizeof(*s));
        s->name = strdup("prod");
        s->ssh_user = strdup("ops");
        s->ssh_port = 2222;
        s->manager_address = strdup("https://cm.example.org:8443");
        s->cluster_domain = strdup("cluster.local");
        s->kubernetes_version = strdup("v1.28.15");
        s->cluster_cidr = strdup("10.42.0.0/16");
        s->service_cidr = strdup("10.43.0.0/16");
        s->cluster_dns_service_ip = strdup("10.43.0.10");
        s->cluster_upstream_dns = strv(2, "1.1.1.1", "9.9.9.9");
        s->cluster_upstream_dns_count = 2;
        s->network_plugin = strdup("calico");
        s->nodes = three_nodes(&s->node_count);
}

static unsigned char *bytes_dup(const void *p, size_t n)
{
        unsigned char *b = malloc(n ? n : 1);
        memcpy(b, p, n);
        return b;
}

static const unsigned char sealed_key[] = {0x00, 0xff, 0x10, 0x00,
                                           0x7f, 0x80, 0xc3, 0x01};

static void fill_command(cm_command_t *c, cm_command_kind_t kind)
{
        memset(c, 0, sizeof(*c));
        c->id = strdup("6f1c2a8e-4f7b-4a39-9d55-0d7e5b0c2f11");
        c->cluster = strdup("prod");
        c->actor.name = strdup("ci-bot");
        c->actor.role = strdup("admin");
        c->issued_at = 1767225600123LL;
        c->kind = kind;
        switch (kind) {
        case CM_COMMAND_CREATE:
                fill_spec(&c->create.spec);
                c->create.ssh_key = bytes_dup(sealed_key, sizeof(sealed_key));
                c->create.ssh_key_len = sizeof(sealed_key);
                break;
        case CM_COMMAND_UPDATE:
                c->update.nodes = three_nodes(&c->update.node_count);
                c->has_expected_version = 1;
                c->expected_version = 7;
                break;
        case CM_COMMAND_IMPORT:
                c->import.kubeconfig = bytes_dup("sealed-kubeconfig\0tail", 22);
                c->import.kubeconfig_len = 22;
                break;
        default:
                c->has_expected_version = 1;
                c->expected_version = -1; /* negative longs survive zigzag */
                break;
        }
}

/* ---- comparisons ---- */

static void assert_nodes_eq(const cm_node_t *a, size_t na, const cm_node_t *b, size_t nb)
{
        ck_assert_uint_eq(na, nb);
        for (size_t i = 0; i < na; i++) {
                ck_assert_str_eq(a[i].name, b[i].name);
                ck_assert_str_eq(a[i].address, b[i].address);
                ck_assert_uint_eq(a[i].role_count, b[i].role_count);
                for (size_t r = 0; r < a[i].role_count; r++)
                        ck_assert_str_eq(a[i].roles[r], b[i].roles[r]);
        }
}

static void assert_spec_eq(const cm_spec_t *a, const cm_spec_t *b)
{
        ck_assert_str_eq(a->name, b->name);
        ck_assert_str_eq(a->ssh_user, b->ssh_user);
        ck_assert_int_eq(a->ssh_port, b->ssh_port);
        ck_assert_str_eq(a->manager_address, b->manager_address);
        ck_assert_str_eq(a->cluster_domain, b->cluster_domain);
        ck_assert_str_eq(a->kubernetes_version, b->kubernetes_version);
        ck_assert_str_eq(a->cluster_cidr, b->cluster_cidr);
        ck_assert_str_eq(a->service_cidr, b->service_cidr);
        ck_assert_str_eq(a->cluster_dns_service_ip, b->cluster_dns_service_ip);
        ck_assert_uint_eq(a->cluster_upstream_dns_count, b->cluster_upstream_dns_count);
        for (size_t i = 0; i < a->cluster_upstream_dns_count; i++)
                ck_assert_str_eq(a->cluster_upstream_dns[i], b->cluster_upstream_dns[i]);
        ck_assert_str_eq(a->network_plugin, b->network_plugin);
        assert_nodes_eq(a->nodes, a->node_count, b->nodes, b->node_count);
}

static void assert_bytes_eq(const unsigned char *a, size_t na, const unsigned char *b,
                            size_t nb)
{
        ck_assert_uint_eq(na, nb);
        ck_assert_int_eq(memcmp(a, b, na), 0);
}

static void assert_command_eq(const cm_command_t *a, const cm_command_t *b)
{
        ck_assert_str_eq(a->id, b->id);
        ck_assert_str_eq(a->cluster, b->cluster);
        ck_assert_str_eq(a->actor.name, b->actor.name);
        ck_assert_str_eq(a->actor.role, b->actor.role);
        ck_assert_int_eq(a->issued_at, b->issued_at);
        ck_assert_int_eq(a->has_expected_version, b->has_expected_version);
        if (a->has_expected_version)
                ck_assert_int_eq(a->expected_version, b->expected_version);
        ck_assert_int_eq(a->kind, b->kind);
        switch (a->kind) {
        case CM_COMMAND_CREATE:
                assert_spec_eq(&a->create.spec, &b->create.spec);
                assert_bytes_eq(a->create.ssh_key, a->create.ssh_key_len,
                                b->create.ssh_key, b->create.ssh_key_len);
                break;
        case CM_COMMAND_UPDATE:
                assert_nodes_eq(a->update.nodes, a->update.node_count, b->update.nodes,
                                b->update.node_count);
                ck_assert_int_eq(!a->update.ssh_key, !b->update.ssh_key);
                if (a->update.ssh_key)
                        assert_bytes_eq(a->update.ssh_key, a->update.ssh_key_len,
                                        b->update.ssh_key, b->update.ssh_key_len);
                break;
        case CM_COMMAND_IMPORT:
                assert_bytes_eq(a->import.kubeconfig, a->import.kubeconfig_len,
                                b->import.kubeconfig, b->import.kubeconfig_len);
                break;
        default:
                break;
        }
}

static void roundtrip(const cm_command_t *c)
{
        unsigned char *buf;
        size_t len;
        char err[512] = "";
        cm_command_t out;

        ck_assert_msg(cm_command_encode(c, &buf, &len, err, sizeof(err)) == 0, "%s", err);
        ck_assert_uint_eq(buf[0], 0xC3);
        ck_assert_msg(cm_command_decode(buf, len, &out, err, sizeof(err)) == 0, "%s",
                      err);
        assert_command_eq(c, &out);
        cm_command_destroy(&out);
        free(buf);
}

/* ---- round trips ---- */

START_TEST(test_roundtrip_create)
{
        cm_command_t c;
        fill_command(&c, CM_COMMAND_CREATE);
        roundtrip(&c);
        c.has_expected_version = 1;
        c.expected_version = 0;
        roundtrip(&c);
        cm_command_destroy(&c);
        ck_assert_ptr_null(c.id); /* destroy zeroes */
}
END_TEST

START_TEST(test_roundtrip_update)
{
        cm_command_t c;
        fill_command(&c, CM_COMMAND_UPDATE);
        roundtrip(&c); /* without sshKey: decodes to NULL */
        c.update.ssh_key = bytes_dup(sealed_key, sizeof(sealed_key));
        c.update.ssh_key_len = sizeof(sealed_key);
        roundtrip(&c);
        free(c.update.ssh_key);
        c.update.ssh_key = bytes_dup("", 0); /* present but empty stays present */
        c.update.ssh_key_len = 0;
        roundtrip(&c);
        cm_command_destroy(&c);
}
END_TEST

START_TEST(test_roundtrip_delete_cancel_import)
{
        cm_command_kind_t kinds[] = {CM_COMMAND_DELETE, CM_COMMAND_CANCEL,
                                     CM_COMMAND_IMPORT};
        for (size_t i = 0; i < 3; i++) {
                cm_command_t c;
                fill_command(&c, kinds[i]);
                roundtrip(&c);
                c.has_expected_version = 0;
                roundtrip(&c);
                cm_command_destroy(&c);
        }
        ck_assert_str_eq(cm_command_kind_name(CM_COMMAND_IMPORT), "Import");
        ck_assert_str_eq(cm_command_kind_name((cm_command_kind_t)9), "?");
}
END_TEST

START_TEST(test_delete_and_cancel_differ_on_the_wire)
{
        cm_command_t d, c;
        unsigned char *bd, *bc;
        size_t ld, lc;
        char err[256];
        fill_command(&d, CM_COMMAND_DELETE);
        fill_command(&c, CM_COMMAND_CANCEL);
        ck_assert_int_eq(cm_command_encode(&d, &bd, &ld, err, sizeof(err)), 0);
        ck_assert_int_eq(cm_command_encode(&c, &bc, &lc, err, sizeof(err)), 0);
        ck_assert_uint_eq(ld, lc);
        ck_assert_int_ne(memcmp(bd, bc, ld), 0); /* union branch 2 vs 3 */
        ck_assert_uint_eq(bd[ld - 1], 2 * 2);
        ck_assert_uint_eq(bc[lc - 1], 3 * 2);
        free(bd);
        free(bc);
        cm_command_destroy(&d);
        cm_command_destroy(&c);
}
END_TEST

/* ---- encode errors name the field ---- */

static void expect_encode_error(cm_command_t *c, int code, const char *msg)
{
        unsigned char *buf = (unsigned char *)"sentinel";
        size_t len = 1;
        char err[512] = "";
        ck_assert_int_eq(cm_command_encode(c, &buf, &len, err, sizeof(err)), code);
        ck_assert_ptr_null(buf);
        ck_assert_uint_eq(len, 0);
        ck_assert_msg(strcmp(err, msg) == 0, "error \"%s\", want \"%s\"", err, msg);
}

START_TEST(test_encode_errors)
{
        cm_command_t c;
        fill_command(&c, CM_COMMAND_CREATE);
        free(c.create.spec.nodes[1].address);
        c.create.spec.nodes[1].address = NULL;
        expect_encode_error(
            &c, CM_AVRO_ERR_INVALID,
            "cm.Command.payload.Create.spec.nodes[1].address: NULL string "
            "(required)");
        c.create.spec.nodes[1].address = strdup("10.0.0.21");
        free(c.create.spec.nodes[2].roles[1]);
        c.create.spec.nodes[2].roles[1] = NULL;
        expect_encode_error(
            &c, CM_AVRO_ERR_INVALID,
            "cm.Command.payload.Create.spec.nodes[2].roles[1]: NULL string "
            "(required)");
        c.create.spec.nodes[2].roles[1] = strdup("edge");
        free(c.create.spec.network_plugin);
        c.create.spec.network_plugin = NULL;
        expect_encode_error(&c, CM_AVRO_ERR_INVALID,
                            "cm.Command.payload.Create.spec.network.plugin: NULL string "
                            "(required)");
        c.create.spec.network_plugin = strdup("flannel");
        free(c.create.ssh_key);
        c.create.ssh_key = NULL;
        expect_encode_error(&c, CM_AVRO_ERR_INVALID,
                            "cm.Command.payload.Create.sshKey: NULL (the sealed key is "
                            "required)");
        free(c.actor.role);
        c.actor.role = NULL;
        expect_encode_error(&c, CM_AVRO_ERR_INVALID,
                            "cm.Command.actor.role: NULL string (required)");
        c.kind = (cm_command_kind_t)7;
        c.actor.role = strdup("admin");
        expect_encode_error(&c, CM_AVRO_ERR_INVALID,
                            "cm.Command.payload: unknown command kind 7");
        cm_command_destroy(&c);

        fill_command(&c, CM_COMMAND_IMPORT);
        free(c.import.kubeconfig);
        c.import.kubeconfig = NULL;
        expect_encode_error(&c, CM_AVRO_ERR_INVALID,
                            "cm.Command.payload.Import.kubeconfig: NULL (the sealed "
                            "kubeconfig is required)");
        free(c.id);
        c.id = NULL;
        expect_encode_error(&c, CM_AVRO_ERR_INVALID,
                            "cm.Command.id: NULL string (required)");
        cm_command_destroy(&c);
}
END_TEST

/* ---- decode errors ---- */

/* Encodes c with one string field replaced by raw bytes (as an outside producer could).
 */
static void encode_with_raw_string(const cm_command_t *c, const char *path0,
                                   const char *raw, size_t rawlen, unsigned char **buf,
                                   size_t *len)
{
        avro_value_t rec, v, b;
        char err[256];
        ck_assert_int_eq(
            cm_avro_value_new(CM_AVRO_SCHEMA_COMMAND, &rec, err, sizeof(err)), 0);
        ck_assert_msg(cm_command_to_avro(c, &rec, err, sizeof(err)) == 0, "%s", err);
        if (strcmp(path0, "cluster") == 0) {
                ck_assert_int_eq(avro_value_get_by_name(&rec, "cluster", &v, NULL), 0);
        } else { /* payload.Create.spec.nodes[0].name */
                ck_assert_int_eq(avro_value_get_by_name(&rec, "payload", &v, NULL), 0);
                ck_assert_int_eq(avro_value_get_current_branch(&v, &b), 0);
                ck_assert_int_eq(avro_value_get_by_name(&b, "spec", &v, NULL), 0);
                ck_assert_int_eq(avro_value_get_by_name(&v, "nodes", &b, NULL), 0);
                ck_assert_int_eq(avro_value_get_by_index(&b, 0, &v, NULL), 0);
                ck_assert_int_eq(avro_value_get_by_name(&v, "name", &b, NULL), 0);
                v = b;
        }
        ck_assert_int_eq(avro_value_set_string_len(&v, raw, rawlen + 1), 0);
        ck_assert_int_eq(
            cm_avro_encode(CM_AVRO_SCHEMA_COMMAND, &rec, buf, len, err, sizeof(err)), 0);
        avro_value_decref(&rec);
}

START_TEST(test_decode_rejects_bad_strings)
{
        cm_command_t c, out;
        unsigned char *buf;
        size_t len;
        char err[512];
        fill_command(&c, CM_COMMAND_CREATE);

        encode_with_raw_string(&c, "cluster", "pr\0d", 4, &buf, &len);
        ck_assert_int_eq(cm_command_decode(buf, len, &out, err, sizeof(err)),
                         CM_AVRO_ERR_INVALID);
        ck_assert_str_eq(err,
                         "cm.Command.cluster: string contains a NUL byte at offset 2");
        ck_assert_ptr_null(out.id); /* nothing left allocated */
        free(buf);

        encode_with_raw_string(&c, "node", "c\xff-1", 4, &buf, &len);
        ck_assert_int_eq(cm_command_decode(buf, len, &out, err, sizeof(err)),
                         CM_AVRO_ERR_INVALID);
        ck_assert_str_eq(err,
                         "cm.Command.payload.Create.spec.nodes[0].name: string is not "
                         "valid UTF-8 (byte 0xFF at offset 1)");
        free(buf);

        encode_with_raw_string(&c, "node", "n\xc3\xa9\xe2\x82\xac", 6, &buf, &len);
        ck_assert_msg(cm_command_decode(buf, len, &out, err, sizeof(err)) == 0, "%s",
                      err);
        ck_assert_str_eq(out.create.spec.nodes[0].name, "n\xc3\xa9\xe2\x82\xac");
        cm_command_destroy(&out);
        free(buf);
        cm_command_destroy(&c);
}
END_TEST

START_TEST(test_decode_framing_errors)
{
        cm_command_t c, out;
        unsigned char *buf;
        size_t len;
        char err[512];
        fill_command(&c, CM_COMMAND_CREATE);
        ck_assert_int_eq(cm_command_encode(&c, &buf, &len, err, sizeof(err)), 0);

        ck_assert_int_eq(cm_command_decode(buf, 4, &out, err, sizeof(err)),
                         CM_AVRO_ERR_TOO_SHORT);
        for (size_t n = 10; n < len; n++) {
                ck_assert_int_eq(cm_command_decode(buf, n, &out, err, sizeof(err)),
                                 CM_AVRO_ERR_MALFORMED);
                ck_assert_msg(strstr(err, "cm.Command: truncated body"), "%zu: %s", n,
                              err);
        }
        unsigned char *more = malloc(len + 1);
        memcpy(more, buf, len);
        more[len] = 0;
        ck_assert_int_eq(cm_command_decode(more, len + 1, &out, err, sizeof(err)),
                         CM_AVRO_ERR_TRAILING);
        free(more);

        buf[0] = '{';
        ck_assert_int_eq(cm_command_decode(buf, len, &out, err, sizeof(err)),
                         CM_AVRO_ERR_BAD_MAGIC);
        buf[0] = 0xC3;
        buf[9] ^= 0x40;
        ck_assert_int_eq(cm_command_decode(buf, len, &out, err, sizeof(err)),
                         CM_AVRO_ERR_UNKNOWN_FP);
        free(buf);

        /* a valid cm.Actor message is not a command */
        avro_value_t a;
        ck_assert_int_eq(cm_avro_value_new(CM_AVRO_SCHEMA_ACTOR, &a, err, sizeof(err)),
                         0);
        ck_assert_int_eq(cm_actor_to_avro(&c.actor, &a, err, sizeof(err)), 0);
        ck_assert_int_eq(
            cm_avro_encode(CM_AVRO_SCHEMA_ACTOR, &a, &buf, &len, err, sizeof(err)), 0);
        avro_value_decref(&a);
        ck_assert_int_eq(cm_command_decode(buf, len, &out, err, sizeof(err)),
                         CM_AVRO_ERR_WRONG_SCHEMA);
        ck_assert_msg(strstr(err, "message is a cm.Actor"), "%s", err);
        free(buf);
        cm_command_destroy(&c);
}
END_TEST

static void decode_any_outcome(const unsigned char *buf, size_t len)
{
        cm_command_t out;
        char err[512];
        int rc = cm_command_decode(buf, len, &out, err, sizeof(err));
        if (rc == 0) {
                ck_assert_ptr_nonnull(out.id);
                cm_command_destroy(&out);
        } else {
                ck_assert_msg(rc == CM_AVRO_ERR_MALFORMED || rc == CM_AVRO_ERR_TRAILING ||
                                  rc == CM_AVRO_ERR_INVALID,
                              "rc %d: %s", rc, err);
                ck_assert_msg(err[0], "error %d without a message", rc);
        }
}

START_TEST(test_decode_random_and_mutated)
{
        const cm_avro_schema_t *e = cm_avro_schema_get(CM_AVRO_SCHEMA_COMMAND);
        unsigned int seed = 4242;
        unsigned char buf[10 + 256];
        buf[0] = 0xC3;
        buf[1] = 0x01;
        for (int i = 0; i < 8; i++)
                buf[2 + i] = (unsigned char)(e->fingerprint >> (8 * i));
        for (int round = 0; round < 4000; round++) {
                size_t n = (size_t)(rand_r(&seed) % 256);
                for (size_t i = 0; i < n; i++) {
                        int r = rand_r(&seed);
                        buf[10 + i] = (r & 3) ? (unsigned char)((r >> 8) % 16)
                                              : (unsigned char)(r >> 8);
                }
                decode_any_outcome(buf, 10 + n);
        }

        /* mutations of a valid Create: most stay structurally plausible */
        cm_command_t c;
        unsigned char *valid;
        size_t len;
        char err[256];
        fill_command(&c, CM_COMMAND_CREATE);
        ck_assert_int_eq(cm_command_encode(&c, &valid, &len, err, sizeof(err)), 0);
        unsigned char *m = malloc(len);
        for (int round = 0; round < 4000; round++) {
                memcpy(m, valid, len);
                int flips = 1 + rand_r(&seed) % 4;
                for (int k = 0; k < flips; k++) {
                        size_t at = 10 + (size_t)rand_r(&seed) % (len - 10);
                        m[at] = (unsigned char)rand_r(&seed);
                }
                decode_any_outcome(m, len);
        }
        free(m);
        free(valid);
        cm_command_destroy(&c);
}
END_TEST

/* ---- interoperability with python3-avro (an outside producer and consumer) ---- */

static const char *py_script =
    "import avro.schema, avro.io, io, sys, json\n"
    "def crc64(s):\n"
    "    E = 0xc15d213aa4d7a795; fp = E\n"
    "    for b in s.encode():\n"
    "        fp ^= b\n"
    "        for _ in range(8): fp = (fp >> 1) ^ (E if fp & 1 else 0)\n"
    "    return fp\n"
    "s = avro.schema.parse(open(sys.argv[1]).read())\n"
    "fp = crc64(s.canonical_form).to_bytes(8, 'little')\n"
    "if sys.argv[2] == 'read':\n"
    "    data = open(sys.argv[3], 'rb').read()\n"
    "    assert data[:2] == b'\\xc3\\x01' and data[2:10] == fp, 'header'\n"
    "    d = avro.io.DatumReader(s).read(avro.io.BinaryDecoder(io.BytesIO(data[10:])))\n"
    "    print(json.dumps(d, default=lambda b: b.hex()))\n"
    "else:\n"
    "    d = {'id': 'py-1', 'cluster': 'c1', 'actor': {'name': 'py', 'role': 'admin'},\n"
    "         'issuedAt': 1700000000000, 'expectedVersion': 3,\n"
    "         'payload': {'nodes': [{'name': 'n1', 'address': '10.1.1.1',\n"
    "                                'roles': ['worker']}], 'sshKey': b'\\x00\\x01'}}\n"
    "    out = io.BytesIO()\n"
    "    avro.io.DatumWriter(s).write(d, avro.io.BinaryEncoder(out))\n"
    "    sys.stdout.buffer.write(b'\\xc3\\x01' + fp + out.getvalue())\n";

static char *write_temp(const void *data, size_t len)
{
        char *path = strdup("/tmp/test_command_XXXXXX");
        int fd = mkstemp(path);
        ck_assert_msg(fd >= 0, "mkstemp: %s", strerror(errno));
        ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
        close(fd);
        return path;
}

static unsigned char *run_python(const char *args, size_t *outlen)
{
        const char *src = getenv("CM_SOURCE_DIR");
        ck_assert_msg(src && *src, "CM_SOURCE_DIR is not set (run through ctest)");
        char *script = write_temp(py_script, strlen(py_script));
        char cmd[2048];
        snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %s/schemas/avro/Command.avsc %s",
                 script, src, args);
        FILE *p = popen(cmd, "r");
        ck_assert_ptr_nonnull(p);
        unsigned char *out = malloc(65536);
        *outlen = fread(out, 1, 65536, p);
        int st = pclose(p);
        unlink(script);
        free(script);
        ck_assert_msg(st == 0, "python3-avro failed (status %d): %s", st, cmd);
        return out;
}

START_TEST(test_python_reads_our_command)
{
        cm_command_t c;
        unsigned char *buf;
        size_t len, outlen;
        char err[256], args[256];
        fill_command(&c, CM_COMMAND_CREATE);
        ck_assert_int_eq(cm_command_encode(&c, &buf, &len, err, sizeof(err)), 0);
        char *file = write_temp(buf, len);
        snprintf(args, sizeof(args), "read %s", file);
        unsigned char *out = run_python(args, &outlen);
        unlink(file);
        free(file);

        json_error_t jerr;
        json_t *j = json_loadb((const char *)out, outlen, 0, &jerr);
        ck_assert_msg(j, "python output is not JSON: %s: %.*s", jerr.text, (int)outlen,
                      out);
        ck_assert_str_eq(json_string_value(json_object_get(j, "id")), c.id);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "issuedAt")), c.issued_at);
        ck_assert(json_is_null(json_object_get(j, "expectedVersion")));
        json_t *p = json_object_get(j, "payload");
        json_t *spec = json_object_get(p, "spec");
        ck_assert_int_eq(json_integer_value(json_object_get(spec, "sshPort")), 2222);
        ck_assert_str_eq(
            json_string_value(json_object_get(
                json_array_get(json_object_get(spec, "nodes"), 2), "address")),
            "10.0.0.31:2222");
        ck_assert_str_eq(json_string_value(json_array_get(
                             json_object_get(spec, "clusterUpstreamDNS"), 1)),
                         "9.9.9.9");
        ck_assert_str_eq(json_string_value(json_object_get(p, "sshKey")),
                         "00ff10007f80c301");
        json_decref(j);
        free(out);
        free(buf);
        cm_command_destroy(&c);
}
END_TEST

START_TEST(test_we_read_python_command)
{
        size_t len;
        unsigned char *buf = run_python("write", &len);
        cm_command_t out;
        char err[512];
        ck_assert_msg(cm_command_decode(buf, len, &out, err, sizeof(err)) == 0, "%s",
                      err);
        ck_assert_str_eq(out.id, "py-1");
        ck_assert_str_eq(out.actor.name, "py");
        ck_assert_int_eq(out.issued_at, 1700000000000LL);
        ck_assert_int_eq(out.has_expected_version, 1);
        ck_assert_int_eq(out.expected_version, 3);
        ck_assert_int_eq(out.kind, CM_COMMAND_UPDATE);
        ck_assert_uint_eq(out.update.node_count, 1);
        ck_assert_str_eq(out.update.nodes[0].roles[0], "worker");
        assert_bytes_eq(out.update.ssh_key, out.update.ssh_key_len,
                        (const unsigned char *)"\x00\x01", 2);
        cm_command_destroy(&out);
        free(buf);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("command");
        TCase *tc = tcase_create("core");
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_roundtrip_create);
        tcase_add_test(tc, test_roundtrip_update);
        tcase_add_test(tc, test_roundtrip_delete_cancel_import);
        tcase_add_test(tc, test_delete_and_cancel_differ_on_the_wire);
        tcase_add_test(tc, test_encode_errors);
        tcase_add_test(tc, test_decode_rejects_bad_strings);
        tcase_add_test(tc, test_decode_framing_errors);
        tcase_add_test(tc, test_decode_random_and_mutated);
        tcase_add_test(tc, test_python_reads_our_command);
        tcase_add_test(tc, test_we_read_python_command);
        suite_add_tcase(s, tc);
        return cm_check_run(s);
}
