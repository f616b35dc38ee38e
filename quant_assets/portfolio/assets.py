"""Portfolio assets: ``ml_views`` (model scores -> calibrated Black-Litterman views) and
``target_weights`` (every allocation method's book), one multi-asset with ``allocation_status``
(each book's feasibility and figures)."""

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import dagster as dg
import pandas as pd
import polars as pl

from quant_assets.execution.journal import refresh_open_orders
from quant_assets.ingest.assets import raw_bars, universe
from quant_assets.metadata import date_range_metadata, preview
from quant_assets.models.assets import predictions
from quant_assets.partitions import (
    daily_partitions,
    next_trading_day,
    partition_dates,
    previous_trading_day,
    shift_sessions,
    trading_sessions,
)
from quant_assets.portfolio.allocation import MarkowitzProblems
from quant_assets.portfolio.books import (
    DayBooks,
    DayInputs,
    InsufficientReturnsError,
    day_inputs,
)
from quant_assets.portfolio.covariance import RollingLedoitWolf
from quant_assets.portfolio.decision import blend_canary, decide_books
from quant_assets.portfolio.views import InsufficientHistoryError, ScoreCalibrator
from quant_assets.queries import (
    books_on,
    held_account,
    live_books,
    realised_book_returns,
    returns_window,
    sectors_and_benchmark,
)
from quant_core.metrics import current_drawdown
from resources.broker.resource import Broker
from resources.portfolio_policy import PortfolioPolicy
from resources.storage import Store
from resources.storage.store import table_schema

# the calibrated values are 1-session returns in excess of the benchmark (the label's definition)
VIEW_PRIOR = "benchmark_excess_daily"


class MLViewsConfig(dg.Config):
    """Calibration parameters (see ``quant_assets.portfolio.views``)."""

    min_dates: int = 60
    min_names: int = 10
    full_confidence_ic: float = 0.10


def calibrated_views(store: Store, scores: pl.DataFrame, config: MLViewsConfig) -> pl.DataFrame:
    """``ml_views`` rows of ``scores`` (``ticker, date, score_ensemble, model_week``): each
    model week's scores mapped through that week's own out-of-sample history."""
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
    return pl.concat(frames)


@dg.asset(
    group_name="portfolio",
    kinds={"polars"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[predictions, "validation_scores"],
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
    views = calibrated_views(store, scores, config)
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


def policy_methods_metadata(policy: PortfolioPolicy) -> dict[str, str]:
    return {"live_method": policy.live_method, "methods": ", ".join(policy.methods)}


@dataclass(frozen=True)
class AllocationInputs:
    """What every day of a ``target_weights`` run is allocated from."""

    days: list[date]
    panel: pl.DataFrame
    views: pl.DataFrame
    sectors: pd.Series
    benchmark: str
    # the window's covariance kept from running sums across the run's days, the Markowitz
    # problems compiled once (the fast path)
    covariance: RollingLedoitWolf
    problems: MarkowitzProblems


def allocation_inputs(
    store: Store,
    policy: PortfolioPolicy,
    start: date,
    end: date,
    views: pl.DataFrame | None = None,
    sessions: Collection[date] | None = None,
) -> AllocationInputs:
    """The run's sessions with stored returns (only ``sessions`` when given), the returns
    window, the ML views (the stored ``ml_views`` unless given; every session must have them),
    the sectors and the benchmark."""
    sectors, benchmark = sectors_and_benchmark(store)
    panel = returns_window(store, start, end, policy.lookback_sessions)
    if views is None:
        views = store.read("ml_views", start, end)
    views = views.select("ticker", "date", "expected_return_daily", "confidence")
    stored = set(panel["date"].to_list())
    days = [
        d
        for d in trading_sessions(start, end)
        if d in stored and (sessions is None or d in sessions)
    ]
    if not days:
        raise dg.Failure(f"no stored sessions in [{start}, {end})")
    missing = sorted(set(days) - set(views["date"].to_list()))
    if missing:
        raise dg.Failure(
            f"no ml_views for {len(missing)} sessions (first {missing[0]}): "
            "materialize ml_views for them first"
        )
    tickers = [c for c in panel.columns if c != "date"]
    return AllocationInputs(
        days, panel, views, sectors, benchmark, RollingLedoitWolf(tickers), MarkowitzProblems()
    )


def inputs_of_day(
    day: date, inputs: AllocationInputs, previous: dict[str, pd.Series], policy: PortfolioPolicy
) -> DayInputs:
    """``day_inputs`` of one day of the run: its window, views, stop-loss and covariance."""
    try:
        return day_inputs(
            day,
            inputs.panel,
            inputs.benchmark,
            inputs.sectors,
            inputs.views.filter(pl.col("date") == day),
            previous,
            policy.lookback_sessions,
            policy.stop_loss_vol_multiple,
            policy.stop_loss_vol_window,
            inputs.covariance,
            inputs.problems,
        )
    except InsufficientReturnsError as exc:
        raise dg.Failure(str(exc)) from exc


def _books_of_day(
    day: date,
    inputs: AllocationInputs,
    previous: dict[str, pd.Series],
    live_history: pl.DataFrame,
    account: tuple[pd.Series, float] | None,
    policy: PortfolioPolicy,
) -> DayBooks:
    """Every method's book of ``day`` (:func:`decide_books`): the live method against the book
    the paper ``account`` holds and its NAV drawdown; a store that has never traded (no
    account) measures them on the stored live books instead (``live_history``)."""
    today = inputs_of_day(day, inputs, previous, policy)
    if account is None:
        drawdown = current_drawdown(realised_book_returns(live_history, inputs.panel, day))
        return decide_books(today, policy, held=None, drawdown=drawdown)
    held, drawdown = account
    return decide_books(today, policy, held=held, drawdown=drawdown)


Canary = tuple[pd.Series, float, str]


def canaries_of(store: Store, start: date, end: date) -> dict[date, Canary]:
    """The canary of each session in ``[start, end)`` that runs one: the challenger's shadow
    book, its share of the live book and its version. A canary session without its shadow book
    fails: the live book would silently be the champion's alone."""
    deployments = store.read("model_deployments", start, end).filter(pl.col("canary_fraction") > 0)
    if deployments.is_empty():
        return {}
    shadow = store.read("shadow_weights", start, end)
    canaries: dict[date, Canary] = {}
    for row in deployments.iter_rows(named=True):
        rows = shadow.filter(
            (pl.col("date") == row["date"]) & (pl.col("model_version") == row["challenger_version"])
        )
        if rows.is_empty():
            raise dg.Failure(
                f"{row['date']}: a {row['stage']} canary of version {row['challenger_version']} "
                "has no shadow_weights: materialize shadow_weights first"
            )
        book = pd.Series(rows["weight"].to_numpy(), index=rows["ticker"].to_list())
        canaries[row["date"]] = (book, float(row["canary_fraction"]), row["challenger_version"])
    return canaries


def _allocate_days(
    store: Store,
    inputs: AllocationInputs,
    policy: PortfolioPolicy,
    start: date,
    initial_cash: float,
    log: dg.DagsterLogManager,
    canaries: dict[date, Canary] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, int]]:
    """The weights and the allocation status of every day, in order, each day starting from the
    previous day's books (stored ones for the first day), and how many days the live book was
    measured against the account's held book (``held``) or the stored live book (``target``).
    A day of ``canaries`` blends the challenger's book into the live one."""
    previous = books_on(store, previous_trading_day(inputs.days[0]))
    # the live book's realised drawdown decides whether it may only reduce risk today
    live_history = live_books(store, shift_sessions(start, policy.lookback_sessions), start)
    weight_frames, status_frames = [], []
    references = {"held": 0, "target": 0}
    for day in inputs.days:
        account = held_account(store, day, initial_cash, policy.lookback_sessions)
        references["target" if account is None else "held"] += 1
        books = _books_of_day(day, inputs, previous, live_history, account, policy)
        if canaries and day in canaries:
            books = blend_canary(books, *canaries[day])
        live_history = pl.concat([live_history, books.weights.filter(pl.col("is_live"))])
        weight_frames.append(books.weights)
        status_frames.append(books.status)
        # an infeasible book keeps yesterday's as its reference: nothing was traded
        previous = {
            **previous,
            **{m: b for m in policy.methods if (b := books.book(m)) is not None},
        }
        log.info(
            f"{day}: "
            + ", ".join(
                f"{r['method']} {'ok' if r['feasible'] else 'INFEASIBLE'} {r['seconds']:.2f}s"
                for r in books.status.iter_rows(named=True)
            )
        )
    return pl.concat(weight_frames), pl.concat(status_frames), references


def _shadow_book_reference(
    store: Store, day: date, version: str
) -> tuple[pd.Series | None, pl.DataFrame]:
    """The challenger's stored shadow book of the session before ``day`` (None when it was not
    shadowing then) and its stored history (its drawdown)."""
    history = store.read("shadow_weights", None, day, where={"model_version": [version]})
    before = history.filter(pl.col("date") == previous_trading_day(day))
    if before.is_empty():
        return None, history
    return pd.Series(before["weight"].to_numpy(), index=before["ticker"].to_list()), history


def shadow_books(
    store: Store,
    policy: PortfolioPolicy,
    views: pl.DataFrame,
    challengers: dict[date, str],
    log: dg.DagsterLogManager,
) -> pl.DataFrame:
    """The challenger's book of each session of ``challengers`` through the live decision
    (:func:`decide_books` of the live method): its own views, its own previous book as the
    book held, the drawdown rule on its own realised returns."""
    days = sorted(challengers)
    inputs = allocation_inputs(store, policy, days[0], next_trading_day(days[-1]), views, set(days))
    frames: list[pl.DataFrame] = []
    version, held, history = None, None, pl.DataFrame()
    for day in inputs.days:
        if challengers[day] != version:
            version = challengers[day]
            held, history = _shadow_book_reference(store, day, version)
        today = inputs_of_day(
            day, inputs, {} if held is None else {policy.live_method: held}, policy
        )
        drawdown = current_drawdown(realised_book_returns(history, inputs.panel, day))
        books = decide_books(
            today, policy, held=held, drawdown=drawdown, methods=[policy.live_method]
        )
        book = books.weights.select("date", "ticker", "weight").with_columns(
            pl.lit(version).alias("model_version")
        )
        status = books.status.row(0, named=True)
        log.info(f"{day}: shadow book of {version}: {status['status']}, {book.height} names")
        if status["feasible"]:
            held = books.book(policy.live_method)
            history = pl.concat([history, book], how="diagonal_relaxed")
            frames.append(book)
    if not frames:
        return pl.DataFrame(schema=table_schema("shadow_weights").polars_schema)
    return pl.concat(frames)


@dg.asset(
    group_name="portfolio",
    kinds={"polars", "cvxpy"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["shadow_predictions", "validation_scores", raw_bars, universe],
)
def shadow_weights(
    context: dg.AssetExecutionContext,
    config: MLViewsConfig,
    store: Store,
    portfolio_policy: PortfolioPolicy,
) -> dg.MaterializeResult:
    """The challenger's book of each session it shadows: its scores calibrated on its own
    out-of-sample history (as ``ml_views``), then the live method through the live decision
    code, against its own previous book. Stored beside the champion's, never sent to a broker;
    during a canary ``target_weights`` blends it into the live book."""
    start, end = partition_dates(context)
    scores = store.read(
        "shadow_predictions",
        start,
        end,
        columns=["ticker", "date", "score_ensemble", "model_week", "model_version"],
    )
    book = pl.DataFrame(schema=table_schema("shadow_weights").polars_schema)
    if not scores.is_empty():
        challengers = dict(scores.select("date", "model_version").unique().iter_rows())
        views = calibrated_views(store, scores.drop("model_version"), config)
        book = shadow_books(store, portfolio_policy, views, challengers, context.log)
    written = store.write_partition("shadow_weights", book, start, end)
    latest = book.filter(pl.col("date") == pl.col("date").max())
    return dg.MaterializeResult(
        metadata={
            "rows": written,
            "sessions": book["date"].n_unique(),
            "model_versions": sorted(book["model_version"].unique().to_list()),
            "latest_names": latest.height,
            "latest_invested": float(latest["weight"].sum()),
            **(date_range_metadata(book) if book.height else {}),
            "latest_book": preview(latest.sort("weight", descending=True), rows=20),
        }
    )


def _target_weights_metadata(
    weights: pl.DataFrame, written: int, days: int, policy: PortfolioPolicy
) -> dict[str, Any]:
    latest_live = weights.filter(pl.col("is_live") & (pl.col("date") == pl.col("date").max()))
    names = (
        weights.group_by("method", "date")
        .len()
        .group_by("method")
        .agg(pl.col("len").mean().alias("mean_names"))
    )
    return {
        "rows": written,
        "days": days,
        **policy_methods_metadata(policy),
        "live_names": latest_live.height,
        "live_invested": float(latest_live["weight"].sum()),
        "mean_names_by_method": dg.MetadataValue.json(
            {m: round(float(n), 1) for m, n in names.sort("method").iter_rows()}
        ),
        **date_range_metadata(weights),
        "live_book": preview(latest_live.sort("weight", descending=True), rows=20),
    }


def _allocation_status_metadata(
    status: pl.DataFrame, written: int, days: int, policy: PortfolioPolicy
) -> dict[str, Any]:
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
    live = status.filter(pl.col("is_live"))
    return {
        "rows": written,
        **policy_methods_metadata(policy),
        "infeasible_books": infeasible.height,
        "live_infeasible_days": int((~live["feasible"]).sum()),
        "live_risk_reducing_days": int(live["risk_reducing"].sum()),
        "infeasible": preview(infeasible.select("date", "method", "status"), rows=20),
        "methods_summary": preview(summary, rows=len(policy.methods)),
        "seconds_per_day": float(status["seconds"].sum()) / days,
        **date_range_metadata(status),
    }


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "target_weights",
            deps=[ml_views, raw_bars, universe, shadow_weights, "model_deployments"],
            kinds={"polars", "cvxpy"},
            description="Every allocation method's book for each day, one row per method and "
            "held ticker; the policy's live method is flagged ``is_live`` (during a canary, "
            "blended with the challenger's shadow book).",
        ),
        dg.AssetSpec(
            "allocation_status",
            deps=[ml_views, raw_bars, universe, shadow_weights, "model_deployments"],
            kinds={"polars", "cvxpy"},
            description="One row per day and method: feasible or not with the solver's reason, "
            "names, invested, turnover, ex-ante volatility, seconds, stopped names and whether "
            "the live book may only reduce risk.",
        ),
    ],
    group_name="portfolio",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def target_weights(
    context: dg.AssetExecutionContext,
    store: Store,
    portfolio_policy: PortfolioPolicy,
    broker: Broker,
) -> Iterator[dg.MaterializeResult]:
    """Every allocation method's book for each day (one row per method and held ticker),
    fitted on the last ``lookback_sessions`` of returns and the day's ML views; the policy's
    live method is flagged ``is_live``. Days run in order, each starting from the previous
    day's books (the Markowitz turnover cap and costs). Infeasible books are stored in
    ``allocation_status`` with the solver's reason and checked by ``live_book_is_feasible``.
    The live method's turnover is measured against the book the paper account holds at the
    close (after fills, lots and the ADV cap) and, while the account's NAV drawdown is beyond
    the policy's maximum, its trades may only shrink positions
    (``allocation_status.risk_reducing``); the backtest replays the same decision
    (``portfolio/decision.py``). On a canary session (``model_deployments``) the live book is
    blended with the challenger's ``shadow_weights`` at the canary's share."""
    portfolio_policy.check_consistent()
    start, end = partition_dates(context)
    inputs = allocation_inputs(store, portfolio_policy, start, end)
    # what traded before the run's first session is held at its close: the broker's answers first
    refresh_open_orders(store, broker.client(store))
    canaries = canaries_of(store, start, end)
    weights, status, references = _allocate_days(
        store, inputs, portfolio_policy, start, broker.initial_cash, context.log, canaries
    )
    written = store.write_partition("target_weights", weights, start, end)
    statuses = store.write_partition("allocation_status", status, start, end)
    days = len(inputs.days)
    yield dg.MaterializeResult(
        asset_key="target_weights",
        metadata=_target_weights_metadata(weights, written, days, portfolio_policy)
        | {
            "live_reference": dg.MetadataValue.json(references),
            "canary_sessions": len(canaries),
        },
    )
    yield dg.MaterializeResult(
        asset_key="allocation_status",
        metadata=_allocation_status_metadata(status, statuses, days, portfolio_policy),
    )
