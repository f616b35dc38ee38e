"""target_weights, risk_metrics and the blocking risk-limit checks through real materialize()
runs on a DuckDB store of synthetic bars. The ml_views rows are written directly (random views
with a fixed seed): their own asset is tested end to end in test_alpha_pipeline."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date

import dagster as dg
import numpy as np
import pandas as pd
import polars as pl
import pytest
from conftest import write_random_views

from quant_assets.ingest.assets import raw_bars, universe
from quant_assets.partitions import next_trading_day, trading_sessions
from quant_assets.portfolio.allocation import check_constraints
from quant_assets.portfolio.assets import target_weights
from quant_assets.portfolio.books import allocate_day, day_inputs, returns_panel, risk_reducing
from quant_assets.reporting.assets import limits_table
from quant_assets.risk import checks
from quant_assets.risk.assets import risk_metrics
from quant_assets.risk.measures import current_drawdown
from resources.broker.resource import Broker
from resources.market_data.resource import MarketData
from resources.portfolio_policy import PortfolioPolicy
from resources.storage import Store

RANGE = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
FIRST_BAR, LAST_BAR = "2023-01-03", "2024-03-28"
DAYS = trading_sessions(date(2024, 3, 18), date(2024, 3, 23))  # five sessions
TICKERS = 30
CHECKS = [
    checks.live_book_is_feasible,
    checks.live_book_only_reduces_risk_beyond_max_drawdown,
    checks.live_positions_within_stop_loss,
    checks.live_book_within_sector_cap,
    checks.live_book_within_concentration_limits,
    checks.live_book_within_volatility_band,
]


def _resources(store: Store, **policy) -> dict:
    limits = {"lookback_sessions": 252, **policy}
    return {
        "store": store,
        "market_data": MarketData(n_tickers=TICKERS),
        "portfolio_policy": PortfolioPolicy(**limits),
        "broker": Broker(),
    }


def _window(first: date, last: date) -> dict[str, str]:
    return dict(zip(RANGE, (first.isoformat(), last.isoformat()), strict=True))


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> Iterator[tuple[Store, dg.ExecuteInProcessResult]]:
    store = Store(url=str(tmp_path_factory.mktemp("books") / "quant.duckdb"))
    ingest = dg.materialize(
        [universe, raw_bars],
        resources=_resources(store),
        tags=_window(date.fromisoformat(FIRST_BAR), date.fromisoformat(LAST_BAR)),
    )
    assert ingest.success
    write_random_views(store, DAYS)
    result = dg.materialize(
        [target_weights, risk_metrics, *CHECKS],
        resources=_resources(store),
        tags=_window(DAYS[0], DAYS[-1]),
    )
    yield store, result


def _event(result: dg.ExecuteInProcessResult, node: str, key: str) -> dg.AssetMaterialization:
    """The first materialization of asset ``key`` by the multi-asset ``node`` (a range run
    reports one per partition, each with the run's metadata)."""
    return next(
        e for e in result.asset_materializations_for_node(node) if e.asset_key == dg.AssetKey(key)
    )


def _book(frame: pl.DataFrame) -> pd.Series:
    return pd.Series(frame["weight"].to_numpy(), index=frame["ticker"].to_list())


def test_every_method_books_every_day_with_its_constraints(books):
    store, result = books
    assert result.success
    policy = PortfolioPolicy()
    weights = store.read("target_weights")
    status = store.read("allocation_status")
    assert status.height == len(DAYS) * len(policy.methods)
    # one run, two assets, each with its own metadata
    books_event = _event(result, "target_weights", "target_weights")
    status_event = _event(result, "target_weights", "allocation_status")
    assert books_event.metadata["rows"].value == weights.height
    assert status_event.metadata["rows"].value == status.height
    assert status_event.metadata["infeasible_books"].value == 0
    assert status["feasible"].all(), status.filter(~pl.col("feasible"))
    assert sorted(weights["date"].unique().to_list()) == DAYS
    assert set(weights["method"].unique()) == set(policy.methods)
    # the live flag marks exactly the live method's rows
    live = weights.filter(pl.col("is_live"))
    assert set(live["method"].unique()) == {policy.live_method}
    sectors = store.read("universe").to_pandas().set_index("ticker")["sector"]
    previous: pd.Series | None = None
    for day in DAYS:
        day_rows = weights.filter(pl.col("date") == day)
        for method in ("black_litterman", "hrp", "min_cvar", "risk_parity"):
            book = _book(day_rows.filter(pl.col("method") == method))
            # weights under 1e-6 are not stored: up to 30 of them are missing from the sum
            assert check_constraints(book, fully_invested=True, tol=1e-4) == [], (day, method)
        markowitz = _book(day_rows.filter(pl.col("method") == "constrained_markowitz"))
        violations = check_constraints(
            markowitz,
            prev_weights=previous,
            sectors=sectors,
            max_names=policy.max_names,
            sector_cap=policy.sector_cap,
            max_turnover=policy.max_turnover if previous is not None else None,
            max_weight=policy.max_position,
            max_top10=policy.max_top10,
        )
        assert violations == [], (day, violations)
        previous = markowitz
    # the first day starts from cash, later days are capped at 15% one-way L1 turnover
    turnover = status.filter(pl.col("method") == "constrained_markowitz").sort("date")["turnover"]
    assert turnover[0] > policy.max_turnover
    assert (turnover[1:] <= policy.max_turnover + 1e-6).all()


def test_risk_metrics_describe_each_book_consistently(books):
    store, result = books
    metrics = store.read("risk_metrics")
    contributions = store.read("risk_contributions")
    metrics_event = _event(result, "risk_metrics", "risk_metrics")
    contributions_event = _event(result, "risk_metrics", "risk_contributions")
    assert metrics_event.metadata["rows"].value == metrics.height
    assert contributions_event.metadata["rows"].value == contributions.height
    wide = metrics.pivot(on="metric", index=["date", "method", "is_live"], values="value")
    assert wide.height == len(DAYS) * len(PortfolioPolicy().methods)
    for row in wide.iter_rows(named=True):
        assert row["var99_historical"] >= row["var95_historical"] > 0
        assert row["cvar95_historical"] >= row["var95_historical"]
        assert row["cvar95_normal"] > row["var95_normal"] > 0
        assert row["stress_market_-20%"] == pytest.approx(2 * row["stress_market_-10%"])
        per = contributions.filter(
            (pl.col("date") == row["date"]) & (pl.col("method") == row["method"])
        )
        tickers = per.filter(pl.col("level") == "ticker")
        sectors = per.filter(pl.col("level") == "sector")
        # Euler: contributions add up to the ex-ante volatility, per ticker and per sector
        assert tickers["risk_contribution"].sum() == pytest.approx(row["ex_ante_vol"], rel=1e-9)
        assert sectors["risk_contribution"].sum() == pytest.approx(row["ex_ante_vol"], rel=1e-9)
        assert sectors["weight"].sum() == pytest.approx(row["invested"], rel=1e-9)
        assert row["max_sector_weight"] == pytest.approx(sectors["weight"].max())
    live = wide.filter(pl.col("is_live"))
    assert (live["ex_ante_vol"] <= PortfolioPolicy().vol_target + 1e-4).all()
    assert live["realised_sessions"].to_list() == list(range(len(DAYS)))


def test_realised_drawdown_is_that_of_the_stored_live_books(books):
    store, _ = books
    live = store.read("target_weights", where={"is_live": [True]})
    bars = store.read("raw_bars", DAYS[0], next_trading_day(DAYS[-1]))
    panel = returns_panel(store.read("raw_bars", date(2024, 3, 1), next_trading_day(DAYS[-1])))
    earned = []
    for before, after in itertools.pairwise(DAYS):
        book = _book(live.filter(pl.col("date") == before))
        day = panel.filter(pl.col("date") == after).select(book.index.to_list()).row(0)
        earned.append(float(np.dot(book.to_numpy(), np.array(day))))
    assert bars.height  # the days are stored sessions
    stored = store.read("risk_metrics", where={"is_live": [True], "metric": ["realised_drawdown"]})
    assert stored.sort("date")["value"][-1] == pytest.approx(current_drawdown(np.array(earned)))


@dg.asset(deps=[risk_metrics], partitions_def=target_weights.partitions_def)
def order_probe() -> None:
    """Stands in for the paper orders downstream of the risk limits."""


def _live_drawdown(store: Store, day: date) -> float:
    return (
        store.read("risk_metrics", day, next_trading_day(day), where={"is_live": [True]})
        .filter(pl.col("metric") == "realised_drawdown")["value"]
        .item()
    )


def test_past_the_maximum_drawdown_the_live_book_only_reduces_positions(books):
    store, _ = books
    day = next_trading_day(DAYS[-1])
    write_random_views(store, [day], seed=7)
    # the default policy gives the day's drawdown (the limit does not change the measure)
    baseline = dg.materialize(
        [target_weights, risk_metrics], resources=_resources(store), partition_key=day.isoformat()
    )
    assert baseline.success
    drawdown = _live_drawdown(store, day)
    assert drawdown > 0, "the fixture's live book must be below its peak on this day"
    assert not store.read("allocation_status", day, next_trading_day(day))["risk_reducing"].any()
    limit = drawdown / 2
    result = dg.materialize(
        [
            target_weights,
            risk_metrics,
            checks.live_book_only_reduces_risk_beyond_max_drawdown,
            checks.live_book_within_volatility_band,
        ],
        resources=_resources(store, max_drawdown=limit),
        partition_key=day.isoformat(),
    )
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    status = store.read("allocation_status", day, next_trading_day(day))
    reducing = status.filter(pl.col("risk_reducing"))
    assert reducing["method"].to_list() == [PortfolioPolicy().live_method]
    assert reducing["feasible"].item() and "risk-reducing" in reducing["status"].item()
    weights = store.read("target_weights")
    live = weights.filter(pl.col("is_live"))
    before = _book(live.filter(pl.col("date") == DAYS[-1]))
    after = _book(live.filter(pl.col("date") == day))
    assert set(after.index) <= set(before.index)
    assert (after <= before.reindex(after.index) + 1e-12).all()
    metrics = store.read("risk_metrics", day, next_trading_day(day), where={"is_live": [True]})
    grew = metrics.filter(pl.col("metric") == "risk_increasing_names")["value"].item()
    assert grew == 0


def test_a_live_book_that_grows_positions_past_the_maximum_drawdown_is_blocked(books):
    store, _ = books
    day = DAYS[-1]
    drawdown = _live_drawdown(store, day)
    assert drawdown > 0, "the fixture's live book must be below its peak on this day"
    # the stored book of the day was built under the 10% limit, buying as the optimiser chose
    result = dg.materialize(
        [risk_metrics, order_probe, checks.live_book_only_reduces_risk_beyond_max_drawdown],
        resources=_resources(store, max_drawdown=drawdown / 2),
        partition_key=day.isoformat(),
        raise_on_error=False,
        selection=[risk_metrics, order_probe],
    )
    evaluation = result.get_asset_check_evaluations()[0]
    assert not evaluation.passed
    assert evaluation.metadata["latest_risk_increasing_names"].value > 0
    assert not result.asset_materializations_for_node("order_probe")


def test_risk_reducing_trades_never_grow_open_or_flip_a_position():
    rng = np.random.default_rng(11)
    for _ in range(200):
        names = [f"T{i}" for i in range(12)]
        target = pd.Series(rng.normal(0, 0.05, 12), index=names)
        target[rng.random(12) < 0.3] = 0.0
        previous = pd.Series(rng.normal(0, 0.05, 10), index=names[2:])
        cut = risk_reducing(target, previous)
        then = previous.reindex(names, fill_value=0.0)
        assert (cut.abs() <= then.abs() + 1e-15).all()
        assert (cut * then >= 0).all()
        assert (cut.abs() <= target.abs() + 1e-15).all()
        assert (cut - then).abs().sum() <= (target - then).abs().sum() + 1e-15
        # a target inside yesterday's positions is reached exactly
        inside = then * rng.random(12)
        assert np.allclose(risk_reducing(inside, previous), inside)
    assert (risk_reducing(target, None) == 0).all()


def test_an_infeasible_live_book_is_reported_and_blocks_what_follows(books, tmp_path):
    store, _ = books
    # a 0.1% vol ceiling with no turnover allowed cannot be reached from yesterday's book
    day = next_trading_day(DAYS[-1])
    write_random_views(store, [day], seed=5)
    result = dg.materialize(
        [target_weights, risk_metrics, checks.live_book_is_feasible],
        resources=_resources(store, vol_target=0.001, max_turnover=0.0),
        partition_key=day.isoformat(),
        raise_on_error=False,
    )
    status = store.read("allocation_status", day, next_trading_day(day))
    live = status.filter(pl.col("is_live"))
    assert not live["feasible"].item()
    assert "infeasible" in live["status"].item()
    evaluation = result.get_asset_check_evaluations()[0]
    assert not evaluation.passed
    # the blocking check stopped risk_metrics
    assert not result.asset_materializations_for_node("risk_metrics")
    assert not result.success


def test_a_breached_risk_limit_blocks_the_downstream_asset(books):
    store, _ = books
    day = DAYS[-1].isoformat()
    resources = _resources(store, max_position=0.01)
    result = dg.materialize(
        [risk_metrics, order_probe, checks.live_book_within_concentration_limits],
        resources=resources,
        partition_key=day,
        raise_on_error=False,
        selection=[risk_metrics, order_probe],
    )
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    failed = evaluations["live_book_within_concentration_limits"]
    assert not failed.passed
    assert failed.metadata["days_breached"].value == 1
    assert result.asset_materializations_for_node("risk_metrics")
    assert not result.asset_materializations_for_node("order_probe")
    # with the policy's limits restored the same day passes and the probe runs
    passing = dg.materialize(
        [risk_metrics, order_probe, checks.live_book_within_concentration_limits],
        resources=_resources(store),
        partition_key=day,
    )
    assert passing.success
    assert passing.asset_materializations_for_node("order_probe")


def test_a_name_past_its_stop_loss_is_left_out_of_every_book():
    days = trading_sessions(date(2024, 1, 2), date(2024, 6, 28))[:100]
    rng = np.random.default_rng(9)
    returns = rng.normal(0.0, 0.01, size=(len(days), 4))
    returns[-5:, 1] = -0.03  # B falls 14% in five sessions, ~6 sigma of its 5-day vol
    panel = pl.DataFrame({"date": days, **{t: returns[:, i] for i, t in enumerate("ABCX")}})
    sectors = pd.Series(["s1", "s2", "s1"], index=["A", "B", "C"])
    stopped = day_inputs(days[-1], panel, "X", sectors, None, {}, 60, 3.0, 5)
    assert stopped.stopped == ("B",)
    assert list(stopped.returns.columns) == ["A", "C"]
    books = allocate_day(stopped, PortfolioPolicy(), ["hrp", "min_cvar"])
    assert "B" not in set(books.weights["ticker"])
    assert (books.status["stopped"] == 1).all()
    # without the limit B is a candidate like the others
    assert day_inputs(days[-1], panel, "X", sectors, None, {}, 60).stopped == ()


def test_a_limit_whose_figure_cannot_be_measured_is_not_evaluated_and_does_not_block(books):
    store, _ = books
    day = DAYS[0]  # the live book's first session: no realised history, no drawdown yet
    result = dg.materialize(
        [risk_metrics, order_probe, checks.live_book_only_reduces_risk_beyond_max_drawdown],
        resources=_resources(store),
        partition_key=day.isoformat(),
    )
    stored = store.read("risk_metrics", day, next_trading_day(day), where={"is_live": [True]})
    drawdown = stored.filter(pl.col("metric") == "realised_drawdown")["value"]
    assert drawdown.is_null().all() or drawdown.is_nan().all()
    evaluation = result.get_asset_check_evaluations()[0]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["status"].value == "NOT EVALUATED"
    assert result.asset_materializations_for_node("order_probe")  # a WARN does not block
    status = dict(limits_table(stored, [], PortfolioPolicy()).select("limit", "status").iter_rows())
    assert status["Max drawdown (risk-reducing only)"] == "NOT EVALUATED"
    # the volatility band is judged on the ex-ante figure alone
    assert status["Volatility band (ex-ante)"] in ("OK", "BREACHED")
