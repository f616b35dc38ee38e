"""The stored model selection through the real Dagster machinery, a DuckDB store and MLflow
(sqlite + artifacts) in a temporary directory: the ``model_selection`` asset, ``stored_choice``,
the weekly ``alpha_model`` trained on a stored choice and the ``predictions`` it neutralises."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

# OpenMP threads must not spin on a shared machine (benches/bench_training.py): the runtime
# (torch's libgomp, which LightGBM shares) reads this when it loads, at the imports below
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
import polars as pl
import pytest

from quant_assets.features.assets import alpha158, factors, labels
from quant_assets.ingest.assets import raw_bars, universe
from quant_assets.models import registry
from quant_assets.models.assets import alpha_model, predictions, stored_choice
from quant_assets.models.deployment_assets import model_deployment
from quant_assets.models.ensemble import RankEnsemble
from quant_assets.models.selection import ModelChoice
from quant_assets.models.selection_assets import model_selection, selection_data
from quant_assets.models.windows import training_window
from quant_assets.partitions import shift_sessions, trading_sessions
from quant_core.features import ALPHA158_NAMES, FACTOR_NAMES
from resources.deployment_policy import DeploymentPolicy
from resources.macro.resource import MacroData
from resources.market_data.resource import MarketData
from resources.mlflow import ModelRegistry, mlflow_resource
from resources.portfolio_policy import PortfolioPolicy
from resources.storage import Store

RANGE = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
FIRST, LAST = "2023-01-03", "2024-03-28"
# the default cutoff: the first session of the year of the latest stored bar
CUTOFF = date(2024, 1, 2)
# large enough that LightGBM's 500-row leaves can split on every CPCV split's training rows
TINY_SELECTION = {"window_sessions": 200, "n_folds": 4, "n_test_folds": 2, "search": ["features"]}
WEEK = "2024-02-05"
TINY_TRAINING = {
    "window_sessions": 240,
    "min_training_sessions": 100,
    "n_folds": 4,
    "n_test_folds": 2,
    "models": ["lightgbm", "catboost"],
    "lightgbm_n_estimators": 20,
    "catboost_iterations": 20,
    "validation_score_sessions": 100,
}
# a choice unlike the defaults on every field the weekly training reads
STORED = ModelChoice(features="factors", horizon=20, weighting="best", neutralisation="sector")


def _resources(store: Store) -> dict:
    return {
        "store": store,
        "market_data": MarketData(n_tickers=40),
        "macro_data": MacroData(),
        "mlflow": mlflow_resource,
        "model_registry": ModelRegistry(),
        "deployment_policy": DeploymentPolicy(),
        "portfolio_policy": PortfolioPolicy(),
    }


def _select(store: Store) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        [model_selection],
        resources=_resources(store),
        run_config={"ops": {"model_selection": {"config": TINY_SELECTION}}},
    )
    assert result.success
    return result


def _selection_rows(cutoff: date, chosen: ModelChoice, other: ModelChoice) -> pl.DataFrame:
    """A stored selection of two configurations, ``chosen`` the chosen ensemble."""
    return pl.DataFrame(
        {
            "cutoff": [cutoff, cutoff],
            "stage": ["start", "combination"],
            "model": ["lightgbm", "ensemble"],
            "choice": [other.to_json(), chosen.to_json()],
            "rank_ic": [0.01, 0.02],
            "rank_icir": [0.1, 0.2],
            "spread_net": [None, 0.03],
            "turnover": [0.5, 0.4],
            "seconds": [1.0, 0.0],
            "chosen": [False, True],
            "weights": [None, json.dumps({"lightgbm": 0.5, "catboost": 0.5})],
        }
    )


@dataclass
class Market:
    store: Store
    directory: Path


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Iterator[Market]:
    """Fifteen months of bars, both feature sets and the stored labels of 12 synthetic stocks;
    MLflow in the module's directory."""
    data = tmp_path_factory.mktemp("selection")
    monkey = pytest.MonkeyPatch()
    monkey.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{data / 'mlflow.db'}")
    monkey.setenv("QUANT_MLFLOW_ARTIFACTS", (data / "artifacts").as_uri())
    store = Store(url=str(data / "quant.duckdb"))
    for assets, last in (
        ([universe, raw_bars, alpha158, factors], LAST),
        ([labels], trading_sessions(date(2024, 3, 1), date(2024, 3, 29))[-6].isoformat()),
    ):
        result = dg.materialize(
            assets, resources=_resources(store), tags=dict(zip(RANGE, (FIRST, last), strict=True))
        )
        assert result.success
    yield Market(store, data)
    monkey.undo()


def _poisoned_copy(market: Market) -> Store:
    """A copy of the market whose features and adjusted closes on and after the cutoff are
    absurd (every label whose horizon reaches the cutoff moves)."""
    market.store.close()
    path = market.directory / "poisoned.duckdb"
    shutil.copy(market.directory / "quant.duckdb", path)
    store = Store(url=str(path))
    end = date(2024, 3, 29)
    for table, names in (("alpha158", ALPHA158_NAMES), ("factors", FACTOR_NAMES)):
        frame = store.read(table, CUTOFF, end).with_columns(pl.lit(1e6).alias(n) for n in names)
        store.write_partition(table, frame, CUTOFF, end)
    bars = store.read("raw_bars", CUTOFF, end)
    shock = np.random.default_rng(0).uniform(0.2, 5.0, bars.height)
    store.write_partition("raw_bars", bars.with_columns(pl.col("adj_close") * shock), CUTOFF, end)
    return store


def test_the_selection_stores_its_chosen_row_and_weights_and_reads_nothing_from_the_cutoff_on(
    market: Market,
):
    result = _select(market.store)
    meta = {
        k: v.value
        for k, v in result.asset_materializations_for_node("model_selection")[0].metadata.items()
    }
    assert meta["cutoff"] == str(CUTOFF)
    table = market.store.read("model_selection")
    assert set(table["cutoff"]) == {CUTOFF}
    assert set(table["stage"]) == {"start", "features", "members", "combination"}
    chosen = table.filter(pl.col("chosen"))
    assert chosen.height == 1 and chosen["model"].item() == "ensemble"
    weights = json.loads(chosen["weights"].item())
    assert set(weights) == {"lightgbm", "catboost"} and sum(weights.values()) == pytest.approx(1)
    assert table.filter(~pl.col("chosen"))["weights"].null_count() == table.height - 1
    assert meta["choice"] == json.loads(chosen["choice"].item())
    assert meta["rank_ic"] == pytest.approx(chosen["rank_ic"].item())
    # 3 configurations of LightGBM searched (the start and 2 feature sets), then CatBoost on
    # the winner
    assert meta["configurations"] == 3
    run = mlflow.get_run(meta["mlflow_run_id"])
    assert mlflow.get_experiment(run.info.experiment_id).name == "model_selection"
    assert run.data.params["horizon"] == str(meta["choice"]["horizon"])
    assert run.data.metrics["rank_ic"] == pytest.approx(chosen["rank_ic"].item())
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)]
    assert artifacts == [f"model_selection_{CUTOFF}.csv"]

    poisoned = _poisoned_copy(market)
    # the poison is in what a later cutoff would read ...
    later = selection_data(poisoned, None, CUTOFF + timedelta(days=1))
    assert later.X.loc[pd.Timestamp(CUTOFF)].to_numpy().min() == 1e6
    # ... and the selection for the cutoff is unchanged by it
    _select(poisoned)
    again = poisoned.read("model_selection")
    assert again.drop("seconds").equals(table.drop("seconds"))


def test_stored_choice_takes_the_latest_cutoff_on_or_before_the_day_or_the_defaults(
    store: Store,
):
    assert stored_choice(store, date(2024, 6, 3)) == (ModelChoice(), None, None)
    early, late = date(2022, 1, 3), date(2023, 1, 3)
    first = ModelChoice(horizon=20)
    second = ModelChoice(features="factors", neutralisation="sector")
    store.write_partition(
        "model_selection", _selection_rows(early, first, second), early, early + timedelta(1)
    )
    store.write_partition(
        "model_selection", _selection_rows(late, second, first), late, late + timedelta(1)
    )
    weights = {"lightgbm": 0.5, "catboost": 0.5}
    assert stored_choice(store, date(2021, 12, 31)) == (ModelChoice(), None, None)
    assert stored_choice(store, early) == (first, weights, early)
    assert stored_choice(store, date(2022, 12, 30)) == (first, weights, early)
    assert stored_choice(store, late) == (second, weights, late)
    assert stored_choice(store, date(2030, 1, 1)) == (second, weights, late)


@pytest.fixture(scope="module")
def trained(market: Market) -> dict:
    """The week's training on a stored choice made before it (a later cutoff than the
    selection test's, so it is the one the week takes)."""
    cutoff = date(2024, 1, 29)
    rows = _selection_rows(cutoff, STORED, ModelChoice())
    market.store.write_partition("model_selection", rows, cutoff, cutoff + timedelta(days=1))
    result = dg.materialize(
        [alpha_model],
        resources=_resources(market.store),
        partition_key=WEEK,
        run_config={"ops": {"alpha_model": {"config": TINY_TRAINING}}},
    )
    assert result.success
    event = result.asset_materializations_for_node("alpha_model")[0]
    return {key: value.value for key, value in event.metadata.items()}


def test_the_weekly_training_trains_and_logs_the_stored_choice(market: Market, trained: dict):
    assert trained["model_choice"] == dataclasses.asdict(STORED)
    assert trained["selection_cutoff"] == "2024-01-29"
    params = mlflow.get_run(trained["mlflow_run_id"]).data.params
    assert ModelChoice.from_json(params["model_choice"]) == STORED
    # the CPCV purges and embargoes the 20-session label it trains on
    assert (params["purged_size"], params["embargo_size"]) == ("20", "20")
    # trained on the 20-session label realised by the window's end: 20 sessions unlabelled
    window = training_window(date.fromisoformat(WEEK), TINY_TRAINING["window_sessions"])
    assert trained["labelled_sessions"] == TINY_TRAINING["window_sessions"] - 20
    # ... and scored out of sample on those rows against the 5-session label the portfolio
    # consumes (the calibration history of the views)
    scores = market.store.read("validation_scores")
    assert scores["date"].max() == shift_sessions(window.end, 20)
    stored = market.store.read("labels", columns=["ticker", "date", "label"])
    joined = scores.join(stored, on=["ticker", "date"], suffix="_stored")
    assert joined.height == scores.height
    assert (joined["label"] == joined["label_stored"]).all()
    bundle = registry.load_bundle(trained["model_version"].rsplit("/", 1)[1])
    assert bundle.features == {"lightgbm": list(FACTOR_NAMES), "catboost": list(FACTOR_NAMES)}
    best = max(("lightgbm", "catboost"), key=lambda m: trained[f"{m}_rank_icir"])
    assert bundle.weights == {m: float(m == best) for m in ("lightgbm", "catboost")}
    assert bundle.neutralisation == "sector"


def test_predictions_neutralise_the_ensemble_score_by_sector_when_the_choice_says_so(
    market: Market, trained: dict
):
    result = dg.materialize(
        [model_deployment, predictions],
        resources=_resources(market.store),
        tags=dict(zip(RANGE, ("2024-02-12", "2024-02-16"), strict=True)),
    )
    assert result.success
    scores = market.store.read("predictions").to_pandas().set_index(["date", "ticker"])
    assert set(scores["model_version"]) == {trained["model_version"].rsplit("/", 1)[1]}
    sectors = market.store.read("universe").to_pandas().set_index("ticker")["sector"]
    sector = sectors.reindex(scores.index.get_level_values("ticker")).to_numpy()
    shared = pd.Series(sector).value_counts()
    assert (shared > 1).any()  # a sector with several names, where the mean is a real check
    by_sector = scores.groupby([scores.index.get_level_values("date"), sector])
    assert by_sector["score_ensemble"].mean().abs().max() < 1e-12
    assert scores["score_ensemble"].std() > 0.05
    # the ensemble before neutralisation is not sector-neutral: the step did the work
    raw = RankEnsemble({m: float(w) for m, w in trained["ensemble_weights"].items()}).combine(
        {m: scores[f"score_{m}"] for m in ("lightgbm", "catboost")}
    )
    assert raw.groupby([scores.index.get_level_values("date"), sector]).mean().abs().max() > 0.01
