"""The model selection (nested, before a cutoff), its cross-sectional options and the quality
report: per-date feature normalisation, score neutralisation, recency weights, the quintile
spread after costs."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pandas as pd
import pytest

from quant_assets.models.boosting import LightGBMAlpha, recency_weights
from quant_assets.models.cross_section import neutralise, normalise_features
from quant_assets.models.quality import importance_stability, quintile_spread, yearly_quality
from quant_assets.models.selection import (
    FEATURE_SETS,
    ModelChoice,
    SelectionData,
    SelectionError,
    SelectionSpec,
    select_model,
)
from quant_assets.models.validation import cpcv_date_splits, label_overlaps, make_cpcv
from quant_core.calendar import trading_sessions
from quant_core.features import ALPHA158_NAMES, FACTOR_NAMES

CUTOFF = date(2021, 1, 4)


def _panel(n_tickers: int = 50, seed: int = 0) -> tuple[pd.DataFrame, dict[int, pd.Series]]:
    """Random features for every column of every feature set; the 5-session label carries a
    planted signal in REV21 (and the other horizons are its scaled versions)."""
    sessions = trading_sessions(date(2019, 11, 1), date(2021, 3, 1))
    index = pd.MultiIndex.from_product(
        [pd.DatetimeIndex(sessions), [f"T{i:02d}" for i in range(n_tickers)]],
        names=["date", "ticker"],
    )
    rng = np.random.default_rng(seed)
    columns = [*ALPHA158_NAMES, *FACTOR_NAMES]
    X = pd.DataFrame(rng.normal(size=(len(index), len(columns))).astype(np.float32), index, columns)
    noise = rng.normal(size=len(index))
    y5 = pd.Series(0.3 * X["REV21"].to_numpy() + noise, index=index) / 100
    labels = {1: y5 / 3, 5: y5, 20: y5 * 2}
    return X, labels


def _sectors(X: pd.DataFrame) -> pd.Series:
    tickers = X.index.get_level_values(1).unique()
    return pd.Series(["Energy" if i % 2 else "Utilities" for i in range(len(tickers))], tickers)


SMALL = SelectionSpec(
    window_sessions=200,
    n_folds=4,
    n_test_folds=2,
    start=ModelChoice(features="factors"),
    search=(("horizon", (20,)),),
)


def test_the_selection_never_sees_a_date_or_label_on_or_after_its_cutoff() -> None:
    X, labels = _panel()
    sectors = _sectors(X)
    clean = select_model(SelectionData(X, labels, sectors), CUTOFF, SMALL, log=lambda _: None)
    # shock every feature on/after the cutoff and every label whose horizon reaches it (the
    # last 20 sessions before the cutoff for the 20-session label)
    dates = X.index.get_level_values(0)
    sessions = sorted(set(dates))
    first_after = sessions.index(pd.Timestamp(CUTOFF))
    shocked_X = X.copy()
    shocked_X[dates >= pd.Timestamp(CUTOFF)] = 1e6
    shocked = {}
    for h, y in labels.items():
        reaching = dates >= sessions[first_after - h]
        shocked[h] = y.where(~reaching, -y * 50)
    moved = select_model(
        SelectionData(shocked_X, shocked, sectors), CUTOFF, SMALL, log=lambda _: None
    )
    pd.testing.assert_frame_equal(
        clean.table.drop(columns="seconds"), moved.table.drop(columns="seconds")
    )
    assert clean.choice == moved.choice
    # and the shock would have moved it had the selection looked one session further
    peek = SelectionData(shocked_X, shocked, sectors).before(date(2021, 1, 5))
    assert peek.X.index.get_level_values(0).max() == pd.Timestamp(CUTOFF)


def test_labels_whose_horizon_reaches_the_cutoff_are_removed_horizon_by_horizon() -> None:
    X, labels = _panel(n_tickers=3)
    seen = SelectionData(X, labels, _sectors(X)).before(CUTOFF)
    sessions = sorted(set(seen.X.index.get_level_values(0)))
    for h in (1, 5, 20):
        labelled = seen.labels[h].dropna().index.get_level_values(0)
        # the last labelled session is h sessions before the cutoff's first unseen one
        assert labelled.max() == sessions[-h - 1]


def test_the_planted_factor_signal_is_found_and_the_ensemble_is_not_worse_than_its_members() -> (
    None
):
    X, labels = _panel()
    selection = select_model(
        SelectionData(X, labels, _sectors(X)), CUTOFF, SMALL, log=lambda _: None
    )
    assert selection.choice.features == "factors"
    table = selection.table
    chosen = table[table["chosen"]]
    members = table[table["stage"] == "members"]
    assert len(chosen) == 1
    assert chosen["rank_ic"].iloc[0] >= members["rank_ic"].max() - 1e-12
    assert set(selection.weights) == {"lightgbm", "catboost"}
    assert (
        len(table[table["stage"] != "combination"]["choice"].unique()) <= SMALL.max_configurations
    )


def _designed_predictions(
    data: SelectionData, choice: ModelChoice, model: str, spec: SelectionSpec
):
    """In place of CPCV: the 5-session horizon predicts the label perfectly on even dates and
    is noise on odd ones (high Rank IC, unstable); the 20-session one is the label plus noise
    on every date (lower Rank IC, stable)."""
    y = data.labels[5]
    dates = y.index.get_level_values(0)
    window = y[dates >= np.sort(dates.unique())[-spec.window_sessions]].dropna()
    rng = np.random.default_rng(1)
    noise = pd.Series(rng.normal(size=len(window)), window.index)
    if choice.horizon == 5:
        day = window.index.get_level_values(0).dayofyear.to_numpy()
        score = window.where(day % 2 == 0, noise * window.std())
    else:
        score = window + 2.0 * window.std() * noise
    return pd.DataFrame({0: score, 1: score})


@pytest.mark.parametrize(("objective", "horizon"), [("rank_ic", 5), ("rank_icir", 20)])
def test_the_objective_decides_between_a_higher_ic_and_a_steadier_one(
    objective, horizon, monkeypatch
) -> None:
    from quant_assets.models import selection as module

    monkeypatch.setattr(module, "_cpcv_predictions", _designed_predictions)
    X, labels = _panel(n_tickers=20)
    spec = dataclasses.replace(SMALL, objective=objective)
    chosen = select_model(SelectionData(X, labels, _sectors(X)), CUTOFF, spec, log=lambda _: None)
    assert chosen.choice.horizon == horizon
    lightgbm = chosen.table[chosen.table["stage"] != "combination"].set_index("stage")
    # the designed case really opposes the two objectives
    assert lightgbm.loc["start", "rank_ic"] > lightgbm.loc["horizon", "rank_ic"]
    assert lightgbm.loc["start", "rank_icir"] < lightgbm.loc["horizon", "rank_icir"]


def test_a_search_over_the_budget_stops_with_a_clear_error() -> None:
    X, labels = _panel(n_tickers=6)
    spec = dataclasses.replace(SMALL, max_configurations=1)
    with pytest.raises(ValueError, match="exceeds 1 configurations"):
        select_model(SelectionData(X, labels, _sectors(X)), CUTOFF, spec, log=lambda _: None)


def test_a_history_too_short_for_any_split_is_a_clear_error_not_a_choice() -> None:
    # 3 tickers x 150 training dates: no leaf of 500 rows, every prediction constant
    X, labels = _panel(n_tickers=3)
    with pytest.raises(SelectionError, match="no horizon candidate could be scored"):
        select_model(SelectionData(X, labels, _sectors(X)), CUTOFF, SMALL, log=lambda _: None)


@pytest.mark.parametrize("horizon", [1, 5, 20])
def test_purge_and_embargo_follow_the_trained_horizon_and_cover_the_five_session_label(
    horizon: int,
) -> None:
    choice = ModelChoice(horizon=horizon)
    sessions = np.array(pd.DatetimeIndex(trading_sessions(date(2020, 1, 2), date(2021, 1, 4))))
    cv = make_cpcv(6, 2, choice.purge, choice.embargo)
    for split in cpcv_date_splits(sessions, cv):
        assert label_overlaps(split, sessions, horizon=horizon) == []
        # train labels (horizon h) never overlap a test date's 5-session label
        test = np.sort(np.concatenate(split.test_dates))
        pos = np.searchsorted(sessions, split.train_dates)
        test_pos = np.searchsorted(sessions, test)
        for p in pos:
            after = test_pos[test_pos >= p]
            before = test_pos[test_pos < p]
            assert not len(after) or after[0] >= p + horizon  # train label ends before test
            assert not len(before) or p > before[-1] + 5 - 1  # test label ends before train
    assert choice.purge == horizon and choice.embargo == max(horizon, 5)


def test_a_choice_round_trips_through_json_and_builds_its_estimator() -> None:
    choice = ModelChoice(
        features="factors",
        horizon=20,
        window="recency",
        feature_normalisation="rank_gauss",
        params="shallow",
        neutralisation="sector_beta",
        weighting="best",
    )
    assert ModelChoice.from_json(choice.to_json()) == choice
    model = choice.estimator("lightgbm")
    assert isinstance(model, LightGBMAlpha)
    assert (model.num_leaves, model.label_horizon, model.recency_half_life) == (4, 20, 252)
    assert model.feature_normalisation == "rank_gauss"
    assert choice.columns == list(FEATURE_SETS["factors"])
    assert ModelChoice(window="trailing").estimator("catboost").recency_half_life is None


# --- cross-sectional options -----------------------------------------------------------------


def _small_panel() -> pd.DataFrame:
    index = pd.MultiIndex.from_product(
        [pd.DatetimeIndex(["2021-01-04", "2021-01-05"]), ["A", "B", "C", "D"]]
    )
    return pd.DataFrame(
        {"x": [1.0, 5.0, 3.0, np.nan, 10.0, 40.0, 20.0, 30.0], "z": [2.0, 2.0, 2.0, 2.0] * 2},
        index=index,
    )


def test_rank_gauss_features_are_each_dates_normal_quantiles_and_missing_stays_missing() -> None:
    from scipy.special import ndtri

    out = normalise_features(_small_panel(), "rank_gauss")
    first = out.loc["2021-01-04", "x"]
    np.testing.assert_allclose(first.iloc[:3], ndtri((np.array([1, 3, 2]) - 0.5) / 3), rtol=1e-6)
    assert np.isnan(first.iloc[3])
    second = out.loc["2021-01-05", "x"]
    np.testing.assert_allclose(second, ndtri((np.array([1, 4, 2, 3]) - 0.5) / 4), rtol=1e-6)
    # the level over time is gone: same ranks, same values whatever the scale of the date
    assert out.loc["2021-01-04", "z"].nunique() == 1


def test_robust_zscore_features_are_winsorised_at_the_clip() -> None:
    frame = _small_panel()
    frame.iloc[4, 0] = 1e9
    out = normalise_features(frame, "robust_zscore", clip=2.0)
    assert out["x"].max() <= 2.0 and out.loc["2021-01-05", "x"].iloc[0] == pytest.approx(2.0)
    day = frame.loc["2021-01-04", "x"].dropna()
    mad = (day - day.median()).abs().median() * 1.4826
    expected = ((day - day.median()) / mad).clip(-2, 2)
    np.testing.assert_allclose(out.loc["2021-01-04", "x"].iloc[:3], expected, rtol=1e-6)


def test_neutralisation_removes_the_sector_mean_and_the_beta_exposure() -> None:
    rng = np.random.default_rng(4)
    index = pd.MultiIndex.from_product(
        [pd.DatetimeIndex(["2021-01-04", "2021-01-05"]), [f"T{i}" for i in range(12)]]
    )
    beta = pd.Series(rng.normal(1, 0.3, len(index)), index)
    sectors = pd.Series(["a", "b", "c"] * 4, [f"T{i}" for i in range(12)])
    sector_of = index.get_level_values(1).map(sectors.to_dict())
    score = pd.Series(rng.normal(size=len(index)), index) + 2 * beta + (sector_of == "a") * 3.0
    by_sector = neutralise(score, sectors)
    groups = [index.get_level_values(0), sector_of]
    assert by_sector.groupby(groups).mean().abs().max() < 1e-12
    both = neutralise(score, sectors, beta)
    assert both.groupby(groups).mean().abs().max() < 1e-12
    for day in index.get_level_values(0).unique():
        b = beta.loc[day] - beta.loc[day].groupby(sectors).transform("mean").values
        assert abs(np.dot(both.loc[day], b)) < 1e-9  # no beta exposure left
        assert abs(np.dot(by_sector.loc[day], b)) > 0.5  # which the sector step alone keeps


def test_recency_weights_halve_every_half_life_of_sessions() -> None:
    dates = pd.Index(np.repeat(pd.bdate_range("2021-01-04", periods=5), 2))
    weights = recency_weights(dates, half_life=2)
    assert weights is not None
    np.testing.assert_allclose(weights[::2], [0.25, 2**-1.5, 0.5, 2**-0.5, 1.0])
    assert recency_weights(dates, None) is None


def test_quintile_spread_earns_top_minus_bottom_and_pays_costs_on_traded_weight() -> None:
    days = pd.DatetimeIndex(trading_sessions(date(2021, 1, 4), date(2021, 1, 20)))[:10]
    tickers = [f"T{i}" for i in range(10)]
    index = pd.MultiIndex.from_product([days, tickers])
    score = pd.Series(np.tile(np.arange(10.0), 10), index)
    label = pd.Series(np.tile(np.linspace(-0.01, 0.01, 10), 10), index)
    out = quintile_spread(score, label, rebalance_every=5, cost_bps=10.0)
    gross = (0.01 + np.linspace(-0.01, 0.01, 10)[8]) / 2 - (
        -0.01 + np.linspace(-0.01, 0.01, 10)[1]
    ) / 2
    assert out["gross"] == pytest.approx(gross * 252 / 5)
    # the first rebalance buys 2 units of weight from cash, the second trades nothing
    assert out["net"] == pytest.approx((gross - 2 * 10 / 1e4 / 2) * 252 / 5)
    assert out["turnover"] == pytest.approx(0.0)
    flipped = score.where(score.index.get_level_values(0) < days[5], -score)
    assert quintile_spread(flipped, label, 5, 10.0)["turnover"] == pytest.approx(1.0)


def test_the_spread_is_the_mean_of_the_staggered_weekly_books_not_one_weekday() -> None:
    days = pd.DatetimeIndex(trading_sessions(date(2021, 1, 4), date(2021, 2, 20)))[:20]
    tickers = [f"T{i}" for i in range(10)]
    index = pd.MultiIndex.from_product([days, tickers])
    label = pd.Series(np.tile(np.linspace(-0.01, 0.01, 10), 20), index)
    # right on every fifth session from the first, backwards on the four others
    right = np.repeat(np.arange(20) % 5 == 0, 10)
    score = pd.Series(np.where(right, 1.0, -1.0) * np.tile(np.arange(10.0), 20), index)
    out = quintile_spread(score, label, rebalance_every=5, cost_bps=0.0)
    one_book = (0.01 + np.linspace(-0.01, 0.01, 10)[8]) / 2 - (
        -0.01 + np.linspace(-0.01, 0.01, 10)[1]
    ) / 2
    # the book started on the first session earns +one_book, the four others -one_book
    assert out["gross"] == pytest.approx((1 - 4) / 5 * one_book * 252 / 5)


def test_yearly_quality_reports_each_year_and_importance_stability_compares_retrainings() -> None:
    X, labels = _panel(n_tickers=10)
    table = yearly_quality(X["REV21"].astype(float), labels[5])
    assert list(table.index) == ["2019", "2020", "2021", "all"]
    assert table.loc["all", "rank_ic"] > 0.1 and 0 <= table.loc["2020", "positive_months"] <= 1
    a = pd.Series([3.0, 2.0, 1.0], ["x", "y", "z"])
    assert importance_stability([a, a * 2]) == pytest.approx(1.0)
    assert importance_stability([a, a[::-1].set_axis(a.index)]) == pytest.approx(-1.0)
