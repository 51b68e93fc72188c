"""Status: the only place a ``DatabaseBudgetStatus`` is built and patched.

A pass of the budget loop builds the whole status from the user's outcome (``enforced``), sends
it only when it differs from what the object holds (``write_if_changed``), and tells a change
of the budget's state (tier, exceeded) once, as an Event (``post_state_events``). Every patch
of a budget's status, the loop's and the handlers' (a claim conflict), goes through
``write_budget_status``.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from tenantdb.api import DATABASE_BUDGET, Condition
from tenantdb.api.budget import BudgetDatabase, DatabaseBudgetStatus
from tenantdb.reconcile import conditions as cond
from tenantdb.reconcile.budget.ports import EventPoster, StatusPatcher
from tenantdb.reconcile.enforcement import BudgetOutcome
from tenantdb.reconcile.reasons import Reason

__all__ = [
    "BudgetState",
    "budget_conditions",
    "enforced",
    "limit_text",
    "post_state_events",
    "tier_not_found_text",
    "write_budget_status",
    "write_if_changed",
]

BudgetState = tuple[str, bool | None]  # the tier's name, and exceeded (None: not known)

# The BudgetExceeded condition's reason for the budget's word: not known yet, over, within.
_EXCEEDED_REASONS = {None: Reason.NOT_SYNCED_YET, True: Reason.OVER_LIMIT, False: Reason.WITHIN_LIMIT}


def limit_text(limit_cents: int | None) -> str:
    return "unlimited" if limit_cents is None else f"{limit_cents} cents"


def tier_not_found_text(tier: str) -> str:
    return (
        f"No DatabaseTier named {tier}: the last decision holds (nothing is suspended or "
        "resumed) until the tier exists or the budget names another"
    )


# --- Built ----------------------------------------------------------------------------------------
def budget_conditions(
    conditions: Sequence[Condition],
    outcome: BudgetOutcome,
    *,
    decided: bool | None,
    total: int,
    synced: bool,
    now: datetime.datetime,
    generation: int | None,
) -> list[Condition]:
    """Ready (configured, or synced; False when the tier does not exist) and BudgetExceeded
    (the user's word), on those of before."""
    limit = limit_text(outcome.limit_cents)
    if not outcome.tier_found:
        # The word in force holds: BudgetExceeded is left as it was.
        return cond.set_condition(
            conditions,
            kind=cond.READY,
            status=False,
            reason=Reason.TIER_NOT_FOUND,
            message=tier_not_found_text(outcome.tier),
            now=now,
            generation=generation,
        )
    conditions = cond.set_condition(
        conditions,
        kind=cond.READY,
        status=True,
        reason=Reason.SYNCED if synced else Reason.CONFIGURED,
        message=f"Tier {outcome.tier}: limit {limit}",
        now=now,
        generation=generation,
    )
    return cond.set_condition(
        conditions,
        kind=cond.BUDGET_EXCEEDED,
        status=decided,
        reason=_EXCEEDED_REASONS[decided],
        message=f"Spent {total} of {limit} this period"
        + ("" if outcome.costs_complete else " (some costs not measured yet)"),
        now=now,
        generation=generation,
    )


def enforced(
    outcome: BudgetOutcome,
    *,
    decided: bool | None,
    total: int,
    conditions: list[Condition],
    period_start: datetime.datetime,
    last_sync: datetime.datetime | None,
    quotas: Mapping[str, int],
    generation: int | None,
) -> dict[str, Any]:
    """The status a pass of the budget loop writes, as a merge patch (every field it owns).

    A tier that does not exist leaves the tier, the limit and ``exceeded`` as the last
    decision wrote them: they are what is still in force."""
    status = DatabaseBudgetStatus(
        tier=outcome.tier if outcome.tier_found else None,
        limit_cents=outcome.limit_cents,
        total_cost_cents=total,
        exceeded=decided,
        period_start=cond.rfc3339(period_start),
        last_sync_time=cond.rfc3339(last_sync) if last_sync is not None else None,
        databases=[
            BudgetDatabase(
                kind=d["kind"],
                name=d["name"],
                project_id=d.get("projectId"),
                cost_cents=d.get("costCents"),
                compute_quota_seconds=quotas.get(d.get("projectId") or ""),
            )
            for d in outcome.databases
        ],
        observed_generation=generation,
        conditions=conditions,
    )
    wire: dict[str, Any] = status.to_wire()
    if outcome.limit_cents is None and outcome.tier_found:
        wire["limitCents"] = None  # unlimited: a merge patch removes the limit of before
    return wire


# --- Written --------------------------------------------------------------------------------------
async def write_budget_status(
    kube: StatusPatcher, namespace: str, name: str, patch: Mapping[str, Any]
) -> None:
    """Merge-patch a DatabaseBudget's status: every writer of it comes through here."""
    await kube.patch_status(plural=DATABASE_BUDGET.plural, namespace=namespace, name=name, status=patch)


async def write_if_changed(
    kube: StatusPatcher, namespace: str, name: str, wire: Mapping[str, Any], *, held: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """Send ``wire`` unless the status already ``held`` it; returns what the status holds after
    the patch (``None``: nothing sent)."""
    # A merge patch of the same values changes nothing: not sent (a restart, a re-plan).
    if held is not None and not any(held.get(field) != value for field, value in wire.items()):
        return None
    await write_budget_status(kube, namespace, name, wire)
    merged = {**(held or {}), **wire}
    return {field: value for field, value in merged.items() if value is not None}


# --- Told -----------------------------------------------------------------------------------------
def post_state_events(
    post_event: EventPoster,
    namespace: str,
    name: str,
    *,
    previous: BudgetState | None,
    state: BudgetState,
    total: int,
    limit: str,
    found: bool = True,
) -> None:
    """One Event on the DatabaseBudget per change of its state (not per write); ``found``
    false: the tier of ``state`` does not exist (a Warning, once)."""
    decided = state[1]
    if not found:
        if previous is None or previous[0] != state[0]:
            post_event(
                DATABASE_BUDGET.kind, namespace, name, "Warning", Reason.TIER_NOT_FOUND,
                tier_not_found_text(state[0]),
            )  # fmt: skip
        return
    if previous is not None and previous[0] != state[0]:
        post_event(
            DATABASE_BUDGET.kind, namespace, name, "Normal", Reason.TIER_CHANGED,
            f"Tier {previous[0]} -> {state[0]}: limit {limit}",
        )  # fmt: skip
    if decided is True and (previous is None or previous[1] is not True):
        post_event(
            DATABASE_BUDGET.kind, namespace, name, "Warning", Reason.BUDGET_EXCEEDED,
            f"Spent {total} of {limit}: the user's databases are suspended",
        )  # fmt: skip
    elif decided is False and previous is not None and previous[1] is True:
        post_event(
            DATABASE_BUDGET.kind, namespace, name, "Normal", Reason.BUDGET_RESUMED,
            f"Spent {total} of {limit}: the user's databases are resumed",
        )  # fmt: skip
