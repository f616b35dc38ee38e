"""``quant-research``: does the model work on my data? Over a range of what the daily job stored
(``raw_bars``, ``alpha158``, ``labels``), the walk-forward evaluation of every model, then the
backtest of its scores; prints the IC table and the backtest table and logs both to MLflow.

1. Inputs are checked before anything is trained: a session of the range with Alpha158 but no
   stored label (other than those ``label_gaps`` explains and the last sessions, whose 5-session
   horizon has not closed) stops the command with one line naming the sessions.
2. Walk-forward, under the model selection (``--selection search``, the default): for each
   evaluation year (from ``--evaluate-from``, default the first year with ``--train-sessions``
   of history before it) the ``model_selection`` asset chooses the configuration on the data
   before the year's first session only (:mod:`quant_assets.models.selection`; stored and
   logged to MLflow; ``--select FIELD=VALUE`` sets its config), then each model is retrained
   every ``--retrain`` sessions under that choice and scores the next block out of sample
   (:func:`~quant_assets.models.selection.walk_forward_selected`); ``ensemble`` combines them
   with the selection's weights and neutralisation. ``--selection stored`` reads the stored
   selections instead; ``--selection none`` is the platform's defaults without a selection:
   each model retrained every ``--retrain`` sessions on the last ``--train-sessions``
   (:func:`quant_assets.research.walk_forward.model_scores`, the backtest's own step 1),
   ``ensemble`` their equal-weight rank ensemble and ``rank_ensemble`` weighted by their Rank
   ICIR over the first ``--weights-sessions`` out-of-sample sessions. The IC table covers the
   evaluated sessions, for every row; ICIR = mean / std of the daily IC (not annualised), as in
   Qlib's tables. The quality table adds, per score and calendar year, the share of months with
   a positive mean Rank IC, the weekly top-minus-bottom quintile spread gross and after 5 bps a
   side with its turnover, and each model's feature-importance stability
   (:mod:`quant_assets.models.quality`).
3. Backtest: the ``backtest`` asset materialized on the Dagster instance (so the UI shows it)
   with the same range, models and sizes, trading the scores of step 2 (not retrained); its
   ``backtest_metrics`` are printed.

Everything goes to the MLflow experiment ``research`` (the backtest's run nested in the
command's), and to ``<data dir>/research/<MLflow run id>/`` (``scores.parquet`` with the labels,
``ic_table.csv``, ``ic_by_year.csv``, ``quality_by_year.csv``, ``backtest_metrics.csv``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import typing
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import mlflow
import pandas as pd
import polars as pl
import pydantic

from apps.cli import dagster_home
from quant_assets.models.assets import stored_choice
from quant_assets.models.cross_section import daily_ic, summarise_ic
from quant_assets.models.ensemble import RankEnsemble
from quant_assets.models.quality import importance_stability, yearly_quality
from quant_assets.models.selection import (
    SelectedScores,
    Selection,
    SelectionSpec,
    walk_forward_selected,
)
from quant_assets.models.selection_assets import (
    HORIZONS,
    ModelSelectionConfig,
    describe,
    first_session_of_year,
    model_selection,
    selection_data,
)
from quant_assets.research.assets import (
    SHOWN_METRICS,
    BacktestConfig,
    backtest,
    stored_history,
)
from quant_assets.research.performance import costs_paid, yearly_returns
from quant_assets.research.walk_forward import BacktestSpec, Market, model_scores
from quant_core.calendar import shift_sessions, trading_sessions
from quant_core.conventions import LABEL_HORIZON_SESSIONS, TRADING_DAYS
from resources.config import resources_from_env, store_from_env
from resources.mlflow import (
    default_artifact_location,
    default_tracking_uri,
    ensure_experiment,
    mlflow_resource,
)
from resources.portfolio_policy import PortfolioPolicy
from resources.settings import data_dir
from resources.storage import SchemaError, Store

EXPERIMENT = "research"
RANK_ENSEMBLE = "rank_ensemble"
IC_COLUMNS = ("ic_mean", "icir", "rank_ic_mean", "rank_icir", "n_dates")
# the walk-forward's training window: the weekly training's (alpha_model's window_sessions)
TRAIN_SESSIONS = 756
SELECTION_MODES = ("search", "stored", "none")
SPREAD_COST_BPS = 5.0
# BacktestConfig fields the named options set
_NAMED = ("start", "end", "models", "methods", "train_sessions", "retrain_every", "scores_path")


class ResearchError(Exception):
    """What the command cannot do, in one line for the user."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        """One line, not argparse's usage block."""
        print(f"{self.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)


def argument_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="quant-research", description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", help="first session, YYYY-MM-DD (default: the first stored)")
    parser.add_argument("--end", help="last session, YYYY-MM-DD (default: the last stored)")
    parser.add_argument(
        "--models",
        default=",".join(BacktestSpec.models),
        help="comma-separated (default %(default)s; tft too)",
    )
    parser.add_argument(
        "--methods", default="", help="allocation methods of the backtest (default: the policy's)"
    )
    parser.add_argument(
        "--train-sessions",
        type=int,
        default=TRAIN_SESSIONS,
        help="training window (default %(default)s)",
    )
    parser.add_argument(
        "--retrain",
        type=int,
        default=BacktestSpec.retrain_every,
        help="sessions between retrainings (default %(default)s; 5 = weekly, as the live job)",
    )
    parser.add_argument(
        "--weights-sessions",
        type=int,
        default=TRADING_DAYS,
        help="first out-of-sample sessions that set rank_ensemble's weights (default %(default)s)",
    )
    parser.add_argument(
        "--selection",
        choices=SELECTION_MODES,
        default="search",
        help="the model's configuration per evaluation year: search (the model_selection asset "
        "on the data before each year), stored (the stored selections), none (the defaults, "
        "every --retrain sessions) (default %(default)s)",
    )
    parser.add_argument(
        "--evaluate-from",
        type=int,
        help="first evaluation year of a selection (default: the first with --train-sessions "
        "of history before it)",
    )
    parser.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a model_selection config field for --selection search (e.g. max_configurations=5)",
    )
    parser.add_argument("--skip-backtest", action="store_true", help="the IC table only")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="any other backtest config field (e.g. reoptimise_every=10, lightgbm_n_estimators=50)",
    )
    parser.add_argument(
        "--experiment", default=EXPERIMENT, help="MLflow experiment (default %(default)s)"
    )
    return parser


def field_items(
    option: str, items: list[str], known: typing.Iterable[str], own: typing.Iterable[str] = ()
) -> dict[str, Any]:
    """``option FIELD=VALUE`` items as config fields (VALUE read as JSON where it parses);
    ``own`` are the fields the command sets through its own options."""
    known, own = sorted(set(known) - set(own)), set(own)
    fields: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise ResearchError(f"{option} {item!r}: expected FIELD=VALUE")
        if name in own:
            raise ResearchError(f"{option} {name}: use the command's own option for it")
        if name not in known:
            raise ResearchError(f"{option} {name}: not a config field ({', '.join(known)})")
        try:
            fields[name] = json.loads(raw)
        except json.JSONDecodeError:
            fields[name] = raw
    return fields


def backtest_config(args: argparse.Namespace, start: date, end: date) -> BacktestConfig:
    """The backtest's config over [start, end] (its ``end`` is exclusive), checked."""
    fields = {
        "start": start.isoformat(),
        "end": (end + timedelta(days=1)).isoformat(),
        "models": [m for m in args.models.split(",") if m],
        "methods": [m for m in args.methods.split(",") if m],
        "train_sessions": args.train_sessions,
        "retrain_every": args.retrain,
        **field_items("--set", args.set, BacktestConfig.model_fields, _NAMED),
    }
    try:
        config = BacktestConfig(**fields)
        config.spec()
        config.policy(PortfolioPolicy())
    except pydantic.ValidationError as error:
        raise ResearchError(
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        ) from None
    except ValueError as error:
        raise ResearchError(str(error)) from None
    return config


def stored_sessions(store: Store, table: str, start: date | None, end: date | None) -> list[date]:
    """The distinct dates ``table`` holds in [start, end] (either bound optional)."""
    stop = end + timedelta(days=1) if end else None
    return store.read(table, start, stop, columns=["date"])["date"].unique().sort().to_list()


def given_date(option: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ResearchError(f"{option} {value!r} is not a date: use YYYY-MM-DD") from None


def research_range(store: Store, start: date | None, end: date | None) -> tuple[date, date]:
    """[start, end] with the missing bounds taken from what ``alpha158`` holds."""
    bounds = store.date_bounds("alpha158")
    if bounds is None:
        raise ResearchError(
            "no alpha158 stored: run `quant-daily --end <last session> --sessions <n>` first"
        )
    first, last = start or bounds[0], end or bounds[1]
    if first > last:
        raise ResearchError(f"--start {first} is after --end {last}")
    return first, last


def spans(days: list[date], sessions: list[date]) -> list[tuple[date, date]]:
    """``days`` (a subset of ``sessions``) as runs of consecutive ``sessions``."""
    position = {day: i for i, day in enumerate(sessions)}
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and position[day] == position[runs[-1][1]] + 1:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def missing_labels(store: Store, sessions: list[date], start: date, end: date) -> list[date]:
    """Sessions of ``sessions`` with no stored label that nothing explains: ``label_gaps`` has no
    benchmark row for them and their horizon closed before the last stored bar."""
    labelled = set(stored_sessions(store, "labels", start, end))
    gaps = store.read(
        "label_gaps", start, end + timedelta(days=1), columns=["ticker", "date", "reason"]
    )
    explained = set(gaps.filter(pl.col("reason").str.starts_with("benchmark"))["date"].to_list())
    bounds = store.date_bounds("raw_bars")
    realised_by = shift_sessions(bounds[1], LABEL_HORIZON_SESSIONS) if bounds else start
    return [d for d in sessions if d not in labelled and d not in explained and d <= realised_by]


def check_stored(store: Store, start: date, end: date, needed: int) -> list[date]:
    """The range's Alpha158 sessions once every one of them that can have a label has one and
    there are at least ``needed``; otherwise what is missing and how to store it."""
    sessions = stored_sessions(store, "alpha158", start, end)
    calendar = trading_sessions(start, end + timedelta(days=1))
    fill = (
        f"run `quant-daily --end {end} --sessions {len(calendar)}` first, or narrow --start/--end"
    )
    if not sessions:
        raise ResearchError(f"no alpha158 stored for {start}..{end}: {fill}")
    missing = missing_labels(store, sessions, start, end)
    if missing:
        runs = [f"{a}..{b}" if a != b else str(a) for a, b in spans(missing, sessions)]
        more = f" and {len(runs) - 3} more spans" if len(runs) > 3 else ""
        raise ResearchError(
            f"no labels stored for {', '.join(runs[:3])}{more} ({len(missing)} of the range's "
            f"{len(sessions)} sessions): {fill}"
        )
    if len(sessions) < needed:
        raise ResearchError(
            f"{start}..{end} holds {len(sessions)} sessions of alpha158; the walk-forward needs "
            f"{needed} (--train-sessions + the {LABEL_HORIZON_SESSIONS}-session purge + "
            "--retrain, + --weights-sessions with --selection none): widen the range or lower them"
        )
    return sessions


@dataclass
class Evaluation:
    """The walk-forward's out-of-sample ``scores`` (one column per model, ``ensemble`` and
    ``rank_ensemble``), rank_ensemble's ``weights`` and the sessions that set them, the first
    session the IC table covers and how long the walk-forward took."""

    scores: pd.DataFrame
    weights: dict[str, float]
    weights_period: tuple[date, date]
    evaluated_from: date
    seconds: float
    # with a selection: the configuration in force from each cutoff (fields off the defaults)
    choices: dict[date, str] = field(default_factory=dict)


def evaluate(
    X: pd.DataFrame, market: Market, spec: BacktestSpec, weights_sessions: int
) -> Evaluation:
    """Step 2 of the module docstring."""
    started = time.perf_counter()
    scores = model_scores(X, market.labels, market.sectors, spec)
    seconds = time.perf_counter() - started
    scored = scores.dropna(how="all").index.get_level_values("date").unique().sort_values()
    if len(scored) <= weights_sessions:
        raise ResearchError(
            f"{len(scored)} out-of-sample sessions, not more than --weights-sessions "
            f"{weights_sessions}: widen the range or lower --weights-sessions"
        )
    dates = scores.index.get_level_values("date")
    first_evaluated = scored[weights_sessions]
    in_weights = dates < first_evaluated
    rank_icir = {
        model: summarise_ic(daily_ic(scores.loc[in_weights, model], market.labels))["rank_icir"]
        for model in spec.models
    }
    ensemble = RankEnsemble.from_validation(rank_icir)
    scores[RANK_ENSEMBLE] = ensemble.combine({m: scores[m] for m in spec.models})
    return Evaluation(
        scores=scores,
        weights=ensemble.weights,
        weights_period=(scored[0].date(), scored[weights_sessions - 1].date()),
        evaluated_from=first_evaluated.date(),
        seconds=seconds,
    )


def evaluation_cutoffs(
    sessions: list[date], end: date, train_sessions: int, first_year: int | None
) -> list[date]:
    """The first session of every evaluation year: from ``first_year``, or the first year with
    ``train_sessions`` stored sessions (and a 20-session horizon) before it, to ``end``'s."""
    if first_year is None:
        needed = train_sessions + max(HORIZONS)
        if len(sessions) <= needed:
            raise ResearchError(
                f"{len(sessions)} stored sessions: a selection needs more than {needed} before "
                "its first evaluation year"
            )
        first_year = sessions[needed].year + 1
    cutoffs = [first_session_of_year(y) for y in range(first_year, end.year + 1)]
    cutoffs = [c for c in cutoffs if c <= end]
    if not cutoffs or cutoffs[0] <= sessions[0]:
        raise ResearchError(
            f"no evaluation year from {first_year} within {sessions[0]}..{end}: "
            "set --evaluate-from to a year of the range after its first session"
        )
    return cutoffs


def materialize(
    asset: Any, op_config: dict[str, Any], experiment: str, parent_run_id: str
) -> dg.ExecuteInProcessResult:
    """``asset`` on the Dagster instance with the code location's resources, its MLflow run
    nested under the command's."""
    resources = {
        **resources_from_env(),
        "mlflow": mlflow_resource.configured(
            {"experiment_name": experiment, "parent_run_id": parent_run_id}
        ),
    }
    with dg.DagsterInstance.from_config(str(dagster_home())) as instance:
        return dg.materialize(
            [asset],
            resources=resources,
            run_config={
                "ops": {asset.op.name: {"config": op_config}},
                "loggers": {"console": {"config": {"log_level": "INFO"}}},
            },
            instance=instance,
            raise_on_error=False,
        )


def stored_selection(store: Store, cutoff: date) -> Selection:
    """The stored selection of ``cutoff`` (its choice and ensemble weights)."""
    choice, weights, stored_cutoff = stored_choice(store, cutoff)
    if stored_cutoff != cutoff or weights is None:
        raise ResearchError(
            f"no model_selection stored for the cutoff {cutoff}: run with --selection search, "
            f"or materialize model_selection with cutoff {cutoff}"
        )
    return Selection(cutoff, choice, weights, pd.DataFrame(), 0.0)


def selection_fields(args: argparse.Namespace) -> dict[str, Any]:
    """``--select`` as model_selection config fields (the cutoff is the command's)."""
    return field_items("--select", args.select, ModelSelectionConfig.model_fields, ["cutoff"])


def selections(
    store: Store, cutoffs: list[date], args: argparse.Namespace, run: Any
) -> list[Selection]:
    """Each cutoff's selection: searched now (the ``model_selection`` asset, stored) or read."""
    fields = selection_fields(args)
    out = []
    for cutoff in cutoffs:
        if args.selection == "search":
            config = {**fields, "cutoff": cutoff.isoformat()}
            print(f"model selection for {cutoff} (data before it only)...", flush=True)
            result = materialize(model_selection, config, args.experiment, run.info.run_id)
            if not result.success:
                raise ResearchError(f"the model selection failed: {failure_of(result)}")
        out.append(stored_selection(store, cutoff))
    return out


def evaluate_selected(
    store: Store,
    config: BacktestConfig,
    args: argparse.Namespace,
    run: Any,
) -> tuple[Evaluation, SelectedScores]:
    """Step 2 with a selection: each evaluation year scored weekly (every --retrain sessions)
    under the configuration chosen on the data before it."""
    spec = config.spec()
    if "tft" in spec.models:
        raise ResearchError("--selection chooses the boosted models' configuration: drop tft")
    start, end = date.fromisoformat(config.start or ""), date.fromisoformat(config.end or "")
    data = selection_data(store, start, end)
    sessions = sorted({d.date() for d in data.X.index.get_level_values(0).unique()})
    cutoffs = evaluation_cutoffs(sessions, sessions[-1], spec.train_sessions, args.evaluate_from)
    chosen = selections(store, cutoffs, args, run)
    for selection in chosen:
        weights = ", ".join(f"{m} {w:.3f}" for m, w in selection.weights.items())
        print(f"from {selection.cutoff}: {describe(selection.choice)}; weights {weights}")
    started = time.perf_counter()
    selection_spec = SelectionSpec(models=spec.models, window_sessions=spec.train_sessions)
    result = walk_forward_selected(
        data, chosen, end, spec.retrain_every, selection_spec, log=lambda _: None
    )
    evaluation = Evaluation(
        scores=result.scores,
        weights=chosen[-1].weights,
        weights_period=(cutoffs[-1], cutoffs[-1]),
        evaluated_from=cutoffs[0],
        seconds=time.perf_counter() - started,
        choices={s.cutoff: describe(s.choice) for s in chosen},
    )
    return evaluation, result


def quality_report(
    evaluation: Evaluation, labels: pd.Series, result: SelectedScores | None
) -> pd.DataFrame:
    """Per score column and calendar year (and ``all``): Rank IC, its IR, the share of positive
    months, the weekly top-minus-bottom quintile spread gross and after 5 bps a side, its
    turnover; the importance stability of each model's retrainings in ``all``'s row."""
    scores = evaluated(evaluation)
    frames = {}
    for name in scores.columns:
        table = yearly_quality(scores[name].dropna(), labels, cost_bps=SPREAD_COST_BPS)
        if result is not None and name in result.importances:
            table.loc["all", "importance_stability"] = importance_stability(
                result.importances[name]
            )
        frames[name] = table
    return pd.concat(frames, names=["score", "year"])


def evaluated(evaluation: Evaluation) -> pd.DataFrame:
    """The scores of the sessions the IC table covers."""
    dates = evaluation.scores.index.get_level_values("date")
    return evaluation.scores[dates >= pd.Timestamp(evaluation.evaluated_from)]


def ic_table(evaluation: Evaluation, labels: pd.Series) -> pd.DataFrame:
    """Per score column: mean daily IC and Rank IC, their ICIR and the number of dates."""
    scores = evaluated(evaluation)
    rows = {name: summarise_ic(daily_ic(scores[name], labels)) for name in scores.columns}
    table = pd.DataFrame.from_dict(rows, orient="index")[list(IC_COLUMNS)]
    table["n_dates"] = table["n_dates"].astype(int)
    return table


def rank_ic_by_year(evaluation: Evaluation, labels: pd.Series) -> pd.DataFrame:
    """Mean daily Rank IC per calendar year and score column: one regime can carry a mean."""
    scores = evaluated(evaluation)
    yearly = {
        name: daily_ic(scores[name], labels)["rank_ic"].groupby(lambda d: d.year).mean()
        for name in scores.columns
    }
    frame = pd.DataFrame(yearly)
    frame.index.name = "year"
    return frame


def shown(frame: pd.DataFrame) -> str:
    with pd.option_context(
        "display.width", 200, "display.max_columns", None, "display.max_rows", None
    ):
        return frame.to_string(float_format=lambda v: f"{v:.4f}")


def write_scores(folder: Path, evaluation: Evaluation, labels: pd.Series) -> Path:
    """``scores.parquet``: date, ticker, every score column and the stored label, for the
    out-of-sample rows (the backtest reads it as its config's ``scores_path``)."""
    scores = evaluation.scores.dropna(how="all")
    frame = scores.assign(label=labels.reindex(scores.index)).reset_index()
    path = folder / "scores.parquet"
    pl.from_pandas(frame).with_columns(pl.col("date").cast(pl.Date)).write_parquet(path)
    return path


def start_run(experiment: str) -> Any:
    """A new MLflow run in ``experiment`` on the platform's tracking store."""
    uri = default_tracking_uri()
    mlflow.set_tracking_uri(uri)
    experiment_id = ensure_experiment(experiment, uri, default_artifact_location())
    return mlflow.start_run(experiment_id=experiment_id, run_name="quant-research")


def log_evaluation(
    config: BacktestConfig, args: argparse.Namespace, evaluation: Evaluation, table: pd.DataFrame
) -> None:
    """The parameters, every IC figure and rank_ensemble's weights, into the active run."""
    mlflow.log_params(
        {
            **{
                k: v for k, v in config.model_dump().items() if v is not None and k != "scores_path"
            },
            "weights_sessions": args.weights_sessions,
            "purge": LABEL_HORIZON_SESSIONS,
            "weights_period": "..".join(map(str, evaluation.weights_period)),
            "evaluated_from": str(evaluation.evaluated_from),
        }
    )
    mlflow.log_metrics(
        {
            **{
                f"{name}.{column}": float(value)
                for name, row in table.to_dict("index").items()
                for column, value in row.items()
                if pd.notna(value)
            },
            **{f"{RANK_ENSEMBLE}.weight.{m}": w for m, w in evaluation.weights.items()},
            "walk_forward_seconds": evaluation.seconds,
        }
    )


def materialize_backtest(
    config: BacktestConfig, experiment: str, parent_run_id: str
) -> dg.ExecuteInProcessResult:
    """The ``backtest`` asset (:func:`materialize`) with the command's config."""
    given = config.model_dump(exclude_none=True, exclude_defaults=True)
    return materialize(backtest, given, experiment, parent_run_id)


def failure_of(result: dg.ExecuteInProcessResult) -> str:
    """The first failed step's root error (Dagster wraps it), its first line without the
    exception's class."""
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        while error is not None and error.cause is not None:
            error = error.cause
        if error is not None:
            return re.sub(r"^[\w.]+: ", "", error.message.strip().splitlines()[0])
    return "the run failed"


def run_backtest_step(
    store: Store, config: BacktestConfig, scores_path: Path, experiment: str, run: Any
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Step 3: the backtest of ``scores_path``; its stored ``backtest_metrics``, best first,
    and its materialization's metadata (stage times, cadences, the days each rule fired)."""
    traded = BacktestConfig(**{**config.model_dump(), "scores_path": str(scores_path)})
    result = materialize_backtest(traded, experiment, run.info.run_id)
    if not result.success:
        raise ResearchError(f"the backtest failed: {failure_of(result)}")
    metrics = store.read("backtest_metrics")
    event = result.asset_materializations_for_node("backtest")[0]
    facts = {
        key: event.metadata[key].value
        for key in ("cadence", "drawdown_rule_days", "stop_loss_days", "seconds")
    }
    return metrics.sort("sharpe", descending=True, nulls_last=True), facts


def backtest_facts(facts: dict[str, Any]) -> str:
    """How often each strategy was re-decided (the others' common cadence on one line), the
    days the live rules fired and the stage times."""
    cadence: dict[str, list[str]] = {}
    for strategy, how in facts["cadence"].items():
        cadence.setdefault(how, []).append(strategy)
    lines = [f"re-decided {how}: {', '.join(sorted(names))}" for how, names in cadence.items()]
    seconds = ", ".join(f"{k} {v} s" for k, v in facts["seconds"].items())
    return "\n".join(
        [
            *lines,
            f"drawdown rule fired (days): {facts['drawdown_rule_days']}; "
            f"stop-loss days: {facts['stop_loss_days']}",
            f"backtest stages: {seconds}",
        ]
    )


def backtest_years(store: Store, order: list[str]) -> pl.DataFrame:
    """The stored backtest's net return by calendar year and its costs, in ``order``."""
    returns = store.read("backtest_returns")
    by_year = yearly_returns(returns).join(costs_paid(returns), on="strategy")
    rank = pl.DataFrame({"strategy": order, "rank": range(len(order))})
    return by_year.join(rank, on="strategy", how="left").sort("rank").drop("rank")


def report(evaluation: Evaluation, table: pd.DataFrame, yearly: pd.DataFrame) -> str:
    if evaluation.choices:
        header = (
            f"walk-forward: {evaluation.seconds:.1f} s; configuration from each cutoff: "
            + "; ".join(f"{c}: {d}" for c, d in evaluation.choices.items())
            + f"\nIC out of sample from {evaluation.evaluated_from} (ensemble: the selection's "
            "weights and neutralisation; ICIR = mean / std of the daily IC):"
        )
    else:
        weights = ", ".join(f"{m} {w:.3f}" for m, w in evaluation.weights.items())
        first, last = evaluation.weights_period
        header = (
            f"walk-forward: {evaluation.seconds:.1f} s; {RANK_ENSEMBLE} weights from the Rank "
            f"ICIR of {first}..{last}: {weights}\n"
            f"IC out of sample from {evaluation.evaluated_from} (ensemble: equal weights, the "
            "backtest's; ICIR = mean / std of the daily IC):"
        )
    return f"{header}\n{shown(table)}\nmean daily Rank IC by year:\n{shown(yearly)}"


def load(store: Store, args: argparse.Namespace) -> tuple[BacktestConfig, pd.DataFrame, Market]:
    """Step 1: the config of the range, its inputs checked, and the stored history."""
    start, end = research_range(
        store, given_date("--start", args.start), given_date("--end", args.end)
    )
    config = backtest_config(args, start, end)
    spec = config.spec()
    # with a selection the ensemble's weights come from it, not from --weights-sessions
    weights_sessions = args.weights_sessions if args.selection == "none" else 0
    needed = spec.train_sessions + LABEL_HORIZON_SESSIONS + weights_sessions + spec.retrain_every
    sessions = check_stored(store, start, end, needed)
    X, market = stored_history(store, config)
    print(
        f"quant-research: {sessions[0]}..{sessions[-1]}, {len(sessions)} sessions, "
        f"{X.index.get_level_values('ticker').nunique()} tickers; models "
        f"{', '.join(spec.models)} retrained every {spec.retrain_every} sessions on the last "
        f"{spec.train_sessions}",
        flush=True,
    )
    return config, X, market


def research(args: argparse.Namespace) -> None:
    store = store_from_env()
    selection_fields(args)  # a bad --select stops the command before anything is loaded
    config, X, market = load(store, args)
    with start_run(args.experiment) as run:
        result = None
        if args.selection == "none":
            evaluation = evaluate(X, market, config.spec(), args.weights_sessions)
        else:
            evaluation, result = evaluate_selected(store, config, args, run)
        table = ic_table(evaluation, market.labels)
        yearly = rank_ic_by_year(evaluation, market.labels)
        quality = quality_report(evaluation, market.labels, result)
        print(report(evaluation, table, yearly), flush=True)
        print(
            f"quality by year (5-session label; spread: weekly top-minus-bottom quintile, "
            f"annualised, net of {SPREAD_COST_BPS:g} bps a side):\n{shown(quality)}",
            flush=True,
        )
        folder = data_dir() / "research" / run.info.run_id
        folder.mkdir(parents=True, exist_ok=True)
        scores_path = write_scores(folder, evaluation, market.labels)
        table.to_csv(folder / "ic_table.csv", index_label="model")
        yearly.to_csv(folder / "ic_by_year.csv")
        quality.to_csv(folder / "quality_by_year.csv")
        log_evaluation(config, args, evaluation, table)
        if not args.skip_backtest:
            backtest_step(store, config, scores_path, args.experiment, run, folder)
        mlflow.log_artifacts(str(folder))
        print(f"MLflow run {run.info.run_id} (experiment {args.experiment}); files in {folder}")


def backtest_step(
    store: Store, config: BacktestConfig, scores_path: Path, experiment: str, run: Any, folder: Path
) -> None:
    """Step 3, printed and written to ``folder``."""
    metrics, facts = run_backtest_step(store, config, scores_path, experiment, run)
    metrics.write_csv(folder / "backtest_metrics.csv")
    rows = metrics.select("strategy", *SHOWN_METRICS).to_pandas().set_index("strategy")
    print(f"backtest (backtest_metrics):\n{shown(rows)}")
    print(backtest_facts(facts))
    by_year = backtest_years(store, metrics["strategy"].to_list())
    by_year.write_csv(folder / "backtest_yearly_returns.csv")
    print(
        "net return by calendar year, and costs paid:\n"
        f"{shown(by_year.to_pandas().set_index('strategy'))}"
    )


def main(argv: list[str] | None = None) -> int:
    args = argument_parser().parse_args(argv)
    try:
        research(args)
    except (ResearchError, SchemaError) as error:
        print(f"quant-research: {error}", file=sys.stderr)
        return 2
    except dg.Failure as failure:
        print(f"quant-research: {failure.description}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
