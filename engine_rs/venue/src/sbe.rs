//! The SBE codec of `schema/market_data.xml`, written from the schema (no maintained Rust SBE
//! generator fit the build: see the README). Little endian, fixed offsets; the decoder follows
//! SBE's extension rules (a larger `blockLength` than this version knows is skipped over) and
//! checks every bound, so any byte string decodes to messages or an error, never a panic.

use crate::command::Symbol;
use engine_rs::Side;

pub const SCHEMA_ID: u16 = 17;
pub const SCHEMA_VERSION: u16 = 1;
pub const INCREMENTAL_ID: u16 = 1;
pub const SNAPSHOT_ID: u16 = 2;
const INCREMENTAL_BLOCK: u16 = 40;
const SNAPSHOT_BLOCK: u16 = 44;
const ENTRY_BLOCK: u16 = 24;
const MSG_HEADER: usize = 8;
const GROUP_HEADER: usize = 4;
pub const PACKET_HEADER: usize = 16;

/// One L2 level in a message: qty 0 (incremental) removes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub side: Side,
    pub price: i64,
    pub qty: u64,
    pub orders: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Incremental {
        symbol: Symbol,
        rpt_seq: u64,
        transact_seq: u64,
        tick_nanos: u64,
        entries: Vec<Entry>,
    },
    Snapshot {
        symbol: Symbol,
        last_rpt_seq: u64,
        transact_seq: u64,
        tick_nanos: u64,
        chunk: u16,
        chunks: u16,
        entries: Vec<Entry>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SbeError {
    Truncated(&'static str),
    WrongSchema { schema_id: u16, version: u16 },
    BadValue(&'static str),
}

impl std::fmt::Display for SbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SbeError::Truncated(w) => write!(f, "truncated {w}"),
            SbeError::WrongSchema { schema_id, version } => {
                write!(
                    f,
                    "schema {schema_id} version {version} is not {SCHEMA_ID}/{SCHEMA_VERSION}"
                )
            }
            SbeError::BadValue(w) => write!(f, "bad {w}"),
        }
    }
}

// ---- encoding -----------------------------------------------------------------------------

/// Starts a packet in `buf` (cleared).
pub fn begin_packet(buf: &mut Vec<u8>, packet_seq: u64, sending_time_ns: u64) {
    buf.clear();
    buf.extend_from_slice(&packet_seq.to_le_bytes());
    buf.extend_from_slice(&sending_time_ns.to_le_bytes());
}

/// Bytes one message with `n` entries takes in a packet (length prefix included).
pub fn message_len(snapshot: bool, n: usize) -> usize {
    let block = if snapshot {
        SNAPSHOT_BLOCK
    } else {
        INCREMENTAL_BLOCK
    } as usize;
    2 + MSG_HEADER + block + GROUP_HEADER + n * ENTRY_BLOCK as usize
}

fn put_header(buf: &mut Vec<u8>, block: u16, template: u16, n: usize) {
    let len = 2 + MSG_HEADER + block as usize + GROUP_HEADER + n * ENTRY_BLOCK as usize;
    buf.extend_from_slice(&(len as u16).to_le_bytes());
    for v in [block, template, SCHEMA_ID, SCHEMA_VERSION] {
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

fn put_symbol(buf: &mut Vec<u8>, s: &Symbol) {
    let mut b = [0u8; 16];
    b[..s.as_str().len()].copy_from_slice(s.as_str().as_bytes());
    buf.extend_from_slice(&b);
}

fn put_entries(buf: &mut Vec<u8>, entries: &[Entry]) {
    buf.extend_from_slice(&ENTRY_BLOCK.to_le_bytes());
    buf.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for e in entries {
        buf.extend_from_slice(&e.price.to_le_bytes());
        buf.extend_from_slice(&e.qty.to_le_bytes());
        buf.extend_from_slice(&e.orders.to_le_bytes());
        buf.push(e.side as u8);
        buf.extend_from_slice(&[0, 0, 0]);
    }
}

pub fn put_incremental(
    buf: &mut Vec<u8>,
    symbol: &Symbol,
    rpt_seq: u64,
    transact_seq: u64,
    tick_nanos: u64,
    entries: &[Entry],
) {
    put_header(buf, INCREMENTAL_BLOCK, INCREMENTAL_ID, entries.len());
    put_symbol(buf, symbol);
    for v in [rpt_seq, transact_seq, tick_nanos] {
        buf.extend_from_slice(&v.to_le_bytes());
    }
    put_entries(buf, entries);
}

#[allow(clippy::too_many_arguments)]
pub fn put_snapshot(
    buf: &mut Vec<u8>,
    symbol: &Symbol,
    last_rpt_seq: u64,
    transact_seq: u64,
    tick_nanos: u64,
    chunk: u16,
    chunks: u16,
    entries: &[Entry],
) {
    put_header(buf, SNAPSHOT_BLOCK, SNAPSHOT_ID, entries.len());
    put_symbol(buf, symbol);
    for v in [last_rpt_seq, transact_seq, tick_nanos] {
        buf.extend_from_slice(&v.to_le_bytes());
    }
    buf.extend_from_slice(&chunk.to_le_bytes());
    buf.extend_from_slice(&chunks.to_le_bytes());
    put_entries(buf, entries);
}

// ---- decoding -----------------------------------------------------------------------------

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], SbeError> {
        if self.0.len() < n {
            return Err(SbeError::Truncated(what));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, SbeError> {
        Ok(u16::from_le_bytes(
            self.take(2, what)?.try_into().expect("2"),
        ))
    }
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().expect("8"))
}

fn symbol_at(b: &[u8]) -> Result<Symbol, SbeError> {
    let raw = &b[..16];
    let end = raw.iter().position(|&c| c == 0).unwrap_or(16);
    let s = std::str::from_utf8(&raw[..end]).map_err(|_| SbeError::BadValue("symbol"))?;
    Symbol::new(s).ok_or(SbeError::BadValue("symbol"))
}

fn entries(c: &mut Cursor<'_>) -> Result<Vec<Entry>, SbeError> {
    let block = c.u16("group header")? as usize;
    let n = c.u16("group header")? as usize;
    if block < ENTRY_BLOCK as usize - 3 {
        return Err(SbeError::BadValue("entry blockLength"));
    }
    let mut out = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        let e = c.take(block, "entry")?;
        let side = match e[20] {
            0 => Side::Buy,
            1 => Side::Sell,
            _ => return Err(SbeError::BadValue("side")),
        };
        out.push(Entry {
            price: u64_at(e, 0) as i64,
            qty: u64_at(e, 8),
            orders: u32::from_le_bytes(e[16..20].try_into().expect("4")),
            side,
        });
    }
    Ok(out)
}

/// Decodes one message (its length prefix already removed).
pub fn decode_message(msg: &[u8]) -> Result<Message, SbeError> {
    let mut c = Cursor(msg);
    let block = c.u16("message header")?;
    let template = c.u16("message header")?;
    let schema_id = c.u16("message header")?;
    let version = c.u16("message header")?;
    if schema_id != SCHEMA_ID || version < SCHEMA_VERSION {
        return Err(SbeError::WrongSchema { schema_id, version });
    }
    match template {
        INCREMENTAL_ID => {
            if block < INCREMENTAL_BLOCK {
                return Err(SbeError::BadValue("blockLength"));
            }
            let b = c.take(block as usize, "block")?;
            Ok(Message::Incremental {
                symbol: symbol_at(b)?,
                rpt_seq: u64_at(b, 16),
                transact_seq: u64_at(b, 24),
                tick_nanos: u64_at(b, 32),
                entries: entries(&mut c)?,
            })
        }
        SNAPSHOT_ID => {
            if block < SNAPSHOT_BLOCK {
                return Err(SbeError::BadValue("blockLength"));
            }
            let b = c.take(block as usize, "block")?;
            let chunk = u16::from_le_bytes([b[40], b[41]]);
            let chunks = u16::from_le_bytes([b[42], b[43]]);
            if chunks == 0 || chunk >= chunks {
                return Err(SbeError::BadValue("chunk"));
            }
            Ok(Message::Snapshot {
                symbol: symbol_at(b)?,
                last_rpt_seq: u64_at(b, 16),
                transact_seq: u64_at(b, 24),
                tick_nanos: u64_at(b, 32),
                chunk,
                chunks,
                entries: entries(&mut c)?,
            })
        }
        _ => Err(SbeError::BadValue("templateId")),
    }
}

/// Decodes a datagram: `(packet_seq, sending_time_ns, messages)`.
pub fn decode_packet(buf: &[u8]) -> Result<(u64, u64, Vec<Message>), SbeError> {
    let mut c = Cursor(buf);
    let h = c.take(PACKET_HEADER, "packet header")?;
    let (seq, time) = (u64_at(h, 0), u64_at(h, 8));
    let mut messages = Vec::new();
    while !c.0.is_empty() {
        let len = c.u16("message length")? as usize;
        if len < 2 + MSG_HEADER {
            return Err(SbeError::BadValue("message length"));
        }
        messages.push(decode_message(c.take(len - 2, "message")?)?);
    }
    Ok((seq, time, messages))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packet_of_both_messages_decodes_to_what_was_encoded() {
        let sym = Symbol::new("AAPL").unwrap();
        let e = [
            Entry {
                side: Side::Buy,
                price: 10_000,
                qty: 300,
                orders: 2,
            },
            Entry {
                side: Side::Sell,
                price: 10_001,
                qty: 0,
                orders: 0,
            },
        ];
        let mut buf = Vec::new();
        begin_packet(&mut buf, 7, 99);
        put_incremental(&mut buf, &sym, 5, 1234, 10_000_000, &e);
        put_snapshot(&mut buf, &sym, 5, 1234, 10_000_000, 1, 3, &e[..1]);
        assert_eq!(
            buf.len(),
            PACKET_HEADER + message_len(false, 2) + message_len(true, 1)
        );
        let (seq, time, msgs) = decode_packet(&buf).unwrap();
        assert_eq!((seq, time, msgs.len()), (7, 99, 2));
        assert_eq!(
            msgs[0],
            Message::Incremental {
                symbol: sym,
                rpt_seq: 5,
                transact_seq: 1234,
                tick_nanos: 10_000_000,
                entries: e.to_vec()
            }
        );
        assert!(
            matches!(&msgs[1], Message::Snapshot { chunk: 1, chunks: 3, entries, .. } if entries.len() == 1)
        );
    }

    #[test]
    fn every_prefix_of_a_packet_is_an_error_or_fewer_messages_never_a_panic() {
        let sym = Symbol::new("MSFT").unwrap();
        let mut buf = Vec::new();
        begin_packet(&mut buf, 1, 2);
        put_incremental(
            &mut buf,
            &sym,
            1,
            1,
            1,
            &[Entry {
                side: Side::Sell,
                price: 5,
                qty: 1,
                orders: 1,
            }],
        );
        for n in 0..buf.len() {
            assert!(decode_packet(&buf[..n]).is_err() || n == PACKET_HEADER);
        }
    }

    #[test]
    fn another_schema_is_refused_by_id() {
        let mut buf = Vec::new();
        begin_packet(&mut buf, 1, 2);
        put_incremental(&mut buf, &Symbol::new("X").unwrap(), 1, 1, 1, &[]);
        buf[PACKET_HEADER + 2 + 4] = 99;
        assert_eq!(
            decode_packet(&buf),
            Err(SbeError::WrongSchema {
                schema_id: 99,
                version: 1
            })
        );
    }
}
