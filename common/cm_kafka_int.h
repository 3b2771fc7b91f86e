/*
 * cm_kafka_int.h - what cm_kafka.c (shared part, producer) and cm_kafka_consumer.c share.
 * Private to libcm: not installed, not for services.
 */
#ifndef CM_KAFKA_INT_H
#define CM_KAFKA_INT_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "cm/kafka.h"

/* snprintf into errstr if it is not NULL. */
void cm_kafka_set_err_(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* rd_kafka_conf_set with "kafka: name=\"value\": reason" on error; 0 or -1. */
int cm_kafka_conf_set_(rd_kafka_conf_t *rc, const char *name, const char *value,
                       char *errstr, size_t errstr_size);
int cm_kafka_conf_set_int_(rd_kafka_conf_t *rc, const char *name, int value, char *errstr,
                           size_t errstr_size);

/* A conf with bootstrap servers, client id and the log/error callbacks (caller owns it).
 */
rd_kafka_conf_t *cm_kafka_conf_base_(const cm_kafka_conf_t *kc, char *errstr,
                                     size_t errstr_size);

/* The metadata readiness probe behind cm_kafka_{producer,consumer}_ready(). */
cm_kafka_err_t cm_kafka_ready_rk_(rd_kafka_t *rk, const char *topic, int timeout_ms,
                                  char *errstr, size_t errstr_size);

/* The partition count of topic (metadata round trip); *cnt 0 unless CM_KAFKA_OK. */
cm_kafka_err_t cm_kafka_partition_count_rk_(rd_kafka_t *rk, const char *topic,
                                            int timeout_ms, int32_t *cnt, char *errstr,
                                            size_t errstr_size);

#endif
