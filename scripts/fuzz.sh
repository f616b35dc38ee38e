#!/usr/bin/env bash
# Fuzz the matching engine with cargo-fuzz / libFuzzer.
#
#   scripts/fuzz.sh            # run the `commands` target for 60 s
#   scripts/fuzz.sh 600        # ... for 600 s
#   scripts/fuzz.sh build      # only build the target (CI smoke check, ~2 min cold on 2 cores)
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer=address). Only a stable toolchain is
# available here, so RUSTC_BOOTSTRAP=1 unlocks them on stable. The fuzz logic itself lives in
# engine_rs::fuzzing::run_commands, which plain `cargo test` also runs over random bytes.
set -euo pipefail

cd "$(dirname "$0")/../engine_rs"
export RUSTC_BOOTSTRAP=1
TARGET=commands

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (about 1 min)..." >&2
    cargo install cargo-fuzz --locked
fi

if [[ "${1:-}" == "build" ]]; then
    exec cargo fuzz build "$TARGET"
fi

SECONDS_TO_RUN="${1:-60}"
exec cargo fuzz run "$TARGET" -- -max_total_time="$SECONDS_TO_RUN"
