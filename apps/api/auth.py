"""The X-API-Key header, compared in constant time.

The key is checked twice over: by :class:`apps.api.guard.RequestGuard`, before any body is read
(FastAPI reads and parses a body before it runs a route's dependencies), and by the routes'
``require_api_key`` dependency, which also documents the header in the OpenAPI schema."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

API_KEY_HEADER = "X-API-Key"
CHALLENGE = {"WWW-Authenticate": API_KEY_HEADER}

# auto_error=False: a missing key is answered by require_api_key, in the common schema
api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="The API key (QUANT_API_KEY). Required on every route but the docs.",
)


def key_matches(given: str | None, expected: str) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def key_problem(given: str | None, expected: str) -> str | None:
    """What is wrong with the key a request carries, or None when it is the server's."""
    if not given:
        return f"missing API key: send it in the {API_KEY_HEADER} header"
    if not key_matches(given, expected):
        return "invalid API key"
    return None


def require_api_key(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> None:
    problem = key_problem(key, request.app.state.settings.api_key)
    if problem is not None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=problem, headers=CHALLENGE)
