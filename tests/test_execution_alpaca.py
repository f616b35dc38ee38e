"""paper_orders through Alpaca's paper API, offline: a stateful stand-in for the Trading API v2
answers at the HTTP layer (``responses``), with bodies in the documented schema of
tests/fixtures/alpaca_trading, so alpaca-py and the platform's client code run for real. Like
Alpaca it refuses a client order id it has seen ("client_order_id must be unique")."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import responses
from conftest import write_random_views

from quant_assets.execution.assets import paper_orders, positions
from quant_assets.ingest.assets import raw_bars, universe
from quant_assets.partitions import trading_sessions
from quant_assets.portfolio.assets import target_weights
from quant_assets.risk.assets import risk_metrics
from resources.broker.alpaca import AlpacaBroker
from resources.broker.resource import Broker
from resources.execution_policy import ExecutionPolicy
from resources.market_data.resource import MarketData
from resources.portfolio_policy import PortfolioPolicy
from resources.storage import Store

FIXTURES = Path(__file__).parent / "fixtures" / "alpaca_trading"
PAPER = "https://paper-api.alpaca.markets/v2"
RANGE = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
DAYS = trading_sessions(date(2024, 3, 18), date(2024, 3, 20))  # two sessions
CASH = 200_000.0


class PaperApi:
    """Orders by client id, accepted and never filled (the market is closed at 22:00 UTC)."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.orders: dict[str, dict] = {}
        self.posts: Counter[str] = Counter()
        self.template = json.loads((FIXTURES / "order_accepted.json").read_text())
        mock.add_callback(responses.POST, f"{PAPER}/orders", callback=self._submit)
        mock.add_callback(
            responses.GET, re.compile(f"{PAPER}/orders:by_client_order_id.*"), callback=self._get
        )
        account = json.loads((FIXTURES / "account.json").read_text())
        mock.add(responses.GET, f"{PAPER}/account", json=account | {"cash": str(CASH)})
        mock.add(responses.GET, f"{PAPER}/positions", json=[])

    def _submit(self, request):  # type: ignore[no-untyped-def]
        sent = json.loads(request.body)
        cid = sent["client_order_id"]
        self.posts[cid] += 1
        if cid in self.orders:
            return (
                422,
                {},
                json.dumps({"code": 40010001, "message": "client_order_id must be unique"}),
            )
        order = self.template | {
            "id": str(uuid.uuid4()),
            "client_order_id": cid,
            "symbol": sent["symbol"],
            "qty": str(sent["qty"]),
            "side": sent["side"],
            "type": sent["type"],
            "order_type": sent["type"],
            "limit_price": sent.get("limit_price"),
        }
        self.orders[cid] = order
        return 200, {}, json.dumps(order)

    def _get(self, request):  # type: ignore[no-untyped-def]
        cid = request.params["client_order_id"]
        if cid not in self.orders:
            return 404, {}, json.dumps({"code": 40410000, "message": "order not found"})
        return 200, {}, json.dumps(self.orders[cid])


def _resources(store: Store) -> dict:
    return {
        "store": store,
        "market_data": MarketData(n_tickers=30),
        "portfolio_policy": PortfolioPolicy(lookback_sessions=252),
        "broker": Broker(
            kind="alpaca",
            initial_cash=CASH,
            alpaca_api_key="PKTEST",
            alpaca_secret_key="paper-secret",
        ),
        "execution_policy": ExecutionPolicy(),
    }


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> Iterator[Store]:
    store = Store(url=str(tmp_path_factory.mktemp("alpaca") / "quant.duckdb"))
    window = dict(zip(RANGE, ("2023-01-03", "2024-03-28"), strict=True))
    assert dg.materialize([universe, raw_bars], resources=_resources(store), tags=window).success
    write_random_views(store, DAYS)
    span = dict(zip(RANGE, (DAYS[0].isoformat(), DAYS[-1].isoformat()), strict=True))
    assert dg.materialize(
        [target_weights, risk_metrics], resources=_resources(store), tags=span
    ).success
    yield store


class _LostAnswer(AlpacaBroker):
    """Alpaca takes the second order, then the process dies before the answer is journaled."""

    calls = 0

    def submit(self, order):  # type: ignore[no-untyped-def]
        state = super().submit(order)
        _LostAnswer.calls += 1
        if _LostAnswer.calls == 2:
            raise RuntimeError("killed after Alpaca accepted the order")
        return state


def test_alpaca_gets_every_order_once_across_a_crash_and_a_rerun(books, monkeypatch):
    day = DAYS[0]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        api = PaperApi(mock)
        monkeypatch.setattr(
            Broker,
            "client",
            lambda self, store: _LostAnswer(
                self.alpaca_api_key, self.alpaca_secret_key, sleep=lambda s: None
            ),
        )
        crashed = dg.materialize(
            [paper_orders],
            resources=_resources(books),
            partition_key=day.isoformat(),
            raise_on_error=False,
        )
        assert not crashed.success and len(api.orders) == 2
        monkeypatch.undo()
        for _ in range(2):  # the re-run finishes the session, the next changes nothing
            rerun = dg.materialize(
                [paper_orders, positions],
                resources=_resources(books),
                partition_key=day.isoformat(),
            )
            assert rerun.success
    journal = books.read("order_journal", day, DAYS[1])
    sent = journal.filter(pl.col("status") != "REJECTED")
    assert sent.height > 2 and set(sent["broker"]) == {"alpaca"}
    # one POST per order: the lost answer was looked up, not sent again
    assert set(api.orders) == set(sent["client_order_id"])
    assert set(api.posts.values()) == {1}
    assert (sent["status"] == "SUBMITTED").all()  # accepted, waiting for the open
    assert all(api.orders[c]["type"] == "limit" for c in sent["client_order_id"])
    ids = {o["id"] for o in api.orders.values()}
    assert set(sent["broker_order_id"]) == ids
    # the simulated broker's books are untouched: the orders went to Alpaca
    simulated = rerun.asset_materializations_for_node("paper_orders")[2]
    assert simulated.asset_key == dg.AssetKey("simulated_broker_orders")
    assert simulated.metadata["rows"].value == 0
    assert simulated.metadata["broker"].value == "alpaca"
