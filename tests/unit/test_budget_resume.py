"""The budget resume snapshot: a resume may skip its writes only for what the metadata DB held
as its spec says, and only while the snapshot is fresh."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tenantdb.reconcile.budget_resume import BudgetResumeSnapshot


@dataclass(frozen=True)
class Row:
    user_id: str
    tier: str
    custom_budget_cents: int | None


class Store:
    async def list_budgets(self) -> Sequence[Row]:
        return [Row("u1", "free", None), Row("u2", "custom", 700)]

    async def list_tenant_holders(self, *, kind: str) -> Mapping[str, str]:
        assert kind == "DatabaseBudget"
        return {"u1": "uid-1", "u2": "uid-2"}


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_only_the_holder_with_the_recorded_tier_and_limit_is_vouched_for() -> None:
    snapshot = BudgetResumeSnapshot(ttl_seconds=60)
    assert not snapshot.recorded(user_id="u1", holder_uid="uid-1", tier="free", custom_budget_cents=None)
    await snapshot.load(Store(), kind="DatabaseBudget")
    assert snapshot.recorded(user_id="u1", holder_uid="uid-1", tier="free", custom_budget_cents=None)
    assert snapshot.recorded(user_id="u2", holder_uid="uid-2", tier="custom", custom_budget_cents=700)
    # Another resource for the user, another tier or limit, a user without a row: not vouched for.
    assert not snapshot.recorded(user_id="u1", holder_uid="uid-9", tier="free", custom_budget_cents=None)
    assert not snapshot.recorded(user_id="u1", holder_uid="uid-1", tier="paid", custom_budget_cents=None)
    assert not snapshot.recorded(user_id="u2", holder_uid="uid-2", tier="custom", custom_budget_cents=800)
    assert not snapshot.recorded(user_id="u3", holder_uid="uid-3", tier="free", custom_budget_cents=None)


async def test_an_expired_snapshot_vouches_for_nothing() -> None:
    clock = Clock()
    snapshot = BudgetResumeSnapshot(ttl_seconds=60, clock=clock)
    await snapshot.load(Store(), kind="DatabaseBudget")
    clock.now = 61.0
    assert not snapshot.recorded(user_id="u1", holder_uid="uid-1", tier="free", custom_budget_cents=None)
    clock.now = 0.0  # forgotten, not only hidden
    assert not snapshot.recorded(user_id="u1", holder_uid="uid-1", tier="free", custom_budget_cents=None)
