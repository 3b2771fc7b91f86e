#!/usr/bin/env bash
# cm-devbroker's lifecycle and cross-process Kafka through it, over TCP:
#   - it starts, creates the four cm topics with 12 partitions, prints and writes its
#     bootstrap servers (stdout line == bootstrap file);
#   - a command produced by one process is consumed by another (cm/kafka.h on both sides),
#     with its key, value, header and the partition murmur2 gives;
#   - a second consumer process of the same group resumes after the committed offset;
#   - kcat (a different client) reads what cm produced and cm reads what kcat produced;
#   - two member processes of one group split the 12 partitions 6/6 (eager roundrobin);
#   - SIGTERM: exit 0, the stale bootstrap file is gone, nothing else in its folder is;
#   - bad flags exit 2 naming the flag and value.
# Starts its own cm-devbroker (it tests that process's lifecycle), so CM_TEST_BOOTSTRAP is
# not needed.
set -euo pipefail

: "${CM_BINARY_DIR:?CM_BINARY_DIR is not set (run through ctest)}"
DEVBROKER=$CM_BINARY_DIR/tools/cm-devbroker
IT=$CM_BINARY_DIR/tests/it_kafka_roundtrip
for f in "$DEVBROKER" "$IT"; do
  [ -x "$f" ] || { echo "FAIL: $f is not built" >&2; exit 1; }
done
command -v kcat >/dev/null || { echo "FAIL: kcat is not installed (Debian package kafkacat)" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; [ -f "$WORK/devbroker.err" ] && tail -20 "$WORK/devbroker.err" >&2; exit 1; }

# wait_for SECONDS COMMAND...: polls every 0.2 s.
wait_for() {
  local end=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.2
  done
}

# --- bad usage ---------------------------------------------------------------------------
set +e
"$DEVBROKER" --brokers 0 >/dev/null 2>"$WORK/usage.err"; rc=$?
set -e
[ $rc -eq 2 ] || fail "--brokers 0 exited $rc, want 2"
grep -q -- '--brokers.*"0"' "$WORK/usage.err" || fail "usage error does not name --brokers and 0: $(cat "$WORK/usage.err")"

# --- start -------------------------------------------------------------------------------
touch "$WORK/keep.me"
BOOTFILE=$WORK/bootstrap
"$DEVBROKER" --brokers 3 --partitions 12 --bootstrap-file "$BOOTFILE" \
  >"$WORK/devbroker.out" 2>"$WORK/devbroker.err" &
DB_PID=$!
PIDS+=("$DB_PID")
wait_for 20 test -s "$BOOTFILE" || fail "no bootstrap file within 20 s"
BS=$(cat "$BOOTFILE")
wait_for 5 test -s "$WORK/devbroker.out" || fail "nothing printed on stdout"
[ "$(cat "$WORK/devbroker.out")" = "$BS" ] || fail "stdout '$(cat "$WORK/devbroker.out")' != bootstrap file '$BS'"
[[ $BS =~ ^127\.0\.0\.1:[0-9]+,127\.0\.0\.1:[0-9]+,127\.0\.0\.1:[0-9]+$ ]] || fail "bootstrap '$BS' is not 3 loopback brokers"
echo "devbroker at $BS"

kcat -b "$BS" -L -m 10 >"$WORK/meta" || fail "kcat -L failed"
for t in cm.commands cm.events cm.progress cm.commands.dlq; do
  grep -q "topic \"$t\" with 12 partitions" "$WORK/meta" || fail "topic $t with 12 partitions missing: $(cat "$WORK/meta")"
done
grep -q ' 3 brokers:' "$WORK/meta" || fail "not 3 brokers"
grep -q 'replicas: 1,2,3' "$WORK/meta" || fail "replication is not 3"

"$IT" ready "$BS" 5000 || fail "cluster not ready through cm_kafka_producer_ready"

# --- one process produces, another consumes ------------------------------------------------
read -r P1 O1 < <("$IT" produce "$BS" cm.commands prod create-1 cm.type=create) || fail "produce 1"
read -r P2 O2 < <("$IT" produce "$BS" cm.commands prod update-2 cm.type=update) || fail "produce 2"
[ "$P1" = "$P2" ] || fail "same key on partitions $P1 and $P2"
[ "$O2" -eq $((O1 + 1)) ] || fail "offsets $O1 then $O2"
# The partition a Java client would pick: (murmur2(key) & 0x7fffffff) % 12, computed here
# independently of cm_kafka.c.
JAVA_P=$(python3 - prod 12 <<'PY'
import sys
d = sys.argv[1].encode(); n = int(sys.argv[2]); m = 0x5bd1e995; M = 0xffffffff
h = (0x9747b28c ^ len(d)) & M
for i in range(0, len(d) // 4 * 4, 4):
    k = int.from_bytes(d[i:i + 4], 'little'); k = (k * m) & M; k ^= k >> 24; k = (k * m) & M
    h = ((h * m) & M) ^ k
t = len(d) // 4 * 4; r = len(d) & 3
if r >= 3: h ^= d[t + 2] << 16
if r >= 2: h ^= d[t + 1] << 8
if r >= 1: h ^= d[t]; h = (h * m) & M
h ^= h >> 13; h = (h * m) & M; h ^= h >> 15
print((h & 0x7fffffff) % n)
PY
)
[ "$P1" = "$JAVA_P" ] || fail "key prod on partition $P1, the Java client would use $JAVA_P"

OUT=$("$IT" consume "$BS" g-cross cm.commands 1 30000) || fail "consumer process got nothing"
[ "$OUT" = "$P1 $O1 prod create-1 cm.type=create" ] || fail "consumed '$OUT'"
echo "consumed in another process: $OUT"

# A new process in the same group resumes after the committed offset.
OUT=$("$IT" consume "$BS" g-cross cm.commands 1 30000) || fail "second consumer got nothing"
[ "$OUT" = "$P2 $O2 prod update-2 cm.type=update" ] || fail "resumed at '$OUT', want offset $O2"
set +e
OUT=$("$IT" consume "$BS" g-cross cm.commands 1 4000 2>/dev/null); rc=$?
set -e
[ $rc -ne 0 ] && [ -z "$OUT" ] || fail "third consumer re-read '$OUT' after commits"

# --- another client: kcat -------------------------------------------------------------------
KOUT=$(kcat -b "$BS" -C -t cm.commands -p "$P1" -o beginning -e -q -f '%k=%s\n' 2>/dev/null)
[ "$KOUT" = $'prod=create-1\nprod=update-2' ] || fail "kcat read '$KOUT'"
printf 'kcat-value' | kcat -b "$BS" -P -t cm.commands -k from-kcat -H cm.type=kcat || fail "kcat produce"
OUT=$("$IT" consume "$BS" g-cross cm.commands 1 30000) || fail "cm did not read kcat's message"
[[ $OUT =~ ^[0-9]+\ [0-9]+\ from-kcat\ kcat-value\ cm.type=kcat$ ]] || fail "read '$OUT' from kcat"

# --- two members of one group split the partitions ------------------------------------------
"$IT" member "$BS" g-split cm.commands "$WORK/a.parts" 2>"$WORK/a.err" &
A_PID=$!; PIDS+=("$A_PID")
count() { if [ -f "$1" ]; then wc -w <"$1"; else echo 0; fi; }
has_count() { [ "$(count "$1")" -eq "$2" ]; }
wait_for 30 has_count "$WORK/a.parts" 12 || fail "member A never got 12 partitions: $(cat "$WORK/a.parts" 2>/dev/null)"
"$IT" member "$BS" g-split cm.commands "$WORK/b.parts" 2>"$WORK/b.err" &
B_PID=$!; PIDS+=("$B_PID")
split_done() {
  [ "$(count "$WORK/a.parts")" -eq 6 ] && [ "$(count "$WORK/b.parts")" -eq 6 ] &&
    [ "$(cat "$WORK/a.parts" "$WORK/b.parts" | tr ' ' '\n' | sort -n | uniq | tr '\n' ' ')" = "0 1 2 3 4 5 6 7 8 9 10 11 " ]
}
wait_for 45 split_done || fail "no 6/6 split: A='$(cat "$WORK/a.parts")' B='$(cat "$WORK/b.parts" 2>/dev/null)'"
echo "split: A=[$(cat "$WORK/a.parts")] B=[$(cat "$WORK/b.parts")]"
kill -TERM "$B_PID"; wait "$B_PID" || fail "member B exited $? on SIGTERM"
# The survivor takes all 12 back.
wait_for 45 has_count "$WORK/a.parts" 12 || fail "A did not get the partitions back: $(cat "$WORK/a.parts")"
kill -TERM "$A_PID"; wait "$A_PID" || fail "member A exited $? on SIGTERM"

# --- SIGTERM --------------------------------------------------------------------------------
kill -TERM "$DB_PID"
set +e
wait "$DB_PID"; rc=$?
set -e
[ $rc -eq 0 ] || fail "cm-devbroker exited $rc on SIGTERM"
[ ! -e "$BOOTFILE" ] || fail "stale bootstrap file left behind"
[ -f "$WORK/keep.me" ] || fail "removed a file it does not own"
ls "$WORK"/bootstrap.tmp.* >/dev/null 2>&1 && fail "temporary bootstrap file left behind"
grep -v '^{' "$WORK/devbroker.err" && fail "non-JSON line on stderr"
grep -q '"msg":"devbroker stopped"' "$WORK/devbroker.err" || fail "no stop log line"
set +e
OUT=$("$IT" ready "$BS" 1500 2>/dev/null); rc=$?
set -e
[ $rc -eq 1 ] || fail "cluster still ready after SIGTERM"
echo "after SIGTERM: not ready ($OUT)"
echo "PASS"
