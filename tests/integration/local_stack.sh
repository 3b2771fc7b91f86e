#!/usr/bin/env bash
# README command 1 works: ./scripts/up -d brings up PostgreSQL, cm-devbroker, cm-projector,
# two cm-workers and cm-api; every service answers /healthz and /readyz; the admin token it
# prints is accepted; /readyz turns not-ready (503, naming the check) when PostgreSQL or the
# broker stops and ready again when PostgreSQL is back; ./scripts/up stop stops everything
# and a second ./scripts/up reuses the data.
set -euo pipefail
src=${CM_SOURCE_DIR:?run through ctest}
. "$src/scripts/lib/pg.sh"
export CM_UP_DIR
CM_UP_DIR=$(mktemp -d /tmp/cm-stack.XXXXXX)
export CM_UP_BUILD_DIR=${CM_BINARY_DIR:?run through ctest}
export CM_UP_API_PORT=$(cm_free_port) CM_UP_PG_PORT=$(cm_free_port) CM_UP_HEALTH_PORT
# three consecutive free ports for the health endpoints
while :; do
  CM_UP_HEALTH_PORT=$(cm_free_port)
  python3 - "$CM_UP_HEALTH_PORT" <<'PY' && break
import socket, sys
p = int(sys.argv[1])
for q in (p + 1, p + 2):
    s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
PY
done
api="http://127.0.0.1:$CM_UP_API_PORT"
failures=0 passes=0
pass() { passes=$((passes + 1)); echo "ok: $*"; }
fail() { failures=$((failures + 1)); echo "FAIL: $*"; }
cleanup() { "$src/scripts/up" stop >/dev/null 2>&1 || true; rm -rf "$CM_UP_DIR"; }
trap cleanup EXIT

# status code of a GET, and the body into $body
get() { body=$(curl -sS -o - -w '\n%{http_code}' "$@" 2>/dev/null || true); code=${body##*$'\n'}; body=${body%$'\n'*}; }
# waits up to $1 seconds for GET $2 to answer status $3
wait_status() {
  local t=$1 url=$2 want=$3 i
  for i in $(seq 1 $((t * 5))); do get "$url"; [ "$code" = "$want" ] && return 0; sleep 0.2; done
  return 1
}

out=$("$src/scripts/up" -d)
echo "$out"
token=$(sed -n 's/^admin token (shown once): //p' <<<"$out")
[ -n "$token" ] && pass "up printed an admin token" || fail "no admin token in the output of up"
grep -q "curl -fsS -H \"Authorization: Bearer $token\"" <<<"$out" && pass "up printed a curl example" || fail "no curl example"

get "$api/healthz"; [ "$code" = 200 ] && pass "cm-api /healthz 200" || fail "cm-api /healthz: $code $body"
for p in "$CM_UP_HEALTH_PORT" "$((CM_UP_HEALTH_PORT + 1))" "$((CM_UP_HEALTH_PORT + 2))"; do
  get "http://127.0.0.1:$p/healthz"; [ "$code" = 200 ] && pass "health port $p /healthz 200" || fail "port $p /healthz: $code"
  get "http://127.0.0.1:$p/readyz"; [ "$code" = 200 ] && pass "health port $p /readyz 200" || fail "port $p /readyz: $code $body"
  get "http://127.0.0.1:$p/metrics"; grep -q '^cm_ready{component=.*check="database"} 1' <<<"$body" && pass "port $p /metrics" || fail "port $p /metrics: $body"
done
get "$api/readyz"
[ "$code" = 200 ] && jq_ok=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["ready"] and d["checks"]["database"]["ok"] and d["checks"]["broker"]["ok"])' "$body") || jq_ok=False
[ "$jq_ok" = True ] && pass "cm-api /readyz: database and broker ok" || fail "cm-api /readyz: $code $body"
get "$api/v1/publickey"
python3 -c 'import json,sys,base64; assert len(base64.b64decode(json.loads(sys.argv[1])["publicKey"]))==32' "$body" 2>/dev/null \
  && pass "/v1/publickey serves a 32-byte key" || fail "/v1/publickey: $code $body"
[ "$(cat "$CM_UP_DIR/keys/seal.pub" | tail -n 1)" = "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["publicKey"])' "$body")" ] \
  && pass "publickey is the key file's" || fail "publickey differs from $CM_UP_DIR/keys/seal.pub"
get "$api/v1/nowhere"; [ "$code" = 404 ] && pass "unknown endpoint 404" || fail "unknown endpoint: $code"
get -X POST "$api/healthz"; [ "$code" = 405 ] && pass "wrong method 405" || fail "wrong method: $code"

# the token is stored hashed only
conninfo=$(cm_pg_conninfo "$CM_UP_PG_PORT")
rows=$(psql "$conninfo" -qAt -c "SELECT count(*) FROM api_tokens WHERE name='local-admin' AND role='admin' AND token_sha256 = sha256('$token'::bytea)")
[ "$rows" = 1 ] && pass "admin token stored as its sha256" || fail "api_tokens: $rows"
pg_dump "$conninfo" | grep -qF -- "$token" && fail "token plaintext found in the database" || pass "no token plaintext in the database"
grep -rqs -- "$token" "$CM_UP_DIR/run/" && fail "token appears in a log" || pass "token appears in no log"
psql "$conninfo" -qAt -c "INSERT INTO api_tokens (token_sha256, name, role) VALUES (sha256('keep'::bytea), 'kept', 'user')" >/dev/null

# broker down -> every service not ready, naming the broker
cm_pid=$(cat "$CM_UP_DIR/run/devbroker/pid")
kill -STOP "$cm_pid"
if wait_status 20 "$api/readyz" 503; then
  grep -q '"broker":{"ok":false' <<<"$body" && pass "broker stopped: cm-api /readyz 503 naming the broker" || fail "503 without broker named: $body"
else fail "cm-api still ready with the broker stopped: $body"; fi
wait_status 20 "http://127.0.0.1:$CM_UP_HEALTH_PORT/readyz" 503 && pass "broker stopped: worker /readyz 503" || fail "worker still ready with the broker stopped"
get "$api/healthz"; [ "$code" = 200 ] && pass "/healthz stays 200 while not ready" || fail "/healthz: $code"
kill -CONT "$cm_pid"
wait_status 30 "$api/readyz" 200 && pass "broker back: cm-api ready again" || fail "cm-api not ready after the broker came back: $body"

# PostgreSQL down -> not ready naming the database; back -> ready (reconnect)
cm_pg_stop "$CM_UP_DIR/pg"
if wait_status 20 "$api/readyz" 503; then
  grep -q '"database":{"ok":false' <<<"$body" && pass "PostgreSQL stopped: /readyz 503 naming the database" || fail "503 without database named: $body"
else fail "cm-api still ready with PostgreSQL stopped"; fi
wait_status 20 "http://127.0.0.1:$((CM_UP_HEALTH_PORT + 2))/readyz" 503 && pass "PostgreSQL stopped: projector /readyz 503" || fail "projector still ready with PostgreSQL stopped"
cm_pg_start "$CM_UP_DIR/pg" "$CM_UP_PG_PORT"
wait_status 30 "$api/readyz" 200 && pass "PostgreSQL back: cm-api ready again" || fail "cm-api not ready after PostgreSQL came back: $body"
wait_status 30 "http://127.0.0.1:$((CM_UP_HEALTH_PORT + 2))/readyz" 200 && pass "PostgreSQL back: projector ready again" || fail "projector not ready again"

"$src/scripts/up" stop >/dev/null
for s in cm-api cm-worker-1 cm-worker-2 cm-projector; do
  [ ! -e "$CM_UP_DIR/run/$s.pid" ] || fail "$s pid file left after stop"
done
get "$api/healthz"; [ "$code" = 000 ] && pass "stop: cm-api no longer answers" || fail "cm-api still answers after stop"
grep -q '"level":"error"' "$CM_UP_DIR"/run/cm-*.log && fail "an error was logged: $(grep -h '"level":"error"' "$CM_UP_DIR"/run/cm-*.log | head -3)" || pass "no error logged"

out=$("$src/scripts/up" -d)
rows=$(psql "$conninfo" -qAt -c "SELECT count(*) FROM api_tokens WHERE name='kept'")
[ "$rows" = 1 ] && pass "second up reuses the data" || fail "data lost across restarts ($rows)"
token2=$(sed -n 's/^admin token (shown once): //p' <<<"$out")
rows=$(psql "$conninfo" -qAt -c "SELECT count(*) FROM api_tokens WHERE name='local-admin' AND token_sha256 = sha256('$token'::bytea)")
[ "$rows" = 0 ] && [ -n "$token2" ] && pass "second up replaced the admin token" || fail "old admin token still valid"
"$src/scripts/up" stop >/dev/null

echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
