#!/usr/bin/env bash
# Ensures a Docker Compose CLI that can validate docker-compose.yml (`config` only parses: no
# Docker daemon is needed); idempotent and safe to run again.
#
#   bash scripts/compose.sh          # install it when missing, print the command
#   bash scripts/compose.sh --check  # print the command, or exit 1 when there is none
#
# Found in this order: `docker compose` (the v2 plugin), `docker-compose` (v2 or v1). When neither
# is there, Debian's `docker-compose` package is installed (apt-get; needs root or sudo; bookworm
# has 1.29.2, which reads the Compose Specification file used here). tests/test_compose.py uses
# the same order; it skips without a CLI locally and fails when CI is set.
#
# Diagnostics go to stderr; stdout carries only the command (`docker compose` or a path).
set -euo pipefail

log() { echo "compose.sh: $*" >&2; }

find_compose() {
  if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    echo "docker compose"
    return 0
  fi
  if command -v docker-compose >/dev/null 2>&1 && docker-compose version >/dev/null 2>&1; then
    command -v docker-compose
    return 0
  fi
  return 1
}

case "${1:-}" in
  --check)
    find_compose || { log "no docker compose / docker-compose on PATH"; exit 1; }
    exit 0
    ;;
  "") ;;
  -h | --help)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac

if find_compose; then
  exit 0
fi

SUDO=()
if [[ $EUID -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    log "no compose CLI, and installing Debian's docker-compose needs root (apt-get)"
    exit 1
  fi
fi
log "installing Debian's docker-compose (apt-get)"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq >&2
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends docker-compose >&2
find_compose || { log "apt-get installed docker-compose but it does not run"; exit 1; }
