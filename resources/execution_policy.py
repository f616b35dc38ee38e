"""How target weights become paper orders: sizing and the pre-trade checks."""

from __future__ import annotations

import dagster as dg


class ExecutionPolicy(dg.ConfigurableResource):
    """Order sizing and pre-trade limits. Notionals in the account currency, shares in whole
    shares. ``kill_switch`` on rejects every order before it reaches the broker."""

    # the strategy segment of the client order ids
    strategy: str = "live"
    lot_size: int = 1
    # trades smaller than this are not worth their fixed costs: no order
    min_trade_notional: float = 100.0
    max_order_notional: float = 150_000.0
    # of the name's average daily volume over ``liquidity_sessions``
    max_volume_share: float = 0.05
    liquidity_sessions: int = 20
    # orders are marketable limits this far through the last close; an arrival price beyond
    # it (a gap at the next open, known in backfills) rejects the order before it is sent
    price_collar: float = 0.05
    kill_switch: bool = False
