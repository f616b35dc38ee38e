"""Synthetic liquidity for the simulated broker, executed in one ``engine_rs`` batch.

Each order gets its own book (an ``Engine`` symbol) in integer ticks: best bid and ask
``spread`` ticks apart around the arrival price, ``levels`` price levels a side one tick apart,
one resting maker order per level of ``depth x U(0.5, 1.5)`` shares. The jitter comes from
SplitMix64 of the order's seed and the level, so the same order meets the same book whatever
else is in the batch. The order then goes in as child orders of ``depth`` shares: market
orders, or IOC limit orders at its limit (the price collar: an IOC never fills through it and
its rest is cancelled at once). Nothing replenishes the book, so a large order walks deeper
and may exhaust it.

Every maker, child and book of the batch is one ``Engine.process_batch`` call (built with NumPy,
run in Rust with the GIL released): no Python per order or per fill.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from quant_engine import CommandKind, Engine, OrderType, Side

CHILD_ID_BASE = 1 << 40  # maker ids stay below it
_U64 = np.uint64


def splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64's output function (Steele, Lea & Flood 2014), elementwise, wrapping."""
    with np.errstate(over="ignore"):
        z = x + _U64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        return z ^ (z >> _U64(31))


def level_sizes(seeds: npt.ArrayLike, depth: npt.ArrayLike, levels: int) -> npt.NDArray[np.int64]:
    """``(orders, 2, levels)`` resting sizes: bids then asks, nearest level first."""
    seeds = np.asarray(seeds, dtype=np.uint64)
    k = np.arange(2 * levels, dtype=np.uint64)
    with np.errstate(over="ignore"):
        bits = splitmix64(seeds[:, None] * _U64(2 * levels + 1) + k[None, :])
    uniform = (bits >> _U64(11)).astype(np.float64) / float(1 << 53)
    depth = np.asarray(depth, dtype=np.float64)[:, None]
    sizes = np.maximum(1, np.rint(depth * (0.5 + uniform))).astype(np.int64)
    return sizes.reshape(-1, 2, levels)


@dataclass(frozen=True)
class Executions:
    """Per order: shares filled, filled notional in ticks x shares, children sent, and the
    book's best bid and ask in ticks."""

    filled: npt.NDArray[np.int64]
    notional_ticks: npt.NDArray[np.float64]
    children: npt.NDArray[np.int64]
    best_bid: npt.NDArray[np.int64]
    best_ask: npt.NDArray[np.int64]


def execute_batch(
    arrival_ticks: npt.ArrayLike,
    spread_ticks: npt.ArrayLike,
    depth: npt.ArrayLike,
    sells: npt.ArrayLike,
    qty: npt.ArrayLike,
    limit_ticks: npt.ArrayLike,
    seeds: npt.ArrayLike,
    levels: int,
) -> Executions:
    """Execute every order on its own synthetic book (module docstring). ``sells``: bool per
    order; ``limit_ticks``: the limit in ticks, or a value <= 0 for a market order."""
    arrival = np.asarray(arrival_ticks, dtype=np.int64)
    spread = np.asarray(spread_ticks, dtype=np.int64)
    depth_qty = np.asarray(depth, dtype=np.int64)
    quantity = np.asarray(qty, dtype=np.int64)
    if (spread < 1).any() or (depth_qty < 1).any() or (quantity < 1).any() or levels < 1:
        raise ValueError("spread, depth, quantity and levels must be >= 1")
    bid = arrival - spread // 2
    ask = bid + spread
    if (bid < 1).any():
        raise ValueError("an arrival price is too close to 0 for its tick size and spread")
    lowest = np.maximum(1, bid - levels + 1)
    highest = ask + levels - 1
    children = -(-quantity // depth_qty)

    engine = Engine()
    for i in range(arrival.size):
        engine.add_symbol(int(lowest[i]), int(highest[i]), int(2 * levels + children[i] + 2))
    makers = _makers(bid, ask, lowest, depth_qty, seeds, levels)
    takers = _children(
        children, depth_qty, quantity, np.asarray(limit_ticks, dtype=np.int64), lowest, highest
    )
    sell = np.asarray(sells, dtype=bool)[takers["order"]]
    result = engine.process_batch(
        np.concatenate([makers["symbol"], takers["order"]]).astype(np.uint32),
        np.full(makers["price"].size + takers["order"].size, CommandKind.SUBMIT, dtype=np.uint8),
        np.concatenate([makers["id"], takers["id"]]).astype(np.uint64),
        np.concatenate([makers["side"], np.where(sell, Side.SELL, Side.BUY)]).astype(np.uint8),
        np.concatenate([makers["type"], takers["type"]]).astype(np.uint8),
        np.concatenate([makers["price"], takers["price"]]).astype(np.int64),
        np.concatenate([makers["qty"], takers["qty"]]).astype(np.uint64),
    )
    taker = result["taker_id"]
    mine = taker >= CHILD_ID_BASE
    owner = takers["order"][(taker[mine] - CHILD_ID_BASE).astype(np.int64)]
    fill_qty = result["qty"][mine].astype(np.float64)
    fill_price = result["price"][mine].astype(np.float64)
    n = arrival.size
    return Executions(
        filled=np.bincount(owner, weights=fill_qty, minlength=n).astype(np.int64),
        notional_ticks=np.bincount(owner, weights=fill_qty * fill_price, minlength=n).astype(
            np.float64
        ),
        children=children,
        best_bid=bid,
        best_ask=ask,
    )


def _makers(
    bid: npt.NDArray[np.int64],
    ask: npt.NDArray[np.int64],
    lowest: npt.NDArray[np.int64],
    depth_qty: npt.NDArray[np.int64],
    seeds: npt.ArrayLike,
    levels: int,
) -> dict[str, np.ndarray]:
    """The resting limit orders of every book: (order, side, level) -> price; bids below the
    lowest tick are left out."""
    offsets = np.arange(levels, dtype=np.int64)
    prices = np.stack([bid[:, None] - offsets, ask[:, None] + offsets], axis=1)
    sizes = level_sizes(seeds, depth_qty, levels)
    keep = prices >= lowest[:, None, None]
    price = prices[keep]
    return {
        "symbol": np.broadcast_to(np.arange(bid.size)[:, None, None], prices.shape)[keep],
        "side": np.broadcast_to(np.array([Side.BUY, Side.SELL])[None, :, None], prices.shape)[keep],
        "price": price,
        "qty": sizes[keep],
        "id": np.arange(1, price.size + 1, dtype=np.uint64),
        "type": np.full(price.size, OrderType.LIMIT),
    }


def _children(
    children: npt.NDArray[np.int64],
    depth_qty: npt.NDArray[np.int64],
    quantity: npt.NDArray[np.int64],
    limit: npt.NDArray[np.int64],
    lowest: npt.NDArray[np.int64],
    highest: npt.NDArray[np.int64],
) -> dict[str, np.ndarray]:
    """Each parent order's child orders: depth-sized, the last one the remainder; IOC at the
    limit (clipped to the book's ticks) for a limit order, market otherwise."""
    order = np.repeat(np.arange(children.size), children)
    first_child = np.cumsum(children) - children
    child_no = np.arange(order.size) - first_child[order]
    is_limit = limit[order] > 0
    price = np.clip(limit[order], lowest[order], highest[order])
    return {
        "order": order,
        "qty": np.minimum(depth_qty[order], quantity[order] - child_no * depth_qty[order]),
        "id": CHILD_ID_BASE + np.arange(order.size, dtype=np.uint64),
        "type": np.where(is_limit, OrderType.IOC, OrderType.MARKET),
        "price": np.where(is_limit, price, 0),
    }
