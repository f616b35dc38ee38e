"""Store queries that several stages share: the universe's sectors and benchmark, the returns
window behind a day's books, the stored books, the live book's realised returns, and the rows
of the run an asset check judges. Each is written once; the stages call these."""

from __future__ import annotations

from datetime import date

import dagster as dg
import numpy as np
import pandas as pd
import polars as pl

from quant_assets.execution.accounting import account_on
from quant_assets.execution.journal import JOURNAL
from quant_assets.portfolio.books import returns_panel
from quant_assets.portfolio.decision import Holdings
from quant_core.calendar import next_trading_day, shift_sessions
from resources.storage import Store


def benchmark_ticker(store: Store) -> str:
    members = store.read("universe")
    flagged = members.filter(pl.col("is_benchmark"))["ticker"].to_list()
    if not flagged:
        raise dg.Failure("the universe has no benchmark ticker: materialize `universe` first")
    return str(flagged[0])


def sectors_and_benchmark(store: Store) -> tuple[pd.Series, str]:
    """Each universe member's sector (indexed by ticker) and the benchmark's ticker."""
    members = store.read("universe")
    if members.is_empty():
        raise dg.Failure("the universe is empty: materialize `universe` first")
    sectors = pd.Series(members["sector"].to_list(), index=members["ticker"].to_list())
    return sectors, benchmark_ticker(store)


def returns_window(store: Store, start: date, end: date, lookback_sessions: int) -> pl.DataFrame:
    """``returns_panel`` of the stored bars from ``lookback_sessions + 1`` sessions before
    ``start`` (the first day's window and the return into it) up to ``end``."""
    first = shift_sessions(start, lookback_sessions + 1)
    bars = store.read("raw_bars", first, end, columns=["ticker", "date", "adj_close"])
    if bars.is_empty():
        raise dg.Failure(f"no raw_bars stored in [{first}, {end})")
    return returns_panel(bars)


def books_on(store: Store, day: date) -> dict[str, pd.Series]:
    """Every method's stored book of ``day`` (empty when none is stored)."""
    rows = store.read("target_weights", day, next_trading_day(day))
    return {
        str(method): pd.Series(group["weight"].to_numpy(), index=group["ticker"].to_list())
        for (method,), group in rows.group_by(["method"])
    }


def live_books(store: Store, start: date, end: date | None) -> pl.DataFrame:
    """The stored live book's rows (``date, ticker, weight, ...``) in ``[start, end)``."""
    return store.read("target_weights", start, end, where={"is_live": [True]})


def realised_book_returns(history: pl.DataFrame, panel: pl.DataFrame, day: date) -> np.ndarray:
    """Daily returns the stored book ``history`` earned up to ``day``: the weights set at each
    session's close times the next session's returns (cash at zero)."""
    held = history.filter(pl.col("date") < day)
    if held.is_empty():
        return np.zeros(0)
    returns = panel.filter(pl.col("date") <= day).unpivot(
        index="date", variable_name="ticker", value_name="r"
    )
    sessions = panel.select("date").filter(pl.col("date") <= day)
    # each book date -> the next stored session, whose return it earns
    earned = sessions.with_columns(pl.col("date").shift(-1).alias("earned_on")).drop_nulls()
    book = (
        held.join(earned, on="date")
        .join(returns, left_on=["earned_on", "ticker"], right_on=["date", "ticker"])
        .group_by("earned_on")
        .agg((pl.col("weight") * pl.col("r").fill_null(0.0)).sum().alias("r"))
        .sort("earned_on")
    )
    return book["r"].to_numpy()


def live_book_returns(store: Store, day: date, sessions: int) -> np.ndarray:
    """The live book's realised daily returns up to ``day`` (the last ``sessions`` at most)."""
    first = shift_sessions(day, sessions + 1)
    history = live_books(store, first, day)
    if history.is_empty():
        return np.zeros(0)
    bars = store.read(
        "raw_bars", first, next_trading_day(day), columns=["ticker", "date", "adj_close"]
    )
    if bars.is_empty():
        return np.zeros(0)
    return realised_book_returns(history, returns_panel(bars), day)[-sessions:]


# a held name without a bar this many sessions back cannot be valued (and is reported)
PRICE_LOOKBACK_SESSIONS = 10


def account_bars(store: Store, journal: pl.DataFrame, start: date, end: date) -> pl.DataFrame:
    """Closes of every name the journal traded, from the session before ``start`` (less a few
    for names without a bar that day) to ``end``."""
    return store.read(
        "raw_bars",
        shift_sessions(start, PRICE_LOOKBACK_SESSIONS + 1),
        end,
        tickers=sorted(journal["ticker"].unique().to_list()),
        columns=["ticker", "date", "close"],
    )


def held_account(
    store: Store, day: date, initial_cash: float, sessions: int
) -> tuple[pd.Series, float] | None:
    """(the book the paper account holds at the close of ``day``: each name's value over the
    NAV, from the journal's fills of the orders before ``day``; the account's NAV drawdown at
    that close over the last ``sessions`` sessions of the stored ``nav``), or None when the
    account has no order before ``day`` (a store that has never traded)."""
    journal = store.read(JOURNAL).filter(pl.col("date") < day)
    if journal.is_empty():
        return None
    account = account_on(
        journal, account_bars(store, journal, day, next_trading_day(day)), day, initial_cash
    )
    held = account.positions
    # valued as the backtest's decision values its account: one code path, bit for bit
    holdings = Holdings(held.select("ticker", "qty"), float(account.nav["cash"]))
    book = holdings.weights(held.select("ticker", "close"))
    stored = store.read("nav", shift_sessions(day, sessions), day, columns=["date", "nav"])
    levels = [*stored.sort("date")["nav"].to_list(), float(account.nav["nav"])]
    return book, 1.0 - levels[-1] / max(levels)


def window_of_run(context: dg.AssetCheckExecutionContext) -> tuple[date, date] | None:
    """The date window of the run a check executes in, from its partition tags."""
    tags = context.run.tags
    first = tags.get("dagster/asset_partition_range_start") or tags.get("dagster/partition")
    last = tags.get("dagster/asset_partition_range_end") or tags.get("dagster/partition")
    if not first or not last:
        return None
    return date.fromisoformat(first), next_trading_day(date.fromisoformat(last))


def rows_of_run(context: dg.AssetCheckExecutionContext, store: Store, table: str) -> pl.DataFrame:
    """What ``table`` stores for the run a check executes in; outside a partitioned run, its
    latest stored date (empty when nothing is stored)."""
    window = window_of_run(context)
    if window is None:
        bounds = store.date_bounds(table)
        if bounds is None:
            return pl.DataFrame()
        return store.read(table, bounds[1], None)
    return store.read(table, *window)
