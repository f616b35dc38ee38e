"""The label: 5-session forward excess return, and its availability rule."""

from __future__ import annotations

from datetime import date

import dagster as dg
import numpy as np
import polars as pl
import pytest

from quant_assets.features.assets import labels
from quant_assets.features.labels import (
    LabelNotAvailable,
    check_available,
    forward_excess_returns,
    horizon_date,
    horizon_dates,
    label_gaps,
)
from quant_assets.ingest.assets import raw_bars, universe
from quant_assets.partitions import next_trading_day, shift_sessions, trading_sessions
from quant_assets.queries import benchmark_ticker
from resources.market_data.resource import MarketData
from resources.storage import Store


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


def test_a_missing_benchmark_bar_leaves_only_the_sessions_that_need_it_unlabelled() -> None:
    sessions = trading_sessions(date(2024, 3, 1), date(2024, 4, 5))
    prices = {t: [10.0 + i for i in range(len(sessions))] for t in ("AAA", "BBB", "IDX")}
    gap = sessions[7]
    bars = _bars(sessions, prices).filter(
        ~((pl.col("ticker") == "IDX") & (pl.col("date") == gap))
        # BBB alone lacks the horizon bar of sessions[0]
        & ~((pl.col("ticker") == "BBB") & (pl.col("date") == sessions[5]))
    )
    out = forward_excess_returns(bars, "IDX", sessions[0], sessions[10])
    # sessions[2]'s horizon is the gap, sessions[7] is the gap itself
    labelled = [s for s in sessions[:10] if s not in (sessions[2], gap)]
    assert out.filter(pl.col("ticker") == "AAA")["date"].to_list() == labelled
    bbb = [s for s in labelled if s not in (sessions[0], sessions[5])]
    assert out.filter(pl.col("ticker") == "BBB")["date"].to_list() == bbb
    assert label_gaps(bars, "IDX", sessions[0], sessions[10]).rows() == [
        ("BBB", sessions[0], sessions[5], "ticker: no bar on the horizon date"),
        ("IDX", sessions[2], gap, "benchmark IDX: no bar on the horizon date"),
        ("BBB", sessions[5], sessions[10], "ticker: no bar on the session"),
        ("IDX", gap, sessions[12], "benchmark IDX: no bar on the session"),
    ]


RANGE = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def test_the_labels_asset_stores_every_session_a_benchmark_gap_does_not_touch(
    store: Store,
) -> None:
    resources = {"store": store, "market_data": MarketData(n_tickers=6)}
    first, last = date(2024, 3, 1), date(2024, 4, 12)
    bars = dg.materialize(
        [universe, raw_bars],
        resources=resources,
        tags=dict(zip(RANGE, (str(first), str(last)), strict=True)),
    )
    assert bars.success
    gap = date(2024, 3, 15)
    benchmark = benchmark_ticker(store)
    day = store.read("raw_bars", gap, next_trading_day(gap))
    store.write_partition(
        "raw_bars", day.filter(pl.col("ticker") != benchmark), gap, next_trading_day(gap)
    )
    labelled_to = date(2024, 3, 28)
    result = dg.materialize(
        [labels],
        resources=resources,
        tags=dict(zip(RANGE, (str(first), str(labelled_to)), strict=True)),
    )
    assert result.success
    sessions = trading_sessions(first, next_trading_day(labelled_to))
    unlabelled = [shift_sessions(gap, 5), gap]
    stored = store.read("labels")
    assert sorted(stored["date"].unique().to_list()) == [s for s in sessions if s not in unlabelled]
    gaps = store.read("label_gaps")
    assert gaps.filter(pl.col("ticker") == benchmark)["date"].sort().to_list() == unlabelled
    # a range run: one materialization per session, each with the run's metadata
    meta = next(
        m.metadata
        for m in result.asset_materializations_for_node("labels")
        if m.asset_key == dg.AssetKey("labels")
    )
    assert meta["unlabelled_sessions"].value == 2
    # a range whose only session lacks the benchmark cannot be labelled at all: a clear failure
    alone = dg.materialize(
        [labels], resources=resources, partition_key=str(gap), raise_on_error=False
    )
    assert not alone.success
    error = str(alone.get_step_failure_events()[0].event_specific_data.error)
    assert f"benchmark {benchmark} has no return" in error
