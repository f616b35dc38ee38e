"""One weekly training, without Dagster: CPCV of every model, the rank ensemble weighted by
validation Rank ICIR, the final fits on the whole window, and their explanations.

``train_alpha`` is what the ``alpha_model`` asset runs; it takes explicit parameters
(:class:`TrainingSpec`) and in-memory frames, so tests and benchmarks call it directly. The
asset fills the spec from the stored model selection (``quant_assets.models.selection``): the
boosted models' columns and hyper-parameters, the CPCV purge and embargo of the trained label's
horizon, the ensemble weighting and the neutralisation of the ensemble score.

Inputs: ``X`` is the Alpha158 panel indexed by ``(date, ticker)`` (sorted) over the training
window, ``y`` the raw forward excess return the models are trained on, on the same index (NaN
where the label is not realised by the end of the window: those rows are never trained on, but
the TFT reads them as encoder history). ``evaluation_label`` (default ``y``) is the label every
validation IC and the ensemble weights are measured against: the 5-session label the portfolio
consumes when ``y`` is over another horizon. ``sectors`` maps ticker -> sector (the TFT's static
covariate and the neutralisation's groups).

Ensemble validation caveat: the ensemble's CPCV paths combine the models' paths with weights
taken from those same paths, which flatters it slightly; the gate (``gate_scores``) therefore
compares the candidate with the champion only on sessions the champion never saw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from quant_assets.models.boosting import CatBoostAlpha, LightGBMAlpha
from quant_assets.models.bundle import AlphaBundle
from quant_assets.models.cross_section import Neutralisation, daily_ic
from quant_assets.models.ensemble import RankEnsemble, ensemble_cpcv
from quant_assets.models.selection import Weighting
from quant_assets.models.selection import _weights as ensemble_weights
from quant_assets.models.tft import TemporalFusionAlpha
from quant_assets.models.validation import (
    CPCVResult,
    cpcv_evaluate,
    make_cpcv,
    result_from_predictions,
)
from quant_core.conventions import (
    CPCV_EMBARGO_SESSIONS,
    CPCV_FOLDS,
    CPCV_PURGED_SESSIONS,
    CPCV_TEST_FOLDS,
)
from quant_core.sectors import classified_only

MODEL_NAMES = ("lightgbm", "catboost", "tft")
ENSEMBLE = "ensemble"


@dataclass(frozen=True)
class TrainingSpec:
    """Explicit parameters of one training. ``*_params`` go to the estimators' constructors;
    ``columns`` are the boosted models' features (None: every column of ``X``); ``weighting``
    and ``neutralisation`` as in :class:`~quant_assets.models.selection.ModelChoice`."""

    models: tuple[str, ...] = MODEL_NAMES
    n_folds: int = CPCV_FOLDS
    n_test_folds: int = CPCV_TEST_FOLDS
    purged_size: int = CPCV_PURGED_SESSIONS
    embargo_size: int = CPCV_EMBARGO_SESSIONS
    shap_sessions: int = 21
    lightgbm_params: dict[str, Any] = field(default_factory=dict)
    catboost_params: dict[str, Any] = field(default_factory=dict)
    tft_params: dict[str, Any] = field(default_factory=dict)
    columns: tuple[str, ...] | None = None
    weighting: Weighting = "icir"
    neutralisation: Neutralisation = "none"

    def __post_init__(self) -> None:
        unknown = set(self.models) - set(MODEL_NAMES)
        if unknown or not self.models:
            raise ValueError(f"models must be a non-empty subset of {MODEL_NAMES}: {self.models}")

    def estimator(self, name: str, sectors: pd.Series) -> Any:
        if name == "lightgbm":
            return LightGBMAlpha(**self.lightgbm_params)
        if name == "catboost":
            return CatBoostAlpha(**self.catboost_params)
        # the sector map is a constructor parameter so every CPCV clone keeps it
        return TemporalFusionAlpha(
            **self.tft_params, sectors={str(k): str(v) for k, v in sectors.items()}
        )

    def feature_columns(self, name: str, available: list[str]) -> list[str]:
        """``columns`` (or every available one) for the boosted trees, the TFT's subset of
        Alpha158 for the TFT."""
        if name == "tft":
            return [c for c in TemporalFusionAlpha.DEFAULT_FEATURES if c in available]
        if self.columns is None:
            return list(available)
        missing = [c for c in self.columns if c not in available]
        if missing:
            raise ValueError(f"{name}: the panel lacks {len(missing)} features: {missing[:5]}")
        return list(self.columns)


@dataclass
class TrainingOutcome:
    """CPCV results by model name (and ``ensemble``), the fitted bundle, the SHAP summary of the
    boosted models (model, feature, mean_abs_shap, importance_rank), feature importances, the
    fitting time of each model and the TFT (when trained) for its interpretation."""

    validation: dict[str, CPCVResult]
    bundle: AlphaBundle
    shap_summary: pl.DataFrame
    importances: dict[str, pd.Series]
    seconds: dict[str, float]
    tft: TemporalFusionAlpha | None = None

    @property
    def ensemble_scores(self) -> pd.Series:
        """Out-of-sample ensemble score per labelled row: its mean over the CPCV paths."""
        return self.validation[ENSEMBLE].predictions.mean(axis=1).rename("score_ensemble")

    def path_table(self) -> pl.DataFrame:
        """One row per (model, path): ic, rank_ic, icir, rank_icir."""
        frames = []
        for name, result in self.validation.items():
            paths = result.paths.reset_index()
            frames.append(
                pl.DataFrame(
                    {
                        "model": name,
                        "path": paths["path"].astype(np.int32).to_numpy(),
                        "ic": paths["ic_mean"].to_numpy(np.float64),
                        "rank_ic": paths["rank_ic_mean"].to_numpy(np.float64),
                        "icir": paths["icir"].to_numpy(np.float64),
                        "rank_icir": paths["rank_icir"].to_numpy(np.float64),
                    }
                )
            )
        return pl.concat(frames).fill_nan(None)


def _shap_frame(model: str, summary: pd.Series) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "model": model,
            "feature": [str(f) for f in summary.index],
            "mean_abs_shap": summary.to_numpy(np.float64),
            "importance_rank": np.arange(1, len(summary) + 1, dtype=np.int32),
        }
    )


def train_alpha(
    X: pd.DataFrame,
    y: pd.Series,
    sectors: pd.Series,
    spec: TrainingSpec,
    training_start: date,
    training_end: date,
    evaluation_label: pd.Series | None = None,
) -> TrainingOutcome:
    """CPCV every model of ``spec`` on the labelled rows, weight the rank ensemble by their
    validation Rank ICIR (or as ``spec.weighting`` says), neutralise its score as
    ``spec.neutralisation`` says, refit every model on all labelled rows and explain them."""
    labelled = y.notna().to_numpy()
    if not labelled.any():
        raise ValueError("no labelled rows to train on")
    available = [str(c) for c in X.columns]
    cv = make_cpcv(spec.n_folds, spec.n_test_folds, spec.purged_size, spec.embargo_size)
    validation: dict[str, CPCVResult] = {}
    models: dict[str, Any] = {}
    features: dict[str, list[str]] = {}
    importances: dict[str, pd.Series] = {}
    seconds: dict[str, float] = {}
    shap_frames: list[pl.DataFrame] = []
    tft: TemporalFusionAlpha | None = None
    last_dates = X.index.get_level_values("date").unique().sort_values()[-spec.shap_sessions :]
    for name in spec.models:
        started = time.perf_counter()
        columns = spec.feature_columns(name, available)
        features[name] = columns
        estimator = spec.estimator(name, sectors)
        if name == "tft":
            # unlabelled rows stay: they are the encoder history of the last labelled dates
            panel = X[columns]
            validation[name] = cpcv_evaluate(estimator, panel, y, cv)
            model = estimator.fit(panel, y)
            tft = model
            importances[name] = model.feature_importances_
        else:
            panel = X[columns][labelled]
            validation[name] = cpcv_evaluate(estimator, panel, y[labelled], cv)
            model = estimator.fit(panel, y[labelled])
            importances[name] = model.feature_importances_
            recent = X[columns][X.index.get_level_values("date").isin(last_dates)]
            shap_frames.append(_shap_frame(name, model.shap_summary(recent)))
        models[name] = model
        seconds[name] = time.perf_counter() - started
    # every model is evaluated on the labelled rows only, so the paths line up
    aligned = {
        name: _labelled_only(result, y[labelled].index, evaluation_label)
        for name, result in validation.items()
    }
    rank_icir = {n: r.rank_icir for n, r in aligned.items()}
    weights = RankEnsemble(ensemble_weights(spec.weighting, rank_icir))
    bundle = AlphaBundle(
        models=models,
        features=features,
        weights=weights.weights,
        training_start=training_start,
        training_end=training_end,
        neutralisation=spec.neutralisation,
        sectors=classified_only({str(t): s for t, s in sectors.items()}),
    )
    aligned[ENSEMBLE] = _neutralised(ensemble_cpcv(aligned, weights), bundle, X)
    shap = pl.concat(shap_frames) if shap_frames else _shap_frame("none", pd.Series())
    return TrainingOutcome(aligned, bundle, shap, importances, seconds, tft)


def _labelled_only(result: CPCVResult, rows: pd.Index, label: pd.Series | None) -> CPCVResult:
    """``result`` on ``rows``, its metrics against ``label`` (None: its own label)."""
    if label is None:
        if result.predictions.index.equals(rows):
            return result
        label = result.label
    return result_from_predictions(
        result.predictions.reindex(rows), label.reindex(rows), result.splits
    )


def _neutralised(result: CPCVResult, bundle: AlphaBundle, X: pd.DataFrame) -> CPCVResult:
    """The ensemble's paths neutralised as the bundle's live scores are."""
    if bundle.neutralisation == "none":
        return result
    paths = result.predictions.apply(lambda path: bundle.neutralised(path, X))
    return result_from_predictions(paths, result.label, result.splits)


def mean_rank_ic(scores: pd.Series, label: pd.Series) -> float | None:
    """Mean daily Rank IC of ``scores`` against ``label`` (None without a valid date)."""
    daily = daily_ic(scores, label)["rank_ic"].dropna()
    return float(daily.mean()) if len(daily) else None
