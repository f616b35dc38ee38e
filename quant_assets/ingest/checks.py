"""Asset checks on raw_bars, named for what they guarantee."""

import os
from datetime import date

import dagster as dg
import polars as pl

from quant_assets.partitions import (
    last_completed_trading_day,
    previous_trading_day,
    trading_sessions,
)
from quant_assets.queries import window_of_run
from resources.storage import Store

# the key, not the definition: raw_bars is a multi-asset (with raw_bars_quarantine)
RAW_BARS = dg.AssetKey("raw_bars")


def coverage_threshold() -> float:
    return float(os.environ.get("QUANT_MIN_COVERAGE") or 0.95)


@dg.asset_check(
    asset=RAW_BARS,
    description="Every session of the run has bars for at least "
    "QUANT_MIN_COVERAGE (default 95%) of the universe.",
)
def raw_bars_cover_the_universe(
    context: dg.AssetCheckExecutionContext, store: Store
) -> dg.AssetCheckResult:
    window = window_of_run(context)
    bounds = store.date_bounds("raw_bars")
    if bounds is None:
        return dg.AssetCheckResult(passed=False, metadata={"reason": "raw_bars is empty"})
    start, end = window or (bounds[1], date.fromordinal(bounds[1].toordinal() + 1))
    universe_size = store.count("universe")
    sessions = trading_sessions(start, end)
    per_day = (
        store.read("raw_bars", start, end, columns=["date"])
        .group_by("date")
        .len()
        .rename({"len": "tickers"})
    )
    coverage = (
        pl.DataFrame({"date": sessions}, schema={"date": pl.Date})
        .join(per_day, on="date", how="left")
        .with_columns((pl.col("tickers").fill_null(0) / max(universe_size, 1)).alias("coverage"))
    )
    threshold = coverage_threshold()
    worst = coverage.sort("coverage").head(5)
    min_coverage, mean_coverage = (
        coverage.select(
            pl.col("coverage").min().alias("min"), pl.col("coverage").mean().alias("mean")
        ).row(0)
        if coverage.height
        else (0.0, 0.0)
    )
    return dg.AssetCheckResult(
        passed=bool(coverage.height) and min_coverage >= threshold,
        metadata={
            "sessions_checked": coverage.height,
            "universe_size": universe_size,
            "min_coverage": float(min_coverage),
            "mean_coverage": float(mean_coverage),
            "threshold": threshold,
            "worst_sessions": dg.MetadataValue.json(
                {str(d): round(c, 4) for d, c in worst.select("date", "coverage").iter_rows()}
            ),
        },
    )


@dg.asset_check(
    asset=RAW_BARS,
    description="The newest stored session is at most one session behind the last completed "
    "NYSE session (a warning: backfills of old history are legitimately stale).",
)
def raw_bars_are_fresh(store: Store) -> dg.AssetCheckResult:
    bounds = store.date_bounds("raw_bars")
    expected = last_completed_trading_day()
    if bounds is None:
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"reason": "raw_bars is empty", "expected_latest": str(expected)},
        )
    latest = bounds[1]
    lag = len(trading_sessions(latest, expected)) if latest < expected else 0
    return dg.AssetCheckResult(
        passed=latest >= previous_trading_day(expected),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "latest_stored": str(latest),
            "last_completed_session": str(expected),
            "sessions_behind": lag,
        },
    )
