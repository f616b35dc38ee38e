"""Bounded exponential backoff for calls to external data providers.

Every provider call goes through :func:`call_with_retries`, so the retry policy is the same
everywhere: ``attempts`` tries in all, sleeping ``base_delay * 2**i`` (capped at ``max_delay``)
between them, then a :class:`ProviderError` naming what failed and why. Errors that retrying
cannot fix (bad credentials, a malformed request) are recognised by ``fatal`` and raised at
once; tests pass a no-op ``sleep``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from resources.market_data.base import ProviderError

T = TypeVar("T")

logger = logging.getLogger(__name__)


def backoff_delays(attempts: int, base_delay: float, max_delay: float = 60.0) -> list[float]:
    """The sleeps between ``attempts`` tries: ``base_delay``, ``2*base_delay``, ... (capped)."""
    return [min(base_delay * 2**i, max_delay) for i in range(max(attempts - 1, 0))]


def call_with_retries(
    fn: Callable[[], T],
    *,
    what: str,
    attempts: int = 3,
    base_delay: float = 1.0,
    retry_on: tuple[type[BaseException], ...],
    sleep: Callable[[float], object] = time.sleep,
    fatal: Callable[[BaseException], str | None] | None = None,
    max_delay: float = 60.0,
) -> T:
    """Call ``fn()``; retry it on ``retry_on`` exceptions with bounded exponential backoff.

    - A :class:`ProviderError` raised by ``fn`` propagates at once (it is already final).
    - For an exception in ``retry_on``, ``fatal(exc)`` may return a message: the error is not
      retryable (e.g. HTTP 401/403) and ``ProviderError(f"{what} failed: {message}")`` is raised
      immediately.
    - Otherwise the call is retried; after the last attempt
      ``ProviderError(f"{what} failed after {attempts} attempts: {cause}")`` is raised from
      the last cause.
    - Any other exception propagates unchanged (a bug, not a provider failure).
    """
    attempts = max(int(attempts), 1)
    delays = backoff_delays(attempts, base_delay, max_delay)
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except ProviderError:
            raise
        except retry_on as exc:
            message = fatal(exc) if fatal is not None else None
            if message is not None:
                raise ProviderError(f"{what} failed: {message}") from exc
            if attempt == attempts:
                raise ProviderError(
                    f"{what} failed after {attempts} attempts: {_describe(exc)}"
                ) from exc
            delay = delays[attempt - 1]
            logger.warning(
                "%s: attempt %d/%d failed (%s); retrying in %.1fs",
                what,
                attempt,
                attempts,
                _describe(exc),
                delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
