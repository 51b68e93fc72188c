"""Roles and databases of a project: listed under the names it was made with, a password
revealed, and a password reset that takes hold on the real server when its operation ends.

No assertion compares passwords by value in a way pytest would print: equality is computed
first and asserted as a boolean.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg

from tenantdb.testing.neon import NeonEmulator
from tests.emulator.helpers import connect, connection_error, create_project, query_one, uri_of


def _branch_path(created: dict[str, Any]) -> str:
    return f"/projects/{created['project']['id']}/branches/{created['branch']['id']}"


async def _operation_status(api: httpx.AsyncClient, project_id: str, operation_id: str) -> str:
    response = await api.get(f"/projects/{project_id}/operations/{operation_id}")
    status: str = response.json()["operation"]["status"]
    return status


async def _current_uri(api: httpx.AsyncClient, created: dict[str, Any]) -> str:
    __tracebackhide__ = True  # the URI holds a password
    response = await api.get(
        f"/projects/{created['project']['id']}/connection_uri",
        params={"database_name": created["databases"][0]["name"], "role_name": created["roles"][0]["name"]},
    )
    assert response.status_code == 200
    uri: str = response.json()["uri"]
    return uri


async def test_roles_databases_and_branches_carry_the_names_the_project_was_made_with(
    api: httpx.AsyncClient,
) -> None:
    created = await create_project(
        api, name="app-made", branch={"database_name": "simdb", "role_name": "sim"}
    )
    branch = _branch_path(created)
    roles = (await api.get(f"{branch}/roles")).json()["roles"]
    assert [(r["name"], "password" in r) for r in roles] == [("sim", False)]
    role = (await api.get(f"{branch}/roles/sim")).json()["role"]
    assert (role["name"], role["branch_id"]) == ("sim", created["branch"]["id"])
    databases = (await api.get(f"{branch}/databases")).json()["databases"]
    assert [(d["name"], d["owner_name"]) for d in databases] == [("simdb", "sim")]
    branches = (await api.get(f"/projects/{created['project']['id']}/branches")).json()["branches"]
    assert [(b["id"], b["default"]) for b in branches] == [(created["branch"]["id"], True)]

    assert (await api.get(f"{branch}/roles/neondb_owner")).status_code == 404
    other_branch = f"/projects/{created['project']['id']}/branches/br-none-00000000"
    assert (await api.get(f"{other_branch}/roles")).status_code == 404
    assert (await api.get(f"{other_branch}/databases")).status_code == 404
    assert (await api.get("/projects/no-such-project-1/branches")).status_code == 404


async def test_reveal_password_gives_the_password_that_connects(api: httpx.AsyncClient) -> None:
    created = await create_project(api, name="revealed")
    response = await api.get(f"{_branch_path(created)}/roles/neondb_owner/reveal_password")
    assert response.status_code == 200
    revealed = (
        response.json()["password"] == created["connection_uris"][0]["connection_parameters"]["password"]
    )
    assert revealed
    assert (await api.get(f"{_branch_path(created)}/roles/nobody/reveal_password")).status_code == 404


async def test_a_project_that_stores_no_passwords_cannot_reveal_one(api: httpx.AsyncClient) -> None:
    created = await create_project(api, name="unstored", store_passwords=False)
    assert created["project"]["store_passwords"] is False
    response = await api.get(f"{_branch_path(created)}/roles/neondb_owner/reveal_password")
    assert response.status_code == 412
    assert set(response.json()) >= {"code", "message"}


async def test_a_reset_password_takes_hold_when_its_operation_finishes(
    api: httpx.AsyncClient, neon: NeonEmulator
) -> None:
    created = await create_project(api, name="rotated")
    project_id, old_uri = created["project"]["id"], uri_of(created)
    held = await connect(old_uri, autocommit=True)
    try:
        neon.options.operation_seconds = 1.0
        response = await api.post(f"{_branch_path(created)}/roles/neondb_owner/reset_password")
        assert response.status_code == 200
        body = response.json()
        old_password = created["connection_uris"][0]["connection_parameters"]["password"]
        changed = body["role"]["password"] != old_password
        assert changed
        assert body["role"]["name"] == "neondb_owner"
        ((operation_id, action, status),) = [(o["id"], o["action"], o["status"]) for o in body["operations"]]
        assert (action, status) == ("apply_config", "running")

        # Until the operation finishes the old password works; Neon already hands out the new one.
        assert await connection_error(old_uri) is None
        new_uri = await _current_uri(api, created)
        answers_new = new_uri != old_uri
        assert answers_new, "connection_uri still answers the old password"
        assert (
            await api.post(f"{_branch_path(created)}/roles/neondb_owner/reset_password")
        ).status_code == 423

        for _ in range(50):  # 1 s of operation, polled for at most 5 s
            if await _operation_status(api, project_id, operation_id) != "running":
                break
            await asyncio.sleep(0.1)
        assert await _operation_status(api, project_id, operation_id) == "finished"
        reason = await connection_error(old_uri)
        assert reason is not None
        assert "password authentication failed" in reason
        assert await query_one(new_uri) == 1
        try:
            await held.execute("select 1")
            still_open = True
        except psycopg.OperationalError:
            still_open = False
        assert not still_open, "a connection opened with the old password survived the reset"
    finally:
        await held.close()
    revealed = (await api.get(f"{_branch_path(created)}/roles/neondb_owner/reveal_password")).json()
    reveals_new = revealed["password"] == body["role"]["password"]
    assert reveals_new, "reveal_password answers an old password"


async def test_without_operation_time_a_reset_holds_at_once(api: httpx.AsyncClient) -> None:
    created = await create_project(api, name="instant", store_passwords=False)
    body = (await api.post(f"{_branch_path(created)}/roles/neondb_owner/reset_password")).json()
    assert [o["status"] for o in body["operations"]] == ["finished"]
    assert await connection_error(uri_of(created)) is not None
    assert await query_one(await _current_uri(api, created)) == 1


async def test_the_new_routes_are_counted_by_template_and_rate_limited(
    api: httpx.AsyncClient, neon: NeonEmulator
) -> None:
    created = await create_project(api, name="counted")
    branch = _branch_path(created)
    neon.reset_calls()
    neon.options.route_rate_limit_per_second = 1
    statuses = [(await api.get(f"{branch}/roles")).status_code for _ in range(2)]
    assert statuses == [200, 429]
    await api.get(f"{branch}/databases")
    await api.post(f"{branch}/roles/neondb_owner/reset_password")
    template = "/projects/{project_id}/branches/{branch_id}"
    assert [(call.route, call.status) for call in neon.calls()] == [
        (f"GET {template}/roles", 200),
        (f"GET {template}/roles", 429),
        (f"GET {template}/databases", 200),
        (f"POST {template}/roles/{{role_name}}/reset_password", 200),
    ]
    neon.options.route_rate_limit_per_second = None
    neon.options.refuse = {f"GET {template}/roles/{{role_name}}/reveal_password": 503}
    assert (await api.get(f"{branch}/roles/neondb_owner/reveal_password")).status_code == 503


async def test_a_renamed_project_is_found_by_its_new_name(api: httpx.AsyncClient) -> None:
    created = await create_project(api, name="sim-made-1")
    project_id = created["project"]["id"]
    response = await api.patch(f"/projects/{project_id}", json={"project": {"name": "tenantdb-ws-1"}})
    assert response.json()["project"]["name"] == "tenantdb-ws-1"
    found = (await api.get("/projects", params={"search": "tenantdb-ws-1"})).json()["projects"]
    assert [p["id"] for p in found] == [project_id]
    assert (await api.get("/projects", params={"search": "sim-made"})).json()["projects"] == []
