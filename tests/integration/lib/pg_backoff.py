#!/usr/bin/env python3
"""pg_backoff - reads the JSON logs of cm services across PostgreSQL outages and checks
that each connection reconnected with bounded, doubling backoff (common/cm_pg.c).

  pg_backoff.py MIN_MS MAX_MS OUTAGES_FILE LOG...

OUTAGES_FILE holds one line per outage: "DOWN_EPOCH UP_EPOCH" (date +%s.%N). For every
connection ("conn", per process) whose attempts failed during an outage, from the
"postgres connection attempt failed" lines in that outage (from DOWN until UP + 60 s):
  - the announced waits (retryInMs) are MIN, 2*MIN, 4*MIN, ... capped at MAX, never above;
  - consecutive attempts are at least the announced wait apart (no hot loop);
  - a "postgres connected" line for the connection follows after UP.
Prints one "ok:" or "FAIL:" line per check and a summary; exits 1 on any failure.
"""
import datetime
import json
import os
import sys


def epoch(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def read(log):
    events = []
    with open(log, errors="replace") as f:
        for line in f:
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if o.get("msg") in ("postgres connection attempt failed", "postgres connected"):
                events.append((epoch(o["time"]), o["msg"], o.get("conn", "?"), o))
    return events


def main():
    lo, hi, outages_file, logs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    outages = [tuple(map(float, l.split())) for l in open(outages_file) if l.strip()]
    failures = []
    conns = attempts = 0
    worst_wait = worst_reconnect = 0.0
    for log in logs:
        service = os.path.basename(log).rsplit(".", 1)[0]
        events = read(log)
        for o, (down, up) in enumerate(outages, 1):
            window = [e for e in events if down <= e[0] <= up + 60]
            by_conn = {}
            for e in window:
                by_conn.setdefault(e[2], []).append(e)
            for conn, evs in sorted(by_conn.items()):
                failed = [e for e in evs if e[1] != "postgres connected"]
                if not failed:
                    continue
                conns += 1
                attempts += len(failed)
                who = "%s conn %s, outage %d" % (service, conn, o)
                expect = lo
                for i, e in enumerate(failed):
                    wait = int(e[3].get("retryInMs", "-1"))
                    worst_wait = max(worst_wait, wait)
                    if wait != expect:
                        failures.append("%s: attempt %d announced a wait of %d ms, expected %d"
                                        % (who, i + 1, wait, expect))
                        break
                    if i > 0:
                        prev_wait = int(failed[i - 1][3]["retryInMs"]) / 1000.0
                        gap = e[0] - failed[i - 1][0]
                        if gap < prev_wait - 0.02:
                            failures.append("%s: attempt %d came %.3f s after the one before, "
                                            "which announced %.3f s" % (who, i + 1, gap, prev_wait))
                            break
                    expect = min(expect * 2, hi)
                back = [e for e in evs if e[1] == "postgres connected" and e[0] >= failed[-1][0]]
                if not back or back[0][0] < up:
                    failures.append("%s: no 'postgres connected' after the restart" % who)
                else:
                    worst_reconnect = max(worst_reconnect, back[0][0] - up)
    for f in failures:
        print("FAIL: " + f)
    if conns == 0:
        print("FAIL: no failed connection attempt logged during the outages")
        return 1
    if failures:
        return 1
    print("ok: %d connections in %d services backed off %d ms doubling to at most %d ms "
          "(%d attempts, largest wait %d ms), each reconnected after the restart "
          "(the last %.1f s after it)"
          % (conns, len(logs), lo, hi, attempts, worst_wait, worst_reconnect))
    return 0


if __name__ == "__main__":
    sys.exit(main())
