"""The dashboard (apps/dashboard): its figures from a small store, the page served by
``main`` and rendered in headless Chromium, and the Dagster UI's asset list in the same browser.

The browser tests need Debian's ``chromium`` (``bash scripts/chromium.sh`` installs it): they
are skipped without it locally and fail when ``CI`` is set, like the PostgreSQL tests.
"""

from __future__ import annotations

import math
import os
import re
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

import numpy as np
import plotly.graph_objects as go
import polars as pl
import pytest

from apps.dashboard import figures
from apps.dashboard.app import build_figures, create_app, refresh
from apps.dashboard.data import load_dashboard_data, sharpe_from_nav
from apps.dashboard.layout import GRAPH_IDS, PANEL_TITLES
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


def populate(store: Store) -> None:
    """A small store with every table the dashboard reads, and a second, non-live method
    whose rows must never show up."""
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
    store.replace_table(
        "backtest_metrics",
        pl.DataFrame(
            {
                "strategy": ["benchmark/index", "hrp", "ensemble/black_litterman", "min_cvar"],
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
                "n_obs": [748] * 4,
                "n_trials": [4] * 4,
                "mean_ic": [None, None, 0.036, None],
                "first_date": [date(2022, 1, 3)] * 4,
                "last_date": [date(2024, 12, 31)] * 4,
            }
        ),
    )
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
            "ks_pvalue": [0.5 - 0.02 * i for i in range(20)],
            "js_distance": [0.01 * i for i in range(20)],
            "drifted": [i >= 15 for i in range(20)],
        }
    )
    older = features.with_columns(pl.lit(DAYS[0]).alias("date"), pl.lit(9.9).alias("psi"))
    store.write_partition("feature_drift", pl.concat([older, features]), DAYS[0], end)


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

    # drift: severities per family and day, the latest report's most drifted features
    (heat,) = figs["drift-severity"].data
    assert list(heat.y) == ["features", "predictions", "explanations"]
    assert [list(row) for row in heat.z] == [[0, 1, 2, 0, 1], [0] * 5, [1] * 5]
    (bars,) = figs["drifted-features"].data
    assert list(bars.y)[::-1] == [f"F{i:02d}" for i in range(19, 4, -1)]
    assert list(bars.x)[-1] == pytest.approx(0.19)  # the older day's 9.9 is not shown
    assert list(bars.marker.color).count(figures.NEGATIVE) == 5


def test_outputs_of_the_refresh_callback(tmp_path: Path) -> None:
    store = Store(url=str(tmp_path / "quant.duckdb"))
    populate(store)
    outputs = refresh(store, "historical")
    assert len(outputs) == len(GRAPH_IDS) + 5
    kpis, table, badges, status, status_class = outputs[len(GRAPH_IDS) :]
    text = str(kpis)
    assert "2024-03-08" in text and "constrained markowitz" in text and "1.60%" in text  # VaR 95
    assert str(table).count("Tr(") == 5  # header + 4 strategies
    assert "SEVERE" in str(badges) or "WARN" in str(badges)
    assert status.startswith("refreshed") and status_class == "status"


def test_each_refresh_rereads_the_store(tmp_path: Path) -> None:
    store = Store(url=str(tmp_path / "quant.duckdb"))
    populate(store)
    app = create_app(store, refresh_seconds=7)
    (interval,) = [c for c in app.layout.children if getattr(c, "id", None) == "refresh-interval"]
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
    assert "backtest_metrics is empty" in str(outputs[len(GRAPH_IDS) + 1])
    assert "drift_summary is empty" in str(outputs[len(GRAPH_IDS) + 2])
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


def _chromium(chromium: str, profile: Path, *args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture
def dashboard_url(tmp_path: Path) -> Iterator[str]:
    """``quant-dashboard`` (``main``) serving a populated DuckDB store on a free port."""
    store_path = tmp_path / "store" / "quant.duckdb"
    store = Store(url=str(store_path))
    populate(store)
    store.close()  # release the file for the server process
    port = _free_port()
    env = {**os.environ, "QUANT_STORE_URL": str(store_path), "QUANT_DASHBOARD_PORT": str(port)}
    log = (tmp_path / "dashboard.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "apps.dashboard.app", "--refresh-seconds", "60"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for_http(url, proc, timeout=90)
        yield url
    finally:
        _stop(proc)
        log.close()


def test_dashboard_renders_in_headless_chromium(
    chromium: str, dashboard_url: str, tmp_path: Path
) -> None:
    dom = _chromium(
        chromium,
        tmp_path / "profile-dom",
        "--virtual-time-budget=15000",
        "--window-size=1400,2000",
        "--dump-dom",
        dashboard_url,
    )
    # every chart was drawn by plotly.js after the refresh callback filled it
    assert len(re.findall(r'class="[^"]*\bjs-plotly-plot\b', dom)) == len(GRAPH_IDS), dom[-3000:]
    assert dom.count('class="main-svg"') >= 2 * len(GRAPH_IDS)
    for title in PANEL_TITLES:
        assert f">{title}<" in dom
    # the charts' own titles and data (rendered SVG text), the key figures and the table
    for text in (
        "Live book by sector and ticker",
        "Top 15 tickers by risk contribution",
        "Rolling Sharpe ratio",
        "Drawdown of the paper account",
        "VaR 95%",
        "ensemble/black_litterman",
        "constrained markowitz",
        "refreshed",
    ):
        assert text in dom, text
    assert "No data yet" not in dom

    shot = tmp_path / "dashboard.png"
    _chromium(
        chromium,
        tmp_path / "profile-shot",
        "--virtual-time-budget=15000",
        "--window-size=1400,2000",
        f"--screenshot={shot}",
        dashboard_url,
    )
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1400, 2000)
    assert len(png) > 100_000  # charts and colour, not a blank page


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
            status = [e["loadStatus"] for e in workspace["locationEntries"]]  # type: ignore[index]
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
