//! Shared pieces of the order-book benchmarks (`benches/engine/`).
//!
//! - [`Rng`]: a tiny seeded SplitMix64 generator (no `rand` dependency, identical streams
//!   on every machine);
//! - [`Bench`]: one thin adapter per book so every benchmark case issues the same logical
//!   operation to this engine ([`Engine`]), the reference model ([`Reference`]) and the
//!   `orderbook-rs` crate ([`Peer`]);
//! - [`Op`] and [`gen_stream`]: the deterministic mixed order stream (about 60% passive
//!   limits near the touch, 25% cancels of live orders, 10% market/IOC, 5% FOK).

use engine_rs::reference::ReferenceBook;
use engine_rs::{BookConfig, Event, MatchingBook, NewOrder, OrderBook, OrderType, Side};

/// Centre of the price grid every benchmark trades around (ticks).
pub const MID: i64 = 50_000;
/// Price band of the books: `[MIN_PRICE, MAX_PRICE]`.
pub const MIN_PRICE: i64 = 1;
pub const MAX_PRICE: i64 = 2 * MID;

/// The configuration every engine book is built with.
pub fn config(max_orders: usize) -> BookConfig {
    BookConfig {
        min_price: MIN_PRICE,
        max_price: MAX_PRICE,
        max_orders,
    }
}

// ---------------------------------------------------------------------------------------
// random numbers

/// SplitMix64: small, fast and good enough for workload generation.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0), multiply-shift (no modulo bias worth caring about here).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n) >> 32
    }
    #[inline]
    pub fn side(&mut self) -> Side {
        if self.next_u64() & 1 == 0 {
            Side::Buy
        } else {
            Side::Sell
        }
    }
    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

// ---------------------------------------------------------------------------------------
// the adapters

/// The logical operations of the benchmarks, one implementation per book.
pub trait Bench {
    /// Short label used in benchmark ids and tables.
    const NAME: &'static str;
    /// A fresh empty book able to hold `max_orders` resting orders.
    fn create(max_orders: usize) -> Self;
    /// A good-till-cancelled limit order (rests what does not fill).
    fn limit(&mut self, id: u64, side: Side, price: i64, qty: u64);
    /// A market order: fills what it can, the rest is cancelled.
    fn market(&mut self, id: u64, side: Side, qty: u64);
    /// Immediate-or-cancel limit order.
    fn ioc(&mut self, id: u64, side: Side, price: i64, qty: u64);
    /// Fill-or-kill limit order.
    fn fok(&mut self, id: u64, side: Side, price: i64, qty: u64);
    fn cancel(&mut self, id: u64);
    fn best_bid(&self) -> Option<i64>;
    fn best_ask(&self) -> Option<i64>;
    /// Resting orders (checks only, may be slow).
    fn resting(&self) -> usize;

    #[inline]
    fn apply(&mut self, op: &Op) {
        let side = op.side();
        match op.kind {
            Op::LIMIT => self.limit(op.id, side, op.price, op.qty as u64),
            Op::CANCEL => self.cancel(op.id),
            Op::MARKET => self.market(op.id, side, op.qty as u64),
            Op::IOC => self.ioc(op.id, side, op.price, op.qty as u64),
            _ => self.fok(op.id, side, op.price, op.qty as u64),
        }
    }
}

/// Any [`MatchingBook`] of `engine_rs`, with one reused event buffer (cleared before each
/// operation, as a caller draining the events after every call would do).
pub struct Matching<B> {
    pub book: B,
    pub events: Vec<Event>,
}

impl<B: MatchingBook> Matching<B> {
    #[inline]
    fn submit(&mut self, id: u64, side: Side, order_type: OrderType, price: i64, qty: u64) {
        self.events.clear();
        self.book.submit(
            NewOrder {
                id,
                side,
                order_type,
                price,
                qty,
            },
            &mut self.events,
        );
    }
}

macro_rules! matching_bench {
    ($name:literal, $book:ty, $ctor:expr) => {
        impl Bench for Matching<$book> {
            const NAME: &'static str = $name;
            fn create(max_orders: usize) -> Self {
                Matching {
                    book: $ctor(config(max_orders)),
                    events: Vec::with_capacity(4096),
                }
            }
            #[inline]
            fn limit(&mut self, id: u64, side: Side, price: i64, qty: u64) {
                self.submit(id, side, OrderType::Limit, price, qty)
            }
            #[inline]
            fn market(&mut self, id: u64, side: Side, qty: u64) {
                self.submit(id, side, OrderType::Market, 0, qty)
            }
            #[inline]
            fn ioc(&mut self, id: u64, side: Side, price: i64, qty: u64) {
                self.submit(id, side, OrderType::Ioc, price, qty)
            }
            #[inline]
            fn fok(&mut self, id: u64, side: Side, price: i64, qty: u64) {
                self.submit(id, side, OrderType::Fok, price, qty)
            }
            #[inline]
            fn cancel(&mut self, id: u64) {
                self.events.clear();
                self.book.cancel(id, &mut self.events);
            }
            fn best_bid(&self) -> Option<i64> {
                self.book.best_bid().map(|(p, _)| p)
            }
            fn best_ask(&self) -> Option<i64> {
                self.book.best_ask().map(|(p, _)| p)
            }
            fn resting(&self) -> usize {
                self.book.len()
            }
        }
    };
}

/// This engine.
pub type Engine = Matching<OrderBook>;
/// The reference model of `engine_rs`.
pub type Reference = Matching<ReferenceBook>;
matching_bench!("engine", OrderBook, OrderBook::new);
matching_bench!("reference", ReferenceBook, ReferenceBook::new);

/// The `orderbook-rs` crate (crates.io), no listeners, no risk checks, default clock.
pub struct Peer {
    pub book: orderbook_rs::OrderBook<()>,
}

#[inline]
fn peer_side(side: Side) -> orderbook_rs::Side {
    match side {
        Side::Buy => orderbook_rs::Side::Buy,
        Side::Sell => orderbook_rs::Side::Sell,
    }
}

impl Peer {
    #[inline]
    fn add(&mut self, id: u64, side: Side, price: i64, qty: u64, tif: orderbook_rs::TimeInForce) {
        let r = self.book.add_limit_order(
            orderbook_rs::Id::from_u64(id),
            price as u128,
            qty,
            peer_side(side),
            tif,
            None,
        );
        std::hint::black_box(&r);
    }
}

impl Bench for Peer {
    const NAME: &'static str = "orderbook_rs";
    fn create(_max_orders: usize) -> Self {
        Peer {
            book: orderbook_rs::OrderBook::new("BENCH"),
        }
    }
    #[inline]
    fn limit(&mut self, id: u64, side: Side, price: i64, qty: u64) {
        self.add(id, side, price, qty, orderbook_rs::TimeInForce::Gtc)
    }
    #[inline]
    fn market(&mut self, id: u64, side: Side, qty: u64) {
        let r = self
            .book
            .submit_market_order(orderbook_rs::Id::from_u64(id), qty, peer_side(side));
        std::hint::black_box(&r);
    }
    #[inline]
    fn ioc(&mut self, id: u64, side: Side, price: i64, qty: u64) {
        self.add(id, side, price, qty, orderbook_rs::TimeInForce::Ioc)
    }
    #[inline]
    fn fok(&mut self, id: u64, side: Side, price: i64, qty: u64) {
        self.add(id, side, price, qty, orderbook_rs::TimeInForce::Fok)
    }
    #[inline]
    fn cancel(&mut self, id: u64) {
        let r = self.book.cancel_order(orderbook_rs::Id::from_u64(id));
        std::hint::black_box(&r);
    }
    fn best_bid(&self) -> Option<i64> {
        self.book.best_bid().map(|p| p as i64)
    }
    fn best_ask(&self) -> Option<i64> {
        self.book.best_ask().map(|p| p as i64)
    }
    fn resting(&self) -> usize {
        self.book.get_all_orders().len()
    }
}

// ---------------------------------------------------------------------------------------
// the mixed stream

/// One operation of a stream, 24 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    pub id: u64,
    pub price: i64,
    pub qty: u32,
    pub kind: u8,
    /// 0 buy, 1 sell
    pub side: u8,
}

impl Op {
    pub const LIMIT: u8 = 0;
    pub const CANCEL: u8 = 1;
    pub const MARKET: u8 = 2;
    pub const IOC: u8 = 3;
    pub const FOK: u8 = 4;
    pub const KIND_NAMES: [&'static str; 5] = ["limit", "cancel", "market", "ioc", "fok"];

    #[inline]
    pub fn side(&self) -> Side {
        if self.side == 0 {
            Side::Buy
        } else {
            Side::Sell
        }
    }
    fn new(kind: u8, id: u64, side: Side, price: i64, qty: u64) -> Op {
        Op {
            id,
            price,
            qty: qty as u32,
            kind,
            side: if side == Side::Buy { 0 } else { 1 },
        }
    }
}

/// A generated stream: `setup` builds the initial book (never timed), `ops` is measured.
pub struct Stream {
    pub setup: Vec<Op>,
    pub ops: Vec<Op>,
    /// the most orders resting at any point (for `max_orders`)
    pub max_live: usize,
    /// mean best ask - best bid over `ops` (ticks, when both sides are present)
    pub mean_spread: f64,
}

impl Stream {
    /// Operations per kind in `ops`.
    pub fn mix(&self) -> [usize; 5] {
        let mut m = [0usize; 5];
        for op in &self.ops {
            m[op.kind as usize] += 1;
        }
        m
    }
}

/// Live resting orders of the generator: O(1) insert, remove and uniform pick.
struct LiveSet {
    ids: Vec<u64>,
    pos: Vec<u32>, // by id; u32::MAX = not live
}

impl LiveSet {
    fn insert(&mut self, id: u64) {
        let i = id as usize;
        if i >= self.pos.len() {
            self.pos.resize((i + 1).max(self.pos.len() * 2), u32::MAX);
        }
        if self.pos[i] == u32::MAX {
            self.pos[i] = self.ids.len() as u32;
            self.ids.push(id);
        }
    }
    fn remove(&mut self, id: u64) {
        let i = id as usize;
        if i < self.pos.len() && self.pos[i] != u32::MAX {
            let p = self.pos[i] as usize;
            self.pos[i] = u32::MAX;
            let last = self.ids.pop().expect("non-empty");
            if last != id {
                self.ids[p] = last;
                self.pos[last as usize] = p as u32;
            }
        }
    }
}

/// Parameters of [`gen_stream`].
#[derive(Clone, Copy, Debug)]
pub struct StreamSpec {
    pub seed: u64,
    /// orders resting in the initial book (built by `setup`)
    pub initial_orders: usize,
    /// measured operations
    pub ops: usize,
    /// resting orders the aggressive-order sizes steer towards
    pub target_live: usize,
}

/// Generates a deterministic mixed stream by running it through this engine's book and
/// watching its events (so cancels always target orders that are live at that point):
///
/// - 60% passive limits: side 50/50, price 0..15 ticks behind the own-side touch (skewed
///   towards the touch) or, when the spread is wider than one tick, with a probability
///   growing with the spread (1/8 per extra tick, at most 6/8), inside the spread by up to
///   half of it; qty 1..=100;
/// - 25% cancels of a uniformly chosen live order;
/// - 5% market, 5% IOC (limit 0..2 ticks through the opposite touch);
/// - 5% FOK (limit 0..2 ticks through the opposite touch);
///
/// aggressive sizes are uniform in `1..=2m` with `m` proportional to the live count over
/// `target_live` (keeps the book in steady state), their side is biased back towards
/// [`MID`] (keeps the price from drifting away over millions of operations).
pub fn gen_stream(spec: StreamSpec) -> Stream {
    let mut rng = Rng::new(spec.seed);
    let max_orders = spec.initial_orders.max(spec.target_live) * 8 + 1024;
    let mut sim = Engine::create(max_orders);
    let mut live = LiveSet {
        ids: Vec::new(),
        pos: Vec::new(),
    };
    let mut next_id: u64 = 1;
    let mut max_live = 0usize;

    // initial book: orders on 1..=50 ticks each side of MID, qty 1..=100
    let mut setup = Vec::with_capacity(spec.initial_orders);
    for _ in 0..spec.initial_orders {
        let side = rng.side();
        let d = 1 + rng.below(50).min(rng.below(50)) as i64;
        let price = if side == Side::Buy { MID - d } else { MID + d };
        let op = Op::new(Op::LIMIT, next_id, side, price, 1 + rng.below(100));
        next_id += 1;
        step(&mut sim, &mut live, &op);
        setup.push(op);
    }

    let mut ops = Vec::with_capacity(spec.ops);
    let mut last_bid = MID - 1;
    let mut last_ask = MID + 1;
    let (mut spread_sum, mut spread_n) = (0i64, 0i64);
    while ops.len() < spec.ops {
        let bid = sim.best_bid();
        let ask = sim.best_ask();
        if let (Some(b), Some(a)) = (bid, ask) {
            spread_sum += a - b;
            spread_n += 1;
        }
        if let Some(b) = bid {
            last_bid = b;
        }
        if let Some(a) = ask {
            last_ask = a;
        }
        if last_bid >= last_ask {
            // stale pair after a one-sided sweep
            let m = (last_bid + last_ask) / 2;
            last_bid = m - 1;
            last_ask = m + 1;
        }
        let r = rng.below(100);
        let op = if r < 60 || (r < 85 && live.ids.is_empty()) {
            let side = rng.side();
            let d = rng.below(16).min(rng.below(16)) as i64;
            // inside a spread wider than one tick (the wider, the likelier), else d behind
            let spread = last_ask - last_bid;
            let inside = spread > 1 && (rng.below(8) as i64) < (spread - 1).min(6);
            let step = 1 + rng.below(((spread - 1) / 2).max(1) as u64) as i64;
            let price = match side {
                Side::Buy => {
                    let top = bid.unwrap_or(last_ask - 1);
                    let p = if inside { top + step } else { top - d };
                    p.min(last_ask - 1)
                }
                Side::Sell => {
                    let top = ask.unwrap_or(last_bid + 1);
                    let p = if inside { top - step } else { top + d };
                    p.max(last_bid + 1)
                }
            };
            let price = price.clamp(MIN_PRICE + 1, MAX_PRICE - 1);
            Op::new(Op::LIMIT, next_id, side, price, 1 + rng.below(100))
        } else if r < 85 {
            let id = live.ids[rng.below(live.ids.len() as u64) as usize];
            Op::new(Op::CANCEL, id, Side::Buy, 0, 0)
        } else {
            // aggressive: size steers the live count, side steers the price back to MID
            let ratio = (live.ids.len() as f64 / spec.target_live as f64).clamp(0.25, 4.0);
            let mean = 120.0 * ratio;
            let qty = 1 + rng.below((2.0 * mean) as u64);
            let mid = (last_bid + last_ask) / 2;
            let bias = ((mid - MID) as f64 / 4000.0).clamp(-0.25, 0.25);
            let buy_permille = ((0.5 - bias) * 1000.0) as u64;
            let side = if rng.below(1000) < buy_permille {
                Side::Buy
            } else {
                Side::Sell
            };
            let through = rng.below(3) as i64;
            let price = match side {
                Side::Buy => last_ask + through,
                Side::Sell => last_bid - through,
            };
            let kind = if r < 90 {
                Op::MARKET
            } else if r < 95 {
                Op::IOC
            } else {
                Op::FOK
            };
            Op::new(kind, next_id, side, price, qty)
        };
        if op.kind != Op::CANCEL {
            next_id += 1;
        }
        step(&mut sim, &mut live, &op);
        max_live = max_live.max(live.ids.len());
        ops.push(op);
    }
    Stream {
        setup,
        ops,
        max_live,
        mean_spread: spread_sum as f64 / spread_n.max(1) as f64,
    }
}

/// Applies `op` to the generator's book and updates the live set from its events.
fn step(sim: &mut Engine, live: &mut LiveSet, op: &Op) {
    sim.apply(op);
    for ev in &sim.events {
        match *ev {
            Event::Fill { maker_id, .. } if sim.book.order(maker_id).is_none() => {
                live.remove(maker_id)
            }
            Event::Cancelled { id, .. } => live.remove(id),
            _ => {}
        }
    }
    if op.kind == Op::LIMIT && sim.book.order(op.id).is_some() {
        live.insert(op.id);
    }
}

/// Applies every operation of `ops`.
#[inline]
pub fn run_ops<B: Bench>(book: &mut B, ops: &[Op]) {
    for op in ops {
        book.apply(op);
    }
}

// ---------------------------------------------------------------------------------------
// reporting helpers

/// `1234567` -> `"1,234,567"`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Nanoseconds in a short human unit: `84 ns`, `1.92 µs`, `249 µs`.
pub fn fmt_ns(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{:.1} ns", ns)
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}
