//! libFuzzer wrapper for FIX frames: IronFix's tag=value decoder, then the venue's order reader; the logic is `venue::fuzzing::fix_message`, which plain
//! `cargo test` also runs over random bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    venue::fuzzing::fix_message(data);
});
