"""daily_report: the PDF of a synthetic session, read back with pypdf, holds the right figures.

The store is a DuckDB file whose ``universe`` comes from a real materialization of the
synthetic market (30 tickers, so the sectors are the real ones); the account (``nav``,
``positions``, ``order_journal``), the live book's ``risk_metrics``, ``allocation_status`` and
``target_weights`` and ``drift_summary`` are written directly from seeded random numbers, and
every expected figure is recomputed here from those rows with plain Python, not with the
report's own code. The year turns inside the history, so the YTD return is measured against the
last NAV of 2023."""

from __future__ import annotations

import itertools
import math
import re
import statistics
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from pypdf import PdfReader

from quant_assets.ingest.assets import universe
from quant_assets.partitions import next_trading_day, previous_trading_day, trading_sessions
from quant_assets.reporting.assets import (
    daily_report,
    key_figures,
    nav_history,
    report_path,
    sector_weights,
)
from quant_assets.reporting.pdf import equity_chart
from resources.market_data.resource import MarketData
from resources.portfolio_policy import PortfolioPolicy
from resources.storage import Store

DAYS = trading_sessions(date(2023, 12, 11), date(2024, 1, 12))  # 20 sessions over the new year
DAY = DAYS[-3]  # 2024-01-09
CASH = 1_000_000.0
RANGE = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def _money(value: float, signed: bool = False) -> str:
    sign = "-" if value < 0 else ("+" if signed and value > 0 else "")
    return f"{sign}${abs(value):,.2f}"


def _pct(value: float, signed: bool = False) -> str:
    return f"{value * 100:+,.2f}%" if signed else f"{value * 100:,.2f}%"


def _account(tickers: list[str]) -> dict[str, pl.DataFrame]:
    """Seeded account rows: a NAV path with a drawdown, 12 positions a day, the journal."""
    rng = np.random.default_rng(11)
    returns = rng.normal(0.0005, 0.008, len(DAYS))
    returns[0] = 0.0
    returns[5:8] = -0.02  # a drawdown before the year end
    navs = CASH * np.cumprod(1 + returns)
    held = tickers[:12]
    position_rows, nav_rows, journal_rows = [], [], []
    for i, day in enumerate(DAYS):
        closes = rng.uniform(20, 400, len(held)).round(2)
        qty = rng.integers(50, 800, len(held))
        value = float((closes * qty).sum())
        position_rows += [
            {
                "date": day,
                "ticker": t,
                "qty": int(q),
                "close": float(c),
                "market_value": float(q * c),
                "weight": float(q * c) / navs[i],
            }
            for t, q, c in zip(held, qty, closes, strict=True)
        ]
        # the orders decided on this day: filled ones (next session) and a rejected one
        fills = [
            {
                "ticker": t,
                "side": "buy" if k % 2 == 0 else "sell",
                "qty": 100 + 10 * k,
                "price": 50.0 + k + i,
                "fees": 0.25 + 0.01 * k,
            }
            for k, t in enumerate(tickers[12 : 12 + 3 + i % 3])
        ]
        journal_rows += [
            {
                "date": day,
                "client_order_id": f"{day:%Y%m%d}-quant50-{f['ticker']}-{f['side']}",
                "broker": "simulated",
                "strategy": "quant50",
                "ticker": f["ticker"],
                "side": f["side"],
                "qty": f["qty"],
                "reference_price": f["price"] - 0.1,
                "limit_price": round(f["price"] * 1.05, 2),
                "status": "FILLED",
                "filled_qty": f["qty"],
                "avg_fill_price": f["price"],
                "fees": f["fees"],
                "reason": None,
                "broker_order_id": f"sim-{day}-{f['ticker']}",
                "updated_at": "2024-01-01T00:00:00Z",
            }
            for f in fills
        ]
        journal_rows.append(
            {
                "date": day,
                "client_order_id": f"{day:%Y%m%d}-quant50-{tickers[20]}-buy",
                "broker": "simulated",
                "strategy": "quant50",
                "ticker": tickers[20],
                "side": "buy",
                "qty": 9000,
                "reference_price": 30.0,
                "limit_price": 31.5,
                "status": "REJECTED",
                "filled_qty": 0,
                "avg_fill_price": None,
                "fees": 0.0,
                "reason": "notional over the limit",
                "broker_order_id": None,
                "updated_at": "2024-01-01T00:00:00Z",
            }
        )
        previous_fills = [
            r
            for r in journal_rows
            if r["date"] == previous_trading_day(day) and r["filled_qty"] > 0
        ]
        fees = sum(r["fees"] for r in previous_fills)
        traded = sum(r["filled_qty"] * r["avg_fill_price"] for r in previous_fills)
        nav_rows.append(
            {
                "date": day,
                "cash": navs[i] - value,
                "positions_value": value,
                "nav": navs[i],
                "pnl": navs[i] - navs[i - 1] if i else 0.0,
                "gross_pnl": (navs[i] - navs[i - 1] if i else 0.0) + fees,
                "cumulative_pnl": navs[i] - CASH,
                "fees": fees,
                "traded_notional": traded,
                "turnover": traded / navs[i - 1] if i else 0.0,
                "implementation_shortfall": fees,
                "names": len(held),
            }
        )
    return {
        "nav": pl.DataFrame(nav_rows),
        "positions": pl.DataFrame(position_rows),
        "order_journal": pl.DataFrame(journal_rows),
    }


def _live_book(tickers: list[str]) -> dict[str, pl.DataFrame]:
    metrics = {
        "realised_drawdown": 0.031,
        "realised_sessions": 40.0,
        "risk_increasing_names": 0.0,
        "stop_loss_breaches": 0.0,
        "max_sector_weight": 0.3125,  # over the 25% cap: BREACHED
        "max_position": 0.08,
        "top10_weight": 0.55,
        "ex_ante_vol": 0.0875,
    }
    risk = pl.DataFrame(
        [
            {"date": d, "method": "constrained_markowitz", "is_live": True, "metric": m, "value": v}
            for d in DAYS
            for m, v in metrics.items()
        ]
    )
    status = pl.DataFrame(
        [
            {
                "date": d,
                "method": "constrained_markowitz",
                "is_live": True,
                "feasible": True,
                "status": "optimal",
                "names": 14,
                "invested": 0.9,
                "turnover": 0.05,
                "ex_ante_vol": 0.0875,
                "seconds": 1.0,
                "stopped": 0,
                "risk_reducing": False,
            }
            for d in DAYS
        ]
    )
    targets = pl.DataFrame(
        [
            {"date": d, "method": "constrained_markowitz", "ticker": t, "weight": 0.06,
             "is_live": True}
            for d in DAYS
            for t in tickers[:14]
        ]
    )  # fmt: skip
    drift = pl.DataFrame(
        [
            {"date": d, "metric": m, "value": v}
            for d in DAYS
            for m, v in {
                "drifted_share": 0.4125,
                "drifted_features": 66.0,
                "tested_features": 160.0,
                "prediction_psi": 0.0421,
                "shap_rank_corr": 0.8123,
                "sharpe_30": 1.234,
                "sharpe_60": 0.567,
                "sharpe_90": None,
                "feature_severity": 1.0,
                "prediction_severity": 0.0,
                "explanation_severity": 0.0,
                "sharpe_below_floor": 0.0,
            }.items()
        ],
        schema={"date": pl.Date, "metric": pl.String, "value": pl.Float64},
    )
    canary = [d == DAY for d in DAYS]
    deployments = pl.DataFrame(
        {
            "date": DAYS,
            "champion_version": ["3"] * len(DAYS),
            "challenger_version": ["7"] * len(DAYS),
            "stage": ["canary_25" if c else "shadow" for c in canary],
            "canary_step": [1 if c else -1 for c in canary],
            "canary_fraction": [0.25 if c else 0.0 for c in canary],
            "stage_start": [DAY if c else DAYS[0] for c in canary],
            "shadow_start": [DAYS[0]] * len(DAYS),
            "canary_start": [DAY if c else None for c in canary],
            "sessions_in_stage": [0] * len(DAYS),
            "last_week": [DAYS[0]] * len(DAYS),
            "test_sessions": [60 if c else None for c in canary],
            "ic_difference": [0.0213 if c else None for c in canary],
            "ic_difference_t": [3.2 if c else None for c in canary],
            "ic_difference_p": [0.0011 if c else None for c in canary],
        }
    )
    events = pl.DataFrame(
        {
            "date": [DAYS[0], DAY, DAYS[-1]],
            "version": ["7", "7", "7"],
            "event": ["challenger", "canary_25", "canary_100"],
            "reason": ["passed the weekly gate: shadow", "5 sessions at canary_5", "later"],
        }
    )
    return {
        "risk_metrics": risk,
        "allocation_status": status,
        "target_weights": targets,
        "drift_summary": drift,
        "model_deployments": deployments,
        "model_events": events,
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Iterator[Store]:
    store = Store(url=str(tmp_path_factory.mktemp("report") / "quant.duckdb"))
    resources = {"store": store, "market_data": MarketData(n_tickers=30)}
    assert dg.materialize([universe], resources=resources).success
    tickers = store.read("universe").filter(~pl.col("is_benchmark"))["ticker"].sort().to_list()
    for table, frame in {**_account(tickers), **_live_book(tickers)}.items():
        store.write_partition(table, frame, DAYS[0], next_trading_day(DAYS[-1]))
    yield store


def _report(store: Store, first: date, last: date | None = None) -> dg.ExecuteInProcessResult:
    tags = dict(zip(RANGE, (first.isoformat(), (last or first).isoformat()), strict=True))
    return dg.materialize(
        [daily_report],
        resources={"store": store, "portfolio_policy": PortfolioPolicy()},
        tags=tags,
        raise_on_error=False,
    )


def _text(path: Path) -> str:
    """The PDF's text, laid out (a table row on one line), runs of spaces collapsed."""
    pages = [page.extract_text(extraction_mode="layout") for page in PdfReader(path).pages]
    lines = (re.sub(r"\s+", " ", line).strip() for page in pages for line in page.splitlines())
    return "\n".join(line for line in lines if line)


def _line(text: str, start: str) -> str:
    """The first extracted line starting with ``start`` (one table row)."""
    lines = [line for line in text.splitlines() if line.startswith(start)]
    assert lines, f"no line starting with {start!r} in:\n{text}"
    return lines[0]


def test_the_pdf_of_a_session_holds_its_figures(store):
    result = _report(store, DAYS[-4], DAY)  # a two-session run: one file per session
    assert result.success
    path = report_path(DAY)
    assert path.name == "report_20240109.pdf"
    assert report_path(DAYS[-4]).exists() and not report_path(DAYS[-1]).exists()
    materialization = result.asset_materializations_for_node("daily_report")[0]
    assert materialization.metadata["report"].value == str(path)
    text = _text(path)
    assert "Daily report 2024-01-09" in text

    # independently: the NAV history, P&L, YTD against the last NAV of 2023
    navs = store.read("nav").sort("date")
    rows = [r for r in navs.iter_rows(named=True) if r["date"] <= DAY]
    today = rows[-1]
    last_2023 = next(r for r in reversed(rows) if r["date"].year == 2023)
    ytd = today["nav"] / last_2023["nav"] - 1
    peak, worst = -math.inf, 0.0
    for r in rows:
        peak = max(peak, r["nav"])
        worst = max(worst, 1 - r["nav"] / peak)
    daily = [b["nav"] / a["nav"] - 1 for a, b in itertools.pairwise(rows)]
    assert worst > 0.04  # the planted drawdown
    assert f"NAV\n{_money(today['nav'])}" in text or _money(today["nav"]) in text
    for figure in (
        _money(today["nav"]),
        _money(today["pnl"], signed=True),
        _money(today["cumulative_pnl"], signed=True),
        _pct(ytd, signed=True),
        _pct(worst),
        _pct(today["turnover"]),
        f"since {last_2023['date']}",
    ):
        assert figure in text, figure
    assert materialization.metadata["nav"].value == pytest.approx(today["nav"])
    assert materialization.metadata["ytd_return"].value == pytest.approx(ytd)
    # 19 daily returns: too few for an annualised volatility, and the report says so
    assert len(daily) == 19 and "Volatility (annualised, 19 returns)" in text
    assert "n/a: 19 of 20" in text
    # each table says which book it describes
    assert "Holdings (held book at the close)" in text and "Risk limits (target book)" in text

    # the largest holding by market value, its weight and its sector
    held = [r for r in store.read("positions").iter_rows(named=True) if r["date"] == DAY]
    top = max(held, key=lambda r: r["market_value"])
    sector_of = dict(store.read("universe").select("ticker", "sector").iter_rows())
    top_line = _line(text, f"{top['ticker']} ")
    assert sector_of[top["ticker"]] in top_line
    assert _money(top["market_value"]) in top_line and _pct(top["weight"]) in top_line
    assert "6.00%" in top_line  # its live target weight
    # sector weights of the whole book, and the cash left
    by_sector: dict[str, float] = {}
    for r in held:
        by_sector[sector_of[r["ticker"]]] = by_sector.get(sector_of[r["ticker"]], 0.0) + r["weight"]
    largest = max(by_sector, key=lambda s: by_sector[s])
    assert f"{largest} {_pct(by_sector[largest])}" in text
    assert f"Cash {_pct(today['cash'] / today['nav'])}" in text

    # executed orders: yesterday's decisions filled today, today's with their status
    journal = store.read("order_journal")
    filled = journal.filter(
        (pl.col("date") == previous_trading_day(DAY)) & (pl.col("filled_qty") > 0)
    )
    assert filled.height > 0
    for r in filled.iter_rows(named=True):
        line = _line(text, f"{r['ticker']} {r['side'].upper()} ")
        assert (
            f"{r['filled_qty']:,d}" in line
            and _money(r["filled_qty"] * r["avg_fill_price"]) in line
        )
    assert f"{filled.height} filled" in text and _money(today["fees"]) in text
    decided = journal.filter(pl.col("date") == DAY)
    assert "1 REJECTED" in text and "notional over the limit" in text
    assert f"{decided.height - 1} FILLED" in text

    # risk limits: the sector cap is breached, the others are within
    assert "BREACHED" in _line(text, "Sector cap")
    assert "31.25%" in _line(text, "Sector cap") and "25.00%" in _line(text, "Sector cap")
    for limit in ("Stop-loss", "Concentration", "Volatility band"):
        assert _line(text, limit).endswith("OK"), _line(text, limit)
    assert materialization.metadata["limits_not_ok"].value == ["Sector cap"]

    # drift status
    assert "41.25% (66 of 160)" in _line(text, "Drifted features")
    assert _line(text, "Drifted features").endswith("WARN")
    assert "0.042" in _line(text, "Prediction PSI") and "0.812" in _line(text, "SHAP rank")
    assert "1.23" in _line(text, "Live book Sharpe, 30") and "n/a" in _line(
        text, "Live book Sharpe, 90"
    )

    # the deployment of the day: who traded, the canary's share, the test, events to the day
    assert "Model deployment" in text
    assert "champion: v3" in text and "challenger: v7 (canary_25 since 2024-01-09)" in text
    assert "canary share: 25.00%" in text
    assert "+0.0213 a day over 60 sessions, p 0.0011" in text.replace("\n", " ")
    assert _line(text, "2024-01-09 canary_25").endswith("v7")
    assert "later" not in text  # an event after the day is not the day's
    earlier = _text(report_path(DAYS[-4]))
    assert "challenger: v7 (shadow since" in earlier and "NOT EVALUATED" in earlier


def test_a_session_without_nav_fails_clearly(store):
    missing = next_trading_day(DAYS[-1])
    result = _report(store, DAYS[-1], missing)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None and "materialize nav first" in failure.message
    assert str(missing) in failure.message
    assert not report_path(DAYS[-1]).exists()  # nothing written for the run


def test_rematerializing_a_session_replaces_its_file(store):
    assert _report(store, DAY).success
    first = _text(report_path(DAY))
    navs = store.read("nav", DAY, next_trading_day(DAY))
    bumped = navs.with_columns(pl.col("nav") + 12_345.67, pl.col("cash") + 12_345.67)
    store.write_partition("nav", bumped, DAY, next_trading_day(DAY))
    try:
        assert _report(store, DAY).success
    finally:
        store.write_partition("nav", navs, DAY, next_trading_day(DAY))
    second = _text(report_path(DAY))
    old, new = _money(navs["nav"][0]), _money(bumped["nav"][0])
    assert old in first and new not in first
    assert new in second and old not in second
    assert sorted(p.name for p in report_path(DAY).parent.iterdir() if p.is_file()) == [
        "report_20240109.pdf"
    ]


def test_ytd_starts_at_the_first_nav_when_the_account_opened_this_year():
    navs = pl.DataFrame(
        {
            "date": [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)],
            "cash": [100.0, 50.0, 50.0],
            "positions_value": [0.0, 60.0, 40.0],
            "nav": [100.0, 110.0, 90.0],
            "pnl": [0.0, 10.0, -20.0],
            "gross_pnl": [0.0, 10.0, -20.0],
            "cumulative_pnl": [0.0, 10.0, -10.0],
            "fees": [0.0, 0.0, 0.0],
            "traded_notional": [0.0, 60.0, 0.0],
            "turnover": [0.0, 0.6, 0.0],
            "names": [0, 1, 1],
        }
    )
    figures = key_figures(navs, date(2024, 1, 4))
    assert figures.ytd_base_date == date(2024, 1, 2)
    assert figures.ytd_return == pytest.approx(-0.1)
    assert figures.max_drawdown == pytest.approx(20 / 110)
    # two returns annualise to noise: not shown
    assert figures.returns == 2 and math.isnan(figures.volatility)


def test_the_reports_sector_weights_show_each_unclassified_name_on_its_own_row():
    held = pl.DataFrame({"ticker": ["AAA", "BBB", "CCC", "GONE"], "weight": [0.2, 0.15, 0.1, 0.05]})
    sectors = pl.DataFrame(
        {"ticker": ["AAA", "BBB", "CCC"], "sector": ["Unclassified", "Unclassified", "Energy"]}
    )
    table = sector_weights(held, sectors, cash_weight=0.5)
    assert table.rows() == [
        ("Unclassified (AAA)", 0.2),
        ("Unclassified (BBB)", 0.15),
        ("Energy", 0.1),
        ("Unclassified (GONE)", 0.05),  # a name the universe no longer lists
        ("Cash", 0.5),
    ]


def test_annualised_volatility_needs_twenty_returns_and_daily_charts_tick_by_day():
    days = trading_sessions(date(2024, 3, 1), date(2024, 3, 8))
    navs = pl.DataFrame(
        {
            "date": days,
            "nav": [1e6, 1.01e6, 0.99e6, 1.02e6, 1.0e6],
            **{c: 0.0 for c in ("cash", "positions_value", "pnl", "gross_pnl")},
            **{c: 0.0 for c in ("cumulative_pnl", "fees", "traded_notional", "turnover")},
            "names": 3,
        }
    )
    figures = key_figures(navs, days[-1])
    assert figures.returns == 4 and math.isnan(figures.volatility)
    # a few sessions: one tick a day at most, labelled by day, never by hour
    longer = trading_sessions(date(2024, 3, 1), date(2024, 4, 3))
    rng = np.random.default_rng(0)
    path = 1e6 * np.cumprod(1 + rng.normal(0, 0.01, len(longer)))
    enough = navs.head(0).vstack(
        pl.DataFrame({"date": longer, "nav": path})
        .join(navs.drop("date", "nav").head(1), how="cross")
        .select(navs.columns)
    )
    figures = key_figures(enough, longer[-1])
    returns = path[1:] / path[:-1] - 1
    assert figures.returns == len(longer) - 1 >= 20
    assert figures.volatility == pytest.approx(statistics.stdev(returns) * math.sqrt(252))
    figure = equity_chart(nav_history(navs, days[-1]))
    figure.canvas.draw()
    axis = figure.axes[0]
    labels = [t.get_text() for t in axis.get_xticklabels() if t.get_text()]
    assert labels and all(":" not in label for label in labels), labels
    ticks = axis.get_xticks()
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(ticks))
