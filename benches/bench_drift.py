"""Feature drift: calibration by simulation, the alarm rate on the shared real sample, and speed.

    uv run python benches/bench_drift.py [--seeds 10] [--tickers 100] [--real PATH] [--speed 500]

1. Calibration on the stationary synthetic market (``SyntheticMarket``, seeds 1..``--seeds`` (12),
   ``--tickers`` names, 2009-01 .. 2013-02 of Alpha158): the share of monitored days (every 21st
   session, windows disjoint) with a feature-drift alarm, each against the 756-session reference
   ending 10 sessions before it (``quant_assets.monitoring.calibration``); and planted shifts (a
   tenth of the features moved by half a reference standard deviation, onsets 120 sessions
   apart): how many are flagged within 21 sessions, and after how many.
2. The alarm rate on the shared real sample (``--real``, default ``../shared/data/
   us_equities_daily_sample.parquet``): its bars through the ``raw_bars`` validation (bad prints
   quarantined), Alpha158, then the same monitored days from 2008.
3. Speed for ``--speed`` tickers (synthetic): building a week's reference from 756 sessions, and
   one day's test of a 21-session window.

Prints a Markdown table of each. Targets (issue 18): stationary alarm rate <= 5%, planted shifts
detected within 21 sessions in >= 90% of simulations.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from quant_assets.features.alpha158 import ALPHA158_NAMES, compute_alpha158  # noqa: E402
from quant_assets.ingest.validation import validate_bars  # noqa: E402
from quant_assets.monitoring.calibration import (  # noqa: E402
    CalibrationSpec,
    alarm_days,
    first_monitored,
    planted_shift,
    stationary_panel,
)
from quant_assets.monitoring.drift import DriftReference, feature_drift  # noqa: E402
from resources.market_data.files_provider import FilesProvider  # noqa: E402

FEATURES = list(ALPHA158_NAMES)
SPEC = CalibrationSpec()
ONSET_SPACING = 120


def calibration(seeds: int, tickers: int) -> None:
    alarms, days, delays = 0, 0, []
    print("| seed | monitored days | alarm days | planted shifts | detected | sessions to detect |")
    print("|---:|---:|---:|---:|---:|---|")
    for seed in range(1, seeds + 1):
        panel = stationary_panel(seed, tickers, date(2009, 1, 1), date(2013, 3, 1))
        monitored = alarm_days(panel, FEATURES, SPEC)
        rng = np.random.default_rng(seed)
        sessions = panel["date"].n_unique()
        onsets = range(first_monitored(SPEC) + 5, sessions - SPEC.window_sessions, ONSET_SPACING)
        found = [planted_shift(panel, FEATURES, onset, rng, SPEC) for onset in onsets]
        alarms += int(monitored["alarm"].sum())
        days += monitored.height
        delays += found
        hits = [d for d in found if d is not None]
        print(
            f"| {seed} | {monitored.height} | {int(monitored['alarm'].sum())} | {len(found)} "
            f"| {len(hits)} | {hits} |",
            flush=True,
        )
    hits = [d for d in delays if d is not None]
    print(
        f"\nstationary alarm rate: {alarms}/{days} = {alarms / days:.1%} (target <= 5%); "
        f"planted shifts detected within {SPEC.window_sessions} sessions: {len(hits)}/"
        f"{len(delays)} = {len(hits) / len(delays):.1%} (target >= 90%), median "
        f"{np.median(hits) if hits else float('nan'):.0f} sessions after the onset\n"
    )


def real_sample(path: Path) -> None:
    provider = FilesProvider(path)
    members = provider.universe().filter(~pl.col("is_benchmark"))["ticker"].to_list()
    bars = provider.fetch_bars(members, date(2005, 1, 1), date(2012, 12, 31))
    clean, quarantine = validate_bars(bars)
    panel = compute_alpha158(clean)
    monitored = alarm_days(panel, FEATURES, SPEC)
    share = float(monitored["alarm"].mean())  # type: ignore[arg-type]
    first, last = (str(monitored["date"].min()), str(monitored["date"].max()))
    print(
        f"real sample ({path.name}): {bars.height:,} bars, {quarantine.height} quarantined, "
        f"{len(members)} names; monitored {first} .. {last}: alarm on {int(monitored['alarm'].sum())} of "
        f"{monitored.height} days ({share:.1%}): "
        f"{[str(d) for d in monitored.filter('alarm')['date']]} with "
        f"{monitored.filter('alarm')['drifted'].to_list()} drifted features of "
        f"{int(monitored['tested'].max())} tested\n"  # type: ignore[arg-type]
    )


def speed(tickers: int) -> None:
    panel = stationary_panel(1, tickers, date(2009, 1, 1), date(2012, 3, 1))
    days = panel["date"].unique().sort()
    window = panel.filter(pl.col("date").is_between(days[-776], days[-21]))
    started = time.perf_counter()
    reference = DriftReference.build(window, FEATURES, SPEC.window_sessions)
    built = time.perf_counter() - started
    current = panel.filter(pl.col("date") >= days[-21])
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        feature_drift(current, reference)
        runs.append(time.perf_counter() - started)
    print(
        f"speed, {tickers} tickers: reference of {window.height:,} rows x {len(FEATURES)} "
        f"features ({reference.blocks} blocks) built in {built:.2f} s; one day's test of "
        f"{current.height:,} rows: median {np.median(runs) * 1000:.1f} ms of 5 runs\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--tickers", type=int, default=100)
    parser.add_argument(
        "--real", type=Path, default=ROOT.parent / "shared/data/us_equities_daily_sample.parquet"
    )
    parser.add_argument("--speed", type=int, default=500)
    parser.add_argument("--skip", nargs="*", default=[], choices=["calibration", "real", "speed"])
    args = parser.parse_args()
    if "speed" not in args.skip:
        speed(args.speed)
    if "real" not in args.skip and args.real.exists():
        real_sample(args.real)
    if "calibration" not in args.skip:
        calibration(args.seeds, args.tickers)


if __name__ == "__main__":
    main()
