"""Exception handlers: every 4xx/5xx body in the common schema (see :mod:`.schemas`), with no
path of the server's file system in it (:func:`redact_paths`)."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from apps.api.schemas import error
from resources.settings import PROJECT_ROOT, data_dir

logger = logging.getLogger("quant.api")

# an absolute path of two or more parts (its last part kept), not one inside a URL
# ("http://host/graphql"), a word ("api/v1") or a date ("2024/03/05")
_PART = r"[^\s/:'\"`;,()\[\]{}<>|]"
ABSOLUTE_PATH = re.compile(rf"(?<![\w:/.~-])/(?:{_PART}+/)+({_PART}*)")


def redact_paths(text: str) -> str:
    """``text`` with the server's paths replaced: the data directory by ``$QUANT_DATA_DIR``,
    the project by ``<project>``, any other absolute path by ``<path>/`` and its last part. An
    error from a library or a failed run can name a file; a client never learns where."""
    roots = {str(data_dir()): "$QUANT_DATA_DIR", str(PROJECT_ROOT): "<project>"}
    for root in sorted(roots, key=len, reverse=True):
        text = text.replace(root, roots[root])
    return ABSOLUTE_PATH.sub(lambda m: f"<path>/{m.group(1)}", text)


def error_response(
    code: int, summary: str, data: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = error(redact_paths(summary), data).model_dump(mode="json")
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
    if item["type"] == "json_invalid":  # its loc is ("body", <character position>)
        return f"body: {item['msg']} at character {item['loc'][-1]}"
    where = ".".join(p for p in item["loc"] if p not in ("body", "query", "path", "header"))
    whole = item["loc"][0] if len(item["loc"]) == 1 else "request"  # e.g. a null body
    return f"{where or whole}: {item['msg']}"


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
