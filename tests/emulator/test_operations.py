"""Operations run for ``operation_seconds``; meanwhile conflicting mutations answer 423."""

from __future__ import annotations

import asyncio

import httpx

from tenantdb.testing.neon import NeonEmulator
from tests.emulator.helpers import create_project


async def test_operations_run_then_finish(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    neon.options.operation_seconds = 1.0  # long enough to be seen running on a loaded machine
    created = await create_project(api, name="ops")
    project_id = created["project"]["id"]
    assert {op["status"] for op in created["operations"]} == {"running"}
    operation_id = created["operations"][0]["id"]
    polled = (await api.get(f"/projects/{project_id}/operations/{operation_id}")).json()["operation"]
    assert polled["status"] == "running"
    assert polled["project_id"] == project_id
    await asyncio.sleep(1.05)
    polled = (await api.get(f"/projects/{project_id}/operations/{operation_id}")).json()["operation"]
    assert polled["status"] == "finished"
    assert polled["total_duration_ms"] >= 1000


async def test_without_operation_time_operations_are_finished_at_once(api: httpx.AsyncClient) -> None:
    created = await create_project(api, name="quick")
    assert {op["status"] for op in created["operations"]} == {"finished"}


async def test_unknown_operation_is_404(api: httpx.AsyncClient) -> None:
    created = await create_project(api, name="ops404")
    missing = await api.get(
        f"/projects/{created['project']['id']}/operations/00000000-0000-4000-8000-000000000000"
    )
    assert missing.status_code == 404


async def test_mutations_answer_423_while_an_operation_runs(
    api: httpx.AsyncClient, neon: NeonEmulator
) -> None:
    neon.options.operation_seconds = 0.4
    created = await create_project(api, name="busy")
    project_id, endpoint_id = created["project"]["id"], created["endpoints"][0]["id"]
    patch = await api.patch(
        f"/projects/{project_id}/endpoints/{endpoint_id}", json={"endpoint": {"disabled": True}}
    )
    delete = await api.delete(f"/projects/{project_id}")
    update = await api.patch(f"/projects/{project_id}", json={"project": {"name": "renamed"}})
    assert [patch.status_code, delete.status_code, update.status_code] == [423, 423, 423]
    assert set(delete.json()) >= {"code", "message"}
    assert (await api.get(f"/projects/{project_id}")).status_code == 200  # reads are never locked
    await asyncio.sleep(0.45)
    assert (await api.delete(f"/projects/{project_id}")).status_code == 200


async def test_a_mutation_in_flight_locks_its_project(api: httpx.AsyncClient) -> None:
    created = await create_project(api, name="race")
    project_id, endpoint_id = created["project"]["id"], created["endpoints"][0]["id"]
    path = f"/projects/{project_id}/endpoints/{endpoint_id}"
    answers = await asyncio.gather(
        *(api.patch(path, json={"endpoint": {"disabled": n % 2 == 0}}) for n in range(6))
    )
    statuses = sorted(response.status_code for response in answers)
    assert statuses[0] == 200
    assert set(statuses) <= {200, 423}


async def test_connection_uri_endpoint(api: httpx.AsyncClient) -> None:
    created = await create_project(api, name="uri")
    project_id = created["project"]["id"]
    params = created["connection_uris"][0]["connection_parameters"]
    path = f"/projects/{project_id}/connection_uri"
    logical = await api.get(path, params={"database_name": "neondb", "role_name": "neondb_owner"})
    physical = await api.get(path, params={"database_name": params["database"], "role_name": params["role"]})
    pooled = await api.get(
        path, params={"database_name": "neondb", "role_name": "neondb_owner", "pooled": "true"}
    )
    assert [logical.status_code, physical.status_code, pooled.status_code] == [200, 200, 200]
    same = logical.json()["uri"] == physical.json()["uri"] == created["connection_uris"][0]["connection_uri"]
    assert same
    on_pooler = f"@{params['pooler_host']}:" in pooled.json()["uri"]
    assert on_pooler
    branch = await api.get(
        path,
        params={
            "database_name": "neondb",
            "role_name": "neondb_owner",
            "branch_id": created["branch"]["id"],
            "endpoint_id": created["endpoints"][0]["id"],
        },
    )
    assert branch.status_code == 200


async def test_connection_uri_errors(api: httpx.AsyncClient) -> None:
    created = await create_project(api, name="uri-errors")
    path = f"/projects/{created['project']['id']}/connection_uri"
    assert (await api.get(path, params={"database_name": "neondb"})).status_code == 400
    assert (
        await api.get(path, params={"database_name": "other", "role_name": "neondb_owner"})
    ).status_code == 404
    assert (await api.get(path, params={"database_name": "neondb", "role_name": "other"})).status_code == 404
    wrong_branch = await api.get(
        path, params={"database_name": "neondb", "role_name": "neondb_owner", "branch_id": "br-nope-1"}
    )
    assert wrong_branch.status_code == 404
    bad_flag = await api.get(
        path, params={"database_name": "neondb", "role_name": "neondb_owner", "pooled": "x"}
    )
    assert bad_flag.status_code == 400
