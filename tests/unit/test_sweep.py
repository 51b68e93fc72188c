"""The fleet sweep acts only on projects that are provably ours and provably ownerless."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from tenantdb.config import Settings
from tenantdb.handlers.sweep import _ByOrganization
from tenantdb.neon.errors import NeonNotFoundError
from tenantdb.reconcile.sweep import owner_uid, sweep_once

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
LIVE = "11111111-2222-4333-8444-555555555555"
GONE = "99999999-8888-4777-8666-555555555555"
KEPT = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"


@dataclasses.dataclass
class Project:
    id: str
    name: str
    created_at: datetime.datetime


class FakeNeon:
    def __init__(self, projects: list[Project]) -> None:
        self.projects = projects
        self.searches: list[str] = []
        self.deleted: list[str] = []

    async def find_projects(self, *, search: str, recoverable: bool = False) -> list[Any]:
        self.searches.append(search)
        return [p for p in self.projects if search in p.name]

    async def delete_project(self, project_id: str) -> bool:
        self.deleted.append(project_id)
        return True


class FakeStore:
    def __init__(self, rows: dict[str, str]) -> None:
        self.rows = rows
        self.recorded: list[str] = []

    async def record_orphan(self, *, project_id: str, **_: Any) -> None:
        self.recorded.append(project_id)

    async def forget_orphan(self, *, project_id: str) -> bool:
        return self.rows.pop(project_id, None) is not None


def _settings(**overrides: Any) -> Settings:
    return Settings(encryption_key="0" * 64, create_landing_seconds=60, **overrides)


def _old(minutes: int = 10) -> datetime.datetime:
    return NOW - datetime.timedelta(minutes=minutes)


async def _sweep(neon: FakeNeon, store: FakeStore, settings: Settings) -> Any:
    async def live() -> set[str]:
        return {LIVE}

    async def left() -> dict[str, str]:
        return dict(store.rows)

    return await sweep_once(
        neon=neon, store=store, live_uids=live, left_behind=left, settings=settings, now=NOW
    )


def test_owner_uid_reads_only_names_the_operator_gives() -> None:
    assert owner_uid("tenantdb", f"tenantdb-g-alice-{GONE}") == GONE
    assert owner_uid("tenantdb", f"tenantdb-w-ws-1-{GONE}") == GONE
    assert owner_uid("tenantdb", f"other-g-alice-{GONE}") is None
    assert owner_uid("tenantdb", "tenantdb-g-alice-not-a-uid") is None
    assert owner_uid("tenantdb", f"tenantdb-x-alice-{GONE}") is None


async def test_only_old_ownerless_unretained_projects_of_our_prefix_are_deleted() -> None:
    neon = FakeNeon(
        [
            Project("p-gone", f"tenantdb-g-bob-{GONE}", _old()),
            Project("p-live", f"tenantdb-g-alice-{LIVE}", _old()),
            Project("p-young", f"tenantdb-w-ws-{GONE}", NOW - datetime.timedelta(seconds=30)),
            Project("p-kept", f"tenantdb-g-kim-{KEPT}", _old()),
            Project("p-foreign", f"someone-tenantdb-g-x-{GONE}", _old()),
            Project("p-handmade", "tenantdb-my-own-project", _old()),
        ]
    )
    store = FakeStore({"p-kept": "retained"})
    result = await _sweep(neon, store, _settings())
    assert neon.deleted == ["p-gone"]
    assert result.deleted == ["p-gone"]
    assert neon.searches == ["tenantdb-"]  # one list for the whole fleet


async def test_when_watching_some_namespaces_the_sweep_only_records() -> None:
    neon = FakeNeon([Project("p-gone", f"tenantdb-g-bob-{GONE}", _old())])
    store = FakeStore({})
    await _sweep(neon, store, _settings(namespaces="team-a"))
    assert neon.deleted == []
    assert store.recorded == ["p-gone"]
    store.rows["p-gone"] = "orphaned"
    await _sweep(neon, store, _settings(namespaces="team-a"))
    assert store.recorded == ["p-gone"]  # once


async def test_a_recorded_orphan_deleted_by_the_sweep_leaves_the_table() -> None:
    neon = FakeNeon([Project("p-gone", f"tenantdb-g-bob-{GONE}", _old())])
    store = FakeStore({"p-gone": "orphaned"})
    await _sweep(neon, store, _settings(sweep_action="delete"))
    assert neon.deleted == ["p-gone"]
    assert store.rows == {}


class OrganizationNeon(FakeNeon):
    """One organisation's key: it sees its own projects only (another's answer 404)."""

    async def get_project(self, project_id: str) -> Any:
        for project in self.projects:
            if project.id == project_id:
                return project
        raise NeonNotFoundError(status=404, code="", message="not found", route="GET /projects/{project_id}")


async def test_retention_reads_and_deletes_a_kept_project_with_its_organisations_key() -> None:
    name = f"tenantdb-g-kept-{KEPT}"
    implicit = OrganizationNeon([])
    other = OrganizationNeon([Project("p-listed", name, NOW), Project("p-unlisted", name, NOW)])
    neon = _ByOrganization([(implicit, []), (other, [other.projects[0]])])
    # Listed in the other organisation: its key, at once.
    assert (await neon.get_project("p-listed")).id == "p-listed"
    # In no list (renamed, or listed before it was made): each key in turn, the implicit 404s.
    assert (await neon.get_project("p-unlisted")).id == "p-unlisted"
    await neon.delete_project("p-listed")
    await neon.delete_project("p-unlisted")
    assert (implicit.deleted, other.deleted) == ([], ["p-listed", "p-unlisted"])
    # Gone from every organisation: not found (so its record is forgotten), never a wrong key's 404 alone.
    with pytest.raises(NeonNotFoundError):
        await neon.get_project("p-nowhere")
