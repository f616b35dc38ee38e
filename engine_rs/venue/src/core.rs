//! The deterministic core: owns the engine_rs books and the venue's order state, turns each
//! sequenced [`Command`] into execution reports and L2 level changes. Its output is a pure
//! function of its configuration and the sequenced input (no clock, no I/O, no randomness), so
//! replaying the journal rebuilds the same state, checked by [`VenueCore::state_hash`].

use crate::command::{ClOrdId, Command, Kind, OrdType, Refusal, Symbol, Tif};
use engine_rs::{
    BookConfig, Command as EngineCommand, Engine, Event, MatchingBook, NewOrder, OrderType,
    OrderView, Price, Qty, RejectReason, Side,
};
use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeMap;

/// One listed symbol: its price band in ticks and its capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listing {
    pub symbol: Symbol,
    pub min_price: Price,
    pub max_price: Price,
    pub max_orders: usize,
}

/// ExecType (150) / the message a [`Report`] becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecKind {
    New,
    Trade,
    Cancelled,
    Replaced,
    Rejected,
    /// The answer to an OrderStatusRequest (ExecType I).
    Status,
    /// An OrderCancelReject (35=9) answering a cancel (`response_to_replace = false`) or a
    /// replace request.
    CancelReject {
        response_to_replace: bool,
    },
}

/// OrdStatus (39) after the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OrdStatus {
    New,
    PartiallyFilled,
    Filled,
    Cancelled,
    Rejected,
}

/// Why a request was refused: the text (58) of the reject, and OrdRejReason (103) /
/// CxlRejReason (102) where FIX has a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    None,
    UnknownSymbol,
    ZeroQuantity,
    PriceOutOfBand,
    DuplicateClOrdId,
    UnknownOrder,
    TooLateToCancel,
    BookFull,
    FokNotFillable,
    QtyNotAboveFilled,
    SideOrSymbolChanged,
    PriceOffTick,
    UnsupportedTimeInForce,
    UnsupportedOrdType,
    ClOrdIdTooLong,
}

impl Reason {
    pub fn text(self) -> &'static str {
        match self {
            Reason::None => "",
            Reason::UnknownSymbol => "unknown symbol",
            Reason::ZeroQuantity => "zero quantity",
            Reason::PriceOutOfBand => "price outside the symbol's band",
            Reason::DuplicateClOrdId => "duplicate ClOrdID",
            Reason::UnknownOrder => "unknown order",
            Reason::TooLateToCancel => "order already done",
            Reason::BookFull => "book full",
            Reason::FokNotFillable => "fill-or-kill order could not be filled",
            Reason::QtyNotAboveFilled => "new quantity not above the filled quantity",
            Reason::SideOrSymbolChanged => "a replace cannot change side or symbol",
            Reason::PriceOffTick => "price is not a multiple of the symbol's tick",
            Reason::UnsupportedTimeInForce => "TimeInForce not supported (0 DAY, 3 IOC, 4 FOK)",
            Reason::UnsupportedOrdType => "OrdType not supported (1 market, 2 limit)",
            Reason::ClOrdIdTooLong => "ClOrdID longer than 48 characters",
        }
    }

    /// OrdRejReason (103) for a rejected order, CxlRejReason (102) for a cancel reject.
    pub fn fix_code(self, cancel_reject: bool) -> u32 {
        match (self, cancel_reject) {
            (Reason::TooLateToCancel, true) => 0,
            (Reason::UnknownOrder, true) => 1,
            (Reason::DuplicateClOrdId, true) => 6,
            (_, true) => 99,
            (Reason::UnknownSymbol, false) => 1,
            (Reason::PriceOutOfBand, false) => 99,
            (Reason::DuplicateClOrdId, false) => 6,
            (Reason::UnknownOrder, false) => 5,
            (Reason::ZeroQuantity, false) => 13,
            _ => 99,
        }
    }
}

/// One execution report or cancel reject, addressed to the session that owns the order.
/// Prices in ticks; `notional` is the sum of fill price x quantity (average price = notional /
/// cum_qty); `exec_id` is unique and deterministic (sequence number x 4096 + index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    pub seq: u64,
    pub exec_id: u64,
    pub session: u16,
    pub kind: ExecKind,
    pub status: OrdStatus,
    pub order_id: u64,
    pub cl_ord_id: ClOrdId,
    pub orig_cl_ord_id: ClOrdId,
    pub symbol: Symbol,
    pub side: Side,
    pub ord_type: OrdType,
    pub tif: Tif,
    pub price: Price,
    pub order_qty: Qty,
    pub last_qty: Qty,
    pub last_px: Price,
    pub leaves_qty: Qty,
    pub cum_qty: Qty,
    pub notional: u128,
    pub reason: Reason,
}

/// An L2 level after a command: its open quantity and order count (0 = level gone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelChange {
    pub seq: u64,
    pub symbol: u32,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    pub orders: u32,
}

/// What the core emits for one command, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Report(Report),
    Level(LevelChange),
}

/// The venue's memory of a live order (the engine keeps only what matching needs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LiveOrder {
    session: u16,
    symbol: u32,
    side: Side,
    ord_type: OrdType,
    tif: Tif,
    price: Price,
    /// OrderQty (38): total, as last set by the client.
    qty: Qty,
    cum: Qty,
    notional: u128,
    cl_ord_id: ClOrdId,
}

/// What the venue keeps of an order that left the book: its fate, not its identifiers (the
/// ClOrdID map names it; a status request is answered with the ClOrdID it asked about). Half the
/// size of a live order: every order of the day ends up here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Finished {
    status: OrdStatus,
    side: Side,
    ord_type: OrdType,
    tif: Tif,
    symbol: u32,
    price: Price,
    qty: Qty,
    cum: Qty,
    notional: u128,
}

impl Finished {
    fn of(o: &LiveOrder, status: OrdStatus) -> Self {
        Finished {
            status,
            side: o.side,
            ord_type: o.ord_type,
            tif: o.tif,
            symbol: o.symbol,
            price: o.price,
            qty: o.qty,
            cum: o.cum,
            notional: o.notional,
        }
    }

    fn to_live(self, session: u16, cl_ord_id: ClOrdId) -> LiveOrder {
        LiveOrder {
            session,
            symbol: self.symbol,
            side: self.side,
            ord_type: self.ord_type,
            tif: self.tif,
            price: self.price,
            qty: self.qty,
            cum: self.cum,
            notional: self.notional,
            cl_ord_id,
        }
    }
}

pub struct VenueCore {
    engine: Engine,
    listings: Vec<Listing>,
    by_symbol: HashMap<Symbol, u32>,
    live: HashMap<u64, LiveOrder>,
    /// Orders that left the book, with their final status (for OrderStatusRequest).
    finished: HashMap<u64, Finished>,
    /// Every ClOrdID a session used (orders, cancels, replaces) -> the order it names; a
    /// ClOrdID is unique per session for the life of the venue's state.
    ids: HashMap<(u16, ClOrdId), u64>,
    last_seq: u64,
    events: Vec<Event>,
    touched: Vec<(u32, Side, Price)>,
}

impl VenueCore {
    pub fn new(listings: &[Listing]) -> Self {
        let mut engine = Engine::new();
        let mut by_symbol = HashMap::default();
        for l in listings {
            let id = engine.add_symbol(BookConfig {
                min_price: l.min_price,
                max_price: l.max_price,
                max_orders: l.max_orders,
            });
            by_symbol.insert(l.symbol, id);
        }
        VenueCore {
            engine,
            listings: listings.to_vec(),
            by_symbol,
            live: HashMap::default(),
            finished: HashMap::default(),
            ids: HashMap::default(),
            last_seq: 0,
            events: Vec::with_capacity(1024),
            touched: Vec::with_capacity(64),
        }
    }

    pub fn listings(&self) -> &[Listing] {
        &self.listings
    }

    /// Sequence number of the last command applied (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn live_orders(&self) -> usize {
        self.live.len()
    }

    /// Applies command `seq` (which must be `last_seq() + 1`) and appends its outputs.
    pub fn apply(&mut self, seq: u64, c: &Command, out: &mut Vec<Output>) {
        assert_eq!(
            seq,
            self.last_seq + 1,
            "commands must be applied in sequence"
        );
        self.last_seq = seq;
        let first = out.len();
        self.touched.clear();
        match c.kind {
            Kind::New => self.new_order(seq, c, out),
            Kind::Cancel => self.cancel(seq, c, out),
            Kind::Replace => self.replace(seq, c, out),
            Kind::Status => self.status(seq, c, out),
            Kind::Nop => {}
        }
        self.publish_levels(seq, out);
        for (k, o) in out[first..].iter_mut().enumerate() {
            if let Output::Report(r) = o {
                r.exec_id = seq * 4096 + k as u64;
            }
        }
    }

    fn new_order(&mut self, seq: u64, c: &Command, out: &mut Vec<Output>) {
        if let Some(reason) = refusal_reason(c.refusal) {
            return out.push(Output::Report(reject(seq, c, reason)));
        }
        let Some(&symbol) = self.by_symbol.get(&c.symbol) else {
            return out.push(Output::Report(reject(seq, c, Reason::UnknownSymbol)));
        };
        if self.ids.contains_key(&(c.session, c.cl_ord_id)) {
            return out.push(Output::Report(reject(seq, c, Reason::DuplicateClOrdId)));
        }
        self.ids.insert((c.session, c.cl_ord_id), seq);
        let listing = self.listings[symbol as usize];
        let (order_type, price) = match (c.ord_type, c.tif) {
            (OrdType::Limit, Tif::Day) => (OrderType::Limit, c.price),
            (OrdType::Limit, Tif::Ioc) => (OrderType::Ioc, c.price),
            (OrdType::Limit, Tif::Fok) => (OrderType::Fok, c.price),
            // a market FOK: fill completely at any price in the band, or nothing
            (OrdType::Market, Tif::Fok) => match c.side {
                Side::Buy => (OrderType::Fok, listing.max_price),
                Side::Sell => (OrderType::Fok, listing.min_price),
            },
            (OrdType::Market, _) => (OrderType::Market, 0),
        };
        self.live.insert(
            seq,
            LiveOrder {
                session: c.session,
                symbol,
                side: c.side,
                ord_type: c.ord_type,
                tif: c.tif,
                price: c.price,
                qty: c.qty,
                cum: 0,
                notional: 0,
                cl_ord_id: c.cl_ord_id,
            },
        );
        let order = NewOrder {
            id: seq,
            side: c.side,
            order_type,
            price,
            qty: c.qty,
        };
        self.run(EngineCommand::Submit { symbol, order });
        if order_type == OrderType::Limit {
            self.touched.push((symbol, c.side, c.price));
        }
        self.translate(seq, c, out);
    }

    /// The live order a cancel or replace names, or why the request is refused (a gateway
    /// refusal, a ClOrdID already used, an unknown or finished order).
    fn target(&self, c: &Command) -> Result<u64, Reason> {
        if let Some(reason) = refusal_reason(c.refusal) {
            return Err(reason);
        }
        if self.ids.contains_key(&(c.session, c.cl_ord_id)) {
            return Err(Reason::DuplicateClOrdId);
        }
        match self.ids.get(&(c.session, c.orig_cl_ord_id)) {
            None => Err(Reason::UnknownOrder),
            Some(id) if !self.live.contains_key(id) => Err(Reason::TooLateToCancel),
            Some(&id) => Ok(id),
        }
    }

    fn cancel(&mut self, seq: u64, c: &Command, out: &mut Vec<Output>) {
        let id = match self.target(c) {
            Ok(id) => id,
            Err(r) => return out.push(Output::Report(cancel_reject(seq, c, r, false))),
        };
        self.ids.insert((c.session, c.cl_ord_id), id);
        let o = self.live[&id];
        self.touched.push((o.symbol, o.side, o.price));
        self.run(EngineCommand::Cancel {
            symbol: o.symbol,
            id,
        });
        self.translate(seq, c, out);
    }

    fn replace(&mut self, seq: u64, c: &Command, out: &mut Vec<Output>) {
        let refused = |reason| Output::Report(cancel_reject(seq, c, reason, true));
        let id = match self.target(c) {
            Ok(id) => id,
            Err(r) => return out.push(refused(r)),
        };
        let o = self.live[&id];
        if o.side != c.side || self.listings[o.symbol as usize].symbol != c.symbol {
            return out.push(refused(Reason::SideOrSymbolChanged));
        }
        if c.qty <= o.cum {
            return out.push(refused(Reason::QtyNotAboveFilled));
        }
        self.ids.insert((c.session, c.cl_ord_id), id);
        self.touched.push((o.symbol, o.side, o.price));
        self.touched.push((o.symbol, o.side, c.price));
        self.run(EngineCommand::Modify {
            symbol: o.symbol,
            id,
            price: c.price,
            qty: c.qty - o.cum,
        });
        self.translate(seq, c, out);
    }

    /// ExecutionReport(ExecType I) on the order `c.cl_ord_id` names, live or finished; an
    /// unknown one is answered with OrdStatus Rejected and reason "unknown order".
    fn status(&mut self, seq: u64, c: &Command, out: &mut Vec<Output>) {
        let id = self.ids.get(&(c.session, c.cl_ord_id)).copied();
        let report = match id {
            Some(id) if self.live.contains_key(&id) => self.report(seq, id, ExecKind::Status),
            Some(id) if self.finished.contains_key(&id) => {
                let f = self.finished[&id];
                let (o, status) = (f.to_live(c.session, c.cl_ord_id), f.status);
                let Output::Report(mut r) = self.report_of(seq, id, &o, ExecKind::Status) else {
                    unreachable!("report_of gives a report")
                };
                r.status = status;
                if status != OrdStatus::Filled {
                    r.leaves_qty = 0;
                }
                Output::Report(r)
            }
            _ => Output::Report(Report {
                kind: ExecKind::Status,
                order_id: 0,
                ..reject(seq, c, Reason::UnknownOrder)
            }),
        };
        out.push(report);
    }

    fn finish(&mut self, id: u64, status: OrdStatus) {
        if let Some(o) = self.live.remove(&id) {
            self.finished.insert(id, Finished::of(&o, status));
        }
    }

    fn run(&mut self, command: EngineCommand) {
        self.events.clear();
        self.engine.process(command, &mut self.events);
    }

    /// Execution reports for the engine events of command `c`.
    fn translate(&mut self, seq: u64, c: &Command, out: &mut Vec<Output>) {
        for k in 0..self.events.len() {
            match self.events[k] {
                Event::Accepted { id } => out.push(self.report(seq, id, ExecKind::New)),
                Event::Rejected { id, reason } => {
                    let reason = engine_reason(reason);
                    let report = match c.kind {
                        Kind::New => {
                            self.finish(id, OrdStatus::Rejected);
                            reject(seq, c, reason)
                        }
                        // a modify the engine refuses leaves the order as it was
                        Kind::Replace => {
                            self.ids.remove(&(c.session, c.cl_ord_id));
                            cancel_reject(seq, c, reason, true)
                        }
                        _ => cancel_reject(seq, c, reason, false),
                    };
                    out.push(Output::Report(report));
                }
                Event::Fill {
                    maker_id,
                    taker_id,
                    price,
                    qty,
                    taker_side,
                    ..
                } => {
                    for id in [taker_id, maker_id] {
                        if let Some(o) = self.live.get_mut(&id) {
                            o.cum += qty;
                            o.notional += price as u128 * qty as u128;
                            let mut r = self.report(seq, id, ExecKind::Trade);
                            if let Output::Report(r) = &mut r {
                                r.last_qty = qty;
                                r.last_px = price;
                            }
                            out.push(r);
                        }
                    }
                    let symbol = self.live.get(&taker_id).map_or(0, |o| o.symbol);
                    self.touched.push((symbol, taker_side.opposite(), price));
                }
                Event::Cancelled { id, .. } => {
                    let mut r = self.report(seq, id, ExecKind::Cancelled);
                    if let Output::Report(r) = &mut r {
                        r.leaves_qty = 0;
                        r.status = OrdStatus::Cancelled;
                        if c.kind == Kind::Cancel {
                            r.cl_ord_id = c.cl_ord_id;
                            r.orig_cl_ord_id = c.orig_cl_ord_id;
                        }
                    }
                    out.push(r);
                    self.finish(id, OrdStatus::Cancelled);
                }
                Event::Modified { id, price, .. } => {
                    if let Some(o) = self.live.get_mut(&id) {
                        o.price = price;
                        o.qty = c.qty;
                        o.cl_ord_id = c.cl_ord_id;
                    }
                    let mut r = self.report(seq, id, ExecKind::Replaced);
                    if let Output::Report(r) = &mut r {
                        r.orig_cl_ord_id = c.orig_cl_ord_id;
                    }
                    out.push(r);
                }
                Event::Done { id, .. } => self.finish(id, OrdStatus::Filled),
            }
        }
    }

    /// A report on live order `id` as it stands now.
    fn report(&self, seq: u64, id: u64, kind: ExecKind) -> Output {
        self.report_of(seq, id, &self.live[&id], kind)
    }

    fn report_of(&self, seq: u64, id: u64, o: &LiveOrder, kind: ExecKind) -> Output {
        let leaves = o.qty - o.cum;
        let status = match (leaves, o.cum) {
            (0, _) => OrdStatus::Filled,
            (_, 0) => OrdStatus::New,
            _ => OrdStatus::PartiallyFilled,
        };
        let symbol = self.listings[o.symbol as usize].symbol;
        Output::Report(Report {
            seq,
            exec_id: 0,
            session: o.session,
            kind,
            status,
            order_id: id,
            cl_ord_id: o.cl_ord_id,
            orig_cl_ord_id: ClOrdId::EMPTY,
            symbol,
            side: o.side,
            ord_type: o.ord_type,
            tif: o.tif,
            price: o.price,
            order_qty: o.qty,
            last_qty: 0,
            last_px: 0,
            leaves_qty: leaves,
            cum_qty: o.cum,
            notional: o.notional,
            reason: Reason::None,
        })
    }

    /// One [`LevelChange`] per distinct level the command touched, read from the books after it.
    fn publish_levels(&mut self, seq: u64, out: &mut Vec<Output>) {
        self.touched
            .sort_unstable_by_key(|&(s, side, p)| (s, side as u8, p));
        self.touched.dedup();
        for &(symbol, side, price) in &self.touched {
            let Some(book) = self.engine.book(symbol) else {
                continue;
            };
            let (qty, orders) = book.level(side, price);
            out.push(Output::Level(LevelChange {
                seq,
                symbol,
                side,
                price,
                qty,
                orders,
            }));
        }
    }

    /// Top `levels` of each side of `symbol`.
    pub fn depth(&self, symbol: u32, side: Side, levels: usize, out: &mut Vec<engine_rs::Level>) {
        out.clear();
        if let Some(b) = self.engine.book(symbol) {
            b.depth(side, levels, out);
        }
    }

    /// FNV-1a over everything that decides future outputs: every book's resting orders in
    /// priority order and fill sequence, the live orders and the ClOrdID map (sorted).
    pub fn state_hash(&self) -> u64 {
        let mut h = Fnv::default();
        h.u64(self.last_seq);
        let mut orders = Vec::new();
        for s in 0..self.listings.len() as u32 {
            let book = self.engine.book(s).expect("listed");
            book.resting_orders(&mut orders);
            h.u64(book.last_seq());
            for o in &orders {
                h.order(o);
            }
        }
        for (id, o) in self.live.iter().collect::<BTreeMap<_, _>>() {
            h.u64(*id);
            h.live(o);
        }
        for (id, f) in self.finished.iter().collect::<BTreeMap<_, _>>() {
            h.u64(*id);
            h.live(&f.to_live(0, ClOrdId::EMPTY));
            h.u64(f.status as u64);
        }
        for ((s, c), id) in self.ids.iter().collect::<BTreeMap<_, _>>() {
            h.u64(*s as u64);
            h.bytes(c.as_str().as_bytes());
            h.u64(*id);
        }
        h.0
    }

    /// The whole state as plain data (see [`crate::journal`] for its file format).
    pub fn snapshot(&self) -> CoreSnapshot {
        let mut books = Vec::new();
        for s in 0..self.listings.len() as u32 {
            let book = self.engine.book(s).expect("listed");
            let mut orders = Vec::new();
            book.resting_orders(&mut orders);
            books.push((book.last_seq(), orders));
        }
        let mut live: Vec<_> = self.live.iter().map(|(id, o)| (*id, *o)).collect();
        live.sort_by_key(|(id, _)| *id);
        let mut ids: Vec<_> = self.ids.iter().map(|(k, v)| (k.0, k.1, *v)).collect();
        ids.sort();
        let mut finished: Vec<_> = self
            .finished
            .iter()
            .map(|(id, f)| {
                let o = f.to_live(0, ClOrdId::EMPTY);
                (SnapshotOrder::from_live(*id, &o), f.status)
            })
            .collect();
        finished.sort_by_key(|(o, _)| o.id);
        CoreSnapshot {
            last_seq: self.last_seq,
            books,
            live: live
                .into_iter()
                .map(|(id, o)| SnapshotOrder::from_live(id, &o))
                .collect(),
            finished,
            ids,
        }
    }

    /// A core in the state `snap` describes, over the same listings.
    pub fn restore(listings: &[Listing], snap: &CoreSnapshot) -> Result<Self, String> {
        let mut core = VenueCore::new(listings);
        if snap.books.len() != listings.len() {
            return Err(format!(
                "snapshot has {} books, the configuration lists {} symbols",
                snap.books.len(),
                listings.len()
            ));
        }
        for (s, (last_seq, orders)) in snap.books.iter().enumerate() {
            let book = core.engine.book_mut(s as u32).expect("listed");
            book.restore(orders, *last_seq)?;
        }
        for o in &snap.live {
            core.live.insert(o.id, o.to_live());
        }
        for (o, st) in &snap.finished {
            core.finished.insert(o.id, Finished::of(&o.to_live(), *st));
        }
        for (s, c, id) in &snap.ids {
            core.ids.insert((*s, *c), *id);
        }
        core.last_seq = snap.last_seq;
        Ok(core)
    }
}

/// The core's state as plain data: per book (fill sequence, resting orders in priority order),
/// the live orders, the ClOrdID map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreSnapshot {
    pub last_seq: u64,
    pub books: Vec<(u64, Vec<OrderView>)>,
    pub live: Vec<SnapshotOrder>,
    pub finished: Vec<(SnapshotOrder, OrdStatus)>,
    pub ids: Vec<(u16, ClOrdId, u64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotOrder {
    pub id: u64,
    pub session: u16,
    pub symbol: u32,
    pub side: Side,
    pub ord_type: OrdType,
    pub tif: Tif,
    pub price: Price,
    pub qty: Qty,
    pub cum: Qty,
    pub notional: u128,
    pub cl_ord_id: ClOrdId,
}

impl SnapshotOrder {
    fn from_live(id: u64, o: &LiveOrder) -> Self {
        SnapshotOrder {
            id,
            session: o.session,
            symbol: o.symbol,
            side: o.side,
            ord_type: o.ord_type,
            tif: o.tif,
            price: o.price,
            qty: o.qty,
            cum: o.cum,
            notional: o.notional,
            cl_ord_id: o.cl_ord_id,
        }
    }

    fn to_live(self) -> LiveOrder {
        LiveOrder {
            session: self.session,
            symbol: self.symbol,
            side: self.side,
            ord_type: self.ord_type,
            tif: self.tif,
            price: self.price,
            qty: self.qty,
            cum: self.cum,
            notional: self.notional,
            cl_ord_id: self.cl_ord_id,
        }
    }
}

fn refusal_reason(r: Refusal) -> Option<Reason> {
    match r {
        Refusal::None => None,
        Refusal::PriceOffTick => Some(Reason::PriceOffTick),
        Refusal::UnsupportedTimeInForce => Some(Reason::UnsupportedTimeInForce),
        Refusal::UnsupportedOrdType => Some(Reason::UnsupportedOrdType),
        Refusal::ClOrdIdTooLong => Some(Reason::ClOrdIdTooLong),
    }
}

fn engine_reason(r: RejectReason) -> Reason {
    match r {
        RejectReason::ZeroQuantity => Reason::ZeroQuantity,
        RejectReason::PriceOutOfBand => Reason::PriceOutOfBand,
        RejectReason::DuplicateOrderId => Reason::DuplicateClOrdId,
        RejectReason::UnknownOrderId => Reason::UnknownOrder,
        RejectReason::UnknownSymbol => Reason::UnknownSymbol,
        RejectReason::BookFull => Reason::BookFull,
        RejectReason::FokNotFillable => Reason::FokNotFillable,
    }
}

/// ExecutionReport(Rejected) for a new order that never reached a book.
fn reject(seq: u64, c: &Command, reason: Reason) -> Report {
    Report {
        seq,
        exec_id: 0,
        session: c.session,
        kind: ExecKind::Rejected,
        status: OrdStatus::Rejected,
        order_id: seq,
        cl_ord_id: c.cl_ord_id,
        orig_cl_ord_id: ClOrdId::EMPTY,
        symbol: c.symbol,
        side: c.side,
        ord_type: c.ord_type,
        tif: c.tif,
        price: c.price,
        order_qty: c.qty,
        last_qty: 0,
        last_px: 0,
        leaves_qty: 0,
        cum_qty: 0,
        notional: 0,
        reason,
    }
}

fn cancel_reject(seq: u64, c: &Command, reason: Reason, response_to_replace: bool) -> Report {
    Report {
        kind: ExecKind::CancelReject {
            response_to_replace,
        },
        orig_cl_ord_id: c.orig_cl_ord_id,
        order_id: 0,
        ..reject(seq, c, reason)
    }
}

#[derive(Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 = (self.0 ^ x as u64).wrapping_mul(0x100_0000_01b3);
        }
        self.u64(b.len() as u64);
    }
    fn u64(&mut self, v: u64) {
        for x in v.to_le_bytes() {
            self.0 = (self.0 ^ x as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn order(&mut self, o: &OrderView) {
        self.u64(o.id);
        self.u64(o.side as u64);
        self.u64(o.price as u64);
        self.u64(o.remaining);
        self.u64(o.filled);
    }
    fn live(&mut self, o: &LiveOrder) {
        self.u64(o.session as u64);
        self.u64(o.symbol as u64);
        self.u64(o.side as u64);
        self.u64(o.ord_type as u64);
        self.u64(o.tif as u64);
        self.u64(o.price as u64);
        self.u64(o.qty);
        self.u64(o.cum);
        self.u64(o.notional as u64);
        self.u64((o.notional >> 64) as u64);
        self.bytes(o.cl_ord_id.as_str().as_bytes());
    }
}
