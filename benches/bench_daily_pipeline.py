"""Daily pipeline benchmark: one partition of the ``daily_pipeline`` job, 500 tickers.

Target: the full daily pipeline for one partition, after the weekly model exists,
through the in-process executor: <= 60 s wall including Dagster overhead, with each asset's
share. Everything runs as the schedule runs it: the code location's ``daily_pipeline`` job
(``execute_in_process`` with the schedule's asset selection, checks included) on its own
resources (``resources_from_env``: synthetic market, DuckDB, local MLflow, simulated broker),
pointed at a temporary data directory.

Untimed setup: bars, macro series and Alpha158 over the window, the labels realised, the
weekly model of the day's week (LightGBM + CatBoost with a 4-fold CPCV: the TFT is left out of
the setup to keep it minutes, not an hour, on the CPU; its one-day scoring cost is in
bench_tft.py), and the daily pipeline of the session before (so yesterday's books and
positions exist and the turnover limit binds). Timed: the daily pipeline of the session.

    flock /tmp/quant-bench.lock uv run python benches/bench_daily_pipeline.py [--tickers 500]

Measured 2026-12-05 (2-core machine, under the bench lock, load average 1.45 before): setup
2 min 55 s in all; the daily pipeline of 2024-06-26 16.3 s wall (targets <= 60 s and issue 18's
<= 20 s met), of which raw_bars 7.70 s, target_weights 3.96 s, drift_report 0.74 s (30.49 s on
2026-11-23, when Evidently plotted every measure), predictions 0.64 s, alpha158 0.56 s,
risk_metrics 0.49 s, daily_report 0.41 s, paper_orders 0.34 s, the rest under 0.21 s each;
Dagster's own overhead 0.7 s; peak RSS 3,550 MiB. Figures and history in the README.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DAY = date(2024, 6, 26)  # a Wednesday


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=900)
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="bench_daily_"))
    os.environ.update(
        QUANT_DATA_DIR=str(data),
        QUANT_STORE_URL=str(data / "quant.duckdb"),
        QUANT_SYNTHETIC_TICKERS=str(args.tickers),
        MLFLOW_TRACKING_URI=f"sqlite:///{data / 'mlflow.db'}",
        QUANT_MLFLOW_ARTIFACTS=(data / "artifacts").as_uri(),
    )
    import dagster as dg

    from apps.cli import DAILY_SELECTION, LABELS_SELECTION, TRAINING_SELECTION
    from quant_assets.definitions import defs
    from quant_assets.models.windows import model_week_for
    from quant_assets.partitions import previous_trading_day, shift_sessions
    from quant_core.conventions import LABEL_HORIZON_SESSIONS
    from resources.config import resources_from_env
    from schedules import DAILY_ASSETS, keys_of

    job = defs.resolve_job_def("daily_pipeline")
    instance = dg.DagsterInstance.ephemeral()

    everything = [*defs.assets, *defs.asset_checks]  # type: ignore[misc]
    resources = resources_from_env()

    def run(selection: list[str], partition: str | None = None, tags=None, config=None) -> None:  # type: ignore[no-untyped-def]
        result = dg.materialize(
            everything,
            selection=selection,
            partition_key=partition,
            tags=tags,
            run_config=config,
            resources=resources,
            instance=instance,
        )
        assert result.success

    first = shift_sessions(DAY, args.sessions)
    span = {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": DAY.isoformat(),
    }
    started = time.perf_counter()
    run(DAILY_SELECTION.split(","), tags=span)
    labelled = shift_sessions(DAY, LABEL_HORIZON_SESSIONS + 1)
    run(
        LABELS_SELECTION.split(","),
        tags=span | {"dagster/asset_partition_range_end": labelled.isoformat()},
    )
    week = model_week_for(DAY)
    training = {"models": ["lightgbm", "catboost"], "n_folds": 4, "n_test_folds": 2}
    run(
        TRAINING_SELECTION.split(","),
        partition=week.isoformat(),
        config={"ops": {"alpha_model": {"config": training}}},
    )
    keys = keys_of(*DAILY_ASSETS)
    job.execute_in_process(
        partition_key=previous_trading_day(DAY).isoformat(), asset_selection=keys, instance=instance
    )
    print(
        f"setup ({args.tickers} tickers, {args.sessions} sessions, model week {week}): "
        f"{time.perf_counter() - started:.1f} s"
    )

    load = os.getloadavg()
    started = time.perf_counter()
    result = job.execute_in_process(
        partition_key=DAY.isoformat(), asset_selection=keys, instance=instance
    )
    wall = time.perf_counter() - started
    assert result.success
    steps: dict[str, float] = defaultdict(float)
    for event in result.all_events:
        if event.event_type_value == "STEP_SUCCESS":
            steps[event.step_key] += event.event_specific_data.duration_ms / 1e3
    work = sum(steps.values())
    print(
        f"daily pipeline {DAY}: {wall:.1f} s wall (target <= 60 s), steps {work:.1f} s, "
        f"Dagster overhead {wall - work:.1f} s; load average {load[0]:.2f} before"
    )
    for step, seconds in sorted(steps.items(), key=lambda kv: -kv[1]):
        print(f"  {step:<55} {seconds:7.2f} s  {seconds / wall:6.1%}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MiB; data in {data}")


if __name__ == "__main__":
    main()
