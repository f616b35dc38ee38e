"""The platform trades on the venue: paper_orders with QUANT_BROKER=venue, through a real
materialize() run, sends the live book's orders over FIX to the venue binary, where a QuickFIX
market maker quotes every name; the journal holds the venue's answers, and the venue broker's
records match them."""

from __future__ import annotations

from datetime import date

import dagster as dg
import polars as pl
import pytest
from conftest import write_random_views

from quant_assets.execution.assets import paper_orders
from quant_assets.ingest.assets import raw_bars, universe
from quant_assets.partitions import trading_sessions
from quant_assets.portfolio.assets import target_weights
from quant_assets.risk.assets import risk_metrics
from resources.broker.fix_client import FixClient, session_settings
from resources.broker.resource import Broker
from resources.execution_policy import ExecutionPolicy
from resources.market_data.resource import MarketData
from resources.portfolio_policy import PortfolioPolicy
from resources.storage import Store
from tests.venue_server import Venue, venue_binary

pytestmark = pytest.mark.venue
RANGE = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
DAYS = trading_sessions(date(2024, 3, 18), date(2024, 3, 20))


def test_paper_orders_go_to_the_venue_and_fill_against_its_market_maker(tmp_path):
    store = Store(url=str(tmp_path / "quant.duckdb"))
    base = {
        "store": store,
        "market_data": MarketData(n_tickers=20),
        "portfolio_policy": PortfolioPolicy(lookback_sessions=252),
        "broker": Broker(initial_cash=200_000.0),
        "execution_policy": ExecutionPolicy(),
    }
    window = dict(zip(RANGE, ("2023-01-03", "2024-03-28"), strict=True))
    assert dg.materialize([universe, raw_bars], resources=base, tags=window).success
    write_random_views(store, DAYS)
    books = dict(zip(RANGE, (DAYS[0].isoformat(), DAYS[0].isoformat()), strict=True))
    assert dg.materialize([target_weights, risk_metrics], resources=base, tags=books).success
    live = store.read("target_weights", DAYS[0], DAYS[1], where={"is_live": [True]})
    names = tuple(sorted(live["ticker"].unique().to_list()))
    closes = store.read("raw_bars", DAYS[0], DAYS[1], columns=["ticker", "close"])
    venue = Venue(venue_binary(), tmp_path, symbols=names).start()
    mm = FixClient(session_settings(tmp_path / "mm", "127.0.0.1", venue.port, "MM")).start()
    try:
        # the market maker offers every name at its close, deep enough for the whole book
        for k, row in enumerate(closes.filter(pl.col("ticker").is_in(names)).iter_rows(named=True)):
            mm.new_order(f"ask{k}", row["ticker"], "sell", 1_000_000, f"{row['close']:.2f}")
            mm.wait_for(lambda m, k=k: m.get(11) == f"ask{k}")
        resources = {
            **base,
            "broker": Broker(initial_cash=200_000.0, kind="venue", venue_port=venue.port),
        }
        result = dg.materialize(
            [paper_orders], resources=resources, partition_key=DAYS[0].isoformat()
        )
        assert result.success
        journal = store.read("order_journal", DAYS[0], DAYS[1])
        assert journal.height >= 5 and (journal["side"] == "buy").all()
        # every buy's collar is above the close the market maker offers at: all filled there
        assert (journal["status"] == "FILLED").all(), journal.select("ticker", "status", "reason")
        venue_rows = store.read("venue_broker_orders")
        assert set(venue_rows["client_order_id"]) == set(journal["client_order_id"])
        filled = journal.join(closes, on="ticker")
        assert (filled["avg_fill_price"] - filled["close"].round(2)).abs().max() < 1e-9
        # the market maker was told of every fill
        fills = [m for m in mm.messages if m.get(150) == "F"]
        assert sum(int(m[32]) for m in fills) == int(journal["filled_qty"].sum())
        meta = result.asset_materializations_for_node("paper_orders")
        venue_meta = [m for m in meta if m.asset_key == dg.AssetKey("venue_broker_orders")]
        assert venue_meta[0].metadata["rows"].value == journal.height
    finally:
        mm.stop()
        venue.stop()
