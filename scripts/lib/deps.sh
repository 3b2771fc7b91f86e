# shellcheck shell=bash
# Installs the Debian packages cm needs to build, test and run, if any is missing.
CM_DEB_PACKAGES=(
  build-essential cmake pkg-config git ca-certificates
  librdkafka-dev libavro-dev libpq-dev libssh2-1-dev libconfig-dev check libsubunit-dev
  libmicrohttpd-dev libjansson-dev libsodium-dev libssl-dev libcurl4-openssl-dev
  libyaml-dev uuid-dev
  postgresql postgresql-client openssh-server openssh-client openssl curl
  python3 python3-avro python3-kafka kafkacat docker-compose clang
  libclang-rt-dev # libFuzzer and the sanitizer runtimes of the default clang (scripts/fuzz)
)

cm_deps_install() {
  local missing=() p
  for p in "${CM_DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing Debian packages: ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  local log
  log=$(mktemp)
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l \
      $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"
    echo "apt-get install failed for: ${missing[*]}" >&2
    return 1
  fi
  rm -f "$log"
}

# Configures and builds into $1 (extra cmake args follow).
cm_build() {
  local dir=$1; shift
  local log="$dir/cm-build.log"
  mkdir -p "$dir"
  echo "building ${dir#"$CM_ROOT"/} $*" >&2
  if ! { cmake -S "$CM_ROOT" -B "$dir" "$@" && cmake --build "$dir" -j "$(nproc)"; } >"$log" 2>&1; then
    grep -E -B2 -A8 "error|Error" "$log" | head -n 60 >&2
    echo "build failed; full log: $log" >&2
    return 1
  fi
}
