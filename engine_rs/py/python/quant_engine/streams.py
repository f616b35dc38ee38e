"""A deterministic mixed command stream for benchmarks and tests.

The mix follows a busy lit book: about 60% limit orders near the touch, 25% cancels (mostly of
recent orders, some of which have already traded: those come back as ``unknown_order_id``
rejects), 10% market/IOC orders and 5% fill-or-kill orders, around a slowly wandering mid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from quant_engine.codes import CommandKind, OrderType


@dataclass(frozen=True)
class OrderStream:
    """Command columns in the layout ``OrderBook.process_batch`` takes, and a book band that
    holds every price in them."""

    kind: npt.NDArray[np.uint8]
    ids: npt.NDArray[np.uint64]
    sides: npt.NDArray[np.uint8]
    types: npt.NDArray[np.uint8]
    prices: npt.NDArray[np.int64]
    qtys: npt.NDArray[np.uint64]
    min_price: int
    max_price: int

    def __len__(self) -> int:
        return len(self.kind)

    def columns(
        self,
    ) -> tuple[
        npt.NDArray[np.uint8],
        npt.NDArray[np.uint64],
        npt.NDArray[np.uint8],
        npt.NDArray[np.uint8],
        npt.NDArray[np.int64],
        npt.NDArray[np.uint64],
    ]:
        """``(kind, ids, sides, types, prices, qtys)``: ``book.process_batch(*s.columns())``."""
        return self.kind, self.ids, self.sides, self.types, self.prices, self.qtys

    def slice(self, start: int, stop: int) -> OrderStream:
        """Rows ``start:stop`` (views, no copy)."""
        return OrderStream(
            self.kind[start:stop],
            self.ids[start:stop],
            self.sides[start:stop],
            self.types[start:stop],
            self.prices[start:stop],
            self.qtys[start:stop],
            self.min_price,
            self.max_price,
        )


def mixed_stream(
    n_ops: int,
    *,
    seed: int = 7,
    mid: int = 100_000,
    limit_share: float = 0.60,
    cancel_share: float = 0.25,
    market_ioc_share: float = 0.10,
    cancel_window: int = 200,
) -> OrderStream:
    """``n_ops`` commands (the remaining share after limits, cancels and market/IOC orders is
    fill-or-kill), identical for the same arguments.

    Order ids are ``row + 1``; a cancel targets a limit order submitted earlier (usually one of
    the last ``cancel_window``). Limit prices sit 0..~20 ticks behind a mid that wanders by a
    tick now and then (a limit at the mid meets the other side's limits at the mid, so limits
    trade too); IOC and FOK orders cross the mid by a few ticks. Market/IOC orders are about
    twice, FOK orders three times the size of a limit order.
    """
    if n_ops < 0:
        raise ValueError(f"n_ops must be >= 0, got {n_ops}")
    shares = (limit_share, cancel_share, market_ioc_share)
    if min(shares) < 0 or sum(shares) > 1:
        raise ValueError(f"shares must be >= 0 and sum to <= 1, got {shares}")
    rng = np.random.default_rng(seed)
    n = n_ops

    u = rng.random(n)  # picks the kind (and market vs IOC)
    c1, c2 = limit_share, limit_share + cancel_share
    c3 = c2 + market_ioc_share
    is_limit = u < c1
    is_cancel = (u >= c1) & (u < c2)
    is_mkt_ioc = (u >= c2) & (u < c3)
    is_fok = u >= c3

    v = rng.random(n)  # the mid moves a tick down/up with 1% probability each
    mids = mid + np.cumsum((v > 0.99).astype(np.int64) - (v < 0.01))

    sides = rng.integers(0, 2, size=n, dtype=np.uint8)
    sign = 2 * sides.astype(np.int64) - 1  # buys (-1) below the mid, sells (+1) above

    types = np.full(n, OrderType.LIMIT, dtype=np.uint8)
    types[is_mkt_ioc] = np.where(u[is_mkt_ioc] < (c2 + c3) / 2, OrderType.MARKET, OrderType.IOC)
    types[is_fok] = OrderType.FOK

    ticks = rng.geometric(0.2, size=n).astype(np.int64)  # 1, 2, 3, ...
    behind = ticks - 1  # a limit rests 0, 1, 2, ... ticks behind the mid
    cross = (ticks + 1) // 2  # IOC/FOK cross the mid by 1, 2, ... ticks
    prices = np.where(is_limit, mids + sign * behind, mids - sign * cross)

    lots = rng.integers(1, 100, size=n, dtype=np.uint64)
    qtys = lots * np.where(is_mkt_ioc, 2, np.where(is_fok, 3, 1)).astype(np.uint64)

    ids = np.arange(1, n + 1, dtype=np.uint64)
    limit_rows = np.flatnonzero(is_limit)
    cancel_rows = np.flatnonzero(is_cancel)
    earlier = np.searchsorted(limit_rows, cancel_rows)  # limit orders before each cancel
    back = rng.geometric(1.0 / cancel_window, size=len(cancel_rows)).astype(np.int64)
    target = earlier - np.minimum(back, earlier)
    has_target = earlier > 0
    chosen = limit_rows[np.minimum(target, max(len(limit_rows) - 1, 0))] if len(limit_rows) else 0
    ids[cancel_rows] = np.where(has_target, np.asarray(chosen) + 1, 0).astype(np.uint64)

    kind = np.full(n, CommandKind.SUBMIT, dtype=np.uint8)
    kind[is_cancel] = CommandKind.CANCEL
    lo = int(prices.min()) if n else mid
    hi = int(prices.max()) if n else mid
    return OrderStream(
        kind=kind,
        ids=ids,
        sides=sides,
        types=types,
        prices=prices,
        qtys=qtys,
        min_price=min(lo, mid) - 1_000,
        max_price=max(hi, mid) + 1_000,
    )
