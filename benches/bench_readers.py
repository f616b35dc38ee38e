"""Readers against the pipeline: a pipeline write and a dashboard load while 20 API clients read.

    uv run python benches/bench_readers.py --store PATH/quant.duckdb [--clients 20]
        [--seconds 40] [--readers snapshot|file]

The store is copied to a scratch directory first (the given file is never touched). Then, at
once, for ``--seconds``:

- an API server (``apps.api``, uvicorn on 127.0.0.1) with ``--clients`` threads each sending
  ``GET /api/v1/orders`` back to back (the journal, read from the store on every request);
- a dashboard process loading every panel's data (``load_dashboard_data``) in a loop;
- this process as the pipeline: every 2 s it rewrites the last session's ``alpha158`` rows
  (``write_partition``) and ends the step (``Store.close``, which publishes the readers'
  snapshot), timing both.

``--readers snapshot`` (the product) gives the API and the dashboard reader stores
(``Store(reader=True)``: the published snapshot); ``--readers file`` gives them the pipeline's
own file, as before readers had snapshots, for comparison. Prints the request latencies and
throughput, the dashboard load times and the pipeline's write and publish times.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = "bench-readers-key"
SERVER = """
import sys, uvicorn
from apps.api.app import create_app
from apps.api.settings import ApiSettings
from resources.storage import Store
store = Store(url=sys.argv[1], reader=sys.argv[2] == "snapshot")
app = create_app(ApiSettings(api_key=sys.argv[3]), store=store)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[4]), log_level="warning")
"""
DASHBOARD = """
import json, sys, time
from apps.dashboard.data import load_dashboard_data
from resources.storage import Store
store = Store(url=sys.argv[1], reader=sys.argv[2] == "snapshot")
end, times = time.monotonic() + float(sys.argv[3]), []
while time.monotonic() < end:
    started = time.perf_counter()
    load_dashboard_data(store)
    times.append(time.perf_counter() - started)
print(json.dumps(times))
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the API did not start on port {port}")


def _client(url: str, end: float, latencies: list[float], errors: list[str]) -> None:
    request = urllib.request.Request(url, headers={"X-API-Key": KEY})
    while time.monotonic() < end:
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                answer.read()
            latencies.append(time.perf_counter() - started)
        except Exception as exc:  # counted and shown: a refused or failed read
            errors.append(type(exc).__name__)


def _pipeline(url: str, end: float) -> dict[str, list[float]]:
    """Read the last session of alpha158, then rewrite it every 2 s until ``end`` (at least
    once), as a daily step would; the seconds each read, write and publish took."""
    from quant_assets.partitions import next_trading_day
    from resources.storage import Store

    store = Store(url=url)
    timings: dict[str, list[float]] = {"read": [], "write": [], "publish": []}
    started = time.perf_counter()
    bounds = store.date_bounds("alpha158")
    if bounds is None:
        raise SystemExit("the store has no alpha158 rows: run the daily job first")
    day = bounds[1]
    rows = store.read("alpha158", day, next_trading_day(day))
    store.close()
    timings["read"].append(time.perf_counter() - started)
    while not timings["write"] or time.monotonic() < end - 2:
        time.sleep(2)
        started = time.perf_counter()
        store.write_partition("alpha158", rows, day, next_trading_day(day))
        wrote = time.perf_counter()
        store.close()
        timings["write"].append(wrote - started)
        timings["publish"].append(time.perf_counter() - wrote)
    return timings


def _summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: none"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (
        f"{name}: n={len(values)} median {statistics.median(values) * 1e3:.1f} ms, "
        f"p95 {p95 * 1e3:.1f} ms, max {max(values) * 1e3:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True, help="a DuckDB store written by the daily job")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--readers", choices=("snapshot", "file"), default="snapshot")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench-readers-"))
    url = str(scratch / "quant.duckdb")
    shutil.copyfile(args.store, url)
    env = {**os.environ, "QUANT_DATA_DIR": str(scratch), "PYTHONPATH": str(ROOT)}
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, url, args.readers, KEY, str(port)], env=env, cwd=ROOT
    )
    try:
        _wait_for(port)
        end = time.monotonic() + args.seconds
        dashboard = subprocess.Popen(
            [sys.executable, "-c", DASHBOARD, url, args.readers, str(args.seconds)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        latencies: list[float] = []
        errors: list[str] = []
        orders = f"http://127.0.0.1:{port}/api/v1/orders"
        clients = [
            threading.Thread(target=_client, args=(orders, end, latencies, errors))
            for _ in range(args.clients)
        ]
        for client in clients:
            client.start()
        pipeline = _pipeline(url, end)
        for client in clients:
            client.join()
        loads = json.loads(dashboard.communicate(timeout=600)[0] or "[]")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)

    size = Path(args.store).stat().st_size / 2**20
    print(
        f"readers={args.readers}, {args.clients} API clients for {args.seconds:.0f} s, "
        f"store {size:.0f} MiB"
    )
    print(_summary("GET /orders", latencies) + f", {len(latencies) / args.seconds:.1f} req/s")
    print(f"request errors: {len(errors)} {sorted(set(errors))}")
    print(_summary("dashboard load (all panels)", loads))
    print(_summary("pipeline read (alpha158, last session)", pipeline["read"]))
    print(_summary("pipeline write (alpha158, one session)", pipeline["write"]))
    print(_summary("snapshot publish at the step's end", pipeline["publish"]))


if __name__ == "__main__":
    main()
