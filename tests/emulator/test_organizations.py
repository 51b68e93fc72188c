"""Several organisations: separate keys, budgets and project limits; transfers between them."""

from __future__ import annotations

import httpx

from tenantdb.testing.neon import NeonEmulator
from tests.emulator.helpers import api_client, connect, create_project, uri_of


async def test_each_key_creates_and_lists_in_its_own_organisation(
    api: httpx.AsyncClient, neon: NeonEmulator
) -> None:
    second = neon.add_organization("org-second")
    mine = await create_project(api, name="first-org")
    async with api_client(neon, api_key=second.api_key) as other:
        theirs = await create_project(other, name="second-org")
        assert theirs["project"]["org_id"] == "org-second"
        listed = (await other.get("/projects")).json()["projects"]
        assert [p["id"] for p in listed] == [theirs["project"]["id"]]
        # Another organisation's project is not there for this key, nor its org_id.
        assert (await other.get(f"/projects/{mine['project']['id']}")).status_code == 404
        assert (await other.get("/projects", params={"org_id": neon.org_id})).status_code == 404
    assert [p["id"] for p in (await api.get("/projects")).json()["projects"]] == [mine["project"]["id"]]


async def test_project_limits_are_per_organisation(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    neon.options.max_projects = 1
    second = neon.add_organization("org-second", max_projects=2)
    await create_project(api, name="one")
    assert (await api.post("/projects", json={"project": {}})).status_code == 422
    async with api_client(neon, api_key=second.api_key) as other:
        await create_project(other, name="two")
        await create_project(other, name="three")
        refused = await other.post("/projects", json={"project": {}})
        assert refused.status_code == 422
        assert refused.json()["code"] == "PROJECTS_LIMIT_EXCEEDED"


async def test_rate_limits_are_per_key(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    neon.options.rate_limit_per_minute = 2
    second = neon.add_organization("org-second", rate_limit_per_minute=3)
    assert [(await api.get("/projects")).status_code for _ in range(3)] == [200, 200, 429]
    async with api_client(neon, api_key=second.api_key) as other:
        # The first key's spent budget does not touch the second's.
        assert [(await other.get("/projects")).status_code for _ in range(4)] == [200, 200, 200, 429]


async def test_a_revoked_key_answers_401_and_the_others_still_work(
    api: httpx.AsyncClient, neon: NeonEmulator
) -> None:
    second = neon.add_organization("org-second")
    second.revoked = True
    async with api_client(neon, api_key=second.api_key) as other:
        assert (await other.get("/users/me/organizations")).status_code == 401
    assert (await api.get("/users/me/organizations")).status_code == 200


async def test_a_transferred_project_keeps_its_id_and_data(
    api: httpx.AsyncClient, neon: NeonEmulator
) -> None:
    second = neon.add_organization("org-second")
    neon.options.account_key = "account-key"
    created = await create_project(api, name="moving")
    project_id = created["project"]["id"]
    async with api_client(neon, api_key="account-key") as account:
        moved = await account.post(
            f"/organizations/{neon.org_id}/projects/transfer",
            json={"destination_org_id": "org-second", "project_ids": [project_id]},
        )
        assert moved.status_code == 200
        # Moving it again from the first organisation: it is no longer there.
        again = await account.post(
            f"/organizations/{neon.org_id}/projects/transfer",
            json={"destination_org_id": "org-second", "project_ids": [project_id]},
        )
        assert again.status_code == 404
    async with api_client(neon, api_key=second.api_key) as other:
        assert (await other.get(f"/projects/{project_id}")).json()["project"]["org_id"] == "org-second"
    connection = await connect(uri_of(created))
    await connection.close()
