"""Python-side benchmark of the matching engine binding (quant_engine).

* Batch API throughput on the mixed benchmark stream (60% limits near the touch, 25% cancels,
  10% market/IOC, 5% FOK): orders/s of ``OrderBook.process_batch`` alone (arrays already
  built), and end to end with building the NumPy arrays included. Target: >= 10M orders/s.
* Per-call cost of the single-order API (``submit``/``cancel``/``best_bid``), in ns per call,
  next to the engine's own per-op time from ``latency_profile``: the difference is the binding's
  overhead (argument parsing, event objects, the list).

    uv run python benches/bench_engine_python.py [--ops 2000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import quant_engine as qe


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def batch_throughput(ops: int, repeats: int, seed: int, max_orders: int) -> None:
    gen = best_of(repeats, lambda: qe.mixed_stream(ops, seed=seed))
    stream = qe.mixed_stream(ops, seed=seed)
    batch_times = []
    for _ in range(repeats):
        book = qe.OrderBook(stream.min_price, stream.max_price, max_orders)
        start = time.perf_counter()
        result = book.process_batch(*stream.columns())
        batch_times.append(time.perf_counter() - start)
    batch = min(batch_times)
    print(f"mixed stream, {ops:,} ops, max_orders {max_orders:,} (best of {repeats}):")
    print(
        f"  fills {result['fills']:,}, rejects {result['rejected']:,} "
        f"(book_full {result['rejects_by_reason']['book_full']:,}), "
        f"cancels {result['cancelled']:,}, resting at end {len(book):,}"
    )
    print(f"  array creation (mixed_stream)   {gen * 1e3:8.1f} ms")
    print(f"  process_batch                   {batch * 1e3:8.1f} ms")
    print(f"  throughput, arrays excluded     {ops / batch / 1e6:8.2f} M orders/s")
    print(f"  throughput, arrays included     {ops / (batch + gen) / 1e6:8.2f} M orders/s")

    samples = qe.OrderBook(stream.min_price, stream.max_price, max_orders).latency_profile(
        *stream.columns()
    )
    p50, p99, p999 = np.percentile(samples, [50, 99, 99.9])
    print(
        f"  latency_profile: p50 {p50:.0f} ns, p99 {p99:.0f} ns, p99.9 {p999:.0f} ns "
        f"(clock pair {qe.clock_overhead_ns()} ns included)"
    )


def single_order_overhead(calls: int, repeats: int) -> None:
    print(f"single-order API, {calls:,} calls each (best of {repeats}):")
    lo, hi = 1, 1_000_000
    prices = [10_000 + (i % 500) for i in range(calls)]  # bids far below the asks: no trades

    def run_submits(side: str | int, order_type: str | int) -> tuple[float, qe.OrderBook]:
        best = float("inf")
        book = qe.OrderBook(lo, hi, calls + 10)
        for _ in range(repeats):
            book = qe.OrderBook(lo, hi, calls + 10)
            submit = book.submit
            start = time.perf_counter()
            for i, price in enumerate(prices, 1):
                submit(i, side, order_type, price, 10)
            best = min(best, time.perf_counter() - start)
        return best, book

    codes, book = run_submits(0, 0)
    strings, _ = run_submits("buy", "limit")
    print(f"  submit (int codes)       {codes / calls * 1e9:7.0f} ns/call (resting limit)")
    print(f"  submit (strings)         {strings / calls * 1e9:7.0f} ns/call")

    ids = list(range(1, calls + 1))
    cancel = book.cancel
    start = time.perf_counter()
    for i in ids:
        cancel(i)
    cancels = time.perf_counter() - start
    print(f"  cancel                   {cancels / calls * 1e9:7.0f} ns/call")

    book.submit(1, 0, 0, 10_000, 10)
    bid = book.best_bid
    t = best_of(repeats, lambda: [bid() for _ in range(calls)])
    print(f"  best_bid                 {t / calls * 1e9:7.0f} ns/call")

    empty = best_of(repeats, lambda: [None for _ in range(calls)])
    print(f"  (empty Python loop       {empty / calls * 1e9:7.0f} ns/iteration)")

    # the engine's own time for the same submits, timed in Rust
    n = len(prices)
    native = qe.OrderBook(lo, hi, calls + 10).latency_profile(
        np.zeros(n, np.uint8),
        np.arange(1, n + 1, dtype=np.uint64),
        np.zeros(n, np.uint8),
        np.zeros(n, np.uint8),
        np.asarray(prices, dtype=np.int64),
        np.full(n, 10, np.uint64),
    )
    engine_ns = float(np.median(native)) - qe.clock_overhead_ns()
    print(f"  engine time per submit   {engine_ns:7.0f} ns (latency_profile median - clock)")
    print(
        f"  binding overhead         {codes / calls * 1e9 - engine_ns:7.0f} ns/call "
        "(submit with codes - engine time, Python call and loop included)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2_000_000)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--max-orders",
        type=int,
        default=1 << 16,
        help="book capacity (the stream keeps ~25k orders resting; a bigger arena is slower: "
        "its id map and order slots spread over more cache)",
    )
    args = parser.parse_args()
    batch_throughput(args.ops, args.repeats, args.seed, args.max_orders)
    single_order_overhead(args.calls, args.repeats)


if __name__ == "__main__":
    main()
