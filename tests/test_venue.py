"""The venue (engine_rs/venue) driven by software nobody here wrote: QuickFIX, the reference FIX
engine, as the initiator; raw sockets for what QuickFIX refuses to send; the Python SBE reader
for the L2 feed. The venue runs as its own process, as an operator starts it."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

import pytest

from resources.broker.fix_client import FixClient, session_settings
from resources.broker.venue_feed import FeedReader
from tests.venue_server import RawSession, Venue, fix_frame, venue_binary

pytestmark = pytest.mark.venue


@pytest.fixture(scope="module")
def binary() -> Path:
    return venue_binary()


@pytest.fixture
def venue(binary, tmp_path) -> Venue:
    v = Venue(binary, tmp_path).start()
    yield v
    if v.alive():
        v.stop()


def client(venue: Venue, tmp_path: Path, sender: str) -> FixClient:
    return FixClient(session_settings(tmp_path / f"qf-{sender}", "127.0.0.1", venue.port, sender))


def is_report(cid: str, exec_type: str | None = None):
    return lambda m: m.get(11) == cid and (exec_type is None or m.get(150) == exec_type)


def test_quickfix_trades_limit_market_ioc_and_fok_orders_and_gets_the_reports_fix_expects(
    venue, tmp_path
):
    mm = client(venue, tmp_path, "MM").start()
    quant = client(venue, tmp_path, "QUANT").start()
    try:
        mm.new_order("ask1", "AAPL", "sell", 100, "150.25")
        mm.new_order("ask2", "AAPL", "sell", 100, "150.30")
        assert mm.wait_for(is_report("ask2", "0"))[39] == "0"
        # market buy through two levels: fills at the makers' prices, average in between
        quant.new_order("mkt", "AAPL", "buy", 150)
        fills = [quant.wait_for(is_report("mkt", "F"))]
        last = quant.wait_for(lambda m: m.get(11) == "mkt" and m.get(39) == "2")
        fills = [m for m in quant.reports("mkt") if m.get(150) == "F"]
        assert [(f[31], f[32]) for f in fills] == [("150.25", "100"), ("150.3", "50")] or [
            (f[31], f[32]) for f in fills
        ] == [("150.25", "100"), ("150.30", "50")]
        assert (last[14], last[151]) == ("150", "0")
        assert float(last[6]) == pytest.approx((150.25 * 100 + 150.30 * 50) / 150)
        # the maker hears of its fills too
        assert mm.wait_for(lambda m: m.get(11) == "ask1" and m.get(39) == "2")[14] == "100"
        # FOK that cannot fill: rejected, nothing traded
        quant.new_order("fok", "AAPL", "buy", 500, "150.30", tif="fok")
        fok = quant.wait_for(is_report("fok"))
        assert (fok[150], fok[39], fok[14]) == ("8", "8", "0")
        assert "fill-or-kill" in fok[58]
        # IOC: fills what it can, the rest is cancelled
        quant.new_order("ioc", "AAPL", "buy", 80, "150.30", tif="ioc")
        done = quant.wait_for(is_report("ioc", "4"))
        assert (done[14], done[151], done[39]) == ("50", "0", "4")
        # a resting limit order: New, leaves = qty
        quant.new_order("bid", "AAPL", "buy", 10, "149.00")
        bid = quant.wait_for(is_report("bid", "0"))
        assert (bid[39], bid[151], bid[44]) in {("0", "10", "149.00"), ("0", "10", "149")}
        ids = [m[17] for m in quant.messages if m.get(35) == "8"]
        assert len(ids) == len(set(ids)), "ExecIDs are unique"
    finally:
        quant.stop()
        mm.stop()


def test_cancel_and_replace_through_quickfix_echo_the_ids_and_unknown_orders_get_cancel_rejects(
    venue, tmp_path
):
    q = client(venue, tmp_path, "QUANT").start()
    try:
        q.new_order("o1", "MSFT", "buy", 100, "300.00")
        q.wait_for(is_report("o1", "0"))
        q.replace("o2", "o1", "MSFT", "buy", 60, "301.00")
        rep = q.wait_for(is_report("o2", "5"))
        assert (rep[41], rep[38], rep[151]) == ("o1", "60", "60")
        q.cancel("o3", "o2", "MSFT", "buy")
        can = q.wait_for(is_report("o3", "4"))
        assert (can[41], can[39], can[151]) == ("o2", "4", "0")
        q.cancel("o4", "nope", "MSFT", "buy")
        rej = q.wait_for(lambda m: m.get(35) == "9" and m.get(11) == "o4")
        assert (rej[434], rej[102], rej[41]) == ("1", "1", "nope")
        q.replace("o5", "o2", "MSFT", "buy", 10, "299.00")
        late = q.wait_for(lambda m: m.get(35) == "9" and m.get(11) == "o5")
        assert (late[434], late[102]) == ("2", "0")
    finally:
        q.stop()


def test_a_gap_the_client_opens_is_filled_by_quickfixs_gap_fill_and_the_order_still_trades(
    venue, tmp_path
):
    q = client(venue, tmp_path, "QUANT").start()
    try:
        q.new_order("g1", "AAPL", "buy", 1, "100.00")
        q.wait_for(is_report("g1", "0"))
        before = q.next_sender_seq()
        q.session().setNextSenderMsgSeqNum(before + 5)  # five numbers never sent
        q.new_order("g2", "AAPL", "buy", 1, "100.01")
        # the venue asks for the missing numbers; QuickFIX answers with a gap fill
        resend = q.wait_for(lambda m: m.get(35) == "2")
        assert int(resend[7]) == before
        assert q.wait_for(is_report("g2", "0"), timeout=10)[39] == "0"
    finally:
        q.stop()


def test_a_gap_on_the_client_side_makes_the_venue_resend_its_reports_as_possible_duplicates(
    venue, tmp_path
):
    q = client(venue, tmp_path, "QUANT").start()
    try:
        for k in range(3):
            q.new_order(f"r{k}", "AAPL", "buy", 1, f"10{k}.00")
            q.wait_for(is_report(f"r{k}", "0"))
        q.session().setNextTargetMsgSeqNum(q.next_target_seq() - 3)  # "lost" three reports
        start = len(q.messages)
        q.new_order("r3", "AAPL", "buy", 1, "103.00")
        dup = q.wait_for(lambda m: m.get(43) == "Y" and m.get(11) == "r0", timeout=10, start=start)
        assert dup[150] == "0"
        q.wait_for(is_report("r3", "0"), start=start)
    finally:
        q.stop()


def test_sequence_numbers_and_the_book_survive_a_logout_a_crash_and_a_restart(venue, tmp_path):
    q = client(venue, tmp_path, "QUANT").start()
    q.new_order("keep", "AAPL", "sell", 7, "120.00")
    q.wait_for(is_report("keep", "0"))
    sent, got = q.next_sender_seq(), q.next_target_seq()
    q.stop()
    q = client(venue, tmp_path, "QUANT").start()  # same store: no reset
    assert q.next_sender_seq() > sent and q.next_target_seq() > got
    q.stop()
    # a crash: no snapshot, the journal is replayed
    venue.proc.kill()
    venue.proc.wait()
    venue.start()
    assert re.search(r"snapshot None, 1 commands replayed", venue.log()), venue.log()
    # a clean stop writes a snapshot; the next start reaches the same state hash from it
    stopped = venue.stop()
    venue.start()
    assert venue.hash_at("recovered") == _hash_in(stopped, "stopped")
    q = client(venue, tmp_path, "QUANT").start()
    try:
        assert q.next_sender_seq() > sent + 2, "sequence numbers persisted across restarts"
        q.status("keep", "AAPL", "sell")
        st = q.wait_for(is_report("keep", "I"))
        assert (st[39], st[151], st[44]) in {("0", "7", "120.00"), ("0", "7", "120")}
    finally:
        q.stop()


def _hash_in(text: str, what: str) -> str:
    lines = [line for line in text.splitlines() if what in line]
    return re.search(r"state hash ([0-9a-f]{16})", lines[-1]).group(1)


def test_malformed_input_gets_session_rejects_and_bad_orders_get_execution_report_rejects(
    venue, tmp_path
):
    raw = RawSession(venue.port)
    try:
        raw.logon()
        raw.send("ZZ", [(58, "what is this")])
        rej = raw.expect(lambda m: m.get(35) == "3")
        assert rej.get(373) == "11" or "MsgType" in rej.get(58, ""), rej
        raw.send("D", [(11, "x1"), (55, "AAPL"), (38, "5"), (40, "2"), (44, "100.00")])
        rej = raw.expect(lambda m: m.get(35) == "3")
        assert (rej.get(373), rej.get(371)) == ("1", "54"), rej
        raw.send("D", [(11, "x2"), (55, "AAPL"), (54, "1"), (38, "abc"), (40, "2"), (44, "1")])
        assert raw.expect(lambda m: m.get(35) == "3").get(371) == "38"
        order = [(55, "AAPL"), (54, "1"), (38, "5"), (40, "2")]
        raw.send("D", [(11, "band"), *order, (44, "9000.00")])
        assert "band" in raw.expect(lambda m: m.get(11) == "band")[58]
        raw.send("D", [(11, "tick"), *order, (44, "100.001")])
        assert "tick" in raw.expect(lambda m: m.get(11) == "tick")[58]
        raw.send("D", [(11, "gtc"), *order, (44, "100.00"), (59, "1")])
        assert "TimeInForce" in raw.expect(lambda m: m.get(11) == "gtc")[58]
        raw.send("D", [(11, "ok"), *order, (44, "100.00")])
        assert raw.expect(lambda m: m.get(11) == "ok")[39] == "0"
        raw.send("D", [(11, "ok"), *order, (44, "100.00")])
        dup = raw.expect(lambda m: m.get(11) == "ok" and m.get(39) == "8")
        assert dup[58] == "duplicate ClOrdID"
        # a wrong CheckSum: the frame is garbled, ignored, and its number asked for again
        frame = bytearray(fix_frame([*raw.header("D"), (11, "bad"), *order, (44, "100.00")]))
        frame[-4:-1] = b"000" if frame[-4:-1] != b"000" else b"001"
        raw.sock.sendall(bytes(frame))
        raw.send("0", [])
        resend = raw.expect(lambda m: m.get(35) == "2")
        assert int(resend[7]) == raw.seq - 2
    finally:
        raw.close()
    # nothing reached the book: the status of the refused orders is unknown or rejected
    q = client(venue, tmp_path, "MM").start()
    try:
        q.new_order("probe", "AAPL", "sell", 5, "100.00")
        fill = q.wait_for(lambda m: m.get(11) == "probe" and m.get(39) in ("1", "2"))
        assert fill[14] == "5", "only the one valid order rested at 100.00"
    finally:
        q.stop()


def test_garbage_and_a_client_that_does_not_read_are_cut_off_while_other_sessions_trade(
    binary, tmp_path
):
    venue = Venue(binary, tmp_path, max_pending_reports=64).start()
    try:
        junk = RawSession(venue.port, sender="RAW")
        junk.sock.sendall(b"\x00\xffGARBAGE" * 1000)
        junk.close()
        flood = RawSession(venue.port, sender="RAW", rcvbuf=4096)
        flood.logon()
        order = [(55, "MSFT"), (54, "1"), (38, "1"), (40, "2"), (44, "10.00")]
        frames = b"".join(
            fix_frame([*flood.header("D"), (11, f"f{k}"), *order]) for k in range(30000)
        )
        flood.sock.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 20
        while sent < len(frames) and time.monotonic() < deadline:
            try:
                sent += flood.sock.send(frames[sent : sent + 65536])
            except BlockingIOError:
                time.sleep(0.01)
        # meanwhile another member logs on and trades
        mm = client(venue, tmp_path, "MM").start()
        mm.new_order("live", "AAPL", "buy", 3, "50.00")
        assert mm.wait_for(is_report("live", "0"), timeout=15)[39] == "0"
        mm.stop()
        deadline = time.monotonic() + 20
        while "not reading" not in venue.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "RAW is not reading its execution reports; disconnecting it" in venue.log()
        flood.close()
    finally:
        venue.stop()


def test_the_l2_feed_read_by_the_python_reader_matches_the_orders_resting_on_the_venue(
    venue, tmp_path
):
    q = client(venue, tmp_path, "QUANT").start()
    try:
        q.new_order("b1", "AAPL", "buy", 10, "99.00")
        q.new_order("b2", "AAPL", "buy", 5, "99.00")
        q.new_order("b3", "AAPL", "buy", 7, "98.50")
        q.new_order("a1", "AAPL", "sell", 4, "101.00")
        q.wait_for(is_report("a1", "0"))
        q.cancel("c1", "b3", "AAPL", "buy")
        q.wait_for(is_report("c1", "4"))
        reader = FeedReader()
        want_bids = {9900: (15, 2)}
        reader.listen(
            venue.md_sock,
            5,
            until=lambda r: r.book("AAPL") is not None and r.book("AAPL").bids == want_bids,
        )
        book = reader.book("AAPL")
        assert book is not None and book.bids == want_bids and book.asks == {10100: (4, 1)}
        assert reader.book("MSFT") is not None and reader.book("MSFT").bids == {}
    finally:
        q.stop()


def test_the_python_reader_counts_a_lost_datagram_and_recovers_at_the_next_snapshot(
    venue, tmp_path
):
    from resources.broker.venue_feed import INCREMENTAL, decode_packet

    q = client(venue, tmp_path, "QUANT").start()
    datagrams: list[bytes] = []
    venue.md_sock.settimeout(0.05)

    def collect(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                datagrams.append(venue.md_sock.recv(65536))

    try:
        collect(0.5)  # at least one snapshot of the empty books first
        for k in range(6):
            q.new_order(f"L{k}", "MSFT", "buy", 10 + k, f"{200 + k}.00")
            q.wait_for(is_report(f"L{k}", "0"))
            collect(0.05)
        collect(0.6)  # snapshots after the last change
    finally:
        q.stop()
    with_increments = [
        i
        for i, d in enumerate(datagrams)
        if any(m.template == INCREMENTAL and m.symbol == "MSFT" for m in decode_packet(d)[2])
    ]
    assert len(with_increments) >= 3
    lost = with_increments[2]
    reader = FeedReader()
    for i, d in enumerate(datagrams):
        if i != lost:
            reader.on_packet(d)
    assert reader.gaps >= 1
    book = reader.book("MSFT")
    assert book is not None, "recovered at a snapshot after the gap"
    assert book.bids == {(200 + k) * 100: (10 + k, 1) for k in range(6)}
    full = FeedReader()
    for d in datagrams:
        full.on_packet(d)
    assert full.gaps == 0 and full.book("MSFT").bids == book.bids
