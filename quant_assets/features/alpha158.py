"""Qlib's Alpha158 feature set, the same 158 numbers as pyqlib 0.9.7, in lazy Polars.

Specification: ``/work/shared/specs/alpha158/README.md`` (operators, NaN rules, precision); the
golden vector made with Qlib is in ``tests/data/alpha158`` and ``tests/test_alpha158.py`` checks
parity with it.

API
---
- :data:`ALPHA158_NAMES`: the 158 names in Qlib's column order.
- :data:`LOOKBACK_ROWS` = 60: the prior rows (sessions of the ticker's life) the last row's
  features depend on (ROC60 = ``Ref($close, 60)``; CORD60/WVMA60/VSUMP60 are 60-row windows of
  a ``Ref(x, 1)`` difference). A one-day computation therefore reads the day plus the 60 sessions
  before it for every ticker, passes each ticker's ``first_dates`` (see Rows) and keeps the last
  day of the result.
- :func:`compute_alpha158`: long bars in, ``ticker, date`` and the 158 Float32 features out.
- :func:`reindex_bars`: the row set Qlib computes on (each ticker on the union calendar between
  its first and last date; missing days are rows of nulls).

Rows
----
Qlib reindexes every ticker to the shared calendar (the union of the input's dates) between the
ticker's first and last date: a missing day inside a ticker's life is a row whose raw fields are
missing, rolling windows count it, and the output has a row for it (most features null there,
the window statistics that skip missing values are not). The output is sorted by
``ticker, date``. A computation on a window of the history (the lookback of a one-day run) sees
a ticker start at its first bar in the window, so a ticker that misses the window's first days
would lose those rows (CNTP60's row count, IdxMax's first-NaN and position change):
``first_dates`` (columns ``ticker, first_date``: the first date of each ticker's whole history)
makes each ticker's rows start at ``max(first_date, first session of the input)`` instead.

Missing values: null, never NaN
-------------------------------
Where Qlib returns NaN the output holds a **null** (Polars' missing value, which DuckDB and
PostgreSQL store as NULL). No feature is NaN: every NaN an operator can produce (0/0 for
instance) is turned into null, and a NaN in the input is read as a missing value, as Qlib does.
Compare with Qlib by treating null and NaN alike. ``+-inf`` cannot occur for valid bars (positive
prices, non-negative volume): the only divisions by possibly-zero quantities carry Qlib's
``+1e-12``; ``Log`` only sees ``volume + 1 >= 1`` and ``volume / Ref(volume, 1) + 1``, whose
``inf`` (the day after a zero-volume day) and NaN (two zero-volume days) are, as in pandas'
rolling code, missing values inside ``Corr``; zero-volume days make VMA/VSTD huge (``x / 1e-12``)
but finite. Invalid bars (a zero price) may give ``inf``.

Scale
-----
Qlib's data collectors divide each ticker's prices by its first adjusted close (and multiply the
volume by it); a handful of features notice the absolute level: the ``2e-5`` std masks of
Rsquare and Corr, ``Log($volume+1)`` and the ``+1e-12`` epsilons. The golden vector was made on
the unscaled input (VMA5 on AAA's zero-volume day is ``Mean(volume, 5) / 1e-12`` of the raw
volume, and the prices reproduce to float32 rounding without scaling, see the tests), so the
default computes on the bars as given. ``first_close`` (columns ``ticker, first_close``) divides
each ticker's open/high/low/close/vwap by that value and multiplies its volume by it, for callers that want
Qlib's collector price scale; an incremental computation that reads only a lookback window from
the store must then pass the close stored for the ticker's first day, not the window's first.

Implementation
--------------
No Python loop over rows or tickers: a few lazy Polars queries over whole columns. The
reindexed frame is padded with :data:`LOOKBACK_ROWS` null rows before each ticker, so that every
shift (<= 60) and window (<= 60 rows) can run over the whole column without ``over("ticker")``:
a window that reaches before a ticker's first row sees only nulls, which are skipped, exactly
like pandas' partial windows with ``min_periods=1``. Mean/Std/Sum and the least squares
(Slope/Rsquare/Resi, from sums of ``x, t*x, t, t^2, x^2`` over valid values with ``t`` the row
index inside the ticker) are window sums of zero-filled columns next to valid counts; Corr the
same over the pairs where both sides are valid (pandas' ``inf`` -> NaN rule applied first);
Max/Min are window max/min of sentinel-filled columns; Rank is ``(n + sum of sign(x - x[-k]) +
1) / 2n`` (algebraically Qlib's ``(#less + (#equal+1)/2) / #valid``); IdxMax/IdxMin are a window
max/min of an Int64 key ``order(x) * 2^32 +- row`` (``order`` keeps the float32 values' order, the
row part sends ties to the oldest row) and a window min of the row of missing values (numpy's
first-NaN-wins rule); Quantile is Polars' ``rolling_quantile``. Element-wise arithmetic is
float32 and window statistics float64, like Qlib.
"""

from __future__ import annotations

import polars as pl

from quant_core.features import ALPHA158_NAMES, LOOKBACK_ROWS, WINDOWS

__all__ = ["ALPHA158_NAMES", "LOOKBACK_ROWS", "WINDOWS", "compute_alpha158", "reindex_bars"]

_PAD = LOOKBACK_ROWS  # >= the largest shift (60) and the largest window minus one (59)
_STD_TOL = 2e-5  # np.isclose(std, 0, atol=2e-5) masks of Rsquare and Corr
_KEY_SHIFT = 1 << 32  # IdxMax/IdxMin keys: dense rank in the high bits, row in the low bits
F32, F64 = pl.Float32, pl.Float64
_EPS32 = pl.lit(1e-12, dtype=F32)  # Qlib adds the python float to a float32 series
_EPS64 = pl.lit(1e-12, dtype=F64)  # ... or to a float64 one (after a rolling statistic)
_FIELDS = ("open", "high", "low", "close", "volume", "vwap")
_SCALED = ("open", "high", "low", "close", "vwap")  # divided by the first close, volume times it


def _bars_frame(bars: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """The input with ``date`` as pl.Date and a (possibly all-null) ``vwap``."""
    lf = bars.lazy()
    schema = lf.collect_schema()
    missing = [
        c for c in ("ticker", "date", "open", "high", "low", "close", "volume") if c not in schema
    ]
    if missing:
        raise ValueError(f"bars lack the columns {missing}")
    vwap = pl.col("vwap") if "vwap" in schema else pl.lit(None, dtype=F64)
    return lf.select(
        pl.col("ticker").cast(pl.String),
        pl.col("date").cast(pl.Date),
        *(pl.col(c).cast(F64) for c in _FIELDS[:5]),
        vwap.cast(F64).alias("vwap"),
    )


def _padded(
    bars: pl.LazyFrame,
    first_close: pl.DataFrame | pl.LazyFrame | None,
    first_dates: pl.DataFrame | pl.LazyFrame | None,
) -> pl.DataFrame:
    """Reindexed bars with ``_PAD`` null rows before each ticker.

    Columns: ticker, date, ``live`` (False on pad rows), ``t`` (Float64 row index inside the
    ticker, 0 on its first day), ``row`` (Int64 row number of the whole frame) and the raw
    fields as Float32 with missing values (absent days, NaN, pad rows) as nulls.

    Built without a join: each bar's row in the padded frame is computed from its ticker's
    offset and its session's index on the union calendar, and the fields are scattered there."""
    frame = _scaled(bars, first_close).collect()
    calendar, tickers, keyed = _keyed(frame)
    spans = _spans(keyed, calendar, tickers, first_dates)
    tid = keyed["tid"]
    position = spans["offset"].gather(tid) + _PAD + keyed["k"] - spans["lo"].gather(tid)
    grid = _grid(spans, calendar, tickers)
    empty = pl.Series(dtype=F32).extend_constant(None, grid.height)
    fields = [
        empty.clone().scatter(position, frame[c].cast(F32).fill_nan(None)).alias(c) for c in _FIELDS
    ]
    return grid.with_columns(fields)


def _scaled(bars: pl.LazyFrame, first_close: pl.DataFrame | pl.LazyFrame | None) -> pl.LazyFrame:
    """``bars`` on Qlib's collector scale when ``first_close`` is given (see "Scale")."""
    if first_close is None:
        return bars
    scale = first_close.lazy().select(
        pl.col("ticker").cast(pl.String), pl.col("first_close").cast(F64)
    )
    return bars.join(scale, on="ticker", how="left").select(
        "ticker",
        "date",
        *(pl.col(c) / pl.col("first_close") for c in _SCALED),
        pl.col("volume") * pl.col("first_close"),
    )


def _keyed(frame: pl.DataFrame) -> tuple[pl.Series, pl.Series, pl.DataFrame]:
    """(the union calendar, the sorted tickers, each bar's ``tid`` (ticker index) and ``k``
    (session index)); ValueError on a null key or a duplicated (ticker, date)."""
    if frame["ticker"].null_count() or frame["date"].null_count():
        raise ValueError("bars have rows with a null ticker or date")
    calendar = frame["date"].unique().sort()
    tickers = frame["ticker"].unique().sort()
    keyed = frame.select(
        tickers.search_sorted(frame["ticker"]).cast(pl.Int64).alias("tid"),
        calendar.search_sorted(frame["date"]).cast(pl.Int64).alias("k"),
    )
    # two bars on one (ticker, date) would be scattered onto one row, silently keeping one
    cell = keyed["tid"] * calendar.len() + keyed["k"]
    if cell.n_unique() != frame.height:
        dup = frame.filter(cell.is_duplicated()).select("ticker", "date").unique().sort(pl.all())
        raise ValueError(
            f"bars have {dup.height} duplicated (ticker, date) pairs, "
            f"e.g. {dup.head(3).rows()}; deduplicate them first"
        )
    return calendar, tickers, keyed


def _spans(
    keyed: pl.DataFrame,
    calendar: pl.Series,
    tickers: pl.Series,
    first_dates: pl.DataFrame | pl.LazyFrame | None,
) -> pl.DataFrame:
    """Per ticker (``tid`` order): its first and last session index ``lo``/``hi`` (``lo``
    moved back to its known first date, when given), its padded ``len`` and ``offset``."""
    lazy_spans = (
        keyed.lazy()
        .group_by("tid")
        .agg(pl.col("k").min().alias("lo"), pl.col("k").max().alias("hi"))
    )
    if first_dates is not None:
        known = (
            first_dates.lazy()
            .select(pl.col("ticker").cast(pl.String), pl.col("first_date").cast(pl.Date))
            .filter(pl.col("ticker").is_in(tickers.implode()))
            .collect()
        )
        known = known.select(
            tickers.search_sorted(known["ticker"]).cast(pl.Int64).alias("tid"),
            calendar.search_sorted(known["first_date"]).cast(pl.Int64).alias("start"),
        )
        lazy_spans = (
            lazy_spans.join(
                known.lazy().group_by("tid").agg(pl.col("start").min()), on="tid", how="left"
            )
            .with_columns(pl.min_horizontal("lo", "start").alias("lo"))
            .drop("start")
        )
    return (
        lazy_spans.sort("tid")
        .with_columns((pl.col("hi") - pl.col("lo") + 1 + _PAD).alias("len"))
        .with_columns((pl.col("len").cum_sum() - pl.col("len")).alias("offset"))
        .collect()
    )


def _grid(spans: pl.DataFrame, calendar: pl.Series, tickers: pl.Series) -> pl.DataFrame:
    """The padded frame's rows without the fields: ticker, date, live, t, row."""
    return (
        spans.lazy()
        .select("tid", "lo", pl.int_ranges(pl.col("lo") - _PAD, pl.col("hi") + 1).alias("k"))
        .explode("k")
        .select(
            pl.lit(tickers).gather(pl.col("tid")).alias("ticker"),
            pl.when(pl.col("k") >= 0)
            .then(pl.lit(calendar).gather(pl.col("k").clip(lower_bound=0)))
            .alias("date"),
            (pl.col("k") >= pl.col("lo")).alias("live"),
            (pl.col("k") - pl.col("lo")).cast(F64).alias("t"),
            pl.int_range(pl.len(), dtype=pl.Int64).alias("row"),
        )
        .collect()
    )


def reindex_bars(
    bars: pl.DataFrame | pl.LazyFrame,
    first_close: pl.DataFrame | pl.LazyFrame | None = None,
    first_dates: pl.DataFrame | pl.LazyFrame | None = None,
) -> pl.DataFrame:
    """Bars on Qlib's row set: every ticker on the union calendar from its first to its last date.

    Returns ``ticker, date`` and the raw fields as Float32 (nulls on missing days), sorted by
    ticker and date: the rows :func:`compute_alpha158` returns, with the values it computes on."""
    frame = _padded(_bars_frame(bars), first_close, first_dates)
    return frame.filter("live").select("ticker", "date", *_FIELDS)


# ---------------------------------------------------------------------------------------------
# The computation, in stages of plain columns (small expression trees, nothing left to the
# common-subexpression optimiser):
# 1. per-row inputs: zero-filled float64 columns whose window sums give every rolling statistic
#    (a valid-count column next to each, so NaN-skipping means and stds are sums / counts), the
#    values whose window max/min are needed (nulls skipped), and rank signs;
# 2. window sums by doubling (no running-sum drift, no over()): S5 = x + x[-1] + ... + x[-4],
#    S10 = S5 + S5[-5], S20 = S10 + S10[-10], S30 = S10 + S10[-10] + S10[-20], S60 = S30 +
#    S30[-30] (x[-k]: shift by k rows); max/min the same way with max/min_horizontal;
# 3. each window's 29 features as soon as its statistics exist; statistics no longer needed are
#    dropped, so the peak memory holds about two windows' statistics.


def _f64(x: pl.Expr) -> pl.Expr:
    return x.cast(F64)


def _finite(x: pl.Expr) -> pl.Expr:
    """pandas' rolling code reads +-inf (and NaN) as missing."""
    return pl.when(x.is_finite()).then(x)


def _greater(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """np.maximum: a missing side gives a missing result."""
    return pl.when(a >= b).then(a).when(a < b).then(b)


def _less(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return pl.when(a <= b).then(a).when(a > b).then(b)


def _order_key(x: pl.Expr) -> pl.Expr:
    """Int64 key with the order of the float32 values (their bits, negatives flipped)."""
    bits = x.reinterpret(dtype=pl.Int32).cast(pl.Int64)
    return pl.when(bits < 0).then(-(1 << 31) - 1 - bits).otherwise(bits)


# series whose NaN-skipping window mean / std are needed: name -> float32 or float64 expression
def _moment_series() -> dict[str, pl.Expr]:
    c, v = pl.col("close"), pl.col("volume")
    c1, v1 = c.shift(1), v.shift(1)
    return {
        "c": c,
        "v": v,
        "wv": (c / c1 - 1).abs() * v,
        # Corr's sides (close is "c"), +-inf read as missing like pandas
        "lv": _finite((v + 1).log()),
        "ret": _finite(c / c1),
        "ldv": _finite((v / v1 + 1).log()),
    }


_PAIRS = {"CORR": ("c", "lv"), "CORD": ("ret", "ldv")}
_SUMS: tuple[str, ...] = (
    *(f"_{m}{p}" for m in ("c", "v", "wv", "lv", "ret", "ldv") for p in ("w", "z", "zz")),
    "_ctw", "_cttw", "_ctz",  # least squares of close on the row index t
    "_up", "_down",  # close > / < Ref(close, 1), 0.0 when either is missing
    "_dcw", "_dc_up", "_dc_down", "_dc_abs", "_dvw", "_dv_up", "_dv_down", "_dv_abs",
    *(f"_{p}{s}" for p in _PAIRS for s in ("w", "x", "y", "xx", "yy", "xy")),
)  # fmt: skip
_EXTREMES = {
    "_hi": "max",
    "_lo": "min",
    "_hkey": "max",
    "_lkey": "min",
    "_hnan": "min",
    "_lnan": "min",
}
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_SENTINEL: dict[str, float | int] = {
    "_hi": float("-inf"),
    "_lo": float("inf"),
    "_hkey": _I64_MIN,
    "_lkey": _I64_MAX,
    "_hnan": _I64_MAX,
    "_lnan": _I64_MAX,
}


def _row_inputs() -> list[pl.Expr]:
    """Stage 1 (element-wise float32 like Qlib, float64 where the values feed sums)."""
    h, l, c, v = pl.col("high"), pl.col("low"), pl.col("close"), pl.col("volume")  # noqa: E741
    c1, v1 = c.shift(1), v.shift(1)
    live, row, t = pl.col("live"), pl.col("row"), pl.col("t")
    out = [_f64(x).alias(f"_{name}") for name, x in _moment_series().items()]
    cw, cz = c.is_not_null().cast(F64), _f64(c).fill_null(0.0)
    dc, dv = c - c1, v - v1
    out += [
        (t * cw).alias("_ctw"),
        (t * t * cw).alias("_cttw"),
        (t * cz).alias("_ctz"),
        (c > c1).fill_null(False).cast(F64).alias("_up"),  # pad rows: 0, rows counted by t
        (c < c1).fill_null(False).cast(F64).alias("_down"),
        dc.is_not_null().cast(F64).alias("_dcw"),
        _f64(dc.clip(lower_bound=0)).fill_null(0.0).alias("_dc_up"),
        _f64((c1 - c).clip(lower_bound=0)).fill_null(0.0).alias("_dc_down"),
        _f64(dc.abs()).fill_null(0.0).alias("_dc_abs"),
        dv.is_not_null().cast(F64).alias("_dvw"),
        _f64(dv.clip(lower_bound=0)).fill_null(0.0).alias("_dv_up"),
        _f64((v1 - v).clip(lower_bound=0)).fill_null(0.0).alias("_dv_down"),
        _f64(dv.abs()).fill_null(0.0).alias("_dv_abs"),
        _f64(v + _EPS32).alias("_v_eps"),
        # window max/min inputs, missing values as the neutral sentinel (max/min_horizontal
        # over null-free columns is several times faster)
        _f64(h).fill_null(_SENTINEL["_hi"]).alias("_hi"),
        _f64(l).fill_null(_SENTINEL["_lo"]).alias("_lo"),
        # IdxMax/IdxMin keys: the value's order in the high bits, the row in the low bits, so
        # that a window max/min picks the oldest of tied extremes
        (_order_key(h) * _KEY_SHIFT + (_KEY_SHIFT - 1 - row))
        .fill_null(_SENTINEL["_hkey"])
        .alias("_hkey"),
        (_order_key(l) * _KEY_SHIFT + row).fill_null(_SENTINEL["_lkey"]).alias("_lkey"),
        pl.when(live & h.is_null()).then(row).otherwise(_SENTINEL["_hnan"]).alias("_hnan"),
        pl.when(live & l.is_null()).then(row).otherwise(_SENTINEL["_lnan"]).alias("_lnan"),
        *_rank_signs(1, WINDOWS[0]),
    ]
    return out


def _pair_inputs() -> list[pl.Expr]:
    """Valid counts, zero-filled values and squares of the moment series; Corr's pairwise-complete
    inputs (zero where either side is missing)."""
    out = []
    for name in _moment_series():
        x = pl.col(f"_{name}")
        z = x.fill_null(0.0)
        out += [
            x.is_not_null().cast(F64).alias(f"_{name}w"),
            z.alias(f"_{name}z"),
            (z * z).alias(f"_{name}zz"),
        ]
    for name, (a, b) in _PAIRS.items():
        pair = pl.col(f"_{a}").is_not_null() & pl.col(f"_{b}").is_not_null()
        x = pl.when(pair).then(pl.col(f"_{a}")).otherwise(0.0)
        y = pl.when(pair).then(pl.col(f"_{b}")).otherwise(0.0)
        out.append(pair.cast(F64).alias(f"_{name}w"))
        out += [x.alias(f"_{name}x"), y.alias(f"_{name}y")]
        out += [
            (x * x).alias(f"_{name}xx"),
            (y * y).alias(f"_{name}yy"),
            (x * y).alias(f"_{name}xy"),
        ]
    return out


def _rank_signs(lo: int, hi: int) -> list[pl.Expr]:
    """``_sgn{hi}`` = sum over k in [1, hi) of sign(close - Ref(close, k)) (missing terms
    skipped), from ``_sgn{lo}`` when lo > 1 and the terms k in [lo, hi)."""
    c = pl.col("close")
    terms = [(c - c.shift(k)).sign() for k in range(lo, hi)]
    if lo > 1:
        terms.insert(0, pl.col(f"_sgn{lo}"))
    return [_f64(pl.sum_horizontal(terms)).alias(f"_sgn{hi}")]


def _at(name: str, d: int) -> str:
    return f"{name}@{d}"


# how each window's sums and extremes are made from smaller windows: d -> ((d1, 0), (d2, k)...)
# meaning S_d = S_d1 + S_d2 shifted by k + ...
_DOUBLING: dict[int, tuple[tuple[int, int], ...]] = {
    10: ((5, 0), (5, 5)),
    20: ((10, 0), (10, 10)),
    30: ((10, 0), (10, 10), (10, 20)),  # not from S20, which can then go before S30 exists
    60: ((30, 0), (30, 30)),
}


def _window_stats(d: int) -> list[pl.Expr]:
    """Window ``d``'s sums and extremes as columns ``name@d`` (from smaller windows by doubling;
    window 5 from the rows themselves). Shifted-in rows are 0 for sums, the sentinel for
    extremes; the first rows of the frame are pad rows, so nothing real is lost."""

    def parts(x: str) -> list[pl.Expr]:
        fill = _SENTINEL.get(x, 0.0)
        if d == WINDOWS[0]:
            return [pl.col(x).shift(k, fill_value=fill) if k else pl.col(x) for k in range(d)]
        return [
            pl.col(_at(x, w)).shift(k, fill_value=fill) if k else pl.col(_at(x, w))
            for w, k in _DOUBLING[d]
        ]

    out = []
    for x in _SUMS:
        terms = parts(x)
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        out.append(total.alias(_at(x, d)))
    for x, op in _EXTREMES.items():
        fold = pl.max_horizontal if op == "max" else pl.min_horizontal
        out.append(fold(parts(x)).alias(_at(x, d)))
    return out


def _quantiles(ctx: pl.DataFrame) -> pl.DataFrame:
    """Quantile(close, d, q) of every window, as columns ``_q{q}@d``.

    Polars' rolling_quantile is about three times faster on a column without nulls, and only
    windows that hold a missing value (the first rows of each ticker, whose windows reach into
    the padding, and the rows after a missing day) need the NaN-skipping version. So: the fast
    kernel on the null-filled column everywhere, the NaN-skipping one on the rows within
    ``LOOKBACK_ROWS`` of a missing value (a window reaching a missing value lies inside them),
    joined back on the rows whose window holds one."""
    c, miss = pl.col("_c"), pl.col("_c").is_null()
    specs = [(d, q) for d in WINDOWS for q in (0.8, 0.2)]
    fast = _stage(
        ctx,
        [
            pl.col("row"),
            *(
                c.fill_null(0.0).rolling_quantile(q, "linear", d).alias(_at(f"_q{q}", d))
                for d, q in specs
            ),
            *((miss.rolling_sum(d, min_samples=1) > 0).alias(f"_hole@{d}") for d in WINDOWS),
        ],
    )
    span = 2 * _PAD - 1
    near = miss.rolling_sum(span, min_samples=1, center=True) > 0
    slow = (
        ctx.lazy()
        .select("row", "_c", near.alias("_near"))
        .filter("_near")
        .select(
            "row",
            *(
                c.rolling_quantile(q, "linear", d, min_samples=1).alias(f"_slow{q}@{d}")
                for d, q in specs
            ),
        )
    )
    return (
        fast.lazy()
        .join(slow, on="row", how="left", maintain_order="left")
        .select(
            pl.when(pl.col(f"_hole@{d}"))
            .then(pl.col(f"_slow{q}@{d}"))
            .otherwise(pl.col(_at(f"_q{q}", d)))
            .alias(_at(f"_q{q}", d))
            for d, q in specs
        )
        .collect()
    )


def _masked_near_zero(value: pl.Expr, *stds: pl.Expr) -> pl.Expr:
    """``value`` set missing where a std is within 2e-5 of zero (a missing std does not mask)."""
    near = pl.any_horizontal(*(s <= _STD_TOL for s in stds))
    return pl.when(near.fill_null(False)).then(None).otherwise(value)


def _window_derived(d: int) -> list[pl.Expr]:
    """Statistics of window ``d`` used by several features, as columns ``_{name}`` (float64)."""

    def s(name: str) -> pl.Expr:
        return pl.col(_at(name, d))

    def mean(m: str) -> pl.Expr:  # NaN-skipping Mean, missing without a valid value
        n = s(f"_{m}w")
        return pl.when(n > 0).then(s(f"_{m}z") / n).alias(f"_mean_{m}")

    def std(m: str) -> pl.Expr:  # ddof=1, missing under two valid values
        n, z = s(f"_{m}w"), s(f"_{m}z")
        var = (s(f"_{m}zz") - z * z / n) / (n - 1)
        return pl.when(n >= 2).then(var.clip(lower_bound=0).sqrt()).alias(f"_std_{m}")

    t = pl.col("t")
    n, st, sy = s("_cw"), s("_ctw"), s("_cz")
    # Slope/Rsquare/Resi of close on its position (the row index t): missing values skipped,
    # positions kept, under two valid values missing
    ctt = s("_cttw") - st * st / n
    cty = s("_ctz") - st * sy / n
    cyy = (s("_czz") - sy * sy / n).clip(lower_bound=0)
    slope = pl.when(n >= 2).then(cty / ctt)
    # IdxMax/IdxMin: a missing value inside the ticker's life wins (numpy's argmax with NaN);
    # positions count from the window's oldest row (the ticker's first in partial windows)
    start = pl.col("row") - pl.min_horizontal(t, pl.lit(d - 1, dtype=F64)).cast(pl.Int64)
    low_bits = _KEY_SHIFT - 1
    hnan, lnan = s("_hnan"), s("_lnan")
    imax_row = pl.when(hnan != _I64_MAX).then(hnan).otherwise(low_bits - (s("_hkey") & low_bits))
    imin_row = pl.when(lnan != _I64_MAX).then(lnan).otherwise(s("_lkey") & low_bits)
    out = [mean(m) for m in ("c", "v", "wv")]
    out += [std(m) for m in _moment_series()]
    out += [
        slope.alias("_slope"),
        pl.when(n >= 2).then(cty * cty / (ctt * cyy)).alias("_rsquare"),
        ((pl.col("_c") - sy / n) - slope * (t - st / n)).alias("_resi"),
        pl.when(s("_hkey") != _I64_MIN).then(_f64(imax_row - start + 1)).alias("_imax"),
        pl.when(s("_lkey") != _I64_MAX).then(_f64(imin_row - start + 1)).alias("_imin"),
        pl.when(s("_hi") != _SENTINEL["_hi"]).then(s("_hi")).alias("_max"),
        pl.when(s("_lo") != _SENTINEL["_lo"]).then(s("_lo")).alias("_min"),
        pl.min_horizontal(t + 1, pl.lit(d, dtype=F64)).alias("_rows"),  # window rows in ticker
        (s("_dc_abs") + _EPS64).alias("_dc_den"),
        (s("_dv_abs") + _EPS64).alias("_dv_den"),
    ]
    for name in _PAIRS:
        pn, sx, sy2 = s(f"_{name}w"), s(f"_{name}x"), s(f"_{name}y")
        cxx = s(f"_{name}xx") - sx * sx / pn
        cyy2 = s(f"_{name}yy") - sy2 * sy2 / pn
        cxy = s(f"_{name}xy") - sx * sy2 / pn
        out.append(pl.when(pn >= 2).then(cxy / (cxx * cyy2).sqrt()).alias(f"_corr_{name}"))
    return out


def _window_features(d: int) -> dict[str, pl.Expr]:
    """The 29 features of window ``d`` from its statistics (float64 until the final cast)."""

    def s(name: str) -> pl.Expr:
        return pl.col(_at(name, d))

    def g(name: str) -> pl.Expr:
        return pl.col(f"_{name}")

    c, n = _f64(pl.col("close")), s("_cw")
    hi, lo, rows = g("max"), g("min"), g("rows")
    has_dc, has_dv = s("_dcw") > 0, s("_dvw") > 0
    v_eps = pl.col("_v_eps")
    out = {
        f"ROC{d}": pl.col("close").shift(d) / pl.col("close"),
        f"MA{d}": g("mean_c") / c,
        f"STD{d}": g("std_c") / c,
        f"BETA{d}": g("slope") / c,
        f"RSQR{d}": _masked_near_zero(g("rsquare"), g("std_c")),
        f"RESI{d}": g("resi") / c,
        f"MAX{d}": hi / c,
        f"MIN{d}": lo / c,
        f"QTLU{d}": s("_q0.8") / c,
        f"QTLD{d}": s("_q0.2") / c,
        # Rank: (#less + (#equal + 1) / 2) / n = (n + sum of signs + 1) / (2 n)
        f"RANK{d}": pl.when(c.is_not_null()).then((n + pl.col(f"_sgn{d}") + 1) / (2 * n)),
        f"RSV{d}": (c - lo) / (hi - lo + _EPS64),
        f"IMAX{d}": g("imax") / d,
        f"IMIN{d}": g("imin") / d,
        f"IMXD{d}": (g("imax") - g("imin")) / d,
        f"CNTP{d}": s("_up") / rows,
        f"CNTN{d}": s("_down") / rows,
        f"CNTD{d}": (s("_up") - s("_down")) / rows,
        f"SUMP{d}": pl.when(has_dc).then(s("_dc_up") / g("dc_den")),
        f"SUMN{d}": pl.when(has_dc).then(s("_dc_down") / g("dc_den")),
        f"SUMD{d}": pl.when(has_dc).then((s("_dc_up") - s("_dc_down")) / g("dc_den")),
        f"VMA{d}": g("mean_v") / v_eps,
        f"VSTD{d}": g("std_v") / v_eps,
        f"WVMA{d}": g("std_wv") / (g("mean_wv") + _EPS64),
        f"VSUMP{d}": pl.when(has_dv).then(s("_dv_up") / g("dv_den")),
        f"VSUMN{d}": pl.when(has_dv).then(s("_dv_down") / g("dv_den")),
        f"VSUMD{d}": pl.when(has_dv).then((s("_dv_up") - s("_dv_down")) / g("dv_den")),
    }
    for name, (a, b) in _PAIRS.items():
        # a degenerate pair subset (flat where the other side is valid) can give 0/0: null
        corr = _masked_near_zero(g(f"corr_{name}"), g(f"std_{a}"), g(f"std_{b}"))
        out[f"{name}{d}"] = corr.fill_nan(None)
    return out


def _kbar_features() -> dict[str, pl.Expr]:
    """The 13 features of the day's bar (float32 arithmetic like Qlib)."""
    o, h, l, c = pl.col("open"), pl.col("high"), pl.col("low"), pl.col("close")  # noqa: E741
    rng = h - l + _EPS32
    top, bottom = _greater(o, c), _less(o, c)
    return {
        "KMID": (c - o) / o,
        "KLEN": (h - l) / o,
        "KMID2": (c - o) / rng,
        "KUP": (h - top) / o,
        "KUP2": (h - top) / rng,
        "KLOW": (bottom - l) / o,
        "KLOW2": (bottom - l) / rng,
        "KSFT": (2 * c - h - l) / o,
        "KSFT2": (2 * c - h - l) / rng,
        "OPEN0": o / c,
        "HIGH0": h / c,
        "LOW0": l / c,
        "VWAP0": pl.col("vwap") / c,
    }


def _out(features: dict[str, pl.Expr]) -> list[pl.Expr]:
    return [e.cast(F32).alias(name) for name, e in features.items()]


def _stage(frame: pl.DataFrame, exprs: list[pl.Expr]) -> pl.DataFrame:
    """One stage: the new columns only, from a (cheaply hstacked) frame of existing ones."""
    return frame.lazy().select(exprs).collect()


def _hstack(*frames: pl.DataFrame) -> pl.DataFrame:
    return pl.concat(frames, how="horizontal")


def _features(padded: pl.DataFrame) -> pl.DataFrame:
    """The 158 features of the padded frame, on its live rows.

    Each stage is its own small lazy query, collected before the next: one query for the whole
    computation would hold hundreds of with_columns nodes over a frame of hundreds of columns,
    whose planning alone costs seconds."""
    live = padded["live"]
    ctx = _hstack(padded, _stage(padded, _row_inputs()))
    ctx = _hstack(ctx, _stage(ctx, _pair_inputs()))
    quantiles = _quantiles(ctx)
    # each piece keeps only the live rows as soon as it exists: the full-height float32 features
    # are never all held, nor copied once more by a final filter
    pieces = [
        padded.filter(live).select("ticker", "date"),
        _stage(ctx, _out(_kbar_features())).filter(live),
    ]
    base = ctx.select("close", "t", "row", "_c", "_v_eps")
    sgn = ctx.select(f"_sgn{WINDOWS[0]}")
    # the row inputs (about 50 float64 columns) only feed window 5's statistics
    held: dict[int, pl.DataFrame] = {0: ctx.select(*_SUMS, *_EXTREMES)}
    del ctx
    for d in WINDOWS:
        if d != WINDOWS[0]:
            sgn = _stage(_hstack(padded, sgn), _rank_signs(_prev(d), d))
        stats = _stage(_hstack(*held.values()), _window_stats(d))
        needed = {w for later in WINDOWS if later > d for w, _ in _DOUBLING[later]}
        held = {w: f for w, f in [*held.items(), (d, stats)] if w in needed}
        work = _hstack(base, sgn, stats, quantiles.select(_at("_q0.8", d), _at("_q0.2", d)))
        del stats  # (still in ``held`` if a larger window needs it)
        work = _hstack(work, _stage(work, _window_derived(d)))
        pieces.append(_stage(work, _out(_window_features(d))).filter(live))
        del work
    return _hstack(*pieces).select("ticker", "date", *ALPHA158_NAMES)


def _prev(d: int) -> int:
    return WINDOWS[WINDOWS.index(d) - 1]


def compute_alpha158(
    bars: pl.DataFrame | pl.LazyFrame,
    first_close: pl.DataFrame | pl.LazyFrame | None = None,
    first_dates: pl.DataFrame | pl.LazyFrame | None = None,
) -> pl.DataFrame:
    """Alpha158 of long OHLCV ``bars`` (ticker, date, open, high, low, close, volume[, vwap]).

    ``date`` may be Date or Datetime (cast to Date); ``vwap`` may be missing or null (VWAP0 is
    then null). ``(ticker, date)`` must be unique and non-null (ValueError otherwise).

    Returns ``ticker, date`` and the 158 features (:data:`ALPHA158_NAMES`) as Float32, one row
    per ticker and session of the input's union calendar between the ticker's first and last
    date, sorted by ticker and date; missing values are null (see the module docstring).

    ``first_close`` (ticker, first_close): optional divisor of each ticker's prices (Qlib's
    collector scale, see "Scale" above). ``first_dates`` (ticker, first_date): each ticker's first
    date in its whole history, needed when ``bars`` is a window of it, e.g. the
    :data:`LOOKBACK_ROWS` lookback of a one-day run (see "Rows" above)."""
    return _features(_padded(_bars_frame(bars), first_close, first_dates))
