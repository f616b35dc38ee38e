"""The paper account rebuilt from the order journal: holdings, cash, NAV and what changed it.

Timing: orders are decided at the close of their session ``s`` and fill during the next
session, so the holdings at the close of session ``d`` are the fills of the orders of the
sessions before ``d``; the orders of ``d`` itself show up in ``d + 1``. Prices are raw closes
(the shares actually held), the last one stored on or before the day.

Identities (per session ``d``, with ``d - 1`` the previous session):
``nav = cash + positions_value``; ``pnl = nav_d - nav_(d-1)``; ``gross_pnl = pnl + fees``
(the market's contribution before costs); ``implementation_shortfall`` = sum over the fills of
``side x (avg_fill_price - reference_price) x filled_qty`` + fees, the cost of trading at the
fills instead of the closes the orders were sized on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from quant_assets.partitions import previous_trading_day


def signed_fills() -> pl.Expr:
    return pl.when(pl.col("side") == "buy").then(1).otherwise(-1) * pl.col("filled_qty")


def holdings(journal: pl.DataFrame, before: date | None = None) -> pl.DataFrame:
    """``ticker, qty`` (non-zero) from the fills of the orders of sessions before ``before``
    (all of them when None)."""
    rows = journal if before is None else journal.filter(pl.col("date") < before)
    return (
        rows.filter(pl.col("filled_qty") > 0)
        .group_by("ticker")
        .agg(signed_fills().sum().alias("qty"))
        .filter(pl.col("qty") != 0)
        .sort("ticker")
    )


def last_closes(bars: pl.DataFrame, day: date) -> pl.DataFrame:
    """``ticker, close``: each name's last raw close on or before ``day``."""
    return (
        bars.filter(pl.col("date") <= day)
        .sort("date")
        .group_by("ticker")
        .agg(pl.col("close").last())
    )


@dataclass(frozen=True)
class AccountDay:
    positions: pl.DataFrame  # date, ticker, qty, close, market_value, weight
    nav: dict  # one row of the ``nav`` table


def _cash(journal: pl.DataFrame, initial_cash: float) -> float:
    fills = journal.filter(pl.col("filled_qty") > 0)
    if fills.is_empty():
        return initial_cash
    spent = fills.select(
        (signed_fills() * pl.col("avg_fill_price")).sum() + pl.col("fees").sum()
    ).item()
    return initial_cash - float(spent)


def _value(
    journal: pl.DataFrame, bars: pl.DataFrame, day: date, initial_cash: float
) -> tuple[pl.DataFrame, float, float]:
    held = holdings(journal, before=day).join(last_closes(bars, day), on="ticker", how="left")
    unpriced = held.filter(pl.col("close").is_null())["ticker"].to_list()
    if unpriced:
        raise ValueError(f"{day}: no close stored for held names {unpriced}")
    held = held.with_columns((pl.col("qty") * pl.col("close")).alias("market_value"))
    cash = _cash(journal.filter(pl.col("date") < day), initial_cash)
    return held, cash, cash + float(held["market_value"].sum())


def account_on(
    journal: pl.DataFrame, bars: pl.DataFrame, day: date, initial_cash: float
) -> AccountDay:
    """The account at the close of ``day`` from ``order_journal`` rows and ``raw_bars``
    (``ticker, date, close``) covering the held names up to ``day``."""
    held, cash, nav = _value(journal, bars, day, initial_cash)
    previous = previous_trading_day(day)
    _, _, nav_before = _value(journal, bars, previous, initial_cash)
    filled = journal.filter((pl.col("date") == previous) & (pl.col("filled_qty") > 0))
    side = pl.when(pl.col("side") == "buy").then(1.0).otherwise(-1.0)
    fees = float(filled["fees"].sum())
    traded = float(filled.select((pl.col("filled_qty") * pl.col("avg_fill_price")).sum()).item())
    slippage = float(
        filled.select(
            (
                side * (pl.col("avg_fill_price") - pl.col("reference_price")) * pl.col("filled_qty")
            ).sum()
        ).item()
    )
    first_day = journal.filter(pl.col("date") < day).is_empty()
    cumulative = nav - initial_cash
    positions = held.select(
        pl.lit(day).alias("date"),
        "ticker",
        pl.col("qty").cast(pl.Int64),
        "close",
        "market_value",
        (pl.col("market_value") / nav).alias("weight"),
    )
    return AccountDay(
        positions=positions,
        nav={
            "date": day,
            "cash": cash,
            "positions_value": nav - cash,
            "nav": nav,
            "pnl": 0.0 if first_day else nav - nav_before,
            "gross_pnl": 0.0 if first_day else nav - nav_before + fees,
            "cumulative_pnl": cumulative,
            "fees": fees,
            "traded_notional": traded,
            "turnover": traded / nav_before if nav_before else 0.0,
            "implementation_shortfall": slippage + fees,
            "names": positions.height,
        },
    )
