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

# The one C++ source build in the lock is QuickFIX's Python binding (a 5.8 MB SWIG wrapper): at
# its default -O3 -g it takes over 20 minutes on 2 cores, at -O0 about 2. It carries FIX sessions
# for the venue broker and the interoperability tests, not a hot path.
export CFLAGS="${CFLAGS:--O0 -g0}" CXXFLAGS="${CXXFLAGS:--O0 -g0}"
if command -v uv >/dev/null 2>&1; then uv sync --locked --quiet; else python3 -m uv sync --locked --quiet; fi
