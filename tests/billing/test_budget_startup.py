"""Enforcement in proportion to what changed: a budget's handler enforces its own user, requests
arriving together share one pass, and a status that would not change is not written again.

At start-up every DatabaseBudget's resume handler asks for enforcement; planning and writing
every budget for each of them is B x B status patches (100 million at 10,000 budgets).
"""

from __future__ import annotations

import asyncio
import datetime
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest

from tenantdb.config import Settings, Tier
from tenantdb.metrics import Metrics
from tenantdb.reconcile.budget import loop as budget_loop
from tenantdb.reconcile.budget_sync import BudgetSync
from tenantdb.reconcile.enforcement import BudgetRecord
from tests.factories import Endpoints, Store, add_user

B = 200
SETTINGS = Settings(encryption_key="0" * 64)
START = datetime.datetime(2026, 12, 2, 12, tzinfo=datetime.UTC)


class CountingKube:
    """Status patches by (plural, name), and the status each object holds after them."""

    def __init__(self) -> None:
        self.patches: Counter[tuple[str, str]] = Counter()
        self.held: dict[tuple[str, str], dict[str, Any]] = {}

    async def patch_status(
        self, *, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        self.patches[(plural, name)] += 1
        held = self.held.setdefault((plural, name), {})
        for key, value in status.items():  # a JSON merge patch, as the API server applies it
            if value is None:
                held.pop(key, None)
            else:
                held[key] = value

    def budget_patches(self) -> Counter[str]:
        return Counter({name: n for (plural, name), n in self.patches.items() if plural == "databasebudgets"})


class CountingStore(Store):
    def __init__(self) -> None:
        self.rows: Counter[str] = Counter()

    async def update_budget_usage(self, **row: Any) -> None:
        self.rows[str(row["user_id"])] += 1


def _clock() -> Any:
    """A clock that moves a minute per reading: a write that only restamps a time shows."""
    moments = (START + datetime.timedelta(minutes=i) for i in range(10**6))
    return lambda: next(moments)


def _sync(users: int) -> BudgetSync:
    sync = BudgetSync(settings=SETTINGS, metrics=Metrics(), clock=_clock())
    for index in range(users):
        add_user(sync, f"u{index:03d}", cost_cents=10 * index)
    sync.last_sync = START  # costs known: every user gets a decision
    return sync


def _ports(kube: CountingKube, store: Store | None = None) -> dict[str, Any]:
    return {"store": store or Store(), "kube": kube, "neon": Endpoints(), "post_event": lambda *e: None}


async def test_enforcing_one_user_plans_and_writes_that_user_alone() -> None:
    sync, kube, store = _sync(B), CountingKube(), CountingStore()
    await sync.enforce(users={"u007"}, **_ports(kube, store))
    assert kube.budget_patches() == Counter({"budget-u007": 1})
    assert store.rows == Counter({"u007": 1})
    # Over budget (u060 and up spend 600 cents and more of the free 500): suspended, alone.
    sync.put_budget("default", "budget-u150", BudgetRecord(user_id="u150", tier=Tier.FREE, generation=2))
    neon = Endpoints()
    await sync.enforce(users={"u150"}, store=store, kube=kube, neon=neon, post_event=lambda *e: None)
    assert neon.disabled == {"p-u150": True}
    assert sync.is_suspended("u150") is True
    assert sync.is_suspended("u151") is None  # not planned: still not known


async def test_an_unchanged_status_is_not_written_again() -> None:
    sync, kube, store = _sync(20), CountingKube(), CountingStore()
    await sync.enforce(**_ports(kube, store))
    assert set(kube.budget_patches().values()) == {1}
    assert set(store.rows.values()) == {1}
    kube.patches.clear()
    store.rows.clear()
    for _ in range(3):
        await sync.enforce(**_ports(kube, store))
    assert kube.budget_patches() == Counter()
    assert store.rows == Counter()
    # What changes is written, and only that user's budget.
    sync.costs["p-u003"] += 7
    await sync.enforce(**_ports(kube, store))
    assert kube.budget_patches() == Counter({"budget-u003": 1})
    assert kube.held[("databasebudgets", "budget-u003")]["totalCostCents"] == 37


async def test_a_restarted_process_seeded_from_the_objects_writes_nothing_new() -> None:
    first, kube = _sync(20), CountingKube()
    await first.enforce(**_ports(kube))
    held = {name: dict(status) for (plural, name), status in kube.held.items() if plural == "databasebudgets"}

    # A new process: the same budgets, databases and costs; each budget's status as the object holds it.
    restarted, kube = _sync(20), CountingKube()
    for name, status in held.items():
        restarted.seed_status("default", name, status)
    await restarted.enforce(**_ports(kube))
    assert kube.budget_patches() == Counter()

    # A change of spend that keeps the user within the limit keeps the condition's transition time.
    restarted.costs["p-u002"] += 1
    await restarted.enforce(**_ports(kube))
    assert kube.budget_patches() == Counter({"budget-u002": 1})
    conditions = {c["type"]: c for c in kube.held[("databasebudgets", "budget-u002")]["conditions"]}
    before = {c["type"]: c for c in held["budget-u002"]["conditions"]}
    assert conditions["BudgetExceeded"]["status"] == "False"
    assert (
        conditions["BudgetExceeded"]["lastTransitionTime"] == before["BudgetExceeded"]["lastTransitionTime"]
    )


async def test_requests_arriving_together_share_a_few_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """B resume handlers, each registering its budget and asking for its user's enforcement."""
    sync, kube = _sync(0), CountingKube()
    planned: list[int] = []
    plan = budget_loop.plan_enforcement

    def counting_plan(**kwargs: Any) -> Any:
        found = plan(**kwargs)
        planned.append(len(found.outcomes))
        return found

    monkeypatch.setattr(budget_loop, "plan_enforcement", counting_plan)

    async def resume(index: int) -> None:
        user = f"u{index:03d}"
        add_user(sync, user, cost_cents=index)
        await asyncio.sleep(0)  # kopf's workers interleave
        await sync.enforce_users({user}, **_ports(kube))
        assert kube.held[("databasebudgets", f"budget-{user}")]["tier"] == "free"  # done on return

    await asyncio.gather(*(resume(index) for index in range(B)))
    assert kube.budget_patches() == Counter({f"budget-u{index:03d}": 1 for index in range(B)})
    assert sum(planned) == B  # every user planned once
    assert len(planned) <= 5, planned


async def test_a_tier_change_through_a_request_is_enforced_before_it_returns() -> None:
    sync, kube = _sync(3), CountingKube()
    await sync.enforce(**_ports(kube))
    neon = Endpoints()
    sync.costs["p-u001"] = 800  # over the free 500: suspended
    await sync.enforce_users({"u001"}, store=Store(), kube=kube, neon=neon, post_event=lambda *e: None)
    assert neon.disabled == {"p-u001": True}
    sync.put_budget("default", "budget-u001", BudgetRecord(user_id="u001", tier=Tier.PAID, generation=2))
    await sync.enforce_users({"u001"}, store=Store(), kube=kube, neon=neon, post_event=lambda *e: None)
    assert neon.disabled == {"p-u001": False}
    assert kube.held[("databasebudgets", "budget-u001")]["tier"] == "paid"
    assert kube.held[("databasebudgets", "budget-u001")]["observedGeneration"] == 2


async def test_a_change_to_an_unlimited_tier_removes_the_limit_from_status() -> None:
    sync, kube = _sync(2), CountingKube()
    await sync.enforce(**_ports(kube))
    assert kube.held[("databasebudgets", "budget-u001")]["limitCents"] == 500
    sync.put_budget(
        "default", "budget-u001", BudgetRecord(user_id="u001", tier=Tier.ENTERPRISE, generation=2)
    )
    await sync.enforce_users({"u001"}, **_ports(kube))
    status = kube.held[("databasebudgets", "budget-u001")]
    assert status["tier"] == "enterprise"
    assert "limitCents" not in status  # unlimited, not the free tier's 500 left behind
    kube.patches.clear()
    await sync.enforce(**_ports(kube))
    assert kube.budget_patches() == Counter()
