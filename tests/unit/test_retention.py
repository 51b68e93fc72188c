"""Retained projects past TENANTDB_RETAINED_PROJECT_RETENTION_DAYS: deleted only when provably
ours and held by nobody, at most a round's worth at a time, counted from when they were kept."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable
from typing import Any

import pytest

from tenantdb.neon import NeonNotFoundError
from tenantdb.reconcile.retention import LiveHolders, expire_retained, past_retention
from tenantdb.store import OrphanRow

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
OLD_UID = "99999999-8888-4777-8666-555555555555"
LIVE_UID = "11111111-2222-4333-8444-555555555555"


def _kept(project_id: str, *, days_ago: float, uid: str = OLD_UID, name: str | None = None) -> OrphanRow:
    return OrphanRow(
        kind="WorkspaceDatabase",
        namespace="default",
        name=f"workspace-{project_id}",
        project_id=project_id,
        reason="deletionPolicy: Retain",
        recorded_at=NOW - datetime.timedelta(days=days_ago),
        disposition="retained",
        project_name=name if name is not None else f"tenantdb-w-{project_id}-{uid}",
        retained_at=NOW - datetime.timedelta(days=days_ago),
    )


@dataclasses.dataclass
class Project:
    id: str
    name: str


class FakeNeon:
    def __init__(self, projects: Iterable[Project]) -> None:
        self.projects = {p.id: p for p in projects}
        self.deleted: list[str] = []
        self.reads: list[str] = []

    async def get_project(self, project_id: str) -> Any:
        self.reads.append(project_id)
        if project_id not in self.projects:
            raise NeonNotFoundError(status=404, code="", message="not found", route="GET /projects/{id}")
        return self.projects[project_id]

    async def delete_project(self, project_id: str) -> bool:
        self.deleted.append(project_id)
        return self.projects.pop(project_id, None) is not None


class FakeStore:
    def __init__(self, rows: list[OrphanRow], *, held: Iterable[str] = ()) -> None:
        self.rows = {row.project_id: row for row in rows}
        self.held = set(held)
        self.asked: list[list[str]] = []

    async def held_projects(self, project_ids: Iterable[str]) -> set[str]:
        ids = list(project_ids)
        self.asked.append(ids)
        return self.held & set(ids)

    async def forget_orphan(self, *, project_id: str) -> bool:
        return self.rows.pop(project_id, None) is not None


def _listed(rows: Iterable[OrphanRow]) -> list[Project]:
    return [Project(row.project_id, row.project_name or "") for row in rows]


async def _expire(
    neon: FakeNeon,
    store: FakeStore,
    *,
    listed: list[Project],
    holders: LiveHolders | None = None,
    days: int | None = 30,
    per_round: int = 100,
) -> Any:
    asked: list[bool] = []

    async def live() -> LiveHolders:
        asked.append(True)
        return holders or LiveHolders(uids={LIVE_UID}, project_ids=set())

    result = await expire_retained(
        neon=neon,
        store=store,
        rows=list(store.rows.values()),
        listed=listed,
        live_holders=live,
        prefix="tenantdb",
        days=days,
        now=NOW,
        per_round=per_round,
    )
    result.asked_holders = bool(asked)
    return result


async def test_a_project_kept_longer_than_the_retention_is_deleted_and_its_record_goes() -> None:
    old, young = _kept("p-old", days_ago=31), _kept("p-young", days_ago=29)
    neon, store = FakeNeon(_listed([old, young])), FakeStore([old, young])
    result = await _expire(neon, store, listed=_listed([old, young]))
    assert neon.deleted == ["p-old"]
    assert result.deleted == ["p-old"]
    assert set(store.rows) == {"p-young"}  # the young one is kept, and so is its record


async def test_without_a_retention_nothing_is_asked_or_deleted() -> None:
    old = _kept("p-old", days_ago=3650)
    neon, store = FakeNeon(_listed([old])), FakeStore([old])
    result = await _expire(neon, store, listed=_listed([old]), days=None)
    assert (neon.deleted, neon.reads, store.asked, result.asked_holders) == ([], [], [], False)


async def test_nothing_due_costs_no_listing_of_the_resources() -> None:
    young = _kept("p-young", days_ago=1)
    neon, store = FakeNeon(_listed([young])), FakeStore([young])
    result = await _expire(neon, store, listed=_listed([young]))
    assert (result.due, result.asked_holders, store.asked) == (0, False, [])


@pytest.mark.parametrize(
    ("holders", "held", "why"),
    [
        (LiveHolders(uids={OLD_UID}, project_ids=set()), set(), "holds it again"),
        (LiveHolders(uids=set(), project_ids={"p-old"}), set(), "spec or status"),
        (LiveHolders(uids=set(), project_ids=set()), {"p-old"}, "metadata row or a tenant claim"),
    ],
    ids=["a live resource with its uid", "a live resource naming it", "a row or claim naming it"],
)
async def test_a_project_held_again_is_never_deleted(holders: LiveHolders, held: set[str], why: str) -> None:
    old = _kept("p-old", days_ago=400)
    neon, store = FakeNeon(_listed([old])), FakeStore([old], held=held)
    result = await _expire(neon, store, listed=_listed([old]), holders=holders)
    assert neon.deleted == []
    assert why in result.kept["p-old"]
    assert "p-old" in store.rows  # still on record: asked again next round


async def test_a_project_not_named_as_ours_or_renamed_since_is_never_deleted() -> None:
    foreign = _kept("p-foreign", days_ago=400, name="customer-production")
    renamed = _kept("p-renamed", days_ago=400)
    listed = [Project("p-foreign", "customer-production"), Project("p-renamed", f"tenantdb-w-x-{OLD_UID}")]
    neon, store = FakeNeon(listed), FakeStore([foreign, renamed])
    result = await _expire(neon, store, listed=listed)
    assert neon.deleted == []
    assert "not as the operator names" in result.kept["p-foreign"]
    assert "renamed" in result.kept["p-renamed"]


async def test_a_project_already_gone_from_neon_is_forgotten_and_one_outside_our_list_is_read() -> None:
    gone, renamed_away = _kept("p-gone", days_ago=400), _kept("p-away", days_ago=400)
    neon = FakeNeon([Project("p-away", "someone-took-it")])
    store = FakeStore([gone, renamed_away])
    result = await _expire(neon, store, listed=[])
    assert sorted(neon.reads) == ["p-away", "p-gone"]
    assert result.gone == ["p-gone"]
    assert neon.deleted == []
    assert set(store.rows) == {"p-away"}


async def test_a_backlog_is_deleted_a_round_at_a_time_longest_kept_first() -> None:
    rows = [_kept(f"p-{age}", days_ago=age) for age in (40, 90, 60, 31)]
    neon, store = FakeNeon(_listed(rows)), FakeStore(rows)
    first = await _expire(neon, store, listed=_listed(rows), per_round=2)
    assert (first.due, first.deleted) == (4, ["p-90", "p-60"])
    second = await _expire(neon, store, listed=_listed(rows), per_round=2)
    assert second.deleted == ["p-40", "p-31"]
    assert store.rows == {}


def test_retention_counts_from_when_the_project_was_kept_not_when_first_recorded() -> None:
    orphaned_then_kept = dataclasses.replace(
        _kept("p", days_ago=1), recorded_at=NOW - datetime.timedelta(days=300)
    )
    never_kept = dataclasses.replace(_kept("q", days_ago=300), disposition="orphaned", retained_at=None)
    assert past_retention([orphaned_then_kept, never_kept], days=30, now=NOW) == []
