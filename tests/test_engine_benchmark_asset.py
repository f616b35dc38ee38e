"""The engine_benchmark asset materializes with sane throughput and latency metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from quant_assets.definitions import defs
from quant_assets.execution.engine_benchmark import EngineBenchmarkConfig, engine_benchmark
from resources.settings import data_dir


def test_engine_benchmark_records_throughput_latency_and_a_chart():
    result = dg.materialize(
        [engine_benchmark],
        run_config=dg.RunConfig({"engine_benchmark": EngineBenchmarkConfig(ops=50_000, repeats=2)}),
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("engine_benchmark")
    meta: dict[str, Any] = {k: v.value for k, v in materialization.metadata.items()}

    assert meta["ops"] == 50_000
    assert meta["ops_per_s"] > 0
    assert 0 < meta["latency_p50_ns"] <= meta["latency_p99_ns"] <= meta["latency_p99_9_ns"]
    assert meta["latency_p99_9_ns"] <= meta["latency_max_ns"]
    assert meta["fills"] > 0 and meta["rejects"] > 0 and meta["cancels"] > 0
    assert meta["rejects_book_full"] == 0
    chart = Path(meta["latency_histogram"])
    assert chart == data_dir() / "reports" / "engine_benchmark.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| latency p99.9 |" in meta["summary"]


def test_engine_benchmark_is_in_the_execution_group():
    graph = defs.resolve_asset_graph()
    key = dg.AssetKey("engine_benchmark")
    assert graph.get(key).group_name == "execution"
    assert not graph.get(key).is_partitioned
