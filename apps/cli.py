"""``quant-daily``: the main job. Over the trailing sessions it materializes bars, macro series and
Alpha158, the labels realised so far, trains the model of the last completed week (MLflow) and
scores the current week, each step a run as ``dagster asset materialize`` makes it (in this
process) against a persistent Dagster instance, so the UI shows the runs."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
import warnings
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

# Dagster's notices that the code location uses beta features (backfill_policy, the MLflow hook)
# are for its developers: printed when the assets are imported, they would bury a user's
# one-line error under eighteen lines
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from quant_assets.features.assets import labels  # noqa: E402
from quant_assets.models.assets import alpha_model  # noqa: E402
from quant_assets.models.windows import model_week_for, week_start  # noqa: E402
from quant_assets.monitoring.assets import drift_reference  # noqa: E402
from quant_assets.partitions import (  # noqa: E402
    last_completed_trading_day,
    previous_trading_day,
    shift_sessions,
    start_date,
    trading_sessions,
)
from quant_core.calendar import partition_problem  # noqa: E402
from quant_core.conventions import LABEL_HORIZON_SESSIONS  # noqa: E402
from resources.settings import PROJECT_ROOT  # noqa: E402
from schedules import INGEST_ASSETS, PORTFOLIO_ASSETS, keys_of  # noqa: E402


def selection_of(*assets: dg.AssetsDefinition) -> str:
    """``--select`` for ``assets``: every key of each, a multi-asset's all of them (one cannot
    be materialized in part)."""
    return ",".join(key.to_user_string() for key in keys_of(*assets))


# the daily job's assets in the schedule's two stages: bars, macro series and Alpha158 over the
# range; then the current week: scores, views, every book and its risk (with the blocking
# risk-limit checks), the paper orders of the live book, the account they leave, the drift
# report and the PDF. Between them the labels and the weekly_training job's model.
DAILY_SELECTION = selection_of(*INGEST_ASSETS)
LABELS_SELECTION = selection_of(labels)
TRAINING_SELECTION = selection_of(alpha_model, drift_reference)
PORTFOLIO_SELECTION = selection_of(*PORTFOLIO_ASSETS)

# the main job's training: every model on the default 3-year window, with a lighter CPCV (4
# folds, 2 test: 6 splits, 3 paths) and a shorter TFT schedule than the weekly job's defaults,
# so the whole pipeline runs in minutes on a laptop-sized CPU
MAIN_JOB_TRAINING = {
    "ops": {
        "alpha_model": {
            "config": {
                "n_folds": 4,
                "n_test_folds": 2,
                "tft_max_epochs": 2,
                "tft_limit_train_batches": 60,
            }
        }
    }
}
# what each step does, printed before it runs (the progress of `make run`)
STEP_NAMES = {
    DAILY_SELECTION: "bars, macro series, Alpha158 and factors over the whole range",
    LABELS_SELECTION: "the 5-session labels realised so far",
    TRAINING_SELECTION: "the last completed week's model: LightGBM, CatBoost and a TFT (2 epochs "
    "of 60 batches) on the 3-year window, CPCV 4 folds / 2 test (6 splits, 3 paths), registered "
    "in MLflow; then that window's drift reference",
    PORTFOLIO_SELECTION: "this week's deployment, scores, views, books, risk, paper orders, "
    "account, drift report and PDF",
}
# a training window (756), the Alpha158 lookback (60) and a label horizon with margin (10)
DEFAULT_SESSIONS = 826

# One "planned" event per asset for a single-run backfill instead of one per partition: halves
# Dagster's event-log writes for a year of partitions. The price (Dagster's): partitions of a
# failed range run are not marked failed, only missing.
FAST_BACKFILL_ENV = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}


# One SQLite event log instead of a shard per run, in WAL mode: each of the thousands of
# per-partition events of a multi-year backfill costs a commit, and WAL commits are cheaper.
_INSTANCE_CONFIG = """\
telemetry:
  enabled: false
event_log_storage:
  module: dagster._core.storage.event_log
  class: ConsolidatedSqliteEventLogStorage
  config:
    base_dir: {home}/history
"""


def dagster_home() -> Path:
    """``DAGSTER_HOME`` or ``<project>/.dagster_home`` (shared with ``make ui``), created with
    the instance configuration above when it does not exist yet."""
    home = Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster_home").resolve()
    config = home / "dagster.yaml"
    if config.exists():
        return home
    home.mkdir(parents=True, exist_ok=True)
    config.write_text(_INSTANCE_CONFIG.format(home=home))
    # creating the instance creates its databases; WAL mode then sticks to the files
    dg.DagsterInstance.from_config(str(home)).dispose()
    for database in home.rglob("*.db"):
        with closing(sqlite3.connect(database)) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
    return home


class UsageError(ValueError):
    """A bad argument: one line saying what was wrong, with an example of a valid value."""


def nearest_partition(day: date) -> date:
    """The latest daily partition on or before ``day`` (the first one when ``day`` is before
    it): the example an error about ``day`` offers."""
    last = last_completed_trading_day()
    if day >= last:
        return last
    return max(previous_trading_day(day + timedelta(days=1)), shift_sessions(start_date(), 0))


def end_session(value: str | None) -> date:
    """``--end`` as a daily partition (``partition_problem``: an NYSE session from
    QUANT_START_DATE whose close has passed); None: the last completed session."""
    if value is None:
        return last_completed_trading_day()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        example = last_completed_trading_day()
        raise UsageError(
            f"--end {value!r} is not a date: use YYYY-MM-DD, e.g. --end {example}"
        ) from None
    problem = partition_problem(day)
    if problem is not None:
        raise UsageError(f"--end {problem}; e.g. --end {nearest_partition(day)}")
    return day


def session_count(value: int) -> int:
    if value < 1:
        raise UsageError(
            f"--sessions {value} is not a positive number of sessions, e.g. --sessions "
            f"{DEFAULT_SESSIONS}"
        )
    return value


def session_range(end: date, sessions: int) -> tuple[date, date]:
    days = trading_sessions(
        max(start_date(), end - timedelta(days=2 * sessions)), end + timedelta(1)
    )
    if not days:
        raise SystemExit(
            f"no NYSE session on or before {end} after QUANT_START_DATE={start_date()}"
        )
    return days[-min(sessions, len(days))], days[-1]


def materialize_command(selection: str, *args: str) -> list[str]:
    """``dagster asset materialize`` of ``selection`` on this code location, plus ``args``."""
    return [
        sys.executable,
        "-m",
        "dagster",
        "asset",
        "materialize",
        "-m",
        "quant_assets.definitions",
        "--select",
        selection,
        *args,
    ]


def materialize(selection: str, target: list[str], env: dict[str, str], *extra: str) -> int:
    """One run of ``selection`` (``target``: --partition or --partition-range; ``extra``:
    --config-json) against the Dagster instance at ``env``'s DAGSTER_HOME: what ``dagster asset
    materialize`` does (``materialize_command`` prints that command), in this process, so the
    code location is imported once for the main job's four runs instead of once per run (about
    14 s each on the 2-core machine)."""
    from dagster._cli.asset import execute_materialize_command
    from dagster._cli.workspace.cli_target import PythonPointerOpts

    print(f"quant-daily: {' '.join(materialize_command(selection, *target, *extra)[2:])}")
    os.environ.update(env)
    option, value = target
    config_json = extra[1] if extra[:1] == ("--config-json",) else None
    pointer = PythonPointerOpts(
        module_name="quant_assets.definitions", working_directory=str(PROJECT_ROOT)
    )
    try:
        with dg.DagsterInstance.get() as instance:
            execute_materialize_command(
                instance=instance,
                select=selection,
                partition=value if option == "--partition" else None,
                partition_range=value if option == "--partition-range" else None,
                config=(),
                config_json=config_json,
                python_pointer_opts=pointer,
            )
    except Exception as exc:  # a failed run (ClickException) or a refused target
        print(f"quant-daily: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


def pipeline_steps(
    first: date, last: date, training: bool
) -> list[tuple[str, list[str], list[str]]]:
    """(selection, partition target, extra args) of each run, in order: bars and features over
    the range, the labels realised by ``last``, the model of the last completed week (trained
    on the trailing window ending that week) and the predictions of ``last``'s week."""
    steps: list[tuple[str, list[str], list[str]]] = [
        (DAILY_SELECTION, ["--partition-range", f"{first}...{last}"], [])
    ]
    if not training:
        return steps
    week = model_week_for(last)
    scored_from = max(first, week_start(last))
    steps += [
        (
            LABELS_SELECTION,
            ["--partition-range", f"{first}...{shift_sessions(last, LABEL_HORIZON_SESSIONS)}"],
            [],
        ),
        (
            TRAINING_SELECTION,
            ["--partition", week.isoformat()],
            ["--config-json", json.dumps(MAIN_JOB_TRAINING)],
        ),
        (
            PORTFOLIO_SELECTION,
            ["--partition-range", f"{shift_sessions(scored_from, 0)}...{last}"],
            [],
        ),
    ]
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quant-daily", description=__doc__)
    parser.add_argument(
        "--end",
        default=None,
        help="last session, YYYY-MM-DD: an NYSE session whose close has passed (default: the "
        "last completed one)",
    )
    parser.add_argument(
        "--sessions",
        type=int,
        default=DEFAULT_SESSIONS,
        help=f"number of sessions ending at --end (default {DEFAULT_SESSIONS}: the training "
        "window, the features' lookback and the label horizon)",
    )
    parser.add_argument(
        "--ingest-only",
        action="store_true",
        help="only bars, macro series and features: no labels, training or predictions",
    )
    args = parser.parse_args(argv)
    try:
        first, last = session_range(end_session(args.end), session_count(args.sessions))
    except UsageError as exc:
        print(f"quant-daily: {exc}", file=sys.stderr)
        return 2
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home()), **FAST_BACKFILL_ENV}
    print(f"quant-daily: {first}...{last} (DAGSTER_HOME={env['DAGSTER_HOME']})")
    steps = pipeline_steps(first, last, not args.ingest_only)
    started = time.monotonic()
    for number, (selection, target, extra) in enumerate(steps, start=1):
        print(f"quant-daily: step {number}/{len(steps)}: {STEP_NAMES[selection]}", flush=True)
        step_started = time.monotonic()
        code = materialize(selection, target, env, *extra)
        now = time.monotonic()
        print(
            f"quant-daily: step {number}/{len(steps)} {'done' if code == 0 else 'FAILED'} in "
            f"{now - step_started:.1f} s ({now - started:.1f} s since the start)",
            flush=True,
        )
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
