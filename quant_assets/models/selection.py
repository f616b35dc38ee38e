"""The model's configuration, chosen on the data before a cutoff by combinatorial purged CV.

What is chosen (:class:`ModelChoice`): the feature set (Alpha158, Alpha158 + the factors, the
factors alone), the training label's horizon (1, 5 or 20 sessions), the training window (the
trailing ``window_sessions``, expanding, or expanding with recency weights), the per-date
feature normalisation, the boosted trees' hyper-parameters (:data:`PARAMS`), the neutralisation
of scores (none, sector, sector and beta) and the ensemble's weighting (equal, by validation
Rank ICIR, or the best member alone).

How (:func:`select_model`), for one ``cutoff`` (the first session the choice will be used on):

1. Nothing on or after the cutoff is seen: the panel is cut at the cutoff, and a label whose
   horizon reaches the cutoff (``horizon_date >= cutoff``) is removed, for the training labels
   and for the 5-session label every IC is measured against.
2. The validation window is the last ``window_sessions`` sessions before the cutoff; CPCV
   (``n_folds`` / ``n_test_folds``) splits its dates. The purge equals the horizon being
   trained; the embargo is ``max(horizon, 5)``, so no training label overlaps the 5-session label
   of a test date on either side. The expanding windows add the history before the validation
   window (less ``horizon`` sessions of gap) to every split's training dates, so every
   configuration is judged on the same test dates.
3. The objective is the mean over CPCV paths of the mean daily Rank IC against the 5-session
   label (the label the portfolio consumes), after the configuration's neutralisation; or, with
   ``objective="rank_icir"``, the mean over paths of that daily Rank IC's mean / std.
4. A coordinate search from :class:`ModelChoice`'s defaults, with LightGBM: the values of one
   field at a time (:data:`SEARCH`), keeping the best before moving to the next field
   (1 + 2 + 2 + 2 + 2 = 9 configurations, within the ``max_configurations`` budget). The other
   models are then validated on the winner, and the neutralisation and the ensemble weighting
   are chosen on the models' CPCV predictions (no refit): choosing among them, the best member
   alone included, keeps the ensemble at least as good as its best member on validation.

Every evaluated configuration is a row of :attr:`Selection.table`; the ``model_selection``
asset stores it, the weekly ``alpha_model`` trains the stored choice, and the research command
runs one selection per evaluation year.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import clone

from quant_assets.features.labels import horizon_dates
from quant_assets.models.boosting import CatBoostAlpha, LightGBMAlpha
from quant_assets.models.cross_section import daily_ic, neutralise
from quant_assets.models.ensemble import RankEnsemble
from quant_assets.models.quality import quintile_spread
from quant_assets.models.validation import cpcv_date_splits, make_cpcv
from quant_core.conventions import LABEL_HORIZON_SESSIONS
from quant_core.features import ALPHA158_NAMES, FACTOR_NAMES

FeatureSet = Literal["alpha158", "alpha158+factors", "factors"]
Window = Literal["trailing", "expanding", "recency"]
Weighting = Literal["equal", "icir", "best"]
Objective = Literal["rank_ic", "rank_icir"]

FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "alpha158": ALPHA158_NAMES,
    "alpha158+factors": (*ALPHA158_NAMES, *FACTOR_NAMES),
    "factors": FACTOR_NAMES,
}
# the boosted trees' hyper-parameters: {} is the estimators' defaults
PARAMS: dict[str, dict[str, dict[str, Any]]] = {
    "default": {"lightgbm": {}, "catboost": {}},
    "shallow": {
        "lightgbm": {"num_leaves": 4, "min_child_samples": 2000, "n_estimators": 300},
        "catboost": {"depth": 3, "iterations": 300},
    },
    "slow": {
        "lightgbm": {"learning_rate": 0.02, "n_estimators": 300, "feature_fraction": 0.15},
        "catboost": {"learning_rate": 0.04, "iterations": 300, "rsm": 0.15},
    },
}
SEARCH: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("features", ("alpha158+factors", "factors")),
    ("horizon", (1, 20)),
    ("window", ("expanding", "recency")),
    ("feature_normalisation", ("rank_gauss", "robust_zscore")),
    ("params", ("shallow", "slow")),
)
NEUTRALISATIONS = ("none", "sector", "sector_beta")
WEIGHTINGS: tuple[Weighting, ...] = ("equal", "icir", "best")
BETA = "BETA252"


@dataclass(frozen=True)
class ModelChoice:
    """One configuration of the weekly training (module docstring); defaults are the search's
    starting point, the platform's configuration before any selection."""

    features: FeatureSet = "alpha158"
    horizon: int = LABEL_HORIZON_SESSIONS
    window: Window = "trailing"
    feature_normalisation: Literal["none", "rank_gauss", "robust_zscore"] = "none"
    params: str = "default"
    neutralisation: Literal["none", "sector", "sector_beta"] = "none"
    weighting: Weighting = "icir"
    recency_half_life: int = 252

    def estimator(self, model: str) -> LightGBMAlpha | CatBoostAlpha:
        options = {
            **PARAMS[self.params][model],
            "feature_normalisation": self.feature_normalisation,
            "label_horizon": self.horizon,
            "recency_half_life": self.recency_half_life if self.window == "recency" else None,
        }
        return LightGBMAlpha(**options) if model == "lightgbm" else CatBoostAlpha(**options)

    @property
    def columns(self) -> list[str]:
        return list(FEATURE_SETS[self.features])

    @property
    def purge(self) -> int:
        return self.horizon

    @property
    def embargo(self) -> int:
        return max(self.horizon, LABEL_HORIZON_SESSIONS)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelChoice:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class SelectionSpec:
    models: tuple[str, ...] = ("lightgbm", "catboost")
    window_sessions: int = 756
    n_folds: int = 6
    n_test_folds: int = 2
    max_configurations: int = 20
    cost_bps: float = 5.0
    search: tuple[tuple[str, tuple[Any, ...]], ...] = SEARCH
    start: ModelChoice = field(default_factory=lambda: ModelChoice())
    objective: Objective = "rank_ic"


@dataclass
class SelectionData:
    """The panel (every feature column of :data:`FEATURE_SETS`, ``BETA252`` among them) and the
    raw forward excess return over each horizon, on the panel's (date, ticker) index."""

    X: pd.DataFrame
    labels: dict[int, pd.Series]
    sectors: pd.Series

    def before(self, cutoff: date) -> SelectionData:
        """The data a choice for ``cutoff`` may see (module docstring, step 1)."""
        dates = self.X.index.get_level_values(0)
        keep = dates < pd.Timestamp(cutoff)
        X = self.X[keep]
        return SelectionData(
            X,
            {h: _realised(y.reindex(X.index), h, cutoff) for h, y in self.labels.items()},
            self.sectors,
        )


def _realised(y: pd.Series, horizon: int, cutoff: date) -> pd.Series:
    import polars as pl

    days = pd.DatetimeIndex(y.index.get_level_values(0).unique().sort_values())
    ends = horizon_dates(pl.Series(days.to_numpy()).cast(pl.Date), horizon).to_numpy()
    by_day = pd.Series(ends.astype("datetime64[ns]"), index=days)
    known = by_day.reindex(y.index.get_level_values(0)).to_numpy() < np.datetime64(cutoff)
    return y.where(known)


class SelectionError(ValueError):
    """A selection that cannot be made on the data it was given (the reason in words)."""


@dataclass
class Selection:
    """The chosen configuration, the ensemble weights validated for it, and one row per
    evaluated configuration (stage, model, choice json, rank_ic, rank_icir, spread_net,
    seconds, chosen)."""

    cutoff: date
    choice: ModelChoice
    weights: dict[str, float]
    table: pd.DataFrame
    seconds: float


Log = Callable[[str], Any]


def _cpcv_predictions(
    data: SelectionData, choice: ModelChoice, model: str, spec: SelectionSpec
) -> pd.DataFrame:
    """Out-of-sample predictions (columns = CPCV paths) on the validation window's rows."""
    X = data.X[choice.columns]
    y = data.labels[choice.horizon]
    all_dates = np.unique(X.index.get_level_values(0).to_numpy())
    window = all_dates[-spec.window_sessions :]
    history = all_dates[: max(0, len(all_dates) - spec.window_sessions - choice.horizon)]
    cv = make_cpcv(spec.n_folds, spec.n_test_folds, choice.purge, choice.embargo)
    codes = X.index.get_level_values(0).to_numpy()
    in_window = np.isin(codes, window)
    out = np.full((int(in_window.sum()), cv.n_test_paths), np.nan)
    window_rows = np.flatnonzero(in_window)
    window_codes = codes[in_window]
    for split in cpcv_date_splits(window, cv):
        train_dates = split.train_dates
        if choice.window != "trailing":
            train_dates = np.concatenate([history, train_dates])
        rows = np.isin(codes, train_dates) & y.notna().to_numpy()
        if not rows.any():
            # a long horizon purged around two test blocks can leave a split nothing to learn
            # from: its test folds stay unscored on their paths
            continue
        fitted = clone(choice.estimator(model)).fit(X[rows], y[rows])
        for test_dates, path in zip(split.test_dates, split.path_ids, strict=True):
            test = np.isin(window_codes, test_dates)
            out[test, path] = fitted.predict(X.iloc[window_rows[test]])
    return pd.DataFrame(out, index=X.index[in_window])


def _neutralised(scores: pd.Series, how: str, data: SelectionData) -> pd.Series:
    if how == "none":
        return scores
    beta = data.X[BETA].astype(np.float64) if how == "sector_beta" else None
    return neutralise(scores, data.sectors, beta)


def _path_rank_ic(predictions: pd.DataFrame, label: pd.Series) -> tuple[float, float]:
    """Mean over paths of the mean daily Rank IC and of its IR."""
    ics, irs = [], []
    for path in predictions.columns:
        daily = daily_ic(predictions[path], label)["rank_ic"].dropna()
        ics.append(daily.mean())
        irs.append(daily.mean() / daily.std(ddof=1))
    return float(np.mean(ics)), float(np.mean(irs))


def _row(
    stage: str,
    model: str,
    choice: ModelChoice,
    predictions: pd.DataFrame,
    data: SelectionData,
    spec: SelectionSpec,
) -> dict[str, Any]:
    label = data.labels[LABEL_HORIZON_SESSIONS]
    scores = predictions.apply(lambda p: _neutralised(p, choice.neutralisation, data))
    rank_ic, rank_icir = _path_rank_ic(scores, label)
    spread = quintile_spread(scores.mean(axis=1), label, cost_bps=spec.cost_bps)
    return {
        "stage": stage,
        "model": model,
        "choice": choice.to_json(),
        "rank_ic": rank_ic,
        "rank_icir": rank_icir,
        "spread_net": spread["net"],
        "turnover": spread["turnover"],
        "seconds": 0.0,
    }


def select_model(
    data: SelectionData,
    cutoff: date,
    spec: SelectionSpec | None = None,
    log: Log = print,
) -> Selection:
    """The configuration for ``cutoff``, chosen on the data before it (module docstring)."""
    spec = spec or SelectionSpec()
    started = time.perf_counter()
    seen = data.before(cutoff)
    results: dict[tuple[ModelChoice, str], dict[str, Any]] = {}
    predictions: dict[tuple[ModelChoice, str], pd.DataFrame] = {}

    def evaluate(stage: str, choice: ModelChoice, model: str = "lightgbm") -> float:
        if (choice, model) not in results:
            if len({c for c, _ in results} | {choice}) > spec.max_configurations:
                raise ValueError(f"the search exceeds {spec.max_configurations} configurations")
            t0 = time.perf_counter()
            predictions[(choice, model)] = _cpcv_predictions(seen, choice, model, spec)
            row = _row(stage, model, choice, predictions[(choice, model)], seen, spec)
            results[(choice, model)] = {**row, "seconds": time.perf_counter() - t0}
            log(
                f"selection for {cutoff}: {stage} {model} {choice.to_json()} "
                f"rank IC {row['rank_ic']:.4f}, Rank ICIR {row['rank_icir']:.4f}"
            )
        return float(results[(choice, model)][spec.objective])

    best = spec.start
    evaluate("start", best)
    for name, values in spec.search:
        candidates = [best, *(dataclasses.replace(best, **{name: v}) for v in values)]
        scores = [evaluate(name, c) for c in candidates]
        if np.isnan(scores).all():
            raise SelectionError(
                f"selection for {cutoff}: no {name} candidate could be scored (every CPCV "
                "prediction constant or unlabelled); too few rows before the cutoff for the "
                "trees' min_child_samples: widen window_sessions or store more history"
            )
        best = candidates[int(np.nanargmax(scores))]
    for model in spec.models:
        evaluate("members", best, model)
    members = {m: predictions[(best, m)] for m in spec.models}
    rows = list(results.values())
    best, weights = _choose_combination(best, members, seen, spec, rows)
    table = pd.DataFrame(rows)
    table["chosen"] = (table["choice"] == best.to_json()) & (table["model"] == "ensemble")
    return Selection(cutoff, best, weights, table, time.perf_counter() - started)


def _choose_combination(
    best: ModelChoice,
    members: dict[str, pd.DataFrame],
    data: SelectionData,
    spec: SelectionSpec,
    rows: list[dict[str, Any]],
) -> tuple[ModelChoice, dict[str, float]]:
    """Neutralisation x ensemble weighting on the members' CPCV predictions (no refit)."""
    label = data.labels[LABEL_HORIZON_SESSIONS]
    predictions = members
    icir = {m: _path_rank_ic(p, label)[1] for m, p in predictions.items()}
    options: list[tuple[float, ModelChoice, dict[str, float]]] = []
    for how in NEUTRALISATIONS:
        for weighting in WEIGHTINGS:
            weights = _weights(weighting, icir)
            ensemble = RankEnsemble(weights)
            combined = pd.DataFrame(
                {
                    p: ensemble.combine({m: s[p] for m, s in predictions.items()})
                    for p in next(iter(predictions.values())).columns
                }
            )
            choice = dataclasses.replace(best, neutralisation=how, weighting=weighting)  # type: ignore[arg-type]
            rows.append(_row("combination", "ensemble", choice, combined, data, spec))
            options.append((rows[-1][spec.objective], choice, ensemble.weights))
    _, choice, weights = max(options, key=lambda o: -math.inf if math.isnan(o[0]) else o[0])
    return choice, weights


def _weights(weighting: Weighting, icir: dict[str, float]) -> dict[str, float]:
    if weighting == "equal":
        return dict.fromkeys(icir, 1.0)
    if weighting == "icir":
        return RankEnsemble.from_validation(icir).weights
    best = max(icir, key=lambda m: icir[m] if math.isfinite(icir[m]) else -math.inf)
    return {m: 1.0 if m == best else 0.0 for m in icir}


@dataclass
class SelectedScores:
    """Walk-forward scores under the selected configurations: one column per model and the
    ``ensemble`` (combined with the selection's weights, then neutralised as chosen), the
    models' feature importances at every retraining, and the choice in force from each
    cutoff."""

    scores: pd.DataFrame
    importances: dict[str, list[pd.Series]]
    choices: dict[date, ModelChoice]
    seconds: float


def _horizon_ends(index: pd.Index, horizon: int) -> np.ndarray:
    """Per row, the session its ``horizon``-session label is realised on (datetime64)."""
    import polars as pl

    days = pd.DatetimeIndex(index.get_level_values(0).unique().sort_values())
    ends = horizon_dates(pl.Series(days.to_numpy()).cast(pl.Date), horizon).to_numpy()
    by_day = pd.Series(ends.astype("datetime64[ns]"), index=days)
    return by_day.reindex(index.get_level_values(0)).to_numpy()


def walk_forward_selected(
    data: SelectionData,
    selections: list[Selection],
    end: date,
    retrain_every: int = LABEL_HORIZON_SESSIONS,
    spec: SelectionSpec | None = None,
    log: Log = print,
) -> SelectedScores:
    """From each selection's cutoff to the next one's (the last to ``end``), retrain every
    ``retrain_every`` sessions the selection's choice on the rows whose label over the chosen
    horizon is realised before the block (the purge), within the trailing ``window_sessions``
    or every earlier session, and score the block."""
    spec = spec or SelectionSpec()
    started = time.perf_counter()
    ordered = sorted(selections, key=lambda s: s.cutoff)
    dates = data.X.index.get_level_values(0).to_numpy()
    sessions = np.unique(dates)
    columns: dict[str, np.ndarray] = {m: np.full(len(dates), np.nan) for m in spec.models}
    ensemble = np.full(len(dates), np.nan)
    importances: dict[str, list[pd.Series]] = {m: [] for m in spec.models}
    for i, selection in enumerate(ordered):
        stop = ordered[i + 1].cutoff if i + 1 < len(ordered) else end
        choice = selection.choice
        ends = _horizon_ends(data.X.index, choice.horizon)
        y = data.labels[choice.horizon].reindex(data.X.index)
        period = sessions[
            (sessions >= np.datetime64(selection.cutoff)) & (sessions < np.datetime64(stop))
        ]
        in_period = np.isin(dates, period)
        for block in np.array_split(period, np.arange(retrain_every, len(period), retrain_every)):
            first = block[0]
            train = (ends < first) & y.notna().to_numpy()
            if choice.window == "trailing":
                position = int(np.searchsorted(sessions, first))
                train &= dates >= sessions[max(0, position - spec.window_sessions)]
            rows = np.isin(dates, block)
            for model in spec.models:
                fitted = choice.estimator(model).fit(data.X.loc[train, choice.columns], y[train])
                columns[model][rows] = fitted.predict(data.X.loc[rows, choice.columns])
                importances[model].append(fitted.feature_importances_)
            log(f"walk-forward {pd.Timestamp(first).date()}: {int(train.sum())} training rows")
        members = {m: pd.Series(v, index=data.X.index).where(in_period) for m, v in columns.items()}
        combined = RankEnsemble(selection.weights).combine(members).where(in_period)
        combined = _neutralised(combined.dropna(), choice.neutralisation, data)
        ensemble = np.where(in_period, combined.reindex(data.X.index).to_numpy(), ensemble)
    frame = pd.DataFrame(columns, index=data.X.index)
    frame["ensemble"] = ensemble
    return SelectedScores(
        frame, importances, {s.cutoff: s.choice for s in ordered}, time.perf_counter() - started
    )
