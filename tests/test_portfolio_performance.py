"""Performance metrics against closed forms and the DSR paper's worked example."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import polars as pl
import pytest
from skfolio.measures import deflated_sharpe_ratio as skfolio_dsr
from skfolio.measures import probabilistic_sharpe_ratio as skfolio_psr

from quant_assets.research import performance as perf
from quant_core.metrics import drawdown, realised_volatility

# Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", worked example: N = 100
# independent trials whose ANNUALISED Sharpe ratios have variance 1/2, the best one has an
# annualised Sharpe of 2.5 over T = 1250 daily observations (5 years of 250 days), skewness -3
# and (plain) kurtosis 10. The paper de-annualises with 250 days, not 252.
PAPER_DAYS = 250
PAPER_N, PAPER_T, PAPER_SKEW, PAPER_KURT = 100, 1250, -3.0, 10.0
PAPER_SR = 2.5 / math.sqrt(PAPER_DAYS)
PAPER_TRIAL_STD = math.sqrt(0.5 / PAPER_DAYS)


def _paper_by_hand() -> tuple[float, float]:
    """SR0 and DSR straight from the paper's equations with the standard library only."""
    z = NormalDist()
    gamma = 0.5772156649015329
    sr0 = PAPER_TRIAL_STD * (
        (1 - gamma) * z.inv_cdf(1 - 1 / PAPER_N) + gamma * z.inv_cdf(1 - 1 / (PAPER_N * math.e))
    )
    denom = math.sqrt(1 - PAPER_SKEW * PAPER_SR + (PAPER_KURT - 1) / 4 * PAPER_SR**2)
    dsr = z.cdf((PAPER_SR - sr0) * math.sqrt(PAPER_T - 1) / denom)
    return sr0, dsr


def test_expected_max_sharpe_and_dsr_reproduce_the_paper() -> None:
    sr0_hand, dsr_hand = _paper_by_hand()
    assert round(sr0_hand, 4) == 0.1132  # the figures printed in the paper
    assert round(dsr_hand, 4) == 0.9004
    sr0 = perf.expected_max_sharpe_ratio(PAPER_N, PAPER_TRIAL_STD)
    dsr = perf.deflated_sharpe_ratio(
        PAPER_SR, PAPER_T, PAPER_SKEW, PAPER_KURT, PAPER_N, PAPER_TRIAL_STD
    )
    assert sr0 == pytest.approx(sr0_hand, rel=1e-9)
    assert dsr == pytest.approx(dsr_hand, rel=1e-9)
    # passing the excess kurtosis (7) instead of the plain one changes the answer
    wrong = perf.deflated_sharpe_ratio(
        PAPER_SR, PAPER_T, PAPER_SKEW, PAPER_KURT - 3, PAPER_N, PAPER_TRIAL_STD
    )
    assert round(wrong, 4) != 0.9004


def test_psr_closed_form_and_edge_cases() -> None:
    # normal returns (g3 = 0, g4 = 3): PSR = Phi(SR sqrt(T-1) / sqrt(1 + SR^2 / 2))
    sr, t = 0.05, 500
    expected = NormalDist().cdf(sr * math.sqrt(t - 1) / math.sqrt(1 + sr**2 / 2))
    assert perf.probabilistic_sharpe_ratio(sr, t, 0.0, 3.0) == pytest.approx(expected, rel=1e-12)
    assert perf.probabilistic_sharpe_ratio(0.0, t, 0.0, 3.0) == pytest.approx(0.5)
    # more observations of the same positive Sharpe -> more confidence
    assert perf.probabilistic_sharpe_ratio(sr, 2 * t, 0.0, 3.0) > expected
    assert perf.expected_max_sharpe_ratio(1, 0.3, 0.1) == 0.1
    with pytest.raises(ValueError):
        perf.expected_max_sharpe_ratio(0.5, 0.1)


def test_psr_and_dsr_from_returns_agree_with_skfolio() -> None:
    rng = np.random.default_rng(11)
    returns = 0.0008 + 0.01 * rng.standard_t(df=5, size=1000)
    trials = rng.normal(0.0, 0.03, size=40)
    skew, kurt = perf.sample_moments(returns)
    sr = perf.sharpe_ratio(returns, periods_per_year=None)
    assert perf.probabilistic_sharpe_ratio(sr, returns.size, skew, kurt) == pytest.approx(
        skfolio_psr(returns), rel=1e-9
    )
    assert perf.deflated_sharpe_ratio_from_returns(returns, trials) == pytest.approx(
        skfolio_dsr(returns, trials), rel=1e-9
    )


def test_sample_moments_of_a_known_sample() -> None:
    # two-point sample {-1, 1}: skew 0, plain kurtosis 1; {0, 0, 0, 4}: skew 2/sqrt(3)
    assert perf.sample_moments([-1.0, 1.0] * 10) == pytest.approx((0.0, 1.0))
    skew, kurt = perf.sample_moments([0.0, 0.0, 0.0, 4.0])
    assert skew == pytest.approx(2 / math.sqrt(3))
    assert kurt == pytest.approx(7 / 3)


def test_cagr_volatility_sharpe_sortino_closed_forms() -> None:
    n, m, a = 504, 0.001, 0.01
    alternating = m + a * np.tile([1.0, -1.0], n // 2)  # mean m, population std a
    assert perf.cagr(np.full(n, m)) == pytest.approx((1 + m) ** 252 - 1, rel=1e-12)
    doubling = np.full(n, 2 ** (1 / n) - 1)  # wealth doubles over two years
    assert perf.cagr(doubling) == pytest.approx(math.sqrt(2) - 1, rel=1e-12)
    sd = a * math.sqrt(n / (n - 1))
    assert realised_volatility(alternating) == pytest.approx(sd * math.sqrt(252))
    assert perf.sharpe_ratio(alternating) == pytest.approx(m / sd * math.sqrt(252))
    assert perf.sharpe_ratio(alternating, periods_per_year=None) == pytest.approx(m / sd)
    assert perf.sharpe_ratio(alternating, risk_free=m) == pytest.approx(0.0, abs=1e-12)
    # half the days fall short by a - m: downside deviation sqrt(1/2) (a - m)
    downside = math.sqrt(0.5) * (a - m)
    assert perf.sortino_ratio(alternating) == pytest.approx(m / downside * math.sqrt(252))
    # Polars input and NaNs are accepted (NaNs dropped)
    as_series = pl.Series([*alternating.tolist(), float("nan")])
    assert perf.sharpe_ratio(as_series) == pytest.approx(perf.sharpe_ratio(alternating))


def test_drawdown_calmar_and_hit_rate() -> None:
    # wealth 1.1, 0.99, 0.88, 1.2: peak 1.1, trough 0.88 -> 20% drawdown
    wealth = np.array([1.1, 0.99, 0.88, 1.2])
    returns = wealth / np.concatenate([[1.0], wealth[:-1]]) - 1
    np.testing.assert_allclose(drawdown(returns), [0.0, 0.1, 0.2, 0.0], atol=1e-12)
    assert perf.max_drawdown(returns) == pytest.approx(0.2)
    assert perf.max_drawdown([-0.05, 0.01]) == pytest.approx(0.05)  # first-day loss counts
    assert perf.max_drawdown([0.01, 0.02]) == 0.0
    assert math.isnan(perf.calmar_ratio([0.01, 0.02]))
    expected_calmar = (1.2 ** (252 / 4) - 1) / 0.2
    assert perf.calmar_ratio(returns) == pytest.approx(expected_calmar)
    assert perf.hit_rate([0.01, -0.01, 0.0, 0.02]) == 0.5


def test_turnover_with_and_without_drift() -> None:
    w = np.array([[0.5, 0.5], [0.6, 0.4], [0.6, 0.4]])
    np.testing.assert_allclose(perf.turnover(w), [1.0, 0.2, 0.0])
    # asset 0 doubles over period 2: the book drifts to (2/3, 1/3), so getting back to the
    # unchanged targets (0.5, 0.5) takes 1/6 + 1/6 of trades, not 0.
    r = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    w_drift = np.array([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_allclose(perf.turnover(w_drift, r), [1.0, 0.0, 1 / 3])
    # with half the book in cash the drift is diluted: (0.25, 0.25) -> (0.5, 0.25) / 1.25
    half = np.array([[0.25, 0.25], [0.25, 0.25], [0.25, 0.25]])
    np.testing.assert_allclose(
        perf.turnover(half, r), [0.5, 0.0, abs(0.4 - 0.25) + abs(0.2 - 0.25)], atol=1e-12
    )
    with pytest.raises(ValueError, match="shape"):
        perf.turnover(w, r[:2])


def test_summary_on_a_random_signal_has_sharpe_near_zero() -> None:
    rng = np.random.default_rng(3)
    returns = rng.normal(0.0, 0.01, size=2520)
    trials = rng.normal(0.0, 0.02, size=20)
    s = perf.summarise(returns, trial_sharpe_ratios=trials)
    # the annualised Sharpe of 10 years of zero-mean noise has std ~ sqrt(252 / 2520) ~ 0.32
    assert abs(s.sharpe) < 1.0
    assert 0.0 < s.dsr < s.psr < 1.0  # deflating for 20 trials can only lower it
    assert s.n_obs == 2520
    assert math.isnan(s.mean_turnover)
    assert set(s.as_dict()) >= {"cagr", "sharpe", "dsr", "max_drawdown"}


def test_yearly_returns_compound_each_calendar_year_and_costs_add_up() -> None:
    from datetime import date

    rows = {
        "strategy": ["a", "a", "a", "b", "b"],
        "date": [
            *(date(2011, 12, 29), date(2011, 12, 30), date(2012, 1, 3)),
            *(date(2012, 1, 3), date(2012, 1, 4)),
        ],
        "gross_return": [0.011, -0.019, 0.031, 0.001, 0.002],
        "cost": [0.001, 0.001, 0.001, 0.0005, 0.0],
    }
    returns = pl.DataFrame(rows).with_columns(
        (pl.col("gross_return") - pl.col("cost")).alias("net_return")
    )
    table = perf.yearly_returns(returns)
    assert table.columns == ["strategy", "2011", "2012"]
    a, b = table.row(0, named=True), table.row(1, named=True)
    assert a["2011"] == pytest.approx(1.01 * 0.98 - 1)
    assert a["2012"] == pytest.approx(0.03)
    assert b["2011"] is None  # not run that year
    assert b["2012"] == pytest.approx(1.0005 * 1.002 - 1)
    costs = dict(perf.costs_paid(returns).iter_rows())
    assert costs == pytest.approx({"a": 0.003, "b": 0.0005})
