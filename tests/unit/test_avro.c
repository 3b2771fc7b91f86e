/*
 * test_avro.c - canonical form, fingerprints, registry and single-object framing
 * (cm/avro.h).
 *
 * The canonical forms are checked against Apache Avro's own test vectors and against
 * Debian's python3-avro; the fingerprints against a bitwise CRC-64-AVRO written here from
 * the spec's pseudo-code, independently of the table-driven one in libcm.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cm/avro.h"
#include "cm/embedded.h"
#include "../check_main.h"

/* ---- helpers ---- */

/* The spec's pseudo-code, one bit at a time: no table. */
static uint64_t crc64_bitwise(const char *s)
{
        const uint64_t EMPTY = 0xc15d213aa4d7a795ULL;
        uint64_t fp = EMPTY;

        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                fp ^= *p;
                for (int k = 0; k < 8; k++)
                        fp = (fp & 1) ? (fp >> 1) ^ EMPTY : fp >> 1;
        }
        return fp;
}

static const char *env_dir(const char *name)
{
        const char *d = getenv(name);
        ck_assert_msg(d && *d, "%s is not set (run the suite through ctest)", name);
        return d;
}

static char *read_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        char *buf = NULL;
        size_t len = 0;

        ck_assert_msg(f, "cannot open %s: %s", path, strerror(errno));
        FILE *mem = open_memstream(&buf, &len);
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                fwrite(chunk, 1, n, mem);
        fclose(f);
        fclose(mem);
        return buf;
}

static char *canon(const char *json)
{
        char err[256] = "";
        char *c = cm_avro_canonical_form(json, strlen(json), err, sizeof(err));
        ck_assert_msg(c, "canonical form of %s failed: %s", json, err);
        return c;
}

/* ---- Apache Avro test vectors ---- */

typedef struct vector_s {
        char *input;
        char *canonical;
        char *fingerprint; /* NULL when the vector gives none */
        int number;
} vector_t;

static void vector_run(const vector_t *v)
{
        char *c = canon(v->input);
        ck_assert_msg(strcmp(c, v->canonical) == 0,
                      "vector %03d: input %s\n got %s\nwant %s", v->number, v->input, c,
                      v->canonical);
        if (v->fingerprint) {
                int64_t want = strtoll(v->fingerprint, NULL, 10);
                int64_t got = (int64_t)cm_avro_crc64(c, strlen(c));
                ck_assert_msg(got == want,
                              "vector %03d: fingerprint %" PRId64 ", want %" PRId64,
                              v->number, got, want);
                ck_assert_msg((int64_t)crc64_bitwise(c) == want,
                              "vector %03d: bitwise fingerprint differs", v->number);
        }
        free(c);
}

static char *strip_nl(char *s)
{
        size_t n = strlen(s);
        while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
                s[--n] = '\0';
        return s;
}

START_TEST(test_schema_test_vectors)
{
        char path[1024];
        snprintf(path, sizeof(path), "%s/testdata/avro-schema-tests.txt",
                 env_dir("CM_SHARED_DIR"));
        FILE *f = fopen(path, "r");
        ck_assert_msg(f, "test vectors missing: %s: %s", path, strerror(errno));

        char *line = NULL;
        size_t cap = 0;
        vector_t v = {0};
        int count = 0, with_fp = 0;
        while (getline(&line, &cap, f) > 0) {
                strip_nl(line);
                if (strncmp(line, "<<INPUT", 7) == 0) {
                        if (v.input) {
                                vector_run(&v);
                                with_fp += v.fingerprint != NULL;
                                free(v.input), free(v.canonical), free(v.fingerprint);
                        }
                        memset(&v, 0, sizeof(v));
                        v.number = count++;
                        if (line[7] == ' ') {
                                v.input = strdup(line + 8);
                        } else { /* multi-line, up to a line "INPUT" */
                                char *buf = NULL;
                                size_t len = 0;
                                FILE *mem = open_memstream(&buf, &len);
                                int closed = 0;
                                while (getline(&line, &cap, f) > 0) {
                                        if (strcmp(strip_nl(line), "INPUT") == 0) {
                                                closed = 1;
                                                break;
                                        }
                                        fprintf(mem, "%s\n", line);
                                }
                                fclose(mem);
                                ck_assert_msg(closed, "vector %d: INPUT block not closed",
                                              v.number);
                                v.input = buf;
                        }
                } else if (strncmp(line, "<<canonical ", 12) == 0) {
                        v.canonical = strdup(line + 12);
                } else if (strncmp(line, "<<fingerprint ", 14) == 0) {
                        v.fingerprint = strdup(line + 14);
                }
        }
        if (v.input) {
                vector_run(&v);
                with_fp += v.fingerprint != NULL;
                free(v.input), free(v.canonical), free(v.fingerprint);
        }
        free(line);
        fclose(f);
        ck_assert_msg(count == 34, "parsed %d vectors, the file has 34 (000..033)",
                      count);
        ck_assert_int_eq(with_fp, 26);
}
END_TEST

/* ---- our schemas against python3-avro ---- */

static char *python_canonical(const char *file)
{
        char cmd[2048], *out = NULL;
        size_t cap = 0;
        snprintf(
            cmd, sizeof(cmd),
            "/usr/bin/python3 -c 'import avro.schema,sys; "
            "print(avro.schema.parse(open(sys.argv[1]).read()).canonical_form)' '%s'",
            file);
        FILE *p = popen(cmd, "r");
        ck_assert_msg(p, "popen python3: %s", strerror(errno));
        ssize_t n = getline(&out, &cap, p);
        int st = pclose(p);
        ck_assert_msg(n > 0 && st == 0,
                      "python3-avro failed on %s (status %d): is python3-avro installed?",
                      file, st);
        return strip_nl(out);
}

START_TEST(test_schemas_match_python_avro)
{
        const char *src = env_dir("CM_SOURCE_DIR");
        int avsc = 0;

        for (size_t i = 0; i < cm_embedded_file_count; i++) {
                const cm_embedded_file_t *ef = &cm_embedded_files[i];
                if (strncmp(ef->path, "avro/", 5) != 0)
                        continue;
                avsc++;
                char path[1024];
                snprintf(path, sizeof(path), "%s/schemas/%s", src, ef->path);
                char *text = read_file(path);
                ck_assert_msg(strcmp(text, (const char *)ef->data) == 0,
                              "%s: embedded copy differs from the source (rebuild)",
                              path);
                char *py = python_canonical(path);
                char *ours = canon(text);
                ck_assert_msg(strcmp(ours, py) == 0, "%s:\n ours   %s\n python %s",
                              ef->path, ours, py);

                /* Every .avsc is in the registry, with that form and its fingerprint. */
                const cm_avro_schema_t *e = NULL;
                for (int id = 0; id < CM_AVRO_SCHEMA__COUNT; id++)
                        if (strcmp(cm_avro_schema_get(id)->path, ef->path) == 0)
                                e = cm_avro_schema_get(id);
                ck_assert_msg(e, "%s is not in the registry", ef->path);
                ck_assert_str_eq(e->canonical, py);
                ck_assert_msg(e->fingerprint == crc64_bitwise(py),
                              "%s: fingerprint 0x%016" PRIx64 ", bitwise 0x%016" PRIx64,
                              ef->path, e->fingerprint, crc64_bitwise(py));
                ck_assert_ptr_eq(cm_avro_schema_by_fingerprint(e->fingerprint), e);
                free(text);
                free(py);
                free(ours);
        }
        ck_assert_int_eq(avsc, CM_AVRO_SCHEMA__COUNT);
}
END_TEST

/* docs/avro.md lists every fingerprint for outside producers: it must stay true. */
START_TEST(test_doc_lists_fingerprints)
{
        char path[1024];
        snprintf(path, sizeof(path), "%s/docs/avro.md", env_dir("CM_SOURCE_DIR"));
        char *doc = read_file(path);
        for (int id = 0; id < CM_AVRO_SCHEMA__COUNT; id++) {
                const cm_avro_schema_t *e = cm_avro_schema_get(id);
                char row[256];
                snprintf(row, sizeof(row),
                         "| %s | `0x%016" PRIx64 "` | %" PRId64 " | `C3 01", e->fullname,
                         e->fingerprint, (int64_t)e->fingerprint);
                ck_assert_msg(strstr(doc, row), "docs/avro.md lacks the row \"%s ...\"",
                              row);
        }
        free(doc);
}
END_TEST

/* ---- canonical form details ---- */

START_TEST(test_canonical_rules)
{
        struct {
                const char *in, *want;
        } cases[] = {
            /* the spec reduces annotated primitives; python3-avro 1.11.1 does not */
            {"{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}", "\"long\""},
            {"{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":4}",
             "\"bytes\""},
            {"{\"type\":\"fixed\",\"name\":\"d\",\"size\":016,\"logicalType\":\"x\"}",
             NULL},
            {"{\"type\":\"fixed\",\"name\":\"d\",\"size\":16,\"logicalType\":"
             "\"duration\"}",
             "{\"name\":\"d\",\"type\":\"fixed\",\"size\":16}"},
            /* namespace inheritance, dotted names, references */
            {"{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a.b\",\"fields\":["
             "{\"name\":\"x\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":"
             "[\"A\"]}},"
             "{\"name\":\"y\",\"type\":\"E\"},"
             "{\"name\":\"z\",\"type\":{\"type\":\"record\",\"name\":\"c.S\","
             "\"fields\":[{\"name\":\"w\",\"type\":{\"type\":\"fixed\",\"name\":\"F\","
             "\"size\":2}}]}},"
             "{\"name\":\"v\",\"type\":{\"type\":\"array\",\"items\":\"c.F\"}}]}",
             "{\"name\":\"a.b.R\",\"type\":\"record\",\"fields\":["
             "{\"name\":\"x\",\"type\":{\"name\":\"a.b.E\",\"type\":\"enum\",\"symbols\":"
             "[\"A\"]}},"
             "{\"name\":\"y\",\"type\":\"a.b.E\"},"
             "{\"name\":\"z\",\"type\":{\"name\":\"c.S\",\"type\":\"record\",\"fields\":"
             "[{\"name\":\"w\",\"type\":{\"name\":\"c.F\",\"type\":\"fixed\",\"size\":2}}"
             "]}},"
             "{\"name\":\"v\",\"type\":{\"type\":\"array\",\"items\":\"c.F\"}}]}"},
            /* an empty namespace puts a name back in the null namespace */
            {"{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"n\",\"fields\":[{"
             "\"name\":"
             "\"f\",\"type\":{\"type\":\"record\",\"name\":\"S\",\"namespace\":\"\","
             "\"fields\":[]}}]}",
             "{\"name\":\"n.R\",\"type\":\"record\",\"fields\":[{\"name\":\"f\",\"type\":"
             "{\"name\":\"S\",\"type\":\"record\",\"fields\":[]}}]}"},
            /* STRINGS: escapes become UTF-8; WHITESPACE removed */
            {" { \"type\" : \"enum\" , \"name\" : \"\\u0045\" , \"symbols\" : "
             "[ \"\\u00e9\" ] } ",
             "{\"name\":\"E\",\"type\":\"enum\",\"symbols\":[\"\xc3\xa9\"]}"},
            {"{\"type\":\"map\",\"values\":{\"type\":\"int\",\"doc\":\"d\"}}",
             "{\"type\":\"map\",\"values\":\"int\"}"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char err[256] = "";
                char *c = cm_avro_canonical_form(cases[i].in, strlen(cases[i].in), err,
                                                 sizeof(err));
                if (!cases[i].want) { /* 016 is not JSON */
                        ck_assert_ptr_null(c);
                        ck_assert_msg(strstr(err, "schema JSON"), "error: %s", err);
                        continue;
                }
                ck_assert_msg(c, "case %zu: %s", i, err);
                ck_assert_msg(strcmp(c, cases[i].want) == 0, "case %zu\n got %s\nwant %s",
                              i, c, cases[i].want);
                free(c);
        }
}
END_TEST

START_TEST(test_canonical_errors)
{
        struct {
                const char *in, *needle;
        } cases[] = {
            {"{\"type\":\"record\",\"fields\":[]}", "record without a string \"name\""},
            {"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"type\":\"int\"}]}",
             "record \"R\": field 0 has no string \"name\""},
            {"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"f\"}]}",
             "record \"R\": field \"f\" has no \"type\""},
            {"{\"name\":\"R\"}", "without \"type\""},
            {"{\"type\":\"array\"}", "array without \"items\""},
            {"{\"type\":\"fixed\",\"name\":\"F\",\"size\":\"2\"}",
             "fixed \"F\": \"size\" must be an integer"},
            {"42", "not a JSON number"},
            {"{\"type\":", "schema JSON"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char err[256] = "";
                char *c = cm_avro_canonical_form(cases[i].in, strlen(cases[i].in), err,
                                                 sizeof(err));
                ck_assert_msg(!c, "case %zu accepted: %s", i, c);
                ck_assert_msg(strstr(err, cases[i].needle),
                              "case %zu: error \"%s\" lacks \"%s\"", i, err,
                              cases[i].needle);
        }
}
END_TEST

START_TEST(test_crc64)
{
        ck_assert_uint_eq(cm_avro_crc64("", 0), CM_AVRO_CRC64_EMPTY);
        ck_assert_uint_eq(cm_avro_crc64("", 0), 0xc15d213aa4d7a795ULL);
        /* "null" from the spec vectors: 7195948357588979594 */
        ck_assert_uint_eq(cm_avro_crc64("\"null\"", 6), 7195948357588979594ULL);
        char buf[256];
        for (int i = 0; i < 255; i++)
                buf[i] = (char)(i + 1);
        buf[255] = '\0';
        for (size_t n = 0; n < 256; n++) {
                char tmp[256];
                memcpy(tmp, buf, n);
                tmp[n] = '\0';
                ck_assert_uint_eq(cm_avro_crc64(tmp, n), crc64_bitwise(tmp));
        }
}
END_TEST

/* ---- nested copies of shared records cannot drift ---- */

/* The first definition ({"name": fullname, "type": "record", ...}) anywhere in j. */
static json_t *find_definition(json_t *j, const char *fullname)
{
        if (json_is_object(j)) {
                json_t *name = json_object_get(j, "name");
                if (json_is_string(name) &&
                    strcmp(json_string_value(name), fullname) == 0 &&
                    json_object_get(j, "fields"))
                        return j;
                const char *k;
                json_t *v;
                json_object_foreach(j, k, v)
                {
                        json_t *r = find_definition(v, fullname);
                        if (r)
                                return r;
                }
        } else if (json_is_array(j)) {
                size_t i;
                json_t *v;
                json_array_foreach(j, i, v)
                {
                        json_t *r = find_definition(v, fullname);
                        if (r)
                                return r;
                }
        }
        return NULL;
}

static void assert_nested_copy(cm_avro_schema_id_t outer, cm_avro_schema_id_t inner)
{
        const cm_avro_schema_t *o = cm_avro_schema_get(outer),
                               *i = cm_avro_schema_get(inner);
        json_error_t jerr;
        json_t *root = json_loads(o->canonical, 0, &jerr);
        ck_assert_msg(root, "%s canonical form is not JSON: %s", o->fullname, jerr.text);
        json_t *def = find_definition(root, i->fullname);
        ck_assert_msg(def, "%s has no definition of %s", o->fullname, i->fullname);
        char *s = json_dumps(def, JSON_COMPACT | JSON_PRESERVE_ORDER);
        ck_assert_msg(strcmp(s, i->canonical) == 0,
                      "%s inside %s has drifted from %s:\n inner %s\n file  %s",
                      i->fullname, o->fullname, i->path, s, i->canonical);
        free(s);
        json_decref(root);
}

START_TEST(test_nested_copies_match)
{
        assert_nested_copy(CM_AVRO_SCHEMA_COMMAND, CM_AVRO_SCHEMA_CLUSTER_SPEC);
        assert_nested_copy(CM_AVRO_SCHEMA_COMMAND, CM_AVRO_SCHEMA_NODE);
        assert_nested_copy(CM_AVRO_SCHEMA_COMMAND, CM_AVRO_SCHEMA_ACTOR);
        assert_nested_copy(CM_AVRO_SCHEMA_CLUSTER_EVENT, CM_AVRO_SCHEMA_CLUSTER_SPEC);
        assert_nested_copy(CM_AVRO_SCHEMA_CLUSTER_EVENT, CM_AVRO_SCHEMA_NODE);
        assert_nested_copy(CM_AVRO_SCHEMA_CLUSTER_EVENT, CM_AVRO_SCHEMA_ACTOR);
        assert_nested_copy(CM_AVRO_SCHEMA_CLUSTER_SPEC, CM_AVRO_SCHEMA_NODE);
}
END_TEST

/* ---- registry ---- */

START_TEST(test_registry)
{
        char err[256] = "";
        ck_assert_msg(cm_avro_registry_init(err, sizeof(err)) == 0, "%s", err);
        const char *names[] = {"cm.Actor",   "cm.Node",         "cm.ClusterSpec",
                               "cm.Command", "cm.ClusterEvent", "cm.JobProgress"};
        for (int id = 0; id < CM_AVRO_SCHEMA__COUNT; id++) {
                const cm_avro_schema_t *e = cm_avro_schema_get(id);
                ck_assert_ptr_nonnull(e);
                ck_assert_int_eq(e->id, id);
                ck_assert_str_eq(e->fullname, names[id]);
                ck_assert_ptr_nonnull(e->schema);
                ck_assert_ptr_nonnull(e->iface);
                ck_assert_ptr_eq(cm_avro_schema_by_fingerprint(e->fingerprint), e);
                ck_assert_ptr_eq(cm_embedded_find(e->path)->data, (const void *)e->json);
        }
        ck_assert_ptr_null(cm_avro_schema_get(CM_AVRO_SCHEMA__COUNT));
        ck_assert_ptr_null(cm_avro_schema_get(CM_AVRO_SCHEMA_ANY));
        ck_assert_ptr_null(cm_avro_schema_by_fingerprint(0x0123456789abcdefULL));
}
END_TEST

/* ---- single-object encoding ---- */

static void make_actor(avro_value_t *v, const char *name, const char *role)
{
        char err[256] = "";
        ck_assert_int_eq(cm_avro_value_new(CM_AVRO_SCHEMA_ACTOR, v, err, sizeof(err)), 0);
        ck_assert_int_eq(cm_avro_set_string(v, "name", name, err, sizeof(err)), 0);
        ck_assert_int_eq(cm_avro_set_string(v, "role", role, err, sizeof(err)), 0);
}

static void encode_actor(const char *name, const char *role, unsigned char **buf,
                         size_t *len)
{
        avro_value_t v;
        char err[256] = "";
        make_actor(&v, name, role);
        ck_assert_msg(
            cm_avro_encode(CM_AVRO_SCHEMA_ACTOR, &v, buf, len, err, sizeof(err)) == 0,
            "%s", err);
        avro_value_decref(&v);
}

START_TEST(test_encode_layout)
{
        unsigned char *buf;
        size_t len;
        encode_actor("a", "bc", &buf, &len);
        const cm_avro_schema_t *e = cm_avro_schema_get(CM_AVRO_SCHEMA_ACTOR);
        ck_assert_uint_eq(len, 10 + 5);
        ck_assert_uint_eq(buf[0], 0xC3);
        ck_assert_uint_eq(buf[1], 0x01);
        for (int i = 0; i < 8; i++) /* little-endian fingerprint */
                ck_assert_uint_eq(buf[2 + i], (e->fingerprint >> (8 * i)) & 0xff);
        /* body: zigzag length 1 -> 0x02, "a", length 2 -> 0x04, "bc" */
        const unsigned char body[] = {0x02, 'a', 0x04, 'b', 'c'};
        ck_assert_int_eq(memcmp(buf + 10, body, sizeof(body)), 0);

        avro_value_t out;
        const cm_avro_schema_t *got = NULL;
        char err[256] = "", *s;
        ck_assert_msg(cm_avro_decode(buf, len, CM_AVRO_SCHEMA_ANY, &out, &got, err,
                                     sizeof(err)) == 0,
                      "%s", err);
        ck_assert_ptr_eq(got, e);
        ck_assert_int_eq(cm_avro_get_string(&out, "role", &s, err, sizeof(err)), 0);
        ck_assert_str_eq(s, "bc");
        free(s);
        avro_value_decref(&out);
        free(buf);
}
END_TEST

START_TEST(test_encode_wrong_schema)
{
        avro_value_t v;
        unsigned char *buf = (unsigned char *)"x";
        size_t len = 9;
        char err[256] = "";
        make_actor(&v, "a", "b");
        ck_assert_int_eq(
            cm_avro_encode(CM_AVRO_SCHEMA_NODE, &v, &buf, &len, err, sizeof(err)),
            CM_AVRO_ERR_WRONG_SCHEMA);
        ck_assert_ptr_null(buf);
        ck_assert_uint_eq(len, 0);
        ck_assert_msg(strstr(err, "not a cm.Node"), "%s", err);
        avro_value_decref(&v);
}
END_TEST

static int decode_err(const unsigned char *buf, size_t len, cm_avro_schema_id_t expect,
                      char *err, size_t errsz)
{
        avro_value_t v;
        int rc = cm_avro_decode(buf, len, expect, &v, NULL, err, errsz);
        if (rc == 0)
                avro_value_decref(&v);
        return rc;
}

START_TEST(test_decode_header_errors)
{
        unsigned char *buf;
        size_t len;
        char err[512];
        encode_actor("a", "b", &buf, &len);

        for (size_t n = 0; n < 10; n++) {
                ck_assert_int_eq(decode_err(buf, n, CM_AVRO_SCHEMA_ANY, err, sizeof(err)),
                                 CM_AVRO_ERR_TOO_SHORT);
                char want[64];
                snprintf(want, sizeof(want), "message too short: %zu bytes", n);
                ck_assert_msg(strstr(err, want), "%s", err);
        }
        ck_assert_int_eq(decode_err(NULL, 0, CM_AVRO_SCHEMA_ANY, err, sizeof(err)),
                         CM_AVRO_ERR_TOO_SHORT);

        const unsigned char json[] = "{\"cluster\":\"prod\"}";
        ck_assert_int_eq(
            decode_err(json, sizeof(json) - 1, CM_AVRO_SCHEMA_ANY, err, sizeof(err)),
            CM_AVRO_ERR_BAD_MAGIC);
        ck_assert_msg(strstr(err, "bad magic") && strstr(err, "0x7B 0x22"), "%s", err);
        buf[1] = 0x02;
        ck_assert_int_eq(decode_err(buf, len, CM_AVRO_SCHEMA_ANY, err, sizeof(err)),
                         CM_AVRO_ERR_BAD_MAGIC);
        ck_assert_msg(strstr(err, "0xC3 0x02"), "%s", err);
        buf[1] = 0x01;

        /* unknown fingerprint: printed in hex, as the 64-bit value */
        for (int i = 0; i < 8; i++)
                buf[2 + i] = (unsigned char)(0xefcdab8967452301ULL >> (8 * i));
        ck_assert_int_eq(decode_err(buf, len, CM_AVRO_SCHEMA_ANY, err, sizeof(err)),
                         CM_AVRO_ERR_UNKNOWN_FP);
        ck_assert_msg(strstr(err, "unknown schema fingerprint 0xefcdab8967452301"), "%s",
                      err);
        uint64_t fp;
        ck_assert_int_eq(cm_avro_peek_fingerprint(buf, len, &fp, err, sizeof(err)), 0);
        ck_assert_uint_eq(fp, 0xefcdab8967452301ULL);
        free(buf);

        /* a known schema that is not the expected one */
        encode_actor("a", "b", &buf, &len);
        ck_assert_int_eq(decode_err(buf, len, CM_AVRO_SCHEMA_COMMAND, err, sizeof(err)),
                         CM_AVRO_ERR_WRONG_SCHEMA);
        ck_assert_msg(strstr(err, "message is a cm.Actor") &&
                          strstr(err, "expected a cm.Command"),
                      "%s", err);
        free(buf);
}
END_TEST

START_TEST(test_decode_body_errors)
{
        unsigned char *buf;
        size_t len;
        char err[512];
        encode_actor("alice", "admin", &buf, &len);

        /* every truncation of the body */
        for (size_t n = 10; n < len; n++) {
                ck_assert_int_eq(
                    decode_err(buf, n, CM_AVRO_SCHEMA_ACTOR, err, sizeof(err)),
                    CM_AVRO_ERR_MALFORMED);
                ck_assert_msg(strstr(err, "cm.Actor: truncated body"), "len %zu: %s", n,
                              err);
        }
        ck_assert_msg(strstr(err, "field role"), "%s", err);

        /* trailing bytes */
        unsigned char *longer = malloc(len + 3);
        memcpy(longer, buf, len);
        memcpy(longer + len, "xyz", 3);
        ck_assert_int_eq(
            decode_err(longer, len + 3, CM_AVRO_SCHEMA_ACTOR, err, sizeof(err)),
            CM_AVRO_ERR_TRAILING);
        ck_assert_msg(strstr(err, "3 bytes left after a complete body of"), "%s", err);
        free(longer);

        /* negative string length (zigzag 0x01 = -1) */
        unsigned char neg[32];
        memcpy(neg, buf, 10);
        neg[10] = 0x01;
        ck_assert_int_eq(decode_err(neg, 11, CM_AVRO_SCHEMA_ACTOR, err, sizeof(err)),
                         CM_AVRO_ERR_MALFORMED);
        ck_assert_msg(strstr(err, "field name: string: negative length -1"), "%s", err);

        /* a huge length must not be allocated */
        const unsigned char huge[] = {0xfe, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0x7f};
        memcpy(neg + 10, huge, sizeof(huge));
        ck_assert_int_eq(
            decode_err(neg, 10 + sizeof(huge), CM_AVRO_SCHEMA_ACTOR, err, sizeof(err)),
            CM_AVRO_ERR_MALFORMED);
        ck_assert_msg(strstr(err, "only 0 left"), "%s", err);

        /* a varint that never ends */
        memset(neg + 10, 0xff, 11);
        ck_assert_int_eq(decode_err(neg, 16, CM_AVRO_SCHEMA_ACTOR, err, sizeof(err)),
                         CM_AVRO_ERR_MALFORMED);
        ck_assert_msg(strstr(err, "varint cut off"), "%s", err);
        unsigned char big[32];
        memcpy(big, buf, 10);
        memset(big + 10, 0xff, 12);
        ck_assert_int_eq(decode_err(big, 22, CM_AVRO_SCHEMA_ACTOR, err, sizeof(err)),
                         CM_AVRO_ERR_MALFORMED);
        ck_assert_msg(strstr(err, "varint longer than 10 bytes"), "%s", err);
        free(buf);
}
END_TEST

START_TEST(test_validate_union_and_arrays)
{
        const cm_avro_schema_t *jp = cm_avro_schema_get(CM_AVRO_SCHEMA_JOB_PROGRESS);
        char err[512];
        /* cluster "c", jobId "j", kind "k", attempt 1, step "s", node branch 5 (bad) */
        const unsigned char bad_branch[] = {2, 'c', 2, 'j', 2, 'k', 2, 2, 's', 10};
        ck_assert_int_eq(cm_avro_validate_body(jp->schema, bad_branch, sizeof(bad_branch),
                                               err, sizeof(err)),
                         CM_AVRO_ERR_MALFORMED);
        ck_assert_msg(strstr(err, "field node: union branch 5 out of range 0..1"), "%s",
                      err);

        /* ... node null, status "ok", at 0, lines: block of -1 item with size 2: "x" */
        const unsigned char blocks[] = {2, 'c', 2,   'j', 2, 'k', 2, 2,   's', 0,
                                        4, 'o', 'k', 0,   1, 4,   2, 'x', 0};
        ck_assert_msg(cm_avro_validate_body(jp->schema, blocks, sizeof(blocks), err,
                                            sizeof(err)) == 0,
                      "%s", err);
        unsigned char wrong_size[sizeof(blocks)];
        memcpy(wrong_size, blocks, sizeof(blocks));
        wrong_size[15] = 2; /* block size 1, but the item takes 2 */
        ck_assert_int_eq(cm_avro_validate_body(jp->schema, wrong_size, sizeof(wrong_size),
                                               err, sizeof(err)),
                         CM_AVRO_ERR_MALFORMED);
        ck_assert_msg(strstr(err, "block size 1 but its items take 2"), "%s", err);

        /* an array claiming 2^62 items */
        const unsigned char many[] = {2,    'c',  2,    'j',  2,    'k',  2,    2,
                                      's',  0,    4,    'o',  'k',  0,    0x80, 0x80,
                                      0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40};
        ck_assert_int_eq(
            cm_avro_validate_body(jp->schema, many, sizeof(many), err, sizeof(err)),
            CM_AVRO_ERR_MALFORMED);
        ck_assert_msg(strstr(err, "field lines"), "%s", err);

        /* an int beyond 32 bits */
        const unsigned char wide[] = {2,    'c',  2,    'j',  2,   'k',
                                      0x80, 0x80, 0x80, 0x80, 0x20};
        ck_assert_int_eq(
            cm_avro_validate_body(jp->schema, wide, sizeof(wide), err, sizeof(err)),
            CM_AVRO_ERR_MALFORMED);
        ck_assert_msg(
            strstr(err, "field attempt: int value 4294967296 out of 32-bit range"), "%s",
            err);
}
END_TEST

START_TEST(test_decode_random_bodies)
{
        char err[512];
        unsigned int seed = 12345;
        unsigned char buf[10 + 128];
        int ok = 0;

        for (int id = 0; id < CM_AVRO_SCHEMA__COUNT; id++) {
                const cm_avro_schema_t *e = cm_avro_schema_get(id);
                buf[0] = 0xC3;
                buf[1] = 0x01;
                for (int i = 0; i < 8; i++)
                        buf[2 + i] = (unsigned char)(e->fingerprint >> (8 * i));
                for (int round = 0; round < 1500; round++) {
                        size_t n = (size_t)(rand_r(&seed) % 128);
                        for (size_t i = 0; i < n; i++) {
                                /* small values make plausible lengths and branches */
                                int r = rand_r(&seed);
                                buf[10 + i] = (r & 1) ? (unsigned char)(r >> 8)
                                                      : (unsigned char)((r >> 8) % 8);
                        }
                        avro_value_t v;
                        int rc =
                            cm_avro_decode(buf, 10 + n, id, &v, NULL, err, sizeof(err));
                        if (rc == 0) {
                                ok++;
                                avro_value_decref(&v);
                        } else {
                                ck_assert_msg(rc == CM_AVRO_ERR_MALFORMED ||
                                                  rc == CM_AVRO_ERR_TRAILING,
                                              "rc %d: %s", rc, err);
                        }
                }
        }
        (void)ok; /* some random bodies are valid data: that is fine */
}
END_TEST

/* ---- threads share the registry ---- */

static void *thread_roundtrip(void *arg)
{
        (void)arg;
        for (int i = 0; i < 200; i++) {
                unsigned char *buf;
                size_t len;
                avro_value_t v, out;
                char err[256] = "";
                if (cm_avro_value_new(CM_AVRO_SCHEMA_ACTOR, &v, err, sizeof(err)) ||
                    cm_avro_set_string(&v, "name", "n", err, sizeof(err)) ||
                    cm_avro_set_string(&v, "role", "r", err, sizeof(err)))
                        return (void *)1;
                int rc = cm_avro_encode(CM_AVRO_SCHEMA_ACTOR, &v, &buf, &len, err,
                                        sizeof(err));
                avro_value_decref(&v);
                if (rc)
                        return (void *)2;
                rc = cm_avro_decode(buf, len, CM_AVRO_SCHEMA_ACTOR, &out, NULL, err,
                                    sizeof(err));
                free(buf);
                if (rc)
                        return (void *)3;
                avro_value_decref(&out);
        }
        return NULL;
}

START_TEST(test_threads)
{
        pthread_t t[8];
        for (int i = 0; i < 8; i++) /* first use of the registry is concurrent */
                ck_assert_int_eq(pthread_create(&t[i], NULL, thread_roundtrip, NULL), 0);
        for (int i = 0; i < 8; i++) {
                void *res;
                pthread_join(t[i], &res);
                ck_assert_ptr_null(res);
        }
}
END_TEST

START_TEST(test_err2str_and_prefix)
{
        ck_assert_str_eq(cm_avro_err2str(CM_AVRO_ERR_BAD_MAGIC), "bad magic");
        ck_assert_str_eq(cm_avro_err2str(CM_AVRO_ERR_UNKNOWN_FP),
                         "unknown schema fingerprint");
        ck_assert_str_eq(cm_avro_err2str(42), "unknown error");
        char err[16] = "name: bad";
        cm_avro_errprefix(err, sizeof(err), "spec.");
        ck_assert_str_eq(err, "spec.name: bad");
        cm_avro_errprefix(err, sizeof(err), "payload.");
        ck_assert_str_eq(err, "payload.spec.na"); /* truncated, still terminated */
}
END_TEST

int main(void)
{
        Suite *s = suite_create("avro");
        TCase *tc = tcase_create("core");
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_schema_test_vectors);
        tcase_add_test(tc, test_schemas_match_python_avro);
        tcase_add_test(tc, test_doc_lists_fingerprints);
        tcase_add_test(tc, test_canonical_rules);
        tcase_add_test(tc, test_canonical_errors);
        tcase_add_test(tc, test_crc64);
        tcase_add_test(tc, test_nested_copies_match);
        tcase_add_test(tc, test_registry);
        tcase_add_test(tc, test_encode_layout);
        tcase_add_test(tc, test_encode_wrong_schema);
        tcase_add_test(tc, test_decode_header_errors);
        tcase_add_test(tc, test_decode_body_errors);
        tcase_add_test(tc, test_validate_union_and_arrays);
        tcase_add_test(tc, test_decode_random_bodies);
        tcase_add_test(tc, test_threads);
        tcase_add_test(tc, test_err2str_and_prefix);
        suite_add_tcase(s, tc);
        return cm_check_run(s);
}
