//! The fast order book.
//!
//! Layout (all allocated once in [`OrderBook::new`], nothing allocated afterwards):
//! * per side, a `Vec<LevelQueue>` indexed by `price - min_price`: every tick of the band has a
//!   slot holding the head/tail of its FIFO list, its total quantity and its order count, so
//!   finding a level is an array index, not a tree walk;
//! * per side, a two-level bitmap of non-empty levels ([`LevelBits`]) and the best level index,
//!   so the next best level after a depletion is found in a few bit operations;
//! * an [`Arena`] of order slots linked into per-level doubly linked lists (O(1) cancel);
//! * an [`IdMap`] from order id to slot (O(1) lookup, fixed size).

use crate::arena::{Arena, OrderSlot, NIL};
use crate::bitset::{LevelBits, NONE};
use crate::idmap::{IdMap, Probe};
use crate::types::*;

/// One price level: a FIFO of arena slots plus its aggregate.
#[derive(Clone, Copy, Debug)]
struct LevelQueue {
    head: u32,
    tail: u32,
    qty: Qty,
    count: u32,
}

const EMPTY_LEVEL: LevelQueue = LevelQueue {
    head: NIL,
    tail: NIL,
    qty: 0,
    count: 0,
};

/// One side of the book.
#[derive(Debug)]
struct SideBook {
    levels: Vec<LevelQueue>,
    bits: LevelBits,
    /// Index of the best non-empty level (highest for bids, lowest for asks) or `NONE`.
    best: u32,
    is_bid: bool,
}

impl SideBook {
    fn new(n: usize, is_bid: bool) -> Self {
        SideBook {
            levels: vec![EMPTY_LEVEL; n],
            bits: LevelBits::new(n),
            best: NONE,
            is_bid,
        }
    }

    /// Does a level at index `level` of this side trade with a taker limited at `limit`?
    #[inline]
    fn crosses(&self, level: u32, limit: u32) -> bool {
        if self.is_bid {
            level >= limit
        } else {
            level <= limit
        }
    }

    /// Next non-empty level worse than `level` (which must not be the last to look at).
    #[inline]
    fn next_worse(&self, level: u32) -> u32 {
        if self.is_bid {
            if level == 0 {
                NONE
            } else {
                self.bits.next_at_or_below(level - 1)
            }
        } else {
            self.bits.next_at_or_above(level + 1)
        }
    }

    /// Called when `level` just became empty.
    #[inline]
    fn level_emptied(&mut self, level: u32) {
        self.bits.clear(level);
        if self.best == level {
            self.best = self.next_worse(level);
        }
    }

    /// Appends slot `i` (already holding `level` and `qty` as its `level` and `remaining`) at
    /// the back of that level.
    #[inline]
    fn push_back(&mut self, arena: &mut Arena, i: u32, level: u32, qty: Qty) {
        let lvl = &mut self.levels[level as usize];
        let tail = lvl.tail;
        {
            let s = arena.get_mut(i);
            s.prev = tail;
            s.next = NIL;
        }
        if tail == NIL {
            lvl.head = i;
            self.bits.set(level);
            let better = self.best == NONE
                || if self.is_bid {
                    level > self.best
                } else {
                    level < self.best
                };
            if better {
                self.best = level;
            }
        } else {
            arena.get_mut(tail).next = i;
        }
        lvl.tail = i;
        lvl.qty += qty;
        lvl.count += 1;
    }

    /// Removes slot `i` from its level list (the slot itself stays allocated).
    #[inline]
    fn unlink(&mut self, arena: &mut Arena, i: u32) {
        let s = *arena.get(i);
        let lvl = &mut self.levels[s.level as usize];
        // Branch-free: whether `i` is the head and/or the tail of its level is a coin toss for
        // a cancel, so instead of branching, a missing neighbour's link write goes to slot `i`
        // itself (which is being removed; the caller frees or relinks it) and the level's
        // head/tail are conditionally replaced (cmov).
        let prev_w = if s.prev != NIL { s.prev } else { i };
        let next_w = if s.next != NIL { s.next } else { i };
        arena.get_mut(prev_w).next = s.next;
        arena.get_mut(next_w).prev = s.prev;
        lvl.head = if lvl.head == i { s.next } else { lvl.head };
        lvl.tail = if lvl.tail == i { s.prev } else { lvl.tail };
        lvl.qty -= s.remaining;
        lvl.count -= 1;
        if lvl.count == 0 {
            self.level_emptied(s.level);
        }
    }
}

/// Price-time priority limit order book over a fixed tick band. See the module docs.
#[derive(Debug)]
pub struct OrderBook {
    config: BookConfig,
    /// Number of price levels in the band (`max_price - min_price + 1`).
    band: u32,
    arena: Arena,
    ids: IdMap,
    bids: SideBook,
    asks: SideBook,
    seq: SeqNo,
    len: usize,
}

/// Largest supported band, in ticks: 2^26 levels (about 1.5 GiB of level arrays per book).
pub const MAX_BAND: u64 = 1 << 26;

impl OrderBook {
    /// Allocates everything the book will ever use.
    ///
    /// # Panics
    /// If `min_price > max_price`, the band is wider than [`MAX_BAND`] ticks, or `max_orders`
    /// does not fit in `u32`.
    pub fn new(config: BookConfig) -> Self {
        assert!(
            config.min_price <= config.max_price,
            "min_price > max_price"
        );
        let band = (config.max_price as i128 - config.min_price as i128 + 1) as u64;
        assert!(band <= MAX_BAND, "price band wider than MAX_BAND ticks");
        let n = band as usize;
        OrderBook {
            config,
            band: band as u32,
            arena: Arena::new(config.max_orders),
            ids: IdMap::with_capacity(config.max_orders),
            bids: SideBook::new(n, true),
            asks: SideBook::new(n, false),
            seq: 0,
            len: 0,
        }
    }

    pub fn config(&self) -> BookConfig {
        self.config
    }

    /// Sequence number of the last fill (0 before the first).
    pub fn last_seq(&self) -> SeqNo {
        self.seq
    }

    #[inline]
    fn index(&self, price: Price) -> Option<u32> {
        if price < self.config.min_price || price > self.config.max_price {
            None
        } else {
            Some((price as u64).wrapping_sub(self.config.min_price as u64) as u32)
        }
    }

    #[inline]
    fn price_of(&self, level: u32) -> Price {
        self.config.min_price + level as Price
    }

    #[inline]
    fn side_mut(&mut self, side: Side) -> &mut SideBook {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Is there at least `need` quantity on the side opposite `taker_side` at levels crossing
    /// `limit`? Walks levels best-first, stops as soon as the answer is known.
    fn can_fill(&self, taker_side: Side, limit: u32, need: Qty) -> bool {
        let opp = match taker_side {
            Side::Buy => &self.asks,
            Side::Sell => &self.bids,
        };
        let mut level = opp.best;
        let mut acc: Qty = 0;
        while level != NONE && opp.crosses(level, limit) {
            acc = acc.saturating_add(opp.levels[level as usize].qty);
            if acc >= need {
                return true;
            }
            level = opp.next_worse(level);
        }
        false
    }

    /// Does a taker on `taker_side` limited at level `limit` cross the opposite best level?
    #[inline]
    fn crosses_opposite(&self, taker_side: Side, limit: u32) -> bool {
        let opp = match taker_side {
            Side::Buy => &self.asks,
            Side::Sell => &self.bids,
        };
        opp.best != NONE && opp.crosses(opp.best, limit)
    }

    /// Matches a taker against the opposite side at levels crossing `limit`, emitting
    /// Fill (+ Done for each exhausted maker). Returns the unfilled quantity.
    #[inline]
    fn match_taker(
        &mut self,
        taker_id: OrderId,
        taker_side: Side,
        limit: u32,
        remaining: Qty,
        filled: &mut Qty,
        events: &mut Vec<Event>,
    ) -> Qty {
        let t = Taker {
            id: taker_id,
            side: taker_side,
            limit,
            min_price: self.config.min_price,
        };
        let mut st = SweepState {
            remaining,
            filled: *filled,
            seq: self.seq,
            len: self.len,
        };
        match taker_side {
            Side::Buy => sweep::<false>(
                &mut self.asks,
                &mut self.arena,
                &mut self.ids,
                &t,
                &mut st,
                events,
            ),
            Side::Sell => sweep::<true>(
                &mut self.bids,
                &mut self.arena,
                &mut self.ids,
                &t,
                &mut st,
                events,
            ),
        }
        self.seq = st.seq;
        self.len = st.len;
        *filled = st.filled;
        st.remaining
    }

    /// Submit, general path (see [`MatchingBook::submit`] for the fast one).
    #[inline(never)]
    fn submit_general(&mut self, order: NewOrder, events: &mut Vec<Event>) {
        let id = order.id;
        if order.qty == 0 {
            return Self::reject(id, RejectReason::ZeroQuantity, events);
        }
        let limit = if order.order_type == OrderType::Market {
            match order.side {
                Side::Buy => self.band - 1,
                Side::Sell => 0,
            }
        } else {
            match self.index(order.price) {
                Some(l) => l,
                None => return Self::reject(id, RejectReason::PriceOutOfBand, events),
            }
        };
        // One probe serves the duplicate check and, for an order that rests without
        // matching, the insert.
        let probe = self.ids.probe(id, self.arena.slots());
        if let Probe::Found { .. } = probe {
            return Self::reject(id, RejectReason::DuplicateOrderId, events);
        }
        match order.order_type {
            OrderType::Limit if self.len >= self.config.max_orders => {
                return Self::reject(id, RejectReason::BookFull, events);
            }
            OrderType::Fok if !self.can_fill(order.side, limit, order.qty) => {
                return Self::reject(id, RejectReason::FokNotFillable, events);
            }
            _ => {}
        }
        events.push(Event::Accepted { id });
        let mut filled = 0;
        // A passive order skips the matcher altogether.
        let crossed = self.crosses_opposite(order.side, limit);
        let remaining = if crossed {
            self.match_taker(id, order.side, limit, order.qty, &mut filled, events)
        } else {
            order.qty
        };
        if remaining == 0 {
            events.push(Event::Done { id, filled });
            return;
        }
        match order.order_type {
            OrderType::Limit => {
                let i = self.rest(id, order.side, limit, remaining, filled);
                match probe {
                    // Untouched table since the probe: insert right where it ended.
                    Probe::Vacant { bucket, dist, tag } if !crossed => {
                        self.ids.insert_vacant(bucket, dist, tag, i)
                    }
                    // Matching removed makers' entries (backward shifts): probe again.
                    _ => self.ids.insert_new(id, i),
                }
            }
            // FOK was checked fillable, so only Market/IOC get here with a remainder.
            _ => events.push(Event::Cancelled { id, remaining }),
        }
    }

    /// Puts a new order at the back of level `limit` of `side` and returns its arena slot (the
    /// caller adds it to the id map). The caller has checked `len < max_orders`; matching only
    /// frees slots, so the arena has a free one.
    #[inline(always)]
    fn rest(&mut self, id: OrderId, side: Side, limit: u32, remaining: Qty, filled: Qty) -> u32 {
        let slot = OrderSlot {
            id,
            remaining,
            filled,
            level: limit,
            prev: NIL,
            next: NIL,
            side,
        };
        let i = self.arena.alloc(slot).expect("arena has a free slot");
        self.len += 1;
        let (sb, arena) = match side {
            Side::Buy => (&mut self.bids, &mut self.arena),
            Side::Sell => (&mut self.asks, &mut self.arena),
        };
        sb.push_back(arena, i, limit, remaining);
        i
    }

    #[inline]
    fn reject(id: OrderId, reason: RejectReason, events: &mut Vec<Event>) {
        events.push(Event::Rejected { id, reason });
    }

    /// Aggregate of the level at `price` on `side`: (open quantity, order count); (0, 0) for an
    /// empty level or a price outside the band. What an L2 feed publishes after a change.
    pub fn level(&self, side: Side, price: Price) -> (Qty, u32) {
        let Some(l) = self.index(price) else {
            return (0, 0);
        };
        let q = match side {
            Side::Buy => &self.bids.levels[l as usize],
            Side::Sell => &self.asks.levels[l as usize],
        };
        (q.qty, q.count)
    }

    /// Every resting order in priority order: bids best level first, then asks best level
    /// first, each level in time priority. Clears `out` first. With [`OrderBook::restore`] it
    /// is a snapshot: restoring this list into an empty book rebuilds the same book.
    pub fn resting_orders(&self, out: &mut Vec<OrderView>) {
        out.clear();
        for sb in [&self.bids, &self.asks] {
            let mut l = sb.best;
            while l != NONE {
                let mut i = sb.levels[l as usize].head;
                while i != NIL {
                    let s = self.arena.get(i);
                    out.push(OrderView {
                        id: s.id,
                        side: s.side,
                        price: self.price_of(l),
                        remaining: s.remaining,
                        filled: s.filled,
                    });
                    i = s.next;
                }
                l = sb.next_worse(l);
            }
        }
    }

    /// Rebuilds an empty book from a [`OrderBook::resting_orders`] list and the fill sequence
    /// number it had. Fails (book unchanged from the first bad order on) if the book is not
    /// empty, an order is outside the band, has no open quantity, repeats an id, would cross
    /// the other side, or the orders exceed `max_orders`.
    pub fn restore(&mut self, orders: &[OrderView], last_seq: SeqNo) -> Result<(), String> {
        if self.len != 0 {
            return Err("restore needs an empty book".into());
        }
        for o in orders {
            let level = self
                .index(o.price)
                .ok_or_else(|| format!("order {} price {} outside the band", o.id, o.price))?;
            if o.remaining == 0 {
                return Err(format!("order {} has no open quantity", o.id));
            }
            if self.len >= self.config.max_orders {
                return Err("more orders than max_orders".into());
            }
            if self.ids.get(o.id, self.arena.slots()).is_some() {
                return Err(format!("order id {} repeated", o.id));
            }
            if self.crosses_opposite(o.side, level) {
                return Err(format!("order {} crosses the other side", o.id));
            }
            let i = self.rest(o.id, o.side, level, o.remaining, o.filled);
            self.ids.insert_new(o.id, i);
        }
        self.seq = last_seq;
        Ok(())
    }
}

/// The taker of a sweep (constant during it).
struct Taker {
    id: OrderId,
    side: Side,
    limit: u32,
    min_price: Price,
}

/// What a sweep updates, kept in locals/registers while it runs.
struct SweepState {
    remaining: Qty,
    filled: Qty,
    seq: SeqNo,
    len: usize,
}

/// Matches `t` against `opp` (the bid side when `BID`) at levels crossing `t.limit`.
///
/// A level the taker consumes completely (the common case of a sweep) is handled in one
/// tight pass: its makers are only read (no per-maker unlink, no per-maker level update),
/// its whole FIFO chain goes back to the arena's free list in O(1), and the level, the
/// bitmap and `best` are updated once. Only the last level touched, when the taker runs
/// out inside it, is consumed maker by maker.
///
/// Monomorphised per side and written against the parts of the book as separate `&mut`
/// arguments: the compiler then knows that an event or arena write cannot change `best`,
/// the level array or the id table's header, so they stay in registers for the whole sweep
/// instead of being reloaded after every store. Inlined into its two callers (submit's general
/// path and modify): one call and one prologue fewer per crossing order.
#[inline(always)]
fn sweep<const BID: bool>(
    opp: &mut SideBook,
    arena: &mut Arena,
    ids: &mut IdMap,
    t: &Taker,
    st: &mut SweepState,
    events: &mut Vec<Event>,
) {
    let crosses = |level: u32| {
        if BID {
            level >= t.limit
        } else {
            level <= t.limit
        }
    };
    let (taker_id, taker_side) = (t.id, t.side);
    let mut remaining = st.remaining;
    let mut filled = st.filled;
    let mut seq = st.seq;
    let mut len = st.len;
    let mut best = opp.best;
    let levels = &mut opp.levels[..];
    while best != NONE && crosses(best) {
        let price = t.min_price + best as Price;
        let lvl = &mut levels[best as usize];
        if remaining >= lvl.qty {
            // The whole level goes.
            let mut mi = lvl.head;
            while mi != NIL {
                let m = *arena.get(mi);
                seq += 1;
                // One capacity check and one length update for the pair.
                events.extend_from_slice(&[
                    Event::Fill {
                        seq,
                        maker_id: m.id,
                        taker_id,
                        price,
                        qty: m.remaining,
                        taker_side,
                    },
                    Event::Done {
                        id: m.id,
                        filled: m.filled + m.remaining,
                    },
                ]);
                ids.remove_present(m.id, mi);
                mi = m.next;
            }
            arena.free_chain(lvl.head, lvl.tail);
            len -= lvl.count as usize;
            remaining -= lvl.qty;
            filled += lvl.qty;
            *lvl = EMPTY_LEVEL;
            best = opp.bits.clear_best_and_next::<BID>(best);
            if remaining == 0 {
                break;
            }
        } else {
            // The taker ends inside this level (remaining < level qty, so some maker is
            // left): fill makers front to back, the last one possibly partially.
            lvl.qty -= remaining;
            filled += remaining;
            let mut mi = lvl.head;
            loop {
                let m = arena.get_mut(mi);
                seq += 1;
                if remaining < m.remaining {
                    m.remaining -= remaining;
                    m.filled += remaining;
                    events.push(Event::Fill {
                        seq,
                        maker_id: m.id,
                        taker_id,
                        price,
                        qty: remaining,
                        taker_side,
                    });
                    break;
                }
                let (mid, q, next) = (m.id, m.remaining, m.next);
                remaining -= q;
                events.push(Event::Fill {
                    seq,
                    maker_id: mid,
                    taker_id,
                    price,
                    qty: q,
                    taker_side,
                });
                events.push(Event::Done {
                    id: mid,
                    filled: m.filled + q,
                });
                ids.remove_present(mid, mi);
                arena.free(mi);
                lvl.count -= 1;
                len -= 1;
                mi = next;
                if remaining == 0 {
                    break;
                }
            }
            // `mi` is the first maker left (it exists: the level had more than we took).
            lvl.head = mi;
            arena.get_mut(mi).prev = NIL;
            remaining = 0;
            break;
        }
    }
    opp.best = best;
    st.remaining = remaining;
    st.filled = filled;
    st.seq = seq;
    st.len = len;
}

impl MatchingBook for OrderBook {
    /// Submit, fast path: a Limit order that rests without matching, by far the commonest
    /// submit of a busy book, is handled here (small enough to be inlined into the caller's
    /// loop, with no call and no register spills); everything else (rejections, crossing
    /// orders, Market/IOC/FOK) goes to the general path. The fast path bails out before
    /// changing anything, so the general path sees the same book and emits the same events.
    #[inline]
    fn submit(&mut self, order: NewOrder, events: &mut Vec<Event>) {
        if order.order_type == OrderType::Limit
            && order.qty != 0
            && self.len < self.config.max_orders
        {
            if let Some(limit) = self.index(order.price) {
                if !self.crosses_opposite(order.side, limit) {
                    if let Probe::Vacant { bucket, dist, tag } =
                        self.ids.probe(order.id, self.arena.slots())
                    {
                        events.push(Event::Accepted { id: order.id });
                        let i = self.rest(order.id, order.side, limit, order.qty, 0);
                        self.ids.insert_vacant(bucket, dist, tag, i);
                        return;
                    }
                }
            }
        }
        self.submit_general(order, events)
    }

    fn cancel(&mut self, id: OrderId, events: &mut Vec<Event>) {
        let Probe::Found { bucket, slot: i } = self.ids.probe(id, self.arena.slots()) else {
            return Self::reject(id, RejectReason::UnknownOrderId, events);
        };
        let (side, remaining) = {
            let s = self.arena.get(i);
            (s.side, s.remaining)
        };
        let (sb, arena) = match side {
            Side::Buy => (&mut self.bids, &mut self.arena),
            Side::Sell => (&mut self.asks, &mut self.arena),
        };
        sb.unlink(arena, i);
        arena.free(i);
        self.ids.remove_at(bucket);
        self.len -= 1;
        events.push(Event::Cancelled { id, remaining });
    }

    fn modify(&mut self, id: OrderId, new_price: Price, new_qty: Qty, events: &mut Vec<Event>) {
        if new_qty == 0 {
            return Self::reject(id, RejectReason::ZeroQuantity, events);
        }
        let Some(level) = self.index(new_price) else {
            return Self::reject(id, RejectReason::PriceOutOfBand, events);
        };
        let Some(i) = self.ids.get(id, self.arena.slots()) else {
            return Self::reject(id, RejectReason::UnknownOrderId, events);
        };
        let s = *self.arena.get(i);
        if level == s.level && new_qty <= s.remaining {
            // Reduction (or no-op) in place: keeps its place in the queue.
            let delta = s.remaining - new_qty;
            self.arena.get_mut(i).remaining = new_qty;
            self.side_mut(s.side).levels[level as usize].qty -= delta;
            events.push(Event::Modified {
                id,
                price: new_price,
                qty: new_qty,
                kept_priority: true,
            });
            return;
        }
        events.push(Event::Modified {
            id,
            price: new_price,
            qty: new_qty,
            kept_priority: false,
        });
        {
            let (sb, arena) = match s.side {
                Side::Buy => (&mut self.bids, &mut self.arena),
                Side::Sell => (&mut self.asks, &mut self.arena),
            };
            sb.unlink(arena, i);
        }
        let mut filled = s.filled;
        // A price change is a cancel/replace: the order may now cross and match as a taker.
        // (At an unchanged price it cannot cross, so this is a no-op for a quantity increase.)
        let remaining = if level != s.level && self.crosses_opposite(s.side, level) {
            self.match_taker(id, s.side, level, new_qty, &mut filled, events)
        } else {
            new_qty
        };
        if remaining == 0 {
            self.ids.remove_present(id, i);
            self.arena.free(i);
            self.len -= 1;
            events.push(Event::Done { id, filled });
            return;
        }
        {
            let slot = self.arena.get_mut(i);
            slot.remaining = remaining;
            slot.filled = filled;
            slot.level = level;
        }
        let (sb, arena) = match s.side {
            Side::Buy => (&mut self.bids, &mut self.arena),
            Side::Sell => (&mut self.asks, &mut self.arena),
        };
        sb.push_back(arena, i, level, remaining);
    }

    #[inline]
    fn best_bid(&self) -> Option<(Price, Qty)> {
        let b = self.bids.best;
        (b != NONE).then(|| (self.price_of(b), self.bids.levels[b as usize].qty))
    }

    #[inline]
    fn best_ask(&self) -> Option<(Price, Qty)> {
        let a = self.asks.best;
        (a != NONE).then(|| (self.price_of(a), self.asks.levels[a as usize].qty))
    }

    fn depth(&self, side: Side, levels: usize, out: &mut Vec<Level>) {
        out.clear();
        let sb = match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        };
        let mut l = sb.best;
        while l != NONE && out.len() < levels {
            let q = &sb.levels[l as usize];
            out.push(Level {
                price: self.price_of(l),
                qty: q.qty,
                orders: q.count,
            });
            l = sb.next_worse(l);
        }
    }

    #[inline]
    fn order(&self, id: OrderId) -> Option<OrderView> {
        let s = self.arena.get(self.ids.get(id, self.arena.slots())?);
        Some(OrderView {
            id,
            side: s.side,
            price: self.price_of(s.level),
            remaining: s.remaining,
            filled: s.filled,
        })
    }

    #[inline]
    fn len(&self) -> usize {
        self.len
    }
}
