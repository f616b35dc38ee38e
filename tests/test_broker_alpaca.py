"""The Alpaca paper broker, replayed offline at the HTTP layer.

``responses`` serves Trading API v2 bodies (tests/fixtures/alpaca_trading, hand-written in the
documented schema, see its README) to alpaca-py's real ``TradingClient``, so request building,
error handling and alpaca-py's pydantic models all run. Any request to a URL not registered
(the live host included) fails the test. No test sleeps: the broker gets a recording ``sleep``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from alpaca.trading.models import Order

from resources.broker.alpaca import AlpacaBroker, order_state, paper_url
from resources.broker.base import (
    ORDER_STATUSES,
    BrokerError,
    DuplicateOrderError,
    OrderRequest,
    client_order_id,
)

FIXTURES = Path(__file__).parent / "fixtures" / "alpaca_trading"
PAPER = "https://paper-api.alpaca.markets/v2"
ORDERS = f"{PAPER}/orders"
BY_CLIENT_ID = f"{PAPER}/orders:by_client_order_id"
KEY = "PKTEST0000000000000000"
SECRET = "s3cr3t-paper-secret-never-printed"
SESSION = date(2024, 2, 12)


class Sleeps(list[float]):
    """A ``sleep`` that records the delays instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def body(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def reply(
    mock: responses.RequestsMock, method: str, url: str, name: str, status: int = 200
) -> None:
    mock.add(method, url, json=body(name), status=status)


def buy_aapl(qty: int = 10) -> OrderRequest:
    return OrderRequest(
        client_order_id=client_order_id(SESSION, "momentum", "AAPL", "buy"),
        session=SESSION,
        ticker="AAPL",
        side="buy",
        qty=qty,
        reference_price=188.32,
        daily_volatility=0.014,
        average_volume=55e6,
    )


@pytest.fixture
def http() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def broker(sleeps: Sleeps) -> AlpacaBroker:
    return AlpacaBroker(KEY, SECRET, sleep=sleeps)


# --------------------------------------------------------------------------- submit


def test_submit_sends_a_day_market_order_keyed_by_our_client_order_id(
    http: responses.RequestsMock, broker: AlpacaBroker
) -> None:
    reply(http, "POST", ORDERS, "order_accepted.json")
    state = broker.submit(buy_aapl())

    sent = http.calls[0].request
    assert json.loads(sent.body or b"{}") == {
        "symbol": "AAPL",
        "qty": 10,
        "side": "buy",
        "type": "market",
        "time_in_force": "day",
        "client_order_id": "20240212-momentum-AAPL-buy",
    }
    assert sent.headers["APCA-API-KEY-ID"] == KEY  # the keys go to the paper host only
    assert state.status == "SUBMITTED"
    assert state.client_order_id == "20240212-momentum-AAPL-buy"
    assert state.broker_order_id == "61e69015-8549-4bfd-b9c3-01e75843f47d"
    assert (state.filled_qty, state.avg_fill_price, state.fees) == (0, None, 0.0)


def test_an_order_with_a_price_collar_goes_as_a_day_limit_order(
    http: responses.RequestsMock, broker: AlpacaBroker
) -> None:
    reply(http, "POST", ORDERS, "order_accepted.json")
    broker.submit(replace(buy_aapl(), limit_price=197.3349))

    sent = json.loads(http.calls[0].request.body or b"{}")
    assert (sent["type"], sent["time_in_force"]) == ("limit", "day")
    assert float(sent["limit_price"]) == 197.33  # cents: Alpaca refuses sub-penny limits


def test_duplicate_client_order_id_raises_and_the_existing_order_is_found(
    http: responses.RequestsMock, broker: AlpacaBroker
) -> None:
    reply(http, "POST", ORDERS, "error_422_duplicate.json", status=422)
    reply(http, "GET", BY_CLIENT_ID, "order_filled.json")

    with pytest.raises(DuplicateOrderError, match="20240212-momentum-AAPL-buy"):
        broker.submit(buy_aapl())
    existing = broker.order("20240212-momentum-AAPL-buy")

    assert len(http.calls) == 2  # a duplicate is an answer: not retried
    lookup = urlsplit(http.calls[1].request.url or "")
    assert parse_qs(lookup.query) == {"client_order_id": ["20240212-momentum-AAPL-buy"]}
    assert existing is not None
    assert (existing.status, existing.filled_qty, existing.avg_fill_price) == (
        "FILLED",
        10,
        187.95,
    )
    assert existing.broker_order_id == "61e69015-8549-4bfd-b9c3-01e75843f47d"


def test_insufficient_buying_power_is_a_rejected_state_not_an_exception(
    http: responses.RequestsMock, broker: AlpacaBroker, sleeps: Sleeps
) -> None:
    reply(http, "POST", ORDERS, "error_403_buying_power.json", status=403)
    state = broker.submit(buy_aapl())

    assert state.status == "REJECTED"
    assert state.reason is not None and "insufficient buying power" in state.reason
    assert "403" in state.reason
    assert (state.broker_order_id, state.filled_qty, state.avg_fill_price) == (None, 0, None)
    assert len(http.calls) == 1 and sleeps == []


def test_a_validation_error_is_a_rejected_state(
    http: responses.RequestsMock, broker: AlpacaBroker
) -> None:
    reply(http, "POST", ORDERS, "error_422_invalid.json", status=422)
    state = broker.submit(buy_aapl())
    assert state.status == "REJECTED"
    assert state.reason == 'Alpaca rejected the order (HTTP 422): asset "ZZZZ" not found'


def test_refused_credentials_raise_instead_of_rejecting_every_order(
    http: responses.RequestsMock, broker: AlpacaBroker
) -> None:
    reply(http, "POST", ORDERS, "error_403_forbidden.json", status=403)
    with pytest.raises(BrokerError, match="refused the credentials") as info:
        broker.submit(buy_aapl())
    assert SECRET not in str(info.value)


def test_server_errors_are_retried_then_raise_broker_error(
    http: responses.RequestsMock, broker: AlpacaBroker, sleeps: Sleeps
) -> None:
    for _ in range(3):
        reply(http, "POST", ORDERS, "error_500.json", status=500)
    with pytest.raises(BrokerError, match="failed after 3 attempts") as info:
        broker.submit(buy_aapl())
    assert not isinstance(info.value, DuplicateOrderError)
    assert "internal server error occurred" in str(info.value)
    assert SECRET not in str(info.value)
    assert len(http.calls) == 3 and sleeps == [1.0, 2.0]


def test_a_network_error_is_retried_and_the_order_goes_through(
    http: responses.RequestsMock, broker: AlpacaBroker, sleeps: Sleeps
) -> None:
    http.add("POST", ORDERS, body=requests.ConnectionError("connection reset by peer"))
    reply(http, "POST", ORDERS, "order_accepted.json")
    assert broker.submit(buy_aapl()).status == "SUBMITTED"
    assert sleeps == [1.0]


# --------------------------------------------------------------------------- order lookup


def test_partially_filled_order_maps_filled_qty_and_average_price(
    http: responses.RequestsMock, broker: AlpacaBroker
) -> None:
    reply(http, "GET", BY_CLIENT_ID, "order_partially_filled.json")
    state = broker.order("20240212-momentum-MSFT-sell")
    assert state is not None
    assert state.status == "PARTIALLY_FILLED"
    assert state.filled_qty == 40 and isinstance(state.filled_qty, int)
    assert state.avg_fill_price == pytest.approx(405.12)
    assert state.fees == 0.0 and state.reason is None


def test_unknown_order_is_none(http: responses.RequestsMock, broker: AlpacaBroker) -> None:
    reply(http, "GET", BY_CLIENT_ID, "error_404_order.json", status=404)
    assert broker.order("20240212-momentum-NVDA-buy") is None


def _order(**changes: Any) -> Order:
    return Order(**{**body("order_partially_filled.json"), **changes})


@pytest.mark.parametrize(
    ("status", "filled", "expected"),
    [
        ("new", "0", "SUBMITTED"),
        ("pending_new", "0", "SUBMITTED"),
        ("accepted", "0", "SUBMITTED"),
        ("accepted_for_bidding", "0", "SUBMITTED"),
        ("held", "0", "SUBMITTED"),
        ("pending_cancel", "40", "PARTIALLY_FILLED"),
        ("calculated", "100", "FILLED"),
        ("partially_filled", "40", "PARTIALLY_FILLED"),
        ("filled", "100", "FILLED"),
        ("canceled", "0", "CANCELLED"),
        ("expired", "0", "CANCELLED"),
        ("done_for_day", "0", "CANCELLED"),
        ("done_for_day", "40", "CANCELLED"),  # a DAY order: the rest will never fill
        ("expired", "100", "FILLED"),
        ("replaced", "0", "CANCELLED"),
        ("rejected", "0", "REJECTED"),
    ],
)
def test_alpaca_statuses_map_onto_the_journal_lifecycle(
    status: str, filled: str, expected: str
) -> None:
    price = "405.12" if filled != "0" else None
    state = order_state(_order(status=status, filled_qty=filled, filled_avg_price=price))
    assert state.status == expected and state.status in ORDER_STATUSES
    assert state.filled_qty == int(filled)
    if expected == "CANCELLED":
        assert state.reason == f"Alpaca order {status} with {filled} of 100 shares filled"


def test_a_zero_average_price_before_any_fill_is_none() -> None:
    state = order_state(_order(status="new", filled_qty="0", filled_avg_price="0"))
    assert state.avg_fill_price is None


# --------------------------------------------------------------------------- account


def test_positions_are_signed_whole_shares(
    http: responses.RequestsMock, broker: AlpacaBroker
) -> None:
    reply(http, "GET", f"{PAPER}/positions", "positions.json")
    assert broker.positions() == {"AAPL": 10, "TSLA": -5}


def test_cash_is_the_account_cash_balance(
    http: responses.RequestsMock, broker: AlpacaBroker
) -> None:
    reply(http, "GET", f"{PAPER}/account", "account.json")
    assert broker.cash() == pytest.approx(99085.5)


def test_positions_on_a_server_error_raise_broker_error(
    http: responses.RequestsMock, sleeps: Sleeps
) -> None:
    reply(http, "GET", f"{PAPER}/positions", "error_500.json", status=500)
    reply(http, "GET", f"{PAPER}/positions", "error_500.json", status=500)
    broker = AlpacaBroker(KEY, SECRET, attempts=2, base_delay=0.0, sleep=sleeps)
    with pytest.raises(BrokerError, match="alpaca positions failed after 2 attempts"):
        broker.positions()
    assert sleeps == [0.0]


# --------------------------------------------------------------------------- paper only


@pytest.mark.parametrize(
    "url",
    [
        "https://api.alpaca.markets",
        "https://api.alpaca.markets/",
        "http://paper-api.alpaca.markets",
        "https://paper-api.alpaca.markets@api.alpaca.markets",
        "https://paper-api.alpaca.markets.example.com",
        "https://broker-api.sandbox.alpaca.markets",
    ],
)
def test_refuses_any_endpoint_but_the_paper_host(url: str) -> None:
    with pytest.raises(ValueError, match="paper only") as info:
        AlpacaBroker(KEY, SECRET, base_url=url)
    assert SECRET not in str(info.value)


def test_the_paper_host_is_the_default_and_is_accepted() -> None:
    assert paper_url(None) == "https://paper-api.alpaca.markets"
    assert paper_url("https://PAPER-API.alpaca.markets/") == "https://PAPER-API.alpaca.markets"
    broker = AlpacaBroker(KEY, SECRET)
    assert broker.name == "alpaca"
    assert broker._client._base_url == "https://paper-api.alpaca.markets"
    assert broker._client._sandbox is True  # built with paper=True


def test_the_secret_never_shows(http: responses.RequestsMock) -> None:
    broker = AlpacaBroker(KEY, SECRET, sleep=Sleeps())
    assert SECRET not in repr(broker)
    with pytest.raises(ValueError, match="ALPACA_SECRET_KEY") as info:
        AlpacaBroker(KEY, "")
    assert SECRET not in str(info.value)
    # an error whose text happens to carry the secret is scrubbed
    http.add("GET", f"{PAPER}/account", body=requests.ConnectionError(f"boom {SECRET}"))
    with pytest.raises(BrokerError) as raised:
        AlpacaBroker(KEY, SECRET, attempts=1, sleep=Sleeps()).cash()
    assert SECRET not in str(raised.value) and "***" in str(raised.value)
    assert raised.value.__cause__ is None  # nor in the traceback's cause
