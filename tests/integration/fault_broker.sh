#!/usr/bin/env bash
# fault_broker - nothing is lost and nothing is applied twice while the Kafka broker
# misbehaves. The whole stack runs on scripts/up -d; tests/integration/fault_driver puts
# 10,000 Import/Cancel/Import/Delete commands of 250 clusters straight onto cm.commands
# (imports of a live fake API server, so connect jobs run and finish) while a background
# loop injects faults through cm-devbroker's control socket: partition leaders of
# cm.commands and cm.events moved (every produce and fetch request still sent to the old
# leader is answered NOT_LEADER_FOR_PARTITION), injected request errors on fetch, offset
# commit and heartbeat, one broker at a time down and up again (never broker 1, which
# coordinates both consumer groups: --coordinator; librdkafka 2.0.2's mock aborts when a
# member's JoinGroup in flight to a coordinator that went down is sent again on
# reconnect, docs/devbroker.md). Afterwards, once
# everything is quiet:
#   - the broker holds every command the driver had acknowledged, and every command id is
#     in applied_commands exactly once (applied or rejected), and the projector's
#     command_results say the same for each;
#   - an applied command has exactly one "...Requested" event, a rejected one none;
#   - each cluster's outbox and cluster_events are seq 1..n without gap or repeat, every
#     outbox row is sent, and each event starts from the state the previous one ended in;
#   - no job is left queued or running, every service is still alive;
#   - the read model equals the write model (e2e_check_models).
# No count-based produce errors ("errors produce N ..."): librdkafka 2.0.2's mock cluster
# does not check the sequence numbers of idempotent producers, so when the last injected
# error hits batch R1 and a later batch R2 of the partition is already in flight, R2 is
# stored, the client acknowledges R1 implicitly and R1 is lost, which a real broker
# prevents by refusing R2 (OUT_OF_ORDER_SEQUENCE_NUMBER); see docs/devbroker.md.
# CM_FAULTS_LONG=1: 1,000 clusters x 50 rounds (50,000 commands).
. "${CM_SOURCE_DIR:?run through ctest}/tests/integration/lib/e2e.sh" || exit 1

clusters=250 rounds=40 rate=400 quiet_s=420 stall_s=90
if [ -n "${CM_FAULTS_LONG:-}" ]; then clusters=1000 rounds=50 rate=600 quiet_s=1500; fi
total=$((clusters * rounds))
export CM_JOB_RUNNERS=8 CM_PROBE_INTERVAL_S=30 CM_CONNECT_DEADLINE_S=60
# Broker 1 coordinates the groups from the start; only brokers 2 and 3 go down.
export CM_UP_DEVBROKER_ARGS="--coordinator cm-worker=1 --coordinator cm-projector=1"
e2e_up
ctl="$CM_UP_DIR/run/devbroker/control.sock"
bootstrap=$(cat "$CM_UP_DIR/run/devbroker/bootstrap")
ctlc() { "$CM_BINARY_DIR/tools/cm-devbroker" --ctl "$ctl" "$@"; }
[ "$(ctlc ping)" = "ok pong" ] && pass "scripts/up's cm-devbroker has a control socket" || fail "no control socket at $ctl"
[ "$(grep -c '"group coordinator pinned"' "$CM_UP_DIR/run/devbroker/devbroker.log")" = 2 ] &&
  pass "broker 1 coordinates cm-worker and cm-projector" || fail "coordinators not pinned: $(grep -i coordinator "$CM_UP_DIR/run/devbroker/devbroker.log" | head -3)"

k8s="$CM_UP_DIR/k8s-fb"
k8s_start "$k8s"

# The fault loop: one fault about every 0.7 s until the driver and the services are done.
faults() {
  local n=0 b f
  while [ ! -e "$CM_UP_DIR/stop-faults" ]; do
    f=$((RANDOM % 8))
    b=$((RANDOM % 3 + 1))
    case $f in
      0) ctlc errors fetch 5 NOT_LEADER_FOR_PARTITION ;;
      1) ctlc errors offsetcommit 3 COORDINATOR_NOT_AVAILABLE ;;
      2) ctlc errors heartbeat 2 REBALANCE_IN_PROGRESS ;;
      3) b=$((RANDOM % 2 + 2)) && ctlc broker-down "$b" && sleep 2 && ctlc broker-up "$b" ;;
      4 | 5) ctlc leader cm.commands $((RANDOM % 12)) "$b" ;;
      6 | 7) ctlc leader cm.events $((RANDOM % 12)) "$b" ;;
    esac
    n=$((n + 1))
    sleep 0.$((RANDOM % 5 + 5))
  done
  for b in 1 2 3; do ctlc broker-up "$b"; done
  echo "$n faults injected"
}
faults >"$CM_UP_DIR/faults.log" 2>&1 &
fpid=$!

t0=$SECONDS
if "$CM_BINARY_DIR/tests/fault_driver" "$bootstrap" "$CM_UP_DIR/keys/seal.pub" "$k8s/kubeconfig" \
  fb "$clusters" "$rounds" "$rate" "$CM_UP_DIR/ids.csv" 2>"$CM_UP_DIR/driver.log"; then
  pass "$total commands of $clusters clusters produced under faults ($(tail -1 "$CM_UP_DIR/driver.log"))"
else
  fail "the driver failed: $(tail -3 "$CM_UP_DIR/driver.log")"
fi
sql "CREATE TABLE fault_ids (command_id text PRIMARY KEY, cluster text, kind text)"
psql "$conninfo" -qAtX -v ON_ERROR_STOP=1 -c "\\copy fault_ids FROM '$CM_UP_DIR/ids.csv' WITH (FORMAT csv)"
[ "$(sql "SELECT count(*) FROM fault_ids")" = "$total" ] && pass "$total distinct command ids" || fail "ids: $(sql "SELECT count(*) FROM fault_ids")"

# quiet: every command answered in both models, no job left, nothing left to relay
backlog_sql="SELECT (SELECT count(*) FROM fault_ids i JOIN applied_commands a USING (command_id)) || ' applied, '
  || (SELECT count(*) FROM fault_ids i JOIN command_results r USING (command_id) WHERE r.status <> 'pending') || ' results, '
  || (SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')) || ' jobs, '
  || (SELECT count(*) FROM outbox WHERE sent_at IS NULL) || ' events and '
  || (SELECT count(*) FROM rejection_outbox WHERE sent_at IS NULL) || ' rejections unsent'"
quiet="$total applied, $total results, 0 jobs, 0 events and 0 rejections unsent"
# Waits as long as the backlog moves (a loaded machine is slow, not wrong); a backlog
# that does not move for stall_s is a stall, and quiet_s bounds the whole run.
now="" last="" moved=$SECONDS said=$SECONDS
while :; do
  now=$(sql "$backlog_sql" 2>/dev/null || echo "no answer from PostgreSQL")
  [ "$now" = "$quiet" ] && break
  if [ "$now" != "$last" ]; then last=$now moved=$SECONDS; fi
  [ $((SECONDS - moved)) -ge "$stall_s" ] || [ $((SECONDS - t0)) -ge "$quiet_s" ] && break
  if [ $((SECONDS - said)) -ge 30 ]; then
    said=$SECONDS
    echo "  at $((SECONDS - t0)) s: $now (of $total)"
  fi
  sleep 0.5
done
touch "$CM_UP_DIR/stop-faults"
wait "$fpid" || true
echo "  quiet after $((SECONDS - t0)) s; $(tail -1 "$CM_UP_DIR/faults.log")"
if [ "$now" = "$quiet" ]; then
  pass "quiet after $((SECONDS - t0)) s"
elif [ $((SECONDS - moved)) -ge "$stall_s" ]; then
  fail "stalled: nothing moved for ${stall_s}s: $now (of $total)"
else
  fail "not quiet after ${quiet_s}s (still moving): $now (of $total)"
fi
f=$(grep -c '^ok' "$CM_UP_DIR/faults.log" || true)
[ "$f" -ge 20 ] && pass "$f faults injected during the run" || fail "only $f faults injected: $(grep -v '^ok' "$CM_UP_DIR/faults.log" | head -3)"

# What the broker holds, read once the faults have stopped (a read under faults may end
# early): every command the driver produced (a retry after a broker went down may store
# one twice; cm must then apply it once).
for _ in $(seq 1 20); do
  timeout 60 kcat -b "$bootstrap" -C -t cm.commands -o beginning -e -q -f '%p %o %S %k\n' \
    >"$CM_UP_DIR/commands-topic.txt" 2>"$CM_UP_DIR/kcat.log" &&
    [ "$(wc -l <"$CM_UP_DIR/commands-topic.txt")" -ge "$total" ] && break
  sleep 1
done
echo "  cm.commands holds $(wc -l <"$CM_UP_DIR/commands-topic.txt") messages for the $total commands the driver produced"
short=$(awk 'NR == FNR { split($0, f, ","); want[f[2]]++; next } { have[$4]++ }
             END { for (c in want) if (have[c] < want[c]) printf "%s (%d of %d) ", c, have[c], want[c] }' \
  "$CM_UP_DIR/ids.csv" "$CM_UP_DIR/commands-topic.txt")
[ -z "$short" ] && pass "the broker holds every command of every cluster" || fail "clusters short on cm.commands: $short"
implicit=$(sed -n 's/.* \([0-9]*\) acknowledged without an offset$/\1/p' "$CM_UP_DIR/driver.log")
[ "$implicit" = 0 ] && pass "every command was acknowledged with its offset (none implicitly)" ||
  fail "${implicit:-?} commands acknowledged without an offset: $(tail -1 "$CM_UP_DIR/driver.log")"

# A valid command is never dead-lettered, whatever the broker does.
timeout 60 kcat -b "$bootstrap" -C -t cm.commands.dlq -o beginning -e -q \
  -f '%p %o %h\n' >"$CM_UP_DIR/dlq.txt" 2>/dev/null || true
[ ! -s "$CM_UP_DIR/dlq.txt" ] && pass "cm.commands.dlq is empty" ||
  fail "$(wc -l <"$CM_UP_DIR/dlq.txt") messages on cm.commands.dlq: $(head -c 600 "$CM_UP_DIR/dlq.txt")"

# nothing lost, nothing applied twice
lost=$(sql "SELECT count(*) FROM fault_ids i LEFT JOIN applied_commands a USING (command_id) WHERE a.command_id IS NULL")
if [ "$lost" = 0 ]; then
  pass "nothing lost: every command was applied or rejected ($(sql "SELECT string_agg(result || ' ' || n, ', ') FROM (SELECT result, count(*) n FROM fault_ids JOIN applied_commands USING (command_id) GROUP BY result) x"))"
else
  # Where each lost command was on cm.commands and what the workers said of it.
  for id in $(sql "SELECT i.command_id FROM fault_ids i LEFT JOIN applied_commands a USING (command_id)
                   WHERE a.command_id IS NULL ORDER BY 1 LIMIT 3"); do
    echo "  lost $id ($(grep "^$id," "$CM_UP_DIR/ids.csv" | cut -d, -f2,3)):"
    grep -h "$id" "$CM_UP_DIR"/run/cm-worker-*.log | head -n 5 | sed 's/^/    /'
  done
  fail "$lost commands neither applied nor rejected: $(sql "SELECT string_agg(i.cluster || ' ' || i.kind, ', ') FROM fault_ids i LEFT JOIN applied_commands a USING (command_id) WHERE a.command_id IS NULL")"
fi
bad=$(sql "SELECT count(*) FROM fault_ids i JOIN applied_commands a USING (command_id)
            LEFT JOIN command_results r USING (command_id)
           WHERE r.status IS DISTINCT FROM a.result")
[ "$bad" = 0 ] && pass "command_results agree with applied_commands for each id" || fail "$bad command results differ"
twice=$(sql "SELECT count(*) FROM fault_ids i JOIN applied_commands a USING (command_id)
              WHERE (SELECT count(*) FROM cluster_events e WHERE e.command_id = i.command_id
                       AND e.type LIKE '%Requested')
                    <> CASE a.result WHEN 'applied' THEN 1 ELSE 0 END")
[ "$twice" = 0 ] && pass "each applied command has exactly one event, each rejected one none" || fail "$twice commands with a wrong event count"
rej=$(sql "SELECT count(*) FROM fault_ids i JOIN applied_commands a USING (command_id)
            WHERE a.result = 'rejected' AND NOT EXISTS (SELECT 1 FROM rejection_outbox o
                  WHERE o.command_id = i.command_id AND o.sent_at IS NOT NULL)")
[ "$rej" = 0 ] && pass "every rejection was published" || fail "$rej rejections not published"

# per-cluster sequences
gaps=$(sql "SELECT string_agg(cluster, ' ') FROM (SELECT o.cluster FROM outbox o
              JOIN cluster_state w ON w.name = o.cluster GROUP BY o.cluster, w.seq
            HAVING count(*) <> w.seq OR count(DISTINCT o.seq) <> w.seq OR min(o.seq) <> 1
                   OR max(o.seq) <> w.seq OR bool_or(o.sent_at IS NULL)) x")
[ -z "$gaps" ] && pass "every cluster's outbox is seq 1..n and sent" || fail "outbox gaps: $gaps"
chain=$(sql "SELECT count(*) FROM (SELECT from_state, lag(to_state) OVER w AS prev, seq
              FROM cluster_events WHERE cluster LIKE 'fb-%' WINDOW w AS (PARTITION BY cluster ORDER BY seq)) x
             WHERE seq > 1 AND from_state IS DISTINCT FROM prev
               AND NOT (prev = 'Deleted' AND from_state IS NULL)")
[ "$chain" = 0 ] && pass "every event starts where the previous one ended" || fail "$chain events out of chain"
n=$(sql "SELECT count(*) FROM cluster_state WHERE name LIKE 'fb-%'")
[ "$n" = "$clusters" ] && pass "$n clusters in the write model" || fail "$n clusters, expected $clusters"
kill -0 "$(cat "$CM_UP_DIR/run/devbroker/pid")" 2>/dev/null && pass "cm-devbroker survived the faults" ||
  fail "cm-devbroker died: $(tail -n 2 "$CM_UP_DIR/run/devbroker/devbroker.log")"
for s in cm-projector cm-worker-1 cm-worker-2 cm-api; do
  kill -0 "$(cat "$CM_UP_DIR/run/$s.pid")" 2>/dev/null && pass "$s survived the faults" || fail "$s died: $(tail -3 "$CM_UP_DIR/run/$s.log")"
done
e2e_check_models
e2e_done
