"""Riskfolio-Lib allocation: relaxed risk parity (skfolio has no equivalent).

Same scikit-learn estimator interface as ``allocation.py``: every parameter in ``__init__``
(``previous_weights`` included), ``fit(X, y=None) -> self`` on a pandas DataFrame of simple
DAILY returns (T sessions x N tickers, no NaN), then ``weights_`` (pd.Series), ``cash_``,
``status_``, ``feasible_``. Long-only and fully invested (cash 0). Covariances are the daily
sample covariance (ddof = 1), expected returns the daily arithmetic mean.

``RelaxedRiskParity`` (Gambeta & Kwon 2020, Richard & Roncalli 2019; Riskfolio
``Portfolio.rrp_optimization``): min psi - gamma s.t. w_i (Sigma w)_i >= gamma^2 b_i,
w' Sigma w <= psi^2 - rho^2, sum w = 1, w >= 0, optionally mu'w >= target_return;
version "A": rho = 0; "B": rho >= sqrt(w' Sigma w); "C": rho >= sqrt(l) ||diag(sigma) w||.
Version "A" without a return target (or "C" with l = 0) is vanilla risk parity: gamma can
reach sqrt(w'Sigma w) only when every contribution equals b_i w'Sigma w. Over skfolio's
RiskBudgeting: the relaxation lets contributions move off parity as little as possible to
meet a return target (a vanilla RP book cannot take one), and "B"/"C" regularise it.

Solver: CLARABEL. Most of a fit is cvxpy compiling Riskfolio's one-second-order-cone-per-asset
model; SCS was slower and less accurate (contributions visibly off parity), and CLARABEL's
"faer" linear solver and cvxpy's SCIPY canonicalisation backend were slower too, so CLARABEL
defaults are kept (timings in the README).

Riskfolio-Lib takes seconds to import, so it is imported inside ``fit`` and this module stays
cheap to import (the Dagster code location imports it at load).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from quant_assets.portfolio.allocation import (
    Allocation,
    _nan_weights,
    _sample_covariance,
    _validate_returns,
)

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


class RelaxedRiskParity(Allocation):
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
        previous_weights: pd.Series | None = None,
    ) -> None:
        self.version = version
        self.l = l
        self.risk_budget = risk_budget
        self.target_return = target_return
        self.solver = solver
        self.previous_weights = previous_weights

    def fit(self, X: pd.DataFrame, y: None = None) -> RelaxedRiskParity:
        if self.version not in RRP_VERSIONS:
            raise ValueError(f"version must be one of {RRP_VERSIONS}, got {self.version!r}")
        if self.l < 0:
            raise ValueError(f"l must be >= 0, got {self.l}")
        x = _validate_returns(X)
        tickers = X.columns
        budget = None
        if self.risk_budget is not None:
            raw = np.array([self.risk_budget[t] for t in tickers], dtype=np.float64)
            if (raw <= 0).any():
                raise ValueError("risk budgets must be positive")
            budget = (raw / raw.sum()).reshape(-1, 1)
        import riskfolio as rp

        portfolio = rp.Portfolio(returns=X * RRP_RETURN_SCALE)
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
