/*
 * it_worker_commands - the command side of cm-worker end to end (docs/command-path.md
 * "cm-worker" and "Events"): its own cm-devbroker, its own database and real cm-worker
 * processes (two in the "commands" case, one killed with SIGKILL in the "crash" case).
 * Commands are encoded and sealed as cm-api does; what the workers wrote is read back
 * from PostgreSQL and from cm.events / cm.commands.dlq.
 */

#include "worker_harness.h"

#include "cm/avro.h"
#include "cm/fsm.h"

/* ---------------------------------------------------------------- fixture */

static void commands_setup(void)
{
        wh_prepare("cmd");
        wh_start_broker();
        wh_start_worker(0);
        wh_start_worker(1);
        wh_wait_schema(60000);
        wh_wait_ready(0, 60000);
        wh_wait_ready(1, 60000);
        PQfinish(wh_db); /* each forked test opens its own connection */
        wh_db = NULL;
}

static void commands_teardown(void)
{
        wh_shutdown();
}

/* ---------------------------------------------------------------- tests */

START_TEST(test_create_queues_zke_up_and_relays_event)
{
        cm_command_t *c = wh_cmd_create("cr-one");
        wh_send(c);
        expect_result(c->id, "applied");
        ASSERT_STATE("cr-one", "Creating 1");

        /* the sealed key is stored as received, and opens to the key */
        PGresult *r = PQexecParams(
            wh_pg(), "SELECT ssh_key_sealed FROM cluster_state WHERE name = 'cr-one'", 0,
            NULL, NULL, NULL, NULL, 1);
        ck_assert_int_eq(PQntuples(r), 1);
        ck_assert_int_eq((size_t)PQgetlength(r, 0, 0), c->create.ssh_key_len);
        ck_assert(memcmp(PQgetvalue(r, 0, 0), c->create.ssh_key, c->create.ssh_key_len) ==
                  0);
        PQclear(r);

        /* one queued zke-up job with the node list */
        r = wh_sql(
            "SELECT kind, state, payload::text, cancel_requested, attempt FROM jobs"
            " WHERE cluster = 'cr-one'",
            0, NULL);
        ck_assert_int_eq(PQntuples(r), 1);
        ck_assert_str_eq(PQgetvalue(r, 0, 0), "zke-up");
        ck_assert_str_eq(PQgetvalue(r, 0, 1), "queued");
        ck_assert_str_eq(PQgetvalue(r, 0, 3), "f");
        ck_assert_str_eq(PQgetvalue(r, 0, 4), "0");
        json_t *payload = json_loads(PQgetvalue(r, 0, 2), 0, NULL);
        ck_assert(payload);
        ck_assert_str_eq(json_string_value(json_object_get(payload, "reason")), "create");
        ck_assert_str_eq(json_string_value(json_object_get(payload, "commandId")), c->id);
        json_t *nodes = json_object_get(payload, "nodes");
        ck_assert_int_eq(json_array_size(nodes), 2);
        ck_assert_str_eq(
            json_string_value(json_object_get(json_array_get(nodes, 0), "address")),
            "10.0.0.1");
        ck_assert_str_eq(
            json_string_value(json_object_get(json_array_get(nodes, 1), "name")), "n2");
        assert_no_secret(PQgetvalue(r, 0, 2), strlen(PQgetvalue(r, 0, 2)),
                         "jobs.payload");
        json_decref(payload);
        PQclear(r);

        /* outbox seq 1, relayed */
        wh_wait_scalar(
            "SELECT (sent_at IS NOT NULL)::text FROM outbox WHERE cluster = $1 AND "
            "seq = 1",
            "cr-one", "true", T_CMD_MS);
        wh_msg_t m[2];
        size_t n = wh_consume("cm.events", match_exact, "cr-one", m, 1, 30000);
        ck_assert_int_eq(n, 1);
        assert_no_secret(m[0].value, m[0].len, "the CreateRequested event");
        ck_assert(!memmem(m[0].value, m[0].len, c->create.ssh_key + 10, 16));
        cm_cluster_event_t ev;
        decode_event(m[0].value, m[0].len, &ev);
        assert_event(&ev, "cr-one", 1, "CreateRequested", NULL, "Creating");
        ck_assert_str_eq(ev.command_id, c->id);
        ck_assert_ptr_null(ev.job_id);
        ck_assert_str_eq(ev.actor.name, "it-admin");
        ck_assert_str_eq(ev.actor.role, "admin");
        ck_assert_ptr_nonnull(ev.spec);
        ck_assert(cm_spec_equal(ev.spec, &c->create.spec));
        ck_assert_int_eq(ev.spec->node_count, 2);
        ck_assert_str_eq(ev.spec->ssh_user, "ops");
        ck_assert_ptr_null(ev.error);
        ck_assert_int_eq(strlen(ev.event_id), 36);
        cm_cluster_event_destroy(&ev);
        wh_msgs_free(m, n);

        /* no plaintext secret anywhere in the write model */
        char *all =
            wh_scalar("SELECT concat(spec::text, certificates::text, host_keys::text)"
                      " FROM cluster_state WHERE name = 'cr-one'",
                      0, NULL);
        assert_no_secret(all, strlen(all), "cluster_state");
        free(all);
        wh_cmd_free(c);
}
END_TEST

START_TEST(test_import_queues_connect_job)
{
        cm_command_t *c = wh_cmd_import("im-one");
        wh_send(c);
        expect_result(c->id, "applied");
        ASSERT_STATE("im-one", "Connecting 1");
        char *v = wh_scalar(
            "SELECT imported::text || ' ' || (kubeconfig_sealed IS NOT NULL)::text"
            " || ' ' || (ssh_key_sealed IS NULL)::text FROM cluster_state"
            " WHERE name = 'im-one'",
            0, NULL);
        ck_assert_str_eq(v, "true true true");
        free(v);
        v = wh_scalar(
            "SELECT kind || ' ' || state || ' ' || (payload->>'reason') FROM jobs"
            " WHERE cluster = 'im-one'",
            0, NULL);
        ck_assert_str_eq(v, "connect queued import");
        free(v);
        cm_cluster_event_t ev;
        outbox_of("im-one", 1, &ev);
        assert_event(&ev, "im-one", 1, "ImportRequested", NULL, "Connecting");
        ck_assert_str_eq(ev.spec->name, "im-one");
        cm_cluster_event_destroy(&ev);
        /* the kubeconfig is stored sealed, never plain */
        PGresult *r = PQexec(wh_pg(), "SELECT kubeconfig_sealed FROM cluster_state"
                                      " WHERE name = 'im-one'");
        assert_no_secret(PQgetvalue(r, 0, 0), strlen(PQgetvalue(r, 0, 0)),
                         "kubeconfig_sealed");
        PQclear(r);
        wh_cmd_free(c);
}
END_TEST

START_TEST(test_same_command_id_applied_once)
{
        cm_command_t *c = wh_cmd_create("dup-one");
        wh_send(c);
        wh_send(c);
        wh_send(c);
        cm_command_t *after = wh_cmd(CM_COMMAND_CANCEL, "dup-one");
        wh_send(after); /* same partition: handled after the three copies */
        expect_result(after->id, "applied");
        ck_assert_int_eq(
            wh_count("SELECT count(*) FROM applied_commands WHERE cluster = $1",
                     "dup-one"),
            2);
        ck_assert_int_eq(
            wh_count("SELECT count(*) FROM outbox WHERE cluster = $1", "dup-one"), 2);
        ck_assert_int_eq(
            wh_count("SELECT count(*) FROM jobs WHERE cluster = $1", "dup-one"), 1);
        ck_assert_int_eq(
            wh_count("SELECT count(*) FROM rejection_outbox WHERE cluster = $1",
                     "dup-one"),
            0);
        ASSERT_STATE("dup-one", "Canceling 2");
        ck_assert_int_ge(wh_metric("cm_worker_commands_total{result=\"duplicate\"}"), 2);
        wh_cmd_free(c);
        wh_cmd_free(after);
}
END_TEST

/* DESIGN §3: what each command gets in each state. a: accepted, d: duplicate cluster,
 * n: doesn't exist, w: can't be <verb> while <state>. Columns: Create Import Update
 * Delete Cancel. */
static const struct {
        const char *state; /* NULL: no row */
        const char *rule;
} reject_table[] = {
    {NULL, "aannn"},       {"Creating", "ddwwa"},  {"Connecting", "ddwwa"},
    {"Updating", "ddwwa"}, {"Canceling", "ddwww"}, {"Unavailable", "ddaaw"},
    {"Deleting", "ddwww"}, {"Running", "ddaaw"},   {"Unreachable", "ddaaw"},
    {"Deleted", "aannn"},
};
static const char *const verbs[5] = {"created", "imported", "updated", "deleted",
                                     "canceled"};
static const cm_command_kind_t kinds[5] = {CM_COMMAND_CREATE, CM_COMMAND_IMPORT,
                                           CM_COMMAND_UPDATE, CM_COMMAND_DELETE,
                                           CM_COMMAND_CANCEL};

START_TEST(test_every_rejected_pair_answered_with_its_message)
{
        enum { N = sizeof(reject_table) / sizeof(reject_table[0]) };
        cm_command_t *cmds[N][5] = {{0}};
        char names[N][40], *before[N];
        char expect[N][5][512];
        int sent = 0;

        for (size_t s = 0; s < N; s++) {
                const char *st = reject_table[s].state;
                snprintf(names[s], sizeof(names[s]), "rj-%s", st ? st : "none");
                for (char *p = names[s]; *p; p++)
                        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
                if (st)
                        fixture_row(names[s], st, 3, 5, 0);
                before[s] = row_snapshot(names[s]);
        }
        for (size_t s = 0; s < N; s++) {
                for (int k = 0; k < 5; k++) {
                        char rule = reject_table[s].rule[k];
                        if (rule == 'a')
                                continue;
                        if (rule == 'd')
                                snprintf(expect[s][k], sizeof(expect[s][k]),
                                         "duplicate cluster \"%s\"", names[s]);
                        else if (rule == 'n')
                                snprintf(expect[s][k], sizeof(expect[s][k]),
                                         "cluster \"%s\" doesn't exist", names[s]);
                        else
                                snprintf(expect[s][k], sizeof(expect[s][k]),
                                         "cluster \"%s\" can't be %s while %s", names[s],
                                         verbs[k], reject_table[s].state);
                        cm_command_t *c;
                        if (kinds[k] == CM_COMMAND_CREATE)
                                c = wh_cmd_create(names[s]);
                        else if (kinds[k] == CM_COMMAND_IMPORT)
                                c = wh_cmd_import(names[s]);
                        else
                                c = wh_cmd(kinds[k], names[s]);
                        if (kinds[k] == CM_COMMAND_UPDATE) {
                                json_t *spec = wh_spec_json(names[s]);
                                cm_field_errors_t errs = {0};
                                ck_assert_int_eq(
                                    cm_nodes_from_json(
                                        &c->update.nodes, &c->update.node_count,
                                        json_object_get(spec, "nodes"), &errs),
                                    0);
                                json_decref(spec);
                        }
                        wh_send(c);
                        cmds[s][k] = c;
                        sent++;
                }
        }
        ck_assert_int_ge(sent, 30);
        for (size_t s = 0; s < N; s++) {
                for (int k = 0; k < 5; k++) {
                        cm_command_t *c = cmds[s][k];
                        if (!c)
                                continue;
                        expect_result(c->id, "rejected");
                        const char *p[1] = {c->id};
                        char *msg = wh_scalar(
                            "SELECT message FROM applied_commands WHERE command_id = $1",
                            1, p);
                        ck_assert_str_eq(msg, expect[s][k]);
                        free(msg);
                        cm_cluster_event_t ev;
                        rejection_of(c->id, &ev);
                        assert_event(&ev, names[s], 0, "CommandRejected",
                                     reject_table[s].state, NULL);
                        ck_assert_str_eq(ev.error, expect[s][k]);
                        ck_assert_str_eq(ev.command_id, c->id);
                        ck_assert_str_eq(ev.actor.name, "it-admin");
                        cm_cluster_event_destroy(&ev);
                        wh_cmd_free(c);
                }
                char *after = row_snapshot(names[s]);
                ck_assert_msg(strcmp(before[s], after) == 0, "%s changed: %s -> %s",
                              names[s], before[s], after);
                free(after);
                free(before[s]);
                ck_assert_int_eq(
                    wh_count("SELECT count(*) FROM outbox WHERE cluster = $1", names[s]),
                    0);
                ck_assert_int_eq(
                    wh_count("SELECT count(*) FROM jobs WHERE cluster = $1", names[s]),
                    0);
        }
        /* and every rejection is relayed (seq 0) */
        wh_wait_scalar("SELECT count(*)::text FROM rejection_outbox WHERE sent_at IS NULL"
                       " AND cluster LIKE $1",
                       "rj-%", "0", T_CMD_MS);
}
END_TEST

START_TEST(test_expected_version_mismatch_rejected)
{
        fixture_row("ev-one", "Running", 4, 7, 0);
        cm_command_t *c = wh_cmd(CM_COMMAND_DELETE, "ev-one");
        c->has_expected_version = 1;
        c->expected_version = 6;
        wh_send(c);
        expect_result(c->id, "rejected");
        cm_cluster_event_t ev;
        rejection_of(c->id, &ev);
        assert_event(&ev, "ev-one", 0, "CommandRejected", "Running", NULL);
        ck_assert_str_eq(ev.error, "cluster \"ev-one\" is at version 7, not 6");
        cm_cluster_event_destroy(&ev);
        ASSERT_STATE("ev-one", "Running 4");

        cm_command_t *ok = wh_cmd(CM_COMMAND_DELETE, "ev-one");
        ok->has_expected_version = 1;
        ok->expected_version = 7;
        wh_send(ok);
        expect_result(ok->id, "applied");
        ASSERT_STATE("ev-one", "Deleting 5");
        char *v =
            wh_scalar("SELECT kind || ' ' || state || ' ' ||"
                      " jsonb_array_length(payload->'nodes') FROM jobs WHERE cluster = "
                      "'ev-one'",
                      0, NULL);
        ck_assert_str_eq(v, "zke-remove queued 2");
        free(v);
        v = wh_scalar("SELECT version FROM cluster_state WHERE name = 'ev-one'", 0, NULL);
        ck_assert_str_eq(v, "8");
        free(v);
        wh_cmd_free(c);
        wh_cmd_free(ok);
}
END_TEST

START_TEST(test_invalid_create_names_every_field)
{
        json_t *spec = wh_spec_json("inv-one");
        json_object_set_new(spec, "sshUser", json_string(" "));
        json_array_clear(
            json_object_get(json_array_get(json_object_get(spec, "nodes"), 0), "roles"));
        cm_command_t *c = wh_cmd_create_json("inv-one", spec);
        free(c->create.ssh_key);
        wh_seal("not a key", 9, &c->create.ssh_key, &c->create.ssh_key_len);
        wh_send(c);

        /* a key sealed for another manager cannot be opened: named as such */
        char err[256], pub2[400], sec2[400];
        cm_seal_keypair_t *other;
        snprintf(pub2, sizeof(pub2), "%s/other-%d.pub", wh.dir, (int)getpid());
        snprintf(sec2, sizeof(sec2), "%s/other-%d.key", wh.dir, (int)getpid());
        ck_assert(cm_seal_keypair_generate(pub2, sec2, true, &other, err, sizeof(err)) ==
                  CM_SEAL_OK);
        cm_command_t *c2 = wh_cmd_create("inv-two");
        free(c2->create.ssh_key);
        ck_assert(cm_seal_seal(cm_seal_keypair_pubkey(other), wh.ssh_key, wh.ssh_key_len,
                               &c2->create.ssh_key, &c2->create.ssh_key_len, err,
                               sizeof(err)) == CM_SEAL_OK);
        cm_seal_keypair_destroy(other);
        wh_send(c2);

        /* the spec's name must be the command's cluster */
        cm_command_t *c3 = wh_cmd_create_json("inv-three", wh_spec_json("someone-else"));
        wh_send(c3);

        cm_command_t *c4 = wh_cmd(CM_COMMAND_IMPORT, "inv-four"); /* empty kubeconfig */
        wh_seal("", 0, &c4->import.kubeconfig, &c4->import.kubeconfig_len);
        wh_send(c4);

        struct {
                cm_command_t *c;
                const char *fields[3];
        } cases[] = {{c, {"sshUser: ", "nodes[0].roles", "sshKey: "}},
                     {c2, {"sshKey: sealed value", NULL, NULL}},
                     {c3, {"name: \"someone-else\"", NULL, NULL}},
                     {c4, {"kubeconfig: ", NULL, NULL}}};
        for (size_t i = 0; i < 4; i++) {
                expect_result(cases[i].c->id, "rejected");
                cm_cluster_event_t ev;
                rejection_of(cases[i].c->id, &ev);
                assert_event(&ev, cases[i].c->cluster, 0, "CommandInvalid", NULL, NULL);
                for (int f = 0; f < 3 && cases[i].fields[f]; f++)
                        ck_assert_msg(strstr(ev.error, cases[i].fields[f]),
                                      "%s: \"%s\" does not name %s", cases[i].c->cluster,
                                      ev.error, cases[i].fields[f]);
                assert_no_secret(ev.error, strlen(ev.error), "the error");
                ck_assert_int_eq(
                    wh_count("SELECT count(*) FROM cluster_state WHERE name = $1",
                             cases[i].c->cluster),
                    0);
                cm_cluster_event_destroy(&ev);
                wh_cmd_free(cases[i].c);
        }
}
END_TEST

START_TEST(test_cancel_on_creating_signals_job)
{
        cm_command_t *c = wh_cmd_create("cx-one");
        cm_command_t *x = wh_cmd(CM_COMMAND_CANCEL, "cx-one");
        wh_send(c);
        wh_send(x);
        expect_result(c->id, "applied");
        expect_result(x->id, "applied");
        ASSERT_STATE("cx-one", "Canceling 2");
        char *v = wh_scalar(
            "SELECT kind || ' ' || state || ' ' || cancel_requested::text FROM jobs"
            " WHERE cluster = 'cx-one'",
            0, NULL);
        ck_assert_str_eq(v, "zke-up queued true");
        free(v);
        cm_cluster_event_t ev;
        outbox_of("cx-one", 2, &ev);
        assert_event(&ev, "cx-one", 2, "CancelRequested", "Creating", "Canceling");
        ck_assert_str_eq(ev.command_id, x->id);
        ck_assert_int_eq(ev.spec->node_count, 2);
        cm_cluster_event_destroy(&ev);
        wh_cmd_free(c);
        wh_cmd_free(x);
}
END_TEST

START_TEST(test_delete_imported_running_is_deleted_at_once)
{
        fixture_row("di-one", "Running", 4, 3, 1);
        cm_command_t *d = wh_cmd(CM_COMMAND_DELETE, "di-one");
        wh_send(d);
        expect_result(d->id, "applied");
        ASSERT_STATE("di-one", "Deleted 6");
        cm_cluster_event_t ev;
        outbox_of("di-one", 5, &ev);
        assert_event(&ev, "di-one", 5, "DeleteRequested", "Running", "Deleting");
        ck_assert_str_eq(ev.command_id, d->id);
        cm_cluster_event_destroy(&ev);
        outbox_of("di-one", 6, &ev);
        assert_event(&ev, "di-one", 6, "JobSucceeded", "Deleting", "Deleted");
        ck_assert_str_eq(ev.command_id, d->id);
        cm_cluster_event_destroy(&ev);
        ck_assert_int_eq(
            wh_count("SELECT count(*) FROM jobs WHERE cluster = $1", "di-one"), 0);

        /* the name is free again; seq continues */
        cm_command_t *i = wh_cmd_import("di-one");
        wh_send(i);
        expect_result(i->id, "applied");
        ASSERT_STATE("di-one", "Connecting 7");
        outbox_of("di-one", 7, &ev);
        assert_event(&ev, "di-one", 7, "ImportRequested", "Deleted", "Connecting");
        cm_cluster_event_destroy(&ev);
        wh_cmd_free(d);
        wh_cmd_free(i);
}
END_TEST

static const struct {
        const char *key;
        const char *code;
} dlq_cases[] = {{"dlq-garbage", "malformed"},
                 {"dlq-truncated", "malformed"},
                 {"dlq-badmagic", "bad-magic"},
                 {"dlq-unknownfp", "unknown-fingerprint"},
                 {"dlq-short", "too-short"}};

START_TEST(test_undecodable_messages_dead_lettered_and_worker_goes_on)
{
        unsigned char garbage[40], unknown[40], *enc;
        size_t enc_len;
        char err[256];
        uint64_t fp = cm_avro_schema_get(CM_AVRO_SCHEMA_COMMAND)->fingerprint;
        garbage[0] = CM_AVRO_MAGIC0;
        garbage[1] = CM_AVRO_MAGIC1;
        for (int i = 0; i < 8; i++)
                garbage[2 + i] = (unsigned char)(fp >> (8 * i));
        memset(garbage + 10, 0xff, 30);
        memcpy(unknown, garbage, sizeof(unknown));
        memset(unknown + 2, 0x11, 8);
        cm_command_t *t = wh_cmd_create("dlq-truncated");
        ck_assert(cm_command_encode(t, &enc, &enc_len, err, sizeof(err)) == 0);
        const void *values[5] = {garbage, enc, "{\"json\": true}", unknown, "\xc3"};
        size_t lens[5] = {sizeof(garbage), enc_len - 7, 14, sizeof(unknown), 1};
        for (int i = 0; i < 5; i++)
                wh_produce_raw("cm.commands", dlq_cases[i].key, values[i], lens[i]);
        cm_command_t *after = wh_cmd_create("dlq-after");
        wh_send(after);
        expect_result(after->id, "applied");
        ASSERT_STATE("dlq-after", "Creating 1");

        wh_msg_t m[8];
        size_t n = wh_consume("cm.commands.dlq", wh_match_prefix, "dlq-", m, 5, 30000);
        ck_assert_int_eq(n, 5);
        for (int i = 0; i < 5; i++) {
                size_t j = 0;
                while (j < n && strcmp(m[j].key, dlq_cases[i].key) != 0)
                        j++;
                ck_assert_msg(j < n, "%s not dead-lettered", dlq_cases[i].key);
                ck_assert_int_eq(m[j].len, lens[i]);
                ck_assert(memcmp(m[j].value, values[i], lens[i]) == 0);
                char want[80];
                snprintf(want, sizeof(want), "cm-error-code=%s\n", dlq_cases[i].code);
                ck_assert_msg(strstr(m[j].headers, want), "%s: headers %s",
                              dlq_cases[i].key, m[j].headers);
                ck_assert_msg(strstr(m[j].headers, "cm-source-topic=cm.commands\n"), "%s",
                              m[j].headers);
                ck_assert(strstr(m[j].headers, "cm-source-partition="));
                ck_assert(strstr(m[j].headers, "cm-source-offset="));
                const char *e = strstr(m[j].headers, "cm-error=");
                ck_assert_msg(e && e[9] != '\n', "%s: empty cm-error", dlq_cases[i].key);
        }
        wh_msgs_free(m, n);
        free(enc);
        wh_cmd_free(t);
        wh_cmd_free(after);
}
END_TEST

/* Checks that per cluster, events arrive in seq order without gaps (a re-published
 * earlier seq is tolerated), and returns how many distinct (cluster, seq) were seen. */
static size_t check_order(const wh_msg_t *m, size_t n, int fail)
{
        char names[64][40];
        long max[64];
        size_t clusters = 0, distinct = 0;
        for (size_t i = 0; i < n; i++) {
                cm_cluster_event_t ev;
                decode_event(m[i].value, m[i].len, &ev);
                size_t c = 0;
                while (c < clusters && strcmp(names[c], ev.cluster) != 0)
                        c++;
                if (c == clusters) {
                        ck_assert_int_lt(clusters, 64);
                        snprintf(names[clusters], sizeof(names[0]), "%s", ev.cluster);
                        max[clusters++] = 0;
                }
                if (ev.seq > max[c]) {
                        if (fail)
                                ck_assert_msg(ev.seq == max[c] + 1,
                                              "%s: seq %lld after %ld", ev.cluster,
                                              (long long)ev.seq, max[c]);
                        max[c] = ev.seq;
                        distinct++;
                }
                cm_cluster_event_destroy(&ev);
        }
        return distinct;
}

static size_t order_want;
static int order_done(const wh_msg_t *m, size_t n)
{
        return check_order(m, n, 0) >= order_want;
}

START_TEST(test_two_workers_relay_every_cluster_in_order)
{
        enum { C = 12 };
        cm_command_t *last[C];
        char name[40];
        for (int i = 0; i < C; i++) {
                snprintf(name, sizeof(name), "rl-%02d", i);
                if (i % 3 == 0) { /* imported Running: Delete gives two events */
                        fixture_row(name, "Running", 0, 1, 1);
                        last[i] = wh_cmd(CM_COMMAND_DELETE, name);
                        wh_send(last[i]);
                        wh_cmd_free(last[i]);
                        last[i] = wh_cmd_import(name);
                } else {
                        cm_command_t *c = wh_cmd_create(name);
                        wh_send(c);
                        wh_cmd_free(c);
                        last[i] = wh_cmd(CM_COMMAND_CANCEL, name);
                }
                wh_send(last[i]);
        }
        long total = 0;
        for (int i = 0; i < C; i++) {
                expect_result(last[i]->id, "applied");
                total += i % 3 == 0 ? 3 : 2;
                wh_cmd_free(last[i]);
        }
        ck_assert_int_eq(
            wh_count("SELECT count(*) FROM outbox WHERE cluster LIKE $1", "rl-%"), total);
        wh_wait_scalar(
            "SELECT count(*)::text FROM outbox WHERE sent_at IS NULL AND cluster LIKE $1",
            "rl-%", "0", T_CMD_MS);
        wh_msg_t m[128];
        order_want = (size_t)total;
        size_t n = wh_consume_until("cm.events", wh_match_prefix, "rl-", m, 128,
                                    order_done, 30000);
        ck_assert_int_eq(check_order(m, n, 1), total);
        ck_assert_int_eq(n, total); /* nobody crashed: each event published once */
        wh_msgs_free(m, n);
}
END_TEST

START_TEST(test_metrics_count_what_happened)
{
        wh_wait_scalar("SELECT count(*)::text FROM outbox WHERE sent_at IS NULL", NULL,
                       "0", T_CMD_MS);
        wh_wait_scalar(
            "SELECT count(*)::text FROM rejection_outbox WHERE sent_at IS NULL", NULL,
            "0", T_CMD_MS);
        long applied = wh_count(
            "SELECT count(*) FROM applied_commands WHERE result = 'applied'", NULL);
        ck_assert_int_gt(applied, 0);
        ck_assert_int_eq(wh_metric("cm_worker_commands_total{result=\"applied\"}"),
                         applied);
        ck_assert_int_ge(wh_metric("cm_worker_commands_total{result=\"rejected\"}"), 30);
        ck_assert_int_ge(wh_metric("cm_worker_commands_total{result=\"invalid\"}"), 4);
        ck_assert_int_ge(wh_metric("cm_worker_commands_total{result=\"duplicate\"}"), 2);
        ck_assert_int_ge(wh_metric("cm_worker_commands_total{result=\"dead_lettered\"}"),
                         5);
        ck_assert_int_eq(wh_metric("cm_worker_events_relayed_total"),
                         wh_count("SELECT count(*) FROM outbox", NULL));
        ck_assert_int_eq(wh_metric("cm_worker_rejections_relayed_total"),
                         wh_count("SELECT count(*) FROM rejection_outbox", NULL));
        /* nothing secret in any log line */
        for (int i = 0; i < wh.worker_count; i++) {
                char path[400];
                size_t len;
                snprintf(path, sizeof(path), "%s/worker-%d.log", wh.dir, i);
                char *log = wh_read_file(path, &len);
                ck_assert(log);
                assert_no_secret(log, len, path);
                ck_assert_msg(!strstr(log, "\"level\":\"error\""), "error logged in %s",
                              path);
                free(log);
        }
}
END_TEST

/* ---------------------------------------------------------------- crash */

START_TEST(test_kill9_and_restart_loses_and_repeats_nothing)
{
        enum { C = 40 };
        char name[40], want[16];
        wh_prepare("crash");
        wh_start_broker();
        wh_start_worker(0);
        wh_wait_schema(60000);
        wh_wait_ready(0, 60000);
        for (int i = 0; i < C; i++) {
                snprintf(name, sizeof(name), "k-%02d", i);
                fixture_row(name, "Running", 0, 1, 1);
        }
        /* per cluster: Delete (Deleting, Deleted), Import (Connecting), Cancel
         * (Canceling); all on the topic before the worker goes on, so that it is busy
         * with them when it is killed */
        kill(wh.workers[0], SIGSTOP);
        for (int i = 0; i < C; i++) {
                snprintf(name, sizeof(name), "k-%02d", i);
                cm_command_t *c[3] = {wh_cmd(CM_COMMAND_DELETE, name),
                                      wh_cmd_import(name),
                                      wh_cmd(CM_COMMAND_CANCEL, name)};
                for (int k = 0; k < 3; k++) {
                        wh_send(c[k]);
                        wh_cmd_free(c[k]);
                }
        }
        kill(wh.workers[0], SIGCONT);
        long long end = wh_now_ms() + 30000;
        while (wh_count("SELECT count(*) FROM applied_commands", NULL) < 6 &&
               wh_now_ms() < end)
                wh_sleep_ms(1);
        kill(wh.workers[0], SIGKILL);
        waitpid(wh.workers[0], NULL, 0);
        long at_kill = wh_count("SELECT count(*) FROM applied_commands", NULL);
        fprintf(stderr, "crash: worker killed after %ld of %d commands\n", at_kill,
                3 * C);
        ck_assert_int_lt(at_kill, 3 * C); /* killed in the middle */
        wh_start_worker(0);
        snprintf(want, sizeof(want), "%d", 3 * C);
        wh_wait_scalar("SELECT count(*)::text FROM applied_commands", NULL, want, 60000);
        ck_assert_int_eq(
            wh_count("SELECT count(*) FROM applied_commands WHERE result = 'applied'",
                     NULL),
            3 * C);
        static const char *const types[4] = {"DeleteRequested", "JobSucceeded",
                                             "ImportRequested", "CancelRequested"};
        for (int i = 0; i < C; i++) {
                snprintf(name, sizeof(name), "k-%02d", i);
                ASSERT_STATE(name, "Canceling 4");
                ck_assert_int_eq(
                    wh_count("SELECT count(*) FROM outbox WHERE cluster = $1", name), 4);
                for (int s = 1; s <= 4; s++) {
                        cm_cluster_event_t ev;
                        outbox_of(name, s, &ev);
                        ck_assert_str_eq(ev.type, types[s - 1]);
                        cm_cluster_event_destroy(&ev);
                }
                char *v =
                    wh_scalar("SELECT count(*) || ' ' || bool_and(cancel_requested)::text"
                              " FROM jobs WHERE cluster = $1 AND kind = 'connect'",
                              1, (const char *const[]){name});
                ck_assert_str_eq(v, "1 true");
                free(v);
        }
        wh_wait_scalar("SELECT count(*)::text FROM outbox WHERE sent_at IS NULL", NULL,
                       "0", 30000);
        wh_msg_t m[256];
        order_want = 4 * C;
        size_t n = wh_consume_until("cm.events", wh_match_prefix, "k-", m, 256,
                                    order_done, 30000);
        ck_assert_int_eq(check_order(m, n, 1), 4 * C);
        wh_msgs_free(m, n);
        wh_shutdown();
}
END_TEST

int main(void)
{
        pg_testdb_base(); /* fails at once without CM_TEST_PG */
        pg_testdb_owner_pid();
        Suite *s = suite_create("worker_commands");
        TCase *tc = tcase_create("commands");
        tcase_set_timeout(tc, 90);
        tcase_add_unchecked_fixture(tc, commands_setup, commands_teardown);
        tcase_add_test(tc, test_create_queues_zke_up_and_relays_event);
        tcase_add_test(tc, test_import_queues_connect_job);
        tcase_add_test(tc, test_same_command_id_applied_once);
        tcase_add_test(tc, test_every_rejected_pair_answered_with_its_message);
        tcase_add_test(tc, test_expected_version_mismatch_rejected);
        tcase_add_test(tc, test_invalid_create_names_every_field);
        tcase_add_test(tc, test_cancel_on_creating_signals_job);
        tcase_add_test(tc, test_delete_imported_running_is_deleted_at_once);
        tcase_add_test(tc, test_undecodable_messages_dead_lettered_and_worker_goes_on);
        tcase_add_test(tc, test_two_workers_relay_every_cluster_in_order);
        tcase_add_test(tc, test_metrics_count_what_happened);
        suite_add_tcase(s, tc);
        TCase *crash = tcase_create("crash");
        tcase_set_timeout(crash, 150);
        tcase_add_test(crash, test_kill9_and_restart_loses_and_repeats_nothing);
        suite_add_tcase(s, crash);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_VERBOSE);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        pg_testdb_drop_all();
        if (!failed)
                wh_remove_dir(); /* kept for its logs when something failed */
        return failed ? 1 : 0;
}
