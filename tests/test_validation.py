from datetime import date

import polars as pl

from quant_assets.ingest.validation import validate_bars


def _bars(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema=["ticker", "date", "open", "high", "low", "close", "volume"],
        orient="row",
    )


def _reasons(quarantine: pl.DataFrame) -> set[tuple[str, date, str]]:
    return set(quarantine.select("ticker", "date", "reason").iter_rows())


def test_clean_bars_pass_untouched():
    bars = _bars(
        [
            ("A", date(2024, 7, 1), 10.0, 11.0, 9.0, 10.5, 100.0),
            ("A", date(2024, 7, 2), 10.5, 11.0, 10.0, 10.8, 120.0),
        ]
    )
    clean, quarantine = validate_bars(bars)
    assert clean.equals(bars)
    assert quarantine.is_empty()


def test_each_broken_rule_is_quarantined_with_its_reason():
    d = date(2024, 7, 1)
    bars = _bars(
        [
            ("LOWHIGH", d, 10.0, 9.0, 11.0, 10.0, 1.0),
            ("CLOSEOUT", d, 10.0, 11.0, 9.0, 12.0, 1.0),
            ("NEGPRICE", d, -1.0, 11.0, 9.0, 10.0, 1.0),
            ("NEGVOL", d, 10.0, 11.0, 9.0, 10.0, -5.0),
            ("NAN", d, 10.0, 11.0, 9.0, float("nan"), 1.0),
            ("WEEKEND", date(2024, 7, 6), 10.0, 11.0, 9.0, 10.0, 1.0),
            ("HOLIDAY", date(2024, 7, 4), 10.0, 11.0, 9.0, 10.0, 1.0),
            ("OK", d, 10.0, 11.0, 9.0, 10.0, 1.0),
        ]
    )
    clean, quarantine = validate_bars(bars)
    assert clean["ticker"].to_list() == ["OK"]
    reasons = _reasons(quarantine)
    assert ("LOWHIGH", d, "low_above_high") in reasons
    assert ("CLOSEOUT", d, "close_outside_range") in reasons
    assert ("NEGPRICE", d, "non_positive_price") in reasons
    assert ("NEGVOL", d, "negative_volume") in reasons
    assert ("NAN", d, "missing_price") in reasons
    assert ("WEEKEND", date(2024, 7, 6), "not_a_trading_day") in reasons
    assert ("HOLIDAY", date(2024, 7, 4), "not_a_trading_day") in reasons
    # nothing vanishes: every input row is either clean or quarantined at least once
    assert clean.height + quarantine.select("ticker", "date").unique().height == bars.height


def test_duplicates_quarantine_every_copy_with_distinct_keys():
    d = date(2024, 7, 1)
    bars = _bars(
        [
            ("A", d, 10.0, 11.0, 9.0, 10.0, 1.0),
            ("A", d, 10.0, 11.0, 9.0, 10.2, 1.0),
            ("B", d, 10.0, 11.0, 9.0, 10.0, 1.0),
        ]
    )
    clean, quarantine = validate_bars(bars)
    assert clean["ticker"].to_list() == ["B"]
    assert sorted(quarantine["reason"].to_list()) == ["duplicate (copy 1)", "duplicate (copy 2)"]


def test_decimal_shifted_print_that_reverts_is_quarantined_but_a_real_jump_is_kept():
    days = [date(2024, 7, 1), date(2024, 7, 2), date(2024, 7, 3), date(2024, 7, 5)]
    shifted = _bars(
        [
            ("A", day, c, c * 1.01, c * 0.99, c, 1.0)
            for day, c in zip(days, [50.0, 5.0, 50.5, 51.0], strict=True)
        ]
    )
    jumped = _bars(
        [
            ("B", day, c, c * 1.01, c * 0.99, c, 1.0)
            for day, c in zip(days, [50.0, 20.0, 20.5, 21.0], strict=True)
        ]
    )
    clean, quarantine = validate_bars(pl.concat([shifted, jumped]))
    assert _reasons(quarantine) == {("A", date(2024, 7, 2), "spike_reverted")}
    assert clean.filter(pl.col("ticker") == "B").height == 4
    assert clean.filter(pl.col("ticker") == "A").height == 3


def test_spike_on_the_last_day_is_kept_until_the_next_session_proves_it():
    days = [date(2024, 7, 1), date(2024, 7, 2)]
    bars = _bars(
        [
            ("A", day, c, c * 1.01, c * 0.99, c, 1.0)
            for day, c in zip(days, [50.0, 500.0], strict=True)
        ]
    )
    clean, quarantine = validate_bars(bars)
    assert clean.height == 2 and quarantine.is_empty()


def test_a_shifted_run_of_two_sessions_is_quarantined_whole():
    days = [
        date(2024, 7, 1),
        date(2024, 7, 2),
        date(2024, 7, 3),
        date(2024, 7, 5),
        date(2024, 7, 8),
    ]
    closes = [40.0, 4.0, 4.1, 41.0, 41.5]
    bars = _bars(
        [("A", day, c, c * 1.01, c * 0.99, c, 1.0) for day, c in zip(days, closes, strict=True)]
    )
    clean, quarantine = validate_bars(bars)
    assert _reasons(quarantine) == {
        ("A", date(2024, 7, 2), "spike_reverted"),
        ("A", date(2024, 7, 3), "spike_reverted"),
    }
    assert clean["date"].to_list() == [date(2024, 7, 1), date(2024, 7, 5), date(2024, 7, 8)]


def test_a_lasting_level_change_is_not_a_spike():
    days = [
        date(2024, 7, 1),
        date(2024, 7, 2),
        date(2024, 7, 3),
        date(2024, 7, 5),
        date(2024, 7, 8),
        date(2024, 7, 9),
    ]
    closes = [40.0, 4.0, 4.1, 4.0, 4.2, 4.1]
    bars = _bars(
        [("A", day, c, c * 1.01, c * 0.99, c, 1.0) for day, c in zip(days, closes, strict=True)]
    )
    clean, quarantine = validate_bars(bars)
    assert quarantine.is_empty() and clean.height == 6


def test_a_real_crash_that_recovers_over_days_is_kept():
    # HIG around 2008-10-30: -52%, +7%, +58% on heavy volume, a real move, not a bad print
    days = [date(2008, 10, 29), date(2008, 10, 30), date(2008, 10, 31), date(2008, 11, 3)]
    closes = [17.53, 8.49, 9.11, 14.37]
    bars = _bars(
        [("HIG", day, c, c * 1.01, c * 0.99, c, 1.0) for day, c in zip(days, closes, strict=True)]
    )
    clean, quarantine = validate_bars(bars)
    assert quarantine.is_empty() and clean.height == 4


# a REIT's real closes in November 2008 (volume in millions): -35% then +53% on heavy volume
_REIT = [
    (date(2008, 11, 10), 14.06, 19.99, 13.79, 4.5),
    (date(2008, 11, 11), 12.46, 15.87, 9.20, 8.5),
    (date(2008, 11, 12), 8.11, 11.16, 6.57, 13.6),
    (date(2008, 11, 13), 12.41, 12.84, 7.98, 14.1),
    (date(2008, 11, 14), 9.22, 11.79, 9.07, 7.7),
]


def _reit(shift_day: date | None = None, factor: float = 10.0) -> pl.DataFrame:
    """The REIT's rows (open = the mid of the range), one day's prices scaled by ``factor``."""
    rows = []
    for day, close, high, low, volume in _REIT:
        scale = factor if day == shift_day else 1.0
        prices = [(high + low) / 2, high, low, close]
        rows.append(("REIT", day, *(p * scale for p in prices), volume * 1e6))
    return _bars(rows)


def test_a_real_crash_and_rebound_on_heavy_volume_keeps_every_print():
    clean, quarantine = validate_bars(_reit())
    assert quarantine.is_empty()
    assert clean.height == len(_REIT)


def test_each_sign_of_real_trading_alone_keeps_the_crash():
    flat_volume = _reit().with_columns(pl.lit(4.5e6).alias("volume"))
    # ranges squeezed around the close: only the heavy volume says the move traded
    tight = _reit().with_columns(
        (pl.col("close") * 1.01).alias("high"),
        (pl.col("close") * 0.99).alias("low"),
        pl.col("close").alias("open"),
    )
    for bars in (flat_volume, tight):
        clean, quarantine = validate_bars(bars)
        assert quarantine.is_empty() and clean.height == len(_REIT)


def test_the_same_move_with_ordinary_volume_and_no_trading_across_the_gap_is_quarantined():
    untraded = _reit().with_columns(
        (pl.col("close") * 1.01).alias("high"),
        (pl.col("close") * 0.99).alias("low"),
        pl.col("close").alias("open"),
        pl.lit(4.5e6).alias("volume"),
    )
    _, quarantine = validate_bars(untraded)
    assert _reasons(quarantine) == {("REIT", date(2008, 11, 12), "spike_reverted")}


def test_the_crash_with_one_day_shifted_by_ten_is_quarantined_on_that_day_only():
    for day, _, _, _, _ in _REIT[1:-1]:
        for factor in (10.0, 0.1):
            clean, quarantine = validate_bars(_reit(day, factor))
            assert _reasons(quarantine) == {("REIT", day, "spike_reverted")}, (day, factor)
            assert clean.height == len(_REIT) - 1
