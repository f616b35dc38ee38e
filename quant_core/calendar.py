"""The NYSE trading calendar (exchange_calendars' XNYS): sessions, shifts and membership.

A session is a weekday the NYSE is open. Lookups are binary searches over the sorted session
ordinals, so they cost microseconds and no pandas objects.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import exchange_calendars as xcals
import numpy as np

DEFAULT_START_DATE = "2005-01-03"


def start_date() -> date:
    return date.fromisoformat(os.environ.get("QUANT_START_DATE") or DEFAULT_START_DATE)


@lru_cache(maxsize=1)
def nyse_calendar() -> xcals.ExchangeCalendar:
    return xcals.get_calendar("XNYS", start="1990-01-02")


@lru_cache(maxsize=1)
def session_ordinals() -> np.ndarray:
    """Sorted proleptic ordinals of every known NYSE session (fast membership and lookups)."""
    sessions = nyse_calendar().sessions
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


@lru_cache(maxsize=1)
def session_closes() -> np.ndarray:
    """Each session's close in UTC epoch seconds (16:00 New York, 13:00 on early-close days),
    aligned with ``session_ordinals``."""
    closes = nyse_calendar().closes
    return np.asarray(closes.dt.tz_convert("UTC").astype("int64") // 1_000_000_000, dtype=np.int64)


def close_delay() -> timedelta:
    """How long after the close a session's bars count as final (``QUANT_CLOSE_DELAY_MINUTES``,
    default 30: providers publish the closing auction's prints a few minutes late)."""
    return timedelta(minutes=float(os.environ.get("QUANT_CLOSE_DELAY_MINUTES") or 30))


def session_close(day: date) -> datetime:
    """The UTC time ``day``'s session closes; ``day`` must be a session."""
    ordinals = session_ordinals()
    i = int(np.searchsorted(ordinals, day.toordinal()))
    if i >= len(ordinals) or int(ordinals[i]) != day.toordinal():
        raise ValueError(f"{day} is not an NYSE session")
    return datetime.fromtimestamp(int(session_closes()[i]), UTC)


def session_has_closed(day: date, now: datetime | None = None) -> bool:
    """True once ``day``'s close plus ``close_delay()`` has passed."""
    return (now or datetime.now(UTC)) >= session_close(day) + close_delay()


def last_completed_trading_day(now: datetime | None = None) -> date:
    """The latest session whose close (from the exchange calendar, early closes included) plus
    ``close_delay()`` has passed."""
    now = now or datetime.now(UTC)
    cutoff = int((now - close_delay()).timestamp())
    i = int(np.searchsorted(session_closes(), cutoff, side="right")) - 1
    return date.fromordinal(int(session_ordinals()[max(i, 0)]))


def closure_reason(day: date) -> str | None:
    """Why ``day`` is not an NYSE session, as one line, or None when it is one: a weekend, a
    named holiday, an unscheduled closure, or outside the calendar (whose horizon is about a
    year out: a later weekday is unknown, not closed)."""
    cal = nyse_calendar()
    first, last = cal.first_session.date(), cal.last_session.date()
    if day.weekday() >= 5:
        return f"{day} is not an NYSE session: a weekend ({day:%A})"
    if day > last:
        return f"{day} is beyond the NYSE calendar's last session {last}"
    if day < first:
        return f"{day} is before the NYSE calendar's first session {first}"
    if is_trading_day(day):
        return None
    named = cal.regular_holidays.holidays(day, day, return_name=True)
    if len(named):
        return f"{day} is not an NYSE session: a holiday ({named.iloc[0]})"
    return f"{day} is not an NYSE session: an unscheduled market closure"


def partition_problem(day: date, now: datetime | None = None) -> str | None:
    """Why ``day`` cannot be a daily partition, as one line, or None when it can: it must be an
    NYSE session (``closure_reason``) from ``start_date()`` whose close has passed."""
    if day < start_date():
        return f"{day} is before the first partition {start_date()} (QUANT_START_DATE)"
    reason = closure_reason(day)
    if reason is not None:
        return reason
    last = last_completed_trading_day(now)
    if day > last:
        return f"{day} has not closed yet: the last completed session is {last}"
    return None
