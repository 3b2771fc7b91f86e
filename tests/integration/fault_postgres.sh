#!/usr/bin/env bash
# fault_postgres - PostgreSQL stopped for ~10 s under a steady stream of API requests and
# imports (scripts/up -d stack, a live fake API server): every service's /readyz turns 503
# naming the database meanwhile and 200 again after the restart; every PostgreSQL
# connection of every service backs off 100 ms doubling to the configured cap (2 s here),
# never above it and never sooner than it announced, and reconnects after the restart
# (tests/integration/lib/pg_backoff.py over the services' "conn"-tagged log lines); API
# requests during the outage are answered 503 (never 500, never a hang past their
# timeout); afterwards every command answered 202 ends applied (nothing lost), the
# imported clusters reach Running and the read model equals the write model.
# CM_FAULTS_LONG=1: three outages of 20 s.
. "${CM_SOURCE_DIR:?run through ctest}/tests/integration/lib/e2e.sh" || exit 1

outages=1 down_s=10
[ -n "${CM_FAULTS_LONG:-}" ] && outages=3 down_s=20
# a cap the 10 s outage reaches: 100, 200, ... 1600, 2000, 2000 ms
backoff_min=100 backoff_max=2000
export CM_PROBE_INTERVAL_S=5 CM_POSTGRES_RECONNECT_MIN_MS=$backoff_min CM_POSTGRES_RECONNECT_MAX_MS=$backoff_max
e2e_up
k8s="$CM_UP_DIR/k8s-pg"
k8s_start "$k8s"
kc_json=$("$E2E_PY" -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' "$k8s/kubeconfig")
urls=("http://127.0.0.1:$CM_UP_HEALTH_PORT/readyz" "http://127.0.0.1:$((CM_UP_HEALTH_PORT + 1))/readyz"
  "http://127.0.0.1:$((CM_UP_HEALTH_PORT + 2))/readyz" "$api/readyz")
names=(cm-worker-1 cm-worker-2 cm-projector cm-api)

# The request stream: an import and a list about every 0.25 s, each with a 10 s timeout;
# one line per request: "KIND CODE SECONDS NAME COMMAND-ID".
stream() {
  local i=0 out t code id
  while [ ! -e "$CM_UP_DIR/stop-stream" ]; do
    i=$((i + 1))
    printf '{"name":"pg-%d","kubeconfig":%s}' "$i" "$kc_json" >"$CM_UP_DIR/imp.json"
    out=$(curl -sS -o "$CM_UP_DIR/imp.out" -w '%{http_code} %{time_total}' --max-time 10 \
      -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      --data-binary "@$CM_UP_DIR/imp.json" "$api/v1/clusters/import" 2>/dev/null) || true
    id=$(sed -n 's/.*"commandId" *: *"\([^"]*\)".*/\1/p' "$CM_UP_DIR/imp.out" 2>/dev/null)
    echo "import ${out:-000 10} pg-$i ${id:--}"
    out=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 \
      -H "Authorization: Bearer $token" "$api/v1/clusters" 2>/dev/null) || true
    echo "list ${out:-000 10} - -"
    sleep 0.25
  done
}
: >"$CM_UP_DIR/requests.log"
stream >>"$CM_UP_DIR/requests.log" &
spid=$!

# all_ready WANT: every service's /readyz answers WANT (for 503: naming the database)
all_ready() {
  local want=$1 k c
  for k in 0 1 2 3; do
    c=$(curl -sS -o "$CM_UP_DIR/ready.out" -w '%{http_code}' --max-time 5 "${urls[$k]}" 2>/dev/null) || true
    [ "$c" = "$want" ] || return 1
    if [ "$want" = 503 ]; then grep -q '"database"' "$CM_UP_DIR/ready.out" || return 1; fi
  done
}

for o in $(seq 1 $outages); do
  sleep 5
  down_at=$(date +%s.%N)
  cm_pg_stop "$CM_UP_DIR/pg"
  t0=$SECONDS
  ok=0
  while [ $((SECONDS - t0)) -lt "$down_s" ]; do
    all_ready 503 && { ok=1; break; }
    sleep 0.3
  done
  if [ "$ok" = 1 ]; then
    pass "outage $o: every service's /readyz is 503 naming the database after $((SECONDS - t0)) s"
  else
    fail "outage $o: not every /readyz 503 with the database: $(for k in 0 1 2 3; do echo "${names[$k]} $(curl -sS --max-time 5 "${urls[$k]}" 2>&1)"; done)"
  fi
  echo "--- pg down" >>"$CM_UP_DIR/requests.log"
  sleep $((down_s - (SECONDS - t0) > 0 ? down_s - (SECONDS - t0) : 0))
  echo "--- pg up" >>"$CM_UP_DIR/requests.log"
  echo "$down_at $(date +%s.%N)" >>"$CM_UP_DIR/outages"
  cm_pg_start "$CM_UP_DIR/pg" "$CM_UP_PG_PORT"
  t1=$SECONDS ok=0
  while [ $((SECONDS - t1)) -lt 30 ]; do
    all_ready 200 && { ok=1; break; }
    sleep 0.3
  done
  [ "$ok" = 1 ] && pass "outage $o: every service ready again $((SECONDS - t1)) s after the restart" ||
    fail "outage $o: not ready 30 s after the restart: $(for k in 0 1 2 3; do echo "${names[$k]} $(curl -sS --max-time 5 "${urls[$k]}" 2>&1)"; done)"
done
sleep 5
touch "$CM_UP_DIR/stop-stream"
wait "$spid" || true

log="$CM_UP_DIR/requests.log"
n=$(grep -c '^import' "$log" || true)
c202=$(grep -c '^import 202' "$log" || true)
c503=$(grep -cE '^(import|list) 503' "$log" || true)
bad=$(grep -E '^(import|list) ' "$log" | grep -vE '^import 202 |^list 200 |^(import|list) 503 ' || true)
echo "  $n imports: $c202 answered 202, $c503 requests answered 503"
[ -z "$bad" ] && pass "every request was answered 202/200 or 503 in time (never 500, never a hang)" ||
  fail "other answers: $(head -5 <<<"$bad")"
[ "$c503" -ge 1 ] && pass "requests during the outage were answered 503" || fail "no 503 during the outage"
slow=$(awk '$1 ~ /import|list/ && $3 > 9.5' "$log" | head -3)
[ -z "$slow" ] && pass "no request took more than its timeout" || fail "slow requests: $slow"
after=$(sed -n '/^--- pg up/,$p' "$log" | grep -c '^import 202' || true)
[ "$after" -ge 3 ] && pass "imports are accepted again after the restart ($after)" || fail "only $after imports accepted after the restart"

# nothing answered 202 is lost
awk '$1 == "import" && $2 == 202 { print $5 "," $4 }' "$log" >"$CM_UP_DIR/ids.csv"
sql "CREATE TABLE fault_ids (command_id text PRIMARY KEY, cluster text)"
psql "$conninfo" -qAtX -v ON_ERROR_STOP=1 -c "\\copy fault_ids FROM '$CM_UP_DIR/ids.csv' WITH (FORMAT csv)"
left=""
for _ in $(seq 1 120); do
  left=$(sql "SELECT count(*) FROM fault_ids i LEFT JOIN applied_commands a USING (command_id) WHERE a.result IS DISTINCT FROM 'applied'")
  [ "$left" = 0 ] && break
  sleep 0.5
done
[ "$left" = 0 ] && pass "each of the $c202 commands answered 202 was applied" || fail "$left commands answered 202 not applied"
notrun=""
for _ in $(seq 1 120); do
  notrun=$(sql "SELECT string_agg(i.cluster || ' ' || coalesce(w.state::text, 'missing'), ', ') FROM fault_ids i
                  LEFT JOIN cluster_state w ON w.name = i.cluster WHERE w.state IS DISTINCT FROM 'Running'")
  [ -z "$notrun" ] && break
  sleep 0.5
done
[ -z "$notrun" ] && pass "every accepted import reached Running" || fail "not Running: $notrun"
res=$(sql "SELECT count(*) FROM fault_ids i LEFT JOIN command_results r USING (command_id) WHERE r.status IS DISTINCT FROM 'applied'")
[ "$res" = 0 ] && pass "the projector recorded every result as applied" || fail "$res results not applied in the read model"
# bounded backoff, from each connection's own log lines
if "$E2E_PY" "$src/tests/integration/lib/pg_backoff.py" "$backoff_min" "$backoff_max" "$CM_UP_DIR/outages" \
  "$CM_UP_DIR"/run/cm-{worker-1,worker-2,projector,api}.log >"$CM_UP_DIR/backoff.txt"; then
  pass "$(tail -1 "$CM_UP_DIR/backoff.txt" | sed "s/^ok: //")"
else
  fail "backoff: $(grep -v '^ok' "$CM_UP_DIR/backoff.txt" | head -5)"
fi
for s in cm-projector cm-worker-1 cm-worker-2 cm-api; do
  kill -0 "$(cat "$CM_UP_DIR/run/$s.pid")" 2>/dev/null && pass "$s survived the outage" || fail "$s died: $(tail -3 "$CM_UP_DIR/run/$s.log")"
done
e2e_check_models
e2e_done
