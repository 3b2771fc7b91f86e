# shellcheck shell=bash
# Installs the Debian packages cm needs to build, test and run, if any is missing.
CM_DEB_PACKAGES=(
  build-essential cmake pkg-config git ca-certificates
  librdkafka-dev libavro-dev libpq-dev libssh2-1-dev libconfig-dev check libsubunit-dev
  libmicrohttpd-dev libjansson-dev libsodium-dev libssl-dev libcurl4-openssl-dev
  libyaml-dev uuid-dev
  postgresql postgresql-client openssh-server openssh-client openssl curl
  python3 python3-avro python3-kafka kafkacat docker-compose clang
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
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Configures and builds into $1 (extra cmake args follow).
cm_build() {
  local dir=$1; shift
  cmake -S "$CM_ROOT" -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}
