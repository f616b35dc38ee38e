"""Alpha158: parity with Qlib's golden vector, one-day computation from the lookback, missing days
and warm-up rows as the spec says, bad input.

Spec: /work/shared/specs/alpha158/README.md (acceptance: same rows, same NaN mask, values within
1e-4 relative / 1e-6 absolute)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from quant_assets.features.alpha158 import (
    ALPHA158_NAMES,
    LOOKBACK_ROWS,
    compute_alpha158,
    reindex_bars,
)
from resources.market_data.synthetic import SyntheticMarket

DATA = Path(__file__).parent / "data" / "alpha158"
RTOL, ATOL = 1e-4, 1e-6  # the spec's acceptance tolerance
FIELDS = ("open", "high", "low", "close", "volume", "vwap")


@pytest.fixture(scope="module")
def golden() -> tuple[pl.DataFrame, pl.DataFrame]:
    """(our output, Qlib's output), both sorted by ticker and date."""
    bars = pl.read_parquet(DATA / "alpha158_input.parquet")
    expected = (
        pl.read_parquet(DATA / "alpha158_expected.parquet")
        .with_columns(pl.col("date").cast(pl.Date))
        .sort("ticker", "date")
    )
    return compute_alpha158(bars), expected


def test_names_and_order_are_qlibs(golden) -> None:
    ours, expected = golden
    assert len(ALPHA158_NAMES) == len(set(ALPHA158_NAMES)) == 158
    assert [c for c in expected.columns if c not in ("date", "ticker", "LABEL0")] == list(
        ALPHA158_NAMES
    )
    assert ours.columns == ["ticker", "date", *ALPHA158_NAMES]
    assert ours.schema["date"] == pl.Date
    assert all(ours.schema[name] == pl.Float32 for name in ALPHA158_NAMES)


def test_rows_are_qlibs_including_the_suspension(golden) -> None:
    ours, expected = golden
    assert ours.height == expected.height == 440
    assert ours.select("ticker", "date").equals(expected.select("ticker", "date"))
    # BBB's three suspended days are rows, with the day's own features missing
    bars = pl.read_parquet(DATA / "alpha158_input.parquet")
    assert (
        ours.filter(pl.col("ticker") == "BBB").height
        == bars.filter(pl.col("ticker") == "BBB").height + 3
    )
    assert ours.filter(pl.col("KMID").is_null())["ticker"].to_list() == ["BBB"] * 3


def test_every_value_and_missing_mask_match_qlib(golden) -> None:
    ours, expected = golden
    failures = []
    for name in ALPHA158_NAMES:
        got = ours[name].cast(pl.Float64).to_numpy()  # nulls -> NaN
        want = expected[name].cast(pl.Float64).to_numpy()
        if not np.array_equal(np.isnan(got), np.isnan(want)):
            failures.append(f"{name}: missing mask differs")
        elif not np.allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True):
            bad = ~np.isclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True)
            failures.append(f"{name}: {bad.sum()} values off, e.g. {got[bad][0]} vs {want[bad][0]}")
    assert not failures, failures


def test_missing_values_are_null_never_nan(golden) -> None:
    ours, expected = golden
    assert ours.select(pl.any_horizontal(pl.col(ALPHA158_NAMES).is_nan().any())).item() is False
    # Qlib's NaNs (stored as NaN or null) are there, as nulls: warm-up rows, BBB's gap,
    # CCC's flat days
    qlib_missing = sum(expected[name].fill_nan(None).null_count() for name in ALPHA158_NAMES)
    assert qlib_missing > 0
    ours_missing = ours.select(pl.sum_horizontal(pl.col(ALPHA158_NAMES).null_count())).item()
    assert ours_missing == qlib_missing


# --- synthetic panel: one new day from the lookback ------------------------------------------


@pytest.fixture(scope="module")
def panel() -> pl.DataFrame:
    """40 tickers x ~200 sessions; the first 20 miss ~3% of their days (seeded), the others none
    (long hole-free stretches); one ticker lists late, one delists early."""
    market = SyntheticMarket(seed=11, n_tickers=40, start=date(2020, 1, 2))
    bars = market.fetch_bars(
        market.universe()["ticker"].to_list(), date(2020, 1, 1), date(2020, 10, 20)
    ).select(
        "ticker",
        "date",
        *(pl.col(f"adj_{c}").alias(c) for c in ("open", "high", "low", "close")),
        "volume",
        "vwap",
    )
    holes = pl.Series(np.random.default_rng(5).random(bars.height) < 0.03)
    days = bars["date"].unique().sort()
    late, early = "SYN0003", "SYN0004"
    return bars.filter(
        ~(holes & (pl.col("ticker") <= "SYN0020"))
        & ~((pl.col("ticker") == late) & (pl.col("date") < days[-30]))
        & ~((pl.col("ticker") == early) & (pl.col("date") > days[-20]))
    )


def _one_day(panel: pl.DataFrame, day: date, prior_rows: int) -> pl.DataFrame:
    """The day's features computed from the day and ``prior_rows`` sessions before it only (and
    each ticker's first date, which a store knows)."""
    days = panel["date"].unique().sort()
    k = days.search_sorted(day)
    window = panel.filter(pl.col("date").is_between(days[max(k - prior_rows, 0)], day))
    first_dates = panel.group_by("ticker").agg(pl.col("date").min().alias("first_date"))
    return compute_alpha158(window, first_dates=first_dates).filter(pl.col("date") == day)


def _assert_frames_close(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert got.select("ticker", "date").equals(want.select("ticker", "date"))
    for name in ALPHA158_NAMES:
        a = got[name].cast(pl.Float64).to_numpy()
        b = want[name].cast(pl.Float64).to_numpy()
        assert np.array_equal(np.isnan(a), np.isnan(b)), name
        # float32 outputs; only the least squares see a different row index origin
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7, equal_nan=True, err_msg=name)


@pytest.fixture(scope="module")
def panel_features(panel) -> pl.DataFrame:
    return compute_alpha158(panel)


# 0, 1, 7: the late lister is inside the lookback, the early delister gone; 45: the reverse
@pytest.mark.parametrize("back", [0, 1, 7, 45])
def test_one_day_from_the_lookback_equals_the_full_history(panel, panel_features, back) -> None:
    days = panel["date"].unique().sort()
    day = days[-1 - back]
    got = _one_day(panel, day, LOOKBACK_ROWS)
    # the day's bars are all a one-day run knows of; the full history also has rows for the
    # tickers that miss that day but trade later (null bar features), which it cannot know
    with_bar = panel.filter(pl.col("date") == day).select("ticker").sort("ticker")
    assert got.select("ticker").equals(with_bar)
    want = panel_features.filter(pl.col("date") == day).join(with_bar, on="ticker", how="semi")
    _assert_frames_close(got, want)


def test_a_shorter_lookback_is_not_enough(panel, panel_features) -> None:
    """The lookback is tight: one row less changes the 60-row features."""
    day = panel["date"].max()
    want = panel_features.filter(pl.col("date") == day)
    got = _one_day(panel, day, LOOKBACK_ROWS - 1)
    with pytest.raises(AssertionError):
        _assert_frames_close(got, want)


def test_a_ticker_missing_the_lookbacks_first_days_keeps_those_rows(panel) -> None:
    """Without its first date, a ticker absent on the window's first sessions would start later
    in the window: its 60-row IdxMax would miss the missing day and CNTP60 count 59 rows."""
    days = panel["date"].unique().sort()
    day, start = days[-1], days[-1 - LOOKBACK_ROWS]
    ticker = "SYN0030"  # no missing days of its own
    holed = panel.filter(
        ~((pl.col("ticker") == ticker) & pl.col("date").is_in([start, days[-LOOKBACK_ROWS]]))
    )
    want = compute_alpha158(holed).filter(pl.col("date") == day, pl.col("ticker") == ticker)
    assert want["IMAX60"].item() == pytest.approx(1 / 60)  # the missing day is the oldest row
    got = _one_day(holed, day, LOOKBACK_ROWS).filter(pl.col("ticker") == ticker)
    _assert_frames_close(got, want)
    window = holed.filter(pl.col("date") >= start)
    naive = compute_alpha158(window).filter(pl.col("date") == day, pl.col("ticker") == ticker)
    assert naive["IMAX60"].item() != pytest.approx(1 / 60)
    assert naive["CNTP60"].item() == pytest.approx(want["CNTP60"].item() * 60 / 59)


def test_windows_against_a_pandas_reference_on_a_long_panel(panel, panel_features) -> None:
    """Independent pandas rolling code (the operators' definition) for the window statistics
    with a Polars kernel or a fast path, over a panel longer than the golden vector."""
    import pandas as pd

    ours = panel_features.to_pandas()
    frame = reindex_bars(panel).to_pandas()
    worst = {}
    for _, rows in frame.groupby("ticker", sort=True):
        close = rows["close"].astype("float64")
        got = ours.loc[rows.index]
        roll = {d: close.rolling(d, min_periods=1) for d in (5, 60)}
        for d, r in roll.items():
            ref = {
                f"MA{d}": r.mean() / close,
                f"STD{d}": r.std() / close,
                f"QTLU{d}": r.quantile(0.8) / close,
                f"QTLD{d}": r.quantile(0.2) / close,
                f"RANK{d}": r.rank(pct=True).where(close.notna()),
                f"MAX{d}": rows["high"].astype("float64").rolling(d, min_periods=1).max() / close,
            }
            for name, want in ref.items():
                have = got[name].astype("float64").to_numpy()
                want_np = pd.Series(want).to_numpy(dtype="float64")
                assert np.array_equal(np.isnan(have), np.isnan(want_np)), name
                ok = np.isclose(have, want_np, rtol=RTOL, atol=ATOL, equal_nan=True)
                worst[name] = worst.get(name, 0) + int((~ok).sum())
    assert worst and all(v == 0 for v in worst.values()), worst


# --- missing days and warm-up rows, on a small hand-made frame ---------------------------------

CLOSES: dict[str, list[float | None]] = {
    # X: a missing day (index 5) inside its life
    "X": [10, 11, 12, 11, 13, None, 14, 15, 16, 12],
    # Y: lists on day 2, delists after day 8
    "Y": [None, None, 20, 21, 22, 23, 24, 25, 26, None],
    # Z: flat, so the std masks of Rsquare and Corr apply
    "Z": [50.0] * 10,
}
CALENDAR = [date(2024, 1, 1 + i) for i in range(10)]


def _bars(closes: dict[str, list[float | None]]) -> pl.DataFrame:
    """open = close, high/low = close +-1%, volume 1000 + day index; None: no bar that day."""
    rows = [
        {
            "ticker": ticker,
            "date": day,
            "open": c,
            "high": c * 1.01,
            "low": c * 0.99,
            "close": c,
            "volume": 1000.0 + i,
        }
        for ticker, series in closes.items()
        for i, (day, c) in enumerate(zip(CALENDAR, series, strict=True))
        if c is not None
    ]
    return pl.DataFrame(rows)


@pytest.fixture(scope="module")
def small() -> dict[str, pl.DataFrame]:
    out = compute_alpha158(_bars(CLOSES))
    return {t: out.filter(pl.col("ticker") == t) for t in CLOSES}


def _at(frame: pl.DataFrame, i: int, name: str) -> float | None:
    return frame.filter(pl.col("date") == CALENDAR[i])[name].item()


def test_rows_span_each_tickers_life_on_the_union_calendar(small) -> None:
    assert small["X"]["date"].to_list() == CALENDAR  # the missing day is a row
    assert small["Y"]["date"].to_list() == CALENDAR[2:9]  # nothing before listing / after delisting
    assert reindex_bars(_bars(CLOSES)).filter(pl.col("ticker") == "X")["close"].null_count() == 1


def test_a_missing_day_is_a_row_of_missing_bar_features_and_counted_windows(small) -> None:
    x = small["X"]
    approx = pytest.approx
    # the day's own values (and everything divided by its close) are missing ...
    for name in ("KMID", "OPEN0", "ROC5", "MA5", "RESI5", "RANK5", "VMA5", "QTLU5"):
        assert _at(x, 5, name) is None, name
    # ... window statistics that skip missing values are not (window rows 1..5)
    assert _at(x, 5, "CNTP5") == approx(3 / 5)  # comparisons with a missing close count as 0
    assert _at(x, 5, "CNTN5") == approx(1 / 5)
    assert _at(x, 5, "SUMP5") == approx((1 + 1 + 2) / 5, rel=1e-6)
    assert _at(x, 5, "IMAX5") == approx(5 / 5)  # numpy: the first NaN's position wins
    t, y = np.arange(4.0), np.array([11.0, 12, 11, 13])
    assert _at(x, 5, "RSQR5") == approx(np.corrcoef(t, y)[0, 1] ** 2, rel=1e-5)
    # Log($volume+1) in float32 like Qlib: its day-to-day changes are ~1e-3 of its level
    vol = np.log(np.array([1001, 1002, 1003, 1004], dtype=np.float32) + np.float32(1))
    assert _at(x, 5, "CORR5") == approx(np.corrcoef(y, vol.astype(np.float64))[0, 1], rel=1e-5)
    # windows count rows, the missing row included
    assert _at(x, 6, "ROC5") == approx(11 / 14)
    assert _at(x, 6, "MA5") == approx(np.mean([12, 11, 13, 14]) / 14, rel=1e-6)
    assert _at(x, 6, "CNTP5") == approx(2 / 5)  # 14 > missing is 0
    assert _at(x, 7, "IMAX5") == approx(3 / 5)  # window rows 3..7, the missing one 3rd
    assert _at(x, 7, "IMIN5") == approx(3 / 5)
    assert _at(x, 9, "IMAX5") == approx(1 / 5)  # rows 5..9: the missing row is the oldest
    assert _at(x, 9, "IMAX10") == approx(6 / 10)  # rows 0..9 (partial window of 10)


def test_warm_up_rows_are_partial_windows(small) -> None:
    approx = pytest.approx
    for ticker, first, c0, c1 in (("X", 0, 10.0, 11.0), ("Y", 2, 20.0, 21.0)):
        frame = small[ticker]
        # first row: one value in every window
        for name in ("ROC5", "STD5", "BETA5", "RSQR5", "CORR5", "CORD5", "SUMP5", "VSTD5"):
            assert _at(frame, first, name) is None, (ticker, name)
        assert _at(frame, first, "MA5") == approx(1.0)
        assert _at(frame, first, "RANK5") == approx(1.0)
        assert _at(frame, first, "IMAX60") == approx(1 / 60)
        assert _at(frame, first, "CNTP5") == 0.0  # 0, not missing (comparison with NaN)
        assert _at(frame, first, "CNTN5") == 0.0
        assert _at(frame, first, "RSV5") == approx((c0 - 0.99 * c0) / (0.02 * c0), rel=1e-5)
        # second row: two values
        assert _at(frame, first + 1, "STD5") == approx(np.std([c0, c1], ddof=1) / c1, rel=1e-6)
        assert _at(frame, first + 1, "BETA5") == approx((c1 - c0) / c1, rel=1e-5)
        assert _at(frame, first + 1, "RSQR5") == approx(1.0, rel=1e-5)
        assert _at(frame, first + 1, "CNTP5") == approx(1 / 2)
        assert _at(frame, first + 1, "IMAX5") == approx(2 / 5)
    # Y's Ref(close, 5) does not reach before its listing
    assert _at(small["Y"], 6, "ROC5") is None
    assert _at(small["Y"], 7, "ROC5") == approx(20 / 25)


def test_flat_prices_mask_rsquare_and_corr(small) -> None:
    z = small["Z"]
    assert z["RSQR5"].null_count() == z.height  # first row: under 2 values; then std = 0
    assert z["CORR5"].null_count() == z.height
    assert z["STD5"].drop_nulls().to_list() == [0.0] * (z.height - 1)
    assert z["MA60"].to_list() == [1.0] * z.height


def test_vwap_is_optional() -> None:
    bars = _bars(CLOSES)
    assert compute_alpha158(bars)["VWAP0"].null_count() == 27  # all rows (10 + 7 + 10)
    with_vwap = bars.with_columns((pl.col("close") * 1.002).alias("vwap"))
    assert compute_alpha158(with_vwap)["VWAP0"].drop_nulls().to_numpy() == pytest.approx(1.002)


# --- bad input ---------------------------------------------------------------------------------


def test_duplicated_ticker_date_is_refused() -> None:
    bars = _bars(CLOSES)
    twice = pl.concat(
        [bars, bars.filter((pl.col("ticker") == "Y") & (pl.col("date") == CALENDAR[4]))]
    )
    with pytest.raises(ValueError, match=r"1 duplicated \(ticker, date\) pairs.*'Y'"):
        compute_alpha158(twice)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.drop("volume"), r"lack the columns \['volume'\]"),
        (
            lambda b: b.with_columns(pl.lit(None, dtype=pl.Date).alias("date")),
            "null ticker or date",
        ),
    ],
)
def test_malformed_bars_are_refused(change, message) -> None:
    with pytest.raises(ValueError, match=message):
        compute_alpha158(change(_bars(CLOSES)))
