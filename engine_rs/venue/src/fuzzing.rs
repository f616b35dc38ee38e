//! The decoders' fuzz logic, shared by the cargo-fuzz targets (engine_rs/fuzz) and `cargo test`
//! (which runs it over random bytes): any input must give a value or an error, never a panic,
//! and what decodes must re-encode to itself.

use crate::command::{Command, Symbol, RECORD_LEN};
use crate::fix_parse::parse;
use crate::md::Subscriber;
use crate::sbe;
use std::collections::HashMap;

/// A FIX frame through IronFix's tag=value decoder (with and without the CheckSum check), then
/// the venue's reader of application messages.
pub fn fix_message(data: &[u8]) {
    let pricing: HashMap<Symbol, u64> = [(Symbol::new("AAPL").expect("symbol"), 10_000_000)]
        .into_iter()
        .collect();
    for check in [true, false] {
        let mut d = ironfix_tagvalue::Decoder::new(data).with_checksum_validation(check);
        while let Ok(m) = d.decode() {
            if let Ok(c) = parse(&m, 0, &pricing) {
                assert!(!c.cl_ord_id.is_empty() && !c.symbol.is_empty());
            }
            if d.is_empty() {
                break;
            }
        }
    }
}

/// A datagram through the SBE decoder and the subscriber.
pub fn sbe_packet(data: &[u8]) {
    let _ = sbe::decode_packet(data);
    Subscriber::new().on_packet(data);
}

/// A journal record: what decodes re-encodes to the same bytes.
pub fn journal_record(data: &[u8]) {
    if let Ok((seq, c)) = Command::decode(data) {
        let mut again = [0u8; RECORD_LEN];
        c.encode(seq, &mut again);
        assert_eq!(Command::decode(&again), Ok((seq, c)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_never_panic_the_decoders() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for n in 0..20_000usize {
            let bytes: Vec<u8> = (0..n % 400)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            fix_message(&bytes);
            sbe_packet(&bytes);
            journal_record(&bytes);
        }
        // a real order too, and every prefix of it
        let frame = b"8=FIX.4.4\x019=60\x0135=D\x0134=2\x0111=a\x0155=AAPL\x0154=1\x0138=10\x0140=2\x0144=1.00\x0110=000\x01";
        for n in 0..frame.len() {
            fix_message(&frame[..n]);
        }
    }
}
