"""The trained alpha model of one week: its fitted models, their feature lists and the ensemble
weights, saved as one directory and logged to MLflow as a single pyfunc model.

One registered model version is one week's bundle, so the champion/challenger aliases move
every model of the ensemble together, and a day's predictions always come from one version.

The bundle also carries the neutralisation the model selection chose for the ensemble score
(none, sector, or sector and market beta: ``cross_section.neutralise``) with the sector map it
was trained with, so the traded score and the validation scores it is calibrated on are
neutralised alike; a bundle saved before these fields existed loads as "none".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from quant_assets.models.cross_section import Neutralisation, neutralise
from quant_assets.models.ensemble import RankEnsemble
from quant_assets.models.selection import BETA
from quant_assets.models.tft import TemporalFusionAlpha

_MANIFEST = "bundle.json"


@dataclass
class AlphaBundle:
    """Fitted models by name, the feature columns each reads, the ensemble weights, the
    training window they were fitted on and the ensemble score's neutralisation with its
    ticker -> sector map (classified names only; the TFT keeps its own map)."""

    models: dict[str, Any]
    features: dict[str, list[str]]
    weights: dict[str, float]
    training_start: date
    training_end: date
    neutralisation: Neutralisation = "none"
    sectors: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """Every column ``predict`` reads: the models' features and the beta it neutralises."""
        names = dict.fromkeys(c for columns in self.features.values() for c in columns)
        if self.neutralisation == "sector_beta":
            names[BETA] = None
        return list(names)

    def neutralised(self, score: pd.Series, X: pd.DataFrame) -> pd.Series:
        """``score`` (on rows of ``X``) less its sector means, and its beta exposure for
        "sector_beta" (``X``'s ``BETA252``), per date; unchanged for "none"."""
        if self.neutralisation == "none":
            return score
        if not self.sectors:
            raise ValueError(f"a {self.neutralisation}-neutral bundle without its sector map")
        beta = X[BETA].astype(np.float64) if self.neutralisation == "sector_beta" else None
        return neutralise(score, pd.Series(self.sectors, dtype=object), beta)

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Scores of every model and of the ensemble for the rows of ``X`` (MultiIndex (date,
        ticker), sorted). The TFT needs the rows' history: pass its encoder window too and keep
        only the dates you want. Columns ``score_<model>`` and ``score_ensemble``."""
        scores: dict[str, pd.Series] = {}
        for name, model in self.models.items():
            values = model.predict(X[self.features[name]])
            scores[name] = pd.Series(np.asarray(values, dtype=np.float64), index=X.index)
        ensemble = RankEnsemble(weights=self.weights).combine(scores)
        frame = pd.DataFrame({f"score_{name}": s for name, s in scores.items()})
        frame["score_ensemble"] = self.neutralised(ensemble, X)
        return frame

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        kinds: dict[str, str] = {}
        for name, model in self.models.items():
            if isinstance(model, TemporalFusionAlpha):
                model.save(directory / name)
                kinds[name] = "tft"
            else:
                joblib.dump(model, directory / f"{name}.joblib")
                kinds[name] = "joblib"
        manifest = {
            "kinds": kinds,
            "features": self.features,
            "weights": self.weights,
            "training_start": self.training_start.isoformat(),
            "training_end": self.training_end.isoformat(),
            "neutralisation": self.neutralisation,
            "sectors": self.sectors,
        }
        (directory / _MANIFEST).write_text(json.dumps(manifest, indent=2))
        return directory

    @classmethod
    def load(cls, directory: Path) -> AlphaBundle:
        manifest = json.loads((directory / _MANIFEST).read_text())
        models: dict[str, Any] = {}
        for name, kind in manifest["kinds"].items():
            if kind == "tft":
                models[name] = TemporalFusionAlpha.load(directory / name)
            else:
                models[name] = joblib.load(directory / f"{name}.joblib")
        return cls(
            models=models,
            features=manifest["features"],
            weights=manifest["weights"],
            training_start=date.fromisoformat(manifest["training_start"]),
            training_end=date.fromisoformat(manifest["training_end"]),
            neutralisation=manifest.get("neutralisation", "none"),
            sectors=manifest.get("sectors", {}),
        )


class AlphaBundleModel(PythonModel):
    """The bundle as an MLflow pyfunc: ``predict`` takes the feature panel (a ``date`` and a
    ``ticker`` column plus features) and returns the score columns."""

    bundle: AlphaBundle

    def load_context(self, context: Any) -> None:
        self.bundle = AlphaBundle.load(Path(context.artifacts["bundle"]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        panel = model_input.set_index(["date", "ticker"]).sort_index()
        return self.bundle.predict(panel).reset_index()
