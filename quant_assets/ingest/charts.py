"""The raw_bars chart linked from its metadata: the benchmark's close and the universe coverage
of every session in the run's window (drawn in the platform's style, :mod:`quant_assets.charts`)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from quant_assets import charts


def raw_bars_chart(bars: pl.DataFrame, benchmark: str, universe_size: int, path: Path) -> Path:
    """Write a two-panel PNG for ``bars`` (one run's clean window) to ``path``."""
    index = bars.filter(pl.col("ticker") == benchmark).select("date", "close").sort("date")
    per_day = bars.group_by("date").len().sort("date")
    figure, (top, bottom) = charts.figure(9, 5, rows=2, sharex=True, height_ratios=(2, 1))
    top.plot(index["date"].to_list(), index["close"].to_list(), color=charts.BLUE, linewidth=1.2)
    charts.title(top, f"{benchmark} close")
    coverage = (per_day["len"] / max(universe_size, 1)).to_list()
    bottom.plot(per_day["date"].to_list(), coverage, color=charts.GREEN, linewidth=1.0)
    bottom.set_ylim(0, 1.05)
    charts.title(bottom, "share of the universe with a clean bar")
    charts.date_axis(bottom)
    return charts.save_png(figure, path)
