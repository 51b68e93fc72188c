"""Delete: the finalizer. Every project carrying this resource's name is deleted (or retained),
then the connection string is unpublished and the tenant's claim released.

The projects are found by name (one search), not only through status: a create that landed
unrecorded is deleted too, and a status pointing at another resource's project deletes
nothing of it. While an unrecorded create may still land, the finalizer waits. Any Neon
failure is retried with backoff until the give-up time; then the projects are recorded as
orphans with a Warning event, so every delete ends and nothing leaks silently.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Collection

from tenantdb.api import Condition, DeletionPolicy
from tenantdb.neon.errors import NeonNotFoundError
from tenantdb.reconcile.database.errors import outside_errors
from tenantdb.reconcile.database.model import DatabaseDeps, DatabaseObject, decrypted
from tenantdb.reconcile.database.rows import read_env_var
from tenantdb.reconcile.database.status import deleting, mark_deleting
from tenantdb.reconcile.decisions import DecidedBy, DecisionAction, record_decision
from tenantdb.reconcile.errors import ReconcileError, RetryLater
from tenantdb.reconcile.ownership import env_var_is_ours
from tenantdb.reconcile.ports import Events, StatusWriter
from tenantdb.reconcile.projects import create_may_still_land, our_name, our_projects
from tenantdb.reconcile.reasons import Reason

__all__ = ["delete_database"]


async def delete_database(
    obj: DatabaseObject,
    deps: DatabaseDeps,
    events: Events,
    write_status: StatusWriter,
    *,
    deletion_started: datetime.datetime | None,
) -> bool:
    """Finalize: delete (or retain) every project carrying this resource's name, then unpublish.

    Retained projects are recorded too. Returns whether anything was orphaned.
    """
    name = our_name(deps.settings, obj.identity)
    now = deps.clock()
    started = deletion_started or now
    say = _Say(obj, deps, write_status)
    await say(Reason.DELETING, "Deleting: releasing the Neon project and the connection string")
    progress = _Progress()
    orphaned = False
    try:
        async with outside_errors("deleting the Neon project"):
            await _release_projects(obj, deps, events, name, now, progress)
    except ReconcileError as exc:
        # Any failure (an outage or a refusal: 400, 403, 409, 422 ...) is retried with a
        # growing delay until the give-up time, measured after the failed call.
        waited = (deps.clock() - started).total_seconds()
        await _retry_unless_given_up(deps, say, exc, waited)
        await _record_orphans(obj, deps, events, exc, name, waited, progress.left(obj, deps))
        orphaned = True

    if orphaned:
        await say(Reason.PROJECT_ORPHANED, f"Neon project left behind ({name}); removing the metadata rows")
    elif _retain(obj):
        await say(Reason.PROJECT_RETAINED, "Neon project retained; removing the metadata rows")
    else:
        await say(Reason.PROJECT_DELETED, "Neon project deleted; removing the metadata rows")
    await _unpublish(obj, deps, events, progress.projects(obj, deps))
    _forget(deps, obj.identity.uid)
    return orphaned


class _Say:
    """The finalizer's progress in status: phase Deleting, Ready=False with what it is doing."""

    def __init__(self, obj: DatabaseObject, deps: DatabaseDeps, write_status: StatusWriter) -> None:
        self._obj, self._deps, self._write_status = obj, deps, write_status
        self._conditions: list[Condition] = list(obj.status.conditions)

    async def __call__(self, reason: Reason, message: str) -> None:
        self._conditions = mark_deleting(
            self._conditions,
            reason=reason,
            message=message,
            now=self._deps.clock(),
            generation=self._obj.generation,
        )
        async with outside_errors("writing the status"):
            await self._write_status(deleting(self._conditions))


@dataclasses.dataclass
class _Progress:
    """How far this call got with the projects (read again when it failed part way)."""

    # Every live project carrying our name; None: Neon could not be asked which they are.
    targets: list[str] | None = None
    done: list[str] = dataclasses.field(default_factory=list)  # deleted or retained

    def left(self, obj: DatabaseObject, deps: DatabaseDeps) -> list[str]:
        """What is still there, for the orphan records."""
        targets = self.targets if self.targets is not None else _hinted(obj, deps)
        return [p for p in targets if p not in self.done]

    def projects(self, obj: DatabaseObject, deps: DatabaseDeps) -> set[str]:
        """This resource's own projects, the only ones whose row and env var it removes."""
        return {*(self.targets or _hinted(obj, deps)), *self.done}


def _retain(obj: DatabaseObject) -> bool:
    return obj.spec.deletion_policy == DeletionPolicy.RETAIN


async def _release_projects(
    obj: DatabaseObject,
    deps: DatabaseDeps,
    events: Events,
    name: str,
    now: datetime.datetime,
    progress: _Progress,
) -> None:
    """Delete (or retain) every project carrying our name, noting each in ``progress``."""
    progress.targets = await _projects_to_delete(obj, deps, events, name)
    if not progress.targets:
        create_may_still_land(
            obj.status,
            deps.settings,
            now,
            action="waiting for it before deleting the resource",
            sent_here=deps.create_sent_at.get(obj.identity.uid),
        )
    for project_id in progress.targets:
        if project_id in progress.done:
            continue
        if _retain(obj):
            await _keep_project(obj, deps, events, name, project_id)
        else:
            deleted = await deps.neon.delete_project(project_id)
            events.normal(
                Reason.PROJECT_DELETED,
                f"Deleted Neon project {project_id}"
                if deleted
                else f"Neon project {project_id} was already gone",
            )
            if deleted:  # once: a retry finds it gone
                await _decided(
                    obj, deps, DecisionAction.DELETE, project_id, "the resource was deleted "
                    "(deletionPolicy: Delete): its Neon project and data with it",
                )  # fmt: skip
        progress.done.append(project_id)


async def _keep_project(
    obj: DatabaseObject, deps: DatabaseDeps, events: Events, name: str, project_id: str
) -> None:
    identity = obj.identity
    await deps.metadata.record_orphan(
        kind=identity.kind,
        namespace=identity.namespace,
        name=identity.name,
        project_id=project_id,
        reason="deletionPolicy: Retain",
        disposition="retained",
        project_name=name,
    )
    events.normal(
        Reason.PROJECT_RETAINED,
        f"Kept Neon project {project_id} (deletionPolicy: Retain); "
        "recorded in tenantdb_orphaned_project as retained",
    )
    await _decided(
        obj, deps, DecisionAction.RETAIN, project_id,
        "the resource was deleted with deletionPolicy: Retain: the project is kept (tenantdb orphans)",
    )  # fmt: skip


async def _decided(
    obj: DatabaseObject,
    deps: DatabaseDeps,
    action: DecisionAction,
    project_id: str,
    reason: str,
    **details: object,
) -> None:
    """The finalizer's decision about one project, in the decision log."""
    identity = obj.identity
    await record_decision(
        deps.metadata,
        tenant=identity.tenant,
        action=action,
        decided_by=DecidedBy.FINALIZER,
        reason=reason,
        at=deps.clock(),
        resource=f"{identity.kind} {identity.namespace}/{identity.name}",
        project_id=project_id,
        details=details,
    )


def _hinted(obj: DatabaseObject, deps: DatabaseDeps) -> list[str]:
    """The project status (or this process) names, when Neon could not be asked which is ours."""
    hinted = obj.status.project_id or deps.known_projects.get(obj.identity.uid)
    return [hinted] if hinted else []


async def _projects_to_delete(
    obj: DatabaseObject, deps: DatabaseDeps, events: Events, name: str
) -> list[str]:
    """Every live project carrying this resource's name: one search, plus one read when the
    project status names is not among them (a name that is not ours is skipped, and said)."""
    found = [str(p.id) for p in await our_projects(deps.neon, obj.identity, name)]
    hinted = _hinted(obj, deps)
    for project_id in hinted:
        if project_id in found:
            continue
        try:
            project = await deps.neon.get_project(project_id)
        except NeonNotFoundError:
            continue  # already gone
        if project.name == name:
            found.append(project_id)  # ours, though the search missed it
        else:
            events.warning(
                Reason.PROJECT_MISMATCH,
                f"Not deleting Neon project {project_id}: status.projectId names it, but it is "
                f"{project.name!r}, not this resource's {name!r}",
            )
    return found


async def _retry_unless_given_up(deps: DatabaseDeps, say: _Say, exc: ReconcileError, waited: float) -> None:
    """Raise ``RetryLater`` (said in status) until the give-up time has passed."""
    remaining = deps.settings.delete_give_up_seconds - waited
    if remaining > 0:
        delay = min(300.0, max(5.0, min(exc.delay, 5.0 + waited / 2)), max(remaining, 1.0))
        await say(Reason.DELETE_FAILED, exc.message)
        raise RetryLater(Reason.DELETE_FAILED, exc.message, delay=delay) from exc


async def _record_orphans(
    obj: DatabaseObject,
    deps: DatabaseDeps,
    events: Events,
    exc: ReconcileError,
    name: str,
    waited: float,
    left: list[str],
) -> None:
    """Given up: what is left is recorded for manual clean-up, and said."""
    identity = obj.identity
    async with outside_errors("recording the orphaned project"):
        for project_id in left or [f"unknown-{identity.uid}"]:
            await deps.metadata.record_orphan(
                kind=identity.kind,
                namespace=identity.namespace,
                name=identity.name,
                project_id=project_id,
                reason=exc.message,
                project_name=name,
            )
    events.warning(
        Reason.PROJECT_ORPHANED,
        f"Gave up deleting Neon project {', '.join(left) or name} after {int(waited)}s "
        f"({exc.reason}); recorded in tenantdb_orphaned_project for manual clean-up",
    )
    for project_id in left or [f"unknown-{identity.uid}"]:
        await _decided(
            obj, deps, DecisionAction.ORPHAN, project_id,
            f"gave up deleting after {int(waited)}s ({exc.reason}): left for manual clean-up",
            waitedSeconds=int(waited),
        )  # fmt: skip


async def _unpublish(obj: DatabaseObject, deps: DatabaseDeps, events: Events, projects: set[str]) -> None:
    """The row and env var (where they hold one of our projects), then the tenant's claim."""
    identity = obj.identity
    async with outside_errors("removing the metadata rows"):
        # Only rows and env vars that hold one of this resource's own projects (found by name).
        removed = await _remove_published(obj, deps, projects)
        # The claim goes last: the next claimant must not find our row still there.
        await deps.metadata.release_tenant_claim(
            kind=identity.kind, tenant_id=identity.tenant.id, holder_uid=identity.uid
        )
    if removed:
        tenant = identity.tenant
        events.normal(Reason.CLEANED, f"Removed the metadata rows and {tenant.env_var} of {tenant.label}")


async def _remove_published(obj: DatabaseObject, deps: DatabaseDeps, project_ids: Collection[str]) -> bool:
    """Remove the row and env var, only where they hold this resource's project.

    A resource that never had a project (a claimant that waited, a Secret conflict) removes
    nothing: the row and env var of the same tenant are another resource's.
    """
    tenant = obj.identity.tenant
    row = await deps.metadata.get_database(tenant)
    if row is None or row.project_id not in project_ids or getattr(row, "user_owned", False):
        return False  # absent, another resource's or the user's own: nothing of ours to remove
    row_uri = decrypted(deps.cipher, row.encrypted_uri)
    # The env var first, the row last: a retry after a failure in between still knows, from
    # the row, which database the env var must reach to be ours.
    current = await read_env_var(deps.metadata, tenant)
    if current and env_var_is_ours(current, (row_uri,)):
        await deps.metadata.remove_env_var(tenant, key=tenant.env_var)
    await deps.metadata.delete_database_of_project(tenant, project_id=row.project_id)
    return True


def _forget(deps: DatabaseDeps, uid: str) -> None:
    """This process's memory of the resource goes with it."""
    deps.known_projects.pop(uid, None)
    deps.create_attempts.discard(uid)
    deps.pinned_claims.pop(uid, None)
    deps.create_sent_at.pop(uid, None)
