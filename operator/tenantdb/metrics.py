"""Prometheus metrics, defined once. Labels never carry a secret or an unbounded value.

Every module records into a ``Metrics`` object passed to it explicitly (tests build their
own on a private registry, so numbers never leak between tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

__all__ = ["SPEND_RATIO_BUCKETS", "Metrics"]

SPEND_RATIO_BUCKETS = (0.25, 0.5, 0.75, 0.9, 0.95, 1.0, 1.05, 1.25, 2.0)
"""Bucket bounds of spend / limit: dense near 1.0, where alerts live."""


class _SpendRatios(Collector):
    """Users by spend / limit, now: a histogram of the latest plan, not an ever-growing count.

    One series per bucket, whatever the number of users (no per-user label)."""

    def __init__(self) -> None:
        self.ratios: Sequence[float] = ()

    def collect(self) -> Iterator[HistogramMetricFamily]:
        buckets = [
            (str(bound), float(sum(1 for r in self.ratios if r <= bound))) for bound in SPEND_RATIO_BUCKETS
        ]
        buckets.append(("+Inf", float(len(self.ratios))))
        yield HistogramMetricFamily(
            "tenantdb_budget_spend_ratio",
            "Users with a limit, by this period's spend / limit (latest enforcement round).",
            buckets=buckets,
            sum_value=float(sum(self.ratios)),
        )


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.reconciles = Counter(
            "tenantdb_reconciles_total", "Reconciles by kind and result.", ["kind", "result"], registry=r
        )
        self.time_to_ready = Histogram(
            "tenantdb_time_to_ready_seconds",
            "Seconds from a database resource's creation to Ready.",
            ["kind"],
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.neon_calls = Counter(
            "tenantdb_neon_api_calls_total",
            "Neon API calls by route and status.",
            ["route", "status"],
            registry=r,
        )
        self.neon_retries = Counter(
            "tenantdb_neon_api_retries_total",
            "Neon API retries by route and cause.",
            ["route", "cause"],
            registry=r,
        )
        self.limiter_wait = Histogram(
            "tenantdb_neon_rate_limiter_wait_seconds",
            "Time a Neon call waited for a rate-limit token.",
            buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.budgets_over_limit = Gauge(
            "tenantdb_budgets_over_limit",
            "Users suspended for their budget (the decision in force, restored after a restart).",
            registry=r,
        )
        self.spend_cents = Gauge(
            "tenantdb_spend_cents",
            "Spend of every user this billing period, in cents (latest enforcement round).",
            registry=r,
        )
        self.quota_writes = Counter(
            "tenantdb_compute_quota_writes_total",
            "Neon calls that set a project's compute quota (the hard stop between syncs).",
            registry=r,
        )
        self.quota_write_failures = Counter(
            "tenantdb_compute_quota_write_failures_total",
            "Compute quota writes Neon did not take: a hard stop that may not be in force.",
            registry=r,
        )
        self._spend_ratios = _SpendRatios()
        r.register(self._spend_ratios)
        # Read from tenantdb_orphaned_project (at start-up, after each delete, each sweep):
        # the same numbers on every replica and after a restart.
        self.orphaned_projects = Gauge(
            "tenantdb_orphaned_projects",
            "Neon projects left behind by accident (a delete given up on, a project with no live "
            "owner), as recorded in tenantdb_orphaned_project.",
            registry=r,
        )
        self.retained_projects = Gauge(
            "tenantdb_retained_projects",
            "Neon projects kept on purpose (deletionPolicy: Retain), as recorded in "
            "tenantdb_orphaned_project.",
            registry=r,
        )
        self.swept_projects = Counter(
            "tenantdb_swept_projects_total",
            "Projects of ours with no live owner that the fleet sweep found, by what it did "
            "(deleted, recorded; expired: a retained project deleted past "
            "TENANTDB_RETAINED_PROJECT_RETENTION_DAYS).",
            ["action"],
            registry=r,
        )
        self.fleet_resources = Gauge(
            "tenantdb_fleet_resources",
            "Settled database resources the fleet observation checks (Ready or Suspended at "
            "their current generation).",
            registry=r,
        )
        self.fleet_checks = Counter(
            "tenantdb_fleet_checks_total",
            "Checks of the fleet observation, by check (listed: a project list pass; local: "
            "Secret, row and env var; endpoint: compute settings read back; repair: a project "
            "missing or renamed) and result.",
            ["check", "result"],
            registry=r,
        )
        self.fleet_pass_in_progress = Gauge(
            "tenantdb_fleet_pass_in_progress",
            "1 while a pass of the fleet observation runs (project list, endpoint rotation, local "
            "checks), else 0.",
            registry=r,
        )
        self.fleet_pass_duration = Histogram(
            "tenantdb_fleet_pass_duration_seconds",
            "Seconds a whole pass of the fleet observation took (a pass cut short by a pause is "
            "not counted). Near TENANTDB_RESYNC_INTERVAL_SECONDS: the passes follow each other "
            "with no rest.",
            buckets=(1, 5, 15, 30, 60, 120, 180, 240, 300, 450, 600, 900, 1800),
            registry=r,
        )
        self.sim_unclaimed_plan_users = Gauge(
            "tenantdb_sim_unclaimed_plan_users",
            "Sim users whose plan no tier claims (TENANTDB_SIM_PLAN_TIERS or a DatabaseTier's "
            "simPlans): they get the default tier, and their budget a Warning Event naming the plan "
            "(latest full reading of Sim's tables).",
            registry=r,
        )
        self.fleet_pass_interval = Gauge(
            "tenantdb_fleet_pass_interval_seconds",
            "The fleet observation's interval (TENANTDB_RESYNC_INTERVAL_SECONDS): a pass longer "
            "than this leaves part of the fleet unchecked for longer than promised.",
            registry=r,
        )
        self.replica_active = Gauge(
            "tenantdb_replica_active",
            "1 while this replica is the one that acts (kopf's peering has not paused it), else "
            "0; standalone: 1. Summed over the replicas: how many act.",
            registry=r,
        )
        self.decision_log_pruned = Counter(
            "tenantdb_decision_log_pruned_total",
            "Decisions deleted from tenantdb_decision_log past their retention time.",
            registry=r,
        )
        # The Sim sync: how far it has come (a switch-on over a large Sim takes hours).
        self.sim_sync_backlog = Gauge(
            "tenantdb_sim_sync_backlog",
            "Kubernetes writes the Sim sync has planned from Sim's tables and not made yet, by "
            "action (delete, patch, create); 0 once it has caught up. Deletes and patches go "
            "before creates.",
            ["action"],
            registry=r,
        )
        self.sim_sync_resources = Gauge(
            "tenantdb_sim_sync_resources",
            "Resources the Sim sync made that are in its namespace, by kind (its listing, kept "
            "up to date with its own writes).",
            ["kind"],
            registry=r,
        )
        self.sim_sync_writes = Counter(
            "tenantdb_sim_sync_writes_total",
            "Kubernetes writes the Sim sync made, by action (create, patch, delete): their rate "
            "is the rate at which the backlog goes down.",
            ["action"],
            registry=r,
        )
        self.sim_sync_own_databases = Gauge(
            "tenantdb_sim_sync_own_databases",
            "Users and workspaces (kind GlobalDatabase, WorkspaceDatabase) whose metadata row says "
            "the database is their own (ownership_type not 'platform'): the sync makes no "
            "database resource for them (latest snapshot of Sim's tables).",
            ["kind"],
            registry=r,
        )
        self.consumption_syncs = Counter(
            "tenantdb_consumption_syncs_total", "Consumption sync rounds by result.", ["result"], registry=r
        )
        self.consumption_last_sync = Gauge(
            "tenantdb_consumption_last_sync_timestamp_seconds",
            "When the last consumption sync that reached Neon ended (Unix time; the last process's, "
            "as recorded in user_db_budget, until this one syncs). Only the active replica syncs: "
            "take the max over the replicas.",
            registry=r,
        )

    def set_spend(self, *, total_cents: int, ratios: Iterable[float]) -> None:
        """The latest enforcement round's spend: the total and each limited user's spend / limit."""
        self.spend_cents.set(total_cents)
        self._spend_ratios.ratios = tuple(ratios)
