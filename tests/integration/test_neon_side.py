"""The Neon side of a tenant database, tried as a careless or hostile platform user would:
status is only a hint, projects deleted behind our back, slow creates, failing deletes."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import psycopg
import psycopg.sql

from tenantdb.crypto import EncryptionKey
from tenantdb.testing.stack import LocalStack, eventually
from tests.factories import global_database, workspace_database
from tests.integration.conftest import one_by_one


def _condition(obj: dict[str, Any] | None, kind: str = "Ready") -> dict[str, Any]:
    for condition in ((obj or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return {}


async def _reasons(stack: LocalStack, name: str) -> list[str]:
    return [str(e.get("reason")) for e in await stack.events_for(name)]


def _neon_api(stack: LocalStack) -> httpx.AsyncClient:
    """Neon's API as another of the platform's tools (the console, a script) would use it."""
    assert stack.neon is not None
    headers = {"Authorization": f"Bearer {stack.neon.api_key}"}
    return httpx.AsyncClient(base_url=stack.neon.base_url, headers=headers, timeout=10)


async def _metadata_db_reachable(stack: LocalStack, allowed: bool) -> None:
    """An outage of the metadata DB: no new connections, the open ones ended."""
    async with await psycopg.AsyncConnection.connect(stack.postgres.admin_url, autocommit=True) as conn:
        name = psycopg.sql.Identifier(stack.metadata_db)
        await conn.execute(
            psycopg.sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                name, psycopg.sql.Literal(allowed)
            )
        )
        if not allowed:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (stack.metadata_db,),
            )


async def _true(value: bool) -> bool:
    return value


async def _env_var(stack: LocalStack, workspace_id: str) -> str | None:
    rows = await stack.metadata_query(
        "select variables from workspace_environment where workspace_id = %s", workspace_id
    )
    if not rows:
        return None
    value = rows[0][0]
    variables = json.loads(value) if isinstance(value, str) else dict(value)
    stored = variables.get("AGENT_DB_URL")
    return EncryptionKey(stack.encryption_key).decrypt(stored) if stored else None


async def test_a_status_pointing_at_another_tenants_project_is_never_published_nor_deleted(
    operator: LocalStack,
) -> None:
    assert operator.neon is not None
    victim = await operator.apply(workspace_database("ws-victim", "vic", "ws-victim"))
    victim = await operator.wait_ready("WorkspaceDatabase", "ws-victim")
    victim_project = victim["status"]["projectId"]
    victim_uri = await _env_var(operator, "ws-victim")
    await operator.apply(workspace_database("ws-thief", "mallory", "ws-thief"))
    thief = await operator.wait_ready("WorkspaceDatabase", "ws-thief")
    thief_project = thief["status"]["projectId"]

    # Anyone with status-patch rights points the thief's status at the victim's project.
    await operator.patch_status("WorkspaceDatabase", "ws-thief", {"projectId": victim_project})
    refused = await operator.wait_for(
        "WorkspaceDatabase",
        "ws-thief",
        lambda o: _condition(o).get("reason") == "ProjectMismatch",
        what="Ready=False ProjectMismatch",
    )
    assert _condition(refused)["status"] == "False"
    assert "ProjectMismatch" in await _reasons(operator, "ws-thief")
    await asyncio.sleep(3)  # a few resyncs: nothing of the victim's is ever published as ours
    assert await _env_var(operator, "ws-thief") != victim_uri
    secret = await operator.get("Secret", "ws-thief-connection")
    assert secret is not None
    key = EncryptionKey(operator.encryption_key)
    published = key.decrypt(base64.b64decode(secret["data"]["DATABASE_URL_ENCRYPTED"]).decode())
    assert published != victim_uri

    # Deleting the thief deletes its own project (found by name), never the victim's.
    await operator.delete("WorkspaceDatabase", "ws-thief")
    await operator.wait_gone("WorkspaceDatabase", "ws-thief", timeout=60)
    live = {p["id"] for p in operator.neon.projects()}
    assert victim_project in live
    assert thief_project not in live
    assert _condition(await operator.get("WorkspaceDatabase", "ws-victim"))["status"] == "True"


async def test_a_status_written_while_the_operator_knows_the_project_is_not_laundered(
    operator: LocalStack,
) -> None:
    # The process remembers each resource's project; a bad status must not become that memory.
    assert operator.neon is not None
    await operator.apply(global_database("user-victim", "vicky"))
    victim = await operator.wait_ready("GlobalDatabase", "user-victim")
    await operator.apply(global_database("user-mallet", "mallet"))
    await operator.wait_ready("GlobalDatabase", "user-mallet")
    await operator.patch_status("GlobalDatabase", "user-mallet", {"projectId": victim["status"]["projectId"]})
    await operator.wait_for(
        "GlobalDatabase",
        "user-mallet",
        lambda o: _condition(o).get("reason") == "ProjectMismatch",
        what="ProjectMismatch",
    )
    await operator.patch_status("GlobalDatabase", "user-mallet", {"projectId": None})
    healed = await operator.wait_ready("GlobalDatabase", "user-mallet")
    assert healed["status"]["projectId"] != victim["status"]["projectId"]
    # A status naming a project that does not exist is no reason for a second project either.
    own = healed["status"]["projectId"]
    await operator.patch_status("GlobalDatabase", "user-mallet", {"projectId": "no-such-project-12345678"})
    await operator.wait_for(
        "GlobalDatabase",
        "user-mallet",
        lambda o: bool(o and o["status"].get("projectId") == own),
        what="its own project recorded again",
    )
    assert len(operator.neon.projects()) == 2
    assert "ProjectRecreated" not in await _reasons(operator, "user-mallet")


async def test_a_project_deleted_outside_the_operator_is_recovered_with_its_data(
    operator: LocalStack,
) -> None:
    assert operator.neon is not None
    await operator.apply(workspace_database("ws-undo", "uma", "ws-undo"))
    obj = await operator.wait_ready("WorkspaceDatabase", "ws-undo")
    project_id = obj["status"]["projectId"]
    uri = await _env_var(operator, "ws-undo")
    assert uri is not None
    async with await psycopg.AsyncConnection.connect(uri, autocommit=True) as conn:
        await conn.execute("create table precious (v int); insert into precious values (7)")
    async with _neon_api(operator) as neon:
        await neon.delete(f"/projects/{project_id}")

    await eventually(
        lambda: _reasons_include(operator, "ws-undo", "ProjectRecovered"), timeout=30, what="recovery"
    )
    again = await operator.wait_ready("WorkspaceDatabase", "ws-undo")
    assert again["status"]["projectId"] == project_id
    assert [p["id"] for p in operator.neon.projects()] == [project_id]
    assert await _env_var(operator, "ws-undo") == uri
    async with await psycopg.AsyncConnection.connect(uri) as conn:
        row = await (await conn.execute("select v from precious")).fetchone()
    assert row == (7,)
    events = [e for e in await operator.events_for("ws-undo") if e.get("reason") == "ProjectRecovered"]
    assert events
    assert events[0]["type"] == "Warning"


async def _reasons_include(stack: LocalStack, name: str, reason: str) -> bool:
    return reason in await _reasons(stack, name)


async def test_recreating_a_deleted_project_is_a_choice_and_says_the_data_is_gone(stack: LocalStack) -> None:
    assert stack.neon is not None
    await stack.start_operator(on_project_deleted="recreate")
    await stack.apply(global_database("user-fresh", "fred"))
    obj = await stack.wait_ready("GlobalDatabase", "user-fresh")
    old = obj["status"]["projectId"]
    async with _neon_api(stack) as neon:
        await neon.delete(f"/projects/{old}")
    renewed = await stack.wait_for(
        "GlobalDatabase",
        "user-fresh",
        lambda o: bool(
            o and o["status"].get("projectId") not in (None, old) and _condition(o)["status"] == "True"
        ),
        what="a new project",
    )
    assert renewed is not None
    events = [e for e in await stack.events_for("user-fresh") if e.get("reason") == "ProjectRecreated"]
    assert events
    assert events[0]["type"] == "Warning"
    assert "recover" in events[0]["message"]
    await stack.stop_operator()


async def test_slow_creates_leave_one_project_per_resource_and_none_after_delete(stack: LocalStack) -> None:
    # Creates slower than the request timeout: each answer is lost, yet Neon makes the project.
    assert stack.neon is not None
    # Slower than the operator's first retry (5 s) too: a search then finds nothing yet.
    stack.neon.options.create_latency_seconds = (7.0, 8.0)
    await stack.start_operator(neon_request_timeout_seconds=0.5, create_landing_seconds=12.0)
    names = [f"ws-slow-{n}" for n in range(4)]
    for name in names:
        await stack.apply(workspace_database(name, "sam", name))
    for name in names:
        await stack.wait_ready("WorkspaceDatabase", name, timeout=90)
    assert len(stack.neon.projects()) == 4
    for name in names:
        await stack.delete("WorkspaceDatabase", name)
    for name in names:
        await stack.wait_gone("WorkspaceDatabase", name, timeout=90)
    await stack.neon.creates_landed()  # every create ever sent, answered or not
    assert stack.neon.projects() == []
    await stack.stop_operator()


async def test_a_resource_deleted_while_its_create_is_in_flight_leaves_no_project(stack: LocalStack) -> None:
    assert stack.neon is not None
    stack.neon.options.create_latency_seconds = (7.0, 7.0)  # lands after the first retry
    await stack.start_operator(neon_request_timeout_seconds=0.5, create_landing_seconds=10.0)
    await stack.apply(global_database("user-hasty", "hasty"))
    await eventually(
        lambda: _true(any(c.route == "POST /projects" for c in stack.neon.calls())),
        timeout=20,
        what="a create",
    )
    await stack.delete("GlobalDatabase", "user-hasty")
    await stack.wait_gone("GlobalDatabase", "user-hasty", timeout=60)
    await stack.neon.creates_landed()  # every create ever sent, answered or not
    assert stack.neon.projects() == []
    await stack.stop_operator()


async def test_the_fleet_sweep_deletes_a_project_whose_resource_is_gone(stack: LocalStack) -> None:
    assert stack.neon is not None
    await stack.start_operator(sweep_interval_seconds=1.0, create_landing_seconds=1.0)
    await stack.apply(global_database("user-stays", "stella"))
    kept = await stack.wait_ready("GlobalDatabase", "user-stays")
    await stack.apply(global_database("user-retained", "rita", deletionPolicy="Retain"))
    retained = await stack.wait_ready("GlobalDatabase", "user-retained")
    await stack.delete("GlobalDatabase", "user-retained")
    await stack.wait_gone("GlobalDatabase", "user-retained")
    async with _neon_api(stack) as neon:
        stray = "tenantdb-g-ghost-0f1e2d3c-0000-4000-8000-000000000001"
        foreign = "someone-elses-project"
        for name in (stray, foreign):
            answer = await neon.post("/projects", json={"project": {"name": name}})
            assert answer.status_code == 201
    await eventually(
        lambda: _true(stray not in {p["name"] for p in stack.neon.projects()}), timeout=30, what="the sweep"
    )
    names = {p["name"] for p in stack.neon.projects()}
    assert foreign in names
    assert kept["status"]["projectName"] in names
    assert retained["status"]["projectName"] in names  # kept on purpose: never swept
    await stack.stop_operator()


async def test_a_delete_neon_refuses_is_retried_then_recorded_and_counted_from_the_table(
    stack: LocalStack,
) -> None:
    assert stack.neon is not None
    await stack.start_operator(delete_give_up_seconds=4.0)
    await stack.apply(workspace_database("ws-stuck", "stu", "ws-stuck"))
    await stack.apply(workspace_database("ws-kept", "stu", "ws-kept", deletionPolicy="Retain"))
    stuck = await stack.wait_ready("WorkspaceDatabase", "ws-stuck")
    kept = await stack.wait_ready("WorkspaceDatabase", "ws-kept")
    stack.neon.options.refuse = {"DELETE /projects/{project_id}": 409}
    await stack.delete("WorkspaceDatabase", "ws-stuck")
    deleting = await stack.wait_for(
        "WorkspaceDatabase",
        "ws-stuck",
        lambda o: bool(o and o["status"].get("phase") == "Deleting"),
        what="phase Deleting",
    )
    assert _condition(deleting)["status"] == "False"
    await stack.wait_gone("WorkspaceDatabase", "ws-stuck", timeout=60)
    deletes = [c for c in stack.neon.calls() if c.route == "DELETE /projects/{project_id}"]
    assert len(deletes) >= 2  # retried, not given up at the first refusal
    await stack.delete("WorkspaceDatabase", "ws-kept")
    await stack.wait_gone("WorkspaceDatabase", "ws-kept", timeout=60)
    rows = await stack.metadata_query(
        "select neon_project_id, disposition from tenantdb_orphaned_project order by disposition"
    )
    assert rows == [(stuck["status"]["projectId"], "orphaned"), (kept["status"]["projectId"], "retained")]
    assert "ProjectOrphaned" in await _reasons(stack, "ws-stuck")
    registry = stack.metrics.registry
    assert registry.get_sample_value("tenantdb_orphaned_projects") == 1
    assert registry.get_sample_value("tenantdb_retained_projects") == 1
    # A restarted operator reads the same numbers from the table.
    await stack.stop_operator()
    stack.metrics = type(stack.metrics)()
    await stack.start_operator()
    await eventually(
        lambda: _true(stack.metrics.registry.get_sample_value("tenantdb_orphaned_projects") == 1),
        timeout=20,
        what="the orphan count after a restart",
    )
    await stack.stop_operator()


async def test_during_a_delete_whose_neon_part_is_done_ready_is_false(operator: LocalStack) -> None:
    assert operator.neon is not None
    await operator.apply(global_database("user-bye", "bea"))
    await operator.wait_ready("GlobalDatabase", "user-bye")
    await _metadata_db_reachable(operator, False)  # the metadata part then cannot finish
    await operator.delete("GlobalDatabase", "user-bye")
    obj = await operator.wait_for(
        "GlobalDatabase",
        "user-bye",
        lambda o: bool(o and _condition(o).get("reason") == "ProjectDeleted"),
        what="Ready=False ProjectDeleted",
    )
    assert obj is not None
    assert obj["status"]["phase"] == "Deleting"
    assert _condition(obj)["status"] == "False"
    assert operator.neon.projects() == []
    await asyncio.sleep(4)  # the metadata part fails and is retried: the status stays true
    still = await operator.get("GlobalDatabase", "user-bye")
    assert still is not None
    assert still["status"]["phase"] == "Deleting"
    assert _condition(still)["status"] == "False"
    await _metadata_db_reachable(operator, True)
    await operator.wait_gone("GlobalDatabase", "user-bye", timeout=60)


async def test_a_delete_costs_one_search_and_one_delete(operator: LocalStack) -> None:
    assert operator.neon is not None
    await operator.apply(global_database("user-count", "cody"))
    await operator.wait_ready("GlobalDatabase", "user-count")
    operator.neon.reset_calls()
    await operator.delete("GlobalDatabase", "user-count")
    await operator.wait_gone("GlobalDatabase", "user-count")
    project_calls = [
        c.route
        for c in one_by_one(operator.neon.calls())
        if c.route in {"GET /projects", "DELETE /projects/{project_id}", "POST /projects"}
    ]
    assert project_calls == ["GET /projects", "DELETE /projects/{project_id}"]
