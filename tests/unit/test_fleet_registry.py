"""The fleet observation's bookkeeping: what a project list proves, and which resource next."""

from __future__ import annotations

import dataclasses
import datetime

from tenantdb.reconcile.fleet import FleetRegistry, compare_with_list

UID_A = "0a0a0a0a-0000-4000-8000-00000000000a"
UID_B = "0b0b0b0b-0000-4000-8000-00000000000b"
UID_C = "0c0c0c0c-0000-4000-8000-00000000000c"


@dataclasses.dataclass
class Project:
    id: str
    name: str


def _at(minute: int) -> datetime.datetime:
    return datetime.datetime(2026, 12, 3, 4, minute, tzinfo=datetime.UTC)


def _registry(**projects: str) -> FleetRegistry:
    registry = FleetRegistry()
    for uid, project_id in projects.items():
        registry.put(
            uid, kind="GlobalDatabase", namespace="ns", name=uid[:4], project_id=project_id, observed_at=None
        )
    return registry


def test_a_listed_project_under_its_own_name_is_proven() -> None:
    registry = _registry(**{UID_A: "p-a"})
    mark = registry.mark()
    found = compare_with_list(
        registry, [Project("p-a", f"tenantdb-g-alice-{UID_A}")], prefix="tenantdb", listed_after=mark
    )
    assert found.proven == {UID_A: "p-a"}
    assert found.suspect == {}


def test_a_project_missing_from_the_list_or_renamed_is_suspect() -> None:
    registry = _registry(**{UID_A: "p-a", UID_B: "p-b"})
    mark = registry.mark()
    listed = [Project("p-b", f"tenantdb-g-bob-{UID_C}")]  # p-a gone; p-b carries another uid
    found = compare_with_list(registry, listed, prefix="tenantdb", listed_after=mark)
    assert found.proven == {}
    assert set(found.suspect) == {UID_A, UID_B}
    assert "not among" in found.suspect[UID_A]
    assert UID_C in found.suspect[UID_B]


def test_a_project_recorded_after_the_list_was_fetched_is_not_judged_by_it() -> None:
    registry = FleetRegistry()
    mark = registry.mark()
    registry.put(UID_A, kind="GlobalDatabase", namespace="ns", name="a", project_id="p-new", observed_at=None)
    found = compare_with_list(registry, [], prefix="tenantdb", listed_after=mark)
    assert found.suspect == {}


def test_the_rotation_reads_back_the_least_recently_observed_first() -> None:
    registry = FleetRegistry()
    for uid, minute in ((UID_A, 30), (UID_B, 10), (UID_C, None)):
        registry.put(
            uid,
            kind="GlobalDatabase",
            namespace="ns",
            name=uid[:4],
            project_id=f"p-{uid[:4]}",
            observed_at=None if minute is None else _at(minute),
        )
    assert registry.stalest(2) == [UID_C, UID_B]
    registry.observed(UID_C, _at(50))
    assert registry.stalest(2) == [UID_B, UID_A]
    assert registry.stalest(5, skip=[UID_B]) == [UID_A, UID_C]


def test_local_checks_go_round_the_least_recently_checked_first() -> None:
    registry = _registry(**{UID_A: "p-a", UID_B: "p-b", UID_C: "p-c"})
    registry.checked(UID_A)
    registry.checked(UID_C)
    assert registry.local_round() == [UID_B, UID_A, UID_C]


def test_registering_again_keeps_the_newer_observation_and_the_check_order() -> None:
    registry = _registry(**{UID_A: "p-a"})
    registry.observed(UID_A, _at(40))
    registry.put(
        UID_A, kind="GlobalDatabase", namespace="ns", name="a", project_id="p-a", observed_at=_at(20)
    )
    entry = registry.get(UID_A)
    assert entry is not None
    assert entry.observed_at == _at(40)


def test_passwords_due_by_age_come_most_overdue_first_and_a_rotation_moves_them_back() -> None:
    registry = FleetRegistry()
    for uid, minute in ((UID_A, 30), (UID_B, 10), (UID_C, None)):
        registry.put(
            uid,
            kind="GlobalDatabase",
            namespace="ns",
            name=uid[:4],
            project_id=f"p-{uid[:4]}",
            observed_at=None,
            rotate_at=None if minute is None else _at(minute),
        )
    assert registry.due_for_rotation(_at(20), 5) == [UID_B]
    assert registry.due_for_rotation(_at(40), 5) == [UID_B, UID_A]  # never by age: C
    assert registry.due_for_rotation(_at(40), 1) == [UID_B]
    assert registry.due_for_rotation(_at(40), 5, skip=[UID_B]) == [UID_A]
    # Rotated: registered again (same project) with its next due time.
    registry.put(
        UID_B,
        kind="GlobalDatabase",
        namespace="ns",
        name="0b0b",
        project_id="p-0b0b",
        observed_at=None,
        rotate_at=_at(59),
    )
    assert registry.due_for_rotation(_at(40), 5) == [UID_A]
