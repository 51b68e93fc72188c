"""Changing the encryption key: ``tenantdb rekey`` and the running operator re-encrypt every value
the operator wrote, and nothing else, as a platform changing Sim's ENCRYPTION_KEY would see it."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

import psycopg
import pytest

from tenantdb.crypto import EncryptionKey
from tenantdb.handlers.rekey import EXIT_OK, rekey_from_environment
from tenantdb.testing.stack import LocalStack, eventually
from tests.factories import global_database, workspace_database


async def _execute(stack: LocalStack, query: str, *params: Any) -> None:
    async with await psycopg.AsyncConnection.connect(stack.metadata_url, autocommit=True) as conn:
        await conn.execute(query.encode(), params)


async def _variables(stack: LocalStack, table: str, owner: str, owner_id: str) -> dict[str, Any]:
    rows = await stack.metadata_query(f"select variables from {table} where {owner} = %s", owner_id)
    value = rows[0][0]
    return dict(value) if isinstance(value, dict) else dict(json.loads(value))


async def _sealed(stack: LocalStack) -> dict[str, str]:
    """Every value the operator wrote for the two tenants below, as stored."""
    user_secret = await stack.get("Secret", "user-kim-connection")
    ws_secret = await stack.get("Secret", "ws-kim-connection")
    assert user_secret is not None
    assert ws_secret is not None
    rows = await stack.metadata_query(
        "select neon_connection_uri from user_global_database where user_id = 'kim'"
    )
    ws_rows = await stack.metadata_query(
        "select neon_connection_uri from workspace_database where workspace_id = 'ws-kim'"
    )
    return {
        "user secret": base64.b64decode(user_secret["data"]["DATABASE_URL_ENCRYPTED"]).decode(),
        "workspace secret": base64.b64decode(ws_secret["data"]["DATABASE_URL_ENCRYPTED"]).decode(),
        "user row": rows[0][0],
        "workspace row": ws_rows[0][0],
        "GLOBAL_DB_URL": (await _variables(stack, "environment", "user_id", "kim"))["GLOBAL_DB_URL"],
        "AGENT_DB_URL": (await _variables(stack, "workspace_environment", "workspace_id", "ws-kim"))[
            "AGENT_DB_URL"
        ],
    }


async def _fleet_under_old_key(stack: LocalStack) -> tuple[str, dict[str, str]]:
    """Two tenants published under the stack's key, Sim's own variables beside ours, and a user
    who brought a database (never the operator's): the old key and what Sim stored."""
    old = stack.encryption_key
    await stack.start_operator()
    await stack.apply(global_database("user-kim", "kim"))
    await stack.apply(workspace_database("ws-kim", "kim", "ws-kim"))
    await stack.wait_ready("GlobalDatabase", "user-kim")
    await stack.wait_ready("WorkspaceDatabase", "ws-kim")
    await stack.stop_operator()
    key = EncryptionKey(old)
    sims = {"OPENAI_API_KEY": key.encrypt("sk-sims-own"), "PLAIN_LOOKING": key.encrypt("x")}
    user_vars = await _variables(stack, "environment", "user_id", "kim")
    await _execute(
        stack,
        "update environment set variables = %s where user_id = 'kim'",
        json.dumps({**user_vars, **sims}),
    )
    ws_vars = await _variables(stack, "workspace_environment", "workspace_id", "ws-kim")
    await _execute(
        stack,
        "update workspace_environment set variables = %s where workspace_id = 'ws-kim'",
        json.dumps({**ws_vars, **sims}),
    )
    # A user's own database: a row and an env var the operator never wrote.
    await _execute(
        stack,
        "insert into user_global_database (id, user_id, ownership_type, neon_project_id, neon_branch_id, "
        "neon_connection_uri, database_name) values ('row-own', 'own', 'user', 'p-own', 'b-own', %s, 'own')",
        key.encrypt("postgresql://own:pw@own.example/own"),
    )
    await _execute(
        stack,
        "insert into environment (id, user_id, variables) values ('env-own', 'own', %s)",
        json.dumps({"GLOBAL_DB_URL": key.encrypt("postgresql://own:pw@own.example/own")}),
    )
    return old, sims


def _uri(stored: str, key: str) -> str:
    return EncryptionKey(key).decrypt(stored)


async def test_rekey_reencrypts_only_what_the_operator_wrote_and_a_second_run_finds_nothing(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old, sims = await _fleet_under_old_key(stack)
    before = await _sealed(stack)
    own_before = await stack.metadata_query("select variables from environment where user_id = 'own'")
    own_row_before = await stack.metadata_query(
        "select neon_connection_uri from user_global_database where user_id = 'own'"
    )
    new = secrets.token_hex(32)
    settings = stack.settings(encryption_key=new)
    monkeypatch.setenv("ENCRYPTION_KEY", new)
    monkeypatch.setenv("TENANTDB_PREVIOUS_ENCRYPTION_KEYS", old)
    monkeypatch.setenv("TENANTDB_METADATA_DATABASE_URL", settings.metadata_database_url.get_secret_value())
    said: list[str] = []

    # A dry run counts and writes nothing.
    code = await rekey_from_environment(
        writes_per_second=200, dry_run=True, kube_url=stack.kube_url, say=said.append
    )
    assert code == EXIT_OK
    assert await _sealed(stack) == before
    assert "Secrets: 2 seen, 2 rewritten" in "\n".join(said)

    said.clear()
    code = await rekey_from_environment(
        writes_per_second=200, dry_run=False, kube_url=stack.kube_url, say=said.append
    )
    assert code == EXIT_OK
    after = await _sealed(stack)
    for what, stored in after.items():
        assert EncryptionKey(new).is_current(stored), what
        assert _uri(stored, new) == _uri(before[what], old), what
    # Sim's own values, byte for byte; the user's own database, untouched.
    for table, owner, owner_id in (
        ("environment", "user_id", "kim"),
        ("workspace_environment", "workspace_id", "ws-kim"),
    ):
        variables = await _variables(stack, table, owner, owner_id)
        assert {k: variables[k] for k in sims} == sims
    assert await stack.metadata_query("select variables from environment where user_id = 'own'") == own_before
    assert (
        await stack.metadata_query(
            "select neon_connection_uri from user_global_database where user_id = 'own'"
        )
        == own_row_before
    )

    # Resumed (or run again): everything is current already, nothing is written.
    said.clear()
    code = await rekey_from_environment(
        writes_per_second=200, dry_run=False, kube_url=stack.kube_url, say=said.append
    )
    assert code == EXIT_OK
    assert await _sealed(stack) == after
    assert all(" 0 rewritten" in line for line in said if " seen," in line)

    # The operator with the new key alone: every published value reads, nothing is rewritten.
    await stack.start_operator(encryption_key=new)
    await stack.wait_ready("GlobalDatabase", "user-kim")
    printed = capsys.readouterr()
    for secret in (old, new, *(_uri(v, new) for v in after.values())):
        assert secret not in "\n".join(said) + printed.out + printed.err


async def test_the_running_operator_reencrypts_old_key_values_in_its_fleet_pass(stack: LocalStack) -> None:
    old, sims = await _fleet_under_old_key(stack)
    before = await _sealed(stack)
    new = secrets.token_hex(32)
    await stack.start_operator(encryption_key=new, previous_encryption_keys=old)

    async def all_current() -> bool:
        return all(EncryptionKey(new).is_current(v) for v in (await _sealed(stack)).values())

    await eventually(all_current, timeout=30, what="every value re-encrypted with the new key")
    after = await _sealed(stack)
    for what, stored in after.items():
        assert _uri(stored, new) == _uri(before[what], old), what
    variables = await _variables(stack, "environment", "user_id", "kim")
    assert {k: variables[k] for k in sims} == sims
    own = await _variables(stack, "environment", "user_id", "own")
    assert EncryptionKey(old).is_current(own["GLOBAL_DB_URL"])


def test_rekey_refuses_a_previous_key_that_is_no_key_and_never_prints_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tenantdb.cli import main

    bad = "not-a-key-" + secrets.token_hex(8)
    monkeypatch.setenv("ENCRYPTION_KEY", secrets.token_hex(32))
    monkeypatch.setenv("TENANTDB_PREVIOUS_ENCRYPTION_KEYS", f"{secrets.token_hex(32)},{bad}")
    monkeypatch.setenv("TENANTDB_METADATA_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert main(["rekey", "--dry-run"]) == 2
    printed = capsys.readouterr()
    assert "key 2" in printed.err
    assert bad not in printed.out + printed.err
