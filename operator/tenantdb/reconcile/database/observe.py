"""Observe: which Neon project is this resource's, if any (Crossplane's Observe).

status.projectId is a hint anyone with status rights can write; the in-process memory holds
only projects whose name was checked (or that this process created). A project is this
resource's when it carries its name (``projects.our_name``); a recorded project that is gone
is looked for by that name, then recovered or replaced as ``TENANTDB_ON_PROJECT_DELETED``
says. Nothing here creates anything.
"""

from __future__ import annotations

from typing import Any

from tenantdb.neon.errors import NeonNotFoundError
from tenantdb.reconcile.database.errors import outside_errors
from tenantdb.reconcile.database.model import (
    Absent,
    Adopted,
    DatabaseDeps,
    DatabaseObject,
    Found,
    Observation,
    Recovered,
    Replaced,
)
from tenantdb.reconcile.ports import Events
from tenantdb.reconcile.projects import ProjectMismatch, our_projects, replace_deleted_project
from tenantdb.reconcile.reasons import Reason

__all__ = ["observe"]


async def observe(obj: DatabaseObject, deps: DatabaseDeps, events: Events, name: str) -> Observation:
    """The project status (or this process) names, checked; else the one carrying our name.

    Raises ``ProjectMismatch`` when status names a project that is not this resource's."""
    project_id = obj.status.project_id or deps.known_projects.get(obj.identity.uid)
    async with outside_errors("observing the Neon project"):
        if project_id:
            return await _recorded(obj, deps, events, name, project_id)
        if not _create_may_have_been_sent(obj, deps):
            return Absent(searched=False)
        return await _search(obj, deps, events, name)


def _create_may_have_been_sent(obj: DatabaseObject, deps: DatabaseDeps) -> bool:
    """Whether a create for this resource may have reached Neon: then look for the project first.

    Every create is preceded by a status write (phase Provisioning), and this process also
    remembers the creates it sent (kopf may hand a reconcile a body from before that write).
    So a resource with no status at all, which this process never tried to create, has no
    project anywhere: the search (a third rate-limited call besides the create and its poll)
    is skipped.
    """
    return bool(obj.status.model_fields_set) or obj.identity.uid in deps.create_attempts


async def _recorded(
    obj: DatabaseObject, deps: DatabaseDeps, events: Events, name: str, project_id: str
) -> Observation:
    uid = obj.identity.uid
    try:
        project = await deps.neon.get_project(project_id)
    except NeonNotFoundError:
        deps.known_projects.pop(uid, None)
        return await _gone(obj, deps, events, name, project_id)
    if project.name != name:
        if deps.known_projects.get(uid) == project_id:
            deps.known_projects.pop(uid, None)
        raise ProjectMismatch(project_id, project.name, name)
    return Found(project_id)


async def _gone(
    obj: DatabaseObject, deps: DatabaseDeps, events: Events, name: str, project_id: str
) -> Adopted | Recovered | Replaced:
    # Gone, or never ours to begin with (status is only a hint): our project, if
    # it lives, carries our name.
    live = await _find_adoptable(deps, obj, name)
    if live is not None:
        events.normal(
            Reason.ADOPTED,
            f"status named Neon project {project_id}, which does not exist; "
            f"adopted this resource's project {live.id} ({name})",
        )
        return Adopted(live.id)
    recovered = await replace_deleted_project(
        deps.neon, events, deps.settings, obj.identity, project_id=project_id, name=name
    )
    return Replaced(project_id) if recovered is None else Recovered(recovered)


async def _search(obj: DatabaseObject, deps: DatabaseDeps, events: Events, name: str) -> Adopted | Absent:
    adopted = await _find_adoptable(deps, obj, name)
    if adopted is None:
        return Absent(searched=True)
    events.normal(Reason.ADOPTED, f"Adopted the existing Neon project {adopted.id} ({name})")
    return Adopted(adopted.id)


async def _find_adoptable(deps: DatabaseDeps, obj: DatabaseObject, name: str) -> Any | None:
    matches = await our_projects(deps.neon, obj.identity, name)
    return matches[0] if matches else None
