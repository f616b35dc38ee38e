"""Risk measures and stress tests checked against closed forms and hand-computed cases."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import integrate, stats

from quant_assets.portfolio.books import DayInputs
from quant_assets.risk.assets import _book_risk
from quant_assets.risk.measures import (
    beta,
    cornish_fisher_quantile,
    cvar_cornish_fisher,
    cvar_normal,
    euler_risk_contributions,
    herfindahl,
    portfolio_returns,
    rebalance_cost,
    sector_risk_contributions,
    sector_weights,
    simulate_portfolio_returns,
    stop_loss_breaches,
    summary_metrics,
    top_n_weight,
    var_cornish_fisher,
    var_cvar_historical,
    var_cvar_table,
    var_normal,
)
from quant_assets.risk.stress import (
    asset_betas,
    market_shock_pnl,
    sector_shock_pnl,
    stress_table,
    stressed_var_normal,
    worst_window,
)
from quant_core.conventions import TRADING_DAYS
from quant_core.metrics import (
    current_drawdown,
    drawdown,
    ex_ante_volatility,
    max_drawdown,
    realised_volatility,
    rolling_sharpe,
)
from quant_core.sectors import UNCLASSIFIED
from resources.portfolio_policy import PortfolioPolicy

MU, SIGMA = 0.0005, 0.01


def normal_sample(n: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).normal(MU, SIGMA, n)


def random_assets(t: int = 500, n: int = 6, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    loadings = rng.normal(0.0, 0.5, (n, n))
    returns = rng.standard_normal((t, n)) @ loadings.T * 0.01 + 0.0003
    weights = rng.dirichlet(np.ones(n)) * 0.9  # 10% cash
    return returns, weights


# --- VaR / CVaR -------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.95, 0.99])
def test_normal_var_cvar_match_quantile_and_tail_integral(alpha: float) -> None:
    r = normal_sample(2_000)
    mu, sigma = r.mean(), r.std(ddof=1)
    # VaR is minus the lower quantile; CVaR the mean of the quantile function over the tail
    assert var_normal(r, alpha) == pytest.approx(-stats.norm.ppf(1 - alpha, mu, sigma), rel=1e-12)
    tail, _ = integrate.quad(lambda u: stats.norm.ppf(u, mu, sigma), 0.0, 1 - alpha)
    assert cvar_normal(r, alpha) == pytest.approx(-tail / (1 - alpha), rel=1e-7)
    assert cvar_normal(r, alpha) > var_normal(r, alpha)


@pytest.mark.parametrize("alpha", [0.95, 0.99])
def test_historical_on_large_normal_sample_close_to_closed_form(alpha: float) -> None:
    var, cvar = var_cvar_historical(normal_sample(400_000), alpha)
    z = stats.norm.ppf(alpha)
    assert var == pytest.approx(SIGMA * z - MU, rel=0.01)
    assert cvar == pytest.approx(SIGMA * stats.norm.pdf(z) / (1 - alpha) - MU, rel=0.01)


def test_historical_uses_the_k_worst_returns() -> None:
    # 20 returns at 95%: k = 1, the single worst; at 90%: the two worst
    r = np.linspace(-0.05, 0.14, 20)
    assert var_cvar_historical(r, 0.95) == pytest.approx((0.05, 0.05))
    assert var_cvar_historical(r, 0.90) == pytest.approx((0.04, 0.045))


def test_cornish_fisher_reduces_to_normal_for_zero_skew_and_excess_kurtosis() -> None:
    z = np.array([-2.326, -1.645, 0.3])
    np.testing.assert_array_equal(cornish_fisher_quantile(z, 0.0, 0.0), z)
    # a symmetric three-point sample with P(|x| = c) = 1/3 has kurtosis exactly 3
    r = MU + 0.01 * np.tile([-1.0, 0.0, 0.0, 0.0, 0.0, 1.0], 50)
    assert stats.skew(r) == pytest.approx(0.0, abs=1e-9)
    assert stats.kurtosis(r) == pytest.approx(0.0, abs=1e-9)
    for alpha in (0.95, 0.99):
        assert var_cornish_fisher(r, alpha) == pytest.approx(var_normal(r, alpha), rel=1e-6)
        assert cvar_cornish_fisher(r, alpha) == pytest.approx(cvar_normal(r, alpha), rel=1e-6)


def test_cornish_fisher_penalises_negative_skew_and_cvar_matches_integral() -> None:
    rng = np.random.default_rng(11)
    r = 0.002 - 0.01 * (rng.lognormal(0.0, 0.35, 5_000) - 1.0)  # long left tail
    mu, sigma = r.mean(), r.std(ddof=1)
    skew, kurt = stats.skew(r), stats.kurtosis(r)
    assert skew < -0.5
    for alpha in (0.95, 0.99):
        assert var_cornish_fisher(r, alpha) > var_normal(r, alpha)
        p = 1 - alpha
        tail, _ = integrate.quad(
            lambda u: mu + sigma * cornish_fisher_quantile(stats.norm.ppf(u), skew, kurt), 0.0, p
        )
        assert cvar_cornish_fisher(r, alpha) == pytest.approx(-tail / p, rel=1e-6)
        assert cvar_cornish_fisher(r, alpha) > var_cornish_fisher(r, alpha)


def test_monte_carlo_normal_converges_to_parametric_and_bootstrap_to_historical() -> None:
    returns, weights = random_assets()
    rp = portfolio_returns(returns, weights)
    sims = simulate_portfolio_returns(returns, weights, n_sims=400_000, method="normal", seed=1)
    var, cvar = var_cvar_historical(sims, 0.99)
    assert var == pytest.approx(var_normal(rp, 0.99), rel=0.02)
    assert cvar == pytest.approx(cvar_normal(rp, 0.99), rel=0.02)
    boot = simulate_portfolio_returns(returns, weights, n_sims=400_000, method="bootstrap", seed=1)
    assert set(np.round(boot, 12)) <= set(np.round(rp, 12))  # only observed days are drawn
    assert var_cvar_historical(boot, 0.95)[0] == pytest.approx(
        var_cvar_historical(rp, 0.95)[0], rel=0.05
    )
    # the seed is what makes a day's figure reproducible
    again = simulate_portfolio_returns(returns, weights, n_sims=1_000, method="normal", seed=1)
    np.testing.assert_array_equal(again, sims[:1_000])


def test_var_cvar_table_has_every_method_and_level_with_cvar_above_var() -> None:
    returns, weights = random_assets()
    table = var_cvar_table(returns, weights, n_sims=20_000, seed=0)
    assert table.height == 8
    assert set(table["method"]) == {"normal", "cornish_fisher", "historical", "monte_carlo"}
    assert (table["cvar"] >= table["var"]).all()
    assert (table["var"] > 0).all()
    by_level = table.group_by("method").agg(pl.col("var").sort_by("level").diff().drop_nulls())
    assert all(d[0] > 0 for d in by_level["var"])  # 99% VaR above 95% VaR for every method


# --- volatility, beta, drawdown, Sharpe -------------------------------------------------------


def test_realised_and_ex_ante_volatility_are_annualised() -> None:
    returns, weights = random_assets()
    rp = portfolio_returns(returns, weights)
    assert realised_volatility(rp) == pytest.approx(rp.std(ddof=1) * np.sqrt(TRADING_DAYS))
    # with the sample covariance the ex-ante figure is the realised one of the same weights
    cov = np.cov(returns, rowvar=False)
    assert ex_ante_volatility(weights, cov) == pytest.approx(realised_volatility(rp), rel=1e-12)


def test_beta_recovers_a_constructed_slope() -> None:
    rng = np.random.default_rng(5)
    bench = rng.normal(0.0004, 0.012, 300)
    noise = rng.normal(0.0, 0.005, (300, 3))
    # remove the noise's projection on (1, bench) so OLS sees the slopes exactly
    design = np.column_stack([np.ones(300), bench])
    noise -= design @ np.linalg.lstsq(design, noise, rcond=None)[0]
    slopes = np.array([0.5, 1.0, 1.7])
    assets = 0.0002 + np.outer(bench, slopes) + noise
    assert beta(assets[:, 2], bench) == pytest.approx(1.7, rel=1e-10)
    np.testing.assert_allclose(asset_betas(assets, bench), slopes, rtol=1e-10)


def test_drawdown_on_hand_made_series() -> None:
    r = [0.1, -0.5, 0.2, 1.0, -0.1]
    # wealth 1.1, 0.55, 0.66, 1.32, 1.188; running peak 1.1, 1.1, 1.1, 1.32, 1.32
    np.testing.assert_allclose(drawdown(r), [0.0, 0.5, 0.4, 0.0, 0.1], atol=1e-12)
    assert max_drawdown(r) == pytest.approx(0.5)
    assert current_drawdown(r) == pytest.approx(0.1)
    assert max_drawdown([-0.1, 0.05]) == pytest.approx(0.1)  # the start counts as a peak


def test_rolling_sharpe_matches_pandas_and_waits_for_full_windows() -> None:
    r = normal_sample(200, seed=2)
    out = rolling_sharpe(r, windows=(30, 90))
    assert out.columns == ["sharpe_30", "sharpe_90"]
    assert out["sharpe_30"].null_count() == 29 and out["sharpe_90"].null_count() == 89
    s = pd.Series(r)
    expected = s.rolling(90).mean() / s.rolling(90).std() * np.sqrt(TRADING_DAYS)
    np.testing.assert_allclose(out["sharpe_90"].to_numpy()[89:], expected.to_numpy()[89:])


# --- concentration, sectors, Euler ------------------------------------------------------------


def test_herfindahl_and_top_weight() -> None:
    assert herfindahl(np.full(20, 0.05)) == pytest.approx(0.05)
    assert herfindahl([1.0, 0.0]) == pytest.approx(1.0)
    w = np.arange(1, 13, dtype=float) / 78.0  # 1..12, summing to one
    assert top_n_weight(w, 10) == pytest.approx((78 - 1 - 2) / 78)
    assert top_n_weight(w[:4], 10) == pytest.approx(w[:4].sum())


def test_sector_weights_group_and_sum() -> None:
    out = sector_weights([0.2, 0.3, 0.1, 0.25], ["Tech", "Fin", "Tech", "Energy"])
    assert out["sector"].to_list() == ["Energy", "Fin", "Tech"]
    np.testing.assert_allclose(out["weight"].to_numpy(), [0.25, 0.3, 0.3])


def test_euler_contributions_sum_to_volatility_and_are_weight_times_gradient() -> None:
    returns, weights = random_assets(n=8)
    cov = np.cov(returns, rowvar=False)
    rc = euler_risk_contributions(weights, cov)
    vol = ex_ante_volatility(weights, cov)
    assert rc.sum() == pytest.approx(vol, rel=1e-12)
    h = 1e-7
    grad = [
        (ex_ante_volatility(weights + h * e, cov) - ex_ante_volatility(weights - h * e, cov))
        / (2 * h)
        for e in np.eye(weights.size)
    ]
    np.testing.assert_allclose(rc, weights * np.array(grad), rtol=1e-5)
    sectors = ["A", "B", "A", "C", "B", "A", "C", "C"]
    by_sector = sector_risk_contributions(weights, cov, sectors)
    assert by_sector["risk_contribution"].sum() == pytest.approx(vol, rel=1e-12)
    a = by_sector.filter(pl.col("sector") == "A")["risk_contribution"].item()
    assert a == pytest.approx(rc[[0, 2, 5]].sum())


def test_rebalance_turnover_and_cost() -> None:
    turnover, cost = rebalance_cost([0.5, 0.3, 0.2], [0.4, 0.4, 0.1], cost_bps=5.0)
    assert turnover == pytest.approx(0.3)
    assert cost == pytest.approx(0.3 * 5e-4)
    # a per-asset half-spread is paid only on what each asset trades
    _, cost = rebalance_cost([0.5, 0.3, 0.2], [0.4, 0.4, 0.2], 5.0, [10.0, 2.0, 50.0])
    assert cost == pytest.approx(0.1 * 15e-4 + 0.1 * 7e-4)


def test_summary_metrics_agree_with_the_single_measures() -> None:
    returns, weights = random_assets(t=80, n=12)
    bench = returns.mean(axis=1)
    rp = portfolio_returns(returns, weights)
    out = summary_metrics(returns, weights, bench, cost_bps=10.0)
    assert out["beta"] == pytest.approx(beta(rp, bench))
    assert out["max_drawdown"] == pytest.approx(max_drawdown(rp))
    assert out["top10_weight"] == pytest.approx(top_n_weight(weights, 10))
    # from cash the whole invested book is traded
    assert out["turnover"] == pytest.approx(weights.sum())
    assert out["transaction_cost"] == pytest.approx(weights.sum() * 10e-4)
    assert out["sharpe_60"] == pytest.approx(rolling_sharpe(rp)["sharpe_60"][-1])
    assert np.isnan(out["sharpe_90"])  # 80 days of history: the 90-day window is not full


# --- stress tests -----------------------------------------------------------------------------


def test_sector_shock_arithmetic() -> None:
    out = sector_shock_pnl([0.2, 0.3, 0.1, 0.25], ["Tech", "Fin", "Tech", "Energy"], -0.15)
    assert dict(zip(out["sector"], out["pnl"], strict=True)) == pytest.approx(
        {"Energy": -0.0375, "Fin": -0.045, "Tech": -0.045}
    )


def test_market_shock_uses_betas_and_cash_is_immune() -> None:
    assert market_shock_pnl([0.5, 0.3], [1.2, 0.5], -0.2) == pytest.approx(-0.2 * (0.6 + 0.15))


def test_stressed_var_scales_the_volatility_only() -> None:
    r = normal_sample(1_000)
    assert stressed_var_normal(r, 0.99, 1.0) == pytest.approx(var_normal(r, 0.99))
    z = stats.norm.ppf(0.99)
    assert stressed_var_normal(r, 0.99, 2.0) == pytest.approx(2 * r.std(ddof=1) * z - r.mean())


def test_worst_window_compounds_five_days() -> None:
    r = np.full(30, 0.001)
    r[10:15] = [-0.02, -0.03, 0.01, -0.05, -0.01]
    r[20] = -0.06  # a worse single day, but a milder 5-day window
    loss, start = worst_window(r, 5)
    assert start == 10
    assert loss == pytest.approx(np.prod(1 + r[10:15]) - 1)


def test_stress_table_assembles_every_scenario() -> None:
    returns, weights = random_assets(n=4)
    bench = returns.mean(axis=1)
    sectors = ["Tech", "Fin", "Tech", "Energy"]
    table = stress_table(returns, weights, bench, sectors)
    assert table["scenario"].to_list() == [
        "market_-10%",
        "market_-20%",
        "sector_Energy_-15%",
        "sector_Fin_-15%",
        "sector_Tech_-15%",
        "vol_x2_var95",
        "worst_5d",
    ]
    pnl = dict(zip(table["scenario"], table["pnl"], strict=True))
    betas = asset_betas(returns, bench)
    assert pnl["market_-20%"] == pytest.approx(2 * pnl["market_-10%"])
    assert pnl["market_-10%"] == pytest.approx(-0.1 * weights @ betas)
    assert pnl["sector_Tech_-15%"] == pytest.approx(-0.15 * (weights[0] + weights[2]))
    rp = portfolio_returns(returns, weights)
    assert pnl["worst_5d"] == pytest.approx(worst_window(rp)[0])
    np.testing.assert_allclose(table["loss"].to_numpy(), -table["pnl"].to_numpy())


def test_stop_loss_flags_held_positions_beyond_the_multiple_of_their_window_vol():
    rng = np.random.default_rng(21)
    returns = rng.normal(0.0, 0.01, size=(80, 4))
    # ticker 0 loses 2% a day for 5 days: 5-day return -9.6% against sqrt(5) * ~1% vol
    returns[-5:, 0] = -0.02
    returns[-5:, 1] = -0.02
    returns[-5:, 3] = 0.02  # a short position's loss
    weights = np.array([0.3, 0.0, 0.4, -0.1])
    hits = stop_loss_breaches(["A", "B", "C", "D"], returns, weights, multiple=3.0, window=5)
    # B is not held; C moved normally
    assert hits["ticker"].to_list() == ["A", "D"]
    expected_vol = returns[-68:-5, 0].std(ddof=1) * np.sqrt(5)
    assert hits["vol_window"][0] == pytest.approx(expected_vol)
    assert hits["return_window"][0] == pytest.approx(0.98**5 - 1)
    assert hits["sigmas"][0] == pytest.approx((0.98**5 - 1) / expected_vol)
    # a looser multiple lets A through
    loose = stop_loss_breaches(["A", "B", "C", "D"], returns, weights, multiple=50.0)
    assert loose.is_empty()


# --- unclassified names: each its own sector group -------------------------------------------


def test_a_book_of_unclassified_names_is_measured_name_by_name_against_the_sector_cap() -> None:
    rng = np.random.default_rng(3)
    tickers = ["AAA", "BBB", "CCC", "DDD"]
    returns = pd.DataFrame(rng.normal(0.0, 0.01, (120, 4)), columns=tickers)
    benchmark = returns.mean(axis=1).rename("SPY")
    sectors = pd.Series([UNCLASSIFIED, UNCLASSIFIED, "Energy", "Energy"], index=tickers)
    inputs = DayInputs(date(2024, 1, 2), returns, benchmark, sectors, None, {})
    weights = pd.Series([0.2, 0.2, 0.1, 0.1], index=tickers)
    metrics, rows = _book_risk(inputs, "demo", weights, None, PortfolioPolicy())
    # pooled, the two unclassified names would weigh 40%, past the 25% cap
    assert metrics["max_sector_weight"] == pytest.approx(0.2)
    by_sector = dict(rows.filter(pl.col("level") == "sector").select("name", "weight").rows())
    assert by_sector == pytest.approx(
        {"Unclassified (AAA)": 0.2, "Unclassified (BBB)": 0.2, "Energy": 0.2}
    )
    shocked = {k for k in metrics if k.startswith("stress_sector_")}
    assert shocked == {
        "stress_sector_Energy_-15%",
        "stress_sector_Unclassified (AAA)_-15%",
        "stress_sector_Unclassified (BBB)_-15%",
    }
