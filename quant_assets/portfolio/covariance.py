"""Ledoit-Wolf covariance of a sliding returns window, kept from running sums.

The daily decision re-estimates the covariance of the last ``lookback_sessions`` sessions; from
one session to the next only a row or two enter and leave the window, so the sums the
estimator needs are updated (added and subtracted rows) instead of recomputed over the whole
window. The estimate is scikit-learn's ``ledoit_wolf`` (centred, ``S = X'X / T``, shrinkage
towards ``tr(S)/p`` times the identity, the shrinkage intensity of Ledoit & Wolf 2004) of the
window's returns of any subset of the tickers, equal to it up to rounding.

Running sums over the window's rows ``x_t`` (all tickers; a missing return counts 0, which
only touches that ticker's own entries, and a ticker with a gap in the window is never asked
for: it is not investable that day): ``s1 = sum x``, ``P = sum x x'``, ``A = sum (x^2) x'``,
``B = sum (x^2)(x^2)'``. With ``m = s1 / T``:

- ``S = P / T - m m'``;
- ``Q = sum_t (y_t^2)(y_t^2)'`` for the centred rows ``y_t = x_t - m``, expanded:
  ``B - 2 A*(1 m') - 2 A'*(m 1') + D (m^2)' + (m^2) D' + 4 P*(m m') - 3 T (m^2)(m^2)'`` with
  ``D = diag(P)``; the shrinkage's ``beta_`` is the sum of ``Q`` over the subset's block.

Each update is four rank-one n x n updates per row; the sums are rebuilt from the window
itself every ``reseed_every`` updates so rounding cannot accumulate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd
import polars as pl


class RollingLedoitWolf:
    """Ledoit-Wolf of a sliding window over fixed ``columns`` (module docstring)."""

    def __init__(self, columns: Sequence[str], reseed_every: int = 250) -> None:
        self.columns = list(columns)
        self.reseed_every = reseed_every
        self._position = {c: i for i, c in enumerate(self.columns)}
        self._rows: dict[date, np.ndarray] = {}
        self._updates = 0
        self.rebuilds_ = 0
        n = len(self.columns)
        self._s1 = np.zeros(n)
        self._p = np.zeros((n, n))
        self._a = np.zeros((n, n))
        self._b = np.zeros((n, n))

    def _add(self, x: np.ndarray, sign: float) -> None:
        x2 = x * x
        self._s1 += sign * x
        self._p += sign * np.outer(x, x)
        self._a += sign * np.outer(x2, x)
        self._b += sign * np.outer(x2, x2)

    def _rebuild(self, rows: dict[date, np.ndarray]) -> None:
        x = np.vstack(list(rows.values())) if rows else np.zeros((0, len(self.columns)))
        x2 = x * x
        self._s1 = x.sum(axis=0)
        self._p = x.T @ x
        self._a = x2.T @ x
        self._b = x2.T @ x2
        self._rows = dict(rows)
        self._updates = 0
        self.rebuilds_ += 1

    def sync(self, window: pl.DataFrame) -> None:
        """Make the sums those of ``window`` (a ``date`` column and the ``columns``)."""
        dates = window["date"].to_list()
        wanted = set(dates)
        leaving = [d for d in self._rows if d not in wanted]
        entering = [d for d in dates if d not in self._rows]
        changes = len(leaving) + len(entering)
        if self._updates + changes > self.reseed_every or changes > len(dates) // 2:
            self._rebuild(dict(zip(dates, self._values(window), strict=True)))
            return
        for d in leaving:
            self._add(self._rows.pop(d), -1.0)
        new = window.filter(pl.col("date").is_in(entering))
        for d, x in zip(new["date"].to_list(), self._values(new), strict=True):
            self._add(x, 1.0)
            self._rows[d] = x
        self._updates += changes

    def _values(self, frame: pl.DataFrame) -> np.ndarray:
        return np.nan_to_num(frame.select(self.columns).to_numpy().astype(np.float64), nan=0.0)

    def covariance(self, window: pl.DataFrame, tickers: Sequence[str]) -> pd.DataFrame:
        """The Ledoit-Wolf covariance of ``tickers``' returns over ``window``'s rows."""
        self.sync(window)
        idx = np.array([self._position[t] for t in tickers])
        t = float(len(self._rows))
        m = self._s1[idx] / t
        p = self._p[np.ix_(idx, idx)]
        s = p / t - np.outer(m, m)
        m2 = m * m
        a = self._a[np.ix_(idx, idx)]
        d = np.diag(p)
        q = (
            self._b[np.ix_(idx, idx)]
            - 2.0 * a * m[None, :]
            - 2.0 * a.T * m[:, None]
            + np.outer(d, m2)
            + np.outer(m2, d)
            + 4.0 * p * np.outer(m, m)
            - 3.0 * t * np.outer(m2, m2)
        )
        return pd.DataFrame(
            _shrunk(s, float(q.sum()), t), index=list(tickers), columns=list(tickers)
        )


def _shrunk(s: np.ndarray, beta_sum: float, n_samples: float) -> np.ndarray:
    """scikit-learn's ``ledoit_wolf_shrinkage`` and shrunk estimate from ``S`` and
    ``sum(X2' X2)`` of the centred window."""
    p = s.shape[0]
    trace = np.trace(s)
    mu = trace / p
    delta_ = float(np.sum(s * s))
    beta = (beta_sum / n_samples - delta_) / (p * n_samples)
    delta = (delta_ - 2.0 * mu * trace + p * mu**2) / p
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else beta / delta
    shrunk = (1.0 - shrinkage) * s
    shrunk.flat[:: p + 1] += shrinkage * mu
    return shrunk
