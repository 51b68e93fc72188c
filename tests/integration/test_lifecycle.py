"""The operator end to end: kopf for real against the Kubernetes emulator, the Neon emulator
and a real PostgreSQL server. Each test is one thing a platform would notice."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import threading
from typing import Any

import httpx
import psycopg
import pytest

from tenantdb.crypto import EncryptionKey
from tenantdb.testing.stack import LocalStack, eventually
from tests.factories import global_database, workspace_database
from tests.integration.conftest import one_by_one


def _env_vars(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    if not rows:
        return {}
    value = rows[0][0]
    return json.loads(value) if isinstance(value, str) else dict(value)


async def _connects(uri: str) -> bool:
    try:
        async with await psycopg.AsyncConnection.connect(uri, connect_timeout=5) as conn:
            cursor = await conn.execute("select 1")
            return (await cursor.fetchone()) == (1,)
    except psycopg.OperationalError:
        return False


async def test_global_database_is_provisioned_with_secret_rows_and_env_var(operator: LocalStack) -> None:
    await operator.apply(global_database("user-alice", "alice"))
    obj = await operator.wait_ready("GlobalDatabase", "user-alice")
    status = obj["status"]
    assert status["phase"] == "Ready"
    assert status["projectId"]
    assert status["branchId"]
    assert status["endpointId"]
    assert status["host"]
    assert status["databaseName"] == "neondb"
    assert status["roleName"] == "neondb_owner"
    assert status["secretName"] == "user-alice-connection"
    assert status["observedGeneration"] == 1
    types = {c["type"]: c["status"] for c in status["conditions"]}
    assert types == {"Ready": "True", "Synced": "True"}
    # A new resource, never tried: no search for an earlier project, one create, its polls.
    assert operator.neon is not None
    routes = [c.route for c in one_by_one(operator.neon.calls())]
    assert "GET /projects" not in routes
    assert routes.count("POST /projects") == 1

    key = EncryptionKey(operator.encryption_key)
    secret = await operator.get("Secret", "user-alice-connection")
    assert secret is not None
    assert secret["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    import base64

    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert set(data) == {"DATABASE_URL_ENCRYPTED"}  # no plaintext unless asked for
    uri = key.decrypt(data["DATABASE_URL_ENCRYPTED"])
    assert await _connects(uri)

    rows = await operator.metadata_query(
        "select neon_project_id, neon_branch_id, neon_connection_uri, database_name "
        "from user_global_database where user_id = %s",
        "alice",
    )
    assert len(rows) == 1
    assert rows[0][0] == status["projectId"]
    assert rows[0][1] == status["branchId"]
    assert key.decrypt(rows[0][2]) == uri
    env = _env_vars(
        await operator.metadata_query("select variables from environment where user_id = %s", "alice")
    )
    assert key.decrypt(env["GLOBAL_DB_URL"]) == uri

    assert operator.neon is not None
    assert [p["id"] for p in operator.neon.projects()] == [status["projectId"]]
    reasons = {e["reason"] for e in await operator.events_for("user-alice")}
    assert {"ProjectCreated", "Ready"} <= reasons


async def test_workspace_secret_with_plaintext_keys_works_like_envfrom(operator: LocalStack) -> None:
    await operator.apply(
        workspace_database("ws-1", "bob", "ws-1", connectionSecret={"includePlaintext": True})
    )
    await operator.wait_ready("WorkspaceDatabase", "ws-1")
    secret = await operator.get("Secret", "ws-1-connection")
    assert secret is not None
    import base64

    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert {
        "DATABASE_URL_ENCRYPTED",
        "DATABASE_URL",
        "DATABASE_URL_POOLED",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGPASSWORD",
        "PGDATABASE",
        "PGSSLMODE",
    } <= set(data)
    # What `envFrom` + `psql` would do: libpq keywords from the PG* keys.
    async with await psycopg.AsyncConnection.connect(
        host=data["PGHOST"],
        port=data["PGPORT"],
        user=data["PGUSER"],
        password=data["PGPASSWORD"],
        dbname=data["PGDATABASE"],
        sslmode=data["PGSSLMODE"],
    ) as conn:
        assert await (await conn.execute("select 1")).fetchone() == (1,)
    assert await _connects(data["DATABASE_URL"])
    assert await _connects(data["DATABASE_URL_POOLED"])
    env = _env_vars(
        await operator.metadata_query(
            "select variables from workspace_environment where workspace_id = %s", "ws-1"
        )
    )
    assert EncryptionKey(operator.encryption_key).decrypt(env["AGENT_DB_URL"]) == data["DATABASE_URL"]


async def test_drift_is_healed_without_a_restart(operator: LocalStack) -> None:
    await operator.apply(global_database("user-carol", "carol", autoscaling={"minCu": 0.25, "maxCu": 1}))
    obj = await operator.wait_ready("GlobalDatabase", "user-carol")
    project_id, endpoint_id = obj["status"]["projectId"], obj["status"]["endpointId"]
    assert operator.neon is not None

    # Someone deletes the Secret and our env var, and changes the compute size on Neon.
    await operator.delete("Secret", "user-carol-connection")
    await operator.metadata_query(
        "update environment set variables = '{}'::json where user_id = %s returning user_id", "carol"
    )
    async with httpx.AsyncClient(
        base_url=operator.neon.base_url, headers={"Authorization": f"Bearer {operator.neon.api_key}"}
    ) as neon:
        response = await neon.patch(
            f"/projects/{project_id}/endpoints/{endpoint_id}",
            json={"endpoint": {"autoscaling_limit_max_cu": 4}},
        )
        assert response.status_code == 200

        async def healed() -> bool:
            secret = await operator.get("Secret", "user-carol-connection")
            env = _env_vars(
                await operator.metadata_query("select variables from environment where user_id = %s", "carol")
            )
            endpoint = (await neon.get(f"/projects/{project_id}/endpoints/{endpoint_id}")).json()["endpoint"]
            return secret is not None and "GLOBAL_DB_URL" in env and endpoint["autoscaling_limit_max_cu"] == 1

        await eventually(healed, timeout=30, what="Secret, env var and compute size put back")

        # A spec change is patched onto Neon too.
        await operator.patch(
            "GlobalDatabase", "user-carol", {"spec": {"autoscaling": {"minCu": 0.5, "maxCu": 2}}}
        )

        async def patched() -> bool:
            endpoint = (await neon.get(f"/projects/{project_id}/endpoints/{endpoint_id}")).json()["endpoint"]
            return bool(
                endpoint["autoscaling_limit_min_cu"] == 0.5 and endpoint["autoscaling_limit_max_cu"] == 2
            )

        await eventually(patched, timeout=30, what="spec change applied on Neon")
    obj = await operator.wait_for(
        "GlobalDatabase",
        "user-carol",
        lambda o: bool(o and o["status"].get("observedGeneration") == 2),
        what="observedGeneration 2",
    )
    assert obj is not None
    assert [p["id"] for p in operator.neon.projects()] == [project_id]


async def test_delete_removes_project_rows_and_only_our_env_var(operator: LocalStack) -> None:
    await operator.apply(global_database("user-dave", "dave"))
    await operator.apply(workspace_database("ws-dave", "dave", "ws-dave"))
    ws = await operator.wait_ready("WorkspaceDatabase", "ws-dave")
    await operator.wait_ready("GlobalDatabase", "user-dave")
    key = EncryptionKey(operator.encryption_key)
    # Sim has its own variables in the same row: they must survive.
    await operator.metadata_query(
        "update workspace_environment set variables = "
        "(variables::jsonb || jsonb_build_object('OPENAI_KEY', %s::text))::json "
        "where workspace_id = %s returning workspace_id",
        key.encrypt("sk-other"),
        "ws-dave",
    )
    secret = await operator.get("Secret", "ws-dave-connection")
    assert secret is not None
    import base64

    uri = key.decrypt(base64.b64decode(secret["data"]["DATABASE_URL_ENCRYPTED"]).decode())
    project_id = ws["status"]["projectId"]

    await operator.delete("WorkspaceDatabase", "ws-dave")
    await operator.wait_gone("WorkspaceDatabase", "ws-dave")
    assert operator.neon is not None
    assert project_id not in {p["id"] for p in operator.neon.projects()}
    assert not await _connects(uri)
    assert (
        await operator.metadata_query("select 1 from workspace_database where workspace_id = %s", "ws-dave")
        == []
    )
    env = _env_vars(
        await operator.metadata_query(
            "select variables from workspace_environment where workspace_id = %s", "ws-dave"
        )
    )
    assert set(env) == {"OPENAI_KEY"}
    assert key.decrypt(env["OPENAI_KEY"]) == "sk-other"
    # The Secret goes with its owner (ownerReference garbage collection).
    assert await operator.get("Secret", "ws-dave-connection") is None
    # The user's global database is untouched.
    assert (await operator.get("GlobalDatabase", "user-dave")) is not None
    assert len(operator.neon.projects()) == 1
    # The decision, for an auditor long after the Events expired.
    assert await operator.metadata_query(
        "select scope, action, decided_by, project_id, resource from tenantdb_decision_log "
        "where tenant_id = %s",
        "ws-dave",
    ) == [("workspace", "delete", "finalizer", project_id, "WorkspaceDatabase default/ws-dave")]


async def test_retain_policy_keeps_the_project_but_removes_rows(operator: LocalStack) -> None:
    await operator.apply(workspace_database("ws-keep", "erin", "ws-keep", deletionPolicy="Retain"))
    obj = await operator.wait_ready("WorkspaceDatabase", "ws-keep")
    await operator.delete("WorkspaceDatabase", "ws-keep")
    await operator.wait_gone("WorkspaceDatabase", "ws-keep")
    assert operator.neon is not None
    assert obj["status"]["projectId"] in {p["id"] for p in operator.neon.projects()}
    assert (
        await operator.metadata_query("select 1 from workspace_database where workspace_id = %s", "ws-keep")
        == []
    )
    assert await operator.metadata_query(
        "select action, project_id from tenantdb_decision_log where tenant_id = %s", "ws-keep"
    ) == [("retain", obj["status"]["projectId"])]


class DropCreateAnswers(httpx.AsyncBaseTransport):
    """Forwards every request; for POST /projects, Neon does the work but the answer is lost."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.dropped = 0
        self.enabled = True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.enabled and request.method == "POST" and request.url.path.endswith("/projects"):
            await response.aread()
            self.dropped += 1
            raise httpx.ReadError("connection dropped after the request was processed", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_lost_create_answer_and_a_restart_still_make_exactly_one_project(stack: LocalStack) -> None:
    transport = DropCreateAnswers()
    await stack.start_operator()
    assert stack.runtime is not None
    await stack.stop_operator()
    # Run with a transport that loses the answer of every create: Neon creates, we never learn.
    from tenantdb.handlers.main import build_runtime, operate

    runtime = build_runtime(stack.settings(), kube_url=stack.kube_url, neon_transport=transport)
    stop = asyncio.Event()
    task = asyncio.create_task(operate(runtime, stop_flag=stop, liveness=False))
    await stack.apply(workspace_database("ws-crash", "frank", "ws-crash"))
    assert stack.neon is not None
    await eventually(
        lambda: _async_true(transport.dropped >= 1), timeout=30, what="a create whose answer was lost"
    )
    # The operator is killed right then (no chance to record anything)...
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await runtime.close()
    assert len(stack.neon.projects()) == 1
    # ...and a fresh operator adopts the project instead of creating a second one.
    await stack.start_operator()
    obj = await stack.wait_ready("WorkspaceDatabase", "ws-crash")
    assert [p["id"] for p in stack.neon.projects()] == [obj["status"]["projectId"]]
    reasons = {e["reason"] for e in await stack.events_for("ws-crash")}
    assert "Adopted" in reasons
    secret = await stack.get("Secret", "ws-crash-connection")
    assert secret is not None


async def _async_true(value: bool) -> bool:
    return value


async def test_a_wiped_status_is_written_again_without_a_search_or_an_adoption(operator: LocalStack) -> None:
    # What a body from before the status write looks like to a reconcile (the fleet observation right
    # after a create), or a restore from a backup without status: the running operator knows
    # its project, so it neither searches Neon for it nor reports adopting its own project.
    assert operator.neon is not None
    await operator.apply(global_database("user-jo", "jo"))
    ready = await operator.wait_ready("GlobalDatabase", "user-jo")
    project_id = ready["status"]["projectId"]
    operator.neon.reset_calls()
    await operator.patch_status("GlobalDatabase", "user-jo", {"projectId": None, "projectName": None})

    restored = await operator.wait_for(
        "GlobalDatabase",
        "user-jo",
        lambda o: bool(o and o["status"].get("projectName")),
        what="the project recorded again",
    )
    assert restored is not None
    assert restored["status"]["projectId"] == project_id
    assert [p["id"] for p in operator.neon.projects()] == [project_id]
    assert not [c for c in one_by_one(operator.neon.calls()) if c.route == "GET /projects"]
    assert not [c for c in operator.neon.calls() if c.route == "POST /projects"]
    reasons = [e.get("reason") for e in await operator.events_for("user-jo")]
    assert "Adopted" not in reasons


async def test_operator_restarted_mid_create_makes_one_project(stack: LocalStack) -> None:
    assert stack.neon is not None
    stack.neon.options.create_latency_seconds = (1.0, 1.0)
    await stack.start_operator()
    await stack.apply(global_database("user-gina", "gina"))
    await eventually(
        lambda: _async_true(any(c.route == "POST /projects" for c in stack.neon.calls())),
        timeout=20,
        what="the create request",
    )
    await stack.stop_operator(abruptly=True)
    await asyncio.sleep(1.5)  # Neon finishes the create the operator no longer waits for
    await stack.start_operator()
    obj = await stack.wait_ready("GlobalDatabase", "user-gina")
    assert [p["id"] for p in stack.neon.projects()] == [obj["status"]["projectId"]]


async def test_an_operator_killed_mid_flight_leaves_no_thread_behind(stack: LocalStack) -> None:
    # A worker left waiting keeps the whole process from exiting (the interpreter joins
    # executor workers at exit): a test run, or the demo, that would never end.
    await asyncio.to_thread(lambda: None)  # this loop's own worker, reused by the stop below
    before = set(threading.enumerate())
    await stack.start_operator()
    await stack.apply(global_database("user-ivan", "ivan"))
    await stack.stop_operator(abruptly=True)

    def leftovers() -> list[str]:
        gc.collect()  # an executor nobody holds lets its idle workers go when collected
        return sorted(t.name for t in set(threading.enumerate()) - before if t.is_alive())

    try:
        await eventually(
            lambda: _async_true(not leftovers()), timeout=10, what="the operator's threads ended"
        )
    except TimeoutError:
        raise AssertionError(f"threads left: {leftovers()}") from None


async def test_invalid_spec_gets_a_condition_with_a_clear_reason(operator: LocalStack) -> None:
    # A real API server rejects this through the CRD schema (tests/unit/test_crds.py); the
    # emulator does not validate, so the operator's own guard answers.
    await operator.apply(global_database("user-bad", "not a valid id!"))
    obj = await operator.wait_for(
        "GlobalDatabase",
        "user-bad",
        lambda o: bool(o and o.get("status", {}).get("phase") == "Failed"),
        what="phase Failed",
    )
    assert obj is not None
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "InvalidSpec"
    assert "userId" in ready["message"]
    assert operator.neon is not None
    assert operator.neon.projects() == []


async def test_unknown_region_is_a_condition_not_a_hot_loop(operator: LocalStack) -> None:
    await operator.apply(global_database("user-region", "henry", region="aws-mars-north-1"))
    obj = await operator.wait_for(
        "GlobalDatabase",
        "user-region",
        lambda o: any(
            c.get("reason") == "NeonRejected" for c in (o or {}).get("status", {}).get("conditions", [])
        ),
        what="NeonRejected condition",
    )
    assert obj is not None
    assert obj["status"]["phase"] == "Failed"
    await asyncio.sleep(2)
    assert operator.neon is not None
    creates = [c for c in operator.neon.calls() if c.route == "POST /projects"]
    assert len(creates) <= 2  # retried slowly (an hour), not in a loop


async def test_neon_down_during_delete_keeps_the_finalizer_until_it_recovers(operator: LocalStack) -> None:
    await operator.apply(workspace_database("ws-outage", "ivan", "ws-outage"))
    obj = await operator.wait_ready("WorkspaceDatabase", "ws-outage")
    assert operator.neon is not None
    operator.neon.options.down = True
    await operator.delete("WorkspaceDatabase", "ws-outage")
    await asyncio.sleep(4)
    stuck = await operator.get("WorkspaceDatabase", "ws-outage")
    assert stuck is not None
    assert stuck["metadata"].get("deletionTimestamp")
    assert "tenantdb.io/finalizer" in stuck["metadata"].get("finalizers", [])
    assert obj["status"]["projectId"] in {p["id"] for p in operator.neon.projects()}
    operator.neon.options.down = False
    await operator.wait_gone("WorkspaceDatabase", "ws-outage", timeout=90)
    assert operator.neon.projects() == []


async def test_delete_gives_up_after_the_configured_time_and_records_an_orphan(stack: LocalStack) -> None:
    await stack.start_operator(delete_give_up_seconds=3.0, neon_retry_deadline_seconds=2.0)
    await stack.apply(workspace_database("ws-orphan", "judy", "ws-orphan"))
    obj = await stack.wait_ready("WorkspaceDatabase", "ws-orphan")
    assert stack.neon is not None
    stack.neon.options.down = True
    await stack.delete("WorkspaceDatabase", "ws-orphan")
    await stack.wait_gone("WorkspaceDatabase", "ws-orphan", timeout=90)
    orphans = await stack.metadata_query("select neon_project_id, name from tenantdb_orphaned_project")
    assert orphans == [(obj["status"]["projectId"], "ws-orphan")]
    assert await stack.metadata_query(
        "select action, project_id from tenantdb_decision_log where tenant_id = %s", "ws-orphan"
    ) == [("orphan", obj["status"]["projectId"])]
    reasons = {e["reason"] for e in await stack.events_for("ws-orphan")}
    assert "ProjectOrphaned" in reasons
    assert stack.metrics.registry.get_sample_value("tenantdb_orphaned_projects") == 1  # alerts see it


async def test_a_wrong_neon_api_key_stops_the_operator_at_start_up_saying_so(
    stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(RuntimeError, match="stopped while starting"):
        await stack.start_operator(neon_api_key="not-the-key")
    assert "Neon rejected the API key; check NEON_API_KEY" in caplog.text
    assert "not-the-key" not in caplog.text
    assert stack.neon is not None
    assert stack.neon.projects() == []
