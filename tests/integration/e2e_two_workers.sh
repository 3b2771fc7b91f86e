#!/usr/bin/env bash
# e2e_two_workers - jobs are shared by the workers and survive a worker's death, through
# the REST API with everything real (scripts/up runs two cm-workers, job.runners = 4
# each): six imports whose API server is down keep both workers busy (jobs.owner shows
# both worker ids); the busier worker is killed with SIGKILL; once its leases
# (job.lease_s = 4) expire the other worker resumes its jobs (owner changes, attempt 2)
# as its runners allow; the server starts and every cluster reaches Running, each job of
# the dead worker finished by the survivor.
. "${CM_SOURCE_DIR:?run through ctest}/tests/integration/lib/e2e.sh" || exit 1

lease=4 runners=4 jobs=6
export CM_JOB_RUNNERS=$runners CM_JOB_LEASE_S=$lease CM_JOB_HEARTBEAT_S=1 CM_PROBE_INTERVAL_S=2 \
  CM_KAFKA_SESSION_TIMEOUT_MS=6000
e2e_up
host=$(hostname)
w1="$host:$(cat "$CM_UP_DIR/run/cm-worker-1.pid")"
w2="$host:$(cat "$CM_UP_DIR/run/cm-worker-2.pid")"

k8s="$CM_UP_DIR/k8s-shared"
k8s_pki "$k8s"
port=$(cm_free_port)
bash "$E2E_FIXTURES/make_k8s_pki.sh" --name k8s-shared "$k8s" "$port"
for i in $(seq 1 $jobs); do
  import_cluster "c$i" "$k8s/kubeconfig"
  [ "$code" = 202 ] || fail "import c$i: $code $body"
done
for i in $(seq 1 100); do
  [ "$(sql "SELECT count(*) FROM jobs WHERE state = 'running'")" = $jobs ] && break
  sleep 0.2
done
running=$(sql "SELECT count(*) FROM jobs WHERE state = 'running'")
[ "$running" = $jobs ] && pass "all $jobs connect jobs run at once" || fail "$running jobs running"
k1=$(sql "SELECT count(*) FROM jobs WHERE owner = '$w1' AND state = 'running'")
k2=$(sql "SELECT count(*) FROM jobs WHERE owner = '$w2' AND state = 'running'")
[ "$k1" -ge 1 ] && [ "$k2" -ge 1 ] && [ $((k1 + k2)) = $jobs ] && pass "both workers run jobs ($k1 + $k2)" || fail "owners: $k1 + $k2"

# kill the busier worker
if [ "$k1" -ge "$k2" ]; then victim=1 dead=$w1 alive=$w2 kdead=$k1 kalive=$k2; else victim=2 dead=$w2 alive=$w1 kdead=$k2 kalive=$k1; fi
sql "SELECT cluster FROM jobs WHERE owner = '$dead' ORDER BY cluster" >"$CM_UP_DIR/dead-jobs"
kill -KILL "$(cat "$CM_UP_DIR/run/cm-worker-$victim.pid")"
echo "  killed cm-worker-$victim ($dead, $kdead jobs); the survivor has $kalive"
expect=$((runners - kalive)) # the survivor's free runners
[ "$expect" -gt "$kdead" ] && expect=$kdead
resumed=0
for i in $(seq 1 $(((lease + 6) * 5))); do
  resumed=$(sql "SELECT count(*) FROM jobs WHERE owner = '$alive' AND attempt = 2 AND state = 'running'")
  [ "$resumed" -ge "$expect" ] && break
  sleep 0.2
done
[ "$resumed" = "$expect" ] && pass "after the lease expired the survivor resumed $resumed job(s) (its free runners)" ||
  fail "resumed $resumed, expected $expect"
# The dead worker's leases do not all end together: a job it claimed after its last
# heartbeat has the claim's lease, up to job.heartbeat_s later than the others.
for i in $(seq 1 $((lease * 10))); do
  [ "$(sql "SELECT count(*) FROM jobs WHERE owner = '$dead' AND state = 'running' AND lease_until >= now()")" = 0 ] && break
  sleep 0.2
done
left=$(sql "SELECT count(*) FROM jobs WHERE owner = '$dead' AND state = 'running' AND lease_until < now()")
[ "$left" = $((kdead - expect)) ] && pass "the rest wait with an expired lease ($left)" || fail "$left jobs left with the dead worker"
still=$(sql "SELECT count(*) FROM cluster_state WHERE state = 'Connecting'")
[ "$still" = $jobs ] && pass "every cluster is still Connecting while the server is down" || fail "$still Connecting"

# the API server comes up: everything connects
k8s_start "$k8s" "$port"
for i in $(seq 1 $jobs); do check "c$i reaches Running" wait_state "c$i" Running 40; done
bad=0
while read -r c; do
  row=$(sql "SELECT owner = '$alive' AND attempt = 2 AND state = 'succeeded' FROM jobs WHERE cluster = '$c'")
  [ "$row" = t ] || { bad=$((bad + 1)); echo "  $c: $(sql "SELECT owner || ' ' || attempt || ' ' || state FROM jobs WHERE cluster = '$c'")"; }
done <"$CM_UP_DIR/dead-jobs"
[ "$bad" = 0 ] && pass "every job of the dead worker was finished by the survivor on attempt 2" || fail "$bad jobs not taken over"
own=$(sql "SELECT count(*) FROM jobs WHERE owner = '$alive' AND attempt = 1 AND state = 'succeeded'")
[ "$own" = "$kalive" ] && pass "the survivor's own jobs finished on attempt 1" || fail "$own of $kalive"
mport=$CM_UP_HEALTH_PORT
[ "$victim" = 1 ] && mport=$((CM_UP_HEALTH_PORT + 1))
m=$(curl -fsS "http://127.0.0.1:$mport/metrics" | sed -n 's/^cm_worker_jobs_resumed_total //p')
[ "$m" = "$kdead" ] && pass "the survivor counts $m resumed jobs" || fail "cm_worker_jobs_resumed_total $m, expected $kdead"
grep -q '"job resumed: its lease had expired"' "$CM_UP_DIR/run/cm-worker-$((3 - victim)).log" && pass "the resume is logged" || fail "no resume logged"

e2e_check_models
e2e_done
