/*
 * worker.h - internals of cm-worker (DESIGN §2-§4, docs/command-path.md "cm-worker" and
 * "Events").
 *
 *   worker_main.c        process start: config, keys, Kafka clients, health, threads
 *   worker_commands.c    cm.commands -> one PostgreSQL transaction -> offset commit
 *   worker_transition.c  THE transition function (commands now; job outcomes, probes)
 *   worker_jobs.c        job rows: queue zke-up / connect / zke-remove, signal cancel
 *   worker_outbox.c      the relay: outbox / rejection_outbox -> cm.events
 *   worker_dlq.c         undecodable or unappliable messages -> cm.commands.dlq
 *   worker_sql.c         every SQL statement, prepared by name
 *   worker_runner.c      the job runner: claim with a lease, run, apply the outcome
 *   worker_keeper.c      the lease keeper: heartbeat, cancel noticed, lost leases
 *   worker_runs.c        job_runs: the end of each run; release of a job for retry
 *   worker_connect.c     job kind connect (import): kubeconfig, then GET /version
 *   worker_zke.c         job kinds zke-up and zke-remove (workers/zke over SSH)
 *   worker_prober.c      the prober: Running <-> Unreachable
 *
 * Threads: the main thread consumes commands with w->pg; the relay thread publishes with
 * its own connection (w->relay_pg); job.runners runner threads and one lease keeper
 * (worker_runner.c, worker_keeper.c) and one prober thread (with its probing threads)
 * each have their own connection. The producer, the consumer's assignment and the metrics
 * are shared (thread-safe).
 */
#ifndef CM_WORKER_H
#define CM_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cm/command.h"
#include "cm/config.h"
#include "cm/fsm.h"
#include "cm/kafka.h"
#include "cm/kubeconfig.h"
#include "cm/pg.h"
#include "cm/seal.h"
#include "cm/spec.h"

/* The relay wakes on NOTIFY cm_outbox and, whatever happens to notifications, this often.
 */
#define WORKER_RELAY_POLL_MS 1000
/* Rows one relay pass publishes per cluster (and rejections per pass). */
#define WORKER_RELAY_BATCH 200
/* Retries of a transaction that failed with a unique violation or an unexpected error
 * before the command is dead-lettered (lost connections and serialization failures are
 * retried until they succeed or the process stops). */
#define WORKER_MAX_HARD_RETRIES 5
/* Largest message taken from cm.commands: librdkafka's default message.max.bytes, which
 * every cm producer (cm-api's too) keeps, so a larger one was not written by cm. It is
 * dead-lettered ("too-large") without being decoded. */
#define WORKER_COMMAND_MAX_BYTES 1000000
/* advisory lock class of the relay: pg_try_advisory_xact_lock(this, hashtext(cluster)) */
#define WORKER_RELAY_LOCK_CLASS 6516082 /* 0x636d72, "cmr" */
#define WORKER_NOTIFY_CHANNEL   "cm_outbox"

typedef struct worker_metrics_s {
        atomic_ulong applied;            /* commands accepted by the state machine */
        atomic_ulong rejected;           /* CommandRejected (state conflicts) */
        atomic_ulong invalid;            /* CommandInvalid (validation) */
        atomic_ulong duplicate;          /* command ids already applied: skipped */
        atomic_ulong dead_lettered;      /* messages sent to cm.commands.dlq */
        atomic_ulong relayed;            /* outbox events published to cm.events */
        atomic_ulong relayed_rejections; /* rejection_outbox events published */
        atomic_ulong tx_retries;         /* transactions retried */
        atomic_ulong jobs_claimed;       /* claims (a resumed job counts again) */
        atomic_ulong jobs_resumed;       /* claims of a job whose lease had expired */
        atomic_ulong jobs_succeeded;
        atomic_ulong jobs_failed;
        atomic_ulong jobs_canceled;
        atomic_ulong jobs_abandoned;       /* runs given up: lease lost, or stopping */
        atomic_ulong probes_ok;            /* prober: probes answered */
        atomic_ulong probes_failed;        /* prober: probes not answered */
        atomic_ulong probe_transitions;    /* ProbeFailed / ProbeSucceeded applied */
        atomic_ulong probe_rounds;         /* prober rounds completed */
        atomic_ulong probe_round_ms;       /* the last round: list, probe and apply */
        atomic_ulong probe_round_clusters; /* clusters the last round probed */
} worker_metrics_t;

typedef struct worker_runners_s worker_runners_t; /* worker_runner.c */
typedef struct worker_prober_s worker_prober_t;   /* worker_prober.c */

typedef struct worker_s {
        const cm_config_t *conf;
        char id[160]; /* "<host>:<pid>": job owner, actor of system events */
        cm_pg_t *pg;  /* the command thread's connection (borrowed from the service) */
        cm_pg_t *relay_pg;             /* owned; used by the relay thread only */
        cm_seal_keypair_t *keys;       /* owned */
        cm_kafka_producer_t *producer; /* owned; delivery reports: worker_outbox.c */
        cm_kafka_consumer_t *consumer; /* owned */
        pthread_t relay_thread;
        int relay_started;
        worker_runners_t *runners; /* owned; NULL until started */
        worker_prober_t *prober;   /* owned; NULL until started */
        worker_metrics_t metrics;
} worker_t;

/* Outcome of a transaction attempt. */
typedef enum {
        WORKER_OK = 0,
        WORKER_ERR_RETRY, /* lost connection, serialization failure, deadlock, unique
                             violation: roll back and run the whole transaction again */
        WORKER_ERR_FAIL,  /* anything else (message in errstr) */
} worker_err_t;

/* Classifies a cm_pg_t failure (uses cm_pg_sqlstate). */
worker_err_t worker_pg_err(cm_pg_t *pg, cm_pg_err_t e);

/* ---------------------------------------------------------------- worker_sql.c */

/* Statement names; the SQL text of each is in worker_sql.c. */
#define WSQL_STATE_LOCK        "w_state_lock"
#define WSQL_CMD_SEEN          "w_cmd_seen"
#define WSQL_CMD_RECORD        "w_cmd_record"
#define WSQL_STATE_INSERT      "w_state_insert"
#define WSQL_STATE_RESTART     "w_state_restart"
#define WSQL_STATE_UPDATE      "w_state_update"
#define WSQL_OUTBOX_APPEND     "w_outbox_append"
#define WSQL_REJECTION_APPEND  "w_rejection_append"
#define WSQL_NOTIFY            "w_notify"
#define WSQL_JOB_INSERT        "w_job_insert"
#define WSQL_JOB_SIGNAL_CANCEL "w_job_signal_cancel"
#define WSQL_RELAY_CLUSTERS    "w_relay_clusters"
#define WSQL_RELAY_LOCK        "w_relay_lock"
#define WSQL_RELAY_FETCH       "w_relay_fetch"
#define WSQL_RELAY_MARK        "w_relay_mark"
#define WSQL_REJ_FETCH         "w_rej_fetch"
#define WSQL_REJ_MARK          "w_rej_mark"

/* Registers every statement on pg (prepared now if connected, else on connect). */
cm_pg_err_t worker_sql_prepare(cm_pg_t *pg, char *errstr, size_t errstr_size);

/*
 * Runs statement name with text parameters (NULL = SQL NULL), except those whose bit is
 * set in binary_mask, which are bytea given as (values[i], lengths[i]). Results are text.
 * *res (may be NULL) as cm_pg_exec_prepared.
 */
cm_pg_err_t worker_sql_exec(cm_pg_t *pg, const char *name, int nparams,
                            const char *const *values, const int *lengths,
                            unsigned binary_mask, PGresult **res, char *errstr,
                            size_t errstr_size);

/* ---------------------------------------------------------------- worker_transition.c */

/* The cluster_state row as locked for a transition. */
typedef struct worker_row_s {
        int exists;       /* 0: no row (state NONE) */
        cm_state_t state; /* CM_STATE_NONE when !exists */
        int64_t seq;
        int64_t version;
        int imported;
        int has_ssh_key;
        cm_spec_t spec; /* the stored spec (zeroed when !exists); owned by the row */
} worker_row_t;

/* Releases what row owns. */
void worker_row_clear(worker_row_t *row);

/*
 * SELECT ... FOR UPDATE of the cluster's row inside the caller's transaction. Locking a
 * row this transaction already holds is cheap, so callers that must lock the cluster
 * before another row (the job runner: cluster, then job) call this first and
 * worker_transition_apply() after. *row is filled (caller clears it).
 */
worker_err_t worker_state_lock(cm_pg_t *pg, const char *cluster, worker_row_t *row,
                               char *errstr, size_t errstr_size);

/* What caused a transition: a command (command_id, its actor) or a job (job_id, actor
 * {worker id, "system"}). */
typedef struct worker_cause_s {
        const char *command_id;
        const char *job_id;
        const cm_actor_t *actor;
} worker_cause_t;

/*
 * Validation against the locked row, run after the state machine accepted the trigger
 * and before anything is written. Appends field errors to errs (-> CommandInvalid), or
 * writes a state conflict into conflict (-> CommandRejected) and returns non-zero.
 */
typedef int(worker_validate_fn)(void *opaque, const worker_row_t *row,
                                cm_field_errors_t *errs, char *conflict,
                                size_t conflict_size);

/* What a transition writes besides the state; every pointer is borrowed, NULL = keep. */
typedef struct worker_change_s {
        const cm_spec_t *spec;  /* Create/Import: the whole new spec */
        const cm_node_t *nodes; /* Update: the new node list of the stored spec */
        size_t node_count;
        int replace_nodes;                   /* use nodes/node_count (Update) */
        const unsigned char *ssh_key_sealed; /* stored as received */
        size_t ssh_key_sealed_len;
        const unsigned char *kubeconfig_sealed;
        size_t kubeconfig_sealed_len;
        int imported; /* Create / Import: the row's imported flag */
        int has_expected_version;
        int64_t expected_version;
        /* Job outcomes. */
        const char *error;             /* last_error and the event's error */
        const char *certificates_json; /* public certificates (JSON object text) */
        const unsigned char *certificate_keys_sealed;
        size_t certificate_keys_sealed_len;
        const char *host_keys_json; /* pinned SSH host keys (JSON object text) */
        worker_validate_fn *validate;
        void *validate_opaque;
} worker_change_t;

typedef enum {
        WORKER_TX_APPLIED = 0,
        WORKER_TX_REJECTED, /* state conflict: CommandRejected */
        WORKER_TX_INVALID,  /* validation: CommandInvalid */
} worker_tx_result_t;

typedef struct worker_outcome_s {
        worker_tx_result_t result;
        cm_state_t from;    /* the state before (as stored: Deleted stays Deleted) */
        cm_state_t to;      /* the state after (from, when not applied) */
        int64_t seq;        /* last seq appended (0 when not applied) */
        int events;         /* outbox events appended */
        char job_id[40];    /* the job queued or signaled, "" if none */
        char message[2048]; /* the rejection / validation message */
} worker_outcome_t;

/*
 * THE transition function, inside the caller's open transaction: locks the cluster's
 * row, runs cm_fsm_apply(state, trigger), checks change->expected_version, runs
 * change->validate, then either
 *   - applies: writes cluster_state (state, seq + 1, version + 1, spec, sealed secrets as
 *     given, imported, last_error), appends the event (type cm_fsm_event_type(trigger),
 *     the full current spec, cause, change->error) to outbox, applies the effect (queue a
 *     job, signal cancel) and NOTIFYs cm_outbox. Delete of an imported cluster also
 *     applies JobSucceeded at once (Deleting, then Deleted: two events);
 *   - or rejects: when cause->command_id is set, a CommandRejected / CommandInvalid event
 *     with seq 0 goes to rejection_outbox. Nothing else is written.
 * The caller records applied_commands / the job's final state and commits. Returns
 * WORKER_OK with *out filled, or an error after which the caller rolls back (and, for
 * WORKER_ERR_RETRY, runs its whole transaction again).
 */
worker_err_t worker_transition_apply(worker_t *w, cm_pg_t *pg, const char *cluster,
                                     cm_trigger_t trigger, const worker_cause_t *cause,
                                     const worker_change_t *change, worker_outcome_t *out,
                                     char *errstr, size_t errstr_size);

/* Milliseconds since the Unix epoch; a new lower-case UUID into buf[37]. */
int64_t worker_now_ms(void);
/* Monotonic milliseconds, for durations (lease ages, rounds): no clock change moves
 * them. Thread-safe. */
int64_t worker_mono_ms(void);
void worker_uuid(char buf[37]);

/* ---------------------------------------------------------------- worker_jobs.c */

/*
 * Job payloads (jobs.payload, JSON, no secrets; the runner reads the sealed secrets from
 * cluster_state):
 *   zke-up:     {"reason": "create"|"update", "commandId", "nodes": [...],
 *                "previousNodes": [...] (update)}
 *   connect:    {"reason": "import", "commandId"}
 *   zke-remove: {"reason": "delete", "commandId", "nodes": [...]}
 */
typedef enum {
        WORKER_JOB_ZKE_UP = 0,
        WORKER_JOB_CONNECT,
        WORKER_JOB_ZKE_REMOVE,
} worker_job_kind_t;

/* "zke-up", "connect", "zke-remove" (the jobs.kind values). */
const char *worker_job_kind_name(worker_job_kind_t kind);

/* Inserts a queued job (payload borrowed) and writes its id into job_id[40]. */
worker_err_t worker_job_queue(cm_pg_t *pg, const char *cluster, worker_job_kind_t kind,
                              const json_t *payload, char job_id[40], char *errstr,
                              size_t errstr_size);

/* Sets cancel_requested on the cluster's unfinished job; job_id[40] gets its id ("" if
 * the cluster has none). */
worker_err_t worker_job_signal_cancel(cm_pg_t *pg, const char *cluster, char job_id[40],
                                      char *errstr, size_t errstr_size);

/* ---------------------------------------------------------------- worker_commands.c */

/* Consumes cm.commands until a stop is requested. Returns 0, or -1 if the consumer could
 * not subscribe. */
int worker_commands_run(worker_t *w);

/* ---------------------------------------------------------------- worker_dlq.c */

/*
 * Produces m unchanged (key, value, headers) to the DLQ topic with headers cm-error,
 * cm-error-code, cm-source-topic, cm-source-partition, cm-source-offset, and waits for
 * its delivery, retrying until delivered or a stop is requested. Returns 0 when
 * delivered, -1 when stopping first.
 */
int worker_dlq_send(worker_t *w, const cm_kafka_message_t *m, const char *code,
                    const char *error);

/* The cm-error-code of a decoder error (cm_avro_err_t): "too-short", "bad-magic",
 * "unknown-fingerprint", "wrong-schema", "malformed", "trailing-bytes",
 * "invalid-field", ...; static storage. */
const char *worker_dlq_code(int avro_err);

/* ---------------------------------------------------------------- worker_outbox.c */

/* The producer's delivery callback (events published asynchronously by the relay). */
cm_kafka_delivery_cb_t worker_outbox_delivery_cb;

/* Starts / stops (joins, after cm_service_request_stop) the relay thread. */
int worker_relay_start(worker_t *w, char *errstr, size_t errstr_size);
void worker_relay_join(worker_t *w);

/* /metrics lines of the worker (cm_health_metrics_fn). */
size_t worker_metrics_render(void *opaque, char *buf, size_t size);

/* ---------------------------------------------------------------- worker_runner.c */

/*
 * The job runner (DESIGN §2, §3): job.runners threads, each with its own connection,
 * claim runnable jobs of the kinds this worker runs (FOR UPDATE SKIP LOCKED: queued with
 * not_before <= now(), or running with an expired lease: its worker died), set owner,
 * lease_until and attempt + 1, run them, and apply the outcome through
 * worker_transition_apply() in one transaction with the job row's final state (cluster
 * row locked first, then the job row). One lease keeper thread heartbeats the leases of
 * this worker's running jobs every job.heartbeat_s and polls cancel_requested every
 * WORKER_JOB_POLL_MS; a run whose row was taken by another worker is abandoned.
 */
#define WORKER_JOB_POLL_MS      500  /* cancel_requested polls of the lease keeper */
#define WORKER_JOB_IDLE_MS      1000 /* a runner with nothing to claim waits this long */
#define WORKER_PROGRESS_LINES   20   /* log lines one progress message carries */
#define WORKER_PROGRESS_LINE_SZ 400  /* bytes of one line (longer ones are cut) */

typedef struct worker_slot_s worker_slot_t;

/* A claimed job, as a job kind's run function sees it. */
typedef struct worker_job_s {
        worker_t *w;
        cm_pg_t *pg; /* the runner's connection (reads the job needs; no open tx) */
        char id[40];
        char cluster[256];
        char kind[16];
        int attempt;        /* 1 on the first claim */
        int run;            /* job_runs.run of this claim (1, 2, ... per job) */
        int64_t created_ms; /* jobs.created_at, ms since the epoch */
        json_t *payload;    /* jobs.payload (borrowed) */
        json_t *outcome;    /* set by the run function (jobs.outcome), or NULL */
        /* Set by the run function (malloc'd; the runner frees them): stored with the
         * outcome through worker_change_t, on success and on failure alike (e.g. SSH
         * host keys pinned before a later step failed). NULL: keep the stored value. */
        unsigned char *kubeconfig_sealed;
        size_t kubeconfig_sealed_len;
        char *certificates_json;
        unsigned char *certificate_keys_sealed;
        size_t certificate_keys_sealed_len;
        char *host_keys_json;
        worker_slot_t *slot;
} worker_job_t;

typedef enum {
        WORKER_RUN_SUCCEEDED = 0,
        WORKER_RUN_FAILED,  /* failed for good: JobFailed with the error, no retry */
        WORKER_RUN_RETRY,   /* transient failure: the job is queued again (backoff) and
                               the next claim counts as a new attempt */
        WORKER_RUN_STOPPED, /* stopped as asked: see worker_job_stop_reason() */
} worker_run_t;

typedef enum {
        WORKER_STOP_NONE = 0,
        WORKER_STOP_CANCELED, /* cancel_requested: JobFailed "canceled" */
        WORKER_STOP_LOST,     /* the lease was lost (another worker took the job) */
        WORKER_STOP_SHUTDOWN, /* the process is stopping: the job is released */
} worker_stop_t;

/* Runs job; writes the error of WORKER_RUN_FAILED / _RETRY into error. */
typedef worker_run_t(worker_job_fn)(worker_job_t *job, char *error, size_t error_size);

/* Why job must stop now (cheap: atomics only). Thread-safe. */
worker_stop_t worker_job_stop_reason(const worker_job_t *job);

/* Sleeps up to ms; returns the stop reason early when there is one. */
worker_stop_t worker_job_sleep(const worker_job_t *job, int ms);

/*
 * Publishes a cm.JobProgress message for job on kafka.progress_topic (key: the cluster),
 * without waiting for its delivery. status: started | ok | failed | skipped | canceled;
 * node may be NULL; lines (n of them, at most WORKER_PROGRESS_LINES are sent, each cut
 * to WORKER_PROGRESS_LINE_SZ) must hold no secret.
 */
void worker_job_progress(const worker_job_t *job, const char *step, const char *node,
                         const char *status, const char *const *lines, size_t n);

/* ---------------------------------------------------------------- worker_runs.c */

/*
 * job_runs (schemas/sql/005_job_runs.sql): the claim statement inserts a run's row; these
 * end it (ended_at = now(), how), each only once the run has stopped doing work. how:
 * finished | released | stopped | abandoned | taken-over (see the migration). An end that
 * cannot be written is logged (warning) and the run's ended_at stays NULL, as for a
 * worker that died. Thread-safe for distinct connections.
 */
cm_pg_err_t worker_runs_prepare(cm_pg_t *pg, char *errstr, size_t errstr_size);

/* Ends job's run inside the caller's open transaction (the outcome's: "finished"). */
cm_pg_err_t worker_run_end_tx(cm_pg_t *pg, const worker_job_t *job, const char *how,
                              char *errstr, size_t errstr_size);

/* Ends job's run in a transaction of its own (abandoned, taken-over). */
void worker_run_end(cm_pg_t *pg, const worker_job_t *job, const char *how);

/*
 * Queues job again and ends its run in one statement: a transient failure (delay_ms, the
 * attempt counts: "released") or a stop (at once, the attempt is given back: "stopped").
 * A row no longer this run's is left alone and the run ends "taken-over". error (NULL
 * keeps the job's) becomes jobs.error.
 */
void worker_run_release(cm_pg_t *pg, const worker_job_t *job, int delay_ms,
                        const char *error, int give_back);

/* Starts the runner threads and the lease keeper / stops them (joins, after
 * cm_service_request_stop: running jobs are released for another worker). */
int worker_runner_start(worker_t *w, char *errstr, size_t errstr_size);
void worker_runner_join(worker_t *w);

/* Appends the job and prober counters to a /metrics body; returns the bytes written. */
size_t worker_runner_metrics_render(worker_t *w, char *buf, size_t size);

/* ---------------------------------------------------------------- worker_connect.c */

/*
 * Job kind connect (import): opens cluster_state.kubeconfig_sealed (in memory only),
 * parses it (a kubeconfig that cannot be parsed fails at once, with the parser's
 * message) and probes GET /version with backoff (WORKER_CONNECT_BACKOFF_MIN_MS doubling
 * to _MAX_MS) until it answers (succeeded), the job is canceled, or connect.deadline_s
 * since the job was created passes (failed: "API server did not answer within N s:
 * <last probe error>").
 */
#define WORKER_CONNECT_BACKOFF_MIN_MS 500
#define WORKER_CONNECT_BACKOFF_MAX_MS 5000

worker_run_t worker_connect_run(worker_job_t *job, char *error, size_t error_size);

/* Statement the connect job and the prober read a sealed kubeconfig with (registered on
 * the connection by worker_kubeconfig_prepare). */
#define WSQL_KUBECONFIG "w_kubeconfig"
cm_pg_err_t worker_kubeconfig_prepare(cm_pg_t *pg, char *errstr, size_t errstr_size);

/*
 * Reads, opens and parses the kubeconfig of cluster (cluster_state.kubeconfig_sealed).
 * Returns WORKER_OK with *kc (caller frees: cm_kubeconfig_free); WORKER_ERR_RETRY on a
 * database error; WORKER_ERR_FAIL when there is none or it cannot be opened or parsed
 * (errstr: why, e.g. the parser's message; never a secret).
 */
worker_err_t worker_kubeconfig_load(worker_t *w, cm_pg_t *pg, const char *cluster,
                                    cm_kubeconfig_t **kc, char *errstr,
                                    size_t errstr_size);

/* ---------------------------------------------------------------- worker_zke.c */

/*
 * Job kinds zke-up (reason create | update) and zke-remove (delete): the stored spec (its
 * nodes replaced by the payload's "nodes" when given), "previousNodes" of an update, the
 * sealed SSH key, and on update the certificates with their sealed keys, opened in memory
 * only; the pinned host keys. zke's progress goes to cm.progress (done / changed -> ok,
 * unchanged -> skipped); cancel is worker_job_stop_reason(). On success the kubeconfig
 * and the certificate keys are sealed with this manager's key and stored with the public
 * certificates; the host keys are stored whatever the outcome. Failures (pre-checks,
 * SSH auth, a step's error) are final: JobFailed with zke's message.
 */
#define WSQL_ZKE_LOAD "w_zke_load"
cm_pg_err_t worker_zke_prepare(cm_pg_t *pg, char *errstr, size_t errstr_size);
worker_run_t worker_zke_up_run(worker_job_t *job, char *error, size_t error_size);
worker_run_t worker_zke_remove_run(worker_job_t *job, char *error, size_t error_size);

/* ---------------------------------------------------------------- worker_prober.c */

/*
 * Every probe.interval_s, probes every Running/Unreachable cluster whose name maps (by
 * cm_kafka_partition_for_key) to a partition of kafka.commands_topic assigned to this
 * worker's consumer, probe.parallelism at a time, reusing one cm_probe handle per cluster
 * across rounds; applies ProbeFailed / ProbeSucceeded through the transition function on
 * a change only.
 */
int worker_prober_start(worker_t *w, char *errstr, size_t errstr_size);
void worker_prober_join(worker_t *w);

#endif
