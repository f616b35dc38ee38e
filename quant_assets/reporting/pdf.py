"""The daily report as a PDF, built from plain data (``ReportData``) with reportlab's platypus.

Nothing here reads the store: ``quant_assets/reporting/assets.py`` gathers one session's
figures and frames, this module only formats and lays them out, so it can be tested (and
reused, by the API) on any data. Charts are ``matplotlib.figure.Figure`` objects in the
platform's chart style (:mod:`quant_assets.charts`: no pyplot, no global state) rendered to PNG
in memory and placed as reportlab ``Image`` flowables.

Formatting: money with thousands separators and two decimals (``$1,234,567.89``, negative
``-$1,234.56``, P&L signed ``+$1,234.56``), fractions as percents with two decimals
(``12.34%``), a missing or non-finite number as ``n/a``. Only WinAnsi characters are used, so
the standard Helvetica font renders (and a text extractor reads back) every glyph.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
from matplotlib.figure import Figure
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import (
    Flowable,
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.doctemplate import BaseDocTemplate

from quant_assets import charts
from quant_core.conventions import MIN_ANNUALISED_RETURNS

NA = "n/a"
# the tables' palette: the charts' (quant_assets.charts) plus the table shades
INK = colors.HexColor(charts.INK)
MUTED = colors.HexColor(charts.MUTED)
ACCENT = colors.HexColor(charts.BLUE)
HEADER_BG = colors.HexColor("#1e3a8a")
STRIPE = colors.HexColor("#f3f4f6")
RULE = colors.HexColor("#d1d5db")
GOOD = colors.HexColor(charts.GREEN)
WARN = colors.HexColor(charts.AMBER)
BAD = colors.HexColor(charts.RED)
STATUS_COLOURS = {
    "OK": GOOD,
    "WITHIN": GOOD,
    "FILLED": GOOD,
    "WARN": WARN,
    "PARTIALLY_FILLED": WARN,
    "NOT EVALUATED": WARN,
    "NEW": WARN,
    "SUBMITTED": WARN,
    "ERROR": BAD,
    "BREACHED": BAD,
    "REJECTED": BAD,
    "CANCELLED": BAD,
}
PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 1.6 * cm
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
# rows of an order table before it is cut (the rest counted in a note)
MAX_ORDER_ROWS = 25


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def money(value: float | None, signed: bool = False) -> str:
    """``$1,234,567.89``; ``-$1,234.56``; ``+$12.00`` when ``signed``; ``n/a`` when missing."""
    if value is None or not _finite(value):
        return NA
    sign = "-" if value < 0 else ("+" if signed and value > 0 else "")
    return f"{sign}${abs(value):,.2f}"


def pct(value: float | None, signed: bool = False) -> str:
    """A fraction as a percent with two decimals: 0.1234 -> ``12.34%`` (``+12.34%`` signed)."""
    if value is None or not _finite(value):
        return NA
    return f"{value * 100:+,.2f}%" if signed else f"{value * 100:,.2f}%"


def number(value: float | None, decimals: int = 2) -> str:
    """A plain number with thousands separators (``1,234.57``), ``n/a`` when missing."""
    if value is None or not _finite(value):
        return NA
    return f"{value:,.{decimals}f}"


def price(value: float | None) -> str:
    """A share price: two decimals, no currency sign (the tables say USD)."""
    return number(value, 2)


@dataclass(frozen=True)
class KeyFigures:
    """The headline numbers of the session; fractions are fractions (0.01 = 1%)."""

    nav: float
    cash: float
    positions_value: float
    pnl: float
    gross_pnl: float
    cumulative_pnl: float
    ytd_return: float
    ytd_base_date: date
    max_drawdown: float
    current_drawdown: float
    volatility: float
    turnover: float
    fees: float
    traded_notional: float
    names: int
    sessions: int
    returns: int = 0  # daily NAV returns behind the volatility


@dataclass(frozen=True)
class ReportData:
    """Everything one session's report shows, as plain values and frames.

    * ``history``: ``date, nav, drawdown`` (drawdown <= 0) up to the day;
    * ``holdings``: ``ticker, sector, qty, close, market_value, weight, target_weight`` of the
      largest positions, largest first (``target_weight`` null when the name is not in the
      day's live book);
    * ``sectors``: ``sector, weight`` of the whole book, largest first;
    * ``fills``: the orders decided the previous session that filled during the day
      (``ticker, side, filled_qty, avg_fill_price, notional, fees, status``);
    * ``orders``: the day's own orders (``ticker, side, qty, reference_price, limit_price,
      status, filled_qty, reason``), decided at the close and filled the next session;
    * ``limits``: ``limit, figures, threshold, status`` (strings, status OK / BREACHED /
      NOT EVALUATED), ``drift``: ``measure, value, threshold, status`` (OK / WARN / ERROR / NOT EVALUATED);
    * ``live_book``: label -> text of the live book's allocation status, empty if none;
    * ``deployment``: label -> text of the session's model deployment (champion, challenger,
      stage, canary share, promotion test), empty if none; ``model_events``: ``date, version,
      event, reason`` of the latest deployment events up to the day, newest first.
    """

    day: date
    figures: KeyFigures
    history: pl.DataFrame
    holdings: pl.DataFrame
    sectors: pl.DataFrame
    fills: pl.DataFrame
    orders: pl.DataFrame
    limits: pl.DataFrame
    drift: pl.DataFrame
    fills_session: date | None = None
    live_book: dict[str, str] = field(default_factory=dict)
    positions_count: int = 0
    drift_note: str = ""
    generated_at: datetime | None = None
    deployment: dict[str, str] = field(default_factory=dict)
    model_events: pl.DataFrame = field(default_factory=pl.DataFrame)


# --- charts ---


def equity_chart(history: pl.DataFrame) -> Figure:
    """NAV over time (``history``: ``date, nav``)."""
    figure, axis = charts.figure(7.2, 2.3)
    dates, navs = history["date"].to_list(), history["nav"].to_list()
    axis.plot(
        dates,
        navs,
        color=charts.BLUE,
        linewidth=1.4,
        marker="o" if len(dates) < 30 else "",
        markersize=3,
    )
    axis.fill_between(dates, navs, min(navs) if navs else 0.0, color=charts.BLUE, alpha=0.08)
    charts.title(axis, "Equity curve (NAV, USD)")
    axis.yaxis.set_major_formatter(lambda v, _: f"${v:,.0f}")
    charts.date_axis(axis)
    return figure


def drawdown_chart(history: pl.DataFrame) -> Figure:
    """Drawdown from the running NAV peak (``history``: ``date, drawdown``, <= 0)."""
    figure, axis = charts.figure(7.2, 1.9)
    dates = history["date"].to_list()
    drawdowns = [100.0 * v for v in history["drawdown"].to_list()]
    axis.fill_between(dates, drawdowns, 0.0, color=charts.RED, alpha=0.35, linewidth=0)
    axis.plot(dates, drawdowns, color=charts.RED, linewidth=1.0)
    charts.title(axis, "Drawdown from the NAV peak")
    axis.yaxis.set_major_formatter(lambda v, _: f"{v:.1f}%")
    axis.set_ylim(top=0.0, bottom=min([*drawdowns, -0.5]) * 1.15)
    charts.date_axis(axis)
    return figure


def sector_chart(sectors: pl.DataFrame) -> Figure:
    """Horizontal bars of the book's sector weights (``sector, weight``), largest on top."""
    ordered = sectors.reverse()
    figure, axis = charts.figure(3.6, max(1.6, 0.28 * ordered.height + 0.7))
    weights = [100.0 * w for w in ordered["weight"].to_list()]
    names = ordered["sector"].to_list()
    shades = [charts.GREY if name == "Cash" else charts.BLUE for name in names]
    bars = axis.barh(names, weights, color=shades, alpha=0.85)
    axis.bar_label(bars, labels=[f"{w:.1f}%" for w in weights], fontsize=6, padding=2)
    charts.title(axis, "Sector weights (% of NAV)")
    axis.set_xlim(0, max([*weights, 1.0]) * 1.25)
    axis.grid(axis="y", visible=False)
    return figure


def _image(figure: Figure, width: float) -> Image:
    png = charts.png(figure, dpi=charts.PRINT_DPI)
    inches_w, inches_h = figure.get_size_inches()
    return Image(io.BytesIO(png), width=width, height=width * inches_h / inches_w)


# --- tables ---


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    return {
        "title": ParagraphStyle(
            "title", parent=base["Title"], fontSize=20, leading=24, alignment=TA_LEFT,
            textColor=INK, spaceAfter=2,
        ),
        "subtitle": ParagraphStyle(
            "subtitle", parent=base["Normal"], fontSize=9, textColor=MUTED, spaceAfter=10
        ),
        "h2": ParagraphStyle(
            "h2", parent=base["Heading2"], fontSize=12, leading=15, textColor=HEADER_BG,
            spaceBefore=10, spaceAfter=4,
        ),
        "body": ParagraphStyle("body", parent=base["Normal"], fontSize=8, leading=10, textColor=INK),
        "note": ParagraphStyle("note", parent=base["Normal"], fontSize=7, leading=9, textColor=MUTED),
        "cell": ParagraphStyle("cell", parent=base["Normal"], fontSize=7.5, leading=9, textColor=INK),
        "kpi_label": ParagraphStyle(
            "kpi_label", parent=base["Normal"], fontSize=7, leading=9, textColor=MUTED
        ),
        "kpi_value": ParagraphStyle(
            "kpi_value", parent=base["Normal"], fontName="Helvetica-Bold", fontSize=12,
            leading=15, textColor=INK,
        ),
    }  # fmt: skip


def _table(
    header: list[str],
    rows: list[list[str]],
    widths: list[float] | None = None,
    numeric_from: int = 1,
    status_column: int | None = None,
) -> Table:
    """A striped table with a dark header; columns from ``numeric_from`` right-aligned, the
    ``status_column`` coloured by its value."""
    table = Table([header, *rows], colWidths=widths, repeatRows=1, hAlign="LEFT")
    style: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 7.5),
        ("FONT", (0, 1), (-1, -1), "Helvetica", 7.5),
        ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_BG),
        ("TEXTCOLOR", (0, 1), (-1, -1), INK),
        ("ALIGN", (numeric_from, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LINEBELOW", (0, -1), (-1, -1), 0.6, RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 4),
        ("RIGHTPADDING", (0, 0), (-1, -1), 4),
    ]
    style += [("BACKGROUND", (0, i), (-1, i), STRIPE) for i in range(2, len(rows) + 1, 2)]
    if status_column is not None:
        style += [("ALIGN", (status_column, 0), (status_column, -1), "CENTER")]
        for i, row in enumerate(rows, start=1):
            colour = STATUS_COLOURS.get(row[status_column])
            if colour is not None:
                style += [
                    ("TEXTCOLOR", (status_column, i), (status_column, i), colour),
                    ("FONT", (status_column, i), (status_column, i), "Helvetica-Bold", 7.5),
                ]
    table.setStyle(TableStyle(style))
    return table


def _kpis(figures: KeyFigures, styles: dict[str, ParagraphStyle]) -> Table:
    def coloured(text: str, value: float) -> str:
        colour = GOOD if value > 0 else BAD if value < 0 else INK
        return f'<font color="{colour.hexval().replace("0x", "#")}">{text}</font>'

    cells = [
        ("NAV", money(figures.nav)),
        ("Daily P&amp;L", coloured(money(figures.pnl, signed=True), figures.pnl)),
        (
            "Cumulative P&amp;L",
            coloured(money(figures.cumulative_pnl, signed=True), figures.cumulative_pnl),
        ),
        (
            f"YTD return (since {figures.ytd_base_date.isoformat()})",
            coloured(pct(figures.ytd_return, signed=True), figures.ytd_return),
        ),
        ("Max drawdown", pct(figures.max_drawdown)),
        (
            f"Volatility (annualised, {figures.returns:,d} returns)",
            pct(figures.volatility)
            if math.isfinite(figures.volatility)
            else f"n/a: {figures.returns} of {MIN_ANNUALISED_RETURNS} returns",
        ),
        ("Turnover", pct(figures.turnover)),
        ("Positions", f"{figures.names:,d}"),
    ]
    grid = [
        [
            [Paragraph(label, styles["kpi_label"]), Paragraph(value, styles["kpi_value"])]
            for label, value in cells[row : row + 4]
        ]
        for row in (0, 4)
    ]
    table = Table(grid, colWidths=[CONTENT_WIDTH / 4] * 4, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 0.6, RULE),
                ("INNERGRID", (0, 0), (-1, -1), 0.6, RULE),
                ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#f9fafb")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
                ("LEFTPADDING", (0, 0), (-1, -1), 7),
            ]
        )
    )
    return table


def _account_table(figures: KeyFigures) -> Table:
    rows = [
        ["Cash", money(figures.cash), "Gross P&L (before fees)", money(figures.gross_pnl, True)],
        [
            "Positions value",
            money(figures.positions_value),
            "Fees",
            money(figures.fees),
        ],
        [
            "Current drawdown",
            pct(figures.current_drawdown),
            "Traded notional",
            money(figures.traded_notional),
        ],
        ["Sessions in the NAV history", f"{figures.sessions:,d}", "", ""],
    ]
    table = Table(rows, colWidths=[CONTENT_WIDTH * w for w in (0.27, 0.23, 0.27, 0.23)])
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), "Helvetica", 7.5),
                ("TEXTCOLOR", (0, 0), (-1, -1), INK),
                ("TEXTCOLOR", (0, 0), (0, -1), MUTED),
                ("TEXTCOLOR", (2, 0), (2, -1), MUTED),
                ("ALIGN", (1, 0), (1, -1), "RIGHT"),
                ("ALIGN", (3, 0), (3, -1), "RIGHT"),
                ("LINEBELOW", (0, 0), (-1, -2), 0.3, RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return table


# a frame table's column: its header, its share of the content width and its cell of a row
Column = tuple[str, float, Callable[[dict[str, Any]], Any]]


def _frame_table(frame: pl.DataFrame, columns: list[Column], status: str | None = None) -> Table:
    """``frame``'s rows through ``columns``; numbers from the third column on, right-aligned;
    the ``status`` column coloured by its value."""
    headers = [header for header, _, _ in columns]
    return _table(
        headers,
        [[cell(row) for _, _, cell in columns] for row in frame.iter_rows(named=True)],
        [share * CONTENT_WIDTH for _, share, _ in columns],
        numeric_from=2,
        status_column=None if status is None else headers.index(status),
    )


def _count(column: str) -> Callable[[dict[str, Any]], str]:
    return lambda r: f"{int(r[column]):,d}"


def _text(column: str) -> Callable[[dict[str, Any]], str]:
    return lambda r: str(r[column])


HOLDINGS_COLUMNS: list[Column] = [
    ("Ticker", 0.1, _text("ticker")),
    ("Sector", 0.26, lambda r: str(r["sector"] or NA)),
    ("Shares", 0.1, _count("qty")),
    ("Close", 0.12, lambda r: price(r["close"])),
    ("Market value", 0.18, lambda r: money(r["market_value"])),
    ("Weight", 0.12, lambda r: pct(r["weight"])),
    (
        "Target",
        0.12,
        lambda r: pct(r["target_weight"]) if r["target_weight"] is not None else "-",
    ),
]
FILLS_COLUMNS: list[Column] = [
    ("Ticker", 0.12, _text("ticker")),
    ("Side", 0.1, lambda r: str(r["side"]).upper()),
    ("Filled", 0.12, _count("filled_qty")),
    ("Avg price", 0.14, lambda r: price(r["avg_fill_price"])),
    ("Notional", 0.2, lambda r: money(r["notional"])),
    ("Fees", 0.12, lambda r: money(r["fees"])),
    ("Status", 0.2, _text("status")),
]


def _orders_columns(styles: dict[str, ParagraphStyle]) -> list[Column]:
    return [
        ("Ticker", 0.1, _text("ticker")),
        ("Side", 0.08, lambda r: str(r["side"]).upper()),
        ("Qty", 0.1, _count("qty")),
        ("Ref. close", 0.11, lambda r: price(r["reference_price"])),
        ("Limit", 0.11, lambda r: price(r["limit_price"])),
        ("Status", 0.17, _text("status")),
        ("Filled", 0.1, _count("filled_qty")),
        ("Reason", 0.23, lambda r: Paragraph(str(r["reason"] or ""), styles["note"])),
    ]


def _sector_table(sectors: pl.DataFrame, width: float) -> Table:
    rows = [[str(s), pct(w)] for s, w in sectors.select("sector", "weight").iter_rows()]
    return _table(["Sector", "Weight"], rows, [width * 0.68, width * 0.32])


def _cut(frame: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    if frame.height <= MAX_ORDER_ROWS:
        return frame, ""
    return frame.head(MAX_ORDER_ROWS), f"... and {frame.height - MAX_ORDER_ROWS} more."


def _status_table(
    frame: pl.DataFrame,
    header: list[str],
    shares: tuple[float, ...],
    styles: dict[str, ParagraphStyle],
    wrap: tuple[int, ...] = (),
) -> Table:
    """``frame``'s string columns, the ``wrap`` ones as paragraphs (long text wraps in its
    cell), the last one a coloured status."""
    rows: list[list[Any]] = [
        [Paragraph(str(v), styles["cell"]) if i in wrap else str(v) for i, v in enumerate(row)]
        for row in frame.iter_rows()
    ]
    return _table(
        header,
        rows,
        [w * CONTENT_WIDTH for w in shares],
        numeric_from=1,
        status_column=len(header) - 1,
    )


# --- the document ---


def _footer(day: date) -> Any:
    def draw(canvas: Any, doc: BaseDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.setFillColor(MUTED)
        canvas.setStrokeColor(RULE)
        canvas.line(MARGIN, MARGIN - 0.35 * cm, PAGE_WIDTH - MARGIN, MARGIN - 0.35 * cm)
        canvas.drawString(MARGIN, MARGIN - 0.7 * cm, f"Quant platform - daily report {day}")
        canvas.drawRightString(PAGE_WIDTH - MARGIN, MARGIN - 0.7 * cm, f"Page {doc.page}")
        canvas.restoreState()

    return draw


def report_story(data: ReportData) -> list[Flowable]:
    """The report's flowables, in order: the header and key figures, performance, holdings
    and sectors, orders, risk limits and drift."""
    styles = _styles()
    return [
        *_header(data, styles),
        *_performance(data, styles),
        *_holdings(data, styles),
        *_executed_orders(data, styles),
        *_risk_and_drift(data, styles),
        *_deployment(data, styles),
    ]


def _header(data: ReportData, styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    """Title, subtitle (the live book's method, when known), the key figures and the account."""
    generated = (data.generated_at or datetime.now()).strftime("%Y-%m-%d %H:%M")
    live = data.live_book
    subtitle = (
        f"Paper account at the close of {data.day:%A %d %B %Y}"
        + (f" - live book {live['method']}" if "method" in live else "")
        + f" - generated {generated}"
    )
    return [
        Paragraph(f"Daily report {data.day.isoformat()}", styles["title"]),
        Paragraph(subtitle, styles["subtitle"]),
        _kpis(data.figures, styles),
        Spacer(1, 6),
        _account_table(data.figures),
    ]


def _performance(data: ReportData, styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    return [
        Paragraph("Performance", styles["h2"]),
        _image(equity_chart(data.history), CONTENT_WIDTH),
        _image(drawdown_chart(data.history), CONTENT_WIDTH),
        Paragraph(
            "YTD return: NAV against the last NAV of the previous year, or the first NAV of the "
            "year when the account started this year. Maximum drawdown and volatility (daily "
            "NAV returns, x sqrt(252)) over the whole NAV history to the day; the volatility is "
            f"shown from {MIN_ANNUALISED_RETURNS} returns on.",
            styles["note"],
        ),
    ]


def _holdings(data: ReportData, styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    """The largest holdings, then the sector weights' table and chart side by side."""
    held = (
        f"Top {data.holdings.height} of {data.positions_count} positions by market value"
        if data.holdings.height
        else "No positions held at the close."
    )
    story: list[Flowable] = [
        Paragraph("Holdings (held book at the close)", styles["h2"]),
        Paragraph(held, styles["body"]),
    ]
    if data.holdings.height:
        story += [Spacer(1, 3), _frame_table(data.holdings, HOLDINGS_COLUMNS)]
    if data.sectors.height:
        side = CONTENT_WIDTH * 0.42
        chart = _image(sector_chart(data.sectors), CONTENT_WIDTH - side - 0.4 * cm)
        pair = Table(
            [[_sector_table(data.sectors, side - 0.2 * cm), chart]],
            colWidths=[side, CONTENT_WIDTH - side],
            hAlign="LEFT",
        )
        pair.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
        story.append(KeepTogether([Paragraph("Sector weights", styles["h2"]), pair]))
    return story


def _listed(
    frame: pl.DataFrame,
    intro: str,
    columns: list[Column],
    styles: dict[str, ParagraphStyle],
) -> list[Flowable]:
    """``intro``, then the table of the first ``MAX_ORDER_ROWS`` rows (``columns``, a status
    column) and a note of the rest."""
    shown, more = _cut(frame)
    table = _frame_table(shown, columns, status="Status")
    story: list[Flowable] = [Paragraph(intro, styles["body"]), Spacer(1, 3), table]
    if more:
        story.append(Paragraph(more, styles["note"]))
    return story


def _executed_orders(data: ReportData, styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    """The previous session's orders filled during the day, then the day's own orders."""
    story: list[Flowable] = [Paragraph("Executed orders", styles["h2"])]
    session = data.fills_session.isoformat() if data.fills_session else "the previous session"
    if data.fills.height:
        intro = (
            f"Filled during the session: the orders decided at the close of {session} "
            f"({data.fills.height} filled, {money(float(data.fills['notional'].sum()))} "
            f"notional, {money(float(data.fills['fees'].sum()))} fees)."
        )
        story += _listed(data.fills, intro, FILLS_COLUMNS, styles)
    else:
        story.append(Paragraph(f"No fills of the orders decided on {session}.", styles["body"]))
    story.append(Spacer(1, 6))
    if data.orders.height:
        counts = ", ".join(
            f"{n} {s}" for s, n in data.orders.group_by("status").len().sort("status").iter_rows()
        )
        intro = f"Orders decided at today's close ({counts}); they fill during the next session."
        story += _listed(data.orders, intro, _orders_columns(styles), styles)
    else:
        story.append(Paragraph("No orders decided at today's close.", styles["body"]))
    return story


def _risk_and_drift(data: ReportData, styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    """The live book's risk limits and the model's drift status, each kept on one page."""
    limits: list[Flowable] = [
        Paragraph("Risk limits (target book)", styles["h2"]),
        Paragraph(
            "Figures of the target book: the live method's weights decided at today's close, "
            "before they trade (the holdings above are the held book: "
            f"{data.positions_count} positions, cash {money(data.figures.cash)}). Realised "
            "figures carry the number of sessions they come from.",
            styles["note"],
        ),
    ]
    if data.live_book:
        described = "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in data.live_book.items())
        limits += [Paragraph(described, styles["body"]), Spacer(1, 3)]
    limits.append(
        _status_table(
            data.limits,
            ["Limit", "Figures", "Threshold", "Status"],
            (0.27, 0.35, 0.25, 0.13),
            styles,
            wrap=(0, 1, 2),
        )
    )
    drift: list[Flowable] = [Paragraph("Model drift", styles["h2"])]
    if data.drift_note:
        drift.append(Paragraph(data.drift_note, styles["body"]))
    if data.drift.height:
        drift += [
            Spacer(1, 3),
            _status_table(
                data.drift,
                ["Measure", "Value", "Threshold", "Status"],
                (0.38, 0.2, 0.29, 0.13),
                styles,
            ),
        ]
    return [KeepTogether(limits), KeepTogether(drift)]


def _deployment(data: ReportData, styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    """Which model traded the session and what its challenger has shown, then the latest
    deployment events."""
    story: list[Flowable] = [Paragraph("Model deployment", styles["h2"])]
    if not data.deployment:
        story.append(
            Paragraph(
                "No model deployment stored for this session (materialize model_deployments).",
                styles["body"],
            )
        )
        return [KeepTogether(story)]
    described = "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in data.deployment.items())
    story.append(Paragraph(described, styles["body"]))
    if data.model_events.height:
        rows: list[list[Any]] = [
            [str(day), event, Paragraph(str(reason), styles["cell"]), f"v{version}"]
            for day, version, event, reason in data.model_events.select(
                "date", "version", "event", "reason"
            ).iter_rows()
        ]
        widths = [share * CONTENT_WIDTH for share in (0.13, 0.15, 0.62, 0.1)]
        story += [
            Spacer(1, 3),
            _table(["Date", "Event", "Reason", "Version"], rows, widths, numeric_from=3),
        ]
    return [KeepTogether(story)]


def write_report(data: ReportData, path: Path) -> Path:
    """Write ``data``'s report to ``path`` (A4), replacing the file if it exists; returns it.

    The PDF is built in memory and moved into place, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=f"Daily report {data.day.isoformat()}",
        author="quant platform",
        subject="Paper account: P&L, holdings, orders, risk limits, drift",
    )
    footer = _footer(data.day)
    document.build(report_story(data), onFirstPage=footer, onLaterPages=footer)
    partial = path.with_suffix(".pdf.partial")
    partial.write_bytes(buffer.getvalue())
    partial.replace(path)
    return path
