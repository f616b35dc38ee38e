"""ML views for Black-Litterman: model scores -> calibrated expected excess returns + confidences.

The ensemble score of a ticker (a weighted mean of within-date ranks, in [-0.5, 0.5]) has no
return scale of its own. :class:`ScoreCalibrator` gives it one from the model's own
out-of-sample history of ``(date, ticker, score, label)`` rows, where ``label`` is the realised
5-session forward return in excess of the benchmark (:mod:`quant_assets.features.labels`).

Mapping (cross-sectional, Fama-MacBeth style). For every history date t with at least
``min_names`` scored and labelled tickers, the OLS slope of the label on the score within that
date's cross-section is

    b_t = sum_i (s_it - mean_t s)(y_it - mean_t y) / sum_i (s_it - mean_t s)^2

and the calibrated slope is ``b = max(mean_t b_t, 0)``. A day's expected 5-session excess return
of ticker i is then

    mu5_i = b * (s_i - mean(s))

(the score is centred on the day's cross-section). Why this mapping:

* per-date slopes remove the market's common move on each date, which the score never predicted
  (the model ranks names against each other), so only relative (cross-sectional) information is
  turned into returns and the views carry no market-timing bet;
* it is monotone non-decreasing in the score by construction; a negative average slope means
  the model ranks backwards out-of-sample and its views are set to zero rather than flipped
  (the same rule the ensemble applies to a model with negative Rank ICIR);
* averaging slopes over dates weights every date equally, as the daily rebalance does.

Horizon. The label is a 5-session (``horizon``) simple return; the daily expected excess return
handed to the optimiser is its geometric per-session equivalent

    mu1_i = (1 + mu5_i) ** (1 / horizon) - 1

so that compounding it over ``horizon`` sessions gives back ``mu5_i``.

Confidence (Idzorek, in [0, 1], one value shared by every view of the day, since skill is a
property of the model and not of a ticker). From the per-date Spearman Rank IC series:

    confidence = clip(mean_IC / full_confidence_ic, 0, 1) * max(2 * Phi(t) - 1, 0)
    t          = ICIR * sqrt(n_dates / horizon),   ICIR = mean_IC / std_IC

The first factor is the size of the skill relative to an IC treated as certain
(``full_confidence_ic``, default 0.10, exceptional for daily equity ranks); the second is how sure
the history is that the IC is positive at all: ``2 * Phi(t) - 1`` is 0 at t = 0 and tends to 1.
Consecutive 5-session labels overlap, so only about ``n_dates / horizon`` of the IC observations
are independent; the t-statistic uses that effective count instead of ``n_dates``. ICIR here is
per date and not annualised.

Views are written in skfolio's ``BlackLitterman`` format, one absolute view per ticker:
``"TICKER == value"`` with the daily expected excess return as value (plus the benchmark's
expected daily return when the prior is one of total returns, see :meth:`ScoreCalibrator.views`),
and the confidences as a
fresh float64 array (skfolio turns an integer array into a NaN posterior and modifies a float one
in place, so every call builds a new one).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
from scipy.stats import norm
from sklearn.base import BaseEstimator

from quant_core.conventions import LABEL_HORIZON_SESSIONS


def view_strings(
    tickers: list[str], excess_daily: list[float], benchmark_return: float = 0.0
) -> list[str]:
    """skfolio absolute views ``"TICKER == mu"`` with ``mu = benchmark_return + excess``."""
    return [
        f"{ticker} == {benchmark_return + float(value)!r}"
        for ticker, value in zip(tickers, excess_daily, strict=True)
    ]


class InsufficientHistoryError(ValueError):
    """The out-of-sample history is too short to calibrate the scores."""


class ScoreCalibrator(BaseEstimator):
    """Map model scores to expected excess returns and Idzorek confidences (see module doc).

    Parameters
    ----------
    horizon : int
        Sessions the label spans (5); used for the daily conversion and the overlap correction.
    min_dates : int
        Usable history dates needed to fit; fewer raise :class:`InsufficientHistoryError`.
    min_names : int
        Tickers with both a score and a label a date needs to count as usable.
    full_confidence_ic : float
        Mean Rank IC treated as full (1.0) confidence before the significance factor.

    Fitted attributes
    -----------------
    slope_ : float
        ``max(mean_t b_t, 0)``: 5-session excess return per unit of (centred) score.
    raw_slope_ : float
        ``mean_t b_t`` before the non-negativity clip.
    mean_rank_ic_, rank_icir_ : float
        Mean and mean/std of the per-date Spearman Rank IC.
    confidence_ : float
        The Idzorek confidence shared by every view.
    n_dates_ : int
        Usable history dates.
    per_date_ : pl.DataFrame
        ``date, n, slope, rank_ic`` of every usable date.
    """

    def __init__(
        self,
        horizon: int = LABEL_HORIZON_SESSIONS,
        min_dates: int = 60,
        min_names: int = 10,
        full_confidence_ic: float = 0.10,
    ) -> None:
        self.horizon = horizon
        self.min_dates = min_dates
        self.min_names = min_names
        self.full_confidence_ic = full_confidence_ic

    def fit(self, history: pl.DataFrame, y: Any = None) -> ScoreCalibrator:
        """Fit on ``history`` with columns ``date, ticker, score, label`` (``y`` is unused)."""
        if self.horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {self.horizon}")
        if self.min_names < 3:
            raise ValueError(f"min_names must be at least 3, got {self.min_names}")
        if self.min_dates < 2:
            raise ValueError(f"min_dates must be at least 2, got {self.min_dates}")
        if not self.full_confidence_ic > 0:
            raise ValueError(f"full_confidence_ic must be > 0, got {self.full_confidence_ic}")
        missing = {"date", "ticker", "score", "label"} - set(history.columns)
        if missing:
            raise ValueError(f"history lacks columns {sorted(missing)}")

        s_c = pl.col("score") - pl.col("score").mean().over("date")
        y_c = pl.col("label") - pl.col("label").mean().over("date")
        per_date = (
            history.lazy()
            .select("date", pl.col("score").cast(pl.Float64), pl.col("label").cast(pl.Float64))
            .filter(pl.col("score").is_finite() & pl.col("label").is_finite())
            .filter(pl.len().over("date") >= self.min_names)
            .with_columns(s_c=s_c, y_c=y_c)
            .group_by("date")
            .agg(
                n=pl.len(),
                sxy=(pl.col("s_c") * pl.col("y_c")).sum(),
                sxx=(pl.col("s_c") ** 2).sum(),
                rank_ic=pl.corr("score", "label", method="spearman"),
            )
            # a date whose scores (or labels) are all tied has no slope and no rank IC
            .filter((pl.col("sxx") > 0) & pl.col("rank_ic").is_finite())
            .select("date", "n", slope=pl.col("sxy") / pl.col("sxx"), rank_ic="rank_ic")
            .sort("date")
            .collect()
        )
        n_dates = per_date.height
        if n_dates < self.min_dates:
            raise InsufficientHistoryError(
                f"score calibration needs at least {self.min_dates} history dates with "
                f">= {self.min_names} scored and labelled tickers; got {n_dates} "
                f"(out of {history['date'].n_unique() if history.height else 0} dates given)"
            )

        raw_slope = float(per_date["slope"].mean())  # type: ignore[arg-type]
        ic = per_date["rank_ic"].to_numpy()
        mean_ic = float(ic.mean())
        std_ic = float(ic.std(ddof=1))
        icir = mean_ic / std_ic if std_ic > 0 else math.copysign(math.inf, mean_ic)
        t_stat = icir * math.sqrt(n_dates / self.horizon)

        self.per_date_ = per_date
        self.n_dates_ = n_dates
        self.raw_slope_ = raw_slope
        self.slope_ = max(raw_slope, 0.0)
        self.mean_rank_ic_ = mean_ic
        self.rank_icir_ = icir
        magnitude = min(max(mean_ic / self.full_confidence_ic, 0.0), 1.0)
        significance = max(2.0 * float(norm.cdf(t_stat)) - 1.0, 0.0)
        self.confidence_ = magnitude * significance
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "slope_"):
            raise RuntimeError("ScoreCalibrator is not fitted: call fit(history) first")

    def to_daily(self, five_session: pl.Expr | float) -> Any:
        """Geometric per-session equivalent of a ``horizon``-session simple return."""
        return (1.0 + five_session) ** (1.0 / self.horizon) - 1.0

    def predict(self, scores: pl.DataFrame) -> pl.DataFrame:
        """One day's ``ticker, score`` -> ``ticker, score, expected_return_horizon,
        expected_return_daily, confidence`` (rows with a null/NaN score are dropped)."""
        self._check_fitted()
        missing = {"ticker", "score"} - set(scores.columns)
        if missing:
            raise ValueError(f"scores lacks columns {sorted(missing)}")
        if "date" in scores.columns and scores["date"].n_unique() > 1:
            raise ValueError("predict takes one day's scores; got several dates")
        day = scores.select("ticker", pl.col("score").cast(pl.Float64)).filter(
            pl.col("score").is_finite()
        )
        if day["ticker"].is_duplicated().any():
            raise ValueError("duplicate tickers in scores")
        horizon_return = self.slope_ * (pl.col("score") - pl.col("score").mean())
        return day.with_columns(expected_return_horizon=horizon_return).with_columns(
            expected_return_daily=self.to_daily(pl.col("expected_return_horizon")),
            confidence=pl.lit(self.confidence_, dtype=pl.Float64),
        )

    def views(
        self, scores: pl.DataFrame, benchmark_return: float = 0.0
    ) -> tuple[list[str], np.ndarray]:
        """skfolio ``BlackLitterman`` views ``["TICKER == daily_mu", ...]`` and a fresh float64
        confidence array in the same order (pass both as ``views=``/``view_confidences=``).

        The calibrated values are daily returns IN EXCESS OF THE BENCHMARK (the label's
        definition), so they suit a prior fitted on benchmark-excess returns, the default
        (``benchmark_return=0``). For a prior of total returns pass the prior's expected daily
        benchmark return: each view becomes ``benchmark_return + expected_return_daily`` (the
        label is a difference of simple returns, so the offset is additive).
        """
        if not math.isfinite(benchmark_return):
            raise ValueError(f"benchmark_return must be finite, got {benchmark_return}")
        predicted = self.predict(scores)
        views = view_strings(
            predicted["ticker"].to_list(),
            predicted["expected_return_daily"].to_list(),
            benchmark_return,
        )
        confidences = np.array(predicted["confidence"].to_numpy(), dtype=np.float64, copy=True)
        return views, confidences
