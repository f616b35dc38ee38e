//! The sequenced input of the venue: one fixed-size [`Command`] per client request, the unit the
//! input ring carries, the journal stores and the core applies. Prices are integer ticks of the
//! symbol, identifiers fixed-width ASCII, so a command is `Copy` and its record has one size.

use engine_rs::Side;

/// Longest ClOrdID (11) / OrigClOrdID (41) the venue accepts, in bytes.
pub const ID_LEN: usize = 48;
/// Longest Symbol (55), in bytes.
pub const SYMBOL_LEN: usize = 16;
/// Size of one journal record (see [`Command::encode`]).
pub const RECORD_LEN: usize = 152;

/// A short ASCII identifier stored inline (no heap): a ClOrdID or a symbol.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Text<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> Text<N> {
    pub const EMPTY: Self = Text {
        len: 0,
        bytes: [0; N],
    };

    /// `None` when `s` is longer than `N` bytes or is not printable ASCII (FIX String values).
    pub fn new(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() > N || !b.iter().all(|c| (0x20..0x7f).contains(c)) {
            return None;
        }
        let mut bytes = [0; N];
        bytes[..b.len()].copy_from_slice(b);
        Some(Text {
            len: b.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // only printable ASCII gets in (`new`, `read`), so this cannot fail
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn write(&self, out: &mut [u8]) {
        out[0] = self.len;
        out[1..=N].copy_from_slice(&self.bytes);
    }

    fn read(buf: &[u8]) -> Result<Self, RecordError> {
        let len = buf[0] as usize;
        let body = &buf[1..=N];
        if len > N || !body[..len].iter().all(|c| (0x20..0x7f).contains(c)) {
            return Err(RecordError::BadField("text"));
        }
        let mut bytes = [0; N];
        bytes[..len].copy_from_slice(&body[..len]);
        Ok(Text {
            len: len as u8,
            bytes,
        })
    }
}

impl<const N: usize> std::fmt::Debug for Text<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl<const N: usize> Default for Text<N> {
    fn default() -> Self {
        Self::EMPTY
    }
}

pub type ClOrdId = Text<ID_LEN>;
pub type Symbol = Text<SYMBOL_LEN>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Kind {
    /// An empty ring slot; never journaled.
    #[default]
    Nop = 0,
    /// NewOrderSingle (35=D).
    New = 1,
    /// OrderCancelRequest (35=F).
    Cancel = 2,
    /// OrderCancelReplaceRequest (35=G).
    Replace = 3,
    /// OrderStatusRequest (35=H): changes nothing, answered in sequence.
    Status = 4,
}

/// OrdType (40): the two the venue trades.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum OrdType {
    Market = b'1',
    #[default]
    Limit = b'2',
}

/// TimeInForce (59): the three the venue trades.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Tif {
    #[default]
    Day = b'0',
    Ioc = b'3',
    Fok = b'4',
}

/// One client request, as sequenced. `session` is the member's index in the venue's
/// configuration; `price` is in ticks of the symbol (0 for a market order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    pub kind: Kind,
    pub session: u16,
    pub side: Side,
    pub ord_type: OrdType,
    pub tif: Tif,
    pub price: i64,
    pub qty: u64,
    pub symbol: Symbol,
    pub cl_ord_id: ClOrdId,
    pub orig_cl_ord_id: ClOrdId,
    /// Set by the gateway for an order it could read but the venue cannot accept (a price off
    /// the tick, an unsupported TimeInForce): the core answers ExecutionReport(Rejected) with
    /// this reason, so every report comes from the sequenced stream.
    pub refusal: Refusal,
}

/// Why the gateway refused an order it could read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Refusal {
    #[default]
    None = 0,
    PriceOffTick = 1,
    UnsupportedTimeInForce = 2,
    UnsupportedOrdType = 3,
    ClOrdIdTooLong = 4,
}

impl Default for Command {
    fn default() -> Self {
        Command {
            kind: Kind::Nop,
            session: 0,
            side: Side::Buy,
            ord_type: OrdType::Limit,
            tif: Tif::Day,
            price: 0,
            qty: 0,
            symbol: Symbol::EMPTY,
            cl_ord_id: ClOrdId::EMPTY,
            orig_cl_ord_id: ClOrdId::EMPTY,
            refusal: Refusal::None,
        }
    }
}

/// Why a journal record does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// Fewer than [`RECORD_LEN`] bytes: a torn tail.
    Short,
    /// The CRC-32 does not match the bytes: a torn or damaged record.
    Checksum,
    BadField(&'static str),
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Short => write!(f, "short record"),
            RecordError::Checksum => write!(f, "checksum mismatch"),
            RecordError::BadField(w) => write!(f, "bad {w}"),
        }
    }
}

// Layout (little endian): crc32 of bytes 4.. | seq u64 | kind | side | ord_type | tif |
// session u16 | price i64 | qty u64 | symbol (len + 16) | cl_ord_id (len + 48) |
// orig_cl_ord_id (len + 48) | zero padding to RECORD_LEN.
const SYM_AT: usize = 4 + 8 + 4 + 2 + 8 + 8;
const CL_AT: usize = SYM_AT + 1 + SYMBOL_LEN;
const ORIG_AT: usize = CL_AT + 1 + ID_LEN;
const REFUSAL_AT: usize = ORIG_AT + 1 + ID_LEN;
const _: () = assert!(REFUSAL_AT < RECORD_LEN);

impl Command {
    /// The journal record of this command at sequence number `seq`.
    pub fn encode(&self, seq: u64, out: &mut [u8; RECORD_LEN]) {
        out.fill(0);
        out[4..12].copy_from_slice(&seq.to_le_bytes());
        out[12] = self.kind as u8;
        out[13] = self.side as u8;
        out[14] = self.ord_type as u8;
        out[15] = self.tif as u8;
        out[16..18].copy_from_slice(&self.session.to_le_bytes());
        out[18..26].copy_from_slice(&self.price.to_le_bytes());
        out[26..34].copy_from_slice(&self.qty.to_le_bytes());
        self.symbol.write(&mut out[SYM_AT..]);
        self.cl_ord_id.write(&mut out[CL_AT..]);
        self.orig_cl_ord_id.write(&mut out[ORIG_AT..]);
        out[REFUSAL_AT] = self.refusal as u8;
        let crc = crc32fast::hash(&out[4..]);
        out[0..4].copy_from_slice(&crc.to_le_bytes());
    }

    /// Decodes one record: `(seq, command)`. Any byte string gives a value or an error, never a
    /// panic (fuzzed).
    pub fn decode(buf: &[u8]) -> Result<(u64, Command), RecordError> {
        if buf.len() < RECORD_LEN {
            return Err(RecordError::Short);
        }
        let buf = &buf[..RECORD_LEN];
        let crc = u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes"));
        if crc != crc32fast::hash(&buf[4..]) {
            return Err(RecordError::Checksum);
        }
        let u64_at = |i: usize| u64::from_le_bytes(buf[i..i + 8].try_into().expect("8 bytes"));
        let kind = match buf[12] {
            1 => Kind::New,
            2 => Kind::Cancel,
            3 => Kind::Replace,
            4 => Kind::Status,
            _ => return Err(RecordError::BadField("kind")),
        };
        let side = match buf[13] {
            0 => Side::Buy,
            1 => Side::Sell,
            _ => return Err(RecordError::BadField("side")),
        };
        let ord_type = match buf[14] {
            b'1' => OrdType::Market,
            b'2' => OrdType::Limit,
            _ => return Err(RecordError::BadField("ord_type")),
        };
        let tif = match buf[15] {
            b'0' => Tif::Day,
            b'3' => Tif::Ioc,
            b'4' => Tif::Fok,
            _ => return Err(RecordError::BadField("tif")),
        };
        let command = Command {
            kind,
            session: u16::from_le_bytes([buf[16], buf[17]]),
            side,
            ord_type,
            tif,
            price: u64_at(18) as i64,
            qty: u64_at(26),
            symbol: Text::read(&buf[SYM_AT..])?,
            cl_ord_id: Text::read(&buf[CL_AT..])?,
            orig_cl_ord_id: Text::read(&buf[ORIG_AT..])?,
            refusal: match buf[REFUSAL_AT] {
                0 => Refusal::None,
                1 => Refusal::PriceOffTick,
                2 => Refusal::UnsupportedTimeInForce,
                3 => Refusal::UnsupportedOrdType,
                4 => Refusal::ClOrdIdTooLong,
                _ => return Err(RecordError::BadField("refusal")),
            },
        };
        Ok((u64_at(4), command))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Command {
        Command {
            kind: Kind::Replace,
            session: 3,
            side: Side::Sell,
            ord_type: OrdType::Limit,
            tif: Tif::Ioc,
            price: -12345,
            qty: 77,
            symbol: Symbol::new("BRK.B").unwrap(),
            cl_ord_id: ClOrdId::new("20240614-hrp-BRK.B-sell").unwrap(),
            orig_cl_ord_id: ClOrdId::new("x").unwrap(),
            refusal: Refusal::PriceOffTick,
        }
    }

    #[test]
    fn a_record_decodes_to_the_command_it_encoded() {
        let mut rec = [0u8; RECORD_LEN];
        sample().encode(42, &mut rec);
        assert_eq!(Command::decode(&rec), Ok((42, sample())));
    }

    #[test]
    fn a_flipped_bit_or_a_torn_tail_is_refused() {
        let mut rec = [0u8; RECORD_LEN];
        sample().encode(1, &mut rec);
        rec[40] ^= 1;
        assert_eq!(Command::decode(&rec), Err(RecordError::Checksum));
        assert_eq!(Command::decode(&rec[..100]), Err(RecordError::Short));
    }

    #[test]
    fn identifiers_longer_than_their_field_or_not_printable_are_refused() {
        assert!(ClOrdId::new(&"a".repeat(ID_LEN)).is_some());
        assert!(ClOrdId::new(&"a".repeat(ID_LEN + 1)).is_none());
        assert!(Symbol::new("AB\u{1}C").is_none());
    }
}
