"""Portfolio assets: ``ml_views`` (model scores -> calibrated Black-Litterman views),
``target_weights`` (every allocation method's book) and ``risk_metrics`` (their risk)."""

from datetime import date

import dagster as dg
import numpy as np
import pandas as pd
import polars as pl
from sklearn.covariance import ledoit_wolf

from quant_assets.features.assets import benchmark_ticker
from quant_assets.ingest.assets import raw_bars, universe
from quant_assets.metadata import date_range_metadata, preview
from quant_assets.models.assets import alpha_model, predictions
from quant_assets.partitions import (
    daily_partitions,
    next_trading_day,
    partition_dates,
    previous_trading_day,
    shift_sessions,
    trading_sessions,
)
from quant_assets.portfolio.books import (
    DayInputs,
    InsufficientReturnsError,
    allocate_day,
    day_inputs,
    returns_panel,
)
from quant_assets.portfolio.risk import (
    current_drawdown,
    euler_risk_contributions,
    max_drawdown,
    rebalance_cost,
    sector_risk_contributions,
    sector_weights,
    stop_loss_breaches,
    summary_metrics,
    var_cvar_table,
)
from quant_assets.portfolio.stress import stress_table
from quant_assets.portfolio.views import InsufficientHistoryError, ScoreCalibrator
from resources.portfolio_policy import PortfolioPolicy
from resources.storage import Store

# the calibrated values are 1-session returns in excess of the benchmark (the label's definition)
VIEW_PRIOR = "benchmark_excess_daily"


class MLViewsConfig(dg.Config):
    """Calibration parameters (see ``quant_assets.portfolio.views``)."""

    min_dates: int = 60
    min_names: int = 10
    full_confidence_ic: float = 0.10


@dg.asset(
    group_name="portfolio",
    kinds={"polars"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[predictions, alpha_model],
)
def ml_views(
    context: dg.AssetExecutionContext, config: MLViewsConfig, store: Store
) -> dg.MaterializeResult:
    """Each stock's expected daily return in excess of the benchmark and the view's confidence,
    from the day's ensemble score mapped through the champion's own out-of-sample history
    (``validation_scores`` of the week that trained it): the per-date slope of realised label
    on score, and an Idzorek confidence from its Rank IC and ICIR."""
    start, end = partition_dates(context)
    scores = store.read(
        "predictions", start, end, columns=["ticker", "date", "score_ensemble", "model_week"]
    )
    if scores.is_empty():
        raise dg.Failure(
            f"no predictions stored in [{start}, {end}): materialize predictions first"
        )
    frames = []
    calibrators: dict[object, ScoreCalibrator] = {}
    for week in scores["model_week"].unique().sort().to_list():
        history = store.read("validation_scores", where={"week": [week]})
        try:
            calibrators[week] = ScoreCalibrator(
                min_dates=config.min_dates,
                min_names=config.min_names,
                full_confidence_ic=config.full_confidence_ic,
            ).fit(history.rename({"score_ensemble": "score"}))
        except InsufficientHistoryError as exc:
            raise dg.Failure(f"model week {week}: {exc}") from exc
    # a handful of sessions per run; each session's cross-section is one vectorised call
    for (day, week), rows in scores.group_by(["date", "model_week"], maintain_order=True):
        calibrator = calibrators[week]
        day_views = calibrator.predict(
            rows.select("ticker", pl.col("score_ensemble").alias("score"))
        )
        frames.append(
            day_views.rename({"score": "score_ensemble"}).with_columns(
                pl.lit(day).alias("date"),
                pl.lit(calibrator.slope_).alias("slope"),
                pl.lit(calibrator.n_dates_, dtype=pl.Int32).alias("calibration_dates"),
                pl.lit(week).alias("model_week"),
                pl.lit(VIEW_PRIOR).alias("prior"),
            )
        )
    views = pl.concat(frames)
    written = store.write_partition("ml_views", views, start, end)
    return dg.MaterializeResult(
        metadata={
            "rows": written,
            "tickers": views["ticker"].n_unique(),
            "prior": VIEW_PRIOR,
            "slope": float(views.select(pl.col("slope").mean()).item()),
            "confidence": float(views.select(pl.col("confidence").mean()).item()),
            "calibration_dates": int(views.select(pl.col("calibration_dates").max()).item()),
            **date_range_metadata(views),
            "preview": preview(views.sort("expected_return_daily", descending=True)),
        }
    )


def _policy_methods_metadata(policy: PortfolioPolicy) -> dict[str, str]:
    return {"live_method": policy.live_method, "methods": ", ".join(policy.methods)}


def _sectors(store: Store) -> tuple[pd.Series, str]:
    members = store.read("universe")
    if members.is_empty():
        raise dg.Failure("the universe is empty: materialize `universe` first")
    sectors = pd.Series(members["sector"].to_list(), index=members["ticker"].to_list())
    return sectors, benchmark_ticker(store)


def _returns_for(store: Store, start: date, end: date, lookback_sessions: int) -> pl.DataFrame:
    """``returns_panel`` of the stored bars from ``lookback_sessions + 1`` sessions before
    ``start`` (the first day's window and the return into it) up to ``end``."""
    first = shift_sessions(start, lookback_sessions + 1)
    bars = store.read("raw_bars", first, end, columns=["ticker", "date", "adj_close"])
    if bars.is_empty():
        raise dg.Failure(f"no raw_bars stored in [{first}, {end})")
    return returns_panel(bars)


def _books_on(store: Store, day: date) -> dict[str, pd.Series]:
    """Every method's stored book of ``day`` (empty when none is stored)."""
    rows = store.read("target_weights", day, next_trading_day(day))
    return {
        str(method): pd.Series(group["weight"].to_numpy(), index=group["ticker"].to_list())
        for (method,), group in rows.group_by(["method"])
    }


@dg.asset(
    group_name="portfolio",
    kinds={"polars", "cvxpy"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[ml_views, raw_bars, universe],
)
def target_weights(
    context: dg.AssetExecutionContext, store: Store, portfolio_policy: PortfolioPolicy
) -> dg.MaterializeResult:
    """Every allocation method's book for each day (one row per method and held ticker),
    fitted on the last ``lookback_sessions`` of returns and the day's ML views; the policy's
    live method is flagged ``is_live``. Days run in order, each starting from the previous
    day's books (the Markowitz turnover cap and costs). Infeasible books are stored in
    ``allocation_status`` with the solver's reason and checked by ``live_book_is_feasible``.
    While the live book's realised drawdown is beyond the policy's maximum, its trades may only
    shrink positions (``allocation_status.risk_reducing``)."""
    portfolio_policy.check_consistent()
    start, end = partition_dates(context)
    sectors, benchmark = _sectors(store)
    panel = _returns_for(store, start, end, portfolio_policy.lookback_sessions)
    views = store.read(
        "ml_views", start, end, columns=["ticker", "date", "expected_return_daily", "confidence"]
    )
    days = [d for d in trading_sessions(start, end) if d in set(panel["date"].to_list())]
    if not days:
        raise dg.Failure(f"no stored sessions in [{start}, {end})")
    missing = sorted(set(days) - set(views["date"].to_list()))
    if missing:
        raise dg.Failure(
            f"no ml_views for {len(missing)} sessions (first {missing[0]}): "
            "materialize ml_views for them first"
        )
    previous = _books_on(store, previous_trading_day(days[0]))
    # the live book's realised drawdown decides whether it may only reduce risk today
    live_history = store.read(
        "target_weights",
        shift_sessions(start, portfolio_policy.lookback_sessions),
        start,
        where={"is_live": [True]},
    )
    weight_frames, status_frames = [], []
    for day in days:
        try:
            inputs = day_inputs(
                day,
                panel,
                benchmark,
                sectors,
                views.filter(pl.col("date") == day),
                previous,
                portfolio_policy.lookback_sessions,
                portfolio_policy.stop_loss_vol_multiple,
                portfolio_policy.stop_loss_vol_window,
            )
        except InsufficientReturnsError as exc:
            raise dg.Failure(str(exc)) from exc
        drawdown = current_drawdown(_realised_book_returns(live_history, panel, day))
        books = allocate_day(
            inputs, portfolio_policy, live_risk_reducing=drawdown > portfolio_policy.max_drawdown
        )
        live_history = pl.concat([live_history, books.weights.filter(pl.col("is_live"))])
        weight_frames.append(books.weights)
        status_frames.append(books.status)
        # an infeasible book keeps yesterday's as its reference: nothing was traded
        previous = {
            **previous,
            **{m: b for m in portfolio_policy.methods if (b := books.book(m)) is not None},
        }
        context.log.info(
            f"{day}: "
            + ", ".join(
                f"{r['method']} {'ok' if r['feasible'] else 'INFEASIBLE'} {r['seconds']:.2f}s"
                for r in books.status.iter_rows(named=True)
            )
        )
    weights = pl.concat(weight_frames)
    status = pl.concat(status_frames)
    written = store.write_partition("target_weights", weights, start, end)
    store.write_partition("allocation_status", status, start, end)
    infeasible = status.filter(~pl.col("feasible"))
    summary = (
        status.group_by("method")
        .agg(
            pl.col("feasible").mean().alias("feasible_share"),
            pl.col("names").mean().alias("mean_names"),
            pl.col("invested").mean().alias("mean_invested"),
            pl.col("turnover").mean().alias("mean_turnover"),
            pl.col("ex_ante_vol").mean().alias("mean_ex_ante_vol"),
            pl.col("seconds").mean().alias("mean_seconds"),
        )
        .sort("method")
    )
    return dg.MaterializeResult(
        metadata={
            "rows": written,
            "days": len(days),
            **_policy_methods_metadata(portfolio_policy),
            "infeasible_books": infeasible.height,
            "infeasible": preview(infeasible.select("date", "method", "status"), rows=20),
            "methods_summary": preview(summary, rows=len(portfolio_policy.methods)),
            "seconds_per_day": float(status["seconds"].sum()) / len(days),
            **date_range_metadata(weights),
        }
    )


def _realised_book_returns(history: pl.DataFrame, panel: pl.DataFrame, day: date) -> np.ndarray:
    """Daily returns the stored live book earned up to ``day``: the weights set at each
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


def _risk_increasing_names(weights: pd.Series, previous: pd.Series | None) -> int:
    """Names whose position grew, opened or flipped sign against ``previous``."""
    before = previous if previous is not None else pd.Series(dtype=np.float64)
    union = weights.index.union(before.index)
    now = weights.reindex(union, fill_value=0.0).to_numpy(dtype=np.float64)
    then = before.reindex(union, fill_value=0.0).to_numpy(dtype=np.float64)
    grew = np.abs(now) > np.abs(then) + 1e-9
    return int((grew | (now * then < 0)).sum())


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
    union = weights.index.union(previous.index if previous is not None else pd.Index([]))
    before = (
        previous.reindex(union, fill_value=0.0)
        if previous is not None
        else pd.Series(0.0, index=union)
    )
    metrics["turnover"], metrics["transaction_cost"] = rebalance_cost(
        before.to_numpy(), weights.reindex(union, fill_value=0.0).to_numpy(), policy.cost_bps
    )
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
    sectors, benchmark = _sectors(store)
    lookback = portfolio_policy.lookback_sessions
    panel = _returns_for(store, start, end, lookback)
    books = store.read("target_weights", start, end)
    if books.is_empty():
        raise dg.Failure(f"no target_weights stored in [{start}, {end})")
    live_history = store.read(
        "target_weights", shift_sessions(start, lookback), end, where={"is_live": [True]}
    )
    previous = _books_on(store, previous_trading_day(start))
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
                realised = _realised_book_returns(live_history, panel, day)
                metrics["realised_sessions"] = float(realised.size)
                metrics["realised_drawdown"] = current_drawdown(realised) if realised.size else 0.0
                metrics["realised_max_drawdown"] = max_drawdown(realised) if realised.size else 0.0
                held = [t for t in weights.index if t in inputs.returns.columns]
                hits = stop_loss_breaches(
                    held,
                    inputs.returns[held].to_numpy(),
                    weights[held].to_numpy(),
                    portfolio_policy.stop_loss_vol_multiple,
                    portfolio_policy.stop_loss_vol_window,
                )
                metrics["stop_loss_breaches"] = float(hits.height)
                metrics["risk_increasing_names"] = float(
                    _risk_increasing_names(weights, previous.get(str(method)))
                )
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
            **_policy_methods_metadata(portfolio_policy),
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
