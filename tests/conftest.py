"""Shared fixtures.

Store fixtures: ``store`` is parametrized over both backends, a DuckDB file under ``tmp_path`` and
PostgreSQL at ``QUANT_TEST_POSTGRES_URL`` (default: the server ``scripts/postgres.sh`` starts),
each test in a fresh schema. An unreachable server skips the PostgreSQL cases locally and fails
them when ``CI`` is set: CI must run them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import polars as pl
import pytest

from quant_assets.partitions import next_trading_day
from resources.storage import Store

DEFAULT_TEST_POSTGRES_URL = "postgresql://postgres:postgres@127.0.0.1:5433/quant_test"


def postgres_test_url() -> str:
    """``QUANT_TEST_POSTGRES_URL`` or the default of ``scripts/postgres.sh``."""
    return os.environ.get("QUANT_TEST_POSTGRES_URL") or DEFAULT_TEST_POSTGRES_URL


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` (``options=-csearch_path=...``)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={schema}"))
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test server's URL, or skip (fail under CI) when it does not answer."""
    import psycopg

    url = postgres_test_url()
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
        return url
    except psycopg.Error as exc:
        reason = (
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
        )
    message = (
        f"PostgreSQL test server unreachable ({reason}); start one with "
        "`bash scripts/postgres.sh` or set QUANT_TEST_POSTGRES_URL"
    )
    if os.environ.get("CI"):
        pytest.fail(message + " [CI is set: PostgreSQL tests must run]", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def postgres_store_url(postgres_url: str) -> Iterator[str]:
    """A URL on a fresh, empty schema, dropped after the test."""
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_search_path(postgres_url, schema)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh store location on each backend."""
    if request.param == "duckdb":
        return str(tmp_path / "store" / "quant.duckdb")
    return request.getfixturevalue("postgres_store_url")


@pytest.fixture
def store(store_url: str) -> Store:
    """A fresh, empty Store on each backend."""
    return Store(url=store_url)


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory, monkeypatch):
    """Reports and default stores of a test go to a temporary data directory, never ./data."""
    monkeypatch.setenv("QUANT_DATA_DIR", str(tmp_path_factory.mktemp("data")))


def write_random_views(store: Store, days: list[date], seed: int = 3) -> None:
    """Random ml_views rows (fixed seed) for ``days``, so the books can be built without a
    trained model (the ml_views asset itself is tested in test_alpha_pipeline)."""
    members = store.read("universe").filter(~pl.col("is_benchmark"))["ticker"].to_list()
    rng = np.random.default_rng(seed)
    frames = [
        pl.DataFrame(
            {
                "ticker": members,
                "date": [day] * len(members),
                "score_ensemble": rng.normal(size=len(members)),
            }
        ).with_columns(
            (pl.col("score_ensemble") * 4e-4).alias("expected_return_daily"),
            (pl.col("score_ensemble") * 2e-3).alias("expected_return_horizon"),
            pl.lit(0.4).alias("confidence"),
            pl.lit(2e-3).alias("slope"),
            pl.lit(100, dtype=pl.Int32).alias("calibration_dates"),
            pl.lit(date(2024, 3, 11)).alias("model_week"),
            pl.lit("benchmark_excess_daily").alias("prior"),
        )
        for day in days
    ]
    store.write_partition("ml_views", pl.concat(frames), days[0], next_trading_day(days[-1]))


class RedisServer:
    """A real redis-server (Debian's, installed by scripts/redis.sh) on a free loopback port,
    without persistence, owned by one test: it can be stopped and started again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            pytest.fail("redis-server is missing: run `bash scripts/redis.sh` (make test does)")
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.02)
        self.stop()
        pytest.fail(f"redis-server did not listen on 127.0.0.1:{self.port} within 10 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()
