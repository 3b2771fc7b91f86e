#!/usr/bin/env bash
# compose/docker-compose.yml is valid for Debian's docker-compose and describes the deployment
# of DESIGN §9: Apache Kafka in KRaft mode (3 brokers, replication 3, min.insync.replicas 2),
# PostgreSQL, cm-api, cm-worker x 3 and cm-projector. No Docker engine is needed for this.
set -euo pipefail
src=${CM_SOURCE_DIR:?CM_SOURCE_DIR is not set (run through ctest)}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
docker-compose -f "$src/compose/docker-compose.yml" config >"$out"
/usr/bin/python3 - "$out" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
s = c["services"]
fail = []
def check(cond, what):
    if not cond: fail.append(what)
brokers = [n for n in s if n.startswith("kafka")]
check(len(brokers) == 3, f"3 Kafka brokers, found {brokers}")
for b in brokers:
    e = s[b]["environment"]
    check(e.get("KAFKA_PROCESS_ROLES") == "broker,controller", f"{b}: KRaft roles")
    check(e.get("KAFKA_DEFAULT_REPLICATION_FACTOR") == "3", f"{b}: replication 3")
    check(e.get("KAFKA_MIN_INSYNC_REPLICAS") == "2", f"{b}: min.insync.replicas 2")
    check(len(e.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "").split(",")) == 3, f"{b}: 3 voters")
for n in ("postgres", "cm-api", "cm-worker", "cm-projector"):
    check(n in s, f"service {n}")
check(s.get("cm-worker", {}).get("deploy", {}).get("replicas") == 3, "cm-worker replicas 3")
for n in ("cm-api", "cm-worker", "cm-projector"):
    check(s.get(n, {}).get("build", {}).get("dockerfile") == "compose/Dockerfile", f"{n} built from compose/Dockerfile")
topics = s.get("topics", {}).get("command", [""])[0]
for t in ("cm.commands", "cm.events", "cm.progress", "cm.commands.dlq"):
    check(t in topics, f"topic {t} created")
check("--replication-factor 3" in topics and "min.insync.replicas=2" in topics, "topics replicated 3, min.insync 2")
for f in fail: print("FAIL:", f)
print("compose checks: " + ("ok" if not fail else f"{len(fail)} failed"))
sys.exit(1 if fail else 0)
PY
grep -q '^FROM debian:bookworm' "$src/compose/Dockerfile"
echo "compose: ok"
