"""raw_bars, universe and macro_series through the real Dagster machinery on a DuckDB store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from quant_assets.ingest.assets import macro_series, raw_bars, universe
from quant_assets.ingest.checks import raw_bars_are_fresh, raw_bars_cover_the_universe
from resources.macro.resource import MacroData
from resources.market_data.base import ProviderError
from resources.market_data.resource import MarketData
from resources.market_data.synthetic import SyntheticMarket
from resources.storage import Store

ASSETS = [universe, raw_bars, macro_series, raw_bars_cover_the_universe, raw_bars_are_fresh]
RANGE_TAGS = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(url=str(tmp_path / "quant.duckdb"))


def _resources(store: Store, market_data: MarketData | None = None) -> dict:
    return {
        "store": store,
        "market_data": market_data or MarketData(n_tickers=30),
        "macro_data": MacroData(),
    }


def _run_range(
    store: Store,
    first: str,
    last: str,
    market_data: MarketData | None = None,
    assets: Sequence = ASSETS,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        resources=_resources(store, market_data),
        tags={RANGE_TAGS[0]: first, RANGE_TAGS[1]: last},
        raise_on_error=raise_on_error,
    )


def test_one_partition_materializes_bars_for_every_ticker(store):
    result = dg.materialize(ASSETS, resources=_resources(store), partition_key="2024-03-05")
    assert result.success
    bars = store.read("raw_bars")
    members = store.read("universe")
    assert bars["date"].unique().to_list() == [date(2024, 3, 5)]
    assert set(bars["ticker"]) == set(members["ticker"])
    metadata = result.asset_materializations_for_node("raw_bars")[0].metadata
    assert metadata["rows"].value == bars.height
    assert metadata["tickers_missing"].value == 0
    assert metadata["first_date"].value == "2024-03-05"
    chart = Path(metadata["chart"].value)
    assert chart.read_bytes().startswith(b"\x89PNG")
    checks = {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["raw_bars_cover_the_universe"] is True


def test_a_range_is_one_run_and_matches_the_provider(store):
    result = _run_range(store, "2024-01-02", "2024-03-28")
    assert result.success
    bars = store.read("raw_bars")
    expected = SyntheticMarket(n_tickers=30).fetch_bars(
        store.read("universe")["ticker"].to_list(), date(2024, 1, 2), date(2024, 3, 29)
    )
    assert bars.height == expected.height
    assert bars.sort("ticker", "date").equals(expected.sort("ticker", "date"))
    macro = store.read("macro_series")
    assert set(macro["series_id"]) >= {"DGS10", "DGS2", "T10Y2Y", "VIXCLS", "UNRATE"}
    assert macro["date"].min() >= date(2024, 1, 2)


def test_rematerializing_is_idempotent_and_leaves_neighbours_alone(store):
    _run_range(store, "2024-03-01", "2024-03-08")
    before = store.read("raw_bars")
    dg.materialize(ASSETS, resources=_resources(store), partition_key="2024-03-05")
    dg.materialize(ASSETS, resources=_resources(store), partition_key="2024-03-05")
    after = store.read("raw_bars")
    assert after.equals(before)
    assert after.group_by("ticker", "date").len()["len"].max() == 1


def test_faults_go_to_quarantine_not_raw_bars(store):
    faulty = MarketData(n_tickers=30, decimal_shift_rate=0.02, missing_day_rate=0.02)
    result = _run_range(store, "2024-01-02", "2024-06-28", market_data=faulty)
    assert result.success
    quarantine = store.read("raw_bars_quarantine")
    assert quarantine.filter(pl.col("reason") == "spike_reverted").height > 0
    bars = store.read("raw_bars")
    log_jumps = bars.sort("ticker", "date").select(
        pl.col("close").log().diff().over("ticker").abs().alias("jump")
    )
    # no stored close moves by a factor of 10 or more from the one before it
    assert (log_jumps["jump"].drop_nulls() < 2.0).all()
    metadata = result.asset_materializations_for_node("raw_bars")[0].metadata
    assert metadata["rows_quarantined"].value == quarantine.height
    # the quarantine is an asset of its own, with its own metadata (an event per partition)
    quarantine_event = next(
        e
        for e in result.asset_materializations_for_node("raw_bars")
        if e.asset_key == dg.AssetKey("raw_bars_quarantine")
    )
    assert quarantine_event.metadata["rows"].value == quarantine.height
    reasons = quarantine_event.metadata["rows_by_reason"].value
    assert quarantine_event.metadata["reasons"].value == len(reasons) >= 1
    # missing days drop (ticker, session) rows, never a ticker's whole half year
    missing = set(store.read("universe")["ticker"]) - set(bars["ticker"])
    assert metadata["tickers_missing"].value == len(missing) == 0


def test_spike_on_a_day_is_retired_when_the_next_session_reverts_it(store):
    faulty = MarketData(n_tickers=30, decimal_shift_rate=0.02)
    provider = faulty.get_provider()
    tickers = provider.universe()["ticker"].to_list()
    bars = provider.fetch_bars(tickers, date(2024, 1, 2), date(2024, 6, 29))
    jumps = bars.sort("ticker", "date").with_columns(
        pl.col("close").log().diff().over("ticker").alias("jump")
    )
    spike = jumps.filter(pl.col("jump").abs() > 1.0).sort("date").row(0, named=True)
    day = spike["date"]
    # materialize up to the spike day: it stays (unproven); the next session retires it
    dg.materialize(ASSETS, resources=_resources(store, faulty), partition_key=day.isoformat())
    assert store.read("raw_bars", tickers=[spike["ticker"]]).height == 1
    from quant_assets.partitions import next_trading_day

    following = next_trading_day(day).isoformat()
    result = dg.materialize(ASSETS, resources=_resources(store, faulty), partition_key=following)
    stored = store.read("raw_bars", day, next_trading_day(day), tickers=[spike["ticker"]])
    assert stored.is_empty()
    moved = store.read("raw_bars_quarantine", day, next_trading_day(day), tickers=[spike["ticker"]])
    assert moved["reason"].to_list() == ["spike_reverted"]
    metadata = result.asset_materializations_for_node("raw_bars")[0].metadata
    assert metadata["spikes_retired_from_earlier_sessions"].value >= 1


class _FailingMarketData(MarketData):
    """Serves the first chunk, then fails like a rate-limited provider."""

    def fetch_bars_chunked(self, provider, tickers, start, end):
        class Flaky:
            name = "flaky"
            benchmark_ticker = provider.benchmark_ticker
            calls = 0

            def universe(self):
                return provider.universe()

            def fetch_bars(self, tickers_, start_, end_):
                Flaky.calls += 1
                if Flaky.calls > 1:
                    raise ProviderError("flaky failed after 3 attempts: rate limited (HTTP 429)")
                return provider.fetch_bars(tickers_, start_, end_)

        return super().fetch_bars_chunked(Flaky(), tickers, start, end)


def test_a_failing_provider_fails_the_run_and_loses_nothing(store):
    _run_range(store, "2023-06-01", "2023-06-30")
    before_bars = store.read("raw_bars")
    before_quarantine = store.read("raw_bars_quarantine")
    failing = _FailingMarketData(n_tickers=30, chunk_days=30)
    result = _run_range(
        store, "2023-06-01", "2023-12-29", market_data=failing, raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "rate limited" in str(failure.event_specific_data.error)
    assert store.read("raw_bars").equals(before_bars)
    assert store.read("raw_bars_quarantine").equals(before_quarantine)


def test_raw_bars_without_a_universe_fails_clearly(store):
    result = dg.materialize(
        [raw_bars], resources=_resources(store), partition_key="2024-03-05", raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "materialize the `universe` asset first" in str(failure.event_specific_data.error)


def test_coverage_check_fails_when_tickers_are_missing(store):
    sparse = MarketData(n_tickers=30, missing_day_rate=0.3)
    result = _run_range(store, "2024-03-04", "2024-03-08", market_data=sparse)
    checks = {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}
    coverage = checks["raw_bars_cover_the_universe"]
    assert coverage.passed is False
    assert coverage.metadata["min_coverage"].value < 0.95


def test_staleness_check_warns_on_old_history(store):
    result = _run_range(store, "2024-03-04", "2024-03-08")
    checks = {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}
    fresh = checks["raw_bars_are_fresh"]
    assert fresh.passed is False
    assert fresh.severity == dg.AssetCheckSeverity.WARN
    assert fresh.metadata["sessions_behind"].value > 100


def test_no_provider_writes_bars_for_a_session_that_has_not_closed(store, monkeypatch):
    from datetime import UTC, datetime

    from quant_core.calendar import session_close

    day = date(2024, 3, 5)
    dg.materialize([universe], resources=_resources(store))
    # a delay reaching past now makes 2024-03-05 a session whose bars are not final yet
    waited = datetime.now(UTC) - session_close(day)
    monkeypatch.setenv("QUANT_CLOSE_DELAY_MINUTES", str(waited.total_seconds() / 60 + 60))
    result = dg.materialize(
        [universe, raw_bars],
        resources=_resources(store),
        partition_key=day.isoformat(),
        selection=[dg.AssetKey("raw_bars"), dg.AssetKey("raw_bars_quarantine")],
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = str(failure.step_failure_data.error)
    assert "session 2024-03-05 has not closed" in message
    assert store.read("raw_bars").is_empty()
    monkeypatch.delenv("QUANT_CLOSE_DELAY_MINUTES")
    assert dg.materialize(
        [universe, raw_bars],
        resources=_resources(store),
        partition_key=day.isoformat(),
        selection=[dg.AssetKey("raw_bars"), dg.AssetKey("raw_bars_quarantine")],
    ).success
    assert store.read("raw_bars")["date"].unique().to_list() == [day]


UNIVERSE_PANEL = Path(__file__).parent / "fixtures" / "universe" / "panel.csv"


@pytest.mark.parametrize("include_etfs", [False, True])
def test_the_universe_counts_its_unclassified_names_and_leaves_funds_out(store, include_etfs):
    files = MarketData(provider="files", files_path=str(UNIVERSE_PANEL), include_etfs=include_etfs)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([universe], resources=_resources(store, files), instance=instance)
    stored = dict(store.read("universe").select("ticker", "sector").rows())
    metadata = result.asset_materializations_for_node("universe")[0].metadata
    funds = {"GLD", "TLT", "XLU"}
    if include_etfs:
        assert funds <= set(stored) and metadata["non_stocks_left_out"].value == 0
        assert metadata["unclassified"].value == 5
    else:
        assert set(stored) == {"ASML", "BP", "JNJ", "SPY", "ZZQA", "ZZQB"}
        assert metadata["non_stocks_left_out"].value == 3
        assert metadata["non_stocks_left_out_tickers"].value == "GLD, TLT, XLU"
        assert metadata["unclassified"].value == 2
        assert metadata["unclassified_tickers"].value == "ZZQA, ZZQB"
    assert stored["BP"] == "Energy" and stored["ZZQA"] == "Unclassified"
    logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
    count = metadata["unclassified"].value
    assert any(f"{count} unclassified" in message for message in logged), logged
