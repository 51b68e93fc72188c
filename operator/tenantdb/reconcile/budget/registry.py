"""What the operator knows about budgets: the registry the handlers keep current, and what the
budget loop (``budget.loop``) has measured, decided and written.

- The budgets and databases, registered by the handlers (every resource passes through a
  resume, create or update handler, so the registry is complete after start-up, whatever order
  the resources were created in), indexed by user.
- The costs of the consumption syncs, merged (``record_consumption``).
- The decision about each user, tri-state (``is_suspended``): suspended, allowed, or not known.
  It is durable: ``restore`` reads what the last process decided (``user_db_budget``) before
  anything may enable an endpoint.
- What each budget's status and row hold as last written, and the quotas in force: seeded from
  the objects (``seed_*``), then kept as written, so a restart with nothing changed writes
  nothing.

Nothing here calls outside the process but ``restore`` (a read of the metadata DB).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from tenantdb.api import Condition
from tenantdb.api.budget import DatabaseBudgetStatus
from tenantdb.billing import TierDefinition, TierPolicy
from tenantdb.billing.period import billing_period
from tenantdb.config import Settings
from tenantdb.metrics import Metrics
from tenantdb.reconcile.budget.ports import DecisionStore
from tenantdb.reconcile.consumption import ConsumptionSnapshot, merge_costs
from tenantdb.reconcile.enforcement import BudgetRecord, DatabaseRecord, strictest_by_user
from tenantdb.reconcile.tiers import TierCatalog

__all__ = ["BudgetKey", "BudgetRegistry", "DatabaseKey"]

BudgetKey = tuple[str, str]  # namespace, name
DatabaseKey = tuple[str, str, str]  # kind, namespace, name


@dataclasses.dataclass
class BudgetRegistry:
    settings: Settings
    metrics: Metrics
    clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC)
    # The DatabaseTier objects (the handlers and the start-up list keep it current).
    tiers: TierCatalog = dataclasses.field(init=False)
    budgets: dict[BudgetKey, BudgetRecord] = dataclasses.field(default_factory=dict)
    databases: dict[DatabaseKey, DatabaseRecord] = dataclasses.field(default_factory=dict)
    # What the consumption syncs measured (``record_consumption``).
    costs: dict[str, int] = dataclasses.field(default_factory=dict)
    compute_seconds: dict[str, int] = dataclasses.field(default_factory=dict)
    period_start: datetime.datetime | None = None
    last_sync: datetime.datetime | None = None
    # The word on each user: True suspended, False allowed; absent: not known yet.
    decisions: dict[str, bool] = dataclasses.field(default_factory=dict)
    # Totals the last process recorded (a lower bound until this one has synced).
    restored_totals: dict[str, int] = dataclasses.field(default_factory=dict)
    # Each user's tier as the last process recorded it: until the user's budget registers (a
    # start-up), a database's compute follows it rather than the default tier's.
    restored_tiers: dict[str, str] = dataclasses.field(default_factory=dict)
    # The last sync any process recorded (``user_db_budget.last_sync``): when the next is due.
    restored_last_sync: datetime.datetime | None = None
    # Quotas this process has set, by project (a cache: lost on restart, then written again).
    quotas: dict[str, int] = dataclasses.field(default_factory=dict)
    # What each budget's status holds, as far as this process knows (seeded from the object,
    # then what it wrote), and each user's row as last written: unchanged content is not sent.
    held: dict[BudgetKey, dict[str, Any]] = dataclasses.field(default_factory=dict)
    rows: dict[str, tuple[object, ...]] = dataclasses.field(default_factory=dict)
    # Each budget's conditions as last written (a transition time survives a restart), and its
    # state (tier, exceeded) as last told in an Event.
    conditions: dict[BudgetKey, list[Condition]] = dataclasses.field(default_factory=dict)
    states: dict[BudgetKey, tuple[str, bool | None]] = dataclasses.field(default_factory=dict)
    # The registry by user, so enforcing a few users costs in proportion to them, not to all.
    _budget_keys: dict[str, set[BudgetKey]] = dataclasses.field(default_factory=dict)
    _database_keys: dict[str, set[DatabaseKey]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tiers = TierCatalog(self.settings)

    # -- budgets and databases (kept current by the handlers) ------------------------------------
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
        self.held.pop(key, None)
        self.conditions.pop(key, None)
        return previous

    def put_database(self, record: DatabaseRecord) -> DatabaseRecord | None:
        """Register a database under the user it counts against; returns what it replaces (its
        user may have been another: the whole of its spend moves, counted for one user only)."""
        key = (record.kind, record.namespace, record.name)
        previous = self.databases.get(key)
        if previous is not None and previous.user_id != record.user_id:
            _discard(self._database_keys, previous.user_id, key)
        self.databases[key] = record
        self._database_keys.setdefault(record.user_id, set()).add(key)
        return previous

    def drop_database(self, kind: str, namespace: str, name: str) -> None:
        key = (kind, namespace, name)
        previous = self.databases.pop(key, None)
        if previous is not None:
            _discard(self._database_keys, previous.user_id, key)

    def registered(self, users: Collection[str] | None) -> tuple[list[BudgetRecord], list[DatabaseRecord]]:
        """These users' budgets and databases (found by the index); ``None``: everyone's."""
        if users is None:
            return list(self.budgets.values()), list(self.databases.values())
        budgets = [self.budgets[key] for user in users for key in self._budget_keys.get(user, ())]
        databases = [self.databases[key] for user in users for key in self._database_keys.get(user, ())]
        return budgets, databases

    def budget_keys(self, users: Collection[str] | None) -> list[BudgetKey]:
        """These users' budgets by key; ``None``: every budget."""
        if users is None:
            return list(self.budgets)
        return [key for user in users for key in self._budget_keys.get(user, ())]

    def record_switch(self, key: DatabaseKey, suspended: bool | None) -> None:
        """The endpoint's state after the database path acted (``None``: nothing acted on)."""
        if suspended is not None and key in self.databases:
            self.databases[key] = dataclasses.replace(self.databases[key], suspended_for_budget=suspended)

    # -- costs -----------------------------------------------------------------------------------
    def record_consumption(self, snapshot: ConsumptionSnapshot) -> None:
        """Merge a sync's costs: a partial answer never zeroes a cost; a new period resets them."""
        rollover = self.period_start is not None and snapshot.period_start > self.period_start
        self.costs = merge_costs(self.costs, snapshot, previous_period_start=self.period_start)
        if rollover or self.period_start is None:
            self.compute_seconds = {}
        for project_id, seconds in snapshot.compute_seconds.items():
            self.compute_seconds[project_id] = max(seconds, self.compute_seconds.get(project_id, 0))
        self.period_start = max(snapshot.period_start, self.period_start or snapshot.period_start)
        self.last_sync = snapshot.synced_at

    # -- the decisions ---------------------------------------------------------------------------
    def is_suspended(self, user_id: str) -> bool | None:
        """Whether a database of this user must be (or start) suspended; ``None``: not known yet."""
        return self.decisions.get(user_id)

    @property
    def exceeded_users(self) -> set[str]:
        return {user for user, suspended in self.decisions.items() if suspended}

    @property
    def policy(self) -> TierPolicy:
        return self.tiers.policy

    def tier_name(self, user_id: str) -> str:
        """The user's tier: their budget's (the strictest, should two name them), else the one
        the last process recorded, else the default tier."""
        budgets = [self.budgets[key] for key in self._budget_keys.get(user_id, ())]
        if budgets:
            return strictest_by_user(budgets, self.policy)[user_id].tier
        return self.restored_tiers.get(user_id, self.policy.default_tier)

    def user_tier(self, user_id: str) -> TierDefinition | None:
        """The user's tier; ``None`` when it does not exist (the user's settings then hold)."""
        return self.policy.tier(self.tier_name(user_id))

    def known_users(self) -> set[str]:
        """Every user with a budget or a database."""
        return set(self._budget_keys) | set(self._database_keys)

    def users_on(self, tier: str) -> set[str]:
        """Every user known (by a budget or a database) whose tier is ``tier``."""
        return {user for user in self.known_users() if self.tier_name(user) == tier}

    def databases_of(self, users: Collection[str]) -> list[DatabaseRecord]:
        return [self.databases[key] for user in users for key in self._database_keys.get(user, ())]

    def record_decisions(self, decided: Mapping[str, bool]) -> None:
        self.decisions.update(decided)
        self._count_over_limit()

    def forget_decisions(self) -> None:
        """Every user back to "not known" (this replica is paused: another one decides)."""
        self.decisions.clear()
        self.restored_totals.clear()
        self.restored_last_sync = None
        self._count_over_limit()

    async def restore(self, store: DecisionStore) -> None:
        """Take up what the last process decided, before any handler may enable an endpoint.

        A row of an earlier billing period, or never synced, decides nothing: unknown."""
        period = billing_period(self.clock(), anchor_day=self.settings.billing_period_anchor_day)
        for row in await store.list_budgets():
            if row.tier:
                self.restored_tiers.setdefault(row.user_id, row.tier)
            if row.last_sync is None or row.current_period_start < period.start:
                continue
            self.decisions.setdefault(row.user_id, row.budget_exceeded)
            self.restored_totals[row.user_id] = row.total_cost_cents
            if self.restored_last_sync is None or row.last_sync > self.restored_last_sync:
                self.restored_last_sync = row.last_sync
        if self.restored_last_sync is not None and self.last_sync is None:
            self.metrics.consumption_last_sync.set(self.restored_last_sync.timestamp())
        self._count_over_limit()

    def _count_over_limit(self) -> None:
        self.metrics.budgets_over_limit.set(len(self.exceeded_users))

    # -- what the objects hold (seeded by the handlers) ------------------------------------------
    def seed_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """What the budget's status holds (its handler's view of the object), unless this process
        knows better (it wrote since): the next write sends only a change, and a condition keeps
        its transition time across a restart."""
        key = (namespace, name)
        if key in self.held:
            return
        decoded = DatabaseBudgetStatus.decode(status)
        self.held[key] = decoded.to_wire()
        self.conditions.setdefault(key, decoded.conditions)

    def forget_written(self) -> None:
        """Another replica may have written budgets and rows: the next writes are sent whole."""
        self.held.clear()
        self.rows.clear()

    def status_current(self, record: BudgetRecord, status: Mapping[str, Any]) -> bool:
        """Whether a budget's status already records this generation, tier and limit in force:
        its resume then needs no enforcement of its own (the next sync plans every user)."""
        decoded = DatabaseBudgetStatus.decode(status)
        if not self.policy.knows(record.budget):
            return False  # its status must say so: TierNotFound
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
            self.states.setdefault(
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


def _discard(index: dict[str, set[Any]], user_id: str, key: object) -> None:
    keys = index.get(user_id)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[user_id]
