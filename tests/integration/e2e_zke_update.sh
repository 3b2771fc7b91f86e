#!/usr/bin/env bash
# e2e_zke_update - update and delete of a zke cluster through the REST API, everything
# real (OpenSSH nodes, fake-docker runtime): a 3-node cluster reaches Running; an update
# adding a worker goes Updating -> Running and the fake-docker logs show only the new node
# touched; an update removing the etcd node is refused with 422 naming the field; delete
# goes Deleting -> Deleted and leaves no container and no file on any node.
. "${CM_SOURCE_DIR:?run through ctest}/tests/integration/lib/e2e.sh" || exit 1
. "$src/tests/integration/lib/e2e_zke.sh"

export CM_JOB_LEASE_S=6 CM_JOB_HEARTBEAT_S=1
zke_nodes_start 4
e2e_up
zke_after_up

n1=$(node_json 1 controlplane etcd) n2=$(node_json 2 worker) n3=$(node_json 3 worker) n4=$(node_json 4 worker)
create_body zu "$CM_SSHD_KEY" "$CM_UP_DIR/create.json" "$n1" "$n2" "$n3"
req POST /v1/clusters "$CM_UP_DIR/create.json"
[ "$code" = 202 ] || fail "create: $code $body"
check "zu reaches Running" wait_state zu Running 90
[ "$(containers_on 4)" = 0 ] && pass "node4 is not part of it yet" || fail "node4 has containers"

# add node4
declare -A off
for i in 1 2 3; do off[$i]=$(log_size $i); done
nodes_body "$CM_UP_DIR/add.json" "$n1" "$n2" "$n3" "$n4"
req PUT /v1/clusters/zu "$CM_UP_DIR/add.json"
[ "$code" = 202 ] && pass "update adding node4 answered 202" || fail "update: $code $body"
check "zu is Updating" wait_state zu Updating 15
check "zu is Running again" wait_state zu Running 90
[ -f "$ZKE_NODES/node4/docker/containers/kubelet.json" ] && [ -f "$ZKE_NODES/node4/docker/containers/nginx-proxy.json" ] &&
  pass "node4 runs kubelet and nginx-proxy" || fail "node4 containers: $(ls "$ZKE_NODES/node4/docker/containers" 2>&1)"
touched=""
for i in 1 2 3; do
  m=$(mutations_since $i "${off[$i]}")
  [ -z "$m" ] || touched="$touched node$i: $(head -3 <<<"$m")"
done
[ -z "$touched" ] && pass "only the new node was touched (fake-docker logs of node1..3 show no change)" || fail "touched:$touched"
job=$(sql "SELECT state || ' ' || (payload->>'reason') || ' ' || jsonb_array_length(payload->'previousNodes') FROM jobs WHERE cluster = 'zu' ORDER BY created_at DESC LIMIT 1")
[ "$job" = "succeeded update 3" ] && pass "the update job succeeded with the 3 previous nodes" || fail "update job: $job"
hk=$(sql "SELECT host_keys ? '127.0.0.14' FROM cluster_state WHERE name = 'zu'")
[ "$hk" = t ] && pass "node4's host key is pinned" || fail "host keys: $hk"
req GET /v1/clusters/zu
[ "$(json nodeCount)" = 4 ] && pass "GET shows 4 nodes" || fail "zu: $body"

# removing the etcd node is refused
nodes_body "$CM_UP_DIR/noetcd.json" "$n2" "$n3" "$n4"
req PUT /v1/clusters/zu "$CM_UP_DIR/noetcd.json"
[ "$code" = 422 ] && pass "update removing the etcd node: 422" || fail "update without etcd: $code $body"
grep -q 'nodes' <<<"$body" && grep -qi 'etcd' <<<"$body" && pass "the 422 names the nodes and etcd: $(json error.message)" || fail "422 body: $body"
[ "$(state_of zu)" = Running ] && pass "zu stays Running" || fail "zu: $(state_of zu)"

# delete: nothing left anywhere
req DELETE /v1/clusters/zu
[ "$code" = 202 ] && pass "delete answered 202" || fail "delete: $code $body"
check "zu is gone (404)" wait_state zu 404 90
st=$(sql "SELECT state FROM cluster_state WHERE name = 'zu'")
[ "$st" = Deleted ] && pass "zu is Deleted in the write model" || fail "state: $st"
job=$(sql "SELECT kind || ' ' || state FROM jobs WHERE cluster = 'zu' ORDER BY created_at DESC LIMIT 1")
[ "$job" = "zke-remove succeeded" ] && pass "zke-remove succeeded" || fail "remove job: $job"
left=""
for i in 1 2 3 4; do
  c=$(containers_on $i) f=$(files_on $i)
  [ "$c" = 0 ] && [ "$f" = 0 ] && [ ! -e "$ZKE_NODES/node$i/root/etc/kubernetes" ] || left="$left node$i: $c containers, $f files;"
done
[ -z "$left" ] && pass "every container and folder is gone from every node" || fail "left:$left"
types=$(sql "SELECT string_agg(type, ' ' ORDER BY seq) FROM cluster_events WHERE cluster = 'zu'")
[ "$types" = "CreateRequested JobSucceeded UpdateRequested JobSucceeded DeleteRequested JobSucceeded" ] && pass "history: $types" || fail "history: $types"

e2e_check_models
e2e_done
