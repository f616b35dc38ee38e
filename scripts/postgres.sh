#!/usr/bin/env bash
# Ensures a local PostgreSQL server for the test suite runs; idempotent and safe to run again.
#
#   bash scripts/postgres.sh          # start it if needed, print the URL
#   bash scripts/postgres.sh --env    # same, printing `export QUANT_TEST_POSTGRES_URL=...` (eval it)
#   bash scripts/postgres.sh --stop   # stop the server this script started
#
# The URL (what the tests read from QUANT_TEST_POSTGRES_URL, and their default):
#
#   postgresql://postgres:postgres@127.0.0.1:5433/quant_test
#
# (the port is the first free one from 5433 up, remembered in .pg/port).
#
# 1. If QUANT_TEST_POSTGRES_URL, or the URL of the cluster made here before, accepts a connection,
#    nothing is done.
# 2. Otherwise Debian's PostgreSQL is installed when initdb is missing (apt-get; needs root). The
#    binaries are taken from /usr/lib/postgresql/<newest>/bin, never from a stray one on PATH.
# 3. A throwaway cluster is initialised in .pg/data under the project (gitignored), owned by the
#    `postgres` OS user when run as root (initdb refuses root), listening on 127.0.0.1 only, with
#    superuser postgres / password postgres, durability off (fsync=off: test data only), and
#    TimescaleDB preloaded when its library is installed. Then it is started and the database
#    quant_test created.
#
# Diagnostics go to stderr; stdout carries only the URL (or the export line).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PGROOT="${QUANT_TEST_PGROOT:-$ROOT/.pg}"
FIRST_PORT="${QUANT_TEST_POSTGRES_PORT:-5433}"
DB=quant_test
SUPERUSER=postgres
PASSWORD=postgres

MODE=url
case "${1:-}" in
  --env) MODE=env ;;
  --stop) MODE=stop ;;
  --url | "") MODE=url ;;
  -h | --help)
    sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "usage: $0 [--env|--url|--stop]" >&2
    exit 2
    ;;
esac

log() { echo "postgres.sh: $*" >&2; }

url_for_port() { echo "postgresql://$SUPERUSER:$PASSWORD@127.0.0.1:$1/$DB"; }

emit() {
  if [[ $MODE == env ]]; then
    echo "export QUANT_TEST_POSTGRES_URL='$1'"
  else
    echo "$1"
  fi
}

bindir() {
  # Debian's versioned binaries, newest first; never a stray postgres on PATH
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -n $dir && -x $dir/initdb && -x $dir/pg_ctl ]]; then echo "$dir"; fi
}

psql_bin() {
  local dir
  dir="$(bindir)"
  if [[ -n $dir && -x $dir/psql ]]; then
    echo "$dir/psql"
  elif command -v psql >/dev/null 2>&1; then
    command -v psql
  fi
}

can_connect() {
  local psql
  psql="$(psql_bin)"
  [[ -n $psql ]] || return 1
  PGCONNECT_TIMEOUT=3 "$psql" "$1" -XAtqc 'select 1' >/dev/null 2>&1
}

port_is_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

as_owner() {
  # run a command as the cluster's owner: `postgres` when we are root, else ourselves
  if [[ $EUID -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# --- stop -----------------------------------------------------------------------------------------
if [[ $MODE == stop ]]; then
  BIN="$(bindir)"
  if [[ -n $BIN && -f $PGROOT/data/PG_VERSION ]] && as_owner "$BIN/pg_ctl" -D "$PGROOT/data" status >/dev/null 2>&1; then
    as_owner "$BIN/pg_ctl" -D "$PGROOT/data" -m fast -w stop >&2
  else
    log "no server of ours is running"
  fi
  exit 0
fi

# --- 1. already reachable? ------------------------------------------------------------------------
if [[ -n ${QUANT_TEST_POSTGRES_URL:-} ]] && can_connect "$QUANT_TEST_POSTGRES_URL"; then
  emit "$QUANT_TEST_POSTGRES_URL"
  exit 0
fi
if [[ -f $PGROOT/port ]]; then
  URL="$(url_for_port "$(cat "$PGROOT/port")")"
  if can_connect "$URL"; then
    emit "$URL"
    exit 0
  fi
fi
if [[ -n ${QUANT_TEST_POSTGRES_URL:-} ]]; then
  log "QUANT_TEST_POSTGRES_URL is set but does not connect; starting a local server instead"
fi

# --- 2. binaries ----------------------------------------------------------------------------------
BIN="$(bindir)"
if [[ -z $BIN ]]; then
  log "installing Debian's postgresql (apt-get)"
  SUDO=()
  if [[ $EUID -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
      SUDO=(sudo)
    else
      log "PostgreSQL is missing and installing it needs root (apt-get install postgresql)"
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq >&2
  "${SUDO[@]}" apt-get install -y -qq postgresql >&2
  BIN="$(bindir)"
  if [[ -z $BIN ]]; then
    log "apt-get installed postgresql but no /usr/lib/postgresql/*/bin/initdb was found"
    exit 1
  fi
fi
if [[ $EUID -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
  log "the 'postgres' OS user is missing (initdb refuses to run as root)"
  exit 1
fi

# --- 3. cluster -----------------------------------------------------------------------------------
mkdir -p "$PGROOT"
if [[ $EUID -eq 0 ]]; then
  chown postgres:postgres "$PGROOT"
  if ! runuser -u postgres -- test -w "$PGROOT"; then
    # the project lies where the postgres user cannot reach (e.g. a private home directory)
    PGROOT=/var/lib/postgresql/quant_test
    log "postgres cannot write under the project; using $PGROOT"
    mkdir -p "$PGROOT"
    chown postgres:postgres "$PGROOT"
  fi
fi
chmod 700 "$PGROOT"
PGDATA="$PGROOT/data"

if [[ ! -f $PGDATA/PG_VERSION ]]; then
  PORT="$FIRST_PORT"
  while ! port_is_free "$PORT"; do PORT=$((PORT + 1)); done
  log "initialising a cluster in $PGDATA (port $PORT) with $BIN/initdb"
  PWFILE="$PGROOT/.pwfile"
  echo "$PASSWORD" >"$PWFILE"
  [[ $EUID -eq 0 ]] && chown postgres:postgres "$PWFILE"
  as_owner "$BIN/initdb" -D "$PGDATA" -U "$SUPERUSER" --pwfile="$PWFILE" -E UTF8 --no-locale \
    --auth-local=trust --auth-host=scram-sha-256 >"$PGROOT/initdb.log" 2>&1 || {
    cat "$PGROOT/initdb.log" >&2
    rm -f "$PWFILE"
    exit 1
  }
  rm -f "$PWFILE"
  PRELOAD=""
  if [[ -f "$("$BIN/pg_config" --pkglibdir 2>/dev/null || echo /nonexistent)/timescaledb.so" ]]; then
    PRELOAD="shared_preload_libraries = 'timescaledb'"
    log "TimescaleDB found: preloading it"
  fi
  as_owner tee -a "$PGDATA/postgresql.conf" >/dev/null <<EOF

# --- scripts/postgres.sh: a throwaway test server ---
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = '4GB'
$PRELOAD
EOF
  echo "$PORT" >"$PGROOT/port"
fi
PORT="$(cat "$PGROOT/port")"
URL="$(url_for_port "$PORT")"

if ! as_owner "$BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
  if ! port_is_free "$PORT"; then
    log "port $PORT is taken by another program; free it or remove $PGROOT to start over"
    exit 1
  fi
  log "starting PostgreSQL on 127.0.0.1:$PORT"
  as_owner "$BIN/pg_ctl" -D "$PGDATA" -l "$PGROOT/server.log" -w -t 60 start >&2 || {
    tail -n 30 "$PGROOT/server.log" >&2 || true
    exit 1
  }
fi

ADMIN_URL="postgresql://$SUPERUSER:$PASSWORD@127.0.0.1:$PORT/postgres"
PSQL="$(psql_bin)"
for _ in $(seq 1 30); do
  can_connect "$ADMIN_URL" && break
  sleep 1
done
if ! can_connect "$ADMIN_URL"; then
  log "the server does not accept connections; see $PGROOT/server.log"
  exit 1
fi
if [[ -z $("$PSQL" "$ADMIN_URL" -XAtqc "select 1 from pg_database where datname = '$DB'") ]]; then
  log "creating database $DB"
  "$PSQL" "$ADMIN_URL" -XAtqc "create database $DB" >&2
fi

log "ready: $URL"
emit "$URL"
