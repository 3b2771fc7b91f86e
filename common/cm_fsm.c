/* cm_fsm.c - DESIGN §3 as one table. Any pair not in it is rejected. */
#include <stdio.h>
#include <string.h>

#include "cm/fsm.h"

#define T(from, trigger, to, effect)                                                        \
        {CM_STATE_##from, CM_TRIGGER_##trigger, CM_STATE_##to, CM_EFFECT_##effect}

static const cm_fsm_transition_t cm_fsm_transitions[] = {
        T(NONE, CREATE, CREATING, JOB_ZKE_UP),
        T(NONE, IMPORT, CONNECTING, JOB_CONNECT),
        T(CREATING, JOB_SUCCEEDED, RUNNING, STORE_RESULT),
        T(CREATING, JOB_FAILED, UNAVAILABLE, RECORD_ERROR),
        T(CONNECTING, JOB_SUCCEEDED, RUNNING, NONE),
        T(CONNECTING, JOB_FAILED, UNAVAILABLE, RECORD_ERROR),
        T(RUNNING, UPDATE, UPDATING, JOB_ZKE_UP),
        T(UNREACHABLE, UPDATE, UPDATING, JOB_ZKE_UP),
        T(UNAVAILABLE, UPDATE, UPDATING, JOB_ZKE_UP),
        T(UPDATING, JOB_SUCCEEDED, RUNNING, STORE_RESULT),
        T(UPDATING, JOB_FAILED, UNAVAILABLE, RECORD_ERROR),
        T(CREATING, CANCEL, CANCELING, SIGNAL_CANCEL),
        T(UPDATING, CANCEL, CANCELING, SIGNAL_CANCEL),
        T(CONNECTING, CANCEL, CANCELING, SIGNAL_CANCEL),
        T(CANCELING, JOB_SUCCEEDED, UNAVAILABLE, NONE), /* finished anyway */
        T(CANCELING, JOB_FAILED, UNAVAILABLE, NONE),    /* canceled */
        T(RUNNING, PROBE_FAILED, UNREACHABLE, NONE),
        T(UNREACHABLE, PROBE_SUCCEEDED, RUNNING, NONE),
        T(RUNNING, DELETE, DELETING, JOB_ZKE_REMOVE),
        T(UNREACHABLE, DELETE, DELETING, JOB_ZKE_REMOVE),
        T(UNAVAILABLE, DELETE, DELETING, JOB_ZKE_REMOVE),
        T(DELETING, JOB_SUCCEEDED, DELETED, NONE),
        T(DELETING, JOB_FAILED, UNAVAILABLE, RECORD_ERROR),
};
#undef T
#define CM_FSM_COUNT (sizeof(cm_fsm_transitions) / sizeof(cm_fsm_transitions[0]))

static const char *const cm_state_names[CM_STATE__COUNT] = {
        [CM_STATE_NONE] = "",
        [CM_STATE_CREATING] = "Creating",
        [CM_STATE_CONNECTING] = "Connecting",
        [CM_STATE_UPDATING] = "Updating",
        [CM_STATE_CANCELING] = "Canceling",
        [CM_STATE_UNAVAILABLE] = "Unavailable",
        [CM_STATE_DELETING] = "Deleting",
        [CM_STATE_RUNNING] = "Running",
        [CM_STATE_UNREACHABLE] = "Unreachable",
        [CM_STATE_DELETED] = "Deleted",
};

static const struct {
        const char *name;       /* trigger */
        const char *event;      /* event type published */
        const char *verb;       /* rejection: cluster "x" can't be <verb> while <state> */
} cm_trigger_info[CM_TRIGGER__COUNT] = {
        [CM_TRIGGER_CREATE] = {"Create", "CreateRequested", "created"},
        [CM_TRIGGER_IMPORT] = {"Import", "ImportRequested", "imported"},
        [CM_TRIGGER_UPDATE] = {"Update", "UpdateRequested", "updated"},
        [CM_TRIGGER_DELETE] = {"Delete", "DeleteRequested", "deleted"},
        [CM_TRIGGER_CANCEL] = {"Cancel", "CancelRequested", "canceled"},
        [CM_TRIGGER_JOB_SUCCEEDED] = {"JobSucceeded", "JobSucceeded", "marked job-succeeded"},
        [CM_TRIGGER_JOB_FAILED] = {"JobFailed", "JobFailed", "marked job-failed"},
        [CM_TRIGGER_PROBE_FAILED] = {"ProbeFailed", "ProbeFailed", "marked unreachable"},
        [CM_TRIGGER_PROBE_SUCCEEDED] = {"ProbeSucceeded", "ProbeSucceeded", "marked reachable"},
};

const char *cm_state_name(cm_state_t s)
{
        return s >= 0 && s < CM_STATE__COUNT ? cm_state_names[s] : "?";
}

cm_state_t cm_state_parse(const char *name)
{
        if (!name)
                return CM_STATE_NONE;
        for (int s = CM_STATE_NONE + 1; s < CM_STATE__COUNT; s++)
                if (strcmp(cm_state_names[s], name) == 0)
                        return (cm_state_t)s;
        return CM_STATE_NONE;
}

int cm_state_is_ready(cm_state_t s)
{
        return s == CM_STATE_RUNNING || s == CM_STATE_UNREACHABLE;
}

const char *cm_trigger_name(cm_trigger_t t)
{
        return t >= 0 && t < CM_TRIGGER__COUNT ? cm_trigger_info[t].name : "?";
}

const char *cm_fsm_event_type(cm_trigger_t t)
{
        return t >= 0 && t < CM_TRIGGER__COUNT ? cm_trigger_info[t].event : "?";
}

const cm_fsm_transition_t *cm_fsm_table(size_t *count)
{
        *count = CM_FSM_COUNT;
        return cm_fsm_transitions;
}

const cm_fsm_transition_t *cm_fsm_apply(cm_state_t from, cm_trigger_t trigger,
                                        const char *cluster, char *errstr, size_t errstr_size)
{
        int starts = trigger == CM_TRIGGER_CREATE || trigger == CM_TRIGGER_IMPORT;
        if (from == CM_STATE_DELETED)
                from = CM_STATE_NONE; /* a deleted name can be used again */
        for (size_t i = 0; i < CM_FSM_COUNT; i++)
                if (cm_fsm_transitions[i].from == from && cm_fsm_transitions[i].trigger == trigger)
                        return &cm_fsm_transitions[i];
        if (starts && from != CM_STATE_NONE)
                snprintf(errstr, errstr_size, "duplicate cluster \"%s\"", cluster);
        else if (from == CM_STATE_NONE)
                snprintf(errstr, errstr_size, "cluster \"%s\" doesn't exist", cluster);
        else
                snprintf(errstr, errstr_size, "cluster \"%s\" can't be %s while %s", cluster,
                         cm_trigger_name(trigger)[0] ? cm_trigger_info[trigger].verb : "?",
                         cm_state_name(from));
        return NULL;
}
