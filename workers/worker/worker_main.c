/*
 * cm-worker: the command processor, outbox relay, job runner and prober of DESIGN §2.
 * This file starts the process: configuration, PostgreSQL (waited for, then migrated), the
 * Kafka clients and the health endpoints, and stops it cleanly on SIGTERM/SIGINT.
 */
#include <stdio.h>

#include "cm/kafka.h"
#include "cm/log.h"
#include "cm/service.h"

int main(int argc, char **argv)
{
        const char *config_path;
        int rc = cm_service_parse_args(argc, argv, "cm-worker", &config_path);
        if (rc)
                return rc == 1 ? 0 : rc;

        char err[512];
        cm_service_t svc;
        cm_kafka_producer_t *producer = NULL;
        rc = 1;
        if (cm_service_init(&svc, "worker", config_path, err, sizeof(err))) {
                fprintf(stderr, "cm-worker: %s\n", err);
                goto out;
        }
        cm_kafka_conf_t kc;
        cm_kafka_conf_from_config(&kc, &svc.conf, NULL);
        if (!(producer = cm_kafka_producer_new(&kc, NULL, NULL, err, sizeof(err)))) {
                cm_log_error("cannot create the Kafka producer", "error", err);
                goto out;
        }
        svc.ready_producer = producer;
        if (cm_service_serve_health(&svc, svc.conf.health.listen, err, sizeof(err))) {
                cm_log_error("cannot serve health endpoints", "error", err);
                goto out;
        }
        int db = cm_service_connect_db(&svc, err, sizeof(err));
        if (db < 0) {
                cm_log_error("cannot prepare the database", "error", err);
                goto out;
        }
        if (db == 0)
                cm_log_info("worker started");
        while (!cm_service_stopping())
                cm_service_sleep_ms(1000);
        cm_log_info("worker stopping");
        rc = 0;
out:
        cm_health_destroy(svc.health); /* no readiness check may use the producer now */
        svc.health = NULL;
        cm_kafka_producer_destroy(producer, 5000);
        cm_service_destroy(&svc);
        return rc;
}
