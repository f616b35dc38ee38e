"""ScoreCalibrator: score -> expected excess return mapping, confidences and skfolio views."""

from __future__ import annotations

import re
from datetime import date, timedelta

import numpy as np
import pandas as pd
import polars as pl
import pytest
from skfolio.prior import BlackLitterman
from skfolio.utils.equations import equations_to_matrix
from sklearn.base import clone

from quant_assets.portfolio.views import InsufficientHistoryError, ScoreCalibrator

N_DATES = 250
N_NAMES = 50


def _history(slope: float, noise: float, seed: int, n_dates: int = N_DATES) -> pl.DataFrame:
    """Rank scores in [-0.5, 0.5] and labels = market move + slope * score + noise."""
    rng = np.random.default_rng(seed)
    raw = rng.standard_normal((n_dates, N_NAMES))
    ranks = raw.argsort(axis=1).argsort(axis=1)
    scores = ranks / (N_NAMES - 1) - 0.5
    # a common move per date the cross-sectional slope must ignore
    market = rng.normal(0.0, 0.05, size=(n_dates, 1))
    labels = market + slope * scores + rng.normal(0.0, noise, size=scores.shape)
    days = [date(2020, 1, 1) + timedelta(days=i) for i in range(n_dates)]
    return pl.DataFrame(
        {
            "date": pl.Series([d for d in days for _ in range(N_NAMES)], dtype=pl.Date),
            "ticker": [f"T{j:02d}" for j in range(N_NAMES)] * n_dates,
            "score": scores.ravel(),
            "label": labels.ravel(),
        }
    )


def _today(seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    score = rng.permutation(N_NAMES) / (N_NAMES - 1) - 0.5
    return pl.DataFrame({"ticker": [f"T{j:02d}" for j in range(N_NAMES)], "score": score})


def test_planted_linear_relation_is_recovered() -> None:
    cal = ScoreCalibrator().fit(_history(slope=0.02, noise=0.03, seed=1))
    # standard error of the averaged slope is ~0.03 / sqrt(50 / 12) / sqrt(250) ~ 0.0009
    assert cal.slope_ == pytest.approx(0.02, abs=0.003)
    assert cal.n_dates_ == N_DATES
    assert cal.mean_rank_ic_ > 0.1
    assert cal.confidence_ > 0.9
    out = cal.predict(_today())
    centred = out["score"] - out["score"].mean()
    np.testing.assert_allclose(out["expected_return_horizon"], cal.slope_ * centred, atol=1e-15)


def test_zero_skill_gives_near_zero_returns_and_low_confidence() -> None:
    skilled = ScoreCalibrator().fit(_history(slope=0.02, noise=0.03, seed=2))
    cal = ScoreCalibrator().fit(_history(slope=0.0, noise=0.03, seed=2))
    assert abs(cal.raw_slope_) < 0.003
    assert cal.confidence_ < 0.1
    assert cal.confidence_ < skilled.confidence_
    out = cal.predict(_today())
    assert out["expected_return_horizon"].abs().max() < 0.0015  # slope <= 0.003, |score| <= 0.5


def test_weaker_skill_gets_lower_confidence() -> None:
    strong = ScoreCalibrator().fit(_history(slope=0.02, noise=0.03, seed=3))
    weak = ScoreCalibrator().fit(_history(slope=0.004, noise=0.03, seed=3))
    assert 0.0 < weak.confidence_ < strong.confidence_ <= 1.0
    assert weak.slope_ < strong.slope_


def test_backwards_model_gets_no_views() -> None:
    cal = ScoreCalibrator().fit(_history(slope=-0.02, noise=0.03, seed=4))
    assert cal.raw_slope_ < -0.015
    assert cal.slope_ == 0.0
    assert cal.confidence_ == 0.0
    out = cal.predict(_today())
    assert (out["expected_return_daily"] == 0.0).all()


def test_mapping_is_monotone_in_the_score() -> None:
    cal = ScoreCalibrator().fit(_history(slope=0.01, noise=0.03, seed=5))
    out = cal.predict(_today()).sort("score")
    assert (out["expected_return_horizon"].diff().drop_nulls() >= 0).all()
    assert (out["expected_return_daily"].diff().drop_nulls() >= 0).all()
    assert out["expected_return_daily"][0] < 0 < out["expected_return_daily"][-1]


def test_horizon_conversion_compounds_back() -> None:
    cal = ScoreCalibrator().fit(_history(slope=0.02, noise=0.03, seed=6))
    out = cal.predict(_today())
    compounded = (1.0 + out["expected_return_daily"]) ** 5 - 1.0
    np.testing.assert_allclose(compounded, out["expected_return_horizon"], rtol=1e-10)
    # geometric, not the arithmetic r5 / 5 (they differ at second order)
    top = out.sort("score")[-1]
    assert top["expected_return_daily"].item() < top["expected_return_horizon"].item() / 5


def test_view_strings_parse_in_skfolio_and_confidences_are_fresh_floats() -> None:
    cal = ScoreCalibrator().fit(_history(slope=0.02, noise=0.03, seed=8))
    today = _today()
    views, conf = cal.views(today)
    assert len(views) == N_NAMES
    assert all(re.fullmatch(r"T\d\d == -?[0-9.e+-]+", v) for v in views)
    tickers = np.array([today["ticker"].to_list()])
    left, right, _, _ = equations_to_matrix(groups=tickers, equations=views, sum_to_one=False)
    np.testing.assert_array_equal(left, np.eye(N_NAMES))
    np.testing.assert_allclose(right, cal.predict(today)["expected_return_daily"], rtol=1e-15)
    assert conf.dtype == np.float64
    np.testing.assert_allclose(conf, np.full(N_NAMES, cal.confidence_))
    conf[:] = 0.0  # what skfolio does to it in place must not leak into the next call
    assert (cal.views(today)[1] == cal.confidence_).all()
    # views for a total-return prior are shifted by the benchmark's expected daily return
    shifted, _ = cal.views(today, benchmark_return=0.0004)
    _, right_shifted, _, _ = equations_to_matrix(
        groups=tickers, equations=shifted, sum_to_one=False
    )
    np.testing.assert_allclose(right_shifted - right, 0.0004, rtol=1e-9)


def test_too_short_history_raises_a_clear_error() -> None:
    with pytest.raises(InsufficientHistoryError, match="at least 60 history dates"):
        ScoreCalibrator().fit(_history(slope=0.02, noise=0.03, seed=9, n_dates=40))
    # dates with too few names do not count as usable
    thin = _history(slope=0.02, noise=0.03, seed=9).filter(pl.col("ticker") < "T05")
    with pytest.raises(InsufficientHistoryError, match="got 0"):
        ScoreCalibrator().fit(thin)


def test_predict_before_fit_and_bad_inputs() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        ScoreCalibrator().predict(_today())
    with pytest.raises(ValueError, match="lacks columns"):
        ScoreCalibrator().fit(pl.DataFrame({"date": [date(2020, 1, 1)], "score": [0.1]}))
    cal = ScoreCalibrator(min_dates=10).fit(_history(slope=0.02, noise=0.03, seed=10))
    with pytest.raises(ValueError, match="duplicate"):
        cal.predict(pl.concat([_today(), _today()]))


def test_views_drive_a_skfolio_black_litterman_posterior() -> None:
    today = _today()
    rng = np.random.default_rng(0)
    returns = pd.DataFrame(
        rng.normal(0.0, 0.01, size=(300, N_NAMES)), columns=today["ticker"].to_list()
    )
    prior = returns.mean().to_numpy()
    for slope, full in ((0.02, True), (0.004, False)):
        cal = ScoreCalibrator().fit(_history(slope=slope, noise=0.03, seed=3))
        views, conf = cal.views(today)
        mu = BlackLitterman(views=views, view_confidences=conf).fit(returns)
        posterior = mu.return_distribution_.mu
        target = cal.predict(today)["expected_return_daily"].to_numpy()
        assert np.isfinite(posterior).all()
        if full:
            # Idzorek 100% confidence: the posterior is the view itself
            assert cal.confidence_ == 1.0
            np.testing.assert_allclose(posterior, target, atol=1e-12)
        else:
            # partial confidence: a move towards the views, but not all the way
            assert 0.0 < cal.confidence_ < 1.0
            assert np.corrcoef(posterior - prior, target - prior)[0, 1] > 0.9
            assert np.abs(posterior - prior).sum() < np.abs(target - prior).sum()


def test_is_a_clonable_sklearn_estimator() -> None:
    cal = ScoreCalibrator(min_dates=10, full_confidence_ic=0.05)
    copy = clone(cal)
    assert copy.get_params() == cal.get_params()
    assert not hasattr(copy, "slope_")
