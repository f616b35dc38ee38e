"""One day's books: every allocation method fitted on the same returns window and views.

Shared by the ``target_weights`` asset and the backtest, so what is backtested is what runs.

Inputs of a day ``d`` (all known at d's close):

- the returns window: the last ``lookback_sessions`` sessions of simple daily returns up to and
  including ``d``, restricted to the tickers with a return on every one of them (a ticker with
  a gap, or listed within the window, sits the day out rather than being given made-up
  returns);
- the benchmark's returns over the same sessions; its mean is the prior's expected daily
  benchmark return ``mu_b``;
- the ML views of ``d`` (``ml_views``): expected daily returns IN EXCESS of the benchmark and
  one confidence. The methods that use views see absolute expected returns
  ``mu_b + excess``: Black-Litterman as absolute views over the empirical prior, the
  constrained Markowitz as its ``mu`` (names without a view get ``mu_b``, no edge);
- each method's previous weights (the turnover constraint and cost of the Markowitz book are
  against its own previous book, which is the live book when it is the live method).

Each method's estimator is built by the registry (``methods.py``) from these inputs and the
policy. Every method reports feasibility; a feasible book is re-checked against the hard
constraints it claims (its ``claimed_violations``), and one that fails is reported infeasible,
not passed on.

Past the policy's maximum drawdown the live book may only reduce risk: its method's book is
cut back to :func:`risk_reducing` trades against yesterday's live book (status
``risk_reducing``), which the ``live_book_only_reduces_risk_beyond_max_drawdown`` check guards.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from quant_assets.portfolio.allocation import Allocation, MarkowitzProblems, check_constraints
from quant_assets.portfolio.covariance import RollingLedoitWolf
from quant_assets.portfolio.methods import build_estimator
from quant_assets.risk.measures import stop_loss_breaches
from quant_core.metrics import ex_ante_volatility, turnover
from resources.portfolio_policy import PortfolioPolicy

# below this many sessions a covariance of hundreds of names is mostly noise
MIN_WINDOW_SESSIONS = 60
WEIGHT_TOL = 1e-6


class InsufficientReturnsError(ValueError):
    """Too few sessions of returns before a day to build its books."""


def returns_panel(bars: pl.DataFrame) -> pl.DataFrame:
    """Wide simple daily returns from ``ticker, date, adj_close`` bars: a ``date`` column and
    one column per ticker, sorted by date. Consecutive STORED sessions are compared, so a
    ticker missing a session has a null return on that session and on the next one."""
    prices = bars.select("date", "ticker", "adj_close").pivot(
        on="ticker", index="date", values="adj_close"
    )
    prices = prices.sort("date")
    tickers = [c for c in prices.columns if c != "date"]
    return prices.select(
        "date", *((pl.col(t) / pl.col(t).shift(1) - 1.0).alias(t) for t in tickers)
    ).slice(1)


@dataclass(frozen=True)
class DayInputs:
    """What every method of one day is fitted on (see the module docstring)."""

    day: Any
    returns: pd.DataFrame
    benchmark: pd.Series
    sectors: pd.Series
    views: pl.DataFrame | None
    previous: dict[str, pd.Series]
    stopped: tuple[str, ...] = ()
    # Ledoit-Wolf of ``returns`` when a caller keeps it from running sums (the daily fast path)
    covariance: pd.DataFrame | None = None
    # the constrained Markowitz problems compiled once, kept by the caller across days
    problems: MarkowitzProblems | None = None

    @property
    def benchmark_mean(self) -> float:
        return float(self.benchmark.mean())

    def expected_returns(self) -> pd.Series:
        """``mu_b + excess view`` per ticker of the window (``mu_b`` without a view)."""
        mu = pd.Series(self.benchmark_mean, index=self.returns.columns, dtype=np.float64)
        if self.views is not None and not self.views.is_empty():
            excess = pd.Series(
                self.views["expected_return_daily"].to_numpy(),
                index=self.views["ticker"].to_list(),
            )
            excess = excess[excess.index.isin(mu.index)]
            mu[excess.index] += excess
        return mu


def _market_window(
    panel: pl.DataFrame, day: Any, benchmark: str, lookback_sessions: int
) -> pl.DataFrame:
    """The last ``lookback_sessions`` sessions up to ``day`` on which the benchmark has a
    return. A session without one (its bar missing, or the bar before it) is a gap in the
    market's record: it leaves every window, never imputed; ``day`` itself must have one."""
    history = panel.filter(pl.col("date") <= day)
    if history.is_empty() or history["date"].max() != day:
        raise InsufficientReturnsError(f"{day}: no bars stored for this session")
    if benchmark not in history.columns:
        raise InsufficientReturnsError(f"{day}: no bars of the benchmark {benchmark} stored")
    if history[benchmark][-1] is None:
        raise InsufficientReturnsError(f"{day}: benchmark {benchmark} has no return this session")
    window = history.filter(pl.col(benchmark).is_not_null()).tail(lookback_sessions)
    if window.height < MIN_WINDOW_SESSIONS:
        raise InsufficientReturnsError(
            f"{day}: {window.height} sessions of returns stored up to this day, "
            f"{MIN_WINDOW_SESSIONS} needed (lookback {lookback_sessions})"
        )
    return window


def day_inputs(
    day: Any,
    panel: pl.DataFrame,
    benchmark: str,
    sectors: pd.Series,
    views: pl.DataFrame | None,
    previous: dict[str, pd.Series],
    lookback_sessions: int,
    stop_loss_multiple: float | None = None,
    stop_loss_window: int = 5,
    covariance: RollingLedoitWolf | None = None,
    problems: MarkowitzProblems | None = None,
) -> DayInputs:
    """The returns window of ``day`` from ``returns_panel`` output (which must hold the
    benchmark's column) and the other inputs, checked. Sessions without a benchmark return
    are left out of the window (``_market_window``); a ticker needs a return on every session
    of the window to be investable that day.

    With ``stop_loss_multiple``, names whose last ``stop_loss_window``-session loss is beyond
    that many times their window volatility (:func:`~quant_assets.risk.measures.
    stop_loss_breaches`, as if held long) are left out of every book of the day (``stopped``):
    the construction honours the stop-loss limit that ``live_positions_within_stop_loss``
    guards, so a stopped position is sold rather than the day's orders blocked.

    With ``covariance`` (kept across days by the caller), the window's Ledoit-Wolf covariance
    of the investable names comes from its running sums (``DayInputs.covariance``), equal to
    re-estimating it from the window; with ``problems``, the constrained Markowitz re-solves the
    problems compiled on earlier days."""
    window = _market_window(panel, day, benchmark, lookback_sessions)
    investable = [
        c
        for c in window.columns
        if c not in ("date", benchmark) and c in sectors.index and window[c].null_count() == 0
    ]
    if len(investable) < 2:
        raise InsufficientReturnsError(f"{day}: fewer than 2 tickers with a full window")
    stopped: tuple[str, ...] = ()
    if stop_loss_multiple is not None:
        hits = stop_loss_breaches(
            investable,
            window.select(investable).to_numpy(),
            np.ones(len(investable)),
            stop_loss_multiple,
            stop_loss_window,
        )
        stopped = tuple(hits["ticker"].to_list())
        investable = [t for t in investable if t not in set(stopped)]
    frame = window.select(investable).to_pandas()
    frame.index = pd.Index(window["date"].to_list(), name="date")
    bench = pd.Series(window[benchmark].to_numpy(), index=frame.index, name=benchmark)
    sigma = None if covariance is None else covariance.covariance(window, investable)
    return DayInputs(
        day, frame, bench, sectors.reindex(investable), views, previous, stopped, sigma, problems
    )


def risk_reducing(target: pd.Series, previous: pd.Series | None) -> pd.Series:
    """``target`` with every weight kept between 0 and its ``previous`` value: positions move
    toward the target but never grow, flip sign or open (the rest is cash). Each |weight| is at
    most the target's, so the caps the target met still hold, and the trade is never larger
    than the target's."""
    before = previous if previous is not None else pd.Series(dtype=np.float64)
    before = before.reindex(target.index, fill_value=0.0).astype(np.float64)
    return target.clip(lower=np.minimum(before, 0.0), upper=np.maximum(before, 0.0))


@dataclass(frozen=True)
class DayBooks:
    """``weights``: date, method, ticker, weight, is_live (non-zero weights of feasible books);
    ``status``: one row per method (the ``allocation_status`` table's columns)."""

    weights: pl.DataFrame
    status: pl.DataFrame

    def book(self, method: str) -> pd.Series | None:
        rows = self.weights.filter(pl.col("method") == method)
        if rows.is_empty():
            return None
        return pd.Series(rows["weight"].to_numpy(), index=rows["ticker"].to_list())


_EMPTY_WEIGHTS_SCHEMA = {
    "date": pl.Date,
    "method": pl.String,
    "ticker": pl.String,
    "weight": pl.Float64,
    "is_live": pl.Boolean,
}


@dataclass(frozen=True)
class _MethodBook:
    """One method's fitted book of the day, checked, before it becomes rows."""

    method: str
    is_live: bool
    feasible: bool
    status: str
    weights: pd.Series
    reducing: bool
    seconds: float


def _fit_method(
    method: str, inputs: DayInputs, policy: PortfolioPolicy, live_risk_reducing: bool
) -> tuple[_MethodBook, Allocation]:
    """Build and fit ``method``'s estimator; a feasible book is re-checked against what its
    method claims, and the live book is cut back to risk-reducing trades when asked."""
    started = time.perf_counter()
    model = build_estimator(method, inputs, policy).fit(inputs.returns)
    seconds = time.perf_counter() - started
    feasible = bool(model.feasible_)
    status = str(model.status_)
    if feasible:
        violations = model.claimed_violations()
        if violations:
            feasible = False
            status = f"{status}; violated: {'; '.join(violations)}"
    is_live = method == policy.live_method
    weights = model.weights_
    reducing = feasible and is_live and live_risk_reducing
    if reducing:
        weights = risk_reducing(weights, inputs.previous.get(method))
        status = f"{status}; risk-reducing only (drawdown beyond the maximum)"
        violations = check_constraints(weights, long_only=policy.long_only)
        if violations:
            feasible = False
            status = f"{status}; violated: {'; '.join(violations)}"
    book = _MethodBook(method, is_live, feasible, status, weights, reducing, seconds)
    return book, model


def _status_row(book: _MethodBook, model: Allocation, inputs: DayInputs) -> dict[str, Any]:
    """The ``allocation_status`` row of one method's book."""
    held = _held(book)
    traded = turnover(held, inputs.previous.get(book.method)) if book.feasible else None
    ex_ante = None
    if book.feasible:
        # the same Ledoit-Wolf covariance the Markowitz book is constrained with
        sigma = getattr(model, "covariance_", None)
        if sigma is None:
            sigma = inputs.returns.cov()
        w = book.weights.reindex(sigma.index).fillna(0.0).to_numpy()
        ex_ante = ex_ante_volatility(w, sigma.to_numpy())
    return {
        "date": inputs.day,
        "method": book.method,
        "is_live": book.is_live,
        "feasible": book.feasible,
        "status": book.status,
        "names": int(held.size),
        "invested": float(held.sum()) if book.feasible else None,
        "turnover": traded,
        "ex_ante_vol": ex_ante,
        "seconds": book.seconds,
        "stopped": len(inputs.stopped),
        "risk_reducing": book.reducing,
    }


def _held(book: _MethodBook) -> pd.Series:
    """The non-zero weights of a feasible book (none of an infeasible one)."""
    if not book.feasible:
        return book.weights.iloc[:0]
    return book.weights[book.weights.abs() > WEIGHT_TOL]


def _weight_rows(book: _MethodBook, day: Any) -> pl.DataFrame:
    held = _held(book)
    return pl.DataFrame(
        {"ticker": [str(t) for t in held.index], "weight": held.to_numpy(dtype=np.float64)},
        # typed: an all-cash book has no rows
        schema={"ticker": pl.String, "weight": pl.Float64},
    ).with_columns(
        pl.lit(day).alias("date"),
        pl.lit(book.method).alias("method"),
        pl.lit(book.is_live).alias("is_live"),
    )


def allocate_day(
    inputs: DayInputs,
    policy: PortfolioPolicy,
    methods: Sequence[str] | None = None,
    live_risk_reducing: bool = False,
) -> DayBooks:
    """Fit every method of ``methods`` (default ``policy.methods``) on ``inputs``; with
    ``live_risk_reducing`` (the live book is past its maximum drawdown) the live method's book
    is cut back to :func:`risk_reducing` trades against its previous book."""
    weight_frames: list[pl.DataFrame] = []
    status_rows: list[dict[str, Any]] = []
    for method in policy.methods if methods is None else methods:
        book, model = _fit_method(method, inputs, policy, live_risk_reducing)
        status_rows.append(_status_row(book, model, inputs))
        if book.feasible:
            weight_frames.append(_weight_rows(book, inputs.day))
    columns = list(_EMPTY_WEIGHTS_SCHEMA)
    weights_frame = (
        pl.concat(weight_frames).select(columns)
        if weight_frames
        else pl.DataFrame(schema=_EMPTY_WEIGHTS_SCHEMA)
    )
    return DayBooks(weights_frame, pl.DataFrame(status_rows))
