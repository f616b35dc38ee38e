"""The training label: the 5-session forward return of a stock in excess of the benchmark's.

For a session d, ``label = adj_close[h] / adj_close[d] - benchmark_adj_close[h] /
benchmark_adj_close[d]`` where h is the 5th NYSE session after d (the horizon date): buy at d's
close, sell at h's close. Horizons are counted in exchange sessions, not in a ticker's own rows,
so a ticker missing a day does not stretch its holding period; a ticker without a bar on d or on
h has no label that day (no row, never NaN); a session without a benchmark return (its bar
missing on d or h) has no label for any ticker. :func:`label_gaps` records why. The stored
label is the raw excess return; the cross-sectional normalisation used for training lives in
the model code.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from quant_core.calendar import session_ordinals
from quant_core.conventions import LABEL_HORIZON_SESSIONS


class LabelNotAvailable(ValueError):
    """A label was asked for before its horizon session was stored."""


def horizon_date(day: date, sessions: int = LABEL_HORIZON_SESSIONS) -> date:
    """The ``sessions``-th NYSE session after ``day``."""
    ordinals = session_ordinals()
    i = int(np.searchsorted(ordinals, day.toordinal(), side="right")) + sessions - 1
    if i >= len(ordinals):
        raise LabelNotAvailable(f"{day} + {sessions} sessions is past the exchange calendar")
    return date.fromordinal(int(ordinals[i]))


def horizon_dates(days: pl.Series, sessions: int = LABEL_HORIZON_SESSIONS) -> pl.Series:
    """``horizon_date`` of every day of a Date series, vectorised over the session calendar."""
    ordinals = session_ordinals()
    epoch = date(1970, 1, 1).toordinal()
    day_ordinals = days.cast(pl.Int64).to_numpy() + epoch
    positions = np.searchsorted(ordinals, day_ordinals, side="right") + sessions - 1
    if positions.size and positions.max() >= len(ordinals):
        raise LabelNotAvailable("a horizon date is past the exchange calendar")
    return pl.Series("horizon_date", ordinals[positions] - epoch, dtype=pl.Int64).cast(pl.Date)


def check_available(last_day: date, last_stored_session: date | None) -> date:
    """The horizon date of ``last_day``; raises ``LabelNotAvailable`` with the reason when the
    bars of that session are not stored yet."""
    needed = horizon_date(last_day)
    if last_stored_session is None or last_stored_session < needed:
        latest = (
            "no bars are stored"
            if last_stored_session is None
            else (f"the latest stored session is {last_stored_session}")
        )
        raise LabelNotAvailable(
            f"label for {last_day} not yet available: it needs the bars of {needed} "
            f"({LABEL_HORIZON_SESSIONS} sessions later) and {latest}"
        )
    return needed


def _pairs(
    bars: pl.DataFrame, start: date, end: date, horizon: int = LABEL_HORIZON_SESSIONS
) -> pl.DataFrame:
    """Every (ticker, session, horizon) of the sessions ``start <= d < end`` that have bars,
    with the ticker's close on each side (null where it has no bar)."""
    days = bars.select(pl.col("date").unique().sort()).filter(
        (pl.col("date") >= start) & (pl.col("date") < end)
    )["date"]
    horizons = pl.DataFrame({"date": days, "horizon_date": horizon_dates(days, horizon)})
    prices = bars.select("ticker", "date", "adj_close")
    tickers = prices.select("ticker").unique()
    return (
        tickers.join(horizons, how="cross")
        .join(prices, on=["ticker", "date"], how="left")
        .join(
            prices.rename({"date": "horizon_date", "adj_close": "horizon_close"}),
            on=["ticker", "horizon_date"],
            how="left",
        )
    )


def label_gaps(bars: pl.DataFrame, benchmark: str, start: date, end: date) -> pl.DataFrame:
    """Why a session of ``start <= d < end`` (or a ticker on it) has no label: a missing
    benchmark bar on the session or its horizon leaves the whole session unlabelled (one row,
    ``ticker`` = the benchmark); a ticker with a bar on one side only is unlabelled alone. A
    ticker with no bar on either side is simply not trading and is not listed."""
    pairs = _pairs(bars, start, end)
    one_side = pl.col("adj_close").is_null() ^ pl.col("horizon_close").is_null()
    is_benchmark = pl.col("ticker") == benchmark
    benchmark_days = pairs.filter(is_benchmark)
    missing_benchmark = pl.col("adj_close").is_null() | pl.col("horizon_close").is_null()
    gaps = pl.concat(
        [
            benchmark_days.filter(missing_benchmark),
            pairs.filter(~is_benchmark & one_side).join(
                benchmark_days.filter(missing_benchmark).select("date"), on="date", how="anti"
            ),
        ]
    )
    who = pl.when(is_benchmark).then(pl.lit(f"benchmark {benchmark}")).otherwise(pl.lit("ticker"))
    reason = (
        pl.when(pl.col("adj_close").is_null())
        .then(pl.format("{}: no bar on the session", who))
        .otherwise(pl.format("{}: no bar on the horizon date", who))
    )
    return gaps.select("ticker", "date", "horizon_date", reason.alias("reason")).sort(
        "date", "ticker"
    )


def forward_excess_returns(
    bars: pl.DataFrame,
    benchmark: str,
    start: date,
    end: date,
    horizon: int = LABEL_HORIZON_SESSIONS,
) -> pl.DataFrame:
    """Labels for sessions ``start <= d < end`` from ``bars`` (ticker, date, adj_close), which
    must cover those sessions and their horizon dates. Columns as the ``labels`` table; the
    stored label is over ``LABEL_HORIZON_SESSIONS``, other ``horizon`` values are for research
    (the model selection's 1- and 20-session labels).

    A session without a benchmark return (its bar missing on the session or the horizon) gets no
    label (``label_gaps`` says why); only a range where no session has one fails."""
    pairs = _pairs(bars, start, end, horizon).drop_nulls(["adj_close", "horizon_close"])
    returns = pairs.with_columns(
        (pl.col("horizon_close") / pl.col("adj_close") - 1.0).alias("forward_return")
    )
    market = returns.filter(pl.col("ticker") == benchmark).select(
        "date", pl.col("forward_return").alias("benchmark_return")
    )
    if market.is_empty():
        raise LabelNotAvailable(
            f"benchmark {benchmark} has no return on any session of [{start}, {end}): "
            "no label can be computed without it"
        )
    return (
        returns.filter(pl.col("ticker") != benchmark)
        .join(market, on="date")
        .with_columns((pl.col("forward_return") - pl.col("benchmark_return")).alias("label"))
        .select("ticker", "date", "horizon_date", "forward_return", "benchmark_return", "label")
        .sort("ticker", "date")
    )
