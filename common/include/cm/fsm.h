/*
 * cm/fsm.h - the cluster state machine of DESIGN §3, as one table (common/cm_fsm.c).
 *
 * The worker runs every command and every job outcome through cm_fsm_apply() inside the
 * transaction that holds the cluster's row lock; nothing else decides a state change.
 * Everything here is pure and thread-safe.
 */
#ifndef CM_FSM_H
#define CM_FSM_H

#include <stddef.h>

typedef enum {
        CM_STATE_NONE = 0, /* no such cluster (never created) */
        CM_STATE_CREATING,
        CM_STATE_CONNECTING,
        CM_STATE_UPDATING,
        CM_STATE_CANCELING,
        CM_STATE_UNAVAILABLE,
        CM_STATE_DELETING,
        CM_STATE_RUNNING,
        CM_STATE_UNREACHABLE,
        CM_STATE_DELETED, /* terminal: out of the views; the name may be used again */
        CM_STATE__COUNT
} cm_state_t;

typedef enum {
        CM_TRIGGER_CREATE = 0,
        CM_TRIGGER_IMPORT,
        CM_TRIGGER_UPDATE,
        CM_TRIGGER_DELETE,
        CM_TRIGGER_CANCEL,
        CM_TRIGGER_JOB_SUCCEEDED,
        CM_TRIGGER_JOB_FAILED,   /* includes "canceled" and "max attempts reached" */
        CM_TRIGGER_PROBE_FAILED,
        CM_TRIGGER_PROBE_SUCCEEDED,
        CM_TRIGGER__COUNT
} cm_trigger_t;

/* What the worker must do besides writing the new state (same transaction). */
typedef enum {
        CM_EFFECT_NONE = 0,
        CM_EFFECT_JOB_ZKE_UP,      /* queue job zke-up (create, or update with new nodes) */
        CM_EFFECT_JOB_CONNECT,     /* queue job connect (import) */
        CM_EFFECT_JOB_ZKE_REMOVE,  /* queue job zke-remove (imported clusters: no remote work) */
        CM_EFFECT_SIGNAL_CANCEL,   /* set cancel_requested on the cluster's running job */
        CM_EFFECT_STORE_RESULT,    /* store the job's kubeconfig (sealed) and certificates */
        CM_EFFECT_RECORD_ERROR,    /* store the job's error as last_error */
} cm_effect_t;

typedef struct cm_fsm_transition_s {
        cm_state_t from;
        cm_trigger_t trigger;
        cm_state_t to;
        cm_effect_t effect;
} cm_fsm_transition_t;

/* "Creating", "Running", ... ("" for CM_STATE_NONE). Static storage. */
const char *cm_state_name(cm_state_t s);
/* Parses a state name; returns CM_STATE_NONE for NULL, "" or an unknown name. */
cm_state_t cm_state_parse(const char *name);
/* 1 for Running and Unreachable (the ready view), 0 otherwise. */
int cm_state_is_ready(cm_state_t s);
/* "Create", "JobSucceeded", ... Static storage. */
const char *cm_trigger_name(cm_trigger_t t);
/*
 * The event type a transition publishes: "CreateRequested", "ImportRequested",
 * "UpdateRequested", "DeleteRequested", "CancelRequested", "JobSucceeded", "JobFailed",
 * "ProbeFailed", "ProbeSucceeded". Rejections publish CM_FSM_REJECTED_EVENT.
 */
const char *cm_fsm_event_type(cm_trigger_t t);
#define CM_FSM_REJECTED_EVENT "CommandRejected"

/*
 * Looks up (from, trigger). On success returns the transition (static storage). Otherwise
 * returns NULL and writes the rejection message of DESIGN §3 for cluster into errstr:
 *   cluster "prod" can't be updated while Creating
 *   cluster "x" doesn't exist                (update/delete/cancel on NONE or DELETED)
 *   duplicate cluster "x"                    (create/import on an existing cluster)
 * A Deleted cluster counts as absent: Create and Import start it again from NONE.
 */
const cm_fsm_transition_t *cm_fsm_apply(cm_state_t from, cm_trigger_t trigger,
                                        const char *cluster, char *errstr, size_t errstr_size);

/* The whole table (for documentation and tests); *count receives its length. */
const cm_fsm_transition_t *cm_fsm_table(size_t *count);

#endif
