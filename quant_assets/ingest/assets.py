"""Ingest assets: the universe, daily bars (validated, bad rows quarantined) and macro series."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from quant_assets.ingest.charts import raw_bars_chart
from quant_assets.ingest.validation import MAX_SPIKE_RUN, VOLUME_LOOKBACK, validate_bars
from quant_assets.metadata import date_range_metadata, preview
from quant_assets.partitions import (
    daily_partitions,
    next_trading_day,
    partition_dates,
    shift_sessions,
)
from quant_core.calendar import (
    close_delay,
    last_completed_trading_day,
    session_close,
    session_has_closed,
    trading_sessions,
)
from quant_core.sectors import UNCLASSIFIED
from resources.macro.base import MACRO_SERIES_IDS
from resources.macro.resource import MacroData
from resources.market_data.resource import MarketData
from resources.market_data.universe_list import stock_universe
from resources.settings import data_dir
from resources.storage import Store

# sessions of provider history fetched before a window, so the spike rule can judge its first day
_CONTEXT_SESSIONS = max(MAX_SPIKE_RUN + 1, VOLUME_LOOKBACK)


@dg.asset(
    group_name="ingest",
    kinds={"polars"},
    # lets the CLI materialize it in the same run as a partition range of the daily assets
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def universe(
    context: dg.AssetExecutionContext, store: Store, market_data: MarketData
) -> dg.MaterializeResult:
    """Tickers with their sector, the benchmark flagged: the synthetic market's own names, or
    for real providers the committed US large-cap list (or the user's file), stocks only unless
    ``QUANT_UNIVERSE_INCLUDE_ETFS=1``. Names no source classifies are counted and listed."""
    selection = stock_universe(
        market_data.get_provider().universe(), include_etfs=market_data.include_etfs
    )
    members = selection.members
    rows = store.replace_table("universe", members)
    holdable = members.filter(~pl.col("is_benchmark"))
    sectors = holdable.group_by("sector").len().sort("sector")
    context.log.info(
        f"universe: {holdable.height} names, {len(selection.unclassified)} unclassified, "
        f"{len(selection.non_stocks_left_out)} non-stocks left out"
    )
    return dg.MaterializeResult(
        metadata={
            "rows": rows,
            "tickers": holdable.height,
            "benchmark": ", ".join(members.filter(pl.col("is_benchmark"))["ticker"].to_list()),
            "sectors": sectors.filter(pl.col("sector") != UNCLASSIFIED).height,
            "unclassified": len(selection.unclassified),
            "unclassified_tickers": ", ".join(selection.unclassified) or "none",
            "non_stocks_left_out": len(selection.non_stocks_left_out),
            "non_stocks_left_out_tickers": ", ".join(selection.non_stocks_left_out) or "none",
            "provider": market_data.provider,
            "store": store.backend_name,
            "tickers_per_sector": preview(sectors, rows=20),
            "preview": preview(members),
        }
    )


def _retire_reverted_spikes(store: Store, flagged: pl.DataFrame) -> int:
    """Move already-stored bars that the newest session proved to be reverted spikes from
    raw_bars into the quarantine; returns how many moved. The quarantine is written first, so a
    failure in between leaves the row in both tables, never in neither."""
    moved = 0
    for day in flagged["date"].unique().sort().to_list():
        window = (day, next_trading_day(day))
        tickers = flagged.filter(pl.col("date") == day)["ticker"].to_list()
        stored = store.read("raw_bars", *window)
        leaving = stored.filter(pl.col("ticker").is_in(tickers))
        if leaving.is_empty():
            continue
        quarantined = store.read("raw_bars_quarantine", *window)
        arriving = leaving.with_columns(pl.lit("spike_reverted").alias("reason"))
        store.write_partition(
            "raw_bars_quarantine",
            pl.concat([quarantined, arriving]).unique(["ticker", "date", "reason"]),
            *window,
        )
        store.write_partition("raw_bars", stored.filter(~pl.col("ticker").is_in(tickers)), *window)
        moved += leaving.height
    return moved


def _members(store: Store) -> pl.DataFrame:
    members = store.read("universe")
    if members.is_empty():
        raise dg.Failure("the universe table is empty: materialize the `universe` asset first")
    return members


def _refuse_unclosed_sessions(start: date, end: date) -> None:
    """Fail before fetching when the window holds a session whose bars are not final yet: a
    provider would return a partial day (or, synthetic, invent one)."""
    sessions = trading_sessions(start, end)
    if sessions and not session_has_closed(sessions[-1]):
        closes = session_close(sessions[-1]) + close_delay()
        raise dg.Failure(
            f"raw_bars: session {sessions[-1]} has not closed: its bars are final after "
            f"{closes:%Y-%m-%d %H:%M} UTC (the close plus QUANT_CLOSE_DELAY_MINUTES); the last "
            f"completed session is {last_completed_trading_day()}"
        )


@dataclass(frozen=True)
class _StoredBars:
    """What one ``raw_bars`` run stored for its window ``[start, end)``."""

    clean: pl.DataFrame
    quarantine: pl.DataFrame
    written: int
    quarantined: int
    retired: int


def _store_bars(store: Store, fetched: pl.DataFrame, start: date, end: date) -> _StoredBars:
    """Validate ``fetched`` (the window and the sessions of context before it), retire stored
    spikes the window proves reverted, and write the window's clean and quarantined rows."""
    clean, quarantine = validate_bars(fetched)
    in_window = (pl.col("date") >= start) & (pl.col("date") < end)
    clean_window = clean.filter(in_window)
    quarantine_window = quarantine.filter(in_window)
    # a spike on the last stored day is only provable once the next session reverts it
    retired = _retire_reverted_spikes(
        store,
        quarantine.filter(~in_window & (pl.col("reason") == "spike_reverted")).select(
            "ticker", "date"
        ),
    )
    written = store.write_partition("raw_bars", clean_window, start, end)
    quarantined = store.write_partition("raw_bars_quarantine", quarantine_window, start, end)
    return _StoredBars(clean_window, quarantine_window, written, quarantined, retired)


def _raw_bars_metadata(
    stored: _StoredBars,
    tickers: list[str],
    chart: Path,
    provider: str,
    store: Store,
) -> dict[str, Any]:
    bars = stored.clean
    present = set(bars["ticker"].unique().to_list())
    missing = sorted(set(tickers) - present)
    return {
        "rows": stored.written,
        "rows_quarantined": stored.quarantine.height,
        "quarantine_reasons": dg.MetadataValue.json(_reasons(stored.quarantine)),
        "spikes_retired_from_earlier_sessions": stored.retired,
        "tickers_requested": len(tickers),
        "tickers_present": len(present),
        "tickers_missing": len(missing),
        "tickers_missing_list": ", ".join(missing[:50]) or "none",
        "trading_days": bars["date"].n_unique(),
        **date_range_metadata(bars),
        "provider": provider,
        "store": store.backend_name,
        "preview": preview(bars),
        "chart": dg.MetadataValue.path(str(chart)),
    }


def _reasons(quarantine: pl.DataFrame) -> dict[str, int]:
    return dict(quarantine.group_by("reason").len().sort("reason").iter_rows())


def _quarantine_metadata(stored: _StoredBars) -> dict[str, Any]:
    rows = stored.quarantine
    reasons = _reasons(rows)
    return {
        "rows": stored.quarantined,
        "reasons": len(reasons),
        "rows_by_reason": dg.MetadataValue.json(reasons),
        "tickers": rows["ticker"].n_unique(),
        # reverted spikes of earlier sessions, moved here from raw_bars by this run
        "rows_moved_from_raw_bars": stored.retired,
        **date_range_metadata(rows),
        "preview": preview(rows.sort("date", "ticker"), rows=20),
    }


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "raw_bars",
            deps=[universe],
            kinds={"polars"},
            description="Daily OHLCV bars of the universe that pass every validation rule.",
        ),
        dg.AssetSpec(
            "raw_bars_quarantine",
            deps=[universe],
            kinds={"polars"},
            description="Bars that broke a validation rule, with the rule (``reason``); a "
            "spike is moved here from raw_bars once the next session proves it reverted.",
        ),
    ],
    group_name="ingest",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def raw_bars(
    context: dg.AssetExecutionContext, store: Store, market_data: MarketData
) -> Iterator[dg.MaterializeResult]:
    """Daily OHLCV bars for the universe. Rows that break a validation rule go to
    ``raw_bars_quarantine`` with the reason instead; a provider failure fails the run before
    anything is written."""
    start, end = partition_dates(context)
    _refuse_unclosed_sessions(start, end)
    members = _members(store)
    tickers = members["ticker"].to_list()
    provider = market_data.get_provider()
    fetched = market_data.fetch_bars_chunked(
        provider, tickers, shift_sessions(start, _CONTEXT_SESSIONS), end
    )
    stored = _store_bars(store, fetched, start, end)
    benchmark = members.filter(pl.col("is_benchmark"))["ticker"].to_list()
    chart = raw_bars_chart(
        stored.clean,
        benchmark=benchmark[0] if benchmark else provider.benchmark_ticker,
        universe_size=len(tickers),
        path=data_dir() / "reports" / "raw_bars" / f"raw_bars_{start}_{end}.png",
    )
    metadata = _raw_bars_metadata(stored, tickers, chart, market_data.provider, store)
    context.log.info(
        f"raw_bars [{start}, {end}): {stored.written} rows, {stored.quarantine.height} "
        f"quarantined, {metadata['tickers_missing']} tickers missing"
    )
    yield dg.MaterializeResult(asset_key="raw_bars", metadata=metadata)
    yield dg.MaterializeResult(
        asset_key="raw_bars_quarantine", metadata=_quarantine_metadata(stored)
    )


@dg.asset(
    group_name="ingest",
    kinds={"polars"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def macro_series(
    context: dg.AssetExecutionContext, store: Store, macro_data: MacroData
) -> dg.MaterializeResult:
    """Rates, curve slope, VIX and unemployment (FRED ids), one row per (series, date)."""
    start, end = partition_dates(context)
    observations = macro_data.get_provider().fetch(list(MACRO_SERIES_IDS), start, end)
    written = store.write_partition("macro_series", observations, start, end)
    latest = (
        observations.sort("date").group_by("series_id").last().sort("series_id")
        if observations.height
        else observations
    )
    missing = sorted(set(MACRO_SERIES_IDS) - set(observations["series_id"].unique().to_list()))
    return dg.MaterializeResult(
        metadata={
            "rows": written,
            "series": observations["series_id"].n_unique(),
            "series_missing": ", ".join(missing) or "none",
            "source": macro_data.source,
            **date_range_metadata(observations),
            "latest_values": dg.MetadataValue.json(
                {s: v for s, v in latest.select("series_id", "value").iter_rows()}
            ),
            "preview": preview(observations),
        }
    )


__all__ = ["macro_series", "raw_bars", "universe"]
