"""One tenant, one claim: at most one GlobalDatabase per userId, one WorkspaceDatabase per
workspaceId, one DatabaseBudget per userId, across the whole cluster.

The claim itself lives in the metadata DB (``tenantdb.store.claims``), so every replica and
every restart agrees on the holder. Anyone else waits with ``Ready=False``, reason ``Conflict``,
and retries every ``CLAIM_RETRY_SECONDS``: when the holder's delete releases the claim, the
next claimant proceeds by itself.
"""

from __future__ import annotations

import datetime
from typing import Any, Protocol

from tenantdb.reconcile.errors import RetryLater
from tenantdb.reconcile.reasons import Reason
from tenantdb.store.claims import Claimant

__all__ = [
    "CLAIM_RETRY_SECONDS",
    "ClaimConflict",
    "ClaimStore",
    "hold_claim",
    "parse_created",
    "pin_claim",
]

# Short enough that a claimant proceeds soon after the holder is gone; a DB round trip each.
CLAIM_RETRY_SECONDS = 10.0


class ClaimStore(Protocol):
    async def claim_tenant(self, *, kind: str, tenant_id: str, claimant: Claimant) -> Claimant: ...
    async def record_claim_project(
        self, *, kind: str, tenant_id: str, holder_uid: str, project_id: str
    ) -> bool: ...


class ClaimConflict(RetryLater):
    """Another resource holds this tenant."""

    def __init__(self, kind: str, tenant: str, holder: Claimant) -> None:
        super().__init__(
            Reason.CONFLICT,
            f"{tenant} is already claimed by {kind} {holder.namespace}/{holder.name} (the oldest "
            f"resource for it); this one waits and creates nothing until that one is deleted",
            delay=CLAIM_RETRY_SECONDS,
        )
        self.holder = holder


def parse_created(value: Any) -> datetime.datetime:
    """A ``creationTimestamp`` as an aware datetime (missing: now, i.e. the youngest)."""
    if not value:
        return datetime.datetime.now(datetime.UTC)
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


async def hold_claim(
    store: ClaimStore, *, kind: str, tenant_id: str, tenant_label: str, claimant: Claimant
) -> Claimant:
    """The claim, when ``claimant`` holds the tenant; raise ``ClaimConflict`` naming the holder otherwise."""
    holder = await store.claim_tenant(kind=kind, tenant_id=tenant_id, claimant=claimant)
    if holder.uid != claimant.uid:
        raise ClaimConflict(kind, tenant_label, holder)
    return holder


async def pin_claim(
    store: ClaimStore, *, kind: str, tenant_id: str, tenant_label: str, claimant: Claimant, project_id: str
) -> None:
    """Pin the claim to the holder's project, after which no older claimant takes it over.

    The fence between "this reconcile held the claim" and "it publishes": an older resource
    that claimed the tenant while this one was creating its project wins, and this one stops.
    """
    pinned = await store.record_claim_project(
        kind=kind, tenant_id=tenant_id, holder_uid=claimant.uid, project_id=project_id
    )
    if not pinned:
        holder = await store.claim_tenant(kind=kind, tenant_id=tenant_id, claimant=claimant)
        if holder.uid != claimant.uid:
            raise ClaimConflict(kind, tenant_label, holder)
        await store.record_claim_project(
            kind=kind, tenant_id=tenant_id, holder_uid=claimant.uid, project_id=project_id
        )
