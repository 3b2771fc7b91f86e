#!/usr/bin/env bash
# e2e_zke_resume - a worker dies mid-install: scripts/up runs two cm-workers (job.lease_s
# = 4); a create is slowed on node2's kubelet start; the worker running the zke-up job is
# killed with SIGKILL there; once its lease expires the other worker claims the job
# (attempt 2), the cluster reaches Running, and the fake-docker logs show no container
# started twice on any node.
. "${CM_SOURCE_DIR:?run through ctest}/tests/integration/lib/e2e.sh" || exit 1
. "$src/tests/integration/lib/e2e_zke.sh"

lease=4
export CM_JOB_LEASE_S=$lease CM_JOB_HEARTBEAT_S=1 CM_KAFKA_SESSION_TIMEOUT_MS=6000
zke_nodes_start 3
e2e_up
zke_after_up
host=$(hostname)

knob 2 SLOW_RUN=60
knob 2 'SLOW_MATCH=--name kubelet'
create_body zr "$CM_SSHD_KEY" "$CM_UP_DIR/zr.json" \
  "$(node_json 1 controlplane etcd)" "$(node_json 2 worker)" "$(node_json 3 worker)"
req POST /v1/clusters "$CM_UP_DIR/zr.json"
[ "$code" = 202 ] || fail "create: $code $body"
check "node2's kubelet start began (the slow step)" wait_log 2 'begin docker run -d --name kubelet' 60
owner=$(sql "SELECT owner || ' ' || attempt FROM jobs WHERE cluster = 'zr' AND state = 'running'")
victim=""
for i in 1 2; do
  [ "$owner" = "$host:$(cat "$CM_UP_DIR/run/cm-worker-$i.pid") 1" ] && victim=$i
done
[ -n "$victim" ] && pass "cm-worker-$victim runs the install (attempt 1)" || { fail "job owner: $owner"; exit 1; }
alive=$((3 - victim))
kill -KILL "$(cat "$CM_UP_DIR/run/cm-worker-$victim.pid")"
rm -f "$ZKE_NODES/node2/fake-docker.env" # the node is fast again for the resumed run
t0=$(date +%s)
want="$host:$(cat "$CM_UP_DIR/run/cm-worker-$alive.pid")"
got=""
for i in $(seq 1 $(((lease + 10) * 5))); do
  got=$(sql "SELECT owner || ' ' || attempt FROM jobs WHERE cluster = 'zr'")
  [ "$got" = "$want 2" ] && break
  sleep 0.2
done
[ "$got" = "$want 2" ] && pass "cm-worker-$alive resumed the job after $(($(date +%s) - t0)) s (attempt 2)" || fail "job after the kill: $got"
check "zr reaches Running" wait_state zr Running 90
job=$(sql "SELECT state || ' ' || attempt FROM jobs WHERE cluster = 'zr'")
[ "$job" = "succeeded 2" ] && pass "the job succeeded on its second attempt" || fail "job: $job"
twice=""
for i in 1 2 3; do
  t=$(started_twice $i)
  [ -z "$t" ] || twice="$twice node$i: $t;"
done
[ -z "$twice" ] && pass "no container was started twice on any node" || fail "started twice:$twice"
n=$(grep -c 'rc=0 docker run -d --name kube-apiserver' "$ZKE_NODES/node1/docker.log" || true)
[ "$n" = 1 ] && pass "node1's kube-apiserver (started by the first attempt) was left alone" || fail "kube-apiserver started $n times"
[ -f "$ZKE_NODES/node2/docker/containers/kubelet.json" ] && pass "node2's kubelet runs" || fail "node2 lacks kubelet"
types=$(sql "SELECT string_agg(type, ' ' ORDER BY seq) FROM cluster_events WHERE cluster = 'zr'")
[ "$types" = "CreateRequested JobSucceeded" ] && pass "history: $types" || fail "history: $types"

e2e_check_models
e2e_done
