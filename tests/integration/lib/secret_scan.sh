# shellcheck shell=bash
# Scans everything cm writes for secrets in plaintext (DESIGN §5, issue "Prove it"):
# every topic of the broker (keys, values and headers), every table of the database
# (pg_dump, data and schema), and every log file.
#   cm_secret_scan BOOTSTRAP CONNINFO LOGDIR SECRET_FILE...
# A secret file is scanned for by each of its lines that is long enough to be distinctive
# (16+ characters, e.g. the base64 lines of a private key, a token, a certificate key), so
# a secret cannot hide by being re-wrapped or partly copied. Prints every hit with where it
# was found and returns the number of hits (0: clean).
cm_secret_scan() {
  local bootstrap=$1 conninfo=$2 logdir=$3; shift 3
  local dump hits=0 needles line f topic
  dump=$(mktemp -d /tmp/cm-scan.XXXXXX)
  needles="$dump/needles"
  : >"$needles"
  for f in "$@"; do
    # PEM armor lines and YAML keys are public text; the base64 bodies are what matter.
    while IFS= read -r line; do
      line=${line//[$'\r\t ']/}
      line=${line#*:}         # "client-key-data: XXXX" -> "XXXX"
      case "$line" in -----*|"") continue ;; esac
      [ ${#line} -ge 16 ] && printf '%s\n' "$line" >>"$needles"
    done <"$f"
    # a secret may also travel base64-encoded as a whole (kubeconfig data fields)
    base64 -w0 <"$f" | cut -c1-64 | grep -E '.{16}' >>"$needles" || true
  done
  sort -u -o "$needles" "$needles"
  for topic in $(kcat -b "$bootstrap" -L 2>/dev/null | sed -n 's/^  topic "\([^"]*\)".*/\1/p'); do
    kcat -b "$bootstrap" -C -t "$topic" -o beginning -e -q \
      -f 'key=%k value=%s headers=%h\n' >"$dump/topic-$topic" 2>/dev/null || true
  done
  pg_dump "$conninfo" >"$dump/database.sql" 2>/dev/null
  cat "$logdir"/*.log >"$dump/logs" 2>/dev/null || true
  while IFS= read -r line; do
    for f in "$dump"/topic-* "$dump/database.sql" "$dump/logs"; do
      [ -f "$f" ] || continue
      if grep -qF -- "$line" "$f"; then
        echo "SECRET FOUND in ${f##*/}: ${line:0:12}..." >&2
        hits=$((hits + 1))
      fi
    done
  done <"$needles"
  echo "secret scan: $(wc -l <"$needles") needles, $(ls "$dump" | grep -c topic-) topics," \
    "$(wc -c <"$dump/database.sql") bytes of database, $(wc -c <"$dump/logs") bytes of logs: $hits hits"
  rm -rf "$dump"
  return "$hits"
}
