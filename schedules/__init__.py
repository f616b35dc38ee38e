"""Jobs and schedules: the daily pipeline at 22:00 UTC on NYSE sessions (after the close), the
labels whose horizon closed that day at 23:30 UTC, the weekly training on Mondays at 20:00 UTC
(the week that just ended, before Monday's daily run) and the model selection for the new year
on January 2nd at 06:00 UTC (on the data of the years before it)."""

from datetime import UTC, date, datetime

import dagster as dg
from dagster_mlflow import end_mlflow_on_run_finished

from quant_assets.execution.assets import nav, paper_orders, positions
from quant_assets.features.assets import alpha158, factors, labels
from quant_assets.ingest.assets import macro_series, raw_bars, universe
from quant_assets.models.assets import alpha_model, predictions, shadow_predictions
from quant_assets.models.deployment_assets import model_deployment
from quant_assets.models.selection_assets import first_session_of_year, model_selection
from quant_assets.models.windows import model_week_for
from quant_assets.monitoring.assets import drift_reference, drift_report
from quant_assets.partitions import (
    daily_partitions,
    is_trading_day,
    shift_sessions,
    weekly_partitions,
)
from quant_assets.portfolio.assets import ml_views, shadow_weights, target_weights
from quant_assets.reporting.assets import daily_report
from quant_assets.risk.assets import risk_metrics
from quant_core.conventions import LABEL_HORIZON_SESSIONS


def keys_of(*defs: dg.AssetsDefinition) -> list[dg.AssetKey]:
    """Every asset key of ``defs``, a multi-asset's keys included (in its spec order)."""
    return [spec.key for d in defs for spec in d.specs]


# the main job (apps/cli.py) runs the daily assets in these two stages, the labels and the week's
# training between them: bars and features over the whole range, then the current week's scores
# through the books, their risk, the paper orders, the account, the drift report and the PDF
INGEST_ASSETS = [universe, raw_bars, macro_series, alpha158, factors]
PORTFOLIO_ASSETS = [
    model_deployment,
    predictions,
    shadow_predictions,
    ml_views,
    shadow_weights,
    target_weights,
    risk_metrics,
    paper_orders,
    positions,
    nav,
    drift_report,
    daily_report,
]
# labels run apart: the session they are for is 5 sessions behind the one that just closed
DAILY_ASSETS = [*INGEST_ASSETS, *PORTFOLIO_ASSETS]

daily_pipeline = dg.define_asset_job(
    name="daily_pipeline",
    selection=dg.AssetSelection.assets(*DAILY_ASSETS, labels),
    partitions_def=daily_partitions,
    description="Everything that runs once per trading day, for one session (or a range); the "
    "schedule requests labels separately, for the session whose horizon just closed.",
)

weekly_training = dg.define_asset_job(
    name="weekly_training",
    selection=dg.AssetSelection.assets(alpha_model, drift_reference),
    partitions_def=weekly_partitions,
    hooks={end_mlflow_on_run_finished},
    description="Trains, validates and registers the week's alpha model (one MLflow run), "
    "then bins its training window into the drift reference the daily drift_report tests "
    "against.",
)


yearly_model_selection = dg.define_asset_job(
    name="yearly_model_selection",
    selection=dg.AssetSelection.assets(model_selection),
    description="Chooses the model's configuration for a cutoff by CPCV on the data before it "
    "(the weekly training trains the latest choice; one MLflow run).",
)


def _session(context: dg.ScheduleEvaluationContext) -> date:
    now = context.scheduled_execution_time or datetime.now(UTC)
    return now.astimezone(UTC).date()


@dg.schedule(
    job=daily_pipeline,
    cron_schedule="0 22 * * 1-5",
    execution_timezone="UTC",
    description="Runs the daily pipeline for today's session after the US close; skips holidays.",
)
def daily_pipeline_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    session = _session(context)
    if not is_trading_day(session):
        return dg.SkipReason(f"{session} is not an NYSE session")
    key = session.isoformat()
    return dg.RunRequest(
        run_key=f"daily_pipeline:{key}",
        partition_key=key,
        asset_selection=keys_of(*DAILY_ASSETS),
    )


@dg.schedule(
    job=daily_pipeline,
    cron_schedule="30 23 * * 1-5",
    execution_timezone="UTC",
    description="Labels of the session 5 sessions back, whose horizon is today's session: 90 "
    "minutes after the daily run stored today's bars (a separate run, not a race with it).",
)
def daily_labels_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    session = _session(context)
    if not is_trading_day(session):
        return dg.SkipReason(f"{session} is not an NYSE session")
    key = shift_sessions(session, LABEL_HORIZON_SESSIONS).isoformat()
    return dg.RunRequest(
        run_key=f"daily_labels:{key}", partition_key=key, asset_selection=keys_of(labels)
    )


@dg.schedule(
    job=weekly_training,
    cron_schedule="0 20 * * 1",
    execution_timezone="UTC",
    description="Trains the model of the week that just ended, Monday 20:00 UTC, so Monday's "
    "22:00 daily run already scores with it if it became champion.",
)
def weekly_training_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    now = context.scheduled_execution_time or datetime.now(UTC)
    # the week that just ended: the model that will score this week
    week = model_week_for(now.astimezone(UTC).date()).isoformat()
    return dg.RunRequest(run_key=f"weekly_training:{week}", partition_key=week)


@dg.schedule(
    job=yearly_model_selection,
    cron_schedule="0 6 2 1 *",
    execution_timezone="UTC",
    description="Chooses the configuration the weekly training uses from the year's first "
    "session on, on the data before it, early on January 2nd.",
)
def yearly_model_selection_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    cutoff = first_session_of_year(_session(context).year).isoformat()
    return dg.RunRequest(
        run_key=f"model_selection:{cutoff}",
        run_config={"ops": {"model_selection": {"config": {"cutoff": cutoff}}}},
    )


jobs = [daily_pipeline, weekly_training, yearly_model_selection]
schedules = [
    daily_pipeline_schedule,
    daily_labels_schedule,
    weekly_training_schedule,
    yearly_model_selection_schedule,
]
