"""Paper orders from target weights: sizing, netting against holdings, pre-trade checks.

Pure functions over Polars frames; the ``paper_orders`` asset feeds them from the store and
the broker. Conventions:

- shares are sized on the session's raw close: ``target = trunc(weight x NAV / close / lot) x
  lot`` (toward zero, so a book never costs more than its weights);
- an order is the difference between target and held shares, one per name and session; a trade
  below ``min_trade_notional`` is not made at all;
- every order carries a price collar: a marketable limit at ``close x (1 +- price_collar)``;
  the broker never fills through it (an open that gaps beyond it leaves the order unfilled);
- pre-trade checks, first failure wins, each stored as the order's REJECTED reason: no close
  for the name, kill switch, risk-limit breach (only orders that shrink a position pass),
  notional above ``max_order_notional``, quantity above ``max_volume_share`` of the average
  daily volume. Nothing here looks past the session's close: the next session's prices are
  the broker's business, when it trades.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from quant_core.metrics import risk_increasing
from resources.execution_policy import ExecutionPolicy

TICK = 0.01


def market_snapshot(bars: pl.DataFrame, day: date, liquidity_sessions: int) -> pl.DataFrame:
    """Per ticker with a bar on ``day``: its raw ``close``, the ``daily_volatility`` of its
    adjusted returns and its ``average_volume`` over the last ``liquidity_sessions`` sessions up
    to ``day``; later bars are ignored (an order is decided at the close).

    ``bars``: ``ticker, date, close, adj_close, volume`` from at least
    ``liquidity_sessions + 1`` sessions before ``day``."""
    return (
        bars.filter(pl.col("date") <= day)
        .sort("ticker", "date")
        .with_columns(
            (pl.col("adj_close") / pl.col("adj_close").shift(1).over("ticker") - 1).alias("r")
        )
        .group_by("ticker")
        .tail(liquidity_sessions)
        .group_by("ticker")
        .agg(
            pl.col("date").last().alias("last_date"),
            pl.col("close").last(),
            pl.col("r").std().alias("daily_volatility"),
            pl.col("volume").mean().alias("average_volume"),
        )
        .filter(pl.col("last_date") == day)
        .drop("last_date")
        .sort("ticker")
    )


def target_shares(
    weights: pl.DataFrame, nav: float, snapshot: pl.DataFrame, lot_size: int
) -> pl.DataFrame:
    """``ticker, target_qty`` for ``weights`` (``ticker, weight``) of an account worth ``nav``;
    ``target_qty`` is null for a name without a close (:func:`paper_order_book` rejects it)."""
    size = pl.col("weight") * nav / pl.col("close") / lot_size
    return weights.join(snapshot.select("ticker", "close"), on="ticker", how="left").select(
        "ticker",
        (size.abs().floor() * pl.col("weight").sign() * lot_size)
        .cast(pl.Int64)
        .alias("target_qty"),
    )


def _net_of_holdings(targets: pl.DataFrame, holdings: pl.DataFrame) -> pl.DataFrame:
    """Per name of either frame: ``target_qty``, ``held_qty``, ``unpriced`` (a null target)
    and the ``delta`` to trade (0 for an unpriced name); names already on target are dropped."""
    return (
        targets.with_columns(pl.col("target_qty").is_null().alias("unpriced"))
        .join(holdings.rename({"qty": "held_qty"}), on="ticker", how="full", coalesce=True)
        .with_columns(
            pl.col("unpriced").fill_null(False),
            pl.col("target_qty").fill_null(0),
            pl.col("held_qty").fill_null(0),
        )
        .with_columns(
            pl.when(pl.col("unpriced"))
            .then(0)
            .otherwise(pl.col("target_qty") - pl.col("held_qty"))
            .alias("delta")
        )
        .filter((pl.col("delta") != 0) | pl.col("unpriced"))
    )


def _priced(wanted: pl.DataFrame, snapshot: pl.DataFrame, policy: ExecutionPolicy) -> pl.DataFrame:
    """``wanted`` with the market (``snapshot``), ``side``, ``qty``, ``reference_price`` (the
    close) and ``notional``; trades below ``min_trade_notional`` are dropped."""
    return (
        wanted.join(snapshot, on="ticker", how="left")
        .with_columns(
            pl.when(pl.col("delta") > 0)
            .then(pl.lit("buy"))
            .otherwise(pl.lit("sell"))
            .alias("side"),
            pl.col("delta").abs().alias("qty"),
            pl.col("close").alias("reference_price"),
        )
        .with_columns((pl.col("qty") * pl.col("reference_price")).alias("notional"))
        # a name without a close cannot be priced: kept, the checks reject it
        .filter(
            pl.col("notional").is_null()
            | pl.col("unpriced")
            | (pl.col("notional") >= policy.min_trade_notional)
        )
    )


def _rejection(policy: ExecutionPolicy, risk_reducing_only: bool) -> pl.Expr:
    """The first pre-trade check an order fails (the module docstring's order), or null."""
    reducing = ~risk_increasing(pl.col("target_qty"), pl.col("held_qty"), tol=0.0)
    return (
        pl.when(pl.col("reference_price").is_null() | pl.col("unpriced"))
        .then(pl.lit("no close stored for the session"))
        .when(pl.lit(policy.kill_switch))
        .then(pl.lit("kill switch on"))
        .when(pl.lit(risk_reducing_only) & ~reducing)
        .then(pl.lit("risk limit breached: only orders that shrink a position"))
        .when(pl.col("notional") > policy.max_order_notional)
        .then(
            pl.format(
                "notional {} above the maximum {}",
                pl.col("notional").round(2),
                pl.lit(policy.max_order_notional),
            )
        )
        .when(pl.col("qty") > policy.max_volume_share * pl.col("average_volume"))
        .then(
            pl.format(
                "{} shares above {} of the average daily volume {}",
                pl.col("qty"),
                pl.lit(policy.max_volume_share),
                pl.col("average_volume").round(0),
            )
        )
        .otherwise(None)
    )


def _collar_limit(collar: float) -> pl.Expr:
    """The marketable limit ``close x (1 +- collar)`` on the tick grid."""
    sign = pl.when(pl.col("side") == "buy").then(1.0).otherwise(-1.0)
    return (pl.col("reference_price") * (1.0 + sign * collar) / TICK).round(0) * TICK


def paper_order_book(
    targets: pl.DataFrame,
    holdings: pl.DataFrame,
    snapshot: pl.DataFrame,
    policy: ExecutionPolicy,
    *,
    risk_reducing_only: bool = False,
) -> pl.DataFrame:
    """One row per order: ``ticker, side, qty, held_qty, target_qty, reference_price,
    limit_price, daily_volatility, average_volume, notional, status`` (NEW or
    REJECTED) and ``reason``. ``targets``: ``ticker, target_qty`` (:func:`target_shares`; a null
    target is a name that could not be priced: it is kept as a rejected order of 0 shares, so
    the gap is visible); ``holdings``: ``ticker, qty``, the shares held now."""
    orders = _priced(_net_of_holdings(targets, holdings), snapshot, policy)
    return (
        orders.with_columns(
            _rejection(policy, risk_reducing_only).alias("reason"),
            _collar_limit(policy.price_collar).alias("limit_price"),
        )
        .select(
            "ticker",
            "side",
            "qty",
            "held_qty",
            "target_qty",
            "reference_price",
            "limit_price",
            "daily_volatility",
            "average_volume",
            "notional",
            pl.when(pl.col("reason").is_null())
            .then(pl.lit("NEW"))
            .otherwise(pl.lit("REJECTED"))
            .alias("status"),
            "reason",
        )
        .sort("ticker")
    )
