"""Backtest performance metrics, including the Probabilistic and Deflated Sharpe Ratios.

Conventions (every function):

* ``returns`` are simple per-period (daily) portfolio returns, net of costs, as a 1-D array or
  Polars/pandas Series; NaNs are dropped. ``periods_per_year`` defaults to 252 sessions.
* Sharpe-type ratios use the per-period mean excess return over the sample standard deviation
  (``ddof=1``); the annualised figures multiply by ``sqrt(periods_per_year)``. ``risk_free`` is a
  per-period rate (0 when the returns are already excess returns).
* Drawdowns and the maximum drawdown are positive fractions of the running peak of wealth
  (0.2 = 20% below the peak), wealth starting at 1 before the first return, so a first-day
  loss is a drawdown.
* Turnover is the L1 norm of the weight change, ``sum_i |w_t,i - w_pre,i|`` (buys plus sells,
  so selling 10% of A to buy 10% of B is 0.20); the same measure the daily turnover cap uses.
* The PSR/DSR work on per-period (not annualised) Sharpe ratios, the sample skewness
  ``g3 = m3 / m2^1.5`` and the PLAIN (not excess) kurtosis ``g4 = m4 / m2^2`` (3 for a normal),
  with population moments ``m_k = mean((r - mean r)^k)`` as in Bailey & López de Prado.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import ArrayLike
from scipy.stats import norm

from quant_core.conventions import TRADING_DAYS
from quant_core.metrics import max_drawdown, realised_volatility


def _clean(returns: ArrayLike) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64).ravel()
    return r[np.isfinite(r)]


def cagr(returns: ArrayLike, periods_per_year: int = TRADING_DAYS) -> float:
    """Compound annual growth rate: ``prod(1 + r) ** (periods_per_year / T) - 1``."""
    r = _clean(returns)
    if r.size == 0:
        return math.nan
    wealth = float(np.prod(1.0 + r))
    if wealth <= 0:
        return -1.0  # wiped out: no real root of a non-positive wealth
    return wealth ** (periods_per_year / r.size) - 1.0


def sharpe_ratio(
    returns: ArrayLike,
    risk_free: float = 0.0,
    periods_per_year: int | None = TRADING_DAYS,
) -> float:
    """``mean(r - rf) / std(r, ddof=1)``, times ``sqrt(periods_per_year)`` unless it is None."""
    r = _clean(returns)
    if r.size < 2:
        return math.nan
    sd = float(r.std(ddof=1))
    if sd == 0:
        return math.nan
    sr = float(np.mean(r - risk_free)) / sd
    return sr if periods_per_year is None else sr * math.sqrt(periods_per_year)


def sortino_ratio(
    returns: ArrayLike, target: float = 0.0, periods_per_year: int = TRADING_DAYS
) -> float:
    """``mean(r - target) / DD * sqrt(periods_per_year)`` with the downside deviation
    ``DD = sqrt(mean(min(r - target, 0)^2))`` taken over ALL periods (Sortino & Price), so days
    above the target count as zero shortfall rather than being dropped."""
    r = _clean(returns)
    if r.size < 2:
        return math.nan
    excess = r - target
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2)))
    if downside == 0:
        return math.inf if excess.mean() > 0 else math.nan
    return float(excess.mean()) / downside * math.sqrt(periods_per_year)


def calmar_ratio(returns: ArrayLike, periods_per_year: int = TRADING_DAYS) -> float:
    """``CAGR / max drawdown`` over the whole sample (NaN without a drawdown)."""
    mdd = max_drawdown(returns)
    if not mdd > 0:
        return math.nan
    return cagr(returns, periods_per_year) / mdd


def hit_rate(returns: ArrayLike) -> float:
    """Share of periods with a strictly positive return (flat days count as misses)."""
    r = _clean(returns)
    return float(np.mean(r > 0)) if r.size else math.nan


def turnover(weights: ArrayLike, asset_returns: ArrayLike | None = None) -> np.ndarray:
    """Per-rebalance turnover ``sum_i |w_t,i - w_pre,i|`` of a ``(T, N)`` target-weight array.

    Row t holds the weights set at the close of period t; the first row's turnover is measured
    against an all-cash book (its gross exposure). Without ``asset_returns``, ``w_pre`` is the
    previous row. With a ``(T, N)`` array of the assets' simple returns (row t realised over
    period t, i.e. between rebalances t-1 and t), ``w_pre`` is the previous row DRIFTED by those
    returns, ``w_pre = w_{t-1} * (1 + r_t) / (1 + w_{t-1} . r_t)`` (the rest of the book held in
    cash at a zero return), which is what the trades at t must actually undo.
    """
    w = np.nan_to_num(np.atleast_2d(np.asarray(weights, dtype=np.float64)))
    prev = np.vstack([np.zeros((1, w.shape[1])), w[:-1]])
    if asset_returns is not None:
        r = np.nan_to_num(np.atleast_2d(np.asarray(asset_returns, dtype=np.float64)))
        if r.shape != w.shape:
            raise ValueError(f"asset_returns shape {r.shape} != weights shape {w.shape}")
        grown = prev * (1.0 + r)
        book = 1.0 + (prev * r).sum(axis=1, keepdims=True)
        prev = grown / book
    return np.abs(w - prev).sum(axis=1)


def sample_moments(returns: ArrayLike) -> tuple[float, float]:
    """Sample skewness and PLAIN kurtosis (population moments; normal -> (0, 3))."""
    r = _clean(returns)
    d = r - r.mean()
    m2 = float(np.mean(d**2))
    if m2 == 0:
        return math.nan, math.nan
    return float(np.mean(d**3)) / m2**1.5, float(np.mean(d**4)) / m2**2


def probabilistic_sharpe_ratio(
    sharpe: float,
    n_obs: int,
    skew: float,
    kurtosis: float,
    benchmark_sharpe: float = 0.0,
) -> float:
    """PSR (Bailey & López de Prado 2012): probability that the true Sharpe exceeds a benchmark,

        PSR = Phi[(SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2)]

    with per-period (non-annualised) ``sharpe`` SR and ``benchmark_sharpe`` SR*, ``n_obs`` T,
    skewness g3 and PLAIN kurtosis g4 (3 for normal returns; passing the excess kurtosis
    understates the Sharpe ratio's variance). NaN when the variance term is not positive.
    """
    if n_obs < 2:
        return math.nan
    variance = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not variance > 0:
        return math.nan
    z = (sharpe - benchmark_sharpe) * math.sqrt(n_obs - 1) / math.sqrt(variance)
    return float(norm.cdf(z))


def expected_max_sharpe_ratio(
    n_trials: float, trial_sharpe_std: float, trial_sharpe_mean: float = 0.0
) -> float:
    """Expected maximum of ``n_trials`` independent normal Sharpe estimates (False Strategy
    theorem, Bailey & López de Prado 2014):

        SR0 = mean + std * [(1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e))]

    with gamma the Euler-Mascheroni constant. In the units of ``trial_sharpe_std`` (per period
    for the DSR). One trial, or no dispersion, selects nothing: returns the mean.
    """
    if not n_trials >= 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if not trial_sharpe_std >= 0:
        raise ValueError(f"trial_sharpe_std must be >= 0, got {trial_sharpe_std}")
    if n_trials == 1 or trial_sharpe_std == 0:
        return trial_sharpe_mean
    gamma = float(np.euler_gamma)
    spread = (1.0 - gamma) * norm.ppf(1.0 - 1.0 / n_trials) + gamma * norm.ppf(
        1.0 - 1.0 / (n_trials * math.e)
    )
    return trial_sharpe_mean + trial_sharpe_std * float(spread)


def deflated_sharpe_ratio(
    sharpe: float,
    n_obs: int,
    skew: float,
    kurtosis: float,
    n_trials: float,
    trial_sharpe_std: float,
) -> float:
    """DSR (Bailey & López de Prado 2014): the PSR of the selected strategy against the
    expected maximum Sharpe of ``n_trials`` zero-skill trials whose per-period Sharpe ratios
    have standard deviation ``trial_sharpe_std``: ``PSR(SR0)`` with
    ``SR0 = expected_max_sharpe_ratio(n_trials, trial_sharpe_std)``. All Sharpe inputs are per
    period; ``kurtosis`` is plain. DSR >= 0.95 is the paper's significance bar."""
    sr0 = expected_max_sharpe_ratio(n_trials, trial_sharpe_std)
    return probabilistic_sharpe_ratio(sharpe, n_obs, skew, kurtosis, benchmark_sharpe=sr0)


def deflated_sharpe_ratio_from_returns(
    returns: ArrayLike, trial_sharpe_ratios: ArrayLike, risk_free: float = 0.0
) -> float:
    """DSR of ``returns`` selected among the trials whose per-period Sharpe ratios are given
    (their count is N, their sample std ``ddof=1`` the dispersion); NaN trials are dropped."""
    trials = _clean(trial_sharpe_ratios)
    if trials.size == 0:
        raise ValueError("trial_sharpe_ratios has no finite value")
    r = _clean(returns)
    skew, kurt = sample_moments(r)
    return deflated_sharpe_ratio(
        sharpe_ratio(r, risk_free, periods_per_year=None),
        r.size,
        skew,
        kurt,
        n_trials=trials.size,
        trial_sharpe_std=float(trials.std(ddof=1)) if trials.size > 1 else 0.0,
    )


@dataclass(frozen=True)
class PerformanceSummary:
    """Headline metrics of one return series (annualised with ``periods_per_year``)."""

    cagr: float
    volatility: float
    sharpe: float
    sortino: float
    max_drawdown: float
    calmar: float
    hit_rate: float
    mean_turnover: float
    psr: float
    dsr: float
    n_obs: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(
    returns: ArrayLike,
    weights: ArrayLike | None = None,
    trial_sharpe_ratios: ArrayLike | None = None,
    periods_per_year: int = TRADING_DAYS,
    asset_returns: ArrayLike | None = None,
) -> PerformanceSummary:
    """All metrics at once. ``mean_turnover`` is the mean per-rebalance turnover of
    ``weights`` (NaN without them); ``psr`` is against a zero Sharpe; ``dsr`` needs the
    per-period Sharpe ratios of every combination tried (NaN without them)."""
    r = _clean(returns)
    skew, kurt = sample_moments(r)
    sr = sharpe_ratio(r, periods_per_year=None)
    mean_turnover = math.nan if weights is None else float(turnover(weights, asset_returns).mean())
    dsr = (
        math.nan
        if trial_sharpe_ratios is None
        else deflated_sharpe_ratio_from_returns(r, trial_sharpe_ratios)
    )
    return PerformanceSummary(
        cagr=cagr(r, periods_per_year),
        volatility=realised_volatility(r, periods_per_year),
        sharpe=sharpe_ratio(r, periods_per_year=periods_per_year),
        sortino=sortino_ratio(r, periods_per_year=periods_per_year),
        max_drawdown=max_drawdown(r),
        calmar=calmar_ratio(r, periods_per_year),
        hit_rate=hit_rate(r),
        mean_turnover=mean_turnover,
        psr=probabilistic_sharpe_ratio(sr, r.size, skew, kurt),
        dsr=dsr,
        n_obs=int(r.size),
    )


def yearly_returns(returns: pl.DataFrame, column: str = "net_return") -> pl.DataFrame:
    """The calendar-year returns a portfolio manager reads: ``strategy`` and one column per
    year (``"2011"``...), each the compounded ``column`` (daily, ``backtest_returns``' rows) of
    the sessions of that year in the data; a year a strategy was not run is null."""
    by_year = returns.group_by("strategy", pl.col("date").dt.year().cast(pl.String).alias("year"))
    compounded = by_year.agg(((1.0 + pl.col(column)).product() - 1.0).alias("return"))
    return compounded.pivot(on="year", index="strategy", values="return", sort_columns=True).sort(
        "strategy"
    )


def costs_paid(returns: pl.DataFrame) -> pl.DataFrame:
    """``strategy, costs_paid``: each strategy's daily costs (fees and half-spreads, fractions
    of the day's NAV, ``backtest_returns.cost``) summed over the backtest."""
    return (
        returns.group_by("strategy").agg(pl.col("cost").sum().alias("costs_paid")).sort("strategy")
    )
