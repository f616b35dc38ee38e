"""Every request is checked before its body is read: first the API key, then the body's size.

FastAPI reads and parses a body before it runs a route's dependencies, so the key dependency
alone would let an unauthenticated client make the server read (and parse) any body. This ASGI
middleware answers 401 from the headers, then 413 from ``Content-Length`` or, for a body sent
without one (chunked), as soon as the bytes read pass the limit."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import HTTPException, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from apps.api.auth import API_KEY_HEADER, CHALLENGE, key_problem
from apps.api.errors import error_response
from apps.api.settings import MAX_BODY_ENV


def too_large(limit: int, size: int | None = None) -> str:
    what = f"{size} bytes" if size is not None else f"over {limit} bytes"
    return f"request body too large: {what}, the limit is {limit} bytes ({MAX_BODY_ENV})"


class RequestGuard:
    """Checks the key of every request but those under ``open_paths`` (the docs), and caps
    every body at ``max_body_bytes``."""

    def __init__(
        self, app: ASGIApp, api_key: str, max_body_bytes: int, open_paths: Sequence[str]
    ) -> None:
        self.app = app
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes
        self.open_paths = tuple(open_paths)

    def is_open(self, path: str) -> bool:
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if not self.is_open(scope["path"]):
            problem = key_problem(headers.get(API_KEY_HEADER.lower()), self.api_key)
            if problem is not None:
                answer = error_response(status.HTTP_401_UNAUTHORIZED, problem, headers=CHALLENGE)
                await answer(scope, receive, send)
                return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            summary = too_large(self.max_body_bytes, int(declared))
            await error_response(status.HTTP_413_CONTENT_TOO_LARGE, summary)(scope, receive, send)
            return
        await self.app(scope, self.limited(receive), send)

    def limited(self, receive: Receive) -> Receive:
        """``receive`` that raises a 413 once the body read passes the limit (a body without a
        Content-Length); the route's exception handler answers it."""
        read = 0

        async def receive_within_limit() -> Message:
            nonlocal read
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > self.max_body_bytes:
                    raise HTTPException(
                        status.HTTP_413_CONTENT_TOO_LARGE, detail=too_large(self.max_body_bytes)
                    )
            return message

        return receive_within_limit
