"""A FIX 4.4 initiator on QuickFIX (the reference engine's Python binding) for the venue.

:class:`FixClient` logs on to one session, sends NewOrderSingle / OrderCancelRequest /
OrderCancelReplaceRequest / OrderStatusRequest and collects what comes back (execution reports,
cancel rejects, session rejects) as plain dicts keyed by tag number. QuickFIX owns the session:
logon, heartbeats, sequence numbers (kept in its file store between runs), resend requests and
gap fills, and it validates every inbound message against its FIX44.xml data dictionary.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import quickfix as fix

# tags the platform reads from execution reports
TAGS = (6, 11, 14, 17, 31, 32, 37, 38, 39, 41, 43, 44, 54, 55, 58, 59, 97, 102, 103, 150, 151, 434)
# FIX enumerations the venue speaks
SIDES = {"buy": "1", "sell": "2"}
TIME_IN_FORCE = {"day": "0", "ioc": "3", "fok": "4"}


def data_dictionary() -> Path:
    """QuickFIX's FIX44.xml, installed with the package under ``<prefix>/share/quickfix``."""
    path = Path(sys.prefix) / "share" / "quickfix" / "FIX44.xml"
    if not path.exists():
        raise FileNotFoundError(f"QuickFIX's data dictionary is missing: {path}")
    return path


def session_settings(
    workdir: Path,
    host: str,
    port: int,
    sender: str,
    target: str = "VENUE",
    heartbeat: int = 30,
    reset_on_logon: bool = False,
) -> Path:
    """Writes a QuickFIX settings file for one initiator session and returns its path. Its
    store (sequence numbers, sent messages) lives in ``workdir/store`` between runs."""
    workdir.mkdir(parents=True, exist_ok=True)
    text = f"""[DEFAULT]
ConnectionType=initiator
ReconnectInterval=1
FileStorePath={workdir / "store"}
FileLogPath={workdir / "log"}
StartTime=00:00:00
EndTime=00:00:00
UseDataDictionary=Y
DataDictionary={data_dictionary()}
HeartBtInt={heartbeat}
ResetOnLogon={"Y" if reset_on_logon else "N"}
ResetOnLogout=N
ResetOnDisconnect=N
SocketConnectHost={host}
SocketConnectPort={port}
LogonTimeout=5

[SESSION]
BeginString=FIX.4.4
SenderCompID={sender}
TargetCompID={target}
"""
    path = workdir / "session.cfg"
    path.write_text(text)
    return path


def _utc_now() -> fix.TransactTime:
    return fix.TransactTime()


class _App(fix.Application):
    def __init__(self, client: FixClient) -> None:
        super().__init__()
        self.client = client

    # QuickFIX calls these by name
    def onCreate(self, sessionID):
        self.client.session_id = sessionID

    def onLogon(self, sessionID):
        self.client._logged_on.set()

    def onLogout(self, sessionID):
        self.client._logged_on.clear()

    def toAdmin(self, message, sessionID):
        pass

    def fromAdmin(self, message, sessionID):
        self.client._received(message, admin=True)

    def toApp(self, message, sessionID):
        pass

    def fromApp(self, message, sessionID):
        self.client._received(message, admin=False)


def _fields(message: fix.Message) -> dict[int, str]:
    out = {35: message.getHeader().getField(35)}
    if message.getHeader().isSetField(43):
        out[43] = message.getHeader().getField(43)
    for tag in (*TAGS, 45, 371, 372, 373, 7, 16, 36, 123):
        if tag != 43 and message.isSetField(tag):
            out[tag] = message.getField(tag)
    return out


class FixClient:
    """One QuickFIX initiator session. ``start`` connects and waits for the logon; every
    message received afterwards is kept in ``messages`` (dicts by tag; 35 is the MsgType)."""

    def __init__(self, settings_file: Path) -> None:
        self.settings_file = settings_file
        self.session_id: fix.SessionID | None = None
        self.messages: list[dict[int, str]] = []
        self._cond = threading.Condition()
        self._logged_on = threading.Event()
        self._app = _App(self)
        self._initiator: fix.SocketInitiator | None = None

    # ------------------------------------------------------------------ session
    def start(self, timeout: float = 10.0) -> FixClient:
        settings = fix.SessionSettings(str(self.settings_file))
        self._initiator = fix.SocketInitiator(
            self._app, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings)
        )
        self._initiator.start()
        if not self._logged_on.wait(timeout):
            self.stop(force=True)
            raise TimeoutError(f"no FIX logon within {timeout} s ({self.settings_file})")
        return self

    def stop(self, force: bool = False) -> None:
        """Logs out and drops the initiator: QuickFIX keeps sessions in a process-wide registry
        until their initiator is destroyed, and a second session with the same CompIDs would
        otherwise find the stopped one."""
        if self._initiator is not None:
            self._initiator.stop(force)
            self._initiator = None
            gc.collect()
        self._logged_on.clear()

    @property
    def logged_on(self) -> bool:
        return self._logged_on.is_set()

    def session(self) -> fix.Session:
        return fix.Session.lookupSession(self.session_id)

    def next_sender_seq(self) -> int:
        return self.session().getExpectedSenderNum()

    def next_target_seq(self) -> int:
        return self.session().getExpectedTargetNum()

    # ------------------------------------------------------------------ messages
    def _received(self, message: fix.Message, admin: bool) -> None:
        msg_type = message.getHeader().getField(35)
        if admin and msg_type not in ("3", "4", "2"):  # keep Reject, SequenceReset, ResendRequest
            return
        with self._cond:
            self.messages.append(_fields(message))
            self._cond.notify_all()

    def wait_for(
        self, match: Callable[[dict[int, str]], bool], timeout: float = 5.0, start: int = 0
    ) -> dict[int, str]:
        """The first message from index ``start`` on that ``match`` accepts; TimeoutError if none
        arrives in ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages[start:]:
                    if match(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no matching FIX message arrived")
                self._cond.wait(left)

    def reports(self, cl_ord_id: str) -> list[dict[int, str]]:
        with self._cond:
            return [m for m in self.messages if m.get(11) == cl_ord_id]

    def send(self, message: fix.Message) -> None:
        if not fix.Session.sendToTarget(message, self.session_id):
            raise ConnectionError("QuickFIX refused to send: session not found")

    def new_order(
        self,
        cl_ord_id: str,
        symbol: str,
        side: str,
        qty: int,
        price: float | str | None = None,
        tif: str = "day",
    ) -> None:
        """Limit order when ``price`` is given, market order otherwise."""
        m = fix.Message()
        m.getHeader().setField(fix.MsgType(fix.MsgType_NewOrderSingle))
        m.setField(fix.ClOrdID(cl_ord_id))
        m.setField(fix.Symbol(symbol))
        m.setField(fix.Side(SIDES[side]))
        m.setField(fix.OrderQty(qty))
        m.setField(fix.OrdType(fix.OrdType_MARKET if price is None else fix.OrdType_LIMIT))
        if price is not None:
            m.setField(44, str(price))
        m.setField(fix.TimeInForce(TIME_IN_FORCE[tif]))
        m.setField(_utc_now())
        self.send(m)

    def cancel(self, cl_ord_id: str, orig_cl_ord_id: str, symbol: str, side: str) -> None:
        m = fix.Message()
        m.getHeader().setField(fix.MsgType(fix.MsgType_OrderCancelRequest))
        m.setField(fix.ClOrdID(cl_ord_id))
        m.setField(fix.OrigClOrdID(orig_cl_ord_id))
        m.setField(fix.Symbol(symbol))
        m.setField(fix.Side(SIDES[side]))
        m.setField(_utc_now())
        self.send(m)

    def replace(
        self,
        cl_ord_id: str,
        orig_cl_ord_id: str,
        symbol: str,
        side: str,
        qty: int,
        price: float | str,
    ) -> None:
        m = fix.Message()
        m.getHeader().setField(fix.MsgType(fix.MsgType_OrderCancelReplaceRequest))
        m.setField(fix.ClOrdID(cl_ord_id))
        m.setField(fix.OrigClOrdID(orig_cl_ord_id))
        m.setField(fix.Symbol(symbol))
        m.setField(fix.Side(SIDES[side]))
        m.setField(fix.OrderQty(qty))
        m.setField(fix.OrdType(fix.OrdType_LIMIT))
        m.setField(44, str(price))
        m.setField(_utc_now())
        self.send(m)

    def status(self, cl_ord_id: str, symbol: str, side: str) -> None:
        m = fix.Message()
        m.getHeader().setField(fix.MsgType(fix.MsgType_OrderStatusRequest))
        m.setField(fix.ClOrdID(cl_ord_id))
        m.setField(fix.Symbol(symbol))
        m.setField(fix.Side(SIDES[side]))
        self.send(m)
