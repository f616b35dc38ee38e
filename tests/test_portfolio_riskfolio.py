"""Riskfolio-Lib methods: HERC cluster split and relaxed risk parity, checked analytically."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quant_assets.portfolio.allocation import RiskParity
from quant_assets.portfolio.riskfolio_methods import (
    HierarchicalEqualRiskContribution,
    RelaxedRiskParity,
)

ROOT = Path(__file__).resolve().parents[1]


def _returns_with_covariance(covariance: np.ndarray, sessions: int, seed: int) -> pd.DataFrame:
    """Returns whose SAMPLE covariance (ddof=1) is exactly ``covariance``."""
    n = covariance.shape[0]
    z = np.random.default_rng(seed).normal(size=(sessions, n))
    z -= z.mean(axis=0)
    # whiten so the sample covariance is the identity, then colour it
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    x = z @ np.linalg.cholesky(covariance).T
    return pd.DataFrame(x, columns=[f"T{i}" for i in range(n)])


def _two_blocks() -> tuple[pd.DataFrame, list[int], list[int], float, float]:
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


def test_module_import_does_not_import_riskfolio() -> None:
    code = (
        "import sys; import quant_assets.portfolio.riskfolio_methods; "
        "print('riskfolio' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


def test_herc_variance_split_between_two_clusters() -> None:
    frame, a, b, risk_a, risk_b = _two_blocks()
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
    # the gap statistic finds the two blocks on its own
    auto = HierarchicalEqualRiskContribution().fit(frame)
    assert auto.n_clusters_ == 2
    np.testing.assert_allclose(auto.weights_.to_numpy(), w, atol=1e-12)
    # optimal leaf ordering only swaps children: same weights
    ordered = HierarchicalEqualRiskContribution(n_clusters=2, leaf_order=True).fit(frame)
    np.testing.assert_allclose(ordered.weights_.to_numpy(), w, atol=1e-12)


def test_herc_volatility_split_is_equal_euler_risk_contribution() -> None:
    frame, a, b, risk_a, risk_b = _two_blocks()
    w = HierarchicalEqualRiskContribution(risk_measure="vol", n_clusters=2).fit(frame).weights_
    w_np = w.to_numpy()
    vol_a, vol_b = np.sqrt(risk_a), np.sqrt(risk_b)
    assert w_np[a].sum() == pytest.approx(vol_b / (vol_a + vol_b), abs=1e-9)
    # uncorrelated clusters: each block's Euler contribution w_c' Sigma_cc w_c is equal
    covariance = np.cov(frame.to_numpy(), rowvar=False)
    contributions = w_np * (covariance @ w_np)
    assert contributions[a].sum() == pytest.approx(contributions[b].sum(), rel=1e-8)


def _rp_case() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 8
    vols = np.linspace(0.008, 0.025, n)
    corr = np.corrcoef(rng.normal(size=(50, n)), rowvar=False) * 0.5 + 0.5 * np.eye(n)
    mu = np.linspace(0.0002, 0.0012, n)
    x = rng.multivariate_normal(mu, corr * np.outer(vols, vols), size=500)
    return pd.DataFrame(x, columns=[f"A{i}" for i in range(n)])


@pytest.fixture(scope="module")
def rp_case() -> tuple[pd.DataFrame, pd.Series]:
    frame = _rp_case()
    return frame, RiskParity().fit(frame).weights_


@pytest.mark.parametrize(("version", "penalty"), [("A", 1.0), ("C", 0.0)])
def test_rrp_without_relaxation_is_vanilla_risk_parity(
    rp_case: tuple[pd.DataFrame, pd.Series], version: str, penalty: float
) -> None:
    frame, vanilla = rp_case
    model = RelaxedRiskParity(version=version, l=penalty).fit(frame)
    n = frame.shape[1]
    assert model.feasible_ and model.status_ == "optimal"
    assert model.weights_.sum() == pytest.approx(1.0, abs=1e-9) and (model.weights_ >= 0).all()
    assert np.abs(model.risk_contributions_.to_numpy() - 1.0 / n).max() < 1e-3
    np.testing.assert_allclose(model.weights_.to_numpy(), vanilla.to_numpy(), atol=1e-3)


def test_rrp_relaxation_moves_off_parity(rp_case: tuple[pd.DataFrame, pd.Series]) -> None:
    frame, vanilla = rp_case
    n = frame.shape[1]
    mean = frame.mean().to_numpy()
    vanilla_return = float(mean @ vanilla.to_numpy())
    # a floor 10% above the RP book's return: vanilla RP (a unique point) cannot meet it
    target = 1.1 * vanilla_return
    relaxed = RelaxedRiskParity(version="C", l=1.0, target_return=target).fit(frame)
    assert relaxed.feasible_
    assert target > vanilla_return
    # met to the solver's tolerance, the same 1e-9 the estimator itself enforces
    assert relaxed.expected_return_ >= target - 1e-9
    assert np.abs(relaxed.risk_contributions_.to_numpy() - 1.0 / n).max() > 1e-2
    # the penalty alone (no floor) also bends the contributions; it has no mu in it, so it
    # buys no return on its own (on this case it gives slightly less than vanilla)
    penalised = RelaxedRiskParity(version="C", l=10.0).fit(frame)
    assert penalised.feasible_
    assert np.abs(penalised.risk_contributions_.to_numpy() - 1.0 / n).max() > 1e-2


def test_rrp_unreachable_target_is_reported_infeasible(
    rp_case: tuple[pd.DataFrame, pd.Series],
) -> None:
    frame, _ = rp_case
    model = RelaxedRiskParity(target_return=float(frame.mean().max()) * 2).fit(frame)
    assert not model.feasible_
    assert model.weights_.isna().all() and np.isnan(model.cash_)


def test_bad_input_raises() -> None:
    frame = _rp_case()
    frame.iloc[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        HierarchicalEqualRiskContribution().fit(frame)
    with pytest.raises(ValueError, match="NaN"):
        RelaxedRiskParity().fit(frame)
    with pytest.raises(ValueError, match="version"):
        RelaxedRiskParity(version="D").fit(_rp_case())
    with pytest.raises(ValueError, match="l must be"):
        RelaxedRiskParity(version="C", l=-1.0).fit(_rp_case())


def test_herc_zero_variance_asset_is_reported() -> None:
    frame = _rp_case()
    frame["A0"] = 0.0
    model = HierarchicalEqualRiskContribution().fit(frame)
    assert not model.feasible_ and model.weights_.isna().all()
