"""Tier limits, custom overrides, unlimited budgets and the exceeded rule."""

from __future__ import annotations

import pytest

from tenantdb.billing import (
    Budget,
    TierDefinition,
    TierPolicy,
    UnknownTierError,
    is_exceeded,
    tier_for_sim_plan,
)
from tenantdb.config import Settings, Tier

KEY = "0123456789abcdef" * 4


def test_policy_from_settings_uses_the_tier_limits_and_default_tier() -> None:
    settings = Settings(encryption_key=KEY, default_tier="paid", tier_paid_limit_cents=1234)
    policy = TierPolicy.from_settings(settings)
    assert policy.default_tier == Tier.PAID
    assert policy.limit_cents(Budget(Tier.FREE)) == 500
    assert policy.limit_cents(Budget(Tier.PAID)) == 1234
    assert policy.limit_cents(Budget(Tier.ENTERPRISE)) is None


def test_without_tier_objects_the_three_tiers_of_the_settings_give_only_a_limit() -> None:
    policy = TierPolicy.from_settings(Settings(encryption_key=KEY))
    assert set(policy.tiers) == {"free", "paid", "enterprise"}
    assert policy.tiers["free"] == TierDefinition(name="free", limit_cents=500)


def test_tier_objects_replace_the_settings_tiers_entirely() -> None:
    gold = TierDefinition(name="gold", limit_cents=20_000, max_cu=4.0)
    policy = TierPolicy.from_settings(Settings(encryption_key=KEY), [gold])
    assert policy.limit_cents(Budget("gold")) == 20_000
    # "free" has no object: it is not brought back from the settings behind the objects' back.
    assert not policy.knows(Budget("free"))
    with pytest.raises(UnknownTierError, match="free"):
        policy.limit_cents(Budget("free"))


@pytest.mark.parametrize(("tier", "limit"), [(Tier.FREE, 500), (Tier.PAID, 5000), (Tier.ENTERPRISE, None)])
def test_each_tier_has_its_limit(policy: TierPolicy, tier: Tier, limit: int | None) -> None:
    assert policy.limit_cents(Budget(tier)) == limit


def test_a_custom_limit_overrides_the_tier(policy: TierPolicy) -> None:
    assert policy.limit_cents(Budget(Tier.FREE, custom_limit_cents=2000)) == 2000
    assert policy.limit_cents(Budget(Tier.PAID, custom_limit_cents=100)) == 100


def test_a_custom_limit_gives_an_unlimited_tier_a_limit(policy: TierPolicy) -> None:
    assert policy.limit_cents(Budget(Tier.ENTERPRISE, custom_limit_cents=10_000)) == 10_000


def test_a_custom_limit_of_zero_is_a_limit_not_unset(policy: TierPolicy) -> None:
    assert policy.limit_cents(Budget(Tier.PAID, custom_limit_cents=0)) == 0


def test_no_budget_means_the_default_tier(policy: TierPolicy) -> None:
    assert policy.limit_cents(None) == 500
    assert policy.budget_or_default(None) == Budget(Tier.FREE)


def test_a_negative_custom_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="custom_limit_cents"):
        Budget(Tier.FREE, custom_limit_cents=-1)


def test_a_tier_limit_is_never_negative_and_a_tier_is_filed_under_its_name() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        TierPolicy.of_limits(Tier.FREE, {Tier.FREE: -5})
    with pytest.raises(ValueError, match="another name"):
        TierPolicy(default_tier="free", tiers={"free": TierDefinition(name="paid")})


def test_a_policy_does_not_change_when_its_source_dict_does() -> None:
    limits: dict[str, int | None] = {Tier.FREE: 500, Tier.PAID: 5000, Tier.ENTERPRISE: None}
    policy = TierPolicy.of_limits(Tier.FREE, limits)
    limits[Tier.FREE] = 1
    assert policy.limit_cents(Budget(Tier.FREE)) == 500


@pytest.mark.parametrize(
    ("total", "limit", "exceeded"),
    [
        (499, 500, False),  # below
        (500, 500, True),  # reaching the limit counts
        (501, 500, True),  # above
        (0, 0, True),  # a zero limit: nothing may be spent
        (10**12, None, False),  # unlimited
        (0, None, False),
    ],
)
def test_exceeded_means_spend_has_reached_the_limit(total: int, limit: int | None, exceeded: bool) -> None:
    assert is_exceeded(total, limit) is exceeded


def _tiers(**plans: tuple[str, ...]) -> list[TierDefinition]:
    return [TierDefinition(name=name, sim_plans=patterns) for name, patterns in plans.items()]


@pytest.mark.parametrize(
    ("plan", "tier"),
    [
        ("free", "free"),
        ("pro", "pro"),
        ("team_25", "team"),  # a pattern
        ("team_big_5", "team-big"),  # the longest pattern that matches wins
        ("team", "pro"),  # an exact name beats any pattern
        ("max", None),  # no tier claims it
    ],
)
def test_a_sim_plan_lands_on_the_tier_that_claims_it(plan: str, tier: str | None) -> None:
    tiers = _tiers(free=("free",), pro=("pro", "team"), team=("team_*",), **{"team-big": ("team_big_*",)})
    assert tier_for_sim_plan(plan, tiers) == tier
    assert tier_for_sim_plan(plan, list(reversed(tiers))) == tier  # whatever order they were listed in


def test_two_tiers_claiming_a_plan_alike_give_the_first_by_name() -> None:
    assert tier_for_sim_plan("pro", _tiers(zeta=("pro",), alpha=("pro",))) == "alpha"
    assert tier_for_sim_plan("pro_x", _tiers(zeta=("pro_*",), alpha=("pro_*",))) == "alpha"
