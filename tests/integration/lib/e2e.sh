# tests/integration/lib/e2e.sh - what the end-to-end scenarios (tests/integration/e2e_*.sh)
# share: the whole system started with `scripts/up -d` in its own folder on free ports,
# the REST API through curl with the admin token up prints, psql on the stack's
# PostgreSQL, the fake Kubernetes API server (tests/fixtures/k8s_api_server.py) with its
# own CA that requires a client certificate, and the read model == write model check
# every scenario runs at its end (e2e_check_models).
#
# Source it from a scenario, export the CM_* tunables the services should see (scripts/up
# passes its environment on), then call e2e_up. Everything started is stopped on exit.
# Secrets: the kubeconfigs are only sent to the API; nothing here prints them.

set -euo pipefail
src=${CM_SOURCE_DIR:?run through ctest}
. "$src/scripts/lib/pg.sh"
. "$src/tests/integration/lib/secret_scan.sh"
E2E_PY=/usr/bin/python3
[ -x "$E2E_PY" ] || E2E_PY=python3
E2E_FIXTURES="$src/tests/fixtures"

failures=0 passes=0
pass() { passes=$((passes + 1)); echo "ok: $*"; }
fail() { failures=$((failures + 1)); echo "FAIL: $*"; }
check() { # check DESCRIPTION COMMAND...: pass if the command succeeds
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

e2e_cleanup() {
  local pid
  for pid in ${E2E_K8S_PIDS:-}; do kill -TERM "$pid" 2>/dev/null || true; done
  "$src/scripts/up" stop >/dev/null 2>&1 || true
  if [ "$failures" -eq 0 ] && [ -z "${E2E_KEEP:-}" ]; then
    rm -rf "$CM_UP_DIR"
  else
    echo "kept $CM_UP_DIR for inspection (logs in run/)"
  fi
}

# Starts the stack; sets api, token, conninfo.
e2e_up() {
  export CM_UP_DIR
  CM_UP_DIR=$(mktemp -d /tmp/cm-e2e.XXXXXX)
  export CM_UP_BUILD_DIR=${CM_BINARY_DIR:?run through ctest}
  export CM_UP_API_PORT CM_UP_PG_PORT CM_UP_HEALTH_PORT
  CM_UP_API_PORT=$(cm_free_port)
  CM_UP_PG_PORT=$(cm_free_port)
  while :; do # three consecutive free ports for the health endpoints
    CM_UP_HEALTH_PORT=$(cm_free_port)
    "$E2E_PY" - "$CM_UP_HEALTH_PORT" 2>/dev/null <<'PY' && break
import socket, sys
p = int(sys.argv[1])
for q in (p + 1, p + 2):
    s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
PY
  done
  api="http://127.0.0.1:$CM_UP_API_PORT"
  trap e2e_cleanup EXIT
  local out
  if ! out=$("$src/scripts/up" -d 2>&1); then
    echo "$out"
    fail "scripts/up -d"
    exit 1
  fi
  token=$(sed -n 's/^admin token (shown once): //p' <<<"$out")
  [ -n "$token" ] || { fail "no admin token from scripts/up"; exit 1; }
  conninfo=$(cm_pg_conninfo "$CM_UP_PG_PORT")
}

sql() { psql "$conninfo" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }

# req METHOD PATH [BODY-FILE] [curl args...]: sets code, body (and headers in $hdrs).
req() {
  local method=$1 path=$2 data=${3:-}
  shift 3 2>/dev/null || shift $#
  local args=(-sS -X "$method" -H "Authorization: Bearer $token" -D "$CM_UP_DIR/hdrs"
    -o "$CM_UP_DIR/body" -w '%{http_code}')
  [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "@$data")
  code=$(curl "${args[@]}" "$@" "$api$path" 2>/dev/null || true)
  body=$(cat "$CM_UP_DIR/body" 2>/dev/null || true)
  hdrs=$(cat "$CM_UP_DIR/hdrs" 2>/dev/null || true)
}

# json FIELD-PATH: a field of $body ("state", "error.message", "clusters.0.name").
json() {
  "$E2E_PY" - "$1" "$body" <<'PY'
import json, sys
v = json.loads(sys.argv[2])
for k in sys.argv[1].split("."):
    if v is None:
        break
    v = v[int(k)] if isinstance(v, list) else v.get(k)
print("" if v is None else (json.dumps(v) if isinstance(v, (dict, list, bool)) else v))
PY
}

# import_body NAME KUBECONFIG-FILE OUT-FILE: the JSON of POST /v1/clusters/import.
import_body() {
  "$E2E_PY" - "$1" "$2" "$3" <<'PY'
import json, sys
with open(sys.argv[2]) as f:
    kc = f.read()
with open(sys.argv[3], "w") as f:
    json.dump({"name": sys.argv[1], "kubeconfig": kc}, f)
PY
}

# import_cluster NAME KUBECONFIG-FILE [curl args...]: POST /v1/clusters/import.
import_cluster() {
  local name=$1 kc=$2
  shift 2
  import_body "$name" "$kc" "$CM_UP_DIR/import-$name.json"
  req POST /v1/clusters/import "$CM_UP_DIR/import-$name.json" "$@"
}

# state_of NAME: the cluster's state as GET /v1/clusters/NAME answers it ("404" if none).
state_of() {
  req GET "/v1/clusters/$1"
  if [ "$code" = 200 ]; then json state; else echo "$code"; fi
}

# wait_state NAME STATE SECONDS: polls GET /v1/clusters/NAME; 0 when it reached STATE.
wait_state() {
  local name=$1 want=$2 t=$3 i s=""
  for i in $(seq 1 $((t * 5))); do
    s=$(state_of "$name")
    [ "$s" = "$want" ] && return 0
    sleep 0.2
  done
  echo "  $name is $s after ${t}s, expected $want" >&2
  return 1
}

# ---------------------------------------------------------------- fake API servers

# k8s_pki DIR: a CA, server and client certificates, kubeconfig (server port filled in by
# k8s_start).
k8s_pki() { bash "$E2E_FIXTURES/make_k8s_pki.sh" --name "$(basename "$1")" "$1"; }

# k8s_start DIR [PORT]: starts the fake API server (requires a client certificate signed
# by DIR's CA) on PORT (a new free one when not given) and writes DIR/kubeconfig for it.
# Sets k8s_port and k8s_pid.
k8s_start() {
  local dir=$1 port=${2:-0} i
  [ -s "$dir/ca.crt" ] || k8s_pki "$dir"
  rm -f "$dir/port"
  "$E2E_PY" "$E2E_FIXTURES/k8s_api_server.py" --port "$port" --port-file "$dir/port" \
    --cert "$dir/server.crt" --key "$dir/server.key" --client-ca "$dir/ca.crt" \
    2>>"$dir/server.log" &
  k8s_pid=$!
  E2E_K8S_PIDS="${E2E_K8S_PIDS:-} $k8s_pid"
  echo "$k8s_pid" >"$dir/pid"
  for i in $(seq 1 100); do
    [ -s "$dir/port" ] && break
    kill -0 "$k8s_pid" 2>/dev/null || { tail -5 "$dir/server.log" >&2; break; }
    sleep 0.1
  done
  k8s_port=$(cat "$dir/port")
  bash "$E2E_FIXTURES/make_k8s_pki.sh" --name "$(basename "$dir")" "$dir" "$k8s_port"
}

# k8s_stop DIR: stops DIR's server (its port stays written in DIR/kubeconfig).
k8s_stop() {
  local pid
  pid=$(cat "$1/pid" 2>/dev/null) || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$1/pid"
}

# ---------------------------------------------------------------- invariants

# The read model equals the write model at a quiet moment: for every name of
# cluster_state, clusters has the same state, seq and spec; each name's cluster_events
# hold seq 1..n without gap or repeat (n = its seq). Waits up to 30 s for the relay and
# the projector to catch up, then reports every difference.
e2e_check_models() {
  local i diff="" gaps=""
  for i in $(seq 1 60); do
    diff=$(sql "SELECT w.name || ': write ' || w.state || '/' || w.seq || ', read '
                      || coalesce(r.state || '/' || r.seq, 'missing')
                      || CASE WHEN r.spec IS DISTINCT FROM w.spec THEN ' (spec differs)'
                              ELSE '' END
                 FROM cluster_state w LEFT JOIN clusters r ON r.name = w.name
                WHERE r.name IS NULL OR r.state <> w.state OR r.seq <> w.seq
                      OR r.spec IS DISTINCT FROM w.spec
                UNION ALL
               SELECT r.name || ': only in the read model' FROM clusters r
                WHERE NOT EXISTS (SELECT 1 FROM cluster_state w WHERE w.name = r.name)")
    gaps=$(sql "SELECT w.name || ': events ' || coalesce(min(e.seq), 0) || '..'
                      || coalesce(max(e.seq), 0) || ' (' || count(e.seq) || ' rows, '
                      || count(DISTINCT e.seq) || ' distinct), seq ' || w.seq
                 FROM cluster_state w LEFT JOIN cluster_events e ON e.cluster = w.name
                GROUP BY w.name, w.seq
               HAVING count(e.seq) <> w.seq OR count(DISTINCT e.seq) <> w.seq
                      OR coalesce(min(e.seq), 1) <> 1 OR coalesce(max(e.seq), 0) <> w.seq")
    [ -z "$diff" ] && [ -z "$gaps" ] && break
    sleep 0.5
  done
  local n
  n=$(sql "SELECT count(*) FROM cluster_state")
  if [ -z "$diff" ]; then pass "read model == write model ($n clusters)"; else fail "read model differs: $diff"; fi
  if [ -z "$gaps" ]; then pass "cluster_events are seq 1..n for every cluster"; else fail "event history: $gaps"; fi
  if grep -lE 'Sanitizer|runtime error:' "$CM_UP_DIR"/run/cm-*.log >/dev/null 2>&1; then
    fail "a sanitizer report in $(grep -lE 'Sanitizer|runtime error:' "$CM_UP_DIR"/run/cm-*.log | tr '\n' ' ')"
  else
    pass "no sanitizer report in the service logs"
  fi
  # no secret in plaintext on a topic, in a table or a log: the kubeconfigs' client keys
  # (cm_secret_scan also looks for their base64, as client-key-data holds them) and the
  # SSH keys sent
  local secrets=()
  for f in "$CM_UP_DIR"/k8s-*/client.key "$CM_UP_DIR"/id_*; do
    [ -f "$f" ] && [[ $f != *.pub ]] && secrets+=("$f")
  done
  if [ ${#secrets[@]} -gt 0 ]; then
    if cm_secret_scan "$(cat "$CM_UP_DIR/run/devbroker/bootstrap")" "$conninfo" "$CM_UP_DIR/run" "${secrets[@]}"; then
      pass "no secret in plaintext on a topic, in the database or in a log (${#secrets[@]} files)"
    else
      fail "a secret was found in plaintext (see above)"
    fi
  fi
}

e2e_done() {
  echo "$passes passed, $failures failed"
  if [ "$failures" -ne 0 ] && [ -n "${CM_UP_DIR:-}" ]; then
    # What the services warned of, by message: CI keeps no log folder.
    local f
    for f in "$CM_UP_DIR"/run/cm-*.log; do
      [ -s "$f" ] || continue
      echo "warnings and errors of ${f##*/} (count, message):"
      grep -hE '"level":"(warn|error)"' "$f" | sed -nE 's/.*"msg":"([^"]*)".*/\1/p' |
        sort | uniq -c | sort -rn | head -n 8 | sed 's/^/  /' || true
    done
  fi
  [ "$failures" -eq 0 ]
}
