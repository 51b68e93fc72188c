"""tenantdb adopt's switch-on against an in-memory API server: creates only, paced, resumable,
and progress until every wanted resource is there and Ready."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from tenantdb.config import Tier
from tenantdb.reconcile.adoption import Progress, switch_on
from tenantdb.reconcile.adoption.report import progress_json, progress_text
from tenantdb.reconcile.sim_sync.desired import desired_resources
from tenantdb.reconcile.sim_sync.plan import manifest
from tenantdb.store import SimSnapshot, SimWorkspace


class Resources:
    """Our kinds by (plural, name); what was written, and when."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.creates: list[float] = []
        self.taken_meanwhile: set[str] = set()  # names another writer makes just before us

    async def list(self, *, plural: str, namespace: str) -> list[dict[str, Any]]:
        return [dict(o) for (p, _), o in self.objects.items() if p == plural]

    async def create(self, *, plural: str, namespace: str, body: Mapping[str, Any]) -> bool:
        self.creates.append(time.monotonic())
        key = (plural, body["metadata"]["name"])
        if body["metadata"]["name"] in self.taken_meanwhile:
            self.objects[key] = dict(body)
        if key in self.objects:
            return False
        self.objects[key] = dict(body)
        return True

    async def patch(self, **_: Any) -> None:
        raise AssertionError("the switch-on never patches")

    async def delete(self, **_: Any) -> None:
        raise AssertionError("the switch-on never deletes")

    def mark_ready(self) -> None:
        for obj in self.objects.values():
            obj["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}


def _desired(users: int, *, workspaces: bool = True) -> Any:
    snapshot = SimSnapshot(
        user_ids={f"u{i}" for i in range(users)},
        workspaces=[SimWorkspace(f"w{i}", f"u{i}", None) for i in range(users)] if workspaces else [],
    )
    return desired_resources(
        snapshot, plan_tiers={"pro": Tier.PAID}, default_tier=Tier.FREE, namespaces=["default"]
    )


async def _run(resources: Resources, desired: Any, **options: Any) -> tuple[Progress, list[str]]:
    lines: list[str] = []

    def report(progress: Progress) -> None:
        lines.append(progress_text(progress, now=time.monotonic()))

    options = {"writes_per_second": 1000.0, "interval": 0.05, "wait_ready": False, **options}
    progress = await switch_on(
        desired=desired, resources=resources, namespace="sim", report=report, **options
    )
    return progress, lines


async def test_only_what_is_missing_is_created_and_nothing_else_is_touched() -> None:
    desired = _desired(3)  # 3 GlobalDatabases, 3 DatabaseBudgets, 3 WorkspaceDatabases
    resources = Resources()
    # There already: one of ours with another tier (the sync's to patch, not ours), and one the
    # sync no longer wants (the sync's to delete, not ours).
    budget = manifest(desired["DatabaseBudget", "u0"], "sim")
    budget["spec"]["tier"] = "paid"
    resources.objects["databasebudgets", "user-u0"] = budget
    stray = manifest(desired["GlobalDatabase", "u0"], "sim")
    stray["metadata"]["name"], stray["spec"]["userId"] = "user-gone", "gone"
    resources.objects["globaldatabases", "user-gone"] = stray
    resources.taken_meanwhile = {"user-u1"}  # the sync makes it between our listing and our create
    progress, lines = await _run(resources, desired)
    assert (progress.wanted, progress.created, progress.existing, progress.done) == (9, 6, 3, True)
    assert resources.objects["databasebudgets", "user-u0"]["spec"]["tier"] == "paid"
    assert ("globaldatabases", "user-gone") in resources.objects
    assert lines[0].startswith("adopt: 1 of 9 exist")
    # Resumable: run again, nothing left to create.
    again, _ = await _run(resources, desired)
    assert (again.created, again.existing, again.done) == (0, 9, True)


async def test_creates_are_paced_at_the_write_rate() -> None:
    desired = _desired(8, workspaces=False)  # 16 creates
    resources = Resources()
    progress, _ = await _run(resources, desired, writes_per_second=8.0)
    assert progress.created == 16
    # A bucket of 8 at 8/s: the last 8 wait a second between them all.
    span = resources.creates[-1] - resources.creates[0]
    assert 0.8 <= span <= 3.0
    assert progress.create_rate(progress.creates_done_at or 0) <= 16.5


async def test_it_reports_until_every_resource_is_ready_and_stops_at_the_timeout() -> None:
    desired = _desired(2)
    resources = Resources()

    async def operator_makes_them_ready() -> None:
        await asyncio.sleep(0.3)
        resources.mark_ready()

    became_ready = asyncio.create_task(operator_makes_them_ready())
    progress, lines = await _run(resources, desired, wait_ready=True, timeout=10.0)
    await became_ready
    assert (progress.ready, progress.done) == (6, True)
    assert any(" 0 Ready" in line for line in lines)
    assert "Ready/s" in lines[-1] or "6 Ready" in lines[-1]
    # Nothing ever gets Ready (no operator running): stopped at the timeout, not done.
    progress, _ = await _run(Resources(), desired, wait_ready=True, timeout=0.3)
    assert (progress.exist, progress.ready, progress.done) == (6, 0, False)
    final = progress_text(progress, now=time.monotonic(), final=True)
    assert "not done" in final
    assert "run tenantdb adopt again" in final


def test_progress_says_rate_and_time_left() -> None:
    progress = Progress(wanted=1000, started=0.0, existing=100, created=400, ready=50)
    line = progress_text(progress, now=20.0)
    assert line == (
        "adopt: 500 of 1000 exist (400 created now, 100 already there), 50 Ready; "
        "20.0 creates/s; about 25s left"
    )
    document = progress_json(progress, now=20.0)
    assert '"secondsLeft": 25.0' in document
    assert '"createsPerSecond": 20.0' in document
