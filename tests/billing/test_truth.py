"""Truth that survives: replicas, restarts and the hard stop, at the level of the loop."""

from __future__ import annotations

import asyncio
import datetime
import itertools
import time
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from tenantdb.billing.quotas import armed, compute_quotas, needs_write
from tenantdb.config import Settings, Tier
from tenantdb.handlers.background import ActiveGate, run_while_active
from tenantdb.metrics import Metrics
from tenantdb.reconcile.budget_sync import BudgetSync
from tenantdb.reconcile.enforcement import BudgetRecord, DatabaseRecord
from tests.factories import Endpoints, Store, add_user

NOW = datetime.datetime(2026, 12, 2, 12, tzinfo=datetime.UTC)
SETTINGS = Settings(encryption_key="0" * 64)


def _peer(priority: int, seconds_ago: float = 1.0) -> dict[str, Any]:
    seen = NOW - datetime.timedelta(seconds=seconds_ago)
    return {"priority": priority, "lifetime": 60, "lastseen": seen.isoformat()}


class Peering:
    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status

    async def read_peering(self, *, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return {"metadata": {"name": name}, "status": self.status}


def _gate(identity: str, priority: int, peering: Peering) -> ActiveGate:
    return ActiveGate(
        identity=identity,
        priority=priority,
        peering_name="tenantdb",
        reader=peering,
        clock=lambda: NOW,
        answer_ttl_seconds=0.0,
    )


async def test_the_gate_reads_the_peering_object_once_for_many_loops_asking_together() -> None:
    reads: list[str] = []

    class CountingPeering(Peering):
        async def read_peering(self, *, name: str, namespace: str | None = None) -> dict[str, Any] | None:
            reads.append(name)
            return await super().read_peering(name=name, namespace=namespace)

    gate = ActiveGate(
        identity="a",
        priority=10,
        peering_name="tenantdb",
        reader=CountingPeering({"a": _peer(10)}),
        clock=lambda: NOW,
        answer_ttl_seconds=60.0,
    )
    assert all([await gate.is_active() for _ in range(20)])
    assert len(reads) == 1


async def test_of_two_replicas_in_one_peering_only_the_higher_acts() -> None:
    peering = Peering({"a": _peer(10), "b": _peer(20)})
    acted: list[str] = []

    async def loop(name: str, priority: int) -> None:
        async def step() -> None:
            acted.append(name)

        await run_while_active(_gate(name, priority, peering), step, interval=0.01, idle_check=0.01)

    async def until(name: str) -> None:
        for _ in range(500):
            if name in acted:
                return
            await asyncio.sleep(0.01)

    tasks = [asyncio.create_task(loop("a", 10)), asyncio.create_task(loop("b", 20))]
    await until("b")
    await asyncio.sleep(0.1)
    assert set(acted) == {"b"}
    # b dies (not seen for longer than its lifetime): a takes over, b's loop stops acting.
    peering.status["b"] = _peer(20, seconds_ago=120)
    await asyncio.sleep(0.05)  # b's round in flight, if any, ends
    acted.clear()
    await until("a")
    await asyncio.sleep(0.1)
    assert set(acted) == {"a"}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_replica_that_said_goodbye_leaves_the_next_one_active_at_once() -> None:
    """kopf's graceful stop writes its entry with ``lifetime: 0`` (a rolling restart): kopf
    resumes the next replica then, and so must the gate (not a minute later)."""
    peering = Peering({"a": _peer(10), "b": _peer(20)})
    assert not await _gate("a", 10, peering).is_active()
    peering.status["b"] = {**_peer(20), "lifetime": 0}
    assert await _gate("a", 10, peering).is_active()


async def test_a_long_step_does_not_stretch_the_interval() -> None:
    """Steps start every interval (a fleet pass of minutes at 30,000 resources must not make
    the observation come every interval + pass); one step at a time, never overlapping."""
    starts: list[float] = []
    running = 0
    four = asyncio.Event()

    async def step() -> None:
        nonlocal running
        running += 1
        assert running == 1
        starts.append(time.monotonic())
        if len(starts) == 4:
            four.set()
        await asyncio.sleep(0.3)
        running -= 1

    task = asyncio.create_task(run_while_active(ActiveGate(identity="a"), step, interval=0.5))
    await asyncio.wait_for(four.wait(), timeout=10)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    # From the start: 0.5 s apart (plus the loop's own delays); from the end it would be 0.8 s.
    assert max(gaps) < 0.7, gaps


async def test_a_replica_not_yet_announced_or_tied_does_not_act() -> None:
    assert not await _gate("a", 10, Peering({})).is_active()
    assert not await _gate("a", 10, Peering({"a": _peer(10), "b": _peer(10)})).is_active()
    assert await ActiveGate(identity="a").is_active()  # standalone


class Rows:
    def __init__(self, **exceeded: bool) -> None:
        self.rows = [
            SimpleNamespace(
                user_id=user,
                tier="free",
                budget_exceeded=value,
                total_cost_cents=900 if value else 10,
                current_period_start=datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC),
                last_sync=NOW,
            )
            for user, value in exceeded.items()
        ]

    async def list_budgets(self) -> list[Any]:
        return self.rows


async def test_a_restarted_loop_holds_the_durable_decision_until_costs_are_known() -> None:
    sync = BudgetSync(settings=SETTINGS, metrics=Metrics(), clock=lambda: NOW)
    await sync.restore(Rows(ann=True))
    add_user(sync, "ann", cost_cents=0)
    del sync.costs["p-ann"]  # nothing synced yet in this process
    add_user(sync, "bob", cost_cents=0)
    del sync.costs["p-bob"]
    neon, kube = Endpoints(), ByName()
    neon.disabled["p-ann"] = True
    await sync.enforce(store=Store(), kube=kube, neon=neon, post_event=lambda *e: None)
    assert sync.is_suspended("ann") is True  # held: the restart does not resume ann
    assert sync.is_suspended("bob") is None  # never decided: an endpoint's flag is left alone
    assert neon.disabled == {"p-ann": True}
    assert kube.status["budget-ann"]["exceeded"] is True
    assert kube.status["budget-ann"]["totalCostCents"] == 900
    assert "exceeded" not in kube.status["budget-bob"]


class ByName:
    def __init__(self) -> None:
        self.status: dict[str, Any] = {}

    async def patch_status(self, *, plural: str, namespace: str, name: str, status: Any) -> None:
        self.status[name] = status


async def test_quotas_split_what_is_left_and_never_write_zero_to_stop() -> None:
    price = Decimal("0.106")
    quotas = compute_quotas(
        project_ids=["a", "b"],
        compute_seconds={"a": 1000, "b": 0},
        limit_cents=500,
        total_cost_cents=3,
        price_cu_hour_usd=price,
    )
    left = int(497 * 3600 / 10.6)  # CU-seconds that 497 cents buy
    assert abs((quotas["a"] - 1000) + quotas["b"] - left) <= 2
    assert quotas["a"] - 1000 == quotas["b"]
    spent = compute_quotas(
        project_ids=["a", "b"],
        compute_seconds={},
        limit_cents=500,
        total_cost_cents=600,
        price_cu_hour_usd=price,
    )
    assert spent == {"a": 1, "b": 1}  # stopped: 0 would mean unlimited
    lifted = compute_quotas(
        project_ids=["a"],
        compute_seconds={"a": 5},
        limit_cents=None,
        total_cost_cents=0,
        price_cu_hour_usd=price,
    )
    assert lifted == {"a": 0}
    assert needs_write(None, 5, tolerance=10)
    assert not needs_write(100, 105, tolerance=10)
    assert needs_write(100, 0, tolerance=10)
    assert needs_write(100, 80, tolerance=10)


async def test_a_budget_gets_one_event_per_change_of_state_and_its_generation() -> None:
    sync = BudgetSync(settings=SETTINGS, metrics=Metrics(), clock=lambda: NOW)
    add_user(sync, "cy", cost_cents=10)
    sync.put_budget("default", "budget-cy", BudgetRecord(user_id="cy", tier=Tier.FREE, generation=3))
    events: list[tuple[str, ...]] = []
    kube = ByName()

    async def round_with(cost: int, tier: Tier = Tier.FREE, generation: int = 3) -> list[str]:
        sync.costs["p-cy"] = cost
        sync.put_budget("default", "budget-cy", BudgetRecord(user_id="cy", tier=tier, generation=generation))
        events.clear()
        await sync.enforce(store=Store(), kube=kube, neon=Endpoints(), post_event=lambda *e: events.append(e))
        return [e[4] for e in events if e[0] == "DatabaseBudget"]

    assert await round_with(10) == []
    assert kube.status["budget-cy"]["observedGeneration"] == 3
    assert await round_with(20) == []  # a new total is not a new state
    assert await round_with(10_000) == ["BudgetExceeded"]
    assert await round_with(10_000) == []
    assert await round_with(10_000, Tier.ENTERPRISE, generation=4) == ["TierChanged", "BudgetResumed"]
    assert kube.status["budget-cy"]["observedGeneration"] == 4


async def test_money_metrics_have_no_label_per_user() -> None:
    metrics = Metrics()
    sync = BudgetSync(settings=SETTINGS, metrics=metrics, clock=lambda: NOW)
    for user, cost in (("a", 100), ("b", 490), ("c", 10_000)):  # free tier: 500 cents
        add_user(sync, user, cost_cents=cost)
    await sync.enforce(store=Store(), kube=ByName(), neon=Endpoints(), post_event=lambda *e: None)
    value = metrics.registry.get_sample_value
    assert value("tenantdb_budgets_over_limit") == 1
    assert value("tenantdb_spend_cents") == 10_590
    assert value("tenantdb_budget_spend_ratio_bucket", {"le": "0.25"}) == 1
    assert value("tenantdb_budget_spend_ratio_bucket", {"le": "1.0"}) == 2
    assert value("tenantdb_budget_spend_ratio_bucket", {"le": "+Inf"}) == 3
    assert value("tenantdb_budget_spend_ratio_count") == 3
    labels = {
        key
        for family in metrics.registry.collect()
        if family.name.startswith(("tenantdb_budget", "tenantdb_spend"))
        for sample in family.samples
        for key in sample.labels
    }
    assert labels <= {"le"}


class Silent:
    """Neon's consumption answer: projects that used nothing are left out."""

    def __init__(self, usage: dict[str, int]) -> None:
        self.usage = usage

    async def consumption(self, *, project_ids: Any, **_: Any) -> list[Any]:
        return [
            SimpleNamespace(project_id=p, metrics={"compute_unit_seconds": self.usage[p]})
            for p in project_ids
            if self.usage.get(p)
        ]


async def test_a_project_silent_in_the_answer_never_holds_back_a_resume() -> None:
    sync = BudgetSync(settings=SETTINGS, metrics=Metrics(), clock=lambda: NOW)
    add_user(sync, "eve", cost_cents=0)
    sync.put_database(DatabaseRecord("WorkspaceDatabase", "default", "ws-eve", "eve", "p-idle", "ep-idle"))
    sync.costs.clear()
    neon, kube = Endpoints(), ByName()
    source = Silent({"p-eve": 200_000})  # 589 cents; p-idle used nothing and is left out
    await sync.sync_once(source=source, store=Store(), kube=kube, neon=neon, post_event=lambda *e: None)
    assert sync.is_suspended("eve") is True
    assert neon.disabled == {"p-eve": True, "p-idle": True}
    sync.put_budget("default", "budget-eve", BudgetRecord(user_id="eve", tier=Tier.PAID))  # the upgrade
    await sync.enforce(store=Store(), kube=kube, neon=neon, post_event=lambda *e: None)
    assert sync.is_suspended("eve") is False
    assert neon.disabled == {"p-eve": False, "p-idle": False}


async def test_a_restart_posts_no_event_for_a_state_that_did_not_change() -> None:
    sync = BudgetSync(settings=SETTINGS, metrics=Metrics(), clock=lambda: NOW)
    add_user(sync, "fay", cost_cents=10_000)
    sync.seed_state("default", "budget-fay", {"tier": "free", "exceeded": True})
    events: list[tuple[str, ...]] = []
    await sync.enforce(store=Store(), kube=ByName(), neon=Endpoints(), post_event=lambda *e: events.append(e))
    assert [e for e in events if e[0] == "DatabaseBudget"] == []


async def test_a_step_in_flight_is_cancelled_when_the_replica_is_paused() -> None:
    peering = Peering({"a": _peer(10)})
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def long_step() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = asyncio.create_task(
        run_while_active(_gate("a", 10, peering), long_step, interval=60, idle_check=0.02)
    )
    await asyncio.wait_for(started.wait(), 5)
    peering.status["b"] = _peer(20)  # a replica of higher priority arrives
    await asyncio.wait_for(cancelled.wait(), 5)  # the step it was in is gone ...
    assert task.done() is False  # ... and the loop goes on, paused
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_the_stop_is_armed_only_when_what_is_left_could_go_before_anyone_knows() -> None:
    price = Decimal("0.106")

    def arms(total: int, max_cu: list[float]) -> bool:
        return armed(
            limit_cents=500,
            total_cost_cents=total,
            max_cu=max_cu,
            sync_interval_seconds=900,
            price_cu_hour_usd=price,
        )

    assert not arms(10, [0.25])  # 490 cents are 166,000 CU-seconds: 0.25 CU needs 184 hours
    assert arms(10, [56.0])  # the largest compute spends it in under an hour
    assert arms(499, [0.25])  # nearly spent: any compute gets there
    assert not armed(
        limit_cents=None,
        total_cost_cents=0,
        max_cu=[56.0],
        sync_interval_seconds=900,
        price_cu_hour_usd=price,
    )
    assert not needs_write(None, 0, tolerance=10)  # never capped: nothing to lift


async def test_before_its_first_sync_a_restarted_loop_resumes_no_one() -> None:
    # The budget's resume handler may run before any database of the user is registered:
    # "no databases, all costs known, 0 spent" must not resume a suspended user.
    sync = BudgetSync(settings=SETTINGS, metrics=Metrics(), clock=lambda: NOW)
    await sync.restore(Rows(ann=True))
    sync.put_budget("default", "budget-ann", BudgetRecord(user_id="ann", tier=Tier.FREE))
    await sync.enforce(store=Store(), kube=ByName(), neon=Endpoints(), post_event=lambda *e: None)
    assert sync.is_suspended("ann") is True


async def test_a_restart_syncs_when_the_last_recorded_sync_is_due_not_at_once() -> None:
    # 30,000 projects are 300 calls of the consumption endpoint's 50 a minute: a deploy must
    # not pay them again for a sync the last process made a moment ago.
    interval = SETTINGS.consumption_sync_interval_seconds
    later = NOW + datetime.timedelta(seconds=100)
    sync = BudgetSync(settings=SETTINGS, metrics=Metrics(), clock=lambda: later)
    assert sync.first_sync_wait() == 0.0  # nothing on record: sync at once
    await sync.restore(Rows(ann=True, bob=False))
    assert sync.first_sync_wait() == pytest.approx(interval - 100)
    sync.last_sync = later  # this process has synced: its own interval rules
    assert sync.first_sync_wait() == 0.0
    sync.forget_decisions()  # paused: the next activation reads the rows again
    sync.last_sync = None
    assert sync.first_sync_wait() == 0.0
