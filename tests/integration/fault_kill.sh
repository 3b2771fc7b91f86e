#!/usr/bin/env bash
# fault_kill - random kill -9 of a cm-worker or the projector during create, update,
# cancel, delete and import (scripts/up -d stack; two zke clusters on sshd + fake-docker
# nodes, two nodes each; imports of a live fake API server). 50 trials (CM_FAULTS_LONG=1: 200):
# each sends a command of a random cluster through the API (four times in five one its
# state accepts, so jobs keep starting; else a random one), waits a random moment,
# kills a victim with SIGKILL (two times in three the worker running a job, when one
# runs; else a random one of the workers and the projector) and restarts it (./scripts/up restart NAME); each
# kill's pid and time (date +%s.%N: the clock PostgreSQL's now() reads on this machine)
# go to $CM_UP_DIR/kills. Then, once everything is quiet:
#   - every cluster is in the state the FSM gives for its last applied command (Running
#     after Create/Update/Import, Unavailable after Cancel, Deleted after Delete);
#   - no job finished twice (the workers' "job finished" lines), no job is left open;
#   - no job ran twice at once: job_runs has a row per claim; a run lasts from started_at
#     to ended_at, or, when its worker died (ended_at NULL), to the kill of its owner's
#     pid; no two runs of a job overlap, every run has an end (a run still open whose
#     worker was never killed is a failure), and each finished job was finished by
#     exactly one run;
#   - no container was started twice on a node without being removed in between (removed:
#     an "rm" that succeeded, or an "inspect" that found no such container, which also
#     covers an rm whose worker was killed before the rm's own result was logged);
#   - every command answered 202 is applied or rejected, in both models;
#   - seq 1..n and read model == write model.
. "${CM_SOURCE_DIR:?run through ctest}/tests/integration/lib/e2e.sh" || exit 1
. "$src/tests/integration/lib/e2e_zke.sh"

trials=50 zk=2 im=4
[ -n "${CM_FAULTS_LONG:-}" ] && trials=200
zke_nodes_start $((zk * 2))
export CM_JOB_LEASE_S=4 CM_JOB_HEARTBEAT_S=1 CM_JOB_MAX_ATTEMPTS=50 CM_KAFKA_SESSION_TIMEOUT_MS=6000
e2e_up
zke_after_up
k8s="$CM_UP_DIR/k8s-kill"
k8s_start "$k8s"
for i in $(seq 1 $zk); do
  nodes=("$(node_json $((2 * i - 1)) controlplane etcd)" "$(node_json $((2 * i)) worker)")
  create_body "zk$i" "$CM_SSHD_KEY" "$CM_UP_DIR/create-zk$i.json" "${nodes[@]}"
  nodes_body "$CM_UP_DIR/nodes-zk$i.json" "${nodes[@]}"
done
for i in $(seq 1 $im); do import_body "im$i" "$k8s/kubeconfig" "$CM_UP_DIR/import-im$i.json"; done
: >"$CM_UP_DIR/ids"
: >"$CM_UP_DIR/kills"

# send KIND CLUSTER: one command through the API; records a 202's command id
send() {
  local kind=$1 c=$2
  case $kind in
    create) req POST /v1/clusters "$CM_UP_DIR/create-$c.json" ;;
    update) req PUT "/v1/clusters/$c" "$CM_UP_DIR/nodes-$c.json" ;;
    import) req POST /v1/clusters/import "$CM_UP_DIR/import-$c.json" ;;
    cancel) req POST "/v1/clusters/$c/cancel" '' ;;
    delete) req DELETE "/v1/clusters/$c" '' ;;
  esac
  if [ "$code" = 202 ]; then
    echo "$(json commandId),$c,$kind" >>"$CM_UP_DIR/ids"
  elif [ "$code" != 409 ] && [ "$code" != 404 ]; then
    fail "$kind $c: $code $body"
  fi
}

victims=(cm-worker-1 cm-worker-2 cm-projector)
restarts=0
for t in $(seq 1 $trials); do
  if [ $((RANDOM % 2)) = 0 ]; then
    c="zk$((RANDOM % zk + 1))"
    kinds=(create create create update update cancel delete)
  else
    c="im$((RANDOM % im + 1))"
    kinds=(import import import cancel delete)
  fi
  kind=${kinds[$((RANDOM % ${#kinds[@]}))]}
  # four times in five a command the cluster's state accepts, so jobs keep starting
  if [ $((RANDOM % 5)) != 0 ]; then
    case "$c:$(sql "SELECT state FROM cluster_state WHERE name = '$c'" 2>/dev/null || true)" in
      zk*: | zk*:Deleted) kind=create ;;
      im*: | im*:Deleted) kind=import ;;
      zk*:Running | zk*:Unreachable | zk*:Unavailable) kinds=(update update delete); kind=${kinds[$((RANDOM % 3))]} ;;
      *:Running | *:Unreachable | *:Unavailable) kind=delete ;;
      *:Creating | *:Updating | *:Connecting) [ $((RANDOM % 3)) = 0 ] && kind=cancel ;;
    esac
  fi
  send "$kind" "$c"
  sleep "$((RANDOM % 2)).$((RANDOM % 10))$((RANDOM % 10))"
  v=${victims[$((RANDOM % 3))]}
  if [ $((RANDOM % 3)) != 0 ]; then
    # two kills in three hit the worker running a job, when one runs: what resuming is for
    o=$(sql "SELECT substring(owner FROM '[0-9]+$') FROM jobs WHERE state = 'running' ORDER BY random() LIMIT 1" 2>/dev/null || true)
    for w in cm-worker-1 cm-worker-2; do
      [ -n "$o" ] && [ "$(cat "$CM_UP_DIR/run/$w.pid")" = "$o" ] && v=$w
    done
  fi
  pid=$(cat "$CM_UP_DIR/run/$v.pid")
  # the time is taken once the signal is sent: no later than the victim's last act
  kill -KILL "$pid" 2>/dev/null && echo "$pid,$(date +%s.%N)" >>"$CM_UP_DIR/kills"
  sleep "0.$((RANDOM % 5))"
  if "$src/scripts/up" restart "$v" >>"$CM_UP_DIR/restarts.log" 2>&1; then
    restarts=$((restarts + 1))
  else
    fail "trial $t: $v did not restart: $(tail -3 "$CM_UP_DIR/restarts.log")"
  fi
  echo "  trial $t: $kind $c ($code), killed $v"
done
[ "$restarts" = "$trials" ] && pass "$trials trials: a victim killed with SIGKILL and restarted each time" || fail "$restarts restarts of $trials"

# quiet: no open job, no pending result, no cluster in a transitional state
quiet=""
for _ in $(seq 1 360); do
  quiet=$(sql "SELECT (SELECT count(*) FROM jobs WHERE state IN ('queued', 'running'))
                    + (SELECT count(*) FROM command_results WHERE status = 'pending')
                    + (SELECT count(*) FROM cluster_state WHERE state IN ('Creating', 'Updating',
                         'Connecting', 'Canceling', 'Deleting'))
                    + (SELECT count(*) FROM outbox WHERE sent_at IS NULL)")
  [ "$quiet" = 0 ] && break
  sleep 0.5
done
[ "$quiet" = 0 ] && pass "quiet after the trials" || fail "not quiet after 180 s: $(sql "SELECT string_agg(name || ' ' || state, ', ') FROM cluster_state") / $(sql "SELECT string_agg(cluster || ' ' || kind || ' ' || state || ' attempt ' || attempt, ', ') FROM jobs WHERE state IN ('queued', 'running')")"

# every cluster in the state its last applied command leads to
wrong=$(sql "SELECT string_agg(w.name || ' is ' || w.state || ' after ' || l.type, '; ')
              FROM cluster_state w
              JOIN LATERAL (SELECT e.type FROM cluster_events e WHERE e.cluster = w.name
                             AND e.type LIKE '%Requested' ORDER BY e.seq DESC LIMIT 1) l ON true
             WHERE w.state::text <> CASE l.type WHEN 'CancelRequested' THEN 'Unavailable'
                                             WHEN 'DeleteRequested' THEN 'Deleted'
                                             ELSE 'Running' END")
[ -z "$wrong" ] && pass "every cluster is in the state its last command leads to ($(sql "SELECT string_agg(name || ' ' || state, ', ' ORDER BY name) FROM cluster_state"))" || fail "$wrong"

twice=$(cat "$CM_UP_DIR"/run/cm-worker-*.log | grep '"msg":"job finished"' | grep -o '"jobId":"[^"]*"' | sort | uniq -d)
[ -z "$twice" ] && pass "no job finished twice ($(sql "SELECT count(*) FROM jobs") jobs, $(sql "SELECT coalesce(max(attempt), 0) FROM jobs") attempts at most)" || fail "jobs finished twice: $twice"
started=""
for i in $(seq 1 $((zk * 2))); do
  s=$("$E2E_PY" - "$ZKE_NODES/node$i/docker.log" <<'PY'
import re, sys
live, bad = set(), []
try:
    lines = open(sys.argv[1]).read().splitlines()
except FileNotFoundError:
    lines = []
for line in lines:
    m = re.search(r' rc=(\d+) docker (.*)$', line)
    if not m:
        continue
    rc, args = int(m.group(1)), m.group(2).split()
    if args[:2] == ["inspect", "--type=container"] and rc == 1:
        # the runtime says it is gone: also after a removal whose own "rc=" line was
        # never written (its worker was killed while the rm ran)
        live.difference_update(args[2:])
        continue
    if rc != 0:
        continue
    if args[0] in ("run", "create") and "--rm" not in args and "--name" in args:
        name = args[args.index("--name") + 1]
        if name in live:
            bad.append(name)
        live.add(name)
    elif args[0] == "rm":
        live.difference_update(args[1:])
print(" ".join(bad))
PY
)
  [ -n "$s" ] && started="$started node$i: $s;"
done
[ -z "$started" ] && pass "no container was started twice on a node without a removal between" || fail "started twice:$started"

sql "CREATE TABLE fault_ids (command_id text PRIMARY KEY, cluster text, kind text)"
psql "$conninfo" -qAtX -v ON_ERROR_STOP=1 -c "\\copy fault_ids FROM '$CM_UP_DIR/ids' WITH (FORMAT csv)"
lost=$(sql "SELECT count(*) FROM fault_ids i LEFT JOIN applied_commands a USING (command_id)
             LEFT JOIN command_results r USING (command_id)
            WHERE a.result IS NULL OR r.status IS DISTINCT FROM a.result")
[ "$lost" = 0 ] && pass "each of the $(sql "SELECT count(*) FROM fault_ids") commands answered 202 is applied or rejected in both models" || fail "$lost commands lost or differing"
# no job ran twice at once (job_runs, 005_job_runs.sql)
sql "CREATE TABLE fault_kills (pid integer, at double precision)"
psql "$conninfo" -qAtX -v ON_ERROR_STOP=1 -c "\\copy fault_kills FROM '$CM_UP_DIR/kills' WITH (FORMAT csv)"
# a run's end: ended_at, else the first kill of its owner's pid after it started
# (span: [started_at, end_at), unbounded without an end; a clock step back is no overlap)
runs="WITH e AS (
      SELECT x.*, coalesce(x.ended_at,
               (SELECT min(to_timestamp(k.at)) FROM fault_kills k
                 WHERE k.pid = substring(x.owner FROM ':([0-9]+)\$')::integer
                   AND to_timestamp(k.at) >= x.started_at)) AS end_at
        FROM job_runs x),
      r AS (SELECT e.*, tstzrange(started_at, greatest(started_at, end_at)) AS span FROM e
             WHERE end_at IS NOT NULL
            UNION ALL SELECT e.*, tstzrange(started_at, NULL) FROM e WHERE end_at IS NULL)"
overlaps=$(sql "$runs SELECT string_agg(a.job_id || ': run ' || a.run || ' (' || a.owner || ', '
                       || a.started_at || ' .. ' || coalesce(a.end_at::text, 'no end') || ') and run '
                       || b.run || ' (' || b.owner || ', from ' || b.started_at || ')', '; ')
                  FROM r a JOIN r b ON a.job_id = b.job_id AND a.run < b.run
                 WHERE a.span && b.span")
open_runs=$(sql "$runs SELECT string_agg(r.job_id || ' run ' || r.run || ' of ' || r.owner, '; ')
                   FROM r WHERE r.end_at IS NULL
                    AND NOT EXISTS (SELECT FROM jobs j WHERE j.id = r.job_id AND j.state = 'running'
                                     AND j.owner = r.owner AND j.attempt = r.attempt)")
finishers=$(sql "SELECT string_agg(j.id || ' (' || j.state || '): ' || (SELECT count(*) FROM job_runs x
                                    WHERE x.job_id = j.id AND x.how = 'finished') || ' finishing runs', '; ')
                   FROM jobs j WHERE j.state IN ('succeeded', 'failed', 'canceled')
                    AND (SELECT count(*) FROM job_runs x WHERE x.job_id = j.id AND x.how = 'finished') <> 1")
summary=$(sql "$runs SELECT count(*) || ' runs of ' || count(DISTINCT job_id) || ' jobs, up to '
                      || coalesce(max(attempt), 0) || ' attempts, '
                      || count(*) FILTER (WHERE ended_at IS NULL AND end_at IS NOT NULL)
                      || ' ended by a kill' FROM r")
if [ -n "$overlaps" ]; then
  fail "runs of a job overlapped: $overlaps"
elif [ -n "$open_runs" ]; then
  fail "runs without an end whose worker was not killed: $open_runs"
elif [ -n "$finishers" ]; then
  fail "jobs not finished by exactly one run: $finishers"
elif [ "$(sql "SELECT count(*) FROM job_runs")" -lt "$(sql "SELECT count(*) FROM jobs")" ]; then
  fail "fewer runs than jobs: $summary"
else
  pass "no job ran twice at once ($summary; $(wc -l <"$CM_UP_DIR/kills") kills)"
fi

for s in cm-projector cm-worker-1 cm-worker-2 cm-api; do
  kill -0 "$(cat "$CM_UP_DIR/run/$s.pid")" 2>/dev/null && pass "$s runs at the end" || fail "$s is not running"
done
e2e_check_models
e2e_done
