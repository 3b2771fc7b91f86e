/*
 * worker_dlq.c - messages the worker cannot use go to cm.commands.dlq unchanged, with
 * headers saying why and where they came from, so one bad message never stops the worker
 * and an operator can inspect (and replay) it.
 *
 * A message the DLQ cannot hold (over the producer's or the broker's size limit) is
 * dead-lettered without its value, with cm-value-omitted giving its size: it stays
 * readable at cm-source-topic/partition/offset. Retrying it unchanged would stop the
 * partition for good.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/avro.h"
#include "cm/log.h"
#include "cm/service.h"
#include "worker.h"

#define WORKER_DLQ_MAX_HEADERS 64

const char *worker_dlq_code(int avro_err)
{
        switch (avro_err) {
        case CM_AVRO_ERR_TOO_SHORT:
                return "too-short";
        case CM_AVRO_ERR_BAD_MAGIC:
                return "bad-magic";
        case CM_AVRO_ERR_UNKNOWN_FP:
                return "unknown-fingerprint";
        case CM_AVRO_ERR_WRONG_SCHEMA:
                return "wrong-schema";
        case CM_AVRO_ERR_MALFORMED:
                return "malformed";
        case CM_AVRO_ERR_TRAILING:
                return "trailing-bytes";
        case CM_AVRO_ERR_INVALID:
                return "invalid-field";
        case CM_AVRO_ERR_NOMEM:
                return "out-of-memory";
        default:
                return "decode-error";
        }
}

int worker_dlq_send(worker_t *w, const cm_kafka_message_t *m, const char *code,
                    const char *error)
{
        cm_kafka_header_t h[WORKER_DLQ_MAX_HEADERS];
        size_t n = 0, orig = cm_kafka_message_header_cnt(m), total = m->key_len;
        char part[16], off[24], err[512], size[24];
        int delay_ms = 200, omit = 0;

        /* The original headers first, ours last (the last header of a name wins). */
        for (size_t i = 0; i < orig && n < WORKER_DLQ_MAX_HEADERS - 5; i++) {
                const void *v;
                size_t vl;
                if (cm_kafka_message_header_at(m, i, &h[n].name, &v, &vl) == 0) {
                        h[n].value = v;
                        h[n].value_len = vl;
                        total += strlen(h[n].name) + vl;
                        n++;
                }
        }
        /* room for our headers and the record's framing under message.max.bytes */
        total += strlen(error) + strlen(code) + strlen(m->topic) + 1024;
        omit = m->value_len + total > WORKER_COMMAND_MAX_BYTES;
        snprintf(part, sizeof(part), "%d", (int)m->partition);
        snprintf(off, sizeof(off), "%lld", (long long)m->offset);
        h[n++] = (cm_kafka_header_t){"cm-error", error, strlen(error)};
        h[n++] = (cm_kafka_header_t){"cm-error-code", code, strlen(code)};
        h[n++] = (cm_kafka_header_t){"cm-source-topic", m->topic, strlen(m->topic)};
        h[n++] = (cm_kafka_header_t){"cm-source-partition", part, strlen(part)};
        h[n++] = (cm_kafka_header_t){"cm-source-offset", off, strlen(off)};
        snprintf(size, sizeof(size), "%zu", m->value_len);
        h[n] = (cm_kafka_header_t){"cm-value-omitted", size, strlen(size)};

        for (;;) {
                cm_kafka_err_t e = cm_kafka_produce_sync(
                    w->producer, w->conf->kafka.dlq_topic, m->key, m->key_len,
                    omit ? NULL : m->value, omit ? 0 : m->value_len, h, n + (size_t)omit,
                    w->conf->kafka.message_timeout_ms + 5000, NULL, NULL, err,
                    sizeof(err));
                if (e == CM_KAFKA_OK)
                        break;
                if (!omit && strstr(err, "too large")) { /* the DLQ's limit is lower */
                        omit = 1;
                        continue;
                }
                cm_log_warn("cannot dead-letter a message; retrying", "topic",
                            w->conf->kafka.dlq_topic, "partition", part, "offset", off,
                            "error", err);
                if (cm_service_stopping())
                        return -1;
                cm_service_sleep_ms(delay_ms);
                delay_ms = delay_ms < 5000 ? delay_ms * 2 : 5000;
        }
        atomic_fetch_add(&w->metrics.dead_lettered, 1);
        cm_log_warn("message dead-lettered", "topic", m->topic, "partition", part,
                    "offset", off, "code", code, "error", error, "dlq",
                    w->conf->kafka.dlq_topic);
        return 0;
}
