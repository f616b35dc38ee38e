"""The main job's plan: which runs quant-daily makes, over which partitions; its answer to a
bad argument."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from apps.cli import (
    DAILY_SELECTION,
    DEFAULT_SESSIONS,
    LABELS_SELECTION,
    PORTFOLIO_SELECTION,
    TRAINING_SELECTION,
    main,
    pipeline_steps,
    session_range,
)
from quant_assets.features.alpha158 import LOOKBACK_ROWS
from quant_assets.models.windows import training_window
from quant_assets.partitions import last_completed_trading_day, next_trading_day, trading_sessions
from quant_core.calendar import nyse_calendar


def test_the_main_job_ingests_labels_trains_the_last_week_and_scores_this_week():
    first, last = session_range(date(2024, 6, 26), DEFAULT_SESSIONS)  # a Wednesday
    steps = pipeline_steps(first, last, training=True)
    assert [s[0] for s in steps] == [
        DAILY_SELECTION,
        LABELS_SELECTION,
        TRAINING_SELECTION,
        PORTFOLIO_SELECTION,
    ]
    # the labels and the model with the tables they write (multi-assets, selected whole)
    assert LABELS_SELECTION.split(",") == ["labels", "label_gaps"]
    assert "alpha_model" in TRAINING_SELECTION.split(",")
    assert steps[0][1] == ["--partition-range", f"{first}...2024-06-26"]
    # labels only up to the session whose 5-session horizon ends on the last session
    assert steps[1][1] == ["--partition-range", f"{first}...2024-06-18"]
    assert steps[2][1] == ["--partition", "2024-06-17"]
    json.loads(steps[2][2][1])  # the training config is valid JSON run config
    assert steps[3][1] == ["--partition-range", "2024-06-24...2024-06-26"]
    # the range holds the whole training window and the features' lookback before it
    window = training_window(date(2024, 6, 17), 756)
    assert len(trading_sessions(first, window.start)) >= LOOKBACK_ROWS


def test_a_monday_holiday_scores_from_the_weeks_first_session():
    first, last = session_range(date(2024, 9, 4), DEFAULT_SESSIONS)  # Labor Day was Monday
    steps = pipeline_steps(first, last, training=True)
    assert steps[2][1] == ["--partition", "2024-08-26"]
    assert steps[3][1] == ["--partition-range", "2024-09-03...2024-09-04"]


def test_ingest_only_stops_after_the_features():
    first, last = session_range(date(2024, 6, 26), 10)
    assert [s[0] for s in pipeline_steps(first, last, training=False)] == [DAILY_SELECTION]


def test_the_main_job_covers_every_asset_of_the_daily_schedule():
    from schedules import DAILY_ASSETS, keys_of

    scheduled = {k.to_user_string() for k in keys_of(*DAILY_ASSETS)}
    planned = set(DAILY_SELECTION.split(",")) | set(PORTFOLIO_SELECTION.split(","))
    assert scheduled == planned
    # a multi-asset is planned with every table it writes
    assert {"raw_bars", "raw_bars_quarantine"} <= set(DAILY_SELECTION.split(","))
    assert {
        "paper_orders",
        "order_journal",
        "simulated_broker_orders",
        "venue_broker_orders",
    } <= planned


# --- bad arguments: one line, what was wrong and a valid example, exit code 2 ------------------


def _beyond_the_calendar() -> tuple[str, str]:
    last_known = nyse_calendar().last_session.date()
    return (
        str(next_trading_day(last_known)),
        f"is beyond the NYSE calendar's last session {last_known}; e.g. --end "
        f"{last_completed_trading_day()}",
    )


def _not_closed_yet() -> tuple[str, str]:
    last = last_completed_trading_day()
    return str(next_trading_day(last)), f"has not closed yet: the last completed session is {last}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--end", "2026-11-26"],
            "--end 2026-11-26 is not an NYSE session: a holiday (Thanksgiving); "
            "e.g. --end 2026-11-25",
        ),
        (
            ["--end", "2024-03-09"],
            "--end 2024-03-09 is not an NYSE session: a weekend (Saturday); e.g. --end 2024-03-08",
        ),
        (
            ["--end", "2012-10-29"],
            "not an NYSE session: an unscheduled market closure; e.g. --end 2012-10-26",
        ),
        (
            ["--end", "2004-12-31"],
            "--end 2004-12-31 is before the first partition 2005-01-03 (QUANT_START_DATE); "
            "e.g. --end 2005-01-03",
        ),
        (["--end", "05/03/2024"], "--end '05/03/2024' is not a date: use YYYY-MM-DD, e.g. --end "),
        (["--end", _beyond_the_calendar()[0]], _beyond_the_calendar()[1]),
        (["--end", _not_closed_yet()[0]], _not_closed_yet()[1]),
        (["--sessions", "0"], "--sessions 0 is not a positive number of sessions, e.g. --sessions"),
    ],
)
def test_a_bad_argument_is_one_line_naming_the_reason_and_a_valid_example(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.delenv("QUANT_START_DATE", raising=False)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith("quant-daily: ") and message in line, line
    assert not (tmp_path / "dagster_home").exists()  # nothing was run


def test_the_installed_command_answers_a_holiday_without_a_traceback(tmp_path: Path) -> None:
    """``quant-daily`` as a user runs it: stderr is the one line, nothing Dagster prints when
    the code location is imported."""
    command = Path(sys.executable).parent / "quant-daily"
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    env.pop("QUANT_START_DATE", None)
    done = subprocess.run(
        [str(command), "--end", "2026-11-26"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "quant-daily: --end 2026-11-26 is not an NYSE session: a holiday (Thanksgiving); "
        "e.g. --end 2026-11-25"
    ]


def test_the_main_job_says_which_step_runs_what_it_trains_and_how_long_each_took(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import apps.cli as cli

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    ran: list[str] = []

    def fake_materialize(selection: str, target: list[str], env: dict, *extra: str) -> int:
        ran.append(selection)
        return 1 if selection == cli.PORTFOLIO_SELECTION else 0

    monkeypatch.setattr(cli, "materialize", fake_materialize)
    assert cli.main(["--end", "2024-06-21", "--sessions", "300"]) == 1
    out = capsys.readouterr().out
    assert ran == [cli.DAILY_SELECTION, cli.LABELS_SELECTION, cli.TRAINING_SELECTION,
                   cli.PORTFOLIO_SELECTION]  # fmt: skip
    assert "step 1/4: bars, macro series, Alpha158 and factors" in out
    assert "step 3/4: the last completed week's model: LightGBM, CatBoost and a TFT" in out
    assert "step 3/4 done in" in out and "since the start" in out
    assert "step 4/4 FAILED in" in out
