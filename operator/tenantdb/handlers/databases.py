"""kopf's handlers for GlobalDatabase and WorkspaceDatabase: registrations only. What each
does is ``handlers/driver.py``'s; here is which of kopf's causes calls it, and what a
restart or the fast lane spares kopf."""

from __future__ import annotations

from typing import Any

import kopf

from tenantdb.api import DATABASE_KINDS, GROUP, MANAGED_LABEL, ROTATE_CREDENTIALS_ANNOTATION, VERSION, Kind
from tenantdb.handlers.driver import (
    KopfEvents,
    delete_object,
    reconcile_object,
    registered_if_settled,
)
from tenantdb.handlers.runtime import Runtime

__all__ = ["register_database_handlers"]


def register_database_handlers(registry: kopf.OperatorRegistry) -> None:
    for kind in DATABASE_KINDS:
        _register_kind(registry, kind)


def _label_managed(body: kopf.Body, patch: kopf.Patch) -> None:
    """Our label on a resource kopf handles, in kopf's own write after the handler (a resource
    from before the label, at its first resume): the fast lane's start-up list leaves it out."""
    if MANAGED_LABEL not in (body.metadata.get("labels") or {}):
        patch.metadata.labels[MANAGED_LABEL] = "true"


def _register_kind(registry: kopf.OperatorRegistry, kind: Kind) -> None:
    resource = (GROUP, VERSION, kind.plural)

    async def reconcile(
        body: kopf.Body, memo: Runtime, logger: kopf.Logger, patch: kopf.Patch, **_: Any
    ) -> None:
        _label_managed(body, patch)
        await reconcile_object(memo, kind, body, KopfEvents(body, logger))

    async def taken_by_fast_lane(runtime: Runtime, body: kopf.Body, *, listing: bool) -> bool:
        """Reconciled (and registered) by the start-up fast lane at this generation."""
        lane = runtime.fast_lane
        generation = int(body.metadata.get("generation") or 1)
        uid = str(body.metadata.uid)
        return lane is not None and await lane.kopf_reached(kind, uid, generation, listing=listing)

    async def create(
        body: kopf.Body, memo: Runtime, logger: kopf.Logger, patch: kopf.Patch, **_: Any
    ) -> None:
        if not await taken_by_fast_lane(memo, body, listing=False):
            await reconcile(body=body, memo=memo, logger=logger, patch=patch)

    async def resume(
        body: kopf.Body, memo: Runtime, logger: kopf.Logger, patch: kopf.Patch, **_: Any
    ) -> None:
        _label_managed(body, patch)
        if registered_if_settled(memo, kind, body):
            return
        if await taken_by_fast_lane(memo, body, listing=True):
            return  # created while the operator was down or starting: taken at once
        await reconcile(body=body, memo=memo, logger=logger, patch=patch)

    async def finalize(body: kopf.Body, memo: Runtime, logger: kopf.Logger, **_: Any) -> None:
        await delete_object(memo, kind, body, KopfEvents(body, logger))

    name = kind.singular
    kopf.on.resume(*resource, registry=registry, id=f"{name}-resume")(resume)
    kopf.on.create(*resource, registry=registry, id=f"{name}-create")(create)
    kopf.on.update(*resource, registry=registry, id=f"{name}-update", field="spec")(reconcile)
    # A new value of the rotation annotation: the reconcile rotates the password (once per
    # value: status records the value handled). Missed while the operator was down, it is
    # found by the resume; missed otherwise, by the fleet observation's next pass.
    rotation = ("metadata", "annotations", ROTATE_CREDENTIALS_ANNOTATION)
    kopf.on.update(*resource, registry=registry, id=f"{name}-rotate", field=rotation)(reconcile)
    kopf.on.delete(*resource, registry=registry, id=f"{name}-delete")(finalize)
    # Drift (a deleted Secret or env var, a project deleted or settings changed on Neon) is
    # found by the fleet observation (handlers.fleet), not by a timer per object.
