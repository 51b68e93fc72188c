"""The one way a database resource is driven, whoever starts it (kopf's handlers, the fast
lane, the fleet observation): decode the object once, take its lock, run the database path,
write its status through one writer, and turn the outcome into kopf's terms.

``handlers/databases.py`` only registers kopf's handlers onto these; the fast lane
(``handlers/fast_lane.py``) and the fleet observation (``handlers/fleet.py``) call them too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, cast

import kopf
import pydantic

from tenantdb.api import ROTATE_CREDENTIALS_ANNOTATION, WORKSPACE_DATABASE, Kind, Phase, kind_named
from tenantdb.api.databases import DatabaseSpec, DatabaseStatus, GlobalDatabaseSpec, WorkspaceDatabaseSpec
from tenantdb.api.tenant import Scope, Tenant
from tenantdb.handlers.events import event_poster
from tenantdb.handlers.organization_router import OrganizationRouter
from tenantdb.handlers.placement import forget_if_nothing_made, placement_for_delete, placement_of
from tenantdb.handlers.runtime import Runtime
from tenantdb.handlers.sweep import refresh_left_behind
from tenantdb.kube import KubeError, OwnerReference
from tenantdb.reconcile import conditions as cond
from tenantdb.reconcile.claims import parse_created
from tenantdb.reconcile.database import (
    CONFLICT_REASONS,
    DatabaseDeps,
    DatabaseObject,
    check_published,
    delete_database,
    reconcile_database,
)
from tenantdb.reconcile.database import status as database_status
from tenantdb.reconcile.database.credentials import due_at, rotation_pending
from tenantdb.reconcile.database.model import own_compute
from tenantdb.reconcile.database_budget import apply_budget
from tenantdb.reconcile.database_tier import apply_tier
from tenantdb.reconcile.enforcement import DatabaseRecord, ResumeAction, SuspendAction
from tenantdb.reconcile.errors import NeedsUserAction, ReconcileError, RetryLater
from tenantdb.reconcile.naming import DatabaseIdentity
from tenantdb.reconcile.ports import Events
from tenantdb.reconcile.reasons import Reason
from tenantdb.reconcile.tier_rollout import Behind
from tenantdb.reconcile.tiers import SettingsWanted
from tenantdb.store import StoreError

__all__ = [
    "KopfEvents",
    "StatusWriter",
    "as_kopf_error",
    "budget_actuator",
    "decode",
    "delete_object",
    "enforce_now",
    "is_settled",
    "observe_database",
    "reconcile_new_database",
    "reconcile_object",
    "register_for_budget",
    "register_in_fleet",
    "registered_if_settled",
    "tier_actuator",
]

_log = logging.getLogger(__name__)


class KopfEvents:
    """The reconcilers' event sink, posting through kopf (its own client and queue)."""

    def __init__(self, body: kopf.Body, logger: logging.Logger | logging.LoggerAdapter[Any]) -> None:
        self._body = body
        self._logger = logger

    def normal(self, reason: str, message: str) -> None:
        self._logger.info("%s: %s", reason, message)
        kopf.event(self._body, type="Normal", reason=reason, message=message)

    def warning(self, reason: str, message: str) -> None:
        self._logger.warning("%s: %s", reason, message)
        kopf.event(self._body, type="Warning", reason=reason, message=message)


def decode(kind: Kind, body: Mapping[str, Any], *, status: DatabaseStatus | None = None) -> DatabaseObject:
    """The resource as the reconcilers see it. ``body`` is read as plain mappings (kopf's
    views resolve every key from the root: five times the cost, at 30,000 resumes a restart);
    ``status``: already decoded by the caller."""
    raw = dict(body)  # one level: the values are kopf's raw dicts
    meta: Mapping[str, Any] = raw.get("metadata") or {}
    # The one place a database is told to be a user's or a workspace's: downstream, the
    # store, the names and the database path read the Tenant instead of telling kinds apart.
    raw_spec = raw.get("spec") or {}
    spec: DatabaseSpec
    if kind is WORKSPACE_DATABASE:
        spec = WorkspaceDatabaseSpec.model_validate(raw_spec)
        tenant = Tenant(Scope.WORKSPACE, spec.workspace_id)
    else:
        spec = GlobalDatabaseSpec.model_validate(raw_spec)
        tenant = Tenant(Scope.GLOBAL, spec.user_id)
    identity = DatabaseIdentity(
        kind=kind.kind,
        namespace=str(meta.get("namespace")),
        name=str(meta.get("name")),
        uid=str(meta.get("uid")),
        user_id=spec.budget_user_id,
        tenant=tenant,
    )
    owner = OwnerReference(api_version=kind.api_version, kind=kind.kind, name=identity.name, uid=identity.uid)
    return DatabaseObject(
        identity=identity,
        generation=int(meta.get("generation") or 1),
        spec=spec,
        status=status if status is not None else DatabaseStatus.decode(raw.get("status") or {}),
        owner=owner,
        created_at=parse_created(meta.get("creationTimestamp")),
        rotate_request=_rotate_request(meta),
    )


def _rotate_request(meta: Mapping[str, Any]) -> str | None:
    value = (meta.get("annotations") or {}).get(ROTATE_CREDENTIALS_ANNOTATION)
    return None if value is None else str(value)


class StatusWriter:
    """Patches status right away (only the fields set on the model: ``to_patch``), and
    remembers what it wrote: kopf's body is from before the handler started, and a failure
    after a write must build on what is true now (a project made a moment ago is
    Provisioning, not Pending)."""

    def __init__(self, runtime: Runtime, kind: Kind, body: kopf.Body) -> None:
        self._runtime, self._kind, self._body = runtime, kind, body
        self.written = DatabaseStatus()

    async def __call__(self, status: DatabaseStatus) -> None:
        await write_database_status(
            self._runtime,
            self._kind.kind,
            str(self._body.metadata.namespace),
            str(self._body.metadata.name),
            status,
        )
        self.written = self.written.merged(status)


async def write_database_status(
    runtime: Runtime, kind: str, namespace: str, name: str, status: DatabaseStatus
) -> None:
    """The one patch of a database resource's status from the handlers (its reconcile, its
    failures, the budget's switch): only the fields set on the model (``to_patch``)."""
    assert runtime.kube is not None
    await runtime.kube.patch_status(
        plural=kind_named(kind).plural, namespace=namespace, name=name, status=status.to_patch()
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


async def _record_failure(
    runtime: Runtime,
    kind: Kind,
    body: kopf.Body,
    *,
    current: DatabaseStatus,
    reason: str,
    message: str,
    failed: bool,
    conflict: bool = False,
    phase: Phase | None = None,
) -> None:
    """Say why the reconcile stopped, in Synced (and Ready, unless the database works).

    ``current`` is the status as it stands: the object's, with what this reconcile already
    wrote. The phase is the last true one; ``Pending`` only when nothing exists yet. A failed
    write here is logged by kopf's retry, never raised past it: the reason is already in the
    handler's own error.
    """
    patch = database_status.failed(
        current,
        reason=reason,
        message=message,
        now=_now(),
        generation=int(body.metadata.get("generation") or 1),
        for_good=failed,
        conflict=conflict,
        phase=phase,
    )
    try:
        await StatusWriter(runtime, kind, body)(patch)
    except KubeError as exc:
        logging.getLogger(__name__).warning("could not record the failure in status: %s", exc)


async def _write_final_status(writer: StatusWriter, status: DatabaseStatus) -> None:
    """The reconcile's result, through the same error translation as every outside call."""
    try:
        await writer(status)
    except KubeError as exc:
        raise RetryLater(
            Reason.STATUS_WRITE_FAILED, f"recording the status: the Kubernetes API failed: {exc}", delay=5
        ) from exc


def register_for_budget(
    runtime: Runtime, kind: Kind, obj: DatabaseObject, status: DatabaseStatus
) -> set[str]:
    """The database as the budget counts it, under the user it counts against (its payer:
    ``DatabaseIdentity.user_id``). Returns the two users between whom its spend moved when
    its payer changed (their totals must be planned again, together), else nothing."""
    project_id = status.project_id or runtime.projects.get(obj.identity.uid)
    organization = status.organization or obj.status.organization
    if project_id and organization:
        runtime.project_organizations[project_id] = organization
    key = (kind.kind, obj.identity.namespace, obj.identity.name)
    known = runtime.budgets.databases.get(key)
    if not project_id and known is not None:
        # Keep what is known (a status without a project says nothing new) but whom it counts against.
        if known.user_id == obj.identity.user_id:
            return set()
        record = dataclasses.replace(known, user_id=obj.identity.user_id)
    else:
        own = own_compute(obj.spec)
        applied = SettingsWanted.from_status(status.applied)
        record = DatabaseRecord(
            kind=kind.kind,
            namespace=obj.identity.namespace,
            name=obj.identity.name,
            user_id=obj.identity.user_id,
            project_id=project_id,
            endpoint_id=status.endpoint_id,
            suspended_for_budget=status.phase == Phase.SUSPENDED,
            uid=obj.identity.uid,
            max_cu=applied.max_cu if applied is not None else own.max_cu,
            own=own,
            applied=applied,
        )
    previous = runtime.budgets.put_database(record)
    if previous is not None and previous.user_id != record.user_id:
        return {previous.user_id, record.user_id}
    return set()


async def enforce_now(runtime: Runtime, users: Iterable[str]) -> None:
    """Re-plan these users' enforcement with the costs known now (a tier change, a database
    changing payer, must not wait for a sync); handlers asking together share one pass
    (``BudgetSync.enforce_users``)."""
    assert runtime.store is not None
    assert runtime.kube is not None
    assert runtime.neon is not None
    router = OrganizationRouter(runtime)
    await runtime.budgets.enforce_users(
        users,
        store=runtime.store,
        kube=runtime.kube,
        neon=router,
        quotas=router,
        post_event=event_poster(runtime),
    )


def budget_actuator(
    runtime: Runtime, post_event: Callable[[str, str, str, str, str, str], None]
) -> Callable[[SuspendAction | ResumeAction], Awaitable[bool | None]]:
    """The database path acting for the budget loop: under the resource's own lock (the one
    its reconcile holds), then the project's, it switches the endpoint and writes the status."""

    async def write(kind: str, namespace: str, name: str, status: DatabaseStatus) -> None:
        await write_database_status(runtime, kind, namespace, name, status)

    async def act(action: SuspendAction | ResumeAction) -> bool | None:
        assert runtime.neon is not None
        lock = runtime.locks[action.uid] if action.uid else asyncio.Lock()
        async with lock:
            settled = await apply_budget(
                action,
                neon=OrganizationRouter(runtime),
                decision=lambda: runtime.budgets.is_suspended(action.user_id),
                write_status=write,
                post_event=post_event,
                now=_now(),
            )
        return settled.suspended if settled.endpoint is not None else None

    return act


def tier_actuator(
    runtime: Runtime, post_event: Callable[[str, str, str, str, str, str], None]
) -> Callable[[Behind], Awaitable[int]]:
    """The database path acting for a tier's rollout: under the resource's own lock (the one
    its reconcile holds), the settings its tier gives, recorded on its status and known to the
    budget's registry at once (the rollout's next look finds it done). Returns the Neon calls."""

    async def write(kind: str, namespace: str, name: str, status: DatabaseStatus) -> None:
        await write_database_status(runtime, kind, namespace, name, status)

    async def act(behind: Behind) -> int:
        assert runtime.neon is not None
        record = behind.record
        lock = runtime.locks[record.uid] if record.uid else asyncio.Lock()
        async with lock:
            current = runtime.budgets.databases.get((record.kind, record.namespace, record.name))
            if (
                current is None
                or current.applied != record.applied
                or current.project_id != record.project_id
            ):
                return 0  # reconciled (or gone) since the rollout looked: its next look decides
            # The key of the project's own organisation (the implicit one's without a pool).
            organization = runtime.project_organizations.get(record.project_id or "")
            neon = (runtime.client_of(organization) if organization else None) or runtime.neon
            calls = await apply_tier(behind, neon=neon, write_status=write, post_event=post_event)
            runtime.budgets.put_database(
                dataclasses.replace(current, applied=behind.wanted, max_cu=behind.wanted.max_cu)
            )
        return calls

    return act


def as_kopf_error(exc: ReconcileError) -> kopf.TemporaryError:
    """A reconcile's failure as kopf retries it: after the delay the failure asks for. (A
    resource that needs its user's action is retried too: the user may fix what is outside,
    a Secret or a claim, without touching the resource.)"""
    return kopf.TemporaryError(exc.message, delay=exc.delay)


def is_settled(generation: int, status: DatabaseStatus) -> bool:
    """Ready (or suspended by its budget) at its current generation, with its project, endpoint
    and host on record: nothing for a resume to do that the fleet observation does not do."""
    return (
        status.phase in (Phase.READY, Phase.SUSPENDED)
        and status.observed_generation == generation
        and bool(status.project_id and status.endpoint_id and status.host)
    )


def registered_if_settled(runtime: Runtime, kind: Kind, body: Mapping[str, Any]) -> bool:
    """kopf's resume of a settled resource: registered with the budget and the fleet
    observation (which finds what changed while the operator was down), and nothing more. A
    restart costs no Neon call for it. False: anything else, reconciled as a change would be."""
    raw = dict(body)
    meta: Mapping[str, Any] = raw.get("metadata") or {}
    status = DatabaseStatus.decode(raw.get("status") or {})
    if meta.get("deletionTimestamp") or not is_settled(int(meta.get("generation") or 1), status):
        return False
    try:
        obj = decode(kind, raw, status=status)
    except pydantic.ValidationError:
        return False  # reported by the full reconcile
    if rotation_pending(obj, runtime.rotations):
        return False  # a rotation asked for while the operator was down, or interrupted by its stop
    register_for_budget(runtime, kind, obj, status)
    register_in_fleet(runtime, kind, obj, status)
    return True


def register_in_fleet(runtime: Runtime, kind: Kind, obj: DatabaseObject, status: DatabaseStatus) -> None:
    if is_settled(obj.generation, status):
        runtime.fleet.put(
            obj.identity.uid,
            kind=kind.kind,
            namespace=obj.identity.namespace,
            name=obj.identity.name,
            project_id=status.project_id,
            observed_at=cond.parse_rfc3339(status.observed_at),
            rotate_at=due_at(
                obj, runtime.settings, runtime.rotations, rotated_at=status.credentials_rotated_at
            ),
        )
    else:
        runtime.fleet.drop(obj.identity.uid)  # kopf's retries own it until it settles


async def reconcile_object(
    runtime: Runtime,
    kind: Kind,
    body: kopf.Body,
    events: Events,
    *,
    local_first: bool = False,
    rotate_due: bool = False,
) -> None:
    """One resource's reconcile, for kopf's handlers and the fleet observation alike.

    ``local_first``: try the fleet's cheap check (Secret, row and env var; no Neon call) and
    reconcile in full only where it cannot vouch for the resource. ``rotate_due``: a password
    old enough is rotated (the fleet's paced turn). Raises kopf's errors."""
    if body.metadata.get("deletionTimestamp"):
        return
    obj = await _decoded_or_failed(runtime, kind, body, events)
    started = _now()
    writer = StatusWriter(runtime, kind, body)
    # Every database with a project counts in its user's budget, even while its reconcile
    # fails: known to the budget from its recorded status, before anything else is tried.
    moved = register_for_budget(runtime, kind, obj, obj.status)
    if moved:
        # Its spend changed hands: both users' totals and decisions now, in one pass (and
        # before the lock: that pass may switch this very endpoint under it).
        identity = obj.identity
        _log.info(
            "%s %s/%s now counts against user %s",
            kind.kind,
            identity.namespace,
            identity.name,
            identity.user_id,
        )
        await enforce_now(runtime, moved)
    rotating = rotate_due or rotation_pending(obj, runtime.rotations)
    async with (
        runtime.rotation_lane if rotating else contextlib.nullcontext(),
        runtime.locks[obj.identity.uid],
    ):
        placement = None
        try:
            # The tenant's organisation (placed now if it is new) and the client that acts there.
            placement = await placement_of(runtime, obj, writer)
            if placement.organization is not None and obj.status.organization != placement.organization:
                # What the statuses this reconcile writes build on (a body from before a
                # placement made again must not write the old organisation back).
                obj = dataclasses.replace(
                    obj, status=obj.status.merged(DatabaseStatus(organization=placement.organization))
                )
            deps = runtime.database_deps(placement.client)
            if (
                local_first
                and not _organization_was_down(obj.status)
                and await _checked_locally(obj, deps, events)
            ):
                register_in_fleet(runtime, kind, obj, obj.status)  # as its status now says
                runtime.fleet.checked(obj.identity.uid)
                return
            status = await reconcile_database(obj, deps, events, writer, rotate_due=rotate_due)
            await _write_final_status(writer, status)
            if placement.organization is not None and status.project_id:
                runtime.project_organizations[status.project_id] = placement.organization
        except ReconcileError as exc:
            if placement is not None:
                exc = await forget_if_nothing_made(
                    runtime, obj, placement, exc, project_written=bool(writer.written.project_id)
                )
            runtime.metrics.reconciles.labels(kind=kind.kind, result="error").inc()
            await _record_failure(
                runtime,
                kind,
                body,
                current=obj.status.merged(writer.written),
                reason=exc.reason,
                message=exc.message,
                failed=isinstance(exc, NeedsUserAction),
                conflict=exc.reason in CONFLICT_REASONS,
            )
            if isinstance(exc, NeedsUserAction):
                events.warning(exc.reason, exc.message)
            raise as_kopf_error(exc) from None
    _reconciled(runtime, kind, body, obj, status, started=started)


def _organization_was_down(status: DatabaseStatus) -> bool:
    """Synced says the tenant's organisation could not be used: a full reconcile, not the cheap
    check (which writes nothing when it passes), sets it right once it can."""
    synced = cond.get_condition(status.conditions, cond.SYNCED)
    return synced is not None and synced.reason == Reason.ORGANIZATION_UNAVAILABLE


async def _decoded_or_failed(runtime: Runtime, kind: Kind, body: kopf.Body, events: Events) -> DatabaseObject:
    """The resource decoded; a spec that cannot be is said in status and an Event, for good."""
    try:
        return decode(kind, body)
    except pydantic.ValidationError as exc:
        # The CRD schema rejects these on a real API server; this guards the rest.
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        await _record_failure(
            runtime,
            kind,
            body,
            current=DatabaseStatus.decode(body.status),
            reason=Reason.INVALID_SPEC,
            message=f"Invalid spec: {message}",
            failed=True,
        )
        events.warning(Reason.INVALID_SPEC, f"Invalid spec: {message}")
        raise kopf.PermanentError(f"Invalid spec: {message}") from None


def _reconciled(
    runtime: Runtime,
    kind: Kind,
    body: kopf.Body,
    obj: DatabaseObject,
    status: DatabaseStatus,
    *,
    started: datetime.datetime,
) -> None:
    """A reconcile that ended well: the budget and the fleet know the resource as it is now,
    and its first Ready is timed from its creation."""
    was_ready = obj.status.phase == Phase.READY
    register_for_budget(runtime, kind, obj, status)
    register_in_fleet(runtime, kind, obj, status)
    runtime.fleet.checked(obj.identity.uid)
    runtime.metrics.reconciles.labels(kind=kind.kind, result="success").inc()
    if not was_ready and status.phase == Phase.READY:
        created = body.metadata.get("creationTimestamp")
        if created:
            born = datetime.datetime.fromisoformat(str(created).replace("Z", "+00:00"))
            runtime.metrics.time_to_ready.labels(kind=kind.kind).observe((started - born).total_seconds())


async def _checked_locally(obj: DatabaseObject, deps: DatabaseDeps, events: Events) -> bool:
    """The fleet's cheap check. Its outage (the metadata DB or the API server down) is not news
    about the resource, which works: logged and retried at the next pass, its status left as
    it is (else an outage would rewrite every resource's status and only the slow rotation
    would ever set it right). A conflict it finds is news: recorded like any reconcile's."""
    try:
        return await check_published(obj, deps, events)
    except ReconcileError as exc:
        if exc.reason in CONFLICT_REASONS:
            raise
        raise as_kopf_error(exc) from None


async def observe_database(
    runtime: Runtime,
    kind: Kind,
    body: Mapping[str, Any],
    events: Events,
    *,
    full: bool,
    rotate_due: bool = False,
) -> bool:
    """The fleet observation's check of one resource (``full``: Neon read back too;
    ``rotate_due``: its password rotated if old enough). Returns whether it ended well; a
    failure is in the resource's status and the log, as kopf's would be."""
    try:
        await reconcile_object(
            runtime, kind, _as_body(body), events, local_first=not full, rotate_due=rotate_due
        )
    except (kopf.TemporaryError, kopf.PermanentError) as exc:
        meta = body.get("metadata") or {}
        _log.warning("%s %s/%s: %s", kind.kind, meta.get("namespace"), meta.get("name"), exc)
        return False
    return True


async def reconcile_new_database(
    runtime: Runtime, kind: Kind, body: Mapping[str, Any], events: Events
) -> None:
    """A new resource's reconcile outside kopf (the start-up fast lane); raises kopf's errors,
    which the lane hands to kopf's create handler when it gets there."""
    await reconcile_object(runtime, kind, _as_body(body), events)


async def _forget_placement(runtime: Runtime, obj: DatabaseObject) -> None:
    """The resource is gone: it no longer counts against its organisation's room."""
    if runtime.store is None or runtime.organizations is None or not runtime.organizations.in_use:
        return
    try:
        await runtime.store.forget_tenant_organization(uid=obj.identity.uid)
    except StoreError as exc:  # counted a little high until the row goes: logged, not fatal
        _log.warning("could not drop the organisation of %s: %s", obj.identity.name, exc)


def _as_body(body: Mapping[str, Any]) -> kopf.Body:
    """A resource read outside kopf (a list, a watch), as kopf hands it to a handler."""
    return kopf.Body(cast("kopf.RawBody", dict(body)))


async def delete_object(runtime: Runtime, kind: Kind, body: kopf.Body, events: Events) -> None:
    """kopf's delete handler: what the resource made outside is removed (per its deletion
    policy), then it is forgotten by the budget and the fleet. Raises kopf's errors."""
    try:
        obj = decode(kind, body)
    except pydantic.ValidationError:
        return  # never provisioned: nothing outside to clean up
    runtime.fleet.drop(obj.identity.uid)
    deletion = body.metadata.get("deletionTimestamp")
    started = datetime.datetime.fromisoformat(str(deletion).replace("Z", "+00:00")) if deletion else None
    async with runtime.locks[obj.identity.uid]:
        try:
            placement = await placement_for_delete(runtime, obj)
            await delete_database(
                obj,
                runtime.database_deps(placement.client),
                events,
                StatusWriter(runtime, kind, body),
                deletion_started=started,
            )
        except ReconcileError as exc:
            await _record_failure(
                runtime,
                kind,
                body,
                current=obj.status,
                reason=exc.reason,
                message=exc.message,
                failed=False,
                phase=Phase.DELETING,  # the body may predate the delete: say what is true
            )
            events.warning(exc.reason, exc.message)
            raise as_kopf_error(exc) from None
    await _forget_placement(runtime, obj)
    await refresh_left_behind(runtime)  # orphaned and retained counts, from the table
    runtime.locks.pop(obj.identity.uid, None)
    runtime.budgets.drop_database(kind.kind, obj.identity.namespace, obj.identity.name)
