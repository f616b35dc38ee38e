"""The ``venue`` broker: paper orders sent over FIX 4.4 to a running venue (engine_rs/venue).

Each order is a NewOrderSingle from the QUANT session (QuickFIX initiator, see
:mod:`resources.broker.fix_client`): a limit DAY order at the collar rounded onto the venue's
tick (down for a buy, up for a sell, so it never fills through the collar), or a market order
when there is no collar (it takes what the book offers and the rest is cancelled). After the
venue's first report, an OrderStatusRequest, sequenced after the order, gives its state once
everything the order did on arrival is done. The venue's answers are kept in
``venue_broker_orders``; ``order`` asks the venue again, so fills that happened while the
platform was away are read back. Statuses are the venue's: SUBMITTED while it rests, FILLED only
after a trade, CANCELLED / REJECTED with the venue's text.
"""

from __future__ import annotations

import atexit
import math
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from resources.broker.base import (
    BrokerError,
    DuplicateOrderError,
    OrderRequest,
    OrderState,
    cash_after_fills,
    positions_from_fills,
)
from resources.broker.fix_client import FixClient, session_settings
from resources.storage import Store
from resources.storage.tables import VENUE_BROKER_ORDERS

TABLE = "venue_broker_orders"
# OrdStatus (39) -> the journal's vocabulary
STATUS = {
    "0": "SUBMITTED",
    "1": "PARTIALLY_FILLED",
    "2": "FILLED",
    "4": "CANCELLED",
    "5": "SUBMITTED",
    "8": "REJECTED",
}
DUPLICATE_TEXT = "duplicate ClOrdID"


def on_tick(price: float, tick: float, side: str) -> str:
    """The collar on the venue's tick, never through it: down for a buy, up for a sell."""
    steps = price / tick
    steps = math.floor(steps + 1e-9) if side == "buy" else math.ceil(steps - 1e-9)
    decimals = max(0, -math.floor(math.log10(tick) + 1e-12))
    return f"{steps * tick:.{decimals}f}"


def _split_id(client_order_id: str) -> tuple[str, str]:
    """(ticker, side) from ``<yyyymmdd>-<strategy>-<ticker>-<side>``."""
    parts = client_order_id.rsplit("-", 2)
    if len(parts) != 3 or parts[2] not in ("buy", "sell"):
        raise BrokerError(f"not a platform client order id: {client_order_id!r}")
    return parts[1], parts[2]


class VenueBroker:
    """A FIX session to the venue. ``workdir`` keeps QuickFIX's store (sequence numbers survive
    restarts) and its logs."""

    name = "venue"

    def __init__(
        self,
        store: Store,
        host: str,
        port: int,
        workdir: Path,
        sender_comp_id: str = "QUANT",
        target_comp_id: str = "VENUE",
        initial_cash: float = 1_000_000.0,
        tick_size: float = 0.01,
        timeout: float = 10.0,
    ) -> None:
        self._store = store
        self.initial_cash = initial_cash
        self.tick_size = tick_size
        self.timeout = timeout
        self._settings = session_settings(workdir, host, port, sender_comp_id, target_comp_id)
        self._client: FixClient | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ session
    def _session(self) -> FixClient:
        with self._lock:
            if self._client is None or not self._client.logged_on:
                try:
                    self._client = FixClient(self._settings).start(self.timeout)
                except TimeoutError as e:
                    raise BrokerError(f"the venue did not accept a FIX logon: {e}") from e
                atexit.register(self.close)
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.stop()
                self._client = None

    # ------------------------------------------------------------------ orders
    def submit(self, order: OrderRequest) -> OrderState:
        if self._row(order.client_order_id) is not None:
            raise DuplicateOrderError(f"client_order_id must be unique: {order.client_order_id}")
        client = self._session()
        mark = len(client.messages)
        price = (
            None
            if order.limit_price is None
            else on_tick(order.limit_price, self.tick_size, order.side)
        )
        client.new_order(order.client_order_id, order.ticker, order.side, order.qty, price)
        first = self._wait(client, order.client_order_id, mark, lambda m: m.get(35) == "8")
        if first.get(39) == "8" and first.get(58) == DUPLICATE_TEXT:
            raise DuplicateOrderError(f"the venue already has {order.client_order_id}")
        answer = self._ask(client, order.client_order_id, order.ticker, order.side) or first
        row = {
            "date": order.session,
            "client_order_id": order.client_order_id,
            "ticker": order.ticker,
            "side": order.side,
            "qty": order.qty,
            "limit_price": None if price is None else float(price),
        }
        return self._record(row, answer)

    def order(self, client_order_id: str) -> OrderState | None:
        row = self._row(client_order_id)
        ticker, side = (row["ticker"], row["side"]) if row else _split_id(client_order_id)
        answer = self._ask(self._session(), client_order_id, ticker, side)
        if answer is None:
            return None
        if row is None:
            row = {
                "date": session_date(client_order_id),
                "client_order_id": client_order_id,
                "ticker": ticker,
                "side": side,
                "qty": int(float(answer.get(38, "0"))),
                "limit_price": float(answer[44]) if 44 in answer else None,
            }
        return self._record(row, answer)

    def positions(self) -> dict[str, int]:
        return positions_from_fills(self._fills())

    def cash(self) -> float:
        return cash_after_fills(self.initial_cash, self._fills())

    # ------------------------------------------------------------------ internals
    def _wait(self, client: FixClient, cid: str, mark: int, match) -> dict[int, str]:
        try:
            return client.wait_for(lambda m: m.get(11) == cid and match(m), self.timeout, mark)
        except TimeoutError as e:
            raise BrokerError(f"no answer from the venue about {cid} in {self.timeout} s") from e

    def _ask(self, client: FixClient, cid: str, ticker: str, side: str) -> dict[int, str] | None:
        """The venue's ExecutionReport(ExecType I) on ``cid``; None if it does not know it."""
        mark = len(client.messages)
        client.status(cid, ticker, side)
        answer = self._wait(client, cid, mark, lambda m: m.get(150) == "I")
        if answer.get(39) == "8" and answer.get(37) == "NONE":
            return None
        return answer

    def _record(self, row: dict, answer: dict[int, str]) -> OrderState:
        filled = int(float(answer.get(14, "0")))
        record = {
            **row,
            "broker_order_id": answer.get(37),
            "status": STATUS.get(answer.get(39, ""), "SUBMITTED"),
            "filled_qty": filled,
            "avg_fill_price": float(answer[6]) if filled else None,
            "reason": answer.get(58),
            "updated_at": datetime.now(UTC).isoformat(),
        }
        self._store.upsert(TABLE, pl.DataFrame([record], schema=VENUE_BROKER_ORDERS.polars_schema))
        return OrderState(
            client_order_id=record["client_order_id"],
            broker_order_id=record["broker_order_id"],
            status=record["status"],
            filled_qty=filled,
            avg_fill_price=record["avg_fill_price"],
            reason=record["reason"],
        )

    def _row(self, client_order_id: str) -> dict | None:
        rows = self._store.read(TABLE, where={"client_order_id": [client_order_id]})
        return rows.row(0, named=True) if rows.height else None

    def _fills(self) -> pl.DataFrame:
        return self._store.read(TABLE).filter(pl.col("filled_qty") > 0)


def session_date(client_order_id: str) -> date:
    """The session of a platform client order id (its ``yyyymmdd`` prefix)."""
    return datetime.strptime(client_order_id[:8], "%Y%m%d").date()
