"""Stress tests of a portfolio: market and sector shocks, doubled volatility, worst 5-day window.

Inputs and conventions are those of :mod:`quant_assets.risk.measures` (``T x N`` daily simple
asset returns, ``N`` weights as fractions of NAV, cash at zero return). Every scenario reports
``pnl``, the portfolio's return under the scenario (negative = a loss), and ``loss = -pnl``,
positive for a loss like VaR. Shocks are instantaneous and hit the CURRENT weights; there is no
re-hedging or second-round effect.

- Market shock ``s`` (-10%, -20%): each asset moves by ``beta_i * s`` with ``beta_i`` its OLS
  beta to the benchmark over the history given, so ``pnl = s * sum(w_i beta_i)`` (cash has beta
  zero); idiosyncratic returns are set to zero.
- Sector shock ``s`` (-15%): every asset of the sector moves by ``s``, the others not at all,
  so ``pnl = s * (net weight of the sector)``.
- Volatility x ``k`` (2): the parametric normal one-day VaR with ``sigma`` scaled by ``k`` and the
  mean unchanged, ``k * sigma * z_alpha - mu``; reported as ``loss`` at the VaR level.
- Worst historical window: the lowest compounded portfolio return over any ``window`` (5)
  consecutive days of the history, ``prod(1 + r_t) - 1``, with the current weights held fixed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from numpy.typing import ArrayLike
from scipy import stats

from quant_assets.risk.measures import FloatArray, as_matrix, as_vector, portfolio_returns

MARKET_SHOCKS = (-0.10, -0.20)
SECTOR_SHOCK = -0.15
VOL_MULTIPLIER = 2.0
WORST_WINDOW = 5


def asset_betas(asset_returns: ArrayLike, benchmark_returns: ArrayLike) -> FloatArray:
    """OLS beta of every asset on the benchmark, ``cov(r_i, b) / var(b)``, in one product."""
    r = as_matrix(asset_returns, "asset_returns")
    b = as_vector(benchmark_returns, "benchmark_returns")
    if r.shape[0] != b.shape[0]:
        raise ValueError("asset_returns and benchmark_returns must have the same number of rows")
    bc = b - b.mean()
    return ((r - r.mean(axis=0)).T @ bc) / (bc @ bc)


def market_shock_pnl(weights: ArrayLike, betas: ArrayLike, shock: float) -> float:
    """Portfolio return when the benchmark moves by ``shock``: ``shock * sum(w_i beta_i)``."""
    return float(shock * (as_vector(weights, "weights") @ as_vector(betas, "betas")))


def sector_shock_pnl(weights: ArrayLike, sectors: Sequence[str], shock: float) -> pl.DataFrame:
    """Portfolio return when each sector in turn moves by ``shock``: ``shock * sector weight``.

    Columns ``sector``, ``pnl``, sorted by sector (one scenario per sector present).
    """
    w = as_vector(weights, "weights")
    if len(sectors) != w.size:
        raise ValueError(f"{w.size} weights but {len(sectors)} sectors")
    return (
        pl.DataFrame({"sector": list(sectors), "weight": w})
        .group_by("sector")
        .agg((pl.col("weight").sum() * shock).alias("pnl"))
        .sort("sector")
    )


def stressed_var_normal(
    returns: ArrayLike, alpha: float = 0.95, vol_multiplier: float = VOL_MULTIPLIER
) -> float:
    """Parametric normal VaR with volatility scaled: ``k * sigma * z_alpha - mu`` (loss > 0)."""
    r = as_vector(returns, "returns")
    return float(vol_multiplier * r.std(ddof=1) * stats.norm.ppf(alpha) - r.mean())


def worst_window(returns: ArrayLike, window: int = WORST_WINDOW) -> tuple[float, int]:
    """Lowest compounded return over ``window`` consecutive days and the index of its first day.

    Compounding through cumulative sums of ``log(1 + r)`` keeps it one vectorised pass.
    """
    r = as_vector(returns, "returns")
    if r.size < window:
        raise ValueError(f"need at least {window} returns, got {r.size}")
    cum = np.concatenate(([0.0], np.cumsum(np.log1p(r))))
    window_log = cum[window:] - cum[:-window]
    start = int(np.argmin(window_log))
    return float(np.expm1(window_log[start])), start


def stress_table(
    asset_returns: ArrayLike,
    weights: ArrayLike,
    benchmark_returns: ArrayLike,
    sectors: Sequence[str],
    market_shocks: Sequence[float] = MARKET_SHOCKS,
    sector_shock: float = SECTOR_SHOCK,
    vol_multiplier: float = VOL_MULTIPLIER,
    var_level: float = 0.95,
    window: int = WORST_WINDOW,
) -> pl.DataFrame:
    """All stress scenarios of the ``risk_metrics`` asset in one table.

    Columns ``scenario`` (``market_-10%``, ``sector_<name>_-15%``, ``vol_x2_var95``,
    ``worst_5d``), ``pnl`` and ``loss = -pnl``. The volatility scenario has no P&L of its own:
    its ``pnl`` is minus the stressed VaR so that ``loss`` is that VaR.
    """
    rp = portfolio_returns(asset_returns, weights)
    betas = asset_betas(asset_returns, benchmark_returns)
    scenarios: list[str] = []
    pnls: list[float] = []
    for shock in market_shocks:
        scenarios.append(f"market_{shock:+.0%}")
        pnls.append(market_shock_pnl(weights, betas, shock))
    sector_pnl = sector_shock_pnl(weights, sectors, sector_shock)
    scenarios += [f"sector_{s}_{sector_shock:+.0%}" for s in sector_pnl["sector"]]
    pnls += sector_pnl["pnl"].to_list()
    scenarios.append(f"vol_x{vol_multiplier:g}_var{var_level * 100:g}")
    pnls.append(-stressed_var_normal(rp, var_level, vol_multiplier))
    scenarios.append(f"worst_{window}d")
    pnls.append(worst_window(rp, window)[0])
    return pl.DataFrame({"scenario": scenarios, "pnl": pnls}).with_columns(loss=-pl.col("pnl"))
