"""``POST /organizations/{source_org_id}/projects/transfer``: move projects between organisations.

As Neon documents it: up to 400 project ids per call; the key must reach both
organisations (else 404, as for any organisation it does not reach); every project must be
a live project of the source (else 404, nothing moved); a destination that would pass its
project limit answers 406 with ``limits`` naming ``projects_count``, nothing moved. All or
nothing: the projects change organisation together, and keep their ids, data and URIs.
"""

from __future__ import annotations

from aiohttp import web

from tenantdb.testing.neon.callers import CALLER, check_org, project_limit, projects_held
from tenantdb.testing.neon.clock import utcnow
from tenantdb.testing.neon.errors import bad_request, not_found
from tenantdb.testing.neon.parsing import read_object
from tenantdb.testing.neon.state import STATE

__all__ = ["routes"]

routes = web.RouteTableDef()

MAX_TRANSFER = 400


@routes.post("/organizations/{source_org_id}/projects/transfer")
async def transfer_projects(request: web.Request) -> web.Response:
    state, caller = request.app[STATE], request[CALLER]
    source = check_org(request.match_info["source_org_id"], caller)
    body = await read_object(request)
    destination = body.get("destination_org_id")
    project_ids = body.get("project_ids")
    if not isinstance(destination, str) or not destination:
        raise bad_request("destination_org_id: required")
    if (
        not isinstance(project_ids, list)
        or not project_ids
        or not all(isinstance(project_id, str) for project_id in project_ids)
    ):
        raise bad_request("project_ids: a non-empty list of project ids is required")
    if len(project_ids) > MAX_TRANSFER:
        raise bad_request(f"project_ids: at most {MAX_TRANSFER} ids per call, got {len(project_ids)}")
    check_org(destination, caller)
    wanted = list(dict.fromkeys(project_ids))
    projects = []
    for project_id in wanted:
        project = state.registry.get(project_id)
        if project is None or project.deleted or project.org_id != source:
            raise not_found(f"project {project_id!r} not found in organization {source!r}")
        projects.append(project)
    if destination == source:
        return web.json_response({})
    limit = project_limit(state.options, destination)
    held = projects_held(state.registry, destination)
    if limit is not None and held + len(projects) > limit:
        actual = str(held + len(projects))
        limits = [{"name": "projects_count", "expected": str(limit), "actual": actual}]
        message = "transfer failed: the destination organization has too many projects"
        return web.json_response({"message": message, "limits": limits}, status=406)
    now = utcnow()
    for project in projects:
        project.org_id = destination
        project.updated_at = now
    return web.json_response({})
