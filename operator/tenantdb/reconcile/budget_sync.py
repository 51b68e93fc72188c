"""One consumption sync and budget enforcement for the whole operator.

The handlers keep ``BudgetSync``'s registry of budgets and databases current (every
resource passes through a resume, create or update handler, so the registry is complete
after start-up, whatever order the resources were created in). One loop then:

1. asks Neon for the consumption of every known project, ≤100 ids per call
   (``sync_consumption``); a failed sync changes nothing;
2. merges the costs (a partial answer never zeroes a cost; a new period resets them);
3. writes costs to the metadata DB, the database resources' and the budgets' status;
4. plans enforcement (``plan_enforcement``), writes each budget's status, and asks the
   database path to switch endpoints (``database_budget.apply_budget``: the endpoint, the
   database's status and Event, under the resource's and the project's locks);
5. sets each project's compute quota, the hard stop between syncs (``billing.quotas``).

A tier change re-runs steps 4-5 at once with the costs already known, so an upgrade resumes
the user's databases without waiting for the next sync: for that user alone (``enforce_users``),
the requests of handlers running together sharing one pass, so a start-up with B budgets makes a
few passes of B users, not B passes of every user. A budget's status (and row) is written only
when its content changes: what the object holds is seeded from its status (``seed_status``),
then kept as written, so a restart with nothing changed writes nothing.

The decision about a user is tri-state (``is_suspended``): suspended, allowed, or not known.
It is durable: ``restore`` reads what the last process decided (``user_db_budget``) before
anything may enable an endpoint, and a user whose costs are not all known keeps the decision
in force (held) rather than being resumed on a partial total.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

from tenantdb.api import DATABASE_BUDGET, GLOBAL_DATABASE, WORKSPACE_DATABASE, Condition, DatabaseStatus
from tenantdb.api.budget import BudgetDatabase, DatabaseBudgetStatus
from tenantdb.billing import Prices, TierPolicy
from tenantdb.billing.period import billing_period
from tenantdb.billing.quotas import NEON_MAX_CU, UNLIMITED, armed, compute_quotas, needs_write
from tenantdb.config import Settings
from tenantdb.metrics import Metrics
from tenantdb.neon.errors import NeonError
from tenantdb.reconcile import conditions as cond
from tenantdb.reconcile.consumption import ConsumptionSource, merge_costs, sync_consumption
from tenantdb.reconcile.database.status import period_cost
from tenantdb.reconcile.database_budget import apply_budget
from tenantdb.reconcile.endpoint_budget import EndpointPort
from tenantdb.reconcile.enforcement import (
    BudgetOutcome,
    BudgetRecord,
    DatabaseRecord,
    ResumeAction,
    SuspendAction,
    plan_enforcement,
)
from tenantdb.reconcile.reasons import Reason
from tenantdb.store.errors import StoreError

__all__ = ["BudgetSync"]

_log = logging.getLogger(__name__)
_PLURALS = {k.kind: k.plural for k in (GLOBAL_DATABASE, WORKSPACE_DATABASE, DATABASE_BUDGET)}


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

# The BudgetExceeded condition's reason for the budget's word: not known yet, over, within.
_EXCEEDED_REASONS = {None: Reason.NOT_SYNCED_YET, True: Reason.OVER_LIMIT, False: Reason.WITHIN_LIMIT}


@dataclasses.dataclass
class BudgetSync:
    settings: Settings
    metrics: Metrics
    clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC)
    budgets: dict[tuple[str, str], BudgetRecord] = dataclasses.field(default_factory=dict)
    databases: dict[tuple[str, str, str], DatabaseRecord] = dataclasses.field(default_factory=dict)
    costs: dict[str, int] = dataclasses.field(default_factory=dict)
    compute_seconds: dict[str, int] = dataclasses.field(default_factory=dict)
    period_start: datetime.datetime | None = None
    last_sync: datetime.datetime | None = None
    # The word on each user: True suspended, False allowed; absent: not known yet.
    decisions: dict[str, bool] = dataclasses.field(default_factory=dict)
    # Totals the last process recorded (a lower bound until this one has synced).
    restored_totals: dict[str, int] = dataclasses.field(default_factory=dict)
    # The last sync any process recorded (``user_db_budget.last_sync``): when the next is due.
    restored_last_sync: datetime.datetime | None = None
    # Quotas this process has set, by project (a cache: lost on restart, then written again).
    quotas: dict[str, int] = dataclasses.field(default_factory=dict)
    # The database path, asked to act on a suspend or resume (returns the endpoint's state;
    # None: nothing to act on). None: ``apply_budget`` without the resource's lock (tests).
    actuator: Callable[[SuspendAction | ResumeAction], Awaitable[bool | None]] | None = None
    # How long a handler's request for enforcement waits for others to join its pass.
    coalesce_seconds: float = 0.05
    _lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    _conditions: dict[tuple[str, str], list[Condition]] = dataclasses.field(default_factory=dict)
    _states: dict[tuple[str, str], tuple[str, bool | None]] = dataclasses.field(default_factory=dict)
    # The registry by user, so enforcing a few users costs in proportion to them, not to all.
    _budget_keys: dict[str, set[tuple[str, str]]] = dataclasses.field(default_factory=dict)
    _database_keys: dict[str, set[tuple[str, str, str]]] = dataclasses.field(default_factory=dict)
    # What each budget's status holds, as far as this process knows (seeded from the object,
    # then what it wrote), and each user's row as last written: unchanged content is not sent.
    _held: dict[tuple[str, str], dict[str, Any]] = dataclasses.field(default_factory=dict)
    _rows: dict[str, tuple[object, ...]] = dataclasses.field(default_factory=dict)
    # Each limited user's spend and spend / limit as last planned (the metrics cover everyone).
    _spend: dict[str, tuple[int, float | None]] = dataclasses.field(default_factory=dict)
    # Users whose enforcement handlers asked for and no pass has started on; the pass that will.
    _pending: set[str] = dataclasses.field(default_factory=set)
    _next_pass: asyncio.Future[None] | None = None
    _drainer: asyncio.Task[None] | None = None

    # -- registry (kept current by the handlers) -------------------------------------------------
    def put_budget(self, namespace: str, name: str, record: BudgetRecord) -> BudgetRecord | None:
        """Register a budget; returns what it replaces (its user may have been another)."""
        key = (namespace, name)
        previous = self.budgets.get(key)
        if previous is not None and previous.user_id != record.user_id:
            _discard(self._budget_keys, previous.user_id, key)
        self.budgets[key] = record
        self._budget_keys.setdefault(record.user_id, set()).add(key)
        return previous

    def drop_budget(self, namespace: str, name: str) -> BudgetRecord | None:
        key = (namespace, name)
        previous = self.budgets.pop(key, None)
        if previous is not None:
            _discard(self._budget_keys, previous.user_id, key)
        self._held.pop(key, None)
        self._conditions.pop(key, None)
        return previous

    def put_database(self, record: DatabaseRecord) -> None:
        key = (record.kind, record.namespace, record.name)
        previous = self.databases.get(key)
        if previous is not None and previous.user_id != record.user_id:
            _discard(self._database_keys, previous.user_id, key)
        self.databases[key] = record
        self._database_keys.setdefault(record.user_id, set()).add(key)

    def drop_database(self, kind: str, namespace: str, name: str) -> None:
        key = (kind, namespace, name)
        previous = self.databases.pop(key, None)
        if previous is not None:
            _discard(self._database_keys, previous.user_id, key)

    def _registered(self, users: Collection[str]) -> tuple[list[BudgetRecord], list[DatabaseRecord]]:
        budgets = [self.budgets[key] for user in users for key in self._budget_keys.get(user, ())]
        databases = [self.databases[key] for user in users for key in self._database_keys.get(user, ())]
        return budgets, databases

    def is_suspended(self, user_id: str) -> bool | None:
        """Whether a database of this user must be (or start) suspended; ``None``: not known yet."""
        return self.decisions.get(user_id)

    @property
    def exceeded_users(self) -> set[str]:
        return {user for user, suspended in self.decisions.items() if suspended}

    @property
    def policy(self) -> TierPolicy:
        return TierPolicy.from_settings(self.settings)

    def forget_decisions(self) -> None:
        """Every user back to "not known" (this replica is paused: another one decides)."""
        self.decisions.clear()
        self.restored_totals.clear()
        self.restored_last_sync = None
        self._count_over_limit()

    def seed_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """What the budget's status holds (its handler's view of the object), unless this process
        knows better (it wrote since): the next write sends only a change, and a condition keeps
        its transition time across a restart."""
        key = (namespace, name)
        if key in self._held:
            return
        decoded = DatabaseBudgetStatus.decode(status)
        self._held[key] = decoded.to_wire()
        self._conditions.setdefault(key, decoded.conditions)

    def forget_written(self) -> None:
        """Another replica may have written budgets and rows: the next writes are sent whole."""
        self._held.clear()
        self._rows.clear()

    def status_current(self, record: BudgetRecord, status: Mapping[str, Any]) -> bool:
        """Whether a budget's status already records this generation, tier and limit in force:
        its resume then needs no enforcement of its own (the next sync plans every user)."""
        decoded = DatabaseBudgetStatus.decode(status)
        return (
            decoded.observed_generation is not None
            and decoded.observed_generation == record.generation
            and decoded.tier == record.tier
            and decoded.limit_cents == self.policy.limit_cents(record.budget)
        )

    def seed_state(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """The budget's state as its status last recorded it: a restart posts no Event for a
        state that did not change."""
        tier, exceeded = status.get("tier"), status.get("exceeded")
        if isinstance(tier, str):
            self._states.setdefault(
                (namespace, name), (tier, exceeded if isinstance(exceeded, bool) else None)
            )

    def forget_quotas(self) -> None:
        """The quotas this process wrote may be overwritten by another replica from now on."""
        self.quotas.clear()

    def seed_quotas(self, databases: Iterable[Mapping[str, Any]]) -> None:
        """Quotas in force as a budget's status records them (``status.databases``): a restart
        then writes only the quotas that change, not one per project."""
        for entry in databases:
            project_id, seconds = entry.get("projectId"), entry.get("computeQuotaSeconds")
            if isinstance(project_id, str) and isinstance(seconds, int):
                self.quotas.setdefault(project_id, seconds)

    async def restore(self, store: DecisionStore) -> None:
        """Take up what the last process decided, before any handler may enable an endpoint.

        A row of an earlier billing period, or never synced, decides nothing: unknown."""
        period = billing_period(self.clock(), anchor_day=self.settings.billing_period_anchor_day)
        for row in await store.list_budgets():
            if row.last_sync is None or row.current_period_start < period.start:
                continue
            self.decisions.setdefault(row.user_id, row.budget_exceeded)
            self.restored_totals[row.user_id] = row.total_cost_cents
            if self.restored_last_sync is None or row.last_sync > self.restored_last_sync:
                self.restored_last_sync = row.last_sync
        self._count_over_limit()

    def first_sync_wait(self) -> float:
        """Seconds until the first sync of this process is due: a restart does not sync again
        what the last process synced a moment ago (at 30,000 projects a sync is 300 calls of
        the consumption endpoint's 50 a minute). The quotas that last sync set hold meanwhile."""
        if self.last_sync is not None or self.restored_last_sync is None:
            return 0.0
        last = self.restored_last_sync
        last = last if last.tzinfo is not None else last.replace(tzinfo=datetime.UTC)
        due = last + datetime.timedelta(seconds=self.settings.consumption_sync_interval_seconds)
        return max(0.0, (due - self.clock()).total_seconds())

    # -- the loop -------------------------------------------------------------------------------
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
            await asyncio.sleep(self.settings.consumption_sync_interval_seconds)

    async def sync_round(self, **kwargs: Any) -> None:
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
            rollover = self.period_start is not None and snapshot.period_start > self.period_start
            self.costs = merge_costs(self.costs, snapshot, previous_period_start=self.period_start)
            if rollover or self.period_start is None:
                self.compute_seconds = {}
            for project_id, seconds in snapshot.compute_seconds.items():
                self.compute_seconds[project_id] = max(seconds, self.compute_seconds.get(project_id, 0))
            self.period_start = max(snapshot.period_start, self.period_start or snapshot.period_start)
            self.last_sync = snapshot.synced_at
        if self.costs:
            await store.set_database_costs(self.costs, synced_at=snapshot.synced_at)
        for record in list(self.databases.values()):
            if record.project_id and record.project_id in self.costs:
                async with _each_on_its_own(f"writing the cost of {record.namespace}/{record.name}"):
                    await kube.patch_status(
                        plural=_PLURALS[record.kind],
                        namespace=record.namespace,
                        name=record.name,
                        status=period_cost(
                            self.costs[record.project_id], synced_at=snapshot.synced_at
                        ).to_patch(),
                    )
        await self.enforce(store=store, kube=kube, neon=neon, post_event=post_event, quotas=quotas)

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
        async with self._lock:
            if users is None:
                budgets, databases = list(self.budgets.values()), list(self.databases.values())
            else:
                budgets, databases = self._registered(users)
            plan = plan_enforcement(
                budgets=budgets,
                databases=databases,
                costs_cents=self.costs,
                policy=self.policy,
            )
            decided: dict[str, bool] = {}
            # Before this process has synced, "every cost known" means nothing: the databases
            # may not even be registered yet (a budget's resume handler can run first).
            synced = self.last_sync is not None
            for user_id, outcome in plan.outcomes.items():
                if outcome.exceeded:
                    decided[user_id] = True
                elif (outcome.costs_complete and synced) or outcome.limit_cents is None:
                    decided[user_id] = False
                elif user_id in self.decisions:
                    decided[user_id] = self.decisions[user_id]  # held until every cost is known
            self._observe_spend(plan.outcomes.values(), planned=users)
            budget_keys = (
                list(self.budgets)
                if users is None
                else [key for user in users for key in self._budget_keys.get(user, ())]
            )
        now = self.clock()
        period_start = (
            self.period_start or billing_period(now, anchor_day=self.settings.billing_period_anchor_day).start
        )
        # The hard stop first (the budget's status then shows the quotas in force). Only after a
        # sync of this process: a quota from unknown costs could be far too generous.
        if quotas is not None and self.last_sync is not None:
            await self._set_quotas(plan.outcomes.values(), quotas)
        # One user's failure (the API server refusing a status patch, say) must not hold back
        # every other user's suspend or resume: each step stands alone, and the next round
        # plans again from what is known then.
        # Durable first: the rows (then the statuses) record a decision before any reconcile can
        # read it (``is_suspended``) and act on it, so a kill at any moment leaves no disabled
        # flag that the metadata DB does not explain.
        for namespace, name in budget_keys:
            record = self.budgets.get((namespace, name))
            found = plan.outcomes.get(record.user_id) if record is not None else None
            if record is not None and found is not None:
                async with _each_on_its_own(f"writing the status of budget {namespace}/{name}"):
                    await self._write_budget(
                        kube,
                        store,
                        namespace,
                        name,
                        record,
                        found,
                        decided.get(record.user_id),
                        period_start,
                        post_event,
                    )
        self.decisions.update(decided)
        self._count_over_limit()
        actions: list[SuspendAction | ResumeAction] = [*plan.suspend, *plan.resume]
        for action in actions:
            async with _each_on_its_own(f"switching {action.namespace}/{action.name}"):
                await self._switch(action, kube=kube, neon=neon, post_event=post_event)

    def _count_over_limit(self) -> None:
        self.metrics.budgets_over_limit.set(len(self.exceeded_users))

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
        self.metrics.set_spend(
            total_cents=sum(total for total, _ in self._spend.values()),
            ratios=[ratio for _, ratio in self._spend.values() if ratio is not None],
        )

    async def _set_quotas(self, outcomes: Iterable[BudgetOutcome], quotas: QuotaSetter) -> None:
        price = Prices.from_settings(self.settings).compute_cu_hour_usd
        for outcome in outcomes:
            entries = [d for d in outcome.databases if d.get("projectId")]
            if not entries or not (outcome.costs_complete or outcome.limit_cents is None):
                continue
            projects = [str(d["projectId"]) for d in entries]
            stop_armed = armed(
                limit_cents=outcome.limit_cents,
                total_cost_cents=outcome.total_cost_cents,
                max_cu=[float(d.get("maxCu") or NEON_MAX_CU) for d in entries],
                sync_interval_seconds=self.settings.consumption_sync_interval_seconds,
                price_cu_hour_usd=price,
            )
            wanted = (
                compute_quotas(
                    project_ids=projects,
                    compute_seconds=self.compute_seconds,
                    limit_cents=outcome.limit_cents,
                    total_cost_cents=outcome.total_cost_cents,
                    price_cu_hour_usd=price,
                )
                if stop_armed
                else dict.fromkeys(projects, UNLIMITED)
            )
            tolerance = _quota_tolerance(outcome.limit_cents, price, len(projects))
            for project_id, seconds in wanted.items():
                if not needs_write(self.quotas.get(project_id), seconds, tolerance=tolerance):
                    continue
                async with _each_on_its_own(f"setting the compute quota of project {project_id}"):
                    await quotas.set_compute_quota(project_id, seconds)
                    self.quotas[project_id] = seconds
                    self.metrics.quota_writes.inc()

    async def _write_budget(
        self,
        kube: StatusPatcher,
        store: CostStore,
        namespace: str,
        name: str,
        record: BudgetRecord,
        outcome: BudgetOutcome,
        decided: bool | None,
        period_start: datetime.datetime,
        post_event: EventPoster,
    ) -> None:
        now = self.clock()
        total = outcome.total_cost_cents
        if not outcome.costs_complete:  # a lower bound: the last recorded total may be higher
            total = max(total, self.restored_totals.get(outcome.user_id, 0))
        limit_text = "unlimited" if outcome.limit_cents is None else f"{outcome.limit_cents} cents"
        key = (namespace, name)
        conditions = cond.set_condition(
            self._conditions.get(key, []),
            kind=cond.READY,
            status=True,
            reason=Reason.SYNCED if self.last_sync else Reason.CONFIGURED,
            message=f"Tier {outcome.tier.value}: limit {limit_text}",
            now=now,
            generation=record.generation,
        )
        conditions = cond.set_condition(
            conditions,
            kind=cond.BUDGET_EXCEEDED,
            status=decided,
            reason=_EXCEEDED_REASONS[decided],
            message=f"Spent {total} of {limit_text} this period"
            + ("" if outcome.costs_complete else " (some costs not measured yet)"),
            now=now,
            generation=record.generation,
        )
        self._conditions[key] = conditions
        status = DatabaseBudgetStatus(
            tier=outcome.tier,
            limit_cents=outcome.limit_cents,
            total_cost_cents=total,
            exceeded=decided,
            period_start=cond.rfc3339(period_start),
            last_sync_time=cond.rfc3339(self.last_sync) if self.last_sync is not None else None,
            databases=[
                BudgetDatabase(
                    kind=d["kind"],
                    name=d["name"],
                    project_id=d.get("projectId"),
                    cost_cents=d.get("costCents"),
                    compute_quota_seconds=self.quotas.get(d.get("projectId") or ""),
                )
                for d in outcome.databases
            ],
            observed_generation=record.generation,
            conditions=conditions,
        )
        # The metadata DB first: the row is what a restarted operator reads before anything
        # may enable an endpoint, so it must never lag behind a switch (a kill between the two
        # writes leaves the row ahead of the status, never behind it).
        row = (total, decided, period_start, self.last_sync)
        if decided is not None and self._rows.get(outcome.user_id) != row:
            try:
                await store.update_budget_usage(
                    user_id=outcome.user_id,
                    total_cost_cents=total,
                    budget_exceeded=decided,
                    period_start=period_start,
                    synced_at=self.last_sync or now,
                )
                self._rows[outcome.user_id] = row
            except StoreError as exc:
                _log.warning(
                    "could not record the budget of user %s in the metadata DB: %s", outcome.user_id, exc
                )
        wire: dict[str, Any] = status.to_wire()
        if outcome.limit_cents is None:
            wire["limitCents"] = None  # unlimited: a merge patch removes the limit of before
        held = self._held.get(key)
        # A merge patch of the same values changes nothing: not sent (a restart, a re-plan).
        if held is None or any(held.get(field) != value for field, value in wire.items()):
            await kube.patch_status(
                plural=DATABASE_BUDGET.plural, namespace=namespace, name=name, status=wire
            )
            merged = {**(held or {}), **wire}
            self._held[key] = {field: value for field, value in merged.items() if value is not None}
        self._post_state_events(key, outcome, decided, total, limit_text, post_event)

    def _post_state_events(
        self,
        key: tuple[str, str],
        outcome: BudgetOutcome,
        decided: bool | None,
        total: int,
        limit_text: str,
        post_event: EventPoster,
    ) -> None:
        """One Event on the DatabaseBudget per change of its state (not per write)."""
        state = (outcome.tier.value, decided)
        previous = self._states.get(key)
        self._states[key] = state
        namespace, name = key
        if previous is not None and previous[0] != state[0]:
            post_event(
                DATABASE_BUDGET.kind, namespace, name, "Normal", Reason.TIER_CHANGED,
                f"Tier {previous[0]} -> {state[0]}: limit {limit_text}",
            )  # fmt: skip
        if decided is True and (previous is None or previous[1] is not True):
            post_event(
                DATABASE_BUDGET.kind, namespace, name, "Warning", Reason.BUDGET_EXCEEDED,
                f"Spent {total} of {limit_text}: the user's databases are suspended",
            )  # fmt: skip
        elif decided is False and previous is not None and previous[1] is True:
            post_event(
                DATABASE_BUDGET.kind, namespace, name, "Normal", Reason.BUDGET_RESUMED,
                f"Spent {total} of {limit_text}: the user's databases are resumed",
            )  # fmt: skip

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

                async def write(kind: str, namespace: str, name: str, status: DatabaseStatus) -> None:
                    await kube.patch_status(
                        plural=_PLURALS[kind], namespace=namespace, name=name, status=status.to_patch()
                    )

                settled = await apply_budget(
                    action,
                    neon=neon,
                    decision=lambda: self.is_suspended(action.user_id),
                    write_status=write,
                    post_event=post_event,
                    now=self.clock(),
                )
                suspended = settled.suspended if settled.endpoint is not None else None
        except NeonError as exc:
            _log.warning("could not switch %s/%s: %s", action.namespace, action.name, exc)
            return
        key = (action.kind, action.namespace, action.name)
        if suspended is not None and key in self.databases:
            self.databases[key] = dataclasses.replace(self.databases[key], suspended_for_budget=suspended)


def _discard(index: dict[str, set[Any]], user_id: str, key: object) -> None:
    keys = index.get(user_id)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[user_id]


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
