"""Secrets never appear in logs, events, status or test output."""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets as random_secrets
from typing import Any
from urllib.parse import quote

import pytest

from tenantdb.api import ROTATE_CREDENTIALS_ANNOTATION
from tenantdb.crypto import EncryptionKey
from tenantdb.handlers.rekey import rekey_from_environment
from tenantdb.testing.stack import LocalStack
from tests.factories import global_database, workspace_database


async def test_no_password_key_or_connection_string_in_logs_events_or_status(
    operator: LocalStack, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    await operator.apply(global_database("user-leak", "leaky", connectionSecret={"includePlaintext": True}))
    await operator.apply(
        workspace_database("ws-leak", "leaky", "ws-leak", connectionSecret={"includePlaintext": True})
    )
    objects = [
        await operator.wait_ready("GlobalDatabase", "user-leak"),
        await operator.wait_ready("WorkspaceDatabase", "ws-leak"),
    ]
    secrets_seen: list[str] = [operator.encryption_key]
    assert operator.neon is not None
    secrets_seen.append(operator.neon.api_key)
    for obj in objects:
        secret = await operator.get("Secret", obj["status"]["secretName"])
        assert secret is not None
        data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        secrets_seen += [
            data["PGPASSWORD"],
            quote(data["PGPASSWORD"], safe=""),
            data["DATABASE_URL"],
            data["DATABASE_URL_POOLED"],
        ]
    # Exercise the failure paths too: an outage while deleting logs errors.
    operator.neon.options.down = True
    await operator.delete("WorkspaceDatabase", "ws-leak")
    import asyncio

    await asyncio.sleep(2.5)
    operator.neon.options.down = False
    await operator.wait_gone("WorkspaceDatabase", "ws-leak", timeout=60)

    events = json.dumps(await operator.events_for("user-leak") + await operator.events_for("ws-leak"))
    statuses = json.dumps([await operator.get("GlobalDatabase", "user-leak")])
    captured = capsys.readouterr()
    haystacks = {
        "logs": caplog.text + "\n".join(str(r.exc_info) for r in caplog.records),
        "events": events,
        "status": statuses,
        "stdout/stderr": captured.out + captured.err,
    }
    assert len(caplog.records) > 20  # the operator really logged at debug level
    assert any(r.name == "kopf.objects" for r in caplog.records)  # ...its own thread included
    # A Secret's data travels base64-encoded (API responses logged at DEBUG): decode what
    # looks like base64 and search that too.
    for where, text in haystacks.items():
        decoded = "\n".join(_base64_decoded(text))
        for secret in secrets_seen:
            assert secret not in text, f"a secret leaked into {where}"
            assert secret not in decoded, f"a base64-encoded secret leaked into {where}"


async def test_no_password_or_key_of_a_rotation_or_a_key_change_in_logs_events_or_status(
    stack: LocalStack,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old_key = stack.encryption_key
    await stack.start_operator()
    await stack.apply(global_database("user-rot", "rot", connectionSecret={"includePlaintext": True}))
    await stack.wait_ready("GlobalDatabase", "user-rot")
    seen = [old_key, *await _plaintexts(stack, "user-rot-connection")]
    await stack.patch(
        "GlobalDatabase", "user-rot", {"metadata": {"annotations": {ROTATE_CREDENTIALS_ANNOTATION: "leak"}}}
    )
    await stack.wait_for(
        "GlobalDatabase",
        "user-rot",
        lambda o: (
            ((o or {}).get("status") or {}).get("credentialsRotationHandled") == "leak"
            and not o["status"].get("credentialsRotationStartedAt")
        ),  # type: ignore[index]
        what="the rotation",
    )
    seen += await _plaintexts(stack, "user-rot-connection")
    await stack.stop_operator()

    # A key change: tenantdb rekey, then the operator with the new key.
    new_key = random_secrets.token_hex(32)
    seen.append(new_key)
    monkeypatch.setenv("ENCRYPTION_KEY", new_key)
    monkeypatch.setenv("TENANTDB_PREVIOUS_ENCRYPTION_KEYS", old_key)
    monkeypatch.setenv("TENANTDB_METADATA_DATABASE_URL", stack.metadata_url)
    said: list[str] = []
    await rekey_from_environment(
        writes_per_second=100, dry_run=False, kube_url=stack.kube_url, say=said.append
    )
    await stack.start_operator(encryption_key=new_key, previous_encryption_keys=old_key)
    await stack.wait_ready("GlobalDatabase", "user-rot")

    captured = capsys.readouterr()
    haystacks = {
        "logs": caplog.text + "\n".join(str(r.exc_info) for r in caplog.records),
        "events": json.dumps(await stack.events_for("user-rot")),
        "status": json.dumps(await stack.get("GlobalDatabase", "user-rot")),
        "rekey output": "\n".join(said),
        "stdout/stderr": captured.out + captured.err,
    }
    assert "CredentialsRotated" in haystacks["events"]
    for where, text in haystacks.items():
        decoded = "\n".join(_base64_decoded(text))
        for secret in seen:
            assert secret not in text, f"a secret leaked into {where}"
            assert secret not in decoded, f"a base64-encoded secret leaked into {where}"


async def _plaintexts(stack: LocalStack, secret_name: str) -> list[str]:
    secret: dict[str, Any] | None = await stack.get("Secret", secret_name)
    assert secret is not None
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert EncryptionKey(stack.encryption_key).decrypt(data["DATABASE_URL_ENCRYPTED"]) == data["DATABASE_URL"]
    return [
        data["PGPASSWORD"],
        quote(data["PGPASSWORD"], safe=""),
        data["DATABASE_URL"],
        data["DATABASE_URL_POOLED"],
    ]


def _base64_decoded(text: str) -> list[str]:
    found = []
    for token in re.findall(r"[A-Za-z0-9+/]{16,}={0,2}", text):
        try:
            found.append(base64.b64decode(token + "=" * (-len(token) % 4)).decode("utf-8"))
        except (binascii.Error, ValueError):
            continue
    return found
