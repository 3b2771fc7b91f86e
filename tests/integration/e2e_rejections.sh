#!/usr/bin/env bash
# e2e_rejections - every transition DESIGN §3 rejects that the REST API can ask for,
# with Prefer: wait, answered 409 with the worker's message; and representative
# validation rules answered 422 naming the field (the unit tests cover every rule).
# The clusters are brought into Connecting, Running, Unreachable, Unavailable, Canceling
# and Deleted by real operations (job.runners = 1 on each of the two workers, so two
# imports that keep retrying hold both runners and a third cancelled import stays
# Canceling with its job queued). A rejected command changes nothing: same state, same
# seq, no event; its result is recorded as rejected.
. "${CM_SOURCE_DIR:?run through ctest}/tests/integration/lib/e2e.sh" || exit 1

export CM_JOB_RUNNERS=1 CM_PROBE_INTERVAL_S=2 CM_JOB_LEASE_S=4 CM_JOB_HEARTBEAT_S=1
e2e_up
ssh-keygen -q -t ed25519 -N '' -C e2e -f "$CM_UP_DIR/id_ed25519"
ssh-keygen -q -t rsa -b 2048 -N '' -C e2e -f "$CM_UP_DIR/id_rsa"

# body FILE PYTHON-DICT-EXPRESSION (key = the ed25519 key, rsa = the RSA key)
body() {
  "$E2E_PY" - "$1" "$2" "$CM_UP_DIR" <<'PY'
import json, sys
d = sys.argv[3]
key = open(d + "/id_ed25519").read()
rsa = open(d + "/id_rsa").read()
nodes = [{"name": "n1", "address": "10.0.0.1", "roles": ["controlplane", "etcd"]},
         {"name": "n2", "address": "10.0.0.2", "roles": ["worker"]}]
def create(name, **kw):
    b = {"name": name, "sshUser": "ops", "sshKey": key, "managerAddress": "10.9.9.9",
         "clusterDomain": "cluster.local", "nodes": nodes}
    b.update(kw)
    return {k: v for k, v in b.items() if v is not None}
with open(sys.argv[1], "w") as f:
    json.dump(eval(sys.argv[2]), f)
PY
}

# --- bring clusters into every state
live="$CM_UP_DIR/k8s-live" gone="$CM_UP_DIR/k8s-gone" down="$CM_UP_DIR/k8s-down"
k8s_start "$live"
k8s_start "$gone"
k8s_pki "$down"
bash "$E2E_FIXTURES/make_k8s_pki.sh" --name k8s-down "$down" "$(cm_free_port)"
printf 'not: [a kubeconfig\n' >"$CM_UP_DIR/broken.yaml"

import_cluster run "$live/kubeconfig"
import_cluster unr "$gone/kubeconfig"
import_cluster unav "$CM_UP_DIR/broken.yaml"
import_cluster del "$CM_UP_DIR/broken.yaml"
check "run is Running" wait_state run Running 30
check "unr is Running" wait_state unr Running 30
check "unav is Unavailable" wait_state unav Unavailable 30
check "del is Unavailable" wait_state del Unavailable 30
req DELETE /v1/clusters/del '' -H 'Prefer: wait=10'
[ "$code" = 200 ] && pass "del deleted" || fail "delete del: $code $body"
k8s_stop "$gone"
check "unr is Unreachable" wait_state unr Unreachable 15
import_cluster conn1 "$down/kubeconfig"
import_cluster conn2 "$down/kubeconfig"
for i in $(seq 1 100); do
  [ "$(sql "SELECT count(*) FROM jobs WHERE state = 'running'")" = 2 ] && break
  sleep 0.2
done
import_cluster canc "$down/kubeconfig"
check "canc is Connecting" wait_state canc Connecting 15
[ "$(sql "SELECT state FROM jobs WHERE cluster = 'canc'")" = queued ] && pass "canc's job waits for a runner" || fail "canc's job: $(sql "SELECT state FROM jobs WHERE cluster = 'canc'")"
req POST /v1/clusters/canc/cancel '' -H 'Prefer: wait=10'
[ "$code" = 200 ] && [ "$(json state)" = Canceling ] && pass "canc is Canceling" || fail "cancel canc: $code $body"
check "conn1 is Connecting" wait_state conn1 Connecting 5
check "conn2 is Connecting" wait_state conn2 Connecting 5

# --- the table: cluster, method, path, body, message
body "$CM_UP_DIR/nodes.json" '{"nodes": nodes + [{"name": "n3", "address": "10.0.0.3", "roles": ["worker"]}]}'
for n in conn1 run unav canc; do body "$CM_UP_DIR/create-$n.json" "create('$n')"; done
table=$(cat <<'T'
conn1|PUT|/v1/clusters/conn1|nodes.json|cluster "conn1" can't be updated while Connecting
conn1|DELETE|/v1/clusters/conn1||cluster "conn1" can't be deleted while Connecting
conn1|POST|/v1/clusters|create-conn1.json|duplicate cluster "conn1"
conn1|IMPORT|conn1|down|duplicate cluster "conn1"
run|POST|/v1/clusters/run/cancel||cluster "run" can't be canceled while Running
run|POST|/v1/clusters|create-run.json|duplicate cluster "run"
run|IMPORT|run|live|duplicate cluster "run"
run|PUT|/v1/clusters/run|nodes.json|cluster "run" was imported: its nodes are not managed here and can't be updated
unr|POST|/v1/clusters/unr/cancel||cluster "unr" can't be canceled while Unreachable
unr|IMPORT|unr|live|duplicate cluster "unr"
unr|PUT|/v1/clusters/unr|nodes.json|cluster "unr" was imported: its nodes are not managed here and can't be updated
unav|POST|/v1/clusters/unav/cancel||cluster "unav" can't be canceled while Unavailable
unav|POST|/v1/clusters|create-unav.json|duplicate cluster "unav"
unav|IMPORT|unav|live|duplicate cluster "unav"
canc|POST|/v1/clusters/canc/cancel||cluster "canc" can't be canceled while Canceling
canc|DELETE|/v1/clusters/canc||cluster "canc" can't be deleted while Canceling
canc|PUT|/v1/clusters/canc|nodes.json|cluster "canc" can't be updated while Canceling
canc|POST|/v1/clusters|create-canc.json|duplicate cluster "canc"
del|POST|/v1/clusters/del/cancel||cluster "del" doesn't exist
del|DELETE|/v1/clusters/del||cluster "del" doesn't exist
ghost|DELETE|/v1/clusters/ghost||cluster "ghost" doesn't exist
ghost|POST|/v1/clusters/ghost/cancel||cluster "ghost" doesn't exist
T
)
before=$(sql "SELECT string_agg(name || '=' || state || '/' || seq || '/' || version, ' ' ORDER BY name) FROM cluster_state")
i=0
while IFS='|' read -r name method path file msg; do
  i=$((i + 1))
  key="rej-$i-$$"
  if [ "$method" = IMPORT ]; then
    import_cluster "$path" "$CM_UP_DIR/k8s-$file/kubeconfig" -H 'Prefer: wait=10' -H "Idempotency-Key: $key"
  else
    req "$method" "$path" "${file:+$CM_UP_DIR/$file}" -H 'Prefer: wait=10' -H "Idempotency-Key: $key"
  fi
  got=$(json error.message)
  if [ "$code" = 409 ] && [ "$got" = "$msg" ] && [ "$(json error.code)" = conflict ]; then
    pass "$method $path: 409 $msg"
  else
    fail "$method $path: $code $body (expected 409 $msg)"
  fi
  res=$(sql "SELECT status || '|' || code || '|' || message FROM command_results WHERE command_id = '$key'")
  [ "$res" = "rejected|conflict|$msg" ] || fail "command_results of $key: $res"
done <<<"$table"
after=$(sql "SELECT string_agg(name || '=' || state || '/' || seq || '/' || version, ' ' ORDER BY name) FROM cluster_state")
[ "$before" = "$after" ] && pass "the rejected commands changed no cluster ($after)" || fail "changed: $before -> $after"
n=$(sql "SELECT count(*) FROM applied_commands WHERE command_id LIKE 'rej-%-$$' AND result = 'rejected'")
[ "$n" = "$i" ] && pass "all $i recorded as rejected in applied_commands" || fail "$n of $i rejected"
req PUT /v1/clusters/del "$CM_UP_DIR/nodes.json"
[ "$code" = 404 ] && pass "PUT on a Deleted cluster: 404 (it is in no view)" || fail "PUT del: $code $body"

# --- validation: 422 naming the field and the value
val() { # val DESCRIPTION BODY-EXPR PATH METHOD FIELD TEXT
  body "$CM_UP_DIR/v.json" "$2"
  req "$4" "$3" "$CM_UP_DIR/v.json" -H 'Prefer: wait=10'
  local m
  m=$("$E2E_PY" -c 'import json,sys; e=json.loads(sys.argv[1])["error"]; print("\n".join(f["field"] + ": " + f["message"] for f in e.get("fields", [])))' "$body" 2>/dev/null || true)
  if [ "$code" = 422 ] && grep -q "^$5: .*$6" <<<"$m"; then pass "422 $1"; else fail "$1: $code $body"; fi
}
val "name not DNS-1123" "create('Bad_Name')" /v1/clusters POST name 'Bad_Name'
val "missing sshKey" "create('v1', sshKey=None)" /v1/clusters POST sshKey 'required'
val "RSA key refused" "create('v2', sshKey=rsa)" /v1/clusters POST sshKey 'RSA'
val "node is the manager" "create('v3', managerAddress='10.0.0.2')" /v1/clusters POST 'nodes\[1\].address' 'manager itself'
val "duplicate address" "create('v4', nodes=nodes + [{'name': 'n3', 'address': '10.0.0.1', 'roles': ['worker']}])" /v1/clusters POST 'nodes\[2\].address' '"10.0.0.1" is also the address of nodes\[0\]'
val "no etcd node" "create('v5', nodes=[{'name': 'n1', 'address': '10.0.0.1', 'roles': ['controlplane']}, nodes[1]])" /v1/clusters POST nodes 'etcd'
val "empty kubeconfig" "{'name': 'v6', 'kubeconfig': ''}" /v1/clusters/import POST kubeconfig ''
[ "$(sql "SELECT count(*) FROM cluster_state WHERE name LIKE 'v_'")" = 0 ] && pass "no invalid cluster reached the workers" || fail "invalid clusters stored"

e2e_check_models
e2e_done
