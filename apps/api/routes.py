"""The /api/v1 routes. Every JSON answer is an :class:`ApiResponse`; ``GET /report`` sends the
PDF itself."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from apps.api.auth import require_api_key
from apps.api.runs import RunBackendError, RunLauncher, RunNotFound
from apps.api.schemas import DATE_PATTERN, ApiResponse, RunRequest, ok
from quant_core.calendar import last_completed_trading_day, partition_problem
from resources.serving_cache import SERVED, latest_rows, payload

REPORT_NAME = re.compile(r"^report_(\d{8})\.pdf$")
MAX_ORDERS = 1000


def _answer(description: str) -> dict[str, Any]:
    return {"model": ApiResponse, "description": description}


Responses = dict[int | str, dict[str, Any]]

UNAUTHORIZED: Responses = {401: _answer("missing or invalid X-API-Key")}
INVALID: Responses = {422: _answer("invalid input (the message says which and why)")}

# a documented 422 in the common schema on every route (else FastAPI documents its own)
router = APIRouter(dependencies=[Depends(require_api_key)], responses={**UNAUTHORIZED, **INVALID})


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=message)


def parse_day(value: str, what: str) -> date:
    """A YYYY-MM-DD string as a date, or a 422 naming ``what`` was wrong."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise _unprocessable(f"{what} {value!r} is not a valid date (YYYY-MM-DD)") from None
    if not 1900 <= day.year < 9999:
        raise _unprocessable(f"{what} {value} is out of range")
    return day


def run_partition(value: str | None) -> date:
    """The requested partition, checked (``partition_problem``: an NYSE session from
    QUANT_START_DATE whose close has passed); None means the last completed session."""
    if value is None:
        return last_completed_trading_day()
    day = parse_day(value, "partition")
    problem = partition_problem(day)
    if problem is not None:
        raise _unprocessable(f"partition {problem}")
    return day


def _date_query(description: str) -> Any:
    """The ``date`` query parameter of a route: a session as YYYY-MM-DD."""
    return Query(
        alias="date",
        pattern=DATE_PATTERN,
        json_schema_extra={"format": "date"},
        description=description,
    )


def _runner(request: Request) -> RunLauncher:
    runner: RunLauncher = request.app.state.runner
    return runner


@router.post(
    "/run",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ApiResponse,
    responses={
        400: _answer("a body the server cannot parse (invalid JSON is a 422)"),
        413: _answer("a body over QUANT_API_MAX_BODY_BYTES (default 65536)"),
        502: _answer("the Dagster webserver refused or did not answer"),
    },
    summary="Trigger the daily pipeline for a partition",
)
def trigger_run(
    request: Request, body: Annotated[RunRequest, Body(default_factory=RunRequest)]
) -> ApiResponse:
    """Starts the daily job (the daily schedule's assets) for one NYSE session: the body's
    ``partition``, or the last completed session when the body is empty (or ``{}``; a JSON
    ``null`` is refused). Answers at once with the run id in ``data.run_id``; follow it with
    ``GET /runs/{run_id}``."""
    partition = run_partition(body.partition)
    try:
        info = _runner(request).submit(partition)
    except RunBackendError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail=str(exc)) from exc
    return ok(f"run {info.run_id} of {info.job_name} for {partition} submitted", info.as_dict())


@router.get(
    "/runs/{run_id}",
    response_model=ApiResponse,
    responses={
        404: _answer("no run with that id"),
        502: _answer("the Dagster webserver did not answer"),
    },
    summary="A run's status",
)
def get_run(request: Request, run_id: str) -> ApiResponse:
    """The run's Dagster status (QUEUED, STARTING, STARTED, SUCCESS, FAILURE, CANCELED, ...),
    partition and times, in ``data``. A run over a range of partitions (``quant-daily``, a
    backfill) has ``partition`` "FIRST...LAST" and ``partition_range`` {"start", "end"}."""
    try:
        info = _runner(request).get(run_id)
    except RunNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no run {run_id!r}") from None
    except RunBackendError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail=str(exc)) from exc
    where = f" for {info.partition}" if info.partition else ""
    return ok(f"run {info.run_id}{where} is {info.status}", info.as_dict())


def find_report(reports_dir: Path, day: date | None) -> Path | None:
    """``report_YYYYMMDD.pdf`` of ``day``, or the newest such file when ``day`` is None."""
    if day is not None:
        path = reports_dir / f"report_{day:%Y%m%d}.pdf"
        return path if path.is_file() else None
    dated: list[tuple[date, Path]] = []
    if reports_dir.is_dir():
        for path in reports_dir.iterdir():
            match = REPORT_NAME.match(path.name)
            if not match or not path.is_file():
                continue
            try:
                dated.append((datetime.strptime(match.group(1), "%Y%m%d").date(), path))
            except ValueError:
                continue
    return max(dated)[1] if dated else None


@router.get(
    "/report",
    response_class=FileResponse,
    responses={
        200: {
            "description": "the PDF report itself (application/pdf), not the JSON schema",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        },
        404: _answer("no report for that date (or none at all)"),
    },
    summary="Download the daily PDF report",
)
def get_report(
    request: Request,
    day: Annotated[
        str | None, _date_query("the session, YYYY-MM-DD; omitted: the latest report")
    ] = None,
) -> FileResponse:
    """The daily report ``report_YYYYMMDD.pdf`` from the data directory's ``reports/``: the one
    of ``date``, or the latest. The one route whose success is not JSON: the body is the PDF
    (``application/pdf``, as an attachment); errors are JSON in the common schema."""
    wanted = parse_day(day, "date") if day is not None else None
    reports_dir: Path = request.app.state.settings.reports_dir
    path = find_report(reports_dir, wanted)
    if path is None:
        what = f"for {wanted}" if wanted else "at all"
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"no daily report {what}: the daily_report asset writes "
            "reports/report_YYYYMMDD.pdf in the data directory",
        )
    return FileResponse(path, media_type="application/pdf", filename=path.name)


@router.get(
    "/orders",
    response_model=ApiResponse,
    summary="The latest paper orders and their status",
)
def get_orders(
    request: Request,
    day: Annotated[
        str | None, _date_query("only the orders decided at this session's close, YYYY-MM-DD")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ORDERS, description="at most this many orders")] = 100,
) -> ApiResponse:
    """Rows of the order journal (``order_journal``), newest session first (then by client
    order id), with their status (NEW, SUBMITTED, PARTIALLY_FILLED, FILLED, REJECTED,
    CANCELLED), fills and reason, in ``data.orders``."""
    store = request.app.state.store
    if day is not None:
        session = parse_day(day, "date")
        frame = store.read("order_journal", start=session, end=session + timedelta(days=1))
    else:
        frame = store.read("order_journal")
    total = frame.height
    frame = frame.sort(["date", "client_order_id"], descending=[True, False]).head(limit)
    orders = frame.with_columns(pl.col("date").cast(pl.String)).to_dicts()
    statuses = Counter(str(s) for s in frame["status"].to_list())
    sessions = frame["date"].unique().sort(descending=True).cast(pl.String).to_list()
    if not orders:
        where = f" for {day}" if day else ""
        summary = f"no paper orders{where}"
    else:
        counts = ", ".join(f"{s} {n}" for s, n in sorted(statuses.items()))
        summary = (
            f"{len(orders)} of {total} paper orders, sessions {sessions[-1]} to {sessions[0]}: "
            f"{counts}"
        )
    data = {
        "count": len(orders),
        "total": total,
        "sessions": sessions,
        "statuses": dict(statuses),
        "orders": orders,
    }
    return ok(summary, data)


@router.get(
    "/latest/{kind}",
    response_model=ApiResponse,
    summary="The latest session's predictions, live weights, live risk figures or orders",
    responses={404: _answer("an unknown kind")},
)
async def get_latest(request: Request, kind: str) -> Response:
    """The rows of the latest stored session of ``kind``: ``predictions`` (every model's
    score), ``weights`` (the live book), ``risk`` (the live book's risk figures) or ``orders``
    (the paper orders decided at that close), in ``data.rows``, with ``data.session``. Read
    from the Redis serving cache when it holds the latest version (``data.source`` "cache",
    ``data.version``), else from the store (``data.source`` "store")."""
    if kind not in SERVED:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"unknown kind {kind!r}: one of {', '.join(SERVED)}",
        )
    store = request.app.state.store
    cache = store.serving_cache()
    # on the event loop: a version file and one MGET on loopback take well under a millisecond,
    # less than a hop to the thread pool; the store's read goes to the pool
    cached = cache.latest(kind) if cache is not None else None
    if cached is not None:
        envelope = ok(f"latest {kind} of {cached.session}: {cached.count} rows (cache)")
        # the cached data is already JSON: spliced in, not parsed and encoded again
        head = envelope.model_dump_json(exclude={"data"})[:-1]
        body = f'{head},"data":'.encode() + cached.data_json + b"}"
        return Response(body, media_type="application/json", headers={"X-Served-From": "cache"})
    session, frame = await run_in_threadpool(latest_rows, store, kind)
    data = payload(kind, session, frame, None)
    summary = (
        f"latest {kind} of {data['session']}: {data['count']} rows (store)"
        if session
        else f"no {kind} stored yet"
    )
    return Response(
        ok(summary, data).model_dump_json(),
        media_type="application/json",
        headers={"X-Served-From": "store"},
    )
