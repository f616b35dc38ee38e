"""``daily_report``: one PDF per session for the portfolio manager, from what the store holds.

For a session ``d`` the report reads ``nav`` (the whole history up to ``d``), ``positions``,
``order_journal``, the live book's ``risk_metrics``, ``allocation_status`` and
``target_weights``, ``drift_summary`` and the ``universe``'s sectors, and shows:

* key figures: NAV, daily and cumulative P&L (the ``nav`` row), YTD return (NAV against the
  last NAV of the previous year, or the first NAV of the year when the account started this
  year), maximum and current drawdown and annualised volatility (daily NAV returns x
  sqrt(252)) of the NAV history so far, the day's turnover (traded notional / previous NAV);
* charts: the equity curve, its drawdown and the sector weights;
* the ten largest holdings by market value with their weight of NAV and the day's live target
  weight, and the whole book's sector weights (positions joined with the universe) plus cash;
* executed orders, following the account's timing (``execution/accounting.py``): orders are
  decided at a session's close and fill during the next one, so the fills that changed
  ``d``'s account are the orders *decided at the previous session's close* (their fees and
  notional are ``nav``'s); the orders decided at ``d``'s own close are listed with their
  status (they fill the next session);
* the risk limits of the live book (``portfolio/limits.py``: the blocking checks' own rules,
  with the ``portfolio_policy`` resource's thresholds), each OK / BREACHED / NOT EVALUATED;
* the drift status of ``drift_report``: drifted feature share, prediction PSI, SHAP rank
  correlation with their stored severities, and the live book's rolling Sharpe.

Written to ``<data dir>/reports/report_YYYYMMDD.pdf`` (replaced on a re-run).
"""

import math
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from quant_assets.execution.assets import nav, paper_orders, positions
from quant_assets.metadata import NOT_EVALUATED
from quant_assets.monitoring.drift import DriftThresholds, severity_name
from quant_assets.partitions import (
    daily_partitions,
    next_trading_day,
    partition_dates,
    previous_trading_day,
    trading_sessions,
)
from quant_assets.reporting.pdf import KeyFigures, ReportData, number, pct, write_report
from quant_assets.risk.assets import risk_metrics
from quant_assets.risk.limits import breached_limits, limit_rules, live_metrics
from quant_core.conventions import MIN_ANNUALISED_RETURNS
from quant_core.metrics import nav_drawdown, realised_volatility
from quant_core.sectors import sector_group_expr
from resources.portfolio_policy import PortfolioPolicy
from resources.settings import data_dir
from resources.storage import Store

TOP_HOLDINGS = 10
# the deployment events the report lists, newest first
MAX_EVENTS = 8

LIMIT_LABELS = {
    "live_book_only_reduces_risk_beyond_max_drawdown": "Max drawdown (risk-reducing only)",
    "live_positions_within_stop_loss": "Stop-loss",
    "live_book_within_sector_cap": "Sector cap",
    "live_book_within_concentration_limits": "Concentration",
    "live_book_within_volatility_band": "Volatility band (ex-ante)",
}
# risk_metrics figures that are counts, not fractions
COUNT_METRICS = {"realised_sessions", "risk_increasing_names", "stop_loss_breaches"}


def report_dir() -> Path:
    path = data_dir() / "reports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def report_path(day: date) -> Path:
    """``<data dir>/reports/report_YYYYMMDD.pdf``."""
    return report_dir() / f"report_{day:%Y%m%d}.pdf"


def nav_history(navs: pl.DataFrame, day: date) -> pl.DataFrame:
    """``date, nav, return, drawdown`` of the NAV rows up to ``day`` (drawdown <= 0)."""
    return (
        navs.filter(pl.col("date") <= day)
        .sort("date")
        .select(
            "date",
            "nav",
            (pl.col("nav") / pl.col("nav").shift(1) - 1.0).alias("return"),
            (-nav_drawdown(pl.col("nav"))).alias("drawdown"),
        )
    )


def key_figures(navs: pl.DataFrame, day: date) -> KeyFigures:
    """The session's headline numbers from the ``nav`` rows up to ``day`` (which must hold
    ``day``'s row)."""
    history = nav_history(navs, day)
    row = navs.filter(pl.col("date") == day).row(0, named=True)
    new_year = date(day.year, 1, 1)
    before = history.filter(pl.col("date") < new_year).tail(1)
    base = before if before.height else history.filter(pl.col("date") >= new_year).head(1)
    stats = history.select(
        (-pl.col("drawdown").min()).alias("max_drawdown"),
        (-pl.col("drawdown").last()).alias("current_drawdown"),
    ).row(0, named=True)
    returns = history["return"].drop_nulls().to_numpy()
    # annualised from a handful of returns would be noise dressed as a figure
    volatility = (
        realised_volatility(returns) if returns.size >= MIN_ANNUALISED_RETURNS else math.nan
    )
    return KeyFigures(
        nav=float(row["nav"]),
        cash=float(row["cash"]),
        positions_value=float(row["positions_value"]),
        pnl=float(row["pnl"]),
        gross_pnl=float(row["gross_pnl"]),
        cumulative_pnl=float(row["cumulative_pnl"]),
        ytd_return=float(row["nav"]) / float(base["nav"][0]) - 1.0,
        ytd_base_date=base["date"][0],
        max_drawdown=float(stats["max_drawdown"]),
        current_drawdown=float(stats["current_drawdown"]),
        volatility=volatility,
        turnover=float(row["turnover"]),
        fees=float(row["fees"]),
        traded_notional=float(row["traded_notional"]),
        names=int(row["names"]),
        sessions=history.height,
        returns=int(returns.size),
    )


def _figure(metric: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    return number(value, 0) if metric in COUNT_METRICS else pct(value)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _threshold(name: str, value: float) -> str:
    if name == "vol_multiple":
        return f"{value:g}x vol"
    if name == "vol_window":
        return f"{value:g} sessions"
    return f"{name.replace('_', ' ')} {pct(value)}"


def limits_table(risk: pl.DataFrame, breached: list[str], policy: PortfolioPolicy) -> pl.DataFrame:
    """``limit, figures, threshold, status`` of every risk limit of the live book, from the
    day's live ``risk_metrics`` rows and the breached limits (``breached_limits``)."""
    rows = []
    for name, rule in limit_rules(policy).items():
        live = live_metrics(risk, rule.metrics)
        values = live.row(0, named=True) if live.height else {}
        measured = all(_finite(values.get(m)) for m in rule.required)
        figures = ", ".join(
            f"{m.replace('_', ' ')} {_figure(m, values.get(m))}" for m in rule.metrics
        )
        status = "BREACHED" if name in breached else "OK"
        if not measured:
            status = NOT_EVALUATED
        rows.append(
            {
                "limit": LIMIT_LABELS.get(name, name.replace("_", " ")),
                "figures": figures,
                "threshold": ", ".join(_threshold(k, v) for k, v in rule.limits.items()),
                "status": status,
            }
        )
    return pl.DataFrame(
        rows, schema={c: pl.String for c in ("limit", "figures", "threshold", "status")}
    )


def drift_table(summary: pl.DataFrame, limits: DriftThresholds | None = None) -> pl.DataFrame:
    """``measure, value, threshold, status`` of the day's ``drift_summary`` (``metric,
    value``): the three drift families with their stored severity and the rolling Sharpe.
    The severities are drift_report's; the thresholds shown are ``limits`` (its defaults)."""
    t = limits or DriftThresholds()
    values: dict[str, float | None] = dict(summary.select("metric", "value").iter_rows())

    def get(metric: str) -> float | None:
        value = values.get(metric)
        return None if value is None or math.isnan(value) else value

    def severity(metric: str) -> str:
        value = get(metric)
        return severity_name(value)

    drifted, tested = get("drifted_features"), get("tested_features")
    share = pct(get("drifted_share"))
    if drifted is not None and tested is not None:
        share += f" ({drifted:,.0f} of {tested:,.0f})"
    rows = [
        (
            "Drifted features (share)",
            share,
            f"warn from 1 (family-wise p <= {t.alarm_pvalue:g}), severe {t.share_severe:.0%}",
            severity("feature_severity"),
        ),
        (
            "Prediction PSI (ensemble score)",
            number(get("prediction_psi"), 3),
            f"warn {t.prediction_psi_warn:.2f}, severe {t.prediction_psi_severe:.2f}",
            severity("prediction_severity"),
        ),
        (
            "SHAP rank correlation",
            number(get("shap_rank_corr"), 3),
            f"warn below {t.shap_rank_corr_warn:.2f}",
            severity("explanation_severity"),
        ),
        *(
            (f"Live book Sharpe, {w} sessions", number(get(f"sharpe_{w}"), 2), "", "")
            for w in (30, 60, 90)
        ),
        _sharpe_floor_row(get("sharpe_below_floor"), get("live_sessions"), t),
    ]
    return pl.DataFrame(
        rows, schema=["measure", "value", "threshold", "status"], orient="row"
    ).with_columns(pl.col("status").replace("", "-"))


def _sharpe_floor_row(
    below: float | None, live_sessions: float | None, t: DriftThresholds
) -> tuple[str, str, str, str]:
    """The Sharpe-floor row: NOT EVALUATED, with the history it has, until the live book has
    ``sharpe_window`` sessions of returns."""
    measure = f"Sharpe below floor ({t.sharpe_window} sessions)"
    floor = f"floor {t.sharpe_floor:.2f}"
    if below is None:
        sessions = f"{live_sessions:,.0f}" if live_sessions is not None else "no"
        return measure, f"n/a: {sessions} of {t.sharpe_window} sessions", floor, NOT_EVALUATED
    return measure, "yes" if below else "no", floor, "WARN" if below else "OK"


def sector_weights(held: pl.DataFrame, sectors: pl.DataFrame, cash_weight: float) -> pl.DataFrame:
    """``sector, weight`` of NAV of the positions (``ticker, weight``), largest first, then
    cash; each unclassified name is its own row (``Unclassified (XYZ)``), as in the sector cap."""
    weights = (
        held.select("ticker", "weight")
        .join(sectors, on="ticker", how="left")
        .group_by(sector_group_expr())
        .agg(pl.col("weight").sum())
        .sort("weight", "sector", descending=[True, False])
    )
    cash = pl.DataFrame({"sector": ["Cash"], "weight": [cash_weight]})
    return pl.concat([weights, cash])


@dataclass(frozen=True)
class _Stored:
    """The tables a run's reports are made of, each read once for all its sessions."""

    navs: pl.DataFrame
    held: pl.DataFrame
    journal: pl.DataFrame
    risk: pl.DataFrame
    drift: pl.DataFrame
    status: pl.DataFrame
    targets: pl.DataFrame
    sectors: pl.DataFrame
    deployments: pl.DataFrame
    events: pl.DataFrame

    @classmethod
    def read(cls, store: Store, days: list[date]) -> "_Stored":
        first, end = days[0], next_trading_day(days[-1])
        navs = store.read("nav", None, end)
        missing = sorted(set(days) - set(navs["date"].to_list()))
        if missing:
            raise dg.Failure(
                f"no nav row stored for {', '.join(map(str, missing))}: materialize nav first",
                metadata={"missing_sessions": len(missing)},
            )
        live = {"is_live": [True]}
        return cls(
            navs=navs,
            held=store.read("positions", first, end),
            journal=store.read("order_journal", previous_trading_day(first), end),
            risk=store.read("risk_metrics", first, end, where=live),
            drift=store.read("drift_summary", first, end),
            status=store.read("allocation_status", first, end, where=live),
            targets=store.read(
                "target_weights", first, end, columns=["date", "ticker", "weight"], where=live
            ),
            sectors=store.read("universe", columns=["ticker", "sector"]),
            deployments=store.read("model_deployments", first, end),
            events=store.read("model_events", None, end),
        )


def _top_holdings(book: pl.DataFrame, targets: pl.DataFrame) -> pl.DataFrame:
    """The ``TOP_HOLDINGS`` largest positions of the day's ``book`` by market value, with the
    day's live target weight (``targets``: the day's ``target_weights`` rows)."""
    return (
        book.sort("market_value", "ticker", descending=[True, False])
        .head(TOP_HOLDINGS)
        .join(
            targets.select("ticker", pl.col("weight").alias("target_weight")),
            on="ticker",
            how="left",
            maintain_order="left",
        )
        .select("ticker", "sector", "qty", "close", "market_value", "weight", "target_weight")
    )


def _live_book(status: pl.DataFrame) -> dict[str, str]:
    """The live book's allocation status of the day (its ``allocation_status`` rows) as text."""
    if not status.height:
        return {}
    row = status.row(0, named=True)
    return {
        "method": str(row["method"]),
        "feasible": "yes" if row["feasible"] else f"no ({row['status']})",
        "names": str(row["names"]),
        "invested": pct(row["invested"]),
        "ex_ante_vol": pct(row["ex_ante_vol"]),
        "risk_reducing_only": "yes" if row["risk_reducing"] else "no",
    }


def deployment_text(row: dict[str, Any] | None) -> dict[str, str]:
    """A session's ``model_deployments`` row as the report's labelled text (empty if none)."""
    if row is None:
        return {}
    challenger = row["challenger_version"]
    text = {
        "champion": f"v{row['champion_version']}",
        "challenger": f"v{challenger} ({row['stage']} since {row['stage_start']})"
        if challenger
        else "none",
        "canary_share": pct(row["canary_fraction"]),
    }
    if challenger:
        p = row["ic_difference_p"]
        text["promotion_test"] = (
            f"Rank IC difference {row['ic_difference']:+.4f} a day over {row['test_sessions']} "
            f"sessions, p {p:.4f}"
            if p is not None
            else f"{NOT_EVALUATED} (the shadow window is not realised yet)"
        )
    return text


def _report_data(
    day: date, stored: _Stored, breached: list[str], policy: PortfolioPolicy
) -> ReportData:
    """One session's report from the stored tables and its breached limits."""

    def on_day(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.filter(pl.col("date") == day)

    figures = key_figures(stored.navs, day)
    book = on_day(stored.held).join(stored.sectors, on="ticker", how="left")
    previous = previous_trading_day(day)
    fills = (
        stored.journal.filter((pl.col("date") == previous) & (pl.col("filled_qty") > 0))
        .with_columns((pl.col("filled_qty") * pl.col("avg_fill_price")).alias("notional"))
        .sort("notional", descending=True)
    )
    day_drift = on_day(stored.drift)
    return ReportData(
        day=day,
        figures=figures,
        history=nav_history(stored.navs, day),
        holdings=_top_holdings(book, on_day(stored.targets)),
        sectors=sector_weights(book, stored.sectors, figures.cash / figures.nav),
        fills=fills,
        fills_session=previous,
        orders=on_day(stored.journal).sort("status", "ticker"),
        limits=limits_table(on_day(stored.risk), breached, policy),
        drift=drift_table(day_drift) if day_drift.height else pl.DataFrame(),
        drift_note=(
            "Severities as stored by drift_report (thresholds shown are its defaults)."
            if day_drift.height
            else "No drift report stored for this session (materialize drift_report)."
        ),
        live_book=_live_book(on_day(stored.status)),
        deployment=deployment_text(next(on_day(stored.deployments).iter_rows(named=True), None)),
        model_events=stored.events.filter(pl.col("date") <= day)
        .sort("date", descending=True)
        .head(MAX_EVENTS),
        positions_count=book.height,
        generated_at=datetime.now(),
    )


def gather(
    store: Store,
    days: list[date],
    policy: PortfolioPolicy,
    log: dg.DagsterLogManager | None = None,
) -> dict[date, ReportData]:
    """Each session's report data (reads each table once for the whole run)."""
    stored = _Stored.read(store, days)
    reports = {}
    for day in days:
        breached = breached_limits(store, day, policy)
        if breached and log is not None:
            log.warning(f"{day}: risk limits breached: {breached}")
        reports[day] = _report_data(day, stored, breached, policy)
    return reports


@dg.asset(
    group_name="reporting",
    kinds={"polars", "pdf"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[nav, positions, paper_orders, risk_metrics, "drift_summary", "model_deployments"],
)
def daily_report(
    context: dg.AssetExecutionContext, store: Store, portfolio_policy: PortfolioPolicy
) -> dg.MaterializeResult:
    """The daily PDF report of each session (``<data dir>/reports/report_YYYYMMDD.pdf``): key
    figures (NAV, daily and cumulative P&L, YTD return, maximum drawdown, volatility, turnover),
    equity, drawdown and sector charts, the largest holdings and the sector weights, the
    executed orders (the previous session's orders filled today, and today's own orders with
    their status), the live book's risk limits, the model's drift status and its deployment
    (champion, challenger, canary share, promotion test, latest events)."""
    start, end = partition_dates(context)
    days = trading_sessions(start, end)
    if not days:
        raise dg.Failure(f"no session in [{start}, {end})")
    reports = gather(store, days, portfolio_policy, context.log)
    paths = {day: write_report(data, report_path(day)) for day, data in reports.items()}
    last = reports[days[-1]]
    figures = last.figures
    breached = last.limits.filter(pl.col("status") != "OK")["limit"].to_list()
    top = last.holdings.head(1)
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.path(str(paths[days[-1]])),
            "reports": len(paths),
            "date": days[-1].isoformat(),
            "nav": figures.nav,
            "daily_pnl": figures.pnl,
            "cumulative_pnl": figures.cumulative_pnl,
            "ytd_return": figures.ytd_return,
            "max_drawdown": figures.max_drawdown,
            "volatility": figures.volatility,
            "turnover": figures.turnover,
            "positions": figures.names,
            "top_holding": str(top["ticker"][0]) if top.height else "none",
            "fills": last.fills.height,
            "orders": last.orders.height,
            "limits_not_ok": dg.MetadataValue.json(breached),
            "size_bytes": paths[days[-1]].stat().st_size,
        }
    )
