"""Which Neon organisation a database resource is in, and the client that acts there.

With no NeonOrganization defined every tenant is in the implicit organisation of
``NEON_API_KEY`` / ``NEON_ORG_ID`` (``Runtime.neon``), as before the pool existed. With a pool:

- a resource with a project (or a create that may still land, or ``spec.projectId``) is where
  ``status.organization`` says; none there: the implicit organisation (it was made before the
  pool, or taken over with the operator's own key);
- a resource without a project is where the metadata DB's ``tenantdb_tenant_organization``
  says, and when it says nothing it is placed now (the placement rule), recorded there first
  (the first record wins, whichever replica comes second) and then in ``status.organization``.
  A placement whose organisation refused the create for good (its key rejected, its project
  limit reached) holds nothing there: it is dropped (``forget_if_nothing_made``) and the next
  attempt places the tenant elsewhere.

A tenant whose organisation's key is rejected says so in its conditions (``OrganizationUnavailable``)
and no call is made with that key until the pool's refresh finds it working again.
"""

from __future__ import annotations

import dataclasses
import logging

from tenantdb.api import DatabaseStatus
from tenantdb.handlers.runtime import Runtime
from tenantdb.neon import NeonClient
from tenantdb.neon.errors import NeonAuthError, NeonLimitError
from tenantdb.reconcile.database import DatabaseObject
from tenantdb.reconcile.database.errors import outside_errors
from tenantdb.reconcile.errors import ReconcileError, RetryLater
from tenantdb.reconcile.ports import StatusWriter
from tenantdb.reconcile.reasons import Reason
from tenantdb.store import StoreError

__all__ = ["Placement", "forget_if_nothing_made", "placement_for_delete", "placement_of"]

_log = logging.getLogger(__name__)

# A tenant with no organisation to go to, or whose organisation's key is rejected, is looked at
# again this often (the pool is refreshed once a minute).
_WAIT_SECONDS = 60.0
# A placement dropped after a refusal is placed again this soon (elsewhere).
_PLACE_AGAIN_SECONDS = 1.0
_CREATE_ROUTE = "POST /projects"


@dataclasses.dataclass(frozen=True)
class Placement:
    organization: str | None
    """The NeonOrganization's name; None: the implicit organisation of NEON_API_KEY."""
    client: NeonClient


def _has_project(runtime: Runtime, obj: DatabaseObject) -> bool:
    """A project exists, or a create may still land: the resource's organisation is settled."""
    status, uid = obj.status, obj.identity.uid
    return bool(
        status.project_id
        or status.create_attempted_at
        or obj.spec.project_id
        or uid in runtime.projects
        or uid in runtime.create_sent_at
    )


async def placement_of(runtime: Runtime, obj: DatabaseObject, write_status: StatusWriter) -> Placement:
    """The resource's organisation and client, placing a new tenant first. Raises ``RetryLater``
    when it cannot be placed or its organisation's key is rejected."""
    assert runtime.neon is not None
    pool = runtime.organizations
    status = obj.status
    if pool is None or not pool.in_use:
        if status.organization:
            raise _unavailable(status.organization, "no NeonOrganization of that name is defined")
        return Placement(None, runtime.neon)
    if _has_project(runtime, obj):
        organization = status.organization
    else:
        async with outside_errors("placing the tenant in a Neon organisation"):
            organization = await _place(runtime, obj)
        if status.organization != organization:
            async with outside_errors("recording the tenant's organisation"):
                await write_status(DatabaseStatus(organization=organization))
    if organization is None:
        return Placement(None, runtime.neon)
    if (why := pool.rejected(organization)) is not None:
        raise _unavailable(organization, why)
    client = pool.client(organization)
    if client is None:
        raise _unavailable(
            organization, "no NeonOrganization of that name is defined, or its key cannot be read"
        )
    return Placement(organization, client)


async def _place(runtime: Runtime, obj: DatabaseObject) -> str:
    """The organisation recorded for a resource without a project, recorded now if none is."""
    assert runtime.store is not None
    assert runtime.organizations is not None
    pool, store, identity = runtime.organizations, runtime.store, obj.identity
    recorded = await store.tenant_organization(uid=identity.uid)
    if recorded is not None:
        if pool.keeps_placed(recorded):
            return recorded
        # Nothing was made there (no project, no create in flight): placed again.
        await store.forget_tenant_organization(uid=identity.uid)
        _log.info("%s %s/%s: organisation %s takes no tenants now; placing it again",
                  identity.kind, identity.namespace, identity.name, recorded)  # fmt: skip
    chosen = pool.take()  # counted at once: the placements of a burst spread by the rule
    if chosen is None:
        raise RetryLater(
            Reason.NO_ORGANIZATION,
            "No NeonOrganization takes new tenants (each is full, cordoned, or its key is rejected); "
            "add one, raise a maxProjects or uncordon one",
            delay=_WAIT_SECONDS,
        )
    try:
        placed = await store.place_tenant(
            uid=identity.uid,
            kind=identity.kind,
            namespace=identity.namespace,
            name=identity.name,
            organization=chosen,
        )
    except BaseException:
        pool.release(chosen)
        raise
    if placed != chosen:  # another replica recorded it first: counted there already
        pool.release(chosen)
    return placed


def _unavailable(organization: str, why: str) -> RetryLater:
    return RetryLater(
        Reason.ORGANIZATION_UNAVAILABLE,
        f"NeonOrganization {organization} cannot be used: {why}",
        delay=_WAIT_SECONDS,
    )


async def forget_if_nothing_made(
    runtime: Runtime, obj: DatabaseObject, placement: Placement, exc: ReconcileError, *, project_written: bool
) -> ReconcileError:
    """After a failed reconcile: an organisation whose key Neon rejected is marked so, one
    that refused a create for its project limit is marked full; and a tenant that got nothing
    there is placed again at once (elsewhere). Returns the error to raise."""
    pool, organization, cause = runtime.organizations, placement.organization, exc.__cause__
    if pool is None or organization is None:
        return exc
    if isinstance(cause, NeonAuthError):
        pool.mark_rejected(organization, cause.message)
    elif isinstance(cause, NeonLimitError) and cause.route == _CREATE_ROUTE:
        pool.mark_full(organization)
    else:
        return exc
    if project_written or _has_project(runtime, obj) or runtime.store is None:
        return exc
    try:
        await runtime.store.forget_tenant_organization(uid=obj.identity.uid)
    except StoreError as store_exc:
        _log.warning("could not drop a refused placement: %s", store_exc)
        return exc
    return RetryLater(exc.reason, exc.message, delay=_PLACE_AGAIN_SECONDS)


async def placement_for_delete(runtime: Runtime, obj: DatabaseObject) -> Placement:
    """The organisation a resource being deleted is in (its status, else the metadata DB)."""
    assert runtime.neon is not None
    pool = runtime.organizations
    organization = obj.status.organization
    if organization is None and pool is not None and pool.in_use and runtime.store is not None:
        async with outside_errors("reading the tenant's organisation"):
            organization = await runtime.store.tenant_organization(uid=obj.identity.uid)
    if organization is None:
        return Placement(None, runtime.neon)
    client = runtime.client_of(organization)
    if client is None:
        raise _unavailable(
            organization, "no NeonOrganization of that name is defined, or its key cannot be read"
        )
    return Placement(organization, client)
