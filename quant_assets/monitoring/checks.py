"""Drift checks on ``drift_summary``, named for what they guarantee. Not blocking: drift is a
reason to look and to retrain (the ``retraining_trigger`` sensor), not to stop the day's book.

Each check reads the severities the ``drift_report`` multi-asset stored in ``drift_summary``
(the asset they judge) and judges the run's last day, the day the PDF and the dashboard show,
in the same words (``severity_name``): passed when OK, failed at WARN for moderate drift and at
ERROR for severe drift; earlier flagged days of a range are listed in the metadata. A measure
that could not be computed is NOT EVALUATED: a failed check at WARN whose metadata says so and
why, never a pass.
"""

from typing import Any

import dagster as dg
import polars as pl

from quant_assets.metadata import NOT_EVALUATED, not_evaluated
from quant_assets.monitoring.drift import Severity, severity_name
from quant_assets.queries import rows_of_run
from resources.storage import Store

DRIFT_SUMMARY = dg.AssetKey("drift_summary")

_CHECK_SEVERITY = {
    Severity.WARN: dg.AssetCheckSeverity.WARN,
    Severity.ERROR: dg.AssetCheckSeverity.ERROR,
}


def _severity_check(
    context: dg.AssetCheckExecutionContext,
    store: Store,
    severity_metric: str,
    shown: tuple[str, ...],
) -> dg.AssetCheckResult:
    stored = rows_of_run(context, store, "drift_summary")
    if stored.is_empty():
        return not_evaluated("no drift_summary stored for the run's days")
    wide = stored.pivot(on="metric", index="date", values="value").sort("date")
    if severity_metric not in wide.columns:
        return not_evaluated(f"{severity_metric} missing from drift_summary")
    wide = wide.with_columns(pl.col(severity_metric).fill_nan(None))
    last = wide.row(-1, named=True)
    flagged = wide.filter(pl.col(severity_metric) >= Severity.WARN)
    metadata: dict[str, Any] = {
        "day": str(last["date"]),
        "days_in_run": wide.height,
        "days_flagged": dg.MetadataValue.json(
            {str(d): severity_name(v) for d, v in flagged.select("date", severity_metric).rows()}
        ),
        **{m: float(last[m]) for m in shown if last.get(m) is not None},
    }
    word = severity_name(last[severity_metric])
    if word == NOT_EVALUATED:
        return not_evaluated(
            f"{severity_metric} of {last['date']} could not be measured", **metadata
        )
    worst = Severity(int(last[severity_metric]))
    metadata["status"] = word
    if worst is Severity.OK:
        return dg.AssetCheckResult(passed=True, metadata=metadata)
    return dg.AssetCheckResult(passed=False, severity=_CHECK_SEVERITY[worst], metadata=metadata)


@dg.asset_check(
    asset=DRIFT_SUMMARY,
    description="The share of Alpha158 features whose window drifted from the champion's "
    "training reference (KS rejects and PSI or Jensen-Shannon is material) stays below the warning "
    "share; WARN from 30% of the features, ERROR from 50%; NOT EVALUATED when no feature could "
    "be tested.",
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
    "champion's out-of-sample scores: WARN from a PSI of 0.1, ERROR from 0.25; NOT EVALUATED "
    "when the PSI cannot be computed.",
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
    "Spearman correlation of SHAP importance rankings stays above 0.5 (WARN below); NOT "
    "EVALUATED until a week newer than the champion's training week has SHAP values.",
)
def explanations_not_drifted(
    context: dg.AssetCheckExecutionContext, store: Store
) -> dg.AssetCheckResult:
    return _severity_check(context, store, "explanation_severity", ("shap_rank_corr",))


__all__ = ["explanations_not_drifted", "features_not_drifted", "predictions_not_drifted"]
