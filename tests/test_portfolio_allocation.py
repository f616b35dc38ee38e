"""Allocation estimators: analytical checks (HRP, HERC, min-CVaR LP, risk parity,
Black-Litterman, constrained Markowitz constraints and infeasibility reporting) and the
registry of methods (scikit-learn estimators that clone with their previous weights)."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy.optimize import linprog
from sklearn.base import BaseEstimator, clone

from quant_assets.portfolio import allocation
from quant_assets.portfolio.allocation import (
    BlackLittermanAllocation,
    ConstrainedMarkowitz,
    HierarchicalEqualRiskContribution,
    HierarchicalRiskParity,
    MinimumCVaR,
    RiskParity,
    check_constraints,
    cvar,
    hrp_weights,
)
from quant_assets.portfolio.books import DayInputs
from quant_assets.portfolio.methods import METHODS, VIEW_METHODS, build_estimator
from quant_core.allocation_methods import ALLOCATION_METHODS
from quant_core.sectors import UNCLASSIFIED
from resources.portfolio_policy import PortfolioPolicy


def _returns(seed: int, t: int, n: int, scale: float = 0.01) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    vols = scale * rng.uniform(0.5, 2.0, n)
    market = rng.standard_normal((t, 1))
    x = 0.0004 + vols * (0.5 * market + rng.standard_t(5, (t, n)) / np.sqrt(5 / 3))
    return pd.DataFrame(x, columns=[f"T{i:03d}" for i in range(n)])


# --- HRP -----------------------------------------------------------------------------------


def test_hrp_reproduces_skfolio_defaults() -> None:
    from skfolio.optimization import HierarchicalRiskParity as SkfolioHRP

    returns = _returns(1, 400, 15)
    ours = HierarchicalRiskParity().fit(returns)
    theirs = SkfolioHRP().fit(returns)
    np.testing.assert_allclose(ours.weights_.to_numpy(), theirs.weights_, atol=1e-12)
    assert ours.feasible_ and ours.cash_ == pytest.approx(0.0, abs=1e-12)


def _two_blocks(rho: float, sigma: float) -> np.ndarray:
    # block A: 4 assets with pairwise correlation rho; block B: 4 uncorrelated assets
    block = np.full((4, 4), rho)
    np.fill_diagonal(block, 1.0)
    corr = np.zeros((8, 8))
    corr[:4, :4] = block
    corr[4:, 4:] = np.eye(4)
    return sigma**2 * corr


def test_hrp_bisection_matches_closed_form_on_two_blocks() -> None:
    rho, sigma = 0.9, 0.01
    cov = _two_blocks(rho, sigma)
    weights = hrp_weights(cov, np.arange(8))
    # IVP variance of 4 equal-vol assets: sigma^2 (1 + 3 rho) / 4 in A, sigma^2 / 4 in B;
    # A gets 1 - var_A / (var_A + var_B) of the book, split equally inside each block
    var_a, var_b = sigma**2 * (1 + 3 * rho) / 4, sigma**2 / 4
    share_a = 1 - var_a / (var_a + var_b)
    expected = np.r_[np.full(4, share_a / 4), np.full(4, (1 - share_a) / 4)]
    np.testing.assert_allclose(weights, expected, rtol=1e-12)


def test_hrp_estimator_on_sampled_block_clusters() -> None:
    rng = np.random.default_rng(3)
    cov = _two_blocks(0.9, 0.01)
    x = rng.multivariate_normal(np.zeros(8), cov, size=20_000)
    # shuffle columns so the clustering, not the input order, has to find the blocks
    perm = rng.permutation(8)
    returns = pd.DataFrame(x[:, perm], columns=[f"A{i}" if i < 4 else f"B{i}" for i in perm])
    model = HierarchicalRiskParity().fit(returns)
    w = model.weights_
    assert (w > 0).all() and w.sum() == pytest.approx(1.0, abs=1e-12)
    # the seriation keeps each block contiguous, so the first split separates them
    first_half = {name[0] for name in model.order_[:4]}
    assert len(first_half) == 1
    share_a = w[[c for c in w.index if c.startswith("A")]].sum()
    var_a, var_b = (1 + 3 * 0.9) / 4, 1 / 4
    assert share_a == pytest.approx(1 - var_a / (var_a + var_b), abs=0.02)
    # the correlated block is penalised: each A name well below each B name
    assert w.filter(like="A").max() < w.filter(like="B").min()


# --- HERC (skfolio) ------------------------------------------------------------------------


def _returns_with_covariance(covariance: np.ndarray, sessions: int, seed: int) -> pd.DataFrame:
    """Returns whose SAMPLE covariance (ddof=1) is exactly ``covariance``."""
    n = covariance.shape[0]
    z = np.random.default_rng(seed).normal(size=(sessions, n))
    z -= z.mean(axis=0)
    # whiten so the sample covariance is the identity, then colour it
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    x = z @ np.linalg.cholesky(covariance).T
    return pd.DataFrame(x, columns=[f"T{i}" for i in range(n)])


def _herc_blocks() -> tuple[pd.DataFrame, list[int], list[int], float, float]:
    """Cluster A: 4 names, vol 1%, correlation 0.6; cluster B: 3 names, vol 2%, corr 0.3;
    no correlation across. Returns the frame, both index lists and each cluster's variance
    of its inverse-variance (here equal-weight) portfolio: v (1 + (n - 1) rho) / n."""
    blocks = [(4, 0.01, 0.6), (3, 0.02, 0.3)]
    n = sum(b[0] for b in blocks)
    covariance = np.zeros((n, n))
    members: list[list[int]] = []
    risks: list[float] = []
    start = 0
    for size, vol, rho in blocks:
        idx = list(range(start, start + size))
        block = np.full((size, size), rho * vol**2)
        np.fill_diagonal(block, vol**2)
        covariance[np.ix_(idx, idx)] = block
        members.append(idx)
        risks.append(vol**2 * (1 + (size - 1) * rho) / size)
        start += size
    frame = _returns_with_covariance(covariance, 400, seed=5)
    return frame, members[0], members[1], risks[0], risks[1]


@pytest.mark.parametrize(
    ("risk_measure", "n_clusters"),
    [("variance", None), ("variance", 3), ("standard_deviation", None), ("cvar", 4)],
)
def test_herc_is_skfolio_herc(risk_measure: str, n_clusters: int | None) -> None:
    from skfolio import RiskMeasure
    from skfolio.cluster import HierarchicalClustering
    from skfolio.optimization import HierarchicalEqualRiskContribution as SkfolioHERC

    returns = _returns(1, 400, 15)
    ours = HierarchicalEqualRiskContribution(risk_measure=risk_measure, n_clusters=n_clusters)
    ours.fit(returns)
    theirs = SkfolioHERC(
        risk_measure=RiskMeasure(risk_measure),
        hierarchical_clustering_estimator=HierarchicalClustering(max_clusters=n_clusters),
    ).fit(returns)
    assert ours.feasible_ and ours.status_ == "optimal"
    np.testing.assert_allclose(ours.weights_.to_numpy(), theirs.weights_, atol=1e-12)
    assert ours.n_clusters_ == theirs.hierarchical_clustering_estimator_.n_clusters_
    assert ours.cash_ == pytest.approx(0.0, abs=1e-12)


def test_herc_variance_split_between_two_clusters() -> None:
    frame, a, b, risk_a, risk_b = _herc_blocks()
    model = HierarchicalEqualRiskContribution(n_clusters=2).fit(frame)
    w = model.weights_.to_numpy()
    assert model.feasible_ and model.status_ == "optimal" and model.cash_ == pytest.approx(0.0)
    assert (w > 0).all() and w.sum() == pytest.approx(1.0, abs=1e-12)
    # variance risk measure: W_c proportional to 1 / Var_c, i.e. W_A Var_A = W_B Var_B
    expected_a = risk_b / (risk_a + risk_b)
    assert w[a].sum() == pytest.approx(expected_a, abs=1e-9)
    assert w[b].sum() == pytest.approx(1.0 - expected_a, abs=1e-9)
    # equal variances inside each cluster: inverse-variance weights are equal
    np.testing.assert_allclose(w[a], w[a][0], rtol=1e-9)
    np.testing.assert_allclose(w[b], w[b][0], rtol=1e-9)
    # left to skfolio's gap statistic, this tree is cut finer (B into its three names, so
    # B's risk is the sum of three): the weights are skfolio's own
    from skfolio.optimization import HierarchicalEqualRiskContribution as SkfolioHERC

    auto = HierarchicalEqualRiskContribution().fit(frame)
    theirs = SkfolioHERC().fit(frame)
    assert auto.n_clusters_ == theirs.hierarchical_clustering_estimator_.n_clusters_ == 4
    np.testing.assert_allclose(auto.weights_.to_numpy(), theirs.weights_, atol=1e-12)


def test_herc_volatility_split_is_equal_euler_risk_contribution() -> None:
    frame, a, b, risk_a, risk_b = _herc_blocks()
    model = HierarchicalEqualRiskContribution(risk_measure="standard_deviation", n_clusters=2)
    w_np = model.fit(frame).weights_.to_numpy()
    vol_a, vol_b = np.sqrt(risk_a), np.sqrt(risk_b)
    assert w_np[a].sum() == pytest.approx(vol_b / (vol_a + vol_b), abs=1e-9)
    # uncorrelated clusters: each block's Euler contribution w_c' Sigma_cc w_c is equal
    covariance = np.cov(frame.to_numpy(), rowvar=False)
    contributions = w_np * (covariance @ w_np)
    assert contributions[a].sum() == pytest.approx(contributions[b].sum(), rel=1e-8)


def test_herc_bad_input_is_refused_or_reported() -> None:
    frame = _returns(3, 200, 6)
    gapped = frame.copy()
    gapped.iloc[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        HierarchicalEqualRiskContribution().fit(gapped)
    frame["T000"] = 0.0
    model = HierarchicalEqualRiskContribution().fit(frame)
    assert not model.feasible_ and model.weights_.isna().all()


# --- minimum CVaR --------------------------------------------------------------------------


def _ru_lp(x: np.ndarray, beta: float) -> tuple[np.ndarray, float]:
    """Rockafellar-Uryasev LP, variables [w (N), a, u (T)], solved with scipy directly."""
    t, n = x.shape
    c = np.r_[np.zeros(n), 1.0, np.full(t, 1.0 / ((1 - beta) * t))]
    # u_t >= -x_t'w - a  <=>  -x_t'w - a - u_t <= 0
    a_ub = np.hstack([-x, -np.ones((t, 1)), -np.eye(t)])
    a_eq = np.r_[np.ones(n), 0.0, np.zeros(t)][None, :]
    bounds = [(0, None)] * n + [(None, None)] + [(0, None)] * t
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(t), A_eq=a_eq, b_eq=[1.0], bounds=bounds)
    assert res.status == 0
    return res.x[:n], float(res.fun)


@pytest.mark.parametrize("seed", [0, 1])
def test_min_cvar_matches_brute_force_lp(seed: int) -> None:
    returns = _returns(seed, 250, 6)
    beta = 0.95
    model = MinimumCVaR(beta=beta).fit(returns)
    assert model.feasible_
    w_lp, cvar_lp = _ru_lp(returns.to_numpy(), beta)
    assert model.cvar_ == pytest.approx(cvar_lp, rel=1e-6)
    np.testing.assert_allclose(model.weights_.to_numpy(), w_lp, atol=1e-5)
    assert cvar(returns.to_numpy() @ w_lp, beta) == pytest.approx(cvar_lp, rel=1e-9)


def test_cvar_of_uniform_losses() -> None:
    # losses 1..100: the worst 5% are 96..100, mean 98 (returns are minus the losses)
    assert cvar(-np.arange(1.0, 101.0), 0.95) == pytest.approx(98.0)


# --- risk parity ---------------------------------------------------------------------------


def test_risk_parity_equalises_risk_contributions() -> None:
    returns = _returns(2, 300, 10)
    model = RiskParity().fit(returns)
    assert model.feasible_
    assert model.weights_.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(model.risk_contributions_.to_numpy(), 0.1, atol=1e-4)


def test_risk_budgeting_follows_budgets() -> None:
    returns = _returns(4, 300, 4)
    budget = dict(zip(returns.columns, [0.4, 0.3, 0.2, 0.1], strict=True))
    model = RiskParity(risk_budget=budget).fit(returns)
    np.testing.assert_allclose(
        model.risk_contributions_.to_numpy(), [0.4, 0.3, 0.2, 0.1], atol=1e-4
    )


# --- Black-Litterman -----------------------------------------------------------------------


def test_black_litterman_without_views_returns_the_empirical_prior() -> None:
    returns = _returns(5, 300, 8)
    model = BlackLittermanAllocation(views=None).fit(returns)
    np.testing.assert_allclose(
        model.expected_returns_.to_numpy(), returns.mean().to_numpy(), rtol=1e-12
    )
    np.testing.assert_allclose(model.covariance_.to_numpy(), returns.cov().to_numpy(), rtol=1e-10)
    assert model.feasible_ and model.weights_.sum() == pytest.approx(1.0, abs=1e-6)


def test_black_litterman_without_views_returns_the_equilibrium_prior() -> None:
    returns = _returns(6, 300, 8)
    model = BlackLittermanAllocation(views=[], prior="equilibrium").fit(returns)
    # implied returns with unit risk aversion and equal market weights: Sigma w_mkt
    implied = returns.cov().to_numpy() @ np.full(8, 1 / 8)
    np.testing.assert_allclose(model.expected_returns_.to_numpy(), implied, rtol=1e-10)


def test_black_litterman_full_confidence_view_holds_and_input_is_untouched() -> None:
    returns = _returns(7, 300, 8)
    confidences = np.array([1, 0])  # integers: skfolio alone would give a NaN posterior
    views = ["T000 == 0.003", "T001 - T002 == 0.001"]
    model = BlackLittermanAllocation(views=views, view_confidences=confidences).fit(returns)
    assert confidences.dtype.kind == "i" and confidences.tolist() == [1, 0]
    mu = model.expected_returns_
    assert np.isfinite(mu).all()
    assert mu["T000"] == pytest.approx(0.003, rel=1e-6)
    assert model.feasible_
    # a bullish, certain view tilts the max-Sharpe book towards that name
    base = BlackLittermanAllocation().fit(returns)
    assert model.weights_["T000"] > base.weights_["T000"]


# --- constrained Markowitz -----------------------------------------------------------------


def _instance(seed: int, n: int = 60, t: int = 300) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    rng = np.random.default_rng(100 + seed)
    returns = _returns(seed, t, n)
    sectors = pd.Series([f"S{i % 6}" for i in range(n)], index=returns.columns)
    # strong, dispersed views so the caps and the vol target actually bind
    mu = pd.Series(rng.normal(0.0008, 0.0015, n), index=returns.columns)
    return returns, sectors, mu


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_constrained_markowitz_honours_every_constraint(seed: int) -> None:
    returns, sectors, mu = _instance(seed)
    limits = {
        "max_names": 10,
        "sector_cap": 0.25,
        "max_turnover": 0.15,
        "vol_target": 0.10,
        "max_weight": 0.12,
        "max_top10": 0.8,
    }
    first = ConstrainedMarkowitz(**limits, sectors=sectors, expected_returns=mu).fit(
        returns.iloc[:-20]
    )
    assert first.feasible_, first.status_
    # the next day: new expected returns so the book wants to move more than 15%
    shifted = mu.sample(frac=1.0, random_state=seed).set_axis(mu.index)
    model = ConstrainedMarkowitz(
        **limits, sectors=sectors, expected_returns=shifted, previous_weights=first.weights_
    ).fit(returns.iloc[20:])
    assert model.feasible_, model.status_
    w = model.weights_
    assert model.violations_ == []
    assert (
        check_constraints(
            w,
            prev_weights=first.weights_,
            sectors=sectors,
            covariance=model.covariance_,
            **limits,
        )
        == []
    )
    # independent re-computation of each limit
    assert (w >= 0).all()
    assert int((w > 1e-6).sum()) <= 10
    assert w.max() <= 0.12 + 1e-6 and w.nlargest(10).sum() <= 0.8 + 1e-6
    assert w.groupby(sectors).sum().max() <= 0.25 + 1e-6
    turnover = (w - first.weights_).abs().sum()
    assert turnover <= 0.15 + 1e-6 and turnover == pytest.approx(model.turnover_)
    sigma = model.covariance_.to_numpy()
    vol = np.sqrt(252 * w.to_numpy() @ sigma @ w.to_numpy())
    assert vol <= 0.10 + 1e-6
    assert model.cash_ == pytest.approx(1 - w.sum()) and model.cash_ >= -1e-9
    # the instance is built so that the turnover cap binds: the limit is really enforced
    assert turnover == pytest.approx(0.15, abs=1e-4)


def test_constrained_markowitz_vol_target_binds_and_rest_is_cash() -> None:
    _, _, mu = _instance(9)
    # ~30% annualised single-name vol: a fully invested book would overshoot 10%
    returns = _returns(9, 300, 60, scale=0.03)
    model = ConstrainedMarkowitz(
        max_names=None, sector_cap=None, max_turnover=None, expected_returns=mu.abs() + 0.002
    ).fit(returns)
    assert model.feasible_
    assert model.ex_ante_vol_ == pytest.approx(0.10, abs=1e-5)
    assert model.cash_ > 0.05


def test_concentration_limits_bind_where_the_unconstrained_book_breaches_them() -> None:
    returns, _, mu = _instance(7)
    free = ConstrainedMarkowitz(
        max_names=None, sector_cap=None, max_turnover=None, expected_returns=mu
    ).fit(returns)
    assert free.weights_.max() > 0.08 and free.weights_.nlargest(10).sum() > 0.5
    capped = ConstrainedMarkowitz(
        max_names=None,
        sector_cap=None,
        max_turnover=None,
        max_weight=0.08,
        max_top10=0.5,
        expected_returns=mu,
    ).fit(returns)
    assert capped.feasible_ and capped.violations_ == []
    assert capped.weights_.max() == pytest.approx(0.08, abs=1e-5)
    assert capped.weights_.nlargest(10).sum() <= 0.5 + 1e-6
    # check_constraints flags the free book against the same limits
    flagged = check_constraints(free.weights_, max_weight=0.08, max_top10=0.5)
    assert any("max weight" in v for v in flagged) and any("top-10" in v for v in flagged)


def test_cardinality_heuristic_cuts_a_wider_relaxation() -> None:
    returns, sectors, raw = _instance(4)
    # weakly dispersed views: the relaxation spreads over many names
    mu = 0.0006 + 0.1 * (raw - raw.mean())
    # a risk aversion high enough for the variance term to spread the book (16 names)
    wide = ConstrainedMarkowitz(
        max_names=None, risk_aversion=30, sectors=sectors, expected_returns=mu
    ).fit(returns)
    assert int((wide.weights_ > 1e-6).sum()) > 10
    narrow = ConstrainedMarkowitz(
        max_names=10, risk_aversion=30, sectors=sectors, expected_returns=mu
    ).fit(returns)
    assert wide.stage_ == "relaxed" and narrow.stage_ == "restricted"
    assert narrow.feasible_ and int((narrow.weights_ > 0).sum()) <= 10
    # the kept names are the relaxation's largest weights
    assert set(narrow.weights_[narrow.weights_ > 0].index) <= set(wide.weights_.nlargest(10).index)


def test_infeasible_problem_is_reported_not_relaxed() -> None:
    returns, sectors, mu = _instance(5)
    # 20 names at 5% each, a 5-name limit and 15% turnover: selling 75% is needed
    prev = pd.Series(0.0, index=returns.columns)
    prev.iloc[:20] = 0.05
    model = ConstrainedMarkowitz(
        max_names=5, sector_cap=None, sectors=sectors, expected_returns=mu, previous_weights=prev
    ).fit(returns)
    assert not model.feasible_
    assert "infeasible" in model.status_
    assert model.weights_.isna().all()


def test_names_dropped_from_the_universe_use_up_turnover() -> None:
    returns, sectors, mu = _instance(6)
    first = ConstrainedMarkowitz(max_names=10, sectors=sectors, expected_returns=mu).fit(returns)
    # yesterday's book also held a delisted name at 10%: only 5% of turnover is left
    prev = pd.concat([first.weights_ * 0.9, pd.Series({"GONE": 0.1})])
    model = ConstrainedMarkowitz(
        max_names=10, sectors=sectors, expected_returns=-mu, previous_weights=prev
    ).fit(returns)
    assert model.feasible_, model.status_
    moved = (model.weights_ - prev.reindex(model.weights_.index)).abs().sum()
    assert moved <= 0.05 + 1e-6
    assert moved == pytest.approx(0.05, abs=1e-4)  # reversed views: the cap binds
    assert model.turnover_ == pytest.approx(moved + 0.1)


def test_long_short_book_respects_gross_limit() -> None:
    returns, sectors, mu = _instance(7)
    model = ConstrainedMarkowitz(
        long_only=False, gross_limit=1.0, max_names=20, sectors=sectors, expected_returns=mu
    ).fit(returns)
    assert model.feasible_, model.status_
    w = model.weights_
    assert (w < -1e-4).any()
    assert w.abs().sum() <= 1.0 + 1e-6
    assert int((w.abs() > 1e-6).sum()) <= 20
    assert model.violations_ == []


def test_check_constraints_reports_every_violation() -> None:
    idx = ["A", "B", "C", "D"]
    w = pd.Series([0.6, 0.5, -0.1, 0.1], index=idx)
    sectors = pd.Series(["X", "X", "Y", "Y"], index=idx)
    prev = pd.Series([0.25, 0.25, 0.25, 0.25], index=idx)
    cov = pd.DataFrame(np.eye(4) * 0.0004, index=idx, columns=idx)
    found = check_constraints(
        w,
        prev_weights=prev,
        sectors=sectors,
        max_names=3,
        sector_cap=0.25,
        max_turnover=0.15,
        vol_target=0.10,
        covariance=cov,
    )
    kinds = {line.split(":")[0] for line in found}
    assert kinds == {"long-only", "budget", "cardinality", "sector cap", "turnover", "vol target"}
    assert check_constraints(w, long_only=False, gross_limit=1.0) == [
        "gross: sum of |weights| 1.3 > 1.0",
        "budget: sum of weights 1.1 > 1",
    ]
    assert check_constraints(pd.Series([0.25, 0.25, 0.25, 0.25], index=idx), max_names=4) == []


# --- constrained Markowitz: the exact working set ------------------------------------------


def _working_set_and_full(
    monkeypatch: pytest.MonkeyPatch, returns: pd.DataFrame, **params: Any
) -> tuple[ConstrainedMarkowitz, ConstrainedMarkowitz]:
    """The same problem fitted by working set and by the full solve; asserts they agree.

    The full solve runs to duality gaps of 1e-13: at the fit's own 1e-11 its many near-zero
    names stay inside the barrier and, under a binding vol ceiling, move the others by up to
    1.1e-6 (the 150-name case below), where the working set is within 1e-7 of it."""
    fast = ConstrainedMarkowitz(**params).fit(returns)
    with monkeypatch.context() as patch:
        patch.setitem(allocation._CLARABEL_SETTINGS, "tol_gap_abs", 1e-13)
        patch.setitem(allocation._CLARABEL_SETTINGS, "tol_gap_rel", 1e-13)
        full = ConstrainedMarkowitz(**params, working_set=False).fit(returns)
    # one solve per stage: the 1e-13 gaps were reached (no re-solve at the defaults)
    assert full.timings_["solves"] == (1 if full.stage_ == "relaxed" else 2)
    assert full.working_set_rounds_ == 0 and full.working_set_.equals(returns.columns)
    assert fast.feasible_ and full.feasible_, (fast.status_, full.status_)
    assert fast.stage_ == full.stage_ and fast.violations_ == full.violations_ == []
    np.testing.assert_allclose(fast.weights_.to_numpy(), full.weights_.to_numpy(), atol=1e-6)
    # started from the optimum's own names, the certificate lets no other name in: every
    # multiplier (budget, sector, turnover, vol) is read with its sign and scale
    exact = ConstrainedMarkowitz(
        **{**params, "working_set_size": 1}, warm_start=full.active_set_
    ).fit(returns)
    assert exact.working_set_rounds_ == 1
    np.testing.assert_allclose(exact.weights_.to_numpy(), full.weights_.to_numpy(), atol=1e-6)
    return fast, full


def _views(returns: pd.DataFrame, seed: int, mean: float, spread: float) -> pd.Series:
    rng = np.random.default_rng(200 + seed)
    return pd.Series(rng.normal(mean, spread, returns.shape[1]), index=returns.columns)


@pytest.mark.parametrize(("n", "seed"), [(80, 0), (150, 1), (300, 2)])
def test_the_working_set_finds_the_full_optimum_under_a_binding_vol_ceiling(
    monkeypatch: pytest.MonkeyPatch, n: int, seed: int
) -> None:
    # ~30% single-name vols and a strong edge: the book would run far above 10% vol
    returns = _returns(seed, 400, n, scale=0.02)
    fast, full = _working_set_and_full(
        monkeypatch,
        returns,
        max_names=None,
        sector_cap=None,
        expected_returns=_views(returns, seed, 0.001, 0.001),
        working_set_size=20,
    )
    assert full.ex_ante_vol_ == pytest.approx(0.10, abs=1e-6)
    # 20 candidates out of n: the restricted problem is far smaller than the full one
    assert fast.working_set_.size < n / 2 and fast.working_set_rounds_ >= 1


@pytest.mark.parametrize("seed", [3, 4])
def test_the_working_set_honours_binding_sector_caps_and_top_ten(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    returns = _returns(seed, 300, 200)
    sectors = pd.Series([f"S{i % 5}" for i in range(200)], index=returns.columns)
    views = _views(returns, seed, 0.0005, 0.0015)
    # sector S0 carries the best views, so its 20% cap binds
    views[sectors == "S0"] += 0.002
    fast, full = _working_set_and_full(
        monkeypatch,
        returns,
        max_names=None,
        sector_cap=0.20,
        max_weight=0.06,
        max_top10=0.45,
        sectors=sectors,
        expected_returns=views,
        working_set_size=30,
    )
    assert fast.working_set_.size < 100
    w = full.weights_
    assert w.groupby(sectors).sum().max() == pytest.approx(0.20, abs=1e-6)
    assert w.nlargest(10).sum() == pytest.approx(0.45, abs=1e-6)


@pytest.mark.parametrize(("n", "seed"), [(60, 5), (250, 6)])
def test_the_working_set_keeps_the_optimum_when_turnover_binds(
    monkeypatch: pytest.MonkeyPatch, n: int, seed: int
) -> None:
    returns = _returns(seed, 300, n)
    sectors = pd.Series([f"S{i % 6}" for i in range(n)], index=returns.columns)
    views = _views(returns, seed, 0.0008, 0.0015)
    first = ConstrainedMarkowitz(max_names=10, sectors=sectors, expected_returns=views).fit(returns)
    # reversed views the next day: the book wants to move far more than 15%
    fast, full = _working_set_and_full(
        monkeypatch,
        returns,
        max_names=10,
        sectors=sectors,
        expected_returns=-views,
        previous_weights=first.weights_[first.weights_ > 0],
        working_set_size=20,
    )
    assert full.turnover_ == pytest.approx(0.15, abs=1e-6)
    # every held name is in the working set, whatever its view
    assert set(first.weights_[first.weights_ > 0].index) <= set(fast.working_set_)


def test_names_the_candidates_miss_enter_in_a_later_round(monkeypatch: pytest.MonkeyPatch) -> None:
    returns = _returns(7, 400, 200, scale=0.02)
    views = _views(returns, 7, 0.0008, 0.0004)
    fast, full = _working_set_and_full(
        monkeypatch,
        returns,
        max_names=None,
        sector_cap=None,
        expected_returns=views,
        working_set_size=5,
    )
    top_five = views.nlargest(5).index
    held = full.weights_[full.weights_ > 1e-6].index
    # the optimum holds names outside the five best views: the certificate brought them in
    assert not set(held) <= set(top_five)
    assert fast.working_set_rounds_ >= 2
    assert set(held) <= set(fast.active_set_) <= set(fast.working_set_)


def test_a_warm_start_from_yesterdays_active_set_gives_the_cold_book() -> None:
    returns = _returns(8, 401, 200, scale=0.02)
    views = _views(returns, 8, 0.0008, 0.0004)
    params: dict[str, Any] = {
        "max_names": 8,
        "sector_cap": None,
        "working_set_size": 5,
    }
    today = ConstrainedMarkowitz(**params, expected_returns=views).fit(returns.iloc[:-1])
    # the cardinality cut left names of the relaxation out of the book: only the warm start
    # carries them into tomorrow's first working set
    assert today.stage_ == "restricted" and today.active_set_.size > 8
    tomorrow = returns.iloc[1:]
    shifted = views + _views(returns, 9, 0.0, 0.00005)
    day: dict[str, Any] = {
        **params,
        "expected_returns": shifted,
        "previous_weights": today.weights_[today.weights_ > 0],
    }
    cold = ConstrainedMarkowitz(**day).fit(tomorrow)
    warm = ConstrainedMarkowitz(**day, warm_start=today.active_set_).fit(tomorrow)
    full = ConstrainedMarkowitz(**day, working_set=False).fit(tomorrow)
    for book in (cold, warm):
        assert book.feasible_, book.status_
        np.testing.assert_allclose(book.weights_.to_numpy(), full.weights_.to_numpy(), atol=1e-6)
    assert warm.working_set_rounds_ < cold.working_set_rounds_


def test_a_hedge_outside_the_working_set_falls_back_to_the_full_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    returns = _returns(10, 500, 40)
    # B moves against T000 at three times its size: with 15% turnover, selling alone leaves
    # yesterday's 50% in T000 (33% vol) at 11% ex-ante vol; buying B is the way under 10%
    returns["B"] = -3.0 * returns["T000"] + 0.0005 * np.random.default_rng(1).standard_normal(500)
    views = _views(returns, 10, 0.0005, 0.0005)
    views["B"] = -0.002
    prev = pd.Series({"T000": 0.5})
    params: dict[str, Any] = {
        "max_names": None,
        "sector_cap": None,
        "expected_returns": views,
        "previous_weights": prev,
        "working_set_size": 5,
    }
    fast, _ = _working_set_and_full(monkeypatch, returns, **params)
    assert fast.weights_["B"] > 0.01
    # the first restricted problem, without B, is infeasible: the full problem decided
    assert fast.working_set_rounds_ == 1 and fast.working_set_.equals(returns.columns)
    without_b = ConstrainedMarkowitz(**params).fit(returns.drop(columns="B"))
    assert not without_b.feasible_ and "infeasible" in without_b.status_


def test_gaps_the_solver_cannot_reach_fall_back_to_its_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    returns, sectors, mu = _instance(3)
    params: dict[str, Any] = {"sectors": sectors, "expected_returns": mu, "working_set": False}
    defaults = {"tol_gap_abs": 1e-8, "tol_gap_rel": 1e-8}
    with monkeypatch.context() as patch:
        patch.setattr(allocation, "_CLARABEL_SETTINGS", defaults)
        plain = ConstrainedMarkowitz(**params).fit(returns)
    # gaps of 1e-16 are out of reach: Clarabel stops short (optimal_inaccurate) and the
    # problem runs again at the defaults, not at the options cvxpy kept from the first run
    unreachable = {"tol_gap_abs": 1e-16, "tol_gap_rel": 1e-16}
    monkeypatch.setattr(allocation, "_CLARABEL_SETTINGS", unreachable)
    model = ConstrainedMarkowitz(**params).fit(returns)
    assert model.timings_["solves"] == 2 and plain.timings_["solves"] == 1
    assert model.status_ == plain.status_ == "optimal"
    np.testing.assert_allclose(model.weights_.to_numpy(), plain.weights_.to_numpy(), atol=1e-10)


def test_a_long_short_book_is_still_solved_in_full() -> None:
    returns, sectors, mu = _instance(7)
    model = ConstrainedMarkowitz(
        long_only=False, max_names=20, sectors=sectors, expected_returns=mu
    ).fit(returns)
    assert model.feasible_ and model.working_set_rounds_ == 0
    assert model.working_set_.equals(returns.columns)


def test_a_clone_keeps_the_working_set_parameters() -> None:
    returns, sectors, mu = _instance(11)
    model = ConstrainedMarkowitz(
        sectors=sectors,
        expected_returns=mu,
        working_set_size=7,
        warm_start=list(returns.columns[-3:]),
    )
    copy = clone(model)
    assert copy.get_params()["warm_start"] == list(returns.columns[-3:])
    assert copy.working_set_size == 7 and copy.working_set
    fitted, refitted = model.fit(returns), copy.fit(returns)
    np.testing.assert_allclose(refitted.weights_.to_numpy(), fitted.weights_.to_numpy())
    # the warm-start names were in the first working set
    assert set(returns.columns[-3:]) <= set(fitted.working_set_)


# --- the registry of methods ---------------------------------------------------------------


def _day_inputs(previous: dict[str, pd.Series]) -> DayInputs:
    returns = _returns(8, 250, 12)
    returns.index = pd.RangeIndex(len(returns), name="date")
    sectors = pd.Series([f"S{i % 4}" for i in range(12)], index=returns.columns)
    views = pl.DataFrame(
        {
            "ticker": ["T000", "T001", "T002"],
            "expected_return_daily": [0.001, -0.0005, 0.0002],
            "confidence": [0.5, 0.3, 0.0],
        }
    )
    benchmark = returns.mean(axis=1).rename("SPY")
    return DayInputs(date(2024, 1, 2), returns, benchmark, sectors, views, previous)


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, pd.Series | pd.DataFrame):
        return bool(left.equals(right))
    if isinstance(left, np.ndarray):
        return bool(np.array_equal(left, right))
    return bool(left == right)


def test_registry_covers_exactly_the_policy_names() -> None:
    assert tuple(METHODS) == ALLOCATION_METHODS
    policy = PortfolioPolicy()
    assert set(policy.methods) <= set(ALLOCATION_METHODS)
    assert policy.live_method in policy.methods
    assert VIEW_METHODS == ("black_litterman", "constrained_markowitz")
    with pytest.raises(ValueError, match="unknown allocation method"):
        build_estimator("nope", _day_inputs({}), policy)


@pytest.mark.parametrize("method", ALLOCATION_METHODS)
def test_every_registered_method_clones_with_its_previous_weights(method: str) -> None:
    previous = pd.Series({"T000": 0.3, "T001": 0.2, "GONE": 0.1})
    model = build_estimator(method, _day_inputs({method: previous}), PortfolioPolicy())
    assert isinstance(model, BaseEstimator)
    params = model.get_params(deep=False)
    assert params["previous_weights"] is previous
    copy = clone(model)
    assert type(copy) is type(model) and copy is not model
    # clone hands __init__ deep copies: equal values, new objects, nothing fitted
    assert copy.previous_weights is not previous
    pd.testing.assert_series_equal(copy.previous_weights, previous)
    copied = copy.get_params(deep=False)
    assert copied.keys() == params.keys()
    assert all(_same(params[k], copied[k]) for k in params), method
    assert not hasattr(copy, "weights_")
    # without a previous book the method starts from cash
    assert build_estimator(method, _day_inputs({}), PortfolioPolicy()).previous_weights is None


def test_registry_builds_the_day_parameters() -> None:
    inputs = _day_inputs({})
    policy = PortfolioPolicy()
    bl = build_estimator("black_litterman", inputs, policy)
    # the zero-confidence view is dropped; the others are absolute views mu_b + excess
    assert bl.views is not None and len(bl.views) == 2
    assert list(bl.view_confidences) == [0.5, 0.3]
    markowitz = build_estimator("constrained_markowitz", inputs, policy)
    assert markowitz.max_names == policy.max_names
    assert markowitz.cost_rate == pytest.approx(policy.cost_bps / 1e4)
    assert markowitz.max_weight == policy.max_position
    pd.testing.assert_series_equal(markowitz.expected_returns, inputs.expected_returns())


def test_a_clone_refits_to_the_same_book_against_the_same_previous_weights() -> None:
    returns, sectors, mu = _instance(6)
    first = ConstrainedMarkowitz(max_names=10, sectors=sectors, expected_returns=mu).fit(returns)
    model = ConstrainedMarkowitz(
        max_names=10, sectors=sectors, expected_returns=-mu, previous_weights=first.weights_
    )
    fitted = model.fit(returns)
    refitted = clone(model).fit(returns)
    # reversed views and a 15% turnover cap: the previous book shapes the result
    assert fitted.turnover_ == pytest.approx(0.15, abs=1e-4)
    np.testing.assert_allclose(refitted.weights_.to_numpy(), fitted.weights_.to_numpy())


def _bars_with_a_benchmark_gap(gap: int) -> tuple[pl.DataFrame, list[date]]:
    from quant_assets.partitions import trading_sessions

    sessions = trading_sessions(date(2024, 1, 2), date(2024, 6, 1))
    rng = np.random.default_rng(5)
    rows = [
        {"ticker": t, "date": d, "adj_close": float(p)}
        for t in ("AAA", "BBB", "CCC", "IDX")
        for d, p in zip(
            sessions, 100 * np.cumprod(1 + rng.normal(0, 0.01, len(sessions))), strict=True
        )
        if not (t == "IDX" and d == sessions[gap])
    ]
    return pl.DataFrame(rows), sessions


def test_a_session_without_a_benchmark_return_leaves_the_window_and_nothing_else():
    from quant_assets.portfolio.books import InsufficientReturnsError, day_inputs, returns_panel

    bars, sessions = _bars_with_a_benchmark_gap(gap=50)
    panel = returns_panel(bars)
    sectors = pd.Series({"AAA": "Tech", "BBB": "Energy", "CCC": "Tech"})
    day = sessions[-1]
    inputs = day_inputs(day, panel, "IDX", sectors, None, {}, lookback_sessions=80)
    # the gap and the session after it have no benchmark return: both leave, the window keeps
    # its 80 sessions, and every stock stays investable
    assert sessions[50] not in inputs.returns.index and sessions[51] not in inputs.returns.index
    assert len(inputs.returns) == 80 and inputs.returns.index[0] == sessions[-82]
    assert list(inputs.returns.columns) == ["AAA", "BBB", "CCC"]
    assert not inputs.benchmark.isna().any()
    # a decision needs the benchmark's return of its own session
    with pytest.raises(InsufficientReturnsError, match="no return this session"):
        day_inputs(sessions[50], panel, "IDX", sectors, None, {}, lookback_sessions=40)


# --- unclassified names in the sector cap --------------------------------------------------


def _favoured_day(sectors_of_favoured: list[str]) -> DayInputs:
    """Twelve names; T000..T003 carry strong views, with the given sectors."""
    returns = _returns(21, 300, 12, scale=0.004)
    returns.index = pd.RangeIndex(len(returns), name="date")
    sectors = pd.Series(
        sectors_of_favoured + [f"S{i % 4}" for i in range(8)], index=returns.columns
    )
    views = pl.DataFrame(
        {
            "ticker": ["T000", "T001", "T002", "T003"],
            "expected_return_daily": [0.004] * 4,
            "confidence": [0.9] * 4,
        }
    )
    benchmark = returns.mean(axis=1).rename("SPY")
    return DayInputs(date(2024, 1, 2), returns, benchmark, sectors, views, {})


def test_unclassified_names_are_each_capped_alone_never_pooled() -> None:
    policy = PortfolioPolicy()
    favoured = ["T000", "T001", "T002", "T003"]
    unclassified = _favoured_day([UNCLASSIFIED] * 4)
    book = build_estimator("constrained_markowitz", unclassified, policy).fit(unclassified.returns)
    assert book.feasible_, book.status_
    w = book.weights_
    # together far above the 25% sector cap, each one within it (and within max_position)
    assert w[favoured].sum() > policy.sector_cap + 0.05
    assert w[favoured].max() <= min(policy.sector_cap, policy.max_position) + 1e-6
    assert check_constraints(w, sectors=unclassified.sectors, sector_cap=policy.sector_cap) == []
    # the same names filed in one real sector are held to the cap together
    pooled = _favoured_day(["Energy"] * 4)
    capped = build_estimator("constrained_markowitz", pooled, policy).fit(pooled.returns)
    assert capped.feasible_, capped.status_
    assert capped.weights_[favoured].sum() <= policy.sector_cap + 1e-6
    # the unclassified book, read with the four names in one sector, breaches that sector
    found = check_constraints(w, sectors=pooled.sectors, sector_cap=policy.sector_cap)
    assert [line.split(":")[1].split()[0] for line in found] == ["Energy"]
