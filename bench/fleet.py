"""Benchmark: one operator holding a fleet of N tenant databases (issue 11's figures).

Everything real that can run here, each in its place:

- the Kubernetes emulator (``tenantdb.testing.kube``) alone in a child process, pre-loaded
  over HTTP with N databases (half GlobalDatabase, half WorkspaceDatabase), N/3
  DatabaseBudgets and N Secrets, shaped exactly as the operator leaves a settled resource
  (finalizer, the ``tenantdb.io/managed`` label, kopf's ``tenantdb.io/last-handled-configuration``,
  a Ready status at
  ``observedGeneration == generation`` with the operator's derived project name, endpoint,
  host, branch, ``observedAt``; the owned Secret with ``DATABASE_URL_ENCRYPTED`` under the
  run's key); budgets with a settled status;
- the Neon API emulator (``tenantdb.testing.neon``) in this process, with Neon's limits
  (700 requests/min per account, 40/s per route, 50/min for consumption) and the N projects
  registered under exactly those ids, names, endpoints and endpoint settings (straight into
  its registry, as bench/consumption.py does: no PostgreSQL objects for pre-loaded ones);
  Neon calls are counted from its call log, by route and by time;
- a real PostgreSQL as the metadata DB, with the rows the operator would have written
  (database rows, env vars, tenant claims pinned to the project, budget rows), written with
  the operator's own store functions (standalone env tables);
- the operator as its own process: ``tenantdb.handlers.main.build_runtime`` + ``operate``
  (the path ``tenantdb run`` takes), metrics served on a port, RSS read from /proc.

Phases and figures (keys of ``bench/results/fleet.json``):

- ``startup_seconds``: from the operator process's start until it has resumed every
  pre-loaded database: the gauge ``tenantdb_fleet_resources`` reaches N where the operator
  has it (fleet observation), else ``tenantdb_reconciles_total{result="success"}`` of the two
  database kinds reaches N (the per-object resume of the baseline).
- ``settled_seconds``: from the start until no object carries a kopf retry record (every
  resume done, budgets included; a resume that failed, e.g. on a busy metadata DB pool, is
  retried by kopf and keeps its record until it succeeds).
- ``rss_mb``: VmRSS of the operator process ``--settle`` seconds after it settled.
- ``signup_p95_ready_s_idle``: ``--signups`` new GlobalDatabases applied one every
  ``--signup-pace`` s, each a real create in the Neon emulator; apply -> Ready condition,
  polled every 0.25 s; p95 by nearest rank. Applied between two fleet passes (the operator's
  ``tenantdb_fleet_pass_in_progress`` gauge, scraped every 0.25 s): after one ended, with the
  next far enough away (``signups_idle.between_passes``; ``overlapped_a_pass`` says if one
  came anyway).
- ``signup_p95_ready_s_during_sweep``: as many signups from the start of the next fleet pass
  (its project list, endpoint rotation and local checks), spread over the last pass's length
  (at least ``--signup-pace`` apart); ``applied_during_a_pass`` counts those applied inside it.
  ``fleet_passes``: each pass seen, its start (s from the operator's start) and length.
- ``steady_calls_per_min``: Neon calls per minute with nothing changing, over at least
  ``--steady-intervals`` observation intervals and one whole consumption period (900 s: a
  shorter window could fall between two consumption syncs and leave their calls out). The
  interval is ``TENANTDB_RESYNC_INTERVAL_SECONDS`` (``--interval``, default 300, the
  operator's default). With a shorter interval the
  project list of each pass runs that much more often: its calls (``GET /projects``) are
  scaled back by interval/300; the endpoint rotation (paced per minute) and the consumption
  sync (its own 900 s interval) are counted as measured (``steady_scaling`` in the JSON says
  so, with the measured figure beside it). Today's per-object timers are measured at 300 s.
- ``restart_calls``: the operator is stopped (SIGTERM, kopf's graceful stop) and a new one
  started at once; Neon calls in the ``--restart-window`` seconds from the new start.
- ``signup_p95_ready_s_during_restart``: ``--signups`` more signups applied right after the
  new process starts, paced as above. One process, so its start (Python's imports, kopf's
  start) is a floor no signup made at that moment can beat.
- ``signup_p95_ready_s_during_restart_with_standby`` (``--standby``, the default): the chart's
  hot standby, two replicas in one kopf peering (priorities 100 and 90). Once the active one
  has resumed the fleet it is stopped (SIGTERM) and its replacement spawned when it has
  exited (the chart's ``strategy: Recreate``); as many signups from the SIGTERM on. The
  standby, already running, takes them while its kopf lists the fleet; the replacement takes
  over when it is up. ``restart_with_standby`` has the details.

Usage: ``.venv/bin/python bench/fleet.py [--full] [--n 30000] [--budgets 10000]``. The defaults
are a quick run (``make bench``: 300 databases, a 60 s interval, 5 signups a phase, a 60 s
steady window, a 30 s restart window; about 4 minutes) that writes
``bench/results/quick/fleet.json``; ``--full`` is the full size (30,000 databases, the 300 s
interval, 20 signups a phase, a steady window of a whole consumption period, a 300 s restart
window; about an hour) and writes ``bench/results/fleet.json``. The quick run is not shorter:
its phases wait for fleet passes, which start every interval, and a pass is about half an
interval of local checks plus the endpoint rotation; below a 60 s interval (or above about 300
databases at it) passes leave no rest for the idle signups, and that phase waits three
intervals for one. ``--output`` names another result file (the baseline of today's
per-object timers was written as ``bench/results/fleet-baseline.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import dataclasses
import datetime
import json
import logging
import math
import multiprocessing
import os
import platform
import secrets
import signal
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx

DEFAULT_INTERVAL = 300.0  # TENANTDB_RESYNC_INTERVAL_SECONDS' default: what calls per minute are given at
# The fleet observation's project list: one pass (N/400 pages) per interval. Today's per-object
# timers (GET /projects/{id} and .../endpoints every interval) are measured at the default only.
INTERVAL_PACED_ROUTES = ("GET /projects",)
CONSUMPTION_INTERVAL = 900.0  # TENANTDB_CONSUMPTION_SYNC_INTERVAL_SECONDS' default
FINALIZER = "tenantdb.io/finalizer"
MANAGED_LABEL = "tenantdb.io/managed"  # tenantdb.api.MANAGED_LABEL (the bench imports tenantdb lazily)
DIFFBASE = "tenantdb.io/last-handled-configuration"
# kopf's annotations that stay on a settled object (the rest are handlers' retry records).
KOPF_KEPT = {DIFFBASE, "tenantdb.io/kopf-managed"}
GROUP_PATH = "/apis/tenantdb.io/v1alpha1/namespaces/default"
PLURALS = {
    "GlobalDatabase": "globaldatabases",
    "WorkspaceDatabase": "workspacedatabases",
    "DatabaseBudget": "databasebudgets",
}
SECRETS_PATH = "/api/v1/namespaces/default/secrets"
REGION, PG_VERSION = "aws-us-east-2", 17
PEERING = "tenantdb"  # the hot-standby phase's ClusterKopfPeering
SPEC_SETTINGS = {"autoscaling": {"minCu": 0.25, "maxCu": 1.0}, "suspendTimeoutSeconds": 300}
NEON_RATE_PER_MINUTE, NEON_ROUTE_PER_SECOND, NEON_CONSUMPTION_PER_MINUTE = 700, 40, 50
_START = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - _START:7.1f}s] {message}", flush=True)


# --- pure helpers (tests/unit/test_fleet_bench.py) ----------------------------------------------
def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile (p95 of 20 values is the 19th smallest); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def calls_per_minute(
    by_route: dict[str, int],
    seconds: float,
    *,
    interval: float,
    default_interval: float,
    interval_paced: Iterable[str] = INTERVAL_PACED_ROUTES,
) -> float:
    """Calls per minute as they would be at ``default_interval``.

    Only the routes whose calls the observation interval paces (``interval_paced``: the project
    list of each pass) run ``default_interval / interval`` times more often in a scaled-down
    run, so only they are scaled back; the endpoint rotation (calls per minute), the
    consumption sync (its own 900 s interval) and anything else are counted as measured.
    """
    if seconds <= 0:
        raise ValueError("a rate needs a window longer than zero")
    paced = set(interval_paced)
    scale = interval / default_interval
    total = sum(count * (scale if route in paced else 1.0) for route, count in by_route.items())
    return total / (seconds / 60.0)


def calls_by_route(calls: Iterable[Any], since: float, until: float) -> dict[str, int]:
    """Counts of ``CallRecord``-likes (``route``, ``at`` a datetime) with since <= at < until (epoch s)."""
    counts: collections.Counter[str] = collections.Counter()
    for call in calls:
        at = call.at.timestamp()
        if since <= at < until:
            counts[call.route] += 1
    return dict(counts.most_common())


def metric_sum(text: str, name: str, **labels: str) -> float | None:
    """Sum of the samples of ``name`` (Prometheus text) whose labels include ``labels``;
    None when the metric has no sample at all."""
    from prometheus_client.parser import text_string_to_metric_families

    total, seen = 0.0, False
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
                seen = True
    return total if seen else None


def baseline_extrapolation(measured: dict[str, Any], n: int, rss_mb_kopf: float | None) -> dict[str, Any]:
    """Today's per-object design at ``n`` databases, from its arithmetic (not measured at that size):
    every Ready resource costs 2 Neon calls per interval and 2 at every resume."""
    interval = float(measured.get("settings", {}).get("resync_interval_seconds", DEFAULT_INTERVAL))
    demand = 2 * n * 60.0 / interval
    restart = 2 * n
    drain_s = restart / NEON_RATE_PER_MINUTE * 60.0
    return {
        "n_databases": n,
        "how": "arithmetic, not a run: 2 calls (GET /projects/{id}, GET .../endpoints) per Ready "
        f"resource per {interval:g} s timer tick and per resume; the account allows "
        f"{NEON_RATE_PER_MINUTE}/min, so the limiter caps what is sent and the rest queues",
        "steady_calls_per_min_demanded": round(demand),
        "steady_calls_per_min": min(round(demand), NEON_RATE_PER_MINUTE),
        "steady_note": "the whole account budget, for ever: the timers ask for "
        f"{demand / NEON_RATE_PER_MINUTE:.1f}x what Neon allows",
        "restart_calls": {"calls": restart, "seconds": round(drain_s)},
        "startup_seconds_at_least": round(drain_s),
        "signup_during_restart": "a signup's calls queue behind the resume's (the limiter is "
        f"first-in-first-out): up to {drain_s / 60:.0f} min",
        "rss_mb": rss_mb_kopf,
        "rss_note": "bench/operator_memory.py --n 30000 --timers (kopf with this registry shape and "
        "the per-object timers, handlers that only count): operator_memory-timers.json",
    }


def extrapolate_baseline(path: Path, n: int) -> None:
    """Add ``extrapolated_to_<n>`` to a baseline result file (``--extrapolate-baseline``)."""
    measured = json.loads(path.read_text())
    memory_file = path.parent / "operator_memory-timers.json"
    rss = None
    if memory_file.exists():
        memory = json.loads(memory_file.read_text())
        rss = memory.get("rss_mb_settled") if memory.get("n_databases") == n else None
    measured[f"extrapolated_to_{n}"] = baseline_extrapolation(measured, n, rss)
    path.write_text(json.dumps(measured, indent=2) + "\n")
    say(f"added extrapolated_to_{n} to {path}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the operator's process ---------------------------------------------------------------------
def _operator_process(settings: dict[str, Any], kube_url: str, metrics_port: int, log_path: str) -> None:
    """``tenantdb run``'s path (build_runtime, the metrics server, operate), with the emulator's URL."""
    from prometheus_client import start_http_server

    from tenantdb.config import Settings
    from tenantdb.handlers.main import build_runtime, configure_logging, operate

    app_settings = Settings(**settings)
    runtime = build_runtime(app_settings, kube_url=kube_url)
    configure_logging(app_settings)
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logging.getLogger().handlers = [handler]
    # The operator's own INFO lines (the Neon key check, each signup's ProjectCreated ... Ready)
    # time-stamp its start-up in the log; the libraries stay at the settings' level.
    logging.getLogger("tenantdb").setLevel(logging.INFO)
    start_http_server(metrics_port, addr="127.0.0.1", registry=runtime.metrics.registry)
    asyncio.run(operate(runtime, liveness=False))


class OperatorProcess:
    def __init__(self, settings: dict[str, Any], kube_url: str, log_path: Path) -> None:
        self.metrics_port = free_port()
        spawn = multiprocessing.get_context("spawn")
        self.process = spawn.Process(
            target=_operator_process,
            args=(settings, kube_url, self.metrics_port, str(log_path)),
            daemon=True,
        )
        self.started = time.time()
        self.process.start()
        assert self.process.pid is not None
        self.pid: int = self.process.pid
        self._http = httpx.AsyncClient(timeout=30)

    async def metrics(self) -> str:
        try:
            response = await self._http.get(f"http://127.0.0.1:{self.metrics_port}/metrics")
        except httpx.HTTPError:
            return ""
        return response.text if response.status_code == 200 else ""

    async def resumed(self, n: int) -> tuple[bool, str]:
        """Whether every pre-loaded database is resumed, and by which measure."""
        text = await self.metrics()
        fleet = metric_sum(text, "tenantdb_fleet_resources")
        if fleet is not None:
            return fleet >= n, "tenantdb_fleet_resources >= N"
        done = sum(
            metric_sum(text, "tenantdb_reconciles_total", kind=kind, result="success") or 0.0
            for kind in ("GlobalDatabase", "WorkspaceDatabase")
        )
        return done >= n, 'tenantdb_reconciles_total{result="success"} of the database kinds >= N'

    async def stop(self) -> None:
        if self.process.is_alive():
            os.kill(self.pid, signal.SIGTERM)  # kopf stops gracefully on SIGTERM
            await asyncio.to_thread(self.process.join, 90)
        if self.process.is_alive():
            self.process.kill()
            await asyncio.to_thread(self.process.join, 10)
        if not self._http.is_closed:
            await self._http.aclose()


# --- the fleet ------------------------------------------------------------------------------------
class Fleet:
    """Pre-loads the three stores as the operator would have left them after provisioning."""

    def __init__(self, *, kube_url: str, neon: Any, store: Any, cipher: Any, settings: Any, address: Any):
        self.kube_url, self.neon, self.store, self.cipher = kube_url, neon, store, cipher
        self.settings, self.address = settings, address
        self.password = secrets.token_urlsafe(16)  # one for all: pre-loaded databases are never opened
        self.project_ids: set[str] = set()
        self.projects: dict[tuple[str, str], str] = {}  # (kind, name) -> project id

    def _new_project_id(self) -> str:
        from tenantdb.testing.neon import ids

        while True:
            candidate = ids.project_id()
            if candidate not in self.project_ids:
                self.project_ids.add(candidate)
                return candidate

    async def load(self, n: int, budgets: int, concurrency: int) -> dict[str, float]:
        half = n // 2
        units = [("GlobalDatabase", i) for i in range(half)] + [
            ("WorkspaceDatabase", i) for i in range(n - half)
        ]
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        timings: dict[str, float] = {}
        async with httpx.AsyncClient(base_url=self.kube_url, timeout=300, limits=limits) as http:
            started = time.monotonic()
            await _run_all((self._database(http, kind, i) for kind, i in units), concurrency, "databases")
            timings["databases_seconds"] = round(time.monotonic() - started, 1)
            started = time.monotonic()
            await _run_all((self._budget(http, i) for i in range(budgets)), concurrency, "budgets")
            timings["budgets_seconds"] = round(time.monotonic() - started, 1)
        return timings

    async def _database(self, http: httpx.AsyncClient, kind: str, i: int) -> None:
        from tenantdb.api import Scope, Tenant
        from tenantdb.reconcile.connection import secret_data
        from tenantdb.reconcile.naming import DatabaseIdentity
        from tenantdb.reconcile.projects import our_name
        from tenantdb.store.claims import Claimant

        workspace = kind == "WorkspaceDatabase"
        name = f"{'w' if workspace else 'g'}-{i:06d}"
        user_id = f"u-{i:06d}"
        spec: dict[str, Any] = {"userId": user_id, **SPEC_SETTINGS}
        tenant = Tenant(Scope.GLOBAL, user_id)
        if workspace:
            spec["workspaceId"] = f"ws-{i:06d}"
            tenant = Tenant(Scope.WORKSPACE, spec["workspaceId"])
        body = {
            "apiVersion": "tenantdb.io/v1alpha1",
            "kind": kind,
            "metadata": {
                "name": name,
                "namespace": "default",
                "finalizers": [FINALIZER],
                "labels": {MANAGED_LABEL: "true"},
                "annotations": {DIFFBASE: json.dumps({"spec": spec}, separators=(",", ":"))},
            },
            "spec": spec,
        }
        created = await _send(http, "POST", f"{GROUP_PATH}/{PLURALS[kind]}", body)
        meta = created["metadata"]
        uid, generation = meta["uid"], int(meta.get("generation") or 1)
        identity = DatabaseIdentity(
            kind=kind,
            namespace="default",
            name=name,
            uid=uid,
            user_id=user_id,
            tenant=tenant,
        )
        project_name = our_name(self.settings, identity)
        project = self._register_project(project_name)
        self.projects[(kind, name)] = project.id
        database, role = "neondb", "neondb_owner"
        host = self.address.host
        uri = self.address.uri(user=role, password=self.password, database=database)
        now = datetime.datetime.now(datetime.UTC)
        stamp = rfc3339(now)
        conditions = [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Available",
                "message": f"Database ready in Neon project {project.id}",
                "lastTransitionTime": stamp,
                "observedGeneration": generation,
            },
            {
                "type": "Synced",
                "status": "True",
                "reason": "ReconcileSuccess",
                "message": "Neon, the Secret and the metadata DB match the spec",
                "lastTransitionTime": stamp,
                "observedGeneration": generation,
            },
        ]
        secret_name = f"{name}-connection"
        status = {
            "phase": "Ready",
            "projectId": project.id,
            "projectName": project_name,
            "region": REGION,
            "pgVersion": PG_VERSION,
            "branchId": project.branch.id,
            "endpointId": project.endpoint.id,
            "host": host,
            "databaseName": database,
            "roleName": role,
            "secretName": secret_name,
            "observedGeneration": generation,
            "observedAt": stamp,
            "conditions": conditions,
        }
        await _send(http, "PATCH", f"{GROUP_PATH}/{PLURALS[kind]}/{name}/status", {"status": status})
        encrypted = self.cipher.encrypt(uri)
        data = secret_data(encrypted_uri=encrypted, uri=uri, pooled_uri=None, include_plaintext=False)
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": secret_name,
                "namespace": "default",
                "labels": {
                    "app.kubernetes.io/managed-by": "tenantdb",
                    "tenantdb.io/kind": kind.lower(),
                    "tenantdb.io/name": name,
                },
                "ownerReferences": [
                    {
                        "apiVersion": "tenantdb.io/v1alpha1",
                        "kind": kind,
                        "name": name,
                        "uid": uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
        await _send(http, "POST", SECRETS_PATH, secret)
        # The metadata DB: the claim pinned to the project, the row, the env var.
        tenant_id = tenant.id
        created_at = datetime.datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
        claimant = Claimant(uid=uid, namespace="default", name=name, created_at=created_at)
        await self.store.claim_tenant(kind=kind, tenant_id=tenant_id, claimant=claimant)
        await self.store.record_claim_project(
            kind=kind, tenant_id=tenant_id, holder_uid=uid, project_id=project.id
        )
        await self.store.upsert_database(
            tenant,
            project_id=project.id,
            branch_id=project.branch.id,
            encrypted_uri=self.cipher.encrypt(uri),
            database_name=database,
        )
        await self.store.set_env_var(tenant, key=tenant.env_var, value=uri)

    def _register_project(self, name: str) -> Any:
        """The project in the emulator's registry (private: no API registers one without its
        PostgreSQL objects), with the endpoint settings the spec asks for."""
        from tenantdb.testing.neon.creating import build_project, parse_create_request

        state = self.neon._state
        request = parse_create_request(
            {
                "name": name,
                "region_id": REGION,
                "pg_version": PG_VERSION,
                "branch": {"database_name": "neondb"},
                "default_endpoint_settings": {
                    "autoscaling_limit_min_cu": SPEC_SETTINGS["autoscaling"]["minCu"],  # type: ignore[index]
                    "autoscaling_limit_max_cu": SPEC_SETTINGS["autoscaling"]["maxCu"],  # type: ignore[index]
                    "suspend_timeout_seconds": SPEC_SETTINGS["suspendTimeoutSeconds"],
                },
            },
            state.options,
        )
        project = build_project(
            request,
            project_id=self._new_project_id(),
            seq=state.registry.next_seq(),
            database_id=state.registry.next_database_id(),
            password=self.password,
            now=datetime.datetime.now(datetime.UTC),
        )
        state.registry.add(project)
        return project

    async def _budget(self, http: httpx.AsyncClient, i: int) -> None:
        from tenantdb.store.claims import Claimant

        name, user_id = f"b-{i:06d}", f"u-{i:06d}"
        spec = {"userId": user_id, "tier": "free"}
        body = {
            "apiVersion": "tenantdb.io/v1alpha1",
            "kind": "DatabaseBudget",
            "metadata": {
                "name": name,
                "namespace": "default",
                "finalizers": [FINALIZER],
                "labels": {MANAGED_LABEL: "true"},
                "annotations": {DIFFBASE: json.dumps({"spec": spec}, separators=(",", ":"))},
            },
            "spec": spec,
        }
        created = await _send(http, "POST", f"{GROUP_PATH}/databasebudgets", body)
        meta = created["metadata"]
        generation = int(meta.get("generation") or 1)
        now = datetime.datetime.now(datetime.UTC)
        stamp = rfc3339(now)
        databases = [
            {"kind": kind, "name": f"{prefix}-{i:06d}", "projectId": project, "costCents": 0}
            for kind, prefix in (("GlobalDatabase", "g"), ("WorkspaceDatabase", "w"))
            if (project := self.projects.get((kind, f"{prefix}-{i:06d}")))
        ]
        status = {
            "tier": "free",
            "limitCents": 500,
            "totalCostCents": 0,
            "exceeded": False,
            "periodStart": rfc3339(now.replace(day=1, hour=0, minute=0, second=0)),
            "lastSyncTime": stamp,
            "databases": databases,
            "observedGeneration": generation,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "WithinBudget",
                    "message": "spend within the budget",
                    "lastTransitionTime": stamp,
                    "observedGeneration": generation,
                }
            ],
        }
        await _send(http, "PATCH", f"{GROUP_PATH}/databasebudgets/{name}/status", {"status": status})
        created_at = datetime.datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
        claimant = Claimant(uid=meta["uid"], namespace="default", name=name, created_at=created_at)
        await self.store.claim_tenant(kind="DatabaseBudget", tenant_id=user_id, claimant=claimant)
        await self.store.upsert_budget(user_id=user_id, tier="free", custom_budget_cents=None)

    def forget_preloaded(self) -> None:
        """Out of the emulator's registry before it stops: it would drop their (absent) databases."""
        projects = self.neon._state.registry._projects
        for project_id in self.project_ids:
            projects.pop(project_id, None)


async def _send(http: httpx.AsyncClient, method: str, path: str, body: Any) -> dict[str, Any]:
    headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else None
    for attempt in range(5):
        try:
            response = await http.request(method, path, json=body, headers=headers)
        except httpx.TransportError:
            if attempt == 4:
                raise
            await asyncio.sleep(1 + attempt)
            continue
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result
    raise AssertionError("unreachable")


async def _run_all(jobs: Iterable[Any], concurrency: int, what: str) -> None:
    queue = iter(jobs)
    done = 0
    started = time.monotonic()

    async def worker() -> None:
        nonlocal done
        for job in queue:
            await job
            done += 1
            if done % 2000 == 0:
                say(f"  {what}: {done} loaded ({done / (time.monotonic() - started):.0f}/s)")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


# --- signups ----------------------------------------------------------------------------------
async def signups(kube_url: str, prefix: str, count: int, pace: float, timeout: float) -> list[float]:
    """``count`` new GlobalDatabases, one every ``pace`` s; seconds from apply to Ready, each."""

    async def one(http: httpx.AsyncClient, number: int) -> float:
        await asyncio.sleep(number * pace)
        name = f"{prefix}-{number:03d}"
        body = {
            "apiVersion": "tenantdb.io/v1alpha1",
            "kind": "GlobalDatabase",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"userId": name, **SPEC_SETTINGS},
        }
        applied = time.monotonic()
        await _send(http, "POST", f"{GROUP_PATH}/globaldatabases", body)
        while time.monotonic() - applied < timeout:
            await asyncio.sleep(0.25)
            try:
                response = await http.get(f"{GROUP_PATH}/globaldatabases/{name}")
            except httpx.TransportError:
                continue
            conditions = (response.json().get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                return time.monotonic() - applied
        return math.inf

    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=kube_url, timeout=60, limits=limits) as http:
        return list(await asyncio.gather(*(one(http, number) for number in range(count))))


@dataclasses.dataclass
class FleetPass:
    start: float  # epoch seconds, as scraped
    end: float | None = None
    whole: bool = True  # False: already running at the first scrape (its start is not known)


class PassWatcher:
    """When the operator's fleet passes run, from its ``tenantdb_fleet_pass_in_progress`` gauge
    (scraped every 0.25 s): the signups of the idle phase go between two passes, those of the
    sweep phase from the start of one."""

    def __init__(self, operator: OperatorProcess) -> None:
        self._operator = operator
        self.passes: list[FleetPass] = []
        self._changed = asyncio.Event()
        self._ended: float | None = None  # passes ended, at the last scrape
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            text = await self._operator.metrics()
            running = metric_sum(text, "tenantdb_fleet_pass_in_progress") if text else None
            ended = metric_sum(text, "tenantdb_fleet_pass_duration_seconds_count") if text else None
            now = time.time()
            if running is not None and ended is not None:
                # Passes may follow each other between two scrapes (one that takes the whole
                # interval): the count of ended passes tells, where the gauge would stay at 1.
                if self._ended is not None and ended > self._ended and self.running():
                    self.passes[-1].end = now
                    self._changed.set()
                if running >= 1 and not self.running():
                    self.passes.append(FleetPass(start=now, whole=self._ended is not None))
                    self._changed.set()
                elif running < 1 and self.running():
                    self.passes[-1].end = now
                    self._changed.set()
                self._ended = ended
            await asyncio.sleep(0.25)

    async def _until(self, done: Callable[[], bool], *, timeout: float) -> bool:
        """Wait for ``done()`` (asked at each change the scrapes see), at most ``timeout``."""
        deadline = time.time() + timeout
        while not done():
            left = deadline - time.time()
            if left <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=left)
        return True

    def running(self) -> bool:
        return bool(self.passes) and self.passes[-1].end is None

    def last_seconds(self) -> float | None:
        """The length of the last whole pass seen."""
        done = [one.end - one.start for one in self.passes if one.end is not None and one.whole]
        return done[-1] if done else None

    def during_a_pass(self, since: float, until: float | None = None) -> bool:
        """Whether the moment ``since`` (or [since, until]) falls in a pass."""
        until = since if until is None else until
        return any(one.start <= until and (one.end is None or one.end >= since) for one in self.passes)

    async def rest(self, needed: float, interval: float, *, timeout: float) -> bool:
        """Wait until a pass ended and the next is at least ``needed`` s away (passes start every
        ``interval`` s); False when none came within ``timeout`` (passes with no rest between)."""

        def resting() -> bool:
            last = self.passes[-1] if self.passes else None
            next_start = last.start + interval if last is not None and last.whole else None
            return next_start is not None and not self.running() and next_start - time.time() >= needed

        return await self._until(resting, timeout=timeout)

    async def next_start(self, *, timeout: float) -> bool:
        """Wait for the next pass to start (False: none within ``timeout``)."""
        seen = len(self.passes)
        return await self._until(lambda: len(self.passes) > seen, timeout=timeout)

    async def end_of_pass(self, *, timeout: float) -> None:
        """Wait for the pass in progress (if any) to end, at most ``timeout``."""
        await self._until(lambda: not self.running(), timeout=timeout)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def signup_figures(seconds: list[float]) -> dict[str, Any]:
    finished = [s for s in seconds if math.isfinite(s)]
    p95 = percentile(seconds, 0.95)
    return {
        "count": len(seconds),
        "ready": len(finished),
        "p50_s": round(percentile(seconds, 0.5) or 0, 2) if finished else None,
        "p95_s": round(p95, 2) if p95 is not None and math.isfinite(p95) else None,
        "max_s": round(max(seconds), 2) if finished else None,
    }


# --- the run ------------------------------------------------------------------------------------
async def bench(args: argparse.Namespace) -> dict[str, Any]:
    import psycopg

    from kube_emulator_scale import _serve
    from tenantdb.config import Settings
    from tenantdb.crypto import EncryptionKey
    from tenantdb.store import MetadataStore
    from tenantdb.testing.neon import EmulatorOptions, NeonEmulator
    from tenantdb.testing.postgres import PostgresServer

    n, budgets, interval = args.n, args.budgets, args.interval
    results: dict[str, Any] = {"n_databases": n, "n_budgets": budgets, "kubernetes_api": "emulator"}
    key = secrets.token_hex(32)
    cipher = EncryptionKey(key)
    log_dir = Path(args.log_dir)
    await asyncio.to_thread(log_dir.mkdir, parents=True, exist_ok=True)
    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe()
    kube = spawn.Process(target=_serve, args=(theirs,), daemon=True)
    kube.start()
    kube_url = ours.recv()
    assert kube.pid is not None
    postgres = PostgresServer()
    await asyncio.to_thread(postgres.start)
    operator: OperatorProcess | None = None
    peers: list[OperatorProcess] = []  # the hot-standby phase's replicas
    fleet: Fleet | None = None
    neon = NeonEmulator(
        postgres_admin_url=postgres.admin_url,
        options=EmulatorOptions(
            rate_limit_per_minute=NEON_RATE_PER_MINUTE,
            route_rate_limit_per_second=NEON_ROUTE_PER_SECOND,
            consumption_rate_limit_per_minute=NEON_CONSUMPTION_PER_MINUTE,
        ),
        ssl=postgres.ssl,
    )
    try:
        async with await psycopg.AsyncConnection.connect(postgres.admin_url, autocommit=True) as conn:
            await conn.execute("CREATE DATABASE tenantdb_meta")
        metadata_url = postgres.url_for(postgres.superuser, postgres._password, "tenantdb_meta")
        await neon.start()
        operator_settings: dict[str, Any] = {
            "encryption_key": key,
            "neon_api_key": neon.api_key,
            "neon_org_id": neon.org_id,
            "neon_api_url": neon.base_url,
            "metadata_database_url": metadata_url,
            "neon_default_region": REGION,
            "neon_rate_limit_per_minute": NEON_RATE_PER_MINUTE,
            "neon_route_rate_limit_per_second": NEON_ROUTE_PER_SECOND,
            "neon_consumption_rate_limit_per_minute": NEON_CONSUMPTION_PER_MINUTE,
            "resync_interval_seconds": interval,
            "standalone_env_tables": True,
            "health_port": 0,
            "log_level": "WARNING",
        }
        settings = Settings(**operator_settings, metrics_port=0)
        store = await MetadataStore.open(
            metadata_url, cipher=cipher, standalone_env_tables=True, max_size=args.concurrency
        )
        try:
            await store.migrate()
            fleet = Fleet(
                kube_url=kube_url,
                neon=neon,
                store=store,
                cipher=cipher,
                settings=settings,
                address=neon._state.address,
            )
            say(f"pre-loading {n} databases, {budgets} budgets, {n} Secrets, {n} Neon projects ...")
            results["preload"] = await fleet.load(n, budgets, args.concurrency)
        finally:
            await store.close()
        results["kube_emulator_rss_mb_preloaded"] = round(rss_mb(kube.pid), 1)
        say(f"pre-loaded: {results['preload']}")

        # --- start-up -----------------------------------------------------------------------
        neon.reset_calls()
        operator = OperatorProcess(operator_settings, kube_url, log_dir / "operator-1.log")
        startup, measure = await _wait_resumed(operator, n, args.startup_timeout)
        results["startup_seconds"] = startup
        results["startup_measure"] = measure
        results["startup_calls"] = _window(neon, operator.started, time.time())
        say(f"start-up: {startup} s ({measure}); Neon calls {results['startup_calls']['calls']}")
        settled, pending = await _wait_settled(kube_url, operator, args.settle_timeout)
        results["settled_seconds"] = settled
        results["settled_measure"] = (
            "until no database or budget carries a kopf progress annotation (tenantdb.io/<handler>: "
            "a handler still retrying), listed every 15 s; pending counts: " + json.dumps(pending[-8:])
        )
        say(f"settled: {settled} s after the start (handlers still retrying, last lists: {pending[-4:]})")
        await asyncio.sleep(args.settle)
        results["rss_mb"] = round(rss_mb(operator.pid), 1)
        results["rss_settle_seconds"] = args.settle
        say(f"RSS {results['rss_mb']} MB")

        # --- idle signups: between two fleet passes ------------------------------------------
        passes = PassWatcher(operator)
        length = args.signups * args.signup_pace
        rested = await passes.rest(length + 10.0, interval, timeout=3 * interval)
        say("idle signups, between two fleet passes ..." if rested else "idle signups: passes never rest")
        since = time.time()
        idle = await signups(kube_url, "signup-idle", args.signups, args.signup_pace, args.signup_timeout)
        results["signups_idle"] = signup_figures(idle) | {
            "between_passes": rested,
            "overlapped_a_pass": passes.during_a_pass(since, time.time()),
            "calls": _window(neon, since, time.time()),
        }
        results["signup_p95_ready_s_idle"] = results["signups_idle"]["p95_s"]
        say(f"idle signups: {results['signups_idle']}")

        # --- signups during a sweep: from the start of a fleet pass, spread over its length ------
        pass_seconds = passes.last_seconds() or length
        pace = max(args.signup_pace, pass_seconds / args.signups)
        started = await passes.next_start(timeout=2 * interval)
        say(f"signups during a fleet pass (the last took {pass_seconds:.0f} s), one every {pace:.1f} s ...")
        since = time.time()
        sweep = await signups(kube_url, "signup-sweep", args.signups, pace, args.signup_timeout)
        calls = _window(neon, since, time.time())
        await passes.end_of_pass(timeout=2 * interval)  # to tell which signups it held
        inside = sum(passes.during_a_pass(since + number * pace) for number in range(args.signups))
        results["signups_during_sweep"] = signup_figures(sweep) | {
            "pace_s": round(pace, 2),
            "pass_seconds_before": round(pass_seconds, 1),
            "pass_started": started,
            "applied_during_a_pass": inside,
            "calls": calls,
        }
        results["signup_p95_ready_s_during_sweep"] = results["signups_during_sweep"]["p95_s"]
        results["fleet_passes"] = [
            {
                "start_s": round(one.start - operator.started, 1) if one.whole else None,
                "seconds": round(one.end - one.start, 1) if one.end is not None and one.whole else None,
                "end_s": round(one.end - operator.started, 1) if one.end is not None else None,
            }
            for one in passes.passes
        ]
        await passes.close()
        say(f"signups during a sweep: {results['signups_during_sweep']}")

        # --- steady state ----------------------------------------------------------------------
        # At least two observation intervals, and a whole consumption period (900 s): a window
        # between two consumption syncs would leave out their calls.
        window = args.steady_seconds or max(args.steady_intervals * interval, CONSUMPTION_INTERVAL)
        say(f"steady state: {window:.0f} s (intervals of {interval:.0f} s) ...")
        since = time.time()
        await asyncio.sleep(window)
        steady = _window(neon, since, time.time())
        results["steady"] = steady | {
            "intervals": round(window / interval, 2),
            "interval_seconds": interval,
            "consumption_sync_interval_seconds": CONSUMPTION_INTERVAL,
            "window_covers_a_consumption_period": window >= CONSUMPTION_INTERVAL,
            "measured_calls_per_min": round(steady["calls"] / (steady["seconds"] / 60), 1),
        }
        per_minute = calls_per_minute(
            steady["by_route"], steady["seconds"], interval=interval, default_interval=DEFAULT_INTERVAL
        )
        results["steady_calls_per_min"] = round(per_minute, 1)
        results["steady_scaling"] = (
            "none: measured at the default interval (300 s)"
            if interval == DEFAULT_INTERVAL
            else f"measured at TENANTDB_RESYNC_INTERVAL_SECONDS={interval:g}: the calls of the "
            f"interval-paced routes {list(INTERVAL_PACED_ROUTES)} (the pass's project list) scaled "
            f"back by {interval:g}/{DEFAULT_INTERVAL:g}; every other route (endpoint rotation, paced "
            "per minute; consumption, its own 900 s interval) counted as measured"
        )
        say(f"steady: {results['steady_calls_per_min']} calls/min ({steady['by_route']})")

        # --- restart --------------------------------------------------------------------------
        say("restart: stopping the operator, starting a new one, signups at once ...")
        stopping = time.monotonic()
        await operator.stop()
        results["stop_seconds"] = round(time.monotonic() - stopping, 1)
        operator = OperatorProcess(operator_settings, kube_url, log_dir / "operator-2.log")
        restarted = operator.started
        during_task = asyncio.create_task(
            signups(kube_url, "signup-restart", args.signups, args.signup_pace, args.signup_timeout)
        )
        expected = n + args.signups
        restart_startup, _ = await _wait_resumed(operator, expected, args.startup_timeout)
        during = await during_task
        results["restart_startup_seconds"] = restart_startup
        results["signups_during_restart"] = signup_figures(during)
        results["signup_p95_ready_s_during_restart"] = results["signups_during_restart"]["p95_s"]
        say(f"signups during restart: {results['signups_during_restart']}; resumed in {restart_startup} s")
        left = restarted + args.restart_window - time.time()
        if left > 0:
            await asyncio.sleep(left)
        restart = _window(neon, restarted, restarted + args.restart_window)
        results["restart_calls"] = {
            "calls": restart["calls"],
            "seconds": args.restart_window,
            "by_route": restart["by_route"],
            "of_which_signups": sum(
                count for route, count in restart["by_route"].items() if route.startswith("POST /projects")
            ),
        }
        say(f"restart: {results['restart_calls']}")
        results["operator_rss_mb_end"] = round(rss_mb(operator.pid), 1)

        # --- a rolling restart with a hot standby ---------------------------------------------
        if args.standby:
            await operator.stop()
            operator = None
            standby = await _rolling_restart_with_standby(
                args, operator_settings, kube_url, neon, log_dir, expected=n + args.signups, peers=peers
            )
            results["restart_with_standby"] = standby
            results["signup_p95_ready_s_during_restart_with_standby"] = standby["signups"]["p95_s"]
    finally:
        for peer in peers:
            await peer.stop()
        if operator is not None:
            await operator.stop()
        if fleet is not None:
            fleet.forget_preloaded()
        await neon.stop()
        ours.send("stop")
        kube.join(timeout=30)
        await asyncio.to_thread(postgres.stop)
    return results


async def _rolling_restart_with_standby(
    args: argparse.Namespace,
    settings: dict[str, Any],
    kube_url: str,
    neon: Any,
    log_dir: Path,
    *,
    expected: int,
    peers: list[OperatorProcess],
) -> dict[str, Any]:
    """The chart's hot standby (``peering.enabled``): two replicas in one kopf peering, of
    priorities 100 and 90, each its own Deployment with ``strategy: Recreate``. Once the active
    one has resumed the fleet, it is stopped (SIGTERM: kopf's goodbye in the peering object),
    and its replacement is spawned once it has exited, as Recreate does; the signups start
    with the SIGTERM."""
    async with httpx.AsyncClient(base_url=kube_url, timeout=30) as http:
        body = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": PEERING}}
        (await http.post("/apis/kopf.dev/v1/clusterkopfpeerings", json=body)).raise_for_status()

    def peer(priority: int, log_name: str) -> OperatorProcess:
        peered = settings | {"peering_name": PEERING, "peering_priority": priority}
        process = OperatorProcess(peered, kube_url, log_dir / log_name)
        peers.append(process)
        return process

    say("rolling restart with a hot standby: two peered replicas, the active one resuming ...")
    active = peer(100, "operator-peer-100.log")
    standby = peer(90, "operator-peer-90.log")
    resumed, _ = await _wait_resumed(active, expected, args.startup_timeout)
    await asyncio.sleep(args.settle)
    standby_rss = round(rss_mb(standby.pid), 1)
    say(f"active replica resumed in {resumed} s; standby RSS {standby_rss} MB; stopping the active one ...")
    since = time.time()
    during_task = asyncio.create_task(
        signups(kube_url, "signup-standby", args.signups, args.signup_pace, args.signup_timeout)
    )
    stopping = time.monotonic()
    await active.stop()
    stop_seconds = round(time.monotonic() - stopping, 1)
    peer(100, "operator-peer-100-replacement.log")
    during = await during_task
    figures = signup_figures(during)
    say(f"signups during the rolling restart: {figures}; the active replica stopped in {stop_seconds} s")
    return {
        "signups": figures,
        "active_resumed_seconds": resumed,
        "stop_seconds": stop_seconds,
        "standby_rss_mb_paused": standby_rss,
        "calls": _window(neon, since, time.time()),
        "how": "peering priorities 100 (active) and 90 (standby); SIGTERM to the active one with the "
        "first signup, its replacement (priority 100) spawned once it exited (strategy: Recreate)",
    }


async def _wait_resumed(operator: OperatorProcess, n: int, timeout: float) -> tuple[float | None, str]:
    measure = ""
    while time.time() - operator.started < timeout:
        if not operator.process.is_alive():
            raise RuntimeError(f"the operator process ended (exit code {operator.process.exitcode})")
        done, measure = await operator.resumed(n)
        if done:
            return round(time.time() - operator.started, 1), measure
        await asyncio.sleep(1.0)
    return None, measure + f" (not reached within {timeout:.0f} s)"


async def _wait_settled(
    kube_url: str, operator: OperatorProcess, timeout: float
) -> tuple[float | None, list[int]]:
    """Seconds from the operator's start until no object carries a handler's retry record.

    kopf keeps a handler's progress (retries, delays) in an annotation per handler
    (``tenantdb.io/<handler id>``) until it succeeds: none left = every resume (budgets
    included) is done."""
    history: list[int] = []
    async with httpx.AsyncClient(base_url=kube_url, timeout=300) as http:
        while time.time() - operator.started < timeout:
            pending = 0
            for plural in PLURALS.values():
                response = await http.get(f"{GROUP_PATH}/{plural}")
                response.raise_for_status()
                for item in response.json().get("items", []):
                    annotations = (item.get("metadata") or {}).get("annotations") or {}
                    pending += any(k.startswith("tenantdb.io/") and k not in KOPF_KEPT for k in annotations)
            history.append(pending)
            if pending == 0:
                return round(time.time() - operator.started, 1), history
            await asyncio.sleep(15.0)
    return None, history


def _window(neon: Any, since: float, until: float) -> dict[str, Any]:
    by_route = calls_by_route(neon.calls(), since, until)
    return {"calls": sum(by_route.values()), "seconds": round(until - since, 1), "by_route": by_route}


def _machine() -> dict[str, Any]:
    import _quick  # bench/ is on sys.path when run as a script (tests load this file alone)

    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        **_quick.commit(),
    }


# What --full selects: the full-size run (about an hour on 2 vCPUs); the defaults below are quick.
FULL = {
    "n": 30_000,
    "signups": 20,
    "signup_timeout": 1800.0,
    "interval": DEFAULT_INTERVAL,
    "steady_seconds": None,
    "restart_window": 300.0,
    "settle": 30.0,
    "startup_timeout": 7200.0,
    "settle_timeout": 900.0,
}


def main() -> None:
    import _quick

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--n", type=int, default=300, help="database resources (half of each kind); --full 30000"
    )
    parser.add_argument("--budgets", type=int, default=None, help="DatabaseBudgets (default: n/3)")
    parser.add_argument(
        "--signups", type=int, default=5, help="signups per phase (idle, during restart); --full 20"
    )
    parser.add_argument("--signup-pace", type=float, default=1.0, help="seconds between two signups")
    parser.add_argument("--signup-timeout", type=float, default=300.0, help="--full 1800")
    parser.add_argument(
        "--interval", type=float, default=60.0, help="TENANTDB_RESYNC_INTERVAL_SECONDS; --full 300"
    )
    parser.add_argument("--steady-intervals", type=int, default=2)
    parser.add_argument(
        "--steady-seconds",
        type=float,
        default=60.0,
        help="steady window (default 60; --full: the longer of the intervals and a 900 s consumption period)",
    )
    parser.add_argument(
        "--restart-window", type=float, default=30.0, help="seconds of restart calls; --full 300"
    )
    parser.add_argument(
        "--standby",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also a rolling restart of two peered replicas (the chart's hot standby)",
    )
    parser.add_argument(
        "--settle", type=float, default=5.0, help="seconds after start-up before RSS; --full 30"
    )
    parser.add_argument("--startup-timeout", type=float, default=600.0, help="--full 7200")
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=300.0,
        help="seconds from the start to wait for every retry to end; past it the run goes on "
        "(settled_seconds null, the pending counts in settled_measure); --full 900",
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--log-dir", default="/tmp/tenantdb-fleet-bench")
    parser.add_argument("--note", default="", help="free text stored in the JSON (what was run, why)")
    parser.add_argument("--output", type=Path, default=None, help="result file (default: see --full)")
    parser.add_argument(
        "--extrapolate-baseline",
        type=Path,
        default=None,
        help="no run: add today's design's arithmetic at --n (default 30000) to this baseline result file",
    )
    # The arithmetic is for the full size: --extrapolate-baseline selects its --n (30000) too.
    args = _quick.parse(parser, full=FULL, implied_by=["extrapolate_baseline"])
    if args.extrapolate_baseline is not None:
        extrapolate_baseline(args.extrapolate_baseline, args.n)
        return
    if args.budgets is None:
        args.budgets = args.n // 3
    started = time.monotonic()
    results = asyncio.run(bench(args))
    results["settings"] = {
        "resync_interval_seconds": args.interval,
        "signups": args.signups,
        "signup_pace_seconds": args.signup_pace,
        "neon_rate_limit_per_minute": NEON_RATE_PER_MINUTE,
        "neon_route_rate_limit_per_second": NEON_ROUTE_PER_SECOND,
        "neon_consumption_rate_limit_per_minute": NEON_CONSUMPTION_PER_MINUTE,
    }
    results["machine"] = _machine()
    results["bench_seconds"] = round(time.monotonic() - started, 1)
    if args.note:
        results["note"] = args.note
    print(json.dumps(results, indent=2))
    output = _quick.output(args, "fleet.json")
    output.write_text(json.dumps(results, indent=2) + "\n")
    say(f"wrote {output}")


if __name__ == "__main__":
    main()
