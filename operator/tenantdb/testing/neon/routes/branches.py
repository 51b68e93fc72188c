"""``/projects/{project_id}/branches``: the branch, its roles and databases; reveal and reset a password.

A project holds one branch (its default), one role and one database, under the names it was
created with (``branch.role_name``, ``branch.database_name``; ``neondb_owner`` and ``neondb``
by default). Roles and databases are named logically here, as Neon names them.

A password reset answers at once with the new password and an ``apply_config`` operation;
the old password keeps working until the operation finishes, then the role's password changes
on the PostgreSQL server and the project's open connections end (see :mod:`..effects`).
``GET .../connection_uri`` answers the new password from the reset on, as Neon does: a client
must wait for the operations before it connects with it.
"""

from __future__ import annotations

from aiohttp import web

from tenantdb.testing.neon import ids
from tenantdb.testing.neon.clock import utcnow
from tenantdb.testing.neon.effects import apply_when_finished
from tenantdb.testing.neon.errors import ApiError, not_found
from tenantdb.testing.neon.model import Project, Role
from tenantdb.testing.neon.operations import ensure_unlocked, start_operations
from tenantdb.testing.neon.state import STATE
from tenantdb.testing.neon.views import branch_view, database_view, operation_view, role_view

__all__ = ["routes"]

routes = web.RouteTableDef()

_BRANCH = "/projects/{project_id}/branches/{branch_id}"
_ROLE = _BRANCH + "/roles/{role_name}"


def _project(request: web.Request) -> Project:
    """The live project of the path, and its branch checked (404 for either)."""
    project = request.app[STATE].registry.live_project(request.match_info["project_id"])
    branch_id = request.match_info.get("branch_id")
    if branch_id is not None and branch_id != project.branch.id:
        raise not_found(f"branch {branch_id!r} not found")
    return project


def _role(project: Project, request: web.Request) -> Role:
    name = request.match_info["role_name"]
    if name != project.role.name:
        raise not_found(f"role {name!r} not found")
    return project.role


@routes.get("/projects/{project_id}/branches")
async def list_branches(request: web.Request) -> web.Response:
    """Every branch (the one), marked ``default``; ``search`` narrows by name or id."""
    project = _project(request)
    branches = [branch_view(project)]
    if search := request.query.get("search"):
        needle = search.lower()
        branches = [b for b in branches if needle in b["name"].lower() or needle in b["id"]]
    return web.json_response({"branches": branches, "annotations": {}})


@routes.get(_BRANCH + "/roles")
async def list_roles(request: web.Request) -> web.Response:
    project = _project(request)
    return web.json_response({"roles": [role_view(project, with_password=False)]})


@routes.get(_ROLE)
async def get_role(request: web.Request) -> web.Response:
    project = _project(request)
    _role(project, request)
    return web.json_response({"role": role_view(project, with_password=False)})


@routes.get(_ROLE + "/reveal_password")
async def reveal_password(request: web.Request) -> web.Response:
    """The role's password; ``412`` when the project was made with ``store_passwords: false``.

    The spec documents 412 "Storing passwords is disabled" for this operation: Neon keeps no
    password it could show, so only a reset gives the role a known one.
    """
    project = _project(request)
    role = _role(project, request)
    if not project.store_passwords:
        raise ApiError(412, f"storing passwords is disabled for project {project.id!r}")
    return web.json_response({"password": role.password})


@routes.post(_ROLE + "/reset_password")
async def reset_password(request: web.Request) -> web.Response:
    """A new password now; it replaces the old one on the server when the operation finishes."""
    state = request.app[STATE]
    project = _project(request)
    role = _role(project, request)
    now = utcnow()
    ensure_unlocked(project, state.registry, now)
    password = ids.password()
    role.password, role.updated_at = password, now
    operations = start_operations(project, ["apply_config"], seconds=state.options.operation_seconds, now=now)
    database = project.database.physical

    async def take_hold() -> None:
        await state.backing.set_password(database=database, role=role.physical, password=password)

    await apply_when_finished(state, project.id, operations, take_hold)
    now = utcnow()
    return web.json_response(
        {
            "role": role_view(project, with_password=True),
            "operations": [operation_view(operation, now) for operation in operations],
        }
    )


@routes.get(_BRANCH + "/databases")
async def list_databases(request: web.Request) -> web.Response:
    project = _project(request)
    return web.json_response({"databases": [database_view(project)]})
