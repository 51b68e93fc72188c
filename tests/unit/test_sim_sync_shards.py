"""The Sim sync over operator shards: tenants spread over the shard namespaces by a stable hash
of the user id, a user's resources together, each shard writing only in its own namespaces, and
nothing ever moved or made twice when the list of namespaces changes."""

from __future__ import annotations

import datetime
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest

from tenantdb.config import Settings, Tier
from tenantdb.reconcile.sim_sync import SimSync
from tenantdb.reconcile.sim_sync.desired import desired_resources
from tenantdb.reconcile.sim_sync.loop import owned_namespaces
from tenantdb.reconcile.sim_sync.names import shard_namespace
from tenantdb.store import SimSnapshot, SimWorkspace
from tests.unit.test_sim_sync_loop import Tables

SHARDS = ["tenants-0", "tenants-1", "tenants-2", "tenants-3"]
ADA = "0b6c9d3e-1f2a-4b5c-8d7e-9f0a1b2c3d4e"
BOB = "7a8b9c0d-1e2f-4a3b-9c4d-5e6f7a8b9c0d"


def test_the_namespace_is_a_stable_hash_of_the_user_id() -> None:
    # Pinned: the same answer in every process, shard and release (Python's hash() would not be).
    assert shard_namespace(ADA, SHARDS) == shard_namespace(ADA, list(SHARDS)) == "tenants-2"
    assert shard_namespace(BOB, SHARDS) == "tenants-1"
    assert shard_namespace(ADA, ["default"]) == "default"
    with pytest.raises(ValueError, match="no namespace"):
        shard_namespace(ADA, [])


def test_tenants_spread_evenly_over_the_shards() -> None:
    users = [str(uuid.UUID(int=n * 2654435761 + 12345, version=4)) for n in range(40_000)]
    counts = Counter(shard_namespace(user, SHARDS) for user in users)
    assert set(counts) == set(SHARDS)
    assert max(counts.values()) - min(counts.values()) < 0.05 * 10_000


def test_a_users_budget_databases_and_the_workspaces_they_pay_for_share_a_namespace() -> None:
    owned = SimWorkspace(id="w-own", owner_id=ADA, organization_id=None)
    paid_by_bob = SimWorkspace(
        id="w-bob-pays", owner_id=ADA, organization_id=None, billed_account_user_id=BOB
    )
    desired = desired_resources(
        SimSnapshot(user_ids={ADA, BOB}, workspaces=[owned, paid_by_bob]),
        plan_tiers={},
        default_tier=Tier.FREE,
        namespaces=SHARDS,
    )
    namespaces = {key: want.namespace for key, want in desired.items()}
    ada, bob = shard_namespace(ADA, SHARDS), shard_namespace(BOB, SHARDS)
    assert ada != bob  # the two users were picked to land apart
    assert namespaces[("GlobalDatabase", ADA)] == namespaces[("DatabaseBudget", ADA)] == ada
    assert namespaces[("WorkspaceDatabase", "w-own")] == ada
    # Counted against Bob's budget, so made where Bob's budget is (and the shard enforcing it).
    assert namespaces[("WorkspaceDatabase", "w-bob-pays")] == bob


class NamespacedResources:
    """The API server's custom objects, by namespace."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.writes: list[tuple[str, str]] = []  # (verb, namespace)

    async def list(self, *, plural: str, namespace: str) -> list[dict[str, Any]]:
        return [o for (p, ns, _), o in self.objects.items() if (p, ns) == (plural, namespace)]

    async def get(self, *, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((plural, namespace, name))

    async def create(self, *, plural: str, namespace: str, body: Mapping[str, Any]) -> bool:
        self.writes.append(("create", namespace))
        key = (plural, namespace, body["metadata"]["name"])
        if key in self.objects:
            return False
        self.objects[key] = {**body, "metadata": {**body["metadata"], "namespace": namespace}}
        return True

    async def patch(self, *, plural: str, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        self.writes.append(("patch", namespace))
        self.objects[(plural, namespace, name)]["spec"].update(patch["spec"])

    async def delete(self, *, plural: str, namespace: str, name: str) -> None:
        self.writes.append(("delete", namespace))
        self.objects.pop((plural, namespace, name), None)


async def _no_events(kind: str, name: str, reason: str, message: str, *, namespace: str = "") -> None:
    return None


def _shard(
    resources: NamespacedResources, tables: Tables, *, watching: list[str], spread: list[str]
) -> SimSync:
    settings = Settings(
        encryption_key="ab" * 32,
        sim_sync=True,
        namespaces=",".join(watching),
        sim_namespaces=",".join(spread),
    )
    return SimSync(settings=settings, tables=tables, resources=resources, post_event=_no_events)


def _where(resources: NamespacedResources) -> set[tuple[str, str]]:
    """(namespace, name) of every object."""
    return {(ns, name) for (_, ns, name) in resources.objects}


async def test_each_shard_makes_and_deletes_only_its_own_tenants() -> None:
    tables, resources = Tables(), NamespacedResources()
    tables.users = {ADA: datetime.datetime(2026, 1, 1), BOB: datetime.datetime(2026, 1, 2)}
    ada, bob = shard_namespace(ADA, SHARDS), shard_namespace(BOB, SHARDS)
    ada_shard = _shard(resources, tables, watching=[ada], spread=SHARDS)
    await ada_shard.run_once()
    # Bob's shard is down: Ada's shard made Ada's resources and nothing of Bob's.
    assert _where(resources) == {(ada, f"user-{ADA}")}
    assert len(resources.objects) == 2  # her GlobalDatabase and DatabaseBudget
    bob_shard = _shard(resources, tables, watching=[bob], spread=SHARDS)
    await bob_shard.run_once()
    assert _where(resources) == {(ada, f"user-{ADA}"), (bob, f"user-{BOB}")}
    # Bob leaves Sim: only his shard deletes, and only in his namespace.
    del tables.users[BOB]
    resources.writes.clear()
    ada_result = await _shard(resources, tables, watching=[ada], spread=SHARDS).run_once()
    assert ada_result is not None
    assert ada_result.deleted == 0
    await _shard(resources, tables, watching=[bob], spread=SHARDS).run_once()
    assert resources.writes == [("delete", bob), ("delete", bob)]
    assert _where(resources) == {(ada, f"user-{ADA}")}


async def test_growing_the_shard_list_moves_no_tenant() -> None:
    tables, resources = Tables(), NamespacedResources()
    tables.users = {ADA: datetime.datetime(2026, 1, 1), BOB: datetime.datetime(2026, 1, 2)}
    # Before sharding: everyone in the one namespace.
    await _shard(resources, tables, watching=[], spread=["default"]).run_once()
    assert _where(resources) == {("default", f"user-{ADA}"), ("default", f"user-{BOB}")}
    # Sharded, the old namespace kept in the list: the tenants stay, none is made twice.
    resources.writes.clear()
    spread = ["default", *SHARDS]
    for namespace in spread:
        await _shard(resources, tables, watching=[namespace], spread=spread).run_once()
    assert resources.writes == []
    assert _where(resources) == {("default", f"user-{ADA}"), ("default", f"user-{BOB}")}


def test_a_shard_owns_the_sim_namespaces_it_watches() -> None:
    def owned(watching: str) -> list[str]:
        return owned_namespaces(
            Settings(encryption_key="ab" * 32, namespaces=watching, sim_namespaces=",".join(SHARDS))
        )

    assert owned("") == SHARDS  # cluster-wide: all of them
    assert owned("tenants-0,tenants-2") == ["tenants-0", "tenants-2"]
    assert owned("tenants-*,!tenants-3") == ["tenants-0", "tenants-1", "tenants-2"]
    assert owned("elsewhere") == []
    # Unsharded: today's one namespace.
    assert owned_namespaces(Settings(encryption_key="ab" * 32)) == ["default"]
