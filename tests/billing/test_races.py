"""The budget loop and a reconcile act on the same endpoint: the newest decision wins.

A reconcile decides whether the user's budget suspends the database when it starts, seconds
before it patches the endpoint; the budget loop may suspend (or resume) the database meanwhile.
Both take the project's lock and read the budget's word again under it.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any

from tenantdb.config import Settings, Tier
from tenantdb.metrics import Metrics
from tenantdb.neon.serial import ProjectSerializer
from tenantdb.reconcile.budget_sync import BudgetSync
from tenantdb.reconcile.database.model import wanted_settings
from tenantdb.reconcile.database.update import update_endpoint
from tenantdb.reconcile.enforcement import BudgetRecord
from tests.factories import RecordedEvents, RecordingKube, Store, add_user, database_deps, database_object

SETTINGS = Settings(encryption_key="0" * 64)


class SerialEndpoints:
    """Endpoints of one project behind the same per-project lock the Neon client uses."""

    def __init__(self) -> None:
        self.serial = ProjectSerializer()
        self.patches: list[dict[str, Any]] = []

    def serialised(self, project_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self.serial.hold(project_id)

    async def list_endpoints(self, project_id: str) -> list[Any]:
        return [SimpleNamespace(id="ep-1", type="read_write", disabled=False)]

    async def update_endpoint(self, project_id: str, endpoint_id: str, **changes: Any) -> list[Any]:
        self.patches.append(changes)
        return []

    async def wait_for_operations(self, project_id: str, operations: Any, *, timeout: float = 300.0) -> None:
        return None


async def test_a_reconcile_that_began_before_the_suspend_does_not_undo_it() -> None:
    neon, events = SerialEndpoints(), RecordedEvents()
    # The budget loop has suspended ann since.
    deps = database_deps(neon, settings=SETTINGS, is_suspended=lambda user: user == "ann")
    obj = database_object("db-ann", uid="uid-1", user_id="ann")
    wanted = wanted_settings(obj, deps.user_tier("ann"))
    endpoint = SimpleNamespace(
        id="ep-1",
        disabled=False,
        autoscaling_limit_min_cu=wanted.min_cu,
        autoscaling_limit_max_cu=wanted.max_cu,
        suspend_timeout_seconds=wanted.suspend_timeout_seconds,
    )
    suspended = await update_endpoint(obj, deps, events, "p-ann", endpoint, wanted=wanted)
    assert suspended is True
    assert neon.patches == [{"disabled": True}]
    assert "BudgetExceeded" in events.reasons


async def test_a_suspend_overtaken_by_a_newer_plan_is_dropped() -> None:
    sync = BudgetSync(settings=SETTINGS, metrics=Metrics())
    add_user(sync, "ann", cost_cents=10_000)  # over the free tier
    neon, kube = SerialEndpoints(), RecordingKube()

    async with neon.serialised("p-ann"):  # a reconcile is busy with the project
        suspending = asyncio.create_task(
            sync.enforce(store=Store(), kube=kube, neon=neon, post_event=lambda *e: None)
        )
        await asyncio.sleep(0.05)
        assert sync.is_suspended("ann")  # decided ...
        assert not neon.patches  # ... and waiting for the lock
        sync.put_budget("default", "budget-ann", BudgetRecord(user_id="ann", tier=Tier.ENTERPRISE))
        await sync.enforce(store=Store(), kube=kube, neon=neon, post_event=lambda *e: None)
        assert not sync.is_suspended("ann")
    await suspending
    assert neon.patches == []  # the upgrade came first: ann's database was never cut off
