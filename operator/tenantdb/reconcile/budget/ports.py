"""What the budget path needs from outside the process (structural Protocols)."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from tenantdb.reconcile.endpoint_budget import EndpointPort
from tenantdb.reconcile.enforcement import ResumeAction, SuspendAction

__all__ = [
    "CostStore",
    "DatabaseActuator",
    "DecisionRow",
    "DecisionStore",
    "EndpointSwitch",
    "EventPoster",
    "QuotaSetter",
    "StatusPatcher",
]


class StatusPatcher(Protocol):
    async def patch_status(
        self, *, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None: ...


class EndpointSwitch(EndpointPort, Protocol):
    def serialised(self, project_id: str) -> contextlib.AbstractAsyncContextManager[None]: ...


class QuotaSetter(Protocol):
    async def set_compute_quota(self, project_id: str, compute_time_seconds: int) -> None: ...


class CostStore(Protocol):
    async def set_database_costs(self, costs: Mapping[str, int], *, synced_at: datetime.datetime) -> int: ...
    async def update_budget_usage(
        self,
        *,
        user_id: str,
        total_cost_cents: int,
        budget_exceeded: bool,
        period_start: datetime.datetime,
        synced_at: datetime.datetime,
    ) -> None: ...


class DecisionRow(Protocol):
    """A ``user_db_budget`` row, as far as ``restore`` reads it."""

    @property
    def user_id(self) -> str: ...
    @property
    def tier(self) -> str: ...
    @property
    def budget_exceeded(self) -> bool: ...
    @property
    def total_cost_cents(self) -> int: ...
    @property
    def current_period_start(self) -> datetime.datetime: ...
    @property
    def last_sync(self) -> datetime.datetime | None: ...


class DecisionStore(Protocol):
    async def list_budgets(self) -> Sequence[DecisionRow]: ...


EventPoster = Callable[[str, str, str, str, str, str], None]  # kind, namespace, name, type, reason, message

# The database path, asked to act on a suspend or resume (returns the endpoint's state;
# None: nothing to act on): ``handlers.databases.budget_actuator`` in the running operator.
DatabaseActuator = Callable[[SuspendAction | ResumeAction], Awaitable[bool | None]]
