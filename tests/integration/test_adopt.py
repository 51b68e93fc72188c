"""tenantdb adopt, tried as a platform that provisioned its own databases would (Sim's schema,
the seed's rows, projects and env vars in Neon and real PostgreSQL): the dry run says what would
happen and writes nothing; the switch-on makes the sync's resources with progress, resumably."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import kopf
import psycopg
import pytest
import yaml
from psycopg import sql
from psycopg.types.json import Json

from tenantdb.cli import main
from tenantdb.crypto import EncryptionKey
from tenantdb.store import migrate_database
from tenantdb.testing.postgres import PostgresServer
from tenantdb.testing.sim_schema import new_id
from tenantdb.testing.stack import LocalStack

NAMESPACE = "default"


@pytest.fixture
async def platform(postgres_server: PostgresServer) -> AsyncIterator[LocalStack]:
    async with LocalStack(postgres=postgres_server, sim_schema=True) as local:
        await migrate_database(local.metadata_url)  # the seed's tables are the operator's, column for column
        yield local


def _environment(stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The operator's settings, as `tenantdb run` reads them, and a kubeconfig for the emulator."""
    assert stack.neon is not None
    for name, value in {
        "ENCRYPTION_KEY": stack.encryption_key,
        "NEON_API_KEY": stack.neon.api_key,
        "NEON_ORG_ID": stack.neon.org_id,
        "TENANTDB_NEON_API_URL": stack.neon.base_url,
        "TENANTDB_METADATA_DATABASE_URL": stack.metadata_url,
        "TENANTDB_SIM_NAMESPACE": NAMESPACE,
        "TENANTDB_SIM_WRITES_PER_SECOND": "50",
    }.items():
        monkeypatch.setenv(name, value)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": stack.kube_url}}],
        "users": [{"name": "nobody", "user": {}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "nobody"}}],
        "current-context": "emulator",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setattr(kopf, "login_with_service_account", lambda **_: None)  # as on a laptop


async def _tenantdb(*argv: str) -> int:
    """The command, as a shell runs it (its own event loop, in a thread beside the emulators')."""
    return await asyncio.to_thread(main, list(argv))


class Seed:
    """What the in-app integration left: a Neon project per tenant, its row and its env var."""

    def __init__(self, stack: LocalStack) -> None:
        assert stack.neon is not None
        self.stack = stack
        self.key = EncryptionKey(stack.encryption_key)
        self.neon = httpx.AsyncClient(
            base_url=stack.neon.base_url,
            headers={"Authorization": f"Bearer {stack.neon.api_key}"},
            timeout=30,
        )
        self.passwords: list[str] = []

    async def project(self, name: str) -> tuple[str, str]:
        answer = await self.neon.post("/projects", json={"project": {"name": name}})
        assert answer.status_code == 201
        body = answer.json()
        uri = body["connection_uris"][0]["connection_uri"]
        self.passwords.append(body["roles"][0]["password"])
        return body["project"]["id"], uri

    async def row(
        self, table: str, owner: str, project: str, uri: str, *, ownership: str = "platform"
    ) -> None:
        column = "user_id" if table == "user_global_database" else "workspace_id"
        await self.stack.metadata_query(
            f"INSERT INTO {table} (id, {column}, ownership_type, neon_project_id, neon_branch_id, "
            "neon_connection_uri, database_name) "
            "VALUES (%s, %s, %s, %s, 'br-main', %s, 'neondb') RETURNING 1",
            new_id(),
            owner,
            ownership,
            project,
            self.key.encrypt(uri),
        )

    async def env(self, table: str, owner: str, key: str, uri: str) -> None:
        column = "user_id" if table == "environment" else "workspace_id"
        await self.stack.metadata_query(
            f"INSERT INTO {table} (id, {column}, variables) VALUES (%s, %s, %s) RETURNING 1",
            new_id(),
            owner,
            Json({key: self.key.encrypt(uri), "OPENAI_API_KEY": self.key.encrypt("sk-not-ours")}),
        )


async def _database_state(stack: LocalStack) -> dict[str, str]:
    """Every table of the metadata DB and a digest of all its rows: any write shows here."""
    async with await psycopg.AsyncConnection.connect(stack.metadata_url, autocommit=True) as conn:
        cursor = await conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        tables = [row[0] for row in await cursor.fetchall()]
        state = {}
        for table in tables:
            cursor = await conn.execute(
                sql.SQL(
                    "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {} t"
                ).format(sql.Identifier(table))
            )
            row = await cursor.fetchone()
            assert row is not None
            state[table] = str(row[0])
        return state


async def test_the_dry_run_says_what_would_happen_and_writes_nothing(
    platform: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, sim = platform, platform.sim
    assert stack.neon is not None
    seed = Seed(stack)
    ada, bob, cay, dee, eve = [await sim.register_user(name=n) for n in ("Ada", "Bob", "Cay", "Dee", "Eve")]
    team = await sim.create_workspace(ada)
    old = await sim.create_workspace(ada)
    await sim.archive_workspace(old)
    # Ada: the platform's project, row and env var, all agreeing; her workspace too.
    project, uri = await seed.project(f"sim-user-{ada}")
    await seed.row("user_global_database", ada, project, uri)
    await seed.env("environment", ada, "GLOBAL_DB_URL", uri)
    ws_project, ws_uri = await seed.project(f"sim-ws-{team}")
    await seed.row("workspace_database", team, ws_project, ws_uri)
    await seed.env("workspace_environment", team, "AGENT_DB_URL", ws_uri)
    # Cay brought her own database: never touched.
    own, own_uri = await seed.project("cays-own-database")
    await seed.row("user_global_database", cay, own, own_uri, ownership="user")
    # Dee's row names a project the organisation does not have.
    await seed.row("user_global_database", dee, "gone-project-404", uri)
    # Eve's env var reaches another database than her row's.
    eve_project, eve_uri = await seed.project(f"sim-user-{eve}")
    await seed.row("user_global_database", eve, eve_project, eve_uri)
    await seed.env("environment", eve, "GLOBAL_DB_URL", own_uri)
    # An archived workspace's row, and a project named as the operator names them with no row.
    old_project, old_uri = await seed.project(f"sim-ws-{old}")
    await seed.row("workspace_database", old, old_project, old_uri)
    await seed.project("tenantdb-g-ghost-0f1e2d3c-0000-4000-8000-000000000001")
    await seed.neon.aclose()

    _environment(stack, monkeypatch, tmp_path)
    before = await _database_state(stack)
    projects_before = stack.neon.projects()
    stack.neon.reset_calls()
    assert await _tenantdb("adopt", "--dry-run", "--output", "json") == 0
    out = capsys.readouterr().out
    report = json.loads(out)

    # Nothing written: the metadata DB row for row, Neon (only reads), the cluster.
    assert await _database_state(stack) == before
    assert stack.neon.projects() == projects_before
    calls = stack.neon.calls()
    assert calls
    assert {c.method for c in calls} == {"GET"}  # not one create, delete, patch or recover
    assert report["neonCalls"] == len(calls)  # every call counted: the key check and one page
    assert await stack.get("GlobalDatabase", f"user-{ada}") is None

    actions = {(t["scope"], t["tenantId"]): t["action"] for t in report["tenants"]}
    assert actions == {
        ("user", ada): "adopt",
        ("workspace", team): "adopt",
        ("user", bob): "create",
        ("user", cay): "leave-alone",
        ("user", dee): "blocked",
        ("user", eve): "adopt",
    }
    assert report["counts"] == {"adopt": 3, "create": 1, "leaveAlone": 1, "blocked": 1, "inconsistencies": 4}
    problems = {(i["problem"], i["tenantId"]) for i in report["inconsistencies"]}
    assert problems == {
        ("project-not-found", dee),
        ("env-var-differs", eve),
        ("row-without-tenant", old),
        ("project-without-row", None),
    }
    adopted = next(t for t in report["tenants"] if t["tenantId"] == ada)
    assert (adopted["projectId"], adopted["name"], adopted["namespace"]) == (
        project,
        f"user-{ada}",
        NAMESPACE,
    )
    for secret in [*seed.passwords, "postgresql://", stack.metadata_url]:
        assert secret not in out

    # The same as a table, for people.
    assert await _tenantdb("adopt", "--dry-run") == 0
    text = capsys.readouterr().out
    assert "nothing was written" in text
    assert f"adopt        user {ada}" in text
    assert all(password not in text for password in seed.passwords)


def _final(out: str) -> dict[str, Any]:
    return dict(json.loads(out.strip().splitlines()[-1]))


async def test_the_switch_on_makes_the_syncs_resources_with_progress_and_resumes(
    platform: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, sim = platform, platform.sim
    users = [await sim.register_user(name=n) for n in ("Ada", "Bob")]
    workspace = await sim.create_workspace(users[0])
    await sim.subscribe(users[1], "pro")
    _environment(stack, monkeypatch, tmp_path)
    await stack.start_operator()  # the Sim sync off: only adopt makes them

    # Made before (an earlier run cut short): left as it is, counted as there.
    await stack.apply(
        {
            "apiVersion": "tenantdb.io/v1alpha1",
            "kind": "DatabaseBudget",
            "metadata": {"name": f"user-{users[0]}", "labels": {"tenantdb.io/managed-by": "sim-sync"}},
            "spec": {"userId": users[0], "tier": "free"},
        }
    )
    assert await _tenantdb("adopt", "--progress-seconds", "0.5", "--timeout", "120") == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("adopt: 1 of 5 exist (0 created now, 1 already there)")
    assert lines[-1].startswith("adopt: done in ")
    assert "5 of 5 exist (4 created now, 1 already there), 5 Ready" in lines[-1]
    for name in (f"user-{users[0]}", f"user-{users[1]}"):
        glob = await stack.wait_ready("GlobalDatabase", name)
        assert glob["metadata"]["labels"]["tenantdb.io/managed-by"] == "sim-sync"
    await stack.wait_ready("WorkspaceDatabase", f"workspace-{workspace}")
    budget = await stack.get("DatabaseBudget", f"user-{users[1]}")
    assert budget is not None
    assert budget["spec"]["tier"] == "paid"  # the very spec the sync would give it

    # Run again: nothing to make, everything Ready; the JSON lines for a script.
    assert await _tenantdb("adopt", "--output", "json", "--progress-seconds", "0.5") == 0
    final = _final(capsys.readouterr().out)
    assert (final["wanted"], final["created"], final["existing"], final["ready"]) == (5, 0, 5, 5)
    assert (final["final"], final["done"]) == (True, True)
    await stack.stop_operator()


async def test_the_switch_on_stops_at_its_timeout_and_says_how_to_go_on(
    platform: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await platform.sim.register_user(name="Ada")
    _environment(platform, monkeypatch, tmp_path)
    # No operator runs: the resources are made, never Ready.
    assert await _tenantdb("adopt", "--progress-seconds", "0.2", "--timeout", "1") == 3
    assert "not done" in capsys.readouterr().out
    assert await _tenantdb("adopt", "--no-wait") == 0
    assert "2 of 2 exist (0 created now, 2 already there)" in capsys.readouterr().out
