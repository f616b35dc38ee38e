"""Riskfolio-Lib's relaxed risk parity, checked analytically (HERC is skfolio's now: its tests
are in test_portfolio_allocation.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quant_assets.portfolio.allocation import RiskParity
from quant_assets.portfolio.riskfolio_methods import RelaxedRiskParity

ROOT = Path(__file__).resolve().parents[1]


def test_module_import_does_not_import_riskfolio() -> None:
    # the registry and the books import this module: Riskfolio loads only when RRP is fitted
    code = (
        "import sys; import quant_assets.portfolio.riskfolio_methods; "
        "import quant_assets.portfolio.books; "
        "print('riskfolio' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


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
        RelaxedRiskParity().fit(frame)
    with pytest.raises(ValueError, match="version"):
        RelaxedRiskParity(version="D").fit(_rp_case())
    with pytest.raises(ValueError, match="l must be"):
        RelaxedRiskParity(version="C", l=-1.0).fit(_rp_case())
