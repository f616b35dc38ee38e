"""Drift measures of the live model: pure functions, arrays and Polars in, numbers and frames out.

* **Feature drift** (:class:`DriftReference`, :func:`feature_drift`), computed here, vectorised
  over the panel, on one binning per feature: ``bins`` (20) intervals cut at the quantiles of the
  model's training window (the *reference*). Per feature, the current window's binned shares
  ``c`` against the reference's ``r``:

  - ``psi``: Population Stability Index ``sum((c - r) * ln(c / r))``, an empty bin's share taken
    as 0.0001 so the log stays finite (Evidently's convention);
  - ``ks_statistic``: the Kolmogorov-Smirnov distance ``max |C - R|`` of the two cumulative
    shares at the reference's bin edges (a binned KS: exact at those 19 points);
  - ``js_distance``: the Jensen-Shannon distance of ``c`` and ``r`` (natural log, so in
    ``[0, sqrt(ln 2)]``; ``scipy.spatial.distance.jensenshannon``'s definition).

  **Why not the textbook p-values.** A day's window is 21 consecutive sessions of features built
  on 5- to 60-session rolling windows, and every ticker of a session shares its market: the
  window's rows are nowhere near the independent draws KS or a chi-square test assume. On the
  stationary synthetic market the old independent-sample KS test flagged 38.6% of the features
  every day. The null distribution is therefore taken from the reference itself (a moving-block
  bootstrap without resampling): the training window is cut into every block of
  ``window_sessions`` consecutive sessions (stride ``ceil((sessions - window + 1) / max_blocks)``),
  and each block's PSI against the rest of the reference is what an unchanged market produces
  for a window of that length, with its real autocorrelation and cross-sectional dependence.
  A feature's p-value is the share of blocks whose PSI reaches the current window's
  (``(1 + #{null >= observed}) / (1 + blocks)``).

  **Across the 158 features** (highly correlated: many are the same quantity at five window
  lengths) the decision is family-wise, Westfall-Young max-T style: each feature's PSI is
  standardised on its own null, each block's largest standardised value is what an unchanged
  market produces as its most extreme feature, and a Gumbel law fitted to those maxima gives each
  feature its adjusted p-value (:func:`block_pvalues`); a feature is significant at
  ``alarm_pvalue``, and a day with at least one drifted feature raises the alarm. The level is
  calibrated by simulation, not taken from the nominal 0.05 (see :class:`DriftThresholds`).

  A feature is *drifted* when it is significant at that family-wise level AND material (PSI or
  JS distance at its threshold): with 10,000 rows a window can differ significantly but by too
  little to matter to a model. The calibration (alarm rate on the stationary synthetic market,
  detection of planted shifts, alarm rate on the shared real sample) is measured by
  ``benches/bench_drift.py`` and reported in the README.

* **Prediction drift** (:func:`prediction_drift`): the same three measures on the ensemble
  score of the current window against the champion's out-of-sample scores (bins at the reference
  scores' deciles), plus the two-sample KS p-value (``scipy.stats.ks_2samp``). Graded by its
  PSI; the scores are one value per ticker and day, so the p-value is shown, not used.
* **Explanation drift** (:func:`explanation_drift`): Spearman rank correlation of per-feature
  mean |SHAP| between the current week and the training week, per boosted model.
* **Rolling Sharpe** (``quant_core.metrics.trailing_sharpe``): annualised Sharpe of the live
  book's realised daily returns over the last 30, 60 and 90 sessions (NaN until that many
  sessions exist).
* Evidently (:func:`evidently_report`) draws the HTML report of the most drifted features and
  the score; its plots carry its own binning, the stored figures are the ones above.

Severity (:class:`DriftThresholds`) is graded OK / WARN / ERROR with explicit, documented
thresholds (ERROR is severe drift, in Dagster's word for a check's top severity, so the checks,
the PDF, the dashboard and the README use one word). A measure that cannot be computed (too few
rows, a training window shorter than 19 drift windows, no second SHAP week, too little live history) has no severity: it is stored as
NaN and shown as NOT EVALUATED, never as OK.
"""

from __future__ import annotations

import enum
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import ArrayLike
from scipy.stats import ks_2samp

from quant_assets.metadata import NOT_EVALUATED

# a column needs this many finite values on each side to be tested
MIN_ROWS = 30
# a window's p-value needs a reference of at least this many disjoint windows: its resolution is
# 1 / (windows + 1), so 19 is the fewest that can reach 0.05
MIN_WINDOWS = 19
# an empty bin's share (Evidently's PSI convention): keeps ln(c / r) finite
EMPTY_SHARE = 1e-4
DEFAULT_BINS = 20
DEFAULT_MAX_BLOCKS = 200
QUANTILE_ROWS = 100_000
MEASURES = ("psi", "ks_statistic", "js_distance")


class Severity(enum.IntEnum):
    OK = 0
    WARN = 1
    ERROR = 2


def severity_name(value: float | None) -> str:
    """The word every surface shows for a stored severity: OK, WARN, ERROR or NOT EVALUATED
    (None or NaN: the measure could not be computed)."""
    if value is None or not math.isfinite(value):
        return NOT_EVALUATED
    return Severity(int(value)).name


def stored_severity(severity: Severity | None) -> float:
    """A severity as ``drift_summary`` stores it: its number, NaN when not evaluated."""
    return math.nan if severity is None else float(severity)


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature counts as drifted, and how severe a day's drift is.

    Per feature:

    * ``alarm_pvalue`` 0.00001: the family-wise p-value (across all monitored features, see the
      module doc) at which a feature is significant. Not 0.05: the fitted tail extrapolates
      from about a dozen volatility regimes, and a nominal 0.05 rings on over 10% of the days
      of a stationary market. Chosen with ``benches/bench_drift.py`` (README "Drift
      calibration"): on the shared real sample it rings in October and November 2008 and
      September 2011 and on no other monitored day of 2008-2012; on the stationary synthetic
      market on under 5% of days while still finding planted half-standard-deviation shifts;
    * materiality: ``psi`` 0.1 (the credit-scoring convention reads PSI < 0.1 as no significant
      change, 0.1-0.25 as moderate, >= 0.25 as a significant shift) or ``js_distance`` 0.1;
    * drifted = significant at ``alarm_pvalue`` and material.

    Per day:

    * features: WARN when at least one feature drifted (the alarm), ERROR from
      ``share_severe`` (25%) of the tested features drifted: broad drift, a retraining reason;
    * predictions: the score's PSI, WARN from ``prediction_psi_warn`` (0.1) and ERROR from
      ``prediction_psi_severe`` (0.25), the PSI convention above;
    * explanations: WARN when the Spearman correlation of the SHAP rankings falls below
      ``shap_rank_corr_warn`` (0.5: fewer than half of the ranking's order survives);
    * the live book: ``sharpe_floor`` -1.0 on the ``sharpe_window`` (60) sessions' annualised
      Sharpe. Its standard error on 60 sessions is about sqrt(252 / 60) = 2.05, so a floor at 0
      would fire about half the time for a strategy with no edge; -1 fires for a strategy with
      a true Sharpe of 1 only about 16% of the time, yet catches a book that lost its edge.
    """

    alarm_pvalue: float = 0.00001
    psi: float = 0.1
    js_distance: float = 0.1
    share_severe: float = 0.25
    prediction_psi_warn: float = 0.1
    prediction_psi_severe: float = 0.25
    shap_rank_corr_warn: float = 0.5
    sharpe_floor: float = -1.0
    sharpe_window: int = 60

    def __post_init__(self) -> None:
        if not 0 < self.alarm_pvalue < 1:
            raise ValueError("need 0 < alarm_pvalue < 1")
        if not 0 < self.share_severe <= 1:
            raise ValueError("need 0 < share_severe <= 1")
        if not 0 < self.prediction_psi_warn <= self.prediction_psi_severe:
            raise ValueError("need 0 < prediction_psi_warn <= prediction_psi_severe")

    def drifted(self) -> pl.Expr:
        """Whether a row of a ``psi, js_distance, p_adjusted`` frame drifted: significant at the
        family-wise level and material (a missing measure never counts as drift)."""
        material = (pl.col("psi") >= self.psi) | (pl.col("js_distance") >= self.js_distance)
        return ((pl.col("p_adjusted") <= self.alarm_pvalue) & material).fill_null(False)

    def feature_severity(self, drifted: int, tested: int) -> Severity | None:
        """None when no feature could be tested."""
        if tested == 0:
            return None
        if drifted / tested >= self.share_severe:
            return Severity.ERROR
        return Severity.WARN if drifted else Severity.OK

    def prediction_severity(self, psi: float) -> Severity | None:
        if not math.isfinite(psi):
            return None
        if psi >= self.prediction_psi_severe:
            return Severity.ERROR
        if psi >= self.prediction_psi_warn:
            return Severity.WARN
        return Severity.OK

    def explanation_severity(self, rank_corr: float) -> Severity | None:
        if not math.isfinite(rank_corr):
            return None
        return Severity.WARN if rank_corr < self.shap_rank_corr_warn else Severity.OK

    def sharpe_breached(self, sharpe: float) -> bool | None:
        """The live book's Sharpe is below the floor; None (not evaluated) while the window has
        too little history for a Sharpe."""
        if not math.isfinite(sharpe):
            return None
        return sharpe < self.sharpe_floor


# --- the measures on binned counts (last axis = bins) ------------------------------------------


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts / total


def psi(current: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """PSI of binned counts along the last axis (NaN where a side has no value)."""
    c = np.maximum(_shares(current), EMPTY_SHARE)
    r = np.maximum(_shares(reference), EMPTY_SHARE)
    return np.sum((c - r) * np.log(c / r), axis=-1)


def ks_statistic(current: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Largest gap of the cumulative shares at the bin edges."""
    gap = np.cumsum(_shares(current), axis=-1) - np.cumsum(_shares(reference), axis=-1)
    return np.max(np.abs(gap), axis=-1)


def js_distance(current: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (natural log) of binned counts along the last axis."""
    c, r = _shares(current), _shares(reference)
    m = (c + r) / 2

    def kl(p: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            terms = np.where(p > 0, p * np.log(p / m), 0.0)
        return terms.sum(axis=-1)

    return np.sqrt(np.maximum((kl(c) + kl(r)) / 2, 0.0))


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """``(columns, bins - 1)`` inner edges at the ``k / bins`` quantiles of each column of
    ``values`` (rows x columns, NaN ignored). Tied quantiles give repeated edges, i.e. bins
    that stay empty on both sides and add nothing to any measure."""
    levels = np.arange(1, bins) / bins
    with warnings.catch_warnings():  # an all-NaN column gets NaN edges
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanquantile(values, levels, axis=0).T


def bin_counts(
    values: np.ndarray, edges: np.ndarray, groups: np.ndarray, n_groups: int
) -> np.ndarray:
    """``(n_groups, columns, bins)`` counts of the finite values of each column, per row group
    (``groups``: each row's group in ``0..n_groups``). A value equal to an edge goes above it."""
    n_columns, bins = edges.shape[0], edges.shape[1] + 1
    out = np.zeros((n_groups, n_columns, bins), dtype=np.int64)
    for j in range(n_columns):  # one vectorised pass per feature column
        column = values[:, j]
        finite = np.isfinite(column)
        binned = np.searchsorted(edges[j], column[finite], side="right")
        flat = groups[finite] * bins + binned
        out[:, j, :] = np.bincount(flat, minlength=n_groups * bins).reshape(n_groups, bins)
    return out


def _matrix(frame: pl.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Float64 rows x columns with every non-finite value as NaN."""
    if not columns:
        return np.empty((frame.height, 0))
    # column-major: every pass below reads one feature's column
    values = frame.select(pl.col(c).cast(pl.Float64) for c in columns).to_numpy(order="fortran")
    if not values.flags.writeable:
        values = values.copy(order="F")
    values[~np.isfinite(values)] = np.nan
    return values


def block_stride(sessions: int, window: int, max_blocks: int) -> int:
    """The step between the starts of the reference's blocks: every block when they are at most
    ``max_blocks``, otherwise evenly thinned to about ``max_blocks``."""
    starts = sessions - window + 1
    return max(1, math.ceil(starts / max_blocks)) if starts > 0 else 1


@dataclass(frozen=True)
class DriftReference:
    """What a model's feature-drift tests compare against, built once from its training window
    (:meth:`build`): per feature the bin edges and the pooled counts, and the null distribution
    of PSI over the window's blocks of ``window_sessions`` sessions (blocks x features, in
    block order: the max-T adjustment needs each block's values across features)."""

    features: tuple[str, ...]
    edges: np.ndarray  # (features, bins - 1)
    counts: np.ndarray  # (features, bins)
    null_psi: np.ndarray  # (blocks, features)
    block_starts: tuple[date, ...]
    block_ends: tuple[date, ...]
    window_sessions: int
    start: date
    end: date

    @property
    def blocks(self) -> int:
        return int(self.null_psi.shape[0])

    @property
    def overlap(self) -> float:
        """How many blocks start within a block's span, on average (``window_sessions`` when
        every block is kept, 1 for disjoint blocks): the p-values count blocks in these units."""
        if not self.blocks:
            return 1.0
        starts = np.array(self.block_starts, dtype="datetime64[D]")
        ends = np.array(self.block_ends, dtype="datetime64[D]")
        inside = np.searchsorted(starts, ends, side="right") - np.arange(self.blocks)
        return float(inside.mean())

    @classmethod
    def build(
        cls,
        frame: pl.DataFrame,
        features: Sequence[str],
        window_sessions: int,
        bins: int = DEFAULT_BINS,
        max_blocks: int = DEFAULT_MAX_BLOCKS,
    ) -> DriftReference:
        """From a ``date`` + feature columns frame (a model's training window of Alpha158).
        Features with fewer than ``MIN_ROWS`` finite values or a single value are left out."""
        if window_sessions < 1 or bins < 2 or max_blocks < 1:
            raise ValueError("need window_sessions >= 1, bins >= 2 and max_blocks >= 1")
        if frame.is_empty():
            raise ValueError("an empty reference window")
        frame = frame.sort("date")
        days = frame["date"].unique(maintain_order=True)
        group = frame["date"].rank("dense").cast(pl.Int64).to_numpy() - 1
        values = _matrix(frame, features)
        with warnings.catch_warnings():  # an all-NaN column is dropped below
            warnings.simplefilter("ignore", RuntimeWarning)
            spread = np.nanmax(values, axis=0) - np.nanmin(values, axis=0)
        keep = (np.isfinite(values).sum(axis=0) >= MIN_ROWS) & (spread > 0)
        values = values[:, keep]
        names = tuple(f for f, k in zip(features, keep, strict=True) if k)
        # the quantiles of an evenly spaced subsample of at most QUANTILE_ROWS rows: the edges
        # are only where the bins are cut; every row is counted
        edges = quantile_edges(values[:: math.ceil(len(values) / QUANTILE_ROWS) or 1], bins)
        per_day = bin_counts(values, edges, group, days.len())
        stride = block_stride(days.len(), window_sessions, max_blocks)
        starts = np.arange(0, max(days.len() - window_sessions + 1, 0), stride)
        cumulative = np.concatenate([np.zeros_like(per_day[:1]), np.cumsum(per_day, axis=0)])
        total = cumulative[-1]
        block = cumulative[starts + window_sessions] - cumulative[starts]
        return cls(
            features=names,
            edges=edges,
            counts=total,
            null_psi=psi(block, total[None] - block),
            block_starts=tuple(days.gather(starts).to_list()),
            block_ends=tuple(days.gather(starts + window_sessions - 1).to_list()),
            window_sessions=window_sessions,
            start=days[0],
            end=days[-1],
        )

    def select(self, features: Sequence[str]) -> DriftReference:
        """The reference restricted to ``features`` (those it holds), e.g. a monitored subset:
        the family of the max-T adjustment is then that subset."""
        index = [self.features.index(f) for f in features if f in self.features]
        return DriftReference(
            features=tuple(self.features[i] for i in index),
            edges=self.edges[index],
            counts=self.counts[index],
            null_psi=self.null_psi[:, index],
            block_starts=self.block_starts,
            block_ends=self.block_ends,
            window_sessions=self.window_sessions,
            start=self.start,
            end=self.end,
        )


def reference_frames(reference: DriftReference, week: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``reference`` as the ``drift_reference`` table (per feature and bin: the bin's upper
    edge, null for the last, and its count) and the ``drift_null`` table (per block and feature:
    the block's PSI against the rest of the window)."""
    n_features, bins = reference.counts.shape
    upper = np.concatenate([reference.edges, np.full((n_features, 1), np.nan)], axis=1)
    names = np.array(reference.features, dtype=object)
    bins_frame = pl.DataFrame(
        {
            "week": [week] * (n_features * bins),
            "feature": pl.Series(np.repeat(names, bins), dtype=pl.String),
            "bin": np.tile(np.arange(bins, dtype=np.int16), n_features),
            "upper_edge": upper.ravel(),
            "count": reference.counts.ravel().astype(np.int64),
        }
    ).with_columns(pl.col("upper_edge").fill_nan(None))
    blocks = reference.blocks
    repeat = np.repeat(np.arange(blocks), n_features)
    null_frame = pl.DataFrame(
        {
            "week": [week] * (blocks * n_features),
            "block_start": pl.Series(list(reference.block_starts), dtype=pl.Date).gather(repeat),
            "block_end": pl.Series(list(reference.block_ends), dtype=pl.Date).gather(repeat),
            "block_sessions": np.full(blocks * n_features, reference.window_sessions, np.int16),
            "feature": pl.Series(np.tile(names, blocks), dtype=pl.String),
            "psi": reference.null_psi.ravel(),
        }
    )
    return bins_frame, null_frame


def reference_from_frames(
    bins_frame: pl.DataFrame, null_frame: pl.DataFrame, start: date, end: date
) -> DriftReference:
    """Inverse of :func:`reference_frames` (``start``/``end``: the training window)."""
    bins_frame = bins_frame.sort("feature", "bin")
    features = tuple(bins_frame["feature"].unique(maintain_order=True).to_list())
    shape = (len(features), bins_frame.height // max(len(features), 1))
    upper = bins_frame["upper_edge"].cast(pl.Float64).fill_null(np.nan).to_numpy().reshape(shape)
    wide = null_frame.pivot(
        on="feature", index=["block_start", "block_end", "block_sessions"], values="psi"
    ).sort("block_start")
    null_psi = wide.select(
        pl.col(f).cast(pl.Float64) if f in wide.columns else pl.lit(np.nan).alias(f)
        for f in features
    ).fill_null(np.nan)
    sessions = wide["block_sessions"].unique()
    if sessions.len() > 1:
        raise ValueError(f"blocks of different lengths: {sessions.to_list()}")
    return DriftReference(
        features=features,
        edges=np.array(upper[:, :-1]),
        counts=bins_frame["count"].to_numpy().reshape(shape),
        null_psi=null_psi.to_numpy().reshape(wide.height, len(features)),
        block_starts=tuple(wide["block_start"].to_list()),
        block_ends=tuple(wide["block_end"].to_list()),
        window_sessions=int(sessions[0]) if sessions.len() else 0,
        start=start,
        end=end,
    )


@dataclass(frozen=True)
class FeatureDrift:
    """A window's per-feature table (``feature, psi, ks_statistic, js_distance, p_value,
    p_adjusted, drifted``; ``p_*`` null where the reference is too short) and its sizes."""

    table: pl.DataFrame
    current_rows: int
    blocks: int

    @property
    def tested(self) -> int:
        """Features with a p-value (enough rows in the window, enough reference blocks)."""
        return int(self.table["p_adjusted"].is_not_null().sum()) if self.table.height else 0

    @property
    def drifted(self) -> int:
        return int(self.table["drifted"].sum()) if self.table.height else 0

    @property
    def drifted_share(self) -> float:
        """Drifted share of the tested features; NaN when none could be tested."""
        return self.drifted / self.tested if self.tested else math.nan

    @property
    def alarm(self) -> bool | None:
        """At least one feature drifted; None when none could be tested."""
        return self.drifted > 0 if self.tested else None

    @property
    def max_psi(self) -> float:
        return float(self.table["psi"].max()) if self.table.height else math.nan  # type: ignore[arg-type]

    def worst(self) -> pl.DataFrame:
        """Drifted features first, then by adjusted p-value and PSI."""
        return self.table.sort(
            ["drifted", "p_adjusted", "psi"], descending=[True, False, True], nulls_last=True
        )


def _exceedances(null: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per column j: how many of ``null[:, j]`` reach ``values[j]``."""
    ordered = np.sort(null, axis=0)
    return np.array(
        [
            null.shape[0] - np.searchsorted(ordered[:, j], values[j], side="left")
            for j in range(null.shape[1])  # one vectorised search per feature column
        ],
        dtype=np.int64,
    )


def block_pvalues(
    observed: np.ndarray, null: np.ndarray, overlap: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature p-values of ``observed`` (features) against ``null`` (blocks x features) and
    the family-wise p-values across the features (Westfall-Young max-T with a Gumbel tail).

    ``p = (1 + #{null >= observed}) / (1 + blocks)``, counted in units of ``overlap`` (the
    blocks that start within one block's span, :attr:`DriftReference.overlap`): overlapping
    blocks are not independent windows. Shown, not used for the decision.

    Family: each feature's PSI is standardised on its own null, ``z = (PSI - mean) / sd`` of
    the blocks' PSI, so that features of any noise level compete on one footing (not on a log
    scale: it squeezes the largest values together, and on the real sample October 2008's
    volatility features, at 20 times their null's mean, were then no more extreme than the
    reference's own worst weeks); each block's largest z is what an unchanged market produces as the
    most extreme of all features, and ``p_adjusted`` is the chance that this maximum reaches a
    feature's z under a Gumbel law fitted to the blocks' maxima by moments. The fitted tail
    rather than the blocks' ranks: a training window holds only about a dozen independent
    volatility regimes, and a window beyond all of them (which a stationary market produces
    about one time in ten) has no rank below 1 / blocks; the tail extrapolates."""
    windows = null.shape[0] / overlap
    p = (1 + _exceedances(null, observed) / overlap) / (windows + 1)
    mean, sd = null.mean(axis=0), null.std(axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (observed - mean) / sd
        z_null = (null - mean) / sd
    usable = np.isfinite(z) & (sd > 0)
    if not usable.any() or null.shape[0] < 2:
        return p, np.full(observed.shape, np.nan)
    largest = z_null[:, usable].max(axis=1)
    scale = largest.std(ddof=1) * math.sqrt(6) / math.pi
    if not scale > 0:
        return p, np.full(observed.shape, np.nan)
    location = largest.mean() - np.euler_gamma * scale
    p_adjusted = -np.expm1(-np.exp(-(z - location) / scale))
    return p, np.where(usable, p_adjusted, np.nan)


def feature_drift(
    current: pl.DataFrame, reference: DriftReference, thresholds: DriftThresholds | None = None
) -> FeatureDrift:
    """Each reference feature of the ``current`` window (its rows, any order) binned on the
    reference's edges and tested against its null (see the module doc). Features with fewer
    than ``MIN_ROWS`` finite values in the window are left out of the table and of the family;
    with a reference shorter than ``MIN_WINDOWS`` windows nothing gets a p-value."""
    thresholds = thresholds or DriftThresholds()
    values = _matrix(current, reference.features)
    counts = bin_counts(values, reference.edges, np.zeros(current.height, np.int64), 1)[0]
    kept = counts.sum(axis=1) >= MIN_ROWS
    counts, ref_counts = counts[kept], reference.counts[kept]
    observed = psi(counts, ref_counts)
    n = int(kept.sum())
    p = p_adjusted = np.full(n, np.nan)
    null = reference.null_psi[:, kept]
    if current.height:
        # blocks that share sessions with the window are the window itself, not its null
        first = current["date"].cast(pl.Date).to_numpy().min()
        null = null[np.array(reference.block_ends, dtype="datetime64[D]") < first]
    if null.shape[0] / reference.overlap >= MIN_WINDOWS and n:
        p, p_adjusted = block_pvalues(observed, null, reference.overlap)
    table = pl.DataFrame(
        {
            "feature": [f for f, k in zip(reference.features, kept, strict=True) if k],
            "psi": observed,
            "ks_statistic": ks_statistic(counts, ref_counts),
            "js_distance": js_distance(counts, ref_counts),
            "p_value": p,
            "p_adjusted": p_adjusted,
        },
        schema={
            "feature": pl.String,
            **dict.fromkeys(MEASURES, pl.Float64),
            "p_value": pl.Float64,
            "p_adjusted": pl.Float64,
        },
    ).with_columns(pl.col("p_value", "p_adjusted").fill_nan(None))
    table = table.with_columns(thresholds.drifted().alias("drifted"))
    return FeatureDrift(table, current.height, reference.blocks)


def prediction_drift(
    current_scores: ArrayLike, reference_scores: ArrayLike, bins: int = 10
) -> dict[str, float]:
    """PSI, binned KS and JS distance of the scores (bins at the reference's deciles: the
    convention the PSI grades 0.1 / 0.25 come from; finer bins read higher for the same change)
    and the two-sample KS p-value; all NaN when a side has fewer than ``MIN_ROWS`` finite scores
    or the reference is constant."""
    current = np.asarray(current_scores, dtype=np.float64)
    reference = np.asarray(reference_scores, dtype=np.float64)
    current, reference = current[np.isfinite(current)], reference[np.isfinite(reference)]
    names = ("psi", "ks_statistic", "js_distance", "ks_pvalue")
    if min(current.size, reference.size) < MIN_ROWS or np.ptp(reference) == 0:
        return dict.fromkeys(names, math.nan)
    edges = quantile_edges(reference[:, None], bins)
    cur = bin_counts(current[:, None], edges, np.zeros(current.size, np.int64), 1)[0, 0]
    ref = bin_counts(reference[:, None], edges, np.zeros(reference.size, np.int64), 1)[0, 0]
    measures = (psi(cur, ref), ks_statistic(cur, ref), js_distance(cur, ref))
    pvalue = ks_2samp(current, reference).pvalue
    return dict(zip(names, (*map(float, measures), float(pvalue)), strict=True))


def evidently_report(current: pl.DataFrame, reference: pl.DataFrame, columns: Sequence[str]) -> Any:
    """Evidently's report (one ``ValueDrift`` with its distribution plot per column; PSI on its
    own binning) of ``columns`` of ``current`` against ``reference``: the HTML a person opens
    (``.save_html(path)``). Each column's missing values are dropped before its plot."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    def pandas(frame: pl.DataFrame) -> Any:
        return frame.select(
            pl.when(pl.col(c).cast(pl.Float64).is_finite())
            .then(pl.col(c).cast(pl.Float64))
            .alias(c)
            for c in columns
        ).to_pandas()

    definition = DataDefinition(numerical_columns=list(columns))
    report = Report([ValueDrift(column=c, method="psi") for c in columns])
    return report.run(
        Dataset.from_pandas(pandas(current), data_definition=definition),
        Dataset.from_pandas(pandas(reference), data_definition=definition),
    )


def explanation_drift(current: pl.DataFrame, training: pl.DataFrame) -> pl.DataFrame:
    """Spearman rank correlation of per-feature mean |SHAP| between ``current`` and
    ``training`` (both ``model, feature, mean_abs_shap``), per model present in both, over the
    features both rank: ``model, features, rank_corr``. 1 = the same importance order."""
    joined = current.select("model", "feature", "mean_abs_shap").join(
        training.select("model", "feature", pl.col("mean_abs_shap").alias("training_shap")),
        on=["model", "feature"],
    )
    return (
        joined.group_by("model")
        .agg(
            pl.len().alias("features"),
            pl.corr("mean_abs_shap", "training_shap", method="spearman").alias("rank_corr"),
        )
        .filter(pl.col("features") >= 3)
        .with_columns(pl.col("rank_corr").cast(pl.Float64).fill_nan(None))
        .sort("model")
    )
