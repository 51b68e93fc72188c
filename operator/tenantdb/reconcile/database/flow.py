"""The lifecycle of one tenant database: Observe → Create → Update, and Delete.

Modelled on Crossplane's managed-resource reconciler, with one step further: the Neon
project's name is derived from the resource's identity (``naming.project_name``), so a
restarted operator that lost the project id finds the project by name and adopts it.
One resource, one project, always.

Every outside system comes in through ``DatabaseDeps``; errors of those systems are turned
into ``RetryLater`` / ``NeedsUserAction`` here and nowhere else.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection
from typing import Any

from tenantdb.api import DatabaseStatus, DeletionPolicy, Phase
from tenantdb.neon.errors import (
    NeonClientError,
    NeonNotFoundError,
    NeonOperationFailedError,
    NeonTransientError,
)
from tenantdb.reconcile import conditions as cond
from tenantdb.reconcile.database import model
from tenantdb.reconcile.database.claim import claim_tenant, pin_to_project, tenant_id
from tenantdb.reconcile.database.errors import CONFLICT_REASONS, outside_errors
from tenantdb.reconcile.database.model import DatabaseDeps, DatabaseObject, decrypted
from tenantdb.reconcile.database.publish import publish
from tenantdb.reconcile.database.rows import delete_row_of_project, read_env_var, read_row, remove_env_var
from tenantdb.reconcile.database.update import update_endpoint
from tenantdb.reconcile.endpoint_budget import read_write_endpoint
from tenantdb.reconcile.errors import NeedsUserAction, ReconcileError, RetryLater
from tenantdb.reconcile.ownership import env_var_is_ours
from tenantdb.reconcile.ports import Events, StatusWriter
from tenantdb.reconcile.projects import (
    ProjectMismatch,
    create_may_still_land,
    our_name,
    our_projects,
    replace_deleted_project,
)
from tenantdb.reconcile.reasons import Reason

__all__ = ["delete_database", "reconcile_database"]

# A create without a proper answer (a time-out, a dropped connection, a gateway's 502/504)
# may still be running in Neon: it may land until its landing window has passed.
_UNANSWERED = frozenset({None, 502, 504})


def _create_may_have_been_sent(obj: DatabaseObject, deps: DatabaseDeps) -> bool:
    """Whether a create for this resource may have reached Neon: then look for the project first.

    Every create is preceded by a status write (phase Provisioning), and this process also
    remembers the creates it sent (kopf may hand a reconcile a body from before that write).
    So a resource with no status at all, which this process never tried to create, has no
    project anywhere: the search (a third rate-limited call besides the create and its poll)
    is skipped.
    """
    return bool(obj.status.model_fields_set) or obj.identity.uid in deps.create_attempts


async def _create_is_over(deps: DatabaseDeps, uid: str, write_status: StatusWriter) -> None:
    """The create surely did not land (refused, or answered): nothing to wait for."""
    deps.create_sent_at.pop(uid, None)
    await write_status(DatabaseStatus(create_attempted_at=None))


async def _find_adoptable(deps: DatabaseDeps, obj: DatabaseObject, name: str) -> Any | None:
    matches = await our_projects(deps.neon, obj.identity, name)
    return matches[0] if matches else None


async def reconcile_database(
    obj: DatabaseObject, deps: DatabaseDeps, events: Events, write_status: StatusWriter
) -> DatabaseStatus:
    """Bring Neon, the Secret and the metadata DB in line with the resource. Returns the status
    to record: the object's own, with what this reconcile found and did.

    A conflict (another resource holds the tenant, or the Secret is not ours) is said once with
    a Warning event and waits: ``RetryLater``, nothing created, nothing overwritten.
    """
    try:
        return await _reconcile(obj, deps, events, write_status)
    except RetryLater as exc:
        if exc.reason in CONFLICT_REASONS:
            ready = cond.get_condition(obj.status.conditions, cond.READY)
            if ready is None or ready.reason != exc.reason or ready.message != exc.message:
                events.warning(exc.reason, exc.message)
        raise


async def _reconcile(
    obj: DatabaseObject, deps: DatabaseDeps, events: Events, write_status: StatusWriter
) -> DatabaseStatus:
    spec, identity, settings = obj.spec, obj.identity, deps.settings
    status = obj.status
    conditions = list(status.conditions)
    now = deps.clock()
    # The name is the proof of ownership: derived, never read back from status.
    name = our_name(settings, identity)
    region = status.region or spec.region or settings.neon_default_region
    pg_version = status.pg_version or spec.pg_version or settings.neon_default_pg_version
    role_name = model.role_name(spec)
    was_ready = cond.is_true(conditions, cond.READY)
    secret_name = model.secret_name(obj)

    # --- Claim the tenant and check the Secret: before anything is created ------------------
    claimed = await claim_tenant(obj, deps, secret_name)

    # --- Observe -----------------------------------------------------------------------------
    # status.projectId is a hint anyone with status rights can write; the in-process memory
    # holds only projects whose name was checked (or that this process created).
    project_id: str | None = status.project_id or deps.known_projects.get(identity.uid)
    created: Any = None
    replaced = False
    async with outside_errors("observing the Neon project"):
        if project_id:
            try:
                project = await deps.neon.get_project(project_id)
            except NeonNotFoundError:
                deps.known_projects.pop(identity.uid, None)
                # Gone, or never ours to begin with (status is only a hint): our project, if
                # it lives, carries our name.
                live = await _find_adoptable(deps, obj, name)
                if live is not None:
                    events.normal(
                        Reason.ADOPTED,
                        f"status named Neon project {project_id}, which does not exist; "
                        f"adopted this resource's project {live.id} ({name})",
                    )
                    project_id = live.id
                else:
                    project_id = await replace_deleted_project(
                        deps.neon, events, settings, identity, project_id=project_id, name=name
                    )
                    replaced = project_id is None
            else:
                if project.name != name:
                    if deps.known_projects.get(identity.uid) == project_id:
                        deps.known_projects.pop(identity.uid, None)
                    raise ProjectMismatch(project_id, project.name, name)
        if not project_id and not replaced and _create_may_have_been_sent(obj, deps):
            adopted = await _find_adoptable(deps, obj, name)
            if adopted is not None:
                project_id = adopted.id
                events.normal(Reason.ADOPTED, f"Adopted the existing Neon project {project_id} ({name})")
            else:
                create_may_still_land(
                    status,
                    settings,
                    now,
                    action="looking for the project by name before creating again",
                    sent_here=deps.create_sent_at.get(identity.uid),
                )

    # --- Create ------------------------------------------------------------------------------
    if not project_id:
        conditions = cond.set_not_ready(
            conditions,
            reason=Reason.CREATING,
            message="Creating the Neon project",
            now=now,
            generation=obj.generation,
        )
        # The attempt is on record before it is made: until it can no longer land, no second
        # create is sent, whichever replica or restart comes next.
        async with outside_errors("recording the status"):
            await write_status(
                DatabaseStatus(
                    phase=Phase.PROVISIONING, conditions=conditions, create_attempted_at=cond.rfc3339(now)
                )
            )
        deps.create_attempts.add(identity.uid)
        deps.create_sent_at[identity.uid] = now
        async with outside_errors("creating the Neon project"):
            try:
                created = await deps.neon.create_project(
                    name=name,
                    region_id=region,
                    pg_version=pg_version,
                    database_name=spec.database_name,
                    role_name=spec.role_name,
                    autoscaling_min_cu=spec.autoscaling.min_cu,
                    autoscaling_max_cu=spec.autoscaling.max_cu,
                    suspend_timeout_seconds=spec.suspend_timeout_seconds,
                )
            except NeonTransientError as exc:
                if exc.ambiguous:
                    if exc.status not in _UNANSWERED:
                        # Answered (a 500, an unreadable 201): the create is over, done or not;
                        # the next attempt's search tells which, no need to wait.
                        await _create_is_over(deps, identity.uid, write_status)
                        raise RetryLater(
                            Reason.CREATING,
                            "Creating the Neon project: Neon failed to answer properly; will look "
                            "for the project by name before trying again",
                            delay=max(2.0, exc.retry_after or 5.0),
                        ) from exc
                    # No answer: Neon may have created it, or may still. Look for it by name,
                    # and create again only once this create can no longer land.
                    until = now + datetime.timedelta(seconds=settings.create_landing_window_seconds)
                    raise RetryLater(
                        Reason.CREATING,
                        "Creating the Neon project: no answer from Neon; will look for the project "
                        f"by name (and not create it again before {cond.rfc3339(until)})",
                        delay=max(2.0, exc.retry_after or 5.0),
                    ) from exc
                await _create_is_over(deps, identity.uid, write_status)  # refused before doing anything
                raise
            except (NeonClientError, NeonOperationFailedError):
                await _create_is_over(deps, identity.uid, write_status)
                raise
        project_id = created.project.id
        events.normal(Reason.PROJECT_CREATED, f"Created Neon project {project_id} in {region}")

    # The external name is recorded the moment it is known, before anything else can fail.
    identity_status = DatabaseStatus(
        project_id=project_id,
        project_name=name,
        create_attempted_at=None,  # the attempt's outcome is on record
        region=region,
        pg_version=pg_version,
        database_name=spec.database_name,
        role_name=role_name,
    )
    # Remembered before the write: if the write fails, the next attempt knows the project is
    # its own (no search, no "Adopted" for a project it just made).
    deps.known_projects[identity.uid] = project_id
    deps.create_attempts.discard(identity.uid)
    if any(getattr(status, f) != getattr(identity_status, f) for f in identity_status.model_fields_set):
        async with outside_errors("recording the status"):
            await write_status(identity_status)
        status = status.merged(identity_status)
    await pin_to_project(obj, deps, claimed.claim, project_id)
    deps.create_sent_at.pop(identity.uid, None)

    # --- Wait for Neon, then Update drifted settings --------------------------------------------
    async with outside_errors("waiting for the Neon project"):
        if created is not None:
            await deps.neon.wait_for_operations(project_id, created.operations)
            endpoint = read_write_endpoint(list(created.endpoints))
            branch_id: str = created.branch_id
        else:
            endpoint = read_write_endpoint(await deps.neon.list_endpoints(project_id))
            branch_id = getattr(endpoint, "branch_id", "") or status.branch_id or ""
        if endpoint is None:
            raise RetryLater(
                Reason.RECONCILE_ERROR, "the Neon project has no read-write compute endpoint yet", delay=15
            )
    # A settings change Neon refuses leaves a working database: it is reported in Synced,
    # Ready stays true, and the connection string is still published.
    refused: NeedsUserAction | None = None
    try:
        async with outside_errors("updating the compute endpoint settings"):
            suspended = await update_endpoint(obj, deps, events, project_id, endpoint)
    except NeedsUserAction as exc:
        refused = exc
        async with outside_errors("updating the compute endpoint (budget only)"):
            suspended = await update_endpoint(obj, deps, events, project_id, endpoint, settings_too=False)

    # --- Connection string: Secret, metadata rows, env var --------------------------------------
    await publish(
        obj,
        deps,
        events,
        project_id=project_id,
        branch_id=branch_id,
        secret=claimed.secret,
        secret_name=secret_name,
        created=created,
        host=endpoint.host,
    )

    # --- Status -------------------------------------------------------------------------------------
    if suspended:
        phase = Phase.SUSPENDED
        conditions = cond.set_not_ready(
            conditions,
            reason=Reason.BUDGET_EXCEEDED,
            message="The user's budget is exceeded: connections are refused "
            "until the budget allows them again",
            now=now,
            generation=obj.generation,
        )
    else:
        phase = Phase.READY
        conditions = cond.set_ready(
            conditions,
            reason=Reason.AVAILABLE,
            message=f"Database ready in Neon project {project_id}",
            now=now,
            generation=obj.generation,
        )
        if not was_ready:
            events.normal(Reason.READY, f"Database ready; connection string in Secret {secret_name}")
    if refused is not None:
        synced = cond.get_condition(conditions, cond.SYNCED)
        if synced is None or synced.message != refused.message:
            events.warning(refused.reason, refused.message)
        conditions = cond.set_sync_failed(
            conditions,
            reason=refused.reason,
            message=refused.message,
            now=now,
            generation=obj.generation,
        )
    else:
        conditions = cond.set_synced(
            conditions,
            reason=Reason.RECONCILE_SUCCESS,
            message="Neon, the Secret and the metadata DB match the spec",
            now=now,
            generation=obj.generation,
        )
    return status.merged(
        DatabaseStatus(
            phase=phase,
            branch_id=branch_id,
            endpoint_id=endpoint.id,
            host=endpoint.host,
            secret_name=secret_name,
            observed_generation=obj.generation,
            observed_at=cond.rfc3339(now),
            conditions=conditions,
        )
    )


# --- Delete -------------------------------------------------------------------------------------
async def delete_database(
    obj: DatabaseObject,
    deps: DatabaseDeps,
    events: Events,
    write_status: StatusWriter,
    *,
    deletion_started: datetime.datetime | None,
) -> bool:
    """Finalize: delete (or retain) every project carrying this resource's name, then unpublish.

    The projects are found by name (one search), not only through status: a create that
    landed unrecorded is deleted too, and a status pointing at another resource's project
    deletes nothing of it. While an unrecorded create may still land, the finalizer waits.
    Any Neon failure is retried with backoff until the give-up time; then the projects are
    recorded as orphans with a Warning event, so every delete ends and nothing leaks
    silently. Retained projects are recorded too. Returns whether anything was orphaned.
    """
    identity, spec, settings = obj.identity, obj.spec, deps.settings
    name = our_name(settings, identity)
    now = deps.clock()
    started = deletion_started or now
    retain = spec.deletion_policy == DeletionPolicy.RETAIN
    conditions = list(obj.status.conditions)

    async def say(reason: str, message: str) -> None:
        nonlocal conditions
        conditions = cond.set_not_ready(
            conditions, reason=reason, message=message, now=deps.clock(), generation=obj.generation
        )
        async with outside_errors("writing the status"):
            await write_status(DatabaseStatus(phase=Phase.DELETING, conditions=conditions))

    await say(Reason.DELETING, "Deleting: releasing the Neon project and the connection string")
    targets: list[str] | None = None
    done: list[str] = []
    orphaned = False
    try:
        async with outside_errors("deleting the Neon project"):
            targets = await _projects_to_delete(obj, deps, events, name)
            if not targets:
                create_may_still_land(
                    obj.status,
                    settings,
                    now,
                    action="waiting for it before deleting the resource",
                    sent_here=deps.create_sent_at.get(identity.uid),
                )
            for project_id in targets:
                if project_id in done:
                    continue
                if retain:
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
                else:
                    deleted = await deps.neon.delete_project(project_id)
                    events.normal(
                        Reason.PROJECT_DELETED,
                        f"Deleted Neon project {project_id}"
                        if deleted
                        else f"Neon project {project_id} was already gone",
                    )
                done.append(project_id)
    except ReconcileError as exc:
        # Any failure (an outage or a refusal: 400, 403, 409, 422 ...) is retried with a
        # growing delay until the give-up time, measured after the failed call.
        waited = (deps.clock() - started).total_seconds()
        remaining = settings.delete_give_up_seconds - waited
        if remaining > 0:
            delay = min(300.0, max(5.0, min(exc.delay, 5.0 + waited / 2)), max(remaining, 1.0))
            await say(Reason.DELETE_FAILED, exc.message)
            raise RetryLater(Reason.DELETE_FAILED, exc.message, delay=delay) from exc
        left = [p for p in (targets if targets is not None else _hinted(obj, deps)) if p not in done]
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
        orphaned = True
        events.warning(
            Reason.PROJECT_ORPHANED,
            f"Gave up deleting Neon project {', '.join(left) or name} after {int(waited)}s "
            f"({exc.reason}); recorded in tenantdb_orphaned_project for manual clean-up",
        )

    if orphaned:
        await say(Reason.PROJECT_ORPHANED, f"Neon project left behind ({name}); removing the metadata rows")
    elif retain:
        await say(Reason.PROJECT_RETAINED, "Neon project retained; removing the metadata rows")
    else:
        await say(Reason.PROJECT_DELETED, "Neon project deleted; removing the metadata rows")

    async with outside_errors("removing the metadata rows"):
        # Only rows and env vars that hold one of this resource's own projects (found by name).
        removed = await _remove_published(obj, deps, {*(targets or _hinted(obj, deps)), *done})
        # The claim goes last: the next claimant must not find our row still there.
        await deps.metadata.release_tenant_claim(
            kind=identity.kind, tenant_id=tenant_id(identity), holder_uid=identity.uid
        )
    if removed:
        events.normal(
            Reason.CLEANED, f"Removed the metadata rows and {identity.env_var} of {identity.tenant_label}"
        )
    deps.known_projects.pop(identity.uid, None)
    deps.create_attempts.discard(identity.uid)
    deps.pinned_claims.pop(identity.uid, None)
    deps.create_sent_at.pop(identity.uid, None)
    return orphaned


async def _remove_published(obj: DatabaseObject, deps: DatabaseDeps, project_ids: Collection[str]) -> bool:
    """Remove the row and env var, only where they hold this resource's project.

    A resource that never had a project (a claimant that waited, a Secret conflict) removes
    nothing: the row and env var of the same tenant are another resource's.
    """
    identity = obj.identity
    row = await read_row(deps.metadata, identity)
    if row is None or row.project_id not in project_ids:
        return False  # absent, or another resource's: nothing of ours to remove
    row_uri = decrypted(deps.cipher, row.encrypted_uri)
    # The env var first, the row last: a retry after a failure in between still knows, from
    # the row, which database the env var must reach to be ours.
    current = await read_env_var(deps.metadata, identity)
    if current and env_var_is_ours(current, (row_uri,)):
        await remove_env_var(deps.metadata, identity)
    await delete_row_of_project(deps.metadata, identity, row.project_id)
    return True


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
