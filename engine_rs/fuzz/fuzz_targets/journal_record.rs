//! libFuzzer wrapper for journal records: decode, re-encode, decode; the logic is `venue::fuzzing::journal_record`, which plain
//! `cargo test` also runs over random bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    venue::fuzzing::journal_record(data);
});
