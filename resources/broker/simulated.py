"""The simulated paper broker: every order executes on the project's Rust order book.

Timing is the market's: an order decided at the close of session ``d`` is accepted (SUBMITTED,
``fill_date`` = the next session) and trades only once that session's bars are stored (the
next daily run). Until then it is SUBMITTED and holds nothing; whenever the broker is asked
(``order``, ``positions``, ``cash``) it first trades every SUBMITTED order whose session is now
stored, at that session's open. An order whose name has no valid bar that session did not
trade: it expires CANCELLED (a DAY order) with the reason.

For each order it seeds an ``engine_rs`` book (``resources.broker.liquidity``: every order of a
batch on its own book, one engine call) around the order's arrival price (the open of the
session it trades in), shaped by the name's own liquidity:

- spread: ``spread_vol_multiple`` x the daily volatility of returns, in ticks (at least one):
  a name that moves 2% a day quotes 10 bps wide at the default 0.05;
- depth: ``depth_levels`` levels a side, one tick apart, each about ``level_volume_share`` of
  the name's average daily volume (defaults: 50 levels of 0.1%, so 5% of ADV a side, the
  pre-trade cap on an order's share of volume);
- the order goes in as marketable child orders of one level's size, limit orders at its
  price collar when it has one (nothing fills through the collar), market orders otherwise;
  an order larger than the book fills partially and the rest is cancelled (final state
  CANCELLED with the filled quantity: nothing replenishes the book, so nothing more would fill).

Fees are ``fee_bps`` of the filled notional. The broker's own books (``simulated_broker_orders``
in the store) are its memory: a client order id it has seen is refused as a duplicate, and its
positions and cash are derived from them, independently of the platform's order journal.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

from quant_core.calendar import next_trading_day
from resources.broker.base import (
    DuplicateOrderError,
    OrderRequest,
    OrderState,
    cash_after_fills,
    positions_from_fills,
)
from resources.broker.liquidity import execute_batch
from resources.storage import Store
from resources.storage.tables import SIMULATED_BROKER_ORDERS

TABLE = "simulated_broker_orders"


@dataclass(frozen=True)
class FillModel:
    """How an order fills on ``engine_rs`` (the module docstring's book shape and fees): the
    simulated broker's cost model, and the backtest's, so both pay the same costs."""

    fee_bps: float = 0.5
    tick_size: float = 0.01
    depth_levels: int = 50
    level_volume_share: float = 0.001
    spread_vol_multiple: float = 0.05

    def book_shape(self, order: OrderRequest, arrival: float) -> tuple[int, int]:
        """``(spread_ticks, depth_qty)`` of the book an order meets at ``arrival``."""
        vol = order.daily_volatility if math.isfinite(order.daily_volatility) else 0.0
        spread = max(1, round(self.spread_vol_multiple * vol * arrival / self.tick_size))
        volume = order.average_volume if math.isfinite(order.average_volume) else 0.0
        depth = max(1, round(self.level_volume_share * volume))
        return spread, depth

    @staticmethod
    def seed(client_order_id: str) -> int:
        """The liquidity seed of an order: the same order meets the same book, run after run."""
        return zlib.crc32(client_order_id.encode())

    def execute_many(
        self, orders: Sequence[OrderRequest], arrivals: Sequence[float], fill_date: date
    ) -> list[dict]:
        """Run ``orders``, each on its own fresh book around its ``arrivals`` price, in one
        engine batch; the broker's records of them (not stored)."""
        if not orders:
            return []
        shapes = [self.book_shape(o, a) for o, a in zip(orders, arrivals, strict=True)]
        done = execute_batch(
            arrival_ticks=[round(a / self.tick_size) for a in arrivals],
            spread_ticks=[spread for spread, _ in shapes],
            depth=[depth for _, depth in shapes],
            sells=[o.side == "sell" for o in orders],
            qty=[o.qty for o in orders],
            limit_ticks=[
                round(o.limit_price / self.tick_size) if o.limit_price is not None else 0
                for o in orders
            ],
            seeds=[self.seed(o.client_order_id) for o in orders],
            levels=self.depth_levels,
        )
        return [
            self._record(
                order, fill_date, arrival, int(filled), float(notional) * self.tick_size, int(n)
            )
            for order, arrival, filled, notional, n in zip(
                orders, arrivals, done.filled, done.notional_ticks, done.children, strict=True
            )
        ]

    def execute(self, order: OrderRequest, arrival: float, fill_date: date) -> dict:
        return self.execute_many([order], [arrival], fill_date)[0]

    def _record(
        self,
        order: OrderRequest,
        fill_date: date,
        arrival: float,
        filled: int,
        notional: float,
        children: int,
    ) -> dict:
        limit = order.limit_price
        marketable = limit is None or (
            limit >= arrival if order.side == "buy" else limit <= arrival
        )
        if filled == order.qty:
            status, reason = "FILLED", None
        elif filled > 0:
            # the order is over (nothing replenishes the book): a final state, not a live one
            status = "CANCELLED"
            reason = f"partially filled {filled} of {order.qty}: book exhausted, rest cancelled"
        elif not marketable:
            status = "CANCELLED"
            reason = f"arrival {arrival:.4f} beyond the limit {limit:.4f} (price collar)"
        else:
            status, reason = "CANCELLED", "no liquidity within the limit"
        return _accepted(order, fill_date) | {
            "arrival_price": arrival,
            "filled_qty": filled,
            "avg_fill_price": notional / filled if filled else None,
            "fees": notional * self.fee_bps / 1e4,
            "child_orders": children,
            "status": status,
            "reason": reason,
        }


class SimulatedBroker:
    """``BrokerClient`` over ``engine_rs`` (see the module docstring)."""

    name = "simulated"

    def __init__(
        self, store: Store, *, initial_cash: float = 1_000_000.0, **fill_model: Any
    ) -> None:
        """``fill_model``: :class:`FillModel`'s fields (``fee_bps=...``), its defaults else."""
        self._store = store
        self.initial_cash = initial_cash
        self.fill_model = FillModel(**fill_model)

    def book_shape(self, order: OrderRequest, arrival: float) -> tuple[int, int]:
        return self.fill_model.book_shape(order, arrival)

    @staticmethod
    def seed(client_order_id: str) -> int:
        return FillModel.seed(client_order_id)

    def execute_many(
        self, orders: Sequence[OrderRequest], arrivals: Sequence[float], fill_date: date
    ) -> list[dict]:
        return self.fill_model.execute_many(orders, arrivals, fill_date)

    def execute(self, order: OrderRequest, arrival: float, fill_date: date) -> dict:
        return self.fill_model.execute(order, arrival, fill_date)

    def _row(self, client_order_id: str) -> dict | None:
        rows = self._store.read(TABLE, where={"client_order_id": [client_order_id]})
        return rows.row(0, named=True) if rows.height else None

    def submit(self, order: OrderRequest) -> OrderState:
        """Accept an order decided at the close of its session: SUBMITTED, to trade in the next
        session once that session's bars are stored."""
        if self._row(order.client_order_id) is not None:
            raise DuplicateOrderError(f"client_order_id must be unique: {order.client_order_id}")
        record = _accepted(order, next_trading_day(order.session))
        self._store.upsert(
            TABLE, pl.DataFrame([record], schema=SIMULATED_BROKER_ORDERS.polars_schema)
        )
        return _state(record)

    def order(self, client_order_id: str) -> OrderState | None:
        self.trade_stored_sessions()
        row = self._row(client_order_id)
        return _state(row) if row is not None else None

    def trade_stored_sessions(self) -> int:
        """Trade every SUBMITTED order whose session's bars are stored now, at that session's
        open; an order whose name has no valid bar that session expires CANCELLED. Returns how
        many orders reached a final state."""
        pending = self._store.read(TABLE, where={"status": ["SUBMITTED"]})
        records = []
        for fill_date in pending["fill_date"].unique().sort().to_list():
            opens = self._store.read(
                "raw_bars", fill_date, next_trading_day(fill_date), columns=["ticker", "open"]
            )
            if opens.is_empty():
                continue  # that session has not been stored: the orders wait for it
            due = pending.filter(pl.col("fill_date") == fill_date).join(
                opens, on="ticker", how="left"
            )
            traded = due.filter(pl.col("open").is_not_null())
            records += self.execute_many(
                [_request(r) for r in traded.iter_rows(named=True)],
                traded["open"].to_list(),
                fill_date,
            )
            records += [
                r
                | {
                    "status": "CANCELLED",
                    "reason": f"no valid bar for {r['ticker']} on "
                    f"{fill_date} (missing or quarantined): the DAY order expired unfilled",
                }
                for r in due.filter(pl.col("open").is_null()).drop("open").iter_rows(named=True)
            ]
        if records:
            self._store.upsert(
                TABLE, pl.DataFrame(records, schema=SIMULATED_BROKER_ORDERS.polars_schema)
            )
        return len(records)

    def _fills(self) -> pl.DataFrame:
        self.trade_stored_sessions()
        return self._store.read(TABLE).filter(pl.col("filled_qty") > 0)

    def positions(self) -> dict[str, int]:
        return positions_from_fills(self._fills())

    def cash(self) -> float:
        return cash_after_fills(self.initial_cash, self._fills())


def _accepted(order: OrderRequest, fill_date: date) -> dict:
    """The broker's record of an order it accepted and has not traded yet."""
    return {
        "date": order.session,
        "client_order_id": order.client_order_id,
        "broker_order_id": f"sim-{FillModel.seed(order.client_order_id):08x}",
        "ticker": order.ticker,
        "side": order.side,
        "qty": order.qty,
        "limit_price": order.limit_price,
        "reference_price": order.reference_price,
        "daily_volatility": order.daily_volatility,
        "average_volume": order.average_volume,
        "fill_date": fill_date,
        "arrival_price": None,
        "filled_qty": 0,
        "avg_fill_price": None,
        "fees": 0.0,
        "child_orders": 0,
        "status": "SUBMITTED",
        "reason": None,
    }


def _request(row: dict) -> OrderRequest:
    return OrderRequest.from_row(row, row["client_order_id"], row["date"])


def _state(row: dict) -> OrderState:
    return OrderState(
        client_order_id=row["client_order_id"],
        broker_order_id=row["broker_order_id"],
        status=row["status"],
        filled_qty=int(row["filled_qty"]),
        avg_fill_price=row["avg_fill_price"],
        fees=float(row["fees"]),
        reason=row["reason"],
    )
