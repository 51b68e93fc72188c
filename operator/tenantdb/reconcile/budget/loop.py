"""What the operator does about budgets: one consumption sync and enforcement loop for all.

What it acts on is the registry (``budget.registry``). Each round:

1. asks Neon for the consumption of every known project, ≤100 ids per call
   (``sync_consumption``); a failed sync changes nothing;
2. merges the costs (``BudgetRegistry.record_consumption``);
3. writes costs to the metadata DB and the database resources' status;
4. plans enforcement (``plan_enforcement``) and decides each user (``_decide``), writes each
   budget's row and status (``budget.status``), and asks the database path to switch endpoints
   (``database_budget.apply_budget``: the endpoint, the database's status and Event, under the
   resource's and the project's locks);
5. sets each project's compute quota, the hard stop between syncs (``billing.quotas``).

A tier change re-runs steps 4-5 at once with the costs already known, so an upgrade resumes
the user's databases without waiting for the next sync: for that user alone (``enforce_users``),
the requests of handlers running together sharing one pass, so a start-up with B budgets makes a
few passes of B users, not B passes of every user.

A user whose costs are not all known keeps the decision in force (held) rather than being
resumed on a partial total.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping
from decimal import Decimal
from typing import Any

from tenantdb.api import DatabaseStatus, Scope, Tenant, kind_named
from tenantdb.billing import Prices
from tenantdb.billing.period import billing_period
from tenantdb.billing.quotas import NEON_MAX_CU, UNLIMITED, armed, capped, compute_quotas, needs_write
from tenantdb.neon.errors import NeonError
from tenantdb.reconcile.budget.ports import (
    CostStore,
    DatabaseActuator,
    EndpointSwitch,
    EventPoster,
    QuotaSetter,
    StatusPatcher,
)
from tenantdb.reconcile.budget.registry import BudgetKey, BudgetRegistry
from tenantdb.reconcile.budget.status import (
    budget_conditions,
    enforced,
    limit_text,
    post_state_events,
    write_if_changed,
)
from tenantdb.reconcile.consumption import ConsumptionSnapshot, ConsumptionSource, sync_consumption
from tenantdb.reconcile.database.status import period_cost
from tenantdb.reconcile.database_budget import StatusWrite, apply_budget
from tenantdb.reconcile.decisions import DecidedBy, DecisionAction, DecisionLog, record_decision
from tenantdb.reconcile.enforcement import (
    BudgetOutcome,
    BudgetRecord,
    EnforcementPlan,
    ResumeAction,
    SuspendAction,
    plan_enforcement,
)
from tenantdb.store.errors import StoreError

__all__ = ["BudgetLoop"]

# The logger's name from before the loop had a module of its own: log filters keep working.
_log = logging.getLogger("tenantdb.reconcile.budget_sync")


@dataclasses.dataclass
class BudgetLoop:
    registry: BudgetRegistry = dataclasses.field(repr=False)
    # The database path, asked to act on a suspend or resume. None: ``apply_budget`` without
    # the resource's lock (tests).
    actuator: DatabaseActuator | None = None
    # Where each suspend, resume and hard-stop change is recorded (the metadata DB's decision
    # log; ``reconcile.decisions``). None: not recorded (tests of other concerns).
    decision_log: DecisionLog | None = None
    # How long a handler's request for enforcement waits for others to join its pass.
    coalesce_seconds: float = 0.05
    _lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    # Each limited user's spend and spend / limit as last planned (the metrics cover everyone).
    _spend: dict[str, tuple[int, float | None]] = dataclasses.field(default_factory=dict)
    # Users whose enforcement handlers asked for and no pass has started on; the pass that will.
    _pending: set[str] = dataclasses.field(default_factory=set)
    _next_pass: asyncio.Future[None] | None = None
    _drainer: asyncio.Task[None] | None = None

    # -- the loop --------------------------------------------------------------------------------
    def first_sync_wait(self) -> float:
        """Seconds until the first sync of this process is due: a restart does not sync again
        what the last process synced a moment ago (at 30,000 projects a sync is 300 calls of
        the consumption endpoint's 50 a minute). The quotas that last sync set hold meanwhile."""
        registry = self.registry
        if registry.last_sync is not None or registry.restored_last_sync is None:
            return 0.0
        last = registry.restored_last_sync
        last = last if last.tzinfo is not None else last.replace(tzinfo=datetime.UTC)
        due = last + datetime.timedelta(seconds=registry.settings.consumption_sync_interval_seconds)
        return max(0.0, (due - registry.clock()).total_seconds())

    async def run_forever(
        self,
        *,
        source: ConsumptionSource,
        store: CostStore,
        kube: StatusPatcher,
        neon: EndpointSwitch,
        post_event: EventPoster,
        quotas: QuotaSetter | None = None,
        ready: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if ready is not None:
            await ready()
        while True:
            await self.sync_round(
                source=source, store=store, kube=kube, neon=neon, post_event=post_event, quotas=quotas
            )
            await asyncio.sleep(self.registry.settings.consumption_sync_interval_seconds)

    async def sync_round(self, /, **kwargs: Any) -> None:
        """One ``sync_once`` whose failure is logged, not raised: the next round tries again."""
        try:
            await self.sync_once(**kwargs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _log.warning("consumption sync failed; costs unchanged, retrying next interval: %s", exc)

    async def sync_once(
        self,
        *,
        source: ConsumptionSource,
        store: CostStore,
        kube: StatusPatcher,
        neon: EndpointSwitch,
        post_event: EventPoster,
        quotas: QuotaSetter | None = None,
        now: datetime.datetime | None = None,
    ) -> None:
        registry = self.registry
        snapshot = await self._measure(source, now or registry.clock())
        async with self._lock:
            registry.record_consumption(snapshot)
        registry.metrics.consumption_last_sync.set(snapshot.synced_at.timestamp())
        if registry.costs:
            await store.set_database_costs(registry.costs, synced_at=snapshot.synced_at)
        await self._write_costs(kube, snapshot.synced_at)
        await self.enforce(store=store, kube=kube, neon=neon, post_event=post_event, quotas=quotas)

    async def _measure(self, source: ConsumptionSource, now: datetime.datetime) -> ConsumptionSnapshot:
        """The consumption of every known project (a failed sync raises: nothing changes)."""
        registry = self.registry
        project_ids = sorted({d.project_id for d in registry.databases.values() if d.project_id})
        try:
            snapshot = await sync_consumption(
                source=source,
                project_ids=project_ids,
                now=now,
                prices=Prices.from_settings(registry.settings),
                anchor_day=registry.settings.billing_period_anchor_day,
            )
        except Exception:
            registry.metrics.consumption_syncs.labels(result="error").inc()
            raise
        registry.metrics.consumption_syncs.labels(result="complete" if snapshot.complete else "partial").inc()
        return snapshot

    async def _write_costs(self, kube: StatusPatcher, synced_at: datetime.datetime) -> None:
        """Each database's cost on its status (``database.status.period_cost``)."""
        write = _database_status_writer(kube)
        for record in list(self.registry.databases.values()):
            if record.project_id and record.project_id in self.registry.costs:
                async with _each_on_its_own(f"writing the cost of {record.namespace}/{record.name}"):
                    cost = period_cost(self.registry.costs[record.project_id], synced_at=synced_at)
                    await write(record.kind, record.namespace, record.name, cost)

    # -- passes asked for by the handlers --------------------------------------------------------
    async def enforce_users(
        self,
        users: Iterable[str],
        *,
        store: CostStore,
        kube: StatusPatcher,
        neon: EndpointSwitch,
        post_event: EventPoster,
        quotas: QuotaSetter | None = None,
    ) -> None:
        """Enforce these users now (a handler's tier change must not wait for a sync), in one
        pass with every other user asked for meanwhile; returns once that pass is done.

        Requests arriving within ``coalesce_seconds``, or while a pass runs, share the next
        pass: the resume handlers of a start-up make a few passes, each planning its users only.
        """
        self._pending.update(users)
        if self._next_pass is None:
            self._next_pass = asyncio.get_running_loop().create_future()
            # Nobody left to read it (a handler cancelled meanwhile): no "never retrieved" noise.
            self._next_pass.add_done_callback(_retrieve)
        waiting = self._next_pass
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(
                self._drain(store=store, kube=kube, neon=neon, post_event=post_event, quotas=quotas)
            )
        await asyncio.shield(waiting)

    async def _drain(
        self,
        *,
        store: CostStore,
        kube: StatusPatcher,
        neon: EndpointSwitch,
        post_event: EventPoster,
        quotas: QuotaSetter | None,
    ) -> None:
        """One pass after another while users are pending; each pass answers its requests."""
        while self._pending:
            await asyncio.sleep(self.coalesce_seconds)
            users, self._pending = self._pending, set()
            done, self._next_pass = self._next_pass, None
            try:
                await self.enforce(
                    users=users, store=store, kube=kube, neon=neon, post_event=post_event, quotas=quotas
                )
            except BaseException as exc:
                if done is not None and not done.done():
                    if isinstance(exc, asyncio.CancelledError):
                        done.cancel()
                    else:
                        done.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                if done is not None and not done.done():
                    done.set_result(None)

    # -- one pass of enforcement -----------------------------------------------------------------
    async def enforce(
        self,
        *,
        store: CostStore,
        kube: StatusPatcher,
        neon: EndpointSwitch,
        post_event: EventPoster,
        quotas: QuotaSetter | None = None,
        users: Collection[str] | None = None,
    ) -> None:
        """Plan with the costs known now; write budget status and rows; switch endpoints; set quotas.

        ``users``: these users only (their budgets and databases, found by the registry's
        index); ``None``: every user (the sync)."""
        registry = self.registry
        async with self._lock:
            plan, decided, budget_keys = self._plan(users)
        now = registry.clock()
        period_start = (
            registry.period_start
            or billing_period(now, anchor_day=registry.settings.billing_period_anchor_day).start
        )
        # The hard stop first (the budget's status then shows the quotas in force). Only after a
        # sync of this process: a quota from unknown costs could be far too generous.
        if quotas is not None and registry.last_sync is not None:
            await self._set_quotas(plan.outcomes.values(), quotas)
        tiers_before = {key: registry.states.get(key) for key in budget_keys}
        # One user's failure (the API server refusing a status patch, say) must not hold back
        # every other user's suspend or resume: each step stands alone, and the next round
        # plans again from what is known then.
        # Durable first: the rows (then the statuses) record a decision before any reconcile can
        # read it (``is_suspended``) and act on it, so a kill at any moment leaves no disabled
        # flag that the metadata DB does not explain.
        for key in budget_keys:
            record = registry.budgets.get(key)
            outcome = plan.outcomes.get(record.user_id) if record is not None else None
            if record is not None and outcome is not None:
                async with _each_on_its_own(f"writing the status of budget {key[0]}/{key[1]}"):
                    await self._write_budget(
                        key,
                        record,
                        outcome,
                        decided.get(record.user_id),
                        period_start,
                        kube=kube,
                        store=store,
                        post_event=post_event,
                    )
        words_before = {user_id: registry.decisions.get(user_id) for user_id in decided}
        registry.record_decisions(decided)
        actions: list[SuspendAction | ResumeAction] = [*plan.suspend, *plan.resume]
        for action in actions:
            async with _each_on_its_own(f"switching {action.namespace}/{action.name}"):
                await self._switch(action, kube=kube, neon=neon, post_event=post_event)
        # The record last: a period's turn resumes thousands at once, and none waits for it.
        await self._log_decisions(plan.outcomes, decided, words_before, tiers_before, now)

    async def _log_decisions(
        self,
        outcomes: Mapping[str, BudgetOutcome],
        decided: Mapping[str, bool],
        before: Mapping[str, bool | None],
        tiers_before: Mapping[BudgetKey, tuple[str, bool | None] | None],
        now: datetime.datetime,
    ) -> None:
        """A suspend or a resume in the decision log, once per change of a user's word."""
        registry = self.registry
        for user_id, suspended in decided.items():
            was = before.get(user_id)
            if suspended is was or (not suspended and was is None):
                continue  # no change; a user first known within the limit was never suspended
            outcome = outcomes[user_id]
            earlier = [
                state[0]
                for key, state in tiers_before.items()
                if state is not None and getattr(registry.budgets.get(key), "user_id", None) == user_id
            ]
            tier = outcome.tier
            why = f"spent {outcome.total_cost_cents} of {limit_text(outcome.limit_cents)} this period"
            if earlier and earlier[0] != tier:
                why = f"tier {earlier[0]} -> {tier}: {why}"
            await record_decision(
                self.decision_log,
                tenant=Tenant(Scope.GLOBAL, user_id),
                action=DecisionAction.SUSPEND if suspended else DecisionAction.RESUME,
                decided_by=DecidedBy.BUDGET_ENFORCEMENT,
                reason=why,
                at=now,
                spend_cents=outcome.total_cost_cents,
                limit_cents=outcome.limit_cents,
                details={"tier": tier, "databases": len(outcome.databases)},
            )

    def _plan(
        self, users: Collection[str] | None
    ) -> tuple[EnforcementPlan, dict[str, bool], list[BudgetKey]]:
        """The plan for these users (``None``: everyone), the word on each, and their budgets."""
        registry = self.registry
        budgets, databases = registry.registered(users)
        plan = plan_enforcement(
            budgets=budgets,
            databases=databases,
            costs_cents=registry.costs,
            policy=registry.policy,
        )
        # Before this process has synced, "every cost known" means nothing: the databases
        # may not even be registered yet (a budget's resume handler can run first).
        decided = _decide(plan.outcomes, registry.decisions, synced=registry.last_sync is not None)
        self._observe_spend(plan.outcomes.values(), planned=users)
        return plan, decided, registry.budget_keys(users)

    def _observe_spend(self, outcomes: Iterable[BudgetOutcome], *, planned: Collection[str] | None) -> None:
        """Every user's spend, from this pass for the users it planned (``None``: all of them)."""
        if planned is None:
            self._spend.clear()
        else:
            for user_id in planned:
                self._spend.pop(user_id, None)
        for outcome in outcomes:
            ratio = None
            if outcome.limit_cents is not None:
                ratio = outcome.total_cost_cents / outcome.limit_cents if outcome.limit_cents else 0.0
            self._spend[outcome.user_id] = (outcome.total_cost_cents, ratio)
        self.registry.metrics.set_spend(
            total_cents=sum(total for total, _ in self._spend.values()),
            ratios=[ratio for _, ratio in self._spend.values() if ratio is not None],
        )

    async def _set_quotas(self, outcomes: Iterable[BudgetOutcome], quotas: QuotaSetter) -> None:
        """Each project's compute quota, where it moved more than is worth a Neon call."""
        registry = self.registry
        price = Prices.from_settings(registry.settings).compute_cu_hour_usd
        for outcome in outcomes:
            entries = [d for d in outcome.databases if d.get("projectId")]
            if not outcome.tier_found or not entries:
                continue  # an unknown tier: the quotas in force hold, as the decision does
            if not (outcome.costs_complete or outcome.limit_cents is None):
                continue
            wanted = self._wanted_quotas(outcome, entries, price)
            tolerance = _quota_tolerance(outcome.limit_cents, price, len(entries))
            armed_before = _stop_armed(registry.quotas, wanted)
            for project_id, seconds in wanted.items():
                if not needs_write(registry.quotas.get(project_id), seconds, tolerance=tolerance):
                    continue
                async with _each_on_its_own(f"setting the compute quota of project {project_id}"):
                    try:
                        await quotas.set_compute_quota(project_id, seconds)
                    except Exception:
                        registry.metrics.quota_write_failures.inc()
                        raise
                    registry.quotas[project_id] = seconds
                    registry.metrics.quota_writes.inc()
            armed_after = _stop_armed(registry.quotas, wanted)
            if armed_after != armed_before:
                await self._log_hard_stop(outcome, armed_after, {p: registry.quotas.get(p) for p in wanted})

    async def _log_hard_stop(
        self, outcome: BudgetOutcome, armed_now: bool, quotas: Mapping[str, int | None]
    ) -> None:
        """The hard stop armed (quotas set from what is left of the limit) or lifted."""
        limit = limit_text(outcome.limit_cents)
        await record_decision(
            self.decision_log,
            tenant=Tenant(Scope.GLOBAL, outcome.user_id),
            action=DecisionAction.HARD_STOP_ARMED if armed_now else DecisionAction.HARD_STOP_LIFTED,
            decided_by=DecidedBy.BUDGET_ENFORCEMENT,
            reason=f"spent {outcome.total_cost_cents} of {limit}: "
            + (
                "the limit is out of reach before the next sync"
                if not armed_now
                else "over the limit, Neon stops the computes"
                if outcome.limit_cents is not None and outcome.total_cost_cents >= outcome.limit_cents
                else "what is left could be spent before the next sync: Neon stops the computes at the limit"
            ),
            at=self.registry.clock(),
            spend_cents=outcome.total_cost_cents,
            limit_cents=outcome.limit_cents,
            details={"computeQuotaSeconds": {p: s for p, s in quotas.items() if s is not None}},
        )

    def _wanted_quotas(
        self, outcome: BudgetOutcome, entries: list[Mapping[str, Any]], price: Decimal
    ) -> dict[str, int]:
        """What is left of the limit, split over the user's projects; unlimited while the stop
        is not armed (the databases could not spend what is left before the operator knows)."""
        projects = [str(d["projectId"]) for d in entries]
        stop_armed = armed(
            limit_cents=outcome.limit_cents,
            total_cost_cents=outcome.total_cost_cents,
            max_cu=[float(d.get("maxCu") or NEON_MAX_CU) for d in entries],
            sync_interval_seconds=self.registry.settings.consumption_sync_interval_seconds,
            price_cu_hour_usd=price,
        )
        if not stop_armed:
            return capped(dict.fromkeys(projects, UNLIMITED), outcome.compute_cap_seconds)
        return capped(
            compute_quotas(
                project_ids=projects,
                compute_seconds=self.registry.compute_seconds,
                limit_cents=outcome.limit_cents,
                total_cost_cents=outcome.total_cost_cents,
                price_cu_hour_usd=price,
            ),
            outcome.compute_cap_seconds,
        )

    async def _write_budget(
        self,
        key: BudgetKey,
        record: BudgetRecord,
        outcome: BudgetOutcome,
        decided: bool | None,
        period_start: datetime.datetime,
        *,
        kube: StatusPatcher,
        store: CostStore,
        post_event: EventPoster,
    ) -> None:
        """The user's row, then the budget's status; an Event when the budget's state changed."""
        registry, now = self.registry, self.registry.clock()
        total = outcome.total_cost_cents
        if not outcome.costs_complete:  # a lower bound: the last recorded total may be higher
            total = max(total, registry.restored_totals.get(outcome.user_id, 0))
        conditions = budget_conditions(
            registry.conditions.get(key, []),
            outcome,
            decided=decided,
            total=total,
            synced=bool(registry.last_sync),
            now=now,
            generation=record.generation,
        )
        registry.conditions[key] = conditions
        wire = enforced(
            outcome,
            decided=decided,
            total=total,
            conditions=conditions,
            period_start=period_start,
            last_sync=registry.last_sync,
            quotas=registry.quotas,
            generation=record.generation,
        )
        # The metadata DB first: the row is what a restarted operator reads before anything
        # may enable an endpoint, so it must never lag behind a switch (a kill between the two
        # writes leaves the row ahead of the status, never behind it).
        await self._write_row(store, outcome.user_id, total, decided, period_start, now)
        written = await write_if_changed(kube, *key, wire, held=registry.held.get(key))
        if written is not None:
            registry.held[key] = written
        state = (outcome.tier, decided)
        previous, registry.states[key] = registry.states.get(key), state
        limit = limit_text(outcome.limit_cents)
        post_state_events(
            post_event,
            *key,
            previous=previous,
            state=state,
            total=total,
            limit=limit,
            found=outcome.tier_found,
        )

    async def _write_row(
        self,
        store: CostStore,
        user_id: str,
        total: int,
        decided: bool | None,
        period_start: datetime.datetime,
        now: datetime.datetime,
    ) -> None:
        """The user's ``user_db_budget`` row, when there is a decision and it changed."""
        registry = self.registry
        row = (total, decided, period_start, registry.last_sync)
        if decided is None or registry.rows.get(user_id) == row:
            return
        try:
            await store.update_budget_usage(
                user_id=user_id,
                total_cost_cents=total,
                budget_exceeded=decided,
                period_start=period_start,
                synced_at=registry.last_sync or now,
            )
            registry.rows[user_id] = row
        except StoreError as exc:
            _log.warning("could not record the budget of user %s in the metadata DB: %s", user_id, exc)

    async def _switch(
        self,
        action: SuspendAction | ResumeAction,
        *,
        kube: StatusPatcher,
        neon: EndpointSwitch,
        post_event: EventPoster,
    ) -> None:
        """Ask the database path to act (``actuator``; by default ``apply_budget`` directly)."""
        try:
            if self.actuator is not None:
                suspended = await self.actuator(action)
            else:
                settled = await apply_budget(
                    action,
                    neon=neon,
                    decision=lambda: self.registry.is_suspended(action.user_id),
                    write_status=_database_status_writer(kube),
                    post_event=post_event,
                    now=self.registry.clock(),
                )
                suspended = settled.suspended if settled.endpoint is not None else None
        except NeonError as exc:
            _log.warning("could not switch %s/%s: %s", action.namespace, action.name, exc)
            return
        self.registry.record_switch((action.kind, action.namespace, action.name), suspended)


def _decide(
    outcomes: Mapping[str, BudgetOutcome], known: Mapping[str, bool], *, synced: bool
) -> dict[str, bool]:
    """The word on each planned user: over the limit, suspended; within it, allowed once every
    cost is known (or there is no limit); otherwise the word in force, if any, holds."""
    decided: dict[str, bool] = {}
    for user_id, outcome in outcomes.items():
        if not outcome.tier_found:
            if user_id in known:
                decided[user_id] = known[user_id]  # a typo in the tier suspends and resumes nothing
        elif outcome.exceeded:
            decided[user_id] = True
        elif (outcome.costs_complete and synced) or outcome.limit_cents is None:
            decided[user_id] = False
        elif user_id in known:
            decided[user_id] = known[user_id]  # held until every cost is known
    return decided


def _database_status_writer(kube: StatusPatcher) -> StatusWrite:
    """Merge-patches a database's status with the fields set (``DatabaseStatus.to_patch``)."""

    async def write(kind: str, namespace: str, name: str, status: DatabaseStatus) -> None:
        await kube.patch_status(
            plural=kind_named(kind).plural, namespace=namespace, name=name, status=status.to_patch()
        )

    return write


def _stop_armed(quotas: Mapping[str, int], projects: Iterable[str]) -> bool:
    """Whether any of these projects has a compute quota in force (not unlimited)."""
    return any(quotas.get(p, UNLIMITED) != UNLIMITED for p in projects)


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _quota_tolerance(limit_cents: int | None, price: Decimal, projects: int) -> int:
    """A quota change smaller than this is not worth a Neon call: 0.5% of the limit, split."""
    if limit_cents is None or price <= 0:
        return 0
    limit_seconds = Decimal(limit_cents) * Decimal(3600) / (price * 100)
    return int(limit_seconds * Decimal("0.005") / max(projects, 1))


@contextlib.asynccontextmanager
async def _each_on_its_own(what: str) -> AsyncIterator[None]:
    try:
        yield
    except Exception as exc:
        _log.warning("budget enforcement: %s failed (%s): %s", what, type(exc).__name__, exc)
