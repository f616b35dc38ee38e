"""What the dashboard shows, read from the store as Polars frames (no Dash, no Plotly here).

``load_dashboard_data(store)`` reads every table a panel needs once per refresh. Every frame
may be empty (a fresh store, a stage not run yet): the figures render an empty state then.
The live book is the one flagged ``is_live`` in ``target_weights`` / ``risk_metrics``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import date
from typing import cast

import polars as pl

from quant_assets.research.performance import costs_paid, yearly_returns
from quant_core.metrics import SHARPE_WINDOWS, nav_drawdown, rolling_sharpe_expr
from quant_core.sectors import sector_group_expr
from resources.storage import Store

SEVERITY_METRICS = ("feature_severity", "prediction_severity", "explanation_severity")
# var95_historical, cvar99_monte_carlo, ...: the one-day tail losses of risk_metrics
_TAIL_METRIC = re.compile(r"^(c?var)(\d+)_(.+)$")
TAIL_METHODS = ("historical", "normal", "cornish_fisher", "monte_carlo")
# the best strategies of the backtest drawn in its equity curves, besides the benchmarks
BACKTEST_PLOTTED = 5


@dataclass(frozen=True)
class DashboardData:
    """One refresh's worth of frames (each documented by its columns)."""

    # date, ticker, sector, weight: the live book's weights, every stored day
    live_weights: pl.DataFrame
    # level ('ticker' | 'sector'), name, weight, risk_contribution: the live book's latest day
    risk_contributions: pl.DataFrame
    # date, nav, pnl, cumulative_pnl, drawdown (nav / running peak - 1)
    nav: pl.DataFrame
    # date, window, sharpe (long)
    rolling_sharpe: pl.DataFrame
    # 'drift_summary' or 'nav' (where the rolling Sharpe came from), '' when none
    sharpe_source: str
    # date, measure ('VaR' | 'CVaR'), level (95 | 99), method, value: the live book
    tail_risk: pl.DataFrame
    # backtest_metrics as stored plus 'category' (benchmark | ML | risk-based), by Sharpe desc
    backtest: pl.DataFrame
    # strategy, date, equity (value of 1 invested, net of costs): the plotted strategies
    backtest_equity: pl.DataFrame
    # date plus one column per severity metric (0 ok, 1 warn, 2 severe) and sharpe_below_floor
    drift_severity: pl.DataFrame
    # feature, psi, ks_statistic, js_distance, p_value, p_adjusted, drifted: the latest drift
    # day, by PSI desc
    feature_drift: pl.DataFrame
    # the latest drift day's summary: metric -> value
    drift_latest: dict[str, float]
    # model_deployments as stored (who scored each session, the stage, the promotion test)
    deployments: pl.DataFrame
    # shadow_record as stored: each session's Rank ICs and book returns of the deployed pair
    shadow_record: pl.DataFrame
    # model_events as stored (date, version, event, reason), newest first
    model_events: pl.DataFrame
    live_method: str | None
    as_of: date | None


def _sectors(store: Store) -> pl.DataFrame:
    return store.read("universe", columns=["ticker", "sector"])


def cached_latest(store: Store, kind: str) -> pl.DataFrame | None:
    """The serving cache's latest ``kind`` rows (``resources/serving_cache.py``), None without a
    cache or when it cannot answer (stale, absent, down)."""
    cache = store.serving_cache()
    cached = cache.latest(kind) if cache is not None else None
    if cached is None:
        return None
    rows = json.loads(cached.data_json)["rows"]
    if not rows:
        return None
    return pl.DataFrame(rows).with_columns(pl.col("date").str.to_date())


def with_latest(history: pl.DataFrame, latest: pl.DataFrame | None) -> pl.DataFrame:
    """``history`` with its newest session taken from ``latest`` (the cache's rows, same
    columns) when the cache's session is as new as the store's or newer: the cache is written
    as the table is, the store's reader snapshot when the pipeline's step ends."""
    if latest is None or latest.is_empty():
        return history
    session = latest["date"].max()
    if history.height and history["date"].max() > session:  # type: ignore[operator]
        return history
    kept = history.filter(pl.col("date") != session)
    return pl.concat([kept, latest.select(history.columns).cast(history.schema)])


def read_live_weights(store: Store) -> pl.DataFrame:
    """``date, ticker, sector, weight`` of the live book (its latest session from the serving
    cache when it has it); each unclassified name is its own group (``Unclassified (XYZ)``), as
    under the sector cap."""
    weights = with_latest(
        store.read(
            "target_weights", columns=["date", "ticker", "weight"], where={"is_live": [True]}
        ),
        cached_latest(store, "weights"),
    )
    return (
        weights.join(_sectors(store), on="ticker", how="left")
        .with_columns(sector_group_expr())
        .select("date", "ticker", "sector", "weight")
        .sort("date", "ticker")
    )


def read_risk_contributions(store: Store) -> tuple[pl.DataFrame, str | None, date | None]:
    """The live book's Euler contributions on the latest day that has them."""
    empty = pl.DataFrame(
        schema={
            "level": pl.String,
            "name": pl.String,
            "weight": pl.Float64,
            "risk_contribution": pl.Float64,
        }
    )
    live = store.read("risk_metrics", columns=["date", "method"], where={"is_live": [True]})
    if live.is_empty():
        live = store.read("target_weights", columns=["date", "method"], where={"is_live": [True]})
    live = live.unique().sort("date")
    if live.is_empty():
        return empty, None, None
    contributions = store.read(
        "risk_contributions",
        start=live["date"].min(),  # type: ignore[arg-type]
        where={"method": live["method"].unique().to_list()},
    ).join(live, on=["date", "method"], how="semi")
    if contributions.is_empty():
        return empty, str(live["method"][-1]), None
    day = contributions["date"].max()
    latest = contributions.filter(pl.col("date") == day)
    return (
        latest.select("level", "name", "weight", "risk_contribution").sort(
            "level", "risk_contribution", descending=[False, True]
        ),
        str(latest["method"][0]),
        day,  # type: ignore[return-value]
    )


def nav_with_drawdown(nav: pl.DataFrame) -> pl.DataFrame:
    """``date, nav, pnl, cumulative_pnl, daily_return, drawdown`` from the nav table."""
    return (
        nav.sort("date")
        .select("date", "nav", "pnl", "cumulative_pnl")
        .with_columns(
            (pl.col("nav") / pl.col("nav").shift(1) - 1.0).alias("daily_return"),
            (-nav_drawdown(pl.col("nav"))).alias("drawdown"),
        )
    )


def sharpe_from_nav(nav: pl.DataFrame, windows: tuple[int, ...] = SHARPE_WINDOWS) -> pl.DataFrame:
    """Annualised rolling Sharpe of the daily NAV returns (long: date, window, sharpe); a
    window's values start once it is full."""
    returns = nav_with_drawdown(nav).filter(pl.col("daily_return").is_not_null())
    frames = [
        returns.select(
            "date",
            pl.lit(w, dtype=pl.Int32).alias("window"),
            rolling_sharpe_expr(pl.col("daily_return"), w).alias("sharpe"),
        )
        for w in windows
    ]
    out = pl.concat(frames) if frames else pl.DataFrame()
    return out.filter(pl.col("sharpe").is_not_null() & pl.col("sharpe").is_finite()).sort(
        "window", "date"
    )


def sharpe_from_drift(summary: pl.DataFrame) -> pl.DataFrame:
    """The live book's rolling Sharpe as drift_report stored it (long: date, window, sharpe)."""
    names = {f"sharpe_{w}": w for w in SHARPE_WINDOWS}
    return (
        summary.filter(pl.col("metric").is_in(list(names)))
        .filter(pl.col("value").is_not_null() & pl.col("value").is_finite())
        .select(
            "date",
            pl.col("metric").replace_strict(names, return_dtype=pl.Int32).alias("window"),
            pl.col("value").alias("sharpe"),
        )
        .sort("window", "date")
    )


def read_tail_risk(store: Store) -> pl.DataFrame:
    """The live book's one-day VaR / CVaR history (long: date, measure, level, method, value),
    its latest session from the serving cache when it has it."""
    rows = with_latest(
        store.read("risk_metrics", columns=["date", "metric", "value"], where={"is_live": [True]}),
        cached_latest(store, "risk"),
    ).filter(pl.col("metric").str.contains(r"^c?var\d+_"))
    parts = pl.col("metric").str.extract_groups(_TAIL_METRIC.pattern)
    return (
        rows.with_columns(parts.alias("parts"))
        .select(
            "date",
            pl.col("parts")
            .struct.field("1")
            .replace_strict({"var": "VaR", "cvar": "CVaR"}, return_dtype=pl.String)
            .alias("measure"),
            pl.col("parts").struct.field("2").cast(pl.Int32).alias("level"),
            pl.col("parts").struct.field("3").alias("method"),
            "value",
        )
        .filter(pl.col("value").is_not_null())
        .sort("method", "measure", "level", "date")
    )


def backtest_table(metrics: pl.DataFrame, returns: pl.DataFrame | None = None) -> pl.DataFrame:
    """backtest_metrics with a ``category`` column, best Sharpe first; with the stored daily
    ``returns`` also each strategy's ``costs_paid`` and one column per calendar year (its net
    return)."""
    if returns is not None and returns.height:
        by_year = costs_paid(returns).join(yearly_returns(returns), on="strategy")
        metrics = metrics.join(by_year, on="strategy", how="left")
    return metrics.with_columns(
        pl.when(pl.col("strategy").str.starts_with("benchmark"))
        .then(pl.lit("benchmark"))
        .when(pl.col("mean_ic").is_not_null())
        .then(pl.lit("ML"))
        .otherwise(pl.lit("risk-based"))
        .alias("category")
    ).sort("sharpe", descending=True, nulls_last=True)


def read_backtest_equity(store: Store, metrics: pl.DataFrame, best: int) -> pl.DataFrame:
    """The growth of 1 invested in the ``best`` strategies by Sharpe and in the benchmarks of
    the stored backtest (``metrics`` as ``backtest_table`` returns it), in that order."""
    ranked = metrics.filter(pl.col("category") != "benchmark")["strategy"].head(best)
    benchmarks = metrics.filter(pl.col("category") == "benchmark")["strategy"]
    chosen = [*ranked.to_list(), *benchmarks.to_list()]
    if not chosen:
        return pl.DataFrame(schema={"strategy": pl.String, "date": pl.Date, "equity": pl.Float64})
    returns = store.read(
        "backtest_returns", columns=["strategy", "date", "net_return"], where={"strategy": chosen}
    )
    order = pl.DataFrame({"strategy": chosen, "rank": list(range(len(chosen)))})
    return (
        returns.join(order, on="strategy")
        .sort("rank", "date")
        .select(
            "strategy",
            "date",
            (1.0 + pl.col("net_return").fill_null(0.0)).cum_prod().over("strategy").alias("equity"),
        )
    )


def drift_severity(summary: pl.DataFrame) -> pl.DataFrame:
    """``date`` and one column per severity metric (wide), oldest first."""
    wanted = [*SEVERITY_METRICS, "sharpe_below_floor"]
    rows = summary.filter(pl.col("metric").is_in(wanted))
    if rows.is_empty():
        return pl.DataFrame(schema={"date": pl.Date, **dict.fromkeys(wanted, pl.Float64)})
    wide = rows.pivot(on="metric", index="date", values="value").sort("date")
    missing = [m for m in wanted if m not in wide.columns]
    return wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(m) for m in missing).select(
        "date", *wanted
    )


def latest_feature_drift(store: Store) -> pl.DataFrame:
    """The latest drift day's per-feature drift, most drifted (PSI) first."""
    bounds = store.date_bounds("feature_drift")
    if bounds is None:
        return store.read("feature_drift").drop("date")
    return (
        store.read("feature_drift", start=bounds[1])
        .drop("date")
        .sort("psi", descending=True, nulls_last=True)
    )


def shadow_equity(record: pl.DataFrame, deployments: pl.DataFrame) -> pl.DataFrame:
    """``date, book, equity``: the value of 1 in the champion's and the challenger's books over
    the latest deployment's shadow record (its pair, since its shadow began), net of costs."""
    if record.is_empty() or deployments.is_empty():
        return pl.DataFrame(schema={"date": pl.Date, "book": pl.String, "equity": pl.Float64})
    latest = deployments.sort("date").row(-1, named=True)
    pair = record.filter(
        (pl.col("champion_version") == latest["champion_version"])
        & (pl.col("challenger_version") == latest["challenger_version"])
    ).sort("date")
    books = {"return_champion": "champion", "return_challenger": "challenger"}
    return pl.concat(
        [
            pair.select(
                "date",
                pl.lit(f"{name} v{pair[f'{name}_version'][0] if pair.height else ''}").alias(
                    "book"
                ),
                (1.0 + pl.col(column).fill_null(0.0)).cum_prod().alias("equity"),
            )
            for column, name in books.items()
        ]
    )


def _last_date(frame: pl.DataFrame) -> date | None:
    if frame.is_empty():
        return None
    return cast(date, frame["date"].max())


def load_dashboard_data(store: Store) -> DashboardData:
    """Everything the panels show, read now."""
    try:
        live_weights = read_live_weights(store)
        contributions, live_method, _ = read_risk_contributions(store)
        nav = nav_with_drawdown(store.read("nav"))
        summary = store.read("drift_summary")
        sharpe = sharpe_from_drift(summary)
        source = "drift_summary"
        if sharpe.is_empty():
            sharpe = sharpe_from_nav(store.read("nav")) if nav.height > 1 else sharpe
            source = "nav" if not sharpe.is_empty() else ""
        tail = read_tail_risk(store)
        backtest = backtest_table(
            store.read("backtest_metrics"),
            store.read("backtest_returns", columns=["strategy", "date", "cost", "net_return"]),
        )
        equity = read_backtest_equity(store, backtest, BACKTEST_PLOTTED)
        severity = drift_severity(summary)
        features = latest_feature_drift(store)
        deployments = store.read("model_deployments")
        record = store.read("shadow_record")
        events = store.read("model_events").sort("date", descending=True)
    finally:
        # release the DuckDB file for the pipeline's writers
        store.close()
    drift_latest: dict[str, float] = {}
    if not summary.is_empty():
        last_day = summary["date"].max()
        drift_latest = {
            str(r["metric"]): float(r["value"]) if r["value"] is not None else math.nan
            for r in summary.filter(pl.col("date") == last_day).iter_rows(named=True)
        }
    days = [d for d in (_last_date(live_weights), _last_date(nav), _last_date(tail)) if d]
    return DashboardData(
        live_weights=live_weights,
        risk_contributions=contributions,
        nav=nav,
        rolling_sharpe=sharpe,
        sharpe_source=source,
        tail_risk=tail,
        backtest=backtest,
        backtest_equity=equity,
        drift_severity=severity,
        feature_drift=features,
        drift_latest=drift_latest,
        deployments=deployments,
        shadow_record=record,
        model_events=events,
        live_method=live_method,
        as_of=max(days) if days else None,
    )
