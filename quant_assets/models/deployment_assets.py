"""``model_deployment``: who scores each session, decided at its close before its scores
(:mod:`quant_assets.models.deployment`), with the shadow record it was decided on and the events
it produced, each a table (``model_deployments``, ``shadow_record``, ``model_events``). The
events are also set on the registered versions: the ``champion``, ``challenger`` and ``canary``
aliases and a ``deployment.<date>.<event>`` tag with the reason.

The record of a session is read from what earlier sessions stored (their ``predictions``,
``shadow_predictions``, live ``target_weights`` and ``shadow_weights``, the ``labels`` realised
by the previous close): the daily schedule runs one session at a time, so each decision sees
the whole record; a backfill over a range decides each of its days on the record stored
before the run (its own days' books do not exist yet) and says how many days that left without
a record row.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import dagster as dg
import mlflow
import pandas as pd
import polars as pl

from quant_assets.ingest.assets import raw_bars
from quant_assets.metadata import date_range_metadata, preview
from quant_assets.models import registry
from quant_assets.models.deployment import (
    RECORD_SCHEMA,
    DeploymentState,
    Event,
    initial_state,
    state_from_row,
    state_row,
    step,
)
from quant_assets.models.training import mean_rank_ic
from quant_assets.models.windows import model_week_for
from quant_assets.partitions import (
    daily_partitions,
    partition_dates,
    previous_trading_day,
    shift_sessions,
)
from quant_assets.portfolio.books import returns_panel
from quant_core.conventions import LABEL_HORIZON_SESSIONS
from quant_core.metrics import turnover
from resources.deployment_policy import DeploymentPolicy
from resources.mlflow import ModelRegistry
from resources.portfolio_policy import PortfolioPolicy
from resources.storage import Store


@dataclass(frozen=True)
class RecordInputs:
    """What a run's record rows are computed from, read once for the run."""

    scores: pl.DataFrame
    shadow_scores: pl.DataFrame
    labels: pl.DataFrame
    live: pl.DataFrame
    shadow: pl.DataFrame
    returns: pl.DataFrame


def record_inputs(store: Store, start: date, end: date) -> RecordInputs:
    first = shift_sessions(start, LABEL_HORIZON_SESSIONS + 2)
    score_columns = ["ticker", "date", "score_ensemble", "model_version"]
    bars = store.read(
        "raw_bars", shift_sessions(start, 3), end, columns=["ticker", "date", "adj_close"]
    )
    return RecordInputs(
        scores=store.read("predictions", first, end, columns=score_columns),
        shadow_scores=store.read("shadow_predictions", first, end, columns=score_columns),
        labels=store.read("labels", first, end, columns=["ticker", "date", "label"]),
        live=store.read(
            "target_weights", shift_sessions(start, 3), end, where={"is_live": [True]}
        ).select("date", "ticker", "weight"),
        shadow=store.read("shadow_weights", shift_sessions(start, 3), end),
        returns=returns_panel(bars) if not bars.is_empty() else pl.DataFrame({"date": []}),
    )


def _rank_ic(scores: pl.DataFrame, labels: pl.DataFrame, day: date, version: str) -> float | None:
    rows = scores.filter((pl.col("date") == day) & (pl.col("model_version") == version)).join(
        labels.filter(pl.col("date") == day), on=["ticker", "date"]
    )
    if rows.is_empty():
        return None
    frame = rows.to_pandas().set_index(["date", "ticker"])
    return mean_rank_ic(frame["score_ensemble"], frame["label"])


def _book(weights: pl.DataFrame, day: date) -> pd.Series:
    rows = weights.filter(pl.col("date") == day)
    return pd.Series(rows["weight"].to_numpy(), index=rows["ticker"].to_list(), dtype=float)


def _net_return(
    weights: pl.DataFrame, returns: pl.DataFrame, day: date, cost: float
) -> float | None:
    """What the book set at the previous session's close earned on ``day``, less the cost of
    the trades that set it (``cost`` per unit of NAV traded); None without that book."""
    before = previous_trading_day(day)
    book = _book(weights, before)
    today = returns.filter(pl.col("date") == day)
    if book.empty or today.is_empty():
        return None
    earned = sum(w * (today[t].item() or 0.0) for t, w in book.items() if t in today.columns)
    traded = turnover(book, _book(weights, previous_trading_day(before)))
    return float(earned - cost * traded)


def record_row(
    day: date, state: DeploymentState, inputs: RecordInputs, cost: float
) -> dict[str, Any] | None:
    """The record ``day`` adds for the pair deployed on the previous session: each model's
    Rank IC of the day whose label realised by the previous close, each book's net return on
    ``day``. None without a challenger."""
    if state.challenger is None:
        return None
    ic_date = shift_sessions(day, LABEL_HORIZON_SESSIONS + 1)
    shadow = inputs.shadow.filter(pl.col("model_version") == state.challenger)
    return {
        "date": day,
        "champion_version": state.champion,
        "challenger_version": state.challenger,
        "ic_date": ic_date,
        "ic_champion": _rank_ic(inputs.scores, inputs.labels, ic_date, state.champion),
        "ic_challenger": _rank_ic(inputs.shadow_scores, inputs.labels, ic_date, state.challenger),
        "return_champion": _net_return(inputs.live, inputs.returns, day, cost),
        "return_challenger": _net_return(shadow, inputs.returns, day, cost),
    }


def _stored_state(store: Store, start: date) -> DeploymentState | None:
    """The state of the last stored session before ``start``."""
    rows = store.read("model_deployments", None, start)
    return state_from_row(rows.sort("date").row(-1, named=True)) if rows.height else None


def apply_to_registry(
    client: mlflow.MlflowClient, state: DeploymentState, events: list[Event], stage: str
) -> None:
    """The aliases of ``state`` and a tag per event on its version."""
    for event in events:
        client.set_model_version_tag(
            registry.REGISTERED_MODEL,
            event.version,
            f"deployment.{event.day}.{event.kind}",
            event.reason,
        )
    registry.set_alias(client, state.champion, registry.CHAMPION)
    client.set_model_version_tag(
        registry.REGISTERED_MODEL, state.champion, "deployment_stage", "champion"
    )
    if state.challenger is None:
        registry.delete_alias(client, registry.CHALLENGER)
    else:
        registry.set_alias(client, state.challenger, registry.CHALLENGER)
        client.set_model_version_tag(
            registry.REGISTERED_MODEL, state.challenger, "deployment_stage", stage
        )
    if stage.startswith(registry.CANARY) and state.challenger is not None:
        registry.set_alias(client, state.challenger, registry.CANARY)
    else:
        registry.delete_alias(client, registry.CANARY)


@dataclass(frozen=True)
class DeploymentRun:
    """A run's tables and the state its last day ends in."""

    deployments: pl.DataFrame
    events: pl.DataFrame
    record: pl.DataFrame
    state: DeploymentState
    sessions_without_record: int


def deploy_sessions(
    store: Store,
    sessions: list[date],
    policy: DeploymentPolicy,
    cost: float,
    inputs: RecordInputs,
) -> DeploymentRun:
    """Step the state through ``sessions`` in order from the stored state before them."""
    models = store.read("alpha_models")
    state = _stored_state(store, sessions[0])
    record = store.read("shadow_record", None, sessions[0]).select(list(RECORD_SCHEMA))
    rows, events, new_records, missing = [], [], [], 0
    for day in sessions:
        week = model_week_for(day)
        if state is None:
            state = initial_state(models, week)
            if state is None:
                raise dg.Failure(
                    f"no alpha_model trained for the week of {week} or before: materialize "
                    f"alpha_model for week {week} before model_deployments for {day}"
                )
        new = record_row(day, state, inputs, cost)
        if new is not None:
            missing += new["return_challenger"] is None
            new_records.append(new)
            record = pl.concat([record, pl.DataFrame([new], schema=RECORD_SCHEMA)])
        arrivals = models.filter((pl.col("week") > state.last_week) & (pl.col("week") <= week))
        state, today, test = step(state, day, arrivals, record, policy)
        rows.append(state_row(state, day, policy, test))
        events += today
    assert state is not None  # sessions is never empty
    return DeploymentRun(
        deployments=pl.DataFrame(rows),
        events=pl.DataFrame(
            [(e.day, e.version, e.kind, e.reason) for e in events],
            schema={"date": pl.Date, "version": pl.String, "event": pl.String, "reason": pl.String},
            orient="row",
        ),
        record=pl.DataFrame(new_records, schema=RECORD_SCHEMA),
        state=state,
        sessions_without_record=missing,
    )


def _deployment_metadata(
    run: DeploymentRun, written: int, policy: DeploymentPolicy
) -> dict[str, Any]:
    latest = run.deployments.row(-1, named=True)
    return {
        "rows": written,
        "champion": f"{registry.REGISTERED_MODEL}/{latest['champion_version']}",
        "challenger": (
            f"{registry.REGISTERED_MODEL}/{latest['challenger_version']}"
            if latest["challenger_version"]
            else "none"
        ),
        "stage": latest["stage"],
        "canary_fraction": latest["canary_fraction"],
        "ic_difference": latest["ic_difference"],
        "ic_difference_p": latest["ic_difference_p"],
        "test_sessions": latest["test_sessions"],
        "promotion_rule": (
            f"one-sided Newey-West t-test ({policy.hac_lags} lags) on the daily Rank IC "
            f"difference over {policy.shadow_sessions} shadow sessions, p <= "
            f"{policy.promotion_pvalue}; canary {policy.canary_fractions} x "
            f"{policy.canary_stage_sessions} sessions; rollback at a "
            f"{policy.canary_max_drawdown:.0%} drawdown or a mean IC below {policy.canary_min_ic}"
        ),
        **date_range_metadata(run.deployments),
        "events": preview(run.events, rows=20),
    }


def _record_metadata(run: DeploymentRun, written: int) -> dict[str, Any]:
    record = run.record
    if record.is_empty():
        return {"rows": written}
    means = record.select(
        pl.col("ic_champion", "ic_challenger", "return_champion", "return_challenger").mean()
    ).row(0, named=True)
    return {
        "rows": written,
        "sessions_without_shadow_book": run.sessions_without_record,
        **{f"mean_{k}": v for k, v in means.items() if v is not None},
        **date_range_metadata(record),
        "preview": preview(record.sort("date", descending=True)),
    }


_SPECS = [
    dg.AssetSpec(
        "model_deployments",
        deps=[
            raw_bars,
            dg.AssetDep(
                "alpha_model",
                partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1),
            ),
        ],
        kinds={"polars", "mlflow"},
        description="Who scores each session: the champion, the challenger in shadow or "
        "canary and the canary's share of the live book, with the shadow record's test.",
    ),
    dg.AssetSpec(
        "model_events",
        deps=[raw_bars],
        kinds={"polars", "mlflow"},
        description="Every deployment step of a version: challenger, replaced, held, "
        "canary_<pct>, promoted, retired, rolled_back, with the reason (also registry tags).",
    ),
    dg.AssetSpec(
        "shadow_record",
        deps=[raw_bars],
        kinds={"polars"},
        description="The live record of the champion and the challenger each session: Rank "
        "IC on realised labels and each book's return after simulated costs.",
    ),
]


@dg.multi_asset(
    name="model_deployment",
    group_name="models",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    specs=_SPECS,
)
def model_deployment(
    context: dg.AssetExecutionContext,
    store: Store,
    deployment_policy: DeploymentPolicy,
    portfolio_policy: PortfolioPolicy,
    model_registry: ModelRegistry,
) -> Iterator[dg.MaterializeResult]:
    """Each session's deployment, in order from the stored one before the run: the weekly
    versions registered since (a passing one becomes the challenger), the shadow record's test
    (promotion to a canary), the canary's floors (rollback) and stages (promotion)."""
    deployment_policy.check_consistent()
    start, end = partition_dates(context)
    sessions = store.read("raw_bars", start, end, columns=["date"])["date"].unique().sort()
    if sessions.is_empty():
        raise dg.Failure(f"no raw_bars stored in [{start}, {end}): materialize raw_bars first")
    frontier = store.date_bounds("model_deployments")
    run = deploy_sessions(
        store,
        sessions.to_list(),
        deployment_policy,
        portfolio_policy.cost_bps / 1e4,
        record_inputs(store, start, end),
    )
    written = store.write_partition("model_deployments", run.deployments, start, end)
    events = store.write_partition("model_events", run.events, start, end)
    records = store.write_partition("shadow_record", run.record, start, end)
    # an older window re-run must not move today's aliases back
    if frontier is None or frontier[1] < end:
        client = mlflow.MlflowClient(model_registry.activate())
        stage = run.deployments["stage"][-1]
        apply_to_registry(client, run.state, _events(run), stage)
    context.log.info(
        f"model_deployments {start}...{end - timedelta(days=1)}: {run.deployments['stage'][-1]}, "
        f"{run.events.height} events"
    )
    yield dg.MaterializeResult(
        asset_key="model_deployments",
        metadata=_deployment_metadata(run, written, deployment_policy),
    )
    yield dg.MaterializeResult(
        asset_key="model_events",
        metadata={"rows": events, "events": preview(run.events, rows=20)},
    )
    yield dg.MaterializeResult(asset_key="shadow_record", metadata=_record_metadata(run, records))


def _events(run: DeploymentRun) -> list[Event]:
    return [Event(*row) for row in run.events.iter_rows()]
