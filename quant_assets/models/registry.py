"""The model registry: log a week's bundle as a new version and move the aliases by a gate.

Aliases, not stages (deprecated in MLflow 3): ``champion`` is the version live predictions use,
``challenger`` the version in shadow (and ``canary`` while it holds capital). The weekly gate
(``gate``) only makes the first version champion; a later one that passes becomes the
challenger, and the champion changes only through the shadow record and the canary
(``quant_assets/models/deployment.py``).
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from quant_assets.models.bundle import AlphaBundle, AlphaBundleModel

REGISTERED_MODEL = "alpha_ensemble"
CHAMPION = "champion"
CHALLENGER = "challenger"
# the version a canary is running on (the challenger while it holds capital)
CANARY = "canary"
# alpha_models' alias of a version that failed the gate, or passed it while a canary ran
REJECTED = "rejected"
HELD = "held"

# Declared instead of inferred: MLflow's dependency detection costs seconds per logged model.
PIP_REQUIREMENTS = [
    f"mlflow=={mlflow.__version__}",
    "lightgbm",
    "catboost",
    "scikit-learn",
    "torch",
    "pytorch-forecasting",
    "lightning",
    "pandas",
    "numpy",
    "joblib",
]


@dataclass(frozen=True)
class GateDecision:
    """``alias`` the new version gets, with the metric both were judged on (higher is better)."""

    alias: str
    candidate_metric: float | None
    champion_metric: float | None
    reason: str

    @property
    def passed(self) -> bool:
        return self.alias in (CHAMPION, CHALLENGER)


def gate(
    candidate_metric: float | None,
    champion_metric: float | None,
    has_champion: bool,
    min_improvement: float = 0.0,
) -> GateDecision:
    """The weekly evaluation gate: the first version is champion; later ones pass (become the
    challenger, shadowed before any capital) only if the candidate's metric beats the
    champion's on the same rows by more than ``min_improvement``; the others are
    ``rejected``: recorded, never shadowed."""
    if not has_champion:
        return GateDecision(CHAMPION, candidate_metric, None, "no champion yet")
    if candidate_metric is None or champion_metric is None:
        return GateDecision(
            REJECTED,
            candidate_metric,
            champion_metric,
            "no common validation rows: not shadowed",
        )
    if candidate_metric > champion_metric + min_improvement:
        return GateDecision(
            CHALLENGER,
            candidate_metric,
            champion_metric,
            f"{candidate_metric:.4f} beats the champion's {champion_metric:.4f}: shadowed",
        )
    return GateDecision(
        REJECTED,
        candidate_metric,
        champion_metric,
        f"{candidate_metric:.4f} does not beat the champion's {champion_metric:.4f}",
    )


def log_bundle(bundle: AlphaBundle, registered_model: str = REGISTERED_MODEL) -> ModelVersion:
    """Log ``bundle`` into the active MLflow run as a pyfunc model and register it; returns the
    new version."""
    with tempfile.TemporaryDirectory() as scratch:
        directory = bundle.save(Path(scratch) / "bundle")
        info = mlflow.pyfunc.log_model(
            name="alpha_model",
            python_model=AlphaBundleModel(),
            artifacts={"bundle": str(directory)},
            pip_requirements=PIP_REQUIREMENTS,
            registered_model_name=registered_model,
        )
    version = info.registered_model_version
    client = mlflow.MlflowClient()
    return client.get_model_version(registered_model, str(version))


def champion_version(
    client: mlflow.MlflowClient, registered_model: str = REGISTERED_MODEL
) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(registered_model, CHAMPION)
    except MlflowException:
        return None


def set_alias(
    client: mlflow.MlflowClient,
    version: str,
    alias: str,
    registered_model: str = REGISTERED_MODEL,
) -> None:
    client.set_registered_model_alias(registered_model, alias, version)


def load_bundle(version: str, registered_model: str = REGISTERED_MODEL) -> AlphaBundle:
    """The bundle of a registered version (downloaded from the artifact store)."""
    model = mlflow.pyfunc.load_model(f"models:/{registered_model}/{version}")
    python_model = model.unwrap_python_model()
    assert isinstance(python_model, AlphaBundleModel)
    return python_model.bundle


def delete_alias(
    client: mlflow.MlflowClient, alias: str, registered_model: str = REGISTERED_MODEL
) -> None:
    """Remove ``alias`` (nothing to do when no version has it)."""
    with contextlib.suppress(MlflowException):
        client.delete_registered_model_alias(registered_model, alias)
