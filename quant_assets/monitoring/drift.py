"""Drift measures of the live model: pure functions, Polars in, numbers and frames out.

* **Feature drift** (:func:`feature_drift`): one Evidently 0.7 ``Report`` with three
  ``ValueDrift`` metrics per feature, asked for explicitly (with more than 1,000 reference rows
  Evidently's default numeric test would be Wasserstein):

  - ``psi``: Population Stability Index ``sum((ref% - cur%) * ln(ref% / cur%))``;
  - ``ks``: the two-sample Kolmogorov-Smirnov p-value (``scipy.stats.ks_2samp``, two-sided);
  - ``jensenshannon``: the Jensen-Shannon distance (``scipy.spatial.distance.jensenshannon``,
    natural log, so it lies in ``[0, sqrt(ln 2)]``).

  PSI and Jensen-Shannon share Evidently's binning (``evidently.legacy.calculations.stattests
  .utils.get_binned_data``): a numeric column with more than 20 distinct reference values is cut
  at ``numpy.histogram_bin_edges(reference + current, bins="sturges")``; fewer distinct values
  are their own categories. For PSI an empty bin's share is replaced by 0.0001 (or a millionth
  of the smallest non-empty share when that is below 0.0001), so the log stays finite.

  A feature is *drifted* when the change is both significant and material: the KS test rejects
  (p-value at or below its level) AND PSI or the JS distance reaches its threshold. Neither
  alone: with thousands of rows KS rejects differences far too small to matter for a model,
  while PSI and JS have a sampling floor on a small window (PSI's is about
  ``(bins - 1) * (1 / n_ref + 1 / n_cur)``) that crosses 0.1 on unchanged data (measured in
  tests/test_monitoring_drift.py: 6 of 40 unchanged 210-row samples would be flagged by PSI
  and JS together). KS keeps the false-positive rate at or under its level.

* **Prediction drift** (:func:`prediction_drift`): the same three measures on the ensemble
  score of the current window against the reference scores.
* **Explanation drift** (:func:`explanation_drift`): Spearman rank correlation of per-feature
  mean |SHAP| between the current week and the training week, per boosted model.
* **Rolling Sharpe** (``quant_core.metrics.trailing_sharpe``): annualised Sharpe of the live book's realised daily
  returns over the last 30, 60 and 90 sessions (NaN until that many sessions exist).

Severity (:class:`DriftThresholds`) is graded OK / WARN / ERROR with explicit, documented
thresholds (ERROR is severe drift, in Dagster's word for a check's top severity, so the checks,
the PDF, the dashboard and the README use one word). A measure that cannot be computed (too few
rows, no second SHAP week, too little live history) has no severity: it is stored as NaN and
shown as NOT EVALUATED, never as OK.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from numpy.typing import ArrayLike

from quant_assets.metadata import NOT_EVALUATED

# the stored column -> Evidently's stattest name
DRIFT_METHODS: dict[str, str] = {
    "psi": "psi",
    "ks_pvalue": "ks",
    "js_distance": "jensenshannon",
}

# a column needs this many finite values on each side to be tested
MIN_ROWS = 30


class Severity(enum.IntEnum):
    OK = 0
    WARN = 1
    ERROR = 2


def severity_name(value: float | None) -> str:
    """The word every surface shows for a stored severity: OK, WARN, ERROR or NOT EVALUATED
    (None or NaN: the measure could not be computed)."""
    if value is None or not math.isfinite(value):
        return NOT_EVALUATED
    return Severity(int(value)).name


def stored_severity(severity: Severity | None) -> float:
    """A severity as ``drift_summary`` stores it: its number, NaN when not evaluated."""
    return math.nan if severity is None else float(severity)


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature counts as drifted, and how severe a day's drift is.

    Per feature (Evidently's defaults for the three tests):

    * ``psi`` 0.1: the credit-scoring convention reads PSI < 0.1 as no significant change,
      0.1-0.25 as a moderate shift and >= 0.25 as a significant shift;
    * ``ks_pvalue`` 0.05: the usual test level;
    * ``js_distance`` 0.1;
    * drifted = KS rejects and (PSI or JS reaches its threshold): significant and material.

    Per day:

    * features: WARN when ``share_warn`` (30%) of the features drifted, ERROR from
      ``share_severe`` (50%, Evidently's dataset-drift share);
    * predictions: the score's PSI, WARN from ``prediction_psi_warn`` (0.1) and ERROR from
      ``prediction_psi_severe`` (0.25), the PSI convention above;
    * explanations: WARN when the Spearman correlation of the SHAP rankings falls below
      ``shap_rank_corr_warn`` (0.5: fewer than half of the ranking's order survives);
    * the live book: ``sharpe_floor`` -1.0 on the ``sharpe_window`` (60) sessions' annualised
      Sharpe. Its standard error on 60 sessions is about sqrt(252 / 60) = 2.05, so a floor at 0
      would fire about half the time for a strategy with no edge; -1 fires for a strategy with
      a true Sharpe of 1 only about 16% of the time, yet catches a book that lost its edge.
    """

    psi: float = 0.1
    ks_pvalue: float = 0.05
    js_distance: float = 0.1
    share_warn: float = 0.3
    share_severe: float = 0.5
    prediction_psi_warn: float = 0.1
    prediction_psi_severe: float = 0.25
    shap_rank_corr_warn: float = 0.5
    sharpe_floor: float = -1.0
    sharpe_window: int = 60

    def __post_init__(self) -> None:
        if not 0 < self.share_warn <= self.share_severe <= 1:
            raise ValueError("need 0 < share_warn <= share_severe <= 1")
        if not 0 < self.prediction_psi_warn <= self.prediction_psi_severe:
            raise ValueError("need 0 < prediction_psi_warn <= prediction_psi_severe")

    def drifted(self) -> pl.Expr:
        """Whether a row of a ``psi, ks_pvalue, js_distance`` frame drifted: KS rejects and PSI
        or JS reaches its threshold (a missing measure never counts as drift)."""
        material = (pl.col("psi") >= self.psi) | (pl.col("js_distance") >= self.js_distance)
        return ((pl.col("ks_pvalue") <= self.ks_pvalue) & material).fill_null(False)

    def feature_severity(self, drifted_share: float) -> Severity | None:
        """None when no feature could be tested (NaN share)."""
        if not math.isfinite(drifted_share):
            return None
        if drifted_share >= self.share_severe:
            return Severity.ERROR
        if drifted_share >= self.share_warn:
            return Severity.WARN
        return Severity.OK

    def prediction_severity(self, psi: float) -> Severity | None:
        if not math.isfinite(psi):
            return None
        if psi >= self.prediction_psi_severe:
            return Severity.ERROR
        if psi >= self.prediction_psi_warn:
            return Severity.WARN
        return Severity.OK

    def explanation_severity(self, rank_corr: float) -> Severity | None:
        if not math.isfinite(rank_corr):
            return None
        return Severity.WARN if rank_corr < self.shap_rank_corr_warn else Severity.OK

    def sharpe_breached(self, sharpe: float) -> bool | None:
        """The live book's Sharpe is below the floor; None (not evaluated) while the window has
        too little history for a Sharpe."""
        if not math.isfinite(sharpe):
            return None
        return sharpe < self.sharpe_floor


@dataclass(frozen=True)
class DriftResult:
    """Per-column measures (``feature, psi, ks_pvalue, js_distance, drifted``) and the
    Evidently snapshot they came from (``.save_html(path)``, ``.dict()``)."""

    table: pl.DataFrame
    snapshot: Any

    @property
    def tested(self) -> int:
        """Columns with enough rows on both sides to be tested (a KS p-value)."""
        values = self.table["ks_pvalue"].fill_nan(None)
        return int(values.is_not_null().sum()) if self.table.height else 0

    @property
    def drifted_share(self) -> float:
        """Drifted share of the tested columns; NaN when none could be tested."""
        if self.tested == 0:
            return math.nan
        return float(self.table["drifted"].sum()) / self.tested

    @property
    def max_psi(self) -> float:
        return float(self.table["psi"].max()) if self.table.height else math.nan  # type: ignore[arg-type]

    def save_html(self, path: str) -> None:
        self.snapshot.save_html(path)


def testable_columns(
    current: pl.DataFrame, reference: pl.DataFrame, columns: Sequence[str]
) -> list[str]:
    """The ``columns`` with at least ``MIN_ROWS`` finite values on both sides and more than one
    distinct value in the reference (a constant column has no distribution to compare)."""

    def stats(frame: pl.DataFrame) -> pl.DataFrame:
        finite = {c: pl.col(c).cast(pl.Float64).is_finite() for c in columns}
        return frame.select(
            *(finite[c].sum().alias(f"{c}|n") for c in columns),
            *(pl.col(c).filter(finite[c]).n_unique().alias(f"{c}|u") for c in columns),
        )

    cur, ref = stats(current).row(0, named=True), stats(reference).row(0, named=True)
    return [
        c
        for c in columns
        if cur[f"{c}|n"] >= MIN_ROWS and ref[f"{c}|n"] >= MIN_ROWS and ref[f"{c}|u"] > 1
    ]


def _pandas(frame: pl.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Float64 columns with infinities as NaN (Evidently drops NaN per column)."""
    return frame.select(
        pl.when(pl.col(c).cast(pl.Float64).is_finite()).then(pl.col(c).cast(pl.Float64)).alias(c)
        for c in columns
    ).to_pandas()


def drift_table(
    current: pl.DataFrame,
    reference: pl.DataFrame,
    columns: Sequence[str],
    thresholds: DriftThresholds | None = None,
) -> DriftResult:
    """PSI, KS p-value and Jensen-Shannon distance of each of ``columns`` (current against
    reference) from ONE Evidently report, and whether each column drifted. Columns that cannot
    be tested (see :func:`testable_columns`) are left out of the table."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    thresholds = thresholds or DriftThresholds()
    tested = testable_columns(current, reference, columns)
    limits = {
        "psi": thresholds.psi,
        "ks": thresholds.ks_pvalue,
        "jensenshannon": thresholds.js_distance,
    }
    report = Report(
        [
            ValueDrift(column=c, method=method, threshold=limits[method])
            for c in tested
            for method in DRIFT_METHODS.values()
        ]
    )
    definition = DataDefinition(numerical_columns=list(tested))
    snapshot = report.run(
        Dataset.from_pandas(_pandas(current, tested), data_definition=definition),
        Dataset.from_pandas(_pandas(reference, tested), data_definition=definition),
    )
    values: dict[tuple[str, str], float] = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        values[(config["column"], config["method"])] = float(metric["value"])
    table = pl.DataFrame(
        {
            "feature": tested,
            **{
                name: pl.Series([values[(c, method)] for c in tested], dtype=pl.Float64)
                for name, method in DRIFT_METHODS.items()
            },
        },
        schema={"feature": pl.String, **dict.fromkeys(DRIFT_METHODS, pl.Float64)},
    ).with_columns(thresholds.drifted().alias("drifted"))
    return DriftResult(table, snapshot)


def feature_drift(
    current: pl.DataFrame,
    reference: pl.DataFrame,
    features: Sequence[str],
    thresholds: DriftThresholds | None = None,
) -> DriftResult:
    """Per-feature drift of the current window against the reference (see the module doc)."""
    return drift_table(current, reference, features, thresholds)


def prediction_drift(
    current_scores: ArrayLike,
    reference_scores: ArrayLike,
    thresholds: DriftThresholds | None = None,
) -> DriftResult:
    """Drift of the score distribution: one row ``feature = "score"``."""
    current = pl.DataFrame({"score": np.asarray(current_scores, dtype=np.float64)})
    reference = pl.DataFrame({"score": np.asarray(reference_scores, dtype=np.float64)})
    return drift_table(current, reference, ["score"], thresholds)


@dataclass(frozen=True)
class WindowDrift:
    """A window's feature drift table, its prediction drift row and the one Evidently snapshot
    (features and score together) they came from."""

    features: pl.DataFrame
    prediction: dict[str, float]
    snapshot: Any

    @property
    def drifted_share(self) -> float:
        return DriftResult(self.features, self.snapshot).drifted_share

    @property
    def max_psi(self) -> float:
        return DriftResult(self.features, self.snapshot).max_psi


def window_drift(
    current_features: pl.DataFrame,
    reference_features: pl.DataFrame,
    features: Sequence[str],
    current_scores: pl.Series,
    reference_scores: pl.Series,
    thresholds: DriftThresholds | None = None,
    score_column: str = "score_ensemble",
) -> WindowDrift:
    """Feature and prediction drift from ONE Evidently report: the score rows are stacked
    under the feature rows (each column's missing values are dropped before its test, so the
    feature rows do not count for the score and the other way round). The prediction dict
    holds ``psi, ks_pvalue, js_distance, drifted`` (NaN when the scores cannot be tested)."""
    current = pl.concat(
        [current_features.select(features), pl.DataFrame({score_column: current_scores})],
        how="diagonal_relaxed",
    )
    reference = pl.concat(
        [reference_features.select(features), pl.DataFrame({score_column: reference_scores})],
        how="diagonal_relaxed",
    )
    result = drift_table(current, reference, [*features, score_column], thresholds)
    scores = result.table.filter(pl.col("feature") == score_column)
    prediction = dict.fromkeys(("psi", "ks_pvalue", "js_distance", "drifted"), math.nan)
    if scores.height:
        row = scores.row(0, named=True)
        prediction = {k: float(row[k]) for k in prediction}
    return WindowDrift(
        result.table.filter(pl.col("feature") != score_column), prediction, result.snapshot
    )


def explanation_drift(current: pl.DataFrame, training: pl.DataFrame) -> pl.DataFrame:
    """Spearman rank correlation of per-feature mean |SHAP| between ``current`` and
    ``training`` (both ``model, feature, mean_abs_shap``), per model present in both, over the
    features both rank: ``model, features, rank_corr``. 1 = the same importance order."""
    joined = current.select("model", "feature", "mean_abs_shap").join(
        training.select("model", "feature", pl.col("mean_abs_shap").alias("training_shap")),
        on=["model", "feature"],
    )
    return (
        joined.group_by("model")
        .agg(
            pl.len().alias("features"),
            pl.corr("mean_abs_shap", "training_shap", method="spearman").alias("rank_corr"),
        )
        .filter(pl.col("features") >= 3)
        .with_columns(pl.col("rank_corr").cast(pl.Float64).fill_nan(None))
        .sort("model")
    )
