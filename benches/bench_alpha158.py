"""Alpha158 benchmark: whole-history and one-new-day computation on synthetic bars, and the real
sample if present.

Each case runs in its own child process, which reads its input from a parquet file written by
the parent (so the child's peak RSS is the input frame plus the computation, not the market
generator) and reports its own wall times and peak RSS (``ru_maxrss``).

(a) 500 tickers x 10 years (2014-2023) of synthetic daily bars, whole history: wall time, µs per
    instrument-day (output rows), peak RSS, and the ratio to Qlib's ~86 µs per instrument-day on
    one core (the issue's figure, 21.6 s for 100 instruments x 2,500 days; not measured here).
    Run with Polars' default thread pool and with ``POLARS_MAX_THREADS=1``.
    Targets: <= 4 µs per instrument-day, <= 4 GB peak RSS.
(b) One new day for the 500 tickers from the 61-session lookback (the day and
    ``LOOKBACK_ROWS`` = 60 before it) plus each ticker's first date. Target: <= 0.5 s.
(c) ``/work/shared/data/us_equities_daily_sample.parquet`` (read in place; skipped if absent).

    flock /tmp/quant-bench.lock uv run python benches/bench_alpha158.py [--tickers N --years Y]

Measured (2 shared cores; see the README's Alpha158 subsection for the run's load):
    (filled in from the last run)
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

SAMPLE = Path("/work/shared/data/us_equities_daily_sample.parquet")
QLIB_US_PER_INSTRUMENT_DAY = 86.0  # the figure for Qlib, one core (not our measurement)
TARGET_US, TARGET_GB, TARGET_DAY_S = 4.0, 4.0, 0.5
LAST = date(2024, 1, 1)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def child_whole(path: str, runs: int) -> None:
    import polars as pl

    from quant_assets.features.alpha158 import compute_alpha158

    bars = pl.read_parquet(path)
    base = peak_rss_mib()
    threads = pl.thread_pool_size()
    for run in range(1, runs + 1):
        t0 = time.perf_counter()
        out = compute_alpha158(bars)
        wall = time.perf_counter() - t0
        us = wall * 1e6 / out.height
        print(
            f"  run {run} ({threads} Polars threads): {wall:.2f} s for {out.height:,} "
            f"instrument-days = {us:.2f} µs per instrument-day "
            f"(Qlib, the issue's figure: {QLIB_US_PER_INSTRUMENT_DAY:.0f} µs -> "
            f"{QLIB_US_PER_INSTRUMENT_DAY / us:.1f}x; target <= {TARGET_US} µs)",
            flush=True,
        )
        del out
    peak = peak_rss_mib()
    print(
        f"  peak RSS {peak:,.0f} MiB (after imports and reading the input: {base:,.0f} MiB; "
        f"target <= {TARGET_GB * 1024:,.0f} MiB)",
        flush=True,
    )


def child_day(path: str, runs: int) -> None:
    import polars as pl

    from quant_assets.features.alpha158 import LOOKBACK_ROWS, compute_alpha158

    bars = pl.read_parquet(path)
    days = bars["date"].unique().sort()
    day = days[-1]
    # what a store query returns: the lookback sessions, and each ticker's first date
    window = bars.filter(pl.col("date") >= days[-1 - LOOKBACK_ROWS])
    first_dates = bars.group_by("ticker").agg(pl.col("date").min().alias("first_date"))
    del bars
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = compute_alpha158(window, first_dates=first_dates).filter(pl.col("date") == day)
        walls.append(time.perf_counter() - t0)
    walls.sort()
    print(
        f"  {out.height} tickers on {day} from {window.height:,} lookback bars "
        f"({window['date'].n_unique()} sessions): min {walls[0]:.3f} s, "
        f"median {walls[len(walls) // 2]:.3f} s, max {walls[-1]:.3f} s over {runs} runs "
        f"(target <= {TARGET_DAY_S} s); peak RSS {peak_rss_mib():,.0f} MiB",
        flush=True,
    )


def spawn(case: str, path: Path, runs: int, env: dict[str, str] | None = None) -> None:
    subprocess.run(
        [sys.executable, __file__, "--child", case, str(path), "--runs", str(runs)],
        check=True,
        env={**os.environ, **(env or {})},
    )


def synthetic_bars(tickers: int, years: int, path: Path) -> int:
    import polars as pl

    from resources.market_data.synthetic import SyntheticMarket

    market = SyntheticMarket(n_tickers=tickers)
    members = market.universe().filter(~pl.col("is_benchmark"))["ticker"].to_list()
    bars = market.fetch_bars(members, date(LAST.year - years, 1, 1), LAST).select(
        "ticker",
        "date",
        *(pl.col(f"adj_{c}").alias(c) for c in ("open", "high", "low", "close")),
        "volume",
        "vwap",
    )
    bars.write_parquet(path)
    return bars.height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("CASE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        case, path = args.child
        {"whole": child_whole, "day": child_day}[case](path, args.runs)
        return

    print(f"start: {load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_alpha158_") as tmp:
        path = Path(tmp) / "bars.parquet"
        t0 = time.perf_counter()
        rows = synthetic_bars(args.tickers, args.years, path)
        print(
            f"synthetic bars: {args.tickers} tickers x {args.years} years = {rows:,} rows "
            f"(generated in {time.perf_counter() - t0:.1f} s, not timed below)",
            flush=True,
        )
        print("(a) whole history, default thread pool", flush=True)
        spawn("whole", path, args.runs)
        print("(a) whole history, POLARS_MAX_THREADS=1", flush=True)
        spawn("whole", path, 1, {"POLARS_MAX_THREADS": "1"})
        print("(b) one new day from the lookback", flush=True)
        spawn("day", path, 7)
    print("(c) real sample", flush=True)
    if SAMPLE.exists():
        spawn("whole", SAMPLE, args.runs)
    else:
        print(f"  skipped: {SAMPLE} is absent", flush=True)
    print(f"end: {load()}", flush=True)


if __name__ == "__main__":
    main()
