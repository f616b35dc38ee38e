"""Drift checks on ``drift_summary``, named for what they guarantee. Not blocking: drift is a
reason to look and to retrain (the ``retraining_trigger`` sensor), not to stop the day's book.

Each check reads the severities the ``drift_report`` multi-asset stored in ``drift_summary``
(the asset they judge) for the run's days (0 ok, 1 warn, 2 severe, graded by its
``DriftThresholds``) and fails on the worst day: severity WARN for moderate drift, ERROR for
severe drift.
"""

from typing import Any

import dagster as dg
import polars as pl

from quant_assets.monitoring.drift import Severity
from quant_assets.queries import rows_of_run
from resources.storage import Store

DRIFT_SUMMARY = dg.AssetKey("drift_summary")

_CHECK_SEVERITY = {
    Severity.WARN: dg.AssetCheckSeverity.WARN,
    Severity.SEVERE: dg.AssetCheckSeverity.ERROR,
}


def _severity_check(
    context: dg.AssetCheckExecutionContext,
    store: Store,
    severity_metric: str,
    shown: tuple[str, ...],
) -> dg.AssetCheckResult:
    stored = rows_of_run(context, store, "drift_summary")
    if stored.is_empty():
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"reason": "no drift_summary stored for the run's days"},
        )
    wide = stored.pivot(on="metric", index="date", values="value").sort("date")
    if severity_metric not in wide.columns:
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"reason": f"{severity_metric} missing from drift_summary"},
        )
    worst_row = wide.sort(severity_metric, descending=True, nulls_last=True).row(0, named=True)
    worst = Severity(int(worst_row[severity_metric] or 0))
    flagged = wide.filter(pl.col(severity_metric) >= Severity.WARN)
    metadata: dict[str, Any] = {
        "days_checked": wide.height,
        "days_flagged": flagged.height,
        "worst_day": str(worst_row["date"]),
        "worst_severity": worst.name,
        **{
            f"worst_day_{m}": float(worst_row[m])
            for m in shown
            if m in worst_row and worst_row[m] is not None
        },
    }
    if worst is Severity.OK:
        return dg.AssetCheckResult(passed=True, metadata=metadata)
    return dg.AssetCheckResult(passed=False, severity=_CHECK_SEVERITY[worst], metadata=metadata)


@dg.asset_check(
    asset=DRIFT_SUMMARY,
    description="The share of Alpha158 features whose window drifted from the champion's "
    "training reference (KS rejects and PSI or Jensen-Shannon is material) stays below the warning "
    "share; WARN from 30% of the features, ERROR from 50%.",
)
def features_not_drifted(
    context: dg.AssetCheckExecutionContext, store: Store
) -> dg.AssetCheckResult:
    return _severity_check(
        context, store, "feature_severity", ("drifted_share", "drifted_features", "max_psi")
    )


@dg.asset_check(
    asset=DRIFT_SUMMARY,
    description="The ensemble score's distribution over the window stays close to the "
    "champion's out-of-sample scores: WARN from a PSI of 0.1, ERROR from 0.25.",
)
def predictions_not_drifted(
    context: dg.AssetCheckExecutionContext, store: Store
) -> dg.AssetCheckResult:
    return _severity_check(
        context,
        store,
        "prediction_severity",
        ("prediction_psi", "prediction_ks_pvalue", "prediction_js_distance"),
    )


@dg.asset_check(
    asset=DRIFT_SUMMARY,
    description="What drives the model still resembles what drove it in training: the "
    "Spearman correlation of SHAP importance rankings stays above 0.5 (WARN below).",
)
def explanations_not_drifted(
    context: dg.AssetCheckExecutionContext, store: Store
) -> dg.AssetCheckResult:
    return _severity_check(context, store, "explanation_severity", ("shap_rank_corr",))


__all__ = ["explanations_not_drifted", "features_not_drifted", "predictions_not_drifted"]
