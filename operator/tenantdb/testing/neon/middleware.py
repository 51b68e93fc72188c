"""What stands between the network and the handlers, outermost first.

1. ``record_calls``: every request lands in the call log, dropped ones too (status 0).
2. ``inject_faults`` (see :mod:`.faults`): latency, outages, 5xx answers, dropped connections.
3. ``answer_errors``: :class:`ApiError` and aiohttp's own 404/405 become ``{code, message}``.
4. ``authenticate``: ``Authorization: Bearer <api_key>`` or 401.
5. ``limit_rate``: the account, per-route and consumption budgets (see :mod:`.ratelimit`) or 429.
"""

from __future__ import annotations

import hmac
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from tenantdb.testing.neon.calls import DROPPED_STATUS, CallRecord
from tenantdb.testing.neon.clock import utcnow
from tenantdb.testing.neon.errors import ApiError, error_response
from tenantdb.testing.neon.faults import DROPPED, INJECTED, inject_faults
from tenantdb.testing.neon.ratelimit import is_consumption
from tenantdb.testing.neon.routing import below_prefix, route_of
from tenantdb.testing.neon.state import STATE

__all__ = ["MIDDLEWARES"]

logger = logging.getLogger(__name__)


@web.middleware
async def record_calls(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    arrived, started = utcnow(), time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        state.calls.add(
            CallRecord(
                method=request.method,
                route=route_of(request),
                path=below_prefix(request.path),
                status=DROPPED_STATUS if request.get(DROPPED) else status,
                at=arrived,
                duration_seconds=time.monotonic() - started,
                injected=bool(request.get(INJECTED)),
                query=dict(request.query),
            )
        )


@web.middleware
async def answer_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason)
    except Exception as exc:
        # Only the type: a database error's text is not worth the risk of echoing secrets.
        logger.error("emulator handler failed on %s: %s", route_of(request), type(exc).__name__)
        return error_response(500, "internal server error")


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    expected = request.app[STATE].options.api_key
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise ApiError(401, "authentication required: a valid API key is needed")
    return await handler(request)


@web.middleware
async def limit_rate(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    options, now, route = state.options, time.monotonic(), route_of(request)
    budgets: list[tuple[str, int, float]] = []
    if options.rate_limit_per_minute is not None:
        budgets.append(("account", options.rate_limit_per_minute, 60.0))
    if options.route_rate_limit_per_second is not None:
        budgets.append((route, options.route_rate_limit_per_second, 1.0))
    waits = [
        wait
        for key, limit, window in budgets
        if (wait := state.windows.retry_after(key, limit=limit, window=window, now=now)) is not None
    ]
    consumption = options.consumption_rate_limit_per_minute if is_consumption(route) else None
    if consumption is not None:
        wait = state.buckets.retry_after("consumption", limit=consumption, per=60.0, now=now)
        if wait is not None:
            waits.append(wait)
    if waits:
        raise ApiError(
            429, "too many requests: rate limit exceeded", headers={"Retry-After": str(max(waits))}
        )
    for key, _, _ in budgets:
        state.windows.record(key, now)
    if consumption is not None:
        state.buckets.take("consumption", limit=consumption, per=60.0, now=now)
    return await handler(request)


MIDDLEWARES = (record_calls, inject_faults, answer_errors, authenticate, limit_rate)
