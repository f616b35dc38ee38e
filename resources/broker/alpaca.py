"""The Alpaca paper broker: alpaca-py's ``TradingClient(paper=True)`` behind :class:`BrokerClient`.

Paper only. The constructor refuses any base URL whose host is not ``paper-api.alpaca.markets``
(the live host is ``api.alpaca.markets``) and the client is never built with ``paper=False``, so
no configuration mistake can route an order to a funded account.

Orders are whole-share orders, time in force DAY, keyed by our deterministic
``client_order_id``: limit orders at the order's price collar when it has one (the paper orders
always do), market orders otherwise. ``fees`` is always 0.0: Alpaca charges no commission on US equities, and a
paper account pays no regulatory (SEC/FINRA TAF) fees either.

Alpaca's order status (``order.status``) → the journal's status:

==========================================================  =====================================
``filled``                                                  FILLED
``partially_filled``                                        PARTIALLY_FILLED
``new``, ``pending_new``, ``accepted``,                     by the fills so far: SUBMITTED when
``accepted_for_bidding``, ``pending_review``, ``held``,     nothing filled, PARTIALLY_FILLED when
``suspended``, ``stopped``, ``calculated``,                 some did, FILLED when all did (the
``pending_cancel``, ``pending_replace``                     order is still live, or settling)
``canceled``, ``expired``, ``done_for_day``, ``replaced``   CANCELLED (FILLED if everything had
                                                            filled); ``filled_qty`` keeps any
                                                            partial fill and ``reason`` says so
``rejected``                                                REJECTED
==========================================================  =====================================

A DAY order that ends ``done_for_day``/``expired`` with part filled is CANCELLED, not
PARTIALLY_FILLED: no more shares will fill, and the journal must reach a terminal state.

Errors. A business rejection of a submitted order (403 "insufficient buying power", a 422
validation error) is an answer: ``submit`` returns ``REJECTED`` with Alpaca's message. A 422
"client_order_id must be unique" raises :class:`DuplicateOrderError`. Bad credentials (401, or a
403 without an Alpaca error code) raise :class:`BrokerError` at once, so a wrong key does not
look like every order being rejected. Network errors, 429 and 5xx are retried with bounded
backoff (:func:`resources.retry.call_with_retries`; alpaca-py itself first retries 429/504 three
times, 3 s apart) and then raise :class:`BrokerError`. Retrying ``POST /v2/orders`` is safe:
if a timed-out attempt did reach Alpaca, the retry is refused as a duplicate and the caller
looks the order up. The secret key never appears in an error message or a repr.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, TypeVar, cast
from urllib.parse import urlsplit

import requests
from pydantic import ValidationError

from resources.broker.base import BrokerError, DuplicateOrderError, OrderRequest, OrderState
from resources.market_data.base import ProviderError
from resources.retry import call_with_retries

# alpaca-py is imported where it is used: ``alpaca.trading`` takes ~1-2 s to import, which
# loading the Dagster definitions should not pay when the simulated broker is configured
if TYPE_CHECKING:
    from alpaca.common.exceptions import APIError
    from alpaca.trading.client import TradingClient
    from alpaca.trading.models import Order, Position, TradeAccount

T = TypeVar("T")

PAPER_HOST = "paper-api.alpaca.markets"
PAPER_URL = f"https://{PAPER_HOST}"
DUPLICATE_MESSAGE = "client_order_id must be unique"

# Alpaca statuses (``OrderStatus`` values) of an order still working, or settling: the journal
# status follows the fills so far
_LIVE = frozenset(
    {
        "new",
        "pending_new",
        "accepted",
        "accepted_for_bidding",
        "pending_review",
        "held",
        "suspended",
        "stopped",
        "calculated",
        "pending_cancel",
        "pending_replace",
    }
)
# over: whatever filled stays filled, the rest never will
_ENDED = frozenset({"canceled", "expired", "done_for_day", "replaced"})


def paper_url(base_url: str | None) -> str:
    """The base URL to trade against, which must be Alpaca's paper host over https; anything
    else (the live host above all) raises ValueError."""
    if base_url is None or not base_url.strip():
        return PAPER_URL
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    # hostname, not netloc: "https://paper-api.alpaca.markets@api.alpaca.markets" is the live host
    if parts.scheme != "https" or (parts.hostname or "").lower() != PAPER_HOST:
        raise ValueError(
            f"the Alpaca broker trades on paper only: base URL {url!r} is not "
            f"{PAPER_URL} (live trading is never allowed)"
        )
    return url


class AlpacaBroker:
    """:class:`~resources.broker.base.BrokerClient` over an Alpaca paper account."""

    name = "alpaca"

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        base_url: str | None = None,
        *,
        attempts: int = 3,
        base_delay: float = 1.0,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        from alpaca.trading.client import TradingClient

        if not api_key or not secret_key:
            raise ValueError("the Alpaca broker needs ALPACA_API_KEY and ALPACA_SECRET_KEY")
        self.base_url = paper_url(base_url)
        self._secret_key = secret_key
        self.attempts = attempts
        self.base_delay = base_delay
        self.sleep = sleep
        self._client: TradingClient = TradingClient(
            api_key, secret_key, paper=True, url_override=self.base_url
        )

    def __repr__(self) -> str:  # never show the keys
        return f"AlpacaBroker(base_url={self.base_url!r})"

    # ------------------------------------------------------------------ BrokerClient

    def submit(self, order: OrderRequest) -> OrderState:
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

        if order.qty <= 0:
            raise ValueError(f"order quantity must be a positive whole number, got {order.qty}")
        fields = {
            "symbol": order.ticker,
            "qty": int(order.qty),
            "side": OrderSide(order.side),
            "time_in_force": TimeInForce.DAY,
            "client_order_id": order.client_order_id,
        }
        # the price collar: a marketable limit order never fills through it
        request = (
            MarketOrderRequest(**fields)
            if order.limit_price is None
            else LimitOrderRequest(**fields, limit_price=round(order.limit_price, 2))
        )
        what = (
            f"alpaca submit {order.side} {order.qty} {order.ticker} "
            f"(client_order_id={order.client_order_id})"
        )
        try:
            placed = self._call(lambda: self._client.submit_order(request), what)
        except _Answered as answered:
            status, message = answered.status, answered.message
            if DUPLICATE_MESSAGE in message:  # documented as a 422; any 4xx saying so counts
                raise DuplicateOrderError(
                    f"Alpaca already has an order with client_order_id "
                    f"{order.client_order_id!r}: {message}"
                ) from None
            if _is_auth_failure(answered.error):
                raise self._auth_error(what, answered) from None
            return OrderState(
                client_order_id=order.client_order_id,
                broker_order_id=None,
                status="REJECTED",
                filled_qty=0,
                avg_fill_price=None,
                reason=f"Alpaca rejected the order (HTTP {status}): {message}",
            )
        return order_state(cast("Order", placed))

    def order(self, client_order_id: str) -> OrderState | None:
        what = f"alpaca order lookup (client_order_id={client_order_id})"
        try:
            found = self._call(lambda: self._client.get_order_by_client_id(client_order_id), what)
        except _Answered as answered:
            if answered.status == 404:
                return None
            raise self._refused(what, answered) from None
        return order_state(cast("Order", found))

    def positions(self) -> dict[str, int]:
        what = "alpaca positions"
        try:
            held = self._call(self._client.get_all_positions, what)
        except _Answered as answered:
            raise self._refused(what, answered) from None
        return {p.symbol: position_qty(p) for p in cast("list[Position]", held)}

    def cash(self) -> float:
        what = "alpaca account"
        try:
            account = cast("TradeAccount", self._call(self._client.get_account, what))
        except _Answered as answered:
            raise self._refused(what, answered) from None
        if account.cash is None:
            raise BrokerError("Alpaca's account has no cash balance")
        return float(account.cash)

    # ------------------------------------------------------------------ internals

    def _call(self, fn: Callable[[], T], what: str) -> T:
        """``fn()`` with bounded retries on network errors, 429 and 5xx. A 4xx comes back as
        :class:`_Answered` at once (retrying cannot change it); a response alpaca-py cannot
        parse, or retries spent, raise :class:`BrokerError`."""
        from alpaca.common.exceptions import APIError

        def attempt() -> T:
            try:
                return fn()
            except APIError as exc:
                status = exc.status_code
                if status is not None and 400 <= status < 500 and status != 429:
                    raise _Answered(exc) from exc
                raise

        try:
            return call_with_retries(
                attempt,
                what=what,
                attempts=self.attempts,
                base_delay=self.base_delay,
                retry_on=(APIError, requests.exceptions.RequestException),
                sleep=self.sleep,
            )
        except ProviderError as exc:
            cause = exc.__cause__
            # keep the cause for the traceback unless its text would carry the secret there
            if cause is not None and self._secret_key in str(cause):
                cause = None
            raise BrokerError(self._scrub(str(exc))) from cause
        except ValidationError as exc:
            raise BrokerError(
                f"{what}: Alpaca answered something alpaca-py cannot read: "
                f"{self._scrub(str(exc))[:500]}"
            ) from None

    def _refused(self, what: str, answered: _Answered) -> BrokerError:
        if _is_auth_failure(answered.error):
            return self._auth_error(what, answered)
        return BrokerError(
            self._scrub(f"{what} failed (HTTP {answered.status}): {answered.message}")
        )

    def _auth_error(self, what: str, answered: _Answered) -> BrokerError:
        return BrokerError(
            self._scrub(
                f"{what} failed: Alpaca refused the credentials (HTTP {answered.status}: "
                f"{answered.message}); check ALPACA_API_KEY/ALPACA_SECRET_KEY are paper keys"
            )
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret_key, "***")


class _Answered(Exception):
    """Alpaca answered a request with a 4xx: a final answer for the caller to interpret, not a
    failure to retry (it is outside ``retry_on``, so the retry helper lets it through)."""

    def __init__(self, error: APIError) -> None:
        super().__init__(str(error))
        self.error = error
        self.status: int = error.status_code or 0
        self.message = api_message(error)


def api_message(error: APIError) -> str:
    """Alpaca's ``message`` from an error body, or the start of the body when it is not JSON
    (a proxy's HTML page, say)."""
    text = str(error)
    try:
        body = json.loads(text)
    except ValueError:
        return text[:200]
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])
    return text[:200]


def _is_auth_failure(error: APIError) -> bool:
    # business refusals carry Alpaca's numeric error code (40310000 for buying power); a bad or
    # live key gets a bare {"message": "forbidden."}
    if error.status_code == 401:
        return True
    if error.status_code != 403:
        return False
    try:
        body = json.loads(str(error))
    except ValueError:
        return True
    return not (isinstance(body, dict) and "code" in body)


def order_state(order: Order) -> OrderState:
    """The journal's view of an Alpaca order (the mapping is in the module docstring)."""
    qty = _whole(order.qty)
    filled = _whole(order.filled_qty)
    # Alpaca may report a 0 average price before anything fills
    price = float(order.filled_avg_price) if filled > 0 and order.filled_avg_price else None
    status = order.status.value
    reason: str | None = None
    if status == "filled":
        journal = "FILLED"
    elif status == "partially_filled":
        journal = "PARTIALLY_FILLED"
    elif status == "rejected":
        journal = "REJECTED"
        reason = "Alpaca rejected the order"
    elif status in _LIVE:
        journal = _by_fills(filled, qty)
    elif status in _ENDED:
        journal = "FILLED" if qty > 0 and filled >= qty else "CANCELLED"
        if journal == "CANCELLED":
            reason = f"Alpaca order {status} with {filled} of {qty} shares filled"
    else:  # a status newer than this mapping
        raise BrokerError(f"unknown Alpaca order status {status!r} for {order.client_order_id}")
    return OrderState(
        client_order_id=order.client_order_id,
        broker_order_id=str(order.id),
        status=journal,
        filled_qty=filled,
        avg_fill_price=price,
        fees=0.0,
        reason=reason,
    )


def _by_fills(filled: int, qty: int) -> str:
    if filled <= 0:
        return "SUBMITTED"
    return "FILLED" if qty > 0 and filled >= qty else "PARTIALLY_FILLED"


def position_qty(position: Position) -> int:
    """Signed whole shares: Alpaca reports a short's ``qty`` negative with ``side`` "short";
    the sign is taken from ``side`` so either convention gives a negative short."""
    shares = abs(_whole(position.qty))
    return -shares if position.side.value == "short" else shares


def _whole(value: str | float | None) -> int:
    # Alpaca sends quantities as decimal strings; this book trades whole shares only
    if value is None or value == "":
        return 0
    try:
        return int(Decimal(str(value)))
    except InvalidOperation as exc:
        raise BrokerError(f"Alpaca sent a quantity that is not a number: {value!r}") from exc
