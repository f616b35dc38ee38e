"""The one style of the platform's static charts: the PDF report's, the PNGs linked from asset
metadata (``raw_bars``, ``backtest``) and the TFT's interpretation plot.

Charts are drawn with matplotlib's object API: a :class:`matplotlib.figure.Figure` made by
:func:`figure`, never ``pyplot``, so there is no global figure state to leak between runs or
threads, nothing to close, and no display backend is needed (a bare ``Figure`` renders with the
Agg canvas). Every axis gets :func:`style_axis` (light grid, no top/right spines, small ticks,
titles on the left) and the colours come from the palette below. The interactive dashboard
(``apps/dashboard``) draws with Plotly and does not use this module.
"""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure

if TYPE_CHECKING:
    import dagster as dg

# the palette (the PDF's tables use the same hex values)
INK = "#1f2937"
MUTED = "#6b7280"
BLUE = "#1d4ed8"
RED = "#b91c1c"
GREEN = "#15803d"
AMBER = "#b45309"
GREY = "#9ca3af"
# the colour cycle of charts with several series
SERIES = (BLUE, RED, GREEN, AMBER, "#7c3aed", "#0e7490", "#be185d", MUTED)

TITLE_SIZE = 9
TICK_SIZE = 7
# resolution of PNGs shown in a browser (asset metadata, artifacts) and printed in the PDF
SCREEN_DPI = 90
PRINT_DPI = 150


def figure(
    width: float, height: float, rows: int = 1, cols: int = 1, **grid: Any
) -> tuple[Figure, Any]:
    """A ``width`` x ``height`` inch figure and its axes (one ``Axes``, or an array of them
    for ``rows`` x ``cols``; ``grid`` goes to :meth:`Figure.subplots`, e.g. ``sharex``), every
    axis styled by :func:`style_axis`."""
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(rows, cols, squeeze=True, **grid)
    for axis in fig.axes:
        style_axis(axis)
    return fig, axes


def style_axis(axis: Axes) -> None:
    """Light grid, no top/right spines, small tick labels, the palette's colour cycle."""
    axis.grid(alpha=0.3, linewidth=0.6)
    for side in ("top", "right"):
        axis.spines[side].set_visible(False)
    axis.tick_params(labelsize=TICK_SIZE)
    axis.set_prop_cycle(color=SERIES)


def title(axis: Axes, text: str) -> None:
    axis.set_title(text, fontsize=TITLE_SIZE, loc="left")


def date_axis(axis: Axes) -> None:
    """Concise date ticks (3 to 8 of them) on the x axis of daily data, call after plotting:
    never finer than a day (a chart of a few sessions gets one tick per day, not hours)."""
    first, last = axis.dataLim.intervalx
    span_days = last - first if np.isfinite(first) and np.isfinite(last) else 0.0
    locator: mdates.DateLocator
    if span_days < 14:
        locator = mdates.DayLocator(interval=max(1, math.ceil(span_days / 6)))
        axis.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    else:
        locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
        axis.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axis.xaxis.set_major_locator(locator)
    axis.xaxis.get_offset_text().set_fontsize(TICK_SIZE)


def png(fig: Figure, dpi: int = SCREEN_DPI) -> bytes:
    """The figure laid out tightly and rendered as PNG bytes."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save_png(fig: Figure, path: Path, dpi: int = SCREEN_DPI) -> Path:
    """Write :func:`png` of the figure to ``path`` (parents created); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png(fig, dpi))
    return path


def png_metadata(image: bytes, alt: str) -> dg.MetadataValue:
    """PNG bytes as asset metadata: a markdown image with the PNG inline (a data URI), shown
    by the Dagster UI without any file server."""
    import dagster as dg  # here: the chart code itself (PDF, models) does not need Dagster

    encoded = base64.b64encode(image).decode()
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})")
