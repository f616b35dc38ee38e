"""Trading-day and training-week partitions.

A daily partition is an NYSE session: weekdays minus NYSE holidays (exchange_calendars' XNYS),
from ``QUANT_START_DATE`` (default 2005-01-03). A partition *owns* the dates from its session up
to, not including, the next session, so a weekend or holiday observation (a monthly macro print
dated the 1st, a bar stamped on a Saturday) belongs to exactly one partition and is never lost.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import dagster as dg
import exchange_calendars as xcals
import numpy as np
import pandas as pd

DEFAULT_START_DATE = "2005-01-03"


def start_date() -> date:
    return date.fromisoformat(os.environ.get("QUANT_START_DATE") or DEFAULT_START_DATE)


@lru_cache(maxsize=1)
def _calendar() -> xcals.ExchangeCalendar:
    return xcals.get_calendar("XNYS", start="1990-01-02")


@lru_cache(maxsize=1)
def session_ordinals() -> np.ndarray:
    """Sorted proleptic ordinals of every known NYSE session (fast membership and lookups)."""
    sessions = _calendar().sessions
    return np.array([d.toordinal() for d in sessions.date], dtype=np.int64)


def trading_sessions(start: date, end: date) -> list[date]:
    """NYSE sessions in the half-open range ``[start, end)``."""
    ordinals = session_ordinals()
    lo, hi = np.searchsorted(ordinals, [start.toordinal(), end.toordinal()])
    return [date.fromordinal(int(o)) for o in ordinals[lo:hi]]


def is_trading_day(day: date) -> bool:
    ordinals = session_ordinals()
    i = int(np.searchsorted(ordinals, day.toordinal()))
    return i < len(ordinals) and int(ordinals[i]) == day.toordinal()


def next_trading_day(day: date) -> date:
    """The first session strictly after ``day`` (a weekday guess past the calendar's horizon)."""
    ordinals = session_ordinals()
    i = int(np.searchsorted(ordinals, day.toordinal(), side="right"))
    if i < len(ordinals):
        return date.fromordinal(int(ordinals[i]))
    following = day + timedelta(days=1)
    while following.weekday() >= 5:
        following += timedelta(days=1)
    return following


def previous_trading_day(day: date) -> date:
    """The last session strictly before ``day``."""
    ordinals = session_ordinals()
    i = int(np.searchsorted(ordinals, day.toordinal(), side="left"))
    return date.fromordinal(int(ordinals[max(i - 1, 0)]))


def shift_sessions(day: date, sessions: int) -> date:
    """The session ``sessions`` sessions before (negative: after) the session on or after
    ``day``; ``shift_sessions(d, 0)`` is ``d`` itself when ``d`` is a session."""
    ordinals = session_ordinals()
    i = int(np.searchsorted(ordinals, day.toordinal(), side="left")) - sessions
    if not 0 <= i < len(ordinals):
        raise ValueError(f"{day} shifted by {sessions} sessions leaves the exchange calendar")
    return date.fromordinal(int(ordinals[i]))


def last_completed_trading_day(now: datetime | None = None) -> date:
    """The latest session whose US close (21:00 UTC at the latest) has passed."""
    now = now or datetime.now(UTC)
    today = now.date()
    if is_trading_day(today) and now.hour >= 21:
        return today
    return previous_trading_day(today)


def _nyse_holidays(start: date) -> list[datetime]:
    """Weekdays the NYSE is closed, from ``start`` to the calendar's horizon (about a year out)."""
    cal = _calendar()
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
