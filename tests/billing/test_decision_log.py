"""The budget loop's decisions in the decision log: each suspend, resume and hard-stop change
once, with who decided, why and the figures; a quota Neon refuses is counted."""

from __future__ import annotations

import datetime

from tenantdb.config import Settings, Tier
from tenantdb.metrics import Metrics
from tenantdb.reconcile.budget_sync import BudgetSync
from tenantdb.reconcile.enforcement import BudgetRecord
from tenantdb.store import DecisionRow, StoreUnavailableError
from tests.factories import Endpoints, RecordingKube, Store, add_user

NOW = datetime.datetime(2026, 12, 10, 12, 0, tzinfo=datetime.UTC)


class DecisionLog:
    """The metadata DB's decision log, as the loop writes it (``MetadataStore.record_decision``)."""

    def __init__(self, *, down: bool = False) -> None:
        self.rows: list[DecisionRow] = []
        self.down = down

    async def record_decision(self, row: DecisionRow) -> None:
        if self.down:
            raise StoreUnavailableError("record_decision: the metadata DB is unreachable")
        self.rows.append(row)


class Quotas:
    def __init__(self, *, refuse: bool = False) -> None:
        self.set: dict[str, int] = {}
        self.refuse = refuse

    async def set_compute_quota(self, project_id: str, compute_time_seconds: int) -> None:
        if self.refuse:
            raise RuntimeError("Neon refused the quota")
        self.set[project_id] = compute_time_seconds


def budget_sync(log: DecisionLog) -> BudgetSync:
    sync = BudgetSync(settings=Settings(encryption_key="0" * 64), metrics=Metrics(), clock=lambda: NOW)
    sync.loop.decision_log = log
    sync.last_sync = NOW  # every cost known: a decision either way
    return sync


async def enforce(sync: BudgetSync, quotas: Quotas | None = None) -> None:
    await sync.enforce(
        store=Store(), kube=RecordingKube(), neon=Endpoints(), post_event=lambda *e: None, quotas=quotas
    )


async def test_a_suspend_and_the_resume_on_an_upgrade_are_each_recorded_once_with_their_figures() -> None:
    log = DecisionLog()
    sync = budget_sync(log)
    add_user(sync, "ann", cost_cents=120)
    await enforce(sync)
    assert log.rows == []  # within the limit from the start: nothing was decided against anyone

    sync.costs["p-ann"] = 612
    await enforce(sync)
    await enforce(sync)  # the same word again: not a new decision
    sync.put_budget("default", "budget-ann", BudgetRecord(user_id="ann", tier=Tier.PAID))
    await enforce(sync)

    assert [(r.action, r.spend_cents, r.limit_cents) for r in log.rows] == [
        ("suspend", 612, 500),
        ("resume", 612, 5000),
    ]
    suspend, resume = log.rows
    assert (suspend.scope, suspend.tenant_id, suspend.decided_by) == ("user", "ann", "budget enforcement")
    assert suspend.reason == "spent 612 of 500 cents this period"
    assert resume.reason == "tier free -> paid: spent 612 of 5000 cents this period"
    assert suspend.decided_at == NOW
    assert resume.details["tier"] == "paid"


async def test_the_hard_stop_armed_and_lifted_is_recorded_and_a_refused_quota_counted() -> None:
    log = DecisionLog()
    sync = budget_sync(log)
    add_user(sync, "bo", cost_cents=490)  # 10 cents left: the stop is armed
    await enforce(sync, Quotas())
    assert [r.action for r in log.rows] == ["hard-stop-armed"]
    assert log.rows[0].details["computeQuotaSeconds"]["p-bo"] > 0

    sync.put_budget("default", "budget-bo", BudgetRecord(user_id="bo", tier=Tier.ENTERPRISE))  # unlimited
    await enforce(sync, Quotas())
    assert [r.action for r in log.rows] == ["hard-stop-armed", "hard-stop-lifted"]

    refused = budget_sync(DecisionLog())
    add_user(refused, "cy", cost_cents=490)
    await enforce(refused, Quotas(refuse=True))
    assert refused.metrics.quota_write_failures._value.get() == 1
    assert refused.loop.decision_log.rows == []  # type: ignore[union-attr]  # nothing changed in Neon


async def test_a_decision_log_that_cannot_be_written_holds_back_no_suspend() -> None:
    sync = budget_sync(DecisionLog(down=True))
    add_user(sync, "dee", cost_cents=10_000)
    neon = Endpoints()
    await sync.enforce(store=Store(), kube=RecordingKube(), neon=neon, post_event=lambda *e: None)
    assert neon.disabled == {"p-dee": True}
    assert sync.is_suspended("dee") is True
