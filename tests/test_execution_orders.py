"""Order generation and pre-trade checks (pure), and the simulated broker's fills on engine_rs."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import polars as pl
import pytest

from quant_assets.execution.orders import market_snapshot, paper_order_book, target_shares
from resources.broker.base import DuplicateOrderError, OrderRequest, client_order_id
from resources.broker.liquidity import level_sizes, splitmix64
from resources.broker.simulated import SimulatedBroker
from resources.execution_policy import ExecutionPolicy
from resources.storage import Store

DAY = date(2024, 3, 18)


def _snapshot(**overrides) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "ticker": ["AAA", "BBB", "CCC"],
            "close": [50.0, 20.0, 400.0],
            "daily_volatility": [0.02, 0.015, 0.03],
            "average_volume": [1e6, 5e5, 2e5],
        }
    )
    return frame.with_columns(**{k: pl.lit(v) for k, v in overrides.items()})


def _holdings(rows: dict[str, int]) -> pl.DataFrame:
    return pl.DataFrame(
        {"ticker": list(rows), "qty": list(rows.values())},
        schema={"ticker": pl.String, "qty": pl.Int64},
    )


def test_market_snapshot_reads_close_and_liquidity_and_nothing_after_the_close():
    days = [date(2024, 3, d) for d in (11, 12, 13, 14, 15, 18, 19)]
    closes = [10.0, 10.5, 10.0, 10.5, 10.0, 10.5, 99.0]
    bars = pl.DataFrame(
        {
            "ticker": "AAA",
            "date": days,
            "open": [c - 0.1 for c in closes],
            "close": closes,
            "adj_close": closes,
            "volume": [1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 6000.0, 7000.0],
        }
    )
    snap = market_snapshot(bars, DAY, liquidity_sessions=3).row(0, named=True)
    assert snap["close"] == 10.5
    # the last three sessions up to the day: 4000, 5000, 6000 shares; returns +5%, -4.76%, +5%
    assert snap["average_volume"] == 5000.0
    returns = np.array([10.5 / 10.0 - 1, 10.0 / 10.5 - 1, 10.5 / 10.0 - 1])
    assert snap["daily_volatility"] == pytest.approx(returns.std(ddof=1))
    # the 19th's bar (99.0) is the next session's: it changes nothing decided on the 18th
    assert market_snapshot(bars.filter(pl.col("date") <= DAY), DAY, 3).equals(
        market_snapshot(bars, DAY, 3)
    )


def test_shares_are_rounded_toward_zero_in_lots_and_small_trades_are_dropped():
    weights = pl.DataFrame({"ticker": ["AAA", "BBB", "CCC"], "weight": [0.1, 0.05, 0.0012]})
    targets = target_shares(weights, 100_000.0, _snapshot(), lot_size=10)
    # 10,000 / 50 = 200; 5,000 / 20 = 250 -> 250; 120 / 400 = 0.3 -> 0
    assert dict(targets.iter_rows()) == {"AAA": 200, "BBB": 250, "CCC": 0}
    orders = paper_order_book(
        targets, _holdings({"AAA": 198, "BBB": 100}), _snapshot(), ExecutionPolicy()
    )
    # AAA's 2-share top-up is $100, exactly the minimum: kept; CCC rounds to nothing
    assert orders.select("ticker", "side", "qty").rows() == [("AAA", "buy", 2), ("BBB", "buy", 150)]
    orders = paper_order_book(
        targets,
        _holdings({"AAA": 199, "BBB": 100}),
        _snapshot(),
        ExecutionPolicy(min_trade_notional=100.0),
    )
    assert orders["ticker"].to_list() == ["BBB"]  # one share of AAA is $50: not worth an order
    assert (orders["status"] == "NEW").all()


def test_a_name_held_but_no_longer_wanted_is_sold_and_an_unpriced_one_is_rejected():
    targets = pl.DataFrame(
        {"ticker": ["AAA", "ZZZ"], "target_qty": [100, None]},
        schema={"ticker": pl.String, "target_qty": pl.Int64},
    )
    orders = paper_order_book(
        targets, _holdings({"BBB": 300, "AAA": 100}), _snapshot(), ExecutionPolicy()
    )
    rows = {r["ticker"]: r for r in orders.iter_rows(named=True)}
    assert (rows["BBB"]["side"], rows["BBB"]["qty"], rows["BBB"]["status"]) == ("sell", 300, "NEW")
    assert rows["ZZZ"]["status"] == "REJECTED"
    assert rows["ZZZ"]["reason"] == "no close stored for the session"
    assert "AAA" not in rows  # already at target
    # the collar: a buy may pay up to 5% over the close, a sell take 5% under it
    assert rows["BBB"]["limit_price"] == pytest.approx(19.0)


@pytest.mark.parametrize(
    ("policy", "snapshot", "reason"),
    [
        (ExecutionPolicy(kill_switch=True), {}, "kill switch on"),
        (ExecutionPolicy(max_order_notional=10_000.0), {}, "notional 15000.0 above the maximum"),
        (ExecutionPolicy(max_volume_share=0.0001), {}, "300 shares above 0.0001 of the average"),
    ],
)
def test_pre_trade_checks_reject_with_a_reason(policy, snapshot, reason):
    targets = pl.DataFrame({"ticker": ["AAA"], "target_qty": [300]})
    orders = paper_order_book(targets, _holdings({}), _snapshot(**snapshot), policy)
    assert orders["status"].to_list() == ["REJECTED"]
    assert orders["reason"][0].startswith(reason)
    # the same order within the limits passes
    assert paper_order_book(targets, _holdings({}), _snapshot(), ExecutionPolicy())[
        "status"
    ].to_list() == ["NEW"]


def test_a_breached_risk_limit_lets_only_orders_that_shrink_a_position_through():
    targets = pl.DataFrame({"ticker": ["AAA", "BBB", "CCC"], "target_qty": [50, 400, 10]})
    held = _holdings({"AAA": 100, "BBB": 300})
    orders = paper_order_book(
        targets, held, _snapshot(), ExecutionPolicy(), risk_reducing_only=True
    )
    status = dict(orders.select("ticker", "status").iter_rows())
    assert status == {"AAA": "NEW", "BBB": "REJECTED", "CCC": "REJECTED"}


def _order(qty: int, side: str = "buy", limit: float | None = None, cid: str = "x") -> OrderRequest:
    return OrderRequest(
        client_order_id=cid,
        session=DAY,
        ticker="AAA",
        side=side,
        qty=qty,
        reference_price=50.0,
        daily_volatility=0.02,
        average_volume=1e6,
        limit_price=limit,
    )


def test_simulated_buys_pay_at_least_the_ask_and_slippage_grows_with_size(tmp_path):
    broker = SimulatedBroker(Store(url=str(tmp_path / "q.duckdb")))
    spread, depth = broker.book_shape(_order(1), 50.0)
    # 0.05 x 2% x $50 = 5 cents wide; 0.1% of a million shares a level
    assert (spread, depth) == (5, 1000)
    best_ask = 50.0 + (spread - spread // 2) * 0.01
    slippage = []
    for qty in (100, 1_000, 10_000, 40_000):
        record = broker.execute(_order(qty, cid=f"b{qty}"), 50.0, DAY)
        assert record["status"] == "FILLED"
        assert record["avg_fill_price"] >= best_ask - 1e-9
        slippage.append(record["avg_fill_price"] / 50.0 - 1.0)
    assert slippage == sorted(slippage) and slippage[-1] > slippage[0]
    sell = broker.execute(_order(5_000, side="sell", cid="s"), 50.0, DAY)
    assert sell["avg_fill_price"] <= 50.0 - (spread // 2) * 0.01 + 1e-9
    # a reference walk of the same book in Python: the asks nearest first, sizes from the seed
    qty = 10_000
    asks = level_sizes([broker.seed("b10000")], [depth], 50)[0, 1]
    remaining, cost = qty, 0.0
    for level, size in enumerate(asks):
        take = min(remaining, int(size))
        cost += take * (best_ask + level * 0.01)
        remaining -= take
    record = broker.execute(_order(qty, cid="b10000"), 50.0, DAY)
    assert record["avg_fill_price"] == pytest.approx(cost / qty, rel=1e-12)
    # an order meets the same book alone or among others
    crowd = [_order(q, cid=f"o{q}") for q in (300, 7_000, 50)]
    batch = broker.execute_many([*crowd, _order(qty, cid="b10000")], [50.0] * 4, DAY)
    assert batch[-1] == record


def test_simulated_orders_respect_the_collar_and_a_too_large_order_fills_partially(tmp_path):
    broker = SimulatedBroker(Store(url=str(tmp_path / "q.duckdb")))
    # a limit below the arrival cannot buy: nothing fills through the collar
    collared = broker.execute(_order(100, limit=49.0, cid="c"), 50.0, DAY)
    assert (collared["status"], collared["filled_qty"]) == ("CANCELLED", 0)
    # 50 levels of ~1,000 shares: 200,000 shares exhaust the book
    big = broker.execute(_order(200_000, cid="big"), 50.0, DAY)
    assert big["status"] == "CANCELLED" and 0 < big["filled_qty"] < 200_000
    assert "partially filled" in big["reason"]


def _store_session(store: Store, day: date, opens: dict[str, float]) -> None:
    """Bars of ``day`` in raw_bars, as the day's ingest stores them."""
    from quant_core.calendar import next_trading_day
    from resources.storage.tables import RAW_BARS

    bars = pl.DataFrame(
        [
            {c.name: o for c in RAW_BARS.columns} | {"ticker": t, "date": day, "volume": 1e6}
            for t, o in opens.items()
        ],
        schema=RAW_BARS.polars_schema,
    )
    store.write_partition("raw_bars", bars, day, next_trading_day(day))


def test_the_simulated_broker_refuses_a_client_order_id_twice_and_keeps_its_books(tmp_path):
    store = Store(url=str(tmp_path / "q.duckdb"))
    broker = SimulatedBroker(store, initial_cash=100_000.0, fee_bps=1.0)
    cid = client_order_id(DAY, "live", "AAA", "buy")
    first = broker.submit(_order(100, cid=cid))
    assert first.status == "SUBMITTED" and first.filled_qty == 0
    with pytest.raises(DuplicateOrderError):
        broker.submit(_order(100, cid=cid))
    _store_session(store, date(2024, 3, 19), {"AAA": 50.0})
    filled = broker.order(cid)
    assert filled is not None and filled.status == "FILLED" and filled.filled_qty == 100
    assert broker.positions() == {"AAA": 100}
    cost = 100 * filled.avg_fill_price
    assert broker.cash() == pytest.approx(100_000.0 - cost - cost * 1e-4)
    # another broker object on the same store sees the same books
    assert SimulatedBroker(store, initial_cash=100_000.0).positions() == {"AAA": 100}


def test_an_order_trades_only_once_the_next_session_is_stored_at_its_open(tmp_path):
    store = Store(url=str(tmp_path / "q.duckdb"))
    broker = SimulatedBroker(store)
    _store_session(store, DAY, {"AAA": 50.0, "BBB": 20.0})
    buy = broker.submit(_order(100, limit=52.5, cid="buy"))
    gapped = broker.submit(replace(_order(100, limit=52.5, cid="gap"), ticker="CCC"))
    missing = broker.submit(replace(_order(100, cid="miss"), ticker="DDD"))
    # the decision day's own bars are stored: nothing trades on them
    assert buy.status == gapped.status == missing.status == "SUBMITTED"
    assert broker.positions() == {} and broker.cash() == broker.initial_cash
    _store_session(store, date(2024, 3, 19), {"AAA": 51.0, "CCC": 60.0})
    records = {r["client_order_id"]: r for r in store.read("simulated_broker_orders").to_dicts()}
    assert records["buy"]["status"] == "SUBMITTED"  # nobody asked yet
    assert broker.order("buy").status == "FILLED"
    records = {r["client_order_id"]: r for r in store.read("simulated_broker_orders").to_dicts()}
    assert records["buy"]["arrival_price"] == 51.0 and records["buy"]["avg_fill_price"] > 51.0
    assert records["buy"]["fill_date"] == date(2024, 3, 19)
    # CCC opened 14% above its 52.5 limit: the collar keeps the order out of the market
    assert records["gap"]["status"] == "CANCELLED" and "price collar" in records["gap"]["reason"]
    # a name without a bar in the session did not trade: the DAY order expired
    assert records["miss"]["status"] == "CANCELLED" and "no valid bar" in records["miss"]["reason"]
    assert broker.positions() == {"AAA": 100}


def test_splitmix64_matches_its_reference_values():
    # the first outputs of SplitMix64 seeded with 0 (Vigna's splitmix64.c)
    state = np.array([0, 0x9E3779B97F4A7C15], dtype=np.uint64)
    assert splitmix64(state[:1])[0] == np.uint64(0xE220A8397B1DCDAF)
    with np.errstate(over="ignore"):
        assert splitmix64(state[1:])[0] == np.uint64(0x6E789E6AA1B965F4)
