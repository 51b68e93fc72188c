"""Conditions as the Kubernetes API conventions define them, set through one helper.

``set_condition`` keeps ``lastTransitionTime`` when the status did not change, so a
reconcile that changes nothing writes nothing new (as Crossplane's helper does).
"""

from __future__ import annotations

import datetime
from typing import Any

__all__ = ["get_condition", "rfc3339", "set_condition"]

# Condition types and reasons: named once, used everywhere (and by Argo CD health checks).
READY = "Ready"
SYNCED = "Synced"
BUDGET_EXCEEDED = "BudgetExceeded"


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def get_condition(conditions: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == kind), None)


def set_condition(
    conditions: list[dict[str, Any]],
    *,
    kind: str,
    status: bool | None,
    reason: str,
    message: str,
    now: datetime.datetime,
    generation: int | None = None,
) -> list[dict[str, Any]]:
    """A new list with the condition set; the transition time moves only on a status change."""
    text = "Unknown" if status is None else ("True" if status else "False")
    previous = get_condition(conditions, kind)
    changed = previous is None or previous.get("status") != text
    condition: dict[str, Any] = {
        "type": kind,
        "status": text,
        "reason": reason,
        "message": message[:2000],
        "lastTransitionTime": rfc3339(now)
        if changed or previous is None
        else previous.get("lastTransitionTime", rfc3339(now)),
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    others = [c for c in conditions if c.get("type") != kind]
    return sorted([*others, condition], key=lambda c: str(c.get("type")))
