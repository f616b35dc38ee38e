"""The documented US equity factors Alpha158 lacks, per (ticker, session), in lazy Polars.

Alpha158 looks back 60 sessions and sees one ticker at a time. These factors reach a year back,
measure each stock against the benchmark, and come in a sector-relative version (the factor
minus its mean over the stocks of the same sector on the same session).

Inputs: the ticker's split/dividend-adjusted bars (``ticker, date, high, close, volume``: the
volume adjusted by the same factor as the prices, as for Alpha158), the benchmark's adjusted
closes (``date, close``) and the sector of each ticker (``ticker, sector``). ``r`` is the daily
return ``close / close[-1] - 1`` over the ticker's own rows (its stored sessions; a missing bar
makes the next return span two sessions), ``m`` the benchmark's return on the same session,
``dv = close * volume`` the dollar volume; ``x[-k]`` is the value ``k`` rows earlier.

======================  ==================================================================
name                    formula
======================  ==================================================================
``MOM12_1``             ``close[-21] / close[-252] - 1``: 12-1 month momentum (the last
                        month skipped, it reverses)
``MOM6_1``              ``close[-21] / close[-126] - 1``: 6-1 month momentum
``REV21``               ``close / close[-21] - 1``: the 1-month return (short-term reversal)
``HIGH52``              ``close / max(high over 252 rows) - 1``: distance to the 52-week high
``BETA252``             OLS slope of ``r`` on ``m`` over 252 rows
``IVOL63``              residual standard deviation of the OLS of ``r`` on ``m`` over 63 rows
                        (``n - 2`` degrees of freedom): idiosyncratic volatility
``SKEW63``              skewness of ``r`` over 63 rows (the biased moment ratio
                        ``m3 / m2^1.5``)
``MAX21``               the largest ``r`` of the last 21 rows: the MAX effect
``ILLIQ21``             ``ln(mean(|r| / dv) over 21 rows)``: Amihud illiquidity (days with no
                        dollar volume skipped)
``DVOL21``              ``ln(mean(dv) over 21 rows)``: dollar volume traded
``TURN21_252``          ``ln(mean(dv, 21) / mean(dv, 252))``: abnormal trading activity
``<name>_SEC``          ``<name>`` minus its mean over the session's stocks of the same sector
======================  ==================================================================

Rolling statistics skip missing values (a session without a benchmark bar drops out of the
regressions) and need 80% of their window present (``MIN_SHARE``), else the value is null; a
shifted close before the ticker's first row is null. The sector-relative versions average the
stocks that have the factor on that session; a stock alone in its sector gets 0, an unclassified
stock null (unclassified names share no sector: ``quant_core.sectors``).

Lookback: the last row depends on :data:`LOOKBACK_ROWS` = 252 earlier rows of its ticker (the
252-row high and regression, ``close[-252]``); a one-day computation reads them and keeps the
day. Everything is a window over past rows and a cross-section of the same session: nothing
after a session changes its value.
"""

from __future__ import annotations

import polars as pl

from quant_core.features import BASE_FACTORS, FACTOR_LOOKBACK_ROWS, FACTOR_NAMES
from quant_core.sectors import UNCLASSIFIED

MIN_SHARE = 0.8
LOOKBACK_ROWS = FACTOR_LOOKBACK_ROWS

__all__ = ["BASE_FACTORS", "FACTOR_NAMES", "LOOKBACK_ROWS", "compute_factors"]


def _rolling_sum(expr: pl.Expr, window: int) -> pl.Expr:
    """Window sum over the ticker's rows of a column whose missing values are zero-filled."""
    return expr.fill_null(0.0).rolling_sum(window, min_samples=1).over("ticker")


def _count(valid: pl.Expr, window: int) -> pl.Expr:
    return _rolling_sum(valid.cast(pl.Float64), window)


def _enough(n: pl.Expr, window: int) -> pl.Expr:
    return n >= MIN_SHARE * window


def _regression(window: int) -> tuple[pl.Expr, pl.Expr]:
    """(slope, residual std) of the OLS of ``r`` on ``m`` over the rows where both exist."""
    both = pl.col("r").is_not_null() & pl.col("m").is_not_null()
    xs = pl.when(both).then(pl.col("m"))
    ys = pl.when(both).then(pl.col("r"))
    n = _count(both, window)
    sx, sy = _rolling_sum(xs, window), _rolling_sum(ys, window)
    sxx, syy = _rolling_sum(xs * xs, window), _rolling_sum(ys * ys, window)
    sxy = _rolling_sum(xs * ys, window)
    cxx = sxx - sx * sx / n
    cxy = sxy - sx * sy / n
    cyy = syy - sy * sy / n
    ok = _enough(n, window) & (cxx > 0)
    slope = pl.when(ok).then(cxy / cxx)
    residual = (cyy - cxy * cxy / cxx) / (n - 2)
    return slope, pl.when(ok).then(residual.clip(lower_bound=0.0).sqrt())


def _mean(expr: pl.Expr, window: int) -> pl.Expr:
    """Mean over the window's present values, null below ``MIN_SHARE`` of the window."""
    n = _count(expr.is_not_null(), window)
    return pl.when(_enough(n, window)).then(_rolling_sum(expr, window) / n)


def _skewness(window: int) -> pl.Expr:
    r = pl.col("r")
    n = _count(r.is_not_null(), window)
    mean = _rolling_sum(r, window) / n
    m2 = _rolling_sum(r * r, window) / n - mean * mean
    m3 = _rolling_sum(r * r * r, window) / n - 3 * mean * _rolling_sum(r * r, window) / n
    m3 = m3 + 2 * mean * mean * mean
    return pl.when(_enough(n, window) & (m2 > 0)).then(m3 / m2.pow(1.5))


def _base_factors() -> list[pl.Expr]:
    close = pl.col("close")
    lag = lambda k: close.shift(k).over("ticker")  # noqa: E731
    n_r = _count(pl.col("r").is_not_null(), 21)
    max21 = pl.col("r").rolling_max(21, min_samples=1).over("ticker")
    n_high = _count(pl.col("high").is_not_null(), LOOKBACK_ROWS)
    high = pl.col("high").rolling_max(LOOKBACK_ROWS, min_samples=1).over("ticker")
    beta, _ = _regression(252)
    _, ivol = _regression(63)
    dv = pl.col("dv")
    illiquid = pl.when(dv > 0).then(pl.col("r").abs() / dv)
    return [
        (lag(21) / lag(252) - 1.0).alias("MOM12_1"),
        (lag(21) / lag(126) - 1.0).alias("MOM6_1"),
        (close / lag(21) - 1.0).alias("REV21"),
        pl.when(_enough(n_high, LOOKBACK_ROWS)).then(close / high - 1.0).alias("HIGH52"),
        beta.alias("BETA252"),
        ivol.alias("IVOL63"),
        _skewness(63).alias("SKEW63"),
        pl.when(_enough(n_r, 21)).then(max21).alias("MAX21"),
        _mean(illiquid, 21).log().alias("ILLIQ21"),
        _mean(dv, 21).log().alias("DVOL21"),
        (_mean(dv, 21) / _mean(dv, 252)).log().alias("TURN21_252"),
    ]


def compute_factors(
    bars: pl.DataFrame | pl.LazyFrame,
    benchmark: pl.DataFrame | pl.LazyFrame,
    sectors: pl.DataFrame | pl.LazyFrame,
) -> pl.DataFrame:
    """``ticker, date`` and the Float32 :data:`FACTOR_NAMES`, sorted by ticker and date.

    ``bars``: ticker, date, high, close, volume (adjusted); ``benchmark``: date, close (the
    benchmark's adjusted close); ``sectors``: ticker, sector (a ticker without one, or
    ``Unclassified``, gets null sector-relative factors)."""
    market = (
        benchmark.lazy()
        .select(pl.col("date").cast(pl.Date), pl.col("close").cast(pl.Float64))
        .sort("date")
        .select("date", (pl.col("close") / pl.col("close").shift(1) - 1.0).alias("m"))
    )
    frame = (
        bars.lazy()
        .select(
            pl.col("ticker").cast(pl.String),
            pl.col("date").cast(pl.Date),
            *(pl.col(c).cast(pl.Float64) for c in ("high", "close", "volume")),
        )
        .sort("ticker", "date")
        .with_columns(
            (pl.col("close") / pl.col("close").shift(1).over("ticker") - 1.0).alias("r"),
            (pl.col("close") * pl.col("volume")).alias("dv"),
        )
        # the rolling windows below read each ticker's rows in date order: a join that may
        # reorder rows (Polars' default) would shuffle them
        .join(market, on="date", how="left", maintain_order="left")
        .with_columns(_base_factors())
        # 0/0 and ln(0) (a window without price moves) are missing values, as in Alpha158
        .with_columns(pl.when(pl.col(n).is_finite()).then(pl.col(n)).alias(n) for n in BASE_FACTORS)
        .join(sectors.lazy().select("ticker", "sector"), on="ticker", how="left")
        .with_columns(pl.col("sector").fill_null(UNCLASSIFIED))
    )
    classified = pl.col("sector") != UNCLASSIFIED
    relative = [
        pl.when(classified)
        .then(pl.col(name) - pl.col(name).mean().over("date", "sector"))
        .alias(f"{name}_SEC")
        for name in BASE_FACTORS
    ]
    return (
        frame.with_columns(relative)
        .select("ticker", "date", *(pl.col(n).cast(pl.Float32) for n in FACTOR_NAMES))
        .sort("ticker", "date")
        .collect()
    )
