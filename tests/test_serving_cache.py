"""The Redis serving cache (resources/serving_cache.py) with real redis-server processes: written
through when the books, risk figures and orders materialize, read first by the API, never stale
after a newer run that could not reach it, and the store's answer when the server is stopped."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from conftest import RedisServer, write_random_views
from fastapi.testclient import TestClient

from apps.api.app import create_app
from apps.api.settings import ApiSettings
from quant_assets.execution.assets import paper_orders, positions
from quant_assets.ingest.assets import raw_bars, universe
from quant_assets.partitions import next_trading_day, trading_sessions
from quant_assets.portfolio.assets import target_weights
from quant_assets.risk.assets import risk_metrics
from resources.broker.resource import Broker
from resources.execution_policy import ExecutionPolicy
from resources.market_data.resource import MarketData
from resources.portfolio_policy import PortfolioPolicy
from resources.serving_cache import ServingCache, latest_rows
from resources.storage import Store

RANGE = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
DAYS = trading_sessions(date(2024, 3, 18), date(2024, 3, 20))  # two sessions
KEY = "serving-cache-test-key"
BOOKS = [target_weights, risk_metrics, paper_orders, positions]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Path:
    """Bars of 30 names and random views for two sessions in a DuckDB file (no cache yet)."""
    path = tmp_path_factory.mktemp("serving") / "quant.duckdb"
    store = Store(url=str(path))
    window = dict(zip(RANGE, ("2023-01-03", "2024-03-28"), strict=True))
    assert dg.materialize([universe, raw_bars], resources=_resources(store), tags=window).success
    write_random_views(store, DAYS)
    store.close()
    return path


@pytest.fixture
def bars(ingested: Path, tmp_path: Path) -> Path:
    """A copy of the ingested store of the test's own: orders only go forward in time."""
    return Path(shutil.copy(ingested, tmp_path / "quant.duckdb"))


def _resources(store: Store) -> dict:
    return {
        "store": store,
        "market_data": MarketData(n_tickers=30),
        "portfolio_policy": PortfolioPolicy(lookback_sessions=252),
        "broker": Broker(initial_cash=200_000.0),
        "execution_policy": ExecutionPolicy(),
    }


def _trade(store: Store, day: date) -> None:
    result = dg.materialize(BOOKS, resources=_resources(store), partition_key=day.isoformat())
    assert result.success
    store.close()


@pytest.fixture
def api(bars: Path, redis_server: RedisServer) -> Iterator[TestClient]:
    reader = Store(url=str(bars), reader=True, cache_url=redis_server.url)
    settings = ApiSettings(api_key=KEY, asset_selection=("universe",))
    with TestClient(create_app(settings, store=reader)) as client:
        yield client


def _latest(client: TestClient, kind: str) -> tuple[str, dict]:
    response = client.get(f"/api/v1/latest/{kind}", headers={"X-API-Key": KEY})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["data"]["source"] == response.headers["X-Served-From"]
    return response.headers["X-Served-From"], body["data"]


def _rows(store: Store, kind: str) -> tuple[date | None, list[dict]]:
    session, frame = latest_rows(store, kind)
    rows = frame.with_columns(pl.col(pl.Date).cast(pl.String)).to_dicts()
    return session, rows


def test_materializing_the_books_and_orders_writes_the_cache_the_api_reads_first(
    bars: Path, redis_server: RedisServer, api: TestClient
):
    writer = Store(url=str(bars), cache_url=redis_server.url)
    _trade(writer, DAYS[0])
    for kind in ("weights", "risk", "orders"):
        source, data = _latest(api, kind)
        session, rows = _rows(writer, kind)
        assert source == "cache", kind
        assert data["session"] == session.isoformat() == DAYS[0].isoformat()
        assert data["rows"] == rows and data["count"] == len(rows) > 0, kind
    cache = ServingCache(redis_server.url)
    assert _latest(api, "weights")[1]["version"] == cache.expected_version("weights")
    # the live book only: the other methods' rows are not served
    assert {r["is_live"] for r in _latest(api, "weights")[1]["rows"]} == {True}


def test_a_newer_run_that_could_not_reach_redis_is_never_served_stale(
    bars: Path, redis_server: RedisServer, api: TestClient
):
    _trade(Store(url=str(bars), cache_url=redis_server.url), DAYS[0])
    assert _latest(api, "weights")[0] == "cache"
    # the next session's run cannot reach Redis (a dead port): the cache keeps the old book
    dead = RedisServer(redis_server.directory)
    _trade(Store(url=str(bars), cache_url=dead.url), DAYS[1])
    source, data = _latest(api, "weights")
    assert source == "store" and data["session"] == DAYS[1].isoformat()
    assert data["rows"] == _rows(Store(url=str(bars)), "weights")[1]
    # the next successful publish serves from the cache again
    _trade(Store(url=str(bars), cache_url=redis_server.url), DAYS[1])
    source, data = _latest(api, "weights")
    assert source == "cache" and data["session"] == DAYS[1].isoformat()


def test_when_the_redis_server_is_stopped_the_api_reads_the_store(
    bars: Path, redis_server: RedisServer, api: TestClient
):
    _trade(Store(url=str(bars), cache_url=redis_server.url), DAYS[0])
    cached = _latest(api, "orders")[1]
    redis_server.stop()
    source, data = _latest(api, "orders")
    assert source == "store" and data["rows"] == cached["rows"]
    assert data["session"] == cached["session"] and data["version"] is None
    # started again (no persistence: empty), the store keeps answering until the next publish
    redis_server.start()
    assert _latest(api, "orders")[0] == "store"


def test_a_write_of_several_sessions_publishes_only_the_latest(
    bars: Path, redis_server: RedisServer, api: TestClient
):
    writer = Store(url=str(bars), cache_url=redis_server.url)
    frame = pl.DataFrame(
        {
            "ticker": ["AAA", "BBB", "AAA", "BBB"],
            "date": [DAYS[0], DAYS[0], DAYS[1], DAYS[1]],
            "score_lightgbm": [0.1, -0.1, 0.2, -0.2],
            "score_catboost": [None, None, None, None],
            "score_tft": [None, None, None, None],
            "score_ensemble": [0.1, -0.1, 0.2, -0.2],
            "model_version": ["4"] * 4,
            "model_week": [date(2024, 3, 4)] * 4,
            "training_end": [date(2024, 3, 1)] * 4,
        }
    )
    writer.write_partition("predictions", frame, DAYS[0], next_trading_day(DAYS[1]))
    writer.close()
    source, data = _latest(api, "predictions")
    assert source == "cache" and data["session"] == DAYS[1].isoformat()
    assert [r["score_ensemble"] for r in data["rows"]] == [0.2, -0.2]


def test_an_unknown_kind_is_a_clear_404(api: TestClient):
    response = api.get("/api/v1/latest/positions", headers={"X-API-Key": KEY})
    assert response.status_code == 404
    assert "one of predictions, weights, risk, orders" in response.json()["summary"]


def test_without_a_cache_url_nothing_is_published_and_the_store_answers(bars: Path):
    store = Store(url=str(bars))
    assert store.serving_cache() is None
    settings = ApiSettings(api_key=KEY, asset_selection=("universe",))
    with TestClient(create_app(settings, store=Store(url=str(bars), reader=True))) as client:
        source, data = _latest(client, "weights")
    assert source == "store" and data["version"] is None


def test_the_dashboard_takes_the_latest_book_from_the_cache_and_history_from_the_store(
    bars: Path, redis_server: RedisServer
):
    from apps.dashboard.data import load_dashboard_data

    _trade(Store(url=str(bars), cache_url=redis_server.url), DAYS[0])
    stored = Store(url=str(bars)).read("target_weights", where={"is_live": [True]})
    # a newer session's book reaches the cache before the store's reader snapshot has it
    newer = stored.with_columns(pl.lit(DAYS[1]).alias("date"), pl.col("weight") / 2)
    ServingCache(redis_server.url).publish("weights", DAYS[1], newer)
    reader = Store(url=str(bars), reader=True, cache_url=redis_server.url)
    weights = load_dashboard_data(reader).live_weights
    assert weights["date"].unique().sort().to_list() == DAYS[:2]
    latest = weights.filter(pl.col("date") == DAYS[1]).sort("ticker")
    assert latest["weight"].to_list() == newer.sort("ticker")["weight"].to_list()
    # the server stopped: the store's history alone
    redis_server.stop()
    weights = load_dashboard_data(reader).live_weights
    assert weights["date"].unique().to_list() == [DAYS[0]]
