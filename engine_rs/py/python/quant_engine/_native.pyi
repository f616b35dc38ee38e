"""Type stubs of ``quant_engine._native``, the PyO3 binding of the ``engine_rs`` core.

Prices are integer ticks (``int64``), quantities and order ids non-negative ints below 2**64.

Errors, decided before anything reaches the book:

* **Argument errors raise** ``ValueError`` (``TypeError`` for a wrong Python type): an unknown
  side or order-type string or code, a negative (or >= 2**64) id or quantity, a limit price
  outside the book's ``[min_price, max_price]`` band (limit, IOC and FOK orders and modifies;
  a market order's price is ignored), an unknown symbol id, ``min_price > max_price`` or
  ``max_orders <= 0``, and malformed batch arrays (wrong dtype, not 1-D, not C-contiguous,
  unequal lengths, bad codes). A batch is validated as a whole before its first row runs:
  one bad row raises and leaves the book untouched.
* **Business rejects return** a ``Rejected`` event (and count in the batch results): a
  duplicate order id, an unknown order id on cancel/modify, a zero quantity, a full book
  (``max_orders``) and a fill-or-kill order the book cannot fill completely.
"""

from typing import Final, Literal, TypeAlias, TypedDict

import numpy as np
import numpy.typing as npt

__version__: Final[str]
SUBMIT: Final[int]
"""``kind`` code of a new order in the batch API (0)."""
CANCEL: Final[int]
"""``kind`` code of a cancel (1); only ``ids`` is read."""
MODIFY: Final[int]
"""``kind`` code of a modify (2); ``ids``, ``prices`` and ``qtys`` are read."""

SideLike: TypeAlias = str | int
"""``"buy"``/``"sell"`` (any case) or the codes 0/1 (``quant_engine.Side``)."""
OrderTypeLike: TypeAlias = str | int
"""``"limit"``/``"market"``/``"ioc"``/``"fok"`` (any case) or the codes 0..3
(``quant_engine.OrderType``)."""
SideName: TypeAlias = Literal["buy", "sell"]
RejectReason: TypeAlias = Literal[
    "zero_quantity",
    "price_out_of_band",
    "duplicate_order_id",
    "unknown_order_id",
    "unknown_symbol",
    "book_full",
    "fok_not_fillable",
]

class Accepted:
    """The order passed the checks and entered matching."""

    __match_args__ = ("id",)
    @property
    def id(self) -> int: ...
    def __init__(self, id: int) -> None: ...

class Rejected:
    """A business reject (see the module docstring); nothing changed in the book."""

    __match_args__ = ("id", "reason")
    @property
    def id(self) -> int: ...
    @property
    def reason(self) -> RejectReason: ...
    def __init__(self, id: int, reason: RejectReason) -> None: ...

class Fill:
    """A trade at the resting maker's price; ``seq`` increases by one per fill per book."""

    __match_args__ = ("seq", "maker_id", "taker_id", "price", "qty", "taker_side")
    @property
    def seq(self) -> int: ...
    @property
    def maker_id(self) -> int: ...
    @property
    def taker_id(self) -> int: ...
    @property
    def price(self) -> int: ...
    @property
    def qty(self) -> int: ...
    @property
    def taker_side(self) -> SideName: ...
    def __init__(
        self, seq: int, maker_id: int, taker_id: int, price: int, qty: int, taker_side: SideLike
    ) -> None: ...

class Cancelled:
    """A user cancel, or the unfilled remainder of a market/IOC order that was dropped;
    ``remaining`` is the quantity that will never fill."""

    __match_args__ = ("id", "remaining")
    @property
    def id(self) -> int: ...
    @property
    def remaining(self) -> int: ...
    def __init__(self, id: int, remaining: int) -> None: ...

class Modified:
    """The order now rests at ``price`` with ``qty`` open; ``kept_priority`` is true when it
    kept its queue position (same price, quantity not increased)."""

    __match_args__ = ("id", "price", "qty", "kept_priority")
    @property
    def id(self) -> int: ...
    @property
    def price(self) -> int: ...
    @property
    def qty(self) -> int: ...
    @property
    def kept_priority(self) -> bool: ...
    def __init__(self, id: int, price: int, qty: int, kept_priority: bool) -> None: ...

class Done:
    """The order is completely filled (as maker or taker); ``filled`` is its lifetime filled
    quantity."""

    __match_args__ = ("id", "filled")
    @property
    def id(self) -> int: ...
    @property
    def filled(self) -> int: ...
    def __init__(self, id: int, filled: int) -> None: ...

Event: TypeAlias = Accepted | Rejected | Fill | Cancelled | Modified | Done

class Snapshot(TypedDict):
    """Aggregated depth, best level first: ``(price, qty, orders)`` per level."""

    bids: list[tuple[int, int, int]]
    asks: list[tuple[int, int, int]]

class OrderInfo(TypedDict):
    """A resting order."""

    id: int
    side: SideName
    price: int
    remaining: int
    filled: int

class BatchResult(TypedDict):
    """What ``process_batch`` returns: the fills as columns (one row per fill, in order) and
    counts of the other events."""

    ops: int
    fills: int
    accepted: int
    rejected: int
    cancelled: int
    modified: int
    done: int
    rejects_by_reason: dict[RejectReason, int]
    seq: npt.NDArray[np.uint64]
    maker_id: npt.NDArray[np.uint64]
    taker_id: npt.NDArray[np.uint64]
    price: npt.NDArray[np.int64]
    qty: npt.NDArray[np.uint64]
    taker_side: npt.NDArray[np.uint8]
    """0 = buy, 1 = sell."""

class OrderBook:
    """One instrument's limit order book (price-time priority), prices in ``[min_price,
    max_price]`` ticks, at most ``max_orders`` resting orders.

    The object keeps one event buffer for all calls (the single-order path allocates no
    buffer of its own). It is not shared between threads: a call on a book that another
    thread is using (e.g. inside ``process_batch``) raises ``RuntimeError`` (already borrowed).

    Raises:
        ValueError: ``min_price > max_price`` or ``max_orders <= 0``.
    """

    def __init__(self, min_price: int, max_price: int, max_orders: int = 100_000) -> None: ...
    @property
    def min_price(self) -> int: ...
    @property
    def max_price(self) -> int: ...
    @property
    def max_orders(self) -> int: ...
    def submit(
        self, id: int, side: SideLike, order_type: OrderTypeLike, price: int, qty: int
    ) -> list[Event]:
        """Submit a new order; returns its events: ``Accepted``, then any ``Fill``s (each
        followed by ``Done`` for a maker it completes), then ``Done`` if the order filled
        completely or ``Cancelled`` for a dropped market/IOC remainder; or just ``Rejected``.
        ``price`` is ignored for market orders.

        Raises:
            ValueError: bad side/order type, negative id/qty, limit price outside the band.
            TypeError: side/order type/id/qty of the wrong Python type.
        """

    def cancel(self, id: int) -> list[Event]:
        """Cancel a resting order: ``[Cancelled]``, or ``[Rejected('unknown_order_id')]``."""

    def modify(self, id: int, price: int, qty: int) -> list[Event]:
        """Change a resting order's price and open quantity: ``Modified`` (plus fills if the
        new price crosses), or ``Rejected``.

        Raises:
            ValueError: negative id/qty, price outside the band.
        """

    def best_bid(self) -> tuple[int, int] | None:
        """``(price, total qty)`` of the best bid level, or ``None`` when there are no bids."""

    def best_ask(self) -> tuple[int, int] | None:
        """``(price, total qty)`` of the best ask level, or ``None`` when there are no asks."""

    def snapshot(self, levels: int = 10) -> Snapshot:
        """The best ``levels`` price levels of each side."""

    def order(self, id: int) -> OrderInfo | None:
        """A resting order by id, or ``None``."""

    def __len__(self) -> int:
        """Number of resting orders."""

    def process_batch(
        self,
        kind: npt.NDArray[np.uint8],
        ids: npt.NDArray[np.uint64],
        sides: npt.NDArray[np.uint8],
        types: npt.NDArray[np.uint8],
        prices: npt.NDArray[np.int64],
        qtys: npt.NDArray[np.uint64],
    ) -> BatchResult:
        """Run many commands, row by row, exactly as the single-order calls would, with the
        GIL released. ``kind``: 0 submit, 1 cancel, 2 modify; ``sides``: 0 buy, 1 sell;
        ``types``: 0 limit, 1 market, 2 IOC, 3 FOK. Columns a row's kind does not use are
        ignored (any value).

        Raises:
            ValueError: an array that is not a 1-D C-contiguous array of its dtype, unequal
                lengths, or a bad row (code or band; the message names the row). Nothing is
                applied then.
        """

    def latency_profile(
        self,
        kind: npt.NDArray[np.uint8],
        ids: npt.NDArray[np.uint64],
        sides: npt.NDArray[np.uint8],
        types: npt.NDArray[np.uint8],
        prices: npt.NDArray[np.int64],
        qtys: npt.NDArray[np.uint64],
    ) -> npt.NDArray[np.uint64]:
        """Like ``process_batch`` (same arguments, same effect on the book, GIL released) but
        returns each row's latency in nanoseconds, timed in Rust with ``std::time::Instant``
        around the book call; every sample includes one clock read pair
        (``clock_overhead_ns()``). The events themselves are dropped.
        """

class Engine:
    """Many books, addressed by the symbol ids ``add_symbol`` returns (0, 1, 2, ...).

    Raises (every method taking ``symbol``):
        ValueError: an unknown symbol id, besides the ``OrderBook`` argument errors.
    """

    def __init__(self) -> None: ...
    def add_symbol(self, min_price: int, max_price: int, max_orders: int = 100_000) -> int:
        """Add a book; returns its symbol id."""

    def submit(
        self,
        symbol: int,
        id: int,
        side: SideLike,
        order_type: OrderTypeLike,
        price: int,
        qty: int,
    ) -> list[Event]: ...
    def cancel(self, symbol: int, id: int) -> list[Event]: ...
    def modify(self, symbol: int, id: int, price: int, qty: int) -> list[Event]: ...
    def best_bid(self, symbol: int) -> tuple[int, int] | None: ...
    def best_ask(self, symbol: int) -> tuple[int, int] | None: ...
    def snapshot(self, symbol: int, levels: int = 10) -> Snapshot: ...
    def order(self, symbol: int, id: int) -> OrderInfo | None: ...
    def order_count(self, symbol: int) -> int:
        """Number of resting orders in ``symbol``'s book."""

    def __len__(self) -> int:
        """Number of symbols."""

    def process_batch(
        self,
        symbols: npt.NDArray[np.uint32],
        kind: npt.NDArray[np.uint8],
        ids: npt.NDArray[np.uint64],
        sides: npt.NDArray[np.uint8],
        types: npt.NDArray[np.uint8],
        prices: npt.NDArray[np.int64],
        qtys: npt.NDArray[np.uint64],
    ) -> BatchResult:
        """``OrderBook.process_batch`` with a ``symbols`` column (uint32) routing each row."""

def clock_overhead_ns() -> int:
    """Median cost in ns of the ``Instant::now()`` pair around each ``latency_profile``
    sample."""
