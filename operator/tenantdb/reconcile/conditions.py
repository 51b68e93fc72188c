"""Conditions as the Kubernetes API conventions define them, set through one helper.

``set_condition`` works on the typed ``Condition`` model and keeps ``lastTransitionTime``
when the status did not change; when nothing changed at all it hands back the very same
list, so a reconcile that changes nothing writes nothing new (as Crossplane's helper does).
The named transitions below (``set_ready`` ...) are the ones the reconcilers repeat.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from tenantdb.api.common import Condition, ConditionStatus

__all__ = [
    "BUDGET_EXCEEDED",
    "READY",
    "SYNCED",
    "get_condition",
    "is_true",
    "rfc3339",
    "set_condition",
    "set_not_ready",
    "set_ready",
    "set_sync_failed",
    "set_synced",
]

# Condition types and reasons: named once, used everywhere (and by Argo CD health checks).
READY = "Ready"
SYNCED = "Synced"
BUDGET_EXCEEDED = "BudgetExceeded"

# Kubernetes allows 32768 characters; a condition is read by people, so long errors are cut.
_MESSAGE_LIMIT = 2000


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(raw: Any) -> datetime.datetime | None:
    """A time as Kubernetes writes it (``...Z``), aware (UTC when it names no zone); ``None``
    when missing or unreadable: a time in an object is anyone's to write."""
    if not raw:
        return None
    try:
        moment = datetime.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)


def get_condition(conditions: Sequence[Condition], kind: str) -> Condition | None:
    return next((c for c in conditions if c.type == kind), None)


def is_true(conditions: Sequence[Condition], kind: str) -> bool:
    found = get_condition(conditions, kind)
    return found is not None and found.status == ConditionStatus.TRUE


def _status_of(status: bool | None) -> ConditionStatus:
    if status is None:
        return ConditionStatus.UNKNOWN
    return ConditionStatus.TRUE if status else ConditionStatus.FALSE


def set_condition(
    conditions: Sequence[Condition],
    *,
    kind: str,
    status: bool | None,
    reason: str,
    message: str,
    now: datetime.datetime,
    generation: int | None = None,
) -> list[Condition]:
    """The list with the condition set, sorted by type; the transition time moves only on a
    status change, and an unchanged condition leaves the list as it was (the same list)."""
    value = _status_of(status)
    previous = get_condition(conditions, kind)
    changed = previous is None or previous.status != value
    fields: dict[str, object] = {
        "type": kind,
        "status": value,
        "reason": reason,
        "message": message[:_MESSAGE_LIMIT],
        "last_transition_time": rfc3339(now)
        if changed or previous is None
        else previous.last_transition_time,
    }
    if generation is not None:
        fields["observed_generation"] = generation
    condition = Condition.model_validate(fields)
    others = [c for c in conditions if c.type != kind]
    updated = sorted([*others, condition], key=lambda c: c.type)
    if isinstance(conditions, list) and updated == conditions:
        return conditions  # nothing changed: nothing new to write
    return updated


def set_ready(
    conditions: Sequence[Condition], *, reason: str, message: str, now: datetime.datetime, generation: int
) -> list[Condition]:
    """Ready=True: the database can be used."""
    return set_condition(
        conditions, kind=READY, status=True, reason=reason, message=message, now=now, generation=generation
    )


def set_not_ready(
    conditions: Sequence[Condition],
    *,
    reason: str,
    message: str,
    now: datetime.datetime,
    generation: int | None,
) -> list[Condition]:
    """Ready=False: the database cannot be used (yet, or any more), and why."""
    return set_condition(
        conditions, kind=READY, status=False, reason=reason, message=message, now=now, generation=generation
    )


def set_synced(
    conditions: Sequence[Condition],
    *,
    reason: str,
    message: str,
    now: datetime.datetime,
    generation: int | None,
) -> list[Condition]:
    """Synced=True: the outside world matches the spec."""
    return set_condition(
        conditions, kind=SYNCED, status=True, reason=reason, message=message, now=now, generation=generation
    )


def set_sync_failed(
    conditions: Sequence[Condition],
    *,
    reason: str,
    message: str,
    now: datetime.datetime,
    generation: int | None,
) -> list[Condition]:
    """Synced=False: the last reconcile stopped short, and why."""
    return set_condition(
        conditions, kind=SYNCED, status=False, reason=reason, message=message, now=now, generation=generation
    )
