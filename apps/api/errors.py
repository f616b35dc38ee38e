"""Exception handlers: every 4xx/5xx body in the common schema (see :mod:`.schemas`)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from apps.api.schemas import error

logger = logging.getLogger("quant.api")


def error_response(
    code: int, summary: str, data: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = error(summary, data).model_dump(mode="json")
    return JSONResponse(status_code=code, content=body, headers=headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {
            "loc": [str(part) for part in item.get("loc", ())],
            "msg": str(item.get("msg", "")),
            "type": str(item.get("type", "")),
        }
        for item in exc.errors()
    ]


def _describe(item: dict[str, Any]) -> str:
    where = ".".join(p for p in item["loc"] if p not in ("body", "query", "path", "header"))
    return f"{where or 'request'}: {item['msg']}"


async def http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, str(exc.detail), headers=headers)


async def validation_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    summary = "invalid request: " + "; ".join(_describe(e) for e in errors)
    return error_response(status.HTTP_422_UNPROCESSABLE_CONTENT, summary, data=errors)


async def unhandled_exception(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(
        status.HTTP_500_INTERNAL_SERVER_ERROR, f"internal error: {type(exc).__name__}"
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, http_exception)
    app.add_exception_handler(RequestValidationError, validation_exception)
    app.add_exception_handler(Exception, unhandled_exception)
