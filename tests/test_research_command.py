"""``quant-research`` on a small synthetic store written by the real assets (bars, Alpha158,
labels): the IC table against an independent recomputation from what it wrote, the backtest it
materializes, MLflow, and the one-line refusals before any training."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import mlflow
import numpy as np
import polars as pl
import pytest
from scipy.stats import pearsonr, spearmanr

from apps import research
from quant_assets.features.assets import alpha158, factors, labels
from quant_assets.ingest.assets import raw_bars, universe
from quant_core.calendar import trading_sessions
from resources.market_data.resource import MarketData
from resources.settings import PROJECT_ROOT, data_dir
from resources.storage import Store
from resources.storage.duckdb_backend import close_all

RANGE = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
FIRST, LAST_BAR, LAST_LABEL = "2023-01-03", "2024-06-28", "2024-06-20"
TRAIN, RETRAIN, WEIGHTS, PURGE = 120, 21, 40, 5
MODELS = ("lightgbm", "catboost")
ROWS = (*MODELS, "ensemble", "rank_ensemble")
# the range and the walk-forward's cadence, with or without a selection
WALK = ["--end", LAST_LABEL, "--train-sessions", str(TRAIN), "--retrain", str(RETRAIN)]
ARGS = [
    "--selection",
    "none",
    *WALK,
    "--weights-sessions",
    str(WEIGHTS),
    "--methods",
    "hrp,black_litterman",
    "--set",
    "lookback_sessions=60",
    "--set",
    "cpcv_folds=4",
    "--set",
    "min_calibration_dates=10",
]


@dataclass
class Run:
    store: Store
    folder: Path
    stdout: str
    mlflow_uri: str
    dagster_home: Path


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """A store of 20 synthetic tickers: bars and Alpha158 to LAST_BAR, labels to LAST_LABEL
    (what the daily job leaves when it ran up to LAST_BAR less a few sessions)."""
    root = tmp_path_factory.mktemp("research")
    store_url = str(root / "quant.duckdb")
    resources = {"store": Store(url=store_url), "market_data": MarketData(n_tickers=20)}
    span = dict(zip(RANGE, (FIRST, LAST_BAR), strict=True))
    assert dg.materialize(
        [universe, raw_bars, alpha158, factors], resources=resources, tags=span
    ).success
    span = dict(zip(RANGE, (FIRST, LAST_LABEL), strict=True))
    assert dg.materialize([labels], resources=resources, tags=span).success
    close_all()
    return {
        "QUANT_STORE_URL": store_url,
        "QUANT_DATA_DIR": str(root / "data"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "QUANT_MLFLOW_ARTIFACTS": (root / "artifacts").as_uri(),
        "DAGSTER_HOME": str(root / "dagster_home"),
    }


@pytest.fixture(scope="module")
def run(env: dict[str, str]) -> Run:
    """The command once, as a user runs it (its own process)."""
    done = command(env, *ARGS)
    return Run(
        Store(url=env["QUANT_STORE_URL"]),
        files_of(done),
        done.stdout,
        env["MLFLOW_TRACKING_URI"],
        Path(env["DAGSTER_HOME"]),
    )


SELECTED_ARGS = [
    *WALK,
    "--evaluate-from",
    "2024",
    "--skip-backtest",
    "--select",
    "window_sessions=240",
    "--select",
    "n_folds=4",
    "--select",
    'search=["features"]',
]
CUTOFF = date(2024, 1, 2)


def command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "apps.research", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def files_of(done: subprocess.CompletedProcess[str]) -> Path:
    return Path(done.stdout.strip().splitlines()[-1].rsplit("files in ", 1)[1])


@pytest.fixture(scope="module")
def selected(env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], ...]:
    """The command with a model selection searched for 2024 (stored), then again reading it."""
    searched = command(env, "--selection", "search", *SELECTED_ARGS)
    stored = command(env, "--selection", "stored", *SELECTED_ARGS)
    return searched, stored


def printed_table(stdout: str, header: str, names: tuple[str, ...]) -> dict[str, list[float]]:
    """The rows ``names`` of the table printed after the line starting with ``header``."""
    lines = stdout[stdout.index(header) :].splitlines()
    rows = {}
    for line in lines[1:]:
        name, *values = line.split()
        if name in names and name not in rows:
            rows[name] = [float(v) for v in values]
    assert set(rows) == set(names)
    return rows


def evaluated_from(stdout: str) -> date:
    return date.fromisoformat(re.search(r"IC out of sample from (\S+)", stdout).group(1))


def daily_correlations(scores: pl.DataFrame, stored: pl.DataFrame, column: str) -> pl.DataFrame:
    """Per date, scipy's Spearman and Pearson correlation of ``column`` with the stored label."""
    joined = scores.select("date", "ticker", column).join(
        stored.select("date", "ticker", "label"), on=["date", "ticker"]
    )
    rows = []
    for (day,), group in joined.drop_nulls().drop_nans().group_by(["date"]):
        if group.height >= 3 and group[column].n_unique() > 1:
            rank = spearmanr(group[column], group["label"]).statistic
            linear = pearsonr(group[column], group["label"]).statistic
            rows.append({"date": day, "rank_ic": rank, "ic": linear})
    return pl.DataFrame(rows).sort("date")


def summary(daily: pl.DataFrame) -> list[float]:
    """ic_mean, icir, rank_ic_mean, rank_icir, n_dates, as the table's columns."""
    out = []
    for column in ("ic", "rank_ic"):
        values = daily[column].to_numpy()
        out += [values.mean(), values.mean() / values.std(ddof=1)]
    return [*out, float(daily.height)]


def test_the_ic_table_is_the_daily_ic_of_the_scores_it_wrote_against_the_stored_labels(run: Run):
    scores = pl.read_parquet(run.folder / "scores.parquet")
    stored = run.store.read("labels")
    since = evaluated_from(run.stdout)
    printed = printed_table(run.stdout, "IC out of sample", ROWS)
    client = mlflow.MlflowClient(run.mlflow_uri)
    research_run = client.get_run(run.folder.name)
    assert research_run.info.status == "FINISHED"
    for name in ROWS:
        expected = summary(daily_correlations(scores.filter(pl.col("date") >= since), stored, name))
        # printed to 4 decimals; MLflow holds the full figures
        assert printed[name] == pytest.approx(expected, abs=5.1e-5), name
        logged = [research_run.data.metrics[f"{name}.{c}"] for c in research.IC_COLUMNS]
        assert logged == pytest.approx(expected, rel=1e-9, abs=1e-12), name
    # on the synthetic market's planted reversal the models rank the right way
    assert printed["rank_ensemble"][2] > 0
    artifacts = {a.path for a in client.list_artifacts(research_run.info.run_id)}
    assert {"scores.parquet", "ic_table.csv", "ic_by_year.csv", "backtest_metrics.csv"} <= artifacts


def test_no_session_is_scored_inside_the_first_window_and_the_weights_come_before_the_table(
    run: Run,
):
    scores = pl.read_parquet(run.folder / "scores.parquet")
    sessions = trading_sessions(
        date.fromisoformat(FIRST), date.fromisoformat(LAST_LABEL) + timedelta(days=1)
    )
    first_scored = scores.drop_nulls("lightgbm")["date"].min()
    assert first_scored == sessions[TRAIN + PURGE]
    assert evaluated_from(run.stdout) == sessions[TRAIN + PURGE + WEIGHTS]
    # rank_ensemble's weights: each model's Rank ICIR over the weights sessions (clipped at 0)
    weighting = scores.filter(pl.col("date") < sessions[TRAIN + PURGE + WEIGHTS])
    icir = {}
    for model in MODELS:
        daily = daily_correlations(weighting, run.store.read("labels"), model)["rank_ic"]
        icir[model] = max(daily.mean() / daily.std(ddof=1), 0.0)
    metrics = mlflow.MlflowClient(run.mlflow_uri).get_run(run.folder.name).data.metrics
    for model in MODELS:
        expected = icir[model] / sum(icir.values())
        assert metrics[f"rank_ensemble.weight.{model}"] == pytest.approx(expected, rel=1e-9)


def test_the_backtest_trades_those_scores_and_prints_the_stored_metrics(run: Run):
    metrics = run.store.read("backtest_metrics")
    strategies = tuple(metrics["strategy"])
    assert set(strategies) == {
        "hrp",
        "lightgbm/black_litterman",
        "catboost/black_litterman",
        "ensemble/black_litterman",
        "benchmark/index",
        "benchmark/equal_weight",
    }
    printed = printed_table(run.stdout, "backtest (backtest_metrics)", strategies)
    for row in metrics.iter_rows(named=True):
        shown = [row[c] for c in research.SHOWN_METRICS]
        values = [np.nan if v is None else v for v in shown]
        assert printed[row["strategy"]] == pytest.approx(values, abs=5.1e-5, nan_ok=True)
    # the strategies' mean IC is that of the scores the command wrote, and no step retrained
    scores = pl.read_parquet(run.folder / "scores.parquet")
    daily = daily_correlations(scores, run.store.read("labels"), "lightgbm")
    strategy = metrics.filter(pl.col("strategy") == "lightgbm/black_litterman")
    assert strategy["mean_ic"].item() == pytest.approx(daily["rank_ic"].mean(), rel=1e-9)
    # the asset's run is on the Dagster instance (the UI's) and nested in the command's MLflow run
    with dg.DagsterInstance.from_config(str(run.dagster_home)) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("backtest"))
    assert event is not None
    metadata = event.asset_materialization.metadata
    assert "walk_forward_training" not in metadata["seconds"].value
    child = mlflow.MlflowClient(run.mlflow_uri).get_run(
        metadata["mlflow_run"].value.rsplit("/")[-1]
    )
    assert child.data.tags["mlflow.parentRunId"] == run.folder.name
    hrp = metrics.filter(pl.col("strategy") == "hrp")["sharpe"].item()
    assert child.data.metrics["hrp.sharpe"] == pytest.approx(hrp, rel=1e-12)
    # each calendar year's net return, compounded by hand from the stored daily returns
    years = printed_table(run.stdout, "net return by calendar year", strategies)
    daily = run.store.read("backtest_returns")
    for strategy, printed in years.items():
        rows = daily.filter(pl.col("strategy") == strategy)
        by_year = [
            float(np.prod(1.0 + group["net_return"].to_numpy()) - 1.0)
            for _, group in rows.group_by(pl.col("date").dt.year(), maintain_order=True)
        ]
        costs = float(rows["cost"].sum())
        assert printed == pytest.approx([*by_year, costs], abs=5.1e-5), strategy


def _main(argv: list[str], monkeypatch, env: dict[str, str], capsys) -> tuple[int, list[str]]:
    # the store and MLflow of the module; the data directory of the test (conftest's)
    for name, value in env.items():
        if name != "QUANT_DATA_DIR":
            monkeypatch.setenv(name, value)
    try:
        code = research.main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, capsys.readouterr().err.strip().splitlines()


def test_a_realisable_session_without_a_label_stops_the_command_before_any_training(
    env, monkeypatch, capsys
):
    code, err = _main(["--end", LAST_BAR], monkeypatch, env, capsys)
    # 2024-06-21's horizon (06-28) has closed, so its label is missing; 06-24..06-28's are not due
    assert code == 2 and len(err) == 1
    assert err[0].startswith("quant-research: no labels stored for 2024-06-21 (1 of the range's")
    assert f"run `quant-daily --end {LAST_BAR} --sessions" in err[0]
    assert not (data_dir() / "research").exists()  # nothing ran


def test_a_hole_in_the_stored_labels_is_named_as_a_span(env, monkeypatch, capsys, tmp_path):
    close_all()
    copy = tmp_path / "holed.duckdb"
    shutil.copy(env["QUANT_STORE_URL"], copy)
    holed = Store(url=str(copy))
    empty = holed.read("labels", date(2023, 9, 1), date(2023, 9, 1))
    holed.write_partition("labels", empty, date(2023, 9, 1), date(2023, 10, 2))
    close_all()
    code, err = _main(ARGS, monkeypatch, {**env, "QUANT_STORE_URL": str(copy)}, capsys)
    assert code == 2 and len(err) == 1
    september = trading_sessions(date(2023, 9, 1), date(2023, 10, 2))
    assert err[0].startswith(
        f"quant-research: no labels stored for 2023-09-01..2023-09-29 ({len(september)} of"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--start", "2024-13-01"], "--start '2024-13-01' is not a date: use YYYY-MM-DD"),
        (["--start", "2024-06-20", "--end", "2024-01-02"], "--start 2024-06-20 is after --end"),
        (["--set", "astrology=1"], "--set astrology: not a config field"),
        (["--set", "train_sessions=5"], "--set train_sessions: use the command's own option"),
        (["--select", "astrology=1"], "--select astrology: not a config field"),
        (["--select", "cutoff=2024-01-02"], "--select cutoff: use the command's own option"),
        (["--methods", "astrology"], "astrology"),
        (["--models", "xgboost"], "models must be a non-empty subset"),
        (["--retrain", "weekly"], "argument --retrain: invalid int value: 'weekly'"),
        (["--train-sessions", "400"], "holds 368 sessions of alpha158; the walk-forward needs"),
    ],
)
def test_a_bad_argument_is_one_line_and_exit_2(argv, message, env, monkeypatch, capsys):
    code, err = _main(["--end", LAST_LABEL, *argv], monkeypatch, env, capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("quant-research: ") and message in err[0]


def test_quant_research_and_make_research_are_declared():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["quant-research"] == "apps.research:main"
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "research: bootstrap\n\t$(UV) run quant-research $(ARGS)" in makefile


def test_a_failed_backtest_run_is_reported_by_its_root_error_in_one_line():
    @dg.asset
    def broken() -> None:
        raise ValueError("2011-02-17: benchmark SPY has no return this session\nsecond line")

    result = dg.materialize([broken], raise_on_error=False)
    assert research.failure_of(result) == "2011-02-17: benchmark SPY has no return this session"


def test_a_searched_selection_is_stored_and_scores_the_year_from_its_cutoff_only(
    env: dict[str, str], selected
):
    searched, _ = selected
    store = Store(url=env["QUANT_STORE_URL"])
    chosen = store.read("model_selection", where={"chosen": [True]})
    assert chosen["cutoff"].to_list() == [CUTOFF]
    from quant_assets.models.selection import ModelChoice
    from quant_assets.models.selection_assets import describe

    choice = ModelChoice.from_json(chosen["choice"][0])
    assert f"from {CUTOFF}: {describe(choice)}" in searched.stdout
    scores = pl.read_parquet(files_of(searched) / "scores.parquet")
    assert scores["date"].min() >= CUTOFF
    assert evaluated_from(searched.stdout) == CUTOFF
    # the ensemble row of the IC table is the scores' own daily IC against the stored label
    printed = printed_table(searched.stdout, "IC out of sample", (*MODELS, "ensemble"))
    stored_labels = store.read("labels", columns=["ticker", "date", "label"])
    for name in (*MODELS, "ensemble"):
        expected = summary(daily_correlations(scores, stored_labels, name))
        np.testing.assert_allclose(printed[name], expected, rtol=2e-3, atol=6e-4)
    quality = pl.read_csv(files_of(searched) / "quality_by_year.csv")
    assert set(quality["year"].cast(pl.String)) == {"2024", "all"}
    assert {"spread_net", "positive_months", "importance_stability"} <= set(quality.columns)


def test_the_stored_selection_gives_the_searched_scores_again(selected):
    searched, stored = selected
    first = pl.read_parquet(files_of(searched) / "scores.parquet")
    again = pl.read_parquet(files_of(stored) / "scores.parquet")
    assert first.equals(again)
    assert "model selection for" not in stored.stdout


def test_a_missing_stored_selection_names_the_cutoff_and_how_to_store_it(tmp_path):
    empty = Store(url=str(tmp_path / "empty.duckdb"))
    with pytest.raises(
        research.ResearchError, match="no model_selection stored for the cutoff 2024-01-02"
    ):
        research.stored_selection(empty, CUTOFF)


def test_an_evaluation_year_without_history_before_it_is_one_line(env, monkeypatch, capsys):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = ["--selection", "stored", "--evaluate-from", "2023", "--end", LAST_LABEL]
    code = research.main([*args, "--train-sessions", str(TRAIN), "--skip-backtest"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "no evaluation year from 2023" in err and "--evaluate-from" in err
