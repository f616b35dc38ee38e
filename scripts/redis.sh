#!/usr/bin/env bash
# Ensures Debian's redis-server for the serving cache; idempotent and safe to run again.
#
#   bash scripts/redis.sh           # install it when missing, print the path of redis-server
#   bash scripts/redis.sh --start   # also start one on 127.0.0.1 (first free port from 6380),
#                                   # without persistence, and print its URL (QUANT_REDIS_URL)
#   bash scripts/redis.sh --stop    # stop the server --start started
#
# The test suite starts and stops its own servers from the same binary (tests/conftest.py: one
# per test that needs it, so a test can stop it); --start is for a local run with the cache
# (QUANT_REDIS_URL=$(bash scripts/redis.sh --start) make run). Diagnostics go to stderr; stdout
# carries only the path or the URL.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="$ROOT/.redis"
FIRST_PORT="${QUANT_REDIS_PORT:-6380}"

log() { echo "redis.sh: $*" >&2; }

find_server() {
  command -v redis-server 2>/dev/null || { [[ -x /usr/bin/redis-server ]] && echo /usr/bin/redis-server; }
}

install_server() {
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { log "redis-server is missing and there is no root or sudo to install it"; exit 1; }
    sudo="sudo"
  fi
  log "installing Debian's redis-server"
  $sudo apt-get install -y -qq redis-server >/dev/null 2>&1 \
    || { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq redis-server >/dev/null; }
  # Debian's package starts a system service on 6379; the platform starts its own servers
  $sudo service redis-server stop >/dev/null 2>&1 || true
}

SERVER="$(find_server || true)"
if [[ -z $SERVER ]]; then
  install_server
  SERVER="$(find_server)"
fi

case "${1:-}" in
  "" | --path)
    echo "$SERVER"
    ;;
  --start)
    mkdir -p "$STATE"
    if [[ -f $STATE/port ]] && redis-cli -p "$(cat "$STATE/port")" ping >/dev/null 2>&1; then
      echo "redis://127.0.0.1:$(cat "$STATE/port")/0"
      exit 0
    fi
    port=$FIRST_PORT
    while (echo >"/dev/tcp/127.0.0.1/$port") >/dev/null 2>&1; do port=$((port + 1)); done
    "$SERVER" --bind 127.0.0.1 --port "$port" --save "" --appendonly no --daemonize yes \
      --pidfile "$STATE/redis.pid" --logfile "$STATE/redis.log" --dir "$STATE"
    echo "$port" >"$STATE/port"
    for _ in $(seq 50); do
      redis-cli -p "$port" ping >/dev/null 2>&1 && break
      sleep 0.1
    done
    log "ready on 127.0.0.1:$port"
    echo "redis://127.0.0.1:$port/0"
    ;;
  --stop)
    if [[ -f $STATE/redis.pid ]]; then
      kill "$(cat "$STATE/redis.pid")" 2>/dev/null || true
      rm -f "$STATE/redis.pid" "$STATE/port"
    fi
    ;;
  -h | --help)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    ;;
  *)
    echo "usage: $0 [--path|--start|--stop]" >&2
    exit 2
    ;;
esac
