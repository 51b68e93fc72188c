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
from typing import Any

from tenantdb.api import DatabaseStatus, Phase
from tenantdb.neon.errors import (
    NeonClientError,
    NeonNotFoundError,
    NeonOperationFailedError,
    NeonTransientError,
)
from tenantdb.reconcile import conditions as cond
from tenantdb.reconcile.database import model
from tenantdb.reconcile.database.claim import claim_tenant, pin_to_project
from tenantdb.reconcile.database.errors import CONFLICT_REASONS, outside_errors
from tenantdb.reconcile.database.model import DatabaseDeps, DatabaseObject
from tenantdb.reconcile.database.publish import publish
from tenantdb.reconcile.database.update import update_endpoint
from tenantdb.reconcile.endpoint_budget import read_write_endpoint
from tenantdb.reconcile.errors import NeedsUserAction, RetryLater
from tenantdb.reconcile.ports import Events, StatusWriter
from tenantdb.reconcile.projects import (
    ProjectMismatch,
    create_may_still_land,
    our_name,
    our_projects,
    replace_deleted_project,
)
from tenantdb.reconcile.reasons import Reason

__all__ = ["reconcile_database"]

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
