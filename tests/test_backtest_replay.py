"""The backtest's daily replay of the live book (research/replay.py): whole lots, the simulated
broker's fills, costs that reconcile with the NAV, the drawdown rule and the stop-loss on the
account's own book, and no look-ahead."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import polars as pl
import pytest
from test_portfolio_walk_forward import (  # noqa: F401 (market: the fixture)
    BENCHMARK,
    SCORED,
    SESSIONS,
    _scores,
    market,
)

from quant_assets.features.labels import forward_excess_returns
from quant_assets.research.walk_forward import BacktestSpec, Execution, Market, _replay
from resources.broker.simulated import FillModel
from resources.execution_policy import ExecutionPolicy
from resources.portfolio_policy import PortfolioPolicy

LOT = 10
POLICY = PortfolioPolicy(methods=["hrp"], live_method="hrp", max_names=10)
SPEC = BacktestSpec(lookback_sessions=60, min_calibration_dates=20)


def _history(frames: dict, bars: pl.DataFrame | None = None) -> Market:
    return Market(
        frames["y"], frames["bars"] if bars is None else bars, frames["sectors"], BENCHMARK
    )


def _replayed(history: Market, frames: dict, policy: PortfolioPolicy = POLICY):
    days = frames["days"][-SCORED:]
    execution = Execution(ExecutionPolicy(lot_size=LOT), FillModel())
    scores = _scores(frames["next_day"], frames["days"])
    return _replay(None, scores, history, policy, SPEC, execution, days)


@pytest.fixture(scope="module")
def replay(market):  # noqa: F811
    return _replayed(_history(market), market)


def test_the_replayed_book_trades_whole_lots_through_the_brokers_fill_model(replay):
    fills = pl.DataFrame(replay.fills)
    assert fills.height > 50
    assert (fills["filled_qty"] % LOT == 0).all()
    orders = pl.concat(list(replay.orders.values()))
    sent = orders.filter(pl.col("status") == "NEW")
    assert (sent["qty"] % LOT == 0).all()
    assert (sent["notional"] >= ExecutionPolicy().min_trade_notional).all()
    # the simulated broker's own model fills the same orders the same way (one cost model)
    again = FillModel().execute_many(
        [_request(r) for r in replay.fills[:20]],
        [r["arrival_price"] for r in replay.fills[:20]],
        replay.fills[0]["fill_date"],
    )
    assert [a["avg_fill_price"] for a in again] == [r["avg_fill_price"] for r in replay.fills[:20]]


def _request(record: dict):
    from resources.broker.base import OrderRequest

    return OrderRequest.from_row(record, record["client_order_id"], record["date"])


def test_costs_and_lots_reconcile_with_the_simulated_nav(replay, market):  # noqa: F811
    """Independently of the replay's books: each session's NAV change is the held shares'
    move from close to close, plus each fill's move from its price to the close, less fees;
    the costs the book reports are the fees and the fills' impact against their arrival."""
    book = replay.book()
    bars = _history(market).account_bars
    closes = bars.pivot(on="ticker", index="date", values="close").sort("date").to_pandas()
    closes = closes.set_index(pd.DatetimeIndex(closes["date"])).drop(columns="date")
    fills = pd.DataFrame(replay.fills)
    fills["signed"] = np.where(fills["side"] == "buy", 1, -1) * fills["filled_qty"]
    fills["day"] = pd.DatetimeIndex(fills["fill_date"])
    shares = pd.Series(0.0, index=closes.columns)
    # the first session holds only cash: its orders fill in the second
    nav = book["nav"]
    assert nav.iloc[0] == SPEC.initial_cash and book.index[0] == pd.Timestamp(
        market["days"][-SCORED]
    )
    for previous, day in itertools.pairwise(nav.index):
        today = fills[fills["day"] == day]
        move = float((shares * (closes.loc[day] - closes.loc[previous])).sum())
        traded = today["signed"] * (
            closes.loc[day, today["ticker"]].to_numpy() - today["avg_fill_price"]
        )
        expected = move + float(traded.sum()) - float(today["fees"].sum())
        assert nav[day] - nav[previous] == pytest.approx(expected, abs=1e-6), day
        cost = (
            today["fees"].sum()
            + (today["signed"] * (today["avg_fill_price"] - today["arrival_price"])).sum()
        )
        assert book.loc[day, "cost"] * nav[previous] == pytest.approx(cost, abs=1e-6)
        shares = shares.add(today.groupby("ticker")["signed"].sum(), fill_value=0.0)
    assert (shares % LOT == 0).all()
    assert (book["gross_return"] - book["cost"] - book["net_return"]).abs().max() < 1e-12


def test_the_replay_only_shrinks_the_held_book_once_its_own_nav_is_past_the_maximum_drawdown(
    market,  # noqa: F811
):
    days = market["days"]
    step = pl.DataFrame({"date": days, "step": np.arange(len(days))}).with_columns(
        (0.996 ** (pl.col("step") - (SESSIONS - SCORED)).clip(lower_bound=0)).alias("decline")
    )
    prices = ("adj_open", "adj_close", "adj_high", "adj_low", "close")
    bars = (
        market["bars"]
        .join(step.select("date", "decline"), on="date")
        .with_columns([pl.col(c) * pl.col("decline") for c in prices])
        .drop("decline")
    )
    replay = _replayed(_history(market, bars), market)
    nav = replay.book()["nav"]
    cut = set(pl.concat(replay.statuses).filter(pl.col("risk_reducing"))["date"].to_list())
    assert cut, "the falling market never took the account past the maximum drawdown"
    for day, decided in replay.decisions.items():
        # the NAV of the policy's window (its lookback + 1 closes), as live reads ``nav``
        so_far = nav[nav.index <= pd.Timestamp(day)].iloc[-(SPEC.lookback_sessions + 1) :]
        drawdown = 1.0 - so_far.iloc[-1] / so_far.max()
        assert (day in cut) == (drawdown > POLICY.max_drawdown), (day, drawdown)
        if day in cut:
            held = replay.held[day]
            names = held.index.union(decided.index)
            after, before = (
                decided.reindex(names, fill_value=0.0),
                held.reindex(names, fill_value=0.0),
            )
            assert (after.abs() <= before.abs() + 1e-12).all() and (after * before >= 0).all()
            # and only orders that shrink a position are sent
            sent = replay.orders[day].filter(pl.col("status") == "NEW")
            assert (sent["target_qty"].abs() <= sent["held_qty"].abs()).all()


def test_a_stopped_name_leaves_the_replayed_book(market):  # noqa: F811
    days = market["days"]
    crash_end = days[-SCORED + 40]
    crashing = pl.DataFrame({"date": days, "step": np.arange(len(days))}).with_columns(
        pl.when(pl.col("date") > crash_end)
        .then(0.6)
        .otherwise(0.9 ** (pl.col("step") - (days.index(crash_end) - 5)).clip(lower_bound=0))
        .clip(lower_bound=0.6)
        .alias("factor")
    )
    prices = ("adj_open", "adj_close", "adj_high", "adj_low", "close")
    bars = (
        market["bars"]
        .join(crashing.select("date", "factor"), on="date")
        .with_columns(
            [
                pl.when(pl.col("ticker") == "T03")
                .then(pl.col(c) * pl.col("factor"))
                .otherwise(pl.col(c))
                for c in prices
            ]
        )
        .drop("factor")
    )
    replay = _replayed(_history(market, bars), market)
    status = pl.concat(replay.statuses).filter(pl.col("date") == crash_end)
    assert status["stopped"].item() >= 1
    assert "T03" not in replay.decisions[crash_end].index
    before = days[days.index(crash_end) - 10]
    assert "T03" in replay.decisions[before].index


def test_a_replayed_decision_does_not_change_when_the_market_after_it_changes(market):  # noqa: F811
    days = market["days"]
    cutoff = days[-SCORED + 60]
    shocked = market["bars"].with_columns(
        [
            pl.when(pl.col("date") > cutoff).then(pl.col(c) * 1.3).otherwise(pl.col(c))
            for c in ("adj_open", "adj_close", "adj_high", "adj_low", "close")
        ]
    )
    labels = forward_excess_returns(shocked, BENCHMARK, days[0], days[-6])
    y = labels.to_pandas().set_index(["date", "ticker"])["label"].sort_index()
    y.index = y.index.set_levels(pd.DatetimeIndex(y.index.levels[0]), level="date")
    base = _replayed(_history(market), market)
    moved = _replayed(Market(y, shocked, market["sectors"], BENCHMARK), market)
    decided = [d for d in base.decisions if d <= cutoff]
    assert len(decided) > 30
    for day in decided:
        pd.testing.assert_series_equal(base.decisions[day], moved.decisions[day])
    later = [d for d in base.decisions if d > cutoff]
    assert any(not base.decisions[d].equals(moved.decisions.get(d)) for d in later)
