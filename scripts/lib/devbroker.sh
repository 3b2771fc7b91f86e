# shellcheck shell=bash
# cm_devbroker_start BIN DIR [ARGS...]  starts cm-devbroker, waits for DIR/bootstrap
# cm_devbroker_stop DIR                 SIGTERM, then waits for it to exit
cm_devbroker_start() {
  local bin=$1 dir=$2; shift 2
  mkdir -p "$dir"
  rm -f "$dir/bootstrap"
  "$bin" --bootstrap-file "$dir/bootstrap" "$@" >"$dir/stdout" 2>"$dir/devbroker.log" &
  echo $! >"$dir/pid"
  local i
  for i in $(seq 1 100); do
    [ -s "$dir/bootstrap" ] && return 0
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "cm-devbroker did not start; its log:" >&2
  tail -n 20 "$dir/devbroker.log" >&2
  return 1
}

cm_devbroker_stop() {
  local dir=$1 pid i
  [ -s "$dir/pid" ] || return 0
  pid=$(cat "$dir/pid")
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$dir/pid"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
}
