"""Starts the real venue binary (engine_rs/venue) for tests: free loopback ports, a fresh data
directory, a small configuration; stopped with SIGTERM like an operator would."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def venue_binary() -> Path:
    """The venue built by `cargo test --workspace` (make test-rust) or built now, same profile."""
    subprocess.run(
        ["cargo", "build", "--profile", "test", "--locked", "-p", "venue", "--bin", "venue"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return ROOT / "target" / "debug" / "venue"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Venue:
    def __init__(
        self,
        binary: Path,
        workdir: Path,
        max_pending_reports: int = 65536,
        symbols: tuple[str, ...] = ("AAPL", "MSFT"),
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.md_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.md_sock.bind(("127.0.0.1", 0))
        self.md_port = self.md_sock.getsockname()[1]
        self.config = workdir / "venue.toml"
        self.config.write_text(
            textwrap.dedent(f"""
            [fix]
            listen = "127.0.0.1:{self.port}"
            heartbeat_secs = 30
            max_pending_reports = {max_pending_reports}
            session_store_sync = "never"
            [journal]
            dir = "{workdir / "data"}"
            fsync = "batch"
            max_batch = 512
            snapshot_every = 0
            ring_size = 4096
            [market_data]
            destination = "127.0.0.1:{self.md_port}"
            snapshot_ms = 200
            [[sessions]]
            comp_id = "QUANT"
            [[sessions]]
            comp_id = "MM"
            [[sessions]]
            comp_id = "RAW"
            """)
            + "".join(
                f'[[symbols]]\nsymbol = "{s}"\nmin_price = "0.01"\nmax_price = "5000.00"\n'
                "max_orders = 10000\n"
                for s in symbols
            )
        )
        self.proc: subprocess.Popen | None = None
        self.output: list[str] = []

    def start(self) -> Venue:
        self.output = []
        self.proc = subprocess.Popen(
            [str(self.binary), "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.workdir,
        )
        deadline = time.monotonic() + 30
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("venue exited: " + "".join(self.output))
            self.output.append(line)
            if "venue: ready" in line:
                os.set_blocking(self.proc.stdout.fileno(), False)
                return self
        raise TimeoutError("venue not ready: " + "".join(self.output))

    def log(self) -> str:
        if self.proc is not None and self.proc.stdout is not None:
            try:
                more = self.proc.stdout.read()
            except (OSError, TypeError):
                more = None
            if more:
                self.output.append(more)
        return "".join(self.output)

    def stop(self) -> str:
        """SIGTERM, wait, and return everything it printed."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        return self.log()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def hash_at(self, what: str) -> str:
        """The state hash printed on the line containing ``what`` ("recovered" / "stopped")."""
        for line in reversed(self.log().splitlines()):
            if what in line:
                found = re.search(r"state hash ([0-9a-f]{16})", line)
                if found:
                    return found.group(1)
        raise AssertionError(f"no {what!r} state hash in: {self.log()}")


def fix_frame(fields: list[tuple[int, str]], begin: str = "FIX.4.4") -> bytes:
    """A FIX frame with a correct BodyLength and CheckSum, for the raw-socket tests."""
    body = "".join(f"{t}={v}\x01" for t, v in fields).encode()
    head = f"8={begin}\x019={len(body)}\x01".encode()
    total = sum(head + body) % 256
    return head + body + f"10={total:03d}\x01".encode()


class RawSession:
    """A hand-driven FIX session over a plain socket: for the malformed input QuickFIX refuses
    to send."""

    def __init__(self, port: int, sender: str = "RAW", rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        self.sender = sender
        self.seq = 1
        self.buf = b""

    def header(self, msg_type: str) -> list[tuple[int, str]]:
        fields = [
            (35, msg_type),
            (49, self.sender),
            (56, "VENUE"),
            (34, str(self.seq)),
            (52, time.strftime("%Y%m%d-%H:%M:%S.000", time.gmtime())),
        ]
        self.seq += 1
        return fields

    def send(self, msg_type: str, body: list[tuple[int, str]]) -> None:
        self.sock.sendall(fix_frame(self.header(msg_type) + body))

    def logon(self) -> dict[int, str]:
        self.send("A", [(98, "0"), (108, "30"), (141, "Y")])
        return self.expect(lambda m: m.get(35) == "A")

    def read(self, timeout: float = 5.0) -> list[dict[int, str]]:
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            return []
        if not chunk:
            raise ConnectionResetError("venue closed the connection")
        self.buf += chunk
        out = []
        while b"\x0110=" in self.buf:
            end = self.buf.index(b"\x0110=") + 8
            frame, self.buf = self.buf[:end], self.buf[end:]
            fields = [f.split(b"=", 1) for f in frame.split(b"\x01") if b"=" in f]
            out.append({int(k): v.decode() for k, v in fields})
        return out

    def expect(self, match, timeout: float = 5.0) -> dict[int, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.read(max(0.05, deadline - time.monotonic())):
                if match(m):
                    return m
        raise TimeoutError("no matching message from the venue")

    def close(self) -> None:
        self.sock.close()
