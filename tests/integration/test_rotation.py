"""Rotating a database's password, as a platform would the day a connection string leaked: the
annotation, the policy by age, and what a crash or a lost answer in the middle leaves behind."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
from typing import Any

import psycopg

from tenantdb.api import ROTATE_CREDENTIALS_ANNOTATION
from tenantdb.crypto import EncryptionKey
from tenantdb.testing.stack import LocalStack, eventually
from tests.factories import global_database, workspace_database

RESET = "POST /projects/{project_id}/branches/{branch_id}/roles/{role_name}/reset_password"


async def _connects(uri: str) -> bool:
    try:
        async with await psycopg.AsyncConnection.connect(uri, connect_timeout=5) as conn:
            cursor = await conn.execute("select 1")
            return (await cursor.fetchone()) == (1,)
    except psycopg.OperationalError:
        return False


def _key(stack: LocalStack) -> EncryptionKey:
    return EncryptionKey(stack.encryption_key)


async def _secret_uri(stack: LocalStack, secret_name: str) -> str:
    secret = await stack.get("Secret", secret_name)
    assert secret is not None
    return _key(stack).decrypt(base64.b64decode(secret["data"]["DATABASE_URL_ENCRYPTED"]).decode())


async def _published(stack: LocalStack, kind: str, tenant: str) -> tuple[str, str]:
    """The URI in the tenant's metadata row and in its env var."""
    key = _key(stack)
    if kind == "GlobalDatabase":
        rows = await stack.metadata_query(
            "select neon_connection_uri from user_global_database where user_id = %s", tenant
        )
        env = await stack.metadata_query("select variables from environment where user_id = %s", tenant)
        env_key = "GLOBAL_DB_URL"
    else:
        rows = await stack.metadata_query(
            "select neon_connection_uri from workspace_database where workspace_id = %s", tenant
        )
        env = await stack.metadata_query(
            "select variables from workspace_environment where workspace_id = %s", tenant
        )
        env_key = "AGENT_DB_URL"
    variables = env[0][0] if isinstance(env[0][0], dict) else json.loads(env[0][0])
    return key.decrypt(rows[0][0]), key.decrypt(variables[env_key])


async def _annotate(stack: LocalStack, kind: str, name: str, value: str) -> None:
    await stack.patch(kind, name, {"metadata": {"annotations": {ROTATE_CREDENTIALS_ANNOTATION: value}}})


def _resets(stack: LocalStack) -> int:
    assert stack.neon is not None
    return sum(1 for call in stack.neon.calls() if call.route == RESET)


def _rotated(value: str | None = None) -> Any:
    def check(obj: dict[str, Any] | None) -> bool:
        status = (obj or {}).get("status") or {}
        return bool(
            status.get("credentialsRotatedAt")
            and not status.get("credentialsRotationStartedAt")
            and (value is None or status.get("credentialsRotationHandled") == value)
        )

    return check


async def _reasons(stack: LocalStack, name: str) -> list[str]:
    return [str(e.get("reason")) for e in await stack.events_for(name)]


async def test_a_new_annotation_value_rotates_the_password_everywhere_and_the_old_one_is_refused(
    operator: LocalStack,
) -> None:
    await operator.apply(workspace_database("ws-rot", "rita", "ws-rot"))
    ready = await operator.wait_ready("WorkspaceDatabase", "ws-rot")
    secret_name = ready["status"]["secretName"]
    old = await _secret_uri(operator, secret_name)
    assert await _connects(old)

    await _annotate(operator, "WorkspaceDatabase", "ws-rot", "2025-01-01T00:00:00Z")
    rotated = await operator.wait_for("WorkspaceDatabase", "ws-rot", _rotated("2025-01-01T00:00:00Z"))
    assert rotated is not None

    new = await _secret_uri(operator, secret_name)
    assert new != old
    assert await _published(operator, "WorkspaceDatabase", "ws-rot") == (new, new)
    assert await _connects(new)
    assert not await _connects(old)
    assert (await _reasons(operator, "ws-rot")).count("CredentialsRotated") == 1
    assert rotated["status"]["phase"] == "Ready"
    assert _resets(operator) == 1


async def test_the_annotation_rotates_at_once_without_waiting_for_the_fleet(stack: LocalStack) -> None:
    # kopf keeps the annotations under its own prefix (ours, tenantdb.io) out of what it compares
    # to see a change: the rotation annotation must count as one, or it waits for a fleet pass.
    await stack.start_operator(resync_interval_seconds=3600.0)
    await stack.apply(global_database("user-kai", "kai"))
    await stack.wait_ready("GlobalDatabase", "user-kai")
    await _annotate(stack, "GlobalDatabase", "user-kai", "now")
    await stack.wait_for("GlobalDatabase", "user-kai", _rotated("now"), timeout=15)
    await _annotate(stack, "GlobalDatabase", "user-kai", "again")
    await stack.wait_for("GlobalDatabase", "user-kai", _rotated("again"), timeout=15)
    assert _resets(stack) == 2


async def test_the_same_annotation_value_again_rotates_nothing(operator: LocalStack) -> None:
    await operator.apply(global_database("user-sam", "sam"))
    await operator.wait_ready("GlobalDatabase", "user-sam")
    await _annotate(operator, "GlobalDatabase", "user-sam", "leak-1")
    await operator.wait_for("GlobalDatabase", "user-sam", _rotated("leak-1"))
    uri = await _secret_uri(operator, "user-sam-connection")

    # The same value written again, a spec change beside it, and a restart: none rotates again.
    await _annotate(operator, "GlobalDatabase", "user-sam", "leak-1")
    await operator.patch("GlobalDatabase", "user-sam", {"spec": {"suspendTimeoutSeconds": 600}})
    await operator.stop_operator()
    await operator.start_operator()
    await asyncio.sleep(5)  # a couple of fleet passes (every 2 s here)
    assert _resets(operator) == 1
    assert await _secret_uri(operator, "user-sam-connection") == uri

    await _annotate(operator, "GlobalDatabase", "user-sam", "leak-2")
    await operator.wait_for("GlobalDatabase", "user-sam", _rotated("leak-2"))
    assert _resets(operator) == 2
    assert await _connects(await _secret_uri(operator, "user-sam-connection"))


async def test_an_annotation_set_while_the_operator_was_down_rotates_at_start(stack: LocalStack) -> None:
    await stack.start_operator()
    await stack.apply(global_database("user-dora", "dora"))
    await stack.wait_ready("GlobalDatabase", "user-dora")
    old = await _secret_uri(stack, "user-dora-connection")
    await stack.stop_operator()
    await _annotate(stack, "GlobalDatabase", "user-dora", "while-down")
    await stack.start_operator(resync_interval_seconds=3600.0)  # the resume alone must find it
    await stack.wait_for("GlobalDatabase", "user-dora", _rotated("while-down"), timeout=30)
    new = await _secret_uri(stack, "user-dora-connection")
    assert new != old
    assert await _connects(new)
    assert not await _connects(old)


async def test_a_password_old_enough_is_rotated_by_the_fleet(operator: LocalStack) -> None:
    await operator.stop_operator()
    await operator.start_operator(credential_rotations_per_minute=600.0)
    await operator.apply(global_database("user-olga", "olga", credentials={"rotateAfterDays": 30}))
    await operator.wait_ready("GlobalDatabase", "user-olga")
    old = await _secret_uri(operator, "user-olga-connection")
    await asyncio.sleep(3)
    assert _resets(operator) == 0  # a new password is not old

    month_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=31)
    await operator.patch_status(
        "GlobalDatabase", "user-olga", {"credentialsRotatedAt": month_ago.strftime("%Y-%m-%dT%H:%M:%SZ")}
    )
    rotated = await operator.wait_for(
        "GlobalDatabase",
        "user-olga",
        lambda o: (
            ((o or {}).get("status") or {}).get("credentialsRotatedAt", "")
            > month_ago.strftime("%Y-%m-%dT%H:%M:%SZ")
        ),
        timeout=30,
        what="the rotation by age",
    )
    assert rotated is not None
    new = await _secret_uri(operator, "user-olga-connection")
    assert new != old
    assert await _connects(new)
    assert not await _connects(old)
    assert await _published(operator, "GlobalDatabase", "olga") == (new, new)
    await asyncio.sleep(3)
    assert _resets(operator) == 1  # due again only in 30 days


async def test_a_crash_after_neon_reset_the_password_publishes_the_new_one_on_restart(
    stack: LocalStack,
) -> None:
    assert stack.neon is not None
    await stack.start_operator()
    await stack.apply(global_database("user-cleo", "cleo"))
    await stack.wait_ready("GlobalDatabase", "user-cleo")
    old = await _secret_uri(stack, "user-cleo-connection")
    # Neon resets the password, and the operator is stopped before it hears the new one.
    stack.neon.options.lose_answers[RESET] = 1000
    await _annotate(stack, "GlobalDatabase", "user-cleo", "crash")
    await eventually(lambda: _true(_resets(stack) >= 1), timeout=20, what="the reset sent")
    await stack.stop_operator(abruptly=True)
    await asyncio.sleep(1.5)  # Neon's operations finish: the old password, still published, is dead
    assert not await _connects(old)
    assert await _secret_uri(stack, "user-cleo-connection") == old
    obj = await stack.get("GlobalDatabase", "user-cleo")
    assert obj is not None
    assert obj["status"].get("credentialsRotationStartedAt")  # on record before the reset

    stack.neon.options.lose_answers.clear()
    await stack.start_operator()
    await stack.wait_for("GlobalDatabase", "user-cleo", _rotated("crash"), timeout=30)
    new = await _secret_uri(stack, "user-cleo-connection")
    assert new != old
    assert await _connects(new)
    assert await _published(stack, "GlobalDatabase", "cleo") == (new, new)


async def test_a_crash_while_neon_applies_the_new_password_ends_the_rotation_on_restart(
    stack: LocalStack,
) -> None:
    assert stack.neon is not None
    await stack.start_operator()
    await stack.apply(global_database("user-cody", "cody"))
    await stack.wait_ready("GlobalDatabase", "user-cody")
    old = await _secret_uri(stack, "user-cody-connection")
    stack.neon.options.operation_seconds = 3.0
    await _annotate(stack, "GlobalDatabase", "user-cody", "crash")

    async def published() -> bool:
        return await _secret_uri(stack, "user-cody-connection") != old

    # Published at once, while Neon's operations run: the old password still works meanwhile.
    await eventually(published, timeout=20, what="the new connection string published")
    assert await _connects(old)
    await stack.stop_operator(abruptly=True)
    await asyncio.sleep(3.5)
    stack.neon.options.operation_seconds = 0.2
    await stack.start_operator()
    await stack.wait_for("GlobalDatabase", "user-cody", _rotated("crash"), timeout=30)
    new = await _secret_uri(stack, "user-cody-connection")
    assert await _connects(new)
    assert not await _connects(old)
    assert await _published(stack, "GlobalDatabase", "cody") == (new, new)


async def test_a_lost_answer_to_the_reset_ends_with_a_password_that_works_published(
    operator: LocalStack,
) -> None:
    assert operator.neon is not None
    await operator.apply(global_database("user-luke", "luke"))
    await operator.wait_ready("GlobalDatabase", "user-luke")
    old = await _secret_uri(operator, "user-luke-connection")
    operator.neon.options.lose_answers[RESET] = 1  # Neon resets it; the operator never hears
    await _annotate(operator, "GlobalDatabase", "user-luke", "lost")
    await operator.wait_for("GlobalDatabase", "user-luke", _rotated("lost"), timeout=60)
    new = await _secret_uri(operator, "user-luke-connection")
    assert _resets(operator) >= 2
    assert new != old
    assert await _connects(new)
    assert not await _connects(old)
    assert await _published(operator, "GlobalDatabase", "luke") == (new, new)


async def _true(value: bool) -> bool:
    return value
