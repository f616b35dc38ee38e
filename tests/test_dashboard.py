"""The dashboard (apps/dashboard): its figures from a small store, the page served by
``main`` and rendered in headless Chromium, and the Dagster UI's asset list in the same browser.

The browser tests need Debian's ``chromium`` (``bash scripts/chromium.sh`` installs it): they
are skipped without it locally and fail when ``CI`` is set, like the PostgreSQL tests.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import itertools
import json
import math
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl
import pytest
from dash import dcc

from apps.dashboard import figures
from apps.dashboard.app import build_figures, create_app, refresh
from apps.dashboard.data import load_dashboard_data, shadow_equity, sharpe_from_nav
from apps.dashboard.layout import (
    BACKTEST_COMMAND,
    BACKTEST_KEYS,
    GRAPH_HEIGHTS,
    GRAPH_IDS,
    OUTPUTS,
    PANEL_TITLES,
)
from quant_assets.monitoring.drift import severity_name
from resources.storage import Store

ROOT = Path(__file__).resolve().parents[1]
LIVE = "constrained_markowitz"
SECTORS = {
    "AAA": "Energy",
    "BBB": "Energy",
    "CCC": "Financials",
    "DDD": "Health Care",
    "EEE": "Health Care",
    "FFF": "Utilities",
}
DAYS = [date(2024, 3, 4) + timedelta(days=i) for i in range(5)]  # Mon-Fri
LAST = DAYS[-1]


def _weekdays(end: date, n: int) -> list[date]:
    days: list[date] = []
    day = end
    while len(days) < n:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    return days[::-1]


NAV_DAYS = _weekdays(LAST, 40)
NAV_VALUES = [1_000_000.0 * (1 + 0.01 * math.sin(i / 3.0) + 0.002 * i) for i in range(40)]


def live_weights_on(day: date) -> dict[str, float]:
    """The live book of the small store: weights that change a little every day."""
    k = DAYS.index(day)
    return {"AAA": 0.20 + 0.01 * k, "BBB": 0.15, "CCC": 0.25 - 0.01 * k, "DDD": 0.10, "FFF": 0.2}


TAIL = {  # the live book's tail metrics on day k: base + 0.001 k
    "var95_historical": 0.012,
    "cvar95_historical": 0.018,
    "var99_historical": 0.021,
    "cvar99_historical": 0.027,
    "var95_normal": 0.011,
    "cvar95_normal": 0.014,
}


def populate(store: Store, backtest: bool = True) -> None:
    """A small store with every table the dashboard reads (the backtest's tables unless
    ``backtest`` is false), and a second, non-live method whose rows must never show up."""
    store.replace_table(
        "universe",
        pl.DataFrame(
            {
                "ticker": [*SECTORS, "SYNIDX"],
                "name": [f"{t} Corp" for t in SECTORS] + ["Index"],
                "sector": [*SECTORS.values(), "Index"],
                "is_benchmark": [False] * len(SECTORS) + [True],
            }
        ),
    )
    weights, metrics = [], []
    for k, day in enumerate(DAYS):
        for ticker, w in live_weights_on(day).items():
            weights.append((day, LIVE, ticker, w, True))
        weights.append((day, "hrp", "EEE", 0.5, False))
        weights.append((day, "hrp", "AAA", 0.5, False))
        for metric, base in TAIL.items():
            metrics.append((day, LIVE, True, metric, base + 0.001 * k))
            metrics.append((day, "hrp", False, metric, 0.5))
        metrics.append((day, LIVE, True, "ex_ante_vol", 0.09))
    end = LAST + timedelta(days=1)
    store.write_partition(
        "target_weights",
        pl.DataFrame(
            weights, schema=["date", "method", "ticker", "weight", "is_live"], orient="row"
        ),
        DAYS[0],
        end,
    )
    store.write_partition(
        "risk_metrics",
        pl.DataFrame(
            metrics, schema=["date", "method", "is_live", "metric", "value"], orient="row"
        ),
        DAYS[0],
        end,
    )
    contributions = []
    for ticker, w in live_weights_on(LAST).items():
        contributions.append(
            (LAST, LIVE, "ticker", ticker, w, w * 0.1 * (2 if ticker == "CCC" else 1))
        )
    sector_w: dict[str, float] = {}
    sector_rc: dict[str, float] = {}
    for _, _, _, ticker, w, rc in contributions:
        sector_w[SECTORS[ticker]] = sector_w.get(SECTORS[ticker], 0.0) + w
        sector_rc[SECTORS[ticker]] = sector_rc.get(SECTORS[ticker], 0.0) + rc
    contributions += [(LAST, LIVE, "sector", s, sector_w[s], sector_rc[s]) for s in sector_w]
    contributions.append((LAST, "hrp", "ticker", "EEE", 0.5, 0.9))
    store.write_partition(
        "risk_contributions",
        pl.DataFrame(
            contributions,
            schema=["date", "method", "level", "name", "weight", "risk_contribution"],
            orient="row",
        ),
        LAST,
        end,
    )
    nav = pl.DataFrame({"date": NAV_DAYS, "nav": NAV_VALUES}).with_columns(
        pl.lit(0.0).alias("cash"),
        pl.col("nav").alias("positions_value"),
        pl.col("nav").diff().fill_null(0.0).alias("pnl"),
        (pl.col("nav") - 1_000_000.0).alias("cumulative_pnl"),
        pl.lit(0.0).alias("gross_pnl"),
        pl.lit(0.0).alias("fees"),
        pl.lit(0.0).alias("traded_notional"),
        pl.lit(0.0).alias("turnover"),
        pl.lit(0.0).alias("implementation_shortfall"),
        pl.lit(5).alias("names"),
    )
    store.write_partition("nav", nav, NAV_DAYS[0], end)
    _populate_deployment(store)
    if backtest:
        _populate_backtest(store)
    summary = []
    for k, day in enumerate(DAYS):
        summary += [
            (day, "feature_severity", float(k % 3)),
            (day, "prediction_severity", 0.0),
            (day, "explanation_severity", 1.0),
            (day, "sharpe_below_floor", 0.0),
            (day, "drifted_share", 0.1 * k),
            (day, "prediction_psi", 0.05),
            (day, "shap_rank_corr", 0.4),
            (day, "sharpe_30", 0.5 + 0.1 * k),
            (day, "sharpe_60", 0.4 + 0.1 * k),
            (day, "sharpe_90", None if k == 0 else 0.3),
        ]
    store.write_partition(
        "drift_summary",
        pl.DataFrame(summary, schema=["date", "metric", "value"], orient="row"),
        DAYS[0],
        end,
    )
    features = pl.DataFrame(
        {
            "date": [LAST] * 20,
            "feature": [f"F{i:02d}" for i in range(20)],
            "psi": [0.01 * i for i in range(20)],
            "ks_statistic": [0.01 * i for i in range(20)],
            "js_distance": [0.01 * i for i in range(20)],
            "p_value": [0.5 - 0.02 * i for i in range(20)],
            "p_adjusted": [0.9 - 0.04 * i for i in range(20)],
            "drifted": [i >= 15 for i in range(20)],
        }
    )
    older = features.with_columns(pl.lit(DAYS[0]).alias("date"), pl.lit(9.9).alias("psi"))
    store.write_partition("feature_drift", pl.concat([older, features]), DAYS[0], end)


BACKTEST_DAYS = _weekdays(date(2024, 12, 31), 30)
BACKTEST_STRATEGIES = ("benchmark/index", "hrp", "ensemble/black_litterman", "min_cvar")


# the challenger "7" in shadow from DAYS[0], at the 25% canary stage on the last day
SHADOW_RETURNS = {"champion": 0.002, "challenger": 0.004}


def _populate_deployment(store: Store) -> None:
    end = LAST + timedelta(days=1)
    canary = [d == LAST for d in DAYS]
    store.write_partition(
        "model_deployments",
        pl.DataFrame(
            {
                "date": DAYS,
                "champion_version": ["3"] * len(DAYS),
                "challenger_version": ["7"] * len(DAYS),
                "stage": ["canary_25" if c else "shadow" for c in canary],
                "canary_step": [1 if c else -1 for c in canary],
                "canary_fraction": [0.25 if c else 0.0 for c in canary],
                "stage_start": [LAST if c else DAYS[0] for c in canary],
                "shadow_start": [DAYS[0]] * len(DAYS),
                "canary_start": [LAST if c else None for c in canary],
                "sessions_in_stage": [0 if c else k for k, c in enumerate(canary)],
                "last_week": [date(2024, 2, 26)] * len(DAYS),
                "test_sessions": [60] * len(DAYS),
                "ic_difference": [0.021] * len(DAYS),
                "ic_difference_t": [3.1] * len(DAYS),
                "ic_difference_p": [0.0016] * len(DAYS),
            }
        ),
        DAYS[0],
        end,
    )
    store.write_partition(
        "shadow_record",
        pl.DataFrame(
            {
                "date": DAYS,
                "champion_version": ["3"] * len(DAYS),
                "challenger_version": ["7"] * len(DAYS),
                "ic_date": DAYS,
                "ic_champion": [0.01] * len(DAYS),
                "ic_challenger": [0.03] * len(DAYS),
                "return_champion": [SHADOW_RETURNS["champion"]] * len(DAYS),
                "return_challenger": [SHADOW_RETURNS["challenger"]] * len(DAYS),
            }
        ),
        DAYS[0],
        end,
    )
    store.write_partition(
        "model_events",
        pl.DataFrame(
            {
                "date": [DAYS[0], LAST],
                "version": ["7", "7"],
                "event": ["challenger", "canary_25"],
                "reason": [
                    "passed the weekly gate: shadow",
                    "5 sessions at canary_5 within floors",
                ],
            }
        ),
        DAYS[0],
        end,
    )


def backtest_net_return(strategy_index: int, day_index: int) -> float:
    """The stored backtest's daily net return of strategy ``strategy_index`` on day ``k``."""
    return 0.001 * (strategy_index - 1) + 0.004 * math.sin(day_index + strategy_index)


def _populate_backtest(store: Store) -> None:
    store.replace_table(
        "backtest_metrics",
        pl.DataFrame(
            {
                "strategy": list(BACKTEST_STRATEGIES),
                "model": ["", "", "ensemble", ""],
                "method": ["index", "hrp", "black_litterman", "min_cvar"],
                "cagr": [0.22, 0.07, 0.01, -0.02],
                "volatility": [0.195, 0.16, 0.178, 0.127],
                "sharpe": [1.117, 0.514, 0.133, -0.094],
                "sortino": [1.689, 0.732, 0.191, -0.13],
                "max_drawdown": [0.304, 0.302, 0.253, 0.259],
                "calmar": [0.722, 0.238, 0.031, -0.077],
                "hit_rate": [0.55, 0.52, 0.5, 0.49],
                "mean_turnover": [0.0, 0.022, 0.055, 0.047],
                "psr": [0.9, 0.8, 0.6, 0.4],
                "dsr": [0.819, 0.452, 0.219, 0.121],
                "n_obs": [len(BACKTEST_DAYS)] * 4,
                "n_trials": [4] * 4,
                "mean_ic": [None, None, 0.036, None],
                "first_date": [BACKTEST_DAYS[0]] * 4,
                "last_date": [BACKTEST_DAYS[-1]] * 4,
                "cadence": [
                    "bought and held",
                    "every 20 sessions",
                    "every session (live replay)",
                    "every 20 sessions",
                ],
                "drawdown_rule_days": [0, 0, 17, 3],
                "stop_loss_days": [0, 2, 41, 2],
            }
        ),
    )
    returns = [
        (strategy, day, backtest_net_return(i, k))
        for i, strategy in enumerate(BACKTEST_STRATEGIES)
        for k, day in enumerate(BACKTEST_DAYS)
    ]
    store.replace_table(
        "backtest_returns",
        pl.DataFrame(returns, schema=["strategy", "date", "net_return"], orient="row").with_columns(
            (pl.col("net_return") + 0.0005).alias("gross_return"),
            pl.lit(0.0005).alias("cost"),
            pl.lit(0.05).alias("turnover"),
            pl.lit(1.0).alias("gross_exposure"),
        ),
    )


# --- figures from a small store ---------------------------------------------------------------


def _trace(fig: go.Figure, name: str) -> go.BaseTraceType:
    return next(t for t in fig.data if t.name == name)


def test_figures_show_the_live_book_from_the_store(store: Store) -> None:
    populate(store)
    data = load_dashboard_data(store)
    figs = build_figures(data)
    assert set(figs) == set(GRAPH_IDS)
    assert not any(figures.is_empty_figure(f) for f in figs.values())
    assert data.live_method == LIVE and data.as_of == LAST

    # treemap: the live book's latest day, tickers under their sectors, no other method's names
    (tree,) = figs["weights-treemap"].data
    leaves = {
        label: value
        for label, value, parent in zip(tree.labels, tree.values, tree.parents, strict=True)
        if parent.startswith("s/")
    }
    assert leaves == pytest.approx(live_weights_on(LAST))
    assert "EEE" not in tree.labels
    sectors = {
        label: value
        for label, value, parent in zip(tree.labels, tree.values, tree.parents, strict=True)
        if parent.startswith("Live book")
    }
    assert sectors == pytest.approx(
        {"Energy": 0.39, "Financials": 0.21, "Health Care": 0.1, "Utilities": 0.2}
    )

    # stacked bars: one trace per sector, one bar per day, summing the sector's weights
    stacked = figs["weights-over-time"]
    assert stacked.layout.barmode == "stack"
    assert {t.name for t in stacked.data} == {"Energy", "Financials", "Health Care", "Utilities"}
    energy = _trace(stacked, "Energy")
    assert list(energy.x) == DAYS
    assert list(energy.y) == pytest.approx([live_weights_on(d)["AAA"] + 0.15 for d in DAYS])
    # one colour per sector across the treemap and the bars
    tree_colours = dict(zip(tree.labels, tree.marker.colors, strict=True))
    assert energy.marker.color == tree_colours["Energy"]

    # risk: shares of the live book's Euler contributions (CCC counts double)
    by_ticker = figs["risk-by-ticker"]
    risk = _trace(by_ticker, "share of volatility")
    shares = dict(zip(risk.y, risk.x, strict=True))
    assert set(shares) == set(live_weights_on(LAST))
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["CCC"] == pytest.approx(2 * 0.21 / (0.9 + 0.21))
    assert list(risk.y)[-1] == "CCC"  # largest contribution on top
    by_sector = _trace(figs["risk-by-sector"], "share of volatility")
    assert by_sector.x[0] == "Financials"
    assert sum(by_sector.y) == pytest.approx(1.0)

    # rolling Sharpe from drift_summary, nulls dropped
    sharpe = figs["rolling-sharpe"]
    assert "drift_report" in sharpe.layout.title.text
    assert list(_trace(sharpe, "30 sessions").y) == pytest.approx([0.5 + 0.1 * k for k in range(5)])
    assert len(_trace(sharpe, "90 sessions").x) == 4

    # drawdown from the NAV: nav / running peak - 1
    (dd,) = figs["drawdown"].data
    nav = np.array(NAV_VALUES)
    expected = nav / np.maximum.accumulate(nav) - 1.0
    assert np.allclose(np.array(dd.y, dtype=float), expected)
    assert f"{expected.min():.1%}" in figs["drawdown"].layout.title.text

    # VaR / CVaR: the live book's historical estimates only, four series
    tail = figs["tail-risk"]
    assert {t.name for t in tail.data} == {"VaR 95%", "CVaR 95%", "VaR 99%", "CVaR 99%"}
    assert list(_trace(tail, "CVaR 95%").y) == pytest.approx([0.018 + 0.001 * k for k in range(5)])
    normal = build_figures(data, "normal")["tail-risk"]
    assert {t.name for t in normal.data} == {"VaR 95%", "CVaR 95%"}
    assert figures.is_empty_figure(build_figures(data, "monte_carlo")["tail-risk"])

    # backtest: Sharpe per strategy, best first, coloured by category
    bt = figs["backtest-sharpe"]
    assert list(bt.layout.xaxis.categoryarray) == [
        "benchmark/index",
        "hrp",
        "ensemble/black_litterman",
        "min_cvar",
    ]
    assert list(_trace(bt, "ML").x) == ["ensemble/black_litterman"]
    assert list(_trace(bt, "risk-based").y) == pytest.approx([0.514, -0.094])
    # and the value of $1 in the best strategies by Sharpe, then the benchmark, net of costs
    equity = figs["backtest-equity"]
    assert [t.name for t in equity.data] == [
        "hrp",
        "ensemble/black_litterman",
        "min_cvar",
        "benchmark/index",
    ]
    hrp = _trace(equity, "hrp")
    assert list(hrp.x) == BACKTEST_DAYS
    grown = np.cumprod([1.0 + backtest_net_return(1, k) for k in range(len(BACKTEST_DAYS))])
    assert np.allclose(np.array(hrp.y, dtype=float), grown)
    assert equity.layout.yaxis.tickprefix == "$"

    # drift: severities per family and day, the latest report's most drifted features
    (heat,) = figs["drift-severity"].data
    assert list(heat.y) == ["features", "predictions", "explanations"]
    assert [list(row) for row in heat.z] == [[0, 1, 2, 0, 1], [0] * 5, [1] * 5]
    (bars,) = figs["drifted-features"].data
    assert list(bars.y)[::-1] == [f"F{i:02d}" for i in range(19, 4, -1)]
    assert list(bars.x)[-1] == pytest.approx(0.19)  # the older day's 9.9 is not shown
    assert list(bars.marker.color).count(figures.NEGATIVE) == 5
    # the page sizes the charts (layout.GRAPH_HEIGHTS), never the figures
    assert all(fig.layout.height is None for fig in figs.values())


def test_outputs_of_the_refresh_callback_carry_their_units(tmp_path: Path) -> None:
    store = Store(url=str(tmp_path / "quant.duckdb"))
    populate(store)
    outputs = refresh(store, "historical")
    assert len(outputs) == len(OUTPUTS)
    kpis, note, table, badges, deployment, status, status_class = outputs[len(GRAPH_IDS) :]
    text = str(kpis)
    nav = NAV_VALUES[-1]
    assert "2024-03-08" in text and "constrained markowitz" in text
    assert "NAV (USD)" in text and f"${nav:,.0f}" in text
    assert f"+${nav - 1_000_000:,.0f}" in text  # cumulative P&L, signed
    assert f"1.60% · ${0.016 * nav:,.0f}" in text  # VaR 95 in % of NAV and in dollars
    assert str(table).count("Tr(") == 5  # header + 4 strategies
    assert "2.2%" in str(table)  # hrp's turnover per day, a percentage
    # each calendar year's net return, compounded by hand, and the costs paid (30 x 5 bps)
    years = sorted({d.year for d in BACKTEST_DAYS})
    hrp = BACKTEST_STRATEGIES.index("hrp")
    for year in years:
        assert f"Th('{year}')" in str(table) or f"children='{year}'" in str(table), year
        growth = math.prod(
            1 + backtest_net_return(hrp, k) for k, d in enumerate(BACKTEST_DAYS) if d.year == year
        )
        assert f"{growth - 1:.1%}" in str(table), year
    assert "costs paid" in str(table) and f"{30 * 0.0005:.2%}" in str(table)
    # how often each strategy was re-decided and the days the live rules fired
    assert "every session (live replay)" in str(table) and "drawdown-rule days" in str(table)
    assert "'17'" in str(table) and "'41'" in str(table)
    assert f"Stored backtest: {BACKTEST_DAYS[0]} to {BACKTEST_DAYS[-1]}" in str(note)
    assert "SEVERE" in str(badges) or "WARN" in str(badges)
    # the deployment: who trades, the canary's share, the test, the newest event first
    text = str(deployment)
    assert "v3" in text and "v7" in text and "canary_25 since 2024-03-08" in text
    assert "25%" in text and "p 0.0016" in text and "+0.0210 over 60 sessions" in text
    assert text.index("canary_25: 5 sessions") < text.index("challenger: passed")
    assert status.startswith("refreshed") and status_class == "status"


def test_money_is_written_in_dollars() -> None:
    assert figures.usd(1_234_567.4) == "$1,234,567"
    assert figures.usd(-1_234.5, signed=True) == "-$1,234"  # rounds half to even
    assert figures.usd(99.6, signed=True) == "+$100"


def _graphs(component: object) -> dict[str, Any]:
    """Every dcc.Graph under ``component`` by id."""
    if isinstance(component, dcc.Graph):
        return {str(getattr(component, "id", "")): component}
    found: dict[str, Any] = {}
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else [children]:
        if child is not None and not isinstance(child, str):
            found.update(_graphs(child))
    return found


def test_a_page_load_is_served_with_every_chart_drawn_in_a_sized_container(
    tmp_path: Path,
) -> None:
    store = Store(url=str(tmp_path / "quant.duckdb"))
    populate(store)
    page = create_app(store).layout()  # what one page load is served
    graphs = _graphs(page)
    assert list(graphs) == list(GRAPH_IDS)
    for graph_id, graph in graphs.items():
        assert not figures.is_empty_figure(graph.figure), graph_id
        assert graph.figure.data, graph_id
        assert graph.style == {"height": f"{GRAPH_HEIGHTS[graph_id]}px"}
        assert graph.responsive is True
    assert "refreshed" in str(page)


def test_a_page_load_on_an_unreadable_store_says_so_in_every_chart(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the store's folder should be")
    page = create_app(Store(url=str(blocker / "quant.duckdb"))).layout()
    graphs = _graphs(page)
    assert list(graphs) == list(GRAPH_IDS)
    for graph in graphs.values():
        assert "could not be read" in graph.figure.layout.annotations[0].text
    assert "store not readable" in str(page) and "status error" in str(page)


def test_the_backtest_command_selects_the_whole_backtest_multi_asset() -> None:
    from quant_assets.definitions import defs

    backtest = defs.resolve_assets_def("backtest")
    assert {key.to_user_string() for key in backtest.keys} == set(BACKTEST_KEYS)
    assert not backtest.can_subset  # a selection of fewer keys is refused
    assert "-m quant_assets.definitions" in BACKTEST_COMMAND
    assert f"--select {','.join(BACKTEST_KEYS)}" in BACKTEST_COMMAND


def test_each_refresh_rereads_the_store(tmp_path: Path) -> None:
    store = Store(url=str(tmp_path / "quant.duckdb"))
    populate(store)
    app = create_app(store, refresh_seconds=7)
    page = app.layout()
    (interval,) = [c for c in page.children if getattr(c, "id", None) == "refresh-interval"]
    assert interval.interval == 7_000
    before = refresh(store, "historical")
    # the pipeline stores the next session: the next tick shows it without a reload
    nxt = LAST + timedelta(days=3)
    store.write_partition(
        "target_weights",
        pl.DataFrame(
            {"date": [nxt], "method": [LIVE], "ticker": ["DDD"], "weight": [0.9], "is_live": [True]}
        ),
        nxt,
        nxt + timedelta(days=1),
    )
    after = refresh(store, "historical")
    tree_before, tree_after = before[0].data[0], after[0].data[0]
    assert "DDD" in tree_before.labels and "AAA" in tree_before.labels
    assert [label for label in tree_after.labels if not label.startswith("Live")] == [
        "Health Care",
        "DDD",
    ]
    assert str(nxt) in after[-2]


def test_sharpe_from_nav_matches_numpy() -> None:
    nav = pl.DataFrame({"date": NAV_DAYS, "nav": NAV_VALUES}).with_columns(
        pl.lit(0.0).alias("pnl"), pl.lit(0.0).alias("cumulative_pnl")
    )
    sharpe = sharpe_from_nav(nav, windows=(30,))
    r = np.diff(NAV_VALUES) / np.array(NAV_VALUES[:-1])
    window = r[-30:]
    expected = window.mean() / window.std(ddof=1) * math.sqrt(252)
    assert sharpe.height == len(r) - 29
    assert sharpe["sharpe"][-1] == pytest.approx(expected)
    assert sharpe["date"][-1] == LAST


def test_an_empty_store_renders_empty_states(tmp_path: Path) -> None:
    store = Store(url=str(tmp_path / "empty.duckdb"))
    data = load_dashboard_data(store)
    figs = build_figures(data)
    assert all(figures.is_empty_figure(f) for f in figs.values())
    for fig in figs.values():
        assert "No data yet" in fig.layout.annotations[0].text
    outputs = refresh(store, None)
    assert "no data" in str(outputs[len(GRAPH_IDS)])
    assert BACKTEST_COMMAND in str(outputs[len(GRAPH_IDS) + 1])  # how to fill the panel
    assert "drift_summary is empty" in str(outputs[len(GRAPH_IDS) + 3])
    assert "model_deployments is empty" in str(outputs[len(GRAPH_IDS) + 4])
    # and the app builds with its layout and callback
    app = create_app(store, refresh_seconds=5)
    assert app.layout is not None


def test_an_unreadable_store_keeps_the_page_and_says_so(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the store's folder should be")
    outputs = refresh(Store(url=str(blocker / "quant.duckdb")), "historical")
    status, status_class = outputs[-2:]
    assert status.startswith("store not readable") and status_class == "status error"


# --- the browser tests ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, or skip (fail under CI) when it is missing."""
    for candidate in (
        os.environ.get("QUANT_TEST_CHROMIUM"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    message = "chromium is not installed; `bash scripts/chromium.sh` installs Debian's package"
    if os.environ.get("CI"):
        pytest.fail(message + " [CI is set: the browser tests must run]", pytrace=False)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End the server we started and its children (its own process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _headless(profile: Path) -> tuple[str, ...]:
    """Chromium's flags for a headless page load in its own profile."""
    return (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
    )


def _chromium(chromium: str, profile: Path, *args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        [
            chromium,
            *_headless(profile),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@contextlib.contextmanager
def serve_dashboard(folder: Path, backtest: bool = True) -> Iterator[tuple[str, Path, Path]]:
    """``quant-dashboard`` (``main``) serving a populated DuckDB store on a free port: yields its
    URL, its log and the store's path."""
    folder.mkdir(parents=True, exist_ok=True)
    store_path = folder / "store" / "quant.duckdb"
    store = Store(url=str(store_path))
    populate(store, backtest=backtest)
    store.close()  # release the file for the server process
    port = _free_port()
    env = {**os.environ, "QUANT_STORE_URL": str(store_path), "QUANT_DASHBOARD_PORT": str(port)}
    log_path = folder / "dashboard.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "apps.dashboard.app", "--refresh-seconds", str(REFRESH_SECONDS)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for_http(url, proc, timeout=90)
        yield url, log_path, store_path
    finally:
        _stop(proc)
        log.close()


def _above_4(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


class DevTools:
    """One page of headless Chromium driven over the DevTools protocol on a pipe (Chromium
    reads commands on its fd 3 and answers on its fd 4): the page is laid out at the given
    viewport as a person's browser lays it out, and measured with JavaScript."""

    def __init__(self, chromium: str, profile: Path, width: int, height: int) -> None:
        to_browser, self._commands = os.pipe()
        self._replies, from_browser = os.pipe()
        # bash puts the two pipes on fds 3 and 4, then becomes Chromium; they are moved
        # above 4 first, so that neither redirection overwrites the other
        to_browser, from_browser = _above_4(to_browser), _above_4(from_browser)
        self._log_path = profile.with_suffix(".log")
        self._log = self._log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                "bash",  # dash's redirections take one-digit fds only
                "-c",
                f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser}',
                chromium,
                *_headless(profile),
                f"--window-size={width},{height}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            pass_fds=(to_browser, from_browser),
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            start_new_session=True,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._last_id = 0
        self._session: str | None = None
        self.exceptions: list[str] = []  # uncaught JavaScript errors of the page
        target = self.call("Target.createTarget", {"url": "about:blank"})
        attached = self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        self._session = attached["sessionId"]
        self.call("Runtime.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params or {}}
        if self._session:
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 60
        while True:
            reply = self._next_message(deadline)
            if reply.get("method") == "Runtime.exceptionThrown":
                details = reply["params"]["exceptionDetails"]
                self.exceptions.append(
                    str(details.get("exception", {}).get("description", details))
                )
            elif reply.get("id") == self._last_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result

    def _next_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._replies], [], [], left)[0]:
                raise AssertionError("Chromium did not answer within 60 s")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                log = self._log_path.read_text(errors="replace")[-2000:]
                raise AssertionError(f"Chromium closed its DevTools pipe: {log}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def evaluate(self, expression: str) -> Any:
        answer = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in answer:
            raise AssertionError(f"the page could not evaluate: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def close(self) -> None:
        os.close(self._commands)
        os.close(self._replies)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=20)
        self._log.close()


@contextlib.contextmanager
def devtools(chromium: str, profile: Path, width: int, height: int) -> Iterator[DevTools]:
    browser = DevTools(chromium, profile, width, height)
    try:
        yield browser
    finally:
        browser.close()


REFRESH_SECONDS = 60
VIEWPORTS = ((1600, 1200), (1024, 768))
BLOCK_IDS = ("kpis", "backtest-note", "backtest-table", "drift-badges", "deployment-badges")
# every chart's box, the box of its drawn SVG and its text; the other blocks' boxes; null
# until every chart has been drawn
MEASURE = """(() => {
  const graphs = __GRAPHS__.map(id => [id, document.getElementById(id)]);
  if (graphs.some(([, g]) => !g || !g.querySelector('.main-svg'))) return null;
  const box = e => {
    const r = e.getBoundingClientRect();
    return {top: r.top + scrollY, left: r.left + scrollX, width: r.width, height: r.height};
  };
  return {
    charts: Object.fromEntries(graphs.map(([id, g]) => [id, box(g)])),
    svgs: Object.fromEntries(graphs.map(([id, g]) => [id, box(g.querySelector('.main-svg'))])),
    chart_text: Object.fromEntries(graphs.map(([id, g]) => [id, g.textContent])),
    blocks: Object.fromEntries(__BLOCKS__.map(id => [id, box(document.getElementById(id))])),
    pending: document.querySelectorAll('.dash-graph--pending').length,
    text: document.body.innerText,
    width: document.documentElement.clientWidth,
  };
})()""".replace("__GRAPHS__", json.dumps(GRAPH_IDS)).replace("__BLOCKS__", json.dumps(BLOCK_IDS))


def _load(browser: DevTools, url: str) -> tuple[dict[str, Any], float]:
    """Navigate to ``url``; the page measured at the first moment every chart is drawn, and
    the seconds that took."""
    start = time.monotonic()
    browser.call("Page.navigate", {"url": url})
    while time.monotonic() - start < REFRESH_SECONDS:
        snapshot = browser.evaluate(MEASURE)
        if snapshot:
            return snapshot, time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"the charts were not drawn within {REFRESH_SECONDS} s")


def _settled(browser: DevTools) -> dict[str, Any]:
    """The page once Plotly has no pending redraw and its resize timers (100 ms) have run."""
    deadline = time.monotonic() + 30
    while browser.evaluate(MEASURE)["pending"] and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    snapshot: dict[str, Any] = browser.evaluate(MEASURE)
    return snapshot


def _overlap(a: dict[str, float], b: dict[str, float]) -> float:
    width = min(a["left"] + a["width"], b["left"] + b["width"]) - max(a["left"], b["left"])
    height = min(a["top"] + a["height"], b["top"] + b["height"]) - max(a["top"], b["top"])
    return max(width, 0.0) * max(height, 0.0)


def assert_laid_out(snapshot: dict[str, Any], when: str) -> None:
    """Every chart at its height and inside the page's width, drawn inside its box; no two
    charts or blocks overlapping."""
    for graph_id, box in snapshot["charts"].items():
        svg = snapshot["svgs"][graph_id]
        assert box["height"] == pytest.approx(GRAPH_HEIGHTS[graph_id], abs=1), (when, graph_id, box)
        assert svg["height"] == pytest.approx(box["height"], abs=1), (when, graph_id, svg, box)
        assert svg["width"] == pytest.approx(box["width"], abs=1), (when, graph_id, svg, box)
        assert svg["top"] == pytest.approx(box["top"], abs=1), (when, graph_id, svg, box)
        assert box["left"] >= 0 and box["left"] + box["width"] <= snapshot["width"] + 1, (
            when,
            graph_id,
            box,
        )
    boxes = {**snapshot["charts"], **snapshot["blocks"]}
    for (name_a, a), (name_b, b) in itertools.combinations(boxes.items(), 2):
        assert _overlap(a, b) < 1, f"{when}: {name_a} {a} overlaps {name_b} {b}"


def _posts(log: Path, offset: int) -> int:
    """Dash callback requests in the server's log after ``offset`` bytes."""
    return log.read_bytes()[offset:].count(b"POST /_dash-update-component")


@pytest.fixture(scope="module")
def served_dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    with serve_dashboard(tmp_path_factory.mktemp("dashboard")) as (url, log, _):
        yield url, log


@pytest.mark.parametrize(("width", "height"), VIEWPORTS, ids=lambda size: str(size))
def test_every_chart_has_its_size_on_the_first_render(
    chromium: str, served_dashboard: tuple[str, Path], tmp_path: Path, width: int, height: int
) -> None:
    url, log = served_dashboard
    offset = log.stat().st_size
    with devtools(chromium, tmp_path / "profile", width, height) as browser:
        first, seconds = _load(browser, url)
        # drawn from the page load itself: no refresh (callback) had run
        assert _posts(log, offset) == 0
        assert b"GET /_dash-layout" in log.read_bytes()[offset:]  # the log does record requests
        print(f"first render at {width}x{height}: {seconds:.2f} s")
        assert_laid_out(first, "first render")
        settled = _settled(browser)
        assert_laid_out(settled, "settled")
        assert settled["charts"] == first["charts"]
        assert not browser.exceptions
        shot = browser.call("Page.captureScreenshot", {"captureBeyondViewport": True})
    png = base64.b64decode(shot["data"])
    (tmp_path / f"dashboard_{width}x{height}.png").write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 100_000  # charts and colour

    text = settled["text"]
    for title in PANEL_TITLES:
        assert title in text
    nav = NAV_VALUES[-1]
    assert f"NAV (USD)\n${nav:,.0f}" in text
    assert f"+${nav - 1_000_000:,.0f}" in text
    assert f"1.60% · ${0.016 * nav:,.0f}" in text
    # the stored backtest: what it covers, its table with units, its equity curves in dollars
    assert f"Stored backtest: {BACKTEST_DAYS[0]} to {BACKTEST_DAYS[-1]}" in text
    assert "ensemble/black_litterman\t0.13\t1.0%\t17.8%" in text
    assert BACKTEST_COMMAND not in text
    charts = settled["chart_text"]
    assert (
        "value of $1 invested" in charts["backtest-equity"] and "hrp" in charts["backtest-equity"]
    )
    assert re.search(r"\$1\.0\d", charts["backtest-equity"])  # dollar ticks
    assert "% below the NAV peak" in charts["drawdown"]
    assert "one-day loss, % of NAV" in charts["tail-risk"]
    assert "Live book by sector and ticker" in charts["weights-treemap"]
    assert "champion vs challenger" in charts["shadow-record"]
    assert "champion v3" in charts["shadow-record"] and "challenger v7" in charts["shadow-record"]
    assert "CANARY SHARE\n25%" in text and "2024-03-08 v7 canary_25" in text
    assert "No data yet" not in " ".join(charts.values())


def test_the_backtest_panel_says_how_to_fill_it_then_shows_the_stored_result(
    chromium: str, tmp_path: Path
) -> None:
    with (
        serve_dashboard(tmp_path / "served", backtest=False) as (url, _, store_path),
        devtools(chromium, tmp_path / "profile", *VIEWPORTS[1]) as browser,
    ):
        before, _ = _load(browser, url)
        assert_laid_out(before, "no backtest")
        assert "No backtest stored yet." in before["text"]
        assert BACKTEST_COMMAND in before["text"]
        assert "No data yet" in before["chart_text"]["backtest-equity"]
        assert "Stored backtest" not in before["text"]

        # the backtest run stores its tables; the next page load shows them
        store = Store(url=str(store_path))
        _populate_backtest(store)
        store.close()
        after, _ = _load(browser, url)
        assert_laid_out(after, "backtest stored")
        assert BACKTEST_COMMAND not in after["text"]
        assert f"Stored backtest: {BACKTEST_DAYS[0]} to {BACKTEST_DAYS[-1]}" in after["text"]
        assert "benchmark/index\t1.12\t22.0%" in after["text"]
        assert "min_cvar" in after["chart_text"]["backtest-equity"]
        assert not browser.exceptions


def _graphql(url: str, query: str) -> dict[str, object]:
    import json

    request = urllib.request.Request(
        url,
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        payload: dict[str, object] = json.loads(response.read())
    return payload


def _wait_for_code_location(base: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Until the webserver reports the workspace's code location LOADED (the page would show
    a loading spinner before)."""
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    deadline = time.monotonic() + timeout
    status: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dagster-webserver exited with {proc.returncode}")
        try:
            payload = _graphql(base + "/graphql", query)
            workspace = payload["data"]["workspaceOrError"]  # type: ignore[index]
            status = [e["loadStatus"] for e in workspace["locationEntries"]]
            if status == ["LOADED"]:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError, KeyError, TypeError):
            pass
        time.sleep(1)
    raise AssertionError(f"the code location did not load within {timeout:.0f} s ({status})")


def test_dagster_ui_lists_every_asset(chromium: str, tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    # no onboarding dialog over the page, no telemetry
    (home / "dagster.yaml").write_text("nux:\n  enabled: false\ntelemetry:\n  enabled: false\n")
    port = _free_port()
    webserver = Path(sys.executable).with_name("dagster-webserver")
    log = (tmp_path / "webserver.log").open("wb")
    proc = subprocess.Popen(
        [str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env={**os.environ, "DAGSTER_HOME": str(home)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # the code location loads in the server's process meanwhile
        from quant_assets.definitions import defs

        graph = defs.resolve_asset_graph()
        expected = {"/".join(key.path) for key in graph.get_all_asset_keys()}
        _wait_for_http(base + "/server_info", proc, timeout=120)
        _wait_for_code_location(base, proc, timeout=240)
        listed: set[str] = set()
        for budget in (20_000, 60_000):  # a second, longer look on a slow machine
            dom = _chromium(
                chromium,
                tmp_path / f"profile-{budget}",
                f"--virtual-time-budget={budget}",
                # tall: a virtualised table renders only the rows in the viewport
                "--window-size=1400,6000",
                "--dump-dom",
                base + "/assets",
            )
            listed = set(re.findall(r'href="/assets/([^"?#]+)"', dom))
            if expected <= listed:
                break
        assert listed == expected, f"missing {expected - listed}, unexpected {listed - expected}"
        for name in expected:
            assert f">{name.split('/')[-1]}<" in dom
        shot = tmp_path / "dagster_assets.png"
        _chromium(
            chromium,
            tmp_path / "profile-shot",
            f"--virtual-time-budget={budget}",
            "--window-size=1400,1200",
            f"--screenshot={shot}",
            base + "/assets",
        )
        assert shot.stat().st_size > 20_000
    finally:
        _stop(proc)
        log.close()


def test_drift_badges_use_the_words_of_the_checks_and_the_pdf(tmp_path: Path) -> None:
    store = Store(url=str(tmp_path / "quant.duckdb"))
    populate(store)
    last = DAYS[-1]
    summary = pl.DataFrame(
        [
            (last, "feature_severity", 2.0),
            (last, "prediction_severity", None),
            (last, "explanation_severity", 1.0),
            (last, "sharpe_below_floor", None),
        ],
        schema=["date", "metric", "value"],
        orient="row",
    )
    store.write_partition("drift_summary", summary, last, last + timedelta(days=1))
    badges = str(refresh(store, "historical")[len(GRAPH_IDS) + 3])
    words = [severity_name(2.0), severity_name(None), severity_name(1.0)]
    assert words == ["ERROR", "NOT EVALUATED", "WARN"]
    for word in words:
        assert word in badges, word
    assert badges.count("NOT EVALUATED") == 2  # predictions and the Sharpe floor
    assert "SEVERE" not in badges and "n/a" not in badges


def test_the_shadow_record_compounds_each_books_net_returns(tmp_path: Path) -> None:
    store = Store(url=str(tmp_path / "quant.duckdb"))
    populate(store, backtest=False)
    data = load_dashboard_data(store)
    equity = shadow_equity(data.shadow_record, data.deployments)
    last = dict(equity.filter(pl.col("date") == LAST).select("book", "equity").iter_rows())
    assert last["champion v3"] == pytest.approx((1 + SHADOW_RETURNS["champion"]) ** len(DAYS))
    assert last["challenger v7"] == pytest.approx((1 + SHADOW_RETURNS["challenger"]) ** len(DAYS))
    fig = figures.shadow_record_figure(equity)
    assert [trace.name for trace in fig.data] == ["champion v3", "challenger v7"]
    # a pair no longer deployed is not drawn: the record of the latest deployment only
    moved = data.deployments.with_columns(pl.lit("8").alias("challenger_version"))
    assert shadow_equity(data.shadow_record, moved).is_empty()
