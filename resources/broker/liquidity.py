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
    sell = np.asarray(sells, dtype=bool)
    quantity = np.asarray(qty, dtype=np.int64)
    limit = np.asarray(limit_ticks, dtype=np.int64)
    n = arrival.size
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
    for i in range(n):
        engine.add_symbol(int(lowest[i]), int(highest[i]), int(2 * levels + children[i] + 2))

    # makers: (order, side, level) -> price; bids below the lowest tick are left out
    offsets = np.arange(levels, dtype=np.int64)
    prices = np.stack([bid[:, None] - offsets, ask[:, None] + offsets], axis=1)
    sizes = level_sizes(seeds, depth_qty, levels)
    keep = prices >= lowest[:, None, None]
    maker_symbol = np.broadcast_to(np.arange(n)[:, None, None], prices.shape)[keep]
    maker_side = np.broadcast_to(np.array([Side.BUY, Side.SELL])[None, :, None], prices.shape)[keep]
    maker_price, maker_qty = prices[keep], sizes[keep]
    maker_ids = np.arange(1, maker_price.size + 1, dtype=np.uint64)

    # children: depth-sized, the last one the remainder
    child_order = np.repeat(np.arange(n), children)
    first_child = np.cumsum(children) - children
    child_no = np.arange(child_order.size) - first_child[child_order]
    child_qty = np.minimum(
        depth_qty[child_order], quantity[child_order] - child_no * depth_qty[child_order]
    )
    is_limit = limit[child_order] > 0
    child_price = np.clip(limit[child_order], lowest[child_order], highest[child_order])
    child_ids = CHILD_ID_BASE + np.arange(child_order.size, dtype=np.uint64)

    result = engine.process_batch(
        np.concatenate([maker_symbol, child_order]).astype(np.uint32),
        np.full(maker_price.size + child_order.size, CommandKind.SUBMIT, dtype=np.uint8),
        np.concatenate([maker_ids, child_ids]).astype(np.uint64),
        np.concatenate([maker_side, np.where(sell[child_order], Side.SELL, Side.BUY)]).astype(
            np.uint8
        ),
        np.concatenate(
            [
                np.full(maker_price.size, OrderType.LIMIT),
                np.where(is_limit, OrderType.IOC, OrderType.MARKET),
            ]
        ).astype(np.uint8),
        np.concatenate([maker_price, np.where(is_limit, child_price, 0)]).astype(np.int64),
        np.concatenate([maker_qty, child_qty]).astype(np.uint64),
    )
    taker = result["taker_id"]
    mine = taker >= CHILD_ID_BASE
    owner = child_order[(taker[mine] - CHILD_ID_BASE).astype(np.int64)]
    fill_qty = result["qty"][mine].astype(np.float64)
    fill_price = result["price"][mine].astype(np.float64)
    return Executions(
        filled=np.bincount(owner, weights=fill_qty, minlength=n).astype(np.int64),
        notional_ticks=np.bincount(owner, weights=fill_qty * fill_price, minlength=n).astype(
            np.float64
        ),
        children=children,
        best_bid=bid,
        best_ask=ask,
    )
