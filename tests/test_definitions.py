"""The code location loads, schedules resolve, and the CLI materializes a partition."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime

import dagster as dg
import duckdb
import pytest

from quant_assets.definitions import defs
from quant_assets.models.windows import model_week_for
from quant_assets.partitions import (
    daily_partitions,
    is_trading_day,
    shift_sessions,
    weekly_partitions,
)
from resources.settings import PROJECT_ROOT


def test_definitions_load_with_every_ingest_asset_and_check():
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"universe", "raw_bars", "macro_series"} <= keys
    check_names = {k.name for k in graph.asset_check_keys}
    assert {"raw_bars_cover_the_universe", "raw_bars_are_fresh"} <= check_names
    assert defs.resolve_job_def("daily_pipeline") is not None
    assert {"alpha158", "factors", "labels", "alpha_model", "predictions"} <= keys
    # the factors read what alpha158 reads: the bars (a multi-asset with its quarantine) and
    # the universe (their sectors)
    factor_parents = graph.get(dg.AssetKey("factors")).parent_keys
    assert factor_parents == graph.get(dg.AssetKey("alpha158")).parent_keys
    assert {"raw_bars", "universe"} <= {k.to_user_string() for k in factor_parents}
    assert defs.resolve_job_def("weekly_training") is not None
    assert {"paper_orders", "positions", "nav"} <= keys
    assert "positions_match_the_broker" in check_names
    assert "drift_report" in keys and "features_not_drifted" in check_names
    assert defs.resolve_sensor_def("retraining_trigger") is not None
    # the model selection reads what both feature sets and the labels are made of, and the
    # weekly training reads the stored selection
    selection_parents = graph.get(dg.AssetKey("model_selection")).parent_keys
    assert {k.to_user_string() for k in selection_parents} == {
        "alpha158",
        "factors",
        "raw_bars",
        "universe",
    }
    assert dg.AssetKey("model_selection") in graph.get(dg.AssetKey("alpha_model")).parent_keys


@pytest.mark.parametrize(
    ("when", "labelled"),
    [
        (datetime(2024, 3, 5, 23, 30, tzinfo=UTC), "2024-02-27"),
        (datetime(2024, 7, 8, 23, 30, tzinfo=UTC), "2024-06-28"),  # across Independence Day
    ],
)
def test_labels_schedule_targets_the_session_whose_horizon_closed(when, labelled):
    schedule = defs.resolve_schedule_def("daily_labels_schedule")
    context = dg.build_schedule_context(
        scheduled_execution_time=when, repository_def=defs.get_repository_def()
    )
    (request,) = schedule.evaluate_tick(context).run_requests or []
    assert request.asset_selection == [dg.AssetKey("labels"), dg.AssetKey("label_gaps")]
    assert request.partition_key == labelled == shift_sessions(when.date(), 5).isoformat()
    assert labelled in daily_partitions.get_partition_keys(when)


@pytest.mark.parametrize(
    ("when", "week"),
    [
        (datetime(2024, 6, 17, 20, 0, tzinfo=UTC), "2024-06-10"),
        (datetime(2024, 9, 2, 20, 0, tzinfo=UTC), "2024-08-26"),  # Labor Day: the week still ended
    ],
)
def test_weekly_training_targets_the_week_that_just_ended(when, week):
    schedule = defs.resolve_schedule_def("weekly_training_schedule")
    context = dg.build_schedule_context(
        scheduled_execution_time=when, repository_def=defs.get_repository_def()
    )
    (request,) = schedule.evaluate_tick(context).run_requests or []
    assert request.partition_key == week
    assert week in weekly_partitions.get_partition_keys(when)
    # the days that week's model scores all come after its last session
    assert model_week_for(when.date()) == date.fromisoformat(week)


@pytest.mark.parametrize(
    ("when", "cutoff"),
    [
        (datetime(2024, 1, 2, 6, 0, tzinfo=UTC), "2024-01-02"),
        (datetime(2023, 1, 2, 6, 0, tzinfo=UTC), "2023-01-03"),  # New Year's Day observed
    ],
)
def test_the_yearly_selection_chooses_for_the_first_session_of_the_new_year(when, cutoff):
    schedule = defs.resolve_schedule_def("yearly_model_selection_schedule")
    context = dg.build_schedule_context(
        scheduled_execution_time=when, repository_def=defs.get_repository_def()
    )
    (request,) = schedule.evaluate_tick(context).run_requests or []
    assert request.run_config == {"ops": {"model_selection": {"config": {"cutoff": cutoff}}}}
    assert date.fromisoformat(cutoff).year == when.year and is_trading_day(
        date.fromisoformat(cutoff)
    )
    job = defs.resolve_job_def("yearly_model_selection")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {
        "model_selection"
    }


# tables whose asset keeps an older noun: ``alpha_model`` is the registered model and its row
TABLE_ASSETS = {"alpha_models": "alpha_model"}


def test_every_stored_table_is_an_asset():
    from resources.storage.tables import TABLES

    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    missing = sorted(t for t in TABLES if TABLE_ASSETS.get(t, t) not in keys)
    assert not missing, f"stored tables without an asset: {missing}"


def test_workspace_validates_with_the_cli(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize(
    ("when", "expect_run"),
    [
        (datetime(2024, 3, 5, 22, 0, tzinfo=UTC), True),
        (datetime(2024, 3, 9, 22, 0, tzinfo=UTC), False),  # a Saturday
        (datetime(2024, 7, 4, 22, 0, tzinfo=UTC), False),  # Independence Day
        (datetime(2024, 11, 28, 22, 0, tzinfo=UTC), False),  # Thanksgiving
    ],
)
def test_daily_schedule_targets_the_session_and_skips_holidays(when, expect_run):
    schedule = defs.resolve_schedule_def("daily_pipeline_schedule")
    context = dg.build_schedule_context(
        scheduled_execution_time=when, repository_def=defs.get_repository_def()
    )
    result = schedule.evaluate_tick(context)
    requests = result.run_requests or []
    if expect_run:
        (pipeline,) = requests
        assert pipeline.partition_key == when.date().isoformat()
        assert dg.AssetKey("labels") not in pipeline.asset_selection
        assert dg.AssetKey("model_selection") not in pipeline.asset_selection  # yearly
        assert dg.AssetKey("predictions") in pipeline.asset_selection
        # the whole daily graph: both feature sets, through the paper orders and the account
        assert {
            dg.AssetKey(k)
            for k in (
                "alpha158",
                "factors",
                "paper_orders",
                "positions",
                "nav",
                "drift_report",
                "daily_report",
            )
        } <= set(pipeline.asset_selection)
    else:
        assert not requests
        assert result.skip_message and "not an NYSE session" in result.skip_message


@pytest.mark.slow
def test_cli_materializes_one_partition_into_the_store(tmp_path):
    env = {
        **os.environ,
        "QUANT_DATA_DIR": str(tmp_path / "data"),
        "QUANT_SYNTHETIC_TICKERS": "20",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    env.pop("QUANT_STORE_URL", None)
    (tmp_path / "dagster_home").mkdir()
    base = [
        sys.executable,
        "-m",
        "dagster",
        "asset",
        "materialize",
        "-m",
        "quant_assets.definitions",
    ]
    # raw_bars is a multi-asset with its quarantine: the CLI selects it whole
    bars = ["--select", "raw_bars,raw_bars_quarantine", "--partition", "2024-03-05"]
    for args in (["--select", "universe"], bars):
        done = subprocess.run(
            base + args,
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    with duckdb.connect(str(tmp_path / "data" / "quant.duckdb"), read_only=True) as con:
        rows = con.execute("select count(*), min(date), max(date) from raw_bars").fetchone()
    assert rows is not None
    assert rows[0] == 21  # 20 tickers and the synthetic index
    assert str(rows[1]) == str(rows[2]) == "2024-03-05"


def test_every_risk_limit_has_one_blocking_check_named_for_it():
    from quant_assets.risk import checks
    from quant_assets.risk.limits import limit_rules
    from resources.portfolio_policy import PortfolioPolicy

    limits = set(limit_rules(PortfolioPolicy()))
    blocking = {
        spec.name
        for check in defs.asset_checks or []
        for spec in check.check_specs
        if spec.blocking and spec.asset_key == checks.RISK_METRICS
    }
    assert blocking == limits
