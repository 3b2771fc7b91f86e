# shellcheck shell=bash
# A PostgreSQL server of Debian's packages in a local data folder, on loopback.
# cm_pg_start DATADIR PORT   initializes DATADIR if empty, starts the server, waits until ready
# cm_pg_stop DATADIR         stops it (fast shutdown)
# cm_pg_conninfo PORT        conninfo of the 'cm' superuser role, database 'cm'
# Runs the server as the postgres user when called as root (PostgreSQL refuses root).

cm_pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; return 1; }
  echo "$d"
}

cm_pg_as() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cm_pg_start() {
  local data=$1 port=$2 bin
  bin=$(cm_pg_bindir) || return 1
  mkdir -p "$data"
  if [ "$(id -u)" -eq 0 ]; then
    chmod o+x "$(dirname "$data")"  # the postgres user must reach the folder
    chown postgres:postgres "$data" && chmod 700 "$data"
  fi
  if [ ! -s "$data/PG_VERSION" ]; then
    cm_pg_as "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null || return 1
  fi
  cm_pg_as "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $data -c fsync=off -c max_connections=200" start >/dev/null || {
    echo "PostgreSQL did not start; its log:" >&2; tail -n 20 "$data/server.log" >&2; return 1; }
  "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 >/dev/null <<SQL || return 1
SELECT 'CREATE ROLE cm LOGIN SUPERUSER' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname='cm')\gexec
SELECT 'CREATE DATABASE cm OWNER cm' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname='cm')\gexec
SQL
}

cm_pg_stop() {
  local data=$1 bin
  bin=$(cm_pg_bindir) || return 1
  [ -s "$data/postmaster.pid" ] || return 0
  cm_pg_as "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

cm_pg_conninfo() {
  echo "host=127.0.0.1 port=$1 user=cm dbname=cm connect_timeout=5"
}

# A free TCP port on loopback, drawn below the kernel's ephemeral range (32768-60999):
# a port from bind(port 0) lies inside it, where any outgoing connection may take it as
# its source port before the server that was meant to have it binds it.
cm_free_port() {
  python3 -c '
import random, socket
for _ in range(200):
    p = random.randint(20000, 32759)  # p+2 stays below 32768
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
else:
    raise SystemExit("no free port")'
}
