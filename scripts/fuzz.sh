#!/usr/bin/env bash
# Fuzz the matching engine and the venue's decoders with cargo-fuzz / libFuzzer.
#
#   scripts/fuzz.sh                    # run the `commands` target (the engine) for 60 s
#   scripts/fuzz.sh 600 fix_message    # ... a target for 600 s: commands, fix_message,
#                                      #     sbe_packet, journal_record
#   scripts/fuzz.sh build              # only build every target (CI smoke check)
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer=address). Only a stable toolchain is
# available here, so RUSTC_BOOTSTRAP=1 unlocks them on stable. The fuzz logic itself lives in
# engine_rs::fuzzing::run_commands, which plain `cargo test` also runs over random bytes.
set -euo pipefail

cd "$(dirname "$0")/../engine_rs"
export RUSTC_BOOTSTRAP=1
TARGET="${2:-commands}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (about 1 min)..." >&2
    cargo install cargo-fuzz --locked
fi

if [[ "${1:-}" == "build" ]]; then
    exec cargo fuzz build
fi

SECONDS_TO_RUN="${1:-60}"
exec cargo fuzz run "$TARGET" -- -max_total_time="$SECONDS_TO_RUN"
