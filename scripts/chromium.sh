#!/usr/bin/env bash
# Ensures Debian's headless-capable Chromium is installed for the browser tests
# (tests/test_dashboard.py); idempotent and safe to run again.
#
#   bash scripts/chromium.sh          # install it when missing, print the binary's path
#   bash scripts/chromium.sh --check  # print the path, or exit 1 when it is missing
#
# The tests look for `chromium` (Debian's package) or `chromium-browser` on PATH, or the path in
# QUANT_TEST_CHROMIUM. They are skipped locally without it and fail when CI is set.
#
# Diagnostics go to stderr; stdout carries only the path.
set -euo pipefail

log() { echo "chromium.sh: $*" >&2; }

find_chromium() {
  if [[ -n ${QUANT_TEST_CHROMIUM:-} && -x ${QUANT_TEST_CHROMIUM} ]]; then
    echo "$QUANT_TEST_CHROMIUM"
    return 0
  fi
  local name
  for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null 2>&1; then
      command -v "$name"
      return 0
    fi
  done
  return 1
}

MODE=install
case "${1:-}" in
  --check) MODE=check ;;
  "") ;;
  -h | --help)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac

if path="$(find_chromium)"; then
  echo "$path"
  exit 0
fi
if [[ $MODE == check ]]; then
  log "chromium is not installed (bash scripts/chromium.sh installs it)"
  exit 1
fi

SUDO=()
if [[ $EUID -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    log "chromium is missing and installing it needs root (apt-get install chromium)"
    exit 1
  fi
fi
log "installing Debian's chromium (apt-get)"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq >&2
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-liberation >&2
if ! path="$(find_chromium)"; then
  log "apt-get installed chromium but no chromium binary is on PATH"
  exit 1
fi
log "ready: $path ($("$path" --version 2>/dev/null || echo 'version unknown'))"
echo "$path"
