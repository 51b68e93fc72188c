"""What should exist, from a snapshot of Sim's tables: pure functions, no I/O."""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tenantdb.api import DATABASE_BUDGET, GLOBAL_DATABASE, WORKSPACE_DATABASE
from tenantdb.config import Tier
from tenantdb.reconcile.sim_sync.names import resource_name, valid_tenant_id
from tenantdb.store import SimSnapshot

__all__ = ["DesiredResource", "TenantKey", "desired_resources", "tier_for_plan"]

# (kind, the Sim id the resource stands for: a user id, or a workspace id for WorkspaceDatabase)
TenantKey = tuple[str, str]

_RANK = {Tier.FREE: 0, Tier.PAID: 1, Tier.ENTERPRISE: 2}


@dataclass(frozen=True, slots=True)
class DesiredResource:
    kind: str
    plural: str
    name: str
    sim_id: str
    user_id: str
    spec: Mapping[str, Any]

    @property
    def key(self) -> TenantKey:
        return (self.kind, self.sim_id)


def tier_for_plan(plan: str, plan_tiers: Mapping[str, Tier]) -> Tier | None:
    """The tier of a Sim plan: an exact name first, then the first matching glob pattern."""
    if plan in plan_tiers:
        return plan_tiers[plan]
    for pattern, tier in plan_tiers.items():
        if fnmatch.fnmatchcase(plan, pattern):
            return tier
    return None


def _user_tiers(snapshot: SimSnapshot, plan_tiers: Mapping[str, Tier], default: str) -> dict[str, str]:
    """Each user's tier: the best plan in force for the user or for one of the user's
    organisations (the organisation of a workspace they own, or one they are a member of)."""
    organisations: defaultdict[str, set[str]] = defaultdict(set)
    for workspace in snapshot.workspaces:
        if workspace.organization_id:
            organisations[workspace.owner_id].add(workspace.organization_id)
    for user_id, organization_id in snapshot.memberships:
        organisations[user_id].add(organization_id)
    plan_by_reference: defaultdict[str, list[Tier]] = defaultdict(list)
    for plan, reference_id in snapshot.subscriptions:
        tier = tier_for_plan(plan, plan_tiers)
        if tier is not None:
            plan_by_reference[reference_id].append(tier)
    tiers: dict[str, str] = {}
    for user_id in snapshot.user_ids:
        candidates = list(plan_by_reference.get(user_id, ()))
        for organization_id in organisations.get(user_id, ()):
            candidates.extend(plan_by_reference.get(organization_id, ()))
        tiers[user_id] = max(candidates, key=_RANK.__getitem__) if candidates else default
    return tiers


def desired_resources(
    snapshot: SimSnapshot, *, plan_tiers: Mapping[str, Tier], default_tier: str
) -> dict[TenantKey, DesiredResource]:
    """Per user a GlobalDatabase and a DatabaseBudget; per live workspace a WorkspaceDatabase."""
    tiers = _user_tiers(snapshot, plan_tiers, default_tier)
    result: dict[TenantKey, DesiredResource] = {}

    def add(resource: DesiredResource) -> None:
        result[resource.key] = resource

    for user_id in snapshot.user_ids:
        if not valid_tenant_id(user_id):
            continue  # no resource can carry it; the loop logs these
        name = resource_name("user", user_id)
        add(
            DesiredResource(
                GLOBAL_DATABASE.kind, GLOBAL_DATABASE.plural, name, user_id, user_id, {"userId": user_id}
            )
        )
        add(
            DesiredResource(
                DATABASE_BUDGET.kind,
                DATABASE_BUDGET.plural,
                name,
                user_id,
                user_id,
                {"userId": user_id, "tier": str(tiers[user_id])},
            )
        )
    for workspace in snapshot.workspaces:
        if not (valid_tenant_id(workspace.id) and valid_tenant_id(workspace.owner_id)):
            continue
        add(
            DesiredResource(
                WORKSPACE_DATABASE.kind,
                WORKSPACE_DATABASE.plural,
                resource_name("workspace", workspace.id),
                workspace.id,
                workspace.owner_id,
                {"userId": workspace.owner_id, "workspaceId": workspace.id},
            )
        )
    return result
