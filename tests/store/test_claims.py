"""tenantdb_tenant_claim: one holder per (kind, tenant id), the oldest unless one is pinned."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tenantdb.api import Scope, Tenant
from tenantdb.store import MetadataStore
from tenantdb.store.claims import Claimant

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _claimant(uid: str, age_seconds: int, name: str | None = None) -> Claimant:
    return Claimant(uid=uid, namespace="ns", name=name or uid, created_at=T0 + timedelta(seconds=age_seconds))


async def test_the_first_claimant_holds_and_others_are_told_who(store: MetadataStore) -> None:
    first, second = _claimant("a", 0), _claimant("b", 10)
    assert (await store.claim_tenant(kind="GlobalDatabase", tenant_id="u1", claimant=first)).uid == "a"
    holder = await store.claim_tenant(kind="GlobalDatabase", tenant_id="u1", claimant=second)
    assert (holder.uid, holder.namespace, holder.name) == ("a", "ns", "a")
    # Another kind or another tenant is another claim.
    assert (await store.claim_tenant(kind="WorkspaceDatabase", tenant_id="u1", claimant=second)).uid == "b"
    assert (await store.claim_tenant(kind="GlobalDatabase", tenant_id="u2", claimant=second)).uid == "b"


async def test_an_older_claimant_takes_over_only_until_the_holder_pins_its_project(
    store: MetadataStore,
) -> None:
    younger, older, oldest = _claimant("y", 10), _claimant("o", 5), _claimant("z", 0)
    await store.claim_tenant(kind="GlobalDatabase", tenant_id="u1", claimant=younger)
    assert (await store.claim_tenant(kind="GlobalDatabase", tenant_id="u1", claimant=older)).uid == "o"
    # The displaced one cannot pin: its create lost the race.
    assert not await store.record_claim_project(
        kind="GlobalDatabase", tenant_id="u1", holder_uid="y", project_id="p-y"
    )
    assert await store.record_claim_project(
        kind="GlobalDatabase", tenant_id="u1", holder_uid="o", project_id="p-o"
    )
    holder = await store.claim_tenant(kind="GlobalDatabase", tenant_id="u1", claimant=oldest)
    assert (holder.uid, holder.project_id) == ("o", "p-o")


async def test_only_the_holder_releases_and_then_the_next_claimant_gets_it(store: MetadataStore) -> None:
    holder, waiting = _claimant("h", 0), _claimant("w", 10)
    await store.claim_tenant(kind="DatabaseBudget", tenant_id="u1", claimant=holder)
    assert not await store.release_tenant_claim(kind="DatabaseBudget", tenant_id="u1", holder_uid="w")
    assert (await store.claim_tenant(kind="DatabaseBudget", tenant_id="u1", claimant=waiting)).uid == "h"
    assert await store.release_tenant_claim(kind="DatabaseBudget", tenant_id="u1", holder_uid="h")
    assert (await store.claim_tenant(kind="DatabaseBudget", tenant_id="u1", claimant=waiting)).uid == "w"
    assert (await store.get_tenant_claim(kind="DatabaseBudget", tenant_id="u1")) is not None


async def test_concurrent_claims_agree_on_one_holder(store: MetadataStore) -> None:
    claimants = [_claimant(f"c{i}", 100 - i) for i in range(8)]  # c7 is the oldest
    holders = await asyncio.gather(
        *(store.claim_tenant(kind="WorkspaceDatabase", tenant_id="w1", claimant=c) for c in claimants)
    )
    final = await store.get_tenant_claim(kind="WorkspaceDatabase", tenant_id="w1")
    assert final is not None
    assert final.uid == "c7"
    assert all(h.uid in {c.uid for c in claimants} for h in holders)


async def test_a_row_is_deleted_only_while_it_holds_the_given_project(store: MetadataStore) -> None:
    await store.upsert_database(
        Tenant(Scope.WORKSPACE, "w1"),
        project_id="p-holder",
        branch_id="b",
        encrypted_uri="x",
        database_name="neondb",
    )
    assert not await store.delete_database_of_project(Tenant(Scope.WORKSPACE, "w1"), project_id="p-other")
    assert await store.get_database(Tenant(Scope.WORKSPACE, "w1")) is not None
    assert await store.delete_database_of_project(Tenant(Scope.WORKSPACE, "w1"), project_id="p-holder")
    assert await store.get_database(Tenant(Scope.WORKSPACE, "w1")) is None


async def test_a_claimant_created_in_the_holders_second_does_not_take_the_claim_over(
    store: MetadataStore,
) -> None:
    # creationTimestamp has one-second resolution: two resources made in the same second are
    # equally old, and the uid says nothing about which came first. The recorded holder keeps it.
    holder = Claimant(uid="ffff", namespace="ns", name="first", created_at=T0)
    newcomer = Claimant(uid="0000", namespace="ns", name="second", created_at=T0)
    assert (await store.claim_tenant(kind="DatabaseBudget", tenant_id="u1", claimant=holder)).uid == "ffff"
    assert (await store.claim_tenant(kind="DatabaseBudget", tenant_id="u1", claimant=newcomer)).uid == "ffff"
