/*
 * cm_config_keys.c - the only place a configuration key is declared: its section, name,
 * type, default, range or allowed set, and documentation. Loading, type and range checks,
 * the environment overrides and the documented example (config/cm.conf.example) are all
 * driven by this table, so a key cannot be documented but not loaded, or loaded but not
 * documented.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cm_config_int.h"

static const char *const cm_config_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const cm_config_strategies[] = {"roundrobin", "range",
                                                   "cooperative-sticky", NULL};

#define CM_STR(sec, k, def, minlen, doc)                                                 \
        {                                                                                \
#sec, #k, CM_CONFIG_T_STRING, def, 0, minlen, 0, NULL,                   \
                    offsetof(cm_config_t, sec.k), doc                                    \
        }
#define CM_INT(sec, k, def, lo, hi, doc)                                                 \
        {                                                                                \
#sec, #k, CM_CONFIG_T_INT, NULL, def, lo, hi, NULL,                      \
                    offsetof(cm_config_t, sec.k), doc                                    \
        }
#define CM_ENUM(sec, k, def, set, doc)                                                   \
        {                                                                                \
#sec, #k, CM_CONFIG_T_ENUM, def, 0, 0, 0, set,                           \
                    offsetof(cm_config_t, sec.k), doc                                    \
        }

const cm_config_key_t cm_config_keys[] = {
    CM_ENUM(log, level, "info", cm_config_levels, "Minimum level of the lines written."),
    CM_STR(log, component, "", 0,
           "Component name in every log line; empty means the service's own name."),

    CM_STR(kafka, bootstrap_servers, "127.0.0.1:9092", 1,
           "Comma-separated host:port list of the brokers to bootstrap from."),
    CM_STR(kafka, client_id, "cm", 1,
           "client.id sent to the brokers (shows in broker logs and quotas)."),
    CM_ENUM(kafka, assignment_strategy, "roundrobin", cm_config_strategies,
            "Consumer group partition assignment strategy."),
    CM_STR(kafka, commands_topic, "cm.commands", 1,
           "Topic of the commands (Avro cm.Command, keyed by cluster name)."),
    CM_STR(kafka, events_topic, "cm.events", 1,
           "Topic of the cluster events (Avro cm.ClusterEvent)."),
    CM_STR(kafka, progress_topic, "cm.progress", 1,
           "Topic of the job progress (Avro cm.JobProgress)."),
    CM_STR(kafka, dlq_topic, "cm.commands.dlq", 1,
           "Dead-letter topic for commands that cannot be decoded."),
    CM_STR(kafka, worker_group, "cm-worker", 1, "Consumer group of cm-worker."),
    CM_STR(kafka, projector_group, "cm-projector", 1,
           "Consumer group of cm-projector (its offsets live in the database table "
           "projector_offsets, not in the group)."),
    CM_INT(kafka, session_timeout_ms, 10000, 1000, 300000,
           "Consumer group session timeout, in milliseconds."),
    CM_INT(
        kafka, fetch_wait_max_ms, 100, 1, 10000,
        "Longest a consumer's fetch waits at the broker for new messages, in "
        "milliseconds. Kafka answers as soon as data arrives; librdkafka's mock cluster "
        "(cm-devbroker) only after this wait, so it bounds the local stack's latency."),
    CM_INT(kafka, message_timeout_ms, 30000, 1000, 900000,
           "Time a produced message may wait for delivery, in milliseconds."),

    CM_STR(postgres, conninfo, "host=127.0.0.1 port=5432 dbname=cm user=cm", 0,
           "libpq connection string (never logged; may hold a password)."),
    CM_INT(postgres, connect_timeout_s, 5, 1, 300, "Connection timeout, in seconds."),
    CM_INT(postgres, reconnect_min_ms, 100, 10, 60000,
           "First delay before reconnecting after a lost connection, in milliseconds."),
    CM_INT(postgres, reconnect_max_ms, 5000, 100, 600000,
           "Upper bound of the doubling reconnect delay, in milliseconds."),

    CM_STR(api, listen, "127.0.0.1:8080", 1, "host:port cm-api listens on."),
    CM_INT(api, threads, 4, 1, 256, "HTTP worker threads of cm-api."),
    CM_INT(api, max_body_bytes, 1048576, 1024, 67108864,
           "Largest request body accepted, in bytes."),
    CM_INT(api, wait_max_s, 60, 0, 3600,
           "Upper bound of a request's Prefer: wait=N, in seconds (0: never wait)."),
    CM_INT(api, sse_keepalive_s, 15, 1, 300,
           "Interval of the keep-alive comment on an idle event stream (GET "
           "/v1/clusters/{name}/events with Accept: text/event-stream), in seconds; also "
           "how soon a stream whose client left is noticed."),
    CM_INT(api, rate_limit_per_s, 50, 0, 1000000,
           "Requests per second allowed to one API token (or, without a token, to one "
           "client address) on /v1 endpoints; 0 turns rate limiting off. Over the limit: "
           "429 with Retry-After."),
    CM_INT(api, rate_limit_burst, 100, 1, 1000000,
           "Requests one token or address may make at once before the per-second rate "
           "applies (the bucket size)."),

    CM_STR(health, listen, "127.0.0.1:0", 1,
           "host:port of /healthz, /readyz and /metrics of the workers (port 0: any free "
           "port)."),
    CM_INT(health, broker_timeout_ms, 2000, 100, 60000,
           "Time /readyz waits for the brokers' metadata, in milliseconds."),

    CM_STR(seal, public_key_file, ".local/keys/seal.pub", 1,
           "File of the public key secrets are sealed with."),
    CM_STR(seal, secret_key_file, ".local/keys/seal.key", 1,
           "File of the private key that opens sealed secrets (keep it mode 0600)."),

    CM_INT(job, runners, 4, 0, 256,
           "Jobs one cm-worker runs at the same time (one thread and one database "
           "connection each); 0: this worker runs no job (commands, relay and prober "
           "only)."),
    CM_INT(
        job, max_attempts, 3, 1, 100,
        "Attempts of a job (claims: a run cut short by a crashed worker counts) before "
        "it fails."),
    CM_INT(job, lease_s, 30, 2, 3600,
           "A job whose runner has not renewed its lease for this long is taken over, in "
           "seconds."),
    CM_INT(job, heartbeat_s, 5, 1, 600,
           "Interval at which a runner renews its lease, in seconds (below lease_s)."),

    CM_INT(probe, interval_s, 15, 1, 3600,
           "Interval between probes of a cluster, in seconds."),
    CM_INT(probe, timeout_s, 5, 1, 300, "Timeout of one probe, in seconds."),
    CM_INT(probe, parallelism, 16, 1, 256,
           "Clusters one cm-worker probes at the same time."),

    CM_INT(connect, deadline_s, 600, 1, 86400,
           "Time an import may take to reach the API server, in seconds."),

    CM_INT(zke, parallelism, 50, 1, 1000, "Nodes worked on at the same time by one job."),
    CM_INT(zke, command_timeout_s, 600, 10, 86400,
           "Timeout of one remote command on a node, in seconds."),
    CM_INT(zke, connect_timeout_s, 10, 1, 600, "SSH connection timeout, in seconds."),
    CM_STR(zke, node_root, "", 0,
           "Folder on each node under which the plan's absolute paths live, with "
           "{{node_name}} / {{node_address}} filled in; empty: the node's /. For test "
           "rigs where all nodes share one machine."),
};

const size_t cm_config_nkeys = sizeof(cm_config_keys) / sizeof(cm_config_keys[0]);

/* One line about each section, for the example; sections come in the order of the keys.
 */
static const struct {
        const char *name;
        const char *doc;
} cm_config_sections[] = {
    {"log", "Structured logs: JSON lines on stderr."},
    {"kafka", "Kafka brokers, topics and consumer group."},
    {"postgres", "PostgreSQL, the write and read models."},
    {"api", "cm-api, the REST API."},
    {"health", "Health and metrics endpoint of cm-worker and cm-projector."},
    {"seal", "Keys that seal secrets (SSH keys, kubeconfigs)."},
    {"job", "Jobs run by cm-worker (create, update, delete, import)."},
    {"probe", "The prober of running clusters."},
    {"connect", "Import of an existing cluster."},
    {"zke", "The cluster provisioner (SSH to the nodes)."},
};

#define CM_CONFIG_NSECTIONS (sizeof(cm_config_sections) / sizeof(cm_config_sections[0]))

const char *cm_config_section_doc(const char *name)
{
        for (size_t i = 0; i < CM_CONFIG_NSECTIONS; i++)
                if (strcmp(cm_config_sections[i].name, name) == 0)
                        return cm_config_sections[i].doc;
        return "Keys of this section.";
}

void cm_config_allowed_list(const cm_config_key_t *k, char *out, size_t out_size)
{
        size_t len = 0;

        out[0] = '\0';
        for (size_t i = 0; k->allowed[i]; i++) {
                int n = snprintf(out + len, out_size - len, "%s%s", i ? ", " : "",
                                 k->allowed[i]);
                if (n < 0 || (size_t)n >= out_size - len)
                        return;
                len += (size_t)n;
        }
}

void cm_config_env_name(const cm_config_key_t *k, char *out, size_t out_size)
{
        snprintf(out, out_size, "CM_%s_%s", k->section, k->key);
        for (char *p = out; *p; p++)
                if (*p >= 'a' && *p <= 'z')
                        *p = (char)(*p - 'a' + 'A');
}
