"""Allocation methods as scikit-learn estimators, the way skfolio's optimisers are.

Every estimator subclasses ``sklearn.base.BaseEstimator``: all its parameters are arguments of
``__init__`` stored unchanged (so ``get_params``, ``set_params`` and ``sklearn.base.clone``
work), among them ``previous_weights`` (pd.Series ticker -> weight, yesterday's book of this
method; None = built from cash). ``fit(X, y=None) -> self`` takes ``X``, a pandas DataFrame of
simple DAILY returns, T sessions x N tickers (columns = tickers, no NaN). After ``fit``
(fitted attributes end in ``_``):

- ``weights_``: pd.Series over the tickers (fraction of NAV, long-only unless stated);
- ``cash_``: 1 - sum(weights_) (0 for fully-invested methods);
- ``status_``: the solver/method status string; ``feasible_``: bool. An infeasible problem is
  reported (``feasible_ = False``, ``weights_`` all NaN), never silently relaxed.

Conventions: returns and covariances are daily; annualised volatility = sqrt(252) * daily
volatility; expected returns are daily arithmetic means. CVaR at level beta is the mean loss
(losses positive) in the worst (1 - beta) tail of the scenario distribution.

Methods:

- ``BlackLittermanAllocation``: skfolio ``BlackLitterman`` prior (views such as
  ``"AAPL == 0.002"``, Idzorek confidences in [0, 1]) over an empirical or equilibrium prior,
  then skfolio ``MeanRisk`` (max Sharpe ratio or mean - risk_aversion * variance).
- ``HierarchicalRiskParity``: own vectorised HRP (Lopez de Prado 2016) that reproduces skfolio's
  ``HierarchicalRiskParity`` defaults (Pearson distance sqrt((1 - rho) / 2), Ward linkage, leaf
  order seriation, recursive bisection of the ordered list at n // 2, split
  alpha = 1 - var_L / (var_L + var_R) with var = variance of the cluster's inverse-variance
  portfolio). skfolio builds a portfolio object for every cluster of every bisection level;
  here every level is one matrix product (timings in the README).
- ``HierarchicalEqualRiskContribution``: skfolio's HERC (Raffinot 2018): the same tree, cut
  into clusters (two-order-difference gap statistic unless ``n_clusters`` is given); top-down
  over the splits above the clusters, each side gets 1 - R_side / (R_left + R_right) of its
  parent, R = sum of its clusters' risks (risk of a cluster = risk measure of its naive
  inverse-risk portfolio); inside a cluster, naive inverse-risk weights. Unlike HRP the split
  follows the tree's own clusters, so a large cluster is not cut across both sides.
- ``MinimumCVaR``: skfolio ``MeanRisk(risk_measure=CVaR)``, the Rockafellar-Uryasev LP
  min_{w, a, u} a + 1 / ((1 - beta) T) * sum_t u_t, u_t >= -r_t'w - a, u >= 0, sum w = 1,
  w >= 0. Solved by HiGHS: cvxpy's ``HIGHS`` interface when ``highspy`` is importable (it is
  locked, as a dependency of full cvxpy), else cvxpy's ``SCIPY`` interface, which calls scipy's
  bundled HiGHS (``linprog(method="highs")``).
- ``RiskParity``: skfolio ``RiskBudgeting`` (variance risk measure, equal budgets by default):
  each asset's Euler risk contribution w_i (Sigma w)_i proportional to its budget.
- ``ConstrainedMarkowitz`` (Quant50): cvxpy problem on a Ledoit-Wolf covariance, see its
  docstring for the model, the cardinality heuristic and the exact working set.

Relaxed risk parity (Riskfolio-Lib, nothing equivalent in skfolio) lives in
``riskfolio_methods.py`` with the same interface; ``methods.py`` maps every method's name to its
estimator.

``check_constraints`` re-checks any weights against the hard constraints and lists every
violation (empty list = all hold).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import leaves_list, linkage
from scipy.sparse import coo_array
from scipy.spatial.distance import squareform
from sklearn.base import BaseEstimator
from sklearn.covariance import ledoit_wolf

from quant_core.conventions import TRADING_DAYS
from quant_core.metrics import ex_ante_volatility, turnover
from quant_core.sectors import sector_groups


def _validate_returns(returns: pd.DataFrame) -> np.ndarray:
    if not isinstance(returns, pd.DataFrame):
        raise TypeError("returns must be a pandas DataFrame (sessions x tickers)")
    x = returns.to_numpy(dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"returns must be T x N with T >= 2, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("returns contain NaN or inf; fill or drop them before allocating")
    return x


def _lp_solver() -> tuple[str, dict[str, Any]]:
    """HiGHS through cvxpy: its own interface when highspy is importable, else scipy's copy."""
    try:
        import highspy  # noqa: F401
    except ImportError:
        return "SCIPY", {"scipy_options": {"method": "highs"}}
    return "HIGHS", {}


def _empirical_prior(n_obs: int, n_assets: int, mu_estimator: Any = None) -> Any:
    """skfolio EmpiricalPrior: the sample covariance when T > N, Ledoit-Wolf when T <= N.

    With more sessions than assets the sample covariance is already positive definite, and
    skfolio's default nearest-PD repair (two full eigen-decompositions) would return the same
    matrix, so it is skipped. With T <= N the sample covariance is singular: clipping its zero
    eigenvalues would leave a near-singular matrix the optimisers exploit, so the Ledoit-Wolf
    shrinkage (positive definite by construction) is used instead.
    """
    from skfolio.moments import EmpiricalCovariance, LedoitWolf
    from skfolio.prior import EmpiricalPrior

    covariance = (
        EmpiricalCovariance(nearest=False) if n_obs > n_assets else LedoitWolf(nearest=False)
    )
    return EmpiricalPrior(mu_estimator=mu_estimator, covariance_estimator=covariance)


def _nan_weights(tickers: pd.Index) -> pd.Series:
    return pd.Series(np.nan, index=tickers, dtype=np.float64, name="weight")


def _sample_covariance(x: np.ndarray) -> np.ndarray:
    return np.cov(x, rowvar=False, ddof=1).reshape(x.shape[1], x.shape[1])


class Allocation(BaseEstimator):
    """Shared fitted-state layout: ``weights_``, ``cash_``, ``status_``, ``feasible_``.

    Subclasses list every parameter, ``previous_weights`` included, in their own ``__init__``
    (scikit-learn reads the parameters from that signature).
    """

    previous_weights: pd.Series | None
    weights_: pd.Series
    cash_: float
    status_: str
    feasible_: bool

    def _set_result(self, weights: pd.Series, status: str, feasible: bool) -> None:
        self.weights_ = weights.rename("weight")
        self.status_ = status
        self.feasible_ = feasible
        self.cash_ = float(1.0 - weights.sum()) if feasible else float("nan")

    def claimed_violations(self) -> list[str]:
        """The fitted book checked against what the method claims (empty = all hold): by
        default long-only and fully invested."""
        return check_constraints(self.weights_, fully_invested=True, long_only=True)


def _skfolio_weights(model: Any, tickers: pd.Index) -> tuple[pd.Series, str, bool]:
    if getattr(model, "weights_", None) is None:
        # raise_on_failure=False: skfolio leaves weights_ None and keeps the reason in error_
        return _nan_weights(tickers), f"failed: {getattr(model, 'error_', 'no weights')}", False
    weights = np.asarray(model.weights_, dtype=np.float64)
    if not np.isfinite(weights).all():
        return _nan_weights(tickers), "failed: non-finite weights", False
    # interior-point solvers return -1e-10-sized weights for long-only books
    weights = np.where(np.abs(weights) < 1e-10, 0.0, weights)
    return pd.Series(weights, index=tickers), "optimal", True


class BlackLittermanAllocation(Allocation):
    """Black-Litterman posterior (skfolio) + mean-risk optimisation (skfolio ``MeanRisk``).

    Prior: ``"empirical"`` (sample mean and covariance) or ``"equilibrium"`` (implied returns
    mu = risk_aversion_prior * Sigma w_mkt, skfolio ``EquilibriumMu`` with equal market
    weights). Posterior (He-Litterman):
    mu_BL = mu + tau Sigma P' (P tau Sigma P' + Omega)^-1 (Q - P mu); with ``view_confidences``
    Omega follows Idzorek (confidence 1 = view held exactly, 0 = ignored).

    With no views (``views`` None or empty) the prior is used as is, so
    ``expected_returns_`` equals the prior's mean: a posterior with nothing to update on.

    Objective: ``"max_sharpe"`` maximises (mu'w - rf) / sqrt(w' Sigma w); ``"mean_variance"``
    maximises mu'w - risk_aversion * w' Sigma w (skfolio's utility convention, daily units).
    Long-only, fully invested; ``previous_weights`` is kept, not used (no trading cost).

    After fit: ``expected_returns_`` (posterior mean, daily) and ``covariance_``.
    """

    def __init__(
        self,
        views: Sequence[str] | None = None,
        view_confidences: Sequence[float] | np.ndarray | None = None,
        prior: str = "empirical",
        objective: str = "max_sharpe",
        risk_aversion: float = 1.0,
        tau: float = 0.05,
        risk_free_rate: float = 0.0,
        solver: str = "CLARABEL",
        previous_weights: pd.Series | None = None,
    ) -> None:
        self.views = views
        self.view_confidences = view_confidences
        self.prior = prior
        self.objective = objective
        self.risk_aversion = risk_aversion
        self.tau = tau
        self.risk_free_rate = risk_free_rate
        self.solver = solver
        self.previous_weights = previous_weights

    def _prior_estimator(self, n_obs: int, n_assets: int) -> Any:
        from skfolio.moments import EquilibriumMu

        if self.prior == "empirical":
            return _empirical_prior(n_obs, n_assets)
        if self.prior == "equilibrium":
            return _empirical_prior(n_obs, n_assets, EquilibriumMu())
        raise ValueError(f"prior must be 'empirical' or 'equilibrium', got {self.prior!r}")

    def _confidences(self, n_views: int) -> np.ndarray | None:
        if self.view_confidences is None:
            return None
        # skfolio modifies the array in place and integer dtypes give a NaN posterior:
        # always hand it a fresh float copy
        confidences = np.array(self.view_confidences, dtype=np.float64, copy=True)
        if confidences.shape != (n_views,):
            raise ValueError("view_confidences must have one entry per view")
        if ((confidences < 0) | (confidences > 1)).any():
            raise ValueError("view_confidences must lie in [0, 1]")
        return confidences

    def _objective(self) -> Any:
        from skfolio.optimization import ObjectiveFunction

        if self.objective == "max_sharpe":
            return ObjectiveFunction.MAXIMIZE_RATIO
        if self.objective == "mean_variance":
            return ObjectiveFunction.MAXIMIZE_UTILITY
        raise ValueError(
            f"objective must be 'max_sharpe' or 'mean_variance', got {self.objective!r}"
        )

    def fit(self, X: pd.DataFrame, y: None = None) -> BlackLittermanAllocation:
        from skfolio.optimization import MeanRisk
        from skfolio.prior import BlackLitterman

        x = _validate_returns(X)
        tickers = X.columns
        prior: Any = self._prior_estimator(*x.shape)
        views = list(self.views) if self.views is not None else []
        if views:
            prior = BlackLitterman(
                views=views,
                prior_estimator=prior,
                tau=self.tau,
                view_confidences=self._confidences(len(views)),
                risk_free_rate=self.risk_free_rate,
            )
        model = MeanRisk(
            objective_function=self._objective(),
            risk_aversion=self.risk_aversion,
            risk_free_rate=self.risk_free_rate,
            prior_estimator=prior,
            solver=self.solver,
            raise_on_failure=False,
        )
        model.fit(X)
        weights, status, feasible = _skfolio_weights(model, tickers)
        self._set_result(weights, status, feasible)
        if not feasible:
            return self
        distribution = model.prior_estimator_.return_distribution_
        self.expected_returns_ = pd.Series(np.asarray(distribution.mu), index=tickers)
        self.covariance_ = pd.DataFrame(
            np.asarray(distribution.covariance), index=tickers, columns=tickers
        )
        return self


def hrp_weights(covariance: np.ndarray, order: np.ndarray) -> np.ndarray:
    """HRP recursive bisection in the given leaf ``order``, one matrix product per level.

    At each level every current cluster (a contiguous run of ``order``) is split at n // 2;
    each half's risk is the variance of its inverse-variance portfolio, and the left half
    gets alpha = 1 - var_L / (var_L + var_R) of the parent's weight.
    """
    n = covariance.shape[0]
    inv_var = 1.0 / np.diag(covariance)
    cov_ordered = covariance[np.ix_(order, order)]
    inv_ordered = inv_var[order]
    weights = np.ones(n)
    # clusters as [start, stop) positions in the ordered list
    starts = np.array([0])
    stops = np.array([n])
    while True:
        split = (stops - starts) > 1
        starts, stops = starts[split], stops[split]
        if starts.size == 0:
            break
        mids = starts + (stops - starts) // 2
        halves_lo = np.concatenate([starts, mids])
        halves_hi = np.concatenate([mids, stops])
        k = halves_lo.size
        position = np.arange(n)
        member = (position[:, None] >= halves_lo[None, :]) & (
            position[:, None] < halves_hi[None, :]
        )
        ivp = np.where(member, inv_ordered[:, None], 0.0)
        ivp /= ivp.sum(axis=0, keepdims=True)
        half_var = np.einsum("ik,ik->k", ivp, cov_ordered @ ivp)
        left, right = half_var[: k // 2], half_var[k // 2 :]
        alpha = 1.0 - left / (left + right)
        # broadcast each split's factor onto its members (clusters are disjoint)
        factor = member[:, : k // 2] @ alpha + member[:, k // 2 :] @ (1.0 - alpha)
        # assets already alone in their cluster are not split again: factor 1
        weights *= np.where(member.any(axis=1), factor, 1.0)
        starts = halves_lo
        stops = halves_hi
    out = np.empty(n)
    out[order] = weights
    return out


class HierarchicalRiskParity(Allocation):
    """Hierarchical Risk Parity with skfolio's default setup, vectorised (see module doc).

    Sample covariance (ddof = 1) -> correlation -> distance d_ij = sqrt((1 - rho_ij) / 2)
    -> scipy Ward linkage -> leaf order -> ``hrp_weights``. Long-only, fully invested,
    weights strictly positive whenever every asset has positive variance; ``previous_weights``
    is kept, not used. After fit: ``order_`` (tickers in seriation order) and ``linkage_``.
    """

    def __init__(
        self,
        linkage_method: str = "ward",
        optimal_ordering: bool = True,
        previous_weights: pd.Series | None = None,
    ) -> None:
        self.linkage_method = linkage_method
        self.optimal_ordering = optimal_ordering
        self.previous_weights = previous_weights

    def fit(self, X: pd.DataFrame, y: None = None) -> HierarchicalRiskParity:
        x = _validate_returns(X)
        tickers = X.columns
        covariance = _sample_covariance(x)
        std = np.sqrt(np.diag(covariance))
        if (std <= 0).any():
            self._set_result(_nan_weights(tickers), "failed: zero-variance asset", False)
            return self
        if x.shape[1] == 1:
            self.order_ = list(tickers)
            self._set_result(pd.Series([1.0], index=tickers), "optimal", True)
            return self
        corr = np.clip(covariance / np.outer(std, std), -1.0, 1.0)
        distance = np.sqrt(0.5 * (1.0 - corr))
        np.fill_diagonal(distance, 0.0)
        self.linkage_ = linkage(
            squareform(distance, checks=False),
            method=self.linkage_method,
            optimal_ordering=self.optimal_ordering,
        )
        order = leaves_list(self.linkage_)
        self.order_ = list(tickers[order])
        weights = hrp_weights(covariance, order)
        self._set_result(pd.Series(weights, index=tickers), "optimal", True)
        return self


class HierarchicalEqualRiskContribution(Allocation):
    """HERC: skfolio ``HierarchicalEqualRiskContribution`` (see the module docstring).

    ``risk_measure`` is a skfolio ``RiskMeasure`` value (``"variance"``, the default, or
    ``"standard_deviation"``, ``"cvar"``, ...). With the variance, cluster weights make
    W_c * Var_c equal across a split; with the standard deviation they make W_c * sigma_c
    equal, which for uncorrelated clusters is equal Euler variance contribution.
    ``linkage_method``: scipy's (``"ward"``); ``n_clusters``: the number of clusters cut from
    the tree (None = skfolio's two-order-difference gap statistic). The prior is the sample
    covariance (Ledoit-Wolf when T <= N, as every skfolio-backed method here). Long-only,
    fully invested; ``previous_weights`` is kept, not used.
    After fit: ``n_clusters_`` (the k used) and ``linkage_``.
    """

    def __init__(
        self,
        risk_measure: str = "variance",
        linkage_method: str = "ward",
        n_clusters: int | None = None,
        previous_weights: pd.Series | None = None,
    ) -> None:
        self.risk_measure = risk_measure
        self.linkage_method = linkage_method
        self.n_clusters = n_clusters
        self.previous_weights = previous_weights

    def fit(self, X: pd.DataFrame, y: None = None) -> HierarchicalEqualRiskContribution:
        from skfolio import RiskMeasure
        from skfolio.cluster import HierarchicalClustering, LinkageMethod
        from skfolio.optimization import HierarchicalEqualRiskContribution as SkfolioHERC

        x = _validate_returns(X)
        tickers = X.columns
        if (x.std(axis=0) <= 0).any():
            self._set_result(_nan_weights(tickers), "failed: zero-variance asset", False)
            return self
        if x.shape[1] == 1:
            self.n_clusters_ = 1
            self._set_result(pd.Series([1.0], index=tickers), "optimal", True)
            return self
        model = SkfolioHERC(
            risk_measure=RiskMeasure(self.risk_measure),
            prior_estimator=_empirical_prior(*x.shape),
            hierarchical_clustering_estimator=HierarchicalClustering(
                max_clusters=self.n_clusters, linkage_method=LinkageMethod(self.linkage_method)
            ),
            raise_on_failure=False,
        )
        model.fit(X)
        clustering = getattr(model, "hierarchical_clustering_estimator_", None)
        if clustering is not None and hasattr(clustering, "n_clusters_"):
            self.n_clusters_ = int(clustering.n_clusters_)
            self.linkage_ = clustering.linkage_matrix_
        weights, status, feasible = _skfolio_weights(model, tickers)
        self._set_result(weights, status, feasible)
        return self


class MinimumCVaR(Allocation):
    """Minimum CVaR_beta portfolio (skfolio ``MeanRisk``, Rockafellar-Uryasev LP on HiGHS).

    CVaR_beta(w) = min_a a + E[(-r'w - a)^+] / (1 - beta) over the T historical scenarios
    (losses positive). Long-only, fully invested; ``previous_weights`` is kept, not used.
    After fit: ``cvar_`` (daily, in-sample) and ``solver_``.
    """

    def __init__(
        self,
        beta: float = 0.95,
        solver: str | None = None,
        previous_weights: pd.Series | None = None,
    ) -> None:
        self.beta = beta
        self.solver = solver
        self.previous_weights = previous_weights

    def fit(self, X: pd.DataFrame, y: None = None) -> MinimumCVaR:
        from skfolio import RiskMeasure
        from skfolio.optimization import MeanRisk, ObjectiveFunction

        x = _validate_returns(X)
        tickers = X.columns
        solver, params = (self.solver, {}) if self.solver else _lp_solver()
        model = MeanRisk(
            objective_function=ObjectiveFunction.MINIMIZE_RISK,
            risk_measure=RiskMeasure.CVAR,
            cvar_beta=self.beta,
            # CVaR needs no covariance, but skfolio fits the prior's anyway: keep it cheap
            prior_estimator=_empirical_prior(*x.shape),
            solver=solver,
            solver_params=params,
            raise_on_failure=False,
        )
        model.fit(X)
        self.solver_ = solver
        weights, status, feasible = _skfolio_weights(model, tickers)
        self._set_result(weights, status, feasible)
        self.cvar_ = cvar(x @ weights.to_numpy(), self.beta) if feasible else float("nan")
        return self


def cvar(portfolio_returns: np.ndarray, beta: float = 0.95) -> float:
    """Historical CVaR_beta (losses positive): the Rockafellar-Uryasev minimum over a,
    evaluated at a = VaR (the beta-quantile of losses), which attains it."""
    losses = -np.asarray(portfolio_returns, dtype=np.float64)
    var = float(np.quantile(losses, beta, method="inverted_cdf"))
    return var + float(np.maximum(losses - var, 0.0).mean()) / (1.0 - beta)


class RiskParity(Allocation):
    """Risk budgeting on variance (skfolio ``RiskBudgeting``): w_i (Sigma w)_i / w'Sigma w =
    b_i, with equal budgets b_i = 1/N unless ``risk_budget`` (dict ticker -> budget) is given.
    Long-only, fully invested; ``previous_weights`` is kept, not used.
    After fit: ``risk_contributions_`` (shares, sum to 1).
    """

    def __init__(
        self,
        risk_budget: dict[str, float] | None = None,
        solver: str = "CLARABEL",
        previous_weights: pd.Series | None = None,
    ) -> None:
        self.risk_budget = risk_budget
        self.solver = solver
        self.previous_weights = previous_weights

    def fit(self, X: pd.DataFrame, y: None = None) -> RiskParity:
        from skfolio import RiskMeasure
        from skfolio.optimization import RiskBudgeting

        x = _validate_returns(X)
        tickers = X.columns
        budget = None
        if self.risk_budget is not None:
            budget = np.array([self.risk_budget[t] for t in tickers], dtype=np.float64)
        model = RiskBudgeting(
            risk_measure=RiskMeasure.VARIANCE,
            risk_budget=budget,
            prior_estimator=_empirical_prior(*x.shape),
            solver=self.solver,
            raise_on_failure=False,
        )
        model.fit(X)
        weights, status, feasible = _skfolio_weights(model, tickers)
        self._set_result(weights, status, feasible)
        if feasible:
            w = weights.to_numpy()
            contributions = w * (_sample_covariance(x) @ w)
            self.risk_contributions_ = pd.Series(contributions / contributions.sum(), index=tickers)
        return self


@dataclass(frozen=True)
class _MarkowitzData:
    """One fit's inputs as arrays over the window's tickers (or over a subset of them)."""

    mu: np.ndarray
    covariance: np.ndarray  # daily, Sigma
    prev: np.ndarray  # previous weights, 0 where not held
    sector_ids: np.ndarray | None
    has_prev: bool
    # weight held in names outside these arrays (gone from the window, or eliminated at 0):
    # sold in full, so it only uses up turnover
    forced_sale: float

    @cached_property
    def factor(self) -> np.ndarray:
        """Upper triangular F with Sigma = F'F (computed only for a problem that is solved)."""
        return np.linalg.cholesky(self.covariance).T

    def subset(self, members: np.ndarray) -> _MarkowitzData:
        """The problem with every name outside the boolean mask ``members`` fixed at 0 and
        eliminated (an exact reduction): its held weight is sold, using up turnover. Sector
        ids are renumbered in the order of ``np.unique`` of the members' ids."""
        idx = np.flatnonzero(members)
        sector_ids = (
            None
            if self.sector_ids is None
            else np.unique(self.sector_ids[idx], return_inverse=True)[1].astype(np.int64)
        )
        return _MarkowitzData(
            mu=self.mu[idx],
            covariance=self.covariance[np.ix_(idx, idx)],
            prev=self.prev[idx],
            sector_ids=sector_ids,
            has_prev=self.has_prev,
            forced_sale=self.forced_sale + float(np.abs(self.prev[~members]).sum()),
        )


@dataclass(frozen=True)
class _Terms:
    """What a Markowitz problem is built from: arrays for a problem solved once, or cvxpy
    ``Parameter``s of a compiled problem (``MarkowitzProblems``)."""

    size: int
    mu: Any
    factor: Any  # sqrt(H) F
    prev: Any
    membership: Any | None  # sectors x names, 1 where the name is in the sector
    forced_sale: Any | None  # None: no turnover limit (no previous book)

    @classmethod
    def of(cls, data: _MarkowitzData, model: ConstrainedMarkowitz) -> _Terms:
        n = data.mu.size
        membership = None
        if data.sector_ids is not None:
            membership = np.zeros((int(data.sector_ids.max()) + 1, n))
            membership[data.sector_ids, np.arange(n)] = 1.0
        return cls(
            size=n,
            mu=data.mu,
            factor=np.sqrt(float(model.cost_horizon)) * data.factor,
            prev=data.prev,
            membership=membership,
            forced_sale=data.forced_sale if data.has_prev else None,
        )


def _capacity(n: int) -> int:
    """The compiled problem size that holds ``n`` names: a power of two, at least 16."""
    return max(16, 1 << (n - 1).bit_length())


class MarkowitzProblems:
    """Constrained Markowitz problems compiled once and re-solved with new parameter values
    (cvxpy DPP: the expected returns, the covariance factor, the previous book, the sectors,
    the forced sale are ``Parameter``s), one per size bucket (a power of
    two; an unused name's optimum is 0, see ``load``) and set of limits. The daily decision
    keeps one across sessions (live and backtest), so each bucket is compiled once a run.
    ``compilations_`` counts the compilations."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[Any, ...], tuple[Any, Any, dict[str, Any], _Terms]] = {}
        self.compilations_ = 0

    def load(
        self, model: ConstrainedMarkowitz, data: _MarkowitzData
    ) -> tuple[Any, Any, dict[str, Any]]:
        """The compiled problem for ``data`` under ``model``'s limits, its parameters set."""
        n = data.mu.size
        k = _capacity(n)
        sectors = data.sector_ids is not None and model.sector_cap is not None
        # sectors in a bucket of their own: a dense k x k membership would slow every solve
        s = (
            _capacity(int(data.sector_ids.max()) + 1)
            if sectors and data.sector_ids is not None
            else 0
        )
        key = (k, s, data.has_prev, *model._limits())
        if key not in self._compiled:
            terms = _Terms(
                size=k,
                mu=cp.Parameter(k),
                # upper triangular (a Cholesky factor): a dense k x k made Clarabel 3-6x slower
                factor=cp.Parameter((k, k), sparsity=np.triu_indices(k)),
                prev=cp.Parameter(k),
                membership=cp.Parameter((s, k)) if sectors else None,
                forced_sale=cp.Parameter(nonneg=True) if data.has_prev else None,
            )
            problem, w, constraints = model._build(terms)
            self._compiled[key] = (problem, w, constraints, terms)
            self.compilations_ += 1
        problem, w, constraints, terms = self._compiled[key]
        given = _Terms.of(data, model)
        terms.mu.value = _padded(given.mu, k)
        factor = _padded(given.factor, k)
        # an unused name has no edge, no sector, its own variance and costs to trade: its
        # optimum is 0; its weight of order 1e-10 is dropped with the padding
        factor[np.arange(n, k), np.arange(n, k)] = float(np.mean(np.diag(given.factor)))
        upper = np.triu_indices(k)
        terms.factor.value_sparse = coo_array((factor[upper], upper), shape=(k, k))
        terms.prev.value = _padded(given.prev, k)
        if terms.membership is not None and given.membership is not None:
            terms.membership.value = _padded(given.membership, terms.membership.shape)
        if terms.forced_sale is not None:
            terms.forced_sale.value = float(data.forced_sale)
        return problem, w[:n], constraints


def _padded(values: np.ndarray, k: int | tuple[int, ...]) -> np.ndarray:
    """``values`` (a vector or a matrix) in the top-left corner of zeros of size ``k`` (a
    side, or the shape)."""
    out = np.zeros((k,) * values.ndim if isinstance(k, int) else k)
    out[tuple(slice(0, d) for d in values.shape)] = values
    return out


@dataclass(frozen=True)
class _Multipliers:
    """A solve's Lagrange multipliers (cvxpy's duals of a maximisation: all >= 0) of the
    constraints a name at zero weight feels; 0 for a constraint the problem does not have."""

    budget: float
    sector: np.ndarray | None  # per sector of the solved problem's renumbered ids
    turnover: float
    vol: float


def _dual(constraint: Any | None) -> Any:
    return 0.0 if constraint is None else constraint.dual_value


# Clarabel's default duality gaps (1e-8) leave weights under a binding vol ceiling up to 1e-5
# off the optimum (the 500-name benchmark, against gaps of 1e-13); at 1e-11 the full problem
# is within 3e-7 there, and within 1.1e-6 on a flatter 150-name problem, where the working
# set (fewer names at zero inside the barrier) is within 1e-7.
_CLARABEL_SETTINGS = {"tol_gap_abs": 1e-11, "tol_gap_rel": 1e-11}
# a name outside the working set enters when its marginal gain beats its marginal cost by more
# than this (objective units per unit of weight); a smaller miss moves the optimum by its ratio
# to the name's curvature (H * risk_aversion * its variance, plus the vol ceiling's), about 1e-7
# of weight at most
_KKT_TOL = 1e-9


class ConstrainedMarkowitz(Allocation):
    """Quant50 constrained robust Markowitz (cvxpy, CLARABEL).

    maximise   H mu'w - risk_aversion / 2 * H w' Sigma w - cost_rate * ||w - w_prev||_1
    subject to w >= 0 (long-only), sum(w) <= 1 (cash = 1 - sum(w) >= 0),
               sum_{i in s} w_i <= sector_cap for every sector s (net exposure),
               ||w - w_prev||_1 <= max_turnover (total one-way L1 turnover of the risky book),
               sqrt(252) * sqrt(w' Sigma w) <= vol_target (ex-ante annualised vol),
               #{i: w_i != 0} <= max_names,
               |w_i| <= max_weight, sum of the 10 largest |w_i| <= max_top10 (concentration).
    With ``long_only=False`` the bound w >= 0 becomes a gross limit ||w||_1 <= gross_limit.

    Sigma: Ledoit-Wolf shrinkage (sklearn) of the daily returns, or ``covariance`` when given
    (the same estimate kept from running sums by the daily decision). mu: ``expected_returns``
    (pd.Series, e.g. ML views, daily) or the sample mean (mu, Sigma daily).
    ``cost_rate`` is the proportional cost per unit of NAV traded (10 bps = 0.001), a one-off
    charge, so the daily edge is scaled to ``cost_horizon`` = H sessions (default 252: annual
    return and variance against the cost of one rebalance; a one-day horizon would let a
    10 bps cost swamp any realistic daily edge and leave the book in cash).

    The vol target is a ceiling: the rest of NAV sits in cash, and with a positive
    risk-adjusted edge the optimiser goes up to it. Cardinality: no mixed-integer SOCP
    solver is available on this stack (cvxpy has CLARABEL and SCIPY; scipy's MILP is
    linear only), so it is a documented two-stage heuristic: solve the convex relaxation,
    keep the ``max_names`` largest weights (names held in w_prev at their old weight
    count as candidates like any other), fix every other weight to exactly zero and
    re-solve over the kept names only. If that problem is infeasible the result is reported
    infeasible.

    Working set (``working_set=True``, long-only): the relaxation's optimum is unique (Sigma
    is positive definite) and holds few names, so it is solved exactly by column generation.
    The working set S starts as the held names, the ``warm_start`` tickers (e.g. yesterday's
    ``active_set_``) and the ``working_set_size`` names of highest mu; the problem restricted
    to S (every other weight eliminated at 0) is solved, and its multipliers certify each name
    outside S (w_prev_i = 0 there: held names are always in S): w_i = 0 satisfies the full
    problem's KKT conditions when H mu_i - H risk_aversion (Sigma w)_i - l_budget - l_sector(i)
    - l_vol (Sigma w)_i / sqrt(w' Sigma w) <= cost_rate + l_turnover (the top-10 term's
    subgradient can be taken 0 at a zero entry, the max-weight bound is slack there).
    Violators enter S, largest violation first, at most ``working_set_size`` a round, until
    none is left; the restricted optimum is then the full problem's. A restricted problem that
    fails (infeasible: a hedge the vol ceiling needs may be outside S), or a certificate that
    is undefined, falls back to the full solve. cvxpy's Clarabel interface takes no warm
    start, so the warm start is this set of names. ``working_set=False`` always solves the
    full problem, as does ``long_only=False``.

    ``previous_weights``: yesterday's live book (None = first build from cash: costs charged
    against zero, no turnover cap); names in it that are missing from the returns are sold in
    full and that sale counts against the turnover cap. ``sectors``: pd.Series ticker ->
    sector (None = no sector cap); each unclassified name is capped alone
    (``quant_core.sectors``).
    After fit: ``expected_returns_``, ``covariance_`` (Ledoit-Wolf, daily), ``turnover_``,
    ``ex_ante_vol_`` (annualised), ``violations_`` (check_constraints on the result),
    ``stage_`` ("relaxed": one relaxation sufficed; "restricted": the cardinality re-solve
    ran), ``active_set_`` (tickers the relaxation's optimum holds: tomorrow's ``warm_start``;
    the whole final working set would grow the next day's, with today's high-mu names),
    ``working_set_`` (tickers of the final working set, every ticker when the full problem
    was solved), ``working_set_rounds_`` (restricted relaxations solved; 0 for the full
    solve), ``timings_`` (seconds: ``estimate_s`` the covariance, and over the
    ``solves`` (each restricted or full problem), cvxpy's ``compile_s``, the solver's own
    ``solver_s`` and ``other_s``, building the problem with its Cholesky factor and
    unpacking the solution).
    """

    def __init__(
        self,
        max_names: int | None = 50,
        sector_cap: float | None = 0.25,
        max_turnover: float | None = 0.15,
        vol_target: float | None = 0.10,
        cost_rate: float = 0.001,
        risk_aversion: float = 1.0,
        cost_horizon: int = TRADING_DAYS,
        long_only: bool = True,
        gross_limit: float = 1.0,
        max_weight: float | None = None,
        max_top10: float | None = None,
        tol: float = 1e-6,
        solver: str = "CLARABEL",
        previous_weights: pd.Series | None = None,
        sectors: pd.Series | None = None,
        expected_returns: pd.Series | None = None,
        working_set: bool = True,
        working_set_size: int = 100,
        warm_start: pd.Index | list[str] | None = None,
        covariance: pd.DataFrame | None = None,
        problems: MarkowitzProblems | None = None,
    ) -> None:
        self.max_names = max_names
        self.sector_cap = sector_cap
        self.max_turnover = max_turnover
        self.vol_target = vol_target
        self.cost_rate = cost_rate
        self.risk_aversion = risk_aversion
        self.cost_horizon = cost_horizon
        self.long_only = long_only
        self.gross_limit = gross_limit
        self.max_weight = max_weight
        self.max_top10 = max_top10
        self.tol = tol
        self.solver = solver
        self.previous_weights = previous_weights
        self.sectors = sectors
        self.expected_returns = expected_returns
        self.working_set = working_set
        self.working_set_size = working_set_size
        self.warm_start = warm_start
        self.covariance = covariance
        self.problems = problems

    def claimed_violations(self) -> list[str]:
        return list(self.violations_)

    def _limits(self) -> tuple[Any, ...]:
        """The constants a compiled problem is built with (``MarkowitzProblems``' key)."""
        return (
            self.sector_cap,
            self.max_turnover,
            self.vol_target,
            self.cost_rate,
            self.risk_aversion,
            self.cost_horizon,
            self.max_top10,
            self.max_weight,
        )

    def _constraints(self, w: Any, risk: Any, trade: Any, terms: _Terms) -> dict[str, Any]:
        """The constraints by name (those the certificate reads: budget, sector, turnover,
        vol)."""
        # risk = sqrt(H) F w: ||risk||^2 is the horizon's variance, ||risk|| its volatility
        scale = np.sqrt(float(self.cost_horizon))
        constraints: dict[str, Any] = {
            "factor": risk == terms.factor @ w,
            "budget": cp.sum(w) <= 1,
        }
        if self.long_only:
            constraints["sign"] = w >= 0
        else:
            constraints["gross"] = cp.norm1(w) <= self.gross_limit
        if terms.membership is not None and self.sector_cap is not None:
            constraints["sector"] = terms.membership @ w <= self.sector_cap
        if terms.forced_sale is not None and self.max_turnover is not None:
            constraints["turnover"] = trade + terms.forced_sale <= self.max_turnover
        # |w| = w when long-only: no auxiliary variables for the absolute values
        size = w if self.long_only else cp.abs(w)
        if self.max_weight is not None:
            constraints["max_weight"] = size <= self.max_weight
        if self.max_top10 is not None:
            # the sum of the k largest entries is convex: an exact constraint, no heuristic
            constraints["top10"] = cp.sum_largest(size, min(10, terms.size)) <= self.max_top10
        if self.vol_target is not None:
            daily = self.vol_target / np.sqrt(TRADING_DAYS)
            constraints["vol"] = cp.norm(risk, 2) <= scale * daily
        return constraints

    def _problem(self, data: _MarkowitzData) -> tuple[Any, Any, dict[str, Any]]:
        """The cvxpy problem, its weights (an expression over the data's names) and its
        constraints by name: from ``problems`` (compiled once, new parameter values) when
        given, else built for this data alone."""
        if self.problems is not None and self.working_set and self.long_only:
            return self.problems.load(self, data)
        return self._build(_Terms.of(data, self))

    def _build(self, terms: _Terms) -> tuple[Any, Any, dict[str, Any]]:
        n = terms.size
        w = cp.Variable(n)
        # risk = sqrt(H) F w as its own variable: the quadratic term then has a diagonal P
        # and the dense factor appears once, in an equality (much faster in CLARABEL at large
        # N); at the horizon's scale, risk and its bound are of the order of the weights
        risk = cp.Variable(n)  # ||risk||^2 = H w' Sigma w, Sigma = F'F
        trade = cp.norm1(w - terms.prev)
        objective = cp.Maximize(
            float(self.cost_horizon) * (terms.mu @ w)
            - 0.5 * self.risk_aversion * cp.sum_squares(risk)
            - self.cost_rate * trade
        )
        constraints = self._constraints(w, risk, trade, terms)
        return cp.Problem(objective, list(constraints.values())), w, constraints

    def _solve(self, data: _MarkowitzData) -> tuple[np.ndarray | None, str, _Multipliers | None]:
        """One problem's weights (None unless solved), status and multipliers. Clarabel runs
        to ``_CLARABEL_SETTINGS`` first; where it cannot reach them (optimal_inaccurate), it
        runs again at its defaults, and that run's status is the one reported."""
        started = time.perf_counter()
        problem, w, constraints = self._problem(data)
        attempts: list[dict[str, float]] = [{}]
        if self.solver == "CLARABEL":
            # the defaults passed explicitly: cvxpy re-solves a problem with its last options
            attempts = [_CLARABEL_SETTINGS, {"tol_gap_abs": 1e-8, "tol_gap_rel": 1e-8}]
        for attempt, settings in enumerate(attempts, start=1):
            try:
                with warnings.catch_warnings():
                    if attempt < len(attempts):  # an inaccurate run here is run again
                        warnings.filterwarnings("ignore", "Solution may be inaccurate")
                    # cvxpy reads the compiled problem's sparse factor densely once per solve
                    warnings.filterwarnings("ignore", "Reading from a sparse CVXPY expression")
                    problem.solve(solver=self.solver, **settings)
            except cp.error.SolverError as exc:
                return None, f"solver_error: {exc}", None
            finally:
                self._time(problem, time.perf_counter() - started)
                started = time.perf_counter()
            if problem.status != cp.OPTIMAL_INACCURATE:
                break
        status = str(problem.status)
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or w.value is None:
            return None, status, None
        out = np.asarray(w.value, dtype=np.float64)[: data.mu.size]
        # solver noise of order 1e-9 around zero (below the bound when long-only)
        noise = out < 1e-9 if self.long_only else np.abs(out) < 1e-9
        multipliers = _Multipliers(
            budget=float(_dual(constraints["budget"])),
            sector=(
                None
                if "sector" not in constraints or data.sector_ids is None
                else np.asarray(constraints["sector"].dual_value, dtype=np.float64)[
                    : int(data.sector_ids.max()) + 1
                ]
            ),
            turnover=float(_dual(constraints.get("turnover"))),
            # the multiplier of ||F w|| <= daily vol target, whose constraint is sqrt(H) times it
            vol=float(_dual(constraints.get("vol"))) * np.sqrt(float(self.cost_horizon)),
        )
        return np.where(noise, 0.0, out), status, multipliers

    def _time(self, problem: Any, seconds: float) -> None:
        """Add one solve to ``timings_``: cvxpy's compilation, the solver's own time, and the
        rest of the call (building the problem, unpacking the solution)."""
        stats = problem.solver_stats
        solver = float(stats.solve_time) if stats is not None and stats.solve_time else 0.0
        compile_s = float(problem.compilation_time or 0.0)
        self.timings_["solves"] += 1
        self.timings_["compile_s"] += compile_s
        self.timings_["solver_s"] += solver
        self.timings_["other_s"] += max(0.0, seconds - compile_s - solver)

    def _data(self, x: np.ndarray, tickers: pd.Index) -> _MarkowitzData:
        """The fit's arrays; sets ``expected_returns_`` and ``covariance_``."""
        previous = self.previous_weights
        mu = (
            self.expected_returns.reindex(tickers).to_numpy(dtype=np.float64)
            if self.expected_returns is not None
            else x.mean(axis=0)
        )
        if not np.isfinite(mu).all():
            raise ValueError("expected_returns must cover every ticker")
        sector_ids: np.ndarray | None = None
        if self.sectors is not None:
            labels = self.sectors.reindex(tickers)
            if labels.isna().any():
                raise ValueError("sectors must cover every ticker")
            # an unclassified name is capped as a sector of its own, never pooled
            sector_ids = pd.factorize(sector_groups(labels))[0].astype(np.int64)
        if self.covariance is not None:
            # the window's Ledoit-Wolf kept from running sums (portfolio/covariance.py)
            covariance = self.covariance.reindex(index=tickers, columns=tickers).to_numpy()
            if not np.isfinite(covariance).all():
                raise ValueError("covariance must cover every ticker")
        else:
            # the function, not the estimator: LedoitWolf.fit also inverts the matrix
            covariance, _ = ledoit_wolf(x)
        self.expected_returns_ = pd.Series(mu, index=tickers)
        self.covariance_ = pd.DataFrame(covariance, index=tickers, columns=tickers)
        return _MarkowitzData(
            mu=mu,
            covariance=covariance,
            prev=(
                previous.reindex(tickers).fillna(0.0).to_numpy(dtype=np.float64)
                if previous is not None
                else np.zeros(x.shape[1])
            ),
            sector_ids=sector_ids,
            has_prev=previous is not None,
            forced_sale=(
                float(previous[~previous.index.isin(tickers)].abs().sum())
                if previous is not None
                else 0.0
            ),
        )

    def _initial_working_set(self, data: _MarkowitzData, tickers: pd.Index) -> np.ndarray:
        """Held names, the ``warm_start`` tickers and the ``working_set_size`` highest mu."""
        members = data.prev != 0
        if self.warm_start is not None:
            members |= tickers.isin(pd.Index(self.warm_start))
        members[np.argsort(-data.mu, kind="stable")[: self.working_set_size]] = True
        return members

    def _entering(
        self, data: _MarkowitzData, weights: np.ndarray, members: np.ndarray, duals: _Multipliers
    ) -> np.ndarray | None:
        """Names outside ``members`` whose zero weight breaks the full problem's KKT
        conditions at the restricted optimum ``weights``, largest violation first (empty: the
        restricted optimum is the full one); None where the certificate is undefined."""
        inside = np.flatnonzero(members)
        sigma_w = data.covariance[:, inside] @ weights[inside]
        gain = float(self.cost_horizon) * (data.mu - self.risk_aversion * sigma_w) - duals.budget
        if duals.sector is not None and data.sector_ids is not None:
            by_sector = np.zeros(int(data.sector_ids.max()) + 1)
            # the restricted problem numbered its sectors in np.unique order of the members'
            by_sector[np.unique(data.sector_ids[inside])] = duals.sector
            gain -= by_sector[data.sector_ids]
        if duals.vol > _KKT_TOL:
            vol = float(np.sqrt(max(weights[inside] @ sigma_w[inside], 0.0)))
            if vol < 1e-12:
                return None  # the vol term's gradient is undefined at an empty book
            gain -= duals.vol * sigma_w / vol
        violation = gain - (self.cost_rate + duals.turnover)
        violation[members] = -np.inf
        entering = np.flatnonzero(violation > _KKT_TOL)
        return entering[np.argsort(-violation[entering], kind="stable")]

    def _relaxation(
        self, data: _MarkowitzData, tickers: pd.Index
    ) -> tuple[np.ndarray | None, str, np.ndarray]:
        """The convex relaxation's optimum, its status and its final working set (a mask):
        by working set where it applies, else (and as the fallback) the full problem."""
        self.working_set_rounds_ = 0
        everyone = np.ones(data.mu.size, dtype=bool)
        if not (self.working_set and self.long_only):
            return (*self._solve(data)[:2], everyone)
        members = self._initial_working_set(data, tickers)
        while not members.all():
            restricted, status, duals = self._solve(data.subset(members))
            self.working_set_rounds_ += 1
            if restricted is None or duals is None or status != cp.OPTIMAL:
                # infeasible on the subset (a hedge the vol ceiling needs may be outside it),
                # or multipliers too inexact to certify: the full problem decides
                break
            weights = np.zeros(data.mu.size)
            weights[members] = restricted
            entering = self._entering(data, weights, members, duals)
            if entering is None:
                break
            if entering.size == 0:
                return weights, status, members
            members = members.copy()
            members[entering[: self.working_set_size]] = True
        return (*self._solve(data)[:2], everyone)

    def _solve_with_cardinality(
        self, data: _MarkowitzData, tickers: pd.Index
    ) -> tuple[np.ndarray | None, str]:
        """The relaxation, then (above ``max_names`` names) the re-solve over the
        ``max_names`` largest weights only; sets ``stage_``, ``working_set_`` and
        ``active_set_``."""
        weights, status, members = self._relaxation(data, tickers)
        self.working_set_ = tickers[members]
        self.active_set_ = tickers[:0] if weights is None else tickers[weights != 0]
        self.stage_ = "relaxed"
        if (
            weights is not None
            and self.max_names is not None
            and int((np.abs(weights) > self.tol).sum()) > self.max_names
        ):
            kept = np.zeros(data.mu.size, dtype=bool)
            kept[np.argsort(-np.abs(weights), kind="stable")[: self.max_names]] = True
            restricted, status, _ = self._solve(data.subset(kept))
            weights = None
            if restricted is not None:
                weights = np.zeros(data.mu.size)
                weights[kept] = restricted
            self.stage_ = "restricted"
        return weights, status

    def _check(self, result: pd.Series, data: _MarkowitzData) -> list[str]:
        return check_constraints(
            result,
            prev_weights=self.previous_weights,
            sectors=self.sectors,
            max_names=self.max_names,
            sector_cap=self.sector_cap if self.sectors is not None else None,
            max_turnover=self.max_turnover if data.has_prev else None,
            vol_target=self.vol_target,
            covariance=self.covariance_,
            long_only=self.long_only,
            gross_limit=None if self.long_only else self.gross_limit,
            max_weight=self.max_weight,
            max_top10=self.max_top10,
            tol=self.tol,
        )

    def fit(self, X: pd.DataFrame, y: None = None) -> ConstrainedMarkowitz:
        x = _validate_returns(X)
        tickers = X.columns
        started = time.perf_counter()
        self.timings_ = dict.fromkeys(("solves", "compile_s", "solver_s", "other_s"), 0.0)
        data = self._data(x, tickers)
        self.timings_["estimate_s"] = time.perf_counter() - started
        weights, status = self._solve_with_cardinality(data, tickers)
        if weights is None:
            self._set_result(_nan_weights(tickers), f"infeasible ({self.stage_}): {status}", False)
            self.violations_ = ["infeasible"]
            self.turnover_ = float("nan")
            self.ex_ante_vol_ = float("nan")
            return self
        result = pd.Series(weights, index=tickers)
        self._set_result(result, status, True)
        self.turnover_ = float(np.abs(weights - data.prev).sum()) + data.forced_sale
        self.ex_ante_vol_ = ex_ante_volatility(weights, self.covariance_.to_numpy())
        self.violations_ = self._check(result, data)
        if self.violations_:
            # a solution the checker rejects is not handed on as a live book
            self.feasible_ = False
            self.status_ = f"{status}; violated: {'; '.join(self.violations_)}"
        return self


def check_constraints(
    weights: pd.Series,
    *,
    prev_weights: pd.Series | None = None,
    sectors: pd.Series | None = None,
    max_names: int | None = None,
    sector_cap: float | None = None,
    max_turnover: float | None = None,
    vol_target: float | None = None,
    covariance: pd.DataFrame | None = None,
    long_only: bool = True,
    gross_limit: float | None = None,
    max_weight: float | None = None,
    max_top10: float | None = None,
    fully_invested: bool = False,
    tol: float = 1e-6,
) -> list[str]:
    """Every violated hard constraint of ``weights`` as a readable line (empty = all hold).

    Checks: finite weights; largest |w| <= max_weight; ten largest |w| <= max_top10; long-only (w >= -tol); gross (sum |w| <= gross_limit + tol); budget (sum <= 1 + tol, or |sum - 1| <= tol
    when ``fully_invested``); cardinality (#{w > tol} <= max_names); each sector's sum
    <= sector_cap + tol; total turnover ||w - w_prev||_1 <= max_turnover + tol (w_prev
    reindexed, missing = 0); ex-ante annualised vol sqrt(252 w' Sigma w) <= vol_target + tol
    (``covariance`` daily).
    """
    violations: list[str] = []
    w = weights.astype(np.float64)
    if not np.isfinite(w.to_numpy()).all():
        return ["weights contain NaN or inf"]
    if long_only and (w < -tol).any():
        violations.append(f"long-only: min weight {w.min():.3g} < 0 ({w.idxmin()})")
    gross = float(w.abs().sum())
    if gross_limit is not None and gross > gross_limit + tol:
        violations.append(f"gross: sum of |weights| {gross:.6g} > {gross_limit}")
    total = float(w.sum())
    if fully_invested and abs(total - 1.0) > tol:
        violations.append(f"budget: sum of weights {total:.6g} != 1")
    elif total > 1.0 + tol:
        violations.append(f"budget: sum of weights {total:.6g} > 1")
    if max_weight is not None and float(w.abs().max()) > max_weight + tol:
        violations.append(f"max weight: {w.abs().idxmax()} {w.abs().max():.4f} > {max_weight}")
    if max_top10 is not None:
        top10 = float(w.abs().nlargest(10).sum())
        if top10 > max_top10 + tol:
            violations.append(f"top-10 weight: {top10:.4f} > {max_top10}")
    if max_names is not None:
        names = int((w.abs() > tol).sum())
        if names > max_names:
            violations.append(f"cardinality: {names} names > {max_names}")
    if sector_cap is not None:
        if sectors is None:
            raise ValueError("sector_cap needs sectors")
        by_sector = w.groupby(sector_groups(sectors.reindex(w.index))).sum()
        for sector, value in by_sector[by_sector > sector_cap + tol].items():
            violations.append(f"sector cap: {sector} {value:.4f} > {sector_cap}")
    if max_turnover is not None:
        traded = turnover(w, prev_weights)
        if traded > max_turnover + tol:
            violations.append(f"turnover: {traded:.4f} > {max_turnover}")
    if vol_target is not None:
        if covariance is None:
            raise ValueError("vol_target needs covariance")
        sigma = covariance.reindex(index=w.index, columns=w.index).to_numpy()
        vol = ex_ante_volatility(w.to_numpy(), sigma)
        if vol > vol_target + tol:
            violations.append(f"vol target: ex-ante {vol:.4f} > {vol_target}")
    return violations
