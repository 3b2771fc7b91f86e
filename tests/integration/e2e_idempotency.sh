#!/usr/bin/env bash
# e2e_idempotency - the same Idempotency-Key twice is one command: both requests answer
# with that command id, the command reaches cm.commands twice (at-least-once), the worker
# applies it once and skips the copy: applied_commands has one row, the cluster one
# event for it. A key reused for another cluster is refused (409).
. "${CM_SOURCE_DIR:?run through ctest}/tests/integration/lib/e2e.sh" || exit 1

export CM_PROBE_INTERVAL_S=2 CM_JOB_LEASE_S=4 CM_JOB_HEARTBEAT_S=1
e2e_up
k8s="$CM_UP_DIR/k8s-idem"
k8s_start "$k8s"

key=import-idem-$$
import_cluster idem "$k8s/kubeconfig" -H "Idempotency-Key: $key"
c1=$code id1=$(json commandId)
import_cluster idem "$k8s/kubeconfig" -H "Idempotency-Key: $key"
c2=$code id2=$(json commandId)
[ "$c1 $c2" = "202 202" ] && [ "$id1" = "$key" ] && [ "$id2" = "$key" ] && pass "both requests answered 202 with the key as command id" ||
  fail "answers: $c1 $id1 / $c2 $id2"
check "idem reaches Running" wait_state idem Running 30

# one delete, sent three times with one key (the last one waiting for the outcome)
for i in 1 2; do req DELETE /v1/clusters/idem '' -H "Idempotency-Key: delete-idem-$$"; done
req DELETE /v1/clusters/idem '' -H "Idempotency-Key: delete-idem-$$" -H 'Prefer: wait=10'
[ "$code" = 200 ] && pass "the repeated delete answers with its outcome" || fail "delete: $code $body"

for k in "$key" "delete-idem-$$"; do
  rows=$(sql "SELECT count(*) || ' ' || min(result) FROM applied_commands WHERE command_id = '$k'")
  [ "$rows" = "1 applied" ] && pass "$k: one applied_commands row" || fail "$k: applied_commands: $rows"
  ev=$(sql "SELECT count(*) FROM cluster_events WHERE command_id = '$k'")
  want=1
  [ "$k" = "$key" ] || want=2 # DeleteRequested and, at once, JobSucceeded (imported)
  [ "$ev" = "$want" ] && pass "$k: $ev event(s) caused by it" || fail "$k: $ev events, expected $want"
  req GET "/v1/commands/$k"
  [ "$code" = 200 ] && [ "$(json status)" = applied ] && pass "GET /v1/commands/$k: applied" || fail "GET /v1/commands/$k: $code $body"
done
imports=$(sql "SELECT count(*) FROM cluster_events WHERE cluster = 'idem' AND type = 'ImportRequested'")
[ "$imports" = 1 ] && pass "one ImportRequested for two requests" || fail "$imports ImportRequested events"
jobs=$(sql "SELECT count(*) FROM jobs WHERE cluster = 'idem'")
[ "$jobs" = 1 ] && pass "one connect job" || fail "$jobs jobs"

# the copies reached the workers and were skipped as duplicates
dups=0
for p in "$CM_UP_HEALTH_PORT" "$((CM_UP_HEALTH_PORT + 1))"; do
  n=$(curl -fsS "http://127.0.0.1:$p/metrics" | sed -n 's/^cm_worker_commands_total{result="duplicate"} //p')
  dups=$((dups + ${n:-0}))
done
[ "$dups" = 3 ] && pass "the workers skipped 3 duplicates" || fail "$dups duplicates skipped, expected 3"

# a key is bound to its cluster
import_cluster other "$k8s/kubeconfig" -H "Idempotency-Key: $key"
[ "$code" = 409 ] && [[ $(json error.message) == *"already used for a command on cluster \"idem\""* ]] &&
  pass "a key reused for another cluster: 409" || fail "reused key: $code $body"

e2e_check_models
e2e_done
