"""Storage benchmarks; a plain script that prints its figures.

    uv run python benches/bench_store.py [--tickers 500] [--years 10] [--reads 15]

(a) write N tickers x Y years of bar rows (~1.26M for 500 x 10) into a fresh DuckDB file in one
    window write: time, rows/s, and peak RSS of the process during the write;
(b) read a 60-trading-day window for all tickers from DuckDB: median of several runs
    (target <= 50 ms);
(c) the same bulk write into PostgreSQL (target >= 200,000 rows/s) and the same window read, when
    QUANT_TEST_POSTGRES_URL (default: scripts/postgres.sh's server) answers; run in a scratch
    schema that is dropped afterwards.

Bars come from ``resources.market_data.synthetic.SyntheticMarket`` when that module is present,
else from numpy random walks with a fixed seed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import polars as pl
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quant_assets.partitions import trading_sessions
from resources.storage import Store
from resources.storage.tables import RAW_BARS

DEFAULT_TEST_POSTGRES_URL = "postgresql://postgres:postgres@127.0.0.1:5433/quant_test"


def nyse_sessions(start: date, count: int) -> list[date]:
    return trading_sessions(start, date(start.year + count // 240 + 2, 1, 1))[:count]


def random_bars(n_tickers: int, days: list[date], seed: int = 42) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n_days = len(days)
    returns = rng.normal(0.0003, 0.02, size=(n_tickers, n_days))
    close = 50.0 * np.exp(returns.cumsum(axis=1))
    spread = np.abs(rng.normal(0, 0.01, size=(n_tickers, n_days))) * close
    open_ = close * (1 + rng.normal(0, 0.005, size=(n_tickers, n_days)))
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    volume = rng.integers(10_000, 5_000_000, size=(n_tickers, n_days)).astype(float)
    vwap = (high + low + close) / 3
    tickers = [f"T{i:04d}" for i in range(n_tickers)]
    flat = {
        "ticker": np.repeat(np.array(tickers, dtype=object), n_days),
        "date": np.tile(np.array(days, dtype="datetime64[D]"), n_tickers),
    }
    for name, values in (
        ("open", open_),
        ("high", high),
        ("low", low),
        ("close", close),
        ("volume", volume),
        ("adj_open", open_),
        ("adj_high", high),
        ("adj_low", low),
        ("adj_close", close),
        ("vwap", vwap),
    ):
        flat[name] = values.ravel()
    return pl.DataFrame(flat).select(
        pl.col(name).cast(dtype) for name, dtype in RAW_BARS.polars_schema.items()
    )


def make_bars(n_tickers: int, days: list[date]) -> tuple[pl.DataFrame, str]:
    try:
        from resources.market_data.synthetic import SyntheticMarket  # type: ignore[import-not-found]

        market: Any = SyntheticMarket(n_tickers=n_tickers)
        tickers = market.universe()["ticker"].to_list()
        start, end = days[0], date.fromordinal(days[-1].toordinal() + 1)
        frame = market.fetch_bars(tickers, start, end)
        if frame.height:
            return frame.select(RAW_BARS.column_names), "SyntheticMarket"
    except Exception as exc:  # the module is optional / still being written
        print(f"(SyntheticMarket unavailable: {type(exc).__name__}; using numpy random bars)")
    return random_bars(n_tickers, days), "numpy random walks (seed 42)"


class PeakRss:
    """Samples this process's RSS every few ms while active."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self.before = self.process.memory_info().rss
        self.peak = self.before
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def median_ms(fn: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    fn()  # warm-up
    times = []
    result = None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), min(times), result


def bench_store(
    label: str, store: Store, frame: pl.DataFrame, days: list[date], reads: int
) -> None:
    start, end = days[0], date.fromordinal(days[-1].toordinal() + 1)
    with PeakRss() as rss:
        t0 = time.perf_counter()
        written = store.write_partition("raw_bars", frame, start, end)
        seconds = time.perf_counter() - t0
    print(
        f"[{label}] write {written:,} rows in one window: {seconds:.2f} s "
        f"= {written / seconds:,.0f} rows/s; RSS {mib(rss.before)} before, peak {mib(rss.peak)} "
        f"(+{mib(rss.peak - rss.before)})"
    )
    t0 = time.perf_counter()
    store.write_partition("raw_bars", frame.filter(pl.col("date") == days[-1]), days[-1], end)
    print(f"[{label}] rewrite of one daily partition: {(time.perf_counter() - t0) * 1000:.1f} ms")

    w_start, w_end = days[-61], days[-1]  # 60 sessions: [days[-61], days[-1])
    tickers = frame["ticker"].unique().to_list()
    median, best, result = median_ms(lambda: store.read("raw_bars", w_start, w_end), reads)
    print(
        f"[{label}] read 60-session window, {len(tickers)} tickers ({result.height:,} rows): "
        f"median {median:.1f} ms, best {best:.1f} ms over {reads} runs"
    )
    median, best, result = median_ms(
        lambda: store.read("raw_bars", w_start, w_end, tickers=tickers), reads
    )
    print(
        f"[{label}]   same with tickers=[{len(tickers)} tickers] filter: median {median:.1f} ms, "
        f"best {best:.1f} ms"
    )
    median, best, _ = median_ms(lambda: store.date_bounds("raw_bars"), reads)
    print(f"[{label}] date_bounds: median {median:.1f} ms")
    if label == "duckdb":
        from resources.storage import duckdb_backend

        idle, duckdb_backend.IDLE_CLOSE_S = duckdb_backend.IDLE_CLOSE_S, 0.0
        try:
            store.close()
            median, best, _ = median_ms(lambda: store.read("raw_bars", w_start, w_end), reads)
        finally:
            duckdb_backend.IDLE_CLOSE_S = idle
        print(
            f"[{label}]   cold (file opened and closed around each read): median {median:.1f} ms, "
            f"best {best:.1f} ms"
        )


def postgres_url() -> str | None:
    import psycopg

    url = os.environ.get("QUANT_TEST_POSTGRES_URL") or DEFAULT_TEST_POSTGRES_URL
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        print(f"[postgres] skipped: server unreachable ({type(exc).__name__})")
        return None
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--reads", type=int, default=15)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    days = nyse_sessions(date(2015, 1, 2), 252 * args.years)
    t0 = time.perf_counter()
    frame, source = make_bars(args.tickers, days)
    print(
        f"bars: {frame.height:,} rows ({args.tickers} tickers x {len(days)} sessions) from "
        f"{source}, generated in {time.perf_counter() - t0:.2f} s; "
        f"{frame.estimated_size() / 2**20:,.0f} MiB in polars"
    )

    with tempfile.TemporaryDirectory(prefix="bench_store_") as tmp:
        path = Path(tmp) / "bench.duckdb"
        bench_store("duckdb", Store(url=str(path)), frame, days, args.reads)
        print(f"[duckdb] file size {mib(path.stat().st_size)}")

    if args.no_postgres:
        return
    url = postgres_url()
    if url is None:
        return
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        parts = urlsplit(url)
        query = [*parse_qsl(parts.query), ("options", f"-csearch_path={schema}")]
        store = Store(url=urlunsplit(parts._replace(query=urlencode(query))))
        bench_store(store.backend_name, store, frame, days, args.reads)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
