"""The REST API (apps/api) through FastAPI's TestClient and, where the wire matters (a body never
read, a body cut off at the limit, a server error), a real uvicorn server on 127.0.0.1: the key,
the body limit, the common response schema, input validation, no server path in any message, a
real in-process run of a tiny selection, the PDF download, the order journal, the GraphQL path
against a fake client, and a schemathesis run of the OpenAPI schema."""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from apps.api import app as api_app
from apps.api.app import create_app
from apps.api.runs import Backend, GraphQLRuns, RunInfo, RunNotFound
from apps.api.settings import INSECURE_DEV_KEY, ApiSettings, ConfigurationError
from quant_assets.partitions import last_completed_trading_day, next_trading_day
from quant_core.calendar import nyse_calendar
from resources.storage import Store
from resources.storage.tables import ORDER_JOURNAL

KEY = "test-api-key-0123456789abcdef"
AUTH = {"X-API-Key": KEY}
SESSION = "2024-03-05"  # a Tuesday, an NYSE session


def assert_common_schema(body: dict[str, Any], status: str) -> None:
    assert set(body) == {"status", "timestamp", "summary", "data"}
    assert body["status"] == status
    assert datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00")).tzinfo is not None
    assert isinstance(body["summary"], str) and body["summary"]


@dataclass
class StubRuns:
    """Records submissions instead of running anything."""

    backend: Backend = "in_process"
    submitted: list[date] = field(default_factory=list)

    def submit(self, partition: date) -> RunInfo:
        self.submitted.append(partition)
        return RunInfo(
            run_id=f"stub-{len(self.submitted)}",
            status="QUEUED",
            backend="in_process",
            job_name="daily_pipeline",
            partition=partition.isoformat(),
        )

    def get(self, run_id: str) -> RunInfo:
        raise RunNotFound(run_id)

    def close(self) -> None:
        pass


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QUANT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("QUANT_STORE_URL", str(tmp_path / "quant.duckdb"))
    monkeypatch.setenv("QUANT_SYNTHETIC_TICKERS", "5")
    monkeypatch.setenv("QUANT_MARKET_DATA_PROVIDER", "synthetic")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.delenv("QUANT_DAGSTER_URL", raising=False)
    return tmp_path


def make_settings(tmp: Path) -> ApiSettings:
    return ApiSettings(
        api_key=KEY,
        asset_selection=("universe", "raw_bars"),
        reports_dir=tmp / "data" / "reports",
    )


@pytest.fixture
def client(env: Path) -> Iterator[TestClient]:
    """The app as configured from the environment: in-process runs, the temp store."""
    with TestClient(create_app(make_settings(env))) as test_client:
        yield test_client


@pytest.fixture
def stub_client(env: Path) -> Iterator[tuple[TestClient, StubRuns]]:
    runs = StubRuns()
    with TestClient(create_app(make_settings(env), runner=runs)) as test_client:
        yield test_client, runs


# --- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/run"),
        ("get", "/api/v1/runs/some-run"),
        ("get", "/api/v1/report"),
        ("get", "/api/v1/orders"),
        ("get", "/api/v1/latest/weights"),
    ],
)
def test_every_route_needs_the_key(
    stub_client: tuple[TestClient, StubRuns], method: str, path: str
) -> None:
    client, runs = stub_client
    missing = client.request(method, path)
    assert missing.status_code == 401
    assert_common_schema(missing.json(), "error")
    assert "missing API key" in missing.json()["summary"]
    wrong = client.request(method, path, headers={"X-API-Key": KEY[:-1] + "X"})
    assert wrong.status_code == 401
    assert wrong.json()["summary"] == "invalid API key"
    assert wrong.headers["www-authenticate"] == "X-API-Key"
    assert runs.submitted == []


def test_docs_are_open_and_describe_the_schema(stub_client: tuple[TestClient, StubRuns]) -> None:
    client, _ = stub_client
    assert client.get("/api/v1/docs").status_code == 200
    # offline: the page loads the Swagger UI from the API itself, not from a CDN
    page = client.get("/api/v1/docs").text
    assert "cdn." not in page and "/api/v1/static-docs/swagger-ui-bundle.js" in page
    script = client.get("/api/v1/static-docs/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000
    spec = client.get("/api/v1/openapi.json").json()
    assert set(spec["paths"]) == {
        "/api/v1/run",
        "/api/v1/runs/{run_id}",
        "/api/v1/report",
        "/api/v1/orders",
        "/api/v1/latest/{kind}",
    }
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert (
        "application/pdf" in spec["paths"]["/api/v1/report"]["get"]["responses"]["200"]["content"]
    )
    assert "binary exception" in spec["info"]["description"]
    # every documented error is the common schema, validation errors included
    for path in spec["paths"].values():
        for operation in path.values():
            for code, answer in operation["responses"].items():
                if code.startswith(("4", "5")):
                    ref = answer["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ApiResponse"), (code, ref)


def test_settings_refuse_a_missing_or_empty_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUANT_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="QUANT_API_KEY is not set"):
        ApiSettings.from_env()
    assert ApiSettings.from_env(insecure_dev_key=True).api_key == INSECURE_DEV_KEY
    with pytest.raises(ConfigurationError, match="empty"):
        ApiSettings(api_key="")
    monkeypatch.setenv("QUANT_API_KEY", KEY)
    assert ApiSettings.from_env(insecure_dev_key=True).api_key == KEY


def test_main_refuses_to_start_without_a_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    served: list[tuple[str, int]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: served.append((host, port)))
    monkeypatch.delenv("QUANT_API_KEY", raising=False)
    monkeypatch.delenv("QUANT_API_HOST", raising=False)
    monkeypatch.delenv("QUANT_API_PORT", raising=False)
    assert api_app.main([]) == 2
    assert "QUANT_API_KEY is not set" in capsys.readouterr().err
    # the public development key is never served beyond loopback
    assert api_app.main(["--insecure-dev-key", "--host", "0.0.0.0"]) == 2
    assert "loopback" in capsys.readouterr().err
    assert served == []
    assert api_app.main(["--insecure-dev-key"]) == 0
    monkeypatch.setenv("QUANT_API_KEY", KEY)
    monkeypatch.setenv("QUANT_API_PORT", "8123")
    assert api_app.main(["--host", "0.0.0.0"]) == 0
    assert served == [("127.0.0.1", 8000), ("0.0.0.0", 8123)]


# --- on the wire: the key before the body, the body limit --------------------------------------

LIMIT = 1024  # a small limit keeps the streamed bodies short
ANSWER_WITHIN_S = 5.0


@contextmanager
def serving(app: FastAPI) -> Iterator[int]:
    """``app`` on a real uvicorn server on 127.0.0.1 at a free port; yields the port."""
    import uvicorn

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield listener.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    text: str


def exchange(port: int, headers: dict[str, str], *sent: bytes) -> Answer:
    """POST /api/v1/run with ``headers``, then the byte strings ``sent`` (often less than the
    headers promise), and the server's answer. A server waiting for the rest of a body never
    answers: the read times out and the test fails."""
    import http.client

    lines = [
        "POST /api/v1/run HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_WITHIN_S) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        for part in sent:
            conn.sendall(part)
        try:
            response = http.client.HTTPResponse(conn)
            response.begin()
            text = response.read().decode()
        except TimeoutError:
            raise AssertionError(
                f"no answer in {ANSWER_WITHIN_S} s: the server awaits the body"
            ) from None
    return Answer(response.status, json.loads(text), text)


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@pytest.fixture
def wire(env: Path) -> Iterator[tuple[int, StubRuns]]:
    runs = StubRuns()
    settings = ApiSettings(api_key=KEY, reports_dir=env / "data" / "reports", max_body_bytes=LIMIT)
    with serving(create_app(settings, runner=runs)) as port:
        yield port, runs


@pytest.mark.parametrize("key", [None, KEY[:-1] + "X"])
def test_an_unauthenticated_body_is_never_read(wire: tuple[int, StubRuns], key: str | None) -> None:
    """Headers that promise 100 MB, and no body: the 401 comes from the headers alone. Were the
    body read first (as FastAPI does before a route's dependencies), no answer would come."""
    port, runs = wire
    keyed = {"X-API-Key": key} if key else {}
    promised = {**keyed, "Content-Type": "application/json", "Content-Length": str(100 * 2**20)}
    answer = exchange(port, promised)
    assert answer.status == 401
    assert_common_schema(answer.body, "error")
    assert answer.body["summary"] == (
        "invalid API key" if key else "missing API key: send it in the X-API-Key header"
    )
    # a chunked body, of which only the first chunk ever comes
    streamed = {**keyed, "Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    assert exchange(port, streamed, chunk(b'{"partition": ')).status == 401
    assert runs.submitted == []


def test_a_body_over_the_limit_is_refused_from_its_declared_length(
    wire: tuple[int, StubRuns],
) -> None:
    port, runs = wire
    headers = {**AUTH, "Content-Type": "application/json"}
    answer = exchange(port, {**headers, "Content-Length": str(LIMIT + 1)})  # no body sent
    assert answer.status == 413
    assert_common_schema(answer.body, "error")
    assert answer.body["summary"] == (
        f"request body too large: {LIMIT + 1} bytes, the limit is {LIMIT} bytes "
        "(QUANT_API_MAX_BODY_BYTES)"
    )
    # the limit itself is allowed: JSON padded with blanks to exactly LIMIT bytes
    body = json.dumps({"partition": SESSION}).ljust(LIMIT).encode()
    answer = exchange(port, {**headers, "Content-Length": str(len(body))}, body)
    assert answer.status == 202, answer.text
    assert runs.submitted == [date.fromisoformat(SESSION)]


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(wire: tuple[int, StubRuns]) -> None:
    """No Content-Length to go by: the server counts the bytes as they come and answers 413 at
    the first byte over the limit, without waiting for the end of the body (never sent)."""
    port, runs = wire
    headers = {**AUTH, "Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    answer = exchange(port, headers, chunk(b" " * LIMIT), chunk(b"{"))
    assert answer.status == 413, answer.text
    assert_common_schema(answer.body, "error")
    assert answer.body["summary"] == (
        f"request body too large: over {LIMIT} bytes, the limit is {LIMIT} bytes "
        "(QUANT_API_MAX_BODY_BYTES)"
    )
    # a whole chunked body within the limit is taken
    body = json.dumps({"partition": SESSION}).encode()
    answer = exchange(port, headers, chunk(body[:10]), chunk(body[10:]), b"0\r\n\r\n")
    assert answer.status == 202, answer.text
    assert runs.submitted == [date.fromisoformat(SESSION)]


def test_the_body_limit_is_configured_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QUANT_API_KEY", KEY)
    monkeypatch.delenv("QUANT_API_MAX_BODY_BYTES", raising=False)
    assert ApiSettings.from_env().max_body_bytes == 64 * 1024
    monkeypatch.setenv("QUANT_API_MAX_BODY_BYTES", "4096")
    assert ApiSettings.from_env().max_body_bytes == 4096
    for bad in ("64k", "0"):
        monkeypatch.setenv("QUANT_API_MAX_BODY_BYTES", bad)
        with pytest.raises(ConfigurationError, match="QUANT_API_MAX_BODY_BYTES must be"):
            ApiSettings.from_env()


def test_no_error_names_a_server_path(env: Path) -> None:
    """Every kind of error, a server error included (the store's file is not a database), on a
    real server: no message holds the server's directories."""
    import httpx

    broken = env / "data" / "quant.duckdb"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a database" * 100)
    store = Store(url=str(broken))
    with pytest.raises(Exception) as failure:  # the library's own error names the file
        store.read("order_journal")
    assert str(env) in str(failure.value)
    settings = ApiSettings(api_key=KEY, reports_dir=env / "data" / "reports", max_body_bytes=LIMIT)
    app = create_app(settings, runner=StubRuns(), store=store)
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("GET", "/api/v1/orders", {"headers": {}}, 401),
        ("GET", "/api/v1/report", {}, 404),
        ("GET", "/api/v1/report?date=2024-03-06", {}, 404),
        ("GET", "/api/v1/runs/no-such-run", {}, 404),
        ("GET", "/api/v1/no-such-route", {}, 404),
        ("DELETE", "/api/v1/run", {}, 405),
        ("POST", "/api/v1/run", {"content": b"x" * (LIMIT + 1)}, 413),
        ("POST", "/api/v1/run", {"content": b"null"}, 422),
        ("POST", "/api/v1/run", {"json": {"partition": "2024-03-09"}}, 422),
        ("GET", "/api/v1/orders", {}, 500),
    ]
    with serving(app) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
        for method, path, kwargs, code in cases:
            kwargs = {"headers": {**AUTH, "Content-Type": "application/json"}, **kwargs}
            answer = http.request(method, path, **kwargs)
            assert answer.status_code == code, (method, path, answer.text)
            assert_common_schema(answer.json(), "error")
            assert str(env) not in answer.text, (method, path, answer.text)
            assert "/tmp" not in answer.text and "/work" not in answer.text, answer.text


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"partition": "2024-03-09"}, "partition 2024-03-09 is not an NYSE session: a weekend"),
        ({"partition": "2024-12-25"}, "2024-12-25 is not an NYSE session: a holiday (Christmas)"),
        ({"partition": "2026-11-26"}, "not an NYSE session: a holiday (Thanksgiving)"),
        ({"partition": "2012-10-29"}, "not an NYSE session: an unscheduled market closure"),
        ({"partition": "2024-02-30"}, "'2024-02-30' is not a valid date"),
        ({"partition": "05/03/2024"}, "partition: String should match pattern"),
        ({"partition": "2004-12-31"}, "before the first partition 2005-01-03"),
        ({"partition": "2024-03-05", "assets": "all"}, "Extra inputs are not permitted"),
    ],
)
def test_run_rejects_bad_partitions(
    stub_client: tuple[TestClient, StubRuns], body: dict[str, str], message: str
) -> None:
    client, runs = stub_client
    answer = client.post("/api/v1/run", json=body, headers=AUTH)
    assert answer.status_code == 422, answer.text
    assert_common_schema(answer.json(), "error")
    assert message in answer.json()["summary"]
    assert runs.submitted == []


def test_a_date_after_the_calendar_or_not_yet_closed_is_named_as_such(
    stub_client: tuple[TestClient, StubRuns],
) -> None:
    client, runs = stub_client
    last_known = nyse_calendar().last_session.date()
    beyond = next_trading_day(last_known)  # a weekday the calendar does not know yet
    answer = client.post("/api/v1/run", json={"partition": str(beyond)}, headers=AUTH)
    assert answer.status_code == 422
    summary = answer.json()["summary"]
    assert summary == f"partition {beyond} is beyond the NYSE calendar's last session {last_known}"
    tomorrow = next_trading_day(last_completed_trading_day())
    answer = client.post("/api/v1/run", json={"partition": str(tomorrow)}, headers=AUTH)
    assert answer.status_code == 422
    assert answer.json()["summary"] == (
        f"partition {tomorrow} has not closed yet: the last completed session is "
        f"{last_completed_trading_day()}"
    )
    assert runs.submitted == []


@pytest.mark.parametrize("body", [b"null", b"[]", b'"2024-03-05"', b"not json"])
def test_a_body_that_is_not_a_json_object_starts_no_run(
    stub_client: tuple[TestClient, StubRuns], body: bytes
) -> None:
    client, runs = stub_client
    headers = {**AUTH, "Content-Type": "application/json"}
    answer = client.post("/api/v1/run", content=body, headers=headers)
    assert answer.status_code == 422, answer.text
    assert_common_schema(answer.json(), "error")
    assert answer.json()["summary"].startswith("invalid request: body")
    assert runs.submitted == []


def test_run_without_a_partition_takes_the_last_completed_session(
    stub_client: tuple[TestClient, StubRuns],
) -> None:
    client, runs = stub_client
    bodies: list[dict[str, Any]] = [{}, {"json": {}}]
    for kwargs in bodies:
        answer = client.post("/api/v1/run", headers=AUTH, **kwargs)
        assert answer.status_code == 202, answer.text
        assert_common_schema(answer.json(), "ok")
    assert runs.submitted == [last_completed_trading_day()] * 2


def test_unknown_run_and_bad_query_dates(client: TestClient) -> None:
    answer = client.get("/api/v1/runs/00000000-0000-0000-0000-000000000000", headers=AUTH)
    assert answer.status_code == 404
    assert_common_schema(answer.json(), "error")
    assert "no run" in answer.json()["summary"]
    for path in ("/api/v1/report?date=2024-13-01", "/api/v1/orders?date=yesterday"):
        answer = client.get(path, headers=AUTH)
        assert answer.status_code == 422, path
        assert_common_schema(answer.json(), "error")
        assert "date" in answer.json()["summary"]
    answer = client.get("/api/v1/orders?limit=0", headers=AUTH)
    assert answer.status_code == 422
    assert "limit" in answer.json()["summary"]


# --- a real in-process run ----------------------------------------------------------------------


def wait_for_run(client: TestClient, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        status = client.get(f"/api/v1/runs/{run_id}", headers=AUTH)
        assert status.status_code == 200, status.text
        assert_common_schema(status.json(), "ok")
        run: dict[str, Any] = status.json()["data"]
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED") or time.monotonic() > deadline:
            return run
        time.sleep(0.5)


def test_triggered_in_process_run_reaches_success(
    client: TestClient, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = client.post("/api/v1/run", json={"partition": SESSION}, headers=AUTH)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert_common_schema(body, "ok")
    run_id = body["data"]["run_id"]
    assert body["data"]["partition"] == SESSION
    # raw_bars is one multi-asset with its quarantine: the run takes it whole
    assert body["data"]["asset_selection"] == ["universe", "raw_bars", "raw_bars_quarantine"]
    assert body["data"]["status"] == "QUEUED"
    run = wait_for_run(client, run_id)
    assert run["status"] == "SUCCESS", run
    assert run["partition"] == SESSION
    assert run["start_time"] and run["end_time"]
    assert set(run["asset_selection"]) == {"universe", "raw_bars", "raw_bars_quarantine"}
    # it ran against the instance at DAGSTER_HOME and wrote to the store at QUANT_STORE_URL
    instance = dg.DagsterInstance.from_config(str(env / "dagster_home"))
    try:
        stored = instance.get_run_by_id(run_id)
        assert stored is not None and stored.tags["dagster/partition"] == SESSION
    finally:
        instance.dispose()
    bars = Store(url=str(env / "quant.duckdb")).read("raw_bars")
    assert bars["date"].unique().to_list() == [date.fromisoformat(SESSION)]
    assert bars["ticker"].n_unique() >= 5

    # resources come from the environment when a run starts: a broken provider fails the next
    # run, and its status names the failed step and the error
    monkeypatch.setenv("QUANT_MARKET_DATA_PROVIDER", "no-such-provider")
    failed = client.post("/api/v1/run", json={"partition": "2024-03-06"}, headers=AUTH)
    run = wait_for_run(client, failed.json()["data"]["run_id"])
    assert run["status"] == "FAILURE", run
    assert run["message"].startswith("universe: ") and "no-such-provider" in run["message"]

    # a failure naming a file of the server names it from the data directory, not where it is
    monkeypatch.setenv("QUANT_MARKET_DATA_PROVIDER", "files")
    monkeypatch.setenv("QUANT_FILES_PATH", str(env / "data" / "no-such-panel"))
    failed = client.post("/api/v1/run", json={"partition": "2024-03-07"}, headers=AUTH)
    run = wait_for_run(client, failed.json()["data"]["run_id"])
    assert run["status"] == "FAILURE", run
    assert "$QUANT_DATA_DIR/no-such-panel" in run["message"], run["message"]
    assert str(env) not in run["message"]


def test_a_range_run_reports_its_range(client: TestClient) -> None:
    """A run over a range of partitions (as ``quant-daily`` and backfills make them) on the
    instance the API reads: its partition is the range, not null."""
    from apps.cli import dagster_home
    from quant_assets.ingest.assets import raw_bars, universe
    from resources.config import resources_from_env

    instance = dg.DagsterInstance.from_config(str(dagster_home()))
    try:
        result = dg.materialize(
            [universe, raw_bars],
            instance=instance,
            resources=resources_from_env(),
            tags={
                "dagster/asset_partition_range_start": "2024-03-04",
                "dagster/asset_partition_range_end": "2024-03-06",
            },
        )
    finally:
        instance.dispose()
    assert result.success
    answer = client.get(f"/api/v1/runs/{result.run_id}", headers=AUTH)
    assert answer.status_code == 200, answer.text
    run = answer.json()["data"]
    assert run["partition"] == "2024-03-04...2024-03-06"
    assert run["partition_range"] == {"start": "2024-03-04", "end": "2024-03-06"}
    assert answer.json()["summary"] == (
        f"run {result.run_id} for 2024-03-04...2024-03-06 is SUCCESS"
    )


# --- the report ---------------------------------------------------------------------------------


def write_pdf(path: Path, text: str) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf = canvas.Canvas(str(path), pagesize=A4)
    pdf.drawString(72, 770, text)
    pdf.showPage()
    pdf.save()
    return path.read_bytes()


def test_report_download(stub_client: tuple[TestClient, StubRuns], env: Path) -> None:
    client, _ = stub_client
    missing = client.get("/api/v1/report", headers=AUTH)
    assert missing.status_code == 404
    assert_common_schema(missing.json(), "error")
    assert "report_YYYYMMDD.pdf" in missing.json()["summary"]

    reports = env / "data" / "reports"
    older = write_pdf(reports / "report_20240304.pdf", "Daily report 2024-03-04")
    newer = write_pdf(reports / "report_20240305.pdf", "Daily report 2024-03-05")
    (reports / "report_latest.pdf").write_bytes(b"not a dated report")

    latest = client.get("/api/v1/report", headers=AUTH)
    assert latest.status_code == 200
    assert latest.headers["content-type"] == "application/pdf"
    assert "report_20240305.pdf" in latest.headers["content-disposition"]
    assert latest.content == newer and latest.content.startswith(b"%PDF-")

    dated = client.get("/api/v1/report", params={"date": "2024-03-04"}, headers=AUTH)
    assert dated.status_code == 200 and dated.content == older

    absent = client.get("/api/v1/report", params={"date": "2024-03-06"}, headers=AUTH)
    assert absent.status_code == 404
    assert "2024-03-06" in absent.json()["summary"]


# --- orders -------------------------------------------------------------------------------------


def journal_row(day: date, ticker: str, status: str, filled: int) -> dict[str, Any]:
    return {
        "date": day,
        "client_order_id": f"{day:%Y%m%d}-live-{ticker}-buy",
        "broker": "simulated",
        "strategy": "live",
        "ticker": ticker,
        "side": "buy",
        "qty": 100,
        "reference_price": 10.0,
        "limit_price": 10.5,
        "status": status,
        "filled_qty": filled,
        "avg_fill_price": 10.01 if filled else None,
        "fees": 0.05 if filled else 0.0,
        "reason": "over the notional limit" if status == "REJECTED" else None,
        "broker_order_id": f"sim-{ticker}" if filled else None,
        "updated_at": datetime(2024, 3, 5, 22, tzinfo=UTC).isoformat(),
    }


def test_orders_newest_session_first(stub_client: tuple[TestClient, StubRuns], env: Path) -> None:
    client, _ = stub_client
    empty = client.get("/api/v1/orders", headers=AUTH)
    assert empty.status_code == 200
    assert_common_schema(empty.json(), "ok")
    assert empty.json()["data"]["orders"] == []
    assert empty.json()["summary"] == "no paper orders"

    d1, d2 = date(2024, 3, 4), date(2024, 3, 5)
    rows = [
        journal_row(d1, "AAA", "FILLED", 100),
        journal_row(d1, "BBB", "REJECTED", 0),
        journal_row(d2, "CCC", "NEW", 0),
        journal_row(d2, "AAA", "PARTIALLY_FILLED", 40),
    ]
    store = Store(url=str(env / "quant.duckdb"))
    store.upsert("order_journal", pl.DataFrame(rows, schema=ORDER_JOURNAL.polars_schema))
    store.close()

    body = client.get("/api/v1/orders", headers=AUTH).json()
    assert_common_schema(body, "ok")
    orders = body["data"]["orders"]
    assert [(o["date"], o["ticker"], o["status"]) for o in orders] == [
        ("2024-03-05", "AAA", "PARTIALLY_FILLED"),
        ("2024-03-05", "CCC", "NEW"),
        ("2024-03-04", "AAA", "FILLED"),
        ("2024-03-04", "BBB", "REJECTED"),
    ]
    assert orders[0]["filled_qty"] == 40 and orders[0]["avg_fill_price"] == 10.01
    assert orders[3]["reason"] == "over the notional limit"
    assert body["data"]["sessions"] == ["2024-03-05", "2024-03-04"]
    assert "4 of 4 paper orders" in body["summary"]

    one_day = client.get("/api/v1/orders", params={"date": "2024-03-04"}, headers=AUTH).json()
    assert [o["ticker"] for o in one_day["data"]["orders"]] == ["AAA", "BBB"]
    limited = client.get("/api/v1/orders", params={"limit": 1}, headers=AUTH).json()
    assert limited["data"]["count"] == 1 and limited["data"]["total"] == 4
    assert limited["data"]["orders"][0]["ticker"] == "AAA"


# --- the GraphQL path ---------------------------------------------------------------------------


class FakeGraphQLClient:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def submit_job_execution(self, job_name: str, **kwargs: Any) -> str:
        self.calls.append({"job_name": job_name, **kwargs})
        return "gql-run-1"

    def get_run_status(self, run_id: str) -> dg.DagsterRunStatus:
        from dagster_graphql import DagsterGraphQLClientError

        if run_id == "gql-run-1":
            return dg.DagsterRunStatus.STARTED
        if run_id == "down":
            raise DagsterGraphQLClientError("Error when connecting to url http://dagster:3000")
        raise DagsterGraphQLClientError("RunNotFoundError", f"run {run_id} not found")


def test_runs_go_through_the_dagster_webserver_when_configured(env: Path) -> None:
    fake = FakeGraphQLClient()
    runs = GraphQLRuns("http://dagster:3000", "daily_pipeline", ("universe", "raw_bars"), fake)
    with TestClient(create_app(make_settings(env), runner=runs)) as client:
        answer = client.post("/api/v1/run", json={"partition": SESSION}, headers=AUTH)
        assert answer.status_code == 202
        assert answer.json()["data"]["run_id"] == "gql-run-1"
        assert answer.json()["data"]["backend"] == "graphql"
        (call,) = fake.calls
        assert call["job_name"] == "daily_pipeline"
        assert call["tags"]["dagster/partition"] == SESSION
        assert call["asset_selection"] == [
            dg.AssetKey("universe"),
            dg.AssetKey("raw_bars"),
            dg.AssetKey("raw_bars_quarantine"),
        ]
        status = client.get("/api/v1/runs/gql-run-1", headers=AUTH)
        assert status.json()["data"]["status"] == "STARTED"
        assert client.get("/api/v1/runs/other", headers=AUTH).status_code == 404
        down = client.get("/api/v1/runs/down", headers=AUTH)
        assert down.status_code == 502
        assert_common_schema(down.json(), "error")


def test_the_webserver_url_selects_the_graphql_client(env: Path) -> None:
    settings = ApiSettings(api_key=KEY, dagster_url="https://dagster.example:3443/prefix")
    runner = api_app.make_runner(settings)
    assert isinstance(runner, GraphQLRuns)
    assert runner._client._url == "https://dagster.example:3443/prefix/graphql"


# --- property-based: the OpenAPI schema ---------------------------------------------------------

_SCHEMA_TMP = Path(tempfile.mkdtemp(prefix="quant-api-schemathesis-"))


def _schema_app() -> FastAPI:
    write_pdf(_SCHEMA_TMP / "reports" / "report_20240305.pdf", "Daily report 2024-03-05")
    return create_app(
        ApiSettings(api_key=KEY, reports_dir=_SCHEMA_TMP / "reports"),
        runner=StubRuns(),
        store=Store(url=str(_SCHEMA_TMP / "quant.duckdb")),
    )


schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", _schema_app())


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_openapi_schema_has_no_server_errors(case: schemathesis.Case) -> None:
    """Valid and invalid requests (schemathesis' positive and negative generation) with the key:
    no 5xx, only documented status codes and content types, and every body as documented (the
    common schema, or the PDF). Not the positive/negative data checks: a schema-valid date that
    is no NYSE session is rightly a 422, and unknown query parameters are ignored."""
    case.call_and_validate(
        headers=AUTH,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
