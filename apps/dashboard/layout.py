"""The page: a header, a row of key figures and six titled panels of charts (``layout``), and
the HTML pieces the refresh callback fills in (key figures, the backtest table, drift badges).

Styling lives in ``assets/dashboard.css`` (served by Dash from the package's assets folder).
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl
from dash import dcc, html

from apps.dashboard.data import SEVERITY_METRICS, TAIL_METHODS, DashboardData
from apps.dashboard.figures import SEVERITY_NAMES

TITLE = "Quant platform · portfolio, risk and drift"

# ids of the components the refresh callback writes
GRAPH_IDS = (
    "weights-treemap",
    "weights-over-time",
    "risk-by-sector",
    "risk-by-ticker",
    "rolling-sharpe",
    "drawdown",
    "tail-risk",
    "backtest-sharpe",
    "drift-severity",
    "drifted-features",
)
KPIS = "kpis"
BACKTEST_TABLE = "backtest-table"
DRIFT_BADGES = "drift-badges"
STATUS = "refresh-status"
INTERVAL = "refresh-interval"
TAIL_METHOD = "tail-method"

# the panels: (title, subtitle, [children ids or components])
PANEL_TITLES = (
    "Portfolio weights",
    "Risk decomposition",
    "Performance",
    "Tail risk",
    "Backtest comparison",
    "Drift alerts",
)


def _graph(graph_id: str) -> dcc.Graph:
    return dcc.Graph(
        id=graph_id,
        className="chart",
        config={"displaylogo": False, "displayModeBar": False, "responsive": True},
    )


def _panel(title: str, subtitle: str, *children: Any, wide: bool = False) -> html.Section:
    return html.Section(
        className="panel panel-wide" if wide else "panel",
        children=[
            html.Div(
                className="panel-head",
                children=[html.H2(title), html.P(subtitle, className="panel-sub")],
            ),
            html.Div(className="panel-body", children=list(children)),
        ],
    )


def layout(refresh_seconds: int) -> html.Div:
    """The whole page; every chart is empty until the first refresh (on page load)."""
    return html.Div(
        className="page",
        children=[
            html.Header(
                className="header",
                children=[
                    html.Div(
                        [
                            html.H1(TITLE),
                            html.P(
                                "The live paper book, its risk, the last backtest and the drift "
                                "of the model in use, read from the platform's store.",
                                className="header-sub",
                            ),
                        ]
                    ),
                    html.Div(id=STATUS, className="status", children="loading…"),
                ],
            ),
            html.Div(id=KPIS, className="kpis"),
            html.Main(
                className="grid",
                children=[
                    _panel(
                        PANEL_TITLES[0],
                        "Weights of the live book: its latest day by sector and ticker, and by "
                        "sector over time (the rest is cash).",
                        html.Div(
                            className="row", children=[_graph(GRAPH_IDS[0]), _graph(GRAPH_IDS[1])]
                        ),
                        wide=True,
                    ),
                    _panel(
                        PANEL_TITLES[1],
                        "Share of capital vs share of volatility (Euler contributions), "
                        "latest day of the live book.",
                        html.Div(
                            className="row", children=[_graph(GRAPH_IDS[2]), _graph(GRAPH_IDS[3])]
                        ),
                        wide=True,
                    ),
                    _panel(
                        PANEL_TITLES[2],
                        "Rolling Sharpe ratio of the live book and drawdown of the paper account.",
                        html.Div(
                            className="row", children=[_graph(GRAPH_IDS[4]), _graph(GRAPH_IDS[5])]
                        ),
                        wide=True,
                    ),
                    _panel(
                        PANEL_TITLES[3],
                        "One-day Value at Risk and Conditional VaR of the live book, as a "
                        "fraction of NAV.",
                        html.Div(
                            className="controls",
                            children=[
                                html.Label("Estimator", htmlFor=TAIL_METHOD),
                                dcc.Dropdown(
                                    id=TAIL_METHOD,
                                    options=[
                                        {"label": m.replace("_", " "), "value": m}
                                        for m in TAIL_METHODS
                                    ],
                                    value="historical",
                                    clearable=False,
                                    className="dropdown",
                                ),
                            ],
                        ),
                        _graph(GRAPH_IDS[6]),
                        wide=True,
                    ),
                    _panel(
                        PANEL_TITLES[4],
                        "Every strategy of the last walk-forward backtest (after costs).",
                        html.Div(
                            className="row row-table",
                            children=[
                                _graph(GRAPH_IDS[7]),
                                html.Div(id=BACKTEST_TABLE, className="table-wrap"),
                            ],
                        ),
                        wide=True,
                    ),
                    _panel(
                        PANEL_TITLES[5],
                        "Severity of the latest drift report, its history, and the most "
                        "drifted Alpha158 features.",
                        html.Div(id=DRIFT_BADGES, className="badges"),
                        html.Div(
                            className="row", children=[_graph(GRAPH_IDS[8]), _graph(GRAPH_IDS[9])]
                        ),
                        wide=True,
                    ),
                ],
            ),
            html.Footer(
                className="footer",
                children=f"Re-reads the store every {refresh_seconds} s.",
            ),
            dcc.Interval(id=INTERVAL, interval=refresh_seconds * 1000, n_intervals=0),
        ],
    )


# --- the pieces the callback fills ---------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return format(value, spec)


def _card(label: str, value: str, tone: str = "") -> html.Div:
    return html.Div(
        className=f"kpi {tone}".strip(),
        children=[html.Div(label, className="kpi-label"), html.Div(value, className="kpi-value")],
    )


def kpi_cards(data: DashboardData) -> list[html.Div]:
    """As of, NAV, cumulative P&L, drawdown, live method, VaR 95, worst drift severity."""
    nav = data.nav
    last = nav.row(-1, named=True) if nav.height else {}
    var95 = data.tail_risk.filter(
        (pl.col("method") == "historical") & (pl.col("measure") == "VaR") & (pl.col("level") == 95)
    )
    worst = max(
        (int(data.drift_latest[m]) for m in SEVERITY_METRICS if _finite(data.drift_latest.get(m))),
        default=None,
    )
    pnl = last.get("cumulative_pnl")
    drawdown = last.get("drawdown")
    return [
        _card("As of", str(data.as_of) if data.as_of else "no data"),
        _card("NAV", _fmt(last.get("nav"), ",.0f")),
        _card(
            "Cumulative P&L",
            _fmt(pnl, "+,.0f"),
            "good" if pnl and pnl > 0 else "bad" if pnl and pnl < 0 else "",
        ),
        _card("Drawdown", _fmt(drawdown, ".1%"), "bad" if drawdown and drawdown < -0.05 else ""),
        _card("Live method", (data.live_method or "—").replace("_", " ")),
        _card("VaR 95% (1d, hist.)", _fmt(var95["value"][-1] if var95.height else None, ".2%")),
        _card(
            "Drift",
            SEVERITY_NAMES[worst] if worst is not None else "—",
            {0: "good", 1: "warn", 2: "bad"}.get(worst, "") if worst is not None else "",
        ),
    ]


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


BACKTEST_COLUMNS = (
    ("strategy", "strategy", ""),
    ("sharpe", "Sharpe", ".2f"),
    ("cagr", "CAGR", ".1%"),
    ("volatility", "vol", ".1%"),
    ("sortino", "Sortino", ".2f"),
    ("max_drawdown", "max DD", ".1%"),
    ("calmar", "Calmar", ".2f"),
    ("mean_turnover", "turnover/day", ".3f"),
    ("dsr", "DSR", ".2f"),
    ("mean_ic", "mean Rank IC", ".3f"),
)


def backtest_table(backtest: pl.DataFrame) -> html.Div | html.Table:
    """The backtest metrics as an HTML table, best Sharpe first."""
    if backtest.is_empty():
        return html.Div(
            "No backtest yet: backtest_metrics is empty (materialize backtest).",
            className="empty-note",
        )
    header = html.Thead(html.Tr([html.Th(label) for _, label, _ in BACKTEST_COLUMNS]))
    rows = []
    for record in backtest.iter_rows(named=True):
        cells = []
        for column, _, spec in BACKTEST_COLUMNS:
            value = record[column]
            text = str(value) if not spec else _fmt(value, spec)
            cells.append(html.Td(text, className="num" if spec else "name"))
        rows.append(html.Tr(cells, className=f"cat-{record['category'].replace(' ', '-')}"))
    return html.Table(className="metrics", children=[header, html.Tbody(rows)])


def drift_badges(data: DashboardData) -> list[html.Div]:
    """One badge per drift family of the latest report (OK / WARN / SEVERE) and the Sharpe
    floor; an explanatory note when there is no report yet."""
    latest = data.drift_latest
    if not latest:
        return [
            html.Div(
                "No drift report yet: drift_summary is empty (materialize drift_report).",
                className="empty-note",
            )
        ]
    day = data.drift_severity["date"][-1] if data.drift_severity.height else None
    labels = {
        "feature_severity": ("Features", "drifted_share", "{:.0%} drifted"),
        "prediction_severity": ("Predictions", "prediction_psi", "score PSI {:.3f}"),
        "explanation_severity": ("Explanations", "shap_rank_corr", "SHAP rank corr {:.2f}"),
    }
    badges = []
    for metric, (label, detail_metric, detail_format) in labels.items():
        value = latest.get(metric)
        level = int(value) if value is not None and math.isfinite(value) else None
        detail = latest.get(detail_metric)
        badges.append(
            html.Div(
                className=f"badge sev-{level if level is not None else 'na'}",
                children=[
                    html.Div(label, className="badge-label"),
                    html.Div(
                        SEVERITY_NAMES.get(level, "n/a") if level is not None else "n/a",
                        className="badge-value",
                    ),
                    html.Div(
                        detail_format.format(detail) if _finite(detail) else "",
                        className="badge-detail",
                    ),
                ],
            )
        )
    floor = latest.get("sharpe_below_floor")
    breached = _finite(floor) and bool(floor)
    badges.append(
        html.Div(
            className=f"badge sev-{2 if breached else 0 if _finite(floor) else 'na'}",
            children=[
                html.Div("Sharpe floor", className="badge-label"),
                html.Div(
                    "BREACHED" if breached else "OK" if _finite(floor) else "n/a",
                    className="badge-value",
                ),
                html.Div(
                    f"60d Sharpe {latest['sharpe_60']:.2f}"
                    if _finite(latest.get("sharpe_60"))
                    else "",
                    className="badge-detail",
                ),
            ],
        )
    )
    if day is not None:
        badges.append(html.Div(f"report of {day}", className="badge-note"))
    return badges
