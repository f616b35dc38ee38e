"""Feature assets: Qlib's Alpha158 per (ticker, session) and the 5-session forward excess return
label. Both read what they need (lookback, horizon) from the store by date range."""

import dagster as dg
import polars as pl

from quant_assets.features.alpha158 import ALPHA158_NAMES, LOOKBACK_ROWS, compute_alpha158
from quant_assets.features.labels import (
    LabelNotAvailable,
    check_available,
    forward_excess_returns,
)
from quant_assets.ingest.assets import raw_bars, universe
from quant_assets.metadata import date_range_metadata, preview
from quant_assets.partitions import daily_partitions, partition_dates, shift_sessions
from quant_assets.queries import benchmark_ticker
from quant_core.conventions import LABEL_HORIZON_SESSIONS
from resources.storage import Store

# Alpha158 on split/dividend-adjusted prices, volume adjusted by the same factor (Qlib's
# convention: volume / (adj_close / close)), so a split moves neither prices nor volume features
_ADJUSTED_BARS = [
    pl.col("ticker"),
    pl.col("date"),
    pl.col("adj_open").alias("open"),
    pl.col("adj_high").alias("high"),
    pl.col("adj_low").alias("low"),
    pl.col("adj_close").alias("close"),
    (pl.col("volume") * pl.col("close") / pl.col("adj_close")).alias("volume"),
    (pl.col("vwap") * pl.col("adj_close") / pl.col("close")).alias("vwap"),
]


@dg.asset(
    group_name="features",
    kinds={"polars"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[raw_bars, universe],
)
def alpha158(context: dg.AssetExecutionContext, store: Store) -> dg.MaterializeResult:
    """Qlib's Alpha158 (158 float32 features, Qlib's names and order) for every stock of the
    universe and session of the window, computed from the stored bars of the window and its
    lookback; the benchmark is excluded."""
    start, end = partition_dates(context)
    lookback_start = shift_sessions(start, LOOKBACK_ROWS)
    benchmark = benchmark_ticker(store)
    bars = store.read("raw_bars", lookback_start, end).filter(pl.col("ticker") != benchmark)
    if bars.filter(pl.col("date") >= start).is_empty():
        raise dg.Failure(
            f"no raw_bars stored in [{start}, {end}): materialize raw_bars for these sessions first"
        )
    # a ticker's rows start at its first bar ever, which may lie before the lookback
    first_dates = (
        store.read("raw_bars", None, end, columns=["ticker", "date"])
        .group_by("ticker")
        .agg(pl.col("date").min().alias("first_date"))
    )
    features = compute_alpha158(bars.select(_ADJUSTED_BARS), first_dates=first_dates)
    window = features.filter((pl.col("date") >= start) & (pl.col("date") < end))
    written = store.write_partition("alpha158", window, start, end)
    missing_share = window.select(
        pl.mean_horizontal(pl.col(ALPHA158_NAMES).is_null().mean())
    ).item()
    context.log.info(f"alpha158 [{start}, {end}): {written} rows from {bars.height} bars")
    return dg.MaterializeResult(
        metadata={
            "rows": written,
            "tickers": window["ticker"].n_unique(),
            "sessions": window["date"].n_unique(),
            "features": len(ALPHA158_NAMES),
            "lookback_sessions_read": LOOKBACK_ROWS,
            "missing_value_share": float(missing_share or 0.0),
            **date_range_metadata(window),
            "preview": preview(window.select("ticker", "date", *ALPHA158_NAMES[:8])),
        }
    )


@dg.asset(
    group_name="features",
    kinds={"polars"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[raw_bars, universe],
)
def labels(context: dg.AssetExecutionContext, store: Store) -> dg.MaterializeResult:
    """The 5-session forward return of each stock in excess of the benchmark's, keyed by the
    session it is measured from. A session's label exists once the bars of the session 5
    sessions later are stored; asking earlier fails with "not yet available"."""
    start, end = partition_dates(context)
    last_day = shift_sessions(end, 1)
    bounds = store.date_bounds("raw_bars")
    try:
        horizon_end = check_available(last_day, bounds[1] if bounds else None)
    except LabelNotAvailable as exc:
        raise dg.Failure(str(exc)) from exc
    bars = store.read(
        "raw_bars", start, shift_sessions(horizon_end, -1), columns=["ticker", "date", "adj_close"]
    )
    frame = forward_excess_returns(bars, benchmark_ticker(store), start, end)
    written = store.write_partition("labels", frame, start, end)
    return dg.MaterializeResult(
        metadata={
            "rows": written,
            "tickers": frame["ticker"].n_unique(),
            "sessions": frame["date"].n_unique(),
            "horizon_sessions": LABEL_HORIZON_SESSIONS,
            "mean_label": float(frame.select(pl.col("label").mean()).item() or 0.0),
            "label_std": float(frame.select(pl.col("label").std()).item() or 0.0),
            **date_range_metadata(frame),
            "preview": preview(frame),
        }
    )
