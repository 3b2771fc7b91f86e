#!/usr/bin/env bash
# cm-api's rate limit: a token bucket per API token (per client address without a token),
# 429 with Retry-After over the limit, other callers unaffected, probes never limited.
set -euo pipefail
src=${CM_SOURCE_DIR:?run through ctest}
. "$src/scripts/lib/pg.sh"
export CM_UP_DIR CM_UP_BUILD_DIR=${CM_BINARY_DIR:?} CM_UP_API_PORT CM_UP_PG_PORT CM_UP_HEALTH_PORT
CM_UP_DIR=$(mktemp -d /tmp/cm-rl.XXXXXX)
CM_UP_API_PORT=$(cm_free_port) CM_UP_PG_PORT=$(cm_free_port) CM_UP_HEALTH_PORT=$(cm_free_port)
export CM_API_RATE_LIMIT_PER_S=1 CM_API_RATE_LIMIT_BURST=3
api="http://127.0.0.1:$CM_UP_API_PORT"
passes=0 failures=0
pass() { passes=$((passes + 1)); echo "ok: $*"; }
fail() { failures=$((failures + 1)); echo "FAIL: $*"; }
trap '"$src/scripts/up" stop >/dev/null 2>&1 || true; rm -rf "$CM_UP_DIR"' EXIT
out=$("$src/scripts/up" -d 2>&1) || { echo "$out"; exit 1; }
token=$(sed -n 's/^admin token (shown once): //p' <<<"$out")
other=$("$CM_UP_BUILD_DIR/producer/cm-api" -c "$CM_UP_DIR/cm.conf" --create-token other --role user 2>/dev/null)

codes() { # n requests with header $1; prints the status codes
  local i; for i in $(seq 1 "$2"); do curl -s -o /dev/null -w '%{http_code} ' -H "$1" "$api/v1/clusters"; done; }
c=$(codes "Authorization: Bearer $token" 5)
[ "$c" = "200 200 200 429 429 " ] && pass "burst of 3 then 429: $c" || fail "admin token: $c"
hdr=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $token" "$api/v1/clusters")
grep -qi '^Retry-After: [1-9]' <<<"$hdr" && pass "429 carries Retry-After" || fail "no Retry-After: $hdr"
body=$(curl -s -H "Authorization: Bearer $token" "$api/v1/clusters")
grep -q '"code":"rate_limited"' <<<"$body" && pass "429 body names the limit" || fail "$body"
c=$(codes "Authorization: Bearer $other" 3)
[ "$c" = "200 200 200 " ] && pass "another token is not limited: $c" || fail "other token: $c"
c=$(codes "X-None: 1" 5)
[ "$c" = "401 401 401 429 429 " ] && pass "no token: limited per address after the burst: $c" || fail "anonymous: $c"
c=$(for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code} ' "$api/healthz"; done)
[ "$c" = "200 200 200 200 200 200 " ] && pass "/healthz is never limited" || fail "healthz: $c"
sleep 2.2
c=$(codes "Authorization: Bearer $token" 1)
[ "$c" = "200 " ] && pass "the bucket refills at the configured rate" || fail "after waiting: $c"
grep -q -- "$token" "$CM_UP_DIR"/run/*.log && fail "token in a log" || pass "token in no log"
echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
