"""Budget start-up in proportion to the budgets: kopf for real against the Kubernetes emulator.

What a platform would notice with many users: starting the operator writes each budget's status
once, not once per budget (B x B patches: 100 million at 10,000 budgets); a restart with
nothing changed writes no budget at all; a tier change is still enforced at once, without
waiting for the next consumption sync and without rewriting anyone else's budget.

Status patches are counted at the operator's own Kubernetes client (every DatabaseBudget status
write of the budget path goes through ``KubeClient.patch_status``).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest

from tenantdb.kube import KubeClient
from tenantdb.store import MetadataStore
from tenantdb.testing.stack import LocalStack, eventually
from tests.factories import database_budget

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

B = 200
LONG_SYNC_SECONDS = 600.0  # no consumption sync while the test counts
SETTLE_SECONDS = 3.0  # after the last expected write: time for any unexpected one to show


class BudgetPatches:
    """DatabaseBudget status patches by budget name (the operator runs in a thread of its own)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._lock = threading.Lock()
        self.by_name: Counter[str] = Counter()
        original = KubeClient.patch_status
        counter = self

        async def counting(
            self: KubeClient, *, plural: str, namespace: str, name: str, status: Mapping[str, Any]
        ) -> None:
            if plural == "databasebudgets":
                with counter._lock:
                    counter.by_name[name] += 1
            await original(self, plural=plural, namespace=namespace, name=name, status=status)

        monkeypatch.setattr(KubeClient, "patch_status", counting)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.by_name.values())

    def reset(self) -> None:
        with self._lock:
            self.by_name.clear()


class BudgetStatements:
    """The budget path's statements to the metadata DB (claim, row), by user."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._lock = threading.Lock()
        self.by_user: Counter[str] = Counter()
        claim, upsert = MetadataStore.claim_tenant, MetadataStore.upsert_budget
        counter = self

        def count(user_id: str) -> None:
            with counter._lock:
                counter.by_user[user_id] += 1

        async def claim_tenant(self: MetadataStore, *, kind: str, tenant_id: str, **kwargs: Any) -> Any:
            if kind == "DatabaseBudget":
                count(tenant_id)
            return await claim(self, kind=kind, tenant_id=tenant_id, **kwargs)

        async def upsert_budget(self: MetadataStore, *, user_id: str, **kwargs: Any) -> None:
            count(user_id)
            await upsert(self, user_id=user_id, **kwargs)

        monkeypatch.setattr(MetadataStore, "claim_tenant", claim_tenant)
        monkeypatch.setattr(MetadataStore, "upsert_budget", upsert_budget)

    def reset(self) -> None:
        with self._lock:
            self.by_user.clear()

    def users(self) -> set[str]:
        with self._lock:
            return set(self.by_user)


def _names() -> list[str]:
    return [f"budget-{i:03d}" for i in range(B)]


async def _statuses(stack: LocalStack) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name in _names():
        obj = await stack.get("DatabaseBudget", name)
        assert obj is not None
        found[name] = obj
    return found


def _true(value: bool) -> Any:
    async def check() -> bool:
        return value

    return check()


async def test_start_up_writes_each_budget_once_and_an_unchanged_restart_writes_none(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    patches = BudgetPatches(monkeypatch)
    for index, name in enumerate(_names()):
        await stack.apply(database_budget(name, f"user-{index:03d}"))

    # First start: every budget gets its status, each written about once (not once per budget).
    await stack.start_operator(consumption_sync_interval_seconds=LONG_SYNC_SECONDS)

    async def all_recorded() -> bool:
        assert patches.total <= 2 * B, f"{patches.total} budget status patches for {B} budgets"
        objects = await _statuses(stack)
        return all((o.get("status") or {}).get("observedGeneration") == 1 for o in objects.values())

    await eventually(all_recorded, timeout=120, what=f"the status of {B} budgets")
    await asyncio.sleep(SETTLE_SECONDS)
    assert patches.total <= 2 * B, f"{patches.total} budget status patches for {B} budgets"
    assert max(patches.by_name.values()) <= 2, patches.by_name.most_common(3)

    # A restart with nothing changed: every budget registered again, none written, and no
    # statement per budget to the metadata DB (a new signup's would wait behind them), except
    # for the one row another writer changed while the operator was down: that one is put back.
    await stack.stop_operator()
    before = {name: o["metadata"]["resourceVersion"] for name, o in (await _statuses(stack)).items()}
    await stack.metadata_query(
        "UPDATE user_db_budget SET budget_tier = 'enterprise' WHERE user_id = 'user-005' RETURNING user_id"
    )
    patches.reset()
    statements = BudgetStatements(monkeypatch)
    await stack.start_operator(consumption_sync_interval_seconds=LONG_SYNC_SECONDS)
    assert stack.runtime is not None
    runtime = stack.runtime
    await eventually(
        lambda: _true(len(runtime.budgets.budgets) == B), timeout=120, what=f"{B} budgets resumed"
    )
    await asyncio.sleep(SETTLE_SECONDS)
    assert patches.total == 0, f"{patches.total} budget status patches at an unchanged restart"
    after = {name: o["metadata"]["resourceVersion"] for name, o in (await _statuses(stack)).items()}
    assert after == before
    assert statements.users() == {"user-005"}, f"statements for {len(statements.users())} users"
    rows = await stack.metadata_query("SELECT budget_tier FROM user_db_budget WHERE user_id = 'user-005'")
    assert rows == [("free",)]
    statements.reset()

    # A tier change is enforced at once (the next sync is minutes away), for that budget alone.
    await stack.patch("DatabaseBudget", "budget-007", {"spec": {"tier": "enterprise"}})
    budget = await stack.wait_for(
        "DatabaseBudget",
        "budget-007",
        lambda o: bool(o and o.get("status", {}).get("tier") == "enterprise"),
        timeout=10,
        what="the new tier in status",
    )
    assert budget is not None
    assert "limitCents" not in budget["status"]  # enterprise: unlimited
    assert budget["status"]["observedGeneration"] == 2
    await asyncio.sleep(SETTLE_SECONDS)
    assert set(patches.by_name) == {"budget-007"}
    assert patches.total <= 2

    # A tier changed while the operator was down is enforced at its resume, for that budget alone.
    await stack.stop_operator()
    await stack.patch("DatabaseBudget", "budget-008", {"spec": {"tier": "paid"}})
    patches.reset()
    await stack.start_operator(consumption_sync_interval_seconds=LONG_SYNC_SECONDS)
    budget = await stack.wait_for(
        "DatabaseBudget",
        "budget-008",
        lambda o: bool(o and o.get("status", {}).get("tier") == "paid"),
        timeout=30,
        what="the tier changed during the downtime in status",
    )
    assert budget is not None
    assert budget["status"]["limitCents"] == 5000
    assert stack.runtime is not None
    runtime = stack.runtime
    await eventually(
        lambda: _true(len(runtime.budgets.budgets) == B), timeout=120, what=f"{B} budgets resumed"
    )
    await asyncio.sleep(SETTLE_SECONDS)
    assert set(patches.by_name) == {"budget-008"}
    assert patches.total <= 2
    await stack.stop_operator()
