"""What to do about one user's budget: total, limit, exceeded, and which databases to suspend
or resume.

Rules, in order:

1. The total is the sum of the databases' period costs that are known. A cost is unknown
   (``None``) while no consumption has been seen for the database in this period; the total is
   then a lower bound, and the decision says so (``complete=False``).
2. Exceeded (see ``tiers.is_exceeded``) → suspend every database of the user that is not already
   suspended for the budget. A lower bound that reaches the limit is enough: costs are never
   negative, so the full total can only be higher.
3. Not exceeded, and every cost known (or no limit at all) → resume the databases suspended for the budget (an
   upgrade, a higher custom limit or a new billing period all end here).
4. Not exceeded, but some cost unknown → hold: neither suspend nor resume. Resuming on a
   partial total could wake databases that the next, complete total suspends again.

Only databases that must change appear in ``suspend``/``resume``, so applying a decision twice
does nothing the second time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

from tenantdb.billing.tiers import Budget, TierPolicy, is_exceeded

__all__ = ["BudgetDecision", "DatabaseSpend", "decide_budget"]

K = TypeVar("K", bound=Hashable)


@dataclasses.dataclass(frozen=True)
class DatabaseSpend(Generic[K]):
    """One database of the user: the caller's key for it, its cost and its budget suspension.

    ``suspended_for_budget`` must be true only when the budget suspended it, so that a database
    suspended for another reason is never resumed by a budget decision.
    """

    key: K
    cost_cents: int | None
    suspended_for_budget: bool = False

    def __post_init__(self) -> None:
        if self.cost_cents is not None and self.cost_cents < 0:
            raise ValueError(f"cost_cents must be >= 0, got {self.cost_cents}")


@dataclasses.dataclass(frozen=True)
class BudgetDecision(Generic[K]):
    tier: str
    limit_cents: int | None  # None: unlimited
    total_cost_cents: int  # sum of the known costs; a lower bound unless ``complete``
    exceeded: bool
    complete: bool  # every database's cost is known
    suspend: tuple[K, ...]
    resume: tuple[K, ...]


def decide_budget(
    *, budget: Budget | None, databases: Sequence[DatabaseSpend[K]], policy: TierPolicy
) -> BudgetDecision[K]:
    """Decide one user's budget; ``budget`` ``None`` means the user has none (default tier).

    ``UnknownTierError`` when the budget's tier does not exist: there is nothing to decide
    from (the caller holds the decision in force)."""
    effective = policy.budget_or_default(budget)
    limit = policy.limit_cents(effective)
    total = sum(db.cost_cents for db in databases if db.cost_cents is not None)
    complete = all(db.cost_cents is not None for db in databases)
    exceeded = is_exceeded(total, limit)
    suspend: tuple[K, ...] = ()
    resume: tuple[K, ...] = ()
    if exceeded:
        suspend = tuple(db.key for db in databases if not db.suspended_for_budget)
    elif complete or limit is None:  # unlimited: no unknown cost can exceed it
        resume = tuple(db.key for db in databases if db.suspended_for_budget)
    return BudgetDecision(
        tier=effective.tier,
        limit_cents=limit,
        total_cost_cents=total,
        exceeded=exceeded,
        complete=complete,
        suspend=suspend,
        resume=resume,
    )
