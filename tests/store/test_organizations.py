"""Each database resource's organisation: recorded once, never changed, counted per organisation."""

from __future__ import annotations

import asyncio

from tenantdb.store import MetadataStore


async def test_the_first_organisation_recorded_stays(store: MetadataStore) -> None:
    placed = await store.place_tenant(
        uid="u1", kind="GlobalDatabase", namespace="a", name="g", organization="one"
    )
    assert placed == "one"
    # A retry, or another replica, proposing another organisation gets the recorded one back.
    again = await store.place_tenant(
        uid="u1", kind="GlobalDatabase", namespace="a", name="g", organization="two"
    )
    assert again == "one"
    assert await store.tenant_organization(uid="u1") == "one"


async def test_concurrent_placements_agree_on_one_organisation(store: MetadataStore) -> None:
    answers = await asyncio.gather(
        *(
            store.place_tenant(uid="u1", kind="GlobalDatabase", namespace="a", name="g", organization=org)
            for org in ("one", "two", "three")
        )
    )
    assert len(set(answers)) == 1


async def test_tenants_are_counted_per_organisation_and_forgotten(store: MetadataStore) -> None:
    for n, org in enumerate(("one", "one", "two")):
        await store.place_tenant(
            uid=f"u{n}", kind="WorkspaceDatabase", namespace="a", name=f"w{n}", organization=org
        )
    assert await store.tenants_per_organization() == {"one": 2, "two": 1}
    assert await store.forget_tenant_organization(uid="u0")
    assert await store.tenants_per_organization() == {"one": 1, "two": 1}
    assert await store.tenant_organization(uid="u0") is None
