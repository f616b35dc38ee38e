"""The API's latest predictions, weights and orders under concurrent clients, with and without
the Redis serving cache.

    uv run python benches/bench_api_latest.py [--tickers 500] [--clients 20] [--requests 50]
                                              [--writer]

Run on this project's 2-core VM, the clients share the CPU with the server: the figures
include the client's own time. A DuckDB store holds one session of ``--tickers`` predictions, a 50-name live book (and the other
methods' books), its risk figures and 50 paper orders, published to a real redis-server (Debian's,
on a free loopback port, no persistence). The API runs under uvicorn in its own process, once
reading the cache first and once reading the store only; ``--clients`` threads each send
``--requests`` requests to each of ``GET /api/v1/latest/{predictions,weights,orders}`` over a
kept-alive connection. With ``--writer`` another process rewrites the predictions (through the
store, so each write publishes) every 0.2 s while the clients read: the pipeline at work.

Prints a Markdown table: per kind and mode, the requests, p50, p95, p99 and the largest latency
in ms, and the side-by-side p99 ratio (store / cache). Target (issue 18): p99 <= 50 ms with the
cache under 20 concurrent clients.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resources.storage import Store  # noqa: E402

DAY = date(2024, 3, 28)
KEY = "bench-api-latest-key"
KINDS = ("predictions", "weights", "orders")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(port: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


def predictions(tickers: list[str], seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(3, len(tickers)))
    return pl.DataFrame(
        {
            "ticker": tickers,
            "date": [DAY] * len(tickers),
            "score_lightgbm": scores[0],
            "score_catboost": scores[1],
            "score_tft": scores[2],
            "score_ensemble": scores.mean(axis=0),
            "model_version": ["12"] * len(tickers),
            "model_week": [date(2024, 3, 18)] * len(tickers),
            "training_end": [date(2024, 3, 14)] * len(tickers),
        }
    )


def populate(store: Store, n_tickers: int) -> None:
    """One session of every served table (each write publishes when the store has a cache)."""
    tickers = [f"T{i:04d}" for i in range(n_tickers)]
    end = DAY + timedelta(days=1)
    store.write_partition("predictions", predictions(tickers, 0), DAY, end)
    books = [
        {"date": DAY, "method": method, "ticker": t, "weight": 0.02, "is_live": live}
        for method, live in (("constrained_markowitz", True), ("hrp", False), ("min_cvar", False))
        for t in tickers[:50]
    ]
    store.write_partition("target_weights", pl.DataFrame(books), DAY, end)
    risk = [
        {"date": DAY, "method": "constrained_markowitz", "is_live": True, "metric": m, "value": v}
        for m, v in (
            ("var95_historical", 0.016),
            ("cvar95_historical", 0.022),
            ("ex_ante_vol", 0.1),
        )
    ]
    store.write_partition("risk_metrics", pl.DataFrame(risk), DAY, end)
    orders = pl.DataFrame(
        {
            "date": [DAY] * 50,
            "client_order_id": [f"Q-{DAY:%Y%m%d}-{i:04d}" for i in range(50)],
            "broker": ["simulated"] * 50,
            "strategy": ["constrained_markowitz"] * 50,
            "ticker": tickers[:50],
            "side": ["buy"] * 50,
            "qty": [100] * 50,
            "reference_price": [50.0] * 50,
            "limit_price": [None] * 50,
            "status": ["FILLED"] * 50,
            "filled_qty": [100] * 50,
            "avg_fill_price": [50.02] * 50,
            "fees": [1.0] * 50,
            "updated_at": ["2024-03-28T21:00:00Z"] * 50,
        }
    )
    journal = store.read("order_journal").head(0)
    for column in journal.columns:
        if column not in orders.columns:
            orders = orders.with_columns(pl.lit(None, dtype=journal.schema[column]).alias(column))
    store.upsert("order_journal", orders.select(journal.columns))


def serve(port: int, store_url: str, cache_url: str | None) -> None:
    """The API on ``port`` (run in its own process)."""
    import uvicorn

    from apps.api.app import create_app
    from apps.api.settings import ApiSettings

    store = Store(url=store_url, reader=True, cache_url=cache_url)
    app = create_app(ApiSettings(api_key=KEY, asset_selection=("universe",)), store=store)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def write_forever(store_url: str, cache_url: str, n_tickers: int) -> None:
    """Rewrite the predictions every 0.2 s (run in its own process)."""
    store = Store(url=store_url, cache_url=cache_url)
    tickers = [f"T{i:04d}" for i in range(n_tickers)]
    seed = 1
    while True:
        store.write_partition("predictions", predictions(tickers, seed), DAY, DAY + timedelta(1))
        store.close()
        seed += 1
        time.sleep(0.2)


def client_run(port: int, kind: str, requests: int, out: list[float], sources: list[str]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(requests):
        started = time.perf_counter()
        connection.request("GET", f"/api/v1/latest/{kind}", headers={"X-API-Key": KEY})
        response = connection.getresponse()
        body = response.read()
        out.append((time.perf_counter() - started) * 1000.0)
        sources.append(response.getheader("X-Served-From") or "?")
        if response.status != 200 or b'"rows"' not in body:
            raise RuntimeError(f"{kind}: {response.status} {body[:200]!r}")
    connection.close()


def measure(port: int, kind: str, clients: int, requests: int) -> tuple[np.ndarray, str]:
    """Every request's latency, and how many answers came from where."""
    samples: list[list[float]] = [[] for _ in range(clients)]
    sources: list[str] = []
    threads = [
        threading.Thread(target=client_run, args=(port, kind, requests, samples[i], sources))
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = Counter(sources)
    source = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
    return np.array([x for s in samples for x in s]), source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--writer", action="store_true")
    parser.add_argument(
        "--serve", nargs=3, metavar=("PORT", "STORE", "CACHE"), help=argparse.SUPPRESS
    )
    parser.add_argument("--write", nargs=3, metavar=("STORE", "CACHE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        port, store_url, cache = args.serve
        serve(int(port), store_url, None if cache == "none" else cache)
        return
    if args.write:
        write_forever(args.write[0], args.write[1], int(args.write[2]))
        return
    redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
    work = Path(tempfile.mkdtemp(prefix="bench_api_latest_"))
    env = {**os.environ, "QUANT_DATA_DIR": str(work / "data")}
    os.environ["QUANT_DATA_DIR"] = env["QUANT_DATA_DIR"]
    redis_port = free_port()
    cache_url = f"redis://127.0.0.1:{redis_port}/0"
    processes = [
        subprocess.Popen(
            [redis_server, "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "",
             "--appendonly", "no", "--dir", str(work)],
            stdout=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    try:
        wait_for(redis_port)
        store_url = str(work / "quant.duckdb")
        store = Store(url=store_url, cache_url=cache_url)
        populate(store, args.tickers)
        store.close()
        ports = {"cache": free_port(), "store": free_port()}
        for mode, port in ports.items():
            cache = cache_url if mode == "cache" else "none"
            processes.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--serve", str(port), store_url, cache], env=env
                )
            )
        if args.writer:
            processes.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--write", store_url, cache_url, str(args.tickers)],
                    env=env,
                )
            )
        for port in ports.values():
            wait_for(port)
        # the harness's own heap (Dagster, Polars) out of the collector: a full collection of it
        # stalls every client thread for ~0.2 s, which is not the server's latency
        gc.freeze()
        print(
            f"{args.clients} concurrent clients x {args.requests} requests per kind, "
            f"{args.tickers} predictions, writer {'on' if args.writer else 'off'}\n"
        )
        print("| kind | mode (answers from) | requests | p50 ms | p95 ms | p99 ms | max ms |")
        print("|---|---|---:|---:|---:|---:|---:|")
        p99: dict[tuple[str, str], float] = {}
        # mode by mode, each kind warmed up first and a second apart: the other server (its
        # garbage collection, DuckDB's idle close) must not steal this one's two cores
        for mode, port in ports.items():
            for kind in KINDS:
                measure(port, kind, args.clients, 2)
                time.sleep(1.0)
                latencies, source = measure(port, kind, args.clients, args.requests)
                p50, p95, p99[(kind, mode)] = np.percentile(latencies, [50, 95, 99])
                print(
                    f"| {kind} | {mode} ({source}) | {latencies.size} | {p50:.1f} | {p95:.1f} "
                    f"| {p99[(kind, mode)]:.1f} | {latencies.max():.1f} |"
                )
        print("\np99 store / cache: " + ", ".join(
            f"{kind} {p99[(kind, 'store')] / p99[(kind, 'cache')]:.2f}x" for kind in KINDS
        ))  # fmt: skip
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=10)
        Store(url=str(work / "quant.duckdb")).close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
