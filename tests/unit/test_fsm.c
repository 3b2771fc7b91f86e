/* test_fsm.c - the state machine against DESIGN §3, every (state, trigger) pair. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/fsm.h"
#include "../check_main.h"

/* DESIGN §3 written out as text, independently of cm_fsm.c's table:
 * "From|Trigger|To|Effect". */
static const char *const design[] = {
        "|Create|Creating|zke-up",
        "|Import|Connecting|connect",
        "Creating|JobSucceeded|Running|store",
        "Creating|JobFailed|Unavailable|error",
        "Connecting|JobSucceeded|Running|",
        "Connecting|JobFailed|Unavailable|error",
        "Running|Update|Updating|zke-up",
        "Unreachable|Update|Updating|zke-up",
        "Unavailable|Update|Updating|zke-up",
        "Updating|JobSucceeded|Running|store",
        "Updating|JobFailed|Unavailable|error",
        "Creating|Cancel|Canceling|signal",
        "Updating|Cancel|Canceling|signal",
        "Connecting|Cancel|Canceling|signal",
        "Canceling|JobSucceeded|Unavailable|",
        "Canceling|JobFailed|Unavailable|",
        "Running|ProbeFailed|Unreachable|",
        "Unreachable|ProbeSucceeded|Running|",
        "Running|Delete|Deleting|zke-remove",
        "Unreachable|Delete|Deleting|zke-remove",
        "Unavailable|Delete|Deleting|zke-remove",
        "Deleting|JobSucceeded|Deleted|",
        "Deleting|JobFailed|Unavailable|error",
};

static const char *effect_name(cm_effect_t e)
{
        switch (e) {
        case CM_EFFECT_NONE: return "";
        case CM_EFFECT_JOB_ZKE_UP: return "zke-up";
        case CM_EFFECT_JOB_CONNECT: return "connect";
        case CM_EFFECT_JOB_ZKE_REMOVE: return "zke-remove";
        case CM_EFFECT_SIGNAL_CANCEL: return "signal";
        case CM_EFFECT_STORE_RESULT: return "store";
        case CM_EFFECT_RECORD_ERROR: return "error";
        }
        return "?";
}

/* The design row for (from, trigger), or NULL. */
static const char *design_row(cm_state_t from, cm_trigger_t t)
{
        char key[64];
        snprintf(key, sizeof(key), "%s|%s|", cm_state_name(from), cm_trigger_name(t));
        for (size_t i = 0; i < sizeof(design) / sizeof(design[0]); i++)
                if (strncmp(design[i], key, strlen(key)) == 0)
                        return design[i];
        return NULL;
}

START_TEST(every_pair_matches_the_design)
{
        int accepted = 0, rejected = 0;
        for (int s = CM_STATE_NONE; s < CM_STATE__COUNT; s++) {
                for (int t = 0; t < CM_TRIGGER__COUNT; t++) {
                        char err[256] = "";
                        cm_state_t from = (cm_state_t)s;
                        const cm_fsm_transition_t *tr =
                                cm_fsm_apply(from, (cm_trigger_t)t, "prod", err, sizeof(err));
                        /* Deleted behaves as absent */
                        const char *row = design_row(
                                from == CM_STATE_DELETED ? CM_STATE_NONE : from, (cm_trigger_t)t);
                        if (row) {
                                char got[128];
                                ck_assert_msg(tr, "%s/%s rejected: %s", cm_state_name(from),
                                              cm_trigger_name(t), err);
                                snprintf(got, sizeof(got), "%s|%s|%s|%s",
                                         cm_state_name(tr->from), cm_trigger_name(tr->trigger),
                                         cm_state_name(tr->to), effect_name(tr->effect));
                                ck_assert_str_eq(got, row);
                                accepted++;
                        } else {
                                ck_assert_msg(!tr, "%s/%s accepted, design rejects it",
                                              cm_state_name(from), cm_trigger_name(t));
                                ck_assert_msg(strstr(err, "\"prod\""), "message names cluster: %s",
                                              err);
                                rejected++;
                        }
                }
        }
        ck_assert_int_eq(accepted, 23 + 2); /* the table, plus Create/Import after Deleted */
        ck_assert_int_eq(rejected, CM_STATE__COUNT * CM_TRIGGER__COUNT - accepted);
}
END_TEST

START_TEST(rejection_messages)
{
        char err[256];
        ck_assert_ptr_null(cm_fsm_apply(CM_STATE_CREATING, CM_TRIGGER_UPDATE, "prod", err,
                                        sizeof(err)));
        ck_assert_str_eq(err, "cluster \"prod\" can't be updated while Creating");
        ck_assert_ptr_null(cm_fsm_apply(CM_STATE_DELETING, CM_TRIGGER_CANCEL, "prod", err,
                                        sizeof(err)));
        ck_assert_str_eq(err, "cluster \"prod\" can't be canceled while Deleting");
        ck_assert_ptr_null(cm_fsm_apply(CM_STATE_CREATING, CM_TRIGGER_DELETE, "a", err,
                                        sizeof(err)));
        ck_assert_str_eq(err, "cluster \"a\" can't be deleted while Creating");
        ck_assert_ptr_null(cm_fsm_apply(CM_STATE_NONE, CM_TRIGGER_UPDATE, "x", err, sizeof(err)));
        ck_assert_str_eq(err, "cluster \"x\" doesn't exist");
        ck_assert_ptr_null(cm_fsm_apply(CM_STATE_DELETED, CM_TRIGGER_DELETE, "x", err,
                                        sizeof(err)));
        ck_assert_str_eq(err, "cluster \"x\" doesn't exist");
        ck_assert_ptr_null(cm_fsm_apply(CM_STATE_RUNNING, CM_TRIGGER_CREATE, "x", err,
                                        sizeof(err)));
        ck_assert_str_eq(err, "duplicate cluster \"x\"");
        ck_assert_ptr_null(cm_fsm_apply(CM_STATE_UNAVAILABLE, CM_TRIGGER_IMPORT, "x", err,
                                        sizeof(err)));
        ck_assert_str_eq(err, "duplicate cluster \"x\"");
        ck_assert_ptr_null(cm_fsm_apply(CM_STATE_RUNNING, CM_TRIGGER_PROBE_SUCCEEDED, "x", err,
                                        sizeof(err)));
        ck_assert_str_eq(err, "cluster \"x\" can't be marked reachable while Running");
}
END_TEST

START_TEST(names_and_readiness)
{
        for (int s = CM_STATE_NONE + 1; s < CM_STATE__COUNT; s++)
                ck_assert_int_eq(cm_state_parse(cm_state_name((cm_state_t)s)), s);
        ck_assert_int_eq(cm_state_parse("running"), CM_STATE_NONE); /* names are exact */
        ck_assert_int_eq(cm_state_parse(NULL), CM_STATE_NONE);
        for (int s = CM_STATE_NONE; s < CM_STATE__COUNT; s++)
                ck_assert_int_eq(cm_state_is_ready((cm_state_t)s),
                                 s == CM_STATE_RUNNING || s == CM_STATE_UNREACHABLE);
        ck_assert_str_eq(cm_fsm_event_type(CM_TRIGGER_CREATE), "CreateRequested");
        ck_assert_str_eq(cm_fsm_event_type(CM_TRIGGER_PROBE_FAILED), "ProbeFailed");
        size_t n;
        cm_fsm_table(&n);
        ck_assert_uint_eq(n, sizeof(design) / sizeof(design[0]));
}
END_TEST

int main(void)
{
        Suite *s = suite_create("fsm");
        TCase *tc = tcase_create("fsm");
        tcase_add_test(tc, every_pair_matches_the_design);
        tcase_add_test(tc, rejection_messages);
        tcase_add_test(tc, names_and_readiness);
        suite_add_tcase(s, tc);
        return cm_check_run(s);
}
