"""Plotly figures from the dashboard's frames (``data.py``); one function per chart.

Every function takes Polars frames and returns a ``go.Figure``; an empty frame gives an empty
state (no axes, a sentence saying which table is empty and which asset fills it), never an
error. Figures carry no height: the page gives each chart's container its height
(``layout.GRAPH_HEIGHTS``) and Plotly fills it. Money is in the account's currency (USD, "$"),
fractions are shown as percentages. Colours: one palette for sectors (the treemap, the stacked
bars and the sector risk use the same colour per sector), one for strategy categories, one for
severities.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, cast

import plotly.graph_objects as go
import polars as pl

from apps.dashboard.data import SEVERITY_METRICS
from quant_assets.monitoring.drift import Severity, severity_name

FONT = "Inter, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
INK = "#1f2a37"
MUTED = "#6b7280"
GRID = "#e5e7eb"
ACCENT = "#2563eb"
NEGATIVE = "#dc2626"
POSITIVE = "#059669"
WARN = "#d97706"
# a qualitative palette wide enough for the 11 GICS sectors plus unclassified names
SECTOR_PALETTE = (
    "#2563eb",
    "#059669",
    "#d97706",
    "#7c3aed",
    "#dc2626",
    "#0891b2",
    "#65a30d",
    "#db2777",
    "#4b5563",
    "#ca8a04",
    "#0d9488",
    "#9333ea",
)
CATEGORY_COLOURS = {"benchmark": "#9ca3af", "ML": ACCENT, "risk-based": "#0d9488"}
SEVERITY_COLOURS = {0: POSITIVE, 1: WARN, 2: NEGATIVE}
# the words the checks and the PDF use (quant_assets.monitoring.drift.severity_name)
SEVERITY_NAMES = {int(s): severity_name(float(s)) for s in Severity}
WINDOW_COLOURS = {30: "#93c5fd", 60: ACCENT, 90: "#1e3a8a"}
TAIL_COLOURS = {
    ("VaR", 95): "#fb923c",
    ("CVaR", 95): NEGATIVE,
    ("VaR", 99): "#a78bfa",
    ("CVaR", 99): "#6d28d9",
}
EMPTY_TEXT = "No data yet"
# the paper account's currency: every money figure of the page is in it
CURRENCY = "USD"
MONEY_HOVER = "$,.0f"  # d3 format of a money amount in a hover label


def usd(value: float, signed: bool = False) -> str:
    """A money amount in whole dollars: ``$1,234,567``, ``+$1,234`` / ``-$1,234`` when signed."""
    sign = "-" if value < 0 else "+" if signed else ""
    return f"{sign}${abs(value):,.0f}"


def sector_colours(sectors: Sequence[str]) -> dict[str, str]:
    """A fixed colour per sector name (sorted, so the same sector keeps its colour)."""
    names = sorted(set(sectors))
    return {s: SECTOR_PALETTE[i % len(SECTOR_PALETTE)] for i, s in enumerate(names)}


def _style(fig: go.Figure, title: str, **layout: Any) -> go.Figure:
    base: dict[str, Any] = {
        "title": {
            "text": title,
            "x": 0.01,
            "xanchor": "left",
            "font": {"size": 15, "color": INK},
        },
        "template": "plotly_white",
        "font": {"family": FONT, "size": 12, "color": INK},
        "margin": {"l": 56, "r": 20, "t": 52, "b": 44},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 1.0, "xanchor": "right"},
        "hoverlabel": {"font": {"family": FONT}},
    }
    fig.update_layout({**base, **layout})
    fig.update_xaxes(gridcolor=GRID, zeroline=False)
    fig.update_yaxes(gridcolor=GRID, zerolinecolor=GRID)
    return fig


def _daily_ticks(fig: go.Figure, dates: Sequence[date]) -> go.Figure:
    """Whole days on a short date axis (plotly would tick every few hours)."""
    if dates and (max(dates) - min(dates)).days <= 14:
        fig.update_xaxes(dtick=86_400_000, tickformat="%b %d")
    return fig


def empty_figure(title: str, message: str) -> go.Figure:
    """A figure with no axes and ``message`` in the middle: the empty state of a panel."""
    fig = go.Figure()
    _style(fig, title)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.add_annotation(
        text=f"<b>{EMPTY_TEXT}</b><br>{message}",
        showarrow=False,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        font={"size": 13, "color": MUTED},
        align="center",
    )
    fig.update_layout(meta={"empty": True})
    return fig


def is_empty_figure(fig: go.Figure) -> bool:
    meta = fig.layout.meta
    return isinstance(meta, dict) and bool(meta.get("empty"))


# --- portfolio weights ----------------------------------------------------------------------


def weights_treemap(weights: pl.DataFrame) -> go.Figure:
    """The live book on its latest day: sectors, then tickers, sized by weight."""
    title = "Live book by sector and ticker"
    if weights.is_empty():
        return empty_figure(title, "target_weights has no live book (materialize target_weights)")
    day = cast(date, weights["date"].max())
    latest = weights.filter(pl.col("date") == day).filter(pl.col("weight") > 0)
    sectors = latest.group_by("sector").agg(pl.col("weight").sum()).sort("sector")
    colours = sector_colours(weights["sector"].unique().to_list())
    root = f"Live book {day}"
    ids = [root, *(f"s/{s}" for s in sectors["sector"]), *(f"t/{t}" for t in latest["ticker"])]
    labels = [root, *sectors["sector"].to_list(), *latest["ticker"].to_list()]
    parents = ["", *([root] * sectors.height), *(f"s/{s}" for s in latest["sector"])]
    values = [
        float(latest["weight"].sum()),
        *sectors["weight"].to_list(),
        *latest["weight"].to_list(),
    ]
    marker_colours = [
        "#f3f4f6",
        *(colours[s] for s in sectors["sector"]),
        *(colours[s] for s in latest["sector"]),
    ]
    fig = go.Figure(
        go.Treemap(
            ids=ids,
            labels=labels,
            parents=parents,
            values=values,
            branchvalues="total",
            marker={"colors": marker_colours, "line": {"color": "white", "width": 1}},
            texttemplate="<b>%{label}</b><br>%{value:.1%}",
            hovertemplate="%{label}<br>weight %{value:.2%}<extra></extra>",
            maxdepth=3,
        )
    )
    return _style(fig, f"{title} · {day}", margin={"l": 8, "r": 8, "t": 52, "b": 8})


def weights_over_time(weights: pl.DataFrame) -> go.Figure:
    """Sector weights of the live book per day, stacked (the rest is cash)."""
    title = "Live book sector weights over time"
    if weights.is_empty():
        return empty_figure(title, "target_weights has no live book (materialize target_weights)")
    by_sector = (
        weights.group_by("date", "sector").agg(pl.col("weight").sum()).sort("sector", "date")
    )
    colours = sector_colours(by_sector["sector"].to_list())
    fig = go.Figure()
    for (sector,), rows in by_sector.group_by("sector", maintain_order=True):
        fig.add_bar(
            x=rows["date"].to_list(),
            y=rows["weight"].to_list(),
            name=str(sector),
            marker_color=colours[str(sector)],
            hovertemplate=f"{sector}<br>%{{x}}: %{{y:.1%}}<extra></extra>",
        )
    return _style(
        fig,
        title,
        barmode="stack",
        bargap=0.05,
        yaxis={"tickformat": ".0%", "title": "weight, % of NAV"},
        legend={"orientation": "v", "x": 1.02, "xanchor": "left", "y": 1.0, "yanchor": "top"},
    )


# --- risk decomposition ---------------------------------------------------------------------


def _shares(rows: pl.DataFrame) -> pl.DataFrame:
    total_risk = rows["risk_contribution"].sum()
    total_weight = rows["weight"].sum()
    return rows.with_columns(
        (pl.col("risk_contribution") / (total_risk if total_risk else 1.0)).alias("risk_share"),
        (pl.col("weight") / (total_weight if total_weight else 1.0)).alias("weight_share"),
    )


def risk_by_sector(contributions: pl.DataFrame) -> go.Figure:
    """Share of capital vs share of volatility (Euler contributions) per sector."""
    title = "Risk decomposition by sector"
    rows = contributions.filter(pl.col("level") == "sector")
    if rows.is_empty():
        return empty_figure(title, "risk_contributions is empty (materialize risk_metrics)")
    rows = _shares(rows).sort("risk_share", descending=True)
    colours = sector_colours(rows["name"].to_list())
    fig = go.Figure()
    fig.add_bar(
        x=rows["name"].to_list(),
        y=rows["weight_share"].to_list(),
        name="share of capital",
        marker={"color": "#cbd5e1"},
        hovertemplate="%{x}<br>capital %{y:.1%}<extra></extra>",
    )
    fig.add_bar(
        x=rows["name"].to_list(),
        y=rows["risk_share"].to_list(),
        name="share of volatility",
        marker={"color": [colours[n] for n in rows["name"]]},
        customdata=rows["risk_contribution"].to_list(),
        hovertemplate="%{x}<br>risk %{y:.1%} (%{customdata:.2%} vol)<extra></extra>",
    )
    return _style(fig, title, barmode="group", yaxis={"tickformat": ".0%", "title": "% of total"})


def risk_by_ticker(contributions: pl.DataFrame, top: int = 15) -> go.Figure:
    """The ``top`` tickers by Euler volatility contribution, with their weight."""
    title = f"Top {top} tickers by risk contribution"
    rows = contributions.filter(pl.col("level") == "ticker")
    if rows.is_empty():
        return empty_figure(title, "risk_contributions is empty (materialize risk_metrics)")
    rows = _shares(rows).sort("risk_contribution", descending=True).head(top).reverse()
    fig = go.Figure()
    fig.add_bar(
        y=rows["name"].to_list(),
        x=rows["weight_share"].to_list(),
        name="share of capital",
        orientation="h",
        marker={"color": "#cbd5e1"},
        hovertemplate="%{y}<br>capital %{x:.2%}<extra></extra>",
    )
    fig.add_bar(
        y=rows["name"].to_list(),
        x=rows["risk_share"].to_list(),
        name="share of volatility",
        orientation="h",
        marker={"color": ACCENT},
        customdata=rows["risk_contribution"].to_list(),
        hovertemplate="%{y}<br>risk %{x:.2%} (%{customdata:.2%} vol)<extra></extra>",
    )
    return _style(
        fig,
        title,
        barmode="group",
        xaxis={"tickformat": ".0%", "title": "% of total"},
        bargap=0.25,
    )


# --- performance ----------------------------------------------------------------------------


def rolling_sharpe_figure(sharpe: pl.DataFrame, source: str) -> go.Figure:
    """Rolling 30/60/90-session Sharpe ratio of the live book."""
    title = "Rolling Sharpe ratio (annualised)"
    if sharpe.is_empty():
        return empty_figure(title, "no rolling Sharpe in drift_summary and too little nav history")
    fig = go.Figure()
    for (window,), rows in sharpe.sort("window", "date").group_by("window", maintain_order=True):
        fig.add_scatter(
            x=rows["date"].to_list(),
            y=rows["sharpe"].to_list(),
            mode="lines",
            name=f"{window} sessions",
            line={"color": WINDOW_COLOURS.get(int(window), MUTED), "width": 2},
            hovertemplate=f"{window}d<br>%{{x}}: %{{y:.2f}}<extra></extra>",
        )
    fig.add_hline(y=0, line={"color": MUTED, "width": 1, "dash": "dot"})
    label = {"drift_summary": "from drift_report", "nav": "from the NAV"}.get(source, source)
    _style(fig, f"{title} · {label}", yaxis={"title": "Sharpe (annualised)"})
    return _daily_ticks(fig, sharpe["date"].to_list())


def drawdown_figure(nav: pl.DataFrame) -> go.Figure:
    """The paper account's drawdown from its running NAV peak."""
    title = "Drawdown of the paper account"
    if nav.is_empty():
        return empty_figure(title, "nav is empty (materialize paper_orders, positions, nav)")
    worst = float(nav["drawdown"].min())  # type: ignore[arg-type]
    fig = go.Figure(
        go.Scatter(
            x=nav["date"].to_list(),
            y=nav["drawdown"].to_list(),
            mode="lines",
            fill="tozeroy",
            name="drawdown",
            line={"color": NEGATIVE, "width": 1.5},
            fillcolor="rgba(220,38,38,0.15)",
            customdata=nav["nav"].to_list(),
            hovertemplate=(
                f"%{{x}}<br>drawdown %{{y:.2%}}<br>NAV %{{customdata:{MONEY_HOVER}}}<extra></extra>"
            ),
        )
    )
    _style(
        fig,
        f"{title} · max {worst:.1%}",
        yaxis={"tickformat": ".1%", "title": "% below the NAV peak", "rangemode": "tozero"},
        showlegend=False,
    )
    return _daily_ticks(fig, nav["date"].to_list())


def tail_risk_figure(tail: pl.DataFrame, method: str = "historical") -> go.Figure:
    """The live book's one-day VaR and CVaR at 95% and 99% by one estimation method."""
    pretty = method.replace("_", " ")
    title = f"One-day VaR / CVaR of the live book · {pretty}"
    rows = tail.filter(pl.col("method") == method)
    if rows.is_empty():
        return empty_figure(title, "risk_metrics has no live-book VaR (materialize risk_metrics)")
    fig = go.Figure()
    for (level, measure), part in rows.sort("level", "measure", "date").group_by(
        "level", "measure", maintain_order=True
    ):
        fig.add_scatter(
            x=part["date"].to_list(),
            y=part["value"].to_list(),
            mode="lines",
            name=f"{measure} {level}%",
            line={
                "color": TAIL_COLOURS.get((str(measure), int(level)), MUTED),
                "width": 2,
                "dash": "solid" if measure == "CVaR" else "dash",
            },
            hovertemplate=f"{measure} {level}%<br>%{{x}}: %{{y:.2%}}<extra></extra>",
        )
    _style(fig, title, yaxis={"tickformat": ".1%", "title": "one-day loss, % of NAV"})
    return _daily_ticks(fig, rows["date"].to_list())


# --- backtest -------------------------------------------------------------------------------

BACKTEST_EMPTY = "no backtest stored: the note above says how to run it"


def backtest_sharpe_figure(backtest: pl.DataFrame) -> go.Figure:
    """Sharpe ratio of every strategy of the last backtest, best first."""
    title = "Backtest: Sharpe ratio per strategy"
    if backtest.is_empty():
        return empty_figure(title, BACKTEST_EMPTY)
    rows = backtest.filter(pl.col("sharpe").is_not_null())
    fig = go.Figure()
    for category, colour in CATEGORY_COLOURS.items():
        part = rows.filter(pl.col("category") == category)
        if part.is_empty():
            continue
        fig.add_bar(
            x=part["strategy"].to_list(),
            y=part["sharpe"].to_list(),
            name=category,
            marker_color=colour,
            customdata=part.select("cagr", "max_drawdown", "dsr").rows(),
            hovertemplate=(
                "%{x}<br>Sharpe %{y:.2f}<br>CAGR %{customdata[0]:.1%}"
                "<br>max DD %{customdata[1]:.1%}<br>DSR %{customdata[2]:.2f}<extra></extra>"
            ),
        )
    order = rows["strategy"].to_list()
    return _style(
        fig,
        title,
        xaxis={"categoryorder": "array", "categoryarray": order, "tickangle": -35},
        yaxis={"title": "Sharpe (annualised)"},
        margin={"l": 56, "r": 20, "t": 52, "b": 120},
    )


def backtest_equity_figure(equity: pl.DataFrame) -> go.Figure:
    """Value of one dollar invested in each plotted strategy of the last backtest, net of
    costs (``data.BACKTEST_PLOTTED`` best by Sharpe, then the benchmarks)."""
    title = "Backtest: value of $1 invested, net of costs"
    if equity.is_empty():
        return empty_figure(title, BACKTEST_EMPTY)
    fig = go.Figure()
    for (strategy,), rows in equity.group_by("strategy", maintain_order=True):
        benchmark = str(strategy).startswith("benchmark")
        fig.add_scatter(
            x=rows["date"].to_list(),
            y=rows["equity"].to_list(),
            mode="lines",
            name=str(strategy),
            line={"width": 1.5, "dash": "dot" if benchmark else "solid"},
            hovertemplate=f"{strategy}<br>%{{x}}: %{{y:$.3f}}<extra></extra>",
        )
    _style(
        fig,
        title,
        yaxis={"tickprefix": "$", "tickformat": ".2f", "title": "USD"},
        legend={"orientation": "h", "yanchor": "top", "y": -0.12, "x": 0.0, "xanchor": "left"},
        margin={"l": 56, "r": 20, "t": 52, "b": 90},
    )
    return _daily_ticks(fig, equity["date"].to_list())


# --- drift ----------------------------------------------------------------------------------


def drift_severity_figure(severity: pl.DataFrame, sessions: int = 60) -> go.Figure:
    """Severity (OK / WARN / ERROR; blank: not evaluated) of each drift family over the last
    ``sessions`` days."""
    title = "Drift severity by day"
    if severity.is_empty():
        return empty_figure(title, "drift_summary is empty (materialize drift_report)")
    rows = severity.tail(sessions)
    names = {
        "feature_severity": "features",
        "prediction_severity": "predictions",
        "explanation_severity": "explanations",
    }
    z = [[v if v is None else int(v) for v in rows[m].to_list()] for m in SEVERITY_METRICS]
    scale = [
        [0.0, SEVERITY_COLOURS[0]],
        [0.333, SEVERITY_COLOURS[0]],
        [0.334, SEVERITY_COLOURS[1]],
        [0.666, SEVERITY_COLOURS[1]],
        [0.667, SEVERITY_COLOURS[2]],
        [1.0, SEVERITY_COLOURS[2]],
    ]
    text = [[SEVERITY_NAMES.get(v, "") if v is not None else "" for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            x=rows["date"].to_list(),
            y=[names[m] for m in SEVERITY_METRICS],
            z=z,
            text=text,
            zmin=0,
            zmax=2,
            colorscale=scale,
            showscale=False,
            xgap=2,
            ygap=2,
            hovertemplate="%{y} on %{x}: %{text}<extra></extra>",
        )
    )
    return _style(fig, title, xaxis={"type": "category", "nticks": 8})


def top_drifted_features(features: pl.DataFrame, top: int = 15) -> go.Figure:
    """The latest drift day's features with the largest PSI (drifted ones in red)."""
    title = f"Top {top} drifted features (PSI, latest report)"
    if features.is_empty():
        return empty_figure(title, "feature_drift is empty (materialize drift_report)")
    rows = features.filter(pl.col("psi").is_not_null()).head(top).reverse()
    fig = go.Figure(
        go.Bar(
            y=rows["feature"].to_list(),
            x=rows["psi"].to_list(),
            orientation="h",
            marker={"color": [NEGATIVE if d else "#94a3b8" for d in rows["drifted"]]},
            customdata=rows.select("p_adjusted", "ks_statistic", "js_distance").rows(),
            hovertemplate=(
                "%{y}<br>PSI %{x:.3f}<br>family-wise p %{customdata[0]:.3g}"
                "<br>KS %{customdata[1]:.3f}<br>JS %{customdata[2]:.3f}<extra></extra>"
            ),
        )
    )
    fig.add_vline(x=0.1, line={"color": WARN, "width": 1, "dash": "dot"})
    return _style(fig, title, xaxis={"title": "PSI"}, showlegend=False)


# --- model deployment -----------------------------------------------------------------------

DEPLOYMENT_EMPTY = (
    "no challenger is shadowed: shadow_record fills when a weekly version passes the gate"
)


def shadow_record_figure(equity: pl.DataFrame) -> go.Figure:
    """The value of $1 in the champion's and the challenger's books since the shadow began
    (``data.shadow_equity``), net of simulated costs."""
    title = "Shadow record: value of $1, champion vs challenger"
    if equity.is_empty():
        return empty_figure(title, DEPLOYMENT_EMPTY)
    fig = go.Figure()
    colours = {"champion": ACCENT, "challenger": WARN}
    for (book,), rows in equity.group_by("book", maintain_order=True):
        role = str(book).split(" ")[0]
        fig.add_scatter(
            x=rows["date"].to_list(),
            y=rows["equity"].to_list(),
            mode="lines",
            name=str(book),
            line={"width": 2, "color": colours.get(role, MUTED)},
            hovertemplate=f"{book}<br>%{{x}}: %{{y:$.4f}}<extra></extra>",
        )
    _style(
        fig,
        title,
        yaxis={"tickprefix": "$", "tickformat": ".3f", "title": "USD"},
        legend={"orientation": "h", "yanchor": "top", "y": -0.12, "x": 0.0, "xanchor": "left"},
        margin={"l": 60, "r": 20, "t": 52, "b": 80},
    )
    return _daily_ticks(fig, equity["date"].to_list())
