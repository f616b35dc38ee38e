"""A Python reader of the venue's L2 market data (SBE over UDP, engine_rs/venue/schema/
market_data.xml): decodes datagrams and rebuilds books with the same rules as the Rust
subscriber (``venue::md::Subscriber``): a symbol is usable from its first complete snapshot
until an incremental is missing, then waits for the next snapshot and replays what it buffered
after it."""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from dataclasses import dataclass, field

SCHEMA_ID, SCHEMA_VERSION = 17, 1
INCREMENTAL, SNAPSHOT = 1, 2
_PACKET = struct.Struct("<QQ")
_HEADER = struct.Struct("<HHHH")
_GROUP = struct.Struct("<HH")
_ENTRY = struct.Struct("<qQIB")


class FeedError(ValueError):
    """A datagram that is not this schema's."""


@dataclass(frozen=True)
class Message:
    template: int
    symbol: str
    rpt_seq: int
    transact_seq: int
    tick_nanos: int
    entries: tuple[tuple[str, int, int, int], ...]  # (side "bid"/"ask", price ticks, qty, orders)
    chunk: int = 0
    chunks: int = 1


def decode_packet(buf: bytes) -> tuple[int, int, list[Message]]:
    """(packet_seq, sending_time_ns, messages); FeedError on anything malformed."""
    if len(buf) < _PACKET.size:
        raise FeedError("truncated packet header")
    seq, sent = _PACKET.unpack_from(buf, 0)
    at, messages = _PACKET.size, []
    while at < len(buf):
        if at + 2 > len(buf):
            raise FeedError("truncated message length")
        (length,) = struct.unpack_from("<H", buf, at)
        end = at + length
        if length < 2 + _HEADER.size or end > len(buf):
            raise FeedError("bad message length")
        block, template, schema, version = _HEADER.unpack_from(buf, at + 2)
        if schema != SCHEMA_ID or version < SCHEMA_VERSION:
            raise FeedError(f"schema {schema} version {version}")
        body = at + 2 + _HEADER.size
        need = 40 if template == INCREMENTAL else 44 if template == SNAPSHOT else None
        if need is None or block < need or body + block + _GROUP.size > end:
            raise FeedError(f"bad template {template} or block {block}")
        symbol = buf[body : body + 16].split(b"\0", 1)[0].decode("ascii")
        rpt, transact, tick = struct.unpack_from("<QQQ", buf, body + 16)
        chunk, chunks = (
            struct.unpack_from("<HH", buf, body + 40) if template == SNAPSHOT else (0, 1)
        )
        entry_block, n = _GROUP.unpack_from(buf, body + block)
        at_entry = body + block + _GROUP.size
        if entry_block < 21 or at_entry + n * entry_block > end:
            raise FeedError("bad entries group")
        entries = []
        for k in range(n):
            price, qty, orders, side = _ENTRY.unpack_from(buf, at_entry + k * entry_block)
            entries.append(("bid" if side == 0 else "ask", price, qty, orders))
        messages.append(
            Message(template, symbol, rpt, transact, tick, tuple(entries), chunk, chunks)
        )
        at = end
    return seq, sent, messages


@dataclass
class Book:
    bids: dict[int, tuple[int, int]] = field(default_factory=dict)
    asks: dict[int, tuple[int, int]] = field(default_factory=dict)

    def apply(self, side: str, price: int, qty: int, orders: int) -> None:
        levels = self.bids if side == "bid" else self.asks
        if qty == 0:
            levels.pop(price, None)
        else:
            levels[price] = (qty, orders)


@dataclass
class _Symbol:
    book: Book = field(default_factory=Book)
    rpt_seq: int = 0
    synced: bool = False
    buffered: dict[int, Message] = field(default_factory=dict)
    parts: dict[int, Message] = field(default_factory=dict)


class FeedReader:
    """Books per symbol from the feed; ``gaps`` and ``recoveries`` count what happened."""

    def __init__(self) -> None:
        self.symbols: dict[str, _Symbol] = {}
        self.gaps = 0
        self.recoveries = 0
        self.packets = 0

    def on_packet(self, buf: bytes) -> None:
        _, _, messages = decode_packet(buf)
        self.packets += 1
        for m in messages:
            self._on(m)

    def _on(self, m: Message) -> None:
        st = self.symbols.setdefault(m.symbol, _Symbol())
        if m.template == INCREMENTAL:
            if st.synced and m.rpt_seq <= st.rpt_seq:
                return
            if st.synced and m.rpt_seq == st.rpt_seq + 1:
                for e in m.entries:
                    st.book.apply(*e)
                st.rpt_seq = m.rpt_seq
                return
            if st.synced:
                st.synced = False
                self.gaps += 1
            st.buffered[m.rpt_seq] = m
            return
        if st.synced and m.rpt_seq <= st.rpt_seq:
            return
        if any(p.rpt_seq != m.rpt_seq or p.chunks != m.chunks for p in st.parts.values()):
            st.parts = {}
        st.parts[m.chunk] = m
        if len(st.parts) < m.chunks:
            return
        st.book = Book()
        for k in sorted(st.parts):
            for e in st.parts[k].entries:
                st.book.apply(*e)
        st.parts, st.rpt_seq, st.synced = {}, m.rpt_seq, True
        self.recoveries += 1
        for r in sorted(x for x in st.buffered if x > m.rpt_seq):
            if r != st.rpt_seq + 1:
                st.synced = False
                self.gaps += 1
                break
            for e in st.buffered[r].entries:
                st.book.apply(*e)
            st.rpt_seq = r
        st.buffered = {}

    def book(self, symbol: str) -> Book | None:
        st = self.symbols.get(symbol)
        return st.book if st is not None and st.synced else None

    def listen(self, sock: socket.socket, seconds: float, until=None) -> None:
        """Reads datagrams from ``sock`` for up to ``seconds`` (or until ``until(self)``)."""
        deadline = time.monotonic() + seconds
        sock.settimeout(0.05)
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                self.on_packet(sock.recv(65536))
            if until is not None and until(self):
                return
