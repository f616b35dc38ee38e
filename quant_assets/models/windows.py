"""Which data a weekly model may see, and which weekly model a day may use.

A training week is a Monday-keyed weekly partition. Its model is trained after the week's last
session closed, on features up to that session and on the labels already realised by then (a
label of day d is realised at d's horizon session, 5 sessions later). A day d uses the model of
the last week that ended before d's week began, so everything that model saw is older than d.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from quant_assets.partitions import shift_sessions, trading_sessions
from quant_core.conventions import LABEL_HORIZON_SESSIONS


@dataclass(frozen=True)
class TrainingWindow:
    week: date  # the partition's Monday
    start: date  # first feature session
    end: date  # last feature session: the week's last session
    last_label_day: date  # last session whose label is realised by ``end``

    @property
    def sessions(self) -> int:
        return len(trading_sessions(self.start, self.end + timedelta(days=1)))


def week_start(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


def training_window(week: date, window_sessions: int) -> TrainingWindow:
    """The window of the model of the week starting ``week``: ``window_sessions`` sessions
    ending with the week's last session."""
    if week.weekday() != 0:
        raise ValueError(f"a training week starts on a Monday, not on {week:%A} {week}")
    sessions = trading_sessions(week, week + timedelta(days=7))
    if not sessions:
        raise ValueError(f"the week of {week} has no NYSE session")
    end = sessions[-1]
    return TrainingWindow(
        week=week,
        start=shift_sessions(end, window_sessions - 1),
        end=end,
        last_label_day=shift_sessions(end, LABEL_HORIZON_SESSIONS),
    )


def model_week_for(day: date) -> date:
    """The training week whose model scores ``day``: the last week that ended before ``day``'s
    week began."""
    return week_start(day) - timedelta(days=7)
