"""TemporalFusionAlpha: shapes and alignment, determinism, no look-ahead (labels never reach a
prediction, later features never change an earlier score), a planted signal, the sector static
covariate, a CPCV run, persistence and interpretation artifacts. One small model is trained per
module (plus short re-fits for determinism and CPCV), so the whole file stays around a minute on
two shared CPU cores."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from quant_assets.models.cross_section import normalise_label
from quant_assets.models.tft import TemporalFusionAlpha
from quant_assets.models.validation import cpcv_evaluate, make_cpcv
from quant_core.sectors import UNCLASSIFIED

N_TICKERS, N_SESSIONS, N_FEATURES = 12, 120, 6
TRAIN_SESSIONS = 90
SIGNAL = "F2"
LATE_TICKER, GAP_TICKER = "T03", "T07"
SECTORS = {f"T{i:02d}": f"S{i % 3}" for i in range(N_TICKERS)}
PARAMS: dict[str, Any] = dict(
    max_encoder_length=10,
    min_encoder_length=3,
    hidden_size=8,
    attention_head_size=1,
    hidden_continuous_size=4,
    max_epochs=3,
    batch_size=32,
    limit_train_batches=None,
    learning_rate=1e-2,
    interpretation_samples=512,
    sectors=SECTORS,
    accelerator="cpu",
    random_state=11,
)


def _data() -> tuple[pd.DataFrame, pd.Series]:
    """Random features; the label of (d, ticker) is mostly F2 at d. T03 starts at session 30,
    T07 misses sessions 50-54; some feature values are NaN."""
    rng = np.random.default_rng(5)
    dates = pd.bdate_range("2021-01-04", periods=N_SESSIONS)
    tickers = [f"T{i:02d}" for i in range(N_TICKERS)]
    index = pd.MultiIndex.from_product([dates, tickers], names=["date", "ticker"])
    X = pd.DataFrame(
        rng.standard_normal((len(index), N_FEATURES)).astype(np.float32),
        index=index,
        columns=[f"F{i}" for i in range(N_FEATURES)],
    )
    # the signal is persistent (AR(1), phi 0.9, unit variance) like most real features, so
    # every encoder step carries it, not only the last one
    shocks = rng.standard_normal((N_SESSIONS, N_TICKERS))
    signal = np.empty_like(shocks)
    signal[0] = shocks[0]
    for t in range(1, N_SESSIONS):
        signal[t] = 0.9 * signal[t - 1] + np.sqrt(1 - 0.81) * shocks[t]
    X[SIGNAL] = signal.reshape(-1).astype(np.float32)  # rows are date-major
    y = pd.Series(
        0.02 * X[SIGNAL].to_numpy(np.float64) + 0.005 * rng.standard_normal(len(index)),
        index=index,
        name="fwd_excess_5d",
    )
    X.iloc[rng.choice(len(X), 60, replace=False), 4] = np.nan
    day = index.get_level_values("date")
    name = index.get_level_values("ticker")
    keep = ~((name == LATE_TICKER) & (day < dates[30])) & ~(
        (name == GAP_TICKER) & (day >= dates[50]) & (day < dates[55])
    )
    return X[keep], y[keep]


def _train_part(X: pd.DataFrame, y: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    dates = X.index.get_level_values("date").unique()
    mask = X.index.get_level_values("date") < dates[TRAIN_SESSIONS]
    y_train = y[mask].copy()
    # the last 5 training labels are not realised yet at the cut
    y_train[y_train.index.get_level_values("date") >= dates[TRAIN_SESSIONS - 5]] = np.nan
    return X[mask], y_train


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    return _data()


@pytest.fixture(scope="module")
def fitted(data) -> TemporalFusionAlpha:
    X, y = data
    X_train, y_train = _train_part(X, y)
    # only fit(X, y), as cpcv_evaluate calls it: the sectors come from the constructor
    return TemporalFusionAlpha(**PARAMS).fit(X_train, y_train)


@pytest.fixture(scope="module")
def scores(fitted, data) -> np.ndarray:
    X, _ = data
    return fitted.predict(X)


def test_predict_shape_and_alignment(fitted, data, scores) -> None:
    X, _ = data
    assert scores.shape == (len(X),) and scores.dtype == np.float64
    s = pd.Series(scores, index=X.index)
    dates = X.index.get_level_values("date").unique()
    m = PARAMS["min_encoder_length"]
    # a ticker is scored from its m-th session on; before that NaN
    first = s.xs("T00", level="ticker")
    assert first.iloc[: m - 1].isna().all() and first.iloc[m - 1 :].notna().all()
    late = s.xs(LATE_TICKER, level="ticker")
    assert late.index[0] == dates[30]
    assert late.iloc[: m - 1].isna().all() and late.iloc[m - 1 :].notna().all()
    assert s.xs(GAP_TICKER, level="ticker").iloc[m - 1 :].notna().all()
    assert s.notna().sum() == len(X) - (m - 1) * N_TICKERS
    # series are scored independently: scoring a subset of tickers gives the same numbers
    subset = ["T01", LATE_TICKER, "T10"]
    in_subset = X.index.get_level_values("ticker").isin(subset)
    part = fitted.predict(X[in_subset])
    np.testing.assert_allclose(part, scores[in_subset], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="sorted"):
        fitted.predict(X.iloc[::-1])


def test_deterministic(data) -> None:
    X, y = data
    X_train, y_train = _train_part(X, y)
    short = {**PARAMS, "max_epochs": 2, "limit_train_batches": 4, "interpretation_samples": 64}
    first, second = (
        TemporalFusionAlpha(**short).fit(X_train, y_train).predict(X) for _ in range(2)
    )
    np.testing.assert_allclose(second, first, rtol=0, atol=1e-6)
    other = TemporalFusionAlpha(**{**short, "random_state": 12}).fit(X_train, y_train)
    assert np.nanmax(np.abs(other.predict(X) - first)) > 1e-4  # the seed matters


def test_later_features_never_change_an_earlier_score(fitted, data, scores) -> None:
    X, _ = data
    dates = X.index.get_level_values("date")
    cut = dates.unique()[100]
    altered = X.copy()
    after = dates > cut
    rng = np.random.default_rng(0)
    altered.loc[after] = (10 * rng.standard_normal(altered.loc[after].shape)).astype(np.float32)
    moved = fitted.predict(altered)
    np.testing.assert_array_equal(moved[~after], scores[~after])
    assert np.nanmax(np.abs(moved[after] - scores[after])) > 1e-3  # the alteration does matter
    # and dropping every later row leaves the earlier scores as they were (up to float32
    # rounding: other batches, other summation order)
    np.testing.assert_allclose(fitted.predict(X[~after]), scores[~after], rtol=0, atol=1e-5)


def test_labels_never_reach_a_prediction(fitted, data, scores) -> None:
    """The label of date t is realised at t + 5: no label may move any score. Build the model's
    input panel WITH labels (true, then with the 5 sessions before a prediction date scrambled
    and everything else flipped) and score it: it must match ``predict``, which has no labels."""
    X, y = data
    dates = X.index.get_level_values("date")
    unique = dates.unique()
    target = normalise_label(y, fitted.normalisation)
    rng = np.random.default_rng(1)
    recent = np.asarray((dates >= unique[95]) & (dates < unique[100]))
    perturbed = -target
    perturbed[recent] = 50.0 * rng.standard_normal(int(recent.sum()))
    for labels in (target, perturbed):
        panel, keys = fitted._panel(X, fitted.sectors_, labels)
        assert panel["__target"].abs().max() > 0  # the labels really are in the panel
        np.testing.assert_array_equal(fitted._score(panel, keys), scores)
    # the encoder reads the features and the relative time only; the decoder the relative time
    assert set(fitted.model_.encoder_variables) == {f"f{i}" for i in range(N_FEATURES)} | {
        "relative_time_idx"
    }
    assert fitted.model_.decoder_variables == ["relative_time_idx"]
    assert fitted.dataset_parameters_["add_target_scales"] is False
    assert not fitted.dataset_parameters_["lags"]


def test_planted_signal(fitted, data, scores) -> None:
    X, y = data
    dates = X.index.get_level_values("date").unique()
    s = pd.DataFrame({"score": scores, "label": y.to_numpy()}, index=X.index)
    holdout = s[s.index.get_level_values("date") >= dates[TRAIN_SESSIONS + 5]]
    ics = holdout.groupby(level="date").apply(lambda g: spearmanr(g["score"], g["label"]).statistic)
    assert ics.mean() > 0.5, ics.describe()
    importance = fitted.interpretation_["encoder_variable_importance"]
    assert importance.idxmax() == SIGNAL, importance
    features = fitted.feature_importances_
    assert list(features.index) == list(importance.drop("relative_time_idx").index)
    assert features.index[0] == SIGNAL


def test_sector_static_covariate(fitted, data, scores) -> None:
    X, _ = data
    assert fitted.sectors_ == SECTORS and fitted.model_.static_variables == ["sector"]
    # the sector is an input: another sector assignment moves the scores ...
    swapped = pd.DataFrame({"sector": {t: f"S{(int(t[1:]) + 1) % 3}" for t in SECTORS}})
    assert np.nanmax(np.abs(fitted.predict(X, swapped) - scores)) > 1e-6
    # ... and the same assignment passed as ``static`` reproduces the fitted map's scores
    same = pd.DataFrame({"sector": SECTORS})
    np.testing.assert_array_equal(fitted.predict(X, same), scores)
    with pytest.raises(ValueError, match="sector"):
        fitted.predict(X, pd.DataFrame({"industry": SECTORS}))


def test_an_unclassified_name_has_a_missing_sector_not_a_category(fitted, data) -> None:
    X, _ = data
    sectors = {**SECTORS, "T00": UNCLASSIFIED, "T01": "Unclassified (T01)"}
    del sectors["T02"]  # no sector at all
    panel, _ = fitted._panel(X, sectors, None)
    by_ticker = panel.groupby("__ticker", observed=True)["sector"].first()
    assert by_ticker["T00"] == by_ticker["T01"] == by_ticker["T02"] == "__unknown__"
    assert by_ticker["T03"] == SECTORS["T03"]


def test_runs_through_cpcv(data) -> None:
    """cpcv_evaluate clones the estimator and calls only fit(X, y) / predict(X_test_fold)."""
    X, y = data
    quick = {**PARAMS, "max_epochs": 4, "interpretation_samples": 32}
    # 3 folds, 2 of them tested per split: 3 fits on a third of the dates each, 2 paths
    result = cpcv_evaluate(TemporalFusionAlpha(**quick), X, y, make_cpcv(3, 2))
    assert len(result.fit_seconds) == 3 and result.predictions.shape[1] == 2
    dates = X.index.get_level_values("date")
    m = PARAMS["min_encoder_length"]
    for path in result.predictions:
        per_date = result.predictions[path].notna().groupby(dates).mean()
        # each fold is scored from its m-th date on (a fold arrives without its history); the
        # late ticker's own first m - 1 dates are the only partly scored ones
        assert (per_date == 0).sum() == 3 * (m - 1)
        assert (per_date == 1).sum() == len(per_date) - 3 * (m - 1) - (m - 1)
    assert (result.paths["rank_ic_mean"] > 0.3).all(), result.paths


def test_interpretation(fitted, tmp_path) -> None:
    interp = fitted.interpretation_
    assert set(interp) == {
        "encoder_variable_importance",
        "decoder_variable_importance",
        "static_variable_importance",
        "attention",
    }
    for part in interp.values():
        assert part.sum() == pytest.approx(1.0, abs=1e-5)
    assert set(interp["encoder_variable_importance"].index) == {
        f"F{i}" for i in range(N_FEATURES)
    } | {"relative_time_idx"}
    assert list(interp["static_variable_importance"].index) == ["sector"]
    assert len(interp["attention"]) == PARAMS["max_encoder_length"]
    frames = fitted.interpretation()
    assert list(frames["encoder_variable_importance"].columns) == ["variable", "importance"]
    assert frames["encoder_variable_importance"]["variable"].iloc[0] == SIGNAL
    attention = frames["attention"]
    assert list(attention.columns) == ["encoder_position", "attention"]
    assert attention["encoder_position"].tolist() == list(
        range(1 - PARAMS["max_encoder_length"], 1)
    )
    paths = fitted.save_interpretation(tmp_path / "interp")
    assert {p.name for p in paths} >= {"tft_interpretation.json", "tft_interpretation.png"}
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    assert (tmp_path / "interp" / "tft_interpretation.png").read_bytes()[:4] == b"\x89PNG"
    loaded = json.loads((tmp_path / "interp" / "tft_interpretation.json").read_text())
    assert loaded["encoder_variable_importance"][SIGNAL] == pytest.approx(
        float(interp["encoder_variable_importance"][SIGNAL])
    )
    csv = pd.read_csv(tmp_path / "interp" / "tft_attention.csv")
    pd.testing.assert_frame_equal(csv, attention, check_dtype=False)


def test_save_load_round_trip(fitted, data, scores, tmp_path) -> None:
    X, _ = data
    path = fitted.save(tmp_path / "tft.pt")
    loaded = TemporalFusionAlpha.load(path)
    assert loaded.get_params() == fitted.get_params()
    assert loaded.sectors_ == fitted.sectors_
    np.testing.assert_array_equal(loaded.predict(X), scores)
    pd.testing.assert_series_equal(
        loaded.interpretation_["encoder_variable_importance"],
        fitted.interpretation_["encoder_variable_importance"],
    )


def test_input_checks(data) -> None:
    X, y = data
    model = TemporalFusionAlpha(**PARAMS)
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict(X)
    with pytest.raises(ValueError, match="MultiIndex"):
        model.fit(X.reset_index(drop=True), y.reset_index(drop=True))
    with pytest.raises(ValueError, match="min_encoder_length"):
        TemporalFusionAlpha(**{**PARAMS, "min_encoder_length": 30}).fit(X, y)
