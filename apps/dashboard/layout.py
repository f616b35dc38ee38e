"""The page: a header, a row of key figures and six titled panels of charts (``layout``), and
the HTML pieces each refresh fills in (key figures, the backtest note and table, drift badges).

The page is built with its content (``Content``): every chart is drawn on the first render,
before any refresh. Every chart's container has a fixed height (``GRAPH_HEIGHTS``) and Plotly
fills it (``responsive``): a responsive graph whose container takes its height from the graph
collapses to 0 px when Plotly autosizes (the charts then pile on each other until a refresh
re-plots them).

Styling lives in ``assets/dashboard.css`` (served by Dash from the package's assets folder).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
import polars as pl
from dash import dcc, html

from apps.dashboard.data import SEVERITY_METRICS, TAIL_METHODS, DashboardData
from apps.dashboard.figures import CURRENCY, SEVERITY_NAMES, usd
from quant_assets.metadata import NOT_EVALUATED
from quant_assets.monitoring.drift import severity_name

TITLE = "Quant platform · portfolio, risk and drift"

# the charts by component id, with the height of each one's container in px
GRAPH_HEIGHTS = {
    "weights-treemap": 360,
    "weights-over-time": 360,
    "risk-by-sector": 360,
    "risk-by-ticker": 360,
    "rolling-sharpe": 360,
    "drawdown": 360,
    "tail-risk": 360,
    "backtest-sharpe": 420,
    "backtest-equity": 420,
    "drift-severity": 240,
    "drifted-features": 360,
    "shadow-record": 340,
}
GRAPH_IDS = tuple(GRAPH_HEIGHTS)
KPIS = "kpis"
BACKTEST_NOTE = "backtest-note"
BACKTEST_TABLE = "backtest-table"
DRIFT_BADGES = "drift-badges"
DEPLOYMENT_BADGES = "deployment-badges"
STATUS = "refresh-status"
INTERVAL = "refresh-interval"
TAIL_METHOD = "tail-method"
# every (component id, property) a refresh writes, in the order of ``Content.values``
OUTPUTS = (
    *((graph_id, "figure") for graph_id in GRAPH_IDS),
    (KPIS, "children"),
    (BACKTEST_NOTE, "children"),
    (BACKTEST_TABLE, "children"),
    (DRIFT_BADGES, "children"),
    (DEPLOYMENT_BADGES, "children"),
    (STATUS, "children"),
    (STATUS, "className"),
)

# the backtest is its own run (not part of the daily job); its four keys are one multi-asset,
# which Dagster materializes only whole
BACKTEST_KEYS = ("backtest", "backtest_metrics", "backtest_returns", "backtest_cpcv")
BACKTEST_COMMAND = "uv run dagster asset materialize -m quant_assets.definitions --select " + (
    ",".join(BACKTEST_KEYS)
)

PANEL_TITLES = (
    "Portfolio weights",
    "Risk decomposition",
    "Performance",
    "Tail risk",
    "Backtest comparison",
    "Drift alerts",
    "Model deployment",
)


@dataclass(frozen=True)
class Content:
    """What the page shows at one refresh: every chart by id and the HTML pieces."""

    figures: Mapping[str, go.Figure]
    kpis: list[html.Div]
    backtest_note: html.Div
    backtest_table: html.Div | html.Table
    drift_badges: list[html.Div]
    deployment_badges: list[html.Div]
    status: str
    status_class: str = "status"

    def values(self) -> tuple[Any, ...]:
        """The values of ``OUTPUTS``, in its order."""
        return (
            *(self.figures[graph_id] for graph_id in GRAPH_IDS),
            self.kpis,
            self.backtest_note,
            self.backtest_table,
            self.drift_badges,
            self.deployment_badges,
            self.status,
            self.status_class,
        )


def _graph(graph_id: str, figure: go.Figure) -> dcc.Graph:
    return dcc.Graph(
        id=graph_id,
        figure=figure,
        className="chart",
        # Plotly fills the container's fixed height and follows its width
        responsive=True,
        style={"height": f"{GRAPH_HEIGHTS[graph_id]}px"},
        config={"displaylogo": False, "displayModeBar": False},
    )


def _panel(title: str, subtitle: str, *children: Any) -> html.Section:
    return html.Section(
        className="panel",
        children=[
            html.Div(
                className="panel-head",
                children=[html.H2(title), html.P(subtitle, className="panel-sub")],
            ),
            html.Div(className="panel-body", children=list(children)),
        ],
    )


def _row(*children: Any) -> html.Div:
    return html.Div(className="row", children=list(children))


def _tail_controls() -> html.Div:
    return html.Div(
        className="controls",
        children=[
            html.Label("Estimator", htmlFor=TAIL_METHOD),
            dcc.Dropdown(
                id=TAIL_METHOD,
                options=[{"label": m.replace("_", " "), "value": m} for m in TAIL_METHODS],
                value="historical",
                clearable=False,
                className="dropdown",
            ),
        ],
    )


def _panels(content: Content) -> list[html.Section]:
    graph = {graph_id: _graph(graph_id, content.figures[graph_id]) for graph_id in GRAPH_IDS}
    return [
        _panel(
            PANEL_TITLES[0],
            "Weights of the live book: its latest day by sector and ticker, and by sector over "
            "time (the rest is cash).",
            _row(graph["weights-treemap"], graph["weights-over-time"]),
        ),
        _panel(
            PANEL_TITLES[1],
            "Share of capital vs share of volatility (Euler contributions), latest day of the "
            "live book.",
            _row(graph["risk-by-sector"], graph["risk-by-ticker"]),
        ),
        _panel(
            PANEL_TITLES[2],
            f"Rolling Sharpe ratio of the live book and drawdown of the paper account ({CURRENCY}).",
            _row(graph["rolling-sharpe"], graph["drawdown"]),
        ),
        _panel(
            PANEL_TITLES[3],
            "One-day Value at Risk and Conditional VaR of the live book, in % of NAV.",
            _tail_controls(),
            graph["tail-risk"],
        ),
        _panel(
            PANEL_TITLES[4],
            "Every strategy of the last walk-forward backtest (after costs).",
            html.Div(id=BACKTEST_NOTE, children=content.backtest_note),
            _row(graph["backtest-sharpe"], graph["backtest-equity"]),
            html.Div(id=BACKTEST_TABLE, className="table-wrap", children=content.backtest_table),
        ),
        _panel(
            PANEL_TITLES[5],
            "Severity of the latest drift report, its history, and the most drifted Alpha158 "
            "features.",
            html.Div(id=DRIFT_BADGES, className="badges", children=content.drift_badges),
            _row(graph["drift-severity"], graph["drifted-features"]),
        ),
        _panel(
            PANEL_TITLES[6],
            "Who trades: the champion, the challenger in shadow or canary (its share of the live "
            "book), the promotion test on the daily Rank IC difference, and the latest events.",
            html.Div(id=DEPLOYMENT_BADGES, className="badges", children=content.deployment_badges),
            graph["shadow-record"],
        ),
    ]


def layout(refresh_seconds: int, content: Content) -> html.Div:
    """The whole page, drawn with ``content``."""
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
                                "of the model in use, read from the platform's store. Money in "
                                f"{CURRENCY}.",
                                className="header-sub",
                            ),
                        ]
                    ),
                    html.Div(id=STATUS, className=content.status_class, children=content.status),
                ],
            ),
            html.Div(id=KPIS, className="kpis", children=content.kpis),
            html.Main(className="grid", children=_panels(content)),
            html.Footer(
                className="footer",
                children=f"Re-reads the store every {refresh_seconds} s.",
            ),
            dcc.Interval(id=INTERVAL, interval=refresh_seconds * 1000, n_intervals=0),
        ],
    )


# --- the pieces each refresh fills ---------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return format(value, spec)


def _card(label: str, value: str, tone: str = "") -> html.Div:
    return html.Div(
        className=f"kpi {tone}".strip(),
        children=[html.Div(label, className="kpi-label"), html.Div(value, className="kpi-value")],
    )


def _money(value: float | None, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return usd(value, signed)


def kpi_cards(data: DashboardData) -> list[html.Div]:
    """As of, NAV, cumulative P&L, drawdown, live method, VaR 95 (in % of NAV and in money),
    worst drift severity."""
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
    nav_value = last.get("nav")
    var = var95["value"][-1] if var95.height else None
    var_text = _fmt(var, ".2%")
    if var is not None and nav_value is not None and _finite(var) and _finite(nav_value):
        var_text += f" · {_money(var * nav_value)}"
    return [
        _card("As of", str(data.as_of) if data.as_of else "no data"),
        _card(f"NAV ({CURRENCY})", _money(nav_value)),
        _card(
            f"Cumulative P&L ({CURRENCY})",
            _money(pnl, signed=True),
            "good" if pnl and pnl > 0 else "bad" if pnl and pnl < 0 else "",
        ),
        _card("Drawdown", _fmt(drawdown, ".1%"), "bad" if drawdown and drawdown < -0.05 else ""),
        _card("Live method", (data.live_method or "—").replace("_", " ")),
        _card("VaR 95% (1d, hist.)", var_text),
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
    ("sharpe", "Sharpe (ann.)", ".2f"),
    ("cagr", "CAGR", ".1%"),
    ("volatility", "vol (ann.)", ".1%"),
    ("sortino", "Sortino", ".2f"),
    ("max_drawdown", "max DD", ".1%"),
    ("calmar", "Calmar", ".2f"),
    ("mean_turnover", "turnover/day", ".1%"),
    ("dsr", "DSR", ".2f"),
    ("mean_ic", "mean Rank IC", ".3f"),
    ("cadence", "re-decided", ""),
    ("drawdown_rule_days", "drawdown-rule days", "d"),
    ("stop_loss_days", "stop-loss days", "d"),
)


def backtest_note(backtest: pl.DataFrame) -> html.Div:
    """What the stored backtest covers, or how to run one when none is stored."""
    if backtest.is_empty():
        return html.Div(
            className="empty-note backtest-howto",
            children=[
                html.P(
                    [
                        html.B("No backtest stored yet. "),
                        "The backtest is a run of its own, not part of the daily job: it walks "
                        "forward over the stored history (alpha158, labels and raw_bars must be "
                        "stored) and writes the backtest_metrics, backtest_returns and "
                        "backtest_cpcv tables. Run it from the project folder, with this "
                        "dashboard's QUANT_STORE_URL:",
                    ]
                ),
                html.Pre(html.Code(BACKTEST_COMMAND), className="command"),
                html.P(
                    "Select all four keys: they are one multi-asset, which Dagster only "
                    "materializes whole. With DAGSTER_HOME=$PWD/.dagster_home (the instance "
                    "make run creates) the run also shows in the Dagster UI (make ui), where "
                    "Assets, backtest, Materialize starts the same run. This panel shows the "
                    "result at its next refresh."
                ),
            ],
        )
    first = backtest.row(0, named=True)
    return html.Div(
        className="backtest-meta",
        children=(
            f"Stored backtest: {first['first_date']} to {first['last_date']}, "
            f"{first['n_obs']} sessions out of sample, {backtest.height} strategies "
            f"(the DSR's {first['n_trials']} trials); returns net of costs."
        ),
    )


def _yearly_columns(backtest: pl.DataFrame) -> list[tuple[str, str, str]]:
    """The costs paid and each calendar year's net return, when the table carries them."""
    years = sorted(c for c in backtest.columns if c.isdigit() and len(c) == 4)
    costs = [("costs_paid", "costs paid", ".2%")] if "costs_paid" in backtest.columns else []
    return [*costs, *((year, year, ".1%") for year in years)]


def backtest_table(backtest: pl.DataFrame) -> html.Div | html.Table:
    """The backtest metrics as an HTML table, best Sharpe first (nothing when none is stored:
    ``backtest_note`` says how to run one)."""
    if backtest.is_empty():
        return html.Div()
    columns = [*BACKTEST_COLUMNS, *_yearly_columns(backtest)]
    header = html.Thead(html.Tr([html.Th(label) for _, label, _ in columns]))
    rows = []
    for record in backtest.iter_rows(named=True):
        cells = []
        for column, _, spec in columns:
            value = record[column]
            text = str(value) if not spec else _fmt(value, spec)
            cells.append(html.Td(text, className="num" if spec else "name"))
        rows.append(html.Tr(cells, className=f"cat-{record['category'].replace(' ', '-')}"))
    return html.Table(className="metrics", children=[header, html.Tbody(rows)])


def drift_badges(data: DashboardData) -> list[html.Div]:
    """One badge per drift family of the latest report (OK / WARN / ERROR / NOT EVALUATED, the
    words of the checks and the PDF) and the Sharpe
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
                        severity_name(value),
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
                    "BREACHED" if breached else "OK" if _finite(floor) else NOT_EVALUATED,
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


def _badge(label: str, value: str, detail: str, level: int | str) -> html.Div:
    return html.Div(
        className=f"badge sev-{level}",
        children=[
            html.Div(label, className="badge-label"),
            html.Div(value, className="badge-value"),
            html.Div(detail, className="badge-detail"),
        ],
    )


def deployment_badges(data: DashboardData, events: int = 4) -> list[html.Div]:
    """The latest deployment: champion, challenger and its stage, the canary's share of the
    live book, the promotion test (NOT EVALUATED until its window is realised), then the
    newest events."""
    if data.deployments.is_empty():
        return [
            html.Div(
                "No deployment yet: model_deployments is empty (materialize model_deployments).",
                className="empty-note",
            )
        ]
    row = data.deployments.sort("date").row(-1, named=True)
    challenger = row["challenger_version"]
    share = float(row["canary_fraction"])
    stage = str(row["stage"])
    p = row["ic_difference_p"]
    badges = [
        _badge("Champion", f"v{row['champion_version']}", f"live on {row['date']}", 0),
        _badge(
            "Challenger",
            f"v{challenger}" if challenger else "none",
            f"{stage} since {row['stage_start']}" if challenger else "no version in shadow",
            1 if challenger else "na",
        ),
        _badge(
            "Canary share",
            f"{share:.0%}",
            "of the live book from the challenger" if share else "the champion trades alone",
            1 if share else 0,
        ),
        _badge(
            "Promotion test",
            f"p {p:.4f}" if p is not None else NOT_EVALUATED,
            (
                f"IC difference {row['ic_difference']:+.4f} over {row['test_sessions']} sessions"
                if p is not None
                else "the shadow window is not realised yet"
                if challenger
                else "no challenger"
            ),
            "na" if p is None else 0 if p > 0.05 else 1,
        ),
    ]
    for event in data.model_events.head(events).iter_rows(named=True):
        badges.append(
            html.Div(
                f"{event['date']} v{event['version']} {event['event']}: {event['reason']}",
                className="event-note",
            )
        )
    return badges
