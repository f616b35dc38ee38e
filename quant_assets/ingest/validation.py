"""Bar validation: every row either passes every rule or goes to quarantine with its reasons.

Rules (each broken rule is one quarantine row, so a row can carry several reasons):
- ``missing_price``: an OHLC field is null or NaN;
- ``non_positive_price``: an OHLC field is <= 0;
- ``low_above_high``; ``close_outside_range`` / ``open_outside_range``: outside [low, high];
- ``negative_volume``;
- ``not_a_trading_day``: dated on a weekend or an NYSE holiday;
- ``duplicate``: a (ticker, date) seen more than once in the batch: every copy is quarantined,
  since nothing says which copy is right;
- ``spike_reverted``: a bad print that the next sessions take back. A single session whose
  close jumps more than 50% (in log terms) from the previous close and jumps back the next day is
  quarantined when it is a power-of-ten shift both ways (a decimal-shifted print, whatever the
  volume), or when nothing says it traded: volume no higher than ``VOLUME_CONFIRMATION`` times
  the ticker's median of the ``VOLUME_LOOKBACK`` sessions before it, and prices that never
  crossed the gap (the session's range misses the previous close and the next session's range
  misses this close). A real crash and rebound (heavy volume, ranges that span the move) is
  kept. A run of two to ``MAX_SPIKE_RUN`` sessions that stays together is quarantined only as a
  power-of-ten shift both ways (a repeated decimal shift). The last days of a batch have no
  next day yet; they are judged when the next session arrives (``ingest.assets``).
"""

from __future__ import annotations

import math

import polars as pl

from quant_core.calendar import session_ordinals

SPIKE_LOG_THRESHOLD = math.log(1.5)
MAX_SPIKE_RUN = 3
# decades off a whole power of ten: a x10 shift on top of a real move of up to x2 still counts
DECIMAL_TOLERANCE = 0.3
VOLUME_LOOKBACK = 20
VOLUME_CONFIRMATION = 1.5
_OHLC = ("open", "high", "low", "close")


def _rule_flags() -> dict[str, pl.Expr]:
    prices = [pl.col(c) for c in _OHLC]
    return {
        "missing_price": pl.any_horizontal([p.is_null() | p.is_nan() for p in prices]),
        "non_positive_price": pl.any_horizontal([p <= 0 for p in prices]),
        "low_above_high": pl.col("low") > pl.col("high"),
        "close_outside_range": (pl.col("close") < pl.col("low"))
        | (pl.col("close") > pl.col("high")),
        "open_outside_range": (pl.col("open") < pl.col("low")) | (pl.col("open") > pl.col("high")),
        "negative_volume": pl.col("volume") < 0,
        "not_a_trading_day": ~pl.col("date")
        .cast(pl.Int64)
        # polars dates count days from 1970-01-01, ordinals from 0001-01-01
        .add(719_163)
        .is_in(pl.Series(session_ordinals()).implode()),
        "duplicate": pl.len().over("ticker", "date") > 1,
    }


def _within_ticker(expr: pl.Expr, offset: int) -> pl.Expr:
    """``expr`` taken ``offset`` rows away (positive: earlier) when that row is the same ticker,
    else null. Rows must be sorted by (ticker, date); cheaper than ``shift().over("ticker")``."""
    same = pl.col("ticker").shift(offset) == pl.col("ticker")
    return pl.when(same).then(expr.shift(offset))


def _power_of_ten(log_step: pl.Expr) -> pl.Expr:
    """True where a log price step is within ``DECIMAL_TOLERANCE`` decades of x10, x100, /10..."""
    decades = log_step / math.log(10)
    return (decades.round() != 0) & ((decades - decades.round()).abs() < DECIMAL_TOLERANCE)


def _unconfirmed_by_trading() -> pl.Expr:
    """True where a session's move has no sign of real trading: ordinary volume and prices that
    never crossed the gap to the previous close, nor back from the next session."""
    typical_volume = _within_ticker(pl.col("volume"), 1).rolling_median(
        VOLUME_LOOKBACK, min_samples=1
    )
    ordinary_volume = pl.col("volume") <= VOLUME_CONFIRMATION * typical_volume.over("ticker")
    previous_close = _within_ticker(pl.col("close"), 1)
    crossed_in = (pl.col("low") <= previous_close) & (previous_close <= pl.col("high"))
    next_low, next_high = _within_ticker(pl.col("low"), -1), _within_ticker(pl.col("high"), -1)
    crossed_back = (next_low <= pl.col("close")) & (pl.col("close") <= next_high)
    return ordinary_volume.fill_null(True) & ~crossed_in.fill_null(False) & ~crossed_back


def _spike_flag(bars: pl.DataFrame) -> pl.Series:
    """True on the closes of a run of 1..MAX_SPIKE_RUN sessions that jumps more than 50% away
    from the close before it and jumps back (the opposite way, more than 50%) right after it,
    staying together in between, without the evidence of a real move (see the module doc).

    Computed over rows that passed the other rules, sorted by (ticker, date)."""
    log_close = pl.col("close").log()
    steps = bars.select(
        ticker=pl.col("ticker"),
        step=log_close - _within_ticker(log_close, 1),
        unconfirmed=_unconfirmed_by_trading(),
    ).with_columns(
        [
            _within_ticker(pl.col("step"), -k).alias(f"ahead_{k}")
            for k in range(1, MAX_SPIKE_RUN + 1)
        ]
    )
    step = pl.col("step")
    up, down = step > SPIKE_LOG_THRESHOLD, step < -SPIKE_LOG_THRESHOLD
    starts = []
    for length in range(1, MAX_SPIKE_RUN + 1):
        back = pl.col(f"ahead_{length}")
        reverted = (up & (back < -SPIKE_LOG_THRESHOLD)) | (down & (back > SPIKE_LOG_THRESHOLD))
        quiet = [pl.col(f"ahead_{j}").abs() < SPIKE_LOG_THRESHOLD for j in range(1, length)]
        decimal = _power_of_ten(step) & _power_of_ten(back)
        # a real crash can fall 50% and come back within days (HIG, Oct 2008): a longer run has
        # to be a decimal shift, a single session a decimal shift or a print nobody traded at
        evidence = decimal if length > 1 else decimal | pl.col("unconfirmed")
        starts.append(
            pl.all_horizontal([reverted, *quiet, evidence]).fill_null(False).alias(f"run_{length}")
        )
    runs = steps.select("ticker", *starts)
    # a session is flagged when a run of length L started at most L-1 sessions before it
    covered = [
        _within_ticker(pl.col(f"run_{length}"), offset).fill_null(False)
        for length in range(1, MAX_SPIKE_RUN + 1)
        for offset in range(length)
    ]
    return runs.select(pl.any_horizontal(covered)).to_series()


def validate_bars(bars: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split bars into (clean, quarantine). ``quarantine`` has the bar columns plus ``reason``.

    ``bars`` may include context rows before the window (for the spike rule); the caller
    trims both outputs to the window it writes."""
    bars = bars.sort("ticker", "date")
    flags = bars.select(**_rule_flags())
    broken_any = flags.select(pl.any_horizontal(pl.all())).to_series()
    passed = bars.filter(~broken_any)
    spikes = _spike_flag(passed)

    quarantine_parts = [
        bars.filter(flags[rule]).with_columns(pl.lit(rule).alias("reason"))
        for rule in flags.columns
    ]
    quarantine_parts.append(
        passed.filter(spikes).with_columns(pl.lit("spike_reverted").alias("reason"))
    )
    quarantine = pl.concat(quarantine_parts, how="vertical")
    # a duplicated key would collide with itself in the quarantine's (ticker, date, reason) key
    duplicate_copy = pl.int_range(pl.len()).over("ticker", "date", "reason") + 1
    quarantine = quarantine.with_columns(
        pl.when(pl.col("reason") == "duplicate")
        .then(pl.format("duplicate (copy {})", duplicate_copy))
        .otherwise(pl.col("reason"))
        .alias("reason")
    ).sort("ticker", "date", "reason")
    return passed.filter(~spikes), quarantine
