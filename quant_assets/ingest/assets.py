"""Ingest assets: the universe, daily bars (validated, bad rows quarantined) and macro series."""

import dagster as dg
import polars as pl

from quant_assets.ingest.charts import raw_bars_chart
from quant_assets.ingest.validation import MAX_SPIKE_RUN, validate_bars
from quant_assets.metadata import date_range_metadata, preview
from quant_assets.partitions import (
    daily_partitions,
    next_trading_day,
    partition_dates,
    shift_sessions,
)
from resources.macro.base import MACRO_SERIES_IDS
from resources.macro.resource import MacroData
from resources.market_data.resource import MarketData
from resources.settings import data_dir
from resources.storage import Store

# sessions of provider history fetched before a window, so the spike rule can judge its first day
_CONTEXT_SESSIONS = MAX_SPIKE_RUN + 1


@dg.asset(
    group_name="ingest",
    kinds={"polars"},
    # lets the CLI materialize it in the same run as a partition range of the daily assets
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def universe(store: Store, market_data: MarketData) -> dg.MaterializeResult:
    """Tickers with their sector, the benchmark flagged: the synthetic market's own names, or
    for real providers the committed US large-cap list (or the user's file)."""
    members = market_data.get_provider().universe()
    rows = store.replace_table("universe", members)
    sectors = members.filter(~pl.col("is_benchmark")).group_by("sector").len().sort("sector")
    return dg.MaterializeResult(
        metadata={
            "rows": rows,
            "tickers": members.filter(~pl.col("is_benchmark")).height,
            "benchmark": ", ".join(members.filter(pl.col("is_benchmark"))["ticker"].to_list()),
            "sectors": sectors.height,
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


@dg.asset(
    group_name="ingest",
    kinds={"polars"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[universe],
)
def raw_bars(
    context: dg.AssetExecutionContext, store: Store, market_data: MarketData
) -> dg.MaterializeResult:
    """Daily OHLCV bars for the universe. Rows that break a validation rule go to
    ``raw_bars_quarantine`` with the reason instead; a provider failure fails the run before
    anything is written."""
    start, end = partition_dates(context)
    members = store.read("universe")
    if members.is_empty():
        raise dg.Failure("the universe table is empty: materialize the `universe` asset first")
    tickers = members["ticker"].to_list()
    provider = market_data.get_provider()

    context_start = shift_sessions(start, _CONTEXT_SESSIONS)
    fetched = market_data.fetch_bars_chunked(provider, tickers, context_start, end)
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
    store.write_partition("raw_bars_quarantine", quarantine_window, start, end)

    benchmark = members.filter(pl.col("is_benchmark"))["ticker"].to_list()
    chart = raw_bars_chart(
        clean_window,
        benchmark=benchmark[0] if benchmark else provider.benchmark_ticker,
        universe_size=len(tickers),
        path=data_dir() / "reports" / "raw_bars" / f"raw_bars_{start}_{end}.png",
    )
    present = set(clean_window["ticker"].unique().to_list())
    missing = sorted(set(tickers) - present)
    reasons = dict(quarantine_window.group_by("reason").len().sort("reason").iter_rows())
    context.log.info(
        f"raw_bars [{start}, {end}): {written} rows, {quarantine_window.height} quarantined, "
        f"{len(missing)} tickers missing"
    )
    return dg.MaterializeResult(
        metadata={
            "rows": written,
            "rows_quarantined": quarantine_window.height,
            "quarantine_reasons": dg.MetadataValue.json(reasons),
            "spikes_retired_from_earlier_sessions": retired,
            "tickers_requested": len(tickers),
            "tickers_present": len(present),
            "tickers_missing": len(missing),
            "tickers_missing_list": ", ".join(missing[:50]) or "none",
            "trading_days": clean_window["date"].n_unique(),
            **date_range_metadata(clean_window),
            "provider": market_data.provider,
            "store": store.backend_name,
            "preview": preview(clean_window),
            "chart": dg.MetadataValue.path(str(chart)),
        }
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
