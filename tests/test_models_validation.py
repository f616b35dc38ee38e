"""CPCV over dates (purge, embargo, paths), walk-forward, and the cross-sectional IC metrics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.base import BaseEstimator, RegressorMixin

from quant_assets.models.cross_section import (
    cs_rank,
    daily_ic,
    ic_summary,
    normalise_label,
)
from quant_assets.models.validation import (
    cpcv_date_splits,
    cpcv_evaluate,
    label_overlaps,
    make_cpcv,
    panel_dates,
    walk_forward_evaluate,
)


def panel_index(n_dates: int, n_tickers: int) -> pd.MultiIndex:
    dates = pd.bdate_range("2021-01-04", periods=n_dates)
    tickers = [f"T{i:03d}" for i in range(n_tickers)]
    return pd.MultiIndex.from_product([dates, tickers], names=["date", "ticker"])


class ColumnScore(RegressorMixin, BaseEstimator):
    """Scores = one column of X; fails if asked to predict a row it was trained on."""

    def __init__(self, column: str = "score") -> None:
        self.column = column

    def fit(self, X: pd.DataFrame, y: pd.Series) -> ColumnScore:
        self.train_dates_ = set(X.index.get_level_values(0))
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        leaked = self.train_dates_ & set(X.index.get_level_values(0))
        assert not leaked, f"predicting dates seen in training: {sorted(leaked)[:3]}"
        return X[self.column].to_numpy(dtype=np.float64)


# --- CPCV splits -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_folds", "n_test_folds", "n_splits", "n_paths"), [(10, 8, 45, 36), (6, 2, 15, 5)]
)
def test_cpcv_split_and_path_counts_and_every_path_covers_every_date_once(
    n_folds: int, n_test_folds: int, n_splits: int, n_paths: int
) -> None:
    dates = panel_dates(panel_index(130, 1))
    cv = make_cpcv(n_folds, n_test_folds)
    splits = cpcv_date_splits(dates, cv)
    assert (cv.n_splits, cv.n_test_paths) == (n_splits, n_paths)
    assert len(splits) == n_splits
    covered: dict[int, list[np.datetime64]] = {}
    for split in splits:
        assert len(split.test_dates) == n_test_folds == len(split.path_ids)
        for test, path in zip(split.test_dates, split.path_ids, strict=True):
            covered.setdefault(int(path), []).extend(test.tolist())
    assert sorted(covered) == list(range(n_paths))
    for path_dates in covered.values():
        assert sorted(path_dates) == dates.tolist()  # each date once per path


@pytest.mark.parametrize(("n_folds", "n_test_folds"), [(10, 8), (6, 2)])
def test_default_purge_leaves_no_train_label_overlapping_a_test_label(
    n_folds: int, n_test_folds: int
) -> None:
    dates = panel_dates(panel_index(130, 1))
    for split in cpcv_date_splits(dates, make_cpcv(n_folds, n_test_folds)):
        test = np.concatenate(split.test_dates)
        assert not set(split.train_dates.tolist()) & set(test.tolist())
        assert label_overlaps(split, dates, horizon=5) == []


def test_label_overlap_check_catches_too_small_a_purge() -> None:
    # a 5-session label needs 4 dates purged on each side: 3 leaks, 4 does not
    dates = panel_dates(panel_index(120, 1))

    def overlaps(purge: int) -> int:
        cv = make_cpcv(6, 2, purged_size=purge, embargo_size=0)
        return sum(len(label_overlaps(s, dates)) for s in cpcv_date_splits(dates, cv))

    assert overlaps(0) > 0
    assert overlaps(3) > 0
    assert overlaps(4) == 0


def test_purge_and_embargo_dates_are_removed_around_every_test_block() -> None:
    dates = panel_dates(panel_index(120, 1))
    purge, embargo = 5, 2
    cv = make_cpcv(6, 2, purged_size=purge, embargo_size=embargo)
    n_blocked_after = 0
    for split in cpcv_date_splits(dates, cv):
        train = set(np.searchsorted(dates, split.train_dates).tolist())
        test = sorted(np.searchsorted(dates, np.concatenate(split.test_dates)).tolist())
        test_set = set(test)
        starts = [p for p in test if p - 1 not in test_set]
        ends = [p for p in test if p + 1 not in test_set]
        for a in starts:
            assert not train & set(range(a - purge, a))
        for b in ends:
            after = set(range(b + 1, min(b + 1 + purge + embargo, len(dates))))
            assert not train & after
            n_blocked_after += len(after)
        # everything that is neither test nor purged/embargoed is trained on
        blocked = set().union(
            *(range(a - purge, a) for a in starts),
            *(range(b + 1, b + 1 + purge + embargo) for b in ends),
        )
        assert train == set(range(len(dates))) - test_set - blocked
    assert n_blocked_after > 0


def test_embargo_removes_exactly_the_dates_after_test_blocks() -> None:
    dates = panel_dates(panel_index(120, 1))
    plain = cpcv_date_splits(dates, make_cpcv(6, 2, purged_size=5, embargo_size=0))
    embargoed = cpcv_date_splits(dates, make_cpcv(6, 2, purged_size=5, embargo_size=3))
    for a, b in zip(plain, embargoed, strict=True):
        kept_plain = set(np.searchsorted(dates, a.train_dates).tolist())
        kept_embargoed = set(np.searchsorted(dates, b.train_dates).tolist())
        assert kept_embargoed <= kept_plain
        dropped = sorted(kept_plain - kept_embargoed)
        test = set(np.searchsorted(dates, np.concatenate(a.test_dates)).tolist())
        ends = [p for p in test if p + 1 not in test and p + 1 < len(dates)]
        expected = sorted(p for e in ends for p in range(e + 6, e + 9) if p < len(dates))
        assert dropped == expected


# --- cpcv_evaluate ---------------------------------------------------------------------------


def test_cpcv_evaluate_assembles_out_of_sample_paths_and_their_metrics() -> None:
    rng = np.random.default_rng(3)
    index = panel_index(90, 40)
    label = pd.Series(rng.normal(size=len(index)), index=index)
    score = 0.4 * label + rng.normal(size=len(index))
    X = pd.DataFrame({"score": score, "noise": rng.normal(size=len(index))}, index=index)
    cv = make_cpcv(6, 2)
    result = cpcv_evaluate(ColumnScore("score"), X, label, cv)

    assert list(result.predictions.columns) == list(range(cv.n_test_paths))
    assert result.predictions.notna().all().all()
    for path in result.predictions:
        np.testing.assert_allclose(result.predictions[path].to_numpy(), score.to_numpy())
    assert len(result.fit_seconds) == cv.n_splits
    expected = ic_summary(score, label)
    assert len(result.paths) == cv.n_test_paths
    for metric in ("ic_mean", "rank_ic_mean", "icir", "rank_icir"):
        np.testing.assert_allclose(result.paths[metric], expected[metric])
        assert result.summary.loc[metric, "mean"] == pytest.approx(expected[metric])
    assert list(result.summary.columns) == ["mean", "std", "min", "q05", "q50", "q95"]


def test_cpcv_evaluate_paths_differ_when_models_differ_per_split() -> None:
    # a model fitted on different data must give different paths: the assembly is per split
    from quant_assets.models.boosting import LightGBMAlpha

    rng = np.random.default_rng(4)
    index = panel_index(90, 30)
    X = pd.DataFrame(rng.normal(size=(len(index), 3)), index=index, columns=["a", "b", "c"])
    y = pd.Series(0.3 * X["b"].to_numpy() + rng.normal(size=len(index)), index=index)
    est = LightGBMAlpha(n_estimators=20, num_leaves=4, min_child_samples=20, n_jobs=1)
    result = cpcv_evaluate(est, X, y, make_cpcv(6, 2))
    assert result.predictions.notna().all().all()
    assert not np.allclose(result.predictions[0], result.predictions[1])
    assert result.summary.loc["rank_ic_mean", "min"] > 0.1


# --- walk-forward ----------------------------------------------------------------------------


@pytest.mark.parametrize("expanding", [False, True])
def test_walk_forward_is_purged_and_out_of_sample(expanding: bool) -> None:
    rng = np.random.default_rng(5)
    index = panel_index(100, 20)
    label = pd.Series(rng.normal(size=len(index)), index=index)
    X = pd.DataFrame({"score": label + rng.normal(size=len(index))}, index=index)
    result = walk_forward_evaluate(
        ColumnScore("score"), X, label, train_days=30, test_days=20, purge=5, expanding=expanding
    )
    dates = panel_dates(index).tolist()
    pos = {pd.Timestamp(d): p for p, d in enumerate(dates)}
    previous_test_end = None
    for train_start, train_end, test_start, test_end in result.folds:
        assert pos[test_start] - pos[train_end] == 6  # 5 purged dates in between
        assert pos[train_start] == (0 if expanding else pos[train_end] - 29)
        if previous_test_end is not None:
            assert pos[test_start] == previous_test_end + 1
        previous_test_end = pos[test_end]
    assert previous_test_end == len(dates) - 1
    first_test = pos[result.folds[0][2]]
    scored = result.predictions.notna().groupby(level=0).all()
    assert not scored.iloc[:first_test].any() and scored.iloc[first_test:].all()
    assert result.summary["n_dates"] == len(dates) - first_test


# --- cross-sectional metrics -----------------------------------------------------------------


def test_ic_of_the_label_itself_is_one_and_of_its_negative_minus_one() -> None:
    rng = np.random.default_rng(6)
    index = panel_index(20, 50)
    label = pd.Series(rng.standard_t(3, size=len(index)), index=index)
    daily = daily_ic(label, label)
    np.testing.assert_allclose(daily["ic"], 1.0)
    np.testing.assert_allclose(daily["rank_ic"], 1.0)
    # ranks are invariant to a monotone transform, Pearson is not
    cubed = daily_ic(-(label**3), label)
    np.testing.assert_allclose(cubed["rank_ic"], -1.0)
    assert (cubed["ic"] > -1.0 + 1e-6).all()


def test_daily_ic_matches_scipy_per_date_and_skips_nan_rows_and_constant_dates() -> None:
    rng = np.random.default_rng(7)
    index = panel_index(6, 30)
    label = pd.Series(rng.normal(size=len(index)), index=index)
    score = pd.Series(rng.normal(size=len(index)) + label.to_numpy(), index=index)
    score.iloc[[1, 5, 40]] = np.nan
    label.iloc[[7, 70]] = np.nan
    dates = panel_dates(index)
    score.loc[dates[3]] = 2.0  # a constant score has no correlation
    daily = daily_ic(score, label)
    for d in dates:
        s, y = score.loc[d], label.loc[d]
        ok = s.notna() & y.notna()
        if d == dates[3]:
            assert math.isnan(daily.loc[d, "ic"]) and math.isnan(daily.loc[d, "rank_ic"])
            continue
        assert daily.loc[d, "ic"] == pytest.approx(pearsonr(s[ok], y[ok])[0])
        assert daily.loc[d, "rank_ic"] == pytest.approx(spearmanr(s[ok], y[ok])[0])
    summary = ic_summary(score, label)
    valid = daily.drop(index=dates[3])
    assert summary["n_dates"] == len(dates) - 1
    assert summary["icir"] == pytest.approx(valid["ic"].mean() / valid["ic"].std(ddof=1))
    assert summary["rank_icir"] == pytest.approx(
        valid["rank_ic"].mean() / valid["rank_ic"].std(ddof=1)
    )


def test_planted_correlation_is_recovered_by_ic_and_rank_ic() -> None:
    rho = 0.3
    rng = np.random.default_rng(8)
    index = panel_index(40, 500)
    z = rng.normal(size=len(index))
    label = pd.Series(z, index=index)
    score = pd.Series(rho * z + math.sqrt(1 - rho**2) * rng.normal(size=len(index)), index=index)
    summary = ic_summary(score, label)
    # 40 dates x 500 names: the standard error of the mean IC is about 0.007
    assert summary["ic_mean"] == pytest.approx(rho, abs=0.025)
    # Spearman of a bivariate normal with correlation rho
    assert summary["rank_ic_mean"] == pytest.approx(6 / math.pi * math.asin(rho / 2), abs=0.025)
    assert summary["icir"] > 5


def test_label_normalisations_are_per_date_and_scale_free() -> None:
    rng = np.random.default_rng(9)
    index = panel_index(5, 41)
    y = pd.Series(rng.standard_t(3, size=len(index)) * 0.02, index=index)
    y.iloc[3] = np.nan
    dates = panel_dates(index)
    rescaled = y.copy()
    on_date = (index.get_level_values(0) == dates[2]).astype(bool)
    rescaled[on_date] = y[on_date] * 50 + 0.1  # a volatile date, shifted too
    for method in ("rank_gauss", "rank_uniform", "robust_zscore"):
        out = normalise_label(y, method)
        assert np.isnan(out.iloc[3]) and out.notna().sum() == y.notna().sum()
        np.testing.assert_allclose(out, normalise_label(rescaled, method))
        for d in dates:
            by_label = out.loc[d].to_numpy()[np.argsort(y.loc[d].to_numpy())]
            by_label = by_label[~np.isnan(by_label)]
            assert (np.diff(by_label) >= 0).all()  # monotone in the label within the date
    gauss = normalise_label(y, "rank_gauss")
    assert gauss.groupby(level=0).mean().abs().max() < 1e-12
    uniform = normalise_label(y, "rank_uniform")
    assert uniform.groupby(level=0).min().eq(-0.5).all()
    assert uniform.groupby(level=0).max().eq(0.5).all()
    robust = normalise_label(y, "robust_zscore")
    assert robust.abs().max() == pytest.approx(3.0)  # t(3) tails reach the clip
    assert robust.groupby(level=0).median().abs().max() < 1e-12


def test_cs_rank_handles_ties_and_single_name_dates() -> None:
    index = pd.MultiIndex.from_tuples(
        [("d1", "a"), ("d1", "b"), ("d1", "c"), ("d1", "d"), ("d2", "a"), ("d2", "b")]
    )
    score = pd.Series([3.0, 1.0, 1.0, np.nan, 7.0, np.nan], index=index)
    np.testing.assert_allclose(
        cs_rank(score).to_numpy(), [0.5, -0.25, -0.25, np.nan, 0.0, np.nan], equal_nan=True
    )
