"""Budget enforcement for every user at once: from budgets, databases and merged costs to each
user's budget outcome and the suspend/resume actions to perform. Pure: no I/O.

The rules of a single user's decision live in ``tenantdb.billing.decisions``; this module only
groups the operator's objects by user and turns decisions into actions and status entries.

- Users are every ``user_id`` that has a budget or a database. A user without a budget gets the
  default tier (``TierPolicy.default_tier``).
- A budget naming a tier that does not exist (a typo, a tier deleted) decides nothing: its
  user's outcome says so (``tier_found`` false), no database is suspended or resumed, and
  the decision in force holds until the tier exists or the budget names another.
- Should two budgets name the same user (they live in namespaces; nothing stops a second one),
  the most restrictive limit wins, so a duplicate can never raise a user's allowance.
- A database's cost is looked up by its Neon project id in the merged costs. A database without
  a project has spent nothing (known 0). A project absent from the costs has an unknown cost:
  it adds nothing to the total and holds back resuming (see ``decide_budget``). After a
  successful sync every project has a cost (Neon leaves out what used nothing: zero), so only a
  project created since the last sync is unknown.
- A database without a project has nothing to suspend in Neon, so it gets no action; the next
  enforcement after it has one will act.
- Every list is sorted by (kind, namespace, name), so identical inputs give identical status and
  an unchanged status is never patched just because the order moved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from tenantdb.billing import Budget, BudgetDecision, DatabaseSpend, TierPolicy, decide_budget
from tenantdb.reconcile.tiers import OwnCompute, SettingsWanted

__all__ = [
    "BudgetOutcome",
    "BudgetRecord",
    "DatabaseRecord",
    "EnforcementPlan",
    "ResumeAction",
    "SuspendAction",
    "plan_enforcement",
    "strictest_by_user",
]


@dataclasses.dataclass(frozen=True)
class BudgetRecord:
    """A DatabaseBudget as the handlers decoded it."""

    user_id: str
    tier: str
    custom_limit_cents: int | None = None
    generation: int | None = None  # metadata.generation, for status.observedGeneration

    @property
    def budget(self) -> Budget:
        return Budget(tier=self.tier, custom_limit_cents=self.custom_limit_cents)


@dataclasses.dataclass(frozen=True)
class DatabaseRecord:
    """A GlobalDatabase or WorkspaceDatabase as the handlers decoded it.

    ``suspended_for_budget``: the budget suspended it (and nothing else did); only such databases
    are ever resumed here.
    """

    kind: str
    namespace: str
    name: str
    user_id: str
    project_id: str | None
    endpoint_id: str | None
    suspended_for_budget: bool = False
    uid: str | None = None
    max_cu: float | None = None  # its largest compute size (as applied, else its spec's)
    # For its tier's rollout: what its spec says of its compute, and what is applied on Neon
    # (status.applied; None: not recorded).
    own: OwnCompute = dataclasses.field(default_factory=OwnCompute)
    applied: SettingsWanted | None = None

    @property
    def sort_key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)


@dataclasses.dataclass(frozen=True)
class SuspendAction:
    """Disable the database's compute endpoint because its user's budget is exceeded.

    ``endpoint_id`` ``None``: not known yet; the actuator must look up the read-write endpoint.
    """

    kind: str
    namespace: str
    name: str
    user_id: str
    project_id: str
    endpoint_id: str | None
    uid: str | None = None  # the resource, for its lock


@dataclasses.dataclass(frozen=True)
class ResumeAction:
    """Enable the database's compute endpoint again: its user is back within budget."""

    kind: str
    namespace: str
    name: str
    user_id: str
    project_id: str
    endpoint_id: str | None
    uid: str | None = None  # the resource, for its lock


@dataclasses.dataclass(frozen=True)
class BudgetOutcome:
    """One user's budget, ready for ``DatabaseBudget.status``.

    ``databases`` are ``status.databases`` entries (``kind``, ``name``, ``projectId``,
    ``costCents``); ``projectId`` is left out while there is no project and ``costCents`` while
    the cost is unknown, rather than writing a 0 that was never measured.
    ``costs_complete`` is false while some database's cost is unknown: ``total_cost_cents`` is
    then a lower bound.
    ``tier_found`` is false when the budget names a tier that does not exist: nothing is
    decided (``limit_cents`` ``None`` and ``exceeded`` false mean nothing then).
    ``compute_cap_seconds``: the tier's own hard stop on each project per period (None: none).
    """

    user_id: str
    has_budget: bool
    tier: str
    limit_cents: int | None
    total_cost_cents: int
    exceeded: bool
    costs_complete: bool
    databases: tuple[Mapping[str, Any], ...]
    tier_found: bool = True
    compute_cap_seconds: int | None = None


@dataclasses.dataclass(frozen=True)
class EnforcementPlan:
    outcomes: Mapping[str, BudgetOutcome]  # by user id
    suspend: tuple[SuspendAction, ...]
    resume: tuple[ResumeAction, ...]


def strictest_by_user(budgets: Iterable[BudgetRecord], policy: TierPolicy) -> dict[str, BudgetRecord]:
    """The budget that counts for each user (two naming one user: the strictest)."""

    def rank(record: BudgetRecord) -> tuple[bool, bool, int]:
        if not policy.knows(record.budget):
            return (False, False, 0)  # an unknown tier holds everything: the strictest of all
        limit = policy.limit_cents(record.budget)
        return (True, limit is None, limit or 0)  # any limit beats unlimited; lower beats higher

    chosen: dict[str, BudgetRecord] = {}
    for record in budgets:
        current = chosen.get(record.user_id)
        if current is None or rank(record) < rank(current):
            chosen[record.user_id] = record
    return chosen


def _spend(db: DatabaseRecord, costs_cents: Mapping[str, int]) -> DatabaseSpend[DatabaseRecord]:
    cost = 0 if db.project_id is None else costs_cents.get(db.project_id)
    return DatabaseSpend(key=db, cost_cents=cost, suspended_for_budget=db.suspended_for_budget)


def _status_entry(spend: DatabaseSpend[DatabaseRecord]) -> dict[str, Any]:
    db = spend.key
    entry: dict[str, Any] = {"kind": db.kind, "name": db.name}
    if db.project_id is not None:
        entry["projectId"] = db.project_id
    if spend.cost_cents is not None:
        entry["costCents"] = spend.cost_cents
    if db.max_cu is not None:
        entry["maxCu"] = db.max_cu  # for the hard stop; not part of the status schema
    return entry


def _outcome(
    user_id: str,
    has_budget: bool,
    spends: list[DatabaseSpend[DatabaseRecord]],
    d: BudgetDecision[DatabaseRecord],
    policy: TierPolicy,
) -> BudgetOutcome:
    cap = policy.tiers[d.tier].quotas.get("compute_time_seconds") or None
    return BudgetOutcome(
        user_id=user_id,
        has_budget=has_budget,
        tier=d.tier,
        limit_cents=d.limit_cents,
        total_cost_cents=d.total_cost_cents,
        exceeded=d.exceeded,
        costs_complete=d.complete,
        databases=tuple(_status_entry(spend) for spend in spends),
        compute_cap_seconds=cap,
    )


def _held(
    user_id: str, record: BudgetRecord | None, spends: list[DatabaseSpend[DatabaseRecord]], policy: TierPolicy
) -> BudgetOutcome:
    """A user whose budget names a tier that does not exist: nothing decided."""
    known = [spend.cost_cents for spend in spends if spend.cost_cents is not None]
    return BudgetOutcome(
        user_id=user_id,
        has_budget=record is not None,
        tier=policy.budget_or_default(record.budget if record is not None else None).tier,
        limit_cents=None,
        total_cost_cents=sum(known),
        exceeded=False,
        costs_complete=len(known) == len(spends),
        databases=tuple(_status_entry(spend) for spend in spends),
        tier_found=False,
    )


def plan_enforcement(
    *,
    budgets: Iterable[BudgetRecord],
    databases: Iterable[DatabaseRecord],
    costs_cents: Mapping[str, int],
    policy: TierPolicy,
) -> EnforcementPlan:
    """Every user's budget outcome, and the endpoints to disable or enable."""
    chosen = strictest_by_user(budgets, policy)
    by_user: dict[str, list[DatabaseRecord]] = {}
    for db in databases:
        by_user.setdefault(db.user_id, []).append(db)

    outcomes: dict[str, BudgetOutcome] = {}
    suspend: list[SuspendAction] = []
    resume: list[ResumeAction] = []
    for user_id in sorted(chosen.keys() | by_user.keys()):
        spends = [
            _spend(db, costs_cents) for db in sorted(by_user.get(user_id, []), key=lambda d: d.sort_key)
        ]
        record = chosen.get(user_id)
        budget = record.budget if record is not None else None
        if not policy.knows(budget):
            outcomes[user_id] = _held(user_id, record, spends, policy)
            continue
        decision = decide_budget(budget=budget, databases=spends, policy=policy)
        outcomes[user_id] = _outcome(user_id, record is not None, spends, decision, policy)
        suspend.extend(
            SuspendAction(db.kind, db.namespace, db.name, db.user_id, db.project_id, db.endpoint_id, db.uid)
            for db in decision.suspend
            if db.project_id is not None
        )
        resume.extend(
            ResumeAction(db.kind, db.namespace, db.name, db.user_id, db.project_id, db.endpoint_id, db.uid)
            for db in decision.resume
            if db.project_id is not None
        )
    return EnforcementPlan(outcomes=outcomes, suspend=tuple(suspend), resume=tuple(resume))
