#!/usr/bin/env bash
# e2e_cancel_delete - cancel and delete through the REST API with everything real:
#   - an import whose API server is down keeps retrying (Connecting); Cancel turns it
#     Canceling, the job notices within a second or two and stops: Unavailable with
#     lastError "canceled", the job row canceled;
#   - Delete of that cluster and of a Running one: Deleted, gone from both views and GET
#     answers 404; the name can be imported again and its seq continues.
. "${CM_SOURCE_DIR:?run through ctest}/tests/integration/lib/e2e.sh" || exit 1

export CM_PROBE_INTERVAL_S=2 CM_JOB_LEASE_S=4 CM_JOB_HEARTBEAT_S=1 # connect.deadline_s: 600
e2e_up

names() { "$E2E_PY" -c 'import json,sys; print(" ".join(sorted(c["name"] for c in json.loads(sys.argv[1])["clusters"])))' "$body"; }
gone() { # gone NAME: 404, and in no view
  local n=$1 v
  req GET "/v1/clusters/$n"
  [ "$code" = 404 ] || { echo "  GET $n: $code" >&2; return 1; }
  for v in '' '?ready=true' '?ready=false'; do
    req GET "/v1/clusters$v"
    [ "$code" = 200 ] || return 1
    if grep -qw -- "$n" <<<"$(names)"; then echo "  $n listed by /v1/clusters$v" >&2; return 1; fi
  done
}

# 1. cancel during connect: the server is down, so the job keeps retrying
down="$CM_UP_DIR/k8s-down"
k8s_pki "$down"
port=$(cm_free_port)
bash "$E2E_FIXTURES/make_k8s_pki.sh" --name k8s-down "$down" "$port"
import_cluster slow "$down/kubeconfig"
check "slow is Connecting" wait_state slow Connecting 15
for i in $(seq 1 50); do
  [ "$(sql "SELECT state FROM jobs WHERE cluster = 'slow'")" = running ] && break
  sleep 0.2
done
sleep 2 # a few probes fail
job=$(sql "SELECT state || ' ' || attempt FROM jobs WHERE cluster = 'slow'")
[ "$job" = "running 1" ] && pass "the connect job runs and retries" || fail "job: $job"
t0=$(date +%s%N)
req POST /v1/clusters/slow/cancel '' -H 'Prefer: wait=10'
[ "$code" = 200 ] && pass "cancel answered 200 (Prefer: wait)" || fail "cancel: $code $body"
st=$(json state)
[ "$st" = Canceling ] || [ "$st" = Unavailable ] && pass "cancel applied: $st" || fail "state after cancel: $st"
check "slow becomes Unavailable" wait_state slow Unavailable 5
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 5000 ] && pass "canceled within ${ms} ms" || fail "cancel took ${ms} ms"
req GET /v1/clusters/slow
[ "$(json lastError)" = canceled ] && pass "lastError is \"canceled\"" || fail "lastError: $(json lastError)"
job=$(sql "SELECT state || ' ' || error || ' ' || cancel_requested FROM jobs WHERE cluster = 'slow'")
[ "$job" = "canceled canceled true" ] && pass "job row: canceled" || fail "job row: $job"
hist=$(sql "SELECT string_agg(type || ':' || coalesce(from_state, '') || '>' || to_state, ' ' ORDER BY seq) FROM cluster_events WHERE cluster = 'slow'")
[ "$hist" = "ImportRequested:>Connecting CancelRequested:Connecting>Canceling JobFailed:Canceling>Unavailable" ] &&
  pass "history: $hist" || fail "history: $hist"

# 2. delete the Unavailable cluster
req DELETE /v1/clusters/slow '' -H 'Prefer: wait=10'
[ "$code" = 200 ] && [ "$(json state)" = Deleted ] && pass "delete answered 200, Deleted" || fail "delete slow: $code $body"
sleep 1
check "slow is gone from GET and both views" gone slow
hist=$(sql "SELECT string_agg(type || ':' || from_state || '>' || to_state, ' ' ORDER BY seq) FROM cluster_events WHERE cluster = 'slow' AND seq > 3")
[ "$hist" = "DeleteRequested:Unavailable>Deleting JobSucceeded:Deleting>Deleted" ] && pass "delete history: $hist" || fail "delete history: $hist"

# 3. delete a Running cluster; import the name again
live="$CM_UP_DIR/k8s-live"
k8s_start "$live"
import_cluster live "$live/kubeconfig"
check "live reaches Running" wait_state live Running 30
req GET '/v1/clusters?ready=true'
[ "$(names)" = live ] && pass "live in the ready view" || fail "ready view: $(names)"
req DELETE /v1/clusters/live '' -H 'Prefer: wait=10'
[ "$code" = 200 ] && [ "$(json state)" = Deleted ] && pass "delete of a Running cluster: Deleted" || fail "delete live: $code $body"
sleep 1
check "live is gone from GET and both views" gone live
[ "$(sql "SELECT state FROM cluster_state WHERE name = 'live'")" = Deleted ] && pass "the write model keeps the name as Deleted" || fail "cluster_state"
import_cluster live "$live/kubeconfig"
check "the deleted name can be imported again" wait_state live Running 30
seqs=$(sql "SELECT string_agg(seq::text, ',' ORDER BY seq) FROM cluster_events WHERE cluster = 'live'")
[ "$seqs" = "1,2,3,4,5,6" ] && pass "its seq continues across the re-import ($seqs)" || fail "seqs: $seqs"

e2e_check_models
e2e_done
