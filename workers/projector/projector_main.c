/*
 * cm-projector: projects cm.events into the read model (DESIGN §2, §5).
 * This file starts the process: configuration, the Kafka consumer (group
 * kafka.projector_group), the health endpoints, PostgreSQL (waited for, then migrated,
 * statements prepared), then runs the projector (projector.c) until SIGTERM/SIGINT, when
 * it finishes the batch in hand and leaves the group.
 */
#include <stdio.h>

#include "cm/kafka.h"
#include "cm/log.h"
#include "cm/service.h"
#include "projector.h"

int main(int argc, char **argv)
{
        const char *config_path;
        int rc = cm_service_parse_args(argc, argv, "cm-projector", &config_path);
        if (rc)
                return rc == 1 ? 0 : rc;

        char err[512];
        cm_service_t svc;
        cm_kafka_consumer_t *consumer = NULL;
        projector_t prj;
        int prj_ready = 0;
        rc = 1;
        if (cm_service_init(&svc, "projector", config_path, err, sizeof(err))) {
                fprintf(stderr, "cm-projector: %s\n", err);
                goto out;
        }
        if (projector_init(&prj, svc.pg, NULL, svc.conf.kafka.events_topic)) {
                cm_log_error("cannot initialize the projector");
                goto out;
        }
        prj_ready = 1;
        cm_kafka_conf_t kc;
        cm_kafka_conf_from_config(&kc, &svc.conf, svc.conf.kafka.projector_group);
        if (!(consumer = cm_kafka_consumer_new(&kc, projector_on_rebalance, &prj, err,
                                               sizeof(err)))) {
                cm_log_error("cannot create the Kafka consumer", "error", err);
                goto out;
        }
        prj.consumer = consumer;
        svc.ready_consumer = consumer;
        svc.ready_topic = svc.conf.kafka.events_topic;
        if (cm_health_add_check(svc.health, "projection", projector_check, &prj)) {
                cm_log_error("cannot register the projection check");
                goto out;
        }
        cm_health_set_metrics(svc.health, projector_metrics, &prj);
        if (cm_service_serve_health(&svc, svc.conf.health.listen, err, sizeof(err))) {
                cm_log_error("cannot serve health endpoints", "error", err);
                goto out;
        }
        int db = cm_service_connect_db(&svc, err, sizeof(err));
        if (db < 0) {
                cm_log_error("cannot prepare the database", "error", err);
                goto out;
        }
        if (db == 0) {
                if (projector_prepare(&prj, err, sizeof(err))) {
                        cm_log_error("cannot prepare the projector's statements", "error",
                                     err);
                        goto out;
                }
                if (projector_subscribe(&prj, err, sizeof(err))) {
                        cm_log_error("cannot subscribe", "topic",
                                     svc.conf.kafka.events_topic, "error", err);
                        goto out;
                }
                cm_log_info("projector started", "topic", svc.conf.kafka.events_topic,
                            "group", svc.conf.kafka.projector_group);
        }
        while (!cm_service_stopping())
                projector_run_once(&prj, 500);
        cm_log_info("projector stopping");
        rc = 0;
out:
        cm_health_destroy(svc.health); /* no readiness check may use the consumer now */
        svc.health = NULL;
        cm_kafka_consumer_destroy(consumer);
        if (prj_ready)
                projector_destroy(&prj);
        cm_service_destroy(&svc);
        return rc;
}
