"""Desired resources against the cluster: what to create, patch, delete, and what to leave alone.

Pure: the loop lists the cluster (or keeps the last listing, updated with its own writes) and
applies the plan. Rules:

* a resource the sync did not make (no ``tenantdb.io/managed-by: sim-sync`` label) is never
  changed or deleted, and the sync makes no second resource for the same user or workspace:
  the one applied by hand or by GitOps wins (``yielded``: the loop says so in an Event, once);
* a resource of ours is patched only in what the sync decides: a budget's tier, and whom a
  workspace's database counts against (``billedUserId``: Sim's payer of the workspace, which may
  change after the resource was made; ``userId`` is immutable and stays its first owner);
* a resource of ours that Sim no longer wants is deleted; for a workspace Sim archived, its
  ``deletionPolicy`` is first set to the configured one for archived workspaces;
* a resource already being deleted is left to its finalizer;
* the database of a tenant whose metadata row says it is the user's own (``leave_alone``) is
  neither made nor deleted;
* a resource stays in the namespace it was made in (moving it would be a new database): the
  desired namespace only places what does not exist yet, and a plan may be limited to the
  namespaces one operator shard owns (``owned``) while it sees all of them.

Creates are ordered user by user (the user's global database, their workspaces' databases,
then their budget), so that a backlog worked off over hours leaves whole users done.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from tenantdb.api import DATABASE_BUDGET, GLOBAL_DATABASE, GROUP, VERSION, WORKSPACE_DATABASE, kind_named
from tenantdb.reconcile.sim_sync.desired import DesiredResource, TenantKey
from tenantdb.reconcile.sim_sync.names import MANAGED_BY_LABEL, MANAGED_BY_VALUE, SIM_ID_ANNOTATION, is_ours

__all__ = ["ClusterResource", "SyncPlan", "index_cluster", "make_plan", "manifest"]


@dataclass(frozen=True, slots=True)
class ClusterResource:
    kind: str
    namespace: str
    name: str
    sim_id: str
    ours: bool
    deleting: bool
    spec: Mapping[str, Any]

    @property
    def plural(self) -> str:
        return kind_named(self.kind).plural

    @property
    def key(self) -> TenantKey:
        return (self.kind, self.sim_id)


@dataclass(slots=True)
class SyncPlan:
    create: list[DesiredResource] = field(default_factory=list)
    # (resource, merge patch of its spec)
    patch: list[tuple[ClusterResource, dict[str, Any]]] = field(default_factory=list)
    # (resource, deletionPolicy to set first or None)
    delete: list[tuple[ClusterResource, str | None]] = field(default_factory=list)
    # resources not ours standing where the sync would have made its own
    yielded: list[ClusterResource] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.create) + len(self.patch) + len(self.delete)


_CREATE_ORDER: Final = {GLOBAL_DATABASE.kind: 0, WORKSPACE_DATABASE.kind: 1, DATABASE_BUDGET.kind: 2}


def _sim_id(kind: str, spec: Mapping[str, Any]) -> str | None:
    value = spec.get("workspaceId") if kind == WORKSPACE_DATABASE.kind else spec.get("userId")
    return value if isinstance(value, str) else None


def cluster_resource(kind: str, obj: Mapping[str, Any]) -> ClusterResource | None:
    spec = obj.get("spec") or {}
    metadata = obj.get("metadata") or {}
    sim_id = _sim_id(kind, spec)
    if sim_id is None:
        return None
    return ClusterResource(
        kind=kind,
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name")),
        sim_id=sim_id,
        ours=is_ours(dict(obj)),
        deleting=bool(metadata.get("deletionTimestamp")),
        spec=dict(spec),
    )


def index_cluster(listing: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[TenantKey, list[ClusterResource]]:
    """``(kind, object)`` pairs as listed -> resources by the Sim id they stand for."""
    index: dict[TenantKey, list[ClusterResource]] = {}
    for kind, obj in listing:
        resource = cluster_resource(kind, obj)
        if resource is not None:
            index.setdefault(resource.key, []).append(resource)
    return index


def manifest(want: DesiredResource, namespace: str) -> dict[str, Any]:
    """The object the sync creates for ``want`` (``tenantdb adopt`` creates the very same)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": want.kind,
        "metadata": {
            "name": want.name,
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE},
            "annotations": {SIM_ID_ANNOTATION: want.sim_id},
        },
        "spec": dict(want.spec),
    }


def _spec_patch(want: DesiredResource, have: ClusterResource) -> dict[str, Any]:
    if want.kind == DATABASE_BUDGET.kind and have.spec.get("tier") != want.spec["tier"]:
        return {"tier": want.spec["tier"]}
    if want.kind == WORKSPACE_DATABASE.kind:
        # Compared as payers, not as fields: a resource whose owner is its payer needs no
        # billedUserId, and one made for an owner who has left keeps that owner in userId.
        payer = want.spec.get("billedUserId", want.spec["userId"])
        if have.spec.get("billedUserId", have.spec.get("userId")) != payer:
            return {"billedUserId": payer}
    return {}


def make_plan(
    desired: Mapping[TenantKey, DesiredResource],
    cluster: Mapping[TenantKey, list[ClusterResource]],
    *,
    archived_workspace_ids: set[str],
    archived_deletion_policy: str,
    delete_absent: bool = True,
    leave_alone: Collection[TenantKey] = frozenset(),
    owned: Collection[str] | None = None,
) -> SyncPlan:
    """``delete_absent=False``: ``desired`` is a part of what should exist (new rows only), so
    nothing is deleted for not being in it. ``leave_alone``: resources neither made nor deleted.
    ``owned``: the namespaces this process acts in (its shard's); ``cluster`` still holds every
    shard namespace, so a tenant whose resource stands in another shard's namespace is left to
    that shard, never made a second time."""
    plan = _plan(
        desired, cluster, archived_workspace_ids, archived_deletion_policy, delete_absent, leave_alone
    )
    if owned is None:
        return plan
    return SyncPlan(
        create=[want for want in plan.create if want.namespace in owned],
        patch=[(have, patch) for have, patch in plan.patch if have.namespace in owned],
        delete=[(have, policy) for have, policy in plan.delete if have.namespace in owned],
        yielded=[have for have in plan.yielded if have.namespace in owned],
    )


def _plan(
    desired: Mapping[TenantKey, DesiredResource],
    cluster: Mapping[TenantKey, list[ClusterResource]],
    archived_workspace_ids: set[str],
    archived_deletion_policy: str,
    delete_absent: bool,
    leave_alone: Collection[TenantKey],
) -> SyncPlan:
    plan = SyncPlan()
    for key, want in desired.items():
        if key in leave_alone:
            continue
        present = cluster.get(key, [])
        foreign = [r for r in present if not r.ours]
        if foreign:
            plan.yielded.extend(foreign)
            continue
        # In whichever namespace it stands: it stays there.
        mine = next((r for r in present if r.name == want.name and not r.deleting), None)
        if mine is None:
            if not any(r.name == want.name for r in present):
                plan.create.append(want)
            continue  # ours is still being deleted: create again once it is gone
        patch = _spec_patch(want, mine)
        if patch:
            plan.patch.append((mine, patch))
    for key, present in cluster.items() if delete_absent else ():
        if key in desired or key in leave_alone:
            continue
        for resource in present:
            if not resource.ours or resource.deleting:
                continue
            policy: str | None = None
            if (
                resource.kind == WORKSPACE_DATABASE.kind
                and resource.sim_id in archived_workspace_ids
                and resource.spec.get("deletionPolicy", "Delete") != archived_deletion_policy
            ):
                policy = archived_deletion_policy
            plan.delete.append((resource, policy))
    # Within a user, databases first (so that they exist soonest), the budget last; the order of
    # deletes does not matter: each resource stands alone.
    plan.create.sort(key=lambda r: (r.user_id, _CREATE_ORDER[r.kind]))
    return plan
