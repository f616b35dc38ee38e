//! Reading NewOrderSingle / OrderCancelRequest / OrderCancelReplaceRequest /
//! OrderStatusRequest into [`Command`]s: what the gateway does with every application message,
//! kept apart from the server so the fuzz target runs it on any decoded frame.

use crate::command::{ClOrdId, Command, Kind, OrdType, Refusal, Symbol, Tif};
use crate::config::to_ticks;
use engine_rs::Side;
use ironfix_core::message::{MsgType, RawMessage};
use std::collections::HashMap;

/// Session-level Reject reasons (373) the gateway uses.
const REQUIRED_TAG_MISSING: u32 = 1;
const VALUE_INCORRECT: u32 = 5;
const INCORRECT_FORMAT: u32 = 6;
const INVALID_MSG_TYPE: u32 = 11;

/// A session-level Reject (35=3): SessionRejectReason (373), Text (58), RefTagID (371).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionReject {
    pub code: u32,
    pub text: &'static str,
    pub ref_tag: Option<u32>,
}

impl SessionReject {
    fn new(code: u32, text: &'static str) -> Self {
        SessionReject {
            code,
            text,
            ref_tag: None,
        }
    }

    fn tag(mut self, tag: u32) -> Self {
        self.ref_tag = Some(tag);
        self
    }
}

fn missing(tag: u32) -> SessionReject {
    SessionReject::new(REQUIRED_TAG_MISSING, "Required tag missing").tag(tag)
}

fn field<'a>(m: &RawMessage<'a>, tag: u32) -> Result<&'a str, SessionReject> {
    m.get_field_str(tag).ok_or_else(|| missing(tag))
}

fn id_field(m: &RawMessage<'_>, tag: u32) -> Result<ClOrdId, SessionReject> {
    let s = field(m, tag)?;
    ClOrdId::new(s).filter(|c| !c.is_empty()).ok_or_else(|| {
        SessionReject::new(
            VALUE_INCORRECT,
            "identifier empty or longer than 48 characters",
        )
        .tag(tag)
    })
}

fn side_field(m: &RawMessage<'_>) -> Result<Side, SessionReject> {
    match field(m, 54)? {
        "1" => Ok(Side::Buy),
        "2" => Ok(Side::Sell),
        _ => Err(SessionReject::new(VALUE_INCORRECT, "Side must be 1 (buy) or 2 (sell)").tag(54)),
    }
}

fn qty_field(m: &RawMessage<'_>) -> Result<u64, SessionReject> {
    let s = field(m, 38)?;
    let bad = || {
        SessionReject::new(
            INCORRECT_FORMAT,
            "OrderQty must be a whole number of shares",
        )
        .tag(38)
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if !frac.bytes().all(|c| c == b'0') {
        return Err(bad());
    }
    int.parse::<u64>().map_err(|_| bad())
}

/// Parses a NewOrderSingle / OrderCancelRequest / OrderCancelReplaceRequest.
pub fn parse(
    m: &RawMessage<'_>,
    session: u16,
    pricing: &HashMap<Symbol, u64>,
) -> Result<Command, SessionReject> {
    let kind = match m.msg_type() {
        MsgType::NewOrderSingle => Kind::New,
        MsgType::OrderCancelRequest => Kind::Cancel,
        MsgType::OrderCancelReplaceRequest => Kind::Replace,
        MsgType::OrderStatusRequest => Kind::Status,
        _ => {
            return Err(SessionReject::new(
                INVALID_MSG_TYPE,
                "MsgType not supported by the venue (D, F, G, H)",
            ))
        }
    };
    let mut c = Command {
        kind,
        session,
        cl_ord_id: id_field(m, 11)?,
        side: side_field(m)?,
        ..Command::default()
    };
    let sym = field(m, 55)?;
    c.symbol = Symbol::new(sym).filter(|s| !s.is_empty()).ok_or_else(|| {
        SessionReject::new(VALUE_INCORRECT, "Symbol empty or longer than 16 characters").tag(55)
    })?;
    if kind == Kind::Cancel || kind == Kind::Replace {
        c.orig_cl_ord_id = id_field(m, 41)?;
    }
    if kind == Kind::Cancel || kind == Kind::Status {
        return Ok(c);
    }
    c.qty = qty_field(m)?;
    c.ord_type = match field(m, 40)? {
        "1" => OrdType::Market,
        "2" => OrdType::Limit,
        _ => {
            c.refusal = Refusal::UnsupportedOrdType;
            OrdType::Limit
        }
    };
    c.tif = match m.get_field_str(59).unwrap_or("0") {
        "0" => Tif::Day,
        "3" => Tif::Ioc,
        "4" => Tif::Fok,
        _ => {
            c.refusal = Refusal::UnsupportedTimeInForce;
            Tif::Day
        }
    };
    if c.ord_type == OrdType::Limit && c.refusal != Refusal::UnsupportedOrdType {
        let price = field(m, 44)?;
        // an unknown symbol has no tick: the core rejects it as unknown
        if let Some(&tick) = pricing.get(&c.symbol) {
            match to_ticks(price, tick) {
                Ok(t) => c.price = t,
                Err(true) => c.refusal = Refusal::PriceOffTick,
                Err(false) => {
                    return Err(SessionReject::new(
                        INCORRECT_FORMAT,
                        "Price is not a decimal number",
                    )
                    .tag(44))
                }
            }
        }
    }
    Ok(c)
}
