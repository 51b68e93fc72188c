"""Spending limits: which limit applies to a budget, and when it counts as exceeded.

Rules:

- A budget's ``custom_limit_cents``, when set, overrides its tier's limit (0 included).
- A limit of ``None`` is unlimited: never exceeded.
- Spend **reaching** the limit counts as exceeded (``total >= limit``). Consumption is only
  learnt every sync interval, so by the time spend equals the limit, more is already being
  spent; stopping at the limit is the only way to stay close to it. It follows that a limit
  of 0 is exceeded from the start: nothing may be spent.
- A user without a budget object gets the operator's default tier.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping

from tenantdb.config import Settings, Tier

__all__ = ["Budget", "TierPolicy", "is_exceeded"]


@dataclasses.dataclass(frozen=True)
class Budget:
    """What a user's DatabaseBudget asks for."""

    tier: Tier
    custom_limit_cents: int | None = None

    def __post_init__(self) -> None:
        if self.custom_limit_cents is not None and self.custom_limit_cents < 0:
            raise ValueError(f"custom_limit_cents must be >= 0, got {self.custom_limit_cents}")


@dataclasses.dataclass(frozen=True)
class TierPolicy:
    """The default tier and every tier's limit in cents (``None``: unlimited)."""

    default_tier: Tier
    limits_cents: Mapping[Tier, int | None]

    def __post_init__(self) -> None:
        missing = set(Tier) - set(self.limits_cents)
        if missing:
            raise ValueError(f"no limit for tiers {sorted(missing)}")
        negative = {
            tier: limit for tier, limit in self.limits_cents.items() if limit is not None and limit < 0
        }
        if negative:
            raise ValueError(f"limits must be >= 0 cents: {negative}")
        # Freeze a copy, so a caller mutating its dict cannot change a policy in use.
        object.__setattr__(self, "limits_cents", types.MappingProxyType(dict(self.limits_cents)))

    @classmethod
    def from_settings(cls, settings: Settings) -> TierPolicy:
        return cls(
            default_tier=settings.default_tier,
            limits_cents={tier: settings.tier_limit_cents(tier) for tier in Tier},
        )

    def budget_or_default(self, budget: Budget | None) -> Budget:
        """The budget itself, or the default tier's for a user who has none."""
        return budget if budget is not None else Budget(tier=self.default_tier)

    def limit_cents(self, budget: Budget | None) -> int | None:
        """The limit in cents that applies to ``budget``; ``None`` is unlimited."""
        budget = self.budget_or_default(budget)
        if budget.custom_limit_cents is not None:
            return budget.custom_limit_cents
        return self.limits_cents[budget.tier]


def is_exceeded(total_cents: int, limit_cents: int | None) -> bool:
    """Whether spend has reached the limit: ``total >= limit``; an unlimited budget never is."""
    return limit_cents is not None and total_cents >= limit_cents
