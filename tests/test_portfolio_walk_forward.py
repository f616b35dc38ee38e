"""The walk-forward backtest has no look-ahead: scores -> calibrated views -> books -> P&L on a
zero-drift market of iid returns, where only a signal that knows the future can earn."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import date

import numpy as np
import pandas as pd
import polars as pl
import pytest

from quant_assets.features.labels import forward_excess_returns
from quant_assets.partitions import trading_sessions
from quant_assets.research.walk_forward import (
    EQUAL_WEIGHT,
    INDEX,
    BacktestSpec,
    Market,
    backtest_from_scores,
)
from resources.portfolio_policy import PortfolioPolicy

N_TICKERS, SESSIONS, SCORED = 20, 300, 200
BENCHMARK = "IDX"
# book methods that use the scores, plus one that does not
METHODS = ["hrp", "black_litterman", "constrained_markowitz"]


@pytest.fixture(scope="module")
def market() -> dict:
    days = trading_sessions(date(2021, 1, 4), date(2023, 6, 30))[:SESSIONS]
    rng = np.random.default_rng(17)
    returns = rng.normal(0.0, 0.015, size=(SESSIONS, N_TICKERS))
    returns[0] = 0.0
    tickers = [f"T{i:02d}" for i in range(N_TICKERS)]
    index_returns = returns.mean(axis=1)
    closes = 100 * np.cumprod(1 + np.column_stack([returns, index_returns]), axis=0)
    names = [*tickers, BENCHMARK]
    bars = pl.DataFrame(
        {
            "ticker": np.repeat(names, SESSIONS),
            "date": days * len(names),
            "adj_close": closes.T.ravel(),
        }
    ).with_columns(
        (pl.col("adj_close") * 1.004).alias("adj_high"),
        (pl.col("adj_close") * 0.996).alias("adj_low"),
        # opens at the previous close: the replayed account fills there
        pl.col("adj_close")
        .shift(1)
        .over("ticker")
        .fill_null(pl.col("adj_close"))
        .alias("adj_open"),
        pl.col("adj_close").alias("close"),
        pl.lit(2_000_000.0).alias("volume"),
    )
    labels = forward_excess_returns(bars, BENCHMARK, days[0], days[-6])
    y = labels.to_pandas().set_index(["date", "ticker"])["label"].sort_index()
    y.index = y.index.set_levels(pd.DatetimeIndex(y.index.levels[0]), level="date")
    # next session's excess return of each ticker, dated on the session before it
    wide = pd.DataFrame(returns - index_returns[:, None], index=pd.DatetimeIndex(days))
    wide.columns = tickers
    next_day = wide.shift(-1)
    sectors = pd.Series([f"S{i % 5}" for i in range(N_TICKERS)], index=tickers)
    return {"bars": bars, "y": y, "next_day": next_day, "sectors": sectors, "days": days}


def _scores(wide: pd.DataFrame, days: list[date]) -> pd.DataFrame:
    """Panel scores from a dates x tickers frame, only for the last SCORED sessions."""
    scored = wide.loc[pd.DatetimeIndex(days[-SCORED:])]
    panel = scored.stack(future_stack=True).rename("score")
    panel.index.names = ["date", "ticker"]
    return panel.to_frame("ensemble")


def _run(market: dict, wide: pd.DataFrame) -> dict[str, float]:
    policy = PortfolioPolicy(methods=METHODS, live_method="hrp", max_turnover=2.0, max_names=10)
    spec = BacktestSpec(reoptimise_every=1, lookback_sessions=60, min_calibration_dates=20)
    history = Market(market["y"], market["bars"], market["sectors"], BENCHMARK)
    result = backtest_from_scores(
        _scores(wide, market["days"]), history, policy, spec, log=lambda _: None
    )
    sharpe = {}
    for name, book in result.books.items():
        r = book["net_return"].to_numpy()
        sharpe[name] = float(np.sqrt(252) * r.mean() / r.std(ddof=1))
    return sharpe


def test_only_a_signal_from_the_future_earns_and_a_one_day_shift_removes_it(market):
    oracle = _run(market, market["next_day"])
    # the same information one day later: known at the close it is scored on
    known = _run(market, market["next_day"].shift(1))
    # Sharpe's standard error on 200 iid days is about sqrt(252 / 200) = 1.12 annualised
    bound = 3 * np.sqrt(252 / SCORED)
    for method in ("black_litterman", "constrained_markowitz"):
        name = f"ensemble/{method}"
        assert oracle[name] > 5.0, (name, oracle[name])
        assert abs(known[name]) < bound, (name, known[name])
    # the score-blind methods and the benchmarks do not depend on the signal at all
    for name in ("hrp", EQUAL_WEIGHT, INDEX):
        assert oracle[name] == pytest.approx(known[name])


def test_a_random_signal_earns_nothing(market):
    rng = np.random.default_rng(5)
    noise = pd.DataFrame(
        rng.normal(size=market["next_day"].shape),
        index=market["next_day"].index,
        columns=market["next_day"].columns,
    )
    sharpe = _run(market, noise)
    bound = 3 * np.sqrt(252 / SCORED)
    for method in ("black_litterman", "constrained_markowitz"):
        assert abs(sharpe[f"ensemble/{method}"]) < bound


def test_the_backtest_config_builds_the_spec_from_the_specs_own_fields():
    from quant_assets.research.assets import BacktestConfig

    defaults, built = BacktestSpec(), BacktestConfig().spec()
    for spec_field in dataclasses.fields(BacktestSpec):
        if spec_field.name != "training":
            assert getattr(built, spec_field.name) == getattr(defaults, spec_field.name)
    sizes = {"train_sessions": 150, "cost_bps": 2.5, "cpcv_folds": 4}
    config = BacktestConfig(models=["lightgbm"], lightgbm_n_estimators=20, **sizes)
    spec = config.spec()
    assert {k: getattr(spec, k) for k in sizes} == sizes
    assert spec.models == spec.training.models == ("lightgbm",)
    assert spec.training.lightgbm_params == {"n_estimators": 20, "random_state": 0}


def test_one_backtest_run_materializes_each_stored_table_as_its_own_asset():
    from quant_assets.research.assets import backtest

    tables = {"backtest_metrics", "backtest_returns", "backtest_cpcv"}
    assert {key.to_user_string() for key in backtest.keys} == {"backtest", *tables}
    upstream = {"alpha158", "labels", "raw_bars", "universe"}
    for key in backtest.keys:
        assert backtest.group_names_by_key[key] == "portfolio"
        assert {dep.to_user_string() for dep in backtest.asset_deps[key]} == upstream
    assert backtest.op.name == "backtest"
    assert {"store", "mlflow", "portfolio_policy"} <= backtest.required_resource_keys


def test_a_backtest_without_stored_labels_fails_at_once_naming_what_is_missing(tmp_path):
    import dagster as dg

    from quant_assets.features.assets import alpha158
    from quant_assets.ingest.assets import raw_bars, universe
    from quant_assets.research.assets import backtest
    from resources.broker.resource import Broker
    from resources.execution_policy import ExecutionPolicy
    from resources.market_data.resource import MarketData
    from resources.mlflow import mlflow_resource
    from resources.storage import Store

    resources = {
        "store": Store(url=str(tmp_path / "quant.duckdb")),
        "market_data": MarketData(n_tickers=6),
        "mlflow": mlflow_resource,
        "portfolio_policy": PortfolioPolicy(),
        "broker": Broker(),
        "execution_policy": ExecutionPolicy(),
    }
    span = {
        "dagster/asset_partition_range_start": "2024-03-01",
        "dagster/asset_partition_range_end": "2024-03-28",
    }
    assert dg.materialize([universe, raw_bars, alpha158], resources=resources, tags=span).success
    result = dg.materialize([backtest], resources=resources, raise_on_error=False)
    assert not result.success
    error = str(result.get_step_failure_events()[0].event_specific_data.error)
    assert "no labels stored for 2024-03-01..2024-03-28" in error
    assert "materialize labels first" in error


def test_a_session_without_a_benchmark_bar_is_no_decision_day_and_the_run_goes_on(market):
    gap = market["days"][-SCORED + 10]  # would be a decision day: every session is one here
    bars = market["bars"].filter(~((pl.col("ticker") == BENCHMARK) & (pl.col("date") == gap)))
    history = Market(market["y"], bars, market["sectors"], BENCHMARK)
    policy = PortfolioPolicy(methods=["hrp"], live_method="hrp", max_turnover=2.0, max_names=10)
    spec = BacktestSpec(reoptimise_every=1, lookback_sessions=60, min_calibration_dates=20)
    result = backtest_from_scores(
        _scores(market["next_day"], market["days"]), history, policy, spec, log=lambda _: None
    )
    # the gap and the session after it (whose return spans the gap) decide nothing
    decided = set(result.rebalance_days)
    after = market["days"][market["days"].index(gap) + 1]
    assert gap not in decided and after not in decided
    assert len(decided) == SCORED - 2


def test_the_index_book_carries_the_benchmark_through_its_gap_and_its_returns_can_be_stored(market):
    from quant_assets.research.walk_forward import strategy_tables
    from resources.storage.store import conform, table_schema

    gap = market["days"][-SCORED + 10]
    bars = market["bars"].filter(~((pl.col("ticker") == BENCHMARK) & (pl.col("date") == gap)))
    history = Market(market["y"], bars, market["sectors"], BENCHMARK)
    policy = PortfolioPolicy(methods=["hrp"], live_method="hrp", max_turnover=2.0, max_names=10)
    spec = BacktestSpec(reoptimise_every=20, lookback_sessions=60, min_calibration_dates=20)
    result = backtest_from_scores(
        _scores(market["next_day"], market["days"]), history, policy, spec, log=lambda _: None
    )
    index = result.books[INDEX]["net_return"]
    after = market["days"][market["days"].index(gap) + 1]
    # the gap and the session whose return spans it earn 0, as a held name's missing return
    assert index[pd.Timestamp(gap)] == 0.0 and index[pd.Timestamp(after)] == 0.0
    assert index.notna().all()
    _, returns = strategy_tables(result)
    conform(table_schema("backtest_returns"), returns)  # the store takes it: no null return


def test_a_strategy_past_the_maximum_drawdown_only_shrinks_positions(market):
    """A market that falls 0.4% a session through the scored period drags every long-only book
    down: once a strategy's own simulated NAV is more than 10% below its peak at a decision
    day, that day's book only shrinks positions, and not before."""
    from quant_core.metrics import current_drawdown

    days = market["days"]
    falling = pl.DataFrame({"date": days, "step": np.arange(len(days))}).with_columns(
        (0.996 ** (pl.col("step") - (SESSIONS - SCORED)).clip(lower_bound=0)).alias("decline")
    )
    bars = (
        market["bars"]
        .join(falling.select("date", "decline"), on="date")
        .with_columns(
            [
                pl.col(c) * pl.col("decline")
                for c in ("adj_open", "adj_close", "adj_high", "adj_low", "close")
            ]
        )
        .drop("decline")
    )
    policy = PortfolioPolicy(methods=["hrp"], live_method="hrp", max_turnover=2.0, max_names=10)
    # the re-optimisation cadence's rule (the daily replay's is tested in test_backtest_replay)
    spec = BacktestSpec(
        reoptimise_every=5, lookback_sessions=60, min_calibration_dates=20, replay_models=()
    )
    history = Market(market["y"], bars, market["sectors"], BENCHMARK)
    result = backtest_from_scores(
        _scores(market["next_day"], days), history, policy, spec, log=lambda _: None
    )
    decided = result.decisions["hrp"]
    cut_days = set(result.status.filter(pl.col("risk_reducing"))["date"].to_list())
    net = result.books["hrp"]["net_return"]
    for previous_day, day in itertools.pairwise(sorted(decided)):
        # independently: the drawdown of the strategy's own P&L up to the decision's close;
        # that P&L also pays for the day's own trade, which the decision could not know, so a
        # day within 0.5% of the limit is not judged here
        # over the policy's window (the spec's 60 sessions here), as live reads it
        drawdown = current_drawdown(net[net.index <= pd.Timestamp(day)].to_numpy()[-60:])
        if abs(drawdown - policy.max_drawdown) > 0.005:
            assert (day in cut_days) == (drawdown > policy.max_drawdown), (day, drawdown)
        if day in cut_days:
            before = decided[previous_day]
            names = before.index.union(decided[day].index)
            after = decided[day].reindex(names, fill_value=0.0)
            held = before.reindex(names, fill_value=0.0)
            assert (after.abs() <= held.abs() + 1e-12).all() and (after * held >= 0).all()
    assert cut_days, "the falling market never took the strategy past the maximum drawdown"
    # the NAV the rule reads is extended a segment at a time: equal to re-simulating every
    # decision so far from the first one, at each decision day
    from quant_assets.research.walk_forward import _SimulatedNav, _targets

    decision_days, nav = sorted(decided), _SimulatedNav()
    for k in range(1, len(decision_days)):
        so_far = {d: decided[d] for d in decision_days[:k]}
        day = decision_days[k]
        window = [d for d in history.sessions if decision_days[0] <= d <= day]
        whole = history.simulate(_targets(so_far, window), spec, until=day)["net_return"]
        assert nav.drawdown(so_far, history, spec, day) == pytest.approx(
            current_drawdown(whole.to_numpy()), abs=1e-12
        ), day


def test_the_backtest_counts_the_days_each_live_rule_fired():
    from quant_assets.research.walk_forward import rule_days

    d1, d2 = date(2024, 3, 4), date(2024, 3, 5)
    status = pl.DataFrame(
        {
            "date": [d1, d1, d2, d2],
            "model": ["-", "ensemble", "-", "ensemble"],
            "method": ["hrp", "black_litterman", "hrp", "black_litterman"],
            "risk_reducing": [False, True, True, True],
            "stopped": [0, 0, 3, 3],
        }
    )
    counted = {row["strategy"]: row for row in rule_days(status).iter_rows(named=True)}
    assert {s: r["drawdown_rule_days"] for s, r in counted.items()} == {
        "ensemble/black_litterman": 2,
        "hrp": 1,
    }
    assert {s: r["stop_loss_days"] for s, r in counted.items()} == {
        "ensemble/black_litterman": 1,
        "hrp": 1,
    }
