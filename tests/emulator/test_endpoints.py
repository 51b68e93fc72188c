"""Compute endpoints: read them, resize them, and disable them for real."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from tenantdb.testing.neon import NeonEmulator
from tests.emulator.helpers import connect, connection_error, create_project, query_one, uri_of


async def _disable(api: httpx.AsyncClient, created: dict[str, Any], disabled: bool) -> httpx.Response:
    __tracebackhide__ = True  # ``created`` holds a password
    project_id, endpoint_id = created["project"]["id"], created["endpoints"][0]["id"]
    return await api.patch(
        f"/projects/{project_id}/endpoints/{endpoint_id}", json={"endpoint": {"disabled": disabled}}
    )


async def test_list_and_get_endpoints(api: httpx.AsyncClient) -> None:
    created = await create_project(api, name="eps")
    project_id, endpoint_id = created["project"]["id"], created["endpoints"][0]["id"]
    listed = (await api.get(f"/projects/{project_id}/endpoints")).json()["endpoints"]
    assert [e["id"] for e in listed] == [endpoint_id]
    single = (await api.get(f"/projects/{project_id}/endpoints/{endpoint_id}")).json()["endpoint"]
    assert single["type"] == "read_write"
    assert single["branch_id"] == created["branch"]["id"]
    assert (await api.get(f"/projects/{project_id}/endpoints/ep-nope-00000000")).status_code == 404
    assert (await api.get("/projects/no-such-project-1/endpoints")).status_code == 404


async def test_disabling_refuses_connections_and_ends_open_ones(api: httpx.AsyncClient) -> None:
    created = await create_project(api, name="suspended")
    held = await connect(uri_of(created), autocommit=True)
    try:
        response = await _disable(api, created, True)
        assert response.status_code == 200
        body = response.json()
        assert body["endpoint"]["disabled"] is True
        assert body["endpoint"]["current_state"] == "idle"
        assert {op["action"] for op in body["operations"]} == {"apply_config", "suspend_compute"}
        try:
            await held.execute("select 1")
            still_open = True
        except psycopg.OperationalError:
            still_open = False
        assert not still_open
    finally:
        await held.close()
    reason = await connection_error(uri_of(created))
    assert reason is not None
    assert "not currently accepting connections" in reason


async def test_enabling_lets_connections_back_in(api: httpx.AsyncClient) -> None:
    created = await create_project(api, name="resumed")
    await _disable(api, created, True)
    response = await _disable(api, created, False)
    assert response.status_code == 200
    assert response.json()["endpoint"]["disabled"] is False
    selected = await query_one(uri_of(created))
    assert selected == 1


async def test_limits_and_suspend_timeout_change(api: httpx.AsyncClient) -> None:
    created = await create_project(api, name="resize")
    project_id, endpoint_id = created["project"]["id"], created["endpoints"][0]["id"]
    response = await api.patch(
        f"/projects/{project_id}/endpoints/{endpoint_id}",
        json={
            "endpoint": {
                "autoscaling_limit_min_cu": 1,
                "autoscaling_limit_max_cu": 3,
                "suspend_timeout_seconds": 60,
            }
        },
    )
    assert response.status_code == 200
    endpoint = response.json()["endpoint"]
    assert (endpoint["autoscaling_limit_min_cu"], endpoint["autoscaling_limit_max_cu"]) == (1, 3)
    assert endpoint["suspend_timeout_seconds"] == 60
    assert [op["action"] for op in response.json()["operations"]] == ["apply_config"]


async def test_invalid_endpoint_updates_are_400(api: httpx.AsyncClient) -> None:
    created = await create_project(api, name="bad-patch")
    project_id, endpoint_id = created["project"]["id"], created["endpoints"][0]["id"]
    path = f"/projects/{project_id}/endpoints/{endpoint_id}"
    for endpoint in (
        {"autoscaling_limit_min_cu": 4},  # above the current max of 2
        {"autoscaling_limit_max_cu": 0.1},
        {"suspend_timeout_seconds": 10**7},
        {"disabled": "yes"},
    ):
        response = await api.patch(path, json={"endpoint": endpoint})
        assert response.status_code == 400, endpoint
    assert (await api.patch(path, json={"nope": {}})).status_code == 400
    unknown = await api.patch(f"/projects/{project_id}/endpoints/ep-nope-1", json={"endpoint": {}})
    assert unknown.status_code == 404


async def test_a_passed_compute_quota_stops_the_project_until_it_rises(
    api: httpx.AsyncClient, neon: NeonEmulator
) -> None:
    created = await create_project(api)
    project_id = created["project"]["id"]
    uri = uri_of(created)

    async def set_quota(seconds: int) -> None:
        response = await api.patch(
            f"/projects/{project_id}",
            json={"project": {"settings": {"quota": {"compute_time_seconds": seconds}}}},
        )
        assert response.status_code == 200, response.text

    await set_quota(1000)
    neon.set_usage(project_id, compute_unit_seconds=999)
    await neon.settled()
    assert await query_one(uri) == 1  # under the quota
    neon.set_usage(project_id, compute_unit_seconds=1000)
    await neon.settled()
    reason = await connection_error(uri)
    assert reason is not None
    assert "not currently accepting connections" in reason
    # Enabling the endpoint does not lift the quota's stop; raising the quota does; 0 is unlimited.
    endpoint_id = created["endpoints"][0]["id"]
    for disabled in (True, False):
        response = await api.patch(
            f"/projects/{project_id}/endpoints/{endpoint_id}", json={"endpoint": {"disabled": disabled}}
        )
        assert response.status_code == 200
    assert await connection_error(uri) is not None
    await set_quota(0)
    assert await query_one(uri) == 1
    await set_quota(500)
    assert await connection_error(uri) is not None
    await set_quota(2000)
    assert await query_one(uri) == 1
