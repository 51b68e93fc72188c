"""The database path's answer to the budget: switch one database's endpoint, record it.

One writer per resource: the budget loop decides and writes the budget's status; it then asks
the database path to act (``apply_budget``), which patches the endpoint through the one
function that sets ``disabled`` (``settle_endpoint``, under the project's lock, reading the
user's word there) and writes the database's status (as ``database.status`` builds it) and
Event. The running operator calls it under the resource's own lock too
(``handlers.driver.budget_actuator``), the one a reconcile of the same resource holds.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Awaitable, Callable
from typing import Protocol

from tenantdb.api import DatabaseStatus
from tenantdb.reconcile.database.status import switched_by_budget
from tenantdb.reconcile.endpoint_budget import EndpointPort, EndpointSettled, settle_endpoint
from tenantdb.reconcile.reasons import Reason

__all__ = ["BudgetAction", "apply_budget"]


class BudgetAction(Protocol):
    """A suspend or resume the budget loop asks for (``enforcement.SuspendAction`` and kin)."""

    @property
    def kind(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def project_id(self) -> str: ...


class SerialisedEndpoints(EndpointPort, Protocol):
    def serialised(self, project_id: str) -> contextlib.AbstractAsyncContextManager[None]: ...


# kind, namespace, name, and the status fields to merge-patch (``DatabaseStatus.to_patch``)
StatusWrite = Callable[[str, str, str, DatabaseStatus], Awaitable[None]]
EventPost = Callable[[str, str, str, str, str, str], None]  # kind, namespace, name, type, reason, message


async def apply_budget(
    action: BudgetAction,
    *,
    neon: SerialisedEndpoints,
    decision: Callable[[], bool | None],
    write_status: StatusWrite,
    post_event: EventPost,
    now: datetime.datetime,
) -> EndpointSettled:
    """Bring the endpoint to the user's word; on a switch, record it on the database."""
    async with neon.serialised(action.project_id):
        settled = await settle_endpoint(neon, action.project_id, decision=decision)
    if not settled.switched:
        return settled
    suspended = settled.suspended
    post_event(
        action.kind,
        action.namespace,
        action.name,
        "Warning" if suspended else "Normal",
        Reason.BUDGET_EXCEEDED if suspended else Reason.RESUMED,
        f"User {action.user_id} is over budget: compute endpoint disabled"
        if suspended
        else f"User {action.user_id} is within budget again: compute endpoint enabled",
    )
    await write_status(
        action.kind,
        action.namespace,
        action.name,
        switched_by_budget(suspended=suspended, user_id=action.user_id, now=now),
    )
    return settled
