"""Tier limits, custom overrides, unlimited budgets and the exceeded rule."""

from __future__ import annotations

import pytest

from tenantdb.billing import Budget, TierPolicy, is_exceeded
from tenantdb.config import Settings, Tier

KEY = "0123456789abcdef" * 4


def test_policy_from_settings_uses_the_tier_limits_and_default_tier() -> None:
    settings = Settings(encryption_key=KEY, default_tier=Tier.PAID, tier_paid_limit_cents=1234)
    policy = TierPolicy.from_settings(settings)
    assert policy.default_tier is Tier.PAID
    assert policy.limit_cents(Budget(Tier.FREE)) == 500
    assert policy.limit_cents(Budget(Tier.PAID)) == 1234
    assert policy.limit_cents(Budget(Tier.ENTERPRISE)) is None


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


def test_a_policy_needs_every_tier_and_non_negative_limits() -> None:
    with pytest.raises(ValueError, match="no limit for tiers"):
        TierPolicy(default_tier=Tier.FREE, limits_cents={Tier.FREE: 500})
    with pytest.raises(ValueError, match=">= 0"):
        TierPolicy(default_tier=Tier.FREE, limits_cents={Tier.FREE: -5, Tier.PAID: 1, Tier.ENTERPRISE: None})


def test_a_policy_does_not_change_when_its_source_dict_does() -> None:
    limits: dict[Tier, int | None] = {Tier.FREE: 500, Tier.PAID: 5000, Tier.ENTERPRISE: None}
    policy = TierPolicy(default_tier=Tier.FREE, limits_cents=limits)
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
