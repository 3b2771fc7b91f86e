#!/usr/bin/env bash
# e2e_zke_create - a cluster created through the REST API, everything real: three OpenSSH
# nodes (controlplane+etcd, worker, worker) with fake-docker as their runtime; the zke-up
# job installs Kubernetes and the cluster goes Creating -> Running. GET kubeconfig (admin)
# returns a kubeconfig whose CA is the cluster's and whose client certificate verifies
# against it with `openssl verify`; a user token gets 403. The job published its steps
# on cm.progress; the certificates, host keys and sealed secrets are stored; the SSH
# private key, the kubeconfig's client key and the API tokens are on no topic, in no
# table, in no log; the read model equals the write model at the end.
. "${CM_SOURCE_DIR:?run through ctest}/tests/integration/lib/e2e.sh" || exit 1
. "$src/tests/integration/lib/e2e_zke.sh"

export CM_JOB_LEASE_S=6 CM_JOB_HEARTBEAT_S=1
zke_nodes_start 3
e2e_up
zke_after_up

create_body zc "$CM_SSHD_KEY" "$CM_UP_DIR/create.json" \
  "$(node_json 1 controlplane etcd)" "$(node_json 2 worker)" "$(node_json 3 worker)"
req POST /v1/clusters "$CM_UP_DIR/create.json"
[ "$code" = 202 ] && pass "create answered 202" || fail "create: $code $body"
check "zc is Creating" wait_state zc Creating 15
check "zc reaches Running" wait_state zc Running 90
req GET /v1/clusters/zc
[ "$(json lastError)" = "" ] && [ "$(json ready)" = true ] && [ "$(json nodeCount)" != 0 ] &&
  pass "zc is ready, no lastError" || fail "zc: $body"
types=$(sql "SELECT string_agg(type || ':' || coalesce(from_state, '') || '>' || to_state, ' ' ORDER BY seq) FROM cluster_events WHERE cluster = 'zc'")
[ "$types" = "CreateRequested:>Creating JobSucceeded:Creating>Running" ] && pass "history: $types" || fail "history: $types"
job=$(sql "SELECT kind || ' ' || state || ' ' || attempt || ' ' || (outcome->>'reason') || ' ' || ((outcome->>'changed')::int > 0) FROM jobs WHERE cluster = 'zc'")
[ "$job" = "zke-up succeeded 1 create true" ] && pass "zke-up job succeeded on its first attempt: $job" || fail "job row: $job"
row=$(sql "SELECT kubeconfig_sealed IS NOT NULL, certificate_keys_sealed IS NOT NULL,
                  certificates ? 'kube-ca', (SELECT count(*) FROM jsonb_object_keys(host_keys))
             FROM cluster_state WHERE name = 'zc'")
[ "$row" = "t|t|t|3" ] && pass "kubeconfig and certificate keys sealed, certificates and 3 host keys stored" || fail "cluster_state: $row"
hk=$(sql "SELECT host_keys->>'127.0.0.12' FROM cluster_state WHERE name = 'zc'")
[ "$hk" = "$CM_SSHD_NODE_2_HOSTKEY" ] && pass "node2's host key is pinned as it offered it" || fail "host key: $hk"
for i in 1 2 3; do
  [ "$(containers_on $i)" -gt 0 ] || fail "node$i has no container"
done
[ -f "$ZKE_NODES/node1/docker/containers/kube-apiserver.json" ] && [ -f "$ZKE_NODES/node2/docker/containers/kubelet.json" ] &&
  [ ! -f "$ZKE_NODES/node2/docker/containers/etcd.json" ] && pass "containers by role on the nodes" || fail "containers: $(ls "$ZKE_NODES"/node*/docker/containers)"

# the kubeconfig: admin only, its certificates verify against its CA
kc="$CM_UP_DIR/k8s-zc"
mkdir -p "$kc"
req GET /v1/clusters/zc/kubeconfig
if [ "$code" = 200 ]; then
  cp "$CM_UP_DIR/body" "$kc/kubeconfig"
  rm -f "$CM_UP_DIR/body"
  field() { sed -n "s/^ *$1: *//p" "$kc/kubeconfig" | head -1 | tr -d '"' | base64 -d; }
  field certificate-authority-data >"$kc/ca.crt"
  field client-certificate-data >"$kc/client.crt"
  field client-key-data >"$kc/client.key"
  grep -q 'server: "\?https://127.0.0.11:6443' "$kc/kubeconfig" && pass "the kubeconfig points at node1's API server" || fail "server: $(grep server: "$kc/kubeconfig")"
  openssl verify -CAfile "$kc/ca.crt" "$kc/client.crt" >/dev/null 2>&1 &&
    pass "the client certificate verifies against the kubeconfig's CA (openssl verify)" || fail "openssl verify: $(openssl verify -CAfile "$kc/ca.crt" "$kc/client.crt" 2>&1)"
  fp_stored=$(sql "SELECT certificates->>'kube-ca' FROM cluster_state WHERE name = 'zc'" | openssl x509 -noout -fingerprint 2>&1 || true)
  fp_kc=$(openssl x509 -in "$kc/ca.crt" -noout -fingerprint 2>&1)
  [ "$fp_stored" = "$fp_kc" ] && pass "the kubeconfig's CA is the stored cluster CA" || fail "CA: stored $fp_stored, kubeconfig $fp_kc"
  [ "$(openssl x509 -in "$kc/client.crt" -noout -pubkey | sha256sum)" = "$(openssl pkey -in "$kc/client.key" -pubout | sha256sum)" ] &&
    pass "the client key matches the client certificate" || fail "client key does not match its certificate"
  openssl x509 -in "$kc/client.crt" -noout -subject | grep -q 'O = system:masters' &&
    pass "the client certificate is in system:masters" || fail "subject: $(openssl x509 -in "$kc/client.crt" -noout -subject)"
else
  fail "GET kubeconfig: $code $body"
fi
user=$("$CM_UP_BUILD_DIR/producer/cm-api" -c "$CM_UP_DIR/cm.conf" --create-token viewer --role user 2>/dev/null)
printf '%s\n' "$user" >"$CM_UP_DIR/id_token_user"
admin=$token token=$user
req GET /v1/clusters/zc/kubeconfig
token=$admin
[ "$code" = 403 ] && grep -q 'only admin can get cluster kubeconfig' <<<"$body" && pass "a user token gets 403" || fail "user token: $code $body"
rm -f "$CM_UP_DIR/body"

# the job's steps went to cm.progress, keyed by the cluster, in the progress schema's words
bootstrap=$(cat "$CM_UP_DIR/run/devbroker/bootstrap")
prog=$(timeout 20 kcat -C -b "$bootstrap" -t cm.progress -e -q -f '@@%k %s' 2>/dev/null |
  tr -c '[:print:]' ' ' | sed 's/@@/\n/g' || true)
for step in connect precheck pki distribute etcd controlplane worker health addons kubeconfig; do
  grep -q "^zc .*$step" <<<"$prog" || fail "cm.progress lacks step $step"
done
grep -q '^zc .*connect.*node2.*connected to 127.0.0.12' <<<"$prog" && pass "cm.progress holds zke-up's steps per node" || fail "cm.progress: $(head -c 800 <<<"$prog")"

e2e_check_models
e2e_done
