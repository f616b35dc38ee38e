"""Cross-sectional helpers on a (date, ticker) panel: label normalisation, ranks and IC metrics.

Panel convention: a pandas object indexed by a MultiIndex whose level 0 is the date (sorted by
date, then ticker). Every operation here acts within one date, never across dates.

Label normalisation: gaussianised rank (the default)
-----------------------------------------------------
The label is a raw 5-day forward excess return. Its scale changes with the volatility regime
(a GARCH market doubles the cross-sectional dispersion in a stressed week) and its tails are
fat, so an L2-trained regressor on the raw label spends its capacity fitting a few volatile
dates and a few outliers. We only use the model's cross-sectional ordering (ranked, then
ensembled), so the target is each date's rank mapped to a standard normal quantile,
``ndtri((rank - 0.5) / n)``:

- it removes per-date scale and outliers entirely (a rank is bounded by construction);
- it is what Rank IC measures, so the training objective matches the evaluation metric;
- unlike a uniform rank, it keeps normal-like tails, so the L2 loss still weights the
  extremes of the cross-section (the names a long/short book trades) more than the middle.

``"rank_uniform"`` (rank scaled to [-0.5, 0.5]) and ``"robust_zscore"`` ((y - median) /
(1.4826 MAD) clipped at +-3: keeps magnitudes inside the clip) are available for comparison.
Ties take the average rank; NaN labels stay NaN (the estimators drop them).

Feature normalisation (an option, chosen by validation)
-------------------------------------------------------
Tree models are invariant to a monotonic transform of a whole column, but not to a transform
made per date: ``normalise_features`` maps each feature within each date to its gaussianised
rank (``"rank_gauss"``) or its robust z-score winsorised at ``+-clip`` (``"robust_zscore"``),
which removes the feature's level over time (a momentum of +30% means "top of the
cross-section" in one year and "middle" in another) and keeps only its place among the day's
stocks. Missing values stay missing (the trees route them). Whether it helps is a choice of
the model selection (``quant_assets.models.selection``), measured on real data.

Score neutralisation
--------------------
``neutralise`` removes from each date's scores their sector means, and optionally their
exposure to a per-row variable (the market beta): the residual of the date's least-squares
regression of the score on sector dummies and the exposure (Frisch-Waugh: both demeaned within
sector, then the slope removed). A book built on the residual does not bet on a sector or on
the market by accident of the model. An unclassified name is a group of its own
(``quant_core.sectors``): its sector-neutral score is 0, the middle of the day.

IC metrics
----------
Daily IC is the Pearson correlation between score and label across the tickers of one date;
Rank IC the Spearman one (Pearson of the within-date ranks). Both use only rows where score and
label are present; a date with fewer than ``MIN_NAMES`` such rows, or a constant score or
label, gives NaN and is skipped by the summary. ICIR = mean / std (ddof=1) of the daily IC,
NOT annualised: with a 5-day label, consecutive daily ICs share 4 of 5 return days, so a
sqrt(252) scaling would overstate it; compare ICIRs only between runs over the same dates.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import polars as pl
from scipy.special import ndtri

from quant_core.sectors import sector_groups

NormaliseMethod = Literal["rank_gauss", "rank_uniform", "robust_zscore"]
FeatureNormalisation = Literal["none", "rank_gauss", "robust_zscore"]
Neutralisation = Literal["none", "sector", "sector_beta"]

MIN_NAMES = 3  # fewer names than this on a date gives no meaningful correlation
ROBUST_CLIP = 3.0
MAD_TO_STD = 1.4826  # MAD of a normal distribution times this is its standard deviation


def _dates(obj: pd.Series | pd.DataFrame) -> pd.Index:
    if not isinstance(obj.index, pd.MultiIndex):
        raise TypeError("expected a (date, ticker) MultiIndex")
    return obj.index.get_level_values(0)


def cs_rank(score: pd.Series) -> pd.Series:
    """Within-date rank of ``score`` scaled to [-0.5, 0.5] (average ties; NaN stays NaN).

    A date with a single valid name gets 0 (the middle), not a division by zero.
    """
    grouped = score.groupby(_dates(score), sort=False)
    rank = grouped.rank(method="average")
    count = grouped.transform("count")
    scaled = (rank - 1.0) / (count - 1.0).where(count > 1) - 0.5
    return scaled.where(count > 1, 0.0).where(score.notna()).astype(np.float64)


def normalise_label(y: pd.Series, method: NormaliseMethod = "rank_gauss") -> pd.Series:
    """Cross-sectionally normalise the label within each date (see the module docstring)."""
    dates = _dates(y)
    grouped = y.groupby(dates, sort=False)
    if method == "rank_gauss":
        rank = grouped.rank(method="average")
        count = grouped.transform("count")
        out = pd.Series(ndtri(((rank - 0.5) / count).to_numpy(np.float64)), index=y.index)
    elif method == "rank_uniform":
        out = cs_rank(y)
    elif method == "robust_zscore":
        median = grouped.transform("median")
        mad = (y - median).abs().groupby(dates, sort=False).transform("median") * MAD_TO_STD
        # a date whose MAD is 0 (over half the names tied) has no usable scale: centre it only
        z = (y - median) / mad.where(mad > 0)
        out = z.fillna(0.0).clip(-ROBUST_CLIP, ROBUST_CLIP)
    else:
        raise ValueError(f"unknown normalisation {method!r}")
    out = out.where(y.notna()).astype(np.float64)
    out.name = y.name
    return out


def normalise_features(
    X: pd.DataFrame, method: FeatureNormalisation, clip: float = ROBUST_CLIP
) -> pd.DataFrame:
    """Every column of the panel ``X`` normalised within each date (module docstring);
    ``"none"`` returns ``X`` itself. Missing values stay missing."""
    if method == "none":
        return X
    if method not in ("rank_gauss", "robust_zscore"):
        raise ValueError(f"unknown feature normalisation {method!r}")
    columns = [str(c) for c in X.columns]
    frame = pl.from_numpy(X.to_numpy(np.float64), schema=columns).with_columns(
        pl.Series("_date", _dates(X).to_numpy()), pl.col(columns).fill_nan(None)
    )
    if method == "rank_gauss":
        count = pl.col(columns).count().over("_date")
        quantile = (pl.col(columns).rank("average").over("_date") - 0.5) / count
        exprs = quantile.map_batches(lambda q: pl.Series(ndtri(q.to_numpy())))
    else:
        median = pl.col(columns).median().over("_date")
        mad = (pl.col(columns) - median).abs().median().over("_date") * MAD_TO_STD
        z = (pl.col(columns) - median) / pl.when(mad > 0).then(mad)
        exprs = z.clip(-clip, clip)
    values = frame.select(exprs).to_numpy().astype(np.float32)
    return pd.DataFrame(values, index=X.index, columns=X.columns)


def neutralise(
    score: pd.Series, sectors: pd.Series, exposure: pd.Series | None = None
) -> pd.Series:
    """``score`` less its sector mean on each date and, with ``exposure`` (same index), less
    the date's least-squares slope on the sector-demeaned exposure (module docstring). Rows
    without a score stay NaN; a missing exposure counts as the sector's mean exposure."""
    dates = _dates(score)
    tickers = score.index.get_level_values(1)
    groups = sector_groups(sectors.reindex(tickers.unique())).to_dict()
    keys = [dates, np.asarray(tickers.map(groups))]
    out = score - score.groupby(keys, sort=False).transform("mean")
    out.name = score.name
    if exposure is None:
        return out
    beta = exposure.reindex(score.index).where(score.notna())
    beta = (beta - beta.groupby(keys, sort=False).transform("mean")).fillna(0.0)
    sums = pd.DataFrame({"xy": beta * out, "xx": beta * beta}).groupby(dates, sort=False)
    slope = sums["xy"].transform("sum") / sums["xx"].transform("sum").where(lambda v: v > 0)
    residual = out - slope.fillna(0.0) * beta
    residual.name = score.name
    return residual


def _pearson_by_date(a: pd.Series, b: pd.Series) -> pd.Series:
    """Per-date Pearson correlation on rows where both are present, vectorised over dates."""
    valid = a.notna() & b.notna()
    a, b = a[valid].astype(np.float64), b[valid].astype(np.float64)
    dates = _dates(a)
    a_c = a - a.groupby(dates, sort=False).transform("mean")
    b_c = b - b.groupby(dates, sort=False).transform("mean")
    sums = pd.DataFrame({"ab": a_c * b_c, "aa": a_c * a_c, "bb": b_c * b_c, "n": 1.0}).groupby(
        dates, sort=True
    )
    total = sums.sum()
    denom = np.sqrt(total["aa"] * total["bb"])
    # relative threshold: a constant column leaves only rounding noise after demeaning
    ok = (total["n"] >= MIN_NAMES) & (denom > 1e-12 * np.sqrt(total["n"]))
    return (total["ab"] / denom).where(ok)


def daily_ic(score: pd.Series, label: pd.Series) -> pd.DataFrame:
    """Per-date ``ic`` (Pearson) and ``rank_ic`` (Spearman) of ``score`` against ``label``.

    ``score`` and ``label`` must share the panel index (same rows, any order of columns is
    irrelevant: they are aligned on the index). Dates without a valid correlation are NaN.
    """
    score, label = score.align(label, join="inner")
    valid = score.notna() & label.notna()
    score, label = score[valid], label[valid]
    ic = _pearson_by_date(score, label)
    # ranks over the jointly valid rows, so Spearman is Pearson of these ranks
    rank_ic = _pearson_by_date(cs_rank(score), cs_rank(label))
    out = pd.DataFrame({"ic": ic, "rank_ic": rank_ic})
    out.index.name = "date"
    return out


def summarise_ic(daily: pd.DataFrame) -> dict[str, float]:
    """Mean, std and IR (mean / std, un-annualised) of the ``ic`` and ``rank_ic`` columns."""
    out: dict[str, float] = {}
    for col, prefix in (("ic", "ic"), ("rank_ic", "rank_ic")):
        values = daily[col].dropna()
        mean = float(values.mean()) if len(values) else float("nan")
        std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
        out[f"{prefix}_mean"] = mean
        out[f"{prefix}_std"] = std
        out[f"{prefix}ir"] = mean / std if std > 0 else float("nan")
    out["n_dates"] = float(daily["ic"].notna().sum())
    return out


def ic_summary(score: pd.Series, label: pd.Series) -> dict[str, float]:
    """``summarise_ic(daily_ic(score, label))``: keys ic_mean, ic_std, icir, rank_ic_mean,
    rank_ic_std, rank_icir, n_dates (floats, ready for ``mlflow.log_metrics``)."""
    return summarise_ic(daily_ic(score, label))
