"""Execution assets: ``paper_orders`` (the live book to the paper broker: one multi-asset with
the tables sending them writes, ``order_journal`` and ``simulated_broker_orders``), ``positions``
and ``nav`` (the account rebuilt from the order journal)."""

from collections.abc import Iterator
from datetime import date
from typing import Any

import dagster as dg
import polars as pl

from quant_assets.execution.accounting import account_on
from quant_assets.execution.journal import JOURNAL, journal_rows, refresh_open_orders, send_orders
from quant_assets.execution.orders import market_snapshot
from quant_assets.metadata import date_range_metadata, preview
from quant_assets.partitions import (
    daily_partitions,
    next_trading_day,
    partition_dates,
    shift_sessions,
    trading_sessions,
)
from quant_assets.portfolio.decision import Holdings, decide_orders
from quant_assets.queries import account_bars
from quant_assets.risk.limits import breached_limits
from resources.broker.base import TERMINAL_STATUSES, BrokerClient, OrderRequest
from resources.broker.resource import Broker
from resources.broker.simulated import TABLE as SIMULATED_BROKER_TABLE
from resources.broker.venue import TABLE as VENUE_BROKER_TABLE
from resources.execution_policy import ExecutionPolicy
from resources.portfolio_policy import PortfolioPolicy
from resources.storage import Store
from resources.storage.tables import NAV


def _bars(store: Store, first: date, last: date, sessions_before: int) -> pl.DataFrame:
    """Bars from ``sessions_before`` sessions before ``first`` to ``last``."""
    return store.read(
        "raw_bars",
        shift_sessions(first, sessions_before + 1),
        next_trading_day(last),
        columns=["ticker", "date", "close", "adj_close", "volume"],
    )


def _requests(
    journal: pl.DataFrame, snapshot: pl.DataFrame, session: date
) -> dict[str, OrderRequest]:
    market = journal.filter(pl.col("status") == "NEW").join(snapshot, on="ticker", how="left")
    return {
        row["client_order_id"]: OrderRequest.from_row(row, row["client_order_id"], session)
        for row in market.iter_rows(named=True)
    }


def _live_book(store: Store, day: date) -> pl.DataFrame:
    """The day's live book (``ticker, weight``); a feasible book without names is all cash (its
    orders sell every holding, as the backtest's replay does), a missing or infeasible one
    stops the session."""
    following = next_trading_day(day)
    live = store.read("target_weights", day, following, where={"is_live": [True]})
    if live.is_empty():
        status = store.read("allocation_status", day, following, where={"is_live": [True]})
        if status.is_empty() or not bool(status["feasible"].all()):
            raise dg.Failure(f"{day}: no live book in target_weights (see allocation_status)")
    return live.select("ticker", "weight")


def _session_orders(
    day: date,
    store: Store,
    client: BrokerClient,
    bars: pl.DataFrame,
    execution_policy: ExecutionPolicy,
    portfolio_policy: PortfolioPolicy,
    log: dg.DagsterLogManager,
) -> tuple[pl.DataFrame, list[str]]:
    """Journal and send ``day``'s orders; the journal rows and the breached risk limits.
    The broker's answers about earlier sessions' orders come first (what traded in ``day``
    is held at its close), so the orders are sized against what the account holds."""
    refresh_open_orders(store, client)
    snapshot = market_snapshot(bars, day, execution_policy.liquidity_sessions)
    journaled = store.read(JOURNAL, day, next_trading_day(day))
    breached = breached_limits(store, day, portfolio_policy)
    if journaled.height:
        # a re-run: the session's orders were decided and journaled; only finish sending them
        log.info(f"{day}: {journaled.height} orders already journaled, resending the NEW ones")
        rows = journaled
    else:
        live = _live_book(store, day)
        holdings = Holdings.from_positions(client.positions(), client.cash())
        try:
            book, _ = decide_orders(
                live, holdings, snapshot, execution_policy, risk_reducing_only=bool(breached)
            )
        except ValueError as exc:
            raise dg.Failure(f"{day}: {exc}") from exc
        if breached:
            log.warning(f"{day}: risk limits breached {breached}: only risk-reducing orders")
        rows = journal_rows(book, day, execution_policy.strategy, client.name)
    sent = send_orders(store, client, rows, _requests(rows, snapshot, day))
    return sent, breached


def _tradable_sessions(store: Store, start: date, end: date) -> list[date]:
    """The run's sessions, refused when a later session's orders are journaled already."""
    days = trading_sessions(start, end)
    later = store.date_bounds(JOURNAL)
    if later is not None and later[1] > days[-1]:
        raise dg.Failure(
            f"orders of {later[1]} are already journaled: sessions up to {days[-1]} cannot be "
            "traded again (orders go forward in time; re-running a past session would trade "
            "today's holdings on yesterday's prices)"
        )
    return days


def _paper_orders_metadata(
    orders: pl.DataFrame, broker: str, breaches: dict[str, list[str]]
) -> dict[str, Any]:
    """The run's orders: how many, their fates, what filled at which slippage, what was
    rejected and which risk limits were breached."""
    filled = orders.filter(pl.col("filled_qty") > 0)
    side = pl.when(pl.col("side") == "buy").then(1.0).otherwise(-1.0)
    slippage_bps = (
        filled.select(
            (side * (pl.col("avg_fill_price") / pl.col("reference_price") - 1.0) * 1e4).mean()
        ).item()
        if filled.height
        else float("nan")
    )
    by_status = orders.group_by("status").len().sort("status")
    return {
        "orders": orders.height,
        "broker": broker,
        **{f"status_{s.lower()}": n for s, n in by_status.iter_rows()},
        "filled_notional": float(
            filled.select((pl.col("filled_qty") * pl.col("avg_fill_price")).sum()).item()
        )
        if filled.height
        else 0.0,
        "fees": float(orders["fees"].sum()),
        "mean_slippage_bps": slippage_bps,
        "risk_limits_breached": dg.MetadataValue.json(breaches),
        "rejected": preview(
            orders.filter(pl.col("status") == "REJECTED").select(
                "date", "ticker", "side", "qty", "reason"
            ),
            rows=20,
        ),
        "preview": preview(orders.drop("broker", "strategy", "updated_at"), rows=20),
    }


def _order_journal_metadata(store: Store, orders: pl.DataFrame, journaled: int) -> dict[str, Any]:
    """The journal after the run: the rows this run added, the run's sessions' rows by status
    and the orders still open across the whole journal (``positions`` refreshes them)."""
    journal = store.read(JOURNAL, columns=["date", "status"])
    open_orders = journal.filter(~pl.col("status").is_in(list(TERMINAL_STATUSES)))
    return {
        "rows": orders.height,
        "rows_journaled": journaled,
        "rows_total": journal.height,
        "open_orders": open_orders.height,
        "status_counts": dg.MetadataValue.json(
            dict(orders.group_by("status").len().sort("status").iter_rows())
        ),
        **date_range_metadata(orders),
        "preview": preview(orders.drop("strategy", "updated_at"), rows=20),
    }


def _simulated_broker_orders_metadata(
    store: Store, broker: str, start: date, end: date
) -> dict[str, Any]:
    """The simulated broker's records of the run's sessions (none when the orders went to
    another broker): fates, filled quantity, fees and the child orders it took."""
    records = store.read(SIMULATED_BROKER_TABLE, start, end)
    return {
        "rows": records.height,
        "broker": broker,
        "status_counts": dg.MetadataValue.json(
            dict(records.group_by("status").len().sort("status").iter_rows())
        ),
        "filled_qty": int(records["filled_qty"].sum()),
        "fees": float(records["fees"].sum()),
        "child_orders": int(records["child_orders"].sum()),
        **date_range_metadata(records),
        "preview": preview(records.sort("date", "ticker"), rows=20),
    }


def _venue_broker_orders_metadata(
    store: Store, broker: str, start: date, end: date
) -> dict[str, Any]:
    """The venue's reports on the run's sessions (none unless the orders went to the venue)."""
    records = store.read(VENUE_BROKER_TABLE, start, end)
    return {
        "rows": records.height,
        "broker": broker,
        "status_counts": dg.MetadataValue.json(
            dict(records.group_by("status").len().sort("status").iter_rows())
        ),
        "filled_qty": int(records["filled_qty"].sum()) if records.height else 0,
        **date_range_metadata(records),
        "preview": preview(records.sort("date", "ticker"), rows=20),
    }


# allocation_status and risk_metrics carry the blocking checks that stop the orders of a run
# whose live book is infeasible or breaches a risk limit
_ORDER_INPUTS = ["target_weights", "allocation_status", "risk_metrics", "raw_bars"]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "paper_orders",
            deps=_ORDER_INPUTS,
            kinds={"rust", "polars"},
            description="The live book's orders of each session, sent to the paper broker; the "
            "metadata tells their fates, slippage, rejections and breached risk limits.",
        ),
        dg.AssetSpec(
            "order_journal",
            deps=_ORDER_INPUTS,
            kinds={"polars"},
            description="The platform's side of every paper order, keyed by client order id: "
            "journaled NEW (or REJECTED with the pre-trade reason) before the broker hears of "
            "it, then updated with the broker's answers.",
        ),
        dg.AssetSpec(
            "simulated_broker_orders",
            deps=_ORDER_INPUTS,
            kinds={"rust", "polars"},
            description="The simulated broker's own books: one row per order it accepted, with "
            "its fills on the Rust order book (empty for sessions sent to Alpaca).",
        ),
        dg.AssetSpec(
            "venue_broker_orders",
            deps=_ORDER_INPUTS,
            kinds={"rust", "polars"},
            description="What the venue (engine_rs/venue, over FIX 4.4) reported on each order "
            "the venue broker sent: status, fills, the venue's reject text (empty unless "
            "QUANT_BROKER=venue).",
        ),
    ],
    group_name="execution",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def paper_orders(
    context: dg.AssetExecutionContext,
    store: Store,
    broker: Broker,
    execution_policy: ExecutionPolicy,
    portfolio_policy: PortfolioPolicy,
) -> Iterator[dg.MaterializeResult]:
    """The live book's orders for each session, sent to the paper broker (simulated on the Rust
    book by default, or Alpaca's paper API). Shares are sized on the close against the broker's
    holdings and NAV; pre-trade checks reject with a reason; every order is journaled (NEW)
    before it is sent and updated with the broker's answer; client order ids are deterministic,
    so a re-run never sends an order twice. While a risk limit is breached only orders that
    shrink a position pass."""
    start, end = partition_dates(context)
    days = _tradable_sessions(store, start, end)
    client = broker.client(store)
    bars = _bars(store, days[0], days[-1], execution_policy.liquidity_sessions)
    journal_before = store.count(JOURNAL)
    frames, breaches = [], {}
    for day in days:
        sent, breached = _session_orders(
            day, store, client, bars, execution_policy, portfolio_policy, context.log
        )
        frames.append(sent)
        if breached:
            breaches[day.isoformat()] = breached
    orders = pl.concat(frames)
    journaled = store.count(JOURNAL) - journal_before
    yield dg.MaterializeResult(
        asset_key="paper_orders", metadata=_paper_orders_metadata(orders, client.name, breaches)
    )
    yield dg.MaterializeResult(
        asset_key="order_journal", metadata=_order_journal_metadata(store, orders, journaled)
    )
    yield dg.MaterializeResult(
        asset_key="simulated_broker_orders",
        metadata=_simulated_broker_orders_metadata(store, client.name, start, end),
    )
    yield dg.MaterializeResult(
        asset_key="venue_broker_orders",
        metadata=_venue_broker_orders_metadata(store, client.name, start, end),
    )


@dg.asset(
    group_name="execution",
    kinds={"polars"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[paper_orders],
)
def positions(
    context: dg.AssetExecutionContext, store: Store, broker: Broker
) -> dg.MaterializeResult:
    """Holdings at each session's close, rebuilt from the journal's fills (the orders of earlier
    sessions) and valued at the close; open orders are refreshed from the broker first.
    ``positions_match_the_broker`` reconciles the journal with the broker's own positions."""
    start, end = partition_dates(context)
    refreshed = refresh_open_orders(store, broker.client(store))
    if refreshed:
        # the journal is paper_orders' asset: the fills reported since are logged on it here
        context.log_event(
            dg.AssetObservation(
                asset_key=JOURNAL, metadata={"orders_refreshed_by_positions": refreshed}
            )
        )
    journal = store.read(JOURNAL)
    bars = account_bars(store, journal, start, end)
    frames = [
        account_on(journal, bars, day, broker.initial_cash).positions
        for day in trading_sessions(start, end)
    ]
    rows = pl.concat(frames)
    written = store.write_partition("positions", rows, start, end)
    last = rows.filter(pl.col("date") == pl.col("date").max()) if rows.height else rows
    return dg.MaterializeResult(
        metadata={
            "rows": written,
            "orders_refreshed": refreshed,
            "names": last.height,
            "invested": float(last["weight"].sum()) if last.height else 0.0,
            "preview": preview(last.sort("market_value", descending=True), rows=20),
        }
    )


@dg.asset(
    group_name="execution",
    kinds={"polars"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[positions],
)
def nav(context: dg.AssetExecutionContext, store: Store, broker: Broker) -> dg.MaterializeResult:
    """The paper account each session: cash, positions value, NAV, daily (net and gross) and
    cumulative P&L, fees, traded notional, turnover and implementation shortfall against the
    closes the orders were sized on (identities in ``execution/accounting.py``)."""
    start, end = partition_dates(context)
    journal = store.read(JOURNAL)
    bars = account_bars(store, journal, start, end)
    rows = pl.DataFrame(
        [
            account_on(journal, bars, day, broker.initial_cash).nav
            for day in trading_sessions(start, end)
        ],
        schema=NAV.polars_schema,
        orient="row",
    )
    written = store.write_partition("nav", rows, start, end)
    last = rows.tail(1).to_dicts()[0]
    return dg.MaterializeResult(
        metadata={
            "rows": written,
            "nav": float(last["nav"]),
            "pnl": float(last["pnl"]),
            "cumulative_pnl": float(last["cumulative_pnl"]),
            "fees": float(last["fees"]),
            "turnover": float(last["turnover"]),
            "implementation_shortfall": float(last["implementation_shortfall"]),
            "names": int(last["names"]),
            "preview": preview(rows, rows=20),
        }
    )
