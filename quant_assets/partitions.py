"""Trading-day and training-week partitions over the NYSE calendar (``quant_core.calendar``).

A daily partition is an NYSE session from ``QUANT_START_DATE`` (default 2005-01-03). A partition
*owns* the dates from its session up to, not including, the next session, so a weekend or
holiday observation (a monthly macro print dated the 1st, a bar stamped on a Saturday) belongs
to exactly one partition and is never lost.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import dagster as dg
import pandas as pd

from quant_core.calendar import (
    DEFAULT_START_DATE,
    is_trading_day,
    last_completed_trading_day,
    next_trading_day,
    nyse_calendar,
    previous_trading_day,
    session_ordinals,
    shift_sessions,
    start_date,
    trading_sessions,
)


def _nyse_holidays(start: date) -> list[datetime]:
    """Weekdays the NYSE is closed, from ``start`` to the calendar's horizon (about a year out)."""
    cal = nyse_calendar()
    weekdays = pd.bdate_range(start, cal.last_session)
    closed = weekdays.difference(cal.sessions)
    return [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in closed]


def trading_day_partitions(start: date | None = None) -> dg.TimeWindowPartitionsDefinition:
    first = start or start_date()
    return dg.TimeWindowPartitionsDefinition(
        start=first.isoformat(),
        fmt="%Y-%m-%d",
        cron_schedule="0 0 * * 1-5",
        timezone="UTC",
        # the current session is a partition from midnight, so the 22:00 UTC run can target it
        end_offset=1,
        exclusions=_nyse_holidays(first),
    )


def training_week_partitions(start: date | None = None) -> dg.WeeklyPartitionsDefinition:
    """Weeks starting Monday; a week's model is trained once the week is complete."""
    return dg.WeeklyPartitionsDefinition(
        start_date=(start or start_date()).isoformat(), day_offset=1, timezone="UTC"
    )


daily_partitions = trading_day_partitions()
weekly_partitions = training_week_partitions()


def partition_dates(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """The half-open date window ``[first session, session after the last)`` a run owns."""
    key_range = context.partition_key_range
    first = date.fromisoformat(key_range.start)
    last = date.fromisoformat(key_range.end)
    return first, next_trading_day(last)


__all__ = [
    "DEFAULT_START_DATE",
    "daily_partitions",
    "is_trading_day",
    "last_completed_trading_day",
    "next_trading_day",
    "partition_dates",
    "previous_trading_day",
    "session_ordinals",
    "shift_sessions",
    "start_date",
    "trading_day_partitions",
    "trading_sessions",
    "training_week_partitions",
    "weekly_partitions",
]
