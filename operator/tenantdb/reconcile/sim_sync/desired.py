"""What should exist, from a snapshot of Sim's tables: pure functions, no I/O.

The tenants' metadata rows (``user_global_database`` / ``workspace_database``) decide how a
database resource is made: a row of a project the platform already has (``ownership_type``
'platform') gives a resource that takes that project over (``spec.projectId``) instead of one
that creates a second project; a row of a database the user brought (any other
``ownership_type``) gives no database resource at all (a user still gets a budget).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Final

from tenantdb.api import DATABASE_BUDGET, GLOBAL_DATABASE, WORKSPACE_DATABASE, Kind
from tenantdb.reconcile.sim_sync.names import resource_name, shard_namespace, valid_tenant_id
from tenantdb.reconcile.sim_sync.subscriptions import UserPlan, tier_for_plan, user_plans
from tenantdb.store import SimSnapshot, TenantRow

__all__ = [
    "PROJECT_ID",
    "PROJECT_ID_MAX_LENGTH",
    "DesiredResource",
    "NotCreated",
    "TenantKey",
    "desired_resources",
    "left_alone",
    "tier_for_plan",
    "with_tenant_row",
]

# (kind, the Sim id the resource stands for: a user id, or a workspace id for WorkspaceDatabase)
TenantKey = tuple[str, str]

# spec.projectId as the CRDs accept it (tenantdb.api.databases; a test keeps the two equal).
PROJECT_ID: Final = re.compile(r"^[a-z0-9][a-z0-9-]*$")
PROJECT_ID_MAX_LENGTH: Final = 64
# spec.databaseName as the CRDs accept it without a roleName: an SQL name that leaves room for
# the default role '<databaseName>_owner' within PostgreSQL's 63 bytes.
_DATABASE_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,56}$")


@dataclass(frozen=True, slots=True)
class DesiredResource:
    kind: str
    plural: str
    name: str
    sim_id: str
    user_id: str
    spec: Mapping[str, Any]
    # Where it is made when it does not exist yet (an existing one stays where it is).
    namespace: str
    # A DatabaseBudget's: the user's Sim plan and its tier (``subscriptions.UserPlan``).
    plan: UserPlan | None = None

    @property
    def key(self) -> TenantKey:
        return (self.kind, self.sim_id)


def desired_resources(
    snapshot: SimSnapshot,
    *,
    plan_tiers: Mapping[str, str],
    default_tier: str,
    namespaces: Sequence[str],
) -> dict[TenantKey, DesiredResource]:
    """Per user a GlobalDatabase and a DatabaseBudget (its tier from the user's Sim plan, read
    as Sim reads it: ``subscriptions``); per live workspace a WorkspaceDatabase, counted against
    the budget of the user Sim bills for the workspace (``spec.billedUserId`` when that is not
    its owner). A database resource as its tenant's metadata row says (``with_tenant_row``):
    none for the tenants ``left_alone`` gives.

    Each goes to ``shard_namespace`` of the user whose budget it counts against: the user's
    own resources, and a workspace's by its payer, so a budget and what it pays for share a
    namespace (and so an operator shard, which sees only its namespaces) when they are made."""
    plans = user_plans(snapshot, plan_tiers, default_tier)
    result: dict[TenantKey, DesiredResource] = {}

    def add(resource: DesiredResource) -> None:
        result[resource.key] = resource

    def add_database(
        kind: Kind,
        name: str,
        sim_id: str,
        user_id: str,
        spec: dict[str, Any],
        row: TenantRow | None,
        namespace: str,
    ) -> None:
        if row is None or _take_over(spec, row) is None:
            add(DesiredResource(kind.kind, kind.plural, name, sim_id, user_id, spec, namespace))

    for user_id in snapshot.user_ids:
        if not valid_tenant_id(user_id):
            continue  # no resource can carry it; the loop logs these
        name = resource_name("user", user_id)
        namespace = shard_namespace(user_id, namespaces)
        add_database(
            GLOBAL_DATABASE,
            name,
            user_id,
            user_id,
            {"userId": user_id},
            snapshot.user_database_rows.get(user_id),
            namespace,
        )
        add(
            DesiredResource(
                DATABASE_BUDGET.kind,
                DATABASE_BUDGET.plural,
                name,
                user_id,
                user_id,
                {"userId": user_id, "tier": plans[user_id].tier},
                namespace,
                plans[user_id],
            )
        )
    for workspace in snapshot.workspaces:
        if not (valid_tenant_id(workspace.id) and valid_tenant_id(workspace.owner_id)):
            continue
        spec = {"userId": workspace.owner_id, "workspaceId": workspace.id}
        payer = workspace.payer_id
        if payer != workspace.owner_id and valid_tenant_id(payer):
            spec["billedUserId"] = payer
        else:
            payer = workspace.owner_id
        add_database(
            WORKSPACE_DATABASE,
            resource_name("workspace", workspace.id),
            workspace.id,
            workspace.owner_id,
            spec,
            snapshot.workspace_database_rows.get(workspace.id),
            shard_namespace(payer, namespaces),
        )
    return result


class NotCreated(StrEnum):
    """Why the sync makes no database resource for a tenant Sim has."""

    OWN_DATABASE = "own-database"  # ownership_type is not 'platform': the user's own database
    # A platform row whose neon_project_id the CRD refuses: made anyway, the resource would make
    # a second project and then meet this row; ``tenantdb adopt --dry-run`` lists it (blocked).
    BAD_PROJECT_ID = "bad-project-id"


def _not_created(row: TenantRow) -> NotCreated | None:
    # Run for every row of every snapshot (200,000 at 100,000 users): kept to two tests.
    if not row.platform_owned:
        return NotCreated.OWN_DATABASE
    project_id = row.neon_project_id
    if project_id and (len(project_id) > PROJECT_ID_MAX_LENGTH or not PROJECT_ID.fullmatch(project_id)):
        return NotCreated.BAD_PROJECT_ID
    return None


def with_tenant_row(want: DesiredResource, row: TenantRow | None) -> DesiredResource | NotCreated:
    """The database resource to make for ``want``, given its tenant's metadata row (None: none).

    No row, or a platform row naming no project: ``want`` as it is (the reconcile creates a
    project). A platform row naming a project: ``spec.projectId`` names it, so that the reconcile
    takes it over instead of creating a second one, and ``spec.databaseName`` is the row's
    database when the CRD accepts that name (else the reconcile finds the project's own). Only a
    create carries it: the plan never patches projectId onto a resource that exists.
    """
    if row is None or want.kind == DATABASE_BUDGET.kind:
        return want
    spec = dict(want.spec)
    why = _take_over(spec, row)
    return why if why is not None else replace(want, spec=spec)


def _take_over(spec: dict[str, Any], row: TenantRow) -> NotCreated | None:
    """Add to ``spec`` what ``row`` says (see ``with_tenant_row``), or say why nothing is made."""
    why = _not_created(row)
    if why is None and row.neon_project_id:
        spec["projectId"] = row.neon_project_id
        if _accepted_database_name(row.database_name):
            spec["databaseName"] = row.database_name
    return why


@functools.lru_cache(maxsize=256)  # nearly every row has the same few names ('neondb')
def _accepted_database_name(name: str) -> bool:
    return bool(_DATABASE_NAME.fullmatch(name))


def left_alone(snapshot: SimSnapshot) -> dict[TenantKey, NotCreated]:
    """The database resources of tenants Sim has that the sync does not make, and why. One of
    ours that exists is left alone too, not deleted: its finalizer would act on the user's row
    and env var (the reconcile leaves them alone, and says so in the resource's status)."""
    result: dict[TenantKey, NotCreated] = {}
    for user_id, row in snapshot.user_database_rows.items():
        why = _not_created(row)
        if why is not None and user_id in snapshot.user_ids:
            result[(GLOBAL_DATABASE.kind, user_id)] = why
    live = {workspace.id for workspace in snapshot.workspaces}
    for workspace_id, row in snapshot.workspace_database_rows.items():
        why = _not_created(row)
        if why is not None and workspace_id in live:
            result[(WORKSPACE_DATABASE.kind, workspace_id)] = why
    return result
