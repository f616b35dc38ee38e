"""The dashboard app: ``create_app(store)`` and the ``quant-dashboard`` command (``main``).

Each page load reads the store and serves the page with every chart drawn (no callback before
the first render). Then one callback re-reads the store on each tick of a ``dcc.Interval``
(every ``refresh_seconds``, 60 by default), so a pipeline run shows up without reloading the
page; changing the VaR estimator re-renders too. A store that cannot be read (e.g. the DuckDB
file held by a writer) keeps the charts as they were and says so in the header; on a page load
the charts say it.

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
from dash import Input, Output, html

from apps.dashboard import figures
from apps.dashboard import layout as page
from apps.dashboard.data import DashboardData, load_dashboard_data, shadow_equity
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
        "backtest-equity": figures.backtest_equity_figure(data.backtest_equity),
        "drift-severity": figures.drift_severity_figure(data.drift_severity),
        "drifted-features": figures.top_drifted_features(data.feature_drift),
        "shadow-record": figures.shadow_record_figure(
            shadow_equity(data.shadow_record, data.deployments)
        ),
    }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def read_content(store: Store, tail_method: str | None) -> page.Content:
    """The page's content from the store now (raises when the store cannot be read)."""
    data = load_dashboard_data(store)
    status = f"refreshed {_now()}" + (f" · data as of {data.as_of}" if data.as_of else "")
    return page.Content(
        figures=build_figures(data, tail_method or "historical"),
        kpis=page.kpi_cards(data),
        backtest_note=page.backtest_note(data.backtest),
        backtest_table=page.backtest_table(data.backtest),
        drift_badges=page.drift_badges(data),
        deployment_badges=page.deployment_badges(data),
        status=status,
    )


def _unreadable(exc: Exception) -> str:
    log.exception("reading the store failed")
    return f"store not readable at {_now()}: {type(exc).__name__}: {exc}"[:300]


def refresh(store: Store, tail_method: str | None) -> tuple[Any, ...]:
    """The refresh callback's outputs (``layout.OUTPUTS``); when the store cannot be read,
    everything stays as it was and the status line says why."""
    try:
        return read_content(store, tail_method).values()
    except Exception as exc:  # the page stays up; the header says what went wrong
        return (*(dash.no_update,) * (len(page.OUTPUTS) - 2), _unreadable(exc), "status error")


def first_content(store: Store) -> page.Content:
    """The content a page load is served with; when the store cannot be read, every chart and
    the status line say so."""
    try:
        return read_content(store, None)
    except Exception as exc:
        message = _unreadable(exc)
        unreadable = figures.empty_figure("", "the store could not be read (see the header)")
        return page.Content(
            figures=dict.fromkeys(page.GRAPH_IDS, unreadable),
            kpis=[],
            backtest_note=html.Div(),
            backtest_table=html.Div(),
            drift_badges=[],
            deployment_badges=[],
            status=message,
            status_class="status error",
        )


def create_app(store: Store, refresh_seconds: int = DEFAULT_REFRESH_SECONDS) -> dash.Dash:
    """The Dash app over ``store``; ``app.run(...)`` serves it (``app.server`` is the WSGI app)."""
    app = dash.Dash(__name__, title="Quant dashboard", update_title="")
    # a function: each page load reads the store and is served with every chart drawn
    app.layout = lambda: page.layout(refresh_seconds, first_content(store))

    @app.callback(
        *(Output(component, prop) for component, prop in page.OUTPUTS),
        Input(page.INTERVAL, "n_intervals"),
        Input(page.TAIL_METHOD, "value"),
        # the page load already drew everything
        prevent_initial_call=True,
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
    app = create_app(store_from_env(reader=True), refresh_seconds=args.refresh_seconds)
    log.info("serving the dashboard on http://%s:%d", args.host, args.port)
    app.run(host=args.host, port=args.port, debug=args.debug)


if __name__ == "__main__":
    main()
