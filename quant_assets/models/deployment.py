"""Model deployment as a pure state machine: champion, a challenger in shadow, a canary, and the
events between them.

Each session, before its scores: :func:`step` takes the previous session's
:class:`DeploymentState`, the weekly versions registered since (``alpha_models`` rows: a version
that passed the weekly gate has the alias ``challenger``) and the shadow record (one row per
session: the champion's and challenger's Rank IC of a day whose label has realised, the
challenger's shadow book return after costs), and returns the session's state and its events.

- a passing version becomes the challenger and starts a fresh shadow record (it replaces a
  challenger still in shadow); none enters while a canary runs (``held``);
- a challenger in shadow is promoted to a canary only when its daily Rank IC beats the
  champion's over the policy's window by :func:`ic_difference_test`;
- a canary walks the policy's fractions, each held for a number of sessions, then the challenger
  is champion; a breach of its drawdown or IC floor rolls it back at once.

Nothing here reads the store or the registry: the ``model_deployment`` asset brings the inputs
and applies the events to the MLflow registry.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from quant_assets.models.registry import CANARY, CHALLENGER, CHAMPION, HELD
from resources.deployment_policy import DeploymentPolicy

NONE, SHADOW = "none", "shadow"

RECORD_SCHEMA = {
    "date": pl.Date,
    "champion_version": pl.String,
    "challenger_version": pl.String,
    "ic_date": pl.Date,
    "ic_champion": pl.Float64,
    "ic_challenger": pl.Float64,
    "return_champion": pl.Float64,
    "return_challenger": pl.Float64,
}


@dataclass(frozen=True)
class DeploymentState:
    """Who scores a session: the champion (always) and the challenger (in shadow or canary);
    ``canary_step`` indexes the policy's fractions; the stage's first session and how many
    sessions it has run; the latest ``alpha_models`` week already considered."""

    champion: str
    challenger: str | None = None
    stage: str = NONE
    canary_step: int = -1
    stage_start: date | None = None
    shadow_start: date | None = None
    canary_start: date | None = None
    sessions_in_stage: int = 0
    last_week: date | None = None

    def fraction(self, policy: DeploymentPolicy) -> float:
        """The share of the live book's capital the challenger's book gets."""
        return policy.canary_fractions[self.canary_step] if self.stage == CANARY else 0.0

    def stage_name(self, policy: DeploymentPolicy) -> str:
        if self.stage == CANARY:
            return f"canary_{round(100 * self.fraction(policy))}"
        return self.stage


@dataclass(frozen=True)
class Event:
    """One step of a version's life: ``kind`` is challenger, replaced, held, canary_<pct>,
    promoted, retired, rolled_back or champion (the first one)."""

    day: date
    version: str
    kind: str
    reason: str


@dataclass(frozen=True)
class IcTest:
    """The one-sided test of mean(challenger IC - champion IC) > 0 on ``n`` sessions."""

    n: int
    mean: float
    t: float
    pvalue: float


def newey_west_variance(x: np.ndarray, lags: int) -> float:
    """The long-run variance of ``x`` with Bartlett weights (overlapping labels make the
    daily IC differences autocorrelated up to the horizon)."""
    centred = x - x.mean()
    n = centred.size
    variance = float(centred @ centred) / n
    for k in range(1, min(lags, n - 1) + 1):
        variance += 2.0 * (1.0 - k / (lags + 1)) * float(centred[k:] @ centred[:-k]) / n
    return max(variance, 0.0)


def ic_difference_test(differences: np.ndarray, lags: int) -> IcTest:
    """t = mean / sqrt(NW variance / n), p from Student's t with n - 1 degrees of freedom."""
    x = np.asarray(differences, dtype=np.float64)
    n = x.size
    mean = float(x.mean())
    variance = newey_west_variance(x, lags)
    if variance == 0.0:
        t = np.inf if mean > 0 else (-np.inf if mean < 0 else 0.0)
    else:
        t = mean / np.sqrt(variance / n)
    return IcTest(n, mean, float(t), float(stats.t.sf(t, df=n - 1)))


def shadow_test(
    record: pl.DataFrame, state: DeploymentState, policy: DeploymentPolicy
) -> IcTest | None:
    """The test on the last ``shadow_sessions`` realised IC pairs of this champion and
    challenger since the shadow began; None while fewer are realised."""
    pairs = _pair_rows(record, state, state.shadow_start).drop_nulls(
        ["ic_champion", "ic_challenger"]
    )
    if pairs.height < policy.shadow_sessions:
        return None
    last = pairs.sort("ic_date").tail(policy.shadow_sessions)
    differences = (last["ic_challenger"] - last["ic_champion"]).to_numpy()
    return ic_difference_test(differences, policy.hac_lags)


def _pair_rows(record: pl.DataFrame, state: DeploymentState, since: date | None) -> pl.DataFrame:
    return record.filter(
        (pl.col("champion_version") == state.champion)
        & (pl.col("challenger_version") == state.challenger)
        & (pl.col("date") >= since)
    )


def canary_breach(
    record: pl.DataFrame, state: DeploymentState, policy: DeploymentPolicy
) -> str | None:
    """Why the canary must roll back (its drawdown or IC floor), or None."""
    since = _pair_rows(record, state, state.canary_start)
    returns = since["return_challenger"].drop_nulls().to_numpy()
    if returns.size:
        wealth = np.cumprod(1.0 + returns)
        drawdown = float(1.0 - (wealth / np.maximum.accumulate(np.r_[1.0, wealth])[1:]).min())
        if drawdown >= policy.canary_max_drawdown:
            return (
                f"the challenger's book drew down {drawdown:.2%} since the canary began "
                f"(floor {policy.canary_max_drawdown:.2%})"
            )
    ics = since.filter(pl.col("ic_date") >= state.canary_start)["ic_challenger"].drop_nulls()
    if ics.len() >= policy.canary_min_ic_sessions:
        mean_ic = float(ics.mean())  # type: ignore[arg-type]
        if mean_ic < policy.canary_min_ic:
            return (
                f"the challenger's mean Rank IC {mean_ic:.4f} over {ics.len()} realised "
                f"sessions of the canary is below {policy.canary_min_ic:.4f}"
            )
    return None


def initial_state(models: pl.DataFrame, week: date) -> DeploymentState | None:
    """The first deployment: the champion of the last week trained by ``week``, the weeks
    registered after its own still to be admitted."""
    usable = models.filter(pl.col("week") <= week).sort("week")
    if usable.is_empty():
        return None
    champion = usable.row(-1, named=True)["champion_version"]
    # the weeks after the champion's own are arrivals still to admit
    own = usable.filter(pl.col("version") == champion)
    last_week = own["week"][0] if own.height else usable["week"][-1]
    return DeploymentState(champion=champion, last_week=last_week)


def _admit(
    state: DeploymentState, day: date, arrivals: pl.DataFrame
) -> tuple[DeploymentState, list[Event]]:
    """The weekly versions registered since the state's last week: a new champion (only when
    there was none to gate against), the newest passing version as challenger (none while a
    canary runs)."""
    events: list[Event] = []
    for row in arrivals.sort("week").iter_rows(named=True):
        version, alias = row["version"], row["alias"]
        state = dataclasses.replace(state, last_week=row["week"])
        if alias == CHAMPION and version != state.champion:
            events.append(Event(day, version, CHAMPION, "registered with no champion to gate"))
            state = dataclasses.replace(state, champion=version)
        elif alias == CHALLENGER and state.stage == CANARY:
            events.append(
                Event(day, version, HELD, f"passed the gate while {state.challenger} is in canary")
            )
        elif alias == CHALLENGER:
            if state.challenger is not None:
                events.append(
                    Event(day, state.challenger, "replaced", f"{version} passed the gate after it")
                )
            events.append(Event(day, version, CHALLENGER, "passed the weekly gate: shadow"))
            state = dataclasses.replace(
                state,
                challenger=version,
                stage=SHADOW,
                stage_start=day,
                shadow_start=day,
                canary_start=None,
                canary_step=-1,
                sessions_in_stage=0,
            )
    return state, events


def _enter_canary(state: DeploymentState, day: date, step: int) -> DeploymentState:
    return dataclasses.replace(
        state,
        stage=CANARY,
        canary_step=step,
        stage_start=day,
        canary_start=state.canary_start if step > 0 else day,
        sessions_in_stage=0,
    )


def _without_challenger(state: DeploymentState, champion: str) -> DeploymentState:
    return dataclasses.replace(
        state,
        champion=champion,
        challenger=None,
        stage=NONE,
        canary_step=-1,
        stage_start=None,
        shadow_start=None,
        canary_start=None,
        sessions_in_stage=0,
    )


def _advance(
    state: DeploymentState, day: date, record: pl.DataFrame, policy: DeploymentPolicy
) -> tuple[DeploymentState, list[Event], IcTest | None]:
    """The shadow's test or the canary's floors and stages, on the record up to ``day``."""
    challenger = state.challenger
    assert challenger is not None
    if state.stage == SHADOW:
        test = shadow_test(record, state, policy)
        if test is not None and test.mean > 0 and test.pvalue <= policy.promotion_pvalue:
            reason = (
                f"Rank IC beats the champion's by {test.mean:.4f} a day over {test.n} sessions "
                f"(t {test.t:.2f}, p {test.pvalue:.4f})"
            )
            canary = _enter_canary(state, day, 0)
            return canary, [Event(day, challenger, canary.stage_name(policy), reason)], test
        return state, [], test
    breach = canary_breach(record, state, policy)
    if breach is not None:
        return (
            _without_challenger(state, state.champion),
            [Event(day, challenger, "rolled_back", breach)],
            None,
        )
    if state.sessions_in_stage < policy.canary_stage_sessions:
        return state, [], None
    step = state.canary_step + 1
    held = f"{policy.canary_stage_sessions} sessions at {state.stage_name(policy)} within floors"
    if step < len(policy.canary_fractions):
        canary = _enter_canary(state, day, step)
        return canary, [Event(day, challenger, canary.stage_name(policy), held)], None
    events = [
        Event(day, challenger, "promoted", held),
        Event(day, state.champion, "retired", f"{challenger} promoted"),
    ]
    return _without_challenger(state, challenger), events, None


def step(
    previous: DeploymentState,
    day: date,
    arrivals: pl.DataFrame,
    record: pl.DataFrame,
    policy: DeploymentPolicy,
) -> tuple[DeploymentState, list[Event], IcTest | None]:
    """``day``'s state from the previous session's: admit the versions registered since
    (``arrivals``: ``alpha_models`` rows), then judge the shadow or the canary on ``record``
    (:data:`RECORD_SCHEMA` rows up to ``day``)."""
    state = dataclasses.replace(previous, sessions_in_stage=previous.sessions_in_stage + 1)
    state, events = _admit(state, day, arrivals)
    test = None
    if state.challenger is not None and state.stage_start != day:
        state, more, test = _advance(state, day, record, policy)
        events += more
    return state, events, test


def state_row(
    state: DeploymentState, day: date, policy: DeploymentPolicy, test: IcTest | None
) -> dict[str, Any]:
    """The ``model_deployments`` row of ``day``."""
    return {
        "date": day,
        "champion_version": state.champion,
        "challenger_version": state.challenger,
        "stage": state.stage_name(policy),
        "canary_step": state.canary_step,
        "canary_fraction": state.fraction(policy),
        "stage_start": state.stage_start,
        "shadow_start": state.shadow_start,
        "canary_start": state.canary_start,
        "sessions_in_stage": state.sessions_in_stage,
        "last_week": state.last_week,
        "test_sessions": test.n if test else None,
        "ic_difference": test.mean if test else None,
        "ic_difference_t": test.t if test else None,
        "ic_difference_p": test.pvalue if test else None,
    }


def state_from_row(row: dict[str, Any]) -> DeploymentState:
    stage = str(row["stage"])
    kind = CANARY if stage.startswith(CANARY) else stage
    return DeploymentState(
        champion=row["champion_version"],
        challenger=row["challenger_version"],
        stage=kind,
        canary_step=int(row["canary_step"]),
        stage_start=row["stage_start"],
        shadow_start=row["shadow_start"],
        canary_start=row["canary_start"],
        sessions_in_stage=int(row["sessions_in_stage"]),
        last_week=row["last_week"],
    )
