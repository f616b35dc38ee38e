//! libFuzzer wrapper; all logic (decoding + differential checks) lives in
//! `engine_rs::fuzzing::run_commands` so that plain `cargo test` exercises it too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    engine_rs::fuzzing::run_commands(data);
});
