"""When a failed Neon call is retried, how long the client waits, and what the failure means.

Retried: 429 (rate limited: wait as long as ``Retry-After`` says), 423 (the project is locked
by a running operation: "safe to retry" per Neon), 5xx, connection errors and timeouts. Every
other 4xx is permanent. Waits are exponential with full jitter (a random delay between 0 and
``backoff_first * 2**attempt``, capped), so callers that failed together do not come back
together; all retries of one call stop at ``retry_deadline``.

Whether a failure is *certain not to have been processed* matters for calls that are not
idempotent (``POST /projects``): they are retried only then, and otherwise surface as
``ambiguous``. Certain: 429 and 423 (refused before any work) and errors before the request
left (connect errors and timeouts, no free connection in the pool). Not certain: every 5xx,
read timeouts and connections dropped after the request was sent. That includes 503, which
Neon's spec calls "always safe to retry": a proxy in front of Neon can answer 503 after
Neon did the work, and a duplicate project costs far more than one more search by name.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from tenantdb.neon.errors import shorten

__all__ = ["Failure", "Timing", "failure_from_exception", "failure_from_response", "parse_retry_after"]


@dataclass(frozen=True)
class Timing:
    """How long the client waits, and with what (tests inject a fake ``clock`` and ``sleep``)."""

    retry_deadline: float = 120.0
    """Seconds after the first attempt of a call beyond which it is not retried any more."""
    backoff_first: float = 0.5
    """Ceiling of the first retry's random delay; it doubles with every retry."""
    backoff_max: float = 20.0
    """Ceiling of any one retry's delay (``Retry-After`` may ask for longer and is honoured)."""
    poll_first: float = 0.5
    """First wait before polling an unfinished Neon operation; most finish within a second."""
    poll_max: float = 5.0
    """Longest wait between two polls of an operation."""
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, first * 2**attempt)] for retry number ``attempt``."""
        return random.uniform(0.0, min(self.backoff_max, self.backoff_first * 2.0**attempt))

    def poll_delay(self, poll: int) -> float:
        """The wait before poll number ``poll`` of an operation: 0.5, 0.75, 1.1 ... up to 5 s."""
        return min(self.poll_max, self.poll_first * 1.5**poll)


@dataclass(frozen=True)
class Failure:
    """One failed attempt, classified."""

    cause: str  # metrics label: rate_limited, locked, unavailable, server_error, connect_error ...
    status: int | None  # None when no answer came back
    code: str
    message: str
    retryable: bool
    unprocessed: bool  # certain that Neon did nothing: safe to retry even a POST
    retry_after: float | None = None


# Status -> (cause, certain not to have been processed).
_RETRYABLE_STATUS: dict[int, tuple[str, bool]] = {
    423: ("locked", True),
    429: ("rate_limited", True),
    503: ("unavailable", False),
}


def _error_fields(response: httpx.Response) -> tuple[str, str]:
    """Neon's ``code`` and ``message``; for a body that is not Neon's JSON, the start of its text."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return "", response.text
    if isinstance(body, dict):
        return str(body.get("code") or ""), str(body.get("message") or "")
    return "", ""


def failure_from_response(response: httpx.Response, *, now: datetime | None = None) -> Failure:
    """Classify an error answer (status >= 400)."""
    status = response.status_code
    code, message = _error_fields(response)
    message = shorten(message or response.reason_phrase)
    retry_after = parse_retry_after(response.headers.get("retry-after"), now=now)
    if status in _RETRYABLE_STATUS:
        cause, unprocessed = _RETRYABLE_STATUS[status]
        return Failure(cause, status, code, message, True, unprocessed, retry_after)
    if status >= 500:
        return Failure("server_error", status, code, message, True, False, retry_after)
    return Failure("client_error", status, code, message, False, True)


def failure_from_exception(exc: httpx.HTTPError) -> Failure:
    """Classify an error raised by httpx (no answer came back)."""
    message = type(exc).__name__  # httpx messages may carry the URL; the class name says enough
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return Failure("connect_timeout", None, "", message, True, True)
    if isinstance(exc, httpx.ConnectError):
        return Failure("connect_error", None, "", message, True, True)
    if isinstance(exc, httpx.TimeoutException):
        return Failure("timeout", None, "", message, True, False)
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        return Failure("network_error", None, "", message, True, False)
    # Anything else (invalid URL, unsupported scheme, proxy or decoding errors) is a fault of
    # configuration that a retry cannot fix; whether the request left is unknown.
    return Failure("transport_error", None, "", message, False, False)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # HTTP dates are GMT; an obsolete form may come without a zone
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None
