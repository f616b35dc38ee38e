#!/usr/bin/env bash
# Installs what the project needs to run, idempotently: uv (from PyPI) and the locked Python
# environment in .venv. Safe to run on every command; a no-op when everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

# the matching engine's Python binding (engine_rs/py) is compiled from source during the sync
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null 2>&1; then
  echo "bootstrap: cargo not found. The Rust matching engine needs a stable Rust toolchain:" >&2
  echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh   (or Debian's cargo)" >&2
  exit 1
fi

if ! command -v uv >/dev/null 2>&1; then
  echo "bootstrap: installing uv from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check uv \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages uv
  export PATH="$HOME/.local/bin:$PATH"
fi

if command -v uv >/dev/null 2>&1; then uv sync --locked --quiet; else python3 -m uv sync --locked --quiet; fi
