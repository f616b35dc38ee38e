"""The dashboard app: ``create_app(store)`` and the ``quant-dashboard`` command (``main``).

One callback fills every panel. It runs when the page loads and then on each tick of a
``dcc.Interval`` (every ``refresh_seconds``, 60 by default), re-reading the store each time, so
a pipeline run shows up without reloading the page; changing the VaR estimator re-renders too.
A store that cannot be read (e.g. the DuckDB file held by a writer) keeps the charts as they
were and says so in the header.

    quant-dashboard                      # http://127.0.0.1:8050, the store of QUANT_STORE_URL
    quant-dashboard --host 0.0.0.0 --port 8080 --refresh-seconds 30
    QUANT_DASHBOARD_HOST / QUANT_DASHBOARD_PORT / QUANT_DASHBOARD_REFRESH_S  (the same, as env)
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import dash
import plotly.graph_objects as go
from dash import Input, Output

from apps.dashboard import figures
from apps.dashboard import layout as page
from apps.dashboard.data import DashboardData, load_dashboard_data
from resources.storage import Store

log = logging.getLogger("quant.dashboard")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050
DEFAULT_REFRESH_SECONDS = 60


def build_figures(data: DashboardData, tail_method: str = "historical") -> dict[str, go.Figure]:
    """Every chart of the page by its component id."""
    return {
        "weights-treemap": figures.weights_treemap(data.live_weights),
        "weights-over-time": figures.weights_over_time(data.live_weights),
        "risk-by-sector": figures.risk_by_sector(data.risk_contributions),
        "risk-by-ticker": figures.risk_by_ticker(data.risk_contributions),
        "rolling-sharpe": figures.rolling_sharpe_figure(data.rolling_sharpe, data.sharpe_source),
        "drawdown": figures.drawdown_figure(data.nav),
        "tail-risk": figures.tail_risk_figure(data.tail_risk, tail_method),
        "backtest-sharpe": figures.backtest_sharpe_figure(data.backtest),
        "drift-severity": figures.drift_severity_figure(data.drift_severity),
        "drifted-features": figures.top_drifted_features(data.feature_drift),
    }


def refresh(store: Store, tail_method: str | None) -> tuple[Any, ...]:
    """The callback's outputs: the figures (in ``layout.GRAPH_IDS`` order), the key figures,
    the backtest table, the drift badges, the status line and its class."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    try:
        data = load_dashboard_data(store)
    except Exception as exc:  # the page stays up; the header says what went wrong
        log.exception("dashboard refresh failed")
        message = f"store not readable at {now}: {type(exc).__name__}: {exc}"[:300]
        keep = (dash.no_update,) * (len(page.GRAPH_IDS) + 3)
        return (*keep, message, "status error")
    built = build_figures(data, tail_method or "historical")
    status = f"refreshed {now}" + (f" · data as of {data.as_of}" if data.as_of else "")
    return (
        *(built[graph_id] for graph_id in page.GRAPH_IDS),
        page.kpi_cards(data),
        page.backtest_table(data.backtest),
        page.drift_badges(data),
        status,
        "status",
    )


def create_app(store: Store, refresh_seconds: int = DEFAULT_REFRESH_SECONDS) -> dash.Dash:
    """The Dash app over ``store``; ``app.run(...)`` serves it (``app.server`` is the WSGI app)."""
    app = dash.Dash(__name__, title="Quant dashboard", update_title="")
    app.layout = page.layout(refresh_seconds)

    @app.callback(
        *(Output(graph_id, "figure") for graph_id in page.GRAPH_IDS),
        Output(page.KPIS, "children"),
        Output(page.BACKTEST_TABLE, "children"),
        Output(page.DRIFT_BADGES, "children"),
        Output(page.STATUS, "children"),
        Output(page.STATUS, "className"),
        Input(page.INTERVAL, "n_intervals"),
        Input(page.TAIL_METHOD, "value"),
    )
    def _refresh(_ticks: int | None, tail_method: str | None) -> tuple[Any, ...]:
        return refresh(store, tail_method)

    return app


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="quant-dashboard", description="Serve the portfolio, risk and drift dashboard."
    )
    parser.add_argument(
        "--host",
        default=env("QUANT_DASHBOARD_HOST") or DEFAULT_HOST,
        help="interface to listen on (QUANT_DASHBOARD_HOST; default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(env("QUANT_DASHBOARD_PORT") or DEFAULT_PORT),
        help="port (QUANT_DASHBOARD_PORT; default 8050)",
    )
    parser.add_argument(
        "--refresh-seconds",
        type=int,
        default=int(env("QUANT_DASHBOARD_REFRESH_S") or DEFAULT_REFRESH_SECONDS),
        help="how often the page re-reads the store (QUANT_DASHBOARD_REFRESH_S; default 60)",
    )
    parser.add_argument("--debug", action="store_true", help="Dash debug mode (hot reload)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """``quant-dashboard``: serve the dashboard over the store of ``QUANT_STORE_URL``."""
    from resources.config import store_from_env

    args = _parser().parse_args(argv)
    if args.refresh_seconds < 1:
        raise SystemExit("--refresh-seconds must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app(store_from_env(), refresh_seconds=args.refresh_seconds)
    log.info("serving the dashboard on http://%s:%d", args.host, args.port)
    app.run(host=args.host, port=args.port, debug=args.debug)


if __name__ == "__main__":
    main()
