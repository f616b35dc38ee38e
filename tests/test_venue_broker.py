"""The `venue` broker against the real venue binary: a market maker (QuickFIX) makes the book,
the platform's orders go over FIX, statuses are what the venue reports (FILLED only after a
trade), and a fill that happened while the platform was away is read back with a status
request."""

from __future__ import annotations

from datetime import date

import pytest

from resources.broker.base import BrokerError, DuplicateOrderError, OrderRequest
from resources.broker.fix_client import FixClient, session_settings
from resources.broker.resource import Broker
from resources.broker.venue import VenueBroker, on_tick
from resources.storage import Store
from tests.venue_server import Venue, free_port, venue_binary

pytestmark = pytest.mark.venue
DAY = date(2024, 6, 14)


def request(ticker: str, side: str, qty: int, limit: float | None) -> OrderRequest:
    return OrderRequest(
        client_order_id=f"{DAY:%Y%m%d}-hrp-{ticker}-{side}",
        session=DAY,
        ticker=ticker,
        side=side,
        qty=qty,
        reference_price=100.0,
        daily_volatility=0.02,
        average_volume=1e6,
        limit_price=limit,
    )


def test_collars_go_onto_the_tick_without_crossing_them():
    assert on_tick(100.004, 0.01, "buy") == "100.00"
    assert on_tick(100.004, 0.01, "sell") == "100.01"
    assert on_tick(100.0, 0.01, "sell") == "100.00"
    assert on_tick(7.35, 0.05, "buy") == "7.35"


def test_orders_fill_only_against_the_venues_book_and_fills_made_later_are_read_back(tmp_path):
    venue = Venue(venue_binary(), tmp_path).start()
    store = Store(url=str(tmp_path / "store.duckdb"))
    mm = FixClient(session_settings(tmp_path / "mm", "127.0.0.1", venue.port, "MM")).start()
    broker = VenueBroker(store, "127.0.0.1", venue.port, tmp_path / "quant")
    try:
        mm.new_order("mm-ask", "AAPL", "sell", 50, "100.00")
        mm.wait_for(lambda m: m.get(11) == "mm-ask")
        bought = broker.submit(request("AAPL", "buy", 30, 100.004))
        assert (bought.status, bought.filled_qty, bought.avg_fill_price) == ("FILLED", 30, 100.0)
        # nobody bids for MSFT yet: the sell rests, SUBMITTED, not FILLED
        sold = broker.submit(request("MSFT", "sell", 20, 250.0))
        assert (sold.status, sold.filled_qty) == ("SUBMITTED", 0)
        with pytest.raises(DuplicateOrderError):
            broker.submit(request("AAPL", "buy", 30, 100.0))
        # an unknown symbol is the venue's REJECTED with its reason
        bad = broker.submit(request("ZZZZ", "buy", 1, 10.0))
        assert bad.status == "REJECTED" and bad.reason == "unknown symbol"
        broker.close()
        # while the platform is away the market maker lifts the offer
        mm.new_order("mm-bid", "MSFT", "buy", 20, "251.00")
        mm.wait_for(lambda m: m.get(11) == "mm-bid" and m.get(39) == "2")
        # a new broker on an empty store: the venue refuses the resend and knows the fill
        again = VenueBroker(
            Store(url=str(tmp_path / "other.duckdb")), "127.0.0.1", venue.port, tmp_path / "quant"
        )
        with pytest.raises(DuplicateOrderError):
            again.submit(request("MSFT", "sell", 20, 250.0))
        later = again.order(request("MSFT", "sell", 20, 250.0).client_order_id)
        assert (later.status, later.filled_qty, later.avg_fill_price) == ("FILLED", 20, 250.0)
        again.close()
        assert broker.order(request("MSFT", "sell", 20, 250.0).client_order_id).status == "FILLED"
        assert broker.positions() == {"AAPL": 30, "MSFT": -20}
        assert broker.cash() == pytest.approx(1_000_000 - 30 * 100.0 + 20 * 250.0)
        assert broker.order("20240614-hrp-NOPE-buy") is None
    finally:
        broker.close()
        mm.stop()
        venue.stop()


def test_a_venue_that_is_not_running_is_a_clear_broker_error(tmp_path):
    store = Store(url=str(tmp_path / "store.duckdb"))
    broker = Broker(kind="venue", venue_port=free_port()).client(store)
    assert broker.name == "venue"
    broker.timeout = 2.0
    with pytest.raises(BrokerError, match="did not accept a FIX logon"):
        broker.submit(request("AAPL", "buy", 1, 100.0))
