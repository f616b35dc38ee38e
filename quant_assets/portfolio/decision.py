"""The day's decision: from what is known at the close of a session to its books and orders.

One code path for the live assets and the backtest's replay of the live book:

- :func:`decide_books` (the live ``target_weights``): every method's book of the day
  (:func:`~quant_assets.portfolio.books.allocate_day`), the live method's turnover measured
  against the book the account actually HOLDS at the close (after fills, lots and the ADV cap,
  :meth:`Holdings.weights`), and the drawdown rule read on the account's own NAV: past the
  policy's maximum the live book only shrinks positions;
- :func:`decide_orders` (the live ``paper_orders``): the live book sized in whole lots on the
  account's NAV at the close and netted against the shares held, with every pre-trade check
  (:func:`~quant_assets.execution.orders.paper_order_book`);
- :func:`decide_session`: both, as the backtest calls them every session.

Nothing here reads the store or looks past the session's close: the callers bring the inputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl

from quant_assets.execution.orders import paper_order_book, target_shares
from quant_assets.portfolio.books import WEIGHT_TOL, DayBooks, DayInputs, allocate_day
from resources.execution_policy import ExecutionPolicy
from resources.portfolio_policy import PortfolioPolicy

HOLDINGS_SCHEMA = {"ticker": pl.String, "qty": pl.Int64}


@dataclass(frozen=True)
class Holdings:
    """An account at a session's close: the shares held (``ticker, qty``) and the cash."""

    shares: pl.DataFrame
    cash: float

    @classmethod
    def from_positions(cls, positions: dict[str, int], cash: float) -> Holdings:
        frame = pl.DataFrame(list(positions.items()), schema=HOLDINGS_SCHEMA, orient="row")
        return cls(frame, float(cash))

    def valued(self, snapshot: pl.DataFrame) -> pl.DataFrame:
        """``ticker, qty, close, value`` at the snapshot's closes; a held name without a close
        cannot be valued (ValueError naming it)."""
        held = self.shares.join(snapshot.select("ticker", "close"), on="ticker", how="left")
        unpriced = held.filter(pl.col("close").is_null())["ticker"].to_list()
        if unpriced:
            raise ValueError(f"no close stored for held names {unpriced}: cannot value NAV")
        return held.with_columns((pl.col("qty") * pl.col("close")).alias("value"))

    def nav(self, snapshot: pl.DataFrame) -> float:
        return self.cash + float(self.valued(snapshot)["value"].sum())

    def weights(self, snapshot: pl.DataFrame) -> pd.Series:
        """The book held: each name's value over the NAV (empty when all cash)."""
        held = self.valued(snapshot)
        nav = self.cash + float(held["value"].sum())
        values = held["value"].to_numpy().astype(np.float64)
        return pd.Series(values / nav if nav else values, index=held["ticker"].to_list())


@dataclass(frozen=True)
class Decision:
    """A session's decision: every method's ``books``, the live book's ``orders``
    (:func:`paper_order_book` rows) and the ``nav`` they were sized on."""

    books: DayBooks
    orders: pl.DataFrame
    nav: float

    @property
    def live_weights(self) -> pl.DataFrame:
        return self.books.weights.filter(pl.col("is_live"))


def decide_books(
    inputs: DayInputs,
    policy: PortfolioPolicy,
    *,
    held: pd.Series | None,
    drawdown: float,
    methods: Sequence[str] | None = None,
) -> DayBooks:
    """Every method of ``methods`` (default the policy's) fitted on ``inputs``; the live
    method's previous book is ``held`` (the account's book at the close; None = the inputs'
    own previous book, for a store that has never traded) and, with ``drawdown`` (of the
    account's NAV) beyond the policy's maximum, its trades may only shrink positions."""
    previous = inputs.previous if held is None else {**inputs.previous, policy.live_method: held}
    return allocate_day(
        dataclasses.replace(inputs, previous=previous),
        policy,
        methods,
        live_risk_reducing=drawdown > policy.max_drawdown,
    )


def blend_canary(books: DayBooks, challenger: pd.Series, fraction: float, version: str) -> DayBooks:
    """The canary: the live book becomes ``(1 - fraction)`` of the champion's live book plus
    ``fraction`` of the challenger's shadow book (the same live method on the challenger's
    views). A champion book that is infeasible is left alone: nothing is traded that day."""
    is_live = books.status["is_live"]
    live_status = books.status.filter(is_live).row(0, named=True)
    if not live_status["feasible"]:
        return books
    champion = books.book(live_status["method"])
    champion = champion if champion is not None else pd.Series(dtype=np.float64)
    blended = champion.mul(1.0 - fraction).add(challenger.mul(fraction), fill_value=0.0)
    blended = blended[blended.abs() > WEIGHT_TOL]
    rows = pl.DataFrame(
        {
            "date": [live_status["date"]] * len(blended),
            "method": [live_status["method"]] * len(blended),
            "ticker": [str(t) for t in blended.index],
            "weight": blended.to_numpy(dtype=np.float64),
            "is_live": [True] * len(blended),
        },
        schema=books.weights.schema,
    )
    note = f"; canary: {fraction:.0%} of the book from challenger {version}"
    return DayBooks(
        pl.concat([books.weights.filter(~pl.col("is_live")), rows]),
        books.status.with_columns(
            pl.when(pl.col("is_live"))
            .then(pl.col("status") + note)
            .otherwise(pl.col("status"))
            .alias("status"),
            pl.when(pl.col("is_live"))
            .then(pl.lit(len(blended), dtype=books.status.schema["names"]))
            .otherwise(pl.col("names"))
            .alias("names"),
            pl.when(pl.col("is_live"))
            .then(pl.lit(float(blended.sum())))
            .otherwise(pl.col("invested"))
            .alias("invested"),
        ),
    )


def decide_orders(
    live_weights: pl.DataFrame,
    holdings: Holdings,
    snapshot: pl.DataFrame,
    policy: ExecutionPolicy,
    *,
    risk_reducing_only: bool,
) -> tuple[pl.DataFrame, float]:
    """(the orders taking ``holdings`` to ``live_weights`` (``ticker, weight``) in whole lots
    of the NAV at the snapshot's closes, with the pre-trade checks; that NAV)."""
    nav = holdings.nav(snapshot)
    targets = target_shares(live_weights.select("ticker", "weight"), nav, snapshot, policy.lot_size)
    orders = paper_order_book(
        targets, holdings.shares, snapshot, policy, risk_reducing_only=risk_reducing_only
    )
    return orders, nav


def decide_session(
    inputs: DayInputs,
    holdings: Holdings,
    snapshot: pl.DataFrame,
    drawdown: float,
    portfolio_policy: PortfolioPolicy,
    execution_policy: ExecutionPolicy,
    methods: Sequence[str] | None = None,
) -> Decision:
    """:func:`decide_books` then :func:`decide_orders` of the live book, against the book the
    account holds; past the maximum drawdown only risk-reducing orders pass (the live
    ``risk_metrics`` drawdown limit)."""
    books = decide_books(
        inputs,
        portfolio_policy,
        held=holdings.weights(snapshot),
        drawdown=drawdown,
        methods=methods,
    )
    live = books.weights.filter(pl.col("is_live"))
    orders, nav = decide_orders(
        live,
        holdings,
        snapshot,
        execution_policy,
        risk_reducing_only=drawdown > portfolio_policy.max_drawdown,
    )
    return Decision(books, orders, nav)
