"""Feature assets: Qlib's Alpha158 and the documented US equity factors per (ticker, session), and
the 5-session forward excess return label. Each reads what it needs (lookback, horizon) from the
store by date range."""

from collections.abc import Iterator
from datetime import date

import dagster as dg
import polars as pl

from quant_assets.features.alpha158 import ALPHA158_NAMES, LOOKBACK_ROWS, compute_alpha158
from quant_assets.features.factors import BASE_FACTORS, FACTOR_NAMES, compute_factors
from quant_assets.features.labels import (
    LabelNotAvailable,
    check_available,
    forward_excess_returns,
    label_gaps,
)
from quant_assets.ingest.assets import raw_bars, universe
from quant_assets.metadata import date_range_metadata, preview
from quant_assets.partitions import daily_partitions, partition_dates, shift_sessions
from quant_assets.queries import benchmark_ticker
from quant_core.conventions import LABEL_HORIZON_SESSIONS
from quant_core.features import FACTOR_LOOKBACK_ROWS
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


# the factors' lookback counts a ticker's own rows: these extra sessions keep the 252 rows of a
# ticker missing up to a month of bars inside what a one-day run reads
FACTOR_MISSING_BARS_MARGIN = 21
FACTOR_SESSIONS_READ = FACTOR_LOOKBACK_ROWS + FACTOR_MISSING_BARS_MARGIN


@dg.asset(
    group_name="features",
    kinds={"polars"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[raw_bars, universe],
)
def factors(context: dg.AssetExecutionContext, store: Store) -> dg.MaterializeResult:
    """The documented US equity factors (momentum, reversal, 52-week high, beta, idiosyncratic
    volatility, skewness, MAX, Amihud illiquidity, dollar volume, turnover) and their
    sector-relative versions, float32, for every stock of the window's sessions; formulas in
    ``quant_assets.features.factors``. Read from the stored adjusted bars of the window and its
    one-year lookback, the benchmark's closes and the universe's sectors; a stock with too
    little history gets nulls."""
    start, end = partition_dates(context)
    lookback_start = shift_sessions(start, FACTOR_SESSIONS_READ)
    benchmark = benchmark_ticker(store)
    bars = store.read("raw_bars", lookback_start, end)
    stocks = bars.filter(pl.col("ticker") != benchmark)
    if stocks.filter(pl.col("date") >= start).is_empty():
        raise dg.Failure(
            f"no raw_bars stored in [{start}, {end}): materialize raw_bars for these sessions first"
        )
    index = bars.filter(pl.col("ticker") == benchmark).select(
        "date", pl.col("adj_close").alias("close")
    )
    sectors = store.read("universe", columns=["ticker", "sector"])
    computed = compute_factors(stocks.select(_ADJUSTED_BARS), index, sectors)
    window = computed.filter((pl.col("date") >= start) & (pl.col("date") < end))
    written = store.write_partition("factors", window, start, end)
    # a sector-relative factor is null exactly where its base factor is
    missing = window.select(pl.col(BASE_FACTORS).is_null().mean()).row(0, named=True)
    context.log.info(f"factors [{start}, {end}): {written} rows from {bars.height} bars")
    return dg.MaterializeResult(
        metadata={
            "rows": written,
            "tickers": window["ticker"].n_unique(),
            "sessions": window["date"].n_unique(),
            "features": len(FACTOR_NAMES),
            "lookback_sessions_read": FACTOR_SESSIONS_READ,
            "benchmark_sessions_read": index.height,
            "missing_value_share": float(
                sum(v or 0.0 for v in missing.values()) / len(BASE_FACTORS)
            ),
            "missing_share_by_factor": dg.MetadataValue.json(
                {name: round(float(share or 0.0), 4) for name, share in missing.items()}
            ),
            **date_range_metadata(window),
            # the last session: a backfill's first rows are null until a year of bars exists
            "preview": preview(
                window.filter(pl.col("date") == pl.col("date").max()).select(
                    "ticker", "date", *BASE_FACTORS
                )
            ),
        }
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "labels",
            deps=["raw_bars", universe],
            kinds={"polars"},
            description="The 5-session forward return of each stock in excess of the "
            "benchmark's, keyed by the session it is measured from.",
        ),
        dg.AssetSpec(
            "label_gaps",
            deps=["raw_bars", universe],
            kinds={"polars"},
            description="The sessions (or a ticker on a session) of the range that got no "
            "label, and why: a missing benchmark or ticker bar on the session or its horizon.",
        ),
    ],
    group_name="features",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def labels(context: dg.AssetExecutionContext, store: Store) -> Iterator[dg.MaterializeResult]:
    """The 5-session forward return of each stock in excess of the benchmark's. A session's
    label exists once the bars of the session 5 sessions later are stored; asking earlier fails
    with "not yet available". A session without a benchmark return (a missing benchmark bar on
    it or on its horizon) gets no label and a row in ``label_gaps``; every other session of the
    range is stored, and only a range where no session can be labelled fails."""
    start, end = partition_dates(context)
    bars, benchmark = _label_inputs(store, start, end)
    try:
        frame = forward_excess_returns(bars, benchmark, start, end)
    except LabelNotAvailable as exc:
        raise dg.Failure(str(exc)) from exc
    gaps = label_gaps(bars, benchmark, start, end)
    written = store.write_partition("labels", frame, start, end)
    store.write_partition("label_gaps", gaps, start, end)
    unlabelled = gaps.filter(pl.col("ticker") == benchmark)["date"]
    if unlabelled.len():
        context.log.warning(
            f"labels: {unlabelled.len()} sessions without a {benchmark} return get no label: "
            + ", ".join(str(d) for d in unlabelled.head(10).to_list())
        )
    yield dg.MaterializeResult(
        asset_key="labels",
        metadata={
            "rows": written,
            "tickers": frame["ticker"].n_unique(),
            "sessions": frame["date"].n_unique(),
            "unlabelled_sessions": unlabelled.len(),
            "horizon_sessions": LABEL_HORIZON_SESSIONS,
            "mean_label": float(frame.select(pl.col("label").mean()).item() or 0.0),
            "label_std": float(frame.select(pl.col("label").std()).item() or 0.0),
            **date_range_metadata(frame),
            "preview": preview(frame),
        },
    )
    yield dg.MaterializeResult(
        asset_key="label_gaps",
        metadata={
            "rows": gaps.height,
            "unlabelled_sessions": dg.MetadataValue.json([str(d) for d in unlabelled.to_list()]),
            "tickers_with_gaps": gaps.filter(pl.col("ticker") != benchmark)["ticker"].n_unique(),
            "by_reason": preview(gaps.group_by("reason").len().sort("reason")),
            "preview": preview(gaps),
        },
    )


def _label_inputs(store: Store, start: date, end: date) -> tuple[pl.DataFrame, str]:
    """The stored bars from ``start`` through the last session's horizon (which must be
    stored), and the benchmark's ticker."""
    bounds = store.date_bounds("raw_bars")
    try:
        horizon_end = check_available(shift_sessions(end, 1), bounds[1] if bounds else None)
    except LabelNotAvailable as exc:
        raise dg.Failure(str(exc)) from exc
    bars = store.read(
        "raw_bars", start, shift_sessions(horizon_end, -1), columns=["ticker", "date", "adj_close"]
    )
    return bars, benchmark_ticker(store)
