"""What a registered model version was trained on, and the proof that it can be trained again.

Every version ``alpha_model`` registers carries, as tags of the version and of its MLflow run:

* ``training_data_sha256``: the SHA-256 of its training window exactly as the training read it
  from the store: the feature matrix (every column, in order, with the ``(date, ticker)`` index)
  and the training label, row by row (:func:`training_data_hash`);
* ``code_version``: the git commit of the code that trained it, ``+dirty`` when the checkout
  had uncommitted changes (:func:`code_version`);

and its run holds the training config as ``alpha_model_config.json``.

:func:`reproduce` (the ``quant-reproduce --week W`` command) reads that window from the store
again, checks the hash, retrains with the recorded config and model choice (nothing logged or
registered), and compares the retrained model's scores with the registered version's on the
window's last session.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from quant_assets.models import registry
from quant_assets.models.selection import ModelChoice
from quant_assets.models.windows import TrainingWindow

DATA_TAG = "training_data_sha256"
CODE_TAG = "code_version"
CONFIG_ARTIFACT = "alpha_model_config.json"
REPO_ROOT = Path(__file__).resolve().parents[2]


def training_data_hash(X: pd.DataFrame, y: pd.Series) -> str:
    """SHA-256 of the column names, then of pandas' per-row hashes of ``X`` and ``y`` (index
    included) in ``(date, ticker)`` order: equal exactly when every value, row and column is."""
    X, y = X.sort_index(), y.sort_index()
    digest = hashlib.sha256(json.dumps([str(c) for c in X.columns]).encode())
    digest.update(pd.util.hash_pandas_object(X, index=True).to_numpy().tobytes())
    digest.update(pd.util.hash_pandas_object(y, index=True).to_numpy().tobytes())
    return digest.hexdigest()


def code_version(root: Path = REPO_ROOT) -> str:
    """The checkout's commit, ``+dirty`` with uncommitted changes to tracked files; ``unknown``
    outside a git checkout (an installed wheel)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def provenance_tags(X: pd.DataFrame, y: pd.Series) -> dict[str, str]:
    return {DATA_TAG: training_data_hash(X, y), CODE_TAG: code_version()}


def version_of_week(client: mlflow.MlflowClient, week: date) -> Any:
    """The registered version trained for ``week`` (the newest if it was trained twice)."""
    versions = [
        v
        for v in client.search_model_versions(f"name='{registry.REGISTERED_MODEL}'")
        if v.tags.get("week") == week.isoformat()
    ]
    if not versions:
        raise LookupError(f"no registered {registry.REGISTERED_MODEL} version for week {week}")
    return max(versions, key=lambda v: int(v.version))


def recorded_window(version: Any) -> TrainingWindow:
    tags = version.tags
    return TrainingWindow(
        week=date.fromisoformat(tags["week"]),
        start=date.fromisoformat(tags["training_start"]),
        end=date.fromisoformat(tags["training_end"]),
        last_label_day=date.fromisoformat(tags["last_label_day"]),
    )


def recorded_training(client: mlflow.MlflowClient, version: Any) -> tuple[dict, ModelChoice]:
    """The training config and model choice the version's run recorded. LookupError for a
    version registered before provenance was recorded."""
    if DATA_TAG not in version.tags:
        raise LookupError(
            f"version {version.version} (week {version.tags.get('week')}) has no recorded "
            f"{DATA_TAG}: it was registered before training data was recorded; retrain its "
            "week to record it"
        )
    run = client.get_run(version.run_id)
    path = client.download_artifacts(version.run_id, CONFIG_ARTIFACT)
    config = json.loads(Path(path).read_text())
    return config, ModelChoice.from_json(run.data.params["model_choice"])


@dataclass(frozen=True)
class Reproduction:
    """What :func:`reproduce` found for one version."""

    version: str
    week: date
    recorded_hash: str | None
    data_hash: str
    recorded_code: str | None
    code: str
    scored_rows: int
    max_score_difference: float
    score_rank_correlation: float
    tolerance: float

    @property
    def data_matches(self) -> bool:
        return self.recorded_hash == self.data_hash

    @property
    def predictions_agree(self) -> bool:
        return self.scored_rows > 0 and self.max_score_difference <= self.tolerance

    @property
    def reproduced(self) -> bool:
        return self.data_matches and self.predictions_agree

    def lines(self) -> list[str]:
        same = "same" if self.recorded_code == self.code else "DIFFERENT"
        return [
            f"version {self.version} (week {self.week})",
            f"training data  recorded {self.recorded_hash}",
            f"               now      {self.data_hash}  "
            + ("MATCH" if self.data_matches else "MISMATCH"),
            f"code           recorded {self.recorded_code}, now {self.code} ({same})",
            f"scores on the window's last session: {self.scored_rows} rows, max |difference| "
            f"{self.max_score_difference:.3g} (tolerance {self.tolerance:g}), Spearman "
            f"{self.score_rank_correlation:.6f}: "
            + ("AGREE" if self.predictions_agree else "DISAGREE"),
        ]


def compare_scores(
    registered: pd.DataFrame, retrained: pd.DataFrame, column: str = "score_ensemble"
) -> tuple[int, float, float]:
    """Rows, max absolute difference and Spearman correlation of ``column`` on the rows both
    score."""
    joined = registered[[column]].join(retrained[[column]], rsuffix="_again", how="inner").dropna()
    if joined.empty:
        return 0, float("nan"), float("nan")
    a, b = joined[column].to_numpy(), joined[f"{column}_again"].to_numpy()
    rho = float(spearmanr(a, b)[0]) if len(a) > 1 else float("nan")
    return len(a), float(np.max(np.abs(a - b))), rho
