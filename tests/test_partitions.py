from datetime import UTC, date, datetime

import dagster as dg
import pytest

from quant_assets.partitions import (
    is_trading_day,
    last_completed_trading_day,
    next_trading_day,
    previous_trading_day,
    trading_day_partitions,
    trading_sessions,
    training_week_partitions,
)


@pytest.fixture(scope="module")
def partitions() -> dg.TimeWindowPartitionsDefinition:
    return trading_day_partitions(date(2018, 1, 2))


@pytest.mark.parametrize(
    "holiday",
    [
        "2018-12-05",
        "2019-01-01",
        "2019-07-04",
        "2019-11-28",
        "2019-12-25",
        "2020-04-10",
        "2022-06-20",
        "2023-01-16",
    ],
)
def test_daily_partitions_skip_nyse_holidays(partitions, holiday):
    keys = set(partitions.get_partition_keys(current_time=datetime(2024, 1, 1, tzinfo=UTC)))
    assert holiday not in keys


def test_daily_partitions_are_exactly_the_nyse_sessions(partitions):
    now = datetime(2024, 1, 1, tzinfo=UTC)
    keys = partitions.get_partition_keys(current_time=now)
    sessions = trading_sessions(date(2018, 1, 2), date(2024, 1, 1))
    # end_offset=1: the session in progress (here the next one, 2024-01-01 being a holiday)
    assert keys[:-1] == [d.isoformat() for d in sessions]
    assert keys[-1] == "2024-01-02"
    assert not any(date.fromisoformat(k).weekday() >= 5 for k in keys)
    assert 245 <= len([k for k in keys if k.startswith("2019")]) <= 253


def test_start_date_is_configurable(monkeypatch):
    monkeypatch.setenv("QUANT_START_DATE", "2020-03-02")
    from quant_assets import partitions as module

    defn = module.trading_day_partitions()
    keys = defn.get_partition_keys(current_time=datetime(2020, 3, 10, tzinfo=UTC))
    assert keys[0] == "2020-03-02"


def test_current_session_is_a_partition_for_the_evening_run(partitions):
    evening = datetime(2024, 3, 5, 22, 0, tzinfo=UTC)
    assert partitions.get_partition_keys(current_time=evening)[-1] == "2024-03-05"


def test_weekly_training_partitions_start_on_monday():
    keys = training_week_partitions(date(2024, 1, 1)).get_partition_keys(
        current_time=datetime(2024, 3, 1, tzinfo=UTC)
    )
    assert keys[0] == "2024-01-01"
    assert all(date.fromisoformat(k).weekday() == 0 for k in keys)


def test_session_helpers_walk_over_holidays():
    assert not is_trading_day(date(2019, 7, 4))
    assert next_trading_day(date(2019, 7, 3)) == date(2019, 7, 5)
    assert previous_trading_day(date(2019, 7, 5)) == date(2019, 7, 3)
    assert next_trading_day(date(2019, 7, 5)) == date(2019, 7, 8)
    # 2012-10-29/30: closed for hurricane Sandy
    assert trading_sessions(date(2012, 10, 26), date(2012, 11, 1)) == [
        date(2012, 10, 26),
        date(2012, 10, 31),
    ]


def test_last_completed_session_waits_for_the_close():
    assert last_completed_trading_day(datetime(2024, 3, 5, 15, 0, tzinfo=UTC)) == date(2024, 3, 4)
    assert last_completed_trading_day(datetime(2024, 3, 5, 21, 30, tzinfo=UTC)) == date(2024, 3, 5)
    assert last_completed_trading_day(datetime(2024, 3, 9, 12, 0, tzinfo=UTC)) == date(2024, 3, 8)


def test_a_session_counts_as_completed_only_after_its_calendar_close_and_the_delay(monkeypatch):
    monkeypatch.setenv("QUANT_CLOSE_DELAY_MINUTES", "30")
    # the day after Thanksgiving closes at 13:00 New York (18:00 UTC)
    assert last_completed_trading_day(datetime(2024, 11, 29, 18, 20, tzinfo=UTC)) == date(
        2024, 11, 27
    )
    assert last_completed_trading_day(datetime(2024, 11, 29, 18, 31, tzinfo=UTC)) == date(
        2024, 11, 29
    )
    # summer time: 16:00 New York is 20:00 UTC
    assert last_completed_trading_day(datetime(2024, 7, 8, 20, 29, tzinfo=UTC)) == date(2024, 7, 5)
    assert last_completed_trading_day(datetime(2024, 7, 8, 20, 31, tzinfo=UTC)) == date(2024, 7, 8)
    monkeypatch.setenv("QUANT_CLOSE_DELAY_MINUTES", "120")
    assert last_completed_trading_day(datetime(2024, 7, 8, 21, 59, tzinfo=UTC)) == date(2024, 7, 5)
