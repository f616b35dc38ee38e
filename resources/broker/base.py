"""What every broker implements, and the order records that cross it.

The platform's side of an order is the journal (``order_journal``); the broker's side is what
the broker reports. Both key an order by its deterministic ``client_order_id``
(:func:`client_order_id`), so a re-run that sends the same order again is refused by the broker
as a duplicate (Alpaca answers "client_order_id must be unique"; the simulated broker does the
same) and the caller looks the existing order up instead of trading twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

import polars as pl

# the journal's lifecycle; NEW is written before the broker hears of the order
ORDER_STATUSES = ("NEW", "SUBMITTED", "PARTIALLY_FILLED", "FILLED", "REJECTED", "CANCELLED")
TERMINAL_STATUSES = frozenset({"FILLED", "REJECTED", "CANCELLED"})


def client_order_id(session: date, strategy: str, ticker: str, side: str) -> str:
    """``<yyyymmdd>-<strategy>-<ticker>-<side>``: one order per session, book, name and side.
    Alpaca allows 128 characters; tickers with a dot (BRK.B) keep it."""
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    return f"{session:%Y%m%d}-{strategy}-{ticker}-{side}"


class BrokerError(RuntimeError):
    """The broker could not be reached or answered something unusable (not a rejection)."""


class DuplicateOrderError(BrokerError):
    """The broker already has an order with this client order id."""


@dataclass(frozen=True)
class OrderRequest:
    """A whole-share order decided at the close of ``session``. ``reference_price`` is the
    close it was sized on (the benchmark of the implementation shortfall); ``limit_price``, when
    set, is the price collar it must not fill through (a marketable limit order; None = market).
    ``daily_volatility`` and ``average_volume`` describe the market the simulated broker builds
    its book from; a real broker ignores them. Nothing about the next session is known when an
    order is decided: it trades when that session does."""

    client_order_id: str
    session: date
    ticker: str
    side: str
    qty: int
    reference_price: float
    daily_volatility: float
    average_volume: float
    limit_price: float | None = None

    @classmethod
    def from_row(cls, row: dict, client_order_id: str, session: date) -> OrderRequest:
        """The request of an order row (``paper_order_book``'s, the journal's or the simulated
        broker's columns); a missing volatility or volume is 0 (the thinnest book)."""
        return cls(
            client_order_id=client_order_id,
            session=session,
            ticker=row["ticker"],
            side=row["side"],
            qty=int(row["qty"]),
            reference_price=float(row["reference_price"]),
            daily_volatility=float(row["daily_volatility"] or 0.0),
            average_volume=float(row["average_volume"] or 0.0),
            limit_price=row["limit_price"],
        )


@dataclass(frozen=True)
class OrderState:
    """The broker's view of one order. ``avg_fill_price`` is None until something fills;
    ``fees`` in currency; ``reason`` says why a REJECTED/CANCELLED order ended."""

    client_order_id: str
    broker_order_id: str | None
    status: str
    filled_qty: int
    avg_fill_price: float | None
    fees: float = 0.0
    reason: str | None = None


class BrokerClient(Protocol):
    """A paper broker. ``submit`` raises :class:`DuplicateOrderError` for a client order id it
    has seen (whatever became of that order) and returns the order's state otherwise
    (REJECTED with a reason is a state, not an exception)."""

    name: str

    def submit(self, order: OrderRequest) -> OrderState: ...

    def order(self, client_order_id: str) -> OrderState | None: ...

    def positions(self) -> dict[str, int]: ...

    def cash(self) -> float: ...


def signed_fill_qty() -> pl.Expr:
    """Filled shares, negative for sells (a broker's records: ``side``, ``filled_qty``)."""
    return pl.when(pl.col("side") == "buy").then(1).otherwise(-1) * pl.col("filled_qty")


def positions_from_fills(fills: pl.DataFrame) -> dict[str, int]:
    """Net shares by ticker of a broker's filled orders, names with none left out."""
    if fills.is_empty():
        return {}
    held = (
        fills.group_by("ticker")
        .agg(signed_fill_qty().sum().alias("qty"))
        .filter(pl.col("qty") != 0)
        .sort("ticker")
    )
    return dict(zip(held["ticker"].to_list(), held["qty"].to_list(), strict=True))


def cash_after_fills(initial_cash: float, fills: pl.DataFrame) -> float:
    """Cash left after paying for the fills (``avg_fill_price``) and their ``fees`` if any."""
    if fills.is_empty():
        return initial_cash
    spent = fills.select((signed_fill_qty() * pl.col("avg_fill_price")).sum()).item()
    fees = float(fills["fees"].sum()) if "fees" in fills.columns else 0.0
    return initial_cash - float(spent) - fees
