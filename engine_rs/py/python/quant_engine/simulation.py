"""Simulated execution of a parent order against synthetic liquidity (the paper broker's fill
model).

The book is seeded around ``reference_price`` in integer ticks: the best bid and ask are
``spread_ticks`` apart around the reference, and ``depth_levels`` price levels on each side hold
about ``depth_qty`` shares each (jittered, split into 1-4 maker orders, deterministic for a
``seed``). The parent order is then sent as child orders of ``child_qty``: market orders, or
limit orders at ``limit_price`` (by default the far touch) whose unfilled rest is cancelled
once it has met the book (no other flow comes in that could fill it later). Nothing
replenishes the book between children, so larger parents walk deeper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from quant_engine._native import Fill, OrderBook

_CHILD_ID_BASE = 1 << 40  # maker ids stay below it


@dataclass(frozen=True)
class SimFill:
    """One child-order fill: ``price`` in currency units, ``ticks`` the same in ticks."""

    child: int
    price: float
    ticks: int
    qty: int


@dataclass(frozen=True)
class ExecutionResult:
    """The outcome of ``simulate_execution``.

    ``slippage_bps`` is signed so that positive is worse for the trader: a buy's average price
    above the arrival mid, a sell's below, in basis points of the mid (NaN with no fill).
    ``reference_slippage_bps`` is the same against ``reference_price``.
    """

    side: str
    style: str
    quantity: int
    filled_qty: int
    avg_price: float
    reference_price: float
    mid_price: float
    best_bid: float
    best_ask: float
    slippage_bps: float
    reference_slippage_bps: float
    child_orders: int
    fills: list[SimFill] = field(default_factory=list)

    @property
    def unfilled_qty(self) -> int:
        return self.quantity - self.filled_qty

    @property
    def fill_ratio(self) -> float:
        return self.filled_qty / self.quantity

    @property
    def notional(self) -> float:
        return sum(f.price * f.qty for f in self.fills)


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def simulate_execution(
    reference_price: float,
    tick_size: float,
    side: str,
    quantity: int,
    *,
    style: str = "market",
    limit_price: float | None = None,
    spread_ticks: int = 2,
    depth_levels: int = 20,
    depth_qty: int = 1_000,
    child_qty: int | None = None,
    seed: int = 0,
) -> ExecutionResult:
    """Execute a parent order of ``quantity`` against a synthetic book around
    ``reference_price`` and report the fills, average price and slippage.

    Args:
        reference_price: the arrival price (> 0); the book's mid sits on it (within half a tick
            for an odd ``spread_ticks``).
        tick_size: price increment (> 0); prices are rounded to it.
        side: ``"buy"`` or ``"sell"``.
        quantity: parent order size (>= 1).
        style: ``"market"`` (market children: fill whatever depth there is) or ``"limit"``
            (limit children at ``limit_price``; they never fill through it, and each child's
            unfilled rest is cancelled right away).
        limit_price: the limit for ``style="limit"`` (default: the far touch, i.e. the best ask
            for a buy); not allowed with ``style="market"``.
        spread_ticks: best ask minus best bid, in ticks (>= 1).
        depth_levels: price levels per side (>= 1), one tick apart.
        depth_qty: average quantity per level (>= 1); each level holds 0.5x-1.5x of it.
        child_qty: child order size (default: the whole parent in one order).
        seed: seeds the liquidity; the same arguments give the same result.

    Raises:
        ValueError: for invalid arguments.
    """
    side_key = side.lower() if isinstance(side, str) else side
    if side_key not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    if style not in ("market", "limit"):
        raise ValueError(f"style must be 'market' or 'limit', got {style!r}")
    if style == "market" and limit_price is not None:
        raise ValueError("limit_price is only allowed with style='limit'")
    if not (math.isfinite(tick_size) and tick_size > 0):
        raise ValueError(f"tick_size must be > 0, got {tick_size!r}")
    if not (math.isfinite(reference_price) and reference_price > 0):
        raise ValueError(f"reference_price must be > 0, got {reference_price!r}")
    quantity = _positive_int("quantity", quantity)
    spread_ticks = _positive_int("spread_ticks", spread_ticks)
    depth_levels = _positive_int("depth_levels", depth_levels)
    depth_qty = _positive_int("depth_qty", depth_qty)
    child = quantity if child_qty is None else _positive_int("child_qty", child_qty)
    if limit_price is not None and not (math.isfinite(limit_price) and limit_price > 0):
        raise ValueError(f"limit_price must be > 0, got {limit_price!r}")

    ref_ticks = round(reference_price / tick_size)
    bid = ref_ticks - spread_ticks // 2
    ask = bid + spread_ticks
    if bid < 1:
        raise ValueError(
            f"reference_price {reference_price} is too close to 0 for tick_size {tick_size} "
            f"and spread_ticks {spread_ticks}"
        )
    lowest = max(1, bid - depth_levels + 1)
    highest = ask + depth_levels - 1
    book = OrderBook(lowest, highest, max_orders=8 * depth_levels + 4 * (quantity // child + 2))

    # synthetic makers: levels outward from the touch, nearest first in time priority
    rng = np.random.default_rng(seed)
    maker_id = 0
    for level in range(depth_levels):
        for maker_side, price in (("buy", bid - level), ("sell", ask + level)):
            size = max(1, round(depth_qty * rng.uniform(0.5, 1.5)))
            if price < lowest:
                continue
            pieces = int(rng.integers(1, 5))
            cuts = np.sort(
                rng.choice(np.arange(1, size), size=min(pieces, size) - 1, replace=False)
            )
            for qty in np.diff(np.concatenate(([0], cuts, [size]))):
                maker_id += 1
                book.submit(maker_id, maker_side, "limit", price, int(qty))

    # the far side's touch (what a marketable limit buys/sells at by default)
    touch = ask if side_key == "buy" else bid
    if style == "limit":
        limit_ticks = touch if limit_price is None else round(limit_price / tick_size)
        limit_ticks = min(max(limit_ticks, lowest), highest)  # the book holds nothing beyond

    def px(ticks: float) -> float:
        return round(ticks * tick_size, 10)

    fills: list[SimFill] = []
    remaining, children = quantity, 0
    while remaining > 0:
        size = min(child, remaining)
        child_id = _CHILD_ID_BASE + children
        if style == "market":
            events = book.submit(child_id, side_key, "market", 0, size)
        else:
            events = book.submit(child_id, side_key, "limit", limit_ticks, size)
        for event in events:
            if isinstance(event, Fill) and event.taker_id == child_id:
                fills.append(SimFill(children, px(event.price), event.price, event.qty))
        children += 1
        remaining -= size
        if style == "limit":
            book.cancel(child_id)  # no flow comes in that could fill the rest later
        elif (book.best_ask() if side_key == "buy" else book.best_bid()) is None:
            break  # the far side is exhausted: the rest stays unfilled

    filled = sum(f.qty for f in fills)
    mid = px((bid + ask) / 2)
    avg = sum(f.ticks * f.qty for f in fills) / filled * tick_size if filled else math.nan
    sign = 1.0 if side_key == "buy" else -1.0
    return ExecutionResult(
        side=side_key,
        style=style,
        quantity=quantity,
        filled_qty=filled,
        avg_price=avg,
        reference_price=float(reference_price),
        mid_price=mid,
        best_bid=px(bid),
        best_ask=px(ask),
        slippage_bps=sign * (avg - mid) / mid * 1e4,
        reference_slippage_bps=sign * (avg - reference_price) / reference_price * 1e4,
        child_orders=children,
        fills=fills,
    )
