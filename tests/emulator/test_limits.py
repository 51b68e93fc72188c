"""The account's project limit: 422 PROJECTS_LIMIT_EXCEEDED, even under concurrent creates."""

from __future__ import annotations

import asyncio

import httpx

from tenantdb.testing.neon import NeonEmulator
from tests.emulator.helpers import create_project


async def test_creates_beyond_the_limit_are_422(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    neon.options.max_projects = 2
    await create_project(api, name="one")
    await create_project(api, name="two")
    refused = await api.post("/projects", json={"project": {"name": "three"}})
    assert refused.status_code == 422
    assert refused.json()["code"] == "PROJECTS_LIMIT_EXCEEDED"
    assert "2" in refused.json()["message"]


async def test_deleting_frees_a_slot(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    neon.options.max_projects = 1
    first = await create_project(api, name="first")
    assert (await api.post("/projects", json={"project": {}})).status_code == 422
    await api.delete(f"/projects/{first['project']['id']}")
    await create_project(api, name="second")


async def test_concurrent_creates_never_exceed_the_limit(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    neon.options.max_projects = 3
    answers = await asyncio.gather(
        *(api.post("/projects", json={"project": {"name": f"c{n}"}}) for n in range(8))
    )
    assert sorted(response.status_code for response in answers) == [201] * 3 + [422] * 5
    assert len(neon.projects()) == 3
