"""The lifecycle of one tenant database: Observe → Create → Update, and Delete.

Modelled on Crossplane's managed-resource reconciler, with one step further: the Neon
project's name is derived from the resource's identity (``naming.project_name``), so a
restarted operator that lost the project id finds the project by name and adopts it.
One resource, one project, always.

Every outside system comes in through ``DatabaseDeps``; errors of those systems are turned
into ``RetryLater`` / ``NeedsUserAction`` here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Awaitable, Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from tenantdb.api import DatabaseSpec, DatabaseStatus, DeletionPolicy, Phase
from tenantdb.kube import SecretConflictError
from tenantdb.neon.errors import (
    NeonClientError,
    NeonNotFoundError,
    NeonOperationFailedError,
    NeonTransientError,
)
from tenantdb.reconcile import conditions as cond
from tenantdb.reconcile.claims import hold_claim, pin_claim
from tenantdb.reconcile.connection import secret_data
from tenantdb.reconcile.database.errors import CONFLICT_REASONS, CONFLICT_RETRY_SECONDS, outside_errors
from tenantdb.reconcile.database.model import DatabaseDeps, DatabaseObject
from tenantdb.reconcile.database.update import update_endpoint
from tenantdb.reconcile.endpoint_budget import read_write_endpoint
from tenantdb.reconcile.errors import NeedsUserAction, ReconcileError, RetryLater
from tenantdb.reconcile.naming import DatabaseIdentity
from tenantdb.reconcile.ownership import env_var_is_ours, row_is_ours, same_database, uri_is_for
from tenantdb.reconcile.ports import Events, StatusWriter
from tenantdb.reconcile.projects import (
    ProjectMismatch,
    create_may_still_land,
    our_name,
    our_projects,
    replace_deleted_project,
)
from tenantdb.reconcile.reasons import Reason
from tenantdb.store.claims import Claimant
from tenantdb.store.errors import StoreIntegrityError

__all__ = ["check_published", "delete_database", "reconcile_database"]

# A create without a proper answer (a time-out, a dropped connection, a gateway's 502/504)
# may still be running in Neon: it may land until its landing window has passed.
_UNANSWERED = frozenset({None, 502, 504})

_LABEL_MANAGED = {"app.kubernetes.io/managed-by": "tenantdb"}


def _role_name(spec: DatabaseSpec) -> str:
    return spec.role_name or f"{spec.database_name}_owner"


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


def _tenant_id(identity: DatabaseIdentity) -> str:
    return (identity.workspace_id if identity.is_workspace else identity.user_id) or ""


def _claimant(obj: DatabaseObject) -> Claimant:
    identity = obj.identity
    return Claimant(
        uid=identity.uid, namespace=identity.namespace, name=identity.name, created_at=obj.created_at
    )


async def _claim_and_secret(
    obj: DatabaseObject, deps: DatabaseDeps, secret_name: str
) -> tuple[Claimant, Any]:
    """The tenant's claim (held, or as this process saw it pinned) and our Secret's state.

    A Secret of that name that is not ours is a conflict: nothing is written before this."""
    identity = obj.identity
    pinned = deps.pinned_claims.get(identity.uid)
    if pinned is not None:
        claim = dataclasses.replace(_claimant(obj), project_id=pinned)
    else:
        async with outside_errors("claiming the tenant"):
            claim = await hold_claim(
                deps.metadata,
                kind=identity.kind,
                tenant_id=_tenant_id(identity),
                tenant_label=identity.tenant_label,
                claimant=_claimant(obj),
            )
    async with outside_errors("reading the connection Secret"):
        secret = await deps.secrets.read_secret_state(
            namespace=identity.namespace, name=secret_name, owner_uid=identity.uid
        )
        if secret is not None and not secret.owned:
            raise SecretConflictError(identity.namespace, secret_name, list(secret.owners))
    return claim, secret


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
    role_name = _role_name(spec)
    was_ready = cond.is_true(conditions, cond.READY)
    secret_name = spec.connection_secret.name or identity.default_secret_name()

    # --- Claim the tenant and check the Secret: before anything is created ------------------
    claim, secret = await _claim_and_secret(obj, deps, secret_name)

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
    if claim.project_id != project_id:
        async with outside_errors("claiming the tenant"):
            await pin_claim(
                deps.metadata,
                kind=identity.kind,
                tenant_id=_tenant_id(identity),
                tenant_label=identity.tenant_label,
                claimant=_claimant(obj),
                project_id=project_id,
            )
    deps.pinned_claims[identity.uid] = project_id
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
    await _publish_connection(
        obj,
        deps,
        events,
        project_id=project_id,
        branch_id=branch_id,
        secret=secret,
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


async def _publish_connection(
    obj: DatabaseObject,
    deps: DatabaseDeps,
    events: Events,
    *,
    project_id: str,
    branch_id: str,
    secret: Any,
    secret_name: str,
    created: Any,
    host: str | None,
) -> None:
    """Secret, metadata row and env var, each written only when missing or different; the
    row and env var only while they are ours (else a conflict, left as they are)."""
    identity = obj.identity
    async with outside_errors("publishing the connection string"):
        row = await _read_row(deps, identity)
        projects = {project_id, obj.status.project_id or project_id}
        if not row_is_ours(row, projects):
            raise RetryLater(
                Reason.CONFLICT,
                f"the metadata row of {identity.tenant_label} holds Neon project {row.project_id}, "
                "not this resource's: left as it is",
                delay=CONFLICT_RETRY_SECONDS,
            )
        row_uri = _decrypted(deps, row.encrypted_uri) if row is not None else None
        uri, pooled_uri = await _connection_uri(
            obj, deps, project_id, secret, created, _role_name(obj.spec), host, row_uri
        )
        await _publish(
            obj,
            deps,
            events,
            secret_name=secret_name,
            existing=secret.data if secret is not None else None,
            project_id=project_id,
            branch_id=branch_id,
            uri=uri,
            pooled_uri=pooled_uri,
            row=row,
            row_uri=row_uri,
        )


async def check_published(obj: DatabaseObject, deps: DatabaseDeps, events: Events) -> bool:
    """The fleet's cheap check of a settled resource: its Secret, row and env var put back
    when missing or changed, without a Neon call (unless one of them must be rewritten and
    its URI is nowhere else to be had).

    Only for a resource Ready (or Suspended) at its current generation whose project this
    process has proven to be its own (by name: the fleet's project list or a reconcile):
    status alone is a hint anyone with status rights can write. Returns False when that is
    not so; the caller then reconciles in full.
    """
    status, identity = obj.status, obj.identity
    settled = (
        status.phase in (Phase.READY, Phase.SUSPENDED)
        and status.observed_generation == obj.generation
        and bool(status.project_id and status.endpoint_id and status.host)
    )
    if not settled or deps.known_projects.get(identity.uid) != status.project_id:
        return False
    assert status.project_id is not None
    assert status.host is not None
    secret_name = obj.spec.connection_secret.name or identity.default_secret_name()
    if status.secret_name != secret_name:
        return False  # the Secret's name changed without a spec generation? reconcile in full
    claim, secret = await _claim_and_secret(obj, deps, secret_name)
    if claim.project_id != status.project_id:
        return False
    deps.pinned_claims[identity.uid] = status.project_id
    await _publish_connection(
        obj,
        deps,
        events,
        project_id=status.project_id,
        branch_id=status.branch_id or "",
        secret=secret,
        secret_name=secret_name,
        created=None,
        host=None,  # status.host is a hint: a cached URI must match our own row instead
    )
    return True


async def _connection_uri(
    obj: DatabaseObject,
    deps: DatabaseDeps,
    project_id: str,
    secret: Any,
    created: Any,
    role_name: str,
    host: str | None,
    row_uri: str | None,
) -> tuple[str, str | None]:
    """The URI, from the create answer, else our own Secret, else one Neon call.

    The Secret is only a cache: its URI is used when it is this project's (its host is the
    project's endpoint, its database and role are ours), or when it reaches the database our own
    row records. Anything else in it (a URI copied from another tenant's Secret) is ignored and
    the URI fetched from Neon again.
    """
    if created is not None:
        connection = created.connection
        return connection.uri.get_secret_value(), connection.pooled_uri.get_secret_value()
    existing: Mapping[str, str] = secret.data if secret is not None and secret.owned else {}
    if "DATABASE_URL_ENCRYPTED" in existing:
        try:
            cached = deps.cipher.decrypt(existing["DATABASE_URL_ENCRYPTED"])
        except ValueError:
            cached = None  # written with another key or tampered with: fetch it again from Neon
        database_name = obj.spec.database_name
        if cached and (
            (
                host is not None
                and uri_is_for(cached, host=host, database_name=database_name, role_name=role_name)
            )
            or same_database(cached, row_uri)
        ):
            # The pooled URI is taken only from a Secret whose direct URI is ours, and only
            # when it names the same database and role.
            pooled = existing.get("DATABASE_URL_POOLED")
            return cached, pooled if pooled and _same_target_but_host(pooled, cached) else None
    # Our own row (checked by the caller to hold this project) is the other cache: a deleted
    # Secret is put back from it without asking Neon. Its host is checked when Neon just told
    # it (``host``); the fleet's check (``host=None``: status.host is anyone's to write) takes
    # the row as it is, since only the operator writes a row holding a project proven its own.
    if row_uri and (
        host is None
        or uri_is_for(row_uri, host=host, database_name=obj.spec.database_name, role_name=role_name)
    ):
        return row_uri, None
    uri = await deps.neon.get_connection_uri(
        project_id, database_name=obj.spec.database_name, role_name=role_name
    )
    return uri, None


def _same_target_but_host(pooled: str, direct: str) -> bool:
    """A pooled URI names the direct one's database and role (its host is the pooler's)."""
    try:
        a, b = urlsplit(pooled), urlsplit(direct)
    except ValueError:
        return False
    return (a.path, a.username) == (b.path, b.username)


def _decrypted(deps: DatabaseDeps, stored: str | None) -> str | None:
    if not stored:
        return None
    try:
        return deps.cipher.decrypt(stored)
    except ValueError:
        return None


async def _read_row(deps: DatabaseDeps, identity: DatabaseIdentity) -> Any:
    if identity.is_workspace:
        assert identity.workspace_id is not None
        return await deps.metadata.get_workspace_database(workspace_id=identity.workspace_id)
    return await deps.metadata.get_global_database(user_id=identity.user_id)


async def _publish(
    obj: DatabaseObject,
    deps: DatabaseDeps,
    events: Events,
    *,
    secret_name: str,
    existing: Mapping[str, str] | None,
    project_id: str,
    branch_id: str,
    uri: str,
    pooled_uri: str | None,
    row: Any,
    row_uri: str | None,
) -> None:
    identity, spec = obj.identity, obj.spec
    namespace = identity.namespace
    include_plaintext = spec.connection_secret.include_plaintext
    # The row was checked to be ours (or absent) by the caller. The env var is ours when it
    # reaches our database, now or as our row recorded it; anything else is another writer's:
    # left alone, and said.
    ours = (uri, row_uri)

    # Secret (read, and checked to be ours, at the start): rewritten only when it is missing
    # or says something else (fresh IVs would otherwise make every resync a write).
    # A pooled URI comes from the create answer or a checked Secret (``_connection_uri``), else Neon.
    if include_plaintext and pooled_uri is None:
        pooled_uri = await deps.neon.get_connection_uri(
            project_id, database_name=spec.database_name, role_name=_role_name(spec), pooled=True
        )
    if not _secret_matches(existing, deps, uri, include_plaintext):
        desired = secret_data(
            encrypted_uri=deps.cipher.encrypt(uri),
            uri=uri,
            pooled_uri=pooled_uri,
            include_plaintext=include_plaintext,
        )
        labels = {
            **_LABEL_MANAGED,
            "tenantdb.io/kind": identity.kind.lower(),
            "tenantdb.io/name": identity.name,
        }
        await deps.secrets.write_secret(
            namespace=namespace, name=secret_name, data=desired, labels=labels, owner=obj.owner
        )
        restored = existing is None and obj.status.secret_name == secret_name
        reason = (
            Reason.SECRET_RESTORED
            if restored
            else Reason.SECRET_WRITTEN
            if existing is None
            else Reason.SECRET_UPDATED
        )
        events.normal(reason, f"Connection string written to Secret {secret_name}")

    # Metadata rows and the env var Sim Studio reads.
    metadata = deps.metadata
    if identity.is_workspace:
        assert identity.workspace_id is not None
        if not _row_matches(row, deps, project_id, uri):
            await metadata.upsert_workspace_database(
                workspace_id=identity.workspace_id,
                project_id=project_id,
                branch_id=branch_id,
                encrypted_uri=deps.cipher.encrypt(uri),
                database_name=spec.database_name,
            )
        current = await _current_env_var(
            metadata.get_workspace_env_var(workspace_id=identity.workspace_id, key=identity.env_var)
        )
        if current != uri:
            _check_env_var(identity, current, ours)
            await metadata.set_workspace_env_var(
                workspace_id=identity.workspace_id, key=identity.env_var, value=uri
            )
            events.normal(Reason.ENV_VAR_WRITTEN, f"{identity.env_var} set for {identity.tenant_label}")
    else:
        if not _row_matches(row, deps, project_id, uri):
            await metadata.upsert_global_database(
                user_id=identity.user_id,
                project_id=project_id,
                branch_id=branch_id,
                encrypted_uri=deps.cipher.encrypt(uri),
                database_name=spec.database_name,
            )
        current = await _current_env_var(
            metadata.get_user_env_var(user_id=identity.user_id, key=identity.env_var)
        )
        if current != uri:
            _check_env_var(identity, current, ours)
            await metadata.set_user_env_var(user_id=identity.user_id, key=identity.env_var, value=uri)
            events.normal(Reason.ENV_VAR_WRITTEN, f"{identity.env_var} set for {identity.tenant_label}")


def _check_env_var(identity: DatabaseIdentity, current: str | None, ours: tuple[str | None, ...]) -> None:
    if not env_var_is_ours(current, ours):
        raise RetryLater(
            Reason.CONFLICT,
            f"{identity.env_var} of {identity.tenant_label} points at another database than this "
            "resource's: left as it is",
            delay=CONFLICT_RETRY_SECONDS,
        )


async def _current_env_var(read: Awaitable[str | None]) -> str | None:
    """Our env var as stored; a value that no longer decrypts counts as drift, not as an outage."""
    try:
        return await read
    except StoreIntegrityError:
        return None


def _decrypts_to(deps: DatabaseDeps, stored: str | None, expected: str) -> bool:
    if not stored:
        return False
    try:
        return deps.cipher.decrypt(stored) == expected
    except ValueError:
        return False


def _secret_matches(
    existing: Mapping[str, str] | None, deps: DatabaseDeps, uri: str, include_plaintext: bool
) -> bool:
    if not existing or not _decrypts_to(deps, existing.get("DATABASE_URL_ENCRYPTED"), uri):
        return False
    has_plaintext = "DATABASE_URL" in existing
    return has_plaintext == include_plaintext and (not include_plaintext or existing["DATABASE_URL"] == uri)


def _row_matches(row: Any, deps: DatabaseDeps, project_id: str, uri: str) -> bool:
    return row is not None and row.project_id == project_id and _decrypts_to(deps, row.encrypted_uri, uri)


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
            kind=identity.kind, tenant_id=_tenant_id(identity), holder_uid=identity.uid
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
    identity, metadata = obj.identity, deps.metadata
    row = await _read_row(deps, identity)
    if row is None or row.project_id not in project_ids:
        return False  # absent, or another resource's: nothing of ours to remove
    project_id = row.project_id
    row_uri = _decrypted(deps, row.encrypted_uri)
    # The env var first, the row last: a retry after a failure in between still knows, from
    # the row, which database the env var must reach to be ours.
    if identity.is_workspace:
        assert identity.workspace_id is not None
        current = await _current_env_var(
            metadata.get_workspace_env_var(workspace_id=identity.workspace_id, key=identity.env_var)
        )
        if current and env_var_is_ours(current, (row_uri,)):
            await metadata.remove_workspace_env_var(workspace_id=identity.workspace_id, key=identity.env_var)
        await metadata.delete_workspace_database_of_project(
            workspace_id=identity.workspace_id, project_id=project_id
        )
    else:
        current = await _current_env_var(
            metadata.get_user_env_var(user_id=identity.user_id, key=identity.env_var)
        )
        if current and env_var_is_ours(current, (row_uri,)):
            await metadata.remove_user_env_var(user_id=identity.user_id, key=identity.env_var)
        await metadata.delete_global_database_of_project(user_id=identity.user_id, project_id=project_id)
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
