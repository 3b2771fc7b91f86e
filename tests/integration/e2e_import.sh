#!/usr/bin/env bash
# e2e_import - import end to end through the REST API, everything real: a fake Kubernetes
# API server over TLS with its own CA that requires a client certificate and serves
# /version; the cluster is imported with a kubeconfig pointing at it and goes
# Connecting -> Running. The server stops: Unreachable within two probe intervals (with
# the probe's error in lastError); it starts again on the same port: Running again. The
# prober reuses its TLS connection between rounds; the connect job published its steps on
# cm.progress; the read model equals the write model at the end.
. "${CM_SOURCE_DIR:?run through ctest}/tests/integration/lib/e2e.sh" || exit 1

interval=2
export CM_PROBE_INTERVAL_S=$interval CM_PROBE_TIMEOUT_S=2 CM_JOB_LEASE_S=4 CM_JOB_HEARTBEAT_S=1
e2e_up
k8s="$CM_UP_DIR/k8s-alpha"
k8s_start "$k8s"
port=$k8s_port

import_cluster alpha "$k8s/kubeconfig" -H 'Idempotency-Key: import-alpha-1'
[ "$code" = 202 ] && pass "import answered 202" || fail "import: $code $body"
[ "$(json commandId)" = import-alpha-1 ] && pass "the Idempotency-Key is the command id" || fail "commandId: $body"
grep -qi '^location: /v1/commands/import-alpha-1' <<<"$hdrs" && pass "Location names the command" || fail "Location: $hdrs"

check "alpha reaches Running" wait_state alpha Running 30
req GET /v1/clusters/alpha
[ "$(json lastError)" = "" ] && [ "$(json ready)" = true ] && pass "alpha is ready, no lastError" || fail "alpha: $body"
req GET /v1/clusters/alpha/events
types=$("$E2E_PY" -c 'import json,sys; print(" ".join("%s:%s>%s" % (e["type"], e.get("fromState") or "", e.get("toState") or "") for e in json.loads(sys.argv[1])["events"]))' "$body")
[ "$types" = "ImportRequested:>Connecting JobSucceeded:Connecting>Running" ] && pass "history: Connecting then Running" || fail "history: $types"
job=$(sql "SELECT state || ' ' || attempt || ' ' || (owner IS NOT NULL) || ' ' || (outcome->>'gitVersion') FROM jobs WHERE cluster = 'alpha'")
[ "$job" = "succeeded 1 true v1.28.15" ] && pass "connect job succeeded on its first attempt with the server's version" || fail "job row: $job"
ev=$(sql "SELECT job_id IS NOT NULL AND actor_role = 'system' FROM cluster_events WHERE cluster = 'alpha' AND seq = 2")
[ "$ev" = t ] && pass "JobSucceeded names its job and a system actor" || fail "JobSucceeded event: $ev"

# the kubeconfig is served back to an admin exactly as imported
req GET /v1/clusters/alpha/kubeconfig
cmp -s "$CM_UP_DIR/body" "$k8s/kubeconfig" && pass "GET kubeconfig returns the imported one" || fail "GET kubeconfig: $code"

# the prober keeps one handle, so one TLS connection serves many probes
for _ in $(seq 1 $((interval * 10))); do   # at least 4 probes (rounds run every interval)
  gets=$(grep -c '"GET /version HTTP/1.1" 200' "$k8s/server.log" || true)
  [ "$gets" -ge 4 ] && break
  sleep 1
done
conns=$(grep -c 'TLS connection accepted' "$k8s/server.log" || true)
gets=$(grep -c '"GET /version HTTP/1.1" 200' "$k8s/server.log" || true)
[ "$gets" -ge 4 ] && [ "$conns" -lt "$gets" ] && pass "probes reuse the TLS connection ($gets probes, $conns connections)" ||
  fail "probes: $gets GETs over $conns connections"

# server down -> Unreachable within two probe intervals (plus the read model's lag)
k8s_stop "$k8s"
t0=$(date +%s%N)
check "alpha becomes Unreachable" wait_state alpha Unreachable $((interval * 2 + 3))
ms=$((($(date +%s%N) - t0) / 1000000))
echo "  Unreachable after ${ms} ms"
req GET /v1/clusters/alpha
last=$(json lastError)
[[ $last == *"127.0.0.1:$port/version"* ]] && pass "lastError names the probe's URL and error: $last" || fail "lastError: $last"
[ "$(json ready)" = true ] && pass "an Unreachable cluster stays in the ready view" || fail "ready: $body"
sleep $((interval * 2))
n=$(sql "SELECT count(*) FROM cluster_events WHERE cluster = 'alpha' AND type = 'ProbeFailed'")
[ "$n" = 1 ] && pass "ProbeFailed applied once (only on a change)" || fail "$n ProbeFailed events"

# server back on the same port -> Running
k8s_start "$k8s" "$port"
check "alpha is Running again" wait_state alpha Running $((interval * 2 + 5))
req GET /v1/clusters/alpha
[ "$(json lastError)" = "" ] && pass "lastError cleared when Running again" || fail "lastError: $body"
types=$(sql "SELECT string_agg(type, ' ' ORDER BY seq) FROM cluster_events WHERE cluster = 'alpha'")
[ "$types" = "ImportRequested JobSucceeded ProbeFailed ProbeSucceeded" ] && pass "history: $types" || fail "history: $types"

# the connect job's steps went to cm.progress, keyed by the cluster
bootstrap=$(cat "$CM_UP_DIR/run/devbroker/bootstrap")
prog=$(timeout 20 kcat -C -b "$bootstrap" -t cm.progress -e -q -f '@@%k %s' 2>/dev/null |
  tr -c '[:print:]' ' ' | sed 's/@@/\n/g' || true)
grep -q '^alpha .*kubeconfig' <<<"$prog" && grep -q '^alpha .*probe-api.*answered: v1.28.15' <<<"$prog" &&
  pass "cm.progress holds the connect job's steps" || fail "cm.progress: $(head -c 600 <<<"$prog")"

e2e_check_models
e2e_done
