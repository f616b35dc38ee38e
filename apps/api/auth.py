"""The X-API-Key header, compared in constant time."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

API_KEY_HEADER = "X-API-Key"

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


def require_api_key(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> None:
    expected: str = request.app.state.settings.api_key
    if not key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=f"missing API key: send it in the {API_KEY_HEADER} header",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )
    if not key_matches(key, expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="invalid API key",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )
