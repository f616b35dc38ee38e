"""Jobs and schedules: the daily pipeline at 22:00 UTC on NYSE sessions (after the close)."""

from datetime import UTC, datetime

import dagster as dg

from quant_assets.partitions import daily_partitions, is_trading_day

daily_pipeline = dg.define_asset_job(
    name="daily_pipeline",
    selection=dg.AssetSelection.groups("ingest"),
    partitions_def=daily_partitions,
    description="Everything that runs once per trading day, for one session (or a range).",
)


@dg.schedule(
    job=daily_pipeline,
    cron_schedule="0 22 * * 1-5",
    execution_timezone="UTC",
    description="Runs the daily pipeline for today's session after the US close; skips holidays.",
)
def daily_pipeline_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    now = context.scheduled_execution_time or datetime.now(UTC)
    session = now.astimezone(UTC).date()
    if not is_trading_day(session):
        return dg.SkipReason(f"{session} is not an NYSE session")
    key = session.isoformat()
    return dg.RunRequest(run_key=f"daily_pipeline:{key}", partition_key=key)


jobs = [daily_pipeline]
schedules = [daily_pipeline_schedule]
