"""The decision log as the reconcilers write it: one call, ``record_decision``, for every path.

The budget loop (suspend, resume, the hard stop armed or lifted), the finalizer (a project
deleted, retained or left behind), the take-over of a project (``spec.projectId``) and the
rotation of credentials each say here who or what decided, why, and on which figures. The row
lands in the metadata DB (``tenantdb_decision_log``), where ``tenantdb describe`` and an
auditor read it long after the Events have expired.

Writing it is best effort: the decision has been taken and acted on when it is recorded, and a
metadata DB that refuses the row must not undo it or hold it back (a suspend that waits for
the audit row would let the spend go on). A lost row is said in the operator's log.
"""

from __future__ import annotations

import datetime
import enum
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from tenantdb.api import Tenant
from tenantdb.store.decisions import DecisionRow
from tenantdb.store.errors import StoreError

__all__ = ["DecidedBy", "DecisionAction", "DecisionLog", "record_decision"]

_log = logging.getLogger(__name__)


@enum.unique
class DecisionAction(enum.StrEnum):
    """What was decided. The values are public (the table, ``tenantdb describe``, audits):
    never change one; add a member instead."""

    SUSPEND = "suspend"  # a user's databases suspended for their budget
    RESUME = "resume"  # ... and resumed: within the limit again
    HARD_STOP_ARMED = "hard-stop-armed"  # compute quotas set: Neon stops the computes at the limit
    HARD_STOP_LIFTED = "hard-stop-lifted"  # ... and lifted (unlimited again)
    DELETE = "delete"  # the resource's Neon project deleted by its finalizer
    RETAIN = "retain"  # ... kept (deletionPolicy: Retain)
    ORPHAN = "orphan"  # ... left behind: the finalizer gave up deleting it
    ADOPT = "adopt"  # an existing project taken over (spec.projectId)
    ROTATE = "rotate"  # the database's credentials rotated


@enum.unique
class DecidedBy(enum.StrEnum):
    """Who or what decided: the part of the operator (a person's tool names itself)."""

    BUDGET_ENFORCEMENT = "budget enforcement"
    FINALIZER = "finalizer"
    TAKE_OVER = "take-over (spec.projectId)"
    ROTATION = "credential rotation"


class DecisionLog(Protocol):
    """Where decisions are written (``MetadataStore.record_decision``)."""

    async def record_decision(self, row: DecisionRow) -> None: ...


async def record_decision(
    log: DecisionLog | None,
    *,
    tenant: Tenant,
    action: DecisionAction,
    decided_by: str,
    reason: str,
    at: datetime.datetime,
    resource: str | None = None,
    project_id: str | None = None,
    spend_cents: int | None = None,
    limit_cents: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> bool:
    """Write one decision; whether it was written (never raises for the metadata DB).

    ``tenant``: whose decision it is (a budget's: the user). ``resource``: the one resource
    acted on, as ``Kind namespace/name``. ``reason`` and ``details`` name ids and figures only,
    never a secret. ``log`` ``None``: nowhere to write (tests of other concerns).
    """
    if log is None:
        return False
    row = DecisionRow(
        decided_at=at,
        scope=tenant.scope.owner,
        tenant_id=tenant.id,
        action=action.value,
        decided_by=decided_by,
        reason=reason,
        resource=resource,
        project_id=project_id,
        spend_cents=spend_cents,
        limit_cents=limit_cents,
        details=dict(details or {}),
    )
    try:
        await log.record_decision(row)
    except StoreError as exc:
        _log.warning(
            "decision not recorded in the decision log (%s %s, %s): %s",
            action.value,
            tenant.label,
            reason,
            exc,
        )
        return False
    return True
