"""The raw_bars chart linked from its metadata: the benchmark's close and the universe coverage
of every session in the run's window."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and in tests

import matplotlib.pyplot as plt
import polars as pl


def raw_bars_chart(bars: pl.DataFrame, benchmark: str, universe_size: int, path: Path) -> Path:
    """Write a two-panel PNG for ``bars`` (one run's clean window) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    index = bars.filter(pl.col("ticker") == benchmark).select("date", "close").sort("date")
    per_day = bars.group_by("date").len().sort("date")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5), sharex=True, height_ratios=(2, 1))
    top.plot(index["date"].to_list(), index["close"].to_list(), color="#1f4e79", linewidth=1.2)
    top.set_title(f"{benchmark} close")
    top.grid(alpha=0.3)
    coverage = (per_day["len"] / max(universe_size, 1)).to_list()
    bottom.plot(per_day["date"].to_list(), coverage, color="#2e7d32", linewidth=1.0)
    bottom.set_ylim(0, 1.05)
    bottom.set_title("share of the universe with a clean bar")
    bottom.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
