"""What the operator publishes, and to whom: Secrets it does not own, URIs that are not its
project's, rows and env vars of another resource, and one claim per tenant.

Each test is a hostile or careless platform user's move, through LocalStack."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any
from urllib.parse import urlsplit

from tenantdb.crypto import EncryptionKey
from tenantdb.testing.stack import LocalStack, eventually
from tests.factories import database_budget, global_database, workspace_database

PLATFORM_SECRET = {"STRIPE_KEY": "sk_live_platform", "OIDC_SECRET": "oidc-platform-secret"}


def _b64(data: dict[str, str]) -> dict[str, str]:
    return {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}


def _decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def _condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), {})


def _ready_reason(reason: str) -> Any:
    def check(obj: dict[str, Any] | None) -> bool:
        ready = _condition(obj, "Ready")
        return ready.get("status") == "False" and ready.get("reason") == reason

    return check


async def _env(stack: LocalStack, table: str, column: str, owner: str) -> dict[str, str]:
    rows = await stack.metadata_query(f"select variables from {table} where {column} = %s", owner)
    if not rows:
        return {}
    value = rows[0][0]
    raw = json.loads(value) if isinstance(value, str) else dict(value)
    key = EncryptionKey(stack.encryption_key)
    return {k: key.decrypt(v) for k, v in raw.items()}


async def _workspace_env(stack: LocalStack, workspace_id: str) -> dict[str, str]:
    return await _env(stack, "workspace_environment", "workspace_id", workspace_id)


async def _user_env(stack: LocalStack, user_id: str) -> dict[str, str]:
    return await _env(stack, "environment", "user_id", user_id)


async def _row(stack: LocalStack, table: str, column: str, owner: str) -> tuple[str, str] | None:
    rows = await stack.metadata_query(
        f"select neon_project_id, neon_connection_uri from {table} where {column} = %s", owner
    )
    if not rows:
        return None
    key = EncryptionKey(stack.encryption_key)
    return rows[0][0], key.decrypt(rows[0][1])


def _target(uri: str) -> tuple[Any, ...]:
    """Which database a URI reaches (the emulator serves every project from one host)."""
    parts = urlsplit(uri)
    return (parts.hostname, parts.port, parts.path, parts.username)


async def _own_uri(stack: LocalStack, secret_name: str) -> str:
    secret = await stack.get("Secret", secret_name)
    assert secret is not None
    return EncryptionKey(stack.encryption_key).decrypt(_decoded(secret)["DATABASE_URL_ENCRYPTED"])


async def _warnings(stack: LocalStack, name: str, reason: str) -> list[dict[str, Any]]:
    return [
        e for e in await stack.events_for(name) if e.get("type") == "Warning" and e.get("reason") == reason
    ]


# --- 1. Secrets the operator does not own --------------------------------------------------------
async def test_a_platform_secret_is_never_taken_over_nor_collected(operator: LocalStack) -> None:
    await operator.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "platform", "namespace": "default"},
            "type": "Opaque",
            "data": _b64(PLATFORM_SECRET),
        }
    )
    await operator.apply(
        workspace_database("ws-grab", "mallory", "ws-grab", connectionSecret={"name": "platform"})
    )
    obj = await operator.wait_for(
        "WorkspaceDatabase", "ws-grab", _ready_reason("SecretConflict"), what="SecretConflict"
    )
    assert "platform" in _condition(obj, "Ready")["message"]
    await eventually(
        lambda: _nonempty(_warnings(operator, "ws-grab", "SecretConflict")), what="a SecretConflict Warning"
    )
    await asyncio.sleep(2.5)  # a resync or two: still untouched
    secret = await operator.get("Secret", "platform")
    assert secret is not None
    assert _decoded(secret) == PLATFORM_SECRET
    assert not secret["metadata"].get("ownerReferences")
    # Nothing published for a resource that cannot publish.
    assert await _row(operator, "workspace_database", "workspace_id", "ws-grab") is None
    assert await _workspace_env(operator, "ws-grab") == {}
    assert operator.neon is not None
    assert operator.neon.projects() == []

    await operator.delete("WorkspaceDatabase", "ws-grab")
    await operator.wait_gone("WorkspaceDatabase", "ws-grab")
    await asyncio.sleep(1.0)  # garbage collection would have run by now
    secret = await operator.get("Secret", "platform")
    assert secret is not None
    assert _decoded(secret) == PLATFORM_SECRET


async def _nonempty(result: Any) -> bool:
    return bool(await result)


async def test_two_resources_naming_one_secret_the_first_keeps_it(operator: LocalStack) -> None:
    await operator.apply(workspace_database("ws-one", "oscar", "ws-one", connectionSecret={"name": "shared"}))
    first = await operator.wait_ready("WorkspaceDatabase", "ws-one")
    await operator.apply(workspace_database("ws-two", "oscar", "ws-two", connectionSecret={"name": "shared"}))
    await operator.wait_for(
        "WorkspaceDatabase", "ws-two", _ready_reason("SecretConflict"), what="SecretConflict"
    )
    await asyncio.sleep(2.5)
    secret = await operator.get("Secret", "shared")
    assert secret is not None
    assert [o["uid"] for o in secret["metadata"]["ownerReferences"]] == [first["metadata"]["uid"]]
    key = EncryptionKey(operator.encryption_key)
    first_uri = key.decrypt(_decoded(secret)["DATABASE_URL_ENCRYPTED"])
    assert _target(first_uri) == _target(await _own_uri(operator, "shared"))
    # The second never publishes the first's database as its own.
    row = await _row(operator, "workspace_database", "workspace_id", "ws-two")
    assert row is None or _target(row[1]) != _target(first_uri)
    env = await _workspace_env(operator, "ws-two")
    assert all(_target(v) != _target(first_uri) for v in env.values())


async def test_renaming_to_another_tenants_secret_publishes_no_victim_uri(operator: LocalStack) -> None:
    await operator.apply(workspace_database("ws-victim", "vera", "ws-victim"))
    await operator.apply(workspace_database("ws-thief", "tom", "ws-thief"))
    victim = await operator.wait_ready("WorkspaceDatabase", "ws-victim")
    thief = await operator.wait_ready("WorkspaceDatabase", "ws-thief")
    thief_uri = await _own_uri(operator, "ws-thief-connection")
    victim_uri = await _own_uri(operator, "ws-victim-connection")
    assert _target(thief_uri) != _target(victim_uri)
    await operator.patch(
        "WorkspaceDatabase", "ws-thief", {"spec": {"connectionSecret": {"name": "ws-victim-connection"}}}
    )
    await operator.wait_for(
        "WorkspaceDatabase", "ws-thief", _ready_reason("SecretConflict"), what="SecretConflict"
    )
    await asyncio.sleep(2.5)
    row = await _row(operator, "workspace_database", "workspace_id", "ws-thief")
    assert row is not None
    assert row[0] == thief["status"]["projectId"]
    assert _target(row[1]) == _target(thief_uri)
    env = await _workspace_env(operator, "ws-thief")
    assert _target(env["AGENT_DB_URL"]) == _target(thief_uri)
    secret = await operator.get("Secret", "ws-victim-connection")
    assert secret is not None
    assert [o["uid"] for o in secret["metadata"]["ownerReferences"]] == [victim["metadata"]["uid"]]


# --- 2. The URI comes from Neon, not from a Secret -----------------------------------------------
async def test_a_foreign_uri_copied_into_our_secret_is_never_published(operator: LocalStack) -> None:
    await operator.apply(workspace_database("ws-a", "alice", "ws-a"))
    await operator.apply(workspace_database("ws-b", "bob", "ws-b"))
    await operator.wait_ready("WorkspaceDatabase", "ws-a")
    await operator.wait_ready("WorkspaceDatabase", "ws-b")
    a_uri = await _own_uri(operator, "ws-a-connection")
    b_uri = await _own_uri(operator, "ws-b-connection")
    assert _target(a_uri) != _target(b_uri)
    a_secret = await operator.get("Secret", "ws-a-connection")
    assert a_secret is not None
    # Someone with Secret rights copies A's ciphertext into B's own Secret.
    await operator.patch(
        "Secret",
        "ws-b-connection",
        {"data": {"DATABASE_URL_ENCRYPTED": a_secret["data"]["DATABASE_URL_ENCRYPTED"]}},
    )
    # Drop B's row and env var so the next resync publishes again from what it believes.
    await operator.metadata_query(
        "delete from workspace_database where workspace_id = %s returning 1", "ws-b"
    )
    await operator.metadata_query(
        "update workspace_environment set variables = '{}'::json where workspace_id = %s returning 1", "ws-b"
    )

    async def republished() -> bool:
        return await _row(operator, "workspace_database", "workspace_id", "ws-b") is not None and bool(
            await _workspace_env(operator, "ws-b")
        )

    await eventually(republished, timeout=30, what="B's row and env var written again")
    row = await _row(operator, "workspace_database", "workspace_id", "ws-b")
    assert row is not None
    assert _target(row[1]) == _target(b_uri)
    assert _target((await _workspace_env(operator, "ws-b"))["AGENT_DB_URL"]) == _target(b_uri)

    async def secret_healed() -> bool:
        secret = await operator.get("Secret", "ws-b-connection")
        key = EncryptionKey(operator.encryption_key)
        return bool(secret) and _target(
            key.decrypt(_decoded(secret or {})["DATABASE_URL_ENCRYPTED"])
        ) == _target(b_uri)

    await eventually(secret_healed, timeout=30, what="B's Secret holds B's URI again")


# --- 3/4. Rows, env vars and one claim per tenant -------------------------------------------------
async def test_two_global_databases_of_one_user_make_one_project(operator: LocalStack) -> None:
    await operator.apply(global_database("g-first", "uma"))
    first = await operator.wait_ready("GlobalDatabase", "g-first")
    first_uri = await _own_uri(operator, "g-first-connection")
    await operator.apply(global_database("g-second", "uma"))
    second = await operator.wait_for("GlobalDatabase", "g-second", _ready_reason("Conflict"), what="Conflict")
    assert "g-first" in _condition(second, "Ready")["message"]
    await eventually(
        lambda: _nonempty(_warnings(operator, "g-second", "Conflict")), what="a Conflict Warning"
    )
    assert operator.neon is not None
    # Several resyncs: one project, and GLOBAL_DB_URL never moves.
    for _ in range(4):
        await asyncio.sleep(1.0)
        assert [p["id"] for p in operator.neon.projects()] == [first["status"]["projectId"]]
        env = await _user_env(operator, "uma")
        assert _target(env["GLOBAL_DB_URL"]) == _target(first_uri)
    assert await operator.get("Secret", "g-second-connection") is None

    # Deleting the loser touches nothing of the holder's.
    await operator.delete("GlobalDatabase", "g-second")
    await operator.wait_gone("GlobalDatabase", "g-second")
    row = await _row(operator, "user_global_database", "user_id", "uma")
    assert row is not None
    assert row[0] == first["status"]["projectId"]
    assert _target((await _user_env(operator, "uma"))["GLOBAL_DB_URL"]) == _target(first_uri)
    assert [p["id"] for p in operator.neon.projects()] == [first["status"]["projectId"]]


async def test_when_the_holder_goes_the_next_claimant_proceeds_by_itself(operator: LocalStack) -> None:
    await operator.apply(workspace_database("w-holder", "ned", "ws-shared"))
    holder = await operator.wait_ready("WorkspaceDatabase", "w-holder")
    await operator.apply(workspace_database("w-next", "ned", "ws-shared"))
    await operator.wait_for("WorkspaceDatabase", "w-next", _ready_reason("Conflict"), what="Conflict")
    await operator.delete("WorkspaceDatabase", "w-holder")
    await operator.wait_gone("WorkspaceDatabase", "w-holder")
    nxt = await operator.wait_ready("WorkspaceDatabase", "w-next", timeout=60)
    assert nxt["status"]["projectId"] != holder["status"]["projectId"]
    row = await _row(operator, "workspace_database", "workspace_id", "ws-shared")
    assert row is not None
    assert row[0] == nxt["status"]["projectId"]
    next_uri = await _own_uri(operator, "w-next-connection")
    assert _target((await _workspace_env(operator, "ws-shared"))["AGENT_DB_URL"]) == _target(next_uri)
    assert operator.neon is not None
    assert [p["id"] for p in operator.neon.projects()] == [nxt["status"]["projectId"]]


async def test_a_second_budget_for_one_user_is_a_conflict(operator: LocalStack) -> None:
    await operator.apply(database_budget("b-first", "pat", tier="paid"))
    await eventually(
        lambda: _budget_tier(operator, "pat", "paid"), timeout=30, what="the first budget recorded"
    )
    await operator.apply(database_budget("b-second", "pat", tier="free"))
    obj = await operator.wait_for("DatabaseBudget", "b-second", _ready_reason("Conflict"), what="Conflict")
    assert "b-first" in _condition(obj, "Ready")["message"]
    await asyncio.sleep(1.0)
    assert await _budget_tier(operator, "pat", "paid")  # the loser changed nothing
    await operator.delete("DatabaseBudget", "b-second")
    await operator.wait_gone("DatabaseBudget", "b-second")
    assert await _budget_tier(operator, "pat", "paid")  # nor did its delete
    # When the holder goes, a waiting budget takes over by itself.
    await operator.apply(database_budget("b-third", "pat", tier="enterprise"))
    await operator.wait_for("DatabaseBudget", "b-third", _ready_reason("Conflict"), what="Conflict")
    await operator.delete("DatabaseBudget", "b-first")
    await operator.wait_gone("DatabaseBudget", "b-first")
    await eventually(
        lambda: _budget_tier(operator, "pat", "enterprise"), timeout=45, what="the next budget in force"
    )


async def _budget_tier(stack: LocalStack, user_id: str, tier: str) -> bool:
    rows = await stack.metadata_query("select budget_tier from user_db_budget where user_id = %s", user_id)
    return rows == [(tier,)]


async def test_a_lost_create_race_is_a_conflict_not_an_overwrite(stack: LocalStack) -> None:
    """Two writers create one Secret name: whoever loses gets 409 -> SecretConflictError."""
    import pytest

    from tenantdb.kube import KubeClient, OwnerReference, SecretConflictError

    # Real owners (the emulator, like the API server, collects a Secret whose owner is gone).
    uids = {}
    for name in ("a", "b"):
        made = await stack.apply(workspace_database(name, "rae", f"ws-{name}"))
        uids[name] = made["metadata"]["uid"]

    def owner(name: str) -> OwnerReference:
        return OwnerReference(
            api_version="tenantdb.io/v1alpha1", kind="WorkspaceDatabase", name=name, uid=uids[name]
        )

    kube = await KubeClient.connect(host=stack.kube_url)
    try:
        await kube.write_secret(
            namespace="default",
            name="raced",
            data={"DATABASE_URL_ENCRYPTED": "first"},
            labels={},
            owner=owner("a"),
        )
        with pytest.raises(SecretConflictError):
            await kube.write_secret(
                namespace="default",
                name="raced",
                data={"DATABASE_URL_ENCRYPTED": "second"},
                labels={},
                owner=owner("b"),
            )
        secret = await stack.get("Secret", "raced")
        assert secret is not None
        assert _decoded(secret) == {"DATABASE_URL_ENCRYPTED": "first"}
        assert [o["uid"] for o in secret["metadata"]["ownerReferences"]] == [uids["a"]]
        # The owner itself updates it, and keys it no longer writes go.
        await kube.write_secret(
            namespace="default",
            name="raced",
            data={"DATABASE_URL_ENCRYPTED": "again"},
            labels={},
            owner=owner("a"),
        )
        secret = await stack.get("Secret", "raced")
        assert secret is not None
        assert _decoded(secret) == {"DATABASE_URL_ENCRYPTED": "again"}
    finally:
        await kube.close()


async def test_a_row_holding_another_project_is_left_alone(operator: LocalStack) -> None:
    key = EncryptionKey(operator.encryption_key)
    foreign_uri = "postgresql://someone:pw@elsewhere.example:5432/theirs"
    # A row (and env var) some other writer made for this workspace.
    await operator.metadata_query(
        "insert into workspace_database (id, workspace_id, neon_project_id, neon_branch_id, "
        "neon_connection_uri, database_name) values ('r1', 'ws-taken', 'p-foreign', 'b', %s, 'theirs') "
        "returning id",
        key.encrypt(foreign_uri),
    )
    await operator.apply(workspace_database("ws-late", "lou", "ws-taken"))
    obj = await operator.wait_for("WorkspaceDatabase", "ws-late", _ready_reason("Conflict"), what="Conflict")
    assert "p-foreign" in _condition(obj, "Ready")["message"]
    await asyncio.sleep(2.5)
    assert await _row(operator, "workspace_database", "workspace_id", "ws-taken") == (
        "p-foreign",
        foreign_uri,
    )
    assert await _workspace_env(operator, "ws-taken") == {}
    # Its delete removes its own project, and nothing of the row's.
    await operator.delete("WorkspaceDatabase", "ws-late")
    await operator.wait_gone("WorkspaceDatabase", "ws-late")
    assert await _row(operator, "workspace_database", "workspace_id", "ws-taken") == (
        "p-foreign",
        foreign_uri,
    )
    assert operator.neon is not None
    assert operator.neon.projects() == []
