"""The order journal: every order is written before the broker hears of it.

Sending a session's orders (:func:`send_orders`):

1. every order of the session is upserted into ``order_journal`` in ONE write, status NEW
   (or REJECTED with the pre-trade reason: those are never sent);
2. each NEW order is sent, unless the broker already has it: a crash between 1 and 2, or in
   the middle of 2, leaves NEW rows whose fate is unknown, so the broker is asked first
   (``order``) and a duplicate refusal is answered by looking the order up;
3. each broker answer updates the order's row right away.

The client order id is deterministic (date, strategy, ticker, side), so a re-run finds the
same rows and the broker refuses the same id twice: nothing is sent twice and nothing is lost.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

from resources.broker.base import (
    TERMINAL_STATUSES,
    BrokerClient,
    DuplicateOrderError,
    OrderRequest,
    OrderState,
    client_order_id,
)
from resources.storage import Store
from resources.storage.tables import ORDER_JOURNAL

JOURNAL = "order_journal"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def journal_rows(orders: pl.DataFrame, session: date, strategy: str, broker: str) -> pl.DataFrame:
    """The journal's rows for ``paper_order_book`` output: client ids assigned, NEW or
    REJECTED as the pre-trade checks decided, nothing filled."""
    ids = [
        client_order_id(session, strategy, t, s)
        for t, s in zip(orders["ticker"], orders["side"], strict=True)
    ]
    return orders.select(
        pl.lit(session).alias("date"),
        pl.Series("client_order_id", ids, dtype=pl.String),
        pl.lit(broker).alias("broker"),
        pl.lit(strategy).alias("strategy"),
        "ticker",
        "side",
        pl.col("qty").cast(pl.Int64),
        pl.col("reference_price").fill_null(float("nan")),
        "limit_price",
        "status",
        pl.lit(0, dtype=pl.Int64).alias("filled_qty"),
        pl.lit(None, dtype=pl.Float64).alias("avg_fill_price"),
        pl.lit(0.0).alias("fees"),
        "reason",
        pl.lit(None, dtype=pl.String).alias("broker_order_id"),
        pl.lit(_now()).alias("updated_at"),
    )


def _updated(row: dict, state: OrderState) -> dict:
    return row | {
        "status": state.status,
        "filled_qty": state.filled_qty,
        "avg_fill_price": state.avg_fill_price,
        "fees": state.fees,
        "reason": state.reason,
        "broker_order_id": state.broker_order_id,
        "updated_at": _now(),
    }


def _write(store: Store, rows: list[dict]) -> None:
    store.upsert(JOURNAL, pl.DataFrame(rows, schema=ORDER_JOURNAL.polars_schema))


def send_orders(
    store: Store,
    broker: BrokerClient,
    journal: pl.DataFrame,
    requests: dict[str, OrderRequest],
) -> pl.DataFrame:
    """Journal ``journal``'s rows that are not journaled yet, then send every NEW one (steps
    in the module docstring); ``requests`` by client order id. Returns the rows as stored."""
    ids = journal["client_order_id"].to_list()
    known = store.read(JOURNAL, where={"client_order_id": ids})
    fresh = journal.filter(~pl.col("client_order_id").is_in(known["client_order_id"].to_list()))
    if fresh.height:
        store.upsert(JOURNAL, fresh)
    rows = {
        r["client_order_id"]: r
        for r in store.read(JOURNAL, where={"client_order_id": ids}).iter_rows(named=True)
    }
    just_journaled = set(fresh["client_order_id"].to_list())
    for cid, row in rows.items():
        if row["status"] != "NEW":
            continue
        # only a NEW row from an earlier run may have reached the broker: ask before sending
        state = None if cid in just_journaled else broker.order(cid)
        if state is None:
            try:
                state = broker.submit(requests[cid])
            except DuplicateOrderError:
                state = broker.order(cid)
                if state is None:
                    raise
        rows[cid] = _updated(row, state)
        _write(store, [rows[cid]])
    return pl.DataFrame(list(rows.values()), schema=ORDER_JOURNAL.polars_schema)


def refresh_open_orders(store: Store, broker: BrokerClient) -> int:
    """Ask the broker about every journaled order not yet in a final state (a real broker
    fills after the orders were sent); returns how many rows changed."""
    open_rows = store.read(JOURNAL).filter(~pl.col("status").is_in(list(TERMINAL_STATUSES)))
    changed = []
    for row in open_rows.filter(pl.col("status") != "NEW").iter_rows(named=True):
        state = broker.order(row["client_order_id"])
        if state is not None and (state.status, state.filled_qty) != (
            row["status"],
            row["filled_qty"],
        ):
            changed.append(_updated(row, state))
    if changed:
        _write(store, changed)
    return len(changed)
