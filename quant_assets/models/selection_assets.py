"""The stored model selection: the data a selection is made on (:func:`selection_data`) and the
``model_selection`` asset, which runs :func:`~quant_assets.models.selection.select_model` once
per cutoff (by default the first session of the latest stored year; the yearly schedule passes
the new year's) and stores every evaluated configuration, the chosen one with its validated
ensemble weights. The weekly ``alpha_model`` trains the chosen row of the latest cutoff on or
before its week (``quant_assets.models.assets.stored_choice``) and ``predictions`` neutralise
the ensemble score as it says."""

import dataclasses
import json
import math
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import mlflow
import polars as pl
from pydantic import Field

from quant_assets.features.assets import alpha158, factors
from quant_assets.ingest.assets import universe
from quant_assets.metadata import preview
from quant_assets.models.assets import _panel, horizon_labels, sector_map
from quant_assets.models.selection import (
    SEARCH,
    ModelChoice,
    Objective,
    Selection,
    SelectionData,
    SelectionError,
    SelectionSpec,
    select_model,
)
from quant_core.calendar import trading_sessions
from quant_core.features import ALPHA158_NAMES, FACTOR_NAMES
from resources.mlflow import ModelRegistry, default_artifact_location, ensure_experiment
from resources.storage import Store

EXPERIMENT = "model_selection"
# every label horizon a choice may train on: the default's and the search's
HORIZONS: tuple[int, ...] = tuple(sorted({ModelChoice().horizon, *dict(SEARCH)["horizon"]}))


def selection_data(store: Store, start: date | None, end: date) -> SelectionData:
    """The stored Alpha158 and factors (null where not stored) of the sessions
    ``start <= d < end`` on a sorted (date, ticker) index, the raw forward excess return over
    each of :data:`HORIZONS` from the stored adjusted closes (NaN where its horizon session is
    not stored) and the universe's sectors."""
    frame = store.read("alpha158", start, end).join(
        store.read("factors", start, end), on=["ticker", "date"], how="left"
    )
    for h, labels in horizon_labels(store, start, end, HORIZONS).items():
        frame = frame.join(
            labels.select("ticker", "date", pl.col("label").alias(f"label_{h}")),
            on=["ticker", "date"],
            how="left",
        )
    panel = _panel(frame)
    return SelectionData(
        X=panel[[*ALPHA158_NAMES, *FACTOR_NAMES]],
        labels={h: panel[f"label_{h}"].rename("label") for h in HORIZONS},
        sectors=sector_map(store),
    )


class ModelSelectionConfig(dg.Config):
    """The cutoff (ISO date; default: the first NYSE session of the year of the latest stored
    bar) and the selection's budget (sessions, CPCV folds, configurations, searched fields)."""

    cutoff: str | None = None
    window_sessions: int = SelectionSpec.window_sessions
    n_folds: int = SelectionSpec.n_folds
    n_test_folds: int = SelectionSpec.n_test_folds
    max_configurations: int = SelectionSpec.max_configurations
    search: list[str] = Field(default_factory=lambda: [name for name, _ in SEARCH])
    objective: Objective = SelectionSpec.objective

    def spec(self) -> SelectionSpec:
        unknown = sorted(set(self.search) - {name for name, _ in SEARCH})
        if unknown:
            raise dg.Failure(f"unknown search fields {unknown}: choose among {dict(SEARCH)}")
        return SelectionSpec(
            window_sessions=self.window_sessions,
            n_folds=self.n_folds,
            n_test_folds=self.n_test_folds,
            max_configurations=self.max_configurations,
            search=tuple((name, values) for name, values in SEARCH if name in self.search),
            objective=self.objective,
        )

    def cutoff_date(self, store: Store) -> date:
        if self.cutoff:
            return date.fromisoformat(self.cutoff)
        bounds = store.date_bounds("raw_bars")
        if bounds is None:
            raise dg.Failure("no raw_bars stored: materialize raw_bars before a model selection")
        return first_session_of_year(bounds[1].year)


def first_session_of_year(year: int) -> date:
    return trading_sessions(date(year, 1, 1), date(year + 1, 1, 1))[0]


def selection_table(selection: Selection) -> pl.DataFrame:
    """The ``model_selection`` rows of ``selection``: its table, the cutoff, and the weights
    (JSON) on the chosen row; NaN figures stored as null."""
    table = pl.from_pandas(selection.table)
    weights = json.dumps(selection.weights, sort_keys=True)
    return table.with_columns(
        pl.lit(selection.cutoff).alias("cutoff"),
        pl.when(pl.col("chosen")).then(pl.lit(weights)).alias("weights"),
        pl.col("rank_ic", "rank_icir", "spread_net", "turnover").cast(pl.Float64).fill_nan(None),
    )


def describe(choice: ModelChoice) -> str:
    """The fields where ``choice`` differs from the platform's defaults."""
    default = dataclasses.asdict(ModelChoice())
    changed = [f"{k}={v}" for k, v in dataclasses.asdict(choice).items() if v != default[k]]
    return ", ".join(changed) or "defaults"


def _log_run(
    model_registry: ModelRegistry, selection: Selection, chosen: dict[str, Any], table: pl.DataFrame
) -> Any:
    """The selection's MLflow run in :data:`EXPERIMENT`: the chosen choice as parameters, its
    figures as metrics, the table as a CSV artifact."""
    uri = model_registry.activate()
    experiment_id = ensure_experiment(EXPERIMENT, uri, default_artifact_location())
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=f"model_selection {selection.cutoff}",
        nested=mlflow.active_run() is not None,
    ) as run:
        mlflow.log_params({"cutoff": str(selection.cutoff), **dataclasses.asdict(selection.choice)})
        figures = {k: chosen[k] for k in ("rank_ic", "rank_icir", "spread_net", "turnover")}
        mlflow.log_metrics(
            {
                **{k: float(v) for k, v in figures.items() if v is not None and math.isfinite(v)},
                **{f"weight.{m}": w for m, w in selection.weights.items()},
                "seconds": selection.seconds,
            }
        )
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / f"model_selection_{selection.cutoff}.csv"
            table.write_csv(path)
            mlflow.log_artifact(str(path))
    return run


def _metadata(selection: Selection, chosen: dict[str, Any], table: pl.DataFrame) -> dict[str, Any]:
    """The chosen choice, its validation figures, the search's size and the table's preview
    (each configuration by what it changes from the defaults, best first)."""
    shown = table.sort("rank_ic", descending=True, nulls_last=True).select(
        "stage",
        "model",
        pl.col("choice").map_elements(lambda c: describe(ModelChoice.from_json(c)), pl.String),
        "rank_ic",
        "rank_icir",
        "spread_net",
        "chosen",
    )
    with pl.Config(fmt_str_lengths=120):
        table_preview = preview(shown, rows=30)
    return {
        "choice": dg.MetadataValue.json(dataclasses.asdict(selection.choice)),
        "choice_changes": describe(selection.choice),
        "weights": dg.MetadataValue.json(selection.weights),
        **{
            k: float(chosen[k]) if chosen[k] is not None else math.nan
            for k in ("rank_ic", "rank_icir", "spread_net", "turnover")
        },
        "configurations": table.filter(pl.col("stage") != "combination")["choice"].n_unique(),
        "seconds": round(selection.seconds, 1),
        "preview": table_preview,
    }


@dg.asset(
    group_name="models",
    kinds={"lightgbm", "catboost", "mlflow"},
    deps=[alpha158, factors, "raw_bars", universe],
)
def model_selection(
    context: dg.AssetExecutionContext,
    config: ModelSelectionConfig,
    store: Store,
    model_registry: ModelRegistry,
) -> dg.MaterializeResult:
    """The model's configuration for a cutoff (features, label horizon, training window,
    feature normalisation, hyper-parameters, neutralisation, ensemble weighting), chosen by
    combinatorial purged CV on the stored data before it; every evaluated configuration is a
    row, the chosen one carries the ensemble weights. The weekly alpha_model trains the choice
    of the latest cutoff on or before its week."""
    cutoff = config.cutoff_date(store)
    data = selection_data(store, None, cutoff)
    if data.X.empty:
        raise dg.Failure(f"no alpha158 stored before {cutoff}: materialize alpha158 first")
    try:
        selection = select_model(data, cutoff, config.spec(), log=context.log.info)
    except SelectionError as error:
        raise dg.Failure(str(error)) from error
    table = selection_table(selection)
    written = store.write_partition("model_selection", table, cutoff, cutoff + timedelta(days=1))
    chosen = table.filter(pl.col("chosen")).row(0, named=True)
    run = _log_run(context.resources.model_registry, selection, chosen, table)
    context.log.info(f"model_selection {cutoff}: {describe(selection.choice)}")
    return dg.MaterializeResult(
        metadata={
            "cutoff": str(cutoff),
            "rows": written,
            "sessions_seen": int(data.X.index.get_level_values(0).nunique()),
            **_metadata(selection, chosen, table),
            "mlflow_run_id": run.info.run_id,
            "mlflow_run": dg.MetadataValue.url(
                f"{mlflow.get_tracking_uri()}#/experiments/{run.info.experiment_id}"
                f"/runs/{run.info.run_id}"
            ),
        }
    )
