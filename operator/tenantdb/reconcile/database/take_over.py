"""Take over: the existing Neon project ``spec.projectId`` names becomes this resource's, as a
PVC's ``spec.volumeName`` binds an existing volume.

Everywhere else a project is proven this resource's by its name (observe, the fleet pass's
list by prefix, the orphan sweep, the finalizer), so taking one over renames it to this
resource's name: from then on it is the operator's exactly as a created one, with no second
proof (a list of adopted ids) to keep in step across replicas and restarts. Each step is safe
to repeat after a crash or a lost answer:

1. the project exists in the operator's organisation (else ``ProjectNotFound``: nothing done);
2. it is no other resource's: not named for another, not pinned to another claim (else
   ``Conflict``: nothing touched);
3. this resource's claim is pinned to it (one claim per project, a unique index: of two
   resources taking one project over at once, one wins);
4. its name before is recorded in status, to give it back when leaving the operator;
5. it is renamed to this resource's name.

The database and role the connection string names: the spec's when the project has them, else
the project's own (its one database, and that database's owner).
"""

from __future__ import annotations

from typing import Any

from tenantdb.api import DatabaseStatus
from tenantdb.neon.errors import NeonNotFoundError
from tenantdb.reconcile import conditions as cond
from tenantdb.reconcile.database.claim import pin_to_project
from tenantdb.reconcile.database.errors import CONFLICT_RETRY_SECONDS, outside_errors
from tenantdb.reconcile.database.model import Claimed, DatabaseDeps, DatabaseObject, Plan, TakenOver
from tenantdb.reconcile.decisions import DecidedBy, DecisionAction, record_decision
from tenantdb.reconcile.endpoint_budget import read_write_endpoint
from tenantdb.reconcile.errors import NeedsUserAction, RetryLater
from tenantdb.reconcile.ports import Events, StatusWriter
from tenantdb.reconcile.reasons import Reason
from tenantdb.reconcile.sweep import owner_uid

__all__ = ["take_over"]

# A project that is not there may be created or moved into the organisation by a person: looked
# for again this often (one read each time).
_NOT_FOUND_RETRY_SECONDS = 300.0


async def take_over(
    obj: DatabaseObject,
    deps: DatabaseDeps,
    events: Events,
    write_status: StatusWriter,
    *,
    plan: Plan,
    claimed: Claimed,
) -> TakenOver:
    """The project ``spec.projectId`` names, made this resource's (see the module's steps)."""
    project_id = obj.spec.project_id
    assert project_id is not None
    async with outside_errors("taking over the Neon project"):
        project = await _in_our_organisation(deps, project_id)
        if project.name != plan.name:
            await _held_by_no_other(obj, deps, project_id, project.name)
            await pin_to_project(obj, deps, claimed.claim, project_id)
            await _rename(obj, deps, events, write_status, plan, project_id, project.name)
        database_name, role_name, endpoint = await _names(obj, deps, plan, project_id)
    return TakenOver(
        project_id=project_id, database_name=database_name, role_name=role_name, endpoint=endpoint
    )


async def _in_our_organisation(deps: DatabaseDeps, project_id: str) -> Any:
    """The project; ``ProjectNotFound`` when the operator's key cannot see it in its organisation."""
    organisation = deps.settings.neon_org_id
    try:
        project = await deps.neon.get_project(project_id)
    except NeonNotFoundError:
        project = None
    project_org = getattr(project, "org_id", "")
    if project is None or (organisation and project_org and project_org != organisation):
        raise RetryLater(
            Reason.PROJECT_NOT_FOUND,
            f"spec.projectId names Neon project {project_id}, which the operator's organisation "
            f"{organisation or '(its API key)'} does not hold: nothing is created or taken over. "
            "Check the id, or move the project into the organisation",
            delay=_NOT_FOUND_RETRY_SECONDS,
        )
    return project


async def _held_by_no_other(obj: DatabaseObject, deps: DatabaseDeps, project_id: str, name: str) -> None:
    """``Conflict`` when the project is another resource's: named for it, or pinned to its claim."""
    holder = await deps.metadata.project_holder(project_id=project_id)
    if holder is not None and holder[2].uid != obj.identity.uid:
        kind, _tenant, claimant = holder
        other = f"{kind} {claimant.namespace}/{claimant.name}"
    elif owner_uid(deps.settings.project_name_prefix, name) is not None:
        other = f"the resource it is named for ({name!r})"
    else:
        return
    raise RetryLater(
        Reason.CONFLICT,
        f"spec.projectId names Neon project {project_id}, which {other} holds: left as it is",
        delay=CONFLICT_RETRY_SECONDS,
    )


async def _rename(
    obj: DatabaseObject,
    deps: DatabaseDeps,
    events: Events,
    write_status: StatusWriter,
    plan: Plan,
    project_id: str,
    old_name: str,
) -> None:
    """The name before on record (first time only), then the project renamed to ours."""
    status = obj.status
    if status.original_project_name is None:
        await write_status(
            DatabaseStatus(original_project_name=old_name, adopted_at=cond.rfc3339(deps.clock()))
        )
    await deps.neon.rename_project(project_id, plan.name)
    events.normal(
        Reason.ADOPTED,
        f"Took over the existing Neon project {project_id} (spec.projectId); renamed it from "
        f"{old_name!r} to {plan.name!r}",
    )
    identity = obj.identity
    await record_decision(
        deps.metadata,
        tenant=identity.tenant,
        action=DecisionAction.ADOPT,
        decided_by=DecidedBy.TAKE_OVER,
        reason=f"spec.projectId names it: renamed from {old_name!r} to {plan.name!r}",
        at=deps.clock(),
        resource=f"{identity.kind} {identity.namespace}/{identity.name}",
        project_id=project_id,
        details={"originalProjectName": old_name},
    )


async def _names(
    obj: DatabaseObject, deps: DatabaseDeps, plan: Plan, project_id: str
) -> tuple[str, str, Any]:
    """The database and role to publish: recorded in status once resolved, else asked of Neon
    (three reads, once per take-over, the first of which ``update`` then needs no more); and
    the read-write endpoint when it was read."""
    status = obj.status
    if status.project_id == project_id and status.database_name and status.role_name:
        return status.database_name, status.role_name, None
    endpoint = read_write_endpoint(await deps.neon.list_endpoints(project_id))
    branch_id = getattr(endpoint, "branch_id", None)
    if not branch_id:
        raise RetryLater(
            Reason.RECONCILE_ERROR, "the Neon project has no read-write compute endpoint yet", delay=15
        )
    databases = await deps.neon.list_databases(project_id, branch_id)
    roles = {role.name for role in await deps.neon.list_roles(project_id, branch_id)}
    spec_database = next((d for d in databases if d.name == obj.spec.database_name), None)
    database = spec_database or (databases[0] if len(databases) == 1 else None)
    if database is None:
        found = ", ".join(sorted(d.name for d in databases)) or "none"
        raise NeedsUserAction(
            Reason.NEON_REJECTED,
            f"Neon project {project_id} has no database {obj.spec.database_name!r} and not exactly "
            f"one other (it has: {found}): name one in spec.databaseName",
            delay=3600,
        )
    role = plan.role_name if plan.role_name in roles else database.owner_name
    return database.name, role, endpoint
