"""The main job's plan: which runs quant-daily makes, over which partitions."""

from __future__ import annotations

import json
from datetime import date

from apps.cli import (
    DAILY_SELECTION,
    DEFAULT_SESSIONS,
    LABELS_SELECTION,
    PORTFOLIO_SELECTION,
    TRAINING_SELECTION,
    pipeline_steps,
    session_range,
)
from quant_assets.features.alpha158 import LOOKBACK_ROWS
from quant_assets.models.windows import training_window
from quant_assets.partitions import trading_sessions


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
    assert {"paper_orders", "order_journal", "simulated_broker_orders"} <= planned
