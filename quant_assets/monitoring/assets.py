"""``drift_report``: each session's drift of the live model against its training reference.

For a session ``d`` the *current window* is the last ``window_sessions`` sessions up to ``d``;
the *model in use* is the champion that scored ``d`` (``predictions.model_week``), and its
*training reference* is what that week's training saw:

* features: ``alpha158`` over the champion's whole training window (``alpha_models
  .training_start`` to ``training_end``), binned and cut into blocks of ``window_sessions``
  sessions for the null (:class:`~quant_assets.monitoring.drift.DriftReference`, built once per
  champion week of a run); the HTML report draws the most drifted features against
  ``reference_sessions`` sessions of it drawn at random (seed ``seed``), at most
  ``reference_rows`` rows;
* scores: that week's out-of-sample ensemble scores (``validation_scores``), the history
  ``ml_views`` calibrates today's scores on, so a drift here also says the calibration is being
  extrapolated. They are means over the CPCV paths, a little more concentrated than one
  model's score; the PSI thresholds (0.1 / 0.25) sit well above that floor;
* explanations: the champion week's ``shap_summary`` against the latest trained week's
  available before ``d``'s week (``model_week_for``), so a stale champion shows its drift;
* the live book: its realised daily returns from the stored live ``target_weights`` and
  ``raw_bars`` adj_close, the same measure ``risk_metrics`` uses for its drawdown.

One multi-asset, three assets, each materialized with its own metadata: ``drift_report``
(Evidently's HTML of the ``report_features`` most drifted features and the score under
``<data dir>/reports/drift/<date>.html``; its metadata drives the retraining sensor), ``feature_drift`` (one row per date and feature) and ``drift_summary`` (one
row per date and metric; the drift checks judge it).
"""

import dataclasses
import math
import typing
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl
import pydantic
from pydantic import Field

from quant_assets.features.assets import alpha158
from quant_assets.metadata import NOT_EVALUATED, date_range_metadata, preview
from quant_assets.models.assets import predictions
from quant_assets.models.windows import model_week_for
from quant_assets.monitoring.drift import (
    MIN_ROWS,
    DriftReference,
    DriftThresholds,
    FeatureDrift,
    Severity,
    evidently_report,
    explanation_drift,
    feature_drift,
    prediction_drift,
    reference_frames,
    reference_from_frames,
    severity_name,
    stored_severity,
)
from quant_assets.partitions import (
    daily_partitions,
    next_trading_day,
    partition_dates,
    shift_sessions,
    trading_sessions,
    weekly_partitions,
)
from quant_assets.queries import live_book_returns
from quant_core.features import ALPHA158_NAMES
from quant_core.metrics import SHARPE_WINDOWS, trailing_sharpe
from resources.settings import data_dir
from resources.storage import Store


def _config_of(thresholds: type[DriftThresholds]) -> type[dg.Config]:
    """A Dagster config class whose fields are the dataclass's, with the same defaults: the
    thresholds are listed once, in ``DriftThresholds``."""
    hints = typing.get_type_hints(thresholds)
    fields = {f.name: (hints[f.name], f.default) for f in dataclasses.fields(thresholds)}
    return pydantic.create_model("DriftThresholdsConfig", __base__=dg.Config, **fields)  # type: ignore[call-overload]


class DriftReportConfig(_config_of(DriftThresholds)):  # type: ignore[misc]
    """Window sizes, the reference sample and the severity thresholds (every field of
    ``DriftThresholds``, with its defaults)."""

    window_sessions: int = 21
    # the features to monitor, empty for all of Alpha158
    features: list[str] = Field(default_factory=list)
    # the reference's binning and its null's blocks (see quant_assets.monitoring.drift)
    bins: int = 20
    max_blocks: int = 200
    # the HTML report: its most drifted features, drawn against a seeded sample of the
    # training window (reference_sessions sessions, at most reference_rows rows)
    report_features: int = 6
    reference_sessions: int = 63
    reference_rows: int = 5000
    seed: int = 0

    def thresholds(self) -> DriftThresholds:
        return DriftThresholds(
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(DriftThresholds)}
        )


def drift_report_dir() -> Path:
    path = data_dir() / "reports" / "drift"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _model_in_use(store: Store, day: date) -> dict[str, object]:
    """The ``alpha_models`` row of the champion week that scored ``day``."""
    scored = store.read(
        "predictions", day, next_trading_day(day), columns=["model_week", "model_version"]
    )
    if scored.is_empty():
        raise dg.Failure(f"no predictions stored for {day}: materialize predictions first")
    week = scored.select(pl.col("model_week").max()).item()
    trained = store.read("alpha_models", where={"week": [week]})
    if trained.is_empty():
        raise dg.Failure(f"{day} was scored by the model of week {week}, not in alpha_models")
    return {**trained.row(0, named=True), "model_version": scored["model_version"][0]}


def _reference_features(
    store: Store, start: date, end: date, config: DriftReportConfig, columns: list[str]
) -> pl.DataFrame:
    """A seeded sample of ``alpha158``'s ``columns`` over ``[start, end]`` for the HTML report:
    ``reference_sessions`` sessions, then at most ``reference_rows`` rows."""
    sessions = trading_sessions(start, next_trading_day(end))
    rng = np.random.default_rng(config.seed)
    picked = sorted(
        sessions[i]
        for i in rng.choice(
            len(sessions), size=min(config.reference_sessions, len(sessions)), replace=False
        )
    )
    frame = store.read("alpha158", where={"date": picked}, columns=["date", *columns])
    if frame.height > config.reference_rows:
        frame = frame.sample(n=config.reference_rows, seed=config.seed)
    return frame


def _shap_rank_corr(store: Store, day: date, training_week: date) -> pl.DataFrame:
    """Per boosted model: Spearman correlation of the latest available week's SHAP importance
    (trained before ``day``'s week) with the champion training week's."""
    latest = model_week_for(day)
    weeks = store.read("shap_summary", None, latest + timedelta(days=1), columns=["week"])
    # the training week compared with itself proves nothing: not evaluated until a newer week
    if weeks.is_empty() or weeks["week"].max() == training_week:
        return pl.DataFrame(
            schema={"model": pl.String, "features": pl.UInt32, "rank_corr": pl.Float64}
        )
    current_week = weeks["week"].max()
    current = store.read("shap_summary", where={"week": [current_week]})
    training = store.read("shap_summary", where={"week": [training_week]})
    return explanation_drift(current, training).with_columns(
        pl.lit(current_week).alias("current_week")
    )


def _summary_rows(
    drift: FeatureDrift,
    prediction: dict[str, float],
    shap: pl.DataFrame,
    sharpe: dict[int, float],
    live_sessions: int,
    thresholds: DriftThresholds,
    sizes: dict[str, int],
) -> dict[str, float]:
    rank_corr = shap["rank_corr"].drop_nulls()
    shap_corr = float(rank_corr.mean()) if rank_corr.len() else math.nan  # type: ignore[arg-type]
    sharpe_floor = sharpe.get(thresholds.sharpe_window, math.nan)
    p_adjusted = drift.table["p_adjusted"].drop_nulls()
    values: dict[str, float] = {
        "drifted_share": drift.drifted_share,
        "drifted_features": float(drift.drifted),
        "tested_features": float(drift.tested),
        "feature_alarm": _stored_flag(drift.alarm),
        "min_p_adjusted": float(p_adjusted.min()) if p_adjusted.len() else math.nan,  # type: ignore[arg-type]
        "max_psi": drift.max_psi,
        "median_psi": float(drift.table["psi"].median() or math.nan),  # type: ignore[arg-type]
        "prediction_psi": prediction["psi"],
        "prediction_ks_pvalue": prediction["ks_pvalue"],
        "prediction_js_distance": prediction["js_distance"],
        "shap_rank_corr": shap_corr,
        **{
            f"shap_rank_corr_{row['model']}": float(row["rank_corr"])
            if row["rank_corr"] is not None
            else math.nan
            for row in shap.iter_rows(named=True)
        },
        **{f"sharpe_{w}": v for w, v in sharpe.items()},
        "live_sessions": float(live_sessions),
        "feature_severity": stored_severity(
            thresholds.feature_severity(drift.drifted, drift.tested)
        ),
        "prediction_severity": stored_severity(thresholds.prediction_severity(prediction["psi"])),
        "explanation_severity": stored_severity(thresholds.explanation_severity(shap_corr)),
        "sharpe_below_floor": _stored_flag(thresholds.sharpe_breached(sharpe_floor)),
        **{k: float(v) for k, v in sizes.items()},
    }
    return values


def _stored_flag(flag: bool | None) -> float:
    return math.nan if flag is None else float(flag)


def _flag_metadata(value: float) -> bool | str:
    """A stored flag for metadata: True/False, or NOT EVALUATED when it is NaN."""
    return bool(value) if math.isfinite(value) else NOT_EVALUATED


@dataclasses.dataclass(frozen=True)
class DayDrift:
    """One session's drift: the model in use, the per-feature table, the summary values, the
    features sorted by PSI and the saved HTML report."""

    day: date
    model: dict[str, object]
    features: pl.DataFrame
    summary: dict[str, float]
    worst: pl.DataFrame
    report: Path


def monitored_features(config: DriftReportConfig) -> list[str]:
    features = list(config.features) or list(ALPHA158_NAMES)
    unknown = sorted(set(features) - set(ALPHA158_NAMES))
    if unknown:
        raise dg.Failure(f"not Alpha158 features: {unknown}")
    return features


def _current_features(store: Store, first: date, day: date) -> pl.DataFrame:
    current = store.read("alpha158", first, next_trading_day(day))
    if current.is_empty():
        raise dg.Failure(f"no alpha158 stored in [{first}, {day}]: materialize alpha158")
    return current


def _training_window(model: dict[str, object]) -> tuple[date, date]:
    start, end = model["training_start"], model["training_end"]
    assert isinstance(start, date) and isinstance(end, date)
    return start, end


class DriftReferenceConfig(dg.Config):
    """The reference's shape: ``drift_report`` uses a stored reference only when its own
    settings are the same (otherwise it builds one in memory)."""

    window_sessions: int = 21
    bins: int = 20
    max_blocks: int = 200


def build_reference(
    store: Store, model: dict[str, object], features: list[str], shape: DriftReferenceConfig
) -> DriftReference:
    """The model's reference: its whole training window of ``alpha158`` binned, with the null
    of its ``window_sessions`` blocks."""
    start, end = _training_window(model)
    frame = store.read("alpha158", start, next_trading_day(end), columns=["date", *features])
    if frame.is_empty():
        raise dg.Failure(f"no alpha158 stored in the training window [{start}, {end}]")
    return DriftReference.build(
        frame, features, shape.window_sessions, shape.bins, shape.max_blocks
    )


def stored_reference(
    store: Store, model: dict[str, object], shape: DriftReferenceConfig
) -> DriftReference | None:
    """The model week's stored reference, None when there is none or it has another shape."""
    week = model["week"]
    bins = store.read("drift_reference", where={"week": [week]})
    null = store.read("drift_null", where={"week": [week]})
    if bins.is_empty() or null.is_empty():
        return None
    start, end = _training_window(model)
    reference = reference_from_frames(bins, null, start, end)
    same = reference.window_sessions == shape.window_sessions and reference.counts.shape[1] == (
        shape.bins
    )
    return reference if same else None


def _score_windows(
    store: Store, first: date, day: date, week: object, config: DriftReportConfig
) -> tuple[pl.Series, pl.Series]:
    """The ensemble scores of the current window and the champion week's out-of-sample ones
    (at most ``reference_rows``, seeded)."""
    scores = store.read("predictions", first, next_trading_day(day), columns=["score_ensemble"])
    reference = store.read("validation_scores", where={"week": [week]}, columns=["score_ensemble"])[
        "score_ensemble"
    ].drop_nulls()
    if reference.len() > config.reference_rows:
        reference = reference.sample(n=config.reference_rows, seed=config.seed)
    return scores["score_ensemble"], reference


SCORE_COLUMN = "score_ensemble"


def _save_html(
    store: Store,
    day: date,
    model: dict[str, object],
    current: pl.DataFrame,
    scores: tuple[pl.Series, pl.Series],
    columns: list[str],
    config: DriftReportConfig,
) -> Path:
    """Evidently's report of ``columns`` (the most drifted features) and the score, against a
    sample of the training window and the champion's out-of-sample scores."""
    start, end = _training_window(model)
    sample = _reference_features(store, start, end, config, columns)
    frames = [
        pl.concat([f.select(columns), pl.DataFrame({SCORE_COLUMN: s})], how="diagonal_relaxed")
        for f, s in ((current, scores[0]), (sample, scores[1]))
    ]
    drawable = [
        c
        for c in [*columns, SCORE_COLUMN]
        if all(
            f.select(pl.col(c).cast(pl.Float64).is_finite().sum()).item() >= MIN_ROWS
            for f in frames
        )
    ]
    path = drift_report_dir() / f"{day.isoformat()}.html"
    if drawable:
        evidently_report(frames[0], frames[1], drawable).save_html(str(path))
    else:
        path.write_text(
            f"<html><body>{day}: no column with {MIN_ROWS} values to draw</body></html>"
        )
    return path


def day_drift(
    store: Store,
    day: date,
    features: list[str],
    config: DriftReportConfig,
    references: dict[date, DriftReference],
    log: Any,
) -> DayDrift:
    """Measure ``day``'s window against the champion's training reference (built once per
    champion week of a run, kept in ``references``) and save the HTML report as
    ``<reports>/<day>.html``."""
    thresholds = config.thresholds()
    model = _model_in_use(store, day)
    week = model["week"]
    assert isinstance(week, date)
    first = shift_sessions(day, config.window_sessions - 1)
    current = _current_features(store, first, day)
    if week not in references:
        shape = DriftReferenceConfig(
            window_sessions=config.window_sessions, bins=config.bins, max_blocks=config.max_blocks
        )
        stored = stored_reference(store, model, shape)
        if stored is None:
            log.warning(
                f"no stored drift_reference of week {week} with this shape: building it from "
                "the training window (materialize drift_reference with the weekly training)"
            )
        references[week] = stored or build_reference(store, model, list(ALPHA158_NAMES), shape)
    reference = references[week].select(features)
    drift = feature_drift(current, reference, thresholds)
    scores = _score_windows(store, first, day, week, config)
    prediction = prediction_drift(scores[0], scores[1])
    realised = live_book_returns(store, day, max(SHARPE_WINDOWS))
    sizes = {
        "current_rows": current.height,
        "reference_blocks": reference.blocks,
        "current_scores": scores[0].len(),
        "reference_scores": scores[1].len(),
    }
    summary = _summary_rows(
        drift,
        prediction,
        _shap_rank_corr(store, day, week),
        trailing_sharpe(realised, SHARPE_WINDOWS),
        int(realised.size),
        thresholds,
        sizes,
    )
    worst = drift.worst()
    top = worst["feature"].head(config.report_features).to_list()
    path = _save_html(store, day, model, current, scores, top, config)
    table = drift.table.select(pl.lit(day).alias("date"), pl.all())
    return DayDrift(day, model, table, summary, worst, path)


def summary_frame(day: date, values: dict[str, float]) -> pl.DataFrame:
    """``drift_summary``'s rows of a day: one per metric, NaN stored as null."""
    return pl.DataFrame(
        {"date": day, "metric": list(values), "value": list(values.values())},
        schema={"date": pl.Date, "metric": pl.String, "value": pl.Float64},
    ).with_columns(pl.col("value").fill_nan(None))


def _finite(values: dict[str, float], key: str) -> float:
    value = values.get(key, math.nan)
    return float(value) if math.isfinite(value) else math.nan


def _drift_report_metadata(days: list[DayDrift], thresholds: DriftThresholds) -> dict[str, Any]:
    """The last session's figures: what the retraining sensor and the UI read."""
    last, model = days[-1].summary, days[-1].model
    # NaN (not evaluated) compares False: an unmeasured family never triggers a retraining
    severe = (
        last["feature_severity"] >= Severity.ERROR or last["prediction_severity"] >= Severity.ERROR
    )
    return {
        "days": len(days),
        "model_version": str(model["model_version"]),
        "model_week": str(model["week"]),
        "reference_window": f"{model['training_start']} to {model['training_end']}",
        **{
            key: _finite(last, key)
            for key in (
                "drifted_share",
                "min_p_adjusted",
                "max_psi",
                "prediction_psi",
                "prediction_ks_pvalue",
                "shap_rank_corr",
                *(f"sharpe_{w}" for w in SHARPE_WINDOWS),
            )
        },
        "live_sessions": int(last["live_sessions"]),
        "feature_alarm": _flag_metadata(last["feature_alarm"]),
        "reference_blocks": int(last["reference_blocks"]),
        "feature_severity": severity_name(last["feature_severity"]),
        "prediction_severity": severity_name(last["prediction_severity"]),
        "explanation_severity": severity_name(last["explanation_severity"]),
        "severe_drift": bool(severe),
        "sharpe_below_floor": _flag_metadata(last["sharpe_below_floor"]),
        "sharpe_floor": thresholds.sharpe_floor,
        "report": dg.MetadataValue.path(str(days[-1].report)),
        "reports": dg.MetadataValue.json({str(d.day): str(d.report) for d in days}),
        **date_range_metadata(pl.DataFrame({"date": [d.day for d in days]})),
        "most_drifted": preview(days[-1].worst, rows=15),
    }


def _feature_drift_metadata(table: pl.DataFrame, rows: int, days: list[DayDrift]) -> dict[str, Any]:
    last = days[-1].summary
    return {
        "rows": rows,
        "days": len(days),
        "tested_features": int(last["tested_features"]),
        "drifted_features": int(last["drifted_features"]),
        "drifted_share": _finite(last, "drifted_share"),
        "max_psi": _finite(last, "max_psi"),
        "median_psi": _finite(last, "median_psi"),
        **date_range_metadata(table),
        "most_drifted": preview(days[-1].worst, rows=15),
    }


def _worst(values: Iterable[float]) -> float:
    """The worst evaluated severity, NaN when no day was evaluated."""
    evaluated = [v for v in values if math.isfinite(v)]
    return max(evaluated) if evaluated else math.nan


def _drift_summary_metadata(table: pl.DataFrame, rows: int, days: list[DayDrift]) -> dict[str, Any]:
    severities = ("feature_severity", "prediction_severity", "explanation_severity")
    worst = {s: severity_name(_worst(d.summary[s] for d in days)) for s in severities}
    return {
        "rows": rows,
        "days": len(days),
        "metrics": table["metric"].n_unique(),
        **{f"worst_{s}": name for s, name in worst.items()},
        "sharpe_below_floor_days": sum(d.summary["sharpe_below_floor"] == 1.0 for d in days),
        **date_range_metadata(table),
        "last_day": preview(table.filter(pl.col("date") == days[-1].day), rows=40),
    }


# a day's champion is at most last week's model (``model_week_for``), as in ``predictions``
_PREVIOUS_WEEK = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
_MODEL = dg.AssetDep("alpha_model", partition_mapping=_PREVIOUS_WEEK)
_MODEL_SCORES = dg.AssetDep("validation_scores", partition_mapping=_PREVIOUS_WEEK)
_MODEL_SHAP = dg.AssetDep("shap_summary", partition_mapping=_PREVIOUS_WEEK)
_REFERENCE = [
    dg.AssetDep(key, partition_mapping=_PREVIOUS_WEEK) for key in ("drift_reference", "drift_null")
]


DRIFT_SPECS = [
    dg.AssetSpec(
        "drift_report",
        # the champion's week is reached through predictions (which maps days to weeks)
        deps=[alpha158, predictions, _MODEL, _MODEL_SCORES, *_REFERENCE],
        kinds={"evidently", "html"},
        description="Each session's drift report: the feature-drift alarm (block-calibrated, "
        "family-wise over the monitored Alpha158 features), prediction and explanation drift, "
        "and Evidently's HTML of the most drifted features and the score under "
        "``<data dir>/reports/drift/``. Its metadata (the last session's severities and live "
        "Sharpe) drives the retraining_trigger sensor.",
    ),
    dg.AssetSpec(
        "feature_drift",
        deps=[alpha158, predictions, _MODEL, *_REFERENCE],
        kinds={"polars", "numpy"},
        description="Per session and Alpha158 feature: PSI, binned Kolmogorov-Smirnov "
        "distance and Jensen-Shannon distance against the champion's training window, the "
        "p-value against the window's blocks, the family-wise adjusted p-value, and whether the "
        "feature drifted.",
    ),
    dg.AssetSpec(
        "drift_summary",
        deps=[
            alpha158,
            predictions,
            _MODEL,
            _MODEL_SCORES,
            _MODEL_SHAP,
            # the tables, not their multi-assets' other keys
            "target_weights",
            "raw_bars",
        ],
        kinds={"polars"},
        description="Per session and metric: the drifted feature share, prediction drift, "
        "SHAP rank correlation (explanation drift), the live book's rolling Sharpe on "
        "30/60/90 sessions and the severities 0/1/2 the drift checks judge.",
    ),
]


@dg.multi_asset(
    name="drift_report",
    group_name="monitoring",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    specs=DRIFT_SPECS,
)
def drift_report(
    context: dg.AssetExecutionContext, config: DriftReportConfig, store: Store
) -> Iterator[dg.MaterializeResult]:
    """Each session's drift of the live model: per-feature PSI, binned KS and Jensen-Shannon
    distance of the last ``window_sessions`` sessions of Alpha158 against the champion's training
    window, each tested against the PSI of the training window's own blocks of that length and
    adjusted across the features (the alarm: at least one drifted feature); the same measures
    on the ensemble score against the champion's out-of-sample scores; the Spearman correlation
    of SHAP importance rankings (explanation drift); the live book's rolling Sharpe on 30/60/90
    sessions; and Evidently's HTML of the most drifted features. Severity 0/1/2 (ok/warn/severe)
    per family is stored; the checks and the retraining sensor read it."""
    start, end = partition_dates(context)
    features = monitored_features(config)
    days: list[DayDrift] = []
    references: dict[date, DriftReference] = {}
    for day in trading_sessions(start, end):
        days.append(day_drift(store, day, features, config, references, context.log))
        last = days[-1].summary
        context.log.info(
            f"{day}: {last['drifted_features']:.0f}/{last['tested_features']:.0f} features "
            f"drifted (smallest family-wise p {last['min_p_adjusted']:.2g}), max PSI {last['max_psi']:.3f}, prediction PSI "
            f"{last['prediction_psi']:.3f}, SHAP rank corr {last['shap_rank_corr']:.2f}"
        )
    if not days:
        raise dg.Failure(f"no session in [{start}, {end})")
    feature_table = pl.concat([d.features for d in days])
    summary_table = pl.concat([summary_frame(d.day, d.summary) for d in days])
    feature_rows = store.write_partition("feature_drift", feature_table, start, end)
    summary_rows = store.write_partition("drift_summary", summary_table, start, end)
    yield dg.MaterializeResult(
        asset_key="drift_report", metadata=_drift_report_metadata(days, config.thresholds())
    )
    yield dg.MaterializeResult(
        asset_key="feature_drift",
        metadata=_feature_drift_metadata(feature_table, feature_rows, days),
    )
    yield dg.MaterializeResult(
        asset_key="drift_summary",
        metadata=_drift_summary_metadata(summary_table, summary_rows, days),
    )


DRIFT_REFERENCE_SPECS = [
    dg.AssetSpec(
        "drift_reference",
        deps=[alpha158, "alpha_model"],
        kinds={"polars", "numpy"},
        description="The week's drift reference: per Alpha158 feature, 20 bins cut at the "
        "quantiles of the model's training window and their counts (what drift_report "
        "compares each day's window with).",
    ),
    dg.AssetSpec(
        "drift_null",
        deps=[alpha158, "alpha_model"],
        kinds={"polars", "numpy"},
        description="The null of the week's drift tests: per block of window_sessions "
        "sessions of the training window and feature, the block's PSI against the rest of "
        "the window.",
    ),
]


@dg.multi_asset(
    name="drift_reference",
    group_name="monitoring",
    partitions_def=weekly_partitions,
    specs=DRIFT_REFERENCE_SPECS,
)
def drift_reference(
    context: dg.AssetExecutionContext, config: DriftReferenceConfig, store: Store
) -> Iterator[dg.MaterializeResult]:
    """Bins every Alpha158 feature of the week's training window (from its ``alpha_models``
    row) and measures the null of the daily drift tests on the window's own blocks, once a
    week, so that ``drift_report`` reads a few thousand rows instead of the whole window."""
    week = date.fromisoformat(context.partition_key)
    trained = store.read("alpha_models", where={"week": [week]})
    if trained.is_empty():
        raise dg.Failure(f"no alpha_models row for week {week}: materialize alpha_model first")
    model = trained.row(0, named=True)
    reference = build_reference(store, model, list(ALPHA158_NAMES), config)
    bins, null = reference_frames(reference, week)
    end = week + timedelta(days=7)
    bin_rows = store.write_partition("drift_reference", bins, week, end)
    null_rows = store.write_partition("drift_null", null, week, end)
    window = f"{reference.start} to {reference.end}"
    yield dg.MaterializeResult(
        asset_key="drift_reference",
        metadata={
            "rows": bin_rows,
            "week": str(week),
            "training_window": window,
            "features": len(reference.features),
            "bins": int(reference.counts.shape[1]),
            "rows_binned": int(reference.counts[0].sum()) if reference.features else 0,
        },
    )
    yield dg.MaterializeResult(
        asset_key="drift_null",
        metadata={
            "rows": null_rows,
            "week": str(week),
            "training_window": window,
            "blocks": reference.blocks,
            "block_sessions": reference.window_sessions,
            "disjoint_windows": round(reference.blocks / reference.overlap, 1),
            "median_null_psi": float(np.nanmedian(reference.null_psi))
            if reference.blocks
            else math.nan,
        },
    )
