"""The Store resource, one suite over both backends (see the ``store`` fixture in conftest)."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from resources.storage import SchemaError, Store
from resources.storage.store import redact_url
from resources.storage.tables import ORDER_JOURNAL, RAW_BARS, TABLES, UNIVERSE

D = [date(2024, 1, 2) + timedelta(days=i) for i in range(10)]
"""Ten consecutive days (calendar days are fine: the store knows nothing of sessions)."""

TICKERS = ["AAA", "BBB", "CCC"]


def bars(days: list[date], tickers: list[str] = TICKERS, seed: int = 0) -> pl.DataFrame:
    """A small raw_bars frame, sorted by key, with a few null vwaps."""
    rows = [(t, d) for t in sorted(tickers) for d in sorted(days)]
    n = len(rows)
    rng = np.random.default_rng(seed)
    close = 100 + rng.normal(size=n).cumsum()
    vwap = [None if i % 4 == 1 else float(v) for i, v in enumerate(close + 0.1)]
    return pl.DataFrame(
        {
            "ticker": [t for t, _ in rows],
            "date": [d for _, d in rows],
            "open": close - 0.5,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": rng.integers(1_000, 1_000_000, n).astype(float),
            "adj_open": close - 0.5,
            "adj_high": close + 1.0,
            "adj_low": close - 1.0,
            "adj_close": close,
            "vwap": vwap,
        },
        schema=RAW_BARS.polars_schema,
    )


def universe(tickers: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ticker": tickers,
            "name": [None if i == 0 else f'{t} Corp, "Inc"' for i, t in enumerate(tickers)],
            "sector": ["Tech" if i % 2 else "" for i in range(len(tickers))],
            "is_benchmark": [t == "SPY" for t in tickers],
        },
        schema=UNIVERSE.polars_schema,
    )


def by_key(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("ticker", "date")


# --- round trips ----------------------------------------------------------------------------------


def test_backend_name(store: Store, store_url: str) -> None:
    expected = {"duckdb"} if not store_url.startswith("postgres") else {"postgresql", "timescaledb"}
    assert store.backend_name in expected


def test_write_and_read_back(store: Store) -> None:
    frame = bars(D[:2])
    assert store.write_partition("raw_bars", frame, D[0], D[2]) == frame.height
    back = store.read("raw_bars")
    assert back.schema == RAW_BARS.polars_schema
    assert back.schema["date"] == pl.Date
    assert_frame_equal(back, by_key(frame))
    assert back["vwap"].null_count() == frame["vwap"].null_count() > 0


def special_bars() -> pl.DataFrame:
    """Values that trip text formats: separators and quotes in keys, non-ASCII, NaN, ±inf."""
    return bars(D[:1], ["A,B", 'Q"T', "Zé\n\\"]).with_columns(
        pl.Series("close", [float("nan"), float("inf"), -float("inf")]),
        pl.Series("open", [0.1 + 0.2, 1e-300, 1.7976931348623157e308]),
    )


def test_special_values_round_trip(store: Store) -> None:
    frame = special_bars()
    store.write_partition("raw_bars", frame, D[0], D[1])
    assert_frame_equal(store.read("raw_bars"), by_key(frame))


@pytest.mark.postgres
@pytest.mark.parametrize("copy_format", ["binary", "csv"])
def test_postgres_copy_formats(
    postgres_store_url: str, monkeypatch: pytest.MonkeyPatch, copy_format: str
) -> None:
    """Binary COPY is the fast path; frames with many row layouts go as CSV. Both round-trip."""
    from resources.storage import postgres_backend

    if copy_format == "csv":
        monkeypatch.setattr(postgres_backend, "MAX_BINARY_LAYOUTS", 0)
    store = Store(url=postgres_store_url)
    frame = pl.concat([special_bars(), bars(D[:1], ["", "LONGER_TICKER"], seed=4)])
    store.write_partition("raw_bars", frame, D[0], D[1])
    assert_frame_equal(store.read("raw_bars"), by_key(frame))
    members = universe(["SPY", "AAA", "BBBB", "É"])
    store.replace_table("universe", members)
    assert_frame_equal(store.read("universe"), members.sort("ticker"))


def test_rewrite_same_partition_gives_no_duplicates(store: Store) -> None:
    store.write_partition("raw_bars", bars(D[:1], seed=1), D[0], D[1])
    second = bars(D[:1], seed=2)
    store.write_partition("raw_bars", second, D[0], D[1])
    store.write_partition("raw_bars", second, D[0], D[1])
    assert store.count("raw_bars") == len(TICKERS)
    assert_frame_equal(store.read("raw_bars"), by_key(second))


def test_neighbour_partitions_untouched(store: Store) -> None:
    for i in range(3):
        store.write_partition("raw_bars", bars(D[i : i + 1], seed=i), D[i], D[i + 1])
    before = store.read("raw_bars")
    store.write_partition("raw_bars", bars(D[1:2], ["BBB"], seed=9), D[1], D[2])
    after = store.read("raw_bars")
    for day in (D[0], D[2]):
        assert_frame_equal(
            after.filter(pl.col("date") == day), before.filter(pl.col("date") == day)
        )
    assert after.filter(pl.col("date") == D[1])["ticker"].to_list() == ["BBB"]


def test_multi_day_window(store: Store) -> None:
    store.write_partition("raw_bars", bars(D[:1]), D[0], D[1])  # a neighbour before
    store.write_partition("raw_bars", bars(D[5:6]), D[5], D[6])  # and one after
    window = bars(D[1:5])
    assert store.write_partition("raw_bars", window, D[1], D[5]) == 4 * len(TICKERS)
    assert store.count("raw_bars", D[1], D[5]) == 4 * len(TICKERS)
    # rewriting the window with fewer days drops the days left out, and only those
    store.write_partition("raw_bars", bars(D[1:3]), D[1], D[5])
    assert sorted(store.read("raw_bars", columns=["date"])["date"].unique().to_list()) == [
        D[0],
        D[1],
        D[2],
        D[5],
    ]


def test_empty_frame_clears_window(store: Store) -> None:
    store.write_partition("raw_bars", bars(D[:3]), D[0], D[3])
    empty = pl.DataFrame(schema=RAW_BARS.polars_schema)
    assert store.write_partition("raw_bars", empty, D[1], D[2]) == 0
    assert store.count("raw_bars", D[1], D[2]) == 0
    assert store.count("raw_bars") == 2 * len(TICKERS)
    # a frame with no columns at all is an empty frame too
    assert store.write_partition("raw_bars", pl.DataFrame(), D[0], D[1]) == 0
    assert store.read("raw_bars", columns=["date"])["date"].unique().to_list() == [D[2]]


def test_safe_casts_are_accepted(store: Store) -> None:
    frame = bars(D[:1]).with_columns(
        pl.col("volume").cast(pl.Int64),
        pl.col("close").cast(pl.Float32),
        pl.lit(None).alias("vwap"),  # a column of nulls (dtype Null) in a nullable column
        pl.col("ticker").cast(pl.Categorical),
    )
    store.write_partition("raw_bars", frame, D[0], D[1])
    back = store.read("raw_bars")
    assert back.schema == RAW_BARS.polars_schema
    assert back["vwap"].null_count() == back.height
    assert back["volume"].to_list() == frame["volume"].cast(pl.Float64).to_list()


# --- reads ----------------------------------------------------------------------------------------


def test_range_reads(store: Store) -> None:
    frame = bars(D[:6])
    store.write_partition("raw_bars", frame, D[0], D[6])

    def expect(mask: pl.Expr) -> pl.DataFrame:
        return by_key(frame.filter(mask))

    assert_frame_equal(
        store.read("raw_bars", D[1], D[3]), expect(pl.col("date").is_between(D[1], D[2]))
    )
    assert_frame_equal(store.read("raw_bars", start=D[4]), expect(pl.col("date") >= D[4]))
    assert_frame_equal(store.read("raw_bars", end=D[1]), expect(pl.col("date") < D[1]))
    assert_frame_equal(
        store.read("raw_bars", D[2], D[4], tickers=["CCC", "AAA", "ZZZ"]),
        expect(pl.col("date").is_between(D[2], D[3]) & pl.col("ticker").is_in(["AAA", "CCC"])),
    )
    assert_frame_equal(store.read("raw_bars", tickers="BBB"), expect(pl.col("ticker") == "BBB"))

    picked = store.read("raw_bars", D[0], D[2], columns=["close", "date"])
    assert picked.columns == ["close", "date"]
    assert picked.schema == pl.Schema({"close": pl.Float64(), "date": pl.Date()})
    assert picked["close"].to_list() == expect(pl.col("date") < D[2])["close"].to_list()

    where = store.read("raw_bars", where={"ticker": ["AAA"], "date": [D[0], D[3]]})
    assert where.select("ticker", "date").rows() == [("AAA", D[0]), ("AAA", D[3])]


def test_empty_reads_carry_the_schema(store: Store) -> None:
    assert store.read("raw_bars").schema == RAW_BARS.polars_schema
    store.write_partition("raw_bars", bars(D[:2]), D[0], D[2])
    for empty in (
        store.read("raw_bars", D[5], D[9]),
        store.read("raw_bars", tickers=[]),
        store.read("raw_bars", tickers=["NOPE"], columns=["date", "vwap"]),
    ):
        assert empty.is_empty()
        assert set(empty.schema.items()) <= set(RAW_BARS.polars_schema.items())
    assert store.read("raw_bars", tickers=[], columns=["date"]).schema == pl.Schema(
        {"date": pl.Date()}
    )


def test_read_errors(store: Store) -> None:
    with pytest.raises(SchemaError, match=r"raw_bars.*unknown columns \['nope'\]"):
        store.read("raw_bars", columns=["date", "nope"])
    with pytest.raises(SchemaError, match="macro_series has no ticker column"):
        store.read("macro_series", tickers=["AAA"])
    with pytest.raises(SchemaError, match="universe has no time column"):
        store.read("universe", D[0], D[1])
    with pytest.raises(SchemaError, match="unknown table 'nope'"):
        store.read("nope")


def test_date_bounds_and_count(store: Store) -> None:
    assert store.date_bounds("raw_bars") is None
    assert store.count("raw_bars") == 0
    store.write_partition("raw_bars", bars(D[2:5]), D[2], D[5])
    store.write_partition("raw_bars", bars(D[7:8], ["AAA"]), D[7], D[8])
    assert store.date_bounds("raw_bars") == (D[2], D[7])
    assert store.count("raw_bars") == 3 * len(TICKERS) + 1
    assert store.count("raw_bars", D[3], D[8]) == 2 * len(TICKERS) + 1
    assert store.count("raw_bars", start=D[6]) == 1
    assert store.count("raw_bars", end=D[3]) == len(TICKERS)
    with pytest.raises(SchemaError, match="universe has no time column"):
        store.date_bounds("universe")


# --- whole-table replacement ----------------------------------------------------------------------


def test_replace_table(store: Store) -> None:
    first = universe(["SPY", "AAA", "BBB", "CCC"])
    assert store.replace_table("universe", first) == 4
    back = store.read("universe")
    assert back.schema == UNIVERSE.polars_schema
    assert_frame_equal(back, first.sort("ticker"))
    second = universe(["SPY", "DDD"])
    assert store.replace_table("universe", second) == 2
    assert_frame_equal(store.read("universe"), second.sort("ticker"))
    assert store.count("universe") == 2
    with pytest.raises(SchemaError, match="universe has no time column"):
        store.write_partition("universe", second, D[0], D[1])
    # a failed replacement leaves the table as it was
    with pytest.raises(SchemaError):
        store.replace_table("universe", universe(["X", "X"]))
    assert_frame_equal(store.read("universe"), second.sort("ticker"))


def _journal_row(cid: str, status: str, filled: int) -> dict:
    return {
        "date": D[0],
        "client_order_id": cid,
        "broker": "simulated",
        "strategy": "live",
        "ticker": cid.split("-")[2],
        "side": "buy",
        "qty": 100,
        "reference_price": 10.0,
        "limit_price": None,
        "status": status,
        "filled_qty": filled,
        "avg_fill_price": 10.01 if filled else None,
        "fees": 0.0,
        "reason": None,
        "broker_order_id": None,
        "updated_at": "2024-01-02T22:00:00.000+00:00",
    }


def test_upsert_replaces_rows_by_key_and_keeps_the_others(store: Store) -> None:
    ids = [f"20240102-live-{t}-buy" for t in ("AAA", "BBB", "CCC")]
    rows = pl.DataFrame(
        [_journal_row(c, "NEW", 0) for c in ids], schema=ORDER_JOURNAL.polars_schema
    )
    assert store.upsert("order_journal", rows) == 3
    update = pl.DataFrame([_journal_row(ids[1], "FILLED", 100)], schema=rows.schema)
    assert store.upsert("order_journal", update) == 1
    back = store.read("order_journal")
    assert back.height == 3
    assert dict(back.select("client_order_id", "status").iter_rows()) == {
        ids[0]: "NEW",
        ids[1]: "FILLED",
        ids[2]: "NEW",
    }
    assert back.filter(pl.col("status") == "FILLED")["avg_fill_price"].to_list() == [10.01]
    # a table keyed by more than one column has no single key to upsert on
    with pytest.raises(SchemaError, match="one-column key"):
        store.upsert("raw_bars", pl.DataFrame())
    # a bad batch changes nothing
    with pytest.raises(SchemaError):
        store.upsert("order_journal", pl.concat([update, update]))
    assert store.read("order_journal").height == 3


def test_other_tables(store: Store) -> None:
    macro = pl.DataFrame(
        {
            "series_id": ["DGS10", "DGS10", "VIX"],
            "date": [D[0], D[1], D[0]],
            "value": [4.1, 4.2, 13],
        },
        schema=TABLES["macro_series"].polars_schema,
    )
    store.write_partition("macro_series", macro, D[0], D[2])
    assert_frame_equal(store.read("macro_series"), macro.sort("series_id", "date"))

    quarantine = bars(D[:1], ["AAA"]).with_columns(
        pl.lit(None, pl.Float64).alias("close"), pl.lit("null_close").alias("reason")
    )
    quarantine = pl.concat([quarantine, quarantine.with_columns(pl.lit("spike").alias("reason"))])
    store.write_partition("raw_bars_quarantine", quarantine, D[0], D[1])
    back = store.read("raw_bars_quarantine")
    assert back.schema == TABLES["raw_bars_quarantine"].polars_schema
    assert back["reason"].to_list() == ["null_close", "spike"]


# --- schema errors --------------------------------------------------------------------------------

BAD_FRAMES = {
    "missing column": (
        lambda f: f.drop("vwap", "low"),
        r"raw_bars: missing columns \['low', 'vwap'\]",
    ),
    "extra column": (
        lambda f: f.with_columns(pl.lit(1).alias("surprise")),
        r"raw_bars: unexpected columns \['surprise'\]",
    ),
    "wrong type": (
        lambda f: f.with_columns(pl.col("close").cast(pl.String)),
        r"raw_bars: wrong column types: close is String, expected Float64",
    ),
    "datetime for a date": (
        lambda f: f.with_columns(pl.col("date").cast(pl.Datetime)),
        r"date is Datetime\(.*\), expected Date",
    ),
    "null in non-null": (
        lambda f: f.with_columns(
            pl.when(pl.col("ticker") == "BBB").then(None).otherwise(pl.col("close")).alias("close")
        ),
        r"raw_bars: nulls in non-nullable columns: close \(1\)",
    ),
    "rows outside the window": (
        lambda f: f.with_columns(pl.col("date") + timedelta(days=1)),
        r"raw_bars: 3 rows have date outside the window \[2024-01-03, 2024-01-04\)",
    ),
    "duplicate keys": (
        lambda f: pl.concat([f, f.head(1)]),
        r"raw_bars: 2 rows share a key \['ticker', 'date'\]",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
def test_schema_errors_leave_previous_data_intact(store: Store, case: str) -> None:
    store.write_partition("raw_bars", bars(D[:3]), D[0], D[3])
    before = store.read("raw_bars")
    make_bad, message = BAD_FRAMES[case]
    with pytest.raises(SchemaError, match=message):
        store.write_partition("raw_bars", make_bad(bars(D[1:2], seed=5)), D[1], D[2])
    assert_frame_equal(store.read("raw_bars"), before)


def test_failure_mid_transaction_rolls_back(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.write_partition("raw_bars", bars(D[:2]), D[0], D[2])
    before = store.read("raw_bars")
    backend = store._get_backend()

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected failure after the delete")

    monkeypatch.setattr(type(backend), "_insert", boom)
    with pytest.raises(RuntimeError, match="injected"):
        store.write_partition("raw_bars", bars(D[:2], seed=3), D[0], D[2])
    with pytest.raises(RuntimeError, match="injected"):
        store.replace_table("universe", universe(["AAA"]))
    monkeypatch.undo()
    assert_frame_equal(store.read("raw_bars"), before)
    assert store.count("universe") == 0


def test_table_column_mismatch(store_url: str) -> None:
    ddl = "CREATE TABLE raw_bars (ticker VARCHAR NOT NULL, date DATE NOT NULL, close DOUBLE)"
    if store_url.startswith("postgres"):
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.execute(ddl.replace("DOUBLE", "TEXT"))
    else:
        import duckdb

        Path(store_url).parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(store_url) as con:
            con.execute(ddl.replace("DOUBLE", "VARCHAR"))
    store = Store(url=store_url)
    with pytest.raises(SchemaError, match="stored table raw_bars does not match") as error:
        store.read("raw_bars")
    assert "columns missing from the table: ['open', 'high'" in str(error.value)
    assert "close is" in str(error.value)
    with pytest.raises(SchemaError, match="stored table raw_bars"):
        store.write_partition("raw_bars", bars(D[:1]), D[0], D[1])
    # other tables are unaffected
    assert store.replace_table("universe", universe(["AAA"])) == 1


def test_a_table_replaced_whole_is_recreated_when_its_schema_changed(store_url: str) -> None:
    """A table replaced whole (the universe, the last backtest's tables) stored by an older
    schema is dropped and created anew by replace_table; a partitioned table never is."""
    ddl = "CREATE TABLE universe (ticker VARCHAR NOT NULL, stale DOUBLE)"
    if store_url.startswith("postgres"):
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.execute(ddl.replace("DOUBLE", "DOUBLE PRECISION"))
            conn.execute("INSERT INTO universe VALUES ('OLD', 1.0)")
    else:
        import duckdb

        Path(store_url).parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(store_url) as con:
            con.execute(ddl)
            con.execute("INSERT INTO universe VALUES ('OLD', 1.0)")
    store = Store(url=store_url)
    with pytest.raises(SchemaError, match="stored table universe"):
        store.read("universe")
    assert store.replace_table("universe", universe(["AAA", "BBB"])) == 2
    assert Store(url=store_url).read("universe")["ticker"].to_list() == ["AAA", "BBB"]


def test_window_must_not_be_empty(store: Store) -> None:
    with pytest.raises(SchemaError, match="empty window"):
        store.write_partition("raw_bars", bars(D[:1]), D[1], D[1])


# --- the resource ---------------------------------------------------------------------------------


def test_store_as_a_dagster_resource(store: Store) -> None:
    @dg.asset
    def written(store: Store) -> dg.MaterializeResult:
        rows = store.write_partition("raw_bars", bars(D[:2]), D[0], D[2])
        return dg.MaterializeResult(metadata={"rows": rows, "store": store.backend_name})

    @dg.asset(deps=[written])
    def counted(store: Store) -> int:
        return store.count("raw_bars")

    assert store.count("raw_bars") == 0  # the backend exists before Dagster copies the resource
    result = dg.materialize([written, counted], resources={"store": store})
    assert result.success
    assert result.output_for_node("counted") == 2 * len(TICKERS)
    assert store.count("raw_bars") == 2 * len(TICKERS)  # the same data, seen from outside


def test_default_url_and_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUANT_STORE_URL", str(tmp_path / "env.duckdb"))
    assert Store().url == str(tmp_path / "env.duckdb")
    assert Store.from_env().url == str(tmp_path / "env.duckdb")
    monkeypatch.delenv("QUANT_STORE_URL")
    monkeypatch.setenv("QUANT_DATA_DIR", str(tmp_path / "data"))
    assert Store().url == str(tmp_path / "data" / "quant.duckdb")
    # an EnvVar field also resolves outside a Dagster run
    monkeypatch.setenv("SOME_STORE_URL", str(tmp_path / "nested" / "dir" / "x.duckdb"))
    store = Store(url=dg.EnvVar("SOME_STORE_URL"))
    assert store.backend_name == "duckdb"
    assert store.count("raw_bars") == 0
    assert (tmp_path / "nested" / "dir" / "x.duckdb").exists()


def test_backend_is_logged_once_without_password(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="quant.store"):
        store.count("raw_bars")
        store.read("raw_bars")
        assert store.backend_name
    messages = [r.getMessage() for r in caplog.records if r.name == "quant.store"]
    assert len(messages) == 1, messages
    assert ":postgres@" not in messages[0]


def test_redact_url() -> None:
    assert redact_url("postgresql://u:s3cret@h:5432/db?x=1") == "postgresql://u:***@h:5432/db?x=1"
    assert redact_url("postgresql://h/db") == "postgresql://h/db"
    assert redact_url("/data/quant.duckdb") == "/data/quant.duckdb"


def _other_process_can_open(path: Path) -> bool:
    """Whether a second process opens the DuckDB file at once (no waiting)."""
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; duckdb.connect(sys.argv[1]).close()",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return probe.returncode == 0


def _hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding the DuckDB file ``path`` for ``seconds``, as a run does;
    returns once it holds it."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
            "print('locked', flush=True); time.sleep(float(sys.argv[2])); con.close()",
            str(path),
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_duckdb_waits_for_another_process(tmp_path: Path) -> None:
    path = tmp_path / "locked.duckdb"
    store = Store(url=str(path))
    store.write_partition("raw_bars", bars(D[:1]), D[0], D[1])
    store.close()  # release the file at once rather than after the idle delay
    holder = _hold(path, seconds=1.5)
    try:
        started = time.monotonic()
        store.write_partition("raw_bars", bars(D[1:2]), D[1], D[2])
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=30)
    assert store.count("raw_bars") == 2 * len(TICKERS)
    assert waited > 0.5  # it did wait for the other process


def test_duckdb_file_is_released_when_idle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from resources.storage import duckdb_backend

    monkeypatch.setattr(duckdb_backend, "IDLE_CLOSE_S", 2.0)
    path = tmp_path / "idle.duckdb"
    store = Store(url=str(path))
    store.write_partition("raw_bars", bars(D[:1]), D[0], D[1])
    assert not _other_process_can_open(path)  # still open: the next operation reuses it
    time.sleep(2.5)
    assert _other_process_can_open(path)
    assert store.count("raw_bars") == len(TICKERS)  # reopens on demand


def test_duckdb_file_is_released_after_a_dagster_run(tmp_path: Path) -> None:
    path = tmp_path / "run.duckdb"

    @dg.asset
    def written(store: Store) -> int:
        return store.write_partition("raw_bars", bars(D[:1]), D[0], D[1])

    assert dg.materialize([written], resources={"store": Store(url=str(path))}).success
    assert _other_process_can_open(path)


def test_a_reader_store_cannot_write(store_url: str) -> None:
    writer = Store(url=store_url)
    writer.write_partition("raw_bars", bars(D[:1]), D[0], D[1])
    writer.close()
    reader = Store(url=store_url, reader=True)
    assert reader.count("raw_bars") == len(TICKERS)
    for write in (
        lambda: reader.write_partition("raw_bars", bars(D[:1]), D[0], D[1]),
        lambda: reader.replace_table("universe", universe(TICKERS)),
        lambda: reader.upsert("order_journal", pl.DataFrame(schema=ORDER_JOURNAL.polars_schema)),
    ):
        with pytest.raises(PermissionError, match="reader"):
            write()
    assert writer.count("raw_bars") == len(TICKERS)


def test_a_duckdb_reader_reads_the_published_snapshot_while_a_run_holds_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "busy.duckdb"
    writer = Store(url=str(path))
    writer.write_partition("raw_bars", bars(D[:1]), D[0], D[1])
    writer.close()  # the end of a step: publishes the snapshot
    # a run holds the pipeline's file for 20 s (the lock a reader used to wait for)
    holder = _hold(path, seconds=20)
    try:
        started = time.monotonic()
        read = Store(url=str(path), reader=True).read("raw_bars")
        waited = time.monotonic() - started
        assert not _other_process_can_open(path)  # the run still holds it
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert_frame_equal(read, bars(D[:1]))
    assert waited < 5.0  # did not wait for the run


def test_a_duckdb_writer_never_waits_for_readers_and_readers_see_each_published_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.duckdb"
    writer = Store(url=str(path))
    writer.write_partition("raw_bars", bars(D[:1]), D[0], D[1])
    writer.close()
    # a reader process keeps the snapshot open and reads it in a loop
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from resources.storage import Store\n"
            "store = Store(url=sys.argv[1], reader=True)\n"
            "print(store.count('raw_bars'), flush=True)\n"
            "end = time.monotonic() + 20\n"
            "while time.monotonic() < end: store.read('raw_bars')\n",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == str(len(TICKERS))
        started = time.monotonic()
        writer.write_partition("raw_bars", bars(D[1:2]), D[1], D[2])
        writer.close()
        wrote = time.monotonic() - started
        assert reader.poll() is None  # the reader is still reading
    finally:
        reader.kill()
        reader.wait(timeout=30)
    assert wrote < 5.0
    # a new reader object, or the same one, sees the second write once it is published
    assert Store(url=str(path), reader=True).count("raw_bars") == 2 * len(TICKERS)


def test_a_reader_before_any_snapshot_publishes_one_and_sees_missing_tables_as_empty(
    tmp_path: Path,
) -> None:
    from resources.storage.duckdb_backend import snapshot_path

    path = tmp_path / "old.duckdb"
    writer = Store(url=str(path))
    writer.write_partition("raw_bars", bars(D[:2]), D[0], D[2])
    writer.close()
    snapshot_path(path).unlink()  # a store written before snapshots existed
    reader = Store(url=str(path), reader=True)
    assert reader.count("raw_bars") == 2 * len(TICKERS)
    assert reader.read("order_journal").is_empty() and reader.date_bounds("nav") is None
