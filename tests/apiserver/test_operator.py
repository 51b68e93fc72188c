"""The operator end to end on a real kube-apiserver: as the chart's ServiceAccount with exactly
the chart's RBAC, against the Neon emulator and a real PostgreSQL server.

Assertions are about what a platform sees: the Ready condition, the Secret, the metadata rows
and env var, everything gone after a delete."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tenantdb.crypto import EncryptionKey
from tenantdb.testing.apiserver import KubeApiServer
from tenantdb.testing.apiserver_stack import ApiServerStack, OperatorProcess
from tenantdb.testing.postgres import PostgresServer
from tenantdb.testing.stack import LocalStack, eventually, is_ready
from tests.apiserver.conftest import global_database, workspace_database

pytestmark = [pytest.mark.apiserver, pytest.mark.timeout(300)]

Object = dict[str, Any]
StackFactory = Callable[..., Awaitable[ApiServerStack]]
LAST_HANDLED = "tenantdb.io/last-handled-configuration"


def database_budget(name: str, namespace: str, user_id: str) -> Object:
    return {
        "apiVersion": "tenantdb.io/v1alpha1",
        "kind": "DatabaseBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"userId": user_id, "tier": "free"},
    }


def _refusals(log: str) -> list[str]:
    """Lines where the API server refused the operator something (403)."""
    return [line for line in log.splitlines() if re.search(r"HTTP 403|Forbidden|is forbidden", line)]


def _env_vars(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    if not rows:
        return {}
    value = rows[0][0]
    return json.loads(value) if isinstance(value, str) else dict(value)


def _paths(node: Any, prefix: str = "") -> set[str]:
    """Every field path in ``node`` (list items as ``[]``): the shape, not the values."""
    paths = {prefix} if prefix else set()
    if isinstance(node, dict):
        for key, value in node.items():
            paths |= _paths(value, f"{prefix}.{key}")
    elif isinstance(node, list):
        for item in node:
            paths |= _paths(item, f"{prefix}[]")
    return paths


def _ours(annotations: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in annotations.items() if key.startswith("tenantdb.io")}


async def test_create_ready_then_delete_all_gone_as_the_charts_service_account(
    stack_factory: StackFactory, chart_rbac: Callable[..., Any]
) -> None:
    stack = await stack_factory(operator_access=chart_rbac(), consumption_sync_interval_seconds=1.0)
    ns = stack.namespace
    await stack.start_operator()
    await stack.apply(global_database("user-alice", ns, "alice"))
    await stack.apply(workspace_database("ws-alice", ns, "alice", "ws-alice"))
    await stack.apply(database_budget("user-alice", ns, "alice"))
    gdb = await stack.wait_ready("GlobalDatabase", "user-alice", namespace=ns, timeout=90)
    wdb = await stack.wait_ready("WorkspaceDatabase", "ws-alice", namespace=ns, timeout=90)

    key = EncryptionKey(stack.encryption_key)
    secret = await stack.get("Secret", "user-alice-connection", namespace=ns)
    assert secret is not None
    assert secret["metadata"]["ownerReferences"][0]["uid"] == gdb["metadata"]["uid"]
    uri = key.decrypt(base64.b64decode(secret["data"]["DATABASE_URL_ENCRYPTED"]).decode())
    rows = await stack.metadata_query(
        "select neon_project_id from user_global_database where user_id = %s", "alice"
    )
    assert rows == [(gdb["status"]["projectId"],)]
    env = _env_vars(
        await stack.metadata_query("select variables from environment where user_id = %s", "alice")
    )
    assert key.decrypt(env["GLOBAL_DB_URL"]) == uri
    agent_env = _env_vars(
        await stack.metadata_query(
            "select variables from workspace_environment where workspace_id = %s", "ws-alice"
        )
    )
    assert "AGENT_DB_URL" in agent_env
    assert await stack.get("Secret", "ws-alice-connection", namespace=ns) is not None
    assert stack.neon is not None
    projects = {p["id"] for p in stack.neon.projects()}
    assert {gdb["status"]["projectId"], wdb["status"]["projectId"]} == projects

    # The budget's status, written through databasebudgets/status: usage past the free tier's
    # limit is found by the consumption sync and the budget says so.
    stack.neon.set_usage(gdb["status"]["projectId"], compute_unit_seconds=200_000)  # 590 cents
    budget = await stack.wait_for(
        "DatabaseBudget",
        "user-alice",
        lambda o: bool(o and (o.get("status") or {}).get("exceeded") is True),
        namespace=ns,
        timeout=60,
        what="exceeded",
    )
    assert budget is not None
    assert budget["status"]["limitCents"] == 500
    await stack.delete("DatabaseBudget", "user-alice", namespace=ns)
    await stack.wait_gone("DatabaseBudget", "user-alice", namespace=ns)

    for kind, name in (("WorkspaceDatabase", "ws-alice"), ("GlobalDatabase", "user-alice")):
        await stack.delete(kind, name, namespace=ns)
        await stack.wait_gone(kind, name, namespace=ns, timeout=90)
    assert stack.neon.projects() == []
    assert await stack.metadata_query("select 1 from user_global_database where user_id = %s", "alice") == []
    assert (
        await stack.metadata_query("select 1 from workspace_database where workspace_id = %s", "ws-alice")
        == []
    )
    env = _env_vars(
        await stack.metadata_query("select variables from environment where user_id = %s", "alice")
    )
    assert "GLOBAL_DB_URL" not in env
    # Nothing in the operator's log says it was refused anything.
    assert not _refusals(stack.operator_logs), _refusals(stack.operator_logs)


async def test_a_tier_is_read_and_its_progress_written_as_the_charts_service_account(
    stack_factory: StackFactory, chart_rbac: Callable[..., Any]
) -> None:
    stack = await stack_factory(operator_access=chart_rbac(), tier_rollout_per_minute=600.0)
    ns = stack.namespace
    tier_name = f"gold-{ns}"  # cluster-wide: named after the test's namespace, deleted at its end
    tier = {
        "apiVersion": "tenantdb.io/v1alpha1",
        "kind": "DatabaseTier",
        "metadata": {"name": tier_name},
        "spec": {"limitCents": 20000, "autoscaling": {"minCu": 0.25, "maxCu": 1}},
    }
    await stack.apply(tier)
    try:
        await stack.start_operator()
        budget = database_budget("user-gus", ns, "gus")
        budget["spec"]["tier"] = tier_name
        await stack.apply(budget)
        await stack.apply(global_database("user-gus", ns, "gus"))  # no compute size: the tier's
        gdb = await stack.wait_for(
            "GlobalDatabase",
            "user-gus",
            lambda o: is_ready(o) and ((o or {}).get("status") or {}).get("applied", {}).get("maxCu") == 1,
            namespace=ns,
            timeout=90,
            what="Ready with the tier's compute",
        )
        assert gdb is not None
        assert gdb["status"]["applied"]["tier"] == tier_name
        written = await stack.wait_for(
            "DatabaseTier",
            tier_name,
            lambda o: ((o or {}).get("status") or {}).get("updatedDatabases") == 1,
            timeout=60,
            what="the tier's progress, through databasetiers/status",
        )
        assert written is not None
        assert written["status"]["databases"] == 1
        assert not _refusals(stack.operator_logs), _refusals(stack.operator_logs)
    finally:
        await stack.delete("DatabaseTier", tier_name)


async def _handled(stack: LocalStack, name: str, namespace: str) -> Object:
    """The GlobalDatabase once kopf has finished with it: Ready, and kopf's own patch (its
    record of the handled spec) written. Ready alone races that patch, which follows the
    status write that says Ready."""

    def finished(obj: Object | None) -> bool:
        annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
        return is_ready(obj) and LAST_HANDLED in annotations

    obj = await stack.wait_for(
        "GlobalDatabase", name, finished, namespace=namespace, timeout=90, what="handled"
    )
    assert obj is not None
    return obj


async def test_nothing_the_operator_or_kopf_writes_is_pruned(
    stack_factory: StackFactory, postgres_server: PostgresServer
) -> None:
    # What was written: the same resource handled by the same operator on the Kubernetes
    # emulator, which stores every field it is sent. The real API server, which prunes what
    # its schema does not know, must hold the same status fields and annotations.
    async with LocalStack(postgres=postgres_server) as emulated:
        await emulated.start_operator()
        await emulated.apply(global_database("user-bob", "default", "bob"))
        written = await _handled(emulated, "user-bob", "default")
        await emulated.stop_operator()

    stack = await stack_factory()
    await stack.start_operator()
    await stack.apply(global_database("user-bob", stack.namespace, "bob"))
    stored = await _handled(stack, "user-bob", stack.namespace)

    assert _paths(written["status"]) <= _paths(stored["status"]), sorted(
        _paths(written["status"]) - _paths(stored["status"])
    )
    written_annotations = _ours(written["metadata"].get("annotations", {}))
    stored_annotations = _ours(stored["metadata"].get("annotations", {}))
    assert written_annotations, "kopf wrote no annotations on the emulator: the comparison proves nothing"
    assert set(written_annotations) <= set(stored_annotations)
    assert "tenantdb.io/finalizer" in stored["metadata"]["finalizers"]
    # kopf's record of the last handled spec survives intact (else every restart re-runs a create).
    last = json.loads(stored_annotations[LAST_HANDLED])
    assert last["spec"]["userId"] == "bob"


async def test_a_missing_rbac_rule_is_noticed(
    stack_factory: StackFactory, chart_rbac: Callable[..., Any]
) -> None:
    def without_secret_create(objects: list[Object]) -> None:
        for obj in objects:
            for rule in obj.get("rules", []):
                if "secrets" in rule.get("resources", []):
                    rule["verbs"] = [verb for verb in rule["verbs"] if verb != "create"]

    # (Every test that runs as the ServiceAccount installs the chart's rules afresh.)
    stack = await stack_factory(operator_access=chart_rbac(edit=without_secret_create))
    ns = stack.namespace
    await stack.start_operator()
    await stack.apply(global_database("user-carol", ns, "carol"))

    async def refused_visibly() -> bool:
        obj = await stack.get("GlobalDatabase", "user-carol", namespace=ns)
        conditions = {c["type"]: c for c in ((obj or {}).get("status") or {}).get("conditions") or []}
        ready = conditions.get("Ready", {})
        return ready.get("status") == "False" and bool(_refusals(stack.operator_logs))

    await eventually(refused_visibly, timeout=90, what="Ready=False and the 403 logged")
    obj = await stack.get("GlobalDatabase", "user-carol", namespace=ns)
    assert obj is not None
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    # What `kubectl describe` shows the platform team: which call was refused.
    assert "403 Forbidden" in ready["message"], ready
    assert "Secret" in ready["message"], ready
    assert await stack.get("Secret", "user-carol-connection", namespace=ns) is None


async def test_the_secret_is_garbage_collected_with_its_resource(
    api_server: KubeApiServer, stack_factory: StackFactory, chart_rbac: Callable[..., Any]
) -> None:
    if not api_server.has_garbage_collector:
        pytest.skip("kube-controller-manager is not in the assets: ownerReference GC is not running")
    stack = await stack_factory(operator_access=chart_rbac())
    ns = stack.namespace
    await stack.start_operator()
    await stack.apply(global_database("user-dan", ns, "dan"))
    await stack.wait_ready("GlobalDatabase", "user-dan", namespace=ns, timeout=90)
    assert await stack.get("Secret", "user-dan-connection", namespace=ns) is not None
    # Only the garbage collector is left to remove the Secret: the operator is stopped and the
    # resource leaves without it (its finalizer dropped by hand).
    await stack.stop_operator()
    await stack.patch("GlobalDatabase", "user-dan", {"metadata": {"finalizers": None}}, namespace=ns)
    await stack.delete("GlobalDatabase", "user-dan", namespace=ns)
    await stack.wait_gone("GlobalDatabase", "user-dan", namespace=ns)
    await stack.wait_gone("Secret", "user-dan-connection", namespace=ns, timeout=60)


async def _two_peers(
    stack_factory: StackFactory, chart_rbac: Callable[..., Any]
) -> tuple[ApiServerStack, OperatorProcess, OperatorProcess]:
    """Two operator processes in one peering, as the chart runs them (priorities 100 and 90),
    once the first has resumed."""
    access = chart_rbac({"peering": {"enabled": True}})
    stack = await stack_factory(operator_access=access, peering_name="tenantdb")
    first = stack.spawn_operator(name="peer-100", peering_priority=100)
    await first.wait_started()
    second = stack.spawn_operator(name="peer-90", peering_priority=90)
    await second.wait_started()

    # kopf starts every peer paused and resumes one once it sees no peer of higher priority.
    async def first_resumed() -> bool:
        return "Resuming operations after the pause" in first.log

    await eventually(first_resumed, timeout=60, what="the higher-priority peer resumes")
    return stack, first, second


async def test_two_peered_operators_one_acts_and_the_other_takes_over_when_it_dies(
    stack_factory: StackFactory, chart_rbac: Callable[..., Any]
) -> None:
    stack, first, second = await _two_peers(stack_factory, chart_rbac)
    ns = stack.namespace
    await stack.apply(global_database("user-erin", ns, "erin"))
    await stack.wait_ready("GlobalDatabase", "user-erin", namespace=ns, timeout=90)

    # kopf logs each resource handler's outcome ("Handler '...' succeeded"): the active peer
    # handled it, the standby did nothing.
    async def first_logged_its_handler() -> bool:  # logged a moment after the status write
        return "Handler '" in first.log

    await eventually(first_logged_its_handler, timeout=30, what="the active peer's handler log")
    assert "Handler '" not in second.log, second.log[-3000:]
    assert "Resuming operations" not in second.log

    await first.stop(abruptly=True)  # a killed pod: no goodbye in the peering object
    await stack.apply(global_database("user-frank", ns, "frank"))
    # The standby resumes once the dead peer's keep-alive expires (kopf: 60 s lifetime).
    await stack.wait_ready("GlobalDatabase", "user-frank", namespace=ns, timeout=150)
    assert "Resuming operations after the pause" in second.log

    async def second_logged_its_handler() -> bool:
        return "Handler '" in second.log

    await eventually(second_logged_its_handler, timeout=30, what="the standby's handler log")


async def test_a_graceful_stop_hands_over_to_the_standby_within_seconds(
    stack_factory: StackFactory, chart_rbac: Callable[..., Any]
) -> None:
    """A rolling restart: SIGTERM, and kopf's goodbye in the peering object (lifetime 0). The
    standby acts at once, its loops outside kopf's handlers (the consumption sync) included, not
    a keep-alive lifetime (60 s) later; a signup made as the active one stops is Ready."""
    stack, first, second = await _two_peers(stack_factory, chart_rbac)
    ns = stack.namespace
    stopping = asyncio.create_task(first.stop())
    await stack.apply(global_database("user-gina", ns, "gina"))
    await stopping
    await stack.wait_ready("GlobalDatabase", "user-gina", namespace=ns, timeout=30)

    async def second_loops_active() -> bool:
        return "consumption sync and enforcement active on this replica" in second.log

    await eventually(second_loops_active, timeout=20, what="the standby's budget loop acting")


async def test_a_rotation_on_a_real_api_server_as_the_charts_service_account(
    stack_factory: StackFactory, chart_rbac: Callable[..., Any]
) -> None:
    # The annotation under kopf's own prefix reaches the handler, and the rotation's status
    # fields survive the API server's pruning; nothing needs a grant the chart does not give.
    stack = await stack_factory(operator_access=chart_rbac())
    ns = stack.namespace
    await stack.start_operator()
    await stack.apply(global_database("user-rota", ns, "rota"))
    await _handled(stack, "user-rota", ns)
    key = EncryptionKey(stack.encryption_key)

    async def published() -> str:
        secret = await stack.get("Secret", "user-rota-connection", namespace=ns)
        assert secret is not None
        return key.decrypt(base64.b64decode(secret["data"]["DATABASE_URL_ENCRYPTED"]).decode())

    old = await published()
    await stack.patch(
        "GlobalDatabase",
        "user-rota",
        {"metadata": {"annotations": {"tenantdb.io/rotate-credentials": "audit-q1"}}},
        namespace=ns,
    )
    rotated = await stack.wait_for(
        "GlobalDatabase",
        "user-rota",
        lambda o: (
            ((o or {}).get("status") or {}).get("credentialsRotationHandled") == "audit-q1"
            and bool(o and o["status"].get("credentialsRotatedAt"))
        ),
        namespace=ns,
        timeout=60,
        what="the rotation recorded",
    )
    assert rotated is not None
    assert "credentialsRotationStartedAt" not in rotated["status"]
    assert await published() != old
    env = _env_vars(
        await stack.metadata_query("select variables from environment where user_id = %s", "rota")
    )
    assert key.decrypt(env["GLOBAL_DB_URL"]) == await published()
    assert not _refusals(stack.operator_logs), _refusals(stack.operator_logs)
