"""The serving cache: the latest session's predictions, live book, live risk figures and paper
orders in Redis, written through by the store whenever those tables are written (so every asset
and every journal update that writes them publishes), read first by the API.

Never stale: each publish of a kind (after the store's write committed) gets a new version, an
increasing one (nanoseconds since the epoch, then a random suffix), written with the payload in
Redis (one transaction) and then, whether Redis could be reached or not, in the version file
``<data dir>/serving/<kind>.version`` next to the store. A reader serves the cached payload only
when its version is at least the file's: a materialization that could not reach Redis leaves
the file ahead of the cache, and readers fall back to the store until the next publish; a
reader between a publish's two writes sees the cache one version ahead, which is already the
committed store's. Optional: without
``QUANT_REDIS_URL`` nothing is published and readers read the store as before.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import redis

from resources.settings import data_dir

if TYPE_CHECKING:
    from resources.storage import Store

log = logging.getLogger("quant.serving_cache")

KEY_PREFIX = "quant:serving"
# after a failed call, readers go straight to the store for this long; a stopped server
# refuses at once, the timeout only bounds a hung one (50 ms tripped under CPU load: 1% of
# answers then came from the store, at its latency)
RETRY_AFTER_S = 1.0


@dataclass(frozen=True)
class ServedKind:
    """A kind the API serves: its table and the filter of the rows served."""

    table: str
    where: dict[str, list[Any]] | None = None


SERVED: dict[str, ServedKind] = {
    "predictions": ServedKind("predictions"),
    "weights": ServedKind("target_weights", {"is_live": [True]}),
    "risk": ServedKind("risk_metrics", {"is_live": [True]}),
    "orders": ServedKind("order_journal"),
}
KIND_OF_TABLE = {served.table: kind for kind, served in SERVED.items()}


def version_dir() -> Path:
    return data_dir() / "serving"


def latest_rows(store: Store, kind: str) -> tuple[date | None, pl.DataFrame]:
    """The latest session of ``kind``'s table and its served rows, from the store."""
    served = SERVED[kind]
    bounds = store.date_bounds(served.table)
    if bounds is None:
        return None, store.read(served.table, where=served.where).head(0)
    session = bounds[1]
    frame = store.read(served.table, session, session + timedelta(days=1), where=served.where)
    return session, frame


def payload(kind: str, session: date | None, frame: pl.DataFrame, version: str | None) -> dict:
    """The ``data`` of a served answer: what, which session, which version, from where."""
    rows = frame.with_columns(pl.col(pl.Date, pl.Datetime).cast(pl.String)).to_dicts()
    return {
        "kind": kind,
        "session": payload_session(session),
        "version": version,
        "source": "cache" if version else "store",
        "count": len(rows),
        "rows": rows,
    }


@dataclass(frozen=True)
class Cached:
    """A cached answer: its metadata and the JSON of its ``data``, ready to send."""

    session: str | None
    version: str
    count: int
    data_json: bytes


class ServingCache:
    """The Redis client of the serving cache (``url``: ``redis://host:port/db``)."""

    def __init__(self, url: str, versions: Path | None = None, timeout_s: float = 0.5) -> None:
        self.url = url
        self.versions = versions or version_dir()
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._down_until = 0.0

    def _key(self, kind: str) -> str:
        return f"{KEY_PREFIX}:{kind}"

    def _version_file(self, kind: str) -> Path:
        return self.versions / f"{kind}.version"

    def expected_version(self, kind: str) -> str | None:
        try:
            return self._version_file(kind).read_text().strip() or None
        except FileNotFoundError:
            return None

    def _write_version(self, kind: str, version: str) -> None:
        self.versions.mkdir(parents=True, exist_ok=True)
        scratch = self._version_file(kind).with_suffix(f".{os.getpid()}.tmp")
        scratch.write_text(version)
        os.replace(scratch, self._version_file(kind))

    def publish(self, kind: str, session: date | None, frame: pl.DataFrame) -> bool:
        """Cache ``frame`` as the latest ``kind`` under a new version, then record that version
        next to the store; False when Redis could not be reached (readers then use the store)."""
        version = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        data = json.dumps(payload(kind, session, frame, version), separators=(",", ":"))
        meta = json.dumps(
            {"session": payload_session(session), "version": version, "count": frame.height}
        )
        published = True
        try:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.set(f"{self._key(kind)}:meta", meta)
                pipe.set(f"{self._key(kind)}:data", data)
                pipe.execute()
        except redis.RedisError as exc:
            published = False
            log.warning("serving cache %s not published (%s): readers use the store", kind, exc)
        self._write_version(kind, version)
        return published

    def latest(self, kind: str) -> Cached | None:
        """The cached answer of ``kind`` when it is the latest version; None when it is absent,
        stale or Redis cannot be reached (the caller reads the store)."""
        expected = self.expected_version(kind)
        if expected is None or time.monotonic() < self._down_until:
            return None
        try:
            meta, data = self._client.mget(f"{self._key(kind)}:meta", f"{self._key(kind)}:data")
        except redis.RedisError:
            self._down_until = time.monotonic() + RETRY_AFTER_S
            return None
        if meta is None or data is None:
            return None
        fields = json.loads(meta)
        if fields["version"] < expected:
            return None
        body = data if isinstance(data, bytes) else data.encode()
        return Cached(fields["session"], fields["version"], int(fields["count"]), body)

    def close(self) -> None:
        self._client.close()


def payload_session(session: date | None) -> str | None:
    return session.isoformat() if session else None


def publish_latest(cache: ServingCache, store: Store, table: str) -> None:
    """Write-through after ``table`` was written: its latest served rows to the cache."""
    kind = KIND_OF_TABLE[table]
    session, frame = latest_rows(store, kind)
    cache.publish(kind, session, frame)
