"""Tiers: what each gives (``TierDefinition``), which limit applies to a budget, when spend
counts as exceeded, and which tier a Sim plan stands for.

Rules:

- The tiers are the cluster's ``DatabaseTier`` objects. Without any, the operator's settings
  define three, ``free``, ``paid`` and ``enterprise``, with their limits
  (``TENANTDB_TIER_*_LIMIT_CENTS``) and nothing else: the behaviour before tiers were objects.
  Once one object exists, the objects are the whole list (a budget naming a tier without an
  object is told so; a missing ``free`` does not come back from the settings behind its back).
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
import fnmatch
import types
from collections.abc import Iterable, Mapping

from tenantdb.config import Settings, Tier

__all__ = [
    "Budget",
    "TierDefinition",
    "TierPolicy",
    "UnknownTierError",
    "is_exceeded",
    "tier_for_sim_plan",
]


class UnknownTierError(LookupError):
    """A budget names a tier that does not exist."""

    def __init__(self, tier: str) -> None:
        super().__init__(f"no DatabaseTier named {tier!r}")
        self.tier = tier


@dataclasses.dataclass(frozen=True)
class TierDefinition:
    """One tier, as its DatabaseTier object (or the settings) define it. ``None``: the tier
    does not say (a database then keeps the operator's own default for it)."""

    name: str
    limit_cents: int | None = None  # None: unlimited
    min_cu: float | None = None
    max_cu: float | None = None
    suspend_timeout_seconds: int | None = None
    history_retention_seconds: int | None = None
    # Neon's ``settings.quota`` names -> value (0: none), for every project of the tier.
    quotas: Mapping[str, int] = dataclasses.field(default_factory=dict)
    sim_plans: tuple[str, ...] = ()
    generation: int | None = None  # the object's metadata.generation (None: from settings)

    def __post_init__(self) -> None:
        if self.limit_cents is not None and self.limit_cents < 0:
            raise ValueError(f"limit_cents must be >= 0, got {self.limit_cents}")
        object.__setattr__(self, "quotas", types.MappingProxyType(dict(self.quotas)))


@dataclasses.dataclass(frozen=True)
class Budget:
    """What a user's DatabaseBudget asks for."""

    tier: str
    custom_limit_cents: int | None = None

    def __post_init__(self) -> None:
        if self.custom_limit_cents is not None and self.custom_limit_cents < 0:
            raise ValueError(f"custom_limit_cents must be >= 0, got {self.custom_limit_cents}")


@dataclasses.dataclass(frozen=True)
class TierPolicy:
    """The default tier and every tier by name."""

    default_tier: str
    tiers: Mapping[str, TierDefinition]

    def __post_init__(self) -> None:
        wrong = [name for name, tier in self.tiers.items() if tier.name != name]
        if wrong:
            raise ValueError(f"tiers filed under another name: {sorted(wrong)}")
        # Freeze a copy, so a caller mutating its dict cannot change a policy in use.
        object.__setattr__(self, "tiers", types.MappingProxyType(dict(self.tiers)))

    @classmethod
    def of_limits(cls, default_tier: str, limits_cents: Mapping[str, int | None]) -> TierPolicy:
        """Tiers that only set a limit (the settings' three, tests)."""
        return cls(
            default_tier=default_tier,
            tiers={
                name: TierDefinition(name=name, limit_cents=limit) for name, limit in limits_cents.items()
            },
        )

    @classmethod
    def from_settings(cls, settings: Settings, objects: Iterable[TierDefinition] = ()) -> TierPolicy:
        """The DatabaseTier objects; without any, the three tiers of the settings."""
        defined = {tier.name: tier for tier in objects}
        if defined:
            return cls(default_tier=settings.default_tier, tiers=defined)
        return cls.of_limits(settings.default_tier, {tier: settings.tier_limit_cents(tier) for tier in Tier})

    @property
    def limits_cents(self) -> Mapping[str, int | None]:
        return {name: tier.limit_cents for name, tier in self.tiers.items()}

    def budget_or_default(self, budget: Budget | None) -> Budget:
        """The budget itself, or the default tier's for a user who has none."""
        return budget if budget is not None else Budget(tier=self.default_tier)

    def tier(self, name: str) -> TierDefinition | None:
        return self.tiers.get(name)

    def tier_of(self, budget: Budget | None) -> TierDefinition:
        """The tier a budget (``None``: the default) names; ``UnknownTierError`` when none is."""
        name = self.budget_or_default(budget).tier
        found = self.tiers.get(name)
        if found is None:
            raise UnknownTierError(name)
        return found

    def knows(self, budget: Budget | None) -> bool:
        return self.budget_or_default(budget).tier in self.tiers

    def limit_cents(self, budget: Budget | None) -> int | None:
        """The limit in cents that applies to ``budget``; ``None`` is unlimited.

        ``UnknownTierError`` when its tier does not exist and it sets no limit of its own."""
        budget = self.budget_or_default(budget)
        if budget.custom_limit_cents is not None:
            return budget.custom_limit_cents
        return self.tier_of(budget).limit_cents


def is_exceeded(total_cents: int, limit_cents: int | None) -> bool:
    """Whether spend has reached the limit: ``total >= limit``; an unlimited budget never is."""
    return limit_cents is not None and total_cents >= limit_cents


def tier_for_sim_plan(plan: str, tiers: Iterable[TierDefinition]) -> str | None:
    """The name of the tier whose ``sim_plans`` claim a Sim plan; ``None``: no tier does.

    An exact name beats a pattern; of several patterns the longest (the most specific:
    ``team_big_*`` over ``team_*``) wins, and a tie goes to the first tier by name, so the
    answer never depends on the order the objects were listed in."""
    ordered = sorted(tiers, key=lambda tier: tier.name)
    for tier in ordered:
        if plan in tier.sim_plans:
            return tier.name
    best: tuple[int, str] | None = None
    for tier in ordered:
        for pattern in tier.sim_plans:
            if fnmatch.fnmatchcase(plan, pattern) and (best is None or len(pattern) > best[0]):
                best = (len(pattern), tier.name)
    return best[1] if best is not None else None
