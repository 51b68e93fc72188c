"""One consumption sync and budget enforcement for the whole operator.

The handlers keep ``BudgetSync``'s registry of budgets and databases current (every
resource passes through a resume, create or update handler, so the registry is complete
after start-up, whatever order the resources were created in). One loop then:

1. asks Neon for the consumption of every known project, ≤100 ids per call
   (``sync_consumption``); a failed sync changes nothing;
2. merges the costs (a partial answer never zeroes a cost; a new period resets them);
3. writes costs to the metadata DB, the database resources' and the budgets' status;
4. plans enforcement (``plan_enforcement``) and disables or enables compute endpoints.

A tier change re-runs step 4 at once with the costs already known, so an upgrade resumes
the user's databases without waiting for the next sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol

from tenantdb.api import DATABASE_BUDGET, GLOBAL_DATABASE, WORKSPACE_DATABASE, Phase
from tenantdb.billing import Prices, TierPolicy
from tenantdb.billing.period import billing_period
from tenantdb.config import Settings
from tenantdb.metrics import Metrics
from tenantdb.neon.errors import NeonError
from tenantdb.reconcile import conditions as cond
from tenantdb.reconcile.consumption import ConsumptionSource, merge_costs, sync_consumption
from tenantdb.reconcile.database import read_write_endpoint
from tenantdb.reconcile.enforcement import (
    BudgetOutcome,
    BudgetRecord,
    DatabaseRecord,
    ResumeAction,
    SuspendAction,
    plan_enforcement,
)
from tenantdb.store.errors import StoreError

__all__ = ["BudgetSync"]

_log = logging.getLogger(__name__)
_PLURALS = {k.kind: k.plural for k in (GLOBAL_DATABASE, WORKSPACE_DATABASE, DATABASE_BUDGET)}


class StatusPatcher(Protocol):
    async def patch_status(
        self, *, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None: ...


class EndpointSwitch(Protocol):
    async def list_endpoints(self, project_id: str) -> list[Any]: ...
    async def update_endpoint(
        self, project_id: str, endpoint_id: str, *, disabled: bool | None = None
    ) -> list[Any]: ...
    async def wait_for_operations(
        self, project_id: str, operations: Any, *, timeout: float = 300.0
    ) -> None: ...
    def serialised(self, project_id: str) -> contextlib.AbstractAsyncContextManager[None]: ...


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


EventPoster = Callable[[str, str, str, str, str, str], None]  # kind, namespace, name, type, reason, message


@dataclasses.dataclass
class BudgetSync:
    settings: Settings
    metrics: Metrics
    clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC)
    budgets: dict[tuple[str, str], BudgetRecord] = dataclasses.field(default_factory=dict)
    databases: dict[tuple[str, str, str], DatabaseRecord] = dataclasses.field(default_factory=dict)
    costs: dict[str, int] = dataclasses.field(default_factory=dict)
    period_start: datetime.datetime | None = None
    last_sync: datetime.datetime | None = None
    exceeded_users: set[str] = dataclasses.field(default_factory=set)
    _lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    _transitions: dict[tuple[str, str, str], tuple[str, str]] = dataclasses.field(default_factory=dict)

    # -- registry (kept current by the handlers) -------------------------------------------------
    def put_budget(self, namespace: str, name: str, record: BudgetRecord) -> None:
        self.budgets[(namespace, name)] = record

    def drop_budget(self, namespace: str, name: str) -> None:
        self.budgets.pop((namespace, name), None)

    def put_database(self, record: DatabaseRecord) -> None:
        self.databases[(record.kind, record.namespace, record.name)] = record

    def drop_database(self, kind: str, namespace: str, name: str) -> None:
        self.databases.pop((kind, namespace, name), None)

    def is_suspended(self, user_id: str) -> bool:
        """Whether a database of this user must be (or start) suspended."""
        return user_id in self.exceeded_users

    @property
    def policy(self) -> TierPolicy:
        return TierPolicy.from_settings(self.settings)

    # -- the loop -------------------------------------------------------------------------------
    async def run_forever(
        self,
        *,
        source: ConsumptionSource,
        store: CostStore,
        kube: StatusPatcher,
        neon: EndpointSwitch,
        post_event: EventPoster,
        ready: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if ready is not None:
            await ready()
        while True:
            try:
                await self.sync_once(source=source, store=store, kube=kube, neon=neon, post_event=post_event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("consumption sync failed; costs unchanged, retrying next interval: %s", exc)
            await asyncio.sleep(self.settings.consumption_sync_interval_seconds)

    async def sync_once(
        self,
        *,
        source: ConsumptionSource,
        store: CostStore,
        kube: StatusPatcher,
        neon: EndpointSwitch,
        post_event: EventPoster,
        now: datetime.datetime | None = None,
    ) -> None:
        now = now or self.clock()
        project_ids = sorted({d.project_id for d in self.databases.values() if d.project_id})
        try:
            snapshot = await sync_consumption(
                source=source,
                project_ids=project_ids,
                now=now,
                prices=Prices.from_settings(self.settings),
                anchor_day=self.settings.billing_period_anchor_day,
            )
        except Exception:
            self.metrics.consumption_syncs.labels(result="error").inc()
            raise
        self.metrics.consumption_syncs.labels(result="complete" if snapshot.complete else "partial").inc()
        async with self._lock:
            self.costs = merge_costs(self.costs, snapshot, previous_period_start=self.period_start)
            self.period_start = snapshot.period_start
            self.last_sync = snapshot.synced_at
        if self.costs:
            await store.set_database_costs(self.costs, synced_at=snapshot.synced_at)
        for record in list(self.databases.values()):
            if record.project_id and record.project_id in self.costs:
                await kube.patch_status(
                    plural=_PLURALS[record.kind],
                    namespace=record.namespace,
                    name=record.name,
                    status={
                        "currentPeriodCostCents": self.costs[record.project_id],
                        "lastConsumptionSync": cond.rfc3339(snapshot.synced_at),
                    },
                )
        await self.enforce(store=store, kube=kube, neon=neon, post_event=post_event)

    async def enforce(
        self, *, store: CostStore, kube: StatusPatcher, neon: EndpointSwitch, post_event: EventPoster
    ) -> None:
        """Plan with the costs known now; write budget status and rows; switch endpoints."""
        async with self._lock:
            plan = plan_enforcement(
                budgets=list(self.budgets.values()),
                databases=list(self.databases.values()),
                costs_cents=self.costs,
                policy=self.policy,
            )
            self.exceeded_users = {user for user, outcome in plan.outcomes.items() if outcome.exceeded}
            self.metrics.budgets_over_limit.set(len(self.exceeded_users))
        now = self.clock()
        period_start = (
            self.period_start or billing_period(now, anchor_day=self.settings.billing_period_anchor_day).start
        )
        # One user's failure (the API server refusing a status patch, say) must not hold back
        # every other user's suspend or resume: each step stands alone, and the next round
        # plans again from what is known then.
        for (namespace, name), record in list(self.budgets.items()):
            outcome = plan.outcomes.get(record.user_id)
            if outcome is not None:
                async with _each_on_its_own(f"writing the status of budget {namespace}/{name}"):
                    await self._write_budget(kube, store, namespace, name, outcome, period_start, post_event)
        for action in plan.suspend:
            async with _each_on_its_own(f"suspending {action.namespace}/{action.name}"):
                await self._switch(action, suspend=True, kube=kube, neon=neon, post_event=post_event)
        for resume in plan.resume:
            async with _each_on_its_own(f"resuming {resume.namespace}/{resume.name}"):
                await self._switch(resume, suspend=False, kube=kube, neon=neon, post_event=post_event)

    async def _write_budget(
        self,
        kube: StatusPatcher,
        store: CostStore,
        namespace: str,
        name: str,
        outcome: BudgetOutcome,
        period_start: datetime.datetime,
        post_event: EventPoster,
    ) -> None:
        now = self.clock()
        status: dict[str, Any] = {
            "tier": outcome.tier.value,
            "limitCents": outcome.limit_cents,
            "totalCostCents": outcome.total_cost_cents,
            "exceeded": outcome.exceeded,
            "periodStart": cond.rfc3339(period_start),
            "databases": [dict(d) for d in outcome.databases],
        }
        if self.last_sync is not None:
            status["lastSyncTime"] = cond.rfc3339(self.last_sync)
        limit_text = "unlimited" if outcome.limit_cents is None else f"{outcome.limit_cents} cents"
        exceeded = "True" if outcome.exceeded else "False"
        status["conditions"] = [
            {
                "type": cond.READY,
                "status": "True",
                "reason": "Synced" if self.last_sync else "Configured",
                "message": f"Tier {outcome.tier.value}: limit {limit_text}",
                "lastTransitionTime": self._transition_time(namespace, name, cond.READY, "True", now),
            },
            {
                "type": cond.BUDGET_EXCEEDED,
                "status": exceeded,
                "reason": "OverLimit" if outcome.exceeded else "WithinLimit",
                "message": f"Spent {outcome.total_cost_cents} of {limit_text} this period",
                "lastTransitionTime": self._transition_time(
                    namespace, name, cond.BUDGET_EXCEEDED, exceeded, now
                ),
            },
        ]
        await kube.patch_status(plural=DATABASE_BUDGET.plural, namespace=namespace, name=name, status=status)
        try:
            await store.update_budget_usage(
                user_id=outcome.user_id,
                total_cost_cents=outcome.total_cost_cents,
                budget_exceeded=outcome.exceeded,
                period_start=period_start,
                synced_at=self.last_sync or now,
            )
        except StoreError as exc:
            _log.warning(
                "could not record the budget of user %s in the metadata DB: %s", outcome.user_id, exc
            )

    def _transition_time(
        self, namespace: str, name: str, type_: str, status: str, now: datetime.datetime
    ) -> str:
        """When the condition last changed status (API conventions), not when it was last written."""
        key = (namespace, name, type_)
        known = self._transitions.get(key)
        if known is None or known[0] != status:
            known = self._transitions[key] = (status, cond.rfc3339(now))
        return known[1]

    async def _switch(
        self,
        action: SuspendAction | ResumeAction,
        *,
        suspend: bool,
        kube: StatusPatcher,
        neon: EndpointSwitch,
        post_event: EventPoster,
    ) -> None:
        try:
            # The project's lock orders this with a reconcile patching the same endpoint, and
            # the check under it drops a switch that a newer plan has already reversed.
            async with neon.serialised(action.project_id):
                if self.is_suspended(action.user_id) != suspend:
                    return
                endpoint_id = action.endpoint_id
                if endpoint_id is None:
                    endpoint = read_write_endpoint(await neon.list_endpoints(action.project_id))
                    endpoint_id = endpoint.id if endpoint is not None else None
                if endpoint_id is None:
                    return
                operations = await neon.update_endpoint(action.project_id, endpoint_id, disabled=suspend)
                await neon.wait_for_operations(action.project_id, operations)
        except NeonError as exc:
            _log.warning(
                "could not %s %s/%s: %s",
                "suspend" if suspend else "resume",
                action.namespace,
                action.name,
                exc,
            )
            return
        key = (action.kind, action.namespace, action.name)
        if key in self.databases:
            self.databases[key] = dataclasses.replace(self.databases[key], suspended_for_budget=suspend)
        now = self.clock()
        if suspend:
            status = {
                "phase": Phase.SUSPENDED.value,
                "conditions": [
                    {
                        "type": cond.READY,
                        "status": "False",
                        "reason": "BudgetExceeded",
                        "message": f"User {action.user_id} is over budget: connections are refused",
                        "lastTransitionTime": cond.rfc3339(now),
                    },
                    {
                        "type": cond.SYNCED,
                        "status": "True",
                        "reason": "ReconcileSuccess",
                        "message": "Compute endpoint disabled for the budget",
                        "lastTransitionTime": cond.rfc3339(now),
                    },
                ],
            }
            post_event(
                action.kind,
                action.namespace,
                action.name,
                "Warning",
                "BudgetExceeded",
                f"User {action.user_id} is over budget: compute endpoint disabled",
            )
        else:
            status = {
                "phase": Phase.READY.value,
                "conditions": [
                    {
                        "type": cond.READY,
                        "status": "True",
                        "reason": "Available",
                        "message": "Back within budget: compute endpoint enabled",
                        "lastTransitionTime": cond.rfc3339(now),
                    },
                    {
                        "type": cond.SYNCED,
                        "status": "True",
                        "reason": "ReconcileSuccess",
                        "message": "Compute endpoint enabled",
                        "lastTransitionTime": cond.rfc3339(now),
                    },
                ],
            }
            post_event(
                action.kind,
                action.namespace,
                action.name,
                "Normal",
                "Resumed",
                f"User {action.user_id} is within budget again: compute endpoint enabled",
            )
        await kube.patch_status(
            plural=_PLURALS[action.kind], namespace=action.namespace, name=action.name, status=status
        )


@contextlib.asynccontextmanager
async def _each_on_its_own(what: str) -> AsyncIterator[None]:
    try:
        yield
    except Exception as exc:
        _log.warning("budget enforcement: %s failed (%s): %s", what, type(exc).__name__, exc)
