/*
 * cm-worker: the command processor, outbox relay, job runner and prober of DESIGN §2.
 * This file starts the process: configuration, the seal key pair, PostgreSQL (waited for,
 * then migrated), the Kafka clients and the health endpoints; then the main thread
 * applies commands (worker_commands.c) while the relay thread publishes events
 * (worker_outbox.c), the job runners run jobs (worker_runner.c) and the prober probes
 * clusters (worker_prober.c), until SIGTERM/SIGINT.
 */
#include <stdio.h>
#include <unistd.h>

#include "cm/avro.h"
#include "cm/kafka.h"
#include "cm/log.h"
#include "cm/service.h"
#include "worker.h"

static void worker_set_id(worker_t *w)
{
        char host[128] = "localhost";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        snprintf(w->id, sizeof(w->id), "%s:%d", host, (int)getpid());
}

int main(int argc, char **argv)
{
        const char *config_path;
        int rc = cm_service_parse_args(argc, argv, "cm-worker", &config_path);
        if (rc)
                return rc == 1 ? 0 : rc;

        char err[512];
        cm_service_t svc;
        worker_t w = {0};
        rc = 1;
        if (cm_service_init(&svc, "worker", config_path, err, sizeof(err))) {
                fprintf(stderr, "cm-worker: %s\n", err);
                goto out;
        }
        w.conf = &svc.conf;
        worker_set_id(&w);
        if (cm_avro_registry_init(err, sizeof(err))) {
                cm_log_error("cannot load the Avro schemas", "error", err);
                goto out;
        }
        if (cm_seal_keypair_load(&w.keys, svc.conf.seal.public_key_file,
                                 svc.conf.seal.secret_key_file, err,
                                 sizeof(err)) != CM_SEAL_OK) {
                cm_log_error("cannot load the seal key pair (seal.public_key_file, "
                             "seal.secret_key_file)",
                             "error", err);
                goto out;
        }
        cm_kafka_conf_t kc;
        cm_kafka_conf_from_config(&kc, &svc.conf, NULL);
        kc.client_id = w.id;
        if (!(w.producer = cm_kafka_producer_new(&kc, worker_outbox_delivery_cb, &w, err,
                                                 sizeof(err)))) {
                cm_log_error("cannot create the Kafka producer", "error", err);
                goto out;
        }
        cm_kafka_conf_from_config(&kc, &svc.conf, svc.conf.kafka.worker_group);
        kc.client_id = w.id;
        if (!(w.consumer = cm_kafka_consumer_new(&kc, NULL, NULL, err, sizeof(err)))) {
                cm_log_error("cannot create the Kafka consumer", "error", err);
                goto out;
        }
        svc.ready_producer = w.producer;
        cm_health_set_metrics(svc.health, worker_metrics_render, &w);
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
                w.pg = svc.pg;
                cm_pg_err_t pe = worker_sql_prepare(w.pg, err, sizeof(err));
                if (cm_pg_err_is_bad_statement(pe)) {
                        cm_log_error("cannot prepare the worker's statements", "error",
                                     err);
                        goto out;
                }
                if (worker_relay_start(&w, err, sizeof(err))) {
                        cm_log_error("cannot start the outbox relay", "error", err);
                        goto out;
                }
                if (worker_runner_start(&w, err, sizeof(err))) {
                        cm_log_error("cannot start the job runners", "error", err);
                        goto out;
                }
                if (worker_prober_start(&w, err, sizeof(err))) {
                        cm_log_error("cannot start the prober", "error", err);
                        goto out;
                }
                cm_log_info("worker started", "workerId", w.id, "group",
                            svc.conf.kafka.worker_group, "topic",
                            svc.conf.kafka.commands_topic);
                if (worker_commands_run(&w))
                        goto out;
        }
        cm_log_info("worker stopping");
        rc = 0;
out:
        cm_service_request_stop(); /* the threads end their pass; jobs are released */
        worker_prober_join(&w);
        worker_runner_join(&w);
        worker_relay_join(&w);
        cm_kafka_consumer_destroy(w.consumer);
        cm_health_destroy(svc.health); /* no readiness check may use the producer now */
        svc.health = NULL;
        cm_kafka_producer_destroy(w.producer, 5000);
        cm_seal_keypair_destroy(w.keys);
        cm_service_destroy(&svc);
        return rc;
}
