"""What the API is configured with: the key, where runs go, what they materialize."""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from resources.settings import data_dir

logger = logging.getLogger("quant.api")

API_KEY_ENV = "QUANT_API_KEY"
DAGSTER_URL_ENV = "QUANT_DAGSTER_URL"
MAX_BODY_ENV = "QUANT_API_MAX_BODY_BYTES"
# the largest body a route takes is POST /run's {"partition": "YYYY-MM-DD"}: 64 KiB is far above
DEFAULT_MAX_BODY_BYTES = 64 * 1024
# the key `quant-api --insecure-dev-key` accepts when QUANT_API_KEY is unset: public, so it is
# only ever served on a loopback address
INSECURE_DEV_KEY = "insecure-dev-key"
MIN_KEY_LENGTH = 16


class ConfigurationError(RuntimeError):
    """The API cannot start as configured (no key, an insecure key on a public address)."""


@dataclass(frozen=True)
class ApiSettings:
    """``api_key``: the X-API-Key every request must carry (never empty). ``dagster_url``: a
    Dagster webserver to submit runs to over GraphQL (None: run in-process against the instance at
    DAGSTER_HOME). ``asset_selection``: the asset keys a triggered run materializes (None: the
    daily job's ``DAILY_ASSETS``). ``reports_dir``: where ``report_YYYYMMDD.pdf`` files are.
    ``max_body_bytes``: the largest request body read; a larger one is a 413."""

    api_key: str
    dagster_url: str | None = None
    asset_selection: Sequence[str] | None = None
    job_name: str = "daily_pipeline"
    reports_dir: Path = field(default_factory=lambda: data_dir() / "reports")
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ConfigurationError("the API key is empty: every request would be refused")
        if self.max_body_bytes < 1:
            raise ConfigurationError(
                f"{MAX_BODY_ENV} must be a positive number of bytes, not {self.max_body_bytes}"
            )

    @classmethod
    def from_env(cls, insecure_dev_key: bool = False) -> ApiSettings:
        """Settings from the environment. Without ``QUANT_API_KEY`` this refuses to start unless
        ``insecure_dev_key`` is set, which then accepts the public key ``insecure-dev-key``."""
        key = os.environ.get(API_KEY_ENV, "")
        if not key:
            if not insecure_dev_key:
                raise ConfigurationError(
                    f"{API_KEY_ENV} is not set: set it to a long random secret (e.g. "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`), or start "
                    f"with --insecure-dev-key to accept the public key {INSECURE_DEV_KEY!r} on "
                    "a loopback address only"
                )
            key = INSECURE_DEV_KEY
            logger.warning(
                "%s is not set: accepting the public key %r (development only)",
                API_KEY_ENV,
                INSECURE_DEV_KEY,
            )
        elif len(key) < MIN_KEY_LENGTH:
            logger.warning("%s is shorter than %d characters", API_KEY_ENV, MIN_KEY_LENGTH)
        return cls(
            api_key=key,
            dagster_url=os.environ.get(DAGSTER_URL_ENV) or None,
            max_body_bytes=max_body_from_env(),
        )


def max_body_from_env() -> int:
    value = os.environ.get(MAX_BODY_ENV) or str(DEFAULT_MAX_BODY_BYTES)
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(
            f"{MAX_BODY_ENV} must be a whole number of bytes, not {value!r}"
        ) from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
