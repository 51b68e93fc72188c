"""Prometheus metrics, defined once. Labels never carry a secret or an unbounded value.

Every module records into a ``Metrics`` object passed to it explicitly (tests build their
own on a private registry, so numbers never leak between tests).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


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
            "tenantdb_budgets_over_limit", "Users whose spend has reached their limit.", registry=r
        )
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
            "Projects of ours with no live owner that the fleet sweep found, by what it did.",
            ["action"],
            registry=r,
        )
        self.consumption_syncs = Counter(
            "tenantdb_consumption_syncs_total", "Consumption sync rounds by result.", ["result"], registry=r
        )
