#!/usr/bin/env bash
# e2e_import_failures - imports that cannot succeed end Unavailable with a lastError that
# says why, through the REST API with everything real:
#   - a kubeconfig that cannot be parsed fails at once (one attempt, no retry) with the
#     parser's message;
#   - a kubeconfig pointing at a closed port fails when connect.deadline_s passes, naming
#     the deadline and the last probe error;
#   - a kubeconfig with another CA and client certificate (a live server that refuses it)
#     fails the same way, naming the TLS error.
. "${CM_SOURCE_DIR:?run through ctest}/tests/integration/lib/e2e.sh" || exit 1

deadline=6
export CM_CONNECT_DEADLINE_S=$deadline CM_PROBE_INTERVAL_S=2 CM_JOB_LEASE_S=4 CM_JOB_HEARTBEAT_S=1
e2e_up

# 1. not YAML at all / YAML but not usable
printf 'apiVersion: v1\nclusters:\n- name: x\n  cluster: {server: [unclosed\n' >"$CM_UP_DIR/broken.yaml"
printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: c\n  context: {cluster: c, user: nobody}\ncurrent-context: c\nusers: []\n' >"$CM_UP_DIR/nouser.yaml"
import_cluster broken "$CM_UP_DIR/broken.yaml"
[ "$code" = 202 ] && pass "an unparseable kubeconfig is accepted by the API (the worker parses it)" || fail "import broken: $code $body"
import_cluster nouser "$CM_UP_DIR/nouser.yaml"
t0=$(date +%s)
check "broken becomes Unavailable" wait_state broken Unavailable 20
check "nouser becomes Unavailable" wait_state nouser Unavailable 20
[ $(($(date +%s) - t0)) -lt 15 ] && pass "parse failures fail at once (no retry until the deadline)" || fail "took $(($(date +%s) - t0)) s"
for n in broken nouser; do
  req GET "/v1/clusters/$n"
  last=$(json lastError)
  joberr=$(sql "SELECT error FROM jobs WHERE cluster = '$n'")
  [[ $last == kubeconfig:* ]] && pass "$n: lastError is the parser's message: $last" || fail "$n: lastError: $last"
  [ "$last" = "$joberr" ] && pass "$n: jobs.error is the same message" || fail "$n: jobs.error: $joberr"
  row=$(sql "SELECT state || ' ' || attempt FROM jobs WHERE cluster = '$n'")
  [ "$row" = "failed 1" ] && pass "$n: job failed on its first attempt" || fail "$n: job: $row"
done
req GET /v1/clusters/nouser
[[ $(json lastError) == *'nobody'* ]] && pass "the message names the missing user" || fail "nouser: $(json lastError)"

# 2. nothing listens on the port: the deadline passes
closed=$(cm_free_port)
pki="$CM_UP_DIR/k8s-closed"
k8s_pki "$pki"
bash "$E2E_FIXTURES/make_k8s_pki.sh" --name k8s-closed "$pki" "$closed"
t0=$(date +%s)
import_cluster closed "$pki/kubeconfig"
check "closed is Connecting while it retries" wait_state closed Connecting 10
check "closed becomes Unavailable after the deadline" wait_state closed Unavailable $((deadline + 15))
took=$(($(date +%s) - t0))
[ "$took" -ge $((deadline - 1)) ] && pass "it kept trying until the deadline (${took} s)" || fail "gave up after ${took} s, before the ${deadline} s deadline"
req GET /v1/clusters/closed
want="API server did not answer within $deadline s: GET https://127.0.0.1:$closed/version: "
last=$(json lastError)
[[ $last == "$want"* ]] && pass "lastError names the deadline and the probe error: $last" || fail "lastError: $last (expected $want...)"
attempt=$(sql "SELECT state || ' ' || attempt FROM jobs WHERE cluster = 'closed'")
[ "$attempt" = "failed 1" ] && pass "one attempt, retried within the job" || fail "job: $attempt"

# 3. a live server that does not trust our client certificate (and that we do not trust)
live="$CM_UP_DIR/k8s-live"
k8s_start "$live"
other="$CM_UP_DIR/k8s-other"
k8s_pki "$other"
bash "$E2E_FIXTURES/make_k8s_pki.sh" --name k8s-other "$other" "$k8s_port"
import_cluster stranger "$other/kubeconfig"
check "stranger becomes Unavailable after the deadline" wait_state stranger Unavailable $((deadline + 15))
req GET /v1/clusters/stranger
last=$(json lastError)
[[ $last == "API server did not answer within $deadline s: GET https://127.0.0.1:$k8s_port/version: TLS"* ]] &&
  pass "lastError names the TLS failure: $last" || fail "lastError: $last"
grep -q 'TLS handshake failed' "$live/server.log" && pass "the server saw the handshakes fail" || fail "no failed handshake in the server log"

# the ready view holds none of them, the unready view all
req GET '/v1/clusters?ready=false'
names=$("$E2E_PY" -c 'import json,sys; print(" ".join(sorted(c["name"] for c in json.loads(sys.argv[1])["clusters"])))' "$body")
[ "$names" = "broken closed nouser stranger" ] && pass "unready view: $names" || fail "unready view: $names"

e2e_check_models
e2e_done
