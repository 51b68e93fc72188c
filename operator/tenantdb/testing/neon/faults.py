"""What unreliable networks and servers do to clients, injected on demand.

Latency (``latency_seconds``, or ``create_latency_seconds`` for ``POST /projects``), the
``down`` outage (503 to everything), random 500/503 answers (``error_rate``) and
connections closed without an answer (``drop_rate``). With ``fault_after_processing``, half
of the injected errors and drops strike after the handler ran: the mutation happened, but
the client never learns it, which is the trap an idempotent client must handle.

A create (``POST /projects``) is never cut short by its client going away: as on Neon, it
is carried out (latency included) once it has arrived.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.typedefs import Handler

from tenantdb.testing.neon.errors import error_response
from tenantdb.testing.neon.options import EmulatorOptions
from tenantdb.testing.neon.routing import route_of
from tenantdb.testing.neon.state import STATE

__all__ = ["DROPPED", "INJECTED", "inject_faults"]

DROPPED = web.RequestKey("neon_emulator_dropped", bool)
"""Set on a request whose connection was dropped."""
INJECTED = web.RequestKey("neon_emulator_injected", bool)
"""Set on a request answered by an injected fault."""

_CREATE_ROUTE = "POST /projects"
_AFTER_PROCESSING_SHARE = 0.5
"""With ``fault_after_processing``, the share of injected faults that strike after the handler."""


def _latency(request: web.Request, options: EmulatorOptions) -> tuple[float, float]:
    if options.create_latency_seconds is not None and route_of(request) == _CREATE_ROUTE:
        return options.create_latency_seconds
    return options.latency_seconds


@web.middleware
async def inject_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    if route_of(request) != _CREATE_ROUTE:
        return await _faults(request, handler)
    # Neon, behind its proxy, carries out a create whose client gave up (a timeout, a dropped
    # connection): the create runs to its end in a task of its own, whatever happens to the
    # request. Its body is read first, while the connection is surely there.
    await request.read()
    state = request.app[STATE]
    task = asyncio.ensure_future(_faults(request, handler))
    state.inflight.add(task)
    task.add_done_callback(state.inflight.discard)
    return await asyncio.shield(task)


async def _faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    options, dice = state.options, state.random
    request[DROPPED] = request[INJECTED] = False
    low, high = _latency(request, options)
    if high > 0:
        await asyncio.sleep(dice.uniform(low, high))
    if options.down:
        request[INJECTED] = True
        return error_response(503, "service unavailable (the emulated Neon API is down)")
    refused = options.refuse.get(route_of(request))
    if refused is not None:
        request[INJECTED] = True
        return error_response(refused, f"request refused (injected {refused})")
    route = route_of(request)
    if options.lose_answers.get(route, 0) > 0:
        options.lose_answers[route] -= 1
        request[INJECTED] = True
        await handler(request)  # carried out; its answer never reaches the client
        return _dropped(request)
    draw = dice.random()
    if draw < options.drop_rate:
        fault = "drop"
    elif draw < options.drop_rate + options.error_rate:
        fault = "error"
    else:
        return await handler(request)
    request[INJECTED] = True
    if options.fault_after_processing and dice.random() < _AFTER_PROCESSING_SHARE:
        await handler(request)  # carried out; its answer never reaches the client
    if fault == "drop":
        return _dropped(request)
    status = dice.choice((500, 503))
    return error_response(status, "internal server error" if status == 500 else "service unavailable")


def _dropped(request: web.Request) -> web.StreamResponse:
    request[DROPPED] = True
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=503)  # written to a closed transport: nobody receives it
