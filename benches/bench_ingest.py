"""Backfill benchmark: 500 synthetic tickers x 10 years into DuckDB.

Prints (a) provider + validation + store time and peak RSS of one in-process backfill, the way
raw_bars does it, and (b) the wall time of the whole ``dagster asset materialize`` run for the
same range. Targets: (a) <= 5 s and <= 2 GB, (b) <= 30 s.

    uv run python benches/bench_ingest.py [--tickers 500] [--years 10]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apps.cli import FAST_BACKFILL_ENV, dagster_home, materialize_command  # noqa: E402
from quant_assets.ingest.validation import validate_bars  # noqa: E402
from quant_assets.partitions import next_trading_day, trading_sessions  # noqa: E402
from resources.market_data.synthetic import SyntheticMarket  # noqa: E402
from resources.storage import Store  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_process(tickers: int, first: date, end: date, workdir: Path) -> None:
    store = Store(url=str(workdir / "bench.duckdb"))
    market = SyntheticMarket(n_tickers=tickers)
    members = market.universe()
    store.replace_table("universe", members)
    t0 = time.perf_counter()
    bars = market.fetch_bars(members["ticker"].to_list(), first, end)
    t1 = time.perf_counter()
    clean, quarantine = validate_bars(bars)
    t2 = time.perf_counter()
    store.write_partition("raw_bars", clean, first, end)
    store.write_partition("raw_bars_quarantine", quarantine, first, end)
    t3 = time.perf_counter()
    print(f"rows: {bars.height:,} ({members.height} tickers incl. index, {first}..{end})")
    print(f"provider:   {t1 - t0:6.2f} s")
    print(f"validation: {t2 - t1:6.2f} s")
    print(f"store:      {t3 - t2:6.2f} s")
    print(f"provider + validation + store: {t3 - t0:.2f} s (target <= 5 s)")
    print(f"peak RSS: {peak_rss_mib():,.0f} MiB (target <= 2048 MiB)")


def whole_run(tickers: int, first: date, last: date, workdir: Path) -> None:
    env = {
        **os.environ,
        "QUANT_DATA_DIR": str(workdir / "cli_data"),
        "QUANT_SYNTHETIC_TICKERS": str(tickers),
        "DAGSTER_HOME": str(workdir / "dagster_home"),
        **FAST_BACKFILL_ENV,
    }
    env.pop("QUANT_STORE_URL", None)
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    dagster_home()  # the instance configuration quant-daily uses
    command = materialize_command(
        "universe,raw_bars,raw_bars_quarantine,macro_series",
        "--partition-range",
        f"{first}...{last}",
    )
    t0 = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        print(done.stderr[-3000:])
        raise SystemExit("dagster asset materialize failed")
    print(f"whole `dagster asset materialize` backfill run: {elapsed:.1f} s (target <= 30 s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--skip-cli", action="store_true")
    args = parser.parse_args()
    sessions = trading_sessions(date(2024 - args.years, 1, 1), date(2024, 1, 1))
    first, last = sessions[0], sessions[-1]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        in_process(args.tickers, first, next_trading_day(last), workdir)
        if not args.skip_cli:
            whole_run(args.tickers, first, last, workdir)


if __name__ == "__main__":
    main()
