/*
 * fuzz_avro - the three decoders of what travels on Kafka: cm_command_decode
 * (cm.commands), cm_cluster_event_decode (cm.events), cm_job_progress_decode
 * (cm.progress).
 *
 * Input: the first byte picks what the rest is. 0, 1, 2: the body of a Command,
 * ClusterEvent or JobProgress, given the current header (C3 01 + the schema's
 * fingerprint) so the fuzzer spends its time in the body and the seeds survive a schema
 * change of fingerprint; anything else: a whole message (header included), given to each
 * decoder. Whatever decodes must encode again and decode to an equal record.
 */
#include <string.h>

#include "cm/avro.h"
#include "cm/command.h"
#include "cm/event.h"
#include "cm/progress.h"
#include "fuzz.h"

static void fuzz_command(const uint8_t *m, size_t len)
{
        cm_command_t c, again;
        unsigned char *buf;
        size_t blen;
        char err[1024];
        if (cm_command_decode(m, len, &c, err, sizeof(err)) != 0) {
                FUZZ_CHECK(err[0], "Command refused without a message");
                return;
        }
        FUZZ_CHECK(cm_command_encode(&c, &buf, &blen, err, sizeof(err)) == 0,
                   "a decoded Command does not encode: %s", err);
        FUZZ_CHECK(cm_command_decode(buf, blen, &again, err, sizeof(err)) == 0,
                   "a re-encoded Command does not decode: %s", err);
        FUZZ_CHECK(strcmp(c.id, again.id) == 0 && c.kind == again.kind &&
                       strcmp(c.cluster, again.cluster) == 0,
                   "the Command changed");
        if (c.kind == CM_COMMAND_CREATE)
                FUZZ_CHECK(cm_spec_equal(&c.create.spec, &again.create.spec),
                           "the spec changed");
        if (c.kind == CM_COMMAND_UPDATE)
                FUZZ_CHECK(cm_nodes_equal(c.update.nodes, c.update.node_count,
                                          again.update.nodes, again.update.node_count),
                           "the nodes changed");
        free(buf);
        cm_command_destroy(&again);
        cm_command_destroy(&c);
}

static void fuzz_event(const uint8_t *m, size_t len)
{
        cm_cluster_event_t ev, again;
        unsigned char *buf;
        size_t blen;
        char err[1024];
        if (cm_cluster_event_decode(m, len, &ev, err, sizeof(err)) != 0) {
                FUZZ_CHECK(err[0], "ClusterEvent refused without a message");
                return;
        }
        FUZZ_CHECK(cm_cluster_event_encode(&ev, &buf, &blen, err, sizeof(err)) == 0,
                   "a decoded ClusterEvent does not encode: %s", err);
        FUZZ_CHECK(cm_cluster_event_decode(buf, blen, &again, err, sizeof(err)) == 0,
                   "a re-encoded ClusterEvent does not decode: %s", err);
        FUZZ_CHECK(ev.seq == again.seq && strcmp(ev.type, again.type) == 0 &&
                       (ev.spec == NULL) == (again.spec == NULL),
                   "the ClusterEvent changed");
        if (ev.spec)
                FUZZ_CHECK(cm_spec_equal(ev.spec, again.spec), "the spec changed");
        free(buf);
        cm_cluster_event_destroy(&again);
        cm_cluster_event_destroy(&ev);
}

static void fuzz_progress(const uint8_t *m, size_t len)
{
        cm_job_progress_t p, again;
        unsigned char *buf;
        size_t blen;
        char err[1024];
        if (cm_job_progress_decode(m, len, &p, err, sizeof(err)) != 0) {
                FUZZ_CHECK(err[0], "JobProgress refused without a message");
                return;
        }
        FUZZ_CHECK(cm_job_progress_encode(&p, &buf, &blen, err, sizeof(err)) == 0,
                   "a decoded JobProgress does not encode: %s", err);
        FUZZ_CHECK(cm_job_progress_decode(buf, blen, &again, err, sizeof(err)) == 0,
                   "a re-encoded JobProgress does not decode: %s", err);
        FUZZ_CHECK(p.line_count == again.line_count && p.attempt == again.attempt,
                   "the JobProgress changed");
        for (size_t i = 0; i < p.line_count; i++)
                FUZZ_CHECK(strcmp(p.lines[i], again.lines[i]) == 0, "line %zu changed",
                           i);
        free(buf);
        cm_job_progress_destroy(&again);
        cm_job_progress_destroy(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const cm_avro_schema_id_t ids[3] = {CM_AVRO_SCHEMA_COMMAND,
                                                   CM_AVRO_SCHEMA_CLUSTER_EVENT,
                                                   CM_AVRO_SCHEMA_JOB_PROGRESS};
        void (*const decoders[3])(const uint8_t *, size_t) = {fuzz_command, fuzz_event,
                                                              fuzz_progress};
        if (size == 0)
                return 0;
        if (data[0] > 2) {
                for (int i = 0; i < 3; i++)
                        decoders[i](data + 1, size - 1);
                return 0;
        }
        const cm_avro_schema_t *s = cm_avro_schema_get(ids[data[0]]);
        FUZZ_CHECK(s, "the registry did not build");
        unsigned char *m = malloc(CM_AVRO_HEADER_LEN + size - 1);
        m[0] = CM_AVRO_MAGIC0;
        m[1] = CM_AVRO_MAGIC1;
        for (int i = 0; i < 8; i++)
                m[2 + i] = (unsigned char)(s->fingerprint >> (8 * i));
        memcpy(m + CM_AVRO_HEADER_LEN, data + 1, size - 1);
        decoders[data[0]](m, CM_AVRO_HEADER_LEN + size - 1);
        free(m);
        return 0;
}
