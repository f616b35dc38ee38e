"""paper_orders -> positions -> nav on the simulated broker, through real materialize() runs on a
DuckDB store of synthetic bars (the live books come from the real target_weights asset on
random views, as in test_portfolio_assets). Tests run in file order on one store: each
session's orders are sent once, forward in time."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date

import dagster as dg
import polars as pl
import pytest
from conftest import write_random_views

from quant_assets.execution import checks
from quant_assets.execution.accounting import holdings
from quant_assets.execution.assets import nav, paper_orders, positions
from quant_assets.ingest.assets import raw_bars, universe
from quant_assets.partitions import next_trading_day, trading_sessions
from quant_assets.portfolio.assets import target_weights
from quant_assets.risk.assets import risk_metrics
from resources.broker.resource import Broker
from resources.broker.simulated import SimulatedBroker
from resources.execution_policy import ExecutionPolicy
from resources.market_data.resource import MarketData
from resources.portfolio_policy import PortfolioPolicy
from resources.storage import Store

RANGE = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
DAYS = trading_sessions(date(2024, 3, 18), date(2024, 3, 26))  # six sessions
# small enough that every order of the synthetic names is under 5% of their daily volume
CASH = 200_000.0
ACCOUNT = [paper_orders, positions, nav, checks.positions_match_the_broker]


def _resources(store: Store, **policy) -> dict:
    return {
        "store": store,
        "market_data": MarketData(n_tickers=30),
        "portfolio_policy": PortfolioPolicy(lookback_sessions=252, **policy),
        "broker": Broker(initial_cash=CASH),
        "execution_policy": ExecutionPolicy(),
    }


def _trade(store: Store, day: date, assets=ACCOUNT, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets, resources=_resources(store), partition_key=day.isoformat(), **kwargs
    )


@pytest.fixture(scope="module")
def account(tmp_path_factory) -> Iterator[Store]:
    store = Store(url=str(tmp_path_factory.mktemp("account") / "quant.duckdb"))
    window = dict(zip(RANGE, ("2023-01-03", "2024-04-05"), strict=True))
    assert dg.materialize([universe, raw_bars], resources=_resources(store), tags=window).success
    write_random_views(store, DAYS)
    books = dict(zip(RANGE, (DAYS[0].isoformat(), DAYS[-1].isoformat()), strict=True))
    assert dg.materialize(
        [target_weights, risk_metrics], resources=_resources(store), tags=books
    ).success
    for day in DAYS[:3]:
        assert _trade(store, day).success
    yield store


def test_the_live_book_is_bought_on_the_rust_book_and_held(account):
    journal = account.read("order_journal")
    first = journal.filter(pl.col("date") == DAYS[0])
    assert first.height > 5 and (first["side"] == "buy").all()
    assert (first["status"] == "FILLED").all(), first.filter(pl.col("status") != "FILLED")
    # the first session's book: weight x NAV / close, whole shares, bought the next morning
    live = account.read("target_weights", DAYS[0], DAYS[1], where={"is_live": [True]})
    closes = account.read("raw_bars", DAYS[0], DAYS[1], columns=["ticker", "close"])
    expected = live.join(closes, on="ticker").select(
        "ticker", (pl.col("weight") * CASH / pl.col("close")).floor().cast(pl.Int64).alias("qty")
    )
    held = account.read("positions", DAYS[1], DAYS[2]).select("ticker", "qty")
    assert dict(held.iter_rows()) == dict(expected.filter(pl.col("qty") > 0).iter_rows())
    # the simulated book sits around the next open: a buy pays at least it, a sell gets at most
    fills = account.read("simulated_broker_orders").filter(pl.col("filled_qty") > 0)
    buys, sells = fills.filter(pl.col("side") == "buy"), fills.filter(pl.col("side") == "sell")
    assert (buys["avg_fill_price"] >= buys["arrival_price"]).all()
    assert (sells["avg_fill_price"] <= sells["arrival_price"]).all()
    # the broker's own books and the journal agree
    assert SimulatedBroker(account, initial_cash=CASH).positions() == dict(
        holdings(journal).iter_rows()
    )


def test_nav_change_is_the_market_pnl_of_the_holdings_and_fills_less_fees(account):
    navs = account.read("nav").sort("date")
    assert navs["date"].to_list() == DAYS[:3]
    assert navs["nav"][0] == pytest.approx(CASH)  # nothing filled before the first session
    journal = account.read("order_journal")
    bars = account.read("raw_bars", DAYS[0], DAYS[3], columns=["ticker", "date", "close"])
    for before, day in itertools.pairwise(DAYS[:3]):
        row = navs.filter(pl.col("date") == day).row(0, named=True)
        previous = navs.filter(pl.col("date") == before).row(0, named=True)
        assert row["pnl"] == pytest.approx(row["nav"] - previous["nav"])
        assert row["gross_pnl"] == pytest.approx(row["pnl"] + row["fees"])
        # independently: holdings at the previous close times the price change, plus each fill
        # marked from its price to the close, minus the fees
        close = dict(bars.filter(pl.col("date") == day).select("ticker", "close").iter_rows())
        close_before = dict(
            bars.filter(pl.col("date") == before).select("ticker", "close").iter_rows()
        )
        held = account.read("positions", before, day)
        carry = sum(
            q * (close[t] - close_before[t]) for t, q in held.select("ticker", "qty").iter_rows()
        )
        fills = journal.filter((pl.col("date") == before) & (pl.col("filled_qty") > 0))
        trading = sum(
            (1 if s == "buy" else -1) * q * (close[t] - p)
            for t, s, q, p in fills.select(
                "ticker", "side", "filled_qty", "avg_fill_price"
            ).iter_rows()
        )
        assert row["gross_pnl"] == pytest.approx(carry + trading, rel=1e-9, abs=1e-6)
        assert row["fees"] == pytest.approx(fills["fees"].sum())
        assert row["fees"] > 0 and row["nav"] == pytest.approx(row["cash"] + row["positions_value"])


def test_rematerializing_a_session_sends_nothing_twice(account):
    journal_before = account.read("order_journal")
    broker_before = account.read("simulated_broker_orders")
    assert _trade(account, DAYS[2]).success
    assert (
        account.read("order_journal").drop("updated_at").equals(journal_before.drop("updated_at"))
    )
    assert account.read("simulated_broker_orders").equals(broker_before)
    # a past session cannot be traded again once a later one was
    late = _trade(account, DAYS[1], assets=[paper_orders], raise_on_error=False)
    assert not late.success


class _CrashingBroker(SimulatedBroker):
    """Dies after ``survive`` submissions, as a process killed between journal and send."""

    survive = 2

    def submit(self, order):  # type: ignore[no-untyped-def]
        if _CrashingBroker.survive == 0:
            raise RuntimeError("killed")
        _CrashingBroker.survive -= 1
        return super().submit(order)


def _journal_holdings(store: Store, day: date):
    """The account at the close of ``day``: the journal's fills of the orders before it."""
    from quant_assets.execution.accounting import account_on
    from quant_assets.portfolio.decision import Holdings

    before = store.read("order_journal").filter(pl.col("date") < day)
    bars = store.read(
        "raw_bars", DAYS[0], next_trading_day(day), columns=["ticker", "date", "close"]
    )
    held = account_on(before, bars, day, CASH)
    return Holdings(held.positions.select("ticker", "qty"), held.nav["cash"])


def _replayed_decision(store: Store, day: date, holdings=None):
    """The backtest's decision of ``day`` (``Replay.decide``) on the inputs the live assets
    read from the store: the returns window and views, the account the broker holds at the
    close, its NAV drawdown and the session's market snapshot."""
    from quant_assets.execution.orders import market_snapshot
    from quant_assets.portfolio.assets import allocation_inputs, inputs_of_day
    from quant_assets.queries import books_on, held_account
    from quant_assets.research.replay import Replay
    from resources.broker.simulated import FillModel

    policy, execution = _resources(store)["portfolio_policy"], ExecutionPolicy()
    given = allocation_inputs(store, policy, day, next_trading_day(day))
    inputs = inputs_of_day(day, given, books_on(store, DAYS[DAYS.index(day) - 1]), policy)
    if holdings is None:
        holdings = _journal_holdings(store, day)
    bars = store.read(
        "raw_bars",
        DAYS[0],
        next_trading_day(day),
        columns=["ticker", "date", "close", "adj_close", "volume"],
    )
    snapshot = market_snapshot(bars, day, execution.liquidity_sessions)
    account = held_account(store, day, CASH, policy.lookback_sessions)
    assert account is not None
    replay = Replay("live", "ensemble", policy, execution, FillModel())
    return replay.decide(inputs, holdings, snapshot, account[1])


def test_the_backtests_decision_is_the_live_book_measured_against_the_held_account(account):
    day = DAYS[3]
    span = dict(zip(RANGE, (day.isoformat(), day.isoformat()), strict=True))
    books = dg.materialize([target_weights, risk_metrics], resources=_resources(account), tags=span)
    assert books.success
    meta = books.asset_materializations_for_node("target_weights")[0].metadata
    assert meta["live_reference"].value == {"held": 1, "target": 0}
    live = account.read("target_weights", day, DAYS[4], where={"is_live": [True]})
    decided = _replayed_decision(account, day).live_weights
    assert decided.height > 5
    assert dict(decided.select("ticker", "weight").iter_rows()) == dict(
        live.select("ticker", "weight").iter_rows()
    )


def test_a_crash_between_journal_and_send_loses_and_duplicates_nothing(account, monkeypatch):
    day = DAYS[3]
    monkeypatch.setattr(
        Broker, "client", lambda self, store: _CrashingBroker(store, initial_cash=CASH)
    )
    crashed = _trade(account, day, assets=[paper_orders], raise_on_error=False)
    assert not crashed.success
    journal = account.read("order_journal", day, DAYS[4])
    sent = account.read("simulated_broker_orders", day, DAYS[4])
    # every order was journaled before the first was sent; two reached the broker
    assert journal.height > 2 and sent.height == 2
    # the journal does not know yet what became of the sent ones: the re-run asks the broker
    assert (journal["status"] == "NEW").sum() >= journal.height - 2 - (
        journal["status"] == "REJECTED"
    ).sum()
    monkeypatch.undo()
    assert _trade(account, day).success
    journal = account.read("order_journal", day, DAYS[4])
    sent = account.read("simulated_broker_orders", day, DAYS[4])
    new = journal.filter(pl.col("status") != "REJECTED")
    assert sorted(sent["client_order_id"]) == sorted(new["client_order_id"])
    assert (journal["status"] != "NEW").all()


def test_the_backtests_orders_are_the_live_orders_of_the_same_session(account):
    """After the session was traded (the crash test above): the journal's orders of the day
    are exactly the backtest's decision's orders on the same inputs."""
    day = DAYS[3]
    journal = account.read("order_journal", day, DAYS[4]).sort("ticker")
    decision = _replayed_decision(account, day)
    columns = ["ticker", "side", "qty", "reference_price", "limit_price", "reason"]
    # what was decided: sent (NEW, since FILLED or CANCELLED by the broker) or REJECTED
    rejected = (pl.col("status") == "REJECTED").alias("rejected")
    assert journal.height > 0
    assert decision.orders.sort("ticker").select(*columns, rejected).to_dicts() == (
        journal.select(*columns, rejected).to_dicts()
    )


def test_the_reconciliation_check_fails_when_the_broker_and_journal_disagree(account):
    books = account.read("simulated_broker_orders")
    victim = books.filter(pl.col("filled_qty") > 1).row(0, named=True)
    tampered = pl.DataFrame(
        [victim | {"filled_qty": victim["filled_qty"] - 1}], schema=books.schema
    )
    account.upsert("simulated_broker_orders", tampered)
    day = DAYS[3]
    result = _trade(
        account,
        day,
        assets=[positions, nav, checks.positions_match_the_broker],
        raise_on_error=False,
    )
    evaluation = result.get_asset_check_evaluations()[0]
    assert not evaluation.passed and evaluation.metadata["breaks"].value == 1
    assert not result.asset_materializations_for_node("nav")  # blocked downstream
    account.upsert(
        "simulated_broker_orders",
        books.filter(pl.col("client_order_id") == victim["client_order_id"]),
    )
    assert _trade(account, day, assets=[positions, nav, checks.positions_match_the_broker]).success


def test_a_breached_risk_limit_lets_only_risk_reducing_orders_out(account):
    day = DAYS[4]
    held = SimulatedBroker(account, initial_cash=CASH).positions()
    result = dg.materialize(
        [paper_orders],
        resources=_resources(account, max_position=0.001),
        partition_key=day.isoformat(),
    )
    assert result.success
    orders = account.read("order_journal", day, DAYS[5])
    assert orders.height
    for row in orders.iter_rows(named=True):
        shrinks = row["side"] == "sell" and row["qty"] <= held.get(row["ticker"], 0)
        if not shrinks:
            assert row["status"] == "REJECTED" and row["reason"].startswith("risk limit breached")
    event, journal_event, broker_event, venue_event = result.asset_materializations_for_node(
        "paper_orders"
    )
    assert "live_book_within_concentration_limits" in str(
        event.metadata["risk_limits_breached"].value
    )
    # the tables sending the orders wrote are assets of their own, with their own metadata
    assert journal_event.asset_key == dg.AssetKey("order_journal")
    assert journal_event.metadata["rows"].value == orders.height
    assert broker_event.asset_key == dg.AssetKey("simulated_broker_orders")
    # nothing went to the venue on the simulated broker: its asset says so
    assert venue_event.asset_key == dg.AssetKey("venue_broker_orders")
    assert (venue_event.metadata["rows"].value, venue_event.metadata["broker"].value) == (
        0,
        "simulated",
    )
    sent = account.read("simulated_broker_orders", day, DAYS[5])
    assert broker_event.metadata["rows"].value == sent.height
    assert next_trading_day(day) == DAYS[5]


def test_an_order_is_submitted_after_the_decision_run_and_filled_only_after_the_next_session(
    account,
):
    day, following = DAYS[5], next_trading_day(DAYS[5])
    # the next session has not been stored yet, as on the evening of ``day``
    bars_of_following = account.read("raw_bars", following, next_trading_day(following))
    account.write_partition(
        "raw_bars", bars_of_following.clear(), following, next_trading_day(following)
    )
    assert account.read("raw_bars", following, next_trading_day(following)).is_empty()
    assert _trade(account, day).success
    decided = account.read("order_journal", day, following)
    sent = decided.filter(pl.col("status") != "REJECTED")
    assert sent.height and (sent["status"] == "SUBMITTED").all()
    assert (sent["filled_qty"] == 0).all() and sent["avg_fill_price"].is_null().all()
    # the close of ``day`` holds what traded before it, nothing of the day's own orders
    held = dict(account.read("positions", day, following).select("ticker", "qty").iter_rows())
    assert held == dict(holdings(account.read("order_journal"), before=day).iter_rows())
    # the next session's run stores its bars; the orders trade at its open
    for step in ([universe, raw_bars], [positions, nav]):
        assert dg.materialize(
            step,
            resources=_resources(account),
            partition_key=following.isoformat(),
            selection=[dg.AssetKey(k) for k in ("raw_bars", "raw_bars_quarantine")]
            if raw_bars in step
            else None,
        ).success
    traded = account.read("order_journal", day, following).filter(pl.col("status") != "REJECTED")
    assert set(traded["status"]) <= {"FILLED", "CANCELLED"} and "FILLED" in set(traded["status"])
    opens = dict(
        account.read("raw_bars", following, next_trading_day(following))
        .select("ticker", "open")
        .iter_rows()
    )
    fills = account.read("simulated_broker_orders", day, following).filter(pl.col("filled_qty") > 0)
    assert all(
        r["fill_date"] == following and r["arrival_price"] == opens[r["ticker"]]
        for r in fills.iter_rows(named=True)
    )
    after = dict(
        account.read("positions", following, next_trading_day(following))
        .select("ticker", "qty")
        .iter_rows()
    )
    assert after != held and after == dict(holdings(account.read("order_journal")).iter_rows())


def test_a_decision_at_the_close_does_not_change_when_later_data_does(tmp_path):
    """No look-ahead: two stores alike up to the close of ``day`` and different after it give
    the same live book and the same orders for ``day``."""
    import shutil

    day = date(2024, 3, 20)
    first = Store(url=str(tmp_path / "a" / "quant.duckdb"))
    window = dict(zip(RANGE, ("2023-01-03", "2024-04-05"), strict=True))
    assert dg.materialize([universe, raw_bars], resources=_resources(first), tags=window).success
    write_random_views(first, [day])
    first.close()
    (tmp_path / "b").mkdir()
    shutil.copyfile(tmp_path / "a" / "quant.duckdb", tmp_path / "b" / "quant.duckdb")
    second = Store(url=str(tmp_path / "b" / "quant.duckdb"))
    later = second.read("raw_bars", next_trading_day(day), date(2024, 4, 6))
    prices = ["open", "high", "low", "close", "adj_open", "adj_high", "adj_low", "adj_close"]
    moved = later.with_columns([pl.col(c) * 1.3 for c in [*prices, "vwap"]])
    second.write_partition("raw_bars", moved, next_trading_day(day), date(2024, 4, 6))
    decided = []
    for store in (first, second):
        assert _trade(store, day, assets=[target_weights, risk_metrics, paper_orders]).success
        book = store.read("target_weights", day, next_trading_day(day)).sort("method", "ticker")
        orders = store.read("order_journal", day, next_trading_day(day)).select(
            "ticker", "side", "qty", "reference_price", "limit_price", "status", "reason"
        )
        decided.append((book, orders))
    assert decided[0][1].height > 0
    assert decided[0][0].equals(decided[1][0])
    assert decided[0][1].equals(decided[1][1])


def _decided_without_live_rows(store: Store, day: date) -> pl.DataFrame:
    """Decide ``day``, then drop its live book's rows (a book without names); its statuses."""
    following = next_trading_day(day)
    write_random_views(store, [day])
    assert _trade(store, day, assets=[target_weights, risk_metrics]).success
    books = store.read("target_weights", day, following)
    store.write_partition("target_weights", books.filter(~pl.col("is_live")), day, following)
    return store.read("allocation_status", day, following)


def test_a_feasible_live_book_without_names_sells_every_holding(tmp_path):
    """The live method may decide all cash (a feasible book with no rows in target_weights):
    the session's orders then sell every holding, as the backtest's replay does, while a day
    without a feasible live book is still refused."""
    store = Store(url=str(tmp_path / "quant.duckdb"))
    window = dict(zip(RANGE, ("2023-01-03", "2024-04-05"), strict=True))
    assert dg.materialize([universe, raw_bars], resources=_resources(store), tags=window).success
    write_random_views(store, DAYS[:2])
    for day in DAYS[:2]:
        assert _trade(store, day, assets=[target_weights, risk_metrics, *ACCOUNT]).success
    held = SimulatedBroker(store, initial_cash=CASH).positions()
    assert held
    day = DAYS[2]
    status = _decided_without_live_rows(store, day)
    assert status.filter(pl.col("is_live"))["feasible"].all()
    assert _trade(store, day, assets=[paper_orders]).success
    orders = store.read("order_journal", day, DAYS[3])
    assert dict(orders.select("ticker", "qty").iter_rows()) == held
    assert (orders["side"] == "sell").all() and (orders["status"] != "REJECTED").all()
    # an infeasible live book (no rows, feasible false) stops the next session
    following = DAYS[3]
    status = _decided_without_live_rows(store, following)
    store.write_partition(
        "allocation_status",
        status.with_columns(
            pl.when(pl.col("is_live")).then(False).otherwise(pl.col("feasible")).alias("feasible")
        ),
        following,
        DAYS[4],
    )
    refused = _trade(store, following, assets=[paper_orders], raise_on_error=False)
    assert not refused.success
