"""Model assets: the weekly ``alpha_model`` multi-asset (CPCV, rank ensemble, MLflow registry
with a champion/challenger gate) with the tables it writes, each an asset (``alpha_model``: the
registered model and its ``alpha_models`` row; ``model_validation``, ``shap_summary``,
``validation_scores``), and the daily ``predictions`` of the last completed week's champion.

The weekly training does not search: it trains the configuration the ``model_selection`` asset
stored (:func:`stored_choice`, the latest cutoff on or before the week; the platform's defaults
before any selection): its features, label horizon, window, hyper-parameters, CPCV purge and
embargo, ensemble weighting and the neutralisation of the ensemble score."""

import dataclasses
import json
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
import polars as pl
from pydantic import Field

from quant_assets.features.assets import alpha158, factors
from quant_assets.features.labels import LabelNotAvailable, forward_excess_returns, horizon_date
from quant_assets.ingest.assets import universe
from quant_assets.metadata import date_range_metadata, preview
from quant_assets.models import registry
from quant_assets.models.provenance import CONFIG_ARTIFACT, provenance_tags
from quant_assets.models.selection import ModelChoice
from quant_assets.models.training import (
    ENSEMBLE,
    MODEL_NAMES,
    TrainingOutcome,
    TrainingSpec,
    mean_rank_ic,
    train_alpha,
)
from quant_assets.models.windows import TrainingWindow, training_window
from quant_assets.partitions import (
    daily_partitions,
    next_trading_day,
    partition_dates,
    shift_sessions,
    weekly_partitions,
)
from quant_assets.queries import benchmark_ticker
from quant_core.conventions import (
    CPCV_FOLDS,
    CPCV_TEST_FOLDS,
    LABEL_HORIZON_SESSIONS,
    TRADING_DAYS,
)
from quant_core.features import ALPHA158_NAMES, FACTOR_NAMES
from resources.mlflow import ModelRegistry
from resources.storage import Store
from resources.storage.store import table_schema

# sessions of Alpha158 history read before a scored day (the TFT's encoder window and margin)
PREDICTION_LOOKBACK_SESSIONS = 60


class AlphaModelConfig(dg.Config):
    """Training parameters (the UI's launchpad shows them). ``None`` keeps the stored model
    choice's value (the purge and embargo of its label horizon) or the estimator's default.
    Sizes are in sessions."""

    window_sessions: int = 756
    min_training_sessions: int = 120
    models: list[str] = Field(default_factory=lambda: list(MODEL_NAMES))
    n_folds: int = CPCV_FOLDS
    n_test_folds: int = CPCV_TEST_FOLDS
    purged_size: int | None = None
    embargo_size: int | None = None
    random_state: int = 0
    lightgbm_n_estimators: int | None = None
    catboost_iterations: int | None = None
    tft_max_epochs: int | None = None
    tft_limit_train_batches: int | None = None
    # the gate: sessions, labelled by the end of the window, that the champion never saw
    gate_min_sessions: int = 20
    gate_min_improvement: float = 0.0
    # labelled sessions of out-of-sample scores kept in validation_scores (calibration history)
    validation_score_sessions: int = TRADING_DAYS

    def spec(self, choice: ModelChoice | None = None) -> TrainingSpec:
        """The training of ``choice`` (default: the platform's defaults): its columns, purge,
        embargo, weighting, neutralisation and boosted models' parameters, overlaid with this
        config's explicit values."""
        choice = choice or ModelChoice()

        def given(**params: Any) -> dict[str, Any]:
            return {k: v for k, v in params.items() if v is not None}

        purge = choice.purge if self.purged_size is None else self.purged_size
        if purge < choice.horizon:
            raise dg.Failure(
                f"purged_size {purge} < the label horizon {choice.horizon}: training labels "
                "would overlap the test folds"
            )
        seed = self.random_state
        return TrainingSpec(
            models=tuple(self.models),
            n_folds=self.n_folds,
            n_test_folds=self.n_test_folds,
            purged_size=purge,
            embargo_size=choice.embargo if self.embargo_size is None else self.embargo_size,
            columns=tuple(choice.columns),
            weighting=choice.weighting,
            neutralisation=choice.neutralisation,
            lightgbm_params={
                **choice.estimator("lightgbm").get_params(),
                **given(n_estimators=self.lightgbm_n_estimators, random_state=seed),
            },
            catboost_params={
                **choice.estimator("catboost").get_params(),
                **given(iterations=self.catboost_iterations, random_state=seed),
            },
            tft_params=given(
                max_epochs=self.tft_max_epochs,
                limit_train_batches=self.tft_limit_train_batches,
                random_state=seed,
            ),
        )


def _panel(frame: pl.DataFrame) -> pd.DataFrame:
    return frame.to_pandas().set_index(["date", "ticker"]).sort_index()


def horizon_labels(
    store: Store,
    start: date | None,
    end: date,
    horizons: tuple[int, ...],
    realised_by: date | None = None,
) -> dict[int, pl.DataFrame]:
    """Per horizon, the raw forward excess return (ticker, date, horizon_date, label) of the
    sessions ``start <= d < end`` whose horizon session's bars are stored (and on or before
    ``realised_by``: no bar after it is read), from the stored adjusted closes."""
    last = shift_sessions(end, 1)
    bars_end = horizon_date(last, max(horizons))
    if realised_by is not None:
        bars_end = min(bars_end, realised_by)
    bars = store.read(
        "raw_bars", start, bars_end + timedelta(days=1), columns=["ticker", "date", "adj_close"]
    )
    empty = pl.DataFrame(
        schema={"ticker": pl.String, "date": pl.Date, "horizon_date": pl.Date, "label": pl.Float64}
    )
    if bars.is_empty():
        return dict.fromkeys(horizons, empty)
    benchmark, first = benchmark_ticker(store), bars["date"].min()
    assert isinstance(first, date)
    out = {}
    for h in horizons:
        try:
            frame = forward_excess_returns(bars, benchmark, start or first, end, horizon=h)
        except LabelNotAvailable:
            # no session of the range has its horizon stored yet
            frame = empty
        out[h] = frame.select(empty.columns)
    return out


def training_panel(
    store: Store, window: TrainingWindow, horizon: int = LABEL_HORIZON_SESSIONS
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Alpha158 and the stored factors (null where not stored) over the window, the label over
    ``horizon`` and the stored 5-session label, each realised by the window's last session
    (NaN otherwise)."""
    features = store.read("alpha158", window.start, next_trading_day(window.end)).join(
        store.read("factors", window.start, next_trading_day(window.end)),
        on=["ticker", "date"],
        how="left",
    )
    realised = (
        store.read(
            "labels",
            window.start,
            next_trading_day(window.last_label_day),
            columns=["ticker", "date", "horizon_date", "label"],
        )
        # the window's own rule, whatever a wider labels table holds
        .filter(pl.col("horizon_date") <= window.end)
        .select("ticker", "date", "label")
    )
    frame = features.join(realised, on=["ticker", "date"], how="left")
    if horizon != LABEL_HORIZON_SESSIONS:
        trained = horizon_labels(
            store, window.start, next_trading_day(window.end), (horizon,), window.end
        )[horizon]
        frame = frame.join(
            trained.select("ticker", "date", pl.col("label").alias("trained_label")),
            on=["ticker", "date"],
            how="left",
        )
    panel = _panel(frame)
    y5 = panel["label"]
    y = panel["trained_label"].rename("label") if horizon != LABEL_HORIZON_SESSIONS else y5
    return panel[[*ALPHA158_NAMES, *FACTOR_NAMES]], y, y5


def sector_map(store: Store) -> pd.Series:
    members = store.read("universe", columns=["ticker", "sector"])
    return members.to_pandas().set_index("ticker")["sector"]


def stored_choice(
    store: Store, day: date
) -> tuple[ModelChoice, dict[str, float] | None, date | None]:
    """The chosen row of the stored model selection with the latest cutoff on or before
    ``day``: its choice, its validated ensemble weights and its cutoff; the platform's defaults
    ``(ModelChoice(), None, None)`` when no selection is stored for then."""
    chosen = store.read(
        "model_selection",
        None,
        day + timedelta(days=1),
        columns=["cutoff", "choice", "weights"],
        where={"chosen": [True]},
    )
    if chosen.is_empty():
        return ModelChoice(), None, None
    row = chosen.sort("cutoff").row(-1, named=True)
    weights = json.loads(row["weights"]) if row["weights"] else None
    return ModelChoice.from_json(row["choice"]), weights, row["cutoff"]


def choice_window(
    store: Store, week: date, window_sessions: int, choice: ModelChoice
) -> TrainingWindow:
    """The week's training window: the trailing ``window_sessions`` sessions, or for an
    expanding (or recency-weighted) choice every stored Alpha158 session up to the week's end."""
    window = training_window(week, window_sessions)
    bounds = store.date_bounds("alpha158")
    if choice.window == "trailing" or bounds is None or bounds[0] > window.end:
        return window
    return dataclasses.replace(window, start=bounds[0])


def _version_tags(window: TrainingWindow, run_id: str) -> dict[str, str]:
    return {
        "week": window.week.isoformat(),
        "training_start": window.start.isoformat(),
        "training_end": window.end.isoformat(),
        "last_label_day": window.last_label_day.isoformat(),
        "mlflow_run_id": run_id,
    }


def _judge(
    config: AlphaModelConfig,
    outcome: TrainingOutcome,
    X: pd.DataFrame,
    y: pd.Series,
    champion: Any,
) -> registry.GateDecision:
    """The gate on the labelled sessions after the champion's training window: the candidate's
    out-of-sample CPCV ensemble scores against the champion's scores on the same rows."""
    if champion is None:
        return registry.gate(None, None, has_champion=False)
    champion_end = date.fromisoformat(champion.tags["training_end"])
    dates = y.index.get_level_values("date")
    unseen = (dates > pd.Timestamp(champion_end)) & y.notna().to_numpy()
    sessions = int(pd.Index(dates[unseen]).nunique())
    if sessions < config.gate_min_sessions:
        return dataclasses.replace(
            registry.gate(None, None, has_champion=True),
            reason=(
                f"only {sessions} labelled sessions after the champion's training end "
                f"{champion_end} (< {config.gate_min_sessions}): not shadowed"
            ),
        )
    first_unseen = dates[unseen].min().date()
    history = dates >= pd.Timestamp(shift_sessions(first_unseen, PREDICTION_LOOKBACK_SESSIONS))
    champion_bundle = registry.load_bundle(champion.version)
    champion_scores = champion_bundle.predict(X[history])["score_ensemble"]
    rows = y.index[unseen]
    candidate = mean_rank_ic(outcome.ensemble_scores.reindex(rows), y[rows])
    incumbent = mean_rank_ic(champion_scores.reindex(rows), y[rows])
    return registry.gate(candidate, incumbent, True, config.gate_min_improvement)


def validation_scores(outcome: TrainingOutcome, y: pd.Series, sessions: int) -> pl.DataFrame:
    """The ensemble's out-of-sample CPCV score and the realised label of the last ``sessions``
    labelled sessions (ticker, date, score_ensemble, label)."""
    frame = pd.concat([outcome.ensemble_scores, y.rename("label")], axis=1, join="inner")
    frame = frame[frame["label"].notna()]
    dates = frame.index.get_level_values("date")
    kept = frame[dates >= dates.unique().sort_values()[-sessions:][0]]
    return pl.from_pandas(kept.reset_index()).with_columns(pl.col("date").cast(pl.Date))


def _log_validation(tracker: Any, outcome: TrainingOutcome) -> dict[str, float]:
    """Per-path metrics (step = path) and the distribution summary; returns the headline
    figures (mean over paths) shown in the asset's metadata."""
    headline: dict[str, float] = {}
    for name, result in outcome.validation.items():
        for path, row in result.paths.iterrows():
            tracker.log_metrics(
                {
                    f"{name}_path_ic": float(row["ic_mean"]),
                    f"{name}_path_rank_ic": float(row["rank_ic_mean"]),
                    f"{name}_path_icir": float(row["icir"]),
                    f"{name}_path_rank_icir": float(row["rank_icir"]),
                },
                step=int(str(path)),
            )
        for metric in ("ic_mean", "rank_ic_mean", "icir", "rank_icir"):
            values = result.paths[metric].to_numpy(np.float64)
            tracker.log_metrics(
                {
                    f"{name}_{metric}_mean": float(np.nanmean(values)),
                    f"{name}_{metric}_p05": float(np.nanquantile(values, 0.05)),
                    f"{name}_{metric}_p95": float(np.nanquantile(values, 0.95)),
                }
            )
            headline[f"{name}_{metric}"] = float(np.nanmean(values))
    return headline


def _log_artifacts(tracker: Any, outcome: TrainingOutcome) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for name, importance in outcome.importances.items():
            importance.rename("importance").rename_axis("feature").to_csv(
                root / f"importance_{name}.csv"
            )
        outcome.shap_summary.write_csv(root / "shap_summary.csv")
        outcome.path_table().write_csv(root / "cpcv_paths.csv")
        tracker.log_artifacts(str(root), artifact_path="validation")
        if outcome.tft is not None:
            interpretation = root / "tft_interpretation"
            outcome.tft.save_interpretation(interpretation)
            tracker.log_artifacts(str(interpretation), artifact_path="tft_interpretation")


@dataclasses.dataclass(frozen=True)
class TrainedWeek:
    """What a week's training produced: the outcome, its MLflow run and headline metrics, the
    gate's decision, the registered version and the champion after the gate."""

    window: TrainingWindow
    outcome: TrainingOutcome
    run_id: str
    experiment_id: str
    headline: dict[str, float]
    decision: registry.GateDecision
    version: str
    champion_version: str
    champion_tags: dict[str, str]
    choice: ModelChoice
    cutoff: date | None


def labelled_panel(
    store: Store, window: TrainingWindow, min_sessions: int, horizon: int = LABEL_HORIZON_SESSIONS
) -> tuple[pd.DataFrame, pd.Series, pd.Series, int]:
    """``training_panel`` and its number of sessions with a realised training label; fails
    below ``min_sessions``."""
    X, y, y5 = training_panel(store, window, horizon)
    labelled_sessions = int(pd.Index(y.dropna().index.get_level_values("date")).nunique())
    if labelled_sessions < min_sessions:
        raise dg.Failure(
            f"week {window.week}: {labelled_sessions} sessions with realised labels in "
            f"[{window.start}, {window.last_label_day}], fewer than min_training_sessions="
            f"{min_sessions}: materialize alpha158 and labels for the window first"
        )
    return X, y, y5, labelled_sessions


def _log_params(
    tracker: Any,
    config: AlphaModelConfig,
    spec: TrainingSpec,
    window: TrainingWindow,
    X: pd.DataFrame,
    y: pd.Series,
    choice: tuple[ModelChoice, date | None],
) -> None:
    tracker.log_params(
        {
            **{k: v for k, v in config.model_dump().items() if k != "models"},
            "models": ",".join(spec.models),
            "purged_size": spec.purged_size,
            "embargo_size": spec.embargo_size,
            "model_choice": choice[0].to_json(),
            "selection_cutoff": _cutoff_text(choice[1]),
            "week": window.week.isoformat(),
            "training_start": window.start.isoformat(),
            "training_end": window.end.isoformat(),
            "last_label_day": window.last_label_day.isoformat(),
            "labelled_rows": int(y.notna().sum()),
            "tickers": int(X.index.get_level_values("ticker").nunique()),
        }
    )


def _register(
    client: mlflow.MlflowClient,
    outcome: TrainingOutcome,
    window: TrainingWindow,
    run_id: str,
    decision: registry.GateDecision,
    provenance: dict[str, str],
) -> str:
    """Log the bundle as a new registered version, tag it with its window and what it was
    trained on (:mod:`quant_assets.models.provenance`) and give it the gate's alias; returns
    the version."""
    version = str(registry.log_bundle(outcome.bundle).version)
    for key, value in {**_version_tags(window, run_id), **provenance}.items():
        client.set_model_version_tag(registry.REGISTERED_MODEL, version, key, value)
    if decision.alias in (registry.CHAMPION, registry.CHALLENGER):
        registry.set_alias(client, version, decision.alias)
    return version


def _cutoff_text(cutoff: date | None) -> str:
    return str(cutoff) if cutoff else "none stored: the platform's defaults"


def train_and_register(
    tracker: Any,
    config: AlphaModelConfig,
    window: TrainingWindow,
    panel: tuple[pd.DataFrame, pd.Series, pd.Series],
    sectors: pd.Series,
    choice: tuple[ModelChoice, date | None] = (ModelChoice(), None),
    canary: str | None = None,
) -> TrainedWeek:
    """Train ``choice`` (the stored model choice and its cutoff) on ``panel`` (features, the
    training label, the 5-session label every IC and the gate are measured against), log to
    MLflow, judge against the champion, register (a passing version is the challenger, or
    ``held`` while ``canary`` says a canary is in progress): the MLflow run is cleaned up when
    any step fails."""
    X, y, y5 = panel
    try:
        provenance = provenance_tags(X, y)
        spec = config.spec(choice[0])
        outcome = train_alpha(X, y, sectors, spec, window.start, window.end, evaluation_label=y5)
        run = tracker.active_run().info
        _log_params(tracker, config, spec, window, X, y, choice)
        tracker.set_tags(provenance)
        tracker.log_dict(config.model_dump(mode="json"), CONFIG_ARTIFACT)
        headline = _log_validation(tracker, outcome)
        _log_artifacts(tracker, outcome)
        client = mlflow.MlflowClient()
        champion = registry.champion_version(client)
        decision = _judge(config, outcome, X, y5, champion)
        if decision.alias == registry.CHALLENGER and canary is not None:
            decision = dataclasses.replace(
                decision,
                alias=registry.HELD,
                reason=f"{decision.reason}; not shadowed: {canary}",
            )
        version = _register(client, outcome, window, run.run_id, decision, provenance)
        tracker.set_tags({"gate": decision.alias, "gate_reason": decision.reason})
    except Exception:
        tracker.cleanup_on_error()
        raise
    if decision.alias == registry.CHAMPION:
        champion_version, champion_tags = version, _version_tags(window, run.run_id)
    else:
        assert champion is not None  # only the first version has no champion to lose to
        champion_version, champion_tags = str(champion.version), dict(champion.tags)
    return TrainedWeek(
        window=window,
        outcome=outcome,
        run_id=run.run_id,
        experiment_id=run.experiment_id,
        headline=headline,
        decision=decision,
        version=version,
        champion_version=champion_version,
        champion_tags=champion_tags,
        choice=choice[0],
        cutoff=choice[1],
    )


def canary_in_progress(store: Store) -> str | None:
    """What the latest ``model_deployments`` row says of a running canary (None: none runs)."""
    bounds = store.date_bounds("model_deployments")
    if bounds is None:
        return None
    latest = store.read("model_deployments", bounds[1], bounds[1] + timedelta(days=1)).row(
        0, named=True
    )
    if not str(latest["stage"]).startswith(registry.CANARY):
        return None
    return (
        f"version {latest['challenger_version']} is in {latest['stage']} since "
        f"{latest['canary_start']}"
    )


def alpha_models_row(trained: TrainedWeek) -> pl.DataFrame:
    """The week's ``alpha_models`` row: its version, alias and the champion after the gate."""
    window, decision = trained.window, trained.decision
    return pl.DataFrame(
        {
            "week": [window.week],
            "registered_model": [registry.REGISTERED_MODEL],
            "version": [trained.version],
            "alias": [decision.alias],
            "champion_version": [trained.champion_version],
            "champion_week": [date.fromisoformat(trained.champion_tags["week"])],
            "champion_training_end": [date.fromisoformat(trained.champion_tags["training_end"])],
            "training_start": [window.start],
            "training_end": [window.end],
            "mlflow_run_id": [trained.run_id],
            "gate_metric": [decision.candidate_metric],
            "champion_gate_metric": [decision.champion_metric],
            "ensemble_weights": [json.dumps(trained.outcome.bundle.weights)],
        }
    )


def week_tables(trained: TrainedWeek, y: pd.Series, score_sessions: int) -> dict[str, pl.DataFrame]:
    """The four tables of the week, in write order: ``alpha_models`` last, so predictions
    never see a registered week whose validation tables are missing."""
    week = pl.lit(trained.window.week).alias("week")
    outcome = trained.outcome
    return {
        "model_validation": outcome.path_table().with_columns(week),
        "shap_summary": outcome.shap_summary.with_columns(week),
        "validation_scores": validation_scores(outcome, y, score_sessions).with_columns(week),
        "alpha_models": alpha_models_row(trained),
    }


def write_week(store: Store, week: date, tables: dict[str, pl.DataFrame]) -> dict[str, int]:
    """Replace the week's rows of each table; returns the rows written per table."""
    end = week + timedelta(days=7)
    return {name: store.write_partition(name, frame, week, end) for name, frame in tables.items()}


def _alpha_model_metadata(
    trained: TrainedWeek, y: pd.Series, labelled_sessions: int, rows: int
) -> dict[str, Any]:
    window, outcome, run_id = trained.window, trained.outcome, trained.run_id
    return {
        "rows": rows,
        "week": str(window.week),
        "model_choice": dg.MetadataValue.json(dataclasses.asdict(trained.choice)),
        "selection_cutoff": _cutoff_text(trained.cutoff),
        "training_start": str(window.start),
        "training_end": str(window.end),
        "labelled_sessions": labelled_sessions,
        "labelled_rows": int(y.notna().sum()),
        **{k: float(v) for k, v in trained.headline.items()},
        "ensemble_weights": dg.MetadataValue.json(outcome.bundle.weights),
        "fit_seconds": dg.MetadataValue.json({k: round(v, 2) for k, v in outcome.seconds.items()}),
        "mlflow_run_id": run_id,
        "mlflow_run": dg.MetadataValue.url(
            f"{mlflow.get_tracking_uri()}#/experiments/{trained.experiment_id}/runs/{run_id}"
        ),
        "model_version": f"{registry.REGISTERED_MODEL}/{trained.version}",
        "alias": trained.decision.alias,
        "champion_version": f"{registry.REGISTERED_MODEL}/{trained.champion_version}",
        "gate": trained.decision.reason,
        "top_shap_features": preview(outcome.shap_summary.sort("importance_rank").head(10)),
        "cpcv_paths": preview(outcome.path_table().filter(pl.col("model") == ENSEMBLE), rows=20),
    }


def _model_validation_metadata(frame: pl.DataFrame, rows: int, week: date) -> dict[str, Any]:
    ensemble = frame.filter(pl.col("model") == ENSEMBLE)
    figures = {
        f"ensemble_{metric}_{name}": float(value)
        for metric in ("rank_ic", "rank_icir")
        for name, value in (
            ("mean", ensemble[metric].mean()),
            ("p05", ensemble[metric].quantile(0.05)),
            ("p95", ensemble[metric].quantile(0.95)),
        )
        if isinstance(value, float)
    }
    return {
        "rows": rows,
        "week": str(week),
        "models": sorted(frame["model"].unique().to_list()),
        "paths": ensemble.height,
        **figures,
        "preview": preview(frame.sort("model", "path"), rows=20),
    }


def _shap_summary_metadata(frame: pl.DataFrame, rows: int, week: date) -> dict[str, Any]:
    return {
        "rows": rows,
        "week": str(week),
        "models": sorted(frame["model"].unique().to_list()),
        "features": frame["feature"].n_unique(),
        "top_features": preview(frame.sort("importance_rank", "model").head(10)),
    }


def _validation_scores_metadata(frame: pl.DataFrame, rows: int, week: date) -> dict[str, Any]:
    panel = _panel(frame.drop("week")) if rows else pd.DataFrame()
    rank_ic = mean_rank_ic(panel["score_ensemble"], panel["label"]) if rows else None
    return {
        "rows": rows,
        "week": str(week),
        "sessions": frame["date"].n_unique(),
        "tickers": frame["ticker"].n_unique(),
        "rank_ic": float(rank_ic) if rank_ic is not None else float("nan"),
        **date_range_metadata(frame),
    }


_TRAINING_INPUTS: list[dg.AssetsDefinition | str] = [
    alpha158,
    factors,
    "labels",
    "raw_bars",
    universe,
    "model_selection",
]


ALPHA_MODEL_SPECS = [
    dg.AssetSpec(
        "alpha_model",
        deps=_TRAINING_INPUTS,
        kinds={"lightgbm", "catboost", "pytorch", "mlflow"},
        description="The week's alpha model: LightGBM, CatBoost and a TFT trained as the "
        "stored model selection chose (features, label horizon, window, hyper-parameters; "
        "the platform's defaults before any selection: the trailing window of Alpha158 and "
        "the 5-session label), validated with combinatorial purged CV, combined into a rank "
        "ensemble (weighted by validation Rank ICIR by default), logged and registered in "
        "MLflow; its ``alpha_models`` row. The version becomes "
        "``challenger`` (shadowed, then a canary: model_deployments) only if it beats the "
        "champion on sessions that one never saw; otherwise it is ``rejected`` (recorded, "
        "not shadowed). Only the first version is champion directly.",
    ),
    dg.AssetSpec(
        "model_validation",
        deps=_TRAINING_INPUTS,
        kinds={"polars"},
        description="The week's CPCV validation: IC, Rank IC and their IRs per model "
        "(and the ensemble) and path.",
    ),
    dg.AssetSpec(
        "shap_summary",
        deps=_TRAINING_INPUTS,
        kinds={"polars"},
        description="The week's mean |SHAP| and importance rank per boosted model and "
        "feature (explanation drift compares them).",
    ),
    dg.AssetSpec(
        "validation_scores",
        deps=_TRAINING_INPUTS,
        kinds={"polars"},
        description="The week's out-of-sample ensemble score (mean over the CPCV paths) "
        "and realised label on the window's last labelled sessions: the calibration "
        "history of ml_views and the score reference of drift_report.",
    ),
]


@dg.multi_asset(
    name="alpha_model",
    group_name="models",
    partitions_def=weekly_partitions,
    required_resource_keys={"store", "mlflow"},
    specs=ALPHA_MODEL_SPECS,
)
def alpha_model(
    context: dg.AssetExecutionContext, config: AlphaModelConfig
) -> Iterator[dg.MaterializeResult]:
    """The week's training: load the labelled panel, train and validate, log to MLflow, gate
    against the champion, register, then write the week's four tables, each materialized
    with its own metadata (``alpha_model`` first: its row in ``alpha_models``)."""
    store: Store = context.resources.store
    week = date.fromisoformat(context.partition_key)
    choice, _, cutoff = stored_choice(store, week)
    window = choice_window(store, week, config.window_sessions, choice)
    X, y, y5, labelled_sessions = labelled_panel(
        store, window, config.min_training_sessions, choice.horizon
    )
    trained = train_and_register(
        context.resources.mlflow,
        config,
        window,
        (X, y, y5),
        sector_map(store),
        (choice, cutoff),
        canary_in_progress(store),
    )
    tables = week_tables(trained, y5, config.validation_score_sessions)
    rows = write_week(store, window.week, tables)
    context.log.info(
        f"alpha_model {window.week}: version {trained.version} {trained.decision.reason}"
    )
    yield dg.MaterializeResult(
        asset_key="alpha_model",
        metadata=_alpha_model_metadata(trained, y, labelled_sessions, rows["alpha_models"]),
    )
    for name, describe in (
        ("model_validation", _model_validation_metadata),
        ("shap_summary", _shap_summary_metadata),
        ("validation_scores", _validation_scores_metadata),
    ):
        yield dg.MaterializeResult(
            asset_key=name, metadata=describe(tables[name], rows[name], window.week)
        )


def deployments_of(store: Store, start: date, end: date, sessions: list[date]) -> pl.DataFrame:
    """The ``model_deployments`` rows of ``sessions`` (every one must have its row)."""
    rows = store.read("model_deployments", start, end)
    missing = sorted(set(sessions) - set(rows["date"].to_list()))
    if missing:
        raise dg.Failure(
            f"no model_deployments row for {len(missing)} sessions (first {missing[0]}): "
            "materialize model_deployments for them first"
        )
    return rows.filter(pl.col("date").is_in(sessions)).sort("date")


def _scored_sessions(store: Store, start: date, end: date) -> tuple[pl.DataFrame, list[date]]:
    first = shift_sessions(start, PREDICTION_LOOKBACK_SESSIONS)
    features = store.read("alpha158", first, end)
    sessions = features.filter(pl.col("date") >= start)["date"].unique().sort().to_list()
    if not sessions:
        raise dg.Failure(f"no alpha158 stored in [{start}, {end}): materialize alpha158 first")
    return features, sessions


def score_versions(
    store: Store,
    features: pl.DataFrame,
    days_by_version: dict[str, list[date]],
    start: date,
    end: date,
) -> pl.DataFrame:
    """Each version's scores of its days (``predictions``' columns), one scoring call per
    version over its days and their lookback (the TFT's encoder); a day is never scored by a
    model whose training window reaches it."""
    trained = store.read("alpha_models", where={"version": sorted(days_by_version)})
    rows = {row["version"]: row for row in trained.iter_rows(named=True)}
    for version, days in days_by_version.items():
        if version not in rows:
            raise dg.Failure(f"model version {version} has no alpha_models row")
        if rows[version]["training_end"] >= days[0]:
            raise dg.Failure(
                f"{days[0]}: model {version} was trained on data up to {days[0]} or later"
            )
    bundles = {version: registry.load_bundle(version) for version in days_by_version}
    needed = {c for bundle in bundles.values() for c in bundle.columns}
    first = shift_sessions(start, PREDICTION_LOOKBACK_SESSIONS)
    if needed & set(FACTOR_NAMES):
        stored = store.read("factors", first, end)
        if stored.filter(pl.col("date") >= start).is_empty():
            raise dg.Failure(
                f"the models of {sorted(bundles)} read the factors and none are stored in "
                f"[{start}, {end}): materialize factors first"
            )
        features = features.join(stored, on=["ticker", "date"], how="left")
    panel = _panel(features)
    dates = panel.index.get_level_values("date")
    frames = []
    for version, days in days_by_version.items():
        history = panel[
            (dates >= pd.Timestamp(shift_sessions(days[0], PREDICTION_LOOKBACK_SESSIONS)))
            & (dates <= pd.Timestamp(days[-1]))
        ]
        scores = bundles[version].predict(history).reset_index()
        row = rows[version]
        frames.append(
            pl.from_pandas(scores)
            .with_columns(pl.col("date").cast(pl.Date))
            .filter(pl.col("date").is_in(days))
            .with_columns(
                pl.lit(version).alias("model_version"),
                pl.lit(row["week"]).alias("model_week"),
                pl.lit(row["training_end"]).alias("training_end"),
            )
        )
    frame = pl.concat(frames, how="diagonal_relaxed")
    for name in MODEL_NAMES:
        if f"score_{name}" not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias(f"score_{name}"))
    return frame


def _days_by_version(deployments: pl.DataFrame, column: str) -> dict[str, list[date]]:
    days: dict[str, list[date]] = {}
    for day, version in deployments.select("date", column).drop_nulls().iter_rows():
        days.setdefault(version, []).append(day)
    return days


def _predictions_metadata(frame: pl.DataFrame, written: int) -> dict[str, Any]:
    if frame.is_empty():
        return {"rows": written}
    return {
        "rows": written,
        "tickers": frame["ticker"].n_unique(),
        "model_versions": sorted(frame["model_version"].unique().to_list()),
        "score_ensemble_mean": float(frame.select(pl.col("score_ensemble").mean()).item() or 0.0),
        **date_range_metadata(frame),
        "preview": preview(frame.sort("score_ensemble", descending=True)),
    }


_SCORING_DEPS: list[dg.AssetsDefinition | str] = [alpha158, factors, "model_deployments"]


@dg.asset(
    group_name="models",
    kinds={"polars", "mlflow"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=_SCORING_DEPS,
)
def predictions(
    context: dg.AssetExecutionContext, store: Store, model_registry: ModelRegistry
) -> dg.MaterializeResult:
    """Each stock's score per session from the session's champion (``model_deployments``):
    one column per model and the rank ensemble (neutralised as the model's stored selection
    chose). A day never uses a model whose training window reaches that day."""
    start, end = partition_dates(context)
    features, sessions = _scored_sessions(store, start, end)
    deployments = deployments_of(store, start, end, sessions)
    model_registry.activate()
    days = _days_by_version(deployments, "champion_version")
    frame = score_versions(store, features, days, start, end)
    written = store.write_partition("predictions", frame, start, end)
    return dg.MaterializeResult(metadata=_predictions_metadata(frame, written))


@dg.asset(
    group_name="models",
    kinds={"polars", "mlflow"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=_SCORING_DEPS,
)
def shadow_predictions(
    context: dg.AssetExecutionContext, store: Store, model_registry: ModelRegistry
) -> dg.MaterializeResult:
    """The challenger's scores of each session it shadows or runs a canary on
    (``model_deployments``), as ``predictions`` scores the champion's; none on sessions
    without a challenger. Never traded by themselves: they make the shadow book."""
    start, end = partition_dates(context)
    features, sessions = _scored_sessions(store, start, end)
    deployments = deployments_of(store, start, end, sessions)
    days = _days_by_version(deployments, "challenger_version")
    frame = pl.DataFrame(schema=table_schema("shadow_predictions").polars_schema)
    if days:
        model_registry.activate()
        frame = score_versions(store, features, days, start, end)
    written = store.write_partition("shadow_predictions", frame, start, end)
    return dg.MaterializeResult(
        metadata=_predictions_metadata(frame, written)
        | {"shadowed_sessions": sum(len(d) for d in days.values())}
    )
