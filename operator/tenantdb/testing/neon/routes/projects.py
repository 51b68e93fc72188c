"""``/projects``: create, list, read, update, delete and recover projects, and read a connection URI."""

from __future__ import annotations

import datetime

from aiohttp import web

from tenantdb.testing.neon import ids
from tenantdb.testing.neon.backing import NameTakenError
from tenantdb.testing.neon.callers import CALLER, check_org, project_limit, projects_held
from tenantdb.testing.neon.clock import utcnow
from tenantdb.testing.neon.creating import (
    build_project,
    parse_create_request,
    parse_endpoint_limits,
    parse_settings,
)
from tenantdb.testing.neon.errors import PROJECTS_LIMIT_EXCEEDED, ApiError, bad_request, not_found
from tenantdb.testing.neon.model import Project
from tenantdb.testing.neon.operations import ensure_unlocked, start_operations
from tenantdb.testing.neon.pagination import page, pagination_fields, parse_limit
from tenantdb.testing.neon.parsing import optional_int, optional_object, optional_str, query_bool, read_body
from tenantdb.testing.neon.quota import apply_quota_stop
from tenantdb.testing.neon.state import STATE, EmulatorState
from tenantdb.testing.neon.views import (
    branch_view,
    connection_details,
    database_view,
    endpoint_view,
    operation_view,
    project_list_item,
    project_view,
    role_view,
)

__all__ = ["routes"]

routes = web.RouteTableDef()

_NAME_ATTEMPTS = 5
_LIST_DEFAULT_LIMIT, _LIST_MAX_LIMIT = 10, 400


def _check_project_limit(state: EmulatorState, org_id: str) -> None:
    limit = project_limit(state.options, org_id)
    if limit is None:
        return
    count = projects_held(state.registry, org_id)
    if count >= limit:
        raise ApiError(422, f"projects limit of {limit} exceeded, got {count}", code=PROJECTS_LIMIT_EXCEEDED)


@routes.post("/projects")
async def create_project(request: web.Request) -> web.Response:
    state = request.app[STATE]
    registry = state.registry
    wanted = parse_create_request(await read_body(request, "project"), state.options, request[CALLER])
    _check_project_limit(state, wanted.org_id)
    password = ids.password()
    for _ in range(_NAME_ATTEMPTS):
        now = utcnow()
        project = build_project(
            wanted,
            project_id=registry.new_project_id(),
            seq=registry.next_seq(),
            database_id=registry.next_database_id(),
            password=password,
            now=now,
        )
        with registry.creating(
            project.id, project.database.physical, project.role.physical, org_id=project.org_id
        ):
            try:
                await state.backing.create(
                    database=project.database.physical, role=project.role.physical, password=password
                )
            except NameTakenError:
                continue  # another emulator on this server uses these digits: draw again
            registry.add(project)
        break
    else:
        raise ApiError(500, "could not find free names for the project's database and role")
    # The operations start once the project exists: on a busy server its PostgreSQL objects
    # may take longer to make than the operations would run.
    now = utcnow()
    operations = start_operations(
        project, ["create_timeline", "start_compute"], seconds=state.options.operation_seconds, now=now
    )
    body = {
        "project": project_view(project, state.address, now),
        "connection_uris": [connection_details(project, state.address)],
        "roles": [role_view(project, with_password=True)],
        "databases": [database_view(project)],
        "operations": [operation_view(operation, now) for operation in operations],
        "branch": branch_view(project),
        "endpoints": [endpoint_view(project, state.address)],
    }
    return web.json_response(body, status=201)


def _matches(project: Project, search: str) -> bool:
    needle = search.lower()
    return needle in project.name.lower() or needle in project.id


@routes.get("/projects")
async def list_projects(request: web.Request) -> web.Response:
    state = request.app[STATE]
    registry = state.registry
    org_id = check_org(request.query.get("org_id"), request[CALLER])
    limit = parse_limit(request.query.get("limit"), default=_LIST_DEFAULT_LIMIT, maximum=_LIST_MAX_LIMIT)
    recoverable = query_bool(request, "recoverable", default=False)
    await purge_expired(state)
    candidates = [
        project
        for project in (registry.deleted() if recoverable else registry.live())
        if project.org_id == org_id
    ]
    if search := request.query.get("search"):
        candidates = [project for project in candidates if _matches(project, search)]
    items = page(candidates, cursor=request.query.get("cursor"), limit=limit, find=registry.get)
    body = {
        "projects": [project_list_item(project, state.address, _recovery_window(state)) for project in items],
        **pagination_fields(items),
        "applications": {},
        "integrations": {},
    }
    return web.json_response(body)


@routes.get("/projects/{project_id}")
async def get_project(request: web.Request) -> web.Response:
    state = request.app[STATE]
    project = state.registry.live_project(request.match_info["project_id"])
    return web.json_response({"project": project_view(project, state.address, utcnow())})


@routes.patch("/projects/{project_id}")
async def update_project(request: web.Request) -> web.Response:
    state = request.app[STATE]
    project = state.registry.live_project(request.match_info["project_id"])
    data = await read_body(request, "project")
    name = optional_str(data, "name")
    settings = parse_settings(data, base=project.settings)
    limits = parse_endpoint_limits(
        optional_object(data, "default_endpoint_settings"), prefix="default_endpoint_settings."
    )
    retention = optional_int(data, "history_retention_seconds", minimum=0, maximum=2592000)
    now = utcnow()
    ensure_unlocked(project, state.registry, now)
    if name is not None:
        project.name = name
    project.settings = settings
    async with state.registry.lock(project.id):
        # The hard stop: computes suspended, connections refused, until the quota rises.
        await apply_quota_stop(project, state.backing)
    if limits.min_cu is not None:
        project.default_endpoint_settings["autoscaling_limit_min_cu"] = limits.min_cu
    if limits.max_cu is not None:
        project.default_endpoint_settings["autoscaling_limit_max_cu"] = limits.max_cu
    if limits.suspend_timeout_seconds is not None:
        project.default_endpoint_settings["suspend_timeout_seconds"] = limits.suspend_timeout_seconds
    if retention is not None:
        project.history_retention_seconds = retention
    project.updated_at = now
    return web.json_response({"project": project_view(project, state.address, now), "operations": []})


def _recovery_window(state: EmulatorState) -> datetime.timedelta:
    return datetime.timedelta(seconds=state.options.recovery_window_seconds)


async def purge_expired(state: EmulatorState) -> None:
    """Drop the data of deleted projects whose recovery window has passed (as Neon does)."""
    for project in state.registry.expired(utcnow(), _recovery_window(state)):
        async with state.registry.lock(project.id):
            if project.purged:
                continue
            await state.backing.drop(database=project.database.physical, role=project.role.physical)
            project.purged = True


@routes.delete("/projects/{project_id}")
async def delete_project(request: web.Request) -> web.Response:
    """End the project's connections and refuse new ones; it stays recoverable for a while.

    Its database and role stay on the server, unreachable, until the recovery window ends.
    """
    state = request.app[STATE]
    project = state.registry.live_project(request.match_info["project_id"])
    ensure_unlocked(project, state.registry, utcnow())
    async with state.registry.lock(project.id):
        await state.backing.put_away(database=project.database.physical, role=project.role.physical)
        project.deleted_at = project.updated_at = utcnow()
    await purge_expired(state)
    return web.json_response({"project": project_view(project, state.address, utcnow())})


@routes.post("/projects/{project_id}/recover")
async def recover_project(request: web.Request) -> web.Response:
    """A deleted project back, data, settings and connection strings as they were."""
    state = request.app[STATE]
    await purge_expired(state)
    project_id = request.match_info["project_id"]
    project = state.registry.get(project_id)
    if project is None or project.purged:
        raise not_found(f"project {project_id!r} not found or no longer recoverable")
    if not project.deleted:
        raise bad_request(f"project {project_id!r} is not deleted")
    async with state.registry.lock(project.id):
        await state.backing.bring_back(
            database=project.database.physical,
            role=project.role.physical,
            allow_connections=not project.endpoint.disabled,
        )
        project.deleted_at = None
        project.updated_at = utcnow()
    return web.json_response(
        {"project": project_view(project, state.address, utcnow()), "branches": [branch_view(project)]}
    )


@routes.get("/projects/{project_id}/operations/{operation_id}")
async def get_operation(request: web.Request) -> web.Response:
    state = request.app[STATE]
    project = state.registry.live_project(request.match_info["project_id"])
    wanted = request.match_info["operation_id"]
    for operation in project.operations:
        if operation.id == wanted:
            return web.json_response({"operation": operation_view(operation, utcnow())})
    raise not_found(f"operation {wanted!r} not found")


@routes.get("/projects/{project_id}/connection_uri")
async def get_connection_uri(request: web.Request) -> web.Response:
    """The URI for a database and role, named logically (``neondb``) or physically."""
    state = request.app[STATE]
    project = state.registry.live_project(request.match_info["project_id"])
    query = request.query
    database_name, role_name = query.get("database_name"), query.get("role_name")
    if not database_name or not role_name:
        raise bad_request("database_name and role_name are required")
    if query.get("branch_id") not in (None, project.branch.id):
        raise not_found(f"branch {query['branch_id']!r} not found")
    if query.get("endpoint_id") not in (None, project.endpoint.id):
        raise not_found(f"endpoint {query['endpoint_id']!r} not found")
    pooled = query_bool(request, "pooled", default=False)
    database, role = project.database, project.role
    if database_name not in (database.name, database.physical):
        raise not_found(f"database {database_name!r} not found")
    if role_name not in (role.name, role.physical):
        raise not_found(f"role {role_name!r} not found")
    uri = state.address.uri(
        user=role.physical, password=role.password, database=database.physical, pooled=pooled
    )
    return web.json_response({"uri": uri})
