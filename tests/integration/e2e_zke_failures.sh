#!/usr/bin/env bash
# e2e_zke_failures - zke-up failures through the REST API, everything real (OpenSSH nodes,
# fake-docker runtime):
#   - pre-checks: the runtime missing on node1 and swap on node2 -> Unavailable, lastError
#     naming every node and reason, and no node changed;
#   - a wrong SSH key -> Unavailable with the authentication error;
#   - cancel while node2's kubelet is being started (a slow step) -> Canceling, then
#     Unavailable with lastError "canceled" within a few seconds.
. "${CM_SOURCE_DIR:?run through ctest}/tests/integration/lib/e2e.sh" || exit 1
. "$src/tests/integration/lib/e2e_zke.sh"

export CM_JOB_LEASE_S=6 CM_JOB_HEARTBEAT_S=1
zke_nodes_start 3
e2e_up
zke_after_up
nodes=("$(node_json 1 controlplane etcd)" "$(node_json 2 worker)" "$(node_json 3 worker)")

# 1. pre-checks fail on two nodes: every reason in one error
knob 1 MISSING=1
knob 2 SWAP=on
create_body fpre "$CM_SSHD_KEY" "$CM_UP_DIR/fpre.json" "${nodes[@]}"
req POST /v1/clusters "$CM_UP_DIR/fpre.json"
[ "$code" = 202 ] || fail "create fpre: $code $body"
check "fpre becomes Unavailable" wait_state fpre Unavailable 60
e=$(last_error fpre)
[[ $e == *"pre-checks failed on 2 of 3 nodes"* && $e == *"node1 (127.0.0.11): container runtime missing"* &&
  $e == *"node2 (127.0.0.12)"*"swap is on (/swapfile)"* ]] && pass "lastError names every node and reason: $e" || fail "lastError: $e"
[[ $e != *node3* ]] && pass "lastError leaves the healthy node3 out" || fail "node3 in lastError: $e"
changed=""
for i in 1 2 3; do [ -z "$(mutations_since $i 0)" ] || changed="$changed node$i"; done
[ -z "$changed" ] && pass "no node was changed" || fail "changed despite failed pre-checks:$changed"
job=$(sql "SELECT state || ' ' || attempt FROM jobs WHERE cluster = 'fpre'")
[ "$job" = "failed 1" ] && pass "the job failed once, not retried" || fail "job: $job"

# 2. a wrong SSH key
nodes_reset
ssh-keygen -q -t ed25519 -N '' -f "$CM_UP_DIR/id_other" </dev/null
create_body fkey "$CM_UP_DIR/id_other" "$CM_UP_DIR/fkey.json" "${nodes[@]}"
req POST /v1/clusters "$CM_UP_DIR/fkey.json"
[ "$code" = 202 ] || fail "create fkey: $code $body"
check "fkey becomes Unavailable" wait_state fkey Unavailable 60
e=$(last_error fkey)
[[ $e == *"connect: 3 of 3 nodes failed"* && $e == *"auth failed for user"* ]] && pass "lastError has the auth error: $e" || fail "lastError: $e"
for i in 1 2 3; do [ "$(log_size $i)" = 0 ] || fail "node$i ran a command with a wrong key"; done

# 3. cancel during a slow step
nodes_reset
knob 2 SLOW_RUN=60
knob 2 'SLOW_MATCH=--name kubelet'
create_body fcan "$CM_SSHD_KEY" "$CM_UP_DIR/fcan.json" "${nodes[@]}"
req POST /v1/clusters "$CM_UP_DIR/fcan.json"
[ "$code" = 202 ] || fail "create fcan: $code $body"
check "node2's kubelet start began (the slow step)" wait_log 2 'begin docker run -d --name kubelet' 60
[ "$(state_of fcan)" = Creating ] && pass "fcan is Creating during the slow step" || fail "fcan: $(state_of fcan)"
t0=$(date +%s%N)
req POST /v1/clusters/fcan/cancel
[ "$code" = 202 ] && pass "cancel answered 202" || fail "cancel: $code $body"
st=""
for i in $(seq 1 50); do
  st=$(sql "SELECT state FROM cluster_state WHERE name = 'fcan'")
  [ "$st" != Creating ] && break
  sleep 0.1
done
[[ $st == Canceling || $st == Unavailable ]] && pass "fcan went Canceling" || fail "after cancel: $st"
check "fcan becomes Unavailable" wait_state fcan Unavailable 10
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -le 6000 ] && pass "Unavailable ${ms} ms after the cancel" || fail "cancel took ${ms} ms"
[ "$(last_error fcan)" = canceled ] && pass "lastError: canceled" || fail "lastError: $(last_error fcan)"
types=$(sql "SELECT string_agg(type || '>' || to_state, ' ' ORDER BY seq) FROM cluster_events WHERE cluster = 'fcan'")
[ "$types" = "CreateRequested>Creating CancelRequested>Canceling JobFailed>Unavailable" ] && pass "history: $types" || fail "history: $types"
job=$(sql "SELECT state FROM jobs WHERE cluster = 'fcan'")
[ "$job" = canceled ] && pass "the job row is canceled" || fail "job: $job"
[ ! -f "$ZKE_NODES/node2/docker/containers/kubelet.json" ] && pass "node2's kubelet was never started" || fail "kubelet started despite the cancel"

e2e_check_models
e2e_done
