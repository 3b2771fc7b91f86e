#!/usr/bin/env bash
# bench/run works (not how fast cm is: benchmarks report, they never fail the suite): a
# --quick run with tiny sizes on this build measures every row it can, writes the JSON with
# the machine, the rates and ratios and the rows not measured yet, and leaves no process
# behind.
set -euo pipefail
src=${CM_SOURCE_DIR:?run through ctest}
export CM_BENCH_BUILD_DIR=${CM_BINARY_DIR:?run through ctest}
export CM_BENCH_WORKER_N=20 CM_BENCH_PROJECTOR_N=50 CM_BENCH_API_SECONDS=1
export CM_BENCH_E2E_SECONDS=1 CM_BENCH_E2E_RATES="20 100"
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
grep -q '^zke fan-out *| not measured yet: needs' "$out/run.log" && pass "zke fan-out marked not measured yet" \
  || fail "no 'not measured yet' line for zke fan-out"

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
for name in ("zke fan-out", "prober scale"):
    assert rows[name]["status"] == "not measured yet" and rows[name]["note"].startswith("needs")
PY

dir=$(sed -n 's/.*state in \(\/tmp\/cm-bench\.[A-Za-z0-9]*\).*/\1/p' "$out/run.log" | head -n 1)
[ -n "$dir" ] && [ ! -e "$dir" ] && pass "its temporary folder is gone" || fail "temporary folder left: $dir"
if [ -n "$dir" ] && pgrep -f -- "$dir" >/dev/null; then
  fail "processes left behind: $(pgrep -af -- "$dir")"
else pass "no process left behind"; fi

echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
