"""Record: the project is known, and recorded the moment it is, before anything else can
fail: in status (its external name), in this process's memory, and in the tenant's claim."""

from __future__ import annotations

from tenantdb.api import DatabaseStatus
from tenantdb.reconcile.database.claim import pin_to_project
from tenantdb.reconcile.database.errors import outside_errors
from tenantdb.reconcile.database.model import Claimed, DatabaseDeps, DatabaseObject, Plan
from tenantdb.reconcile.database.status import project_identity
from tenantdb.reconcile.ports import StatusWriter

__all__ = ["record"]


async def record(
    obj: DatabaseObject,
    deps: DatabaseDeps,
    write_status: StatusWriter,
    *,
    plan: Plan,
    claimed: Claimed,
    project_id: str,
) -> DatabaseStatus:
    """Record the project as this resource's; returns the resource's status with it."""
    uid = obj.identity.uid
    identity_status = project_identity(obj, plan, project_id)
    # Remembered before the write: if the write fails, the next attempt knows the project is
    # its own (no search, no "Adopted" for a project it just made).
    deps.known_projects[uid] = project_id
    deps.create_attempts.discard(uid)
    status = obj.status
    if any(getattr(status, f) != getattr(identity_status, f) for f in identity_status.model_fields_set):
        async with outside_errors("recording the status"):
            await write_status(identity_status)
        status = status.merged(identity_status)
    await pin_to_project(obj, deps, claimed.claim, project_id)
    deps.create_sent_at.pop(uid, None)
    return status
