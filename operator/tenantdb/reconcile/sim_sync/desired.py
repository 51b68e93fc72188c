"""What should exist, from a snapshot of Sim's tables: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tenantdb.api import DATABASE_BUDGET, GLOBAL_DATABASE, WORKSPACE_DATABASE
from tenantdb.reconcile.sim_sync.names import resource_name, shard_namespace, valid_tenant_id
from tenantdb.reconcile.sim_sync.subscriptions import UserPlan, tier_for_plan, user_plans
from tenantdb.store import SimSnapshot

__all__ = ["DesiredResource", "TenantKey", "desired_resources", "tier_for_plan"]

# (kind, the Sim id the resource stands for: a user id, or a workspace id for WorkspaceDatabase)
TenantKey = tuple[str, str]


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
    its owner).

    Each goes to ``shard_namespace`` of the user whose budget it counts against: the user's
    own resources, and a workspace's by its payer, so a budget and what it pays for share a
    namespace (and so an operator shard, which sees only its namespaces) when they are made."""
    plans = user_plans(snapshot, plan_tiers, default_tier)
    result: dict[TenantKey, DesiredResource] = {}

    def add(resource: DesiredResource) -> None:
        result[resource.key] = resource

    for user_id in snapshot.user_ids:
        if not valid_tenant_id(user_id):
            continue  # no resource can carry it; the loop logs these
        name = resource_name("user", user_id)
        namespace = shard_namespace(user_id, namespaces)
        add(
            DesiredResource(
                GLOBAL_DATABASE.kind,
                GLOBAL_DATABASE.plural,
                name,
                user_id,
                user_id,
                {"userId": user_id},
                namespace,
            )
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
        add(
            DesiredResource(
                WORKSPACE_DATABASE.kind,
                WORKSPACE_DATABASE.plural,
                resource_name("workspace", workspace.id),
                workspace.id,
                workspace.owner_id,
                spec,
                shard_namespace(payer, namespaces),
            )
        )
    return result
