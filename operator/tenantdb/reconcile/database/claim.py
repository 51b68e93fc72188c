"""Claim: before anything is created, the tenant is this resource's, and so is the name of its
connection Secret. Once the project is known, the claim is pinned to it.

The claim itself is ``reconcile.claims`` (one resource per tenant, the oldest wins); this is
the database path's use of it, with the memory of pinned claims that spares a resync the
metadata DB round trip.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tenantdb.kube import SecretConflictError
from tenantdb.reconcile.claims import hold_claim, pin_claim
from tenantdb.reconcile.database.errors import outside_errors
from tenantdb.reconcile.database.model import Claimed, DatabaseDeps, DatabaseObject
from tenantdb.reconcile.errors import RetryLater
from tenantdb.reconcile.reasons import Reason
from tenantdb.store.claims import Claimant

__all__ = ["USER_OWNED_RETRY_SECONDS", "claim_tenant", "pin_to_project"]

# A row the user brought changes only by a person's hand: looked at again this rarely.
USER_OWNED_RETRY_SECONDS = 600.0


def _claimant(obj: DatabaseObject) -> Claimant:
    identity = obj.identity
    return Claimant(
        uid=identity.uid, namespace=identity.namespace, name=identity.name, created_at=obj.created_at
    )


async def claim_tenant(obj: DatabaseObject, deps: DatabaseDeps, secret_name: str) -> Claimed:
    """The tenant's claim (held, or as this process saw it pinned), its metadata row and our
    Secret's state.

    A Secret of that name that is not ours is a conflict, and a row recording a database the
    user brought (``ownership_type`` other than 'platform') is the user's: nothing is created,
    written or removed for it. Both are found before anything is written."""
    claim = await _hold(obj, deps)
    row = await _platform_row(obj, deps)
    return Claimed(claim=claim, secret=await _our_secret(obj, deps, secret_name), row=row)


async def _platform_row(obj: DatabaseObject, deps: DatabaseDeps) -> Any:
    tenant = obj.identity.tenant
    async with outside_errors("reading the metadata row"):
        row = await deps.metadata.get_database(tenant)
    if row is not None and getattr(row, "user_owned", False):
        raise RetryLater(
            Reason.USER_OWNED,
            f"the metadata row of {tenant.label} records a database the user brought "
            f"(ownership_type {row.ownership_type!r}): this resource creates, publishes and removes "
            f"nothing for it; delete the resource, or the row, to change that",
            delay=USER_OWNED_RETRY_SECONDS,
        )
    return row


async def _hold(obj: DatabaseObject, deps: DatabaseDeps) -> Claimant:
    identity = obj.identity
    pinned = deps.pinned_claims.get(identity.uid)
    if pinned is not None:
        return dataclasses.replace(_claimant(obj), project_id=pinned)
    async with outside_errors("claiming the tenant"):
        return await hold_claim(
            deps.metadata,
            kind=identity.kind,
            tenant_id=identity.tenant.id,
            tenant_label=identity.tenant.label,
            claimant=_claimant(obj),
        )


async def _our_secret(obj: DatabaseObject, deps: DatabaseDeps, secret_name: str) -> Any:
    identity = obj.identity
    async with outside_errors("reading the connection Secret"):
        secret = await deps.secrets.read_secret_state(
            namespace=identity.namespace, name=secret_name, owner_uid=identity.uid
        )
        if secret is not None and not secret.owned:
            raise SecretConflictError(identity.namespace, secret_name, list(secret.owners))
    return secret


async def pin_to_project(obj: DatabaseObject, deps: DatabaseDeps, claim: Claimant, project_id: str) -> None:
    """Pin the claim to the project (unless it already is), and remember that it is."""
    if claim.project_id != project_id:
        identity = obj.identity
        async with outside_errors("claiming the tenant"):
            await pin_claim(
                deps.metadata,
                kind=identity.kind,
                tenant_id=identity.tenant.id,
                tenant_label=identity.tenant.label,
                claimant=_claimant(obj),
                project_id=project_id,
            )
    deps.pinned_claims[obj.identity.uid] = project_id
