# tests/integration/lib/e2e_zke.sh - what the zke scenarios (tests/integration/e2e_zke_*.sh)
# share, on top of lib/e2e.sh: real OpenSSH "nodes" on 127.0.0.11.. (tests/fixtures/
# sshd_nodes.sh) whose container runtime is tests/fixtures/fake-docker, all on this
# machine, so cm-worker is told zke.node_root = NODES/{{node_name}}/root.
#
# Call zke_nodes_start N before e2e_up (it exports the CM_ZKE_* tunables the workers
# read), then zke_after_up. Everything started is stopped on exit; the nodes' docker logs
# are copied to $CM_UP_DIR/nodelogs first.

zke_nodes_start() {
  local n=$1 i
  ZKE_NODES=$(mktemp -d /tmp/cm-e2e-nodes.XXXXXX)
  bash "$E2E_FIXTURES/sshd_nodes.sh" start "$ZKE_NODES" --nodes "$n" </dev/null >/dev/null ||
    { fail "sshd_nodes.sh start"; exit 1; }
  for i in $(seq 1 "$n"); do "$E2E_FIXTURES/fake-docker" install "$ZKE_NODES/node$i"; done
  # shellcheck disable=SC1091
  . "$ZKE_NODES/env"
  export CM_ZKE_NODE_ROOT="$ZKE_NODES/{{node_name}}/root"
  export CM_ZKE_COMMAND_TIMEOUT_S=${CM_ZKE_COMMAND_TIMEOUT_S:-20} CM_ZKE_CONNECT_TIMEOUT_S=5
  # fake-docker runs no API server: the prober would turn every Running cluster
  # Unreachable, so it waits longer than a scenario lasts
  export CM_PROBE_INTERVAL_S=3600
}

zke_cleanup() {
  if [ -n "${ZKE_NODES:-}" ] && [ -d "$ZKE_NODES" ]; then
    if [ -n "${CM_UP_DIR:-}" ] && [ -d "$CM_UP_DIR" ]; then
      local i
      mkdir -p "$CM_UP_DIR/nodelogs"
      for i in "$ZKE_NODES"/node*; do
        cp "$i/docker.log" "$CM_UP_DIR/nodelogs/$(basename "$i").docker.log" 2>/dev/null || true
      done
    fi
    bash "$E2E_FIXTURES/sshd_nodes.sh" stop "$ZKE_NODES" >/dev/null 2>&1 || true
  fi
  e2e_cleanup
}

# After e2e_up: the trap also stops the nodes; the SSH key and the admin token are put
# where e2e_check_models' secret scan looks ($CM_UP_DIR/id_*).
zke_after_up() {
  trap zke_cleanup EXIT
  cp "$CM_SSHD_KEY" "$CM_UP_DIR/id_ed25519"
  printf '%s\n' "$token" >"$CM_UP_DIR/id_token_admin"
}

# node_json I ROLE...: one node of the spec.
node_json() {
  local i=$1
  shift
  "$E2E_PY" -c 'import json,sys; print(json.dumps({"name": "node" + sys.argv[1], "address": "127.0.0.1" + sys.argv[1], "roles": sys.argv[2:]}))' "$i" "$@"
}

# create_body NAME KEY-FILE OUT-FILE NODE-JSON...: the JSON of POST /v1/clusters.
create_body() {
  local name=$1 key=$2 out=$3
  shift 3
  "$E2E_PY" - "$name" "$key" "$out" "$CM_SSHD_USER" "$CM_SSHD_PORT" "$@" <<'PY'
import json, sys
name, key, out, user, port = sys.argv[1:6]
with open(key) as f:
    k = f.read()
with open(out, "w") as f:
    json.dump({"name": name, "sshUser": user, "sshPort": int(port), "sshKey": k,
               "managerAddress": "127.0.0.1", "clusterDomain": "cluster.local",
               "nodes": [json.loads(n) for n in sys.argv[6:]]}, f)
PY
}

# nodes_body OUT-FILE NODE-JSON...: the JSON of PUT /v1/clusters/NAME.
nodes_body() {
  local out=$1
  shift
  "$E2E_PY" -c 'import json,sys; json.dump({"nodes": [json.loads(n) for n in sys.argv[2:]]}, open(sys.argv[1], "w"))' "$out" "$@"
}

# knob I LINE: a fake-docker knob on node I (MISSING=1, SWAP=on, SLOW_RUN=30, ...).
knob() { echo "$2" >>"$ZKE_NODES/node$1/fake-docker.env"; }

# containers_on I: how many containers node I has.
containers_on() { find "$ZKE_NODES/node$1/docker/containers" -name '*.json' 2>/dev/null | wc -l; }

# files_on I: how many files are under node I's root.
files_on() { find "$ZKE_NODES/node$1/root" -mindepth 1 -type f 2>/dev/null | wc -l; }

# log_size I: bytes of node I's docker log (an offset for mutations_since).
log_size() { stat -c %s "$ZKE_NODES/node$1/docker.log" 2>/dev/null || echo 0; }

# mutations_since I OFFSET: the finished docker calls of node I after OFFSET that changed
# something (as it_zke.c).
mutations_since() {
  tail -c +$(($2 + 1)) "$ZKE_NODES/node$1/docker.log" 2>/dev/null | grep ' rc=' |
    grep -Ev ' rc=[0-9]+ docker (inspect|version|info|ps|exec|image inspect) ' || true
}

# started_twice I: containers run or created twice on node I (empty: none).
started_twice() {
  grep -oE 'rc=0 docker (run -d|create) --name [^ ]+' "$ZKE_NODES/node$1/docker.log" 2>/dev/null |
    sort | uniq -d || true
}

# last_error NAME: the cluster's lastError.
last_error() { req GET "/v1/clusters/$1"; json lastError; }

# nodes_reset: every node as new (no containers, files, log or knobs), as it_zke.c.
nodes_reset() {
  local n
  for n in "$ZKE_NODES"/node*; do
    rm -rf "$n/docker" "$n/docker.log" "$n/fake-docker.env"
    find "$n/root" -mindepth 1 -delete
    "$E2E_FIXTURES/fake-docker" install "$n"
  done
}

# wait_log I TEXT SECONDS: waits until node I's docker log holds TEXT.
wait_log() {
  local i
  for i in $(seq 1 $(($3 * 10))); do
    grep -qF -- "$2" "$ZKE_NODES/node$1/docker.log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "  node$1's docker log lacks \"$2\" after $3 s" >&2
  return 1
}
