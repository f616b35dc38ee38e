"""Calibration of the feature-drift alarm by simulation (``benches/bench_drift.py`` reports it,
``tests/test_drift_calibration.py`` checks it on a smaller draw).

Both measures replay what ``drift_report`` does on a panel of Alpha158 (``ticker, date`` and the
features), session by session, with the model's reference as production has it: the
``reference_sessions`` sessions ending ``gap_sessions`` before the monitored day (a weekly
model's training window ends with the last week; the day's window overlaps its tail).

* :func:`alarm_days`: the days of a panel on which the alarm rang (at least one feature drifted
  at the family-wise level), every ``step_sessions`` sessions so that no two monitored windows
  overlap. On a stationary market its share is the false-alarm rate.
* :func:`planted_shift`: ``shifted_share`` of the features move by ``shift_sd`` of their
  reference standard deviation from an onset session on; the session (0-based, counted from the
  onset) at which one of them is first flagged, or None when none is within ``window_sessions``
  sessions. The reference is the one in use at the onset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from quant_assets.features.alpha158 import compute_alpha158
from quant_assets.monitoring.drift import DriftReference, DriftThresholds, feature_drift
from resources.market_data.synthetic import SyntheticMarket


@dataclass(frozen=True)
class CalibrationSpec:
    reference_sessions: int = 756
    window_sessions: int = 21
    gap_sessions: int = 10
    step_sessions: int = 21
    shift_sd: float = 0.5
    shifted_share: float = 0.1


def stationary_panel(seed: int, tickers: int, start: date, end: date) -> pl.DataFrame:
    """Alpha158 of the synthetic market's members from ``start`` to ``end`` (bars from the
    October before, for the features' lookback)."""
    market = SyntheticMarket(seed=seed, n_tickers=tickers)
    members = market.universe().filter(~pl.col("is_benchmark"))["ticker"].to_list()
    bars = market.fetch_bars(members, date(start.year - 1, 10, 1), end)
    return compute_alpha158(bars).filter(pl.col("date") >= start)


def _sessions(panel: pl.DataFrame) -> pl.Series:
    return panel["date"].unique().sort()


def _between(panel: pl.DataFrame, days: pl.Series, first: int, last: int) -> pl.DataFrame:
    return panel.filter(pl.col("date").is_between(days[first], days[last]))


def _reference(
    panel: pl.DataFrame, days: pl.Series, day: int, features: Sequence[str], spec: CalibrationSpec
) -> DriftReference:
    last = day - spec.gap_sessions
    window = _between(panel, days, last - spec.reference_sessions + 1, last)
    return DriftReference.build(window, features, spec.window_sessions)


def first_monitored(spec: CalibrationSpec) -> int:
    """The first session index with a full reference before it."""
    return spec.reference_sessions + spec.gap_sessions - 1


def alarm_days(
    panel: pl.DataFrame,
    features: Sequence[str],
    spec: CalibrationSpec | None = None,
    thresholds: DriftThresholds | None = None,
) -> pl.DataFrame:
    """``date, tested, drifted, alarm`` of every ``step_sessions``-th session that has a full
    reference before it."""
    spec = spec or CalibrationSpec()
    days = _sessions(panel)
    rows = []
    for day in range(first_monitored(spec), days.len(), spec.step_sessions):
        reference = _reference(panel, days, day, features, spec)
        current = _between(panel, days, day - spec.window_sessions + 1, day)
        drift = feature_drift(current, reference, thresholds)
        rows.append((days[day], drift.tested, drift.drifted, drift.alarm))
    return pl.DataFrame(
        rows,
        schema={"date": pl.Date, "tested": pl.Int64, "drifted": pl.Int64, "alarm": pl.Boolean},
        orient="row",
    )


def planted_shift(
    panel: pl.DataFrame,
    features: Sequence[str],
    onset: int,
    rng: np.random.Generator,
    spec: CalibrationSpec | None = None,
    thresholds: DriftThresholds | None = None,
) -> int | None:
    """Sessions from the onset (session index ``onset``) to the first day a shifted feature is
    flagged, None when not within ``window_sessions`` sessions."""
    spec = spec or CalibrationSpec()
    days = _sessions(panel)
    if onset < first_monitored(spec) or onset + spec.window_sessions > days.len():
        raise ValueError(f"onset {onset} leaves no full reference or no full window")
    reference = _reference(panel, days, onset, features, spec)
    names = list(reference.features)
    k = max(1, round(spec.shifted_share * len(names)))
    shifted = [names[i] for i in rng.choice(len(names), size=k, replace=False)]
    window = _between(
        panel, days, onset - spec.reference_sessions - spec.gap_sessions + 1, onset - 1
    )
    sd = window.select(pl.col(shifted).cast(pl.Float64).std()).row(0)
    moved = panel.with_columns(
        pl.when(pl.col("date") >= days[onset])
        .then(pl.col(c).cast(pl.Float64) + spec.shift_sd * s)
        .otherwise(pl.col(c).cast(pl.Float64))
        .alias(c)
        for c, s in zip(shifted, sd, strict=True)
    )
    for lag in range(spec.window_sessions):
        day = onset + lag
        current = _between(moved, days, day - spec.window_sessions + 1, day)
        drift = feature_drift(current, reference, thresholds)
        flagged = drift.table.filter(pl.col("drifted") & pl.col("feature").is_in(shifted))
        if flagged.height:
            return lag
    return None
