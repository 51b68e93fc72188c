"""Status: the only place a ``DatabaseStatus`` of the database path is built.

Ready and Synced change through the few transitions the path makes (``mark_*``), on the
conditions the resource had: ``reconcile.conditions`` keeps a transition time unless the
status changed, and hands back an unchanged list as the same list, so a reconcile that
changes nothing writes nothing new.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from tenantdb.api import Condition, DatabaseStatus, Phase
from tenantdb.reconcile import conditions as cond
from tenantdb.reconcile.reasons import Reason

__all__ = ["deleting", "mark_deleting"]


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


def deleting(conditions: list[Condition]) -> DatabaseStatus:
    return DatabaseStatus(phase=Phase.DELETING, conditions=conditions)
