"""A tier's rollout: which databases do not follow their user's tier yet, in which order, and
how far each tier has come (its status). Pure bookkeeping: ``handlers.tier_rollout`` paces
the work and ``reconcile.database_tier`` does it, one database at a time.

What a database follows is in its status (``status.applied``): the settings last applied on
Neon and the tier they came from. Its rollout is over when that record equals what its spec
and its user's tier give now (``tiers.desired_settings``). So:

- a change to a tier reaches only the databases whose settings it changes (a new limit alone
  reaches none; a larger ``maxCu`` reaches those whose spec names no size): one endpoint patch
  each, never a read, and never one per pass: a database is done once its record says so;
- a user's move to another tier is the same, for that user's databases; such a move is asked
  for by the user's own plan (``urgent``) and goes before the rest of a backlog;
- a restart loses nothing: the record is durable, and the next pass finds what is left;
- a database recorded before tiers (no ``status.applied``) is taken as its spec or the base
  settings and no project settings, which is what the operator of before applied.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from tenantdb.api import Condition
from tenantdb.api.tier import DatabaseTierStatus
from tenantdb.billing import TierPolicy
from tenantdb.reconcile import conditions as cond
from tenantdb.reconcile.enforcement import BudgetRecord, DatabaseRecord
from tenantdb.reconcile.reasons import Reason
from tenantdb.reconcile.tiers import (
    BASE_MAX_CU,
    BASE_MIN_CU,
    BASE_SUSPEND_TIMEOUT_SECONDS,
    SettingsWanted,
    desired_settings,
    project_changes,
)

__all__ = [
    "Behind",
    "RolloutQueue",
    "TierProgress",
    "applied_or_assumed",
    "behind",
    "progress",
    "tier_status",
]


@dataclasses.dataclass
class RolloutQueue:
    """What the handlers tell the rollout: something changed (``wake``), and whose move is a
    user's own (``urgent``, served first)."""

    urgent: set[str] = dataclasses.field(default_factory=set)
    changed: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    def wake(self, users: Iterable[str] = ()) -> None:
        self.urgent.update(users)
        self.changed.set()


@dataclasses.dataclass(frozen=True)
class Behind:
    """A database whose settings on Neon are not yet what its tier gives."""

    record: DatabaseRecord
    wanted: SettingsWanted
    applied: SettingsWanted

    @property
    def neon_calls(self) -> int:
        """The Neon calls that bring it level: the endpoint's, the project's (0: a new name only)."""
        retention, quotas = project_changes(self.wanted, self.applied)
        return int(self.applied.compute != self.wanted.compute) + int(retention is not None or bool(quotas))


def applied_or_assumed(record: DatabaseRecord, wanted: SettingsWanted) -> SettingsWanted:
    """What is on Neon as far as the status says; without a record (a database from before
    tiers): its spec or the base settings, no project settings, and ``wanted``'s tier (nothing
    to write for the name alone)."""
    if record.applied is not None:
        return record.applied
    own = record.own
    return SettingsWanted(
        tier=wanted.tier,
        min_cu=own.min_cu if own.min_cu is not None else BASE_MIN_CU,
        max_cu=own.max_cu if own.max_cu is not None else BASE_MAX_CU,
        suspend_timeout_seconds=(
            own.suspend_timeout_seconds
            if own.suspend_timeout_seconds is not None
            else BASE_SUSPEND_TIMEOUT_SECONDS
        ),
        history_retention_seconds=None,
    )


def behind(
    databases: Iterable[DatabaseRecord],
    *,
    tier_of: Callable[[str], str],
    policy: TierPolicy,
    urgent: Collection[str] = (),
) -> list[Behind]:
    """Every database with a project and an endpoint whose record is not what its user's tier
    gives now; the ``urgent`` users' first, then by (kind, namespace, name). A user whose tier
    does not exist is left out: what the tier would give holds."""
    found: list[Behind] = []
    for record in databases:
        if record.project_id is None or record.endpoint_id is None:
            continue  # its reconcile (still under way) applies what it wants
        tier = policy.tier(tier_of(record.user_id))
        if tier is None:
            continue
        wanted = desired_settings(record.own, tier, held=record.applied)
        applied = applied_or_assumed(record, wanted)
        if applied != wanted:
            found.append(Behind(record=record, wanted=wanted, applied=applied))
    found.sort(key=lambda b: (b.record.user_id not in urgent, b.record.sort_key))
    return found


@dataclasses.dataclass(frozen=True)
class TierProgress:
    """How far one tier has come: its users' databases, and those that follow it."""

    databases: int = 0
    updated: int = 0
    users: int = 0

    @property
    def done(self) -> bool:
        return self.updated >= self.databases


def progress(
    budgets: Iterable[BudgetRecord],
    databases: Iterable[DatabaseRecord],
    *,
    tier_of: Callable[[str], str],
    policy: TierPolicy,
) -> dict[str, TierProgress]:
    """Every tier's progress (each tier appears, with zeros when nobody is on it)."""
    counts: dict[str, list[int]] = {name: [0, 0, 0] for name in policy.tiers}
    for budget in budgets:
        if budget.tier in counts:
            counts[budget.tier][2] += 1
    for record in databases:
        name = tier_of(record.user_id)
        tier = policy.tier(name)
        if tier is None or record.project_id is None:
            continue
        wanted = desired_settings(record.own, tier, held=record.applied)
        counts[name][0] += 1
        if applied_or_assumed(record, wanted) == wanted:
            counts[name][1] += 1
    return {name: TierProgress(*numbers) for name, numbers in counts.items()}


def tier_status(
    done: TierProgress,
    *,
    conditions: Sequence[Condition],
    generation: int | None,
    now: datetime.datetime,
) -> tuple[dict[str, Any], list[Condition]]:
    """A tier's status as a merge patch, with its Ready condition (False while rolling out)."""
    message = f"{done.updated} of {done.databases} databases follow the tier"
    conditions = cond.set_condition(
        conditions,
        kind=cond.READY,
        status=done.done,
        reason=Reason.ROLLED_OUT if done.done else Reason.ROLLING_OUT,
        message=message,
        now=now,
        generation=generation,
    )
    status = DatabaseTierStatus(
        databases=done.databases,
        updated_databases=done.updated,
        users=done.users,
        observed_generation=generation,
        conditions=conditions,
    )
    return status.to_wire(), conditions
