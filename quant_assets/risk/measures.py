"""Risk measures of a portfolio: VaR/CVaR, volatility, beta, concentration, Euler risk.

Plain functions over NumPy (or pandas, converted with ``np.asarray``) inputs, so the
``risk_metrics`` asset and the backtest can share them:

- ``asset_returns``: ``T x N`` daily SIMPLE returns, rows in date order, no missing values;
- ``weights``: ``N`` portfolio weights as fractions of NAV (what is not invested is cash at a
  zero return, so weights need not sum to one);
- ``benchmark_returns``: ``T`` daily simple returns of the benchmark, aligned with the rows.

Conventions, everywhere in this module and :mod:`quant_assets.risk.stress`:

- horizon one day; VaR and CVaR are LOSSES, reported POSITIVE, as fractions of NAV: at level
  ``alpha`` (0.95, 0.99) ``VaR = -q_{1-alpha}(r)``, the negated lower quantile of the portfolio
  return, and ``CVaR = -E[r | r <= -VaR]``, the mean loss beyond it (expected shortfall);
- annualisation, drawdowns, rolling Sharpe and ex-ante volatility as ``quant_core.metrics``
  defines them (drawdowns positive fractions of the running peak of wealth);
- the risk-free rate is zero unless passed, matching the zero-return cash of the weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from quant_core.conventions import TRADING_DAYS
from quant_core.metrics import (
    current_drawdown,
    ex_ante_volatility,
    max_drawdown,
    realised_volatility,
    rolling_sharpe,
)

VAR_LEVELS = (0.95, 0.99)

FloatArray = NDArray[np.float64]


def as_vector(x: ArrayLike, name: str) -> FloatArray:
    """``x`` as a float64 1-D array (pandas Series accepted); ``name`` is for the error."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def as_matrix(x: ArrayLike, name: str) -> FloatArray:
    """``x`` as a float64 2-D array (pandas DataFrame accepted); ``name`` is for the error."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be two-dimensional (T x N), got shape {arr.shape}")
    return arr


def _check_level(alpha: float) -> None:
    if not 0.5 < alpha < 1.0:
        raise ValueError(f"confidence level must lie in (0.5, 1), got {alpha}")


def portfolio_returns(asset_returns: ArrayLike, weights: ArrayLike) -> FloatArray:
    """Daily portfolio returns ``r_p = R w`` (cash earns zero, weights held fixed each day)."""
    r = as_matrix(asset_returns, "asset_returns")
    w = as_vector(weights, "weights")
    if r.shape[1] != w.shape[0]:
        raise ValueError(f"{r.shape[1]} assets in returns but {w.shape[0]} weights")
    return r @ w


# --- value at risk and expected shortfall -----------------------------------------------------


def var_normal(returns: ArrayLike, alpha: float = 0.95) -> float:
    """Parametric normal VaR: ``sigma * z_alpha - mu`` with ``z_alpha = Phi^-1(alpha)``.

    ``mu`` and ``sigma`` (ddof=1) are the sample moments of the daily portfolio returns.
    """
    _check_level(alpha)
    r = as_vector(returns, "returns")
    z = float(stats.norm.ppf(alpha))
    return float(r.std(ddof=1) * z - r.mean())


def cvar_normal(returns: ArrayLike, alpha: float = 0.95) -> float:
    """Parametric normal CVaR: ``sigma * phi(z_alpha) / (1 - alpha) - mu``."""
    _check_level(alpha)
    r = as_vector(returns, "returns")
    z = float(stats.norm.ppf(alpha))
    return float(r.std(ddof=1) * stats.norm.pdf(z) / (1.0 - alpha) - r.mean())


def _moments(r: FloatArray) -> tuple[float, float, float, float]:
    """Mean, std (ddof=1), skewness and EXCESS kurtosis (both bias-uncorrected, as in Riskfolio)."""
    return (
        float(r.mean()),
        float(r.std(ddof=1)),
        float(stats.skew(r)),
        float(stats.kurtosis(r, fisher=True)),
    )


def cornish_fisher_quantile(z: FloatArray | float, skew: float, ex_kurt: float) -> FloatArray:
    """Cornish-Fisher expansion of a standard normal quantile ``z``.

    ``z_cf = z + (z^2 - 1) S / 6 + (z^3 - 3z) K / 24 - (2 z^3 - 5z) S^2 / 36`` with skewness
    ``S`` and excess kurtosis ``K``; ``z_cf = z`` when both are zero.
    """
    z = np.asarray(z, dtype=np.float64)
    return (
        z
        + (z**2 - 1.0) * skew / 6.0
        + (z**3 - 3.0 * z) * ex_kurt / 24.0
        - (2.0 * z**3 - 5.0 * z) * skew**2 / 36.0
    )


def var_cornish_fisher(returns: ArrayLike, alpha: float = 0.95) -> float:
    """Modified (Cornish-Fisher) VaR: ``-(mu + sigma * z_cf)`` at the lower quantile ``z = -z_alpha``.

    A negative skew or a fat tail (positive excess kurtosis) pushes ``z_cf`` further left, so the
    VaR rises above the normal one; with zero skew and excess kurtosis it equals :func:`var_normal`.
    """
    _check_level(alpha)
    mu, sigma, skew, ex_kurt = _moments(as_vector(returns, "returns"))
    z = float(stats.norm.ppf(1.0 - alpha))
    return float(-(mu + sigma * cornish_fisher_quantile(z, skew, ex_kurt)))


def cvar_cornish_fisher(returns: ArrayLike, alpha: float = 0.95) -> float:
    """Expected shortfall of the Cornish-Fisher distribution, in closed form.

    The CF model says ``r = mu + sigma * f(Z)`` with ``f`` the polynomial of
    :func:`cornish_fisher_quantile` and ``Z`` standard normal; where ``f`` is increasing (the
    usual case for moderate skew/kurtosis) the worst ``1 - alpha`` of ``r`` are ``Z < z``,
    ``z = Phi^-1(1 - alpha)``. The truncated normal moments
    ``E[Z^k; Z<z]`` (``p``, ``-phi``, ``p - z phi``, ``-(z^2 + 2) phi``) give
    ``E[f(Z) | Z < z] = phi(z)/p * (-1 - z S/6 + (1 - z^2) K/24 - (1 - 2 z^2) S^2/36)``,
    and ``CVaR = -(mu + sigma * E[f(Z) | Z < z])``; it is :func:`cvar_normal` at ``S = K = 0``.
    """
    _check_level(alpha)
    mu, sigma, skew, ex_kurt = _moments(as_vector(returns, "returns"))
    p = 1.0 - alpha
    z = float(stats.norm.ppf(p))
    tail_mean = (
        float(stats.norm.pdf(z))
        / p
        * (
            -1.0
            - z * skew / 6.0
            + (1.0 - z**2) * ex_kurt / 24.0
            - (1.0 - 2.0 * z**2) * skew**2 / 36.0
        )
    )
    return float(-(mu + sigma * tail_mean))


def var_cvar_historical(returns: ArrayLike, alpha: float = 0.95) -> tuple[float, float]:
    """Historical-simulation VaR and CVaR of a return sample (also used on Monte Carlo draws).

    With ``k = ceil(T * (1 - alpha))`` worst returns ``r_(1) <= ... <= r_(k)``:
    ``VaR = -r_(k)`` (the empirical ``1 - alpha`` quantile, no interpolation) and
    ``CVaR = -mean(r_(1..k))``, so CVaR >= VaR always holds.
    """
    _check_level(alpha)
    r = as_vector(returns, "returns")
    # rounding first: 20 * (1 - 0.95) is 1.0000000000000009 in floating point, not 1
    k = int(np.ceil(round(r.size * (1.0 - alpha), 9)))
    if k < 1 or r.size == 0:
        raise ValueError("sample too short for this confidence level")
    worst = np.partition(r, k - 1)[:k]
    return float(-worst.max()), float(-worst.mean())


def simulate_portfolio_returns(
    asset_returns: ArrayLike,
    weights: ArrayLike,
    n_sims: int = 100_000,
    method: Literal["normal", "bootstrap"] = "normal",
    seed: int = 0,
) -> FloatArray:
    """Monte Carlo one-day portfolio returns.

    ``"normal"``: draws of a multivariate normal with the sample mean vector and covariance of
    the asset returns, so only the portfolio's mean ``w'mu`` and variance ``w'Sigma w`` matter
    (it converges to the parametric normal VaR, the check of the simulator). ``"bootstrap"``:
    rows (whole days, keeping the cross-asset dependence and fat tails) drawn with replacement.
    The seed is explicit so a day's figure is reproducible.
    """
    r = as_matrix(asset_returns, "asset_returns")
    w = as_vector(weights, "weights")
    rng = np.random.default_rng(seed)
    if method == "normal":
        # the portfolio is linear in the assets, so simulating w'R directly is exact and avoids
        # an N-dimensional draw of n_sims x N numbers
        mu = float(r.mean(axis=0) @ w)
        sigma = float(np.sqrt(max(float(w @ np.cov(r, rowvar=False, ddof=1) @ w), 0.0)))
        return mu + sigma * rng.standard_normal(n_sims)
    if method == "bootstrap":
        # resampling days of r @ w equals resampling rows of r then weighting, without an
        # n_sims x N intermediate (400 MB at 100k draws of 500 assets)
        return (r @ w)[rng.integers(0, r.shape[0], size=n_sims)]
    raise ValueError(f"unknown Monte Carlo method {method!r}")


def var_cvar_table(
    asset_returns: ArrayLike,
    weights: ArrayLike,
    levels: Sequence[float] = VAR_LEVELS,
    n_sims: int = 100_000,
    mc_method: Literal["normal", "bootstrap"] = "normal",
    seed: int = 0,
) -> pl.DataFrame:
    """One-day VaR and CVaR of the portfolio for every method and level.

    Columns ``method`` (normal, cornish_fisher, historical, monte_carlo), ``level``, ``var``,
    ``cvar``; losses positive, fractions of NAV.
    """
    rp = portfolio_returns(asset_returns, weights)
    sims = simulate_portfolio_returns(asset_returns, weights, n_sims, mc_method, seed)
    rows: list[dict[str, object]] = []
    for level in levels:
        hist = var_cvar_historical(rp, level)
        mc = var_cvar_historical(sims, level)
        rows += [
            {
                "method": "normal",
                "level": level,
                "var": var_normal(rp, level),
                "cvar": cvar_normal(rp, level),
            },
            {
                "method": "cornish_fisher",
                "level": level,
                "var": var_cornish_fisher(rp, level),
                "cvar": cvar_cornish_fisher(rp, level),
            },
            {"method": "historical", "level": level, "var": hist[0], "cvar": hist[1]},
            {"method": "monte_carlo", "level": level, "var": mc[0], "cvar": mc[1]},
        ]
    return pl.DataFrame(
        rows,
        schema={"method": pl.String, "level": pl.Float64, "var": pl.Float64, "cvar": pl.Float64},
    )


# --- volatility, beta, drawdown, Sharpe -------------------------------------------------------


def beta(returns: ArrayLike, benchmark_returns: ArrayLike) -> float:
    """OLS beta ``cov(r, b) / var(b)`` of a return series on the benchmark's."""
    r = as_vector(returns, "returns")
    b = as_vector(benchmark_returns, "benchmark_returns")
    if r.shape != b.shape:
        raise ValueError("returns and benchmark_returns must be aligned")
    bc = b - b.mean()
    return float(((r - r.mean()) @ bc) / (bc @ bc))


# --- concentration, sectors, Euler risk -------------------------------------------------------


def herfindahl(weights: ArrayLike) -> float:
    """Herfindahl index ``sum(w_i^2)`` of the weights as given (cash not included).

    1 for a single name, ``1/n`` for ``n`` equal weights summing to one; ``1/H`` is the
    effective number of positions.
    """
    w = as_vector(weights, "weights")
    return float(w @ w)


def top_n_weight(weights: ArrayLike, n: int = 10) -> float:
    """Sum of the ``n`` largest absolute weights (gross exposure of the biggest positions)."""
    w = np.abs(as_vector(weights, "weights"))
    if w.size <= n:
        return float(w.sum())
    return float(np.partition(w, w.size - n)[w.size - n :].sum())


def _by_sector(values: FloatArray, sectors: Sequence[str], name: str) -> pl.DataFrame:
    if len(sectors) != values.size:
        raise ValueError(f"{values.size} values but {len(sectors)} sectors")
    return (
        pl.DataFrame({"sector": list(sectors), name: values})
        .group_by("sector")
        .agg(pl.col(name).sum())
        .sort("sector")
    )


def sector_weights(weights: ArrayLike, sectors: Sequence[str]) -> pl.DataFrame:
    """Net weight per sector: columns ``sector``, ``weight``, sorted by sector."""
    return _by_sector(as_vector(weights, "weights"), sectors, "weight")


def euler_risk_contributions(weights: ArrayLike, cov: ArrayLike) -> FloatArray:
    """Euler contributions to annualised volatility: ``RC_i = w_i (Sigma w)_i / sigma_p``.

    ``Sigma`` is the DAILY covariance; results are annualised with ``sqrt(252)``. Volatility is
    homogeneous of degree one in ``w``, so ``sum(RC_i) = sigma_p`` (Euler's theorem), which is
    what makes them an additive risk decomposition.
    """
    w = as_vector(weights, "weights")
    s = as_matrix(cov, "cov")
    marginal = s @ w
    var = float(w @ marginal)
    if var <= 0.0:
        return np.zeros_like(w)
    return w * marginal / np.sqrt(var) * np.sqrt(TRADING_DAYS)


def sector_risk_contributions(
    weights: ArrayLike, cov: ArrayLike, sectors: Sequence[str]
) -> pl.DataFrame:
    """Euler volatility contributions summed by sector (columns ``sector``, ``risk_contribution``).

    They still add up to the portfolio's annualised volatility.
    """
    return _by_sector(euler_risk_contributions(weights, cov), sectors, "risk_contribution")


# --- rebalancing ------------------------------------------------------------------------------


def rebalance_cost(
    previous_weights: ArrayLike,
    target_weights: ArrayLike,
    cost_bps: float = 5.0,
    half_spread_bps: ArrayLike = 0.0,
) -> tuple[float, float]:
    """Turnover and transaction cost of a rebalance, both as fractions of NAV.

    ``turnover = sum |w_new - w_old|`` (buys plus sells, the quantity the 15% daily cap bounds);
    ``cost = sum |dw_i| * (cost_bps + half_spread_bps_i) / 1e4``: a proportional fee plus half
    the bid-ask spread paid on every traded unit. ``half_spread_bps`` is a scalar or one value
    per asset. Returns ``(turnover, cost)``.
    """
    old = as_vector(previous_weights, "previous_weights")
    new = as_vector(target_weights, "target_weights")
    if old.shape != new.shape:
        raise ValueError("previous_weights and target_weights must have the same length")
    traded = np.abs(new - old)
    per_unit = (cost_bps + np.asarray(half_spread_bps, dtype=np.float64)) / 1e4
    return float(traded.sum()), float((traded * per_unit).sum())


def summary_metrics(
    asset_returns: ArrayLike,
    weights: ArrayLike,
    benchmark_returns: ArrayLike,
    cov: ArrayLike | None = None,
    previous_weights: ArrayLike | None = None,
    cost_bps: float = 5.0,
    half_spread_bps: ArrayLike = 0.0,
) -> dict[str, float]:
    """The scalar risk figures of one book on one day, for the ``risk_metrics`` asset.

    The history is that of the CURRENT weights held fixed (what the book would have done), so
    realised volatility, beta, drawdowns and rolling Sharpe describe today's positions. ``cov``
    is the daily covariance the optimiser used (e.g. Ledoit-Wolf), the sample one when omitted;
    ``previous_weights`` None means the book starts from cash. Rolling Sharpe values are those
    of the last day, NaN when the history is shorter than the window.
    """
    r = as_matrix(asset_returns, "asset_returns")
    w = as_vector(weights, "weights")
    rp = portfolio_returns(r, w)
    sigma = np.cov(r, rowvar=False, ddof=1) if cov is None else as_matrix(cov, "cov")
    prev = np.zeros_like(w) if previous_weights is None else previous_weights
    turnover, cost = rebalance_cost(prev, w, cost_bps, half_spread_bps)
    last_sharpe = rolling_sharpe(rp).tail(1).fill_null(float("nan")).row(0, named=True)
    return {
        "realised_vol": realised_volatility(rp),
        "ex_ante_vol": ex_ante_volatility(w, sigma),
        "beta": beta(rp, benchmark_returns),
        "current_drawdown": current_drawdown(rp),
        "max_drawdown": max_drawdown(rp),
        **{k: float(v) for k, v in last_sharpe.items()},
        "herfindahl": herfindahl(w),
        "top10_weight": top_n_weight(w, 10),
        "turnover": turnover,
        "transaction_cost": cost,
    }


# --- position stop-loss -----------------------------------------------------------------------


def stop_loss_breaches(
    tickers: Sequence[str],
    asset_returns: ArrayLike,
    weights: ArrayLike,
    multiple: float = 3.0,
    window: int = 5,
    vol_sessions: int = 63,
) -> pl.DataFrame:
    """Held positions whose last ``window``-session return is a loss beyond ``multiple`` times
    their ``window``-session volatility.

    ``sigma_window = sqrt(window) * std`` of the daily returns over the ``vol_sessions``
    sessions BEFORE the last ``window`` (so the move being judged does not inflate its own
    yardstick); a long position breaches when ``prod(1 + r) - 1 <= -multiple * sigma_window``
    over the last ``window`` sessions (a short one on the symmetric gain). Columns ``ticker``,
    ``weight``, ``return_window``, ``vol_window``, ``sigmas`` (return / vol), breaches only.
    """
    r = as_matrix(asset_returns, "asset_returns")
    w = as_vector(weights, "weights")
    if r.shape[1] != w.size or len(tickers) != w.size:
        raise ValueError("tickers, asset_returns columns and weights must line up")
    if r.shape[0] < window + 2:
        raise ValueError(f"stop-loss needs at least {window + 2} sessions, got {r.shape[0]}")
    recent = np.prod(1.0 + r[-window:], axis=0) - 1.0
    before = r[-(window + vol_sessions) : -window]
    vol = before.std(axis=0, ddof=1) * np.sqrt(window)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigmas = np.where(vol > 0, recent / vol, 0.0)
    breach = ((w > 0) & (sigmas <= -multiple)) | ((w < 0) & (sigmas >= multiple))
    return pl.DataFrame(
        {
            "ticker": [str(t) for t in tickers],
            "weight": w,
            "return_window": recent,
            "vol_window": vol,
            "sigmas": sigmas,
        }
    ).filter(pl.Series(breach))
