"""Sim plans no tier claims: never silent. The user gets the default tier (``subscriptions``);
here their budget gets a Warning Event naming the plan, once per user and plan (not once per
pass), and ``tenantdb_sim_unclaimed_plan_users`` counts them.

What was told lives in memory: a restart tells each such user once more, which changes no
outcome. Entries of users no longer on an unclaimed plan are dropped at each full reading, so
a user who leaves the plan and comes back to it is told again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from tenantdb.api import DATABASE_BUDGET
from tenantdb.metrics import Metrics
from tenantdb.reconcile.reasons import Reason
from tenantdb.reconcile.sim_sync.desired import DesiredResource

__all__ = ["PostEvent", "UnclaimedPlans"]


class PostEvent(Protocol):
    """Posts an Event about a resource in ``namespace`` (``Normal`` unless told)."""

    def __call__(
        self, kind: str, name: str, reason: str, message: str, *, namespace: str, type_: str = "Normal"
    ) -> Awaitable[None]: ...


class UnclaimedPlans:
    def __init__(
        self, metrics: Metrics, post_event: PostEvent, take_token: Callable[[], Awaitable[None]]
    ) -> None:
        """``take_token``: waits for the sync's write budget (an Event is a write too)."""
        self._metrics = metrics
        self._post_event = post_event
        self._take_token = take_token
        self._told: dict[str, str] = {}  # user id -> the unclaimed plan their budget was told of

    async def tell(
        self, desired: Iterable[DesiredResource], *, complete: bool, until: Callable[[], bool] = lambda: True
    ) -> None:
        """Warn about each budget whose user's plan no tier claims, unless already told.

        ``complete``: ``desired`` is every user (a full reading of Sim), so the gauge is set
        and users no longer on an unclaimed plan are forgotten. ``until``: stop telling once it
        says False (those not told yet are told at a later call)."""
        unclaimed: dict[str, tuple[str, str, str, str]] = {}
        for r in desired:
            if r.kind == DATABASE_BUDGET.kind and r.plan is not None and r.plan.plan and not r.plan.claimed:
                unclaimed[r.sim_id] = (r.namespace, r.name, r.plan.plan, r.plan.tier)
        if complete:
            self._told = {u: p for u, p in self._told.items() if u in unclaimed and unclaimed[u][2] == p}
            self._metrics.sim_unclaimed_plan_users.set(len(unclaimed))
        for user_id, (namespace, name, plan, tier) in sorted(unclaimed.items()):
            if self._told.get(user_id) == plan:
                continue
            if not until():
                return
            await self._take_token()
            await self._post_event(
                DATABASE_BUDGET.kind,
                name,
                Reason.UNCLAIMED_SIM_PLAN,
                f"User {user_id} is on Sim plan {plan!r}, which no tier claims (TENANTDB_SIM_PLAN_TIERS "
                f"or a DatabaseTier's simPlans): the budget gets the default tier {tier!r}",
                namespace=namespace,
                type_="Warning",
            )
            self._told[user_id] = plan
