"""No look-ahead between the weekly training windows and the daily predictions that use them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from quant_assets.features.labels import horizon_date
from quant_assets.models.windows import model_week_for, training_window, week_start
from quant_assets.partitions import trading_sessions


def test_training_window_of_a_week() -> None:
    window = training_window(date(2024, 3, 25), window_sessions=60)
    # Good Friday 2024-03-29: the week's last session is Thursday
    assert window.end == date(2024, 3, 28)
    assert window.sessions == 60
    assert horizon_date(window.last_label_day) == window.end
    with pytest.raises(ValueError, match="Monday"):
        training_window(date(2024, 3, 26), window_sessions=60)


@pytest.mark.parametrize("year", [2008, 2024])
def test_every_day_uses_a_model_trained_only_on_earlier_data(year: int) -> None:
    for day in trading_sessions(date(year, 1, 1), date(year + 1, 1, 1)):
        week = model_week_for(day)
        window = training_window(week, window_sessions=756)
        assert window.end < day, (day, window)
        # every label the model saw was realised before the day it scores
        assert horizon_date(window.last_label_day) < day
        # and it is the latest such week: the next week's window reaches into day's week
        next_window = training_window(week + timedelta(days=7), window_sessions=756)
        assert next_window.end >= day
        assert week_start(day) == week + timedelta(days=7)
