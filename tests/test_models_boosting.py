"""LightGBMAlpha / CatBoostAlpha: planted-signal recovery, determinism, SHAP, sklearn API."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from quant_assets.models.boosting import CatBoostAlpha, LightGBMAlpha, _time_tail_split
from quant_assets.models.cross_section import ic_summary

SIGNAL = "f3"  # not the first column, so a column-order slip cannot pass by luck
N_DATES, N_TICKERS, N_FEATURES = 80, 60, 8
TEST_DATES = 20


def small(
    model: type[LightGBMAlpha] | type[CatBoostAlpha], **params: object
) -> LightGBMAlpha | CatBoostAlpha:
    """A fast configuration for the small panel (1 thread: OpenMP threads stall on a busy machine)."""
    if model is LightGBMAlpha:
        base: dict[str, object] = {"n_estimators": 60, "num_leaves": 8, "min_child_samples": 40}
    else:
        base = {"iterations": 60, "depth": 4}
    return model(**{**base, "n_jobs": 1, **params})


@pytest.fixture(scope="module")
def panel() -> tuple[pd.DataFrame, pd.Series]:
    """Noise features, one informative (monotone, non-linear) feature, fat-tailed label,
    per-date scale changes and a few NaNs in features and label."""
    rng = np.random.default_rng(11)
    dates = pd.bdate_range("2022-01-03", periods=N_DATES)
    index = pd.MultiIndex.from_product(
        [dates, [f"T{i:03d}" for i in range(N_TICKERS)]], names=["date", "ticker"]
    )
    n = len(index)
    X = pd.DataFrame(
        rng.normal(size=(n, N_FEATURES)).astype(np.float32),
        index=index,
        columns=[f"f{i}" for i in range(N_FEATURES)],
    )
    X.iloc[rng.random(n) < 0.03, 5] = np.nan
    signal = np.tanh(X[SIGNAL].to_numpy(dtype=np.float64))
    vol = np.repeat(rng.uniform(0.01, 0.05, N_DATES), N_TICKERS)  # a volatility regime per date
    y = pd.Series(vol * (signal + rng.standard_t(4, n)), index=index, name="label")
    y.iloc[-N_TICKERS:] = np.nan  # the last date has no forward return yet
    return X, y


def split(
    panel: tuple[pd.DataFrame, pd.Series],
) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    X, y = panel
    dates = X.index.get_level_values(0)
    cut = dates.unique()
    train = dates < cut[N_DATES - TEST_DATES - 5]  # 5 dates purged before the test block
    test = dates >= cut[N_DATES - TEST_DATES]
    return X[train], y[train], X[test], y[test]


@pytest.mark.parametrize("model", [LightGBMAlpha, CatBoostAlpha])
def test_recovers_the_planted_feature_out_of_sample(
    model: type[LightGBMAlpha], panel: tuple[pd.DataFrame, pd.Series]
) -> None:
    X_train, y_train, X_test, y_test = split(panel)
    est = small(model).fit(X_train, y_train)
    assert est.feature_importances_.index[0] == SIGNAL
    assert est.feature_importances_[SIGNAL] > 3 * est.feature_importances_.drop(SIGNAL).mean()
    scores = pd.Series(est.predict(X_test), index=X_test.index)
    metrics = ic_summary(scores, y_test)
    # the planted feature alone has a rank IC of about 0.45; a noise model 0 +- 0.03
    assert metrics["rank_ic_mean"] > 0.25
    assert metrics["rank_icir"] > 2.0
    assert est.shap_summary(X_test).index[0] == SIGNAL


@pytest.mark.parametrize("model", [LightGBMAlpha, CatBoostAlpha])
def test_deterministic_for_a_fixed_random_state(
    model: type[LightGBMAlpha], panel: tuple[pd.DataFrame, pd.Series]
) -> None:
    X_train, y_train, X_test, _ = split(panel)
    first = small(model, random_state=5).fit(X_train, y_train).predict(X_test)
    again = small(model, random_state=5).fit(X_train, y_train).predict(X_test)
    other = small(model, random_state=6).fit(X_train, y_train).predict(X_test)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)  # the seed reaches the row/feature subsampling


@pytest.mark.parametrize("model", [LightGBMAlpha, CatBoostAlpha])
def test_shap_contributions_plus_expected_value_sum_to_the_prediction(
    model: type[LightGBMAlpha], panel: tuple[pd.DataFrame, pd.Series]
) -> None:
    X_train, y_train, X_test, _ = split(panel)
    est = small(model).fit(X_train, y_train)
    shap = est.shap_values(X_test)
    assert list(shap.columns) == list(X_test.columns)
    assert shap.index.equals(X_test.index)
    np.testing.assert_allclose(
        shap.sum(axis=1).to_numpy() + est.expected_value_, est.predict(X_test), atol=1e-6
    )
    summary = est.shap_summary(X_test)
    np.testing.assert_allclose(summary[X_test.columns], shap.abs().mean()[X_test.columns])


def test_lightgbm_expected_value_is_the_booster_bias_column(
    panel: tuple[pd.DataFrame, pd.Series],
) -> None:
    X_train, y_train, X_test, _ = split(panel)
    est = small(LightGBMAlpha).fit(X_train, y_train)
    raw = est.booster_.predict(X_test.to_numpy(np.float32), pred_contrib=True)
    np.testing.assert_allclose(raw[:, -1], est.expected_value_)
    np.testing.assert_allclose(raw[:, :-1], est.shap_values(X_test).to_numpy())


@pytest.mark.parametrize("model", [LightGBMAlpha, CatBoostAlpha])
def test_fit_uses_the_cross_sectional_rank_of_the_label(
    model: type[LightGBMAlpha], panel: tuple[pd.DataFrame, pd.Series]
) -> None:
    # a per-date affine change of the label leaves every date's ranks, hence the model, as is
    X_train, y_train, X_test, _ = split(panel)
    dates = y_train.index.get_level_values(0)
    scale = pd.Series(np.arange(1, dates.nunique() + 1, dtype=float), index=dates.unique())
    warped = y_train * scale.reindex(dates).to_numpy() + 0.3
    base = small(model).fit(X_train, y_train).predict(X_test)
    np.testing.assert_allclose(small(model).fit(X_train, warped).predict(X_test), base)
    raw = small(model, normalisation="robust_zscore").fit(X_train, warped).predict(X_test)
    assert not np.allclose(raw, base)


@pytest.mark.parametrize("model", [LightGBMAlpha, CatBoostAlpha])
def test_sklearn_clone_and_params(model: type[LightGBMAlpha]) -> None:
    est = small(model, random_state=3)
    params = est.get_params()
    assert params["random_state"] == 3 and params["n_jobs"] == 1
    copy = clone(est)
    assert copy is not est and copy.get_params() == params
    copy.set_params(learning_rate=0.2)
    assert copy.get_params()["learning_rate"] == 0.2 and est.get_params()["learning_rate"] != 0.2


@pytest.mark.parametrize("model", [LightGBMAlpha, CatBoostAlpha])
def test_early_stopping_on_a_time_tail_of_the_training_dates(
    model: type[LightGBMAlpha], panel: tuple[pd.DataFrame, pd.Series]
) -> None:
    X_train, y_train, _, _ = split(panel)
    n_rounds = 400
    params = {"n_estimators" if model is LightGBMAlpha else "iterations": n_rounds}
    est = small(model, early_stopping_rounds=10, learning_rate=0.3, **params)
    est.fit(X_train, y_train)
    assert 0 < est.best_iteration_ < n_rounds


def test_time_tail_split_keeps_a_gap_before_the_validation_dates() -> None:
    dates = pd.Index(np.repeat(pd.bdate_range("2022-01-03", periods=50), 3))
    fit, valid = _time_tail_split(dates, fraction=0.2, gap=5)
    unique = dates.unique()
    assert set(dates[valid]) == set(unique[40:])
    assert set(dates[fit]) == set(unique[:35])
    assert not (fit & valid).any()


def test_predict_requires_the_fitted_features_and_reorders_them(
    panel: tuple[pd.DataFrame, pd.Series],
) -> None:
    X_train, y_train, X_test, _ = split(panel)
    est = small(LightGBMAlpha).fit(X_train, y_train)
    shuffled = X_test[list(reversed(X_test.columns))]
    np.testing.assert_array_equal(est.predict(shuffled), est.predict(X_test))
    with pytest.raises(ValueError, match="lacks fitted features"):
        est.predict(X_test.drop(columns=[SIGNAL]))


def test_lightgbm_bin_edges_come_from_bin_sample_rows(
    panel: tuple[pd.DataFrame, pd.Series],
) -> None:
    # the panel has fewer rows than the default sample: bin edges from all of them vs from 200
    X_train, y_train, X_test, _ = split(panel)
    full = small(LightGBMAlpha).fit(X_train, y_train).predict(X_test)
    again = small(LightGBMAlpha, bin_sample=len(X_train)).fit(X_train, y_train).predict(X_test)
    sampled = small(LightGBMAlpha, bin_sample=200).fit(X_train, y_train).predict(X_test)
    np.testing.assert_array_equal(full, again)
    assert not np.allclose(full, sampled)
