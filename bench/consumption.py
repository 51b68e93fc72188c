"""Benchmark: one consumption sync over N Neon projects, against the emulator with Neon's limits.

Runs the operator's own code path: ``BudgetSync.sync_once`` (what the budget loop calls every
``TENANTDB_CONSUMPTION_SYNC_INTERVAL_SECONDS``), which calls ``sync_consumption`` through the
real ``NeonClient`` and its shared rate limiter (700 requests/min per account, 40/s per route),
against the Neon API emulator enforcing the same limits (a 429 would show up in the counts).

Baseline, the upstream plan: one request per project. It is measured on a sample (the same
sync, ``batch_size=1``, through a fresh client and limiter) and extrapolated to N under the
same rate limit: at 700/min, 10,000 calls take about 14 minutes, too long to run each time.

Projects: the consumption API reads only the emulator's records of a project (its id, creation
time and usage), but the emulator has no public way to register a project without creating its
real PostgreSQL database and role. So the N projects are added straight to the emulator's
registry (a private attribute, ``NeonEmulator._state``) with the emulator's own
``build_project``; a few real creates are timed to show what N real ones would cost.

Usage: ``.venv/bin/python bench/consumption.py [--n 1000] [--sample 50] [--full]``; quick by
default (1,000 projects, a baseline sample of 50: about a minute and a half, the sample paced at
Neon's 50 consumption calls a minute), writing ``bench/results/quick/consumption.json``;
``--full`` is 10,000 projects and a sample of 120 and writes ``bench/results/consumption.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import random
import secrets
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import _quick
from tenantdb.billing import Prices, cost_cents
from tenantdb.config import Settings
from tenantdb.metrics import Metrics
from tenantdb.neon import NeonClient
from tenantdb.neon.limiter import RateLimiter
from tenantdb.reconcile.budget_sync import BudgetSync
from tenantdb.reconcile.consumption import sync_consumption
from tenantdb.reconcile.enforcement import DatabaseRecord
from tenantdb.testing.neon import EmulatorOptions, NeonEmulator
from tenantdb.testing.neon.creating import build_project, parse_create_request
from tenantdb.testing.postgres import PostgresServer

CONSUMPTION_ROUTE = "GET /consumption_history/v2/projects"
RATE_PER_MINUTE, ROUTE_RATE_PER_SECOND = 700, 40
_START = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - _START:6.1f}s] {message}", flush=True)


class NullStore:
    """The metadata DB writes of a sync, counted (the benchmark measures the Neon side)."""

    def __init__(self) -> None:
        self.writes = 0

    async def set_database_costs(self, costs: Mapping[str, int], *, synced_at: datetime.datetime) -> int:
        self.writes += 1
        return len(costs)

    async def update_budget_usage(self, **_: Any) -> None:
        self.writes += 1


class NullKube:
    """Status patches of a sync, counted."""

    def __init__(self) -> None:
        self.patches = 0

    async def patch_status(
        self, *, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        self.patches += 1


def register_projects(neon: NeonEmulator, n: int, rng: random.Random) -> dict[str, int]:
    """N projects in the emulator's registry, without databases; returns their CU-seconds."""
    state = neon._state  # no public API registers a project without its PostgreSQL objects
    request = parse_create_request({"name": "bench"}, state.options)
    usage: dict[str, int] = {}
    taken: set[str] = set()
    now = datetime.datetime.now(datetime.UTC)
    while len(usage) < n:
        project_id = f"bench-project-{secrets.randbelow(10**8):08d}"
        if project_id in taken:
            continue
        taken.add(project_id)
        project = build_project(
            request,
            project_id=project_id,
            seq=state.registry.next_seq(),
            database_id=state.registry.next_database_id(),
            password="unused",
            now=now,
        )
        project.name = f"tenantdb-bench-{len(usage)}"
        state.registry.add(project)
        # Up to ~14 CU-hours: every user stays within the free tier, so nothing is suspended.
        usage[project_id] = rng.randrange(0, 50_000)
        neon.set_usage(project_id, compute_unit_seconds=usage[project_id])
    return usage


def settings_for(neon: NeonEmulator) -> Settings:
    return Settings(
        encryption_key=secrets.token_hex(32),
        neon_api_key=neon.api_key,
        neon_org_id=neon.org_id,
        neon_api_url=neon.base_url,
        metadata_database_url="postgresql://unused@127.0.0.1/unused",
        neon_rate_limit_per_minute=RATE_PER_MINUTE,
        neon_route_rate_limit_per_second=ROUTE_RATE_PER_SECOND,
        consumption_sync_interval_seconds=900.0,
        health_port=0,
        metrics_port=0,
    )


def consumption_calls(neon: NeonEmulator) -> tuple[int, int]:
    """Consumption calls served since the last reset, and how many of them were 429."""
    calls = [c for c in neon.calls() if c.route == CONSUMPTION_ROUTE]
    return len(calls), sum(1 for c in calls if c.status == 429)


async def time_real_creates(neon: NeonEmulator, settings: Settings, count: int) -> float | None:
    """Seconds per project for ``count`` real creates (a database and a role each)."""
    if count <= 0:
        return None
    async with NeonClient.from_settings(settings) as client:
        started = time.monotonic()
        for number in range(count):
            created = await client.create_project(
                name=f"tenantdb-bench-real-{number}",
                region_id=settings.neon_default_region,
                pg_version=settings.neon_default_pg_version,
                database_name="neondb",
                role_name=None,
                autoscaling_min_cu=0.25,
                autoscaling_max_cu=1.0,
                suspend_timeout_seconds=0,
            )
            await client.wait_for_operations(created.project.id, created.operations)
        return (time.monotonic() - started) / count


async def bench(n: int, sample: int, real_creates: int, output: Path) -> int:
    rng = random.Random(20240301)
    say("starting PostgreSQL and the Neon API emulator (700 requests/min, 40/s per route) ...")
    with PostgresServer() as postgres:
        options = EmulatorOptions(
            rate_limit_per_minute=RATE_PER_MINUTE, route_rate_limit_per_second=ROUTE_RATE_PER_SECOND
        )
        async with NeonEmulator(postgres_admin_url=postgres.admin_url, options=options) as neon:
            settings = settings_for(neon)
            create_seconds = await time_real_creates(neon, settings, real_creates)
            if create_seconds is not None:
                say(
                    f"{real_creates} real creates: {create_seconds:.3f} s per project; {n} real ones would "
                    f"take ~{create_seconds * n / 60:.0f} min one after another "
                    f"(>= {n / RATE_PER_MINUTE:.0f} min at 700 requests/min) before the sync could start"
                )
            started = time.monotonic()
            usage = register_projects(neon, n, rng)
            elapsed = time.monotonic() - started
            say(f"registered {n} projects in the emulator in {elapsed:.1f} s (no databases)")

            # --- The operator's sync: BudgetSync.sync_once, as the budget loop runs it -------------------
            sync = BudgetSync(settings=settings, metrics=Metrics())
            for number, project_id in enumerate(usage):
                sync.put_database(
                    DatabaseRecord(
                        kind="WorkspaceDatabase",
                        namespace="default",
                        name=f"ws-{number}",
                        user_id=f"user-{number // 2}",
                        project_id=project_id,
                        endpoint_id=None,
                    )
                )
            store, kube = NullStore(), NullKube()
            neon.reset_calls()
            async with NeonClient.from_settings(settings, metrics=sync.metrics) as client:
                say(f"one consumption sync over {n} projects (BudgetSync.sync_once, the real client) ...")
                started = time.monotonic()
                await sync.sync_once(source=client, store=store, kube=kube, neon=client, post_event=_no_event)
                seconds = time.monotonic() - started
            api_calls, throttled = consumption_calls(neon)
            prices = Prices.from_settings(settings)
            wrong = [
                pid
                for pid, cu_seconds in usage.items()
                if sync.costs.get(pid) != cost_cents({"compute_unit_seconds": cu_seconds}, prices)
            ]
            batches = -(-n // 100)
            say(
                f"  {api_calls} consumption calls ({batches} batches of <=100 ids), "
                f"{throttled} answered 429, {seconds:.1f} s; "
                f"costs right for {n - len(wrong)} of {n} projects; {kube.patches} status patches, "
                f"{len(sync.exceeded_users)} users over budget"
            )

            # --- Baseline: one call per project, on a sample, through a fresh client and limiter ---------
            sample = min(sample, n)
            neon.reset_calls()
            sample_ids = list(usage)[:sample]
            async with NeonClient.from_settings(settings) as client:
                say(f"baseline: one call per project, measured on {sample} projects ...")
                started = time.monotonic()
                snapshot = await sync_consumption(
                    source=client,
                    project_ids=sample_ids,
                    now=datetime.datetime.now(datetime.UTC),
                    prices=prices,
                    batch_size=1,
                    anchor_day=settings.billing_period_anchor_day,
                )
                sample_seconds = time.monotonic() - started
            sample_calls, sample_throttled = consumption_calls(neon)
            arrivals = [c.at for c in neon.calls() if c.route == CONSUMPTION_ROUTE]
            assert snapshot.complete, f"baseline sample incomplete: {len(snapshot.missing)} missing"
            baseline_calls = n  # one GET per project
            baseline_seconds, steady = extrapolate(arrivals, sample_seconds, n, burst=client_burst(settings))
            say(
                f"  {sample_calls} calls in {sample_seconds:.1f} s ({steady * 1000:.0f} ms per call once "
                f"the limiter's burst is spent), {sample_throttled} answered 429; "
                f"for {n}: {baseline_calls} calls, ~{baseline_seconds:.0f} s "
                f"({baseline_seconds / 60:.1f} min)"
            )

    result: dict[str, Any] = {
        "n": n,
        "api_calls": api_calls,
        "seconds": round(seconds, 2),
        "baseline_api_calls": baseline_calls,
        "baseline_seconds": round(baseline_seconds, 1),
        "baseline_note": (
            f"one consumption call per project (sync_consumption with batch_size=1, a fresh NeonClient "
            f"and limiter) measured on {sample} projects ({sample_calls} calls, {sample_seconds:.2f} s); "
            f"extrapolated to n under the same rate limit ({RATE_PER_MINUTE}/min, "
            f"{ROUTE_RATE_PER_SECOND}/s per route): the sample's time to its second half, "
            f"then {steady * 1000:.1f} ms per call, the interval measured over that second half"
        ),
        "batches": batches,
        "http_429": throttled,
        "costs_correct": n - len(wrong),
        "rate_limit_per_minute": RATE_PER_MINUTE,
        "route_rate_limit_per_second": ROUTE_RATE_PER_SECOND,
        "code_path": (
            "BudgetSync.sync_once -> sync_consumption -> NeonClient.consumption (shared RateLimiter)"
        ),
        "projects_note": (
            "projects registered in the emulator's private registry without PostgreSQL databases "
            "(no public API for it); consumption reads only the registry"
        ),
        "real_create_seconds_per_project": None if create_seconds is None else round(create_seconds, 3),
        **_quick.commit(),
    }
    await asyncio.to_thread(_write, output, result)
    say(f"wrote {output}")
    ok = not wrong and throttled == 0 and sample_throttled == 0
    say("benchmark finished" if ok else "benchmark FAILED: wrong costs or 429s (see above)")
    return 0 if ok else 1


def client_burst(settings: Settings) -> int:
    """How many calls the client's limiter lets out back to back (the rest are paced)."""
    return RateLimiter.from_settings(settings).account.capacity


def extrapolate(
    arrivals: list[datetime.datetime], sample_seconds: float, n: int, *, burst: int
) -> tuple[float, float]:
    """Seconds for ``n`` calls, and the steady interval between calls, from a sample's arrivals.

    The limiter lets its first calls out faster (the account's burst, paced only by the route's
    own limit), then pays calls out evenly. So the steady interval is measured over the second
    half of the sample (past the burst), and n calls take the sample's time to that point plus
    the steady interval for each call after it: a linear extrapolation of the whole sample
    would be too optimistic.
    """
    start = max(burst + 1, len(arrivals) // 2)
    if len(arrivals) < start + 10:
        raise SystemExit(f"--sample must be at least {2 * (burst + 10)} to measure the limiter's pace")
    paced = arrivals[start:]
    steady = (paced[-1] - paced[0]).total_seconds() / (len(paced) - 1)
    until_paced = (paced[0] - arrivals[0]).total_seconds()
    tail = sample_seconds - (arrivals[-1] - arrivals[0]).total_seconds()  # the last answer's latency
    return until_paced + (n - 1 - start) * steady + tail, steady


def _write(output: Path, result: Mapping[str, Any]) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")


def _no_event(*_: str) -> None:
    raise AssertionError("no user is over budget in this benchmark: no event expected")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1000, help="projects to sync (default 1000; --full 10000)")
    parser.add_argument(
        "--sample", type=int, default=50, help="baseline sample size (default 50; --full 120)"
    )
    parser.add_argument(
        "--real-creates", type=int, default=5, help="real project creates to time (default 5)"
    )
    parser.add_argument("--output", type=Path, default=None, help="result file (default: see --full)")
    args = _quick.parse(parser, full={"n": 10_000, "sample": 120})
    if args.n < 1 or args.sample < 1:
        parser.error("--n and --sample must be at least 1")
    return asyncio.run(bench(args.n, args.sample, args.real_creates, _quick.output(args, "consumption.json")))


if __name__ == "__main__":
    sys.exit(main())
