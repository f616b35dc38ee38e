"""The quant_engine binding: single-order round trips, rejects vs exceptions, the NumPy batch API
(equal to the one-by-one API, GIL released) and the latency profile."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import Counter
from typing import Any

import numpy as np
import pytest
import quant_engine as qe
from quant_engine import (
    Accepted,
    Cancelled,
    Done,
    Engine,
    Fill,
    Modified,
    OrderBook,
    Rejected,
)

BAND = (1, 10_000)


def book(max_orders: int = 1_000) -> OrderBook:
    return OrderBook(*BAND, max_orders)


def fills_of(events: list[Any]) -> list[Fill]:
    return [e for e in events if isinstance(e, Fill)]


# --- single-order API ---------------------------------------------------------------------------


def test_resting_order_then_crossing_order_fills_at_the_makers_price():
    b = book()
    assert b.submit(1, "sell", "limit", 100, 10) == [Accepted(1)]
    assert len(b) == 1
    assert b.best_ask() == (100, 10)
    assert b.best_bid() is None

    events = b.submit(2, "buy", "limit", 105, 4)
    assert events[0] == Accepted(2)
    assert fills_of(events) == [Fill(fills_of(events)[0].seq, 1, 2, 100, 4, "buy")]
    assert Done(2, 4) in events
    assert b.order(1) == {"id": 1, "side": "sell", "price": 100, "remaining": 6, "filled": 4}
    assert b.order(2) is None
    assert b.best_ask() == (100, 6)


def test_fills_walk_the_book_in_price_then_time_priority():
    b = book()
    b.submit(1, "sell", "limit", 101, 5)
    b.submit(2, "sell", "limit", 100, 5)
    b.submit(3, "sell", "limit", 100, 5)
    fills = fills_of(b.submit(4, qe.Side.BUY, qe.OrderType.MARKET, 0, 12))
    assert [(f.maker_id, f.price, f.qty) for f in fills] == [(2, 100, 5), (3, 100, 5), (1, 101, 2)]
    assert [f.seq for f in fills] == sorted(f.seq for f in fills)
    assert len({f.seq for f in fills}) == 3
    assert all(f.taker_side == "buy" and f.taker_id == 4 for f in fills)
    assert b.best_ask() == (101, 3)


def test_codes_and_strings_are_interchangeable():
    a, b = book(), book()
    a.submit(1, "SELL", "Limit", 100, 5)
    b.submit(1, 1, 0, 100, 5)
    assert a.snapshot() == b.snapshot()
    assert a.submit(2, "buy", "ioc", 100, 2) == b.submit(2, qe.Side.BUY, qe.OrderType.IOC, 100, 2)


def test_cancel_round_trip_and_unknown_id_reject():
    b = book()
    b.submit(1, "buy", "limit", 99, 7)
    b.submit(2, "sell", "market", 0, 3)  # fills 3 of order 1
    assert b.cancel(1) == [Cancelled(1, 4)]
    assert len(b) == 0 and b.best_bid() is None
    assert b.cancel(1) == [Rejected(1, "unknown_order_id")]


def test_modify_keeps_priority_only_when_shrinking_at_the_same_price():
    b = book()
    b.submit(1, "buy", "limit", 99, 10)
    b.submit(2, "buy", "limit", 99, 10)

    events = b.modify(1, 99, 6)
    assert events == [Modified(1, 99, 6, True)]
    fills = fills_of(b.submit(3, "sell", "limit", 99, 1))
    assert [f.maker_id for f in fills] == [1]  # still first in the queue

    moved = b.modify(1, 98, 5)
    assert [e for e in moved if isinstance(e, Modified)] == [Modified(1, 98, 5, False)]
    assert b.order(1) == {"id": 1, "side": "buy", "price": 98, "remaining": 5, "filled": 1}
    assert b.snapshot(5)["bids"] == [(99, 10, 1), (98, 5, 1)]

    assert b.modify(42, 99, 1) == [Rejected(42, "unknown_order_id")]


def test_modify_through_the_other_side_trades():
    b = book()
    b.submit(1, "sell", "limit", 101, 5)
    b.submit(2, "buy", "limit", 99, 5)
    events = b.modify(2, 101, 5)
    assert [(f.maker_id, f.taker_id, f.price, f.qty) for f in fills_of(events)] == [(1, 2, 101, 5)]
    assert b.best_ask() is None


def test_business_rejects_come_back_as_events():
    b = book(max_orders=2)
    b.submit(1, "buy", "limit", 90, 5)
    assert b.submit(1, "buy", "limit", 91, 5) == [Rejected(1, "duplicate_order_id")]
    assert b.submit(2, "buy", "limit", 91, 0) == [Rejected(2, "zero_quantity")]
    b.submit(3, "sell", "limit", 110, 5)
    assert b.submit(4, "sell", "limit", 111, 5) == [Rejected(4, "book_full")]
    assert b.submit(5, "buy", "fok", 110, 6) == [Rejected(5, "fok_not_fillable")]
    assert len(b) == 2
    assert b.order(3) == {"id": 3, "side": "sell", "price": 110, "remaining": 5, "filled": 0}


def test_fok_fills_completely_and_ioc_and_market_drop_their_rest():
    b = book()
    b.submit(1, "sell", "limit", 100, 5)
    b.submit(2, "sell", "limit", 101, 5)
    fok = b.submit(3, "buy", "fok", 101, 8)
    assert sum(f.qty for f in fills_of(fok)) == 8
    ioc = b.submit(4, "buy", "ioc", 101, 10)
    assert sum(f.qty for f in fills_of(ioc)) == 2
    assert ioc[-1] == Cancelled(4, 8)
    assert b.order(4) is None and len(b) == 0
    assert b.submit(5, "sell", "market", 0, 3) == [Accepted(5), Cancelled(5, 3)]


def test_snapshot_aggregates_levels_best_first():
    b = book()
    for i, (side, price, qty) in enumerate(
        [("buy", 99, 5), ("buy", 99, 3), ("buy", 97, 1), ("sell", 101, 2), ("sell", 103, 4)],
        start=1,
    ):
        b.submit(i, side, "limit", price, qty)
    assert b.snapshot(10) == {
        "bids": [(99, 8, 2), (97, 1, 1)],
        "asks": [(101, 2, 1), (103, 4, 1)],
    }
    assert b.snapshot(1) == {"bids": [(99, 8, 2)], "asks": [(101, 2, 1)]}
    assert b.best_bid() == (99, 8)
    assert len(b) == 5


def test_events_support_match_and_repr():
    match book().submit(7, "buy", "limit", 50, 1):
        case [Accepted(id=order_id)]:
            assert order_id == 7
        case other:
            pytest.fail(f"unexpected events {other}")
    assert repr(Rejected(1, "book_full")) == "Rejected(id=1, reason='book_full')"


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda b: b.submit(1, "hold", "limit", 100, 1), ValueError, "invalid side"),
        (lambda b: b.submit(1, 2, "limit", 100, 1), ValueError, "invalid side code 2"),
        (lambda b: b.submit(1, 1.0, "limit", 100, 1), TypeError, "side must be"),
        (lambda b: b.submit(1, "buy", "stop", 100, 1), ValueError, "invalid order type"),
        (lambda b: b.submit(1, "buy", 9, 100, 1), ValueError, "invalid order type code 9"),
        (lambda b: b.submit(1, "buy", "limit", 0, 1), ValueError, "outside the book's band"),
        (lambda b: b.submit(1, "sell", "ioc", 10_001, 1), ValueError, "outside the book's band"),
        (lambda b: b.submit(-1, "buy", "limit", 100, 1), ValueError, "id must be"),
        (lambda b: b.submit(1, "buy", "limit", 100, -5), ValueError, "qty must be"),
        (lambda b: b.submit(1, "buy", "limit", 100, 2**64), ValueError, "qty must be"),
        (lambda b: b.submit("1", "buy", "limit", 100, 1), TypeError, "id must be an int"),
        (lambda b: b.modify(1, 20_000, 1), ValueError, "outside the book's band"),
        (lambda b: b.cancel(-3), ValueError, "id must be"),
    ],
)
def test_argument_errors_raise_and_leave_the_book_alone(call, error, message):
    b = book()
    b.submit(1, "buy", "limit", 100, 1)
    before = b.snapshot()
    with pytest.raises(error, match=message):
        call(b)
    assert b.snapshot() == before


def test_market_orders_ignore_the_price():
    b = book()
    b.submit(1, "sell", "limit", 100, 5)
    assert sum(f.qty for f in fills_of(b.submit(2, "buy", "market", -999, 3))) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [((10, 5, 10), "min_price"), ((1, 5, 0), "max_orders")],
)
def test_bad_book_configs_raise(args, message):
    with pytest.raises(ValueError, match=message):
        OrderBook(*args)


def test_engine_routes_by_symbol_and_rejects_unknown_symbols():
    engine = Engine()
    a = engine.add_symbol(1, 1_000)
    b = engine.add_symbol(500, 2_000, 10)
    assert (a, b, len(engine)) == (0, 1, 2)
    engine.submit(a, 1, "sell", "limit", 100, 5)
    engine.submit(b, 1, "sell", "limit", 600, 5)  # same id, other book: fine
    fills = fills_of(engine.submit(a, 2, "buy", "limit", 100, 2))
    assert [(f.maker_id, f.price, f.qty) for f in fills] == [(1, 100, 2)]
    assert engine.best_ask(a) == (100, 3)
    assert engine.best_ask(b) == (600, 5)
    assert engine.snapshot(b)["asks"] == [(600, 5, 1)]
    assert engine.order(b, 1) == {
        "id": 1,
        "side": "sell",
        "price": 600,
        "remaining": 5,
        "filled": 0,
    }
    assert engine.order_count(a) == 1
    assert engine.modify(a, 1, 100, 1) == [Modified(1, 100, 1, True)]
    assert engine.cancel(b, 1) == [Cancelled(1, 5)]
    with pytest.raises(ValueError, match="unknown symbol 2"):
        engine.submit(2, 3, "buy", "limit", 100, 1)
    with pytest.raises(ValueError, match="outside the book's band"):
        engine.submit(b, 3, "buy", "limit", 100, 1)


# --- batch API -----------------------------------------------------------------------------------


def stream_with_modifies(n: int, seed: int) -> qe.OrderStream:
    """The benchmark mix plus ~5% modifies of recent orders (so every kind is exercised)."""
    s = qe.mixed_stream(n, seed=seed)
    rng = np.random.default_rng(seed + 1)
    kind = s.kind.copy()
    ids = s.ids.copy()
    prices = s.prices.copy()
    rows = np.flatnonzero(rng.random(n) < 0.05)
    rows = rows[rows > 10]
    kind[rows] = qe.MODIFY
    ids[rows] = (rows - rng.integers(1, 10, size=len(rows))).astype(np.uint64)
    prices[rows] = np.clip(prices[rows], s.min_price, s.max_price)
    return qe.OrderStream(kind, ids, s.sides, s.types, prices, s.qtys, s.min_price, s.max_price)


def one_by_one(b: OrderBook, s: qe.OrderStream) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    fills: list[Fill] = []
    for k, i, side, t, p, q in zip(*(c.tolist() for c in s.columns()), strict=True):
        if k == qe.SUBMIT:
            events = b.submit(i, side, t, p, q)
        elif k == qe.CANCEL:
            events = b.cancel(i)
        else:
            events = b.modify(i, p, q)
        for e in events:
            counts[type(e).__name__] += 1
            if isinstance(e, Fill):
                fills.append(e)
            elif isinstance(e, Rejected):
                reasons[e.reason] += 1
    return {"counts": counts, "reasons": reasons, "fills": fills}


def test_batch_equals_one_by_one_on_a_random_stream():
    s = stream_with_modifies(30_000, seed=11)
    a = OrderBook(s.min_price, s.max_price, 100_000)
    b = OrderBook(s.min_price, s.max_price, 100_000)
    expected = one_by_one(a, s)
    got = b.process_batch(*s.columns())

    fills = expected["fills"]
    assert got["fills"] == len(fills) > 1_000
    np.testing.assert_array_equal(got["seq"], [f.seq for f in fills])
    np.testing.assert_array_equal(got["maker_id"], [f.maker_id for f in fills])
    np.testing.assert_array_equal(got["taker_id"], [f.taker_id for f in fills])
    np.testing.assert_array_equal(got["price"], [f.price for f in fills])
    np.testing.assert_array_equal(got["qty"], [f.qty for f in fills])
    np.testing.assert_array_equal(
        got["taker_side"], [0 if f.taker_side == "buy" else 1 for f in fills]
    )
    assert got["seq"].dtype == np.uint64 and got["price"].dtype == np.int64
    assert got["taker_side"].dtype == np.uint8
    counts = expected["counts"]
    assert got["ops"] == len(s)
    assert got["accepted"] == counts["Accepted"]
    assert got["rejected"] == counts["Rejected"] > 0
    assert got["cancelled"] == counts["Cancelled"] > 0
    assert got["modified"] == counts["Modified"] > 0
    assert got["done"] == counts["Done"]
    assert {k: v for k, v in got["rejects_by_reason"].items() if v} == dict(expected["reasons"])
    assert len(a) == len(b)
    assert a.snapshot(10_000) == b.snapshot(10_000)


def test_batch_in_chunks_equals_one_batch():
    s = qe.mixed_stream(20_000, seed=3)
    whole = OrderBook(s.min_price, s.max_price).process_batch(*s.columns())
    chunked = OrderBook(s.min_price, s.max_price)
    parts = [
        chunked.process_batch(*s.slice(i, i + 3_000).columns()) for i in range(0, 20_000, 3_000)
    ]
    np.testing.assert_array_equal(whole["seq"], np.concatenate([p["seq"] for p in parts]))
    np.testing.assert_array_equal(whole["qty"], np.concatenate([p["qty"] for p in parts]))
    assert whole["rejected"] == sum(p["rejected"] for p in parts)


def test_engine_batch_equals_per_symbol_books():
    s = qe.mixed_stream(10_000, seed=5)
    symbols = np.random.default_rng(0).integers(0, 2, size=len(s), dtype=np.uint32)
    engine = Engine()
    for _ in range(2):
        engine.add_symbol(s.min_price, s.max_price)
    got = engine.process_batch(symbols, *s.columns())
    total_fills = 0
    for sym in (0, 1):
        mask = symbols == sym
        own = OrderBook(s.min_price, s.max_price)
        res = own.process_batch(*(column[mask] for column in s.columns()))
        total_fills += res["fills"]
        assert engine.snapshot(sym, 1_000) == own.snapshot(1_000)
    assert got["fills"] == total_fills
    with pytest.raises(ValueError, match="row 0: unknown symbol 7"):
        engine.process_batch(np.full(len(s), 7, np.uint32), *s.columns())


def test_latency_profile_applies_the_stream_and_times_every_op():
    s = qe.mixed_stream(5_000, seed=9)
    timed = OrderBook(s.min_price, s.max_price)
    plain = OrderBook(s.min_price, s.max_price)
    samples = timed.latency_profile(*s.columns())
    plain.process_batch(*s.columns())
    assert samples.dtype == np.uint64 and samples.shape == (len(s),)
    assert timed.snapshot(1_000) == plain.snapshot(1_000)
    assert np.median(samples) < 1_000_000  # well under a millisecond per op
    assert 0 <= qe.clock_overhead_ns() < 10_000


def _columns(n: int = 4) -> dict[str, np.ndarray]:
    return {
        "kind": np.zeros(n, np.uint8),
        "ids": np.arange(1, n + 1, dtype=np.uint64),
        "sides": np.zeros(n, np.uint8),
        "types": np.zeros(n, np.uint8),
        "prices": np.full(n, 100, np.int64),
        "qtys": np.ones(n, np.uint64),
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"prices": np.full(4, 100, np.float64)},
            "prices must be a 1-D numpy array of dtype int64",
        ),
        ({"ids": np.arange(4, dtype=np.int64)}, "ids must be a 1-D numpy array of dtype uint64"),
        ({"kind": [0, 0, 0, 0]}, "kind must be a 1-D numpy array of dtype uint8, got list"),
        ({"qtys": np.ones((2, 2), np.uint64)}, "qtys must be a 1-D numpy array"),
        ({"sides": np.zeros(8, np.uint8)[::2]}, "sides must be C-contiguous"),
        ({"types": np.zeros(3, np.uint8)}, "kind has 4, types has 3"),
        ({"kind": np.array([0, 0, 5, 0], np.uint8)}, "row 2: invalid kind 5"),
        ({"sides": np.array([0, 2, 0, 0], np.uint8)}, "row 1: invalid side code 2"),
        ({"types": np.array([0, 0, 0, 4], np.uint8)}, "row 3: invalid order type code 4"),
        ({"prices": np.array([100, 100, 0, 100], np.int64)}, "row 2: price 0 is outside"),
    ],
)
def test_batch_argument_errors_raise_before_any_row_runs(change, message):
    b = book()
    columns = {**_columns(), **change}
    with pytest.raises(ValueError, match=message):
        b.process_batch(**columns)
    assert len(b) == 0


def test_batch_ignores_unused_columns_of_cancels_and_market_prices():
    b = book()
    cols = _columns(3)
    cols["kind"][2] = qe.CANCEL
    cols["ids"][2] = 1
    cols["sides"][2] = 9  # ignored on a cancel
    cols["prices"][2] = -1
    res = b.process_batch(**cols)
    assert (res["accepted"], res["cancelled"], len(b)) == (2, 1, 1)
    market = _columns(1)
    market["sides"][0] = 1
    market["types"][0] = qe.OrderType.MARKET
    market["prices"][0] = -50  # ignored on a market order
    market["ids"][0] = 9
    assert b.process_batch(**market)["fills"] == 1


def _batch_beside_a_ticker(n_ops: int) -> tuple[float, float, list[float]]:
    """One batch of ``n_ops`` mixed commands in a worker thread while a Python thread appends
    ``perf_counter`` ticks: ``(batch start, batch end, ticks)``."""
    s = qe.mixed_stream(n_ops, seed=1)
    b = OrderBook(s.min_price, s.max_price, 1 << 20)
    window: dict[str, float] = {}
    ticks: list[float] = []
    stop = threading.Event()

    def run_batch() -> None:
        window["start"] = time.perf_counter()
        b.process_batch(*s.columns())
        window["end"] = time.perf_counter()

    def tick() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0)

    ticker = threading.Thread(target=tick)
    ticker.start()
    time.sleep(0.02)
    worker = threading.Thread(target=run_batch)
    worker.start()
    worker.join()
    stop.set()
    ticker.join()
    return window["start"], window["end"], ticks


def test_batch_releases_the_gil():
    """A Python thread keeps ticking while a long batch runs in another thread: with the GIL
    held, its ticks would stop for the batch's whole duration. A batch too short to judge is
    run again 4x longer; if that is still too short the test skips locally and fails under CI."""
    for n_ops in (3_000_000, 12_000_000):
        start, end, ticks = _batch_beside_a_ticker(n_ops)
        duration = end - start
        if duration >= 0.1:
            break
    else:
        message = f"the batch took only {duration * 1e3:.0f} ms: too short to judge"
        if os.environ.get("CI"):
            pytest.fail(f"{message} [CI is set: the GIL release must be checked]", pytrace=False)
        pytest.skip(message)
    inside = [t for t in ticks if start <= t <= end]
    points = [start, *inside, end]
    longest_gap = max(b - a for a, b in itertools.pairwise(points))
    # GIL held: one gap of about the whole duration; released: gaps of scheduler slices
    assert len(inside) > 100
    assert longest_gap < 0.5 * duration, (longest_gap, duration)
