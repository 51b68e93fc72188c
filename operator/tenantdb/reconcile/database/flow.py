"""The reconcile of one tenant database, phase by phase, each in its own module:

    claim → observe → create (or take what observe found) → record → update → rotate → publish → status

A resource naming an existing project (``spec.projectId``) takes it over instead of observing
and creating (``take_over``); the other phases are the same.

Each phase hands the next a typed value (``model``): ``Claimed``, an ``Observation``, the
``Owned`` project, ``Updated``, ``Rotated`` (a new password, which publish writes in place of
every cached connection string). The finalizer is ``delete``.
"""

from __future__ import annotations

import dataclasses

from tenantdb.api import DatabaseStatus
from tenantdb.reconcile import conditions as cond
from tenantdb.reconcile.database.claim import claim_tenant
from tenantdb.reconcile.database.create import create
from tenantdb.reconcile.database.errors import WARN_ONCE_REASONS
from tenantdb.reconcile.database.model import (
    Absent,
    Created,
    DatabaseDeps,
    DatabaseObject,
    Owned,
    Plan,
    Replaced,
)
from tenantdb.reconcile.database.observe import observe
from tenantdb.reconcile.database.publish import publish
from tenantdb.reconcile.database.record import record
from tenantdb.reconcile.database.rotate import finish_rotation, rotate
from tenantdb.reconcile.database.status import mark_creating, reconciled
from tenantdb.reconcile.database.take_over import take_over
from tenantdb.reconcile.database.update import update
from tenantdb.reconcile.errors import RetryLater
from tenantdb.reconcile.ports import Events, StatusWriter

__all__ = ["reconcile_database"]


async def reconcile_database(
    obj: DatabaseObject,
    deps: DatabaseDeps,
    events: Events,
    write_status: StatusWriter,
    *,
    rotate_due: bool = False,
) -> DatabaseStatus:
    """Bring Neon, the Secret and the metadata DB in line with the resource. Returns the status
    to record: the object's own, with what this reconcile found and did.

    ``rotate_due``: a password old enough is rotated now (the fleet observation's paced turn);
    a rotation asked for, or under way, is made by every reconcile.

    A conflict (another resource holds the tenant, or the Secret is not ours) is said once with
    a Warning event and waits: ``RetryLater``, nothing created, nothing overwritten.
    """
    try:
        return await _reconcile(obj, deps, events, write_status, rotate_due=rotate_due)
    except RetryLater as exc:
        if exc.reason in WARN_ONCE_REASONS and not _already_said(obj, exc):
            events.warning(exc.reason, exc.message)
        raise


def _already_said(obj: DatabaseObject, exc: RetryLater) -> bool:
    """Whether status already tells this (Ready for a conflict, Synced for the rest)."""
    for kind in (cond.READY, cond.SYNCED):
        condition = cond.get_condition(obj.status.conditions, kind)
        if condition is not None and condition.reason == exc.reason and condition.message == exc.message:
            return True
    return False


async def _reconcile(
    obj: DatabaseObject, deps: DatabaseDeps, events: Events, write_status: StatusWriter, *, rotate_due: bool
) -> DatabaseStatus:
    now = deps.clock()
    plan = Plan.of(obj, deps.settings, deps.user_tier(obj.identity.user_id))
    # The tenant and the Secret's name are ours: checked before anything is created.
    claimed = await claim_tenant(obj, deps, plan.secret_name)
    conditions = list(obj.status.conditions)
    project: Owned
    if obj.spec.project_id is not None:
        # An existing project named by the spec: taken over, never created.
        project = await take_over(obj, deps, events, write_status, plan=plan, claimed=claimed)
        plan = dataclasses.replace(plan, database_name=project.database_name, role_name=project.role_name)
    elif isinstance(observed := await observe(obj, deps, events, plan.name), Replaced | Absent):
        # Ready=False, Creating: written with the attempt, and where the final Ready moves from.
        conditions = mark_creating(conditions, now=now, generation=obj.generation)
        project = await create(
            obj, deps, events, write_status, observed=observed, plan=plan, conditions=conditions, now=now
        )
    else:
        project = observed
    recorded = await record(
        obj, deps, write_status, plan=plan, claimed=claimed, project_id=project.project_id
    )
    updated = await update(obj, deps, events, project, plan.wanted)
    rotated = await rotate(
        obj,
        deps,
        write_status,
        project_id=project.project_id,
        branch_id=updated.branch_id,
        plan=plan,
        by_age=rotate_due,
    )
    await publish(
        obj,
        deps,
        events,
        project_id=project.project_id,
        branch_id=updated.branch_id,
        claimed=claimed,
        plan=plan,
        created=project.answer if isinstance(project, Created) else None,
        rotated=rotated,
        host=updated.endpoint.host,
    )
    return reconciled(
        obj,
        events,
        recorded,
        conditions,
        plan=plan,
        project_id=project.project_id,
        updated=updated,
        now=now,
        rotation=await finish_rotation(obj, deps, events, rotated, project_id=project.project_id, plan=plan),
    )
