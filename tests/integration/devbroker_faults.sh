#!/usr/bin/env bash
# cm-devbroker's fault injection works through its control socket: a broker taken down
# stops answering and comes back, request errors are queued for an API and clients see them,
# partition leaders move, and bad commands are refused with a reason. --coordinator pins a
# consumer group's coordinator (clients are sent there), and bad values are refused.
set -euo pipefail
bin=${CM_BINARY_DIR:?run through ctest}/tools/cm-devbroker
work=$(mktemp -d /tmp/cm-faults.XXXXXX)
ctl="$work/ctl.sock"
passes=0 failures=0
pass() { passes=$((passes + 1)); echo "ok: $*"; }
fail() { failures=$((failures + 1)); echo "FAIL: $*"; }
out=$("$bin" --coordinator nogroup 2>&1) && fail "--coordinator without = accepted" ||
  { grep -q '"nogroup" is not GROUP=BROKER_ID' <<<"$out" && pass "--coordinator without a broker refused" || fail "$out"; }
out=$("$bin" --brokers 3 --coordinator g=4 2>&1) && fail "--coordinator g=4 accepted" ||
  { grep -q 'g=4: there are only 3 brokers' <<<"$out" && pass "--coordinator beyond the brokers refused" || fail "$out"; }
# grp-a hashes to broker 1 (crc32 % 3); pinned to 2
"$bin" --brokers 3 --partitions 4 --bootstrap-file "$work/bootstrap" --control "$ctl" \
  --coordinator grp-a=2 >"$work/out" 2>"$work/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do [ -S "$ctl" ] && [ -s "$work/bootstrap" ] && break; sleep 0.1; done
bs=$(cat "$work/bootstrap")
ctlc() { "$bin" --ctl "$ctl" "$@"; }

[ "$(ctlc ping)" = "ok pong" ] && pass "ping" || fail "ping"
coord() { # the coordinator id a client is sent to for group $1
  timeout 15 kcat -b "$bs" -G "$1" -d cgrp -e cm.events 2>&1 |
    sed -n "s/.*Group \"$1\" coordinator is .* id \([0-9]*\).*/\1/p" | head -n 1
}
c=$(coord grp-a)
[ "$c" = 2 ] && pass "group grp-a is coordinated by the pinned broker 2" || fail "grp-a coordinator '$c'"
c=$(coord grp-b)
[ "$c" = 1 ] && pass "an unpinned group keeps its hashed coordinator (1)" || fail "grp-b coordinator '$c'"
out=$(ctlc frobnicate 2>&1) && fail "unknown command accepted" || { grep -q 'unknown command "frobnicate"' <<<"$out" && pass "unknown command refused: $out" || fail "$out"; }
out=$(ctlc broker-down 9 2>&1) && fail "broker 9 accepted" || { grep -q "1..3" <<<"$out" && pass "bad broker id refused: $out" || fail "$out"; }
out=$(ctlc errors produce 2 NO_SUCH_ERROR 2>&1) && fail "bad error accepted" || { grep -q 'unknown Kafka error "NO_SUCH_ERROR"' <<<"$out" && pass "bad error name refused" || fail "$out"; }

# request errors reach a client: the next produce requests fail with a retriable error, the
# idempotent producer retries and the message still lands exactly once
ctlc errors produce 3 NOT_LEADER_FOR_PARTITION >/dev/null && pass "produce errors queued" || fail "errors"
echo "k1:v1" | kcat -b "$bs" -P -t cm.commands -K: -X enable.idempotence=true -X acks=all 2>"$work/kcat.err" \
  && pass "produce with injected errors succeeded after retries" || fail "produce: $(cat "$work/kcat.err")"
n=$(kcat -b "$bs" -C -t cm.commands -o beginning -e -q -f '%k\n' 2>/dev/null | grep -c '^k1$' || true)
[ "$n" = 1 ] && pass "message stored exactly once" || fail "message stored $n times"
grep -q '"msg":"fault injection","command":"errors produce 3 NOT_LEADER_FOR_PARTITION"' "$work/log" \
  && pass "injection logged" || fail "injection not logged"

# all brokers down: metadata fails; up again: it answers
for b in 1 2 3; do ctlc broker-down "$b" >/dev/null; done
if timeout 10 kcat -b "$bs" -L -m 2 >/dev/null 2>&1; then fail "metadata answered with every broker down"; else pass "every broker down: no metadata"; fi
for b in 1 2 3; do ctlc broker-up "$b" >/dev/null; done
timeout 20 kcat -b "$bs" -L -m 5 >/dev/null 2>&1 && pass "brokers up: metadata again" || fail "no metadata after broker-up"

# leader moves are visible in metadata
ctlc leader cm.events 0 2 >/dev/null && pass "leader moved" || fail "leader"
leader=$(kcat -b "$bs" -L -t cm.events -m 5 2>/dev/null | sed -n 's/.*partition 0, leader \([0-9]*\),.*/\1/p' | head -1)
[ "$leader" = 2 ] && pass "metadata shows partition 0 led by broker 2" || fail "leader is '$leader'"
ctlc rtt 1 50 >/dev/null && ctlc rtt 1 0 >/dev/null && pass "rtt set and reset" || fail "rtt"

kill -TERM $pid; wait $pid; rc=$?
[ "$rc" = 0 ] && pass "SIGTERM: exit 0" || fail "exit $rc"
[ ! -e "$ctl" ] && pass "control socket removed" || fail "control socket left behind"
trap 'rm -rf "$work"' EXIT
echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
