#!/usr/bin/env bash
# bench/run works (not how fast cm is: benchmarks report, they never fail the suite): a
# --quick run with tiny sizes on this build measures every row it can, writes the JSON with
# the machine, the rates and ratios (the zke row on 3 sshd nodes, the prober row with 5 and
# 10 clusters probed every second), and leaves no process behind.
set -euo pipefail
src=${CM_SOURCE_DIR:?run through ctest}
export CM_BENCH_BUILD_DIR=${CM_BINARY_DIR:?run through ctest}
export CM_BENCH_WORKER_N=20 CM_BENCH_PROJECTOR_N=50 CM_BENCH_API_SECONDS=1
export CM_BENCH_E2E_SECONDS=1 CM_BENCH_E2E_RATES="20 100"
export CM_BENCH_ZKE_NODES=3 CM_BENCH_ZKE_RUNS=1 CM_BENCH_PROBER_NS="5 10" CM_BENCH_PROBE_INTERVAL_S=1
out=$(mktemp -d /tmp/cm-bench-smoke.XXXXXX)
trap 'rm -rf "$out"' EXIT
failures=0 passes=0
pass() { passes=$((passes + 1)); echo "ok: $*"; }
fail() { failures=$((failures + 1)); echo "FAIL: $*"; }

if "$src/bench/run" --quick --out "$out/results.json" >"$out/run.log" 2>&1; then
  pass "bench/run --quick exited 0"
else
  fail "bench/run --quick exited non-zero; its output:"; cat "$out/run.log"
fi
grep -q '^row *| *cm rate *| *baseline rate *| ratio$' "$out/run.log" && pass "the table has its header" \
  || fail "no table header in the output"
for row in worker projector api; do
  grep -Eq "^$row +\| +[0-9,.]+ .*\| +[0-9,.]+ .*\| [0-9]+\.[0-9]{3}$" "$out/run.log" \
    && pass "table row $row has two rates and a ratio" || fail "table row $row: $(grep "^$row " "$out/run.log")"
done
for row in "zke vs pssh" "zke vs ansible" "prober N=5" "prober N=10"; do
  grep -Eq "^$row +\| +[0-9,.]+ .*\| +[0-9,.]+ .*\| [0-9]+\.[0-9]{3}$" "$out/run.log" \
    && pass "table row $row has two rates and a ratio" || fail "table row $row: $(grep "^$row " "$out/run.log")"
done
grep -Eq '^prober scale +\| largest N within 15 s: 10 ' "$out/run.log" && pass "prober scale names the largest N" \
  || fail "prober scale line: $(grep '^prober scale' "$out/run.log")"

python3 - "$out/results.json" <<'PY' && pass "results JSON complete" || fail "results JSON incomplete"
import json, sys
r = json.load(open(sys.argv[1]))
m = r["machine"]
assert m["nproc"] >= 1 and m["memory_gib"] > 0 and m["cpu"], m
assert r["date"] and r["quick"] is True
rows = {x["row"]: x for x in r["rows"]}
for name in ("worker", "projector", "api"):
    x = rows[name]
    assert x["status"] == "measured", x
    assert x["cm_rate"] > 0 and x["baseline_rate"] > 0, x
    assert abs(x["ratio"] - x["cm_rate"] / x["baseline_rate"]) < 0.01, x
assert rows["worker"]["cm"]["done"] == 20 and rows["worker"]["baseline"]["done"] == 20
assert rows["projector"]["cm"]["done"] == 50
for rate in ("20", "100"):
    x = rows[f"e2e {rate}/s"]
    assert x["status"] == "measured" and 0 < x["p50_ms"] <= x["p99_ms"], x
    assert x["cm"]["accepted"] == x["cm"]["visible"] == int(rate), x
for base in ("pssh", "ansible"):
    x = rows[f"zke vs {base}"]
    assert x["status"] == "measured", x
    assert x["cm"]["done"] == x["cm"]["passed"] == 3 and x["baseline"]["done"] == 3, x
for n in (5, 10):
    x = rows[f"prober N={n}"]
    assert x["status"] == "measured" and x["cm"]["done"] == n and x["baseline"]["done"] == n, x
    assert 0 < x["cm"]["round_s"] < 15, x
x = rows["prober scale"]
assert x["status"] == "measured" and x["largest_n_within_15s"] == 10, x
PY

dir=$(sed -n 's/.*state in \(\/tmp\/cm-bench\.[A-Za-z0-9]*\).*/\1/p' "$out/run.log" | head -n 1)
[ -n "$dir" ] && [ ! -e "$dir" ] && pass "its temporary folder is gone" || fail "temporary folder left: $dir"
if [ -n "$dir" ] && pgrep -f -- "$dir" >/dev/null; then
  fail "processes left behind: $(pgrep -af -- "$dir")"
else pass "no process left behind"; fi

echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
