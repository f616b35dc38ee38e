"""The label: 5-session forward excess return, and its availability rule."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from quant_assets.features.labels import (
    LabelNotAvailable,
    check_available,
    forward_excess_returns,
    horizon_date,
    horizon_dates,
)
from quant_assets.partitions import trading_sessions


def test_horizon_counts_exchange_sessions_across_a_holiday() -> None:
    # Good Friday 2024-03-29 is a weekday the NYSE is closed
    assert horizon_date(date(2024, 3, 25)) == date(2024, 4, 2)
    assert horizon_date(date(2024, 3, 28)) == date(2024, 4, 5)
    days = pl.Series([date(2024, 3, 25), date(2024, 3, 28)], dtype=pl.Date)
    assert horizon_dates(days).to_list() == [date(2024, 4, 2), date(2024, 4, 5)]


def _bars(sessions: list[date], prices: dict[str, list[float]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"ticker": ticker, "date": day, "adj_close": price}
            for ticker, series in prices.items()
            for day, price in zip(sessions, series, strict=True)
        ]
    )


def test_forward_excess_return_values() -> None:
    sessions = trading_sessions(date(2024, 3, 1), date(2024, 3, 20))
    rng = np.random.default_rng(3)
    prices = {
        t: list(100 * np.cumprod(1 + rng.normal(0, 0.01, len(sessions)))) for t in ("AAA", "IDX")
    }
    bars = _bars(sessions, prices)
    labels = forward_excess_returns(bars, "IDX", sessions[0], sessions[3])
    assert labels["ticker"].unique().to_list() == ["AAA"]
    assert labels["date"].to_list() == sessions[:3]
    for i, row in enumerate(labels.iter_rows(named=True)):
        stock = prices["AAA"][i + 5] / prices["AAA"][i] - 1
        market = prices["IDX"][i + 5] / prices["IDX"][i] - 1
        assert row["horizon_date"] == sessions[i + 5]
        assert row["label"] == pytest.approx(stock - market, rel=1e-12)
        assert row["benchmark_return"] == pytest.approx(market, rel=1e-12)


def test_a_missing_horizon_bar_gives_no_row_not_nan() -> None:
    sessions = trading_sessions(date(2024, 3, 1), date(2024, 3, 20))
    bars = _bars(sessions, {"AAA": [10.0] * len(sessions), "IDX": [5.0] * len(sessions)})
    # AAA has no bar on the horizon of the first session
    bars = bars.filter(~((pl.col("ticker") == "AAA") & (pl.col("date") == sessions[5])))
    labels = forward_excess_returns(bars, "IDX", sessions[0], sessions[2])
    assert labels["date"].to_list() == [sessions[1]]
    assert not labels["label"].is_nan().any()


def test_a_missing_benchmark_fails_clearly() -> None:
    sessions = trading_sessions(date(2024, 3, 1), date(2024, 3, 20))
    bars = _bars(sessions, {"AAA": [10.0] * len(sessions)})
    with pytest.raises(LabelNotAvailable, match="benchmark IDX"):
        forward_excess_returns(bars, "IDX", sessions[0], sessions[2])


def test_availability_rule() -> None:
    day = date(2024, 3, 4)
    assert check_available(day, date(2024, 3, 11)) == date(2024, 3, 11)
    with pytest.raises(LabelNotAvailable, match=r"not yet available.*2024-03-11.*2024-03-08"):
        check_available(day, date(2024, 3, 8))
    with pytest.raises(LabelNotAvailable, match="no bars are stored"):
        check_available(day, None)
