"""RankEnsemble weights and rank combination; ensemble evaluation on shared CPCV paths."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin

from quant_assets.models.cross_section import cs_rank, ic_summary
from quant_assets.models.ensemble import RankEnsemble, ensemble_cpcv
from quant_assets.models.validation import cpcv_evaluate, make_cpcv


def panel_index(n_dates: int, n_tickers: int) -> pd.MultiIndex:
    dates = pd.bdate_range("2023-01-02", periods=n_dates)
    return pd.MultiIndex.from_product(
        [dates, [f"T{i:02d}" for i in range(n_tickers)]], names=["date", "ticker"]
    )


class ColumnScore(RegressorMixin, BaseEstimator):
    """Scores = one column of X (no learning): makes the paths' content known in advance."""

    def __init__(self, column: str = "a") -> None:
        self.column = column

    def fit(self, X: pd.DataFrame, y: pd.Series) -> ColumnScore:
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return X[self.column].to_numpy(dtype=np.float64)


def test_weights_from_validation_rank_icir() -> None:
    ens = RankEnsemble.from_validation({"lgb": 1.5, "cat": 0.5, "tft": -0.3, "bad": math.nan})
    assert ens.weights == pytest.approx({"lgb": 0.75, "cat": 0.25, "tft": 0.0, "bad": 0.0})
    assert sum(ens.weights.values()) == pytest.approx(1.0)


def test_all_non_positive_icir_gives_equal_weights() -> None:
    ens = RankEnsemble.from_validation({"a": -1.0, "b": math.nan, "c": 0.0})
    assert ens.weights == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})


def test_explicit_weights_are_normalised_and_validated() -> None:
    assert RankEnsemble({"a": 2.0, "b": 6.0}).weights == pytest.approx({"a": 0.25, "b": 0.75})
    with pytest.raises(ValueError):
        RankEnsemble({"a": -1.0, "b": 2.0})
    with pytest.raises(ValueError):
        RankEnsemble({"a": 0.0})


def test_combine_is_the_weighted_mean_of_within_date_ranks() -> None:
    index = pd.MultiIndex.from_product([["d1", "d2"], ["w", "x", "y", "z"]])
    a = pd.Series([10.0, 20.0, 30.0, 40.0, 4.0, 3.0, 2.0, 1.0], index=index)
    # same order as ``a`` on d1 but on another scale: only ranks may matter
    b = pd.Series([-5.0, 100.0, 1e6, 2e6, 0.1, 0.4, 0.3, 0.2], index=index)
    out = RankEnsemble({"a": 0.25, "b": 0.75}).combine({"a": a, "b": b})
    third = 1 / 3
    rank_a = np.array([-0.5, -0.5 + third, 0.5 - third, 0.5, 0.5, 0.5 - third, -0.5 + third, -0.5])
    rank_b = np.array([-0.5, -0.5 + third, 0.5 - third, 0.5, -0.5, 0.5, 0.5 - third, -0.5 + third])
    np.testing.assert_allclose(out.to_numpy(), 0.25 * rank_a + 0.75 * rank_b)
    np.testing.assert_allclose(cs_rank(a).to_numpy(), rank_a)


def test_combine_skips_zero_weight_models_and_renormalises_over_missing_scores() -> None:
    index = pd.MultiIndex.from_product([["d1"], ["w", "x", "y"]])
    a = pd.Series([2.0, 3.0, 1.0], index=index)  # ranks 0, 0.5, -0.5
    b = pd.Series([3.0, np.nan, 1.0], index=index)  # ranks over its 2 valid names: 0.5, -0.5
    ens = RankEnsemble({"a": 0.25, "b": 0.75, "unused": 0.0})
    out = ens.combine({"a": a, "b": b})  # "unused" has no scores and needs none
    # x has no b score: its value is a's rank alone
    np.testing.assert_allclose(out.to_numpy(), [0.75 * 0.5, 0.5, -0.5])
    with pytest.raises(KeyError):
        ens.combine({"a": a})


def test_ensemble_on_cpcv_paths_combines_path_by_path() -> None:
    rng = np.random.default_rng(21)
    index = panel_index(60, 40)
    label = pd.Series(rng.normal(size=len(index)), index=index)
    good = 0.4 * label + rng.normal(size=len(index))
    other = 0.4 * label + rng.normal(size=len(index))  # independent noise: averaging helps
    wrong = -0.2 * label + rng.normal(size=len(index))
    X = pd.DataFrame({"good": good, "other": other, "wrong": wrong}, index=index)
    # ten dates a fold: a shorter embargo than training's, which a column score does not need
    cv = make_cpcv(6, 2, embargo_size=2)
    results = {name: cpcv_evaluate(ColumnScore(name), X, label, cv) for name in X.columns}
    assert results["wrong"].rank_icir < 0

    combined = ensemble_cpcv(results)
    assert list(combined.predictions.columns) == list(range(cv.n_test_paths))
    weights = RankEnsemble.from_validation({n: r.rank_icir for n, r in results.items()})
    assert weights.weights["wrong"] == 0.0
    expected = weights.combine({"good": good, "other": other})
    for path in combined.predictions:
        np.testing.assert_allclose(combined.predictions[path], expected)
    # two independent noisy views of the label rank better together than either alone
    assert combined.paths["rank_ic_mean"].min() > results["good"].paths["rank_ic_mean"].max()
    assert combined.paths["rank_ic_mean"].iloc[0] == pytest.approx(
        ic_summary(expected, label)["rank_ic_mean"]
    )


def test_ensemble_refuses_results_on_different_paths() -> None:
    rng = np.random.default_rng(22)
    index = panel_index(60, 10)
    label = pd.Series(rng.normal(size=len(index)), index=index)
    X = pd.DataFrame({"a": rng.normal(size=len(index))}, index=index)
    five = cpcv_evaluate(ColumnScore("a"), X, label, make_cpcv(6, 2, embargo_size=2))
    six = cpcv_evaluate(ColumnScore("a"), X, label, make_cpcv(5, 3))
    assert len(six.paths) == 6
    with pytest.raises(ValueError, match="same rows and paths"):
        ensemble_cpcv({"five": five, "six": six})
