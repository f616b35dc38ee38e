"""The backtest's simulation core against hand computations, and its no-look-ahead timing."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import polars as pl
import pytest

from quant_assets.research import performance as perf
from quant_assets.research.backtest import (
    backtest_metrics,
    corwin_schultz_half_spread,
    sharpe_distribution,
    simulate_book,
    summarise_sharpe_distribution,
    top_quantile_weights,
)

DATES = pd.bdate_range("2024-01-01", periods=5)


def _two_asset_case() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Book 50/50 at the close of day 0, held (drifting) through days 1-2, moved to 60/20 at
    the close of day 2, held again through days 3-4 (day 3 all NaN, day 4 absent)."""
    returns = pd.DataFrame(
        {"A": [0.03, 0.10, 0.00, 0.05, -0.02], "B": [-0.02, -0.10, 0.20, np.nan, 0.01]},
        index=DATES,
    )
    targets = pd.DataFrame(
        {"A": [0.5, 0.6, np.nan], "B": [0.5, 0.2, np.nan]}, index=DATES[[0, 2, 3]]
    )
    return targets, returns


def test_two_asset_book_by_hand() -> None:
    targets, returns = _two_asset_case()
    book = simulate_book(targets, returns, cost_bps=5.0, half_spread_bps=2.0)
    fee = 7.0 / 1e4

    # day 0: the book starts from cash, so it earns nothing on day 0's returns (they are
    # known at the decision) and buys 100% of NAV at the close
    # day 1: 0.5 * 0.10 + 0.5 * -0.10 = 0, drift to (0.55, 0.45)
    # day 2: 0.45 * 0.20 = 0.09, drift to (0.55, 0.54) / 1.09, then trade to (0.6, 0.2)
    # day 3: 0.6 * 0.05 + 0.2 * 0 (B's missing return counts as 0)
    # day 4: drifted weights from day 3 earn day 4's returns
    a3, b3 = 0.6 * 1.05 / 1.03, 0.2 / 1.03
    turnover_2 = abs(0.6 - 0.55 / 1.09) + abs(0.2 - 0.54 / 1.09)
    expected = pd.DataFrame(
        {
            "gross_return": [0.0, 0.0, 0.09, 0.03, a3 * -0.02 + b3 * 0.01],
            "turnover": [1.0, 0.0, turnover_2, 0.0, 0.0],
            "gross_exposure": [1.0, 1.0, 0.8, (0.6 * 1.05 + 0.2) / 1.03, 0.0],
            "n_names": [2.0, 2.0, 2.0, 2.0, 2.0],
        },
        index=DATES,
    )
    expected.loc[DATES[4], "gross_exposure"] = (a3 * 0.98 + b3 * 1.01) / (
        1 + a3 * -0.02 + b3 * 0.01
    )
    expected["cost"] = expected["turnover"] * fee
    expected["net_return"] = expected["gross_return"] - expected["cost"]

    pd.testing.assert_frame_equal(book[expected.columns], expected, check_freq=False, rtol=1e-12)
    np.testing.assert_array_equal(book["net_return"], book["gross_return"] - book["cost"])


def test_turnover_matches_performance_turnover_of_the_drifted_book() -> None:
    """The same drift rule as performance.turnover, which is given the full weight path."""
    targets, returns = _two_asset_case()
    daily_targets = targets.reindex(DATES).ffill()  # rebalance every day back to the target
    book = simulate_book(daily_targets, returns, cost_bps=0.0)
    # performance.turnover's row t trades against weights drifted by row t's returns
    expected = perf.turnover(daily_targets.to_numpy(), returns.fillna(0.0).to_numpy())
    expected[0] = 1.0  # the first rebalance is from cash, where day 0's returns earn nothing
    np.testing.assert_allclose(book["turnover"].to_numpy(), expected, rtol=1e-12)


def test_hold_row_and_absent_date_are_the_same() -> None:
    targets, returns = _two_asset_case()
    without_nan_row = targets.drop(index=DATES[3])
    pd.testing.assert_frame_equal(
        simulate_book(targets, returns), simulate_book(without_nan_row, returns)
    )


def test_book_starts_at_first_decision_and_rejects_unknown_dates() -> None:
    targets, returns = _two_asset_case()
    late = targets.iloc[1:]
    book = simulate_book(late, returns)
    assert book.index[0] == DATES[2]
    assert book["gross_return"].iloc[0] == 0.0  # cash until the first close trade
    with pytest.raises(ValueError, match="not in asset_returns"):
        simulate_book(targets.rename(index={DATES[0]: pd.Timestamp("2023-12-30")}), returns)


def test_doubling_cost_bps_doubles_cost_exactly() -> None:
    rng = np.random.default_rng(7)
    dates = pd.bdate_range("2024-01-01", periods=60)
    returns = pd.DataFrame(rng.normal(0, 0.01, (60, 8)), index=dates)
    targets = top_quantile_weights(pd.DataFrame(rng.normal(size=(60, 8)), index=dates), 0.25)
    one = simulate_book(targets, returns, cost_bps=5.0)
    two = simulate_book(targets, returns, cost_bps=10.0)
    assert (one["cost"] > 0).all()
    np.testing.assert_array_equal(two["cost"].to_numpy(), 2.0 * one["cost"].to_numpy())
    np.testing.assert_array_equal(two["gross_return"], one["gross_return"])
    np.testing.assert_array_equal(two["turnover"], one["turnover"])


def test_half_spread_frame_is_charged_per_name_and_date() -> None:
    targets, returns = _two_asset_case()
    # day 0 spreads only; they carry forward to day 2's rebalance (no estimate on day 2)
    spreads = pd.DataFrame({"A": [10.0], "B": [30.0]}, index=DATES[[0]])
    book = simulate_book(targets, returns, cost_bps=0.0, half_spread_bps=spreads)
    assert book["cost"].iloc[0] == pytest.approx((0.5 * 10 + 0.5 * 30) / 1e4, rel=1e-12)
    trade_a, trade_b = abs(0.6 - 0.55 / 1.09), abs(0.2 - 0.54 / 1.09)
    assert book["cost"].iloc[2] == pytest.approx((trade_a * 10 + trade_b * 30) / 1e4, rel=1e-12)


# --- no look-ahead ----------------------------------------------------------------------------

T_IID, N_IID = 2520, 50


def _iid_returns(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2010-01-01", periods=T_IID)
    return pd.DataFrame(rng.normal(0.0, 0.01, (T_IID, N_IID)), index=dates)


def _sharpe_of_signal(scores: pd.DataFrame, returns: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    book = simulate_book(top_quantile_weights(scores, 0.2), returns, cost_bps=0.0)
    return perf.sharpe_ratio(book["net_return"]), book


# the annualised Sharpe of a zero-mean strategy has standard error ~ sqrt(252 / T) (Lo 2002,
# at SR = 0); 4 standard errors (0.0063% two-sided for a normal) keeps a correct simulator
# from failing by chance while a look-ahead leak (Sharpe in the tens) is far outside
ZERO_SHARPE_BOUND = 4.0 * math.sqrt(252 / T_IID)


def test_signal_known_at_the_close_earns_nothing_and_the_oracle_everything() -> None:
    returns = _iid_returns(11)
    # today's return is known at today's close: on iid returns it says nothing about tomorrow
    today, today_book = _sharpe_of_signal(returns, returns)
    # the same signal one day earlier is tomorrow's return on today's row: look-ahead
    oracle, _ = _sharpe_of_signal(returns.shift(-1), returns)
    # one day later (yesterday's return) is as useless as today's
    stale, _ = _sharpe_of_signal(returns.shift(1), returns)

    assert abs(today) < ZERO_SHARPE_BOUND
    assert abs(stale) < ZERO_SHARPE_BOUND
    assert oracle > 20.0
    # a simulator that let weights earn their own decision day's return would turn the
    # "today" signal into the oracle: check the timing directly, day by day
    weights = top_quantile_weights(returns, 0.2)
    next_day = (weights.shift(1) * returns).sum(axis=1)
    np.testing.assert_allclose(
        today_book["gross_return"].iloc[1:], next_day.iloc[1:], rtol=1e-12, atol=1e-15
    )


def test_random_signal_has_sharpe_near_zero() -> None:
    returns = _iid_returns(23)
    noise = pd.DataFrame(np.random.default_rng(24).normal(size=returns.shape), index=returns.index)
    sharpe, book = _sharpe_of_signal(noise, returns)
    assert abs(sharpe) < ZERO_SHARPE_BOUND
    assert len(book) == T_IID
    assert (book["n_names"] == N_IID * 0.2).all()


# --- Corwin-Schultz ---------------------------------------------------------------------------


def _cs_spread_by_hand(h1: float, l1: float, h2: float, l2: float) -> float:
    """Corwin & Schultz (2012), eqs. (14) and (18), with the standard library only."""
    beta = math.log(h1 / l1) ** 2 + math.log(h2 / l2) ** 2
    gamma = math.log(max(h1, h2) / min(l1, l2)) ** 2
    k = 3 - 2 * math.sqrt(2)
    alpha = (math.sqrt(2 * beta) - math.sqrt(beta)) / k - math.sqrt(gamma / k)
    return 2 * (math.exp(alpha) - 1) / (1 + math.exp(alpha))


def test_corwin_schultz_two_day_case_by_hand() -> None:
    bars = pl.DataFrame(
        {
            "ticker": ["X", "X", "X", "Y", "Y"],
            "date": [1, 2, 3, 1, 2],
            # X: days 2-3 gap up far beyond the daily ranges, a negative estimate
            "adj_high": [101.0, 101.5, 120.0, 50.0, 50.0],
            "adj_low": [99.0, 99.2, 119.5, 45.0, 45.0],
        }
    ).sample(fraction=1.0, shuffle=True, seed=3)  # input order must not matter
    out = corwin_schultz_half_spread(bars, window=2, floor_bps=0.5, cap_bps=100.0)
    by_key = {(t, d): v for t, d, v in out.iter_rows()}

    s12 = _cs_spread_by_hand(101.0, 99.0, 101.5, 99.2)
    assert 0 < s12 / 2 * 1e4 < 100  # inside the clip bounds, so the formula is what is tested
    assert _cs_spread_by_hand(101.5, 99.2, 120.0, 119.5) < 0
    assert out.columns == ["ticker", "date", "half_spread_bps"]
    assert by_key[("X", 1)] is None  # no previous session
    assert by_key[("X", 2)] == pytest.approx(s12 / 2 * 1e4, rel=1e-12)
    # window 2: the mean of the day-2 estimate and the day-3 one set to 0
    assert by_key[("X", 3)] == pytest.approx((s12 + 0.0) / 2 / 2 * 1e4, rel=1e-12)
    # Y's wide ranges give a spread above the cap; Y never sees X's bars
    assert _cs_spread_by_hand(50.0, 45.0, 50.0, 45.0) / 2 * 1e4 > 100
    assert by_key[("Y", 2)] == 100.0


def test_corwin_schultz_floor_and_split_invariance() -> None:
    bars = pl.DataFrame(
        {
            "ticker": ["X"] * 3,
            "date": [1, 2, 3],
            "adj_high": [100.0, 130.0, 131.0],
            "adj_low": [99.9, 129.9, 130.0],
        }
    )
    out = corwin_schultz_half_spread(bars, window=1, floor_bps=0.5)
    assert out["half_spread_bps"][1] == 0.5  # negative estimate -> 0 -> floor
    scaled = bars.with_columns(pl.col("adj_high", "adj_low") * 3.0)  # a uniform adjustment
    np.testing.assert_allclose(
        corwin_schultz_half_spread(scaled, window=1)["half_spread_bps"].to_numpy()[1:],
        out["half_spread_bps"].to_numpy()[1:],
        rtol=1e-12,
    )


# --- signal portfolio -------------------------------------------------------------------------


def test_top_quantile_weights_pick_the_top_names_and_sum_to_one() -> None:
    scores = pd.DataFrame(
        [
            [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0, 0.0],  # top 20% of 10: cols 2 and 6
            [np.nan, np.nan, 1.0, 2.0, 3.0, 4.0, 5.0, np.nan, np.nan, np.nan],  # 5 valid: col 6
            [np.nan] * 10,
        ],
        index=DATES[:3],
    )
    weights = top_quantile_weights(scores, 0.2)
    np.testing.assert_array_equal(weights.iloc[0].to_numpy().nonzero()[0], [2, 6])
    assert (weights.iloc[0].iloc[[2, 6]] == 0.5).all()
    np.testing.assert_array_equal(weights.iloc[1].to_numpy().nonzero()[0], [6])
    assert weights.iloc[1].iloc[6] == 1.0
    assert weights.iloc[1].iloc[0] == 0.0  # a NaN score is not held, not "hold"
    assert weights.iloc[2].isna().all()  # no scores: simulate_book holds
    np.testing.assert_allclose(weights.iloc[:2].sum(axis=1), 1.0, rtol=1e-15)


# --- Sharpe distribution and metrics ----------------------------------------------------------


def test_sharpe_distribution_and_summary() -> None:
    rng = np.random.default_rng(5)
    paths = {p: pd.Series(rng.normal(0.0005 * (p - 3), 0.01, 300)) for p in range(8)}
    paths[2].iloc[:10] = np.nan
    dist = sharpe_distribution(paths)
    by_hand = [r.dropna().mean() / r.dropna().std(ddof=1) * math.sqrt(252) for r in paths.values()]
    np.testing.assert_allclose(dist["sharpe"], by_hand, rtol=1e-12)
    assert list(dist["path"]) == list(range(8))
    assert dist["n_obs"].tolist() == [300, 300, 290, 300, 300, 300, 300, 300]

    summary = summarise_sharpe_distribution(dist)
    assert summary["n_paths"] == 8
    assert summary["mean"] == pytest.approx(np.mean(by_hand), rel=1e-12)
    assert summary["q50"] == pytest.approx(np.median(by_hand), rel=1e-12)
    assert summary["q05"] < summary["q50"] < summary["q95"]
    assert summary["share_positive"] == np.mean(np.array(by_hand) > 0)


def _shifted(base: pd.Series, per_period_sharpe_shift: float) -> pd.Series:
    """``base`` plus a constant that moves its per-period Sharpe by exactly the shift."""
    return base + per_period_sharpe_shift * float(base.std(ddof=1))


def test_backtest_metrics_dsr_uses_all_strategies_as_trials() -> None:
    rng = np.random.default_rng(9)
    base = pd.Series(rng.normal(0.0008, 0.01, 1000))
    delta = 0.02
    few = {"A": base, "B+": _shifted(base, delta), "B-": _shifted(base, -delta)}
    # more trials with the same dispersion of Sharpe ratios (std exactly delta): only N grows
    many = dict(few)
    for i in range(4):
        many[f"C+{i}"] = _shifted(base, delta)
        many[f"C-{i}"] = _shifted(base, -delta)
    turnover = {"A": pd.Series([0.1, 0.3, np.nan])}
    ic = {"A": pd.Series([0.02, 0.04])}

    small = backtest_metrics(few, turnover, ic)
    large = backtest_metrics(many, turnover)
    row = small.row(0, named=True)
    assert small["n_trials"].to_list() == [3, 3, 3]
    assert large["n_trials"][0] == 11
    assert row["mean_turnover"] == pytest.approx(0.2)
    assert row["mean_ic"] == pytest.approx(0.03)
    assert small["mean_ic"][1] is None and large["mean_ic"][0] is None
    assert math.isnan(small["mean_turnover"][1])

    # DSR by hand for N = 3 trials with per-period Sharpe std delta (False Strategy theorem)
    r = base.to_numpy()
    sr = r.mean() / r.std(ddof=1)
    d = r - r.mean()
    skew, kurt = np.mean(d**3) / np.mean(d**2) ** 1.5, np.mean(d**4) / np.mean(d**2) ** 2
    z, gamma = NormalDist(), 0.5772156649015329
    sr0 = delta * ((1 - gamma) * z.inv_cdf(1 - 1 / 3) + gamma * z.inv_cdf(1 - 1 / (3 * math.e)))
    dsr = z.cdf(
        (sr - sr0) * math.sqrt(r.size - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    )
    assert row["dsr"] == pytest.approx(dsr, rel=1e-9)
    assert row["sharpe"] == pytest.approx(sr * math.sqrt(252), rel=1e-12)
    summary = perf.summarise(base)
    for key in ("cagr", "volatility", "sortino", "max_drawdown", "calmar", "hit_rate", "psr"):
        assert row[key] == pytest.approx(getattr(summary, key), rel=1e-12), key

    assert large["dsr"][0] < row["dsr"]
    assert large["psr"][0] == pytest.approx(row["psr"], rel=1e-12)  # PSR ignores the trials
