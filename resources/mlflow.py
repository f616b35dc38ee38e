"""MLflow tracking through dagster-mlflow, with local defaults and the run ended by the resource.

dagster-mlflow's ``mlflow_tracking`` keeps one MLflow run per Dagster run (found again by the
``dagster_run_id`` tag, so every step of a run logs into it) but leaves the run RUNNING unless the
job carries its ``end_mlflow_on_run_finished`` hook, which plain ``materialize()`` and asset
backfills do not. ``mlflow_resource`` wraps it and adds what it lacks: the tracking URI and the
artifact location default to files under the data directory (an sqlite backend: MLflow 3 refuses
the bare ``./mlruns`` file store), the experiment is created with that artifact location, and the
run is ended when the step's resources are torn down. An asset that fails calls
``cleanup_on_error()`` (dagster-mlflow's) to mark the run FAILED first.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import dagster as dg
import mlflow
from dagster_mlflow import mlflow_tracking
from dagster_mlflow.resources import CONFIG_SCHEMA, MlFlow

from resources.settings import data_dir

DEFAULT_EXPERIMENT = "alpha_research"


def mlflow_dir() -> Path:
    path = data_dir() / "mlflow"
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` or an sqlite database under the data directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{mlflow_dir() / 'mlflow.db'}"


def default_artifact_location() -> str:
    """``QUANT_MLFLOW_ARTIFACTS`` or a folder under the data directory (as a file URI)."""
    configured = os.environ.get("QUANT_MLFLOW_ARTIFACTS")
    if configured:
        return configured
    path = mlflow_dir() / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path.as_uri()


def ensure_experiment(name: str, tracking_uri: str, artifact_location: str) -> str:
    """The experiment's id, creating it with ``artifact_location`` when it does not exist."""
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    return str(client.create_experiment(name, artifact_location=artifact_location))


_SCHEMA: dict[str, Any] = {
    **CONFIG_SCHEMA,
    "experiment_name": dg.Field(
        dg.StringSource, default_value=DEFAULT_EXPERIMENT, description="MLflow experiment name."
    ),
    "artifact_location": dg.Field(
        dg.Noneable(dg.StringSource),
        default_value=None,
        is_required=False,
        description="Artifact root of a new experiment (default: under the data directory).",
    ),
}


@dg.resource(config_schema=_SCHEMA, description=__doc__)
def mlflow_resource(context: dg.InitResourceContext) -> Iterator[MlFlow]:
    config = context.resource_config
    tracking_uri = config.get("mlflow_tracking_uri") or default_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    ensure_experiment(
        config["experiment_name"],
        tracking_uri,
        config.get("artifact_location") or default_artifact_location(),
    )
    # dagster-mlflow's resource function may come back as a one-item generator
    resource_fn: Any = mlflow_tracking.resource_fn
    created: Any = resource_fn(context)
    tracker = cast(MlFlow, next(created) if inspect.isgenerator(created) else created)
    try:
        yield tracker
    finally:
        # a run the asset marked FAILED is no longer active; anything else finished normally
        if mlflow.active_run() is not None:
            mlflow.end_run()


class ModelRegistry(dg.ConfigurableResource):
    """Read access to the MLflow model registry for assets that load models but log nothing
    (no MLflow run is started, unlike ``mlflow_resource``)."""

    tracking_uri: str | None = None

    def activate(self) -> str:
        """Point the MLflow client at the registry; returns the URI used."""
        uri = self.tracking_uri or default_tracking_uri()
        mlflow.set_tracking_uri(uri)
        return uri
