//! libFuzzer wrapper for SBE market-data datagrams: the decoder and the subscriber; the logic is `venue::fuzzing::sbe_packet`, which plain
//! `cargo test` also runs over random bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    venue::fuzzing::sbe_packet(data);
});
