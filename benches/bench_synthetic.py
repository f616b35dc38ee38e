"""SyntheticMarket benchmark: wall time and peak RSS of generating bars as one polars frame.

Each case runs in its own process (so its peak RSS is its own): the first ``fetch_bars`` call
(generation from the model origin + bar construction), then a second, cached call.
Targets: 500 tickers x 10 years < 1.5 s for the provider, peak RSS well below 2 GB;
2,000 tickers x 20 years must work.

    uv run python benches/bench_synthetic.py [--case TICKERS YEARS ...]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = ((500, 10), (2000, 20))
LAST = date(2024, 1, 1)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(tickers: int, years: int) -> None:
    from resources.market_data.synthetic import SyntheticMarket, _sessions

    first = date(LAST.year - years, 1, 1)
    t0 = time.perf_counter()
    market = SyntheticMarket(n_tickers=tickers)  # the path starts at market.start (2000-01-03)
    _sessions(market.start.toordinal())  # the exchange calendar, built once per process
    members = market.universe()["ticker"].to_list()
    t1 = time.perf_counter()
    rss_before = peak_rss_mib()
    bars = market.fetch_bars(members, first, LAST)
    t2 = time.perf_counter()
    rss_first = peak_rss_mib()
    rows, size_mb = bars.height, bars.estimated_size("mb")
    del bars
    again = market.fetch_bars(members, first, LAST)
    t3 = time.perf_counter()
    assert again.height == rows
    print(
        f"{tickers:>5} tickers x {years:>2} years: {rows:>10,} rows ({size_mb:,.0f} MB frame)\n"
        f"  setup (calendar, universe):            {t1 - t0:6.2f} s\n"
        f"  first fetch (generates the path):      {t2 - t1:6.2f} s\n"
        f"  second fetch (path cached):            {t3 - t2:6.2f} s\n"
        f"  peak RSS: before fetching {rss_before:,.0f} MiB, after the first fetch "
        f"{rss_first:,.0f} MiB, at the end {peak_rss_mib():,.0f} MiB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", nargs=2, type=int, action="append", metavar=("TICKERS", "YEARS"))
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cases = [tuple(c) for c in args.case] if args.case else CASES
    if args.in_process:
        for tickers, years in cases:
            run_case(tickers, years)
        return
    for tickers, years in cases:
        command = [sys.executable, __file__, "--in-process", "--case", str(tickers), str(years)]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
