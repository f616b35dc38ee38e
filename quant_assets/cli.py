"""``quant-daily``: the main job — the daily pipeline over the trailing trading year, run through
``dagster asset materialize`` against a persistent Dagster instance, so the UI shows the runs."""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from quant_assets.partitions import last_completed_trading_day, start_date, trading_sessions
from resources.settings import PROJECT_ROOT

DAILY_SELECTION = "universe,raw_bars,macro_series"

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


def session_range(end: date, sessions: int) -> tuple[date, date]:
    days = trading_sessions(
        max(start_date(), end - timedelta(days=2 * sessions)), end + timedelta(1)
    )
    if not days:
        raise SystemExit(
            f"no NYSE session on or before {end} after QUANT_START_DATE={start_date()}"
        )
    return days[-min(sessions, len(days))], days[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quant-daily", description=__doc__)
    parser.add_argument(
        "--end",
        type=date.fromisoformat,
        default=None,
        help="last session (default: the last completed NYSE session)",
    )
    parser.add_argument(
        "--sessions",
        type=int,
        default=252,
        help="number of sessions ending at --end (default 252, a trading year)",
    )
    args = parser.parse_args(argv)

    first, last = session_range(args.end or last_completed_trading_day(), args.sessions)
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home()), **FAST_BACKFILL_ENV}
    command = [
        sys.executable,
        "-m",
        "dagster",
        "asset",
        "materialize",
        "-m",
        "quant_assets.definitions",
        "--select",
        DAILY_SELECTION,
        "--partition-range",
        f"{first}...{last}",
    ]
    print(
        f"quant-daily: {DAILY_SELECTION} for {first}...{last} (DAGSTER_HOME={env['DAGSTER_HOME']})"
    )
    return subprocess.run(command, env=env, cwd=PROJECT_ROOT, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
