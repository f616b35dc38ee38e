"""The portfolio metrics every stage reports, each defined once.

Conventions: returns are simple daily returns; drawdowns are positive fractions of the running
peak of wealth, the starting wealth counting as a peak (a loss on the first day is already a
drawdown); Sharpe ratios and volatilities are annualised with ``TRADING_DAYS``; books are
weights indexed by ticker, a name missing from one book weighs zero in it.

Empty or too-short input is "not evaluated": NaN, never 0.0, so an empty history can never
read as "no drawdown" or "no turnover".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import pandas as pd
import polars as pl
from numpy.typing import ArrayLike

from quant_core.conventions import TRADING_DAYS

SHARPE_WINDOWS: tuple[int, ...] = (30, 60, 90)
# a weight change below this is numerical noise, not a trade
WEIGHT_TOL = 1e-9

__all__ = [
    "SHARPE_WINDOWS",
    "WEIGHT_TOL",
    "aligned_books",
    "current_drawdown",
    "drawdown",
    "ex_ante_volatility",
    "max_drawdown",
    "nav_drawdown",
    "realised_volatility",
    "risk_increasing",
    "rolling_sharpe",
    "rolling_sharpe_expr",
    "trailing_sharpe",
    "turnover",
]


def _returns(returns: ArrayLike) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64).ravel()
    return r[~np.isnan(r)]


def drawdown(returns: ArrayLike) -> np.ndarray:
    """Drawdown after each day: ``1 - W_t / max(1, W_1..W_t)`` with ``W_t = prod(1 + r)``
    (missing returns skipped)."""
    wealth = np.cumprod(1.0 + _returns(returns))
    peak = np.maximum.accumulate(np.maximum(wealth, 1.0))
    return 1.0 - wealth / peak


def max_drawdown(returns: ArrayLike) -> float:
    """Largest drawdown over the history; NaN without a return."""
    dd = drawdown(returns)
    return float(dd.max()) if dd.size else math.nan


def current_drawdown(returns: ArrayLike) -> float:
    """Drawdown at the last day (0 at a new high); NaN without a return."""
    dd = drawdown(returns)
    return float(dd[-1]) if dd.size else math.nan


def nav_drawdown(nav: pl.Expr) -> pl.Expr:
    """The drawdown of a NAV (wealth) column: ``1 - nav / running peak``, positive."""
    return 1.0 - nav / nav.cum_max()


def rolling_sharpe_expr(returns: pl.Expr, window: int) -> pl.Expr:
    """Annualised Sharpe ``sqrt(252) mean(r) / std(r, ddof=1)`` over each trailing ``window``
    (null until the window is full)."""
    return (
        returns.rolling_mean(window) / returns.rolling_std(window, ddof=1) * math.sqrt(TRADING_DAYS)
    )


def rolling_sharpe(
    returns: ArrayLike, windows: Sequence[int] = SHARPE_WINDOWS, risk_free_daily: float = 0.0
) -> pl.DataFrame:
    """One column ``sharpe_{w}`` per window, one row per return; null until a window is full."""
    excess = pl.Series("r", np.asarray(returns, dtype=np.float64).ravel() - risk_free_daily)
    return pl.DataFrame({"r": excess}).select(
        rolling_sharpe_expr(pl.col("r"), w).alias(f"sharpe_{w}") for w in windows
    )


def trailing_sharpe(
    returns: ArrayLike, windows: Sequence[int] = SHARPE_WINDOWS
) -> dict[int, float]:
    """The Sharpe of the last ``w`` returns for each window ``w``; NaN when fewer than ``w``
    returns exist or they do not vary."""
    r = np.asarray(returns, dtype=np.float64).ravel()
    if r.size == 0:
        return dict.fromkeys(windows, math.nan)
    last = rolling_sharpe(r, windows).tail(1).row(0, named=True)
    return {
        w: float(v) if v is not None and math.isfinite(v) else math.nan
        for w, v in ((w, last[f"sharpe_{w}"]) for w in windows)
    }


def realised_volatility(returns: ArrayLike, periods_per_year: int = TRADING_DAYS) -> float:
    """Annualised realised volatility ``std(r, ddof=1) * sqrt(periods_per_year)`` (missing
    returns skipped); NaN with fewer than two returns."""
    r = _returns(returns)
    if r.size < 2:
        return math.nan
    return float(r.std(ddof=1)) * math.sqrt(periods_per_year)


def ex_ante_volatility(weights: ArrayLike, cov: ArrayLike) -> float:
    """Annualised ex-ante volatility ``sqrt(252 w' Sigma w)`` from a DAILY covariance; NaN for
    an empty book."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.size == 0:
        return math.nan
    s = np.asarray(cov, dtype=np.float64)
    return float(np.sqrt(max(TRADING_DAYS * float(w @ s @ w), 0.0)))


def aligned_books(
    weights: pd.Series, previous: pd.Series | None
) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """The union of both books' names and both weight vectors over it (missing = 0)."""
    before = previous if previous is not None else pd.Series(dtype=np.float64)
    union = weights.index.union(before.index)
    now = weights.reindex(union, fill_value=0.0).to_numpy(dtype=np.float64)
    then = before.reindex(union, fill_value=0.0).to_numpy(dtype=np.float64)
    return union, now, then


def turnover(weights: pd.Series, previous: pd.Series | None) -> float:
    """``sum_i |w_i - w_prev,i|`` over both books' names (the names sold out included), so
    selling 10% of A to buy 10% of B is 0.20; against no previous book, the gross exposure."""
    _, now, then = aligned_books(weights, previous)
    return float(np.abs(now - then).sum())


T = TypeVar("T", np.ndarray, pd.Series, pl.Expr)


def risk_increasing(now: T, then: T, tol: float = WEIGHT_TOL) -> T:
    """Where a position grew, opened or flipped sign from ``then`` to ``now``: the trades a
    book beyond its drawdown limit may not make. Works on arrays, Series and Polars expressions
    (weights or quantities alike)."""
    return (abs(now) > abs(then) + tol) | (now * then < 0)
