"""Status: the only place a ``DatabaseStatus`` of the database path is built.

Ready and Synced change through the few transitions the path makes (``mark_*``), on the
conditions the resource had: ``reconcile.conditions`` keeps a transition time unless the
status changed, and hands back an unchanged list as the same list, so a reconcile that
changes nothing writes nothing new. A change worth telling is also said as an Event, once.

The budget loop writes on a database too, what this module builds for it: the switch of its
endpoint (``switched_by_budget``, through ``reconcile.database_budget``) and its cost
(``period_cost``).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from tenantdb.api import Condition, DatabaseStatus, Phase
from tenantdb.reconcile import conditions as cond
from tenantdb.reconcile.database.model import DatabaseObject, Plan, Updated
from tenantdb.reconcile.errors import ReconcileError
from tenantdb.reconcile.ports import Events
from tenantdb.reconcile.reasons import Reason

__all__ = [
    "create_over",
    "deleting",
    "failed",
    "mark_creating",
    "mark_deleting",
    "mark_ready",
    "mark_suspended",
    "mark_sync_failed",
    "mark_synced",
    "period_cost",
    "project_identity",
    "provisioning",
    "reconciled",
    "rotation_finished",
    "rotation_started",
    "switched_by_budget",
]


# --- Ready and Synced -----------------------------------------------------------------------------
def mark_creating(
    conditions: Sequence[Condition], *, now: datetime.datetime, generation: int
) -> list[Condition]:
    return cond.set_not_ready(
        conditions,
        reason=Reason.CREATING,
        message="Creating the Neon project",
        now=now,
        generation=generation,
    )


def mark_ready(
    conditions: Sequence[Condition], *, project_id: str, now: datetime.datetime, generation: int
) -> list[Condition]:
    return cond.set_ready(
        conditions,
        reason=Reason.AVAILABLE,
        message=f"Database ready in Neon project {project_id}",
        now=now,
        generation=generation,
    )


def mark_suspended(
    conditions: Sequence[Condition], *, now: datetime.datetime, generation: int
) -> list[Condition]:
    return cond.set_not_ready(
        conditions,
        reason=Reason.BUDGET_EXCEEDED,
        message="The user's budget is exceeded: connections are refused until the budget allows them again",
        now=now,
        generation=generation,
    )


def mark_synced(
    conditions: Sequence[Condition], *, now: datetime.datetime, generation: int
) -> list[Condition]:
    return cond.set_synced(
        conditions,
        reason=Reason.RECONCILE_SUCCESS,
        message="Neon, the Secret and the metadata DB match the spec",
        now=now,
        generation=generation,
    )


def mark_sync_failed(
    conditions: Sequence[Condition], *, error: ReconcileError, now: datetime.datetime, generation: int
) -> list[Condition]:
    return cond.set_sync_failed(
        conditions, reason=error.reason, message=error.message, now=now, generation=generation
    )


def mark_deleting(
    conditions: Sequence[Condition],
    *,
    reason: Reason,
    message: str,
    now: datetime.datetime,
    generation: int,
) -> list[Condition]:
    """Ready=False while the finalizer runs, with what it is doing (or what stops it)."""
    return cond.set_not_ready(conditions, reason=reason, message=message, now=now, generation=generation)


def failed(
    current: DatabaseStatus,
    *,
    reason: str,
    message: str,
    now: datetime.datetime,
    generation: int,
    for_good: bool,
    conflict: bool = False,
    phase: Phase | None = None,
) -> DatabaseStatus:
    """Why a reconcile (or the finalizer) stopped: in Synced, and in Ready unless the database
    works. ``current`` is the status as it stands (the object's, with what this reconcile
    already wrote). The phase is the last true one; ``Pending`` only when nothing exists yet;
    ``Failed`` when only the user can fix it (``for_good``); a ``phase`` given (Deleting)
    overrides a body that may predate it, Ready included."""
    conditions = cond.set_sync_failed(
        current.conditions, reason=reason, message=message, now=now, generation=generation
    )
    if not (for_good or conflict or phase is not None or not cond.is_true(conditions, cond.READY)):
        return DatabaseStatus(conditions=conditions)
    return DatabaseStatus(
        conditions=cond.set_not_ready(
            conditions, reason=reason, message=message, now=now, generation=generation
        ),
        phase=phase if phase is not None else Phase.FAILED if for_good else (current.phase or Phase.PENDING),
    )


# --- The statuses written on the way --------------------------------------------------------------
def provisioning(conditions: list[Condition], now: datetime.datetime) -> DatabaseStatus:
    """A create is about to be sent: on record first (``createAttemptedAt``)."""
    return DatabaseStatus(
        phase=Phase.PROVISIONING, conditions=conditions, create_attempted_at=cond.rfc3339(now)
    )


def create_over() -> DatabaseStatus:
    """The create surely did not land: no landing window to wait for."""
    return DatabaseStatus(create_attempted_at=None)


def project_identity(obj: DatabaseObject, plan: Plan, project_id: str) -> DatabaseStatus:
    """The project's external name and what it was made with."""
    return DatabaseStatus(
        project_id=project_id,
        project_name=plan.name,
        create_attempted_at=None,  # the attempt's outcome is on record
        region=plan.region,
        pg_version=plan.pg_version,
        database_name=plan.database_name,
        role_name=plan.role_name,
    )


def rotation_started(*, started_at: str, handled: str | None) -> DatabaseStatus:
    """A rotation is about to ask Neon for a new password: on record first, so that a crash or
    a lost answer after Neon reset it leaves the next attempt knowing the connection string on
    record may be dead. ``handled``: the annotation value it answers (recorded now: the
    rotation under way covers it, whatever happens next)."""
    return DatabaseStatus(credentials_rotation_started_at=started_at, credentials_rotation_handled=handled)


def rotation_finished(*, rotated_at: datetime.datetime, handled: str | None) -> DatabaseStatus:
    """The new connection string is published everywhere: the rotation is over."""
    return DatabaseStatus(
        credentials_rotated_at=cond.rfc3339(rotated_at),
        credentials_rotation_started_at=None,
        credentials_rotation_handled=handled,
    )


def deleting(conditions: list[Condition]) -> DatabaseStatus:
    return DatabaseStatus(phase=Phase.DELETING, conditions=conditions)


# --- The reconcile's result -----------------------------------------------------------------------
def reconciled(
    obj: DatabaseObject,
    events: Events,
    recorded: DatabaseStatus,
    conditions: list[Condition],
    *,
    plan: Plan,
    project_id: str,
    updated: Updated,
    now: datetime.datetime,
    rotation: DatabaseStatus | None = None,
) -> DatabaseStatus:
    """The status a reconcile ends with: ``recorded`` (the resource's, with the project's
    identity) with Ready (or Suspended, for the budget), Synced, the endpoint, and the end of a
    password rotation (``rotation``) when there was one."""
    generation = obj.generation
    if updated.suspended:
        phase = Phase.SUSPENDED
        conditions = mark_suspended(conditions, now=now, generation=generation)
    else:
        phase = Phase.READY
        conditions = mark_ready(conditions, project_id=project_id, now=now, generation=generation)
        if not cond.is_true(obj.status.conditions, cond.READY):
            events.normal(Reason.READY, f"Database ready; connection string in Secret {plan.secret_name}")
    conditions = _synced(events, conditions, updated.refused, now=now, generation=generation)
    if rotation is not None:
        recorded = recorded.merged(rotation)
    return recorded.merged(
        DatabaseStatus(
            phase=phase,
            branch_id=updated.branch_id,
            endpoint_id=updated.endpoint.id,
            host=updated.endpoint.host,
            secret_name=plan.secret_name,
            observed_generation=generation,
            observed_at=cond.rfc3339(now),
            conditions=conditions,
            **({"applied": updated.applied.to_status()} if updated.applied is not None else {}),
        )
    )


def _synced(
    events: Events,
    conditions: list[Condition],
    refused: ReconcileError | None,
    *,
    now: datetime.datetime,
    generation: int,
) -> list[Condition]:
    """Synced=True, or False with the settings change Neon refused (said once as a Warning)."""
    if refused is None:
        return mark_synced(conditions, now=now, generation=generation)
    synced = cond.get_condition(conditions, cond.SYNCED)
    if synced is None or synced.message != refused.message:
        events.warning(refused.reason, refused.message)
    return mark_sync_failed(conditions, error=refused, now=now, generation=generation)


# --- The budget loop's writes ---------------------------------------------------------------------
def switched_by_budget(*, suspended: bool, user_id: str, now: datetime.datetime) -> DatabaseStatus:
    """The budget loop switched the endpoint (``database_budget.apply_budget``)."""
    # Ready and Synced as of this switch, from scratch (the patch replaces the conditions list).
    conditions = cond.set_condition(
        [],
        kind=cond.READY,
        status=not suspended,
        reason=Reason.BUDGET_EXCEEDED if suspended else Reason.AVAILABLE,
        message=f"User {user_id} is over budget: connections are refused"
        if suspended
        else "Back within budget: compute endpoint enabled",
        now=now,
    )
    conditions = cond.set_synced(
        conditions,
        reason=Reason.RECONCILE_SUCCESS,
        message="Compute endpoint disabled for the budget" if suspended else "Compute endpoint enabled",
        now=now,
        generation=None,
    )
    return DatabaseStatus(phase=Phase.SUSPENDED if suspended else Phase.READY, conditions=conditions)


def period_cost(cost_cents: int, *, synced_at: datetime.datetime) -> DatabaseStatus:
    """The database's cost this billing period, as the consumption sync of ``synced_at`` left it."""
    return DatabaseStatus(current_period_cost_cents=cost_cents, last_consumption_sync=cond.rfc3339(synced_at))
