"""Riskfolio-Lib allocation methods (issue 5, item 2): HERC and relaxed risk parity.

Same estimator interface as ``allocation.py``: parameters in ``__init__``,
``fit(returns, **context) -> self`` on a pandas DataFrame of simple DAILY returns (T sessions
x N tickers, no NaN), then ``weights_`` (pd.Series), ``cash_``, ``status_``, ``feasible_``.
Both methods are long-only and fully invested (cash 0). Covariances are the daily sample
covariance (ddof = 1), expected returns the daily arithmetic mean.

- ``HierarchicalEqualRiskContribution`` (Raffinot 2018, Riskfolio ``HCPortfolio``,
  model "HERC"): Ward tree on the Pearson distance sqrt((1 - rho) / 2), cut into k clusters
  (two-difference gap statistic unless ``n_clusters`` is given). Top-down over the k - 1
  highest splits, each side gets 1 - R_side / (R_left + R_right) of its parent, R = sum of
  its clusters' risks (risk of a cluster = risk measure of its naive inverse-risk portfolio);
  inside a cluster, naive inverse-risk weights. With the variance risk measure (default)
  cluster weights make W_c * Var_c equal across a split; with ``risk_measure="vol"`` they make
  W_c * sigma_c equal, which for uncorrelated clusters is equal Euler variance contribution.
  Over skfolio's HRP: the bisection follows the tree's own clusters instead of cutting the
  seriated list in halves, so a large cluster is not split across both sides.
- ``RelaxedRiskParity`` (Gambeta & Kwon 2020, Richard & Roncalli 2019; Riskfolio
  ``Portfolio.rrp_optimization``): min psi - gamma s.t. w_i (Sigma w)_i >= gamma^2 b_i,
  w' Sigma w <= psi^2 - rho^2, sum w = 1, w >= 0, optionally mu'w >= target_return;
  version "A": rho = 0; "B": rho >= sqrt(w' Sigma w); "C": rho >= sqrt(l) ||diag(sigma) w||.
  Version "A" without a return target (or "C" with l = 0) is vanilla risk parity: gamma can
  reach sqrt(w'Sigma w) only when every contribution equals b_i w'Sigma w. Over skfolio's
  RiskBudgeting: the relaxation lets contributions move off parity as little as possible to
  meet a return target (a vanilla RP book cannot take one), and "B"/"C" regularise it.

Riskfolio-Lib takes 12-20 s to import on this machine, so it is imported inside ``fit`` and
this module stays cheap to import (the Dagster code location imports it at load).

Measured fit times (500 tickers x 756 sessions of SyntheticMarket returns, 2-core machine,
2026-11-23): in benches/bench_allocation.py (load average 1.56 before, others' work running)
HERC 0.72 s and relaxed RP version "A" 6.72 s (on a quiet machine, load 0.00: 0.71 s and
3.53 s); relaxed RP timed alone on the same data
3.0-3.3 s (CLARABEL; ~2.4 s of a 4.9 s profiled run was cvxpy compiling Riskfolio's
one-SOC-per-asset model, ~1.7 s the solve, 0.23 s the matrix square root). SCS took 13 s and
was less accurate (contributions up to 11% off parity); CLARABEL's "faer" linear solver
(7.5-8.5 s) and cvxpy's SCIPY canonicalisation backend (4.4 s vs 3.9 s) were slower, so
CLARABEL defaults are kept. Relaxed RP alone takes a third to two thirds of the 10 s daily
budget for all methods.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from quant_assets.portfolio.allocation import _Allocation, _nan_weights, _validate_returns

RRP_VERSIONS = ("A", "B", "C")
# Riskfolio's RRP model in daily decimal units (variances ~1e-4) ends CLARABEL in "solution
# may be inaccurate" with contributions 2.5e-4 off parity on an 8-asset case; in percent
# units it solves to 1e-10. Weights are invariant to this scale; the return floor is scaled.
RRP_RETURN_SCALE = 100.0


def _riskfolio_weights(frame: Any, tickers: pd.Index) -> tuple[pd.Series, str, bool]:
    """Riskfolio's one-column "weights" frame as a Series over ``tickers``, or the failure."""
    if frame is None:
        return _nan_weights(tickers), "infeasible: no solution from Riskfolio", False
    weights = frame["weights"].reindex(tickers).to_numpy(dtype=np.float64)
    if not np.isfinite(weights).all():
        return _nan_weights(tickers), "failed: non-finite weights", False
    # interior-point noise of order 1e-10 around the w >= 0 bound
    weights = np.where(np.abs(weights) < 1e-10, 0.0, weights)
    return pd.Series(weights, index=tickers), "optimal", True


def _sample_covariance(x: np.ndarray) -> np.ndarray:
    return np.cov(x, rowvar=False, ddof=1).reshape(x.shape[1], x.shape[1])


class HierarchicalEqualRiskContribution(_Allocation):
    """HERC (Riskfolio ``HCPortfolio``, model "HERC"), see the module docstring.

    ``risk_measure`` is Riskfolio's ``rm`` ("MV" variance, "vol" standard deviation, ...).
    ``leaf_order`` (optimal leaf ordering) only reorders children within the tree, which
    leaves HERC weights unchanged, so it is off by default (saves ~0.3 s at N = 500).
    After fit: ``n_clusters_`` (the k used) and ``linkage_``.
    """

    def __init__(
        self,
        risk_measure: str = "MV",
        linkage_method: str = "ward",
        codependence: str = "pearson",
        n_clusters: int | None = None,
        max_clusters: int = 10,
        leaf_order: bool = False,
    ) -> None:
        self.risk_measure = risk_measure
        self.linkage_method = linkage_method
        self.codependence = codependence
        self.n_clusters = n_clusters
        self.max_clusters = max_clusters
        self.leaf_order = leaf_order

    def fit(self, returns: pd.DataFrame, **context: Any) -> HierarchicalEqualRiskContribution:
        x = _validate_returns(returns)
        tickers = returns.columns
        if (x.std(axis=0) <= 0).any():
            self._set_result(_nan_weights(tickers), "failed: zero-variance asset", False)
            return self
        if x.shape[1] == 1:
            self.n_clusters_ = 1
            self._set_result(pd.Series([1.0], index=tickers), "optimal", True)
            return self
        import riskfolio as rp

        portfolio = rp.HCPortfolio(returns=returns)
        frame = portfolio.optimization(
            model="HERC",
            codependence=self.codependence,
            rm=self.risk_measure,
            linkage=self.linkage_method,
            k=self.n_clusters,
            max_k=self.max_clusters,
            leaf_order=self.leaf_order,
        )
        self.n_clusters_ = int(portfolio.k)
        self.linkage_ = portfolio.clustering
        weights, status, feasible = _riskfolio_weights(frame, tickers)
        self._set_result(weights, status, feasible)
        return self


class RelaxedRiskParity(_Allocation):
    """Relaxed risk parity (Riskfolio ``Portfolio.rrp_optimization``), see the module doc.

    ``version`` "A" / "B" / "C" as in Riskfolio; ``l`` is the penalty lambda of version "C"
    (ignored by "A" and "B", as in Riskfolio). ``risk_budget`` (dict ticker -> budget,
    normalised to sum 1) defaults to equal budgets. ``target_return`` is a floor on the daily
    expected return mu'w (None = no floor); an unreachable floor is reported infeasible.
    After fit: ``risk_contributions_`` (Euler variance shares, sum 1) and
    ``expected_return_`` (daily, sample mean).
    """

    def __init__(
        self,
        version: str = "A",
        l: float = 1.0,  # noqa: E741 (Riskfolio's name for the penalty lambda)
        risk_budget: dict[str, float] | None = None,
        target_return: float | None = None,
        solver: str = "CLARABEL",
    ) -> None:
        self.version = version
        self.l = l
        self.risk_budget = risk_budget
        self.target_return = target_return
        self.solver = solver

    def fit(self, returns: pd.DataFrame, **context: Any) -> RelaxedRiskParity:
        if self.version not in RRP_VERSIONS:
            raise ValueError(f"version must be one of {RRP_VERSIONS}, got {self.version!r}")
        if self.l < 0:
            raise ValueError(f"l must be >= 0, got {self.l}")
        x = _validate_returns(returns)
        tickers = returns.columns
        budget = None
        if self.risk_budget is not None:
            raw = np.array([self.risk_budget[t] for t in tickers], dtype=np.float64)
            if (raw <= 0).any():
                raise ValueError("risk budgets must be positive")
            budget = (raw / raw.sum()).reshape(-1, 1)
        import riskfolio as rp

        portfolio = rp.Portfolio(returns=returns * RRP_RETURN_SCALE)
        portfolio.assets_stats(method_mu="hist", method_cov="hist")
        if self.target_return is not None:
            portfolio.lowerret = self.target_return * RRP_RETURN_SCALE
        portfolio.solvers = [self.solver]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            frame = portfolio.rrp_optimization(
                model="Classic", version=self.version, l=self.l, b=budget
            )
        weights, status, feasible = _riskfolio_weights(frame, tickers)
        if feasible and any("inaccurate" in str(item.message) for item in caught):
            # cvxpy's OPTIMAL_INACCURATE: kept, but said so (Riskfolio hides the status)
            status = "optimal_inaccurate"
        if feasible:
            w = weights.to_numpy()
            self.expected_return_ = float(x.mean(axis=0) @ w)
            # the floor is a hard constraint: a book below it is not handed on
            if self.target_return is not None and self.expected_return_ < self.target_return - 1e-9:
                status = f"violated: expected return {self.expected_return_:.3g} < target"
                feasible = False
                weights = _nan_weights(tickers)
            else:
                contributions = w * (_sample_covariance(x) @ w)
                self.risk_contributions_ = pd.Series(
                    contributions / contributions.sum(), index=tickers
                )
        self._set_result(weights, status, feasible)
        return self
