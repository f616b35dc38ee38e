"""Combinatorial purged cross-validation over dates, and a purged walk-forward evaluation.

Why split dates, not rows: the panel has one row per (date, ticker), and every ticker of a date
shares that date's market. skfolio's :class:`~skfolio.model_selection.CombinatorialPurgedCV`
therefore splits the sorted array of unique dates (its observations), and each date fold maps to
all rows of those dates. ``purged_size`` and ``embargo_size`` are thus counted in dates, which
are sessions as long as the panel has a row for every session.

Purging: date ``d``'s label is the return over sessions ``d+1 .. d+h`` (``h`` = 5). A train
date before a test block starting at ``a`` overlaps the test labels when ``d + h >= a + 1``,
i.e. the ``h - 1`` dates before ``a``; a train date after a test block ending at ``b`` overlaps
when ``d <= b + h - 1``. skfolio removes ``purged_size`` dates on both sides of every test
block, so ``purged_size >= h - 1`` is enough; the default 5 adds one session of margin. The
embargo (default 5) removes further dates after each test block, against serial correlation in
the features that outlives the label window. :func:`label_overlaps` checks this for any split.

CPCV paths: with ``N`` folds and ``k`` test folds there are ``C(N, k)`` splits and
``C(N, k) * k / N`` paths; each path is a full out-of-sample history made of one test fold
prediction per fold, taken from different splits. skfolio's ``get_path_ids()[split, j]`` is
the path of the ``j``-th test fold (in fold order) of ``split``, which is how predictions are
placed. Metrics use the RAW label (Rank IC is unaffected; IC is then the correlation with the
return actually earned).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from skfolio.model_selection import CombinatorialPurgedCV
from sklearn.base import BaseEstimator, clone

from quant_assets.models.cross_section import daily_ic, summarise_ic
from quant_core.conventions import (
    CPCV_EMBARGO_SESSIONS,
    CPCV_FOLDS,
    CPCV_PURGED_SESSIONS,
    CPCV_TEST_FOLDS,
    LABEL_HORIZON_SESSIONS,
)

METRICS = ("ic_mean", "rank_ic_mean", "icir", "rank_icir")
QUANTILES = (0.05, 0.5, 0.95)


def make_cpcv(
    n_folds: int = CPCV_FOLDS,
    n_test_folds: int = CPCV_TEST_FOLDS,
    purged_size: int = CPCV_PURGED_SESSIONS,
    embargo_size: int = CPCV_EMBARGO_SESSIONS,
) -> CombinatorialPurgedCV:
    """skfolio's CPCV with the panel defaults (sizes in sessions; see the module docstring)."""
    return CombinatorialPurgedCV(
        n_folds=n_folds,
        n_test_folds=n_test_folds,
        purged_size=purged_size,
        embargo_size=embargo_size,
    )


@dataclass(frozen=True)
class DateSplit:
    """One CPCV split in dates: ``test_dates[j]`` is the ``j``-th test fold, on path
    ``path_ids[j]``."""

    split: int
    train_dates: np.ndarray
    test_dates: list[np.ndarray]
    path_ids: np.ndarray


def panel_dates(index: pd.Index) -> np.ndarray:
    """Sorted unique dates (level 0) of a panel index."""
    return np.unique(index.get_level_values(0).to_numpy())


def cpcv_date_splits(dates: np.ndarray | pd.Index, cv: CombinatorialPurgedCV) -> list[DateSplit]:
    """Every split of ``cv`` over the sorted unique ``dates``, in dates, with its path ids."""
    dates = np.asarray(dates)
    if len(dates) > 1 and not (dates[1:] > dates[:-1]).all():
        raise ValueError("dates must be sorted and unique")
    path_ids = cv.get_path_ids()
    out = []
    for i, (train, tests) in enumerate(cv.split(dates.reshape(-1, 1))):
        out.append(
            DateSplit(
                split=i,
                train_dates=dates[train],
                test_dates=[dates[t] for t in tests],
                path_ids=np.asarray(path_ids[i]),
            )
        )
    return out


def label_overlaps(
    split: DateSplit, sessions: np.ndarray, horizon: int = LABEL_HORIZON_SESSIONS
) -> list[tuple[object, object]]:
    """(train date, test date) pairs of ``split`` whose label windows share a session.

    ``sessions`` is the full sorted session calendar (the label of the date at position ``p``
    covers positions ``p+1 .. p+horizon``). An empty list proves the split leak-free.
    """
    sessions = np.asarray(sessions)
    train_pos = _positions(sessions, split.train_dates)
    test_pos = np.sort(_positions(sessions, np.concatenate(split.test_dates)))
    pairs: list[tuple[object, object]] = []
    for p in train_pos:
        # windows [p+1, p+h] and [q+1, q+h] intersect iff |p - q| < h
        lo = np.searchsorted(test_pos, p - horizon + 1)
        hi = np.searchsorted(test_pos, p + horizon - 1, side="right")
        pairs.extend((sessions[p], sessions[q]) for q in test_pos[lo:hi])
    return pairs


def _positions(sorted_dates: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Positions of ``wanted`` in ``sorted_dates``; every wanted date must be there."""
    pos = np.searchsorted(sorted_dates, wanted)
    if (pos >= len(sorted_dates)).any() or (
        sorted_dates[np.minimum(pos, len(sorted_dates) - 1)] != wanted
    ).any():
        raise ValueError("dates missing from the session calendar")
    return pos


def _date_codes(index: pd.Index, dates: np.ndarray) -> np.ndarray:
    # position of each row's date in ``dates``: turns a set of dates into a row mask cheaply
    return np.searchsorted(dates, index.get_level_values(0).to_numpy())


def _summary(per_path: pd.DataFrame) -> pd.DataFrame:
    """Distribution of each metric across paths: mean, std, min, q05, q50, q95."""
    cols = [m for m in METRICS if m in per_path]
    table = pd.DataFrame(
        {
            "mean": per_path[cols].mean(),
            "std": per_path[cols].std(ddof=1),
            "min": per_path[cols].min(),
            **{f"q{round(q * 100):02d}": per_path[cols].quantile(q) for q in QUANTILES},
        }
    )
    table.index.name = "metric"
    return table


@dataclass
class CPCVResult:
    """Out-of-sample CPCV evaluation of one model (or ensemble).

    ``paths``: one row per path (ic_mean, ic_std, icir, rank_ic_mean, rank_ic_std, rank_icir,
    n_dates); ``summary``: the distribution of the metrics across paths (rows: metrics;
    columns: mean, std, min, q05, q50, q95); ``predictions``: the out-of-sample score of every
    row on every path (columns = path ids, index = the panel's); ``label``: the raw label the
    metrics were computed against; ``fit_seconds``: wall time of each split's fit.
    """

    paths: pd.DataFrame
    summary: pd.DataFrame
    predictions: pd.DataFrame
    label: pd.Series
    splits: list[DateSplit] = field(default_factory=list)
    fit_seconds: list[float] = field(default_factory=list)

    @property
    def rank_icir(self) -> float:
        """Mean Rank ICIR across paths (the ensemble weights' input)."""
        return float(self.paths["rank_icir"].mean())


def path_metrics(predictions: pd.DataFrame, label: pd.Series) -> pd.DataFrame:
    """IC summary of every path column of ``predictions`` against ``label``."""
    rows = {path: summarise_ic(daily_ic(predictions[path], label)) for path in predictions}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "path"
    return table


def result_from_predictions(
    predictions: pd.DataFrame,
    label: pd.Series,
    splits: list[DateSplit] | None = None,
    fit_seconds: list[float] | None = None,
) -> CPCVResult:
    """Metrics per path and their distribution for already assembled path predictions."""
    per_path = path_metrics(predictions, label)
    return CPCVResult(
        paths=per_path,
        summary=_summary(per_path),
        predictions=predictions,
        label=label,
        splits=splits or [],
        fit_seconds=fit_seconds or [],
    )


def cpcv_evaluate(
    estimator: BaseEstimator,
    X: pd.DataFrame,
    y: pd.Series,
    cv: CombinatorialPurgedCV | None = None,
) -> CPCVResult:
    """Fit a clone of ``estimator`` per CPCV split (over dates), predict its test folds and
    assemble the predictions into skfolio's paths; metrics per path against the raw ``y``."""
    cv = cv if cv is not None else make_cpcv()
    y = y.reindex(X.index)
    dates = panel_dates(X.index)
    codes = _date_codes(X.index, dates)
    splits = cpcv_date_splits(dates, cv)
    predictions = np.full((len(X), cv.n_test_paths), np.nan)
    fit_seconds = []
    for split in splits:
        train_rows = np.isin(codes, _positions(dates, split.train_dates))
        model = clone(estimator)
        start = time.perf_counter()
        model.fit(X[train_rows], y[train_rows])
        fit_seconds.append(time.perf_counter() - start)
        for test_dates, path in zip(split.test_dates, split.path_ids, strict=True):
            rows = np.flatnonzero(np.isin(codes, _positions(dates, test_dates)))
            predictions[rows, path] = model.predict(X.iloc[rows])
    frame = pd.DataFrame(predictions, index=X.index, columns=pd.RangeIndex(cv.n_test_paths))
    frame.columns.name = "path"
    return result_from_predictions(frame, y, splits, fit_seconds)


@dataclass
class WalkForwardResult:
    """Purged walk-forward evaluation: ``predictions`` (out-of-sample score per row, NaN
    before the first test block), ``daily`` (per-date ic / rank_ic), ``summary``
    (:func:`~quant_assets.models.cross_section.summarise_ic`), ``folds`` (train start, train
    end, test start, test end dates)."""

    predictions: pd.Series
    daily: pd.DataFrame
    summary: dict[str, float]
    folds: list[tuple[object, object, object, object]]


def walk_forward_evaluate(
    estimator: BaseEstimator,
    X: pd.DataFrame,
    y: pd.Series,
    train_days: int,
    test_days: int,
    purge: int = LABEL_HORIZON_SESSIONS,
    expanding: bool = False,
) -> WalkForwardResult:
    """Train on ``train_days`` dates (or every date so far if ``expanding``), skip ``purge``
    dates, predict the next ``test_days`` dates, roll forward by ``test_days``.

    ``purge >= horizon - 1`` keeps every training label window before the first test date's
    label window; the default (the horizon) adds a session of margin.
    """
    y = y.reindex(X.index)
    dates = panel_dates(X.index)
    codes = _date_codes(X.index, dates)
    scores = np.full(len(X), np.nan)
    folds: list[tuple[object, object, object, object]] = []
    test_start = train_days + purge
    while test_start < len(dates):
        test_end = min(test_start + test_days, len(dates))
        train_end = test_start - purge
        train_start = 0 if expanding else train_end - train_days
        train_rows = (codes >= train_start) & (codes < train_end)
        test_rows = (codes >= test_start) & (codes < test_end)
        model = clone(estimator).fit(X[train_rows], y[train_rows])
        scores[test_rows] = model.predict(X[test_rows])
        labels = pd.Index(dates)  # Timestamps rather than raw numpy datetime64 in the report
        folds.append(
            (labels[train_start], labels[train_end - 1], labels[test_start], labels[test_end - 1])
        )
        test_start = test_end
    predictions = pd.Series(scores, index=X.index, name="score")
    daily = daily_ic(predictions, y)
    return WalkForwardResult(predictions, daily, summarise_ic(daily), folds)
