"""The enforcement round: one user's failure holds back nobody else's suspend or resume."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from tenantdb.config import Settings
from tenantdb.metrics import Metrics
from tenantdb.reconcile.budget_sync import BudgetSync
from tenantdb.reconcile.enforcement import BudgetRecord, DatabaseRecord
from tests.factories import Endpoints, RecordingKube, Store, add_user


class RefusingKube:
    """The API server, refusing every status patch of one object."""

    def __init__(self, refuse: str) -> None:
        self.refuse = refuse
        self.patched: list[str] = []

    async def patch_status(
        self, *, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        if name == self.refuse:
            raise RuntimeError("the API server refused the patch")
        self.patched.append(name)


async def test_a_refused_status_patch_does_not_stop_the_other_users_suspension() -> None:
    sync = BudgetSync(settings=Settings(encryption_key="0" * 64), metrics=Metrics())
    for user in ("ann", "bob"):
        add_user(sync, user, cost_cents=10_000)  # far over the free tier
    kube, neon = RefusingKube(refuse="budget-ann"), Endpoints()
    events: list[tuple[str, ...]] = []
    await sync.enforce(store=Store(), kube=kube, neon=neon, post_event=lambda *e: events.append(e))
    assert neon.disabled == {"p-ann": True, "p-bob": True}
    assert "budget-bob" in kube.patched
    assert {"db-ann", "db-bob"} <= set(kube.patched)


async def test_a_condition_keeps_its_transition_time_until_its_status_changes() -> None:
    moments = iter(datetime.datetime(2026, 12, 1, 0, minute, tzinfo=datetime.UTC) for minute in range(60))
    sync = BudgetSync(
        settings=Settings(encryption_key="0" * 64), metrics=Metrics(), clock=lambda: next(moments)
    )
    add_user(sync, "cy", cost_cents=0)
    kube = RecordingKube()
    seen: list[str] = []
    for cost in (10, 20, 10_000, 10_000):
        sync.costs["p-cy"] = cost
        await sync.enforce(store=Store(), kube=kube, neon=Endpoints(), post_event=lambda *e: None)
        exceeded = next(c for c in kube.budget_status["conditions"] if c["type"] == "BudgetExceeded")
        seen.append(exceeded["lastTransitionTime"])
    assert seen[0] == seen[1]  # still within the limit: no transition
    assert seen[2] != seen[1]  # over it: a transition
    assert seen[3] == seen[2]


async def test_a_budget_naming_a_tier_that_does_not_exist_suspends_and_resumes_nobody() -> None:
    sync = BudgetSync(settings=Settings(encryption_key="0" * 64), metrics=Metrics())
    sync.last_sync = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)  # every cost known
    add_user(sync, "ann", cost_cents=10_000)  # far over the free tier: suspended
    kube, neon, events = RecordingKube(), Endpoints(), []
    await sync.enforce(store=Store(), kube=kube, neon=neon, post_event=lambda *e: events.append(e))
    assert sync.is_suspended("ann") is True
    assert neon.disabled == {"p-ann": True}

    # A typo in the tier: the decision in force holds, whatever the spend does meanwhile.
    sync.put_budget("default", "budget-ann", BudgetRecord(user_id="ann", tier="fre"))
    sync.costs["p-ann"] = 0
    await sync.enforce(store=Store(), kube=kube, neon=neon, post_event=lambda *e: events.append(e))
    assert sync.is_suspended("ann") is True
    assert neon.disabled == {"p-ann": True}  # not resumed
    status = kube.budget_status
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "TierNotFound")
    assert "fre" in ready["message"]
    assert status["exceeded"] is True
    # The tier and limit in force stay as written before.
    assert "tier" not in status
    assert "limitCents" not in status
    assert [e[4] for e in events].count("TierNotFound") == 1
    await sync.enforce(store=Store(), kube=kube, neon=neon, post_event=lambda *e: events.append(e))
    assert [e[4] for e in events].count("TierNotFound") == 1  # told once, not per pass

    # Nor does a typo suspend a user who was within budget.
    add_user(sync, "bob", cost_cents=0)
    await sync.enforce(store=Store(), kube=kube, neon=neon, post_event=lambda *e: None)
    assert sync.is_suspended("bob") is False
    sync.put_budget("default", "budget-bob", BudgetRecord(user_id="bob", tier="nope"))
    sync.costs["p-bob"] = 10**6
    await sync.enforce(store=Store(), kube=kube, neon=neon, post_event=lambda *e: None)
    assert sync.is_suspended("bob") is False
    assert "p-bob" not in neon.disabled or neon.disabled["p-bob"] is False


async def test_a_database_that_changes_payer_counts_once_for_the_new_payer_only() -> None:
    """Registered again under another user, a database's spend leaves the first user's total
    whole and joins the other's: one pass over both users adds up to the same spend."""
    sync = BudgetSync(settings=Settings(encryption_key="0" * 64), metrics=Metrics())
    add_user(sync, "ann", cost_cents=300)
    add_user(sync, "bob", cost_cents=100)
    workspace = DatabaseRecord(
        kind="WorkspaceDatabase", namespace="default", name="ws", user_id="ann",
        project_id="p-ws", endpoint_id="ep-ws",
    )  # fmt: skip
    sync.put_database(workspace)
    sync.costs["p-ws"] = 300
    sync.last_sync = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)  # every cost known
    neon, events = Endpoints(), []
    await sync.enforce(store=Store(), kube=RecordingKube(), neon=neon, post_event=lambda *e: events.append(e))
    assert neon.disabled == {"p-ann": True, "p-ws": True}  # ann: 600 of 500

    known = sync.databases[("WorkspaceDatabase", "default", "ws")]  # as suspended for ann's budget
    previous = sync.put_database(dataclasses.replace(known, user_id="bob"))
    assert previous is not None
    assert previous.user_id == "ann"
    _, databases = sync.registered(["ann", "bob"])
    assert sorted(d.name for d in databases) == ["db-ann", "db-bob", "ws"]  # each once
    assert [d.name for d in sync.registered(["ann"])[1]] == ["db-ann"]
    await sync.enforce(
        store=Store(), kube=RecordingKube(), neon=neon, post_event=lambda *e: None, users=["ann", "bob"]
    )
    assert sync.is_suspended("ann") is False
    assert sync.is_suspended("bob") is False  # 400 of 500
    assert neon.disabled == {"p-ann": False, "p-ws": False}
    assert sync.metrics.registry.get_sample_value("tenantdb_spend_cents") == 700  # as before the move
