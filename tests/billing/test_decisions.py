"""One user's budget decision: total, limit, exceeded, suspend and resume."""

from __future__ import annotations

import pytest

from tenantdb.billing import Budget, DatabaseSpend, TierPolicy, decide_budget
from tenantdb.config import Tier


def spend(key: str, cost: int | None, suspended: bool = False) -> DatabaseSpend[str]:
    return DatabaseSpend(key=key, cost_cents=cost, suspended_for_budget=suspended)


def test_within_budget_nothing_happens(policy: TierPolicy) -> None:
    decision = decide_budget(
        budget=Budget(Tier.FREE), databases=[spend("a", 100), spend("b", 200)], policy=policy
    )
    assert (decision.total_cost_cents, decision.limit_cents, decision.exceeded) == (300, 500, False)
    assert decision.complete
    assert (decision.suspend, decision.resume) == ((), ())


def test_over_budget_suspends_every_database_of_the_user(policy: TierPolicy) -> None:
    decision = decide_budget(
        budget=Budget(Tier.FREE), databases=[spend("a", 450), spend("b", 60)], policy=policy
    )
    assert decision.exceeded
    assert decision.total_cost_cents == 510
    assert decision.suspend == ("a", "b")  # the cheap one too: the budget is the user's
    assert decision.resume == ()


def test_reaching_the_limit_exactly_suspends(policy: TierPolicy) -> None:
    decision = decide_budget(budget=Budget(Tier.FREE), databases=[spend("a", 500)], policy=policy)
    assert decision.exceeded
    assert decision.suspend == ("a",)


def test_databases_already_suspended_are_not_suspended_again(policy: TierPolicy) -> None:
    decision = decide_budget(
        budget=Budget(Tier.FREE), databases=[spend("a", 600, suspended=True), spend("b", 0)], policy=policy
    )
    assert decision.suspend == ("b",)


def test_an_upgrade_resumes_the_databases_the_budget_suspended(policy: TierPolicy) -> None:
    databases = [spend("a", 600, suspended=True), spend("b", 10, suspended=True)]
    assert decide_budget(budget=Budget(Tier.FREE), databases=databases, policy=policy).exceeded
    decision = decide_budget(budget=Budget(Tier.PAID), databases=databases, policy=policy)
    assert (decision.tier, decision.limit_cents, decision.exceeded) == (Tier.PAID, 5000, False)
    assert decision.resume == ("a", "b")
    assert decision.suspend == ()


def test_a_higher_custom_limit_resumes(policy: TierPolicy) -> None:
    decision = decide_budget(
        budget=Budget(Tier.FREE, custom_limit_cents=1000),
        databases=[spend("a", 600, suspended=True)],
        policy=policy,
    )
    assert decision.resume == ("a",)


def test_a_new_period_resumes(policy: TierPolicy) -> None:
    # Costs reset at a rollover: the first complete snapshot of the new period is small.
    decision = decide_budget(
        budget=Budget(Tier.FREE), databases=[spend("a", 3, suspended=True)], policy=policy
    )
    assert decision.resume == ("a",)


def test_unlimited_never_suspends_and_resumes_what_was_suspended(policy: TierPolicy) -> None:
    decision = decide_budget(
        budget=Budget(Tier.ENTERPRISE), databases=[spend("a", 10**9, suspended=True)], policy=policy
    )
    assert (decision.limit_cents, decision.exceeded) == (None, False)
    assert decision.resume == ("a",)


def test_a_zero_limit_suspends_before_anything_is_spent(policy: TierPolicy) -> None:
    decision = decide_budget(
        budget=Budget(Tier.PAID, custom_limit_cents=0), databases=[spend("a", 0)], policy=policy
    )
    assert decision.exceeded
    assert decision.suspend == ("a",)


def test_no_budget_uses_the_default_tier(policy: TierPolicy) -> None:
    decision = decide_budget(budget=None, databases=[spend("a", 500)], policy=policy)
    assert (decision.tier, decision.limit_cents, decision.exceeded) == (Tier.FREE, 500, True)


def test_an_unknown_cost_holds_back_resuming(policy: TierPolicy) -> None:
    decision = decide_budget(
        budget=Budget(Tier.FREE), databases=[spend("a", 10, suspended=True), spend("b", None)], policy=policy
    )
    assert not decision.complete
    assert not decision.exceeded
    assert (decision.suspend, decision.resume) == ((), ())


def test_known_costs_over_the_limit_suspend_even_with_some_unknown(policy: TierPolicy) -> None:
    decision = decide_budget(
        budget=Budget(Tier.FREE), databases=[spend("a", 700), spend("b", None)], policy=policy
    )
    assert decision.total_cost_cents == 700  # a lower bound
    assert decision.exceeded
    assert not decision.complete
    assert decision.suspend == ("a", "b")


def test_a_user_without_databases_has_spent_nothing(policy: TierPolicy) -> None:
    nothing: list[DatabaseSpend[str]] = []
    decision = decide_budget(budget=Budget(Tier.PAID), databases=nothing, policy=policy)
    assert (decision.total_cost_cents, decision.exceeded, decision.complete) == (0, False, True)


def test_a_negative_cost_is_refused() -> None:
    with pytest.raises(ValueError, match="cost_cents"):
        spend("a", -1)


def test_applying_a_decision_then_deciding_again_does_nothing(policy: TierPolicy) -> None:
    first = decide_budget(budget=Budget(Tier.FREE), databases=[spend("a", 600), spend("b", 0)], policy=policy)
    suspended = [spend(key, cost, suspended=True) for key, cost in (("a", 600), ("b", 0))]
    assert first.suspend == ("a", "b")
    second = decide_budget(budget=Budget(Tier.FREE), databases=suspended, policy=policy)
    assert (second.suspend, second.resume) == ((), ())
