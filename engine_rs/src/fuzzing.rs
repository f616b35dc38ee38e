//! Differential test harness, shared by the proptests (`tests/differential.rs`), the
//! random-bytes `cargo test` smoke test and the libFuzzer target (`fuzz/`).
//!
//! [`Harness::step`] runs one command through the fast [`Engine`] and, per symbol, through a
//! [`ReferenceBook`], and panics unless:
//! * both produce the identical event stream;
//! * both books then have identical full L2 depth, best bid/ask, size and order lookups;
//! * an independent event-driven ledger ([`Checker`]) agrees with the book: per-order open and
//!   filled quantities, price-time priority of every fill (best price, then earliest arrival),
//!   Done right after the fill that exhausts a maker, Market/IOC/FOK never resting, FOK never
//!   partially filled, fill sequence numbers consecutive, book never crossed, and quantity
//!   conservation (submitted + increases = filled + resting + cancelled + rejected + decreases).
//!
//! Not performance code: it allocates freely.

use std::collections::{BTreeMap, HashMap};

use crate::reference::ReferenceBook;
use crate::*;

#[derive(Clone, Copy, Debug)]
struct Live {
    side: Side,
    price: Price,
    open: Qty,
    filled: Qty,
    /// Arrival stamp: time priority within a price level.
    stamp: u64,
}

/// Event-driven model of one book, checking invariants. See the module docs.
#[derive(Debug)]
pub struct Checker {
    config: BookConfig,
    live: HashMap<OrderId, Live>,
    next_stamp: u64,
    last_seq: SeqNo,
    qty_in: i128,
    qty_out: i128,
}

impl Checker {
    pub fn new(config: BookConfig) -> Self {
        Checker {
            config,
            live: HashMap::new(),
            next_stamp: 0,
            last_seq: 0,
            qty_in: 0,
            qty_out: 0,
        }
    }

    /// Ids of the orders the ledger believes are resting.
    pub fn live_ids(&self) -> impl Iterator<Item = OrderId> + '_ {
        self.live.keys().copied()
    }

    fn in_band(&self, p: Price) -> bool {
        p >= self.config.min_price && p <= self.config.max_price
    }

    fn crosses(side: Side, limit: Option<Price>, price: Price) -> bool {
        match (side, limit) {
            (_, None) => true,
            (Side::Buy, Some(l)) => price <= l,
            (Side::Sell, Some(l)) => price >= l,
        }
    }

    /// (priority key, stamp) of the order that must trade next on `side`.
    fn priority(side: Side, o: &Live) -> (i128, u64) {
        let p = o.price as i128;
        (if side == Side::Buy { -p } else { p }, o.stamp)
    }

    fn available(&self, taker_side: Side, limit: Option<Price>) -> u128 {
        self.live
            .values()
            .filter(|o| o.side != taker_side && Self::crosses(taker_side, limit, o.price))
            .map(|o| o.open as u128)
            .sum()
    }

    fn rest(&mut self, id: OrderId, side: Side, price: Price, open: Qty, filled: Qty) {
        self.next_stamp += 1;
        let prev = self.live.insert(
            id,
            Live {
                side,
                price,
                open,
                filled,
                stamp: self.next_stamp,
            },
        );
        assert!(prev.is_none(), "order {id} rested twice");
    }

    #[allow(clippy::too_many_arguments)]
    /// Consumes the Fill/Done events of one taker starting at `ev[k]`. Returns (open, filled, k).
    fn fills(
        &mut self,
        taker: OrderId,
        side: Side,
        limit: Option<Price>,
        mut open: Qty,
        mut filled: Qty,
        ev: &[Event],
        mut k: usize,
    ) -> (Qty, Qty, usize) {
        while let Some(&Event::Fill {
            seq,
            maker_id,
            taker_id,
            price,
            qty,
            taker_side,
        }) = ev.get(k)
        {
            assert_eq!(taker_id, taker, "fill for the wrong taker");
            assert_eq!(taker_side, side);
            assert!(qty > 0 && qty <= open, "fill qty {qty} with {open} open");
            assert_eq!(
                seq,
                self.last_seq + 1,
                "fill sequence numbers must be consecutive"
            );
            self.last_seq = seq;
            let m = *self
                .live
                .get(&maker_id)
                .unwrap_or_else(|| panic!("maker {maker_id} not resting"));
            assert_eq!(m.side, side.opposite());
            assert_eq!(m.price, price, "fill not at the maker's price");
            assert!(
                Self::crosses(side, limit, price),
                "fill through the taker's limit"
            );
            let first = self
                .live
                .values()
                .filter(|o| o.side == m.side)
                .map(|o| Self::priority(m.side, o))
                .min()
                .unwrap();
            assert_eq!(
                Self::priority(m.side, &m),
                first,
                "price-time priority violated by maker {maker_id}"
            );
            let mm = self.live.get_mut(&maker_id).unwrap();
            mm.open -= qty;
            mm.filled += qty;
            let (mopen, mfilled) = (mm.open, mm.filled);
            open -= qty;
            filled += qty;
            self.qty_out += 2 * qty as i128;
            k += 1;
            if mopen == 0 {
                assert_eq!(
                    ev.get(k),
                    Some(&Event::Done {
                        id: maker_id,
                        filled: mfilled
                    }),
                    "Done must follow"
                );
                self.live.remove(&maker_id);
                k += 1;
            }
        }
        (open, filled, k)
    }

    /// Checks the events of one command (already applied to `book`) and updates the ledger.
    pub fn apply<B: MatchingBook>(&mut self, cmd: &Command, ev: &[Event], book: &B) {
        let touched = match *cmd {
            Command::Submit { order, .. } => {
                self.submit(order, ev);
                order.id
            }
            Command::Cancel { id, .. } => {
                assert_eq!(ev.len(), 1);
                match ev[0] {
                    Event::Cancelled { id: cid, remaining } => {
                        assert_eq!(cid, id);
                        let o = self
                            .live
                            .remove(&id)
                            .expect("cancelled an order that was not resting");
                        assert_eq!(o.open, remaining);
                        self.qty_out += remaining as i128;
                    }
                    Event::Rejected { id: rid, reason } => {
                        assert_eq!((rid, reason), (id, RejectReason::UnknownOrderId));
                        assert!(!self.live.contains_key(&id));
                    }
                    e => panic!("unexpected {e:?}"),
                }
                id
            }
            Command::Modify { id, price, qty, .. } => {
                self.modify(id, price, qty, ev);
                id
            }
        };
        self.check_book(book, touched);
    }

    fn submit(&mut self, o: NewOrder, ev: &[Event]) {
        self.qty_in += o.qty as i128;
        let limit = (o.order_type != OrderType::Market).then_some(o.price);
        match ev.first() {
            Some(&Event::Rejected { id, reason }) => {
                assert_eq!(id, o.id);
                assert_eq!(ev.len(), 1, "a reject comes alone");
                self.qty_out += o.qty as i128;
                let expected = if o.qty == 0 {
                    RejectReason::ZeroQuantity
                } else if limit.is_some() && !self.in_band(o.price) {
                    RejectReason::PriceOutOfBand
                } else if self.live.contains_key(&o.id) {
                    RejectReason::DuplicateOrderId
                } else if o.order_type == OrderType::Limit
                    && self.live.len() >= self.config.max_orders
                {
                    RejectReason::BookFull
                } else {
                    assert_eq!(o.order_type, OrderType::Fok, "unexpected reject {reason:?}");
                    assert!(
                        self.available(o.side, limit) < o.qty as u128,
                        "fillable FOK rejected"
                    );
                    RejectReason::FokNotFillable
                };
                assert_eq!(reason, expected);
            }
            Some(&Event::Accepted { id }) => {
                assert_eq!(id, o.id);
                assert!(o.qty > 0 && !self.live.contains_key(&id));
                let (open, filled, k) = self.fills(id, o.side, limit, o.qty, 0, ev, 1);
                if open == 0 {
                    assert_eq!(&ev[k..], &[Event::Done { id, filled }]);
                    return;
                }
                assert_eq!(
                    self.available(o.side, limit),
                    0,
                    "remainder left while liquidity crosses"
                );
                match o.order_type {
                    OrderType::Limit => {
                        assert_eq!(k, ev.len());
                        self.rest(id, o.side, o.price, open, filled);
                    }
                    OrderType::Market | OrderType::Ioc => {
                        assert_eq!(
                            &ev[k..],
                            &[Event::Cancelled {
                                id,
                                remaining: open
                            }]
                        );
                        self.qty_out += open as i128;
                    }
                    OrderType::Fok => panic!("FOK partially filled"),
                }
            }
            e => panic!("submit must start with Accepted/Rejected, got {e:?}"),
        }
    }

    fn modify(&mut self, id: OrderId, price: Price, qty: Qty, ev: &[Event]) {
        match ev.first() {
            Some(&Event::Rejected { id: rid, reason }) => {
                assert_eq!(rid, id);
                assert_eq!(ev.len(), 1);
                let expected = if qty == 0 {
                    RejectReason::ZeroQuantity
                } else if !self.in_band(price) {
                    RejectReason::PriceOutOfBand
                } else {
                    assert!(
                        !self.live.contains_key(&id),
                        "modify of a live order rejected"
                    );
                    RejectReason::UnknownOrderId
                };
                assert_eq!(reason, expected);
            }
            Some(&Event::Modified {
                id: mid,
                price: mp,
                qty: mq,
                kept_priority,
            }) => {
                assert_eq!((mid, mp, mq), (id, price, qty));
                let old = *self
                    .live
                    .get(&id)
                    .expect("modified an order that was not resting");
                assert_eq!(kept_priority, price == old.price && qty <= old.open);
                // Accounted as: old open quantity leaves, new quantity enters.
                self.qty_out += old.open as i128;
                self.qty_in += qty as i128;
                if kept_priority {
                    assert_eq!(ev.len(), 1);
                    self.live.get_mut(&id).unwrap().open = qty;
                    return;
                }
                self.live.remove(&id);
                let (open, filled, k) =
                    self.fills(id, old.side, Some(price), qty, old.filled, ev, 1);
                if open == 0 {
                    assert_eq!(&ev[k..], &[Event::Done { id, filled }]);
                } else {
                    assert_eq!(k, ev.len());
                    self.rest(id, old.side, price, open, filled);
                }
            }
            e => panic!("modify must start with Modified/Rejected, got {e:?}"),
        }
    }

    fn check_book<B: MatchingBook>(&self, book: &B, touched: OrderId) {
        assert_eq!(book.len(), self.live.len(), "resting order count");
        for (&id, o) in &self.live {
            let v = OrderView {
                id,
                side: o.side,
                price: o.price,
                remaining: o.open,
                filled: o.filled,
            };
            assert_eq!(book.order(id), Some(v), "lookup of {id}");
        }
        if !self.live.contains_key(&touched) {
            // Covers Market/IOC/FOK never resting and fully filled/cancelled orders leaving.
            assert_eq!(
                book.order(touched),
                None,
                "order {touched} should not be resting"
            );
        }
        // Full depth from the ledger.
        let mut bids: BTreeMap<Price, (Qty, u32)> = BTreeMap::new();
        let mut asks: BTreeMap<Price, (Qty, u32)> = BTreeMap::new();
        for o in self.live.values() {
            assert!(o.open > 0);
            let e = match o.side {
                Side::Buy => bids.entry(o.price).or_default(),
                Side::Sell => asks.entry(o.price).or_default(),
            };
            e.0 += o.open;
            e.1 += 1;
        }
        let lv = |(p, (q, n)): (&Price, &(Qty, u32))| Level {
            price: *p,
            qty: *q,
            orders: *n,
        };
        let want_bids: Vec<Level> = bids.iter().rev().map(lv).collect();
        let want_asks: Vec<Level> = asks.iter().map(lv).collect();
        let mut got = Vec::new();
        book.depth(Side::Buy, usize::MAX, &mut got);
        assert_eq!(got, want_bids, "bid depth");
        book.depth(Side::Sell, usize::MAX, &mut got);
        assert_eq!(got, want_asks, "ask depth");
        book.depth(Side::Sell, 2, &mut got);
        assert_eq!(
            got,
            want_asks[..want_asks.len().min(2)],
            "truncated ask depth"
        );
        assert_eq!(book.best_bid(), want_bids.first().map(|l| (l.price, l.qty)));
        assert_eq!(book.best_ask(), want_asks.first().map(|l| (l.price, l.qty)));
        if let (Some((b, _)), Some((a, _))) = (book.best_bid(), book.best_ask()) {
            assert!(b < a, "book crossed: bid {b} >= ask {a}");
        }
        let resting: i128 = self.live.values().map(|o| o.open as i128).sum();
        assert_eq!(self.qty_in, self.qty_out + resting, "quantity conservation");
    }
}

/// Runs commands through the engine and the reference model side by side. See module docs.
pub struct Harness {
    pub engine: Engine,
    pub refs: Vec<ReferenceBook>,
    checkers: Vec<Checker>,
    events: Vec<Event>,
    ref_events: Vec<Event>,
    /// Total events seen (for test statistics).
    pub event_count: u64,
}

impl Harness {
    pub fn new(configs: &[BookConfig]) -> Self {
        let mut engine = Engine::new();
        for c in configs {
            engine.add_symbol(*c);
        }
        Harness {
            engine,
            refs: configs.iter().map(|c| ReferenceBook::new(*c)).collect(),
            checkers: configs.iter().map(|c| Checker::new(*c)).collect(),
            events: Vec::new(),
            ref_events: Vec::new(),
            event_count: 0,
        }
    }

    /// Ids the ledger believes rest in `symbol`'s book, sorted (deterministic).
    pub fn live_ids(&self, symbol: SymbolId) -> Vec<OrderId> {
        let mut v: Vec<OrderId> = self
            .checkers
            .get(symbol as usize)
            .map_or(Vec::new(), |c| c.live_ids().collect());
        v.sort_unstable();
        v
    }

    /// Events of the last step.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    pub fn step(&mut self, cmd: Command) {
        self.events.clear();
        self.ref_events.clear();
        self.engine.process(cmd, &mut self.events);
        self.event_count += self.events.len() as u64;
        let (symbol, id) = match cmd {
            Command::Submit { symbol, order } => (symbol, order.id),
            Command::Cancel { symbol, id } => (symbol, id),
            Command::Modify { symbol, id, .. } => (symbol, id),
        };
        let s = symbol as usize;
        let Some(r) = self.refs.get_mut(s) else {
            assert_eq!(
                self.events,
                [Event::Rejected {
                    id,
                    reason: RejectReason::UnknownSymbol
                }]
            );
            return;
        };
        match cmd {
            Command::Submit { order, .. } => r.submit(order, &mut self.ref_events),
            Command::Cancel { id, .. } => r.cancel(id, &mut self.ref_events),
            Command::Modify { id, price, qty, .. } => {
                r.modify(id, price, qty, &mut self.ref_events)
            }
        }
        assert_eq!(
            self.events, self.ref_events,
            "event streams differ for {cmd:?}"
        );
        let book = self.engine.book(symbol).unwrap();
        let r = &self.refs[s];
        // Check the reference against the ledger, then the engine against the reference.
        self.checkers[s].apply(&cmd, &self.ref_events, r);
        self.checkers[s].check_book(book, id);
        assert_eq!(book.len(), r.len());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for side in [Side::Buy, Side::Sell] {
            book.depth(side, usize::MAX, &mut a);
            r.depth(side, usize::MAX, &mut b);
            assert_eq!(a, b, "{side:?} depth differs after {cmd:?}");
        }
        for lid in self.checkers[s].live_ids().chain([id]) {
            assert_eq!(
                book.order(lid),
                r.order(lid),
                "lookup of {lid} differs after {cmd:?}"
            );
        }
    }
}

/// Book configs used by [`run_commands`]: a dense 16-tick book with a small arena (lots of
/// crossing and BookFull) and a wide 10,001-tick book (bitmap searches across many words).
pub const FUZZ_CONFIGS: [BookConfig; 2] = [
    BookConfig {
        min_price: 100,
        max_price: 115,
        max_orders: 24,
    },
    BookConfig {
        min_price: -5000,
        max_price: 5000,
        max_orders: 64,
    },
];

/// Decodes bytes into commands, 6 bytes per command; every byte string is valid.
pub fn decode_commands(data: &[u8]) -> Vec<Command> {
    data.chunks_exact(6)
        .map(|b| {
            let symbol: SymbolId = if b[0] >> 3 == 31 {
                7
            } else {
                ((b[0] >> 3) & 1) as SymbolId
            };
            let cfg = FUZZ_CONFIGS[(symbol & 1) as usize];
            let band = (cfg.max_price - cfg.min_price + 1) as u64;
            let raw = if symbol & 1 == 0 {
                b[3] as u64
            } else {
                u16::from_le_bytes([b[3], b[5]]) as u64
            };
            // One tick either side of the band is reachable, to exercise PriceOutOfBand.
            let price = cfg.min_price - 1 + (raw % (band + 2)) as Price;
            let qty = if b[4] >= 0xF0 {
                (b[4] as Qty) * 7
            } else {
                (b[4] % 12) as Qty
            };
            let id = (b[2] % 48) as OrderId;
            let side = if b[1] & 1 == 0 { Side::Buy } else { Side::Sell };
            let order_type = match (b[1] >> 1) & 7 {
                0..=3 => OrderType::Limit,
                4 => OrderType::Market,
                5 | 6 => OrderType::Ioc,
                _ => OrderType::Fok,
            };
            match b[0] & 7 {
                0..=4 => Command::Submit {
                    symbol,
                    order: NewOrder {
                        id,
                        side,
                        order_type,
                        price,
                        qty,
                    },
                },
                5 => Command::Cancel { symbol, id },
                _ => Command::Modify {
                    symbol,
                    id,
                    price,
                    qty,
                },
            }
        })
        .collect()
}

/// Fuzz entry point: decodes `data` and runs it through [`Harness`] (panics on any divergence).
pub fn run_commands(data: &[u8]) {
    let mut h = Harness::new(&FUZZ_CONFIGS);
    for cmd in decode_commands(data) {
        h.step(cmd);
    }
}
