"""One Neon API call, start to end: rate limited, authenticated, retried, counted, typed.

``Session.call`` is the only place that talks HTTP. Every attempt waits for the shared
limiter, is counted in ``neon_calls`` by route template and status, and a failed attempt is
classified (``retry``) into: retry after a delay, or raise. Nothing here logs or raises a
request body, a header or a response body beyond Neon's short error message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import SecretStr, ValidationError

import tenantdb
from tenantdb.metrics import Metrics
from tenantdb.neon.errors import NeonTransientError, client_error
from tenantdb.neon.limiter import RateLimiter
from tenantdb.neon.models import NeonModel
from tenantdb.neon.retry import Failure, Timing, failure_from_exception, failure_from_response

__all__ = ["Route", "Session"]

logger = logging.getLogger("tenantdb.neon")

M = TypeVar("M", bound=NeonModel)

QueryParams = Mapping[str, str | int] | Sequence[tuple[str, str | int]]

# Ids go into URL paths: anything but Neon's id alphabet (project, branch and endpoint ids,
# operation UUIDs) is refused rather than escaped, so that no value can change the path.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")


@dataclass(frozen=True)
class Route:
    """A Neon API route. ``label`` (``GET /projects/{project_id}``) names it in metrics and errors."""

    method: str
    template: str
    idempotent: bool = True  # False: retried only when Neon certainly did not process it

    @property
    def label(self) -> str:
        return f"{self.method} {self.template}"

    def path(self, ids: Mapping[str, str], names: Mapping[str, str] | None = None) -> str:
        """The path with ``ids`` (checked) and ``names`` (percent-encoded) filled in.

        Names (a role's, a database's) are whatever Postgres allows, so they are escaped, not
        refused; only the empty name and the two that would climb the path are refused.
        """
        for name, value in ids.items():
            if not _ID.fullmatch(value):
                raise ValueError(f"{name} is not a Neon id: {value!r}")
        segments = dict(ids)
        for name, value in (names or {}).items():
            if value in ("", ".", ".."):
                raise ValueError(f"{name} is not a usable name: {value!r}")
            segments[name] = quote(value, safe="")
        return self.template.format_map(segments)


class _BearerAuth(httpx.Auth):
    """Adds the API key to each request as it is sent; the key is never a default header."""

    def __init__(self, api_key: SecretStr) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(api_key=**********)"


class Session:
    """The HTTP side of ``NeonClient``: owns the ``httpx.AsyncClient``."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: SecretStr,
        timeout: float,
        limiter: RateLimiter,
        metrics: Metrics,
        timing: Timing,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.limiter = limiter
        self.metrics = metrics
        self.timing = timing
        self._http = httpx.AsyncClient(
            base_url=base_url,
            auth=_BearerAuth(api_key),
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": f"tenantdb/{tenantdb.__version__}"},
            follow_redirects=False,  # a redirect would be a misconfigured base URL; never resend the key
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(
        self,
        route: Route,
        *,
        ids: Mapping[str, str] | None = None,
        names: Mapping[str, str] | None = None,
        params: QueryParams | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """Send the request until it succeeds (2xx), fails for good, or the deadline passes."""
        url = route.path(ids or {}, names)
        # A tuple of pairs keeps repeated keys (project_ids=a&project_ids=b) and their order.
        query = tuple(params.items()) if isinstance(params, Mapping) else tuple(params or ())
        deadline = self.timing.clock() + self.timing.retry_deadline
        attempt = 0
        while True:
            self.metrics.limiter_wait.observe(await self.limiter.acquire(route.label))
            cause: httpx.HTTPError | None = None
            try:
                response = await self._http.request(route.method, url, params=query, json=json)
            except httpx.HTTPError as exc:
                cause, failure = exc, failure_from_exception(exc)
                self.metrics.neon_calls.labels(route.label, failure.cause).inc()
            else:
                self.metrics.neon_calls.labels(route.label, str(response.status_code)).inc()
                if response.is_success:
                    return response
                failure = failure_from_response(response)
                if not failure.retryable:
                    assert failure.status is not None  # an answer came back
                    raise client_error(
                        status=failure.status, code=failure.code, message=failure.message, route=route.label
                    )
            delay = self._retry_delay(route, failure, attempt, deadline)
            if isinstance(delay, NeonTransientError):
                raise delay from cause
            self.metrics.neon_retries.labels(route.label, failure.cause).inc()
            logger.info(
                "Neon %s: %s; retry %d in %.2fs",
                route.label,
                failure.status or failure.cause,
                attempt + 1,
                delay,
            )
            await self.timing.sleep(delay)
            attempt += 1

    def _retry_delay(
        self, route: Route, failure: Failure, attempt: int, deadline: float
    ) -> float | NeonTransientError:
        """How long to wait before retrying, or the error to give up with."""
        if failure.retry_after is not None and failure.status == 429:
            self.limiter.defer(failure.retry_after)  # the whole account is over budget, not just us
        if not failure.retryable:
            give_up = "not retried"
        elif not (route.idempotent or failure.unprocessed):
            give_up = "not retried: the request may have been processed"
        else:
            delay = failure.retry_after if failure.retry_after is not None else self.timing.backoff(attempt)
            if self.timing.clock() + delay <= deadline:
                return delay
            give_up = f"gave up after {attempt + 1} attempt(s)"
        message = f"{failure.message} ({give_up})" if failure.message else give_up
        return NeonTransientError(
            status=failure.status,
            code=failure.code,
            message=message,
            route=route.label,
            retry_after=failure.retry_after,
            # Only a call that must not be repeated can be ambiguous: any other is simply retried.
            ambiguous=not (route.idempotent or failure.unprocessed),
        )


def parse(model: type[M], response: httpx.Response, route: Route) -> M:
    """The answer as ``model``; an answer that does not fit is a transient failure.

    Ambiguous for a create: Neon answered 2xx, so the project exists although its details were
    not readable. The validation error is chained for its field paths; ``hide_input_in_errors``
    keeps the values (passwords) out of it.
    """
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise NeonTransientError(
            status=response.status_code,
            code="UNREADABLE_ANSWER",
            message=f"the answer does not match the API ({exc.error_count()} error(s))",
            route=route.label,
            ambiguous=not route.idempotent,
        ) from exc
