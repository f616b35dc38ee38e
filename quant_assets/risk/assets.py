"""``risk_metrics``: the risk of every stored book of each day, the live one flagged, and
``risk_contributions``: each book's Euler volatility contributions by ticker and sector."""

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
from quant_assets.portfolio.assets import policy_methods_metadata, target_weights
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
    sector_of = inputs.sectors.reindex(tickers).fillna("unknown").to_list()
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


@dg.asset(
    group_name="portfolio",
    kinds={"polars"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[target_weights],
)
def risk_metrics(
    context: dg.AssetExecutionContext, store: Store, portfolio_policy: PortfolioPolicy
) -> dg.MaterializeResult:
    """Risk of every stored book of each day, the live one flagged: VaR/CVaR 95/99 (normal,
    Cornish-Fisher, historical, Monte Carlo with seed 0), realised and ex-ante (Ledoit-Wolf)
    volatility, beta, drawdowns and rolling Sharpe of the weights held over the lookback,
    concentration, sector weights, Euler contributions by ticker and sector, stress losses,
    the rebalance's turnover and cost; for the live book also its REALISED drawdown from the
    stored live books and its stop-loss breaches. The risk limits are blocking checks on it."""
    start, end = partition_dates(context)
    sectors, benchmark = sectors_and_benchmark(store)
    lookback = portfolio_policy.lookback_sessions
    panel = returns_window(store, start, end, lookback)
    books = store.read("target_weights", start, end)
    if books.is_empty():
        raise dg.Failure(f"no target_weights stored in [{start}, {end})")
    live_history = live_books(store, shift_sessions(start, lookback), end)
    previous = books_on(store, previous_trading_day(start))
    metric_rows: list[pl.DataFrame] = []
    contribution_rows: list[pl.DataFrame] = []
    breaches: list[pl.DataFrame] = []
    for day in books["date"].unique().sort().to_list():
        inputs = day_inputs(day, panel, benchmark, sectors, None, previous, lookback)
        today: dict[str, pd.Series] = {}
        for (method, is_live), rows in books.filter(pl.col("date") == day).group_by(
            ["method", "is_live"], maintain_order=True
        ):
            weights = pd.Series(rows["weight"].to_numpy(), index=rows["ticker"].to_list())
            today[str(method)] = weights
            metrics, contributions = _book_risk(
                inputs, str(method), weights, previous.get(str(method)), portfolio_policy
            )
            contribution_rows.append(contributions)
            if is_live:
                realised = realised_book_returns(live_history, panel, day)
                metrics["realised_sessions"] = float(realised.size)
                metrics["realised_drawdown"] = current_drawdown(realised)
                metrics["realised_max_drawdown"] = max_drawdown(realised)
                held = [t for t in weights.index if t in inputs.returns.columns]
                hits = stop_loss_breaches(
                    held,
                    inputs.returns[held].to_numpy(),
                    weights[held].to_numpy(),
                    portfolio_policy.stop_loss_vol_multiple,
                    portfolio_policy.stop_loss_vol_window,
                )
                metrics["stop_loss_breaches"] = float(hits.height)
                _, now, then = aligned_books(weights, previous.get(str(method)))
                metrics["risk_increasing_names"] = float(risk_increasing(now, then).sum())
                breaches.append(hits.with_columns(pl.lit(day).alias("date")))
            metric_rows.append(
                pl.DataFrame(
                    {"metric": list(metrics), "value": [float(v) for v in metrics.values()]}
                ).with_columns(
                    pl.lit(day).alias("date"),
                    pl.lit(method).alias("method"),
                    pl.lit(is_live).alias("is_live"),
                )
            )
        previous = today
    frame = pl.concat(metric_rows).select("date", "method", "is_live", "metric", "value")
    frame = frame.with_columns(pl.col("value").fill_nan(None))
    contributions = pl.concat(contribution_rows).select(
        "date", "method", "level", "name", "weight", "risk_contribution"
    )
    written = store.write_partition("risk_metrics", frame, start, end)
    store.write_partition("risk_contributions", contributions, start, end)
    live_last = frame.filter(pl.col("is_live") & (pl.col("date") == pl.col("date").max())).select(
        "metric", "value"
    )
    headline = {
        name: float(value) if value is not None else float("nan")
        for name, value in live_last.iter_rows()
        if name
        in (
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
    }
    stops = pl.concat(breaches) if breaches else pl.DataFrame()
    return dg.MaterializeResult(
        metadata={
            "rows": written,
            "books": frame.select("date", "method").unique().height,
            **policy_methods_metadata(portfolio_policy),
            **{f"live_{k}": v for k, v in headline.items()},
            "stop_loss_hits": preview(stops, rows=20) if stops.height else "none",
            "by_method": preview(
                frame.filter(pl.col("date") == pl.col("date").max())
                .filter(
                    pl.col("metric").is_in(
                        ["ex_ante_vol", "var95_historical", "cvar95_historical", "beta", "names"]
                    )
                )
                .pivot(on="metric", index="method", values="value"),
                rows=10,
            ),
            **date_range_metadata(frame),
        }
    )
