"""How good a score is, beyond its mean IC: by year, by month, after costs, and how stable.

- :func:`yearly_quality`: per calendar year, the mean daily Rank IC against the 5-session label,
  its IR, the share of months whose mean daily Rank IC is positive, and the top-minus-bottom
  quintile spread (below).
- :func:`quintile_spread`: every ``rebalance_every`` sessions (weekly: 5) the book is long the
  top quintile of the score and short the bottom one, equal weights (each leg sums to 1), held
  until the next rebalance; a period earns the 5-session label of its rebalance date (the
  forward return over sessions d+1 .. d+5 in excess of the benchmark, which cancels between the
  legs) and pays ``cost_bps`` per side on every unit of weight traded (``sum |w_t - w_{t-1}|``
  over both legs, the first book bought from cash). Annualised by ``252 / rebalance_every``.
  ``turnover`` is the mean share of the book replaced per rebalance (``sum |dw| / 4``: 1 means
  both legs entirely new). Figures are the mean over the ``rebalance_every`` staggered books
  (starting on each of the first sessions), as overlapping portfolios are measured: one book
  alone sees a fifth of the dates and its figure depends on the weekday it started on.
- :func:`importance_stability`: the mean Spearman correlation between the feature importances
  of consecutive retrainings (1: the same features matter every week).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import polars as pl

from quant_assets.models.cross_section import daily_ic
from quant_core.conventions import LABEL_HORIZON_SESSIONS, TRADING_DAYS

QUINTILE = 0.2


def _frame(score: pd.Series, label: pd.Series) -> pl.DataFrame:
    joined = pd.DataFrame({"score": score, "label": label.reindex(score.index)}).dropna()
    joined.index = joined.index.set_names(["date", "ticker"])
    return pl.from_pandas(joined.reset_index()).with_columns(pl.col("date").cast(pl.Date))


def _legs(frame: pl.DataFrame) -> pl.DataFrame:
    """Weights of the long (top quintile) and short (bottom quintile) legs per date."""
    n = pl.len().over("date")
    rank = pl.col("score").rank("ordinal").over("date")
    size = (n * QUINTILE).floor().clip(lower_bound=1)
    long = (rank > n - size).cast(pl.Float64) / size
    short = (rank <= size).cast(pl.Float64) / size
    return frame.with_columns((long - short).alias("weight"))


def quintile_spread(
    score: pd.Series,
    label: pd.Series,
    rebalance_every: int = LABEL_HORIZON_SESSIONS,
    cost_bps: float = 5.0,
) -> dict[str, float]:
    """gross and net annualised top-minus-bottom quintile return, turnover (module docstring),
    averaged over the ``rebalance_every`` staggered books (one per starting session)."""
    frame = _frame(score, label)
    dates = frame["date"].unique().sort()
    books = [
        _staggered_book(frame, dates[offset:].gather_every(rebalance_every), cost_bps)
        for offset in range(min(rebalance_every, len(dates)))
    ]
    if not books:
        return {"gross": float("nan"), "net": float("nan"), "turnover": float("nan")}
    per_year = TRADING_DAYS / rebalance_every
    return {
        "gross": float(np.mean([b["gross"] for b in books]) * per_year),
        "net": float(np.mean([b["net"] for b in books]) * per_year),
        "turnover": float(np.nanmean([b["turnover"] for b in books])),
    }


def _staggered_book(
    frame: pl.DataFrame, rebalances: pl.Series, cost_bps: float
) -> dict[str, float]:
    """One book rebalanced on ``rebalances``: mean gross and net return per period, turnover."""
    book = _legs(frame.filter(pl.col("date").is_in(rebalances.implode())))
    wide = book.pivot(on="ticker", index="date", values="weight").sort("date").fill_null(0.0)
    weights = wide.drop("date").to_numpy()
    traded = np.abs(np.diff(weights, axis=0, prepend=0.0)).sum(axis=1)
    period = book.group_by("date").agg((pl.col("weight") * pl.col("label")).sum()).sort("date")
    gross = period["weight"].to_numpy()
    return {
        "gross": float(gross.mean()),
        "net": float((gross - traded * cost_bps / 1e4).mean()),
        "turnover": float(traded[1:].mean() / 4) if len(traded) > 1 else float("nan"),
    }


def yearly_quality(score: pd.Series, label: pd.Series, cost_bps: float = 5.0) -> pd.DataFrame:
    """One row per calendar year (and ``all``): rank_ic, rank_icir, positive_months,
    spread_gross, spread_net, turnover (module docstring)."""
    daily = daily_ic(score, label)["rank_ic"].dropna()
    dates = pd.DatetimeIndex(daily.index)
    rows = {}
    for year in [*sorted(set(dates.year)), "all"]:
        in_year = daily if year == "all" else daily[dates.year == year]
        months = in_year.groupby(pd.DatetimeIndex(in_year.index).to_period("M")).mean()
        score_dates = score.index.get_level_values(0)
        scored = score if year == "all" else score[pd.DatetimeIndex(score_dates).year == year]
        spread = quintile_spread(scored, label, cost_bps=cost_bps)
        rows[str(year)] = {
            "rank_ic": float(in_year.mean()),
            "rank_icir": float(in_year.mean() / in_year.std(ddof=1)),
            "positive_months": float((months > 0).mean()),
            "spread_gross": spread["gross"],
            "spread_net": spread["net"],
            "turnover": spread["turnover"],
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "year"
    return table


def importance_stability(importances: list[pd.Series]) -> float:
    """Mean Spearman correlation of consecutive importance vectors (NaN with fewer than 2)."""
    pairs = [a.rank().corr(b.reindex(a.index).rank()) for a, b in itertools.pairwise(importances)]
    return float(np.nanmean(pairs)) if pairs else float("nan")
