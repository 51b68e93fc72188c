"""``tenantdb describe``: what an on-call person reads when a user asks "why is my database
suspended?" — against the real operator, the Kubernetes and Neon emulators and a real
PostgreSQL, with a one-second consumption sync."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tenantdb.crypto import EncryptionKey
from tenantdb.reconcile.describe.command import EXIT_NOT_FOUND, EXIT_OK, describe_from_environment
from tenantdb.testing.stack import LocalStack
from tests.factories import database_budget, global_database, workspace_database

OVER_THE_FREE_TIER = 200_000  # CU-seconds: 590 cents, over the free tier's 500


@pytest.fixture
async def budgets(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LocalStack]:
    """The operator with a consumption sync every second; describe configured as the operator."""
    await stack.start_operator(consumption_sync_interval_seconds=1.0)
    monkeypatch.setenv("TENANTDB_METADATA_DATABASE_URL", stack.metadata_url)
    yield stack
    await stack.stop_operator()


async def describe(stack: LocalStack, scope: str, tenant_id: str, *, output: str = "text") -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await describe_from_environment(
        scope, tenant_id, output=output, kube_url=stack.kube_url, stdout=out, stderr=err
    )
    return code, out.getvalue() + err.getvalue()


def _phase(phase: str) -> Any:
    return lambda obj: bool(obj and (obj.get("status") or {}).get("phase") == phase)


async def _secrets(stack: LocalStack, secret_name: str) -> list[str]:
    """What must never be printed: the connection string, its password, its ciphertext."""
    secret = await stack.get("Secret", secret_name)
    assert secret is not None
    encrypted = base64.b64decode(secret["data"]["DATABASE_URL_ENCRYPTED"]).decode()
    uri = EncryptionKey(stack.encryption_key).decrypt(encrypted)
    password = uri.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    return [uri, password, encrypted]


async def test_describe_tells_why_a_user_is_suspended_and_that_the_upgrade_resumed_them(
    budgets: LocalStack,
) -> None:
    stack = budgets
    assert stack.neon is not None
    await stack.apply(database_budget("user-alice", "alice"))
    await stack.apply(global_database("user-alice", "alice"))
    await stack.apply(workspace_database("ws-alice", "alice", "ws-alice"))
    ready = await stack.wait_ready("GlobalDatabase", "user-alice")
    await stack.wait_ready("WorkspaceDatabase", "ws-alice")
    project_id = ready["status"]["projectId"]
    stack.neon.set_usage(project_id, compute_unit_seconds=OVER_THE_FREE_TIER)
    await stack.wait_for("GlobalDatabase", "user-alice", _phase("Suspended"), timeout=15)
    secrets = await _secrets(stack, ready["status"]["secretName"])
    budget = await stack.wait_for(
        "DatabaseBudget", "user-alice", lambda o: bool(o and (o.get("status") or {}).get("exceeded"))
    )
    assert budget is not None
    spent = budget["status"]["totalCostCents"]
    assert spent > 500

    code, text = await describe(stack, "user", "alice")
    assert code == EXIT_OK, text
    assert "user alice" in text
    assert "tier free" in text
    assert "Suspended     yes, since" in text
    assert f"budget enforcement: spent {spent} of 500 cents this period" in text
    assert f"project {project_id}" in text
    assert "endpoint ep-" in text
    assert "disabled (suspended)" in text
    assert "WorkspaceDatabase default/ws-alice" in text  # billed to alice: suspended with her
    assert "last rotated never (not recorded)" in text
    assert not [s for s in secrets if s in text]

    await stack.patch("DatabaseBudget", "user-alice", {"spec": {"tier": "paid"}})
    await stack.wait_for("GlobalDatabase", "user-alice", _phase("Ready"), timeout=15)
    code, raw = await describe(stack, "user", "alice", output="json")
    assert code == EXIT_OK, raw
    report = json.loads(raw)
    assert report["suspended"] == {"suspended": False, "why": None, "since": None}
    assert report["budget"]["tier"] == "paid"
    assert report["budget"]["limitCents"] == 5000
    words = [d for d in report["decisions"] if d["action"] in ("suspend", "resume")]
    assert [(d["action"], d["spendCents"], d["limitCents"], d["decidedBy"]) for d in words] == [
        ("resume", spent, 5000, "budget enforcement"),
        ("suspend", spent, 500, "budget enforcement"),
    ]
    assert words[0]["reason"] == f"tier free -> paid: spent {spent} of 5000 cents this period"
    # Over the limit, the hard stop was armed too; the upgrade lifted it.
    assert {"hard-stop-armed", "hard-stop-lifted"} <= {d["action"] for d in report["decisions"]}
    glob = next(r for r in report["resources"] if r["kind"] == "GlobalDatabase")
    assert (glob["projectId"], glob["region"], glob["compute"]) == (project_id, "aws-us-east-2", "enabled")
    assert glob["credentialsRotatedAt"] is None
    assert report["metadataRow"]["projectId"] == project_id
    assert not [s for s in secrets if s in raw]

    # The workspace's own view carries its user's budget decisions (they suspended it).
    code, raw = await describe(stack, "workspace", "ws-alice", output="json")
    workspace = json.loads(raw)
    assert workspace["userId"] == "alice"
    assert [d["action"] for d in workspace["decisions"] if d["action"] in ("suspend", "resume")] == [
        "resume",
        "suspend",
    ]
    assert [r["name"] for r in workspace["resources"]] == ["ws-alice"]


async def test_describe_of_an_unknown_tenant_says_so_with_its_own_exit_code(budgets: LocalStack) -> None:
    code, text = await describe(budgets, "user", "nobody")
    assert code == EXIT_NOT_FOUND
    assert "nothing is known about user nobody" in text


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_command_is_a_kubectl_plugin(tmp_path: Path) -> None:
    """``kubectl tenantdb ...`` runs ``kubectl-tenantdb``, installed beside ``tenantdb``."""
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "kubectl-tenantdb").exists()
    run = subprocess.run(
        ["kubectl", "tenantdb", "describe", "--help"],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin:/usr/local/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "usage: kubectl tenantdb describe" in run.stdout
    assert "{user,workspace}" in run.stdout
