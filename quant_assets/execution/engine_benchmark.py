"""The matching engine's benchmark: a fixed mixed command stream through the binding's batch
API, recording throughput and per-operation latency percentiles (timed inside Rust)."""

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import numpy.typing as npt
import quant_engine as qe

from quant_assets import charts
from resources.settings import data_dir

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99_9": 99.9}


class EngineBenchmarkConfig(dg.Config):
    """How much to run: ``ops`` commands of the mixed stream (60% limits near the touch, 25%
    cancels, 10% market/IOC, 5% FOK), drawn from ``seed``; throughput is the best of
    ``repeats`` runs, each on a fresh book."""

    ops: int = 1_000_000
    seed: int = 7
    repeats: int = 3
    # the stream keeps ~25k orders resting; the book's arena and id map are sized by this, and a
    # bigger one is slower (more cache misses): size it to the stream
    max_orders: int = 1 << 16


def latency_chart(samples: npt.NDArray[np.uint64], marks: dict[str, float], path: str) -> None:
    """A log-log histogram of per-op latencies with the percentiles marked."""
    fig, ax = charts.figure(9, 4.5)
    values = np.maximum(samples.astype(np.float64), 1.0)
    bins = np.logspace(np.log10(values.min()), np.log10(values.max() * 1.01), 80).tolist()
    ax.hist(values, bins=bins, color=charts.BLUE, alpha=0.85)
    ax.set_xscale("log")
    ax.set_yscale("log")
    marked = (charts.GREEN, charts.AMBER, charts.RED, charts.SERIES[4])
    for (name, value), color in zip(marks.items(), marked, strict=False):
        ax.axvline(
            value,
            color=color,
            linestyle="--",
            linewidth=1.2,
            label=f"{name.replace('_', '.')} {value:,.0f} ns",
        )
    ax.set_xlabel("latency per operation (ns, timed in Rust)", fontsize=charts.TICK_SIZE)
    ax.set_ylabel("operations", fontsize=charts.TICK_SIZE)
    charts.title(ax, f"matching engine latency, {len(samples):,} mixed operations")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=charts.TICK_SIZE)
    charts.save_png(fig, Path(path))


def _best_batch(
    stream: qe.OrderStream, config: EngineBenchmarkConfig
) -> tuple[float, Mapping[str, Any], int]:
    """Seconds of the fastest of ``repeats`` batch runs, each on a fresh book, with the last
    run's result and the orders resting at its end."""
    timings = []
    for _ in range(config.repeats):
        book = qe.OrderBook(stream.min_price, stream.max_price, config.max_orders)
        start = time.perf_counter()
        result = book.process_batch(*stream.columns())
        timings.append(time.perf_counter() - start)
    return min(timings), result, len(book)


def _latency_marks(samples: npt.NDArray[np.uint64]) -> dict[str, float]:
    return {
        name: float(value)
        for name, value in zip(
            PERCENTILES, np.percentile(samples, list(PERCENTILES.values())), strict=True
        )
    }


def _summary_table(
    config: EngineBenchmarkConfig,
    ops_per_s: float,
    marks: dict[str, float],
    samples: npt.NDArray[np.uint64],
    overhead: int,
    result: Mapping[str, Any],
) -> str:
    """The benchmark as a markdown table."""
    rows = [
        "| metric | value |",
        "| --- | --- |",
        f"| operations | {config.ops:,} |",
        f"| throughput (best of {config.repeats}) | {ops_per_s:,.0f} ops/s |",
        *(
            f"| latency {name.replace('_', '.')} | {value:,.0f} ns |"
            for name, value in marks.items()
        ),
        f"| latency max | {int(samples.max()):,} ns |",
        f"| clock overhead (in every sample) | {overhead} ns |",
        f"| fills | {result['fills']:,} |",
        f"| rejects (book full) | {result['rejected']:,} "
        f"({result['rejects_by_reason']['book_full']:,}) |",
        f"| cancels | {result['cancelled']:,} |",
    ]
    return "\n".join(rows)


@dg.asset(group_name="execution", kinds={"rust", "numpy"})
def engine_benchmark(
    context: dg.AssetExecutionContext, config: EngineBenchmarkConfig
) -> dg.MaterializeResult:
    """Throughput (ops/s, batch API, GIL released) and latency percentiles of the Rust matching
    engine on a deterministic mixed stream, with a latency histogram."""
    if config.ops < 1 or config.repeats < 1:
        raise ValueError(f"ops and repeats must be >= 1, got {config.ops} and {config.repeats}")
    stream = qe.mixed_stream(config.ops, seed=config.seed)
    best, result, resting = _best_batch(stream, config)
    book_full = result["rejects_by_reason"]["book_full"]
    if book_full:
        context.log.warning(f"{book_full:,} book_full rejects: raise max_orders")
    ops_per_s = config.ops / best
    book = qe.OrderBook(stream.min_price, stream.max_price, config.max_orders)
    samples = book.latency_profile(*stream.columns())
    marks = _latency_marks(samples)
    overhead = qe.clock_overhead_ns()
    context.log.info(
        f"{config.ops:,} ops: {ops_per_s / 1e6:.1f} M ops/s; latency p50 {marks['p50']:.0f} ns, "
        f"p99 {marks['p99']:.0f} ns, p99.9 {marks['p99_9']:.0f} ns"
    )
    path = data_dir() / "reports" / "engine_benchmark.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    latency_chart(samples, marks, str(path))
    return dg.MaterializeResult(
        metadata={
            "ops": config.ops,
            "seed": config.seed,
            "ops_per_s": dg.MetadataValue.float(ops_per_s),
            "best_elapsed_s": dg.MetadataValue.float(best),
            "latency_p50_ns": dg.MetadataValue.float(marks["p50"]),
            "latency_p90_ns": dg.MetadataValue.float(marks["p90"]),
            "latency_p99_ns": dg.MetadataValue.float(marks["p99"]),
            "latency_p99_9_ns": dg.MetadataValue.float(marks["p99_9"]),
            "latency_max_ns": int(samples.max()),
            "latency_mean_ns": dg.MetadataValue.float(float(samples.mean())),
            "clock_overhead_ns": overhead,
            "fills": result["fills"],
            "rejects": result["rejected"],
            "rejects_book_full": book_full,
            "max_orders": config.max_orders,
            "cancels": result["cancelled"],
            "resting_orders_at_end": resting,
            "latency_histogram": dg.MetadataValue.path(str(path)),
            "summary": dg.MetadataValue.md(
                _summary_table(config, ops_per_s, marks, samples, overhead, result)
            ),
        }
    )
