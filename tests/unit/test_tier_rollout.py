"""A tier's rollout, counted: which databases are behind, in which order, what each costs on
Neon, and each tier's progress. Pure, with a fake that counts Neon's calls."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from tenantdb.api import DatabaseStatus
from tenantdb.billing import TierDefinition, TierPolicy
from tenantdb.reconcile.database_tier import apply_tier
from tenantdb.reconcile.enforcement import BudgetRecord, DatabaseRecord
from tenantdb.reconcile.tier_rollout import behind, progress, tier_status
from tenantdb.reconcile.tiers import OwnCompute, desired_settings

NOW = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.UTC)
FREE = TierDefinition(name="free", limit_cents=500, min_cu=0.25, max_cu=0.5)
PRO = TierDefinition(name="pro", limit_cents=5000, min_cu=0.25, max_cu=2.0)


class CountingNeon:
    def __init__(self) -> None:
        self.endpoint_patches: list[tuple[str, dict[str, Any]]] = []
        self.project_patches: list[tuple[str, dict[str, Any]]] = []

    async def update_endpoint(self, project_id: str, endpoint_id: str, **changes: Any) -> list[Any]:
        self.endpoint_patches.append((project_id, changes))
        return []

    async def update_project_settings(
        self,
        project_id: str,
        *,
        history_retention_seconds: int | None = None,
        quotas: Mapping[str, int] | None = None,
    ) -> None:
        self.project_patches.append(
            (project_id, {"history_retention_seconds": history_retention_seconds, "quotas": quotas})
        )


def database(
    user: str, *, tier: TierDefinition | None = FREE, own: OwnCompute | None = None
) -> DatabaseRecord:
    """A settled database of ``user``, its settings applied from ``tier`` (None: none recorded)."""
    own = own or OwnCompute()
    applied = desired_settings(own, tier) if tier is not None else None
    return DatabaseRecord(
        "GlobalDatabase", "default", f"user-{user}", user, f"p-{user}", f"ep-{user}", own=own, applied=applied
    )


def policy(*tiers: TierDefinition) -> TierPolicy:
    return TierPolicy(default_tier="free", tiers={tier.name: tier for tier in tiers})


async def test_a_tier_change_at_30000_tenants_is_one_endpoint_patch_per_affected_database() -> None:
    # 30,000 users on free; one in ten names its own compute size (the tier cannot move it).
    own = OwnCompute(min_cu=0.25, max_cu=1.0)
    databases = [database(f"u{i:05}", own=own if i % 10 == 0 else None) for i in range(30_000)]
    grown = dataclasses.replace(FREE, max_cu=1.0)
    tiers = policy(grown, PRO)
    late = behind(databases, tier_of=lambda _user: "free", policy=tiers)
    assert len(late) == 27_000

    neon, writes = CountingNeon(), []

    async def write(kind: str, namespace: str, name: str, status: DatabaseStatus) -> None:
        writes.append((name, status.to_patch()))

    done: dict[str, DatabaseRecord] = {}
    for item in late:
        await apply_tier(item, neon=neon, write_status=write, post_event=lambda *e: None)
        done[item.record.name] = dataclasses.replace(item.record, applied=item.wanted)
    assert len(neon.endpoint_patches) == 27_000  # one each, and not one read
    assert len({project for project, _ in neon.endpoint_patches}) == 27_000
    assert neon.project_patches == []  # nothing at the project level changed
    assert neon.endpoint_patches[0][1] == {
        "autoscaling_min_cu": 0.25,
        "autoscaling_max_cu": 1.0,
        "suspend_timeout_seconds": 0,
    }
    assert writes[0][1] == {
        "applied": {"tier": "free", "minCu": 0.25, "maxCu": 1.0, "suspendTimeoutSeconds": 0}
    }
    # Once recorded, nothing is behind: the next pass (and every one after) costs nothing.
    after = [done.get(record.name, record) for record in databases]
    assert behind(after, tier_of=lambda _user: "free", policy=tiers) == []
    counts = progress([], after, tier_of=lambda _user: "free", policy=tiers)
    assert counts["free"].databases == counts["free"].updated == 30_000


def test_a_users_own_move_goes_before_a_backlog() -> None:
    databases = [database(f"u{i}") for i in range(5)]
    tier_of = {"u3": "pro"}.get
    late = behind(
        databases,
        tier_of=lambda user: tier_of(user) or "free",
        policy=policy(dataclasses.replace(FREE, max_cu=1.0), PRO),
        urgent={"u3"},
    )
    assert [item.record.user_id for item in late] == ["u3", "u0", "u1", "u2", "u4"]
    assert late[0].wanted.tier == "pro"


def test_a_limit_alone_reaches_no_database_and_a_new_name_costs_no_neon_call() -> None:
    databases = [database("a"), database("b")]
    cheaper = dataclasses.replace(FREE, limit_cents=100)
    assert behind(databases, tier_of=lambda _user: "free", policy=policy(cheaper)) == []
    # The same settings under another tier's name: behind (the record names the old tier) ...
    renamed = dataclasses.replace(FREE, name="basic")
    (late, _) = behind(databases, tier_of=lambda _user: "basic", policy=policy(renamed))
    assert late.applied.compute == late.wanted.compute


async def test_a_new_name_alone_is_a_status_write_and_no_neon_call() -> None:
    renamed = dataclasses.replace(FREE, name="basic")
    (late,) = behind([database("a")], tier_of=lambda _user: "basic", policy=policy(renamed))
    neon = CountingNeon()
    writes: list[Any] = []

    async def write(kind: str, namespace: str, name: str, status: DatabaseStatus) -> None:
        writes.append(status)

    calls = await apply_tier(late, neon=neon, write_status=write, post_event=lambda *e: None)
    assert calls == 0
    assert (neon.endpoint_patches, neon.project_patches) == ([], [])
    assert writes[0].applied.tier == "basic"


def test_a_user_whose_tier_does_not_exist_is_left_alone() -> None:
    assert behind([database("a")], tier_of=lambda _user: "gone", policy=policy(FREE)) == []


def test_a_database_recorded_before_tiers_is_taken_as_its_spec_or_the_base() -> None:
    legacy = database("old", tier=None)  # no status.applied
    legacy_own = database(
        "own", tier=None, own=OwnCompute(min_cu=0.25, max_cu=1.0, suspend_timeout_seconds=300)
    )
    # A tier that gives what the operator gave before: nothing to do for either.
    base = TierDefinition(name="free", limit_cents=500)
    assert behind([legacy, legacy_own], tier_of=lambda _user: "free", policy=policy(base)) == []
    # A tier with a larger size reaches the one whose spec names none, only.
    (late,) = behind([legacy, legacy_own], tier_of=lambda _user: "free", policy=policy(FREE))
    assert late.record.name == "user-old"
    assert late.applied.compute == (0.25, 0.25, 0)


def test_databases_still_being_made_are_left_to_their_reconcile_but_counted() -> None:
    making = dataclasses.replace(database("new", tier=None), endpoint_id=None)
    grown = dataclasses.replace(FREE, max_cu=1.0)
    assert behind([making], tier_of=lambda _user: "free", policy=policy(grown)) == []
    counts = progress([], [making], tier_of=lambda _user: "free", policy=policy(grown))
    assert (counts["free"].databases, counts["free"].updated) == (1, 0)


def test_a_tiers_progress_and_its_ready_condition() -> None:
    budgets = [BudgetRecord("a", "free"), BudgetRecord("b", "pro")]
    databases = [database("a"), database("b")]  # b's still applied from free
    counts = progress(
        budgets, databases, tier_of={"a": "free", "b": "pro"}.__getitem__, policy=policy(FREE, PRO)
    )
    assert (counts["free"].databases, counts["free"].updated, counts["free"].users) == (1, 1, 1)
    assert (counts["pro"].databases, counts["pro"].updated, counts["pro"].users) == (1, 0, 1)
    wire, conditions = tier_status(counts["pro"], conditions=[], generation=4, now=NOW)
    assert wire["databases"] == 1
    assert wire["updatedDatabases"] == 0
    assert wire["observedGeneration"] == 4
    (ready,) = conditions
    assert (ready.status, ready.reason, ready.message) == (
        "False",
        "RollingOut",
        "0 of 1 databases follow the tier",
    )
    wire, conditions = tier_status(counts["free"], conditions=conditions, generation=4, now=NOW)
    assert (conditions[0].status, conditions[0].reason) == ("True", "RolledOut")
