"""tenantdb_orphaned_project: projects released after the delete give-up time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tenantdb.api import Scope, Tenant
from tenantdb.crypto import EncryptionKey
from tenantdb.store import MetadataStore, OrphanRow
from tenantdb.store.claims import Claimant
from tenantdb.store.report import orphans_from_environment

from .conftest import KEY_HEX, Database


async def test_recorded_orphans_are_listed_oldest_first(store: MetadataStore) -> None:
    assert await store.list_orphans() == []
    start = datetime.now(UTC) - timedelta(seconds=5)
    await store.record_orphan(
        kind="GlobalDatabase", namespace="ns", name="alice", project_id="p1", reason="423"
    )
    await store.record_orphan(
        kind="WorkspaceDatabase", namespace="ns", name="ws", project_id="p2", reason="500"
    )
    orphans = await store.list_orphans()
    assert [(o.kind, o.namespace, o.name, o.project_id, o.reason) for o in orphans] == [
        ("GlobalDatabase", "ns", "alice", "p1", "423"),
        ("WorkspaceDatabase", "ns", "ws", "p2", "500"),
    ]
    assert all(isinstance(o, OrphanRow) and start <= o.recorded_at <= datetime.now(UTC) for o in orphans)


async def test_recording_the_same_project_again_updates_it_instead_of_duplicating(
    store: MetadataStore,
) -> None:
    await store.record_orphan(
        kind="GlobalDatabase", namespace="ns", name="alice", project_id="p1", reason="first"
    )
    (first,) = await store.list_orphans()
    await store.record_orphan(
        kind="GlobalDatabase", namespace="ns", name="alice", project_id="p1", reason="again"
    )
    (second,) = await store.list_orphans()
    assert second.reason == "again"
    assert second.recorded_at == first.recorded_at  # when it was first given up on


async def test_retained_and_orphaned_projects_are_told_apart_and_counted(store: MetadataStore) -> None:
    await store.record_orphan(
        kind="GlobalDatabase", namespace="ns", name="kept", project_id="p-kept", reason="Retain",
        disposition="retained", project_name="tenantdb-g-kept-uid1",
    )  # fmt: skip
    await store.record_orphan(
        kind="WorkspaceDatabase", namespace="ns", name="lost", project_id="p-lost", reason="409"
    )
    rows = {o.project_id: o for o in await store.list_orphans()}
    assert rows["p-kept"].disposition == "retained"
    assert rows["p-kept"].project_name == "tenantdb-g-kept-uid1"
    assert rows["p-lost"].disposition == "orphaned"
    assert rows["p-lost"].project_name is None
    assert await store.count_orphans() == {"orphaned": 1, "retained": 1}
    assert await store.forget_orphan(project_id="p-lost")
    assert await store.count_orphans() == {"orphaned": 0, "retained": 1}


async def test_cli_orphans_lists_what_was_left_behind_without_the_db_url(
    store: MetadataStore,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await store.record_orphan(
        kind="GlobalDatabase", namespace="ns", name="kept", project_id="p-kept", reason="Retain",
        disposition="retained", project_name="tenantdb-g-kept-uid1",
    )  # fmt: skip
    await store.record_orphan(
        kind="WorkspaceDatabase", namespace="ns", name="lost", project_id="p-lost", reason="409 refused"
    )
    monkeypatch.setenv("ENCRYPTION_KEY", KEY_HEX)
    monkeypatch.setenv("TENANTDB_METADATA_DATABASE_URL", database.url)
    assert await orphans_from_environment() == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["DISPOSITION", "PROJECT"]
    assert any(
        line.startswith("retained") and "p-kept" in line and "GlobalDatabase ns/kept" in line
        for line in lines
    )
    assert any(line.startswith("orphaned") and "p-lost" in line and "409 refused" in line for line in lines)
    assert database.url not in out
    assert await orphans_from_environment(as_json=True, disposition="retained") == 0
    (only,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (only["projectId"], only["projectName"]) == ("p-kept", "tenantdb-g-kept-uid1")
    assert only["retainedAt"] is not None


async def _retained_at(store: MetadataStore, project_id: str) -> datetime | None:
    return {o.project_id: o for o in await store.list_orphans()}[project_id].retained_at


async def test_when_a_project_was_kept_is_recorded_once_and_survives_a_retried_finalizer(
    store: MetadataStore, database: Database
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    await store.record_orphan(
        kind="WorkspaceDatabase", namespace="ns", name="ws", project_id="p-kept", reason="Retain",
        disposition="retained", project_name="tenantdb-w-ws-uid1",
    )  # fmt: skip
    kept_at = await _retained_at(store, "p-kept")
    assert kept_at is not None
    assert before <= kept_at <= datetime.now(UTC)
    # A finalizer retried after a crash records it again: the count does not restart.
    async with await database.connect() as conn:
        await conn.execute(
            "UPDATE tenantdb_orphaned_project SET retained_at = retained_at - interval '3 days'"
        )
    await store.record_orphan(
        kind="WorkspaceDatabase", namespace="ns", name="ws", project_id="p-kept", reason="Retain",
        disposition="retained",
    )  # fmt: skip
    assert await _retained_at(store, "p-kept") == kept_at - timedelta(days=3)
    # A project orphaned (a delete given up on) was never kept on purpose.
    await store.record_orphan(
        kind="GlobalDatabase", namespace="ns", name="g", project_id="p-lost", reason="x"
    )
    assert await _retained_at(store, "p-lost") is None
    # Recorded as retained later on (orphaned first): kept from then on.
    await store.record_orphan(
        kind="GlobalDatabase", namespace="ns", name="g", project_id="p-lost", reason="Retain",
        disposition="retained",
    )  # fmt: skip
    assert await _retained_at(store, "p-lost") is not None


async def test_projects_kept_before_the_column_existed_count_from_when_they_were_recorded(
    database: Database, key: EncryptionKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenantdb.store import migrations

    before = [m for m in migrations.MIGRATIONS if m.name != "0007_retained_project_kept_at"]
    async with await MetadataStore.open(database.url, cipher=key, standalone_env_tables=True) as old:
        with monkeypatch.context() as patched:
            patched.setattr(migrations, "MIGRATIONS", tuple(before))
            await old.migrate()
        async with await database.connect() as conn:
            await conn.execute(
                "INSERT INTO tenantdb_orphaned_project (id, neon_project_id, kind, namespace, name, reason, "
                "disposition, created_at, updated_at) VALUES "
                "('1', 'p-kept', 'GlobalDatabase', 'ns', 'g', 'Retain', 'retained', "
                "now() - interval '40 days', now()), "
                "('2', 'p-lost', 'GlobalDatabase', 'ns', 'h', '409', 'orphaned', now(), now())"
            )
        assert await old.migrate() == ["0007_retained_project_kept_at"]
        rows = {o.project_id: o for o in await old.list_orphans()}
    assert rows["p-kept"].retained_at == rows["p-kept"].recorded_at
    assert rows["p-lost"].retained_at is None


async def test_held_projects_are_those_a_row_or_a_claim_names(store: MetadataStore) -> None:
    tenant = Tenant(Scope.WORKSPACE, "ws-1")
    await store.upsert_database(
        tenant, project_id="p-row", branch_id="b", encrypted_uri="x:y:z", database_name="neondb"
    )
    await store.claim_tenant(
        kind="GlobalDatabase",
        tenant_id="u-1",
        claimant=Claimant(uid="uid-1", namespace="ns", name="g", created_at=datetime.now(UTC)),
    )
    await store.record_claim_project(
        kind="GlobalDatabase", tenant_id="u-1", holder_uid="uid-1", project_id="p-claim"
    )
    assert await store.held_projects(["p-row", "p-claim", "p-free"]) == {"p-row", "p-claim"}
    assert await store.held_projects([]) == set()
