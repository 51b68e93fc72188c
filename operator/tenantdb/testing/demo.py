"""``tenantdb demo``: the whole product on one machine, no cloud account, no cluster.

A real PostgreSQL server in a temporary folder, the Neon API emulator on top of it, the
Kubernetes API emulator, and the real operator (kopf) in between. The samples in
``manifests/samples/`` are applied as ``kubectl apply`` would; then the demo proves each
connection string works and that deleting a workspace removes everything it had; then it
spends past the user's budget (usage set on the emulator), shows the databases suspended and
their connection strings refused, upgrades the tier and shows them back. It ends with
``tenantdb describe user`` of the samples' user: that story, from the operator's own record.

The metadata DB is Sim-shaped (``tenantdb.testing.sim_schema``) and the Sim sync is on: the
samples' users and workspaces are first written into Sim's tables as Sim writes them (the samples,
applied by hand, win over the sync, which says so in Events). Then the zero-code path: a user
registers, creates a workspace, changes plan (and their compute grows with their DatabaseTier:
``_compute``), Sim's personal save drops GLOBAL_DB_URL, the workspace is archived; rows only, as
Sim writes them, and the operator follows.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from tenantdb.api import Scope, Tenant
from tenantdb.crypto import EncryptionKey
from tenantdb.reconcile.describe import as_text, describe_with
from tenantdb.redact import install_redaction
from tenantdb.testing.manifests import load_manifests
from tenantdb.testing.neon import EmulatorOptions
from tenantdb.testing.stack import LocalStack

__all__ = ["run_demo"]

_START = time.monotonic()


def _say(message: str) -> None:
    print(f"[{time.monotonic() - _START:6.1f}s] {message}", flush=True)


def _samples_folder() -> Path:
    for candidate in (
        Path.cwd() / "manifests" / "samples",
        Path(__file__).resolve().parents[3] / "manifests" / "samples",
    ):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("manifests/samples not found: run the demo from the repository root")


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows)


_SYNC_SECONDS = 1.0  # the consumption sync interval in the demo (900 s by default)
_CU_SECONDS_EACH = 100_000  # 27.8 CU-hours at $0.106: 295 cents per database
_REFUSED = "not currently accepting connections"  # PostgreSQL's answer for a disabled endpoint


def _condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for condition in ((obj or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return {}


def _is_suspended(obj: dict[str, Any] | None) -> bool:
    ready = _condition(obj, "Ready")
    return bool(
        ((obj or {}).get("status") or {}).get("phase") == "Suspended"
        and ready.get("status") == "False"
        and ready.get("reason") == "BudgetExceeded"
    )


def _is_resumed(obj: dict[str, Any] | None) -> bool:
    phase = ((obj or {}).get("status") or {}).get("phase")
    return bool(phase == "Ready" and _condition(obj, "Ready").get("status") == "True")


async def _try_query(uri: str) -> str:
    """``ok``, ``refused`` (the endpoint is disabled) or ``failed``; never the error's text."""
    try:
        await _query_through(uri)
    except psycopg.OperationalError as exc:
        return "refused" if _REFUSED in str(exc) else "failed"
    return "ok"


async def _budget_demo(
    stack: LocalStack, key: EncryptionKey, budget_name: str, existing: list[tuple[str, str]]
) -> bool:
    """Spend past the budget, see the databases suspended; upgrade, see them back. True if all held.

    ``existing``: (kind, name) of the databases still there.
    """
    assert stack.neon is not None
    budget = await stack.get("DatabaseBudget", budget_name)
    assert budget is not None
    user_id = budget["spec"]["userId"]
    databases: list[tuple[str, str, str, str]] = []  # kind, name, project id, uri
    for kind, name in existing:
        obj = await stack.get(kind, name)
        if obj is None or obj["spec"].get("userId") != user_id:
            continue
        secret = await stack.get("Secret", obj["status"]["secretName"])
        assert secret is not None
        uri = key.decrypt(base64.b64decode(secret["data"]["DATABASE_URL_ENCRYPTED"]).decode())
        databases.append((kind, name, obj["status"]["projectId"], uri))
    ok = bool(databases)
    limit = (budget.get("status") or {}).get("limitCents")
    hours = _CU_SECONDS_EACH / 3600
    _say(
        f"budget: user {user_id} spends {hours:.1f} CU-hours on each of {len(databases)} databases "
        f"(usage set on the Neon emulator); tier {budget['spec']['tier']} allows {limit} cents ..."
    )
    for _, _, project_id, _ in databases:
        stack.neon.set_usage(project_id, compute_unit_seconds=_CU_SECONDS_EACH)
    started = time.monotonic()
    over = await stack.wait_for(
        "DatabaseBudget",
        budget_name,
        lambda o: bool(o and (o.get("status") or {}).get("exceeded") is True),
        timeout=30,
        what="exceeded",
    )
    assert over is not None
    status = over["status"]
    _say(
        f"  DatabaseBudget {budget_name}: spent {status['totalCostCents']} of {status['limitCents']} cents "
        f"-> exceeded (found by the consumption sync, every {_SYNC_SECONDS:.0f} s here)"
    )
    for kind, name, _, uri in databases:
        obj = await stack.wait_for(kind, name, _is_suspended, timeout=30, what="phase Suspended")
        assert obj is not None
        outcome = await _try_query(uri)
        _say(
            f"  {kind} {name}: {obj['status']['phase']} (Ready=False, BudgetExceeded); "
            f"query through its connection string: {outcome.upper() if outcome != 'refused' else 'refused'}"
        )
        ok = ok and outcome == "refused"
    rows = await stack.metadata_query(
        "select budget_exceeded from user_db_budget where user_id = %s", user_id
    )
    _say(f"  metadata DB: user_db_budget.budget_exceeded = {rows[0][0] if rows else 'MISSING'}")
    ok = ok and rows == [(True,)]
    _say(f"  suspended {time.monotonic() - started:.1f} s after the usage was reported")

    _say(f"upgrading: DatabaseBudget {budget_name} tier -> paid ...")
    await stack.patch("DatabaseBudget", budget_name, {"spec": {"tier": "paid"}})
    started = time.monotonic()
    for kind, name, _, uri in databases:
        await stack.wait_for(kind, name, _is_resumed, timeout=30, what="Ready again")
        outcome = await _try_query(uri)
        _say(f"  {kind} {name}: Ready; query through its connection string: {outcome.upper()}")
        ok = ok and outcome == "ok"
    upgraded = await stack.wait_for(
        "DatabaseBudget",
        budget_name,
        lambda o: bool(o and (o.get("status") or {}).get("tier") == "paid"),
        timeout=30,
        what="tier paid",
    )
    assert upgraded is not None
    status = upgraded["status"]
    exceeded = status.get("exceeded")
    _say(
        f"  DatabaseBudget {budget_name}: tier paid, spent {status['totalCostCents']} of "
        f"{status['limitCents']} cents -> {'STILL EXCEEDED' if exceeded else 'within budget'}"
    )
    ok = ok and exceeded is False
    _say(f"  resumed {time.monotonic() - started:.1f} s after the upgrade")
    return ok


async def _zero_code_demo(stack: LocalStack, key: EncryptionKey) -> bool:
    """Rows written as Sim writes them; the resources, databases, env vars and budget follow."""
    sim = stack.sim
    _say('zero-code Sim: a user registers (a row in Sim\'s "user" table, nothing else) ...')
    started = time.monotonic()
    user = await sim.register_user(name="Grace")
    name = f"user-{user}"
    await stack.wait_for("GlobalDatabase", name, lambda o: o is not None, timeout=30, what="creation")
    await stack.wait_for("DatabaseBudget", name, lambda o: o is not None, timeout=30, what="creation")
    _say(
        f"  GlobalDatabase and DatabaseBudget {name} made "
        f"{time.monotonic() - started:.2f} s after Sim's commit"
    )
    await stack.wait_ready("GlobalDatabase", name, timeout=60)
    ok = "GLOBAL_DB_URL" in await _eventually_keys(sim.personal_env, user, "GLOBAL_DB_URL")
    _say(f"  Ready {time.monotonic() - started:.1f} s after; GLOBAL_DB_URL in Sim's environment row: {ok}")

    _say("zero-code Sim: the user saves personal env vars in Sim (the whole object replaced) ...")
    await sim.save_personal_env(user, {"OPENAI_API_KEY": key.encrypt("sk-demo")})
    started = time.monotonic()
    back = "GLOBAL_DB_URL" in await _eventually_keys(sim.personal_env, user, "GLOBAL_DB_URL")
    _say(
        f"  GLOBAL_DB_URL {'back' if back else 'NOT BACK'} {time.monotonic() - started:.2f} s after the save"
    )
    ok = ok and back

    _say("zero-code Sim: the user creates a workspace and invites a member ...")
    member = await sim.register_user(name="Linus")
    workspace = await sim.create_workspace(user, name="Research")
    await sim.add_member(workspace, member)
    ws_name = f"workspace-{workspace}"
    await stack.wait_ready("WorkspaceDatabase", ws_name, timeout=60)
    keys = await _eventually_keys(sim.workspace_env, workspace, "AGENT_DB_URL")
    credentials = await sim.workspace_env_credentials(workspace)
    members = sorted(role for _, role in credentials.get("AGENT_DB_URL", set()))
    _say(
        f"  WorkspaceDatabase {ws_name} Ready; "
        f"AGENT_DB_URL in workspace_environment: {'AGENT_DB_URL' in keys}"
    )
    _say(f"  credential rows for it: {', '.join(members) or 'NONE'} (the owner and the member)")
    ok = ok and "AGENT_DB_URL" in keys and members == ["admin", "member"]

    before = await _compute(stack, "GlobalDatabase", name)
    _say("zero-code Sim: the user subscribes to Sim's Pro plan (pro_6000) ...")
    await sim.subscribe(user, "pro_6000")
    upgraded = await stack.wait_for(
        "DatabaseBudget", name, lambda o: ((o or {}).get("status") or {}).get("tier") == "paid", timeout=30
    )
    assert upgraded is not None
    _say(f"  DatabaseBudget {name}: tier paid, limit {upgraded['status'].get('limitCents')} cents")
    # The user's compute follows the new tier (the DatabaseTier objects of manifests/samples).
    after = await _compute(stack, "GlobalDatabase", name, tier="paid")
    _say(f"  GlobalDatabase {name}: compute {before} -> {after} (the paid tier's, on the Neon endpoint)")
    ok = ok and after != before

    _say("zero-code Sim: the workspace is archived (Sim's delete) ...")
    await sim.archive_workspace(workspace)
    await stack.wait_gone("WorkspaceDatabase", ws_name, timeout=60)
    _say(f"  WorkspaceDatabase {ws_name} deleted (deletionPolicy Retain for archives: the project is kept)")
    return ok


async def _compute(stack: LocalStack, kind: str, name: str, *, tier: str | None = None) -> str:
    """A database's compute as last applied on Neon (``status.applied``), once it follows
    ``tier`` (``None``: whatever it follows now): "0.25-2 CU (tier paid)"."""

    def follows(obj: dict[str, Any] | None) -> bool:
        applied = ((obj or {}).get("status") or {}).get("applied") or {}
        return bool(applied) and (tier is None or applied.get("tier") == tier)

    obj = await stack.wait_for(kind, name, follows, timeout=30, what=f"settings of tier {tier}")
    assert obj is not None
    applied = obj["status"]["applied"]
    return f"{applied['minCu']:g}-{applied['maxCu']:g} CU (tier {applied.get('tier')})"


async def _describe_demo(stack: LocalStack, user_id: str) -> bool:
    """The demo's story as an on-call person reads it, from the operator's own record: created,
    suspended over budget, resumed on the upgrade (``tenantdb describe user``)."""
    _say(f"$ tenantdb describe user {user_id}   (or: kubectl tenantdb describe user {user_id})")
    report = await describe_with(stack.settings(), Tenant(Scope.GLOBAL, user_id), kube_url=stack.kube_url)
    print("\n" + as_text(report), flush=True)
    told = [d.action for d in report.decisions if d.action in ("suspend", "resume")]
    ok = (
        told[:2] == ["resume", "suspend"]
        and not report.suspension.suspended
        and any(r.kind == "GlobalDatabase" and r.project_id for r in report.resources)
    )
    if not ok:
        _say(f"  describe did NOT tell the story: decisions {told}, suspended {report.suspension.suspended}")
    return ok


async def _eventually_keys(read: Any, owner: str, wanted: str, timeout: float = 15.0) -> set[str]:
    deadline = time.monotonic() + timeout
    keys: set[str] = set()
    while time.monotonic() < deadline:
        keys = set(await read(owner))
        if wanted in keys:
            return keys
        await asyncio.sleep(0.05)
    return keys


async def _query_through(uri: str) -> tuple[str, str]:
    async with await psycopg.AsyncConnection.connect(uri, connect_timeout=10) as conn:
        cursor = await conn.execute("select current_database(), current_user")
        row = await cursor.fetchone()
        assert row is not None
        return str(row[0]), str(row[1])


async def _demo() -> int:
    samples = load_manifests(_samples_folder())
    databases = [m for m in samples if m["kind"] in ("GlobalDatabase", "WorkspaceDatabase")]
    _say("starting PostgreSQL, the Neon API emulator and the Kubernetes API emulator ...")
    options = EmulatorOptions(
        latency_seconds=(0.02, 0.08), create_latency_seconds=(0.3, 0.8), operation_seconds=0.5
    )
    async with LocalStack(
        neon_options=options,
        sim_schema=True,
        settings_overrides={
            "resync_interval_seconds": 30.0,
            "consumption_sync_interval_seconds": _SYNC_SECONDS,
            "sim_sync": True,
            "sim_namespace": "default",
        },
    ) as stack:
        assert stack.neon is not None
        tls = "TLS on" if stack.postgres.ssl else "TLS off"
        _say(
            f"PostgreSQL on 127.0.0.1:{stack.postgres.port} ({tls}); Neon API at {stack.neon.base_url}; "
            f"Kubernetes API at {stack.kube_url}"
        )
        # The samples' tenants, as Sim has them: users first, then their workspaces.
        for manifest in samples:
            if manifest["kind"] == "GlobalDatabase":
                await stack.sim.register_user(
                    user_id=manifest["spec"]["userId"], name=manifest["spec"]["userId"]
                )
        for manifest in samples:
            if manifest["kind"] == "WorkspaceDatabase":
                spec = manifest["spec"]
                await stack.sim.create_workspace(spec["userId"], workspace_id=spec["workspaceId"])
        for manifest in samples:
            await stack.apply(manifest)
            _say(f"applied {manifest['kind']} {manifest['metadata']['name']}")
        await stack.start_operator()
        _say("operator running (kopf, watching every namespace; following Sim's tables into 'default')")

        _say(f"waiting for {len(databases)} databases to be Ready ...")
        ready: dict[str, dict[str, Any]] = {}
        for manifest in databases:
            name = manifest["metadata"]["name"]
            ready[name] = await stack.wait_ready(manifest["kind"], name, timeout=120)
            _say(f"  {manifest['kind']} {name}: Ready (project {ready[name]['status']['projectId']})")

        rows = [["KIND", "NAME", "PHASE", "PROJECT", "SECRET"]]
        for manifest in databases:
            status = ready[manifest["metadata"]["name"]]["status"]
            rows.append(
                [
                    manifest["kind"],
                    manifest["metadata"]["name"],
                    status["phase"],
                    status["projectId"],
                    status["secretName"],
                ]
            )
        budget = next((m for m in samples if m["kind"] == "DatabaseBudget"), None)
        if budget is not None:
            obj = await stack.wait_for(
                "DatabaseBudget",
                budget["metadata"]["name"],
                lambda o: bool(o and (o.get("status") or {}).get("tier")),
                what="status",
            )
            assert obj is not None
            limit = obj["status"].get("limitCents")
            rows.append(
                [
                    "DatabaseBudget",
                    budget["metadata"]["name"],
                    f"tier {obj['status']['tier']}",
                    f"limit {limit} cents" if limit is not None else "unlimited",
                    "-",
                ]
            )
        print("\n" + _table(rows) + "\n", flush=True)

        key = EncryptionKey(stack.encryption_key)
        _say("proving each connection string works (decrypted from its Secret, Sim's format) ...")
        for manifest in databases:
            status = ready[manifest["metadata"]["name"]]["status"]
            secret = await stack.get("Secret", status["secretName"])
            assert secret is not None
            uri = key.decrypt(base64.b64decode(secret["data"]["DATABASE_URL_ENCRYPTED"]).decode())
            database, user = await _query_through(uri)
            _say(
                f"  {manifest['metadata']['name']}: `select current_database(), current_user` -> "
                f"{database}, {user}"
            )

        env_rows = await stack.metadata_query("select user_id, variables from environment")
        for user_id, variables in env_rows:
            keys = sorted((json.loads(variables) if isinstance(variables, str) else variables).keys())
            _say(f"  metadata DB: environment of user {user_id} has {', '.join(keys)} (encrypted)")

        victim = next(m for m in reversed(databases) if m["kind"] == "WorkspaceDatabase")
        name = victim["metadata"]["name"]
        workspace_id = victim["spec"]["workspaceId"]
        project_id = ready[name]["status"]["projectId"]
        _say(f"deleting WorkspaceDatabase {name} (the workspace was deleted on the platform) ...")
        # Sim's row first, as the platform would: else the sync would make the workspace its own.
        await stack.sim.delete_workspace(workspace_id)
        await stack.delete("WorkspaceDatabase", name)
        await stack.wait_gone("WorkspaceDatabase", name, timeout=60)
        still_there = project_id in {p["id"] for p in stack.neon.projects()}
        db_rows = await stack.metadata_query(
            "select 1 from workspace_database where workspace_id = %s", workspace_id
        )
        env = await stack.metadata_query(
            "select variables from workspace_environment where workspace_id = %s", workspace_id
        )
        left: set[str] = set()
        for (variables,) in env:
            left |= set(json.loads(variables) if isinstance(variables, str) else variables)
        secret_gone = await stack.get("Secret", ready[name]["status"]["secretName"]) is None
        _say(f"  Neon project {project_id}: {'STILL THERE' if still_there else 'deleted'}")
        _say(f"  workspace_database row: {'STILL THERE' if db_rows else 'removed'}")
        _say(f"  AGENT_DB_URL of {workspace_id}: {'STILL THERE' if 'AGENT_DB_URL' in left else 'removed'}")
        _say(f"  Secret: {'removed (owned by the resource)' if secret_gone else 'STILL THERE'}")
        ok = not still_there and not db_rows and "AGENT_DB_URL" not in left and secret_gone
        if budget is not None:
            existing = [(m["kind"], m["metadata"]["name"]) for m in databases if m is not victim]
            ok = await _budget_demo(stack, key, budget["metadata"]["name"], existing) and ok
        ok = await _zero_code_demo(stack, key) and ok
        calls = len(stack.neon.calls())
        _say(f"Neon API calls made in all: {calls}")
        if budget is not None:
            ok = await _describe_demo(stack, budget["spec"]["userId"]) and ok
        _say("stopping ...")
    if ok:
        _say("demo finished: every step checked out")
        return 0
    _say("demo FAILED: something was left behind (see above)")
    return 1


def run_demo(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    install_redaction()
    return asyncio.run(_demo())
