"""What stands between the network and the handlers, outermost first.

1. ``record_calls``: every request lands in the call log, dropped ones too (status 0).
2. ``inject_faults`` (see :mod:`.faults`): latency, outages, 5xx answers, dropped connections.
3. ``answer_errors``: :class:`ApiError` and aiohttp's own 404/405 become ``{code, message}``.
4. ``authenticate``: ``Authorization: Bearer <key>`` of a known, unrevoked key, or 401
   (see :mod:`.callers`); a project of an organisation the key does not reach is 404.
5. ``limit_rate``: the key's, per-route and consumption budgets (see :mod:`.ratelimit`) or 429.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from tenantdb.testing.neon.callers import CALLER, identify
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
    state = request.app[STATE]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    caller = identify(state.options, token.strip()) if scheme.lower() == "bearer" else None
    if caller is None:
        raise ApiError(401, "authentication required: a valid API key is needed")
    project_id = request.match_info.get("project_id")
    if project_id is not None:
        project = state.registry.get(project_id)
        if project is not None and project.org_id not in caller.orgs:
            # Another organisation's project: as if it did not exist.
            raise ApiError(404, f"project {project_id!r} not found")
    request[CALLER] = caller
    return await handler(request)


@web.middleware
async def limit_rate(request: web.Request, handler: Handler) -> web.StreamResponse:
    state, caller = request.app[STATE], request[CALLER]
    options, now, route = state.options, time.monotonic(), route_of(request)
    # Every budget is the key's own: two organisations' keys never slow each other down.
    budgets: list[tuple[str, int, float]] = []
    if caller.rate_limit_per_minute is not None:
        budgets.append((caller.key_id, caller.rate_limit_per_minute, 60.0))
    if options.route_rate_limit_per_second is not None:
        budgets.append((f"{caller.key_id} {route}", options.route_rate_limit_per_second, 1.0))
    waits = [
        wait
        for key, limit, window in budgets
        if (wait := state.windows.retry_after(key, limit=limit, window=window, now=now)) is not None
    ]
    consumption = options.consumption_rate_limit_per_minute if is_consumption(route) else None
    if consumption is not None:
        wait = state.buckets.retry_after(caller.key_id, limit=consumption, per=60.0, now=now)
        if wait is not None:
            waits.append(wait)
    if waits:
        raise ApiError(
            429, "too many requests: rate limit exceeded", headers={"Retry-After": str(max(waits))}
        )
    for key, _, _ in budgets:
        state.windows.record(key, now)
    if consumption is not None:
        state.buckets.take(caller.key_id, limit=consumption, per=60.0, now=now)
    return await handler(request)


MIDDLEWARES = (record_calls, inject_faults, answer_errors, authenticate, limit_rate)
