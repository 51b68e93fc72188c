"""Sim's billing as Sim reads it: which plan each user is on, and the tier that plan maps to.

Pure functions, no I/O. Checked against Sim's own code at commit 0b232eb8 (tag v0.8.9,
2026-08-21; ``SIM_BILLING_CHECKED_AGAINST``):

* Plan names (``apps/sim/lib/billing/plan-helpers.ts``): ``free``; Pro is ``pro`` (legacy) or
  ``pro_<credits>`` (``pro_6000`` Pro, ``pro_25000`` Max); Team is ``team`` (legacy) or
  ``team_<credits>`` (``team_6000`` Pro for Teams, ``team_25000`` Max for Teams);
  ``enterprise``. Sim tells Pro from Max by credits (``isMaxTier``: 25,000 and up).
* Statuses in force (``subscriptions/utils.ts``, ``ENTITLED_SUBSCRIPTION_STATUSES``):
  ``active`` and ``past_due``. ``trialing``, ``incomplete``, ``unpaid``, ``canceled`` ... grant
  no plan. The store reads only entitled rows (``tenantdb.store.sim_tables``).
* A user's plan (``core/plan.ts``, ``getHighestPrioritySubscription``): the user's own
  subscriptions and those of the organisations they are a member of (``member``; Sim checks
  that the organisation still exists), Enterprise over Team over Pro, and at the same rank an
  organisation's subscription over the user's own. Nothing in force: Sim's ``free``.
  Seats do not enter into it: every member of an organisation with a team plan has it.

Where Sim leaves a choice to row order (two subscriptions of one rank and scope), the larger
credit tier wins, then the plan name, so a pass is repeatable. A subscription whose plan Sim's
helpers do not know (a plan newer than the Sim read here) would be ignored by that Sim: here it
is still passed to the mapping, ranked below Pro, so that a tier may claim it and, when none
does, the user is warned about rather than silently read as free.
"""

from __future__ import annotations

import fnmatch
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from tenantdb.store import SimSnapshot

__all__ = [
    "FREE_PLAN",
    "SIM_BILLING_CHECKED_AGAINST",
    "UserPlan",
    "plan_tiers_from_objects",
    "tier_for_plan",
    "user_plan",
    "user_plans",
]

SIM_BILLING_CHECKED_AGAINST: Final = "simstudioai/sim@0b232eb876e2e0a474dbabd1e53b370cd643076a (v0.8.9)"

# Sim's name for "no paid plan in force" (``isFree``).
FREE_PLAN: Final = "free"

# ``getHighestPrioritySubscription``'s order: checkEnterprisePlan, checkTeamPlan, checkProPlan.
_ENTERPRISE, _TEAM, _PRO, _NOT_SIMS = 0, 1, 2, 3
_CREDITS: Final = re.compile(r"_(\d+)$")


def _rank(plan: str) -> int | None:
    """Sim's category of a plan name (``isEnterprise``, ``isTeam``, ``isPro``); ``None`` for
    ``free``, which is no plan to pick."""
    if plan == "enterprise":
        return _ENTERPRISE
    if plan == "team" or plan.startswith("team_"):
        return _TEAM
    if plan == "pro" or plan.startswith("pro_"):
        return _PRO
    if not plan or plan == FREE_PLAN:
        return None
    return _NOT_SIMS


def _credits(plan: str) -> int:
    """Sim's ``getPlanTierCredits``: ``pro_6000`` -> 6000; legacy ``pro`` 4000, ``team`` 8000."""
    match = _CREDITS.search(plan)
    if match:
        return int(match.group(1))
    return {"pro": 4000, "team": 8000}.get(plan, 0)


def user_plan(*, own: Iterable[str], organisations: Iterable[str]) -> str | None:
    """The plan Sim bills a user on, from the plans of the user's entitled subscriptions
    (``own``) and those of their organisations; ``None``: no plan in force (Sim's free)."""
    candidates = [(plan, 0) for plan in organisations] + [(plan, 1) for plan in own]
    ranked = [
        (rank, scope, -_credits(plan), plan)
        for plan, scope in candidates
        if (rank := _rank(plan)) is not None
    ]
    return min(ranked)[3] if ranked else None


def tier_for_plan(plan: str, plan_tiers: Mapping[str, str]) -> str | None:
    """The tier that claims a Sim plan: an exact name first, then the first matching glob
    pattern (in the mapping's order); ``None`` when no tier claims it."""
    if plan in plan_tiers:
        return plan_tiers[plan]
    for pattern, tier in plan_tiers.items():
        if fnmatch.fnmatchcase(plan, pattern):
            return tier
    return None


def plan_tiers_from_objects(tiers: Iterable[tuple[str, Sequence[str]]]) -> dict[str, str]:
    """``(tier name, simPlans)`` of tier objects -> the mapping ``tier_for_plan`` reads.

    Objects have no order of their own, so the most specific pattern goes first: exact names
    (``tier_for_plan`` looks them up first anyway), then globs longest first, then by tier
    name. A pattern two tiers claim goes to the first tier by name."""
    mapping: dict[str, str] = {}
    for pattern, tier in sorted(
        ((pattern, name) for name, patterns in tiers for pattern in patterns),
        key=lambda pair: (_is_glob(pair[0]), -len(pair[0]), pair[1], pair[0]),
    ):
        mapping.setdefault(pattern, tier)
    return mapping


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


@dataclass(frozen=True, slots=True)
class UserPlan:
    """A user's Sim plan and the tier it gets.

    ``plan`` is ``None`` when no subscription is in force (the user is on Sim's free plan);
    ``claimed`` is False when a subscription's plan is claimed by no tier: the user then gets
    the default tier, and the sync says so (a Warning Event, a metric)."""

    plan: str | None
    tier: str
    claimed: bool = True


def user_plans(
    snapshot: SimSnapshot, plan_tiers: Mapping[str, str], default_tier: str
) -> dict[str, UserPlan]:
    """Each of the snapshot's users' plans, read as Sim reads them, and their tiers."""
    organisations: defaultdict[str, list[str]] = defaultdict(list)
    for user_id, organization_id in snapshot.memberships:
        organisations[user_id].append(organization_id)
    plans: defaultdict[str, list[str]] = defaultdict(list)
    for name, reference_id in snapshot.subscriptions:
        plans[reference_id].append(name)
    result: dict[str, UserPlan] = {}
    for user_id in snapshot.user_ids:
        plan = user_plan(
            own=plans.get(user_id, ()),
            organisations=[p for org in organisations.get(user_id, ()) for p in plans.get(org, ())],
        )
        tier = tier_for_plan(plan or FREE_PLAN, plan_tiers)
        if tier is not None:
            result[user_id] = UserPlan(plan, tier)
        else:
            # No subscription is what the default tier is for; a plan nobody claims is news.
            result[user_id] = UserPlan(plan, default_tier, claimed=plan is None)
    return result
