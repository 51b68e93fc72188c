"""Deleted projects stay recoverable, creates finish without their client, and Neon's limits hold."""

from __future__ import annotations

import asyncio

import httpx

from tenantdb.testing.neon import NeonEmulator
from tests.emulator.helpers import ConnectFailed, connect, create_project, query_one, uri_of


async def test_a_deleted_project_refuses_connections_and_recover_brings_its_data_back(
    api: httpx.AsyncClient, neon: NeonEmulator
) -> None:
    created = await create_project(api, name="recover-me")
    project_id = created["project"]["id"]
    uri = uri_of(created)
    async with await connect(uri, autocommit=True) as conn:
        await conn.execute("create table kept (v int)")
        await conn.execute("insert into kept values (42)")
    assert (await api.delete(f"/projects/{project_id}")).status_code == 200
    try:
        await connect(uri)
        refused = False
    except ConnectFailed:
        refused = True
    assert refused
    assert (await api.get(f"/projects/{project_id}")).status_code == 404

    recovered = await api.post(f"/projects/{project_id}/recover")
    assert recovered.status_code == 200
    body = recovered.json()
    assert body["project"]["id"] == project_id
    assert [b["id"] for b in body["branches"]] == [created["branch"]["id"]]
    assert (await api.get(f"/projects/{project_id}")).status_code == 200
    assert [p["id"] for p in neon.projects()] == [project_id]
    assert neon.deleted_projects() == []
    value = await query_one(uri, "select v from kept")
    assert value == 42


async def test_recover_refuses_live_unknown_and_expired_projects(
    api: httpx.AsyncClient, neon: NeonEmulator
) -> None:
    live = await create_project(api, name="alive")
    assert (await api.post(f"/projects/{live['project']['id']}/recover")).status_code == 400
    assert (await api.post("/projects/no-such-project-1/recover")).status_code == 404
    neon.options.recovery_window_seconds = 0.2
    doomed = await create_project(api, name="expired")
    doomed_id = doomed["project"]["id"]
    names = neon.physical_names(doomed_id)
    await api.delete(f"/projects/{doomed_id}")
    await asyncio.sleep(0.3)
    listed = (await api.get("/projects", params={"recoverable": "true"})).json()["projects"]
    assert listed == []
    assert (await api.post(f"/projects/{doomed_id}/recover")).status_code == 404
    assert await neon.backing_exists(doomed_id) == (False, False), names


async def test_suspend_timeouts_below_neons_minimum_of_60_seconds_are_refused(api: httpx.AsyncClient) -> None:
    for value in (1, 30, 59):
        response = await api.post(
            "/projects", json={"project": {"default_endpoint_settings": {"suspend_timeout_seconds": value}}}
        )
        assert response.status_code == 400, value
        assert "60" in response.json()["message"]
    created = await create_project(api, default_endpoint_settings={"suspend_timeout_seconds": 60})
    project_id, endpoint_id = created["project"]["id"], created["endpoints"][0]["id"]
    for value in (0, -1, 60):
        await create_project(api, default_endpoint_settings={"suspend_timeout_seconds": value})
    patched = await api.patch(
        f"/projects/{project_id}/endpoints/{endpoint_id}", json={"endpoint": {"suspend_timeout_seconds": 5}}
    )
    assert patched.status_code == 400


async def test_a_create_whose_client_gave_up_is_still_carried_out(neon: NeonEmulator) -> None:
    # Neon, behind its proxy, finishes a create whatever its client does meanwhile.
    neon.options.create_latency_seconds = (0.6, 0.6)
    headers = {"Authorization": f"Bearer {neon.api_key}"}
    async with httpx.AsyncClient(base_url=neon.base_url, headers=headers, timeout=0.2) as impatient:
        try:
            await impatient.post("/projects", json={"project": {"name": "finished-anyway"}})
            timed_out = False
        except httpx.TimeoutException:
            timed_out = True
    assert timed_out
    await asyncio.sleep(1.5)
    assert [p["name"] for p in neon.projects()] == ["finished-anyway"]
