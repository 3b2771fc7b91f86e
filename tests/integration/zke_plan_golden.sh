#!/usr/bin/env bash
# cm-zke-plan renders the committed sample spec to exactly the committed plan (the golden
# file pins images, flags, file placement and, by sha256, every rendered config and
# manifest), deterministically; an update plan has no add-ons; errors exit non-zero with a
# message naming the value. Regenerate after an intended plan change with
# CM_UPDATE_GOLDEN=1 (then review the diff).
set -euo pipefail
bin=${CM_BINARY_DIR:?CM_BINARY_DIR is not set (run through ctest)}/tools/cm-zke-plan
src=${CM_SOURCE_DIR:?CM_SOURCE_DIR is not set (run through ctest)}
[ -x "$bin" ] || { echo "FAIL: $bin is not built" >&2; exit 1; }
fix=$src/tests/fixtures/zke-plan
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

"$bin" "$fix/spec-3node.json" >"$dir/plan.json" 2>"$dir/err" || fail "render exited $?: $(cat "$dir/err")"
[ -s "$dir/err" ] && fail "stderr not empty: $(cat "$dir/err")"
if [ "${CM_UPDATE_GOLDEN:-}" = 1 ]; then
        cp "$dir/plan.json" "$fix/spec-3node.plan.json"
        echo "zke_plan_golden: golden file rewritten"
fi
diff -u "$fix/spec-3node.plan.json" "$dir/plan.json" >"$dir/diff" ||
        fail "plan differs from tests/fixtures/zke-plan/spec-3node.plan.json:$(head -40 "$dir/diff")"
"$bin" "$fix/spec-3node.json" | cmp -s - "$dir/plan.json" || fail "second render differs"
grep -q '{{' "$dir/plan.json" && fail "placeholder left in the plan"
"$bin" --contents "$fix/spec-3node.json" >"$dir/full.json" || fail "--contents exited $?"
grep -q '{{' "$dir/full.json" && fail "placeholder left in rendered file contents"
python3 - "$dir/full.json" <<'PY' || fail "rendered manifests are not valid YAML"
import json, sys, yaml
plan = json.load(open(sys.argv[1]))
for st in plan["steps"]:
    for f in st["files"]:
        if "content" in f:
            list(yaml.safe_load_all(f["content"]))
PY

# update: the same planes, no add-ons
"$bin" --update "$fix/spec-3node.json" >"$dir/update.json" || fail "--update exited $?"
python3 - "$dir/update.json" <<'PY' || fail "update plan has add-ons or misses planes"
import json, sys
planes = [s["plane"] for s in json.load(open(sys.argv[1]))["steps"]]
assert "addons" not in planes and planes[0] == "etcd" and planes[-1] == "worker", planes
PY

# an update that makes w1 an etcd node too: only w1 joins (member add on a member, then
# its container with initial-cluster-state existing); the members' etcd containers keep
# their hash (the initial-cluster flags are bootstrap args, not hashed)
python3 - "$fix/spec-3node.json" "$dir/prev.json" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
for n in spec["nodes"]:
    if n["name"] == "w1":
        n["roles"] = ["worker"]
json.dump(spec, open(sys.argv[2], "w"))
PY
"$bin" --update --previous "$dir/prev.json" "$fix/spec-3node.json" >"$dir/join.json" ||
        fail "--update --previous exited $?"
python3 - "$dir/join.json" "$dir/plan.json" <<'PY' || fail "etcd join plan"
import json, sys
join = json.load(open(sys.argv[1]))["steps"]
full = json.load(open(sys.argv[2]))["steps"]
etcd = {s["node"]: s for s in join if s["plane"] == "etcd"}
created = {s["node"]: s for s in full if s["plane"] == "etcd"}
joining = sorted(n for n, s in etcd.items() if "join" in s)
assert joining == ["w1"], joining
j = etcd["w1"]["join"]
assert j["add"] == ("docker exec etcd etcdctl member add etcd-w1 "
                    "--peer-urls=https://10.0.0.21:2380"), j
assert j["peer"] == "https://10.0.0.21:2380" and "member list" in j["members"], j
assert "endpoint health" in j["health"], j
assert "--initial-cluster-state=existing" in etcd["w1"]["containers"][0]["create"]
for n in ("m1", "m2"):
    a, b = etcd[n]["containers"][0], created[n]["containers"][0]
    assert a["hash"] == b["hash"], (n, a["hash"], b["hash"])
    assert "--initial-cluster-state=new" in a["create"], n
# no join section without --previous on a create
assert not any("join" in s for s in full)
PY
if "$bin" --previous "$dir/prev.json" "$fix/spec-3node.json" >/dev/null 2>"$dir/err"; then
        fail "--previous without --update accepted"
fi
grep -q -- '--previous goes with --update' "$dir/err" || fail "--previous message: $(cat "$dir/err")"

# an unknown Kubernetes version: exit 1, the version and the known ones named
sed 's/"v1.28.15"/"v1.31.2"/' "$fix/spec-3node.json" >"$dir/v131.json"
if "$bin" "$dir/v131.json" >"$dir/out" 2>"$dir/err"; then
        fail "unknown version accepted"
fi
grep -q '"v1.31.2"' "$dir/err" && grep -q 'known: v1.28' "$dir/err" ||
        fail "unknown version message: $(cat "$dir/err")"
[ -s "$dir/out" ] && fail "stdout not empty on error"
# a spec that is not JSON: exit 1 naming the file; usage: exit 2
echo '{' >"$dir/bad.json"
set +e
"$bin" "$dir/bad.json" >/dev/null 2>"$dir/err"
rc=$?
"$bin" >/dev/null 2>&1
rc2=$?
set -e
[ $rc -eq 1 ] || fail "malformed spec exited $rc, want 1"
grep -qF "$dir/bad.json" "$dir/err" || fail "malformed spec message: $(cat "$dir/err")"
[ $rc2 -eq 2 ] || fail "no argument exited $rc2, want 2"

if [ $fails -ne 0 ]; then
        echo "zke_plan_golden: $fails failure(s)" >&2
        exit 1
fi
echo "zke_plan_golden: ok"
