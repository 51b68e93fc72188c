"""``/projects/{project_id}/endpoints``: read compute endpoints; change limits or disable one.

``disabled: true`` refuses new connections to the project's database and ends the open
ones; ``disabled: false`` lets connections in again (see :mod:`..backing`).
"""

from __future__ import annotations

from aiohttp import web

from tenantdb.testing.neon.clock import utcnow
from tenantdb.testing.neon.creating import parse_endpoint_limits
from tenantdb.testing.neon.errors import bad_request, not_found
from tenantdb.testing.neon.model import Endpoint, Project
from tenantdb.testing.neon.operations import ensure_unlocked, start_operations
from tenantdb.testing.neon.parsing import optional_bool, read_body
from tenantdb.testing.neon.state import STATE
from tenantdb.testing.neon.views import endpoint_view, operation_view

__all__ = ["routes"]

routes = web.RouteTableDef()


def _endpoint(project: Project, endpoint_id: str) -> Endpoint:
    if endpoint_id != project.endpoint.id:
        raise not_found(f"endpoint {endpoint_id!r} not found")
    return project.endpoint


@routes.get("/projects/{project_id}/endpoints")
async def list_endpoints(request: web.Request) -> web.Response:
    state = request.app[STATE]
    project = state.registry.live_project(request.match_info["project_id"])
    return web.json_response({"endpoints": [endpoint_view(project, state.address)]})


@routes.get("/projects/{project_id}/endpoints/{endpoint_id}")
async def get_endpoint(request: web.Request) -> web.Response:
    state = request.app[STATE]
    project = state.registry.live_project(request.match_info["project_id"])
    _endpoint(project, request.match_info["endpoint_id"])
    return web.json_response({"endpoint": endpoint_view(project, state.address)})


@routes.patch("/projects/{project_id}/endpoints/{endpoint_id}")
async def update_endpoint(request: web.Request) -> web.Response:
    state = request.app[STATE]
    project = state.registry.live_project(request.match_info["project_id"])
    endpoint = _endpoint(project, request.match_info["endpoint_id"])
    data = await read_body(request, "endpoint")
    limits = parse_endpoint_limits(data, prefix="endpoint.")
    disabled = optional_bool(data, "disabled")
    min_cu = limits.min_cu if limits.min_cu is not None else endpoint.min_cu
    max_cu = limits.max_cu if limits.max_cu is not None else endpoint.max_cu
    if min_cu > max_cu:
        raise bad_request("endpoint.autoscaling_limit_min_cu must not exceed autoscaling_limit_max_cu")
    ensure_unlocked(project, state.registry, utcnow())
    async with state.registry.lock(project.id):
        if disabled is not None and disabled != endpoint.disabled:
            # Enabled again, a project past its compute quota stays stopped.
            allowed = not disabled and not project.quota_stopped
            await state.backing.set_connections_allowed(project.database.physical, allowed=allowed)
            endpoint.disabled = disabled
            endpoint.current_state = "active" if allowed else "idle"
            if disabled:
                endpoint.suspended_at = utcnow()
        endpoint.min_cu, endpoint.max_cu = min_cu, max_cu
        if limits.suspend_timeout_seconds is not None:
            endpoint.suspend_timeout_seconds = limits.suspend_timeout_seconds
        now = endpoint.updated_at = utcnow()
    # Neon applies the new configuration, and a disabled compute is suspended after it.
    actions = ["apply_config", "suspend_compute"] if disabled else ["apply_config"]
    operations = start_operations(project, actions, seconds=state.options.operation_seconds, now=now)
    return web.json_response(
        {
            "endpoint": endpoint_view(project, state.address),
            "operations": [operation_view(operation, now) for operation in operations],
        }
    )
