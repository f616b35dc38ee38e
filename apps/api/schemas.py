"""The one response schema of every JSON answer, errors included, and the request bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


class ApiResponse(BaseModel):
    """Every JSON body the API sends: ``status`` ("ok" or "error"), when it was made (UTC), a
    one-line human summary and, for some routes, a ``data`` payload."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ok", "error"] = Field(description='"ok" for 2xx answers, "error" otherwise')
    timestamp: datetime = Field(description="when the answer was made, UTC (ISO 8601)")
    summary: str = Field(description="one line for a person: what happened or what was wrong")
    data: Any = Field(
        default=None,
        description="the payload: the run (POST /run, GET /runs/{run_id}), the orders "
        "(GET /orders), the validation errors (422); null when there is none",
    )


def ok(summary: str, data: Any = None) -> ApiResponse:
    return ApiResponse(status="ok", timestamp=datetime.now(UTC), summary=summary, data=data)


def error(summary: str, data: Any = None) -> ApiResponse:
    return ApiResponse(status="error", timestamp=datetime.now(UTC), summary=summary, data=data)


class RunRequest(BaseModel):
    """The partition to run; omitted (or an empty body): the last completed NYSE session."""

    model_config = ConfigDict(extra="forbid")

    partition: str | None = Field(
        default=None,
        pattern=DATE_PATTERN,
        json_schema_extra={"format": "date"},
        description="an NYSE session, YYYY-MM-DD",
        examples=["2024-03-05"],
    )
