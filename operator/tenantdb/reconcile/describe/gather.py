"""What ``tenantdb describe`` shows about one user or workspace, gathered in one place.

From Kubernetes: the tenant's database resources (found by ``spec.userId`` or
``spec.workspaceId``) and the user's DatabaseBudget, as their status records them. From the
metadata DB, when it is reachable: the published row, the budget row, the projects left behind
for the tenant, and the latest decisions about it (``tenantdb_decision_log``). No Neon call:
the operator's own record is what an on-call person asks about, and Neon is not theirs to
load at 30,000 tenants.

Never a secret: a row's connection string and the Secret's data are never read into the report.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from tenantdb.api import DATABASE_BUDGET, GLOBAL_DATABASE, WORKSPACE_DATABASE, Scope, Tenant
from tenantdb.reconcile.describe.report import (
    BudgetView,
    DecisionView,
    OrphanView,
    ResourceView,
    RowView,
    Suspension,
    TenantReport,
)
from tenantdb.reconcile.naming import tenant_project_prefix
from tenantdb.store.errors import StoreError

__all__ = ["DescribeStore", "ResourceLister", "describe_tenant"]

# ``tenantdb describe user|workspace``: the scope by the word the command takes.
SCOPES: Mapping[str, Scope] = {"user": Scope.GLOBAL, "workspace": Scope.WORKSPACE}

_BUDGET_ACTIONS = ("suspend", "resume", "hard-stop-armed", "hard-stop-lifted")


class ResourceLister(Protocol):
    """Every object of one of our kinds (by plural) the operator watches."""

    async def list_objects(self, plural: str) -> Sequence[Mapping[str, Any]]: ...


class DescribeStore(Protocol):
    async def get_database(self, tenant: Tenant) -> Any: ...
    async def get_budget(self, *, user_id: str) -> Any: ...
    async def list_orphans(self) -> Sequence[Any]: ...
    async def list_decisions(self, tenants: Any, *, limit: int = 20) -> Sequence[Any]: ...


async def describe_tenant(
    tenant: Tenant,
    *,
    kube: ResourceLister,
    store: DescribeStore | None,
    project_prefix: str,
    decisions: int = 10,
    now: datetime.datetime | None = None,
) -> TenantReport:
    """One tenant's report. ``store`` ``None``: the metadata DB is not configured (said in the
    report's problems; the Kubernetes side is shown all the same)."""
    now = now or datetime.datetime.now(datetime.UTC)
    problems: list[str] = []
    resources = await _resources(kube, tenant)
    users = sorted({r.user_id for r in resources if r.user_id})
    user_id = tenant.id if tenant.scope is Scope.GLOBAL else (users[0] if len(users) == 1 else None)
    budget = await _budget(kube, user_id) if user_id else None
    row = budget_row = None
    orphans: list[OrphanView] = []
    decided: list[DecisionView] = []
    if store is None:
        problems.append("the metadata DB is not configured (TENANTDB_METADATA_DATABASE_URL): no rows, "
                        "orphans or decisions shown")  # fmt: skip
    else:
        try:
            row = RowView.of(await store.get_database(tenant))
            budget_row = await store.get_budget(user_id=user_id) if user_id else None
            prefix = tenant_project_prefix(project_prefix, tenant)
            names = {(r.kind, r.namespace, r.name) for r in resources}
            orphans = [
                OrphanView.of(o)
                for o in await store.list_orphans()
                if (o.project_name or "").startswith(prefix) or (o.kind, o.namespace, o.name) in names
            ]
            about = [(tenant.scope.owner, tenant.id)] + ([("user", user_id)] if user_id != tenant.id else [])
            decided = [
                DecisionView.of(d)
                for d in await store.list_decisions([a for a in about if a[1]], limit=decisions * 3)
                if (d.scope, d.tenant_id) == (tenant.scope.owner, tenant.id) or d.action in _BUDGET_ACTIONS
            ][:decisions]
        except StoreError as exc:
            problems.append(f"the metadata DB could not be read: {exc}")
    if budget is not None and budget_row is not None:
        budget = budget.with_row(budget_row)
    return TenantReport(
        tenant=tenant,
        user_id=user_id,
        resources=resources,
        budget=budget,
        suspension=Suspension.of(resources, budget, decided),
        row=row,
        orphans=orphans,
        decisions=decided,
        problems=problems,
        generated_at=now,
    )


async def _resources(kube: ResourceLister, tenant: Tenant) -> list[ResourceView]:
    """The tenant's database resources: a user's GlobalDatabase and the WorkspaceDatabases
    billed to them; a workspace's WorkspaceDatabase."""
    found: list[ResourceView] = []
    if tenant.scope is Scope.GLOBAL:
        wanted = [(GLOBAL_DATABASE.plural, "userId"), (WORKSPACE_DATABASE.plural, "userId")]
    else:
        wanted = [(WORKSPACE_DATABASE.plural, "workspaceId")]
    for plural, field in wanted:
        for obj in await kube.list_objects(plural):
            if (obj.get("spec") or {}).get(field) == tenant.id:
                found.append(ResourceView.of(obj))
    return sorted(found, key=lambda r: (r.kind != GLOBAL_DATABASE.kind, r.namespace, r.name))


async def _budget(kube: ResourceLister, user_id: str) -> BudgetView | None:
    budgets = [
        obj
        for obj in await kube.list_objects(DATABASE_BUDGET.plural)
        if (obj.get("spec") or {}).get("userId") == user_id
    ]
    if not budgets:
        return None
    budgets.sort(key=lambda obj: (obj["metadata"].get("namespace", ""), obj["metadata"]["name"]))
    return BudgetView.of(budgets[0], others=len(budgets) - 1)
