"""kopf handlers for GlobalDatabase and WorkspaceDatabase."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from typing import Any

import kopf
import pydantic

from tenantdb.api import GLOBAL_DATABASE, GROUP, VERSION, WORKSPACE_DATABASE, Kind, Phase
from tenantdb.api.databases import GlobalDatabaseSpec, WorkspaceDatabaseSpec
from tenantdb.handlers.runtime import Runtime
from tenantdb.handlers.sweep import refresh_left_behind
from tenantdb.kube import OwnerReference
from tenantdb.reconcile import conditions as cond
from tenantdb.reconcile.database import DatabaseObject, delete_database, reconcile_database
from tenantdb.reconcile.enforcement import DatabaseRecord
from tenantdb.reconcile.errors import NeedsUserAction, ReconcileError
from tenantdb.reconcile.naming import DatabaseIdentity

__all__ = ["register_database_handlers"]

REASON_INVALID_SPEC = "InvalidSpec"


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


def _decode(kind: Kind, body: kopf.Body) -> DatabaseObject:
    meta = body.metadata
    spec_model = WorkspaceDatabaseSpec if kind is WORKSPACE_DATABASE else GlobalDatabaseSpec
    spec = spec_model.model_validate(dict(body.spec))
    identity = DatabaseIdentity(
        kind=kind.kind,
        namespace=str(meta.namespace),
        name=str(meta.name),
        uid=str(meta.uid),
        user_id=spec.user_id,
        workspace_id=getattr(spec, "workspace_id", None),
    )
    owner = OwnerReference(api_version=kind.api_version, kind=kind.kind, name=identity.name, uid=identity.uid)
    return DatabaseObject(
        identity=identity,
        generation=int(meta.get("generation") or 1),
        spec=spec,
        status=dict(body.status),
        owner=owner,
    )


def _status_writer(runtime: Runtime, kind: Kind, body: kopf.Body) -> Any:
    async def write(status: Mapping[str, Any]) -> None:
        assert runtime.kube is not None
        await runtime.kube.patch_status(
            plural=kind.plural,
            namespace=str(body.metadata.namespace),
            name=str(body.metadata.name),
            status=status,
        )

    return write


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


async def _record_failure(
    runtime: Runtime,
    kind: Kind,
    body: kopf.Body,
    exc: ReconcileError | None,
    *,
    reason: str,
    message: str,
    failed: bool,
    phase: Phase | None = None,
) -> None:
    conditions = list(body.status.get("conditions") or [])
    generation = int(body.metadata.get("generation") or 1)
    conditions = cond.set_condition(
        conditions,
        kind=cond.SYNCED,
        status=False,
        reason=reason,
        message=message,
        now=_now(),
        generation=generation,
    )
    ready = cond.get_condition(conditions, cond.READY)
    patch: dict[str, Any] = {"conditions": conditions}
    # A phase given (Deleting) overrides a body that may predate it, Ready included.
    if failed or phase is not None or ready is None or ready.get("status") != "True":
        patch["conditions"] = cond.set_condition(
            conditions,
            kind=cond.READY,
            status=False,
            reason=reason,
            message=message,
            now=_now(),
            generation=generation,
        )
        patch["phase"] = (
            phase.value
            if phase is not None
            else Phase.FAILED.value
            if failed
            else (body.status.get("phase") or Phase.PENDING.value)
        )
    await _status_writer(runtime, kind, body)(patch)


def register_database_handlers(registry: kopf.OperatorRegistry, *, resync_interval: float) -> None:
    for kind in (GLOBAL_DATABASE, WORKSPACE_DATABASE):
        _register_kind(registry, kind, resync_interval=resync_interval)


def _register_kind(registry: kopf.OperatorRegistry, kind: Kind, *, resync_interval: float) -> None:
    resource = (GROUP, VERSION, kind.plural)

    async def reconcile(body: kopf.Body, memo: Runtime, logger: kopf.Logger, **_: Any) -> None:
        runtime = memo
        if body.metadata.get("deletionTimestamp"):
            return
        events = KopfEvents(body, logger)
        try:
            obj = _decode(kind, body)
        except pydantic.ValidationError as exc:
            # The CRD schema rejects these on a real API server; this guards the rest.
            message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            await _record_failure(
                runtime,
                kind,
                body,
                None,
                reason=REASON_INVALID_SPEC,
                message=f"Invalid spec: {message}",
                failed=True,
            )
            events.warning(REASON_INVALID_SPEC, f"Invalid spec: {message}")
            raise kopf.PermanentError(f"Invalid spec: {message}") from None
        started = _now()
        async with runtime.locks[obj.identity.uid]:
            try:
                status = await reconcile_database(
                    obj, runtime.database_deps(), events, _status_writer(runtime, kind, body)
                )
            except ReconcileError as exc:
                runtime.metrics.reconciles.labels(kind=kind.kind, result="error").inc()
                await _record_failure(
                    runtime,
                    kind,
                    body,
                    exc,
                    reason=exc.reason,
                    message=exc.message,
                    failed=isinstance(exc, NeedsUserAction),
                )
                if isinstance(exc, NeedsUserAction):
                    events.warning(exc.reason, exc.message)
                raise kopf.TemporaryError(exc.message, delay=exc.delay) from None
        was_ready = body.status.get("phase") == Phase.READY.value
        await _status_writer(runtime, kind, body)(status)
        runtime.budgets.put_database(
            DatabaseRecord(
                kind=kind.kind,
                namespace=obj.identity.namespace,
                name=obj.identity.name,
                user_id=obj.spec.user_id,
                project_id=status.get("projectId"),
                endpoint_id=status.get("endpointId"),
                suspended_for_budget=status.get("phase") == Phase.SUSPENDED.value,
            )
        )
        runtime.metrics.reconciles.labels(kind=kind.kind, result="success").inc()
        if not was_ready and status.get("phase") == Phase.READY.value:
            created = body.metadata.get("creationTimestamp")
            if created:
                born = datetime.datetime.fromisoformat(str(created).replace("Z", "+00:00"))
                runtime.metrics.time_to_ready.labels(kind=kind.kind).observe((started - born).total_seconds())

    async def finalize(body: kopf.Body, memo: Runtime, logger: kopf.Logger, **_: Any) -> None:
        runtime = memo
        events = KopfEvents(body, logger)
        try:
            obj = _decode(kind, body)
        except pydantic.ValidationError:
            return  # never provisioned: nothing outside to clean up
        deletion = body.metadata.get("deletionTimestamp")
        started = datetime.datetime.fromisoformat(str(deletion).replace("Z", "+00:00")) if deletion else None
        async with runtime.locks[obj.identity.uid]:
            try:
                await delete_database(
                    obj,
                    runtime.database_deps(),
                    events,
                    _status_writer(runtime, kind, body),
                    deletion_started=started,
                )
            except ReconcileError as exc:
                await _record_failure(
                    runtime,
                    kind,
                    body,
                    exc,
                    reason=exc.reason,
                    message=exc.message,
                    failed=False,
                    phase=Phase.DELETING,  # the body may predate the delete: say what is true
                )
                events.warning(exc.reason, exc.message)
                raise kopf.TemporaryError(exc.message, delay=exc.delay) from None
        await refresh_left_behind(runtime)  # orphaned and retained counts, from the table
        runtime.locks.pop(obj.identity.uid, None)
        runtime.budgets.drop_database(kind.kind, obj.identity.namespace, obj.identity.name)

    name = kind.singular
    kopf.on.resume(*resource, registry=registry, id=f"{name}-resume")(reconcile)
    kopf.on.create(*resource, registry=registry, id=f"{name}-create")(reconcile)
    kopf.on.update(*resource, registry=registry, id=f"{name}-update", field="spec")(reconcile)
    kopf.on.delete(*resource, registry=registry, id=f"{name}-delete")(finalize)
    # Drift (a deleted Secret or env var, settings changed on Neon) heals without a restart.
    kopf.timer(
        *resource,
        registry=registry,
        id=f"{name}-resync",
        interval=resync_interval,
        initial_delay=resync_interval,
        idle=min(resync_interval, 10.0),
    )(reconcile)
