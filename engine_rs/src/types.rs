//! Plain data types shared by every book implementation, the engine and the bindings.
//!
//! Everything is `Copy` and integer-only: prices are integer ticks, quantities integer lots, so
//! matching is exact and deterministic (no floating point anywhere in the engine).

/// Price in integer ticks.
pub type Price = i64;
/// Quantity in integer lots.
pub type Qty = u64;
/// Caller-assigned order id; unique among the live (resting) orders of one book.
pub type OrderId = u64;
/// Index of a book inside an [`crate::Engine`], assigned by `add_symbol` (0, 1, 2, ...).
pub type SymbolId = u32;
/// Fill sequence number: per book, starts at 1, +1 per fill.
pub type SeqNo = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Side {
    Buy = 0,
    Sell = 1,
}

impl Side {
    /// The side an order of this side trades against.
    #[inline]
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OrderType {
    /// Matches what it can at `price` or better, the remainder rests.
    Limit = 0,
    /// Sweeps the opposite side at any price; the remainder is cancelled. `price` is ignored.
    Market = 1,
    /// Immediate-or-cancel: like Limit, but the remainder is cancelled instead of resting.
    Ioc = 2,
    /// Fill-or-kill: fills completely at `price` or better in one go, or is rejected with
    /// [`RejectReason::FokNotFillable`] with no fill and no change to the book.
    Fok = 3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RejectReason {
    ZeroQuantity = 1,
    PriceOutOfBand = 2,
    DuplicateOrderId = 3,
    UnknownOrderId = 4,
    UnknownSymbol = 5,
    /// A Limit order arrived while the book already held `max_orders` resting orders.
    BookFull = 6,
    /// A FOK order could not be filled completely; nothing happened.
    FokNotFillable = 7,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOrder {
    pub id: OrderId,
    pub side: Side,
    pub order_type: OrderType,
    /// Limit price; ignored for `Market`.
    pub price: Price,
    pub qty: Qty,
}

/// Execution report. See the crate docs / README for the exact order in which they are emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Accepted {
        id: OrderId,
    },
    Rejected {
        id: OrderId,
        reason: RejectReason,
    },
    /// A trade at the maker's price.
    Fill {
        seq: SeqNo,
        maker_id: OrderId,
        taker_id: OrderId,
        price: Price,
        qty: Qty,
        taker_side: Side,
    },
    /// User cancel, or the unfilled remainder of a Market/IOC order.
    Cancelled {
        id: OrderId,
        remaining: Qty,
    },
    /// A resting order was modified; `qty` is its new open quantity.
    Modified {
        id: OrderId,
        price: Price,
        qty: Qty,
        kept_priority: bool,
    },
    /// An order is completely filled (as maker or taker); `filled` is its lifetime filled qty.
    Done {
        id: OrderId,
        filled: Qty,
    },
}

/// Per-book configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookConfig {
    /// Lowest valid price (inclusive).
    pub min_price: Price,
    /// Highest valid price (inclusive).
    pub max_price: Price,
    /// Capacity of the order arena: the most orders that can rest at once.
    pub max_orders: usize,
}

/// One aggregated price level of an L2 snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    pub price: Price,
    pub qty: Qty,
    pub orders: u32,
}

/// A resting order as seen by `order(id)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderView {
    pub id: OrderId,
    pub side: Side,
    pub price: Price,
    /// Open quantity.
    pub remaining: Qty,
    /// Quantity filled over the order's life (kept across modifies).
    pub filled: Qty,
}

/// A command for the multi-symbol [`crate::Engine`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Submit {
        symbol: SymbolId,
        order: NewOrder,
    },
    Cancel {
        symbol: SymbolId,
        id: OrderId,
    },
    Modify {
        symbol: SymbolId,
        id: OrderId,
        price: Price,
        qty: Qty,
    },
}

/// The interface shared by the fast [`crate::OrderBook`] and [`crate::reference::ReferenceBook`].
///
/// Event-producing methods *append* to `events` and never clear it; they do not allocate when
/// `events` has enough spare capacity (a submit emits at most `3 + 2 * fills` events).
pub trait MatchingBook {
    fn submit(&mut self, order: NewOrder, events: &mut Vec<Event>);
    fn cancel(&mut self, id: OrderId, events: &mut Vec<Event>);
    /// Cancel/replace: `new_qty` is the new *open* quantity. Same price and `new_qty <=` open
    /// keeps time priority; anything else loses it, and a new price that crosses matches at once.
    fn modify(&mut self, id: OrderId, new_price: Price, new_qty: Qty, events: &mut Vec<Event>);
    fn best_bid(&self) -> Option<(Price, Qty)>;
    fn best_ask(&self) -> Option<(Price, Qty)>;
    /// Top `levels` levels of `side`, best first. Clears `out` first.
    fn depth(&self, side: Side, levels: usize, out: &mut Vec<Level>);
    fn order(&self, id: OrderId) -> Option<OrderView>;
    /// Number of resting orders.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
