"""tenantdb_orphaned_project: projects released after the delete give-up time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tenantdb.store import MetadataStore, OrphanRow
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
