"""``retraining_trigger``: request the weekly training ahead of its Monday schedule when the
latest ``drift_report`` shows severe drift (features or predictions) or the live book's
60-session Sharpe below its floor, at most once per calendar week of the report's session.

Which week it trains. A day uses the model of the last week completed before the day's week
began (``model_week_for``: no look-ahead), so the newest model that can react to drift seen on
session ``d`` is the one of the latest week whose last session is ``d`` or earlier: ``d``'s own
week when ``d`` is that week's last session (the sensor then trains it on Friday night instead
of Monday 20:00), the week before otherwise. When that week's ``alpha_model`` is already
materialized (the schedule ran), retraining it on the same data would give the same model, so
the sensor skips and says so; it also backs up a weekly run that did not happen.

The cursor keeps the week of the last request (and the last report evaluated); the run key is
``retraining_trigger:<trained week>``, so Dagster never launches the same request twice.
"""

import json
from datetime import date, timedelta

import dagster as dg

from quant_assets.models.windows import week_start
from quant_assets.partitions import trading_sessions
from schedules import weekly_training

# assets of multi-assets: their definitions have several keys, so the sensor names the one it reads
DRIFT_REPORT = dg.AssetKey("drift_report")
ALPHA_MODEL = dg.AssetKey("alpha_model")


def latest_complete_week(day: date) -> date:
    """The Monday of the latest training week whose last session is ``day`` or earlier."""
    monday = week_start(day)
    sessions = trading_sessions(monday, monday + timedelta(days=7))
    if sessions and sessions[-1] <= day:
        return monday
    return monday - timedelta(days=7)


def _flag(metadata: dict[str, dg.MetadataValue], key: str) -> bool:
    value = metadata.get(key)
    return bool(value.value) if value is not None else False


def _number(metadata: dict[str, dg.MetadataValue], key: str) -> float | None:
    value = metadata.get(key)
    return float(value.value) if value is not None and value.value is not None else None  # type: ignore[arg-type]


@dg.sensor(
    job=weekly_training,
    minimum_interval_seconds=15 * 60,
    description="Requests weekly_training early when the latest drift_report shows severe "
    "feature or prediction drift or the live book's 60-session Sharpe is below its floor; at "
    "most once per week, and never for a week whose model is already trained.",
)
def retraining_trigger(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    event = context.instance.get_latest_materialization_event(DRIFT_REPORT)
    materialization = event.asset_materialization if event is not None else None
    if materialization is None or materialization.partition is None:
        return dg.SkipReason("no drift_report materialized yet")
    day = date.fromisoformat(materialization.partition)
    metadata = dict(materialization.metadata)
    severe = _flag(metadata, "severe_drift")
    below_floor = _flag(metadata, "sharpe_below_floor")
    state = json.loads(context.cursor) if context.cursor else {}
    if not (severe or below_floor):
        return dg.SkipReason(
            f"drift_report {day}: no severe drift (features {metadata.get('feature_severity')},"
            f" predictions {metadata.get('prediction_severity')}) and the 60-session Sharpe "
            f"{_number(metadata, 'sharpe_60')} is not below the floor"
        )
    week = week_start(day).isoformat()
    if state.get("requested_week") == week:
        return dg.SkipReason(
            f"drift_report {day}: retraining already requested this week (week of {week}, "
            f"training week {state.get('trained_week')})"
        )
    target = latest_complete_week(day).isoformat()
    trained = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=ALPHA_MODEL, asset_partitions=[target]), limit=1
    )
    if trained.records:
        return dg.SkipReason(
            f"drift_report {day}: the model of week {target}, the newest one a day of this week "
            "may use, is already trained; the next one is the week of "
            f"{(date.fromisoformat(week))} once its last session closed"
        )
    reasons = [
        reason
        for reason, hit in (
            ("severe_drift", severe),
            ("sharpe_below_floor", below_floor),
        )
        if hit
    ]
    context.log.info(f"drift_report {day}: {', '.join(reasons)}; retraining week {target}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"retraining_trigger:{target}",
                partition_key=target,
                tags={"quant/retrain_reason": ",".join(reasons), "quant/drift_day": str(day)},
            )
        ],
        cursor=json.dumps({"requested_week": week, "trained_week": target, "report": str(day)}),
    )


__all__ = ["latest_complete_week", "retraining_trigger"]
