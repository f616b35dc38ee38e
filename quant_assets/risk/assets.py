"""``risk_metrics``: the risk of every stored book of each day, the live one flagged, and
``risk_contributions``: each book's Euler volatility contributions by ticker and sector (one
multi-asset: both come from the same pass over the books)."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import polars as pl
from sklearn.covariance import ledoit_wolf

from quant_assets.metadata import date_range_metadata, preview
from quant_assets.partitions import (
    daily_partitions,
    partition_dates,
    previous_trading_day,
    shift_sessions,
)
from quant_assets.portfolio.assets import policy_methods_metadata
from quant_assets.portfolio.books import DayInputs, day_inputs
from quant_assets.queries import (
    books_on,
    live_books,
    realised_book_returns,
    returns_window,
    sectors_and_benchmark,
)
from quant_assets.risk.measures import (
    euler_risk_contributions,
    rebalance_cost,
    sector_risk_contributions,
    sector_weights,
    stop_loss_breaches,
    summary_metrics,
    var_cvar_table,
)
from quant_assets.risk.stress import stress_table
from quant_core.metrics import aligned_books, current_drawdown, max_drawdown, risk_increasing
from quant_core.sectors import sector_groups
from resources.portfolio_policy import PortfolioPolicy
from resources.storage import Store


def _book_risk(
    inputs: DayInputs,
    method: str,
    weights: pd.Series,
    previous: pd.Series | None,
    policy: PortfolioPolicy,
) -> tuple[dict[str, float], pl.DataFrame]:
    """Scalar metrics and the ticker/sector contribution rows of one book on one day."""
    tickers = [t for t in weights.index if t in inputs.returns.columns]
    window = inputs.returns[tickers].to_numpy(dtype=np.float64)
    w = weights[tickers].to_numpy(dtype=np.float64)
    bench = inputs.benchmark.to_numpy()
    covariance, _ = ledoit_wolf(window)
    metrics = summary_metrics(window, w, bench, cov=covariance, cost_bps=policy.cost_bps)
    # turnover and cost against yesterday's book include the names sold out of it
    _, now, then = aligned_books(weights, previous)
    metrics["turnover"], metrics["transaction_cost"] = rebalance_cost(then, now, policy.cost_bps)
    # the sector groups of the cap: each unclassified name is a group of its own
    sector_of = sector_groups(inputs.sectors.reindex(tickers)).to_list()
    sector_table = sector_weights(w, sector_of)
    metrics |= {
        "names": float(len(tickers)),
        "invested": float(w.sum()),
        "max_position": float(np.abs(w).max()) if w.size else 0.0,
        "max_sector_weight": float(sector_table.select(pl.col("weight").max()).item()),
    }
    for row in var_cvar_table(window, w, seed=0).iter_rows(named=True):
        level = round(row["level"] * 100)
        metrics[f"var{level}_{row['method']}"] = row["var"]
        metrics[f"cvar{level}_{row['method']}"] = row["cvar"]
    stress = stress_table(window, w, bench, sector_of)
    for scenario, loss in stress.select("scenario", "loss").iter_rows():
        metrics[f"stress_{scenario}"] = loss
    contributions = euler_risk_contributions(w, covariance)
    by_ticker = pl.DataFrame(
        {
            "level": "ticker",
            "name": tickers,
            "weight": w,
            "risk_contribution": contributions,
        }
    )
    by_sector = sector_table.join(
        sector_risk_contributions(w, covariance, sector_of), on="sector"
    ).select(
        pl.lit("sector").alias("level"),
        pl.col("sector").alias("name"),
        "weight",
        "risk_contribution",
    )
    rows = pl.concat([by_ticker, by_sector]).with_columns(
        pl.lit(inputs.day).alias("date"), pl.lit(method).alias("method")
    )
    return metrics, rows


def _live_book_metrics(
    inputs: DayInputs,
    weights: pd.Series,
    previous: pd.Series | None,
    realised: np.ndarray,
    policy: PortfolioPolicy,
) -> tuple[dict[str, float], pl.DataFrame]:
    """The live book's own metrics: its REALISED drawdowns (``realised``: its daily returns
    from the stored live books), the stop-loss breaches of its positions (also returned, one
    row per breach) and how many names its trades grow."""
    held = [t for t in weights.index if t in inputs.returns.columns]
    hits = stop_loss_breaches(
        held,
        inputs.returns[held].to_numpy(),
        weights[held].to_numpy(),
        policy.stop_loss_vol_multiple,
        policy.stop_loss_vol_window,
    )
    _, now, then = aligned_books(weights, previous)
    metrics = {
        "realised_sessions": float(realised.size),
        "realised_drawdown": current_drawdown(realised),
        "realised_max_drawdown": max_drawdown(realised),
        "stop_loss_breaches": float(hits.height),
        "risk_increasing_names": float(risk_increasing(now, then).sum()),
    }
    return metrics, hits.with_columns(pl.lit(inputs.day).alias("date"))


@dataclass
class _RiskRows:
    """What ``risk_metrics`` collects day by day."""

    metrics: list[pl.DataFrame] = field(default_factory=list)
    contributions: list[pl.DataFrame] = field(default_factory=list)
    breaches: list[pl.DataFrame] = field(default_factory=list)


def _day_risk(
    inputs: DayInputs,
    books: pl.DataFrame,
    live_returns: np.ndarray,
    policy: PortfolioPolicy,
    rows: _RiskRows,
) -> dict[str, pd.Series]:
    """Add the risk of every book of ``books`` (the day's stored weights) to ``rows``; returns
    the day's books by method (the next day's previous books)."""
    today: dict[str, pd.Series] = {}
    for (method, is_live), book in books.group_by(["method", "is_live"], maintain_order=True):
        weights = pd.Series(book["weight"].to_numpy(), index=book["ticker"].to_list())
        today[str(method)] = weights
        previous = inputs.previous.get(str(method))
        metrics, contributions = _book_risk(inputs, str(method), weights, previous, policy)
        rows.contributions.append(contributions)
        if is_live:
            live, hits = _live_book_metrics(inputs, weights, previous, live_returns, policy)
            metrics |= live
            rows.breaches.append(hits)
        rows.metrics.append(
            pl.DataFrame(
                {"metric": list(metrics), "value": [float(v) for v in metrics.values()]}
            ).with_columns(
                pl.lit(inputs.day).alias("date"),
                pl.lit(method).alias("method"),
                pl.lit(is_live).alias("is_live"),
            )
        )
    return today


def _risk_of_books(
    store: Store, books: pl.DataFrame, policy: PortfolioPolicy, start: date, end: date
) -> _RiskRows:
    """The risk rows of every stored book of ``books``, day by day in order."""
    sectors, benchmark = sectors_and_benchmark(store)
    lookback = policy.lookback_sessions
    panel = returns_window(store, start, end, lookback)
    live_history = live_books(store, shift_sessions(start, lookback), end)
    previous = books_on(store, previous_trading_day(start))
    rows = _RiskRows()
    for day in books["date"].unique().sort().to_list():
        inputs = day_inputs(day, panel, benchmark, sectors, None, previous, lookback)
        live_returns = realised_book_returns(live_history, panel, day)
        previous = _day_risk(
            inputs, books.filter(pl.col("date") == day), live_returns, policy, rows
        )
    return rows


_HEADLINE_METRICS = (
    "var95_historical",
    "cvar95_historical",
    "ex_ante_vol",
    "realised_vol",
    "beta",
    "max_position",
    "max_sector_weight",
    "realised_drawdown",
    "stop_loss_breaches",
    "turnover",
)


def _risk_metrics_metadata(
    frame: pl.DataFrame, breaches: list[pl.DataFrame], written: int, policy: PortfolioPolicy
) -> dict[str, Any]:
    live_last = frame.filter(pl.col("is_live") & (pl.col("date") == pl.col("date").max()))
    headline = {
        name: float(value) if value is not None else float("nan")
        for name, value in live_last.select("metric", "value").iter_rows()
        if name in _HEADLINE_METRICS
    }
    stops = pl.concat(breaches) if breaches else pl.DataFrame()
    latest = frame.filter(pl.col("date") == pl.col("date").max())
    by_method = latest.filter(
        pl.col("metric").is_in(
            ["ex_ante_vol", "var95_historical", "cvar95_historical", "beta", "names"]
        )
    ).pivot(on="metric", index="method", values="value")
    return {
        "rows": written,
        "books": frame.select("date", "method").unique().height,
        **policy_methods_metadata(policy),
        **{f"live_{k}": v for k, v in headline.items()},
        "stop_loss_hits": preview(stops, rows=20) if stops.height else "none",
        "by_method": preview(by_method, rows=10),
        **date_range_metadata(frame),
    }


def _risk_contributions_metadata(
    contributions: pl.DataFrame, written: int, live_method: str
) -> dict[str, Any]:
    latest = contributions.filter(
        (pl.col("date") == pl.col("date").max()) & (pl.col("method") == live_method)
    )
    by_sector = latest.filter(pl.col("level") == "sector").sort(
        "risk_contribution", descending=True
    )
    by_ticker = latest.filter(pl.col("level") == "ticker").sort(
        "risk_contribution", descending=True
    )
    return {
        "rows": written,
        "books": contributions.select("date", "method").unique().height,
        "live_method": live_method,
        "live_top_sector": by_sector["name"][0] if by_sector.height else "n/a",
        "live_sectors": preview(by_sector.select("name", "weight", "risk_contribution"), rows=20),
        "live_top_tickers": preview(
            by_ticker.select("name", "weight", "risk_contribution"), rows=10
        ),
        **date_range_metadata(contributions),
    }


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "risk_metrics",
            # allocation_status too: its blocking live_book_is_feasible check stops the risk
            # (and so the orders) of a run whose live book is infeasible
            deps=["target_weights", "allocation_status"],
            kinds={"polars"},
            description="Risk of every stored book of each day, one row per date, method and "
            "metric, the live book flagged; the risk limits are blocking checks on it.",
        ),
        dg.AssetSpec(
            "risk_contributions",
            deps=["target_weights", "allocation_status"],
            kinds={"polars"},
            description="Each book's Euler volatility contributions (Ledoit-Wolf covariance) "
            "by ticker and by sector, with the weights.",
        ),
    ],
    group_name="portfolio",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def risk_metrics(
    context: dg.AssetExecutionContext, store: Store, portfolio_policy: PortfolioPolicy
) -> Iterator[dg.MaterializeResult]:
    """Risk of every stored book of each day, the live one flagged: VaR/CVaR 95/99 (normal,
    Cornish-Fisher, historical, Monte Carlo with seed 0), realised and ex-ante (Ledoit-Wolf)
    volatility, beta, drawdowns and rolling Sharpe of the weights held over the lookback,
    concentration, sector weights, Euler contributions by ticker and sector, stress losses,
    the rebalance's turnover and cost; for the live book also its REALISED drawdown from the
    stored live books and its stop-loss breaches. The risk limits are blocking checks on it."""
    start, end = partition_dates(context)
    books = store.read("target_weights", start, end)
    if books.is_empty():
        raise dg.Failure(f"no target_weights stored in [{start}, {end})")
    rows = _risk_of_books(store, books, portfolio_policy, start, end)
    frame = pl.concat(rows.metrics).select("date", "method", "is_live", "metric", "value")
    frame = frame.with_columns(pl.col("value").fill_nan(None))
    contributions = pl.concat(rows.contributions).select(
        "date", "method", "level", "name", "weight", "risk_contribution"
    )
    written = store.write_partition("risk_metrics", frame, start, end)
    contributed = store.write_partition("risk_contributions", contributions, start, end)
    yield dg.MaterializeResult(
        asset_key="risk_metrics",
        metadata=_risk_metrics_metadata(frame, rows.breaches, written, portfolio_policy),
    )
    yield dg.MaterializeResult(
        asset_key="risk_contributions",
        metadata=_risk_contributions_metadata(
            contributions, contributed, portfolio_policy.live_method
        ),
    )
