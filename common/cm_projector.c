/* cm_projector.c - what one cluster event writes into the read model (cm/projector.h). */
#include "cm/err.h"
#include "cm/projector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm/fsm.h"
#include "cm/spec.h"

/* Milliseconds of 0001-01-01T00:00:00Z and of 10000-01-01T00:00:00Z. */
#define CM_TIME_MIN_MS (-62135596800000LL)
#define CM_TIME_MAX_MS (253402300800000LL)

int cm_time_format_ms(int64_t ms, char *buf, size_t size)
{
        struct tm tm;
        time_t secs;
        int64_t rem;
        int n;

        if (ms < CM_TIME_MIN_MS || ms >= CM_TIME_MAX_MS)
                return -1;
        rem = ms % 1000;
        if (rem < 0)
                rem += 1000;
        secs = (time_t)((ms - rem) / 1000);
        if (!gmtime_r(&secs, &tm))
                return -1;
        n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)rem);
        return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Sets obj[key] = string s when s is not NULL; -1 if s is not UTF-8 (or no memory). */
static int put_str(json_t *obj, const char *key, const char *s)
{
        json_t *v;

        if (!s)
                return 0;
        v = json_string(s);
        return v ? json_object_set_new(obj, key, v) : -1;
}

json_t *cm_cluster_event_to_json(const cm_cluster_event_t *ev)
{
        char at[32];
        json_t *o = json_object(), *actor = json_object(), *spec = NULL;

        if (!o || !actor || cm_time_format_ms(ev->at, at, sizeof(at)))
                goto fail;
        if (put_str(actor, "name", ev->actor.name ? ev->actor.name : "") ||
            put_str(actor, "role", ev->actor.role))
                goto fail;
        if (put_str(o, "cluster", ev->cluster ? ev->cluster : "") ||
            json_object_set_new(o, "seq", json_integer((json_int_t)ev->seq)) ||
            put_str(o, "eventId", ev->event_id ? ev->event_id : "") ||
            put_str(o, "commandId", ev->command_id) || put_str(o, "jobId", ev->job_id) ||
            put_str(o, "type", ev->type ? ev->type : "") ||
            put_str(o, "fromState", ev->from_state) ||
            put_str(o, "toState", ev->to_state) || put_str(o, "at", at))
                goto fail;
        if (json_object_set_new(o, "actor", actor)) {
                actor = NULL;
                goto fail;
        }
        actor = NULL;
        if (ev->spec) {
                spec = cm_spec_to_json(ev->spec);
                if (!spec || json_object_set_new(o, "spec", spec))
                        goto fail;
        }
        if (put_str(o, "error", ev->error))
                goto fail;
        return o;
fail:
        json_decref(actor);
        json_decref(o);
        return NULL;
}

void cm_projection_destroy(cm_projection_t *p)
{
        free(p->spec_json);
        free(p->payload_json);
        memset(p, 0, sizeof(*p));
}

static int rejection_from_event(cm_projection_t *p, const cm_cluster_event_t *ev,
                                char *errstr, size_t errstr_size)
{
        p->kind = CM_PROJECTION_REJECTION;
        if (ev->type && strcmp(ev->type, CM_FSM_REJECTED_EVENT) == 0)
                p->code = CM_PROJECTION_CODE_CONFLICT;
        else if (ev->type && strcmp(ev->type, CM_EVENT_TYPE_INVALID) == 0)
                p->code = CM_PROJECTION_CODE_INVALID;
        else {
                cm_seterr(errstr, errstr_size,
                          "type: \"%s\" with seq 0 (only %s and %s have no place in the "
                          "cluster's sequence)",
                          ev->type ? ev->type : "", CM_FSM_REJECTED_EVENT,
                          CM_EVENT_TYPE_INVALID);
                return -1;
        }
        if (!ev->command_id || !*ev->command_id) {
                cm_seterr(errstr, errstr_size,
                          "commandId: missing in a %s event of cluster \"%s\"", ev->type,
                          ev->cluster);
                return -1;
        }
        p->message = ev->error;
        return 0;
}

static int cluster_from_event(cm_projection_t *p, const cm_cluster_event_t *ev,
                              char *errstr, size_t errstr_size)
{
        cm_state_t to = cm_state_parse(ev->to_state);
        json_t *j;

        p->kind = CM_PROJECTION_CLUSTER;
        if (to == CM_STATE_NONE) {
                cm_seterr(errstr, errstr_size,
                          "toState: \"%s\" is not a cluster state (event %lld of cluster "
                          "\"%s\")",
                          ev->to_state ? ev->to_state : "", (long long)ev->seq,
                          ev->cluster);
                return -1;
        }
        p->state = cm_state_name(to);
        p->ready = cm_state_is_ready(to);
        p->starts_cluster =
            ev->type && (strcmp(ev->type, cm_fsm_event_type(CM_TRIGGER_CREATE)) == 0 ||
                         strcmp(ev->type, cm_fsm_event_type(CM_TRIGGER_IMPORT)) == 0);
        p->clears_error = to == CM_STATE_RUNNING;
        if (ev->spec) {
                j = cm_spec_to_json(ev->spec);
                p->spec_json = j ? json_dumps(j, JSON_COMPACT) : NULL;
                json_decref(j);
                if (!p->spec_json) {
                        cm_seterr(errstr, errstr_size,
                                  "spec: cannot be written as JSON (a string that is not "
                                  "UTF-8?) in event %lld of cluster \"%s\"",
                                  (long long)ev->seq, ev->cluster);
                        return -1;
                }
                snprintf(p->node_count_text, sizeof(p->node_count_text), "%zu",
                         ev->spec->node_count);
        }
        return 0;
}

int cm_projection_from_event(cm_projection_t *p, const cm_cluster_event_t *ev,
                             char *errstr, size_t errstr_size)
{
        json_t *j;
        int rc;

        memset(p, 0, sizeof(*p));
        if (!ev->cluster || !*ev->cluster) {
                cm_seterr(errstr, errstr_size, "cluster: empty (event %lld)",
                          (long long)ev->seq);
                return -1;
        }
        if (ev->seq < 0) {
                cm_seterr(errstr, errstr_size, "seq: %lld is negative (cluster \"%s\")",
                          (long long)ev->seq, ev->cluster);
                return -1;
        }
        if (cm_time_format_ms(ev->at, p->at_text, sizeof(p->at_text))) {
                cm_seterr(errstr, errstr_size,
                          "at: %lld ms is outside the years 1..9999 (cluster \"%s\")",
                          (long long)ev->at, ev->cluster);
                return -1;
        }
        p->cluster = ev->cluster;
        p->seq = ev->seq;
        snprintf(p->seq_text, sizeof(p->seq_text), "%lld", (long long)ev->seq);
        p->command_id = ev->command_id && *ev->command_id ? ev->command_id : NULL;
        rc = ev->seq == 0 ? rejection_from_event(p, ev, errstr, errstr_size)
                          : cluster_from_event(p, ev, errstr, errstr_size);
        if (rc) {
                cm_projection_destroy(p);
                return -1;
        }
        if (p->kind == CM_PROJECTION_CLUSTER) {
                j = cm_cluster_event_to_json(ev);
                p->payload_json = j ? json_dumps(j, JSON_COMPACT) : NULL;
                json_decref(j);
                if (!p->payload_json) {
                        cm_seterr(
                            errstr, errstr_size,
                            "event %lld of cluster \"%s\": cannot be written as JSON "
                            "(a string that is not UTF-8?)",
                            (long long)ev->seq, ev->cluster);
                        cm_projection_destroy(p);
                        return -1;
                }
        }
        return 0;
}
