"""Benchmark: signups spread over several Neon organisations (the NeonOrganization pool).

Everything is real except Neon and the API server: ``LocalStack`` starts PostgreSQL, the Neon
API emulator serving ``--n-orgs`` organisations (each its own key, its own 700 requests a
minute and 40 a second per route, Neon's latencies) and the Kubernetes API emulator, and runs
the operator (kopf) against them with one NeonOrganization per organisation (each
``maxProjects`` = ``--max-projects``). Every project is a real PostgreSQL database and role
(not registry-only): at this size this machine keeps up.

Measured: N GlobalDatabases applied at once, the time until all are Ready, where each was
placed, the most calls any organisation's key made in a minute (sampled from its client each
second); then one organisation's key is revoked in Neon and M more signups are applied: the
share of them Ready elsewhere. The ceiling is the sum over organisations of their rate limit
divided by the calls one provision costs.

Usage: ``.venv/bin/python bench/orgs.py [--n 60] [--after-revoke 15] [--n-orgs 3] [--full]``;
writes ``bench/results/quick/orgs.json`` (``--full``: 600 and 100, ``bench/results/orgs.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import json
import logging
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

import _quick
from tenantdb.testing.neon import EmulatorOptions
from tenantdb.testing.stack import LocalStack, is_ready

RATE_PER_MINUTE, ROUTE_RATE_PER_SECOND = 700, 40
LATENCY, CREATE_LATENCY = (0.02, 0.08), (0.3, 0.8)
GLOBALS = "/apis/tenantdb.io/v1alpha1/namespaces/default/globaldatabases"
_START = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - _START:6.1f}s] {message}", flush=True)


def signup(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "tenantdb.io/v1alpha1",
        "kind": "GlobalDatabase",
        "metadata": {"name": f"bench-u-{index:05d}", "namespace": "default"},
        "spec": {"userId": f"bench-user-{index:05d}"},
    }


async def define_organisations(stack: LocalStack, n_orgs: int, max_projects: int) -> list[str]:
    assert stack.neon is not None
    names = []
    for index in range(n_orgs):
        name, org_id = f"org{index}", f"org-bench-{index}"
        organization = stack.neon.add_organization(org_id, rate_limit_per_minute=RATE_PER_MINUTE)
        key = base64.b64encode(organization.api_key.encode()).decode()
        await stack.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"neon-{name}", "namespace": "default"},
                "data": {"NEON_API_KEY": key},
            }
        )
        await stack.apply(
            {
                "apiVersion": "tenantdb.io/v1alpha1",
                "kind": "NeonOrganization",
                "metadata": {"name": name},
                "spec": {
                    "organizationId": org_id,
                    "apiKeySecretRef": {"name": f"neon-{name}", "namespace": "default"},
                    "maxProjects": max_projects,
                },
            }
        )
        names.append(name)
    return names


async def all_objects(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    with contextlib.suppress(httpx.HTTPError):
        response = await http.get(GLOBALS)
        return {obj["metadata"]["name"]: obj for obj in response.json().get("items", [])}
    return {}


async def ready_objects(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    return {name: obj for name, obj in (await all_objects(http)).items() if is_ready(obj)}


async def wait_ready(http: httpx.AsyncClient, names: set[str], timeout: float) -> dict[str, float]:
    """When each of ``names`` was first seen Ready (those Ready within ``timeout``)."""
    ready_at: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    last = 0.0
    while names - set(ready_at) and time.monotonic() < deadline:
        now = time.monotonic()
        for name in (await ready_objects(http)).keys() & names:
            ready_at.setdefault(name, now)
        if now - last >= 10:
            last = now
            say(f"{len(ready_at)}/{len(names)} Ready")
        await asyncio.sleep(0.25)
    return ready_at


async def run(args: argparse.Namespace) -> dict[str, Any]:
    options = EmulatorOptions(
        latency_seconds=LATENCY,
        create_latency_seconds=CREATE_LATENCY,
        rate_limit_per_minute=RATE_PER_MINUTE,
        route_rate_limit_per_second=ROUTE_RATE_PER_SECOND,
        operation_seconds=args.operation_seconds,
    )
    settings = {
        "resync_interval_seconds": 300.0,
        "neon_retry_deadline_seconds": 120.0,
        "organization_refresh_seconds": 5.0,
    }
    say(f"starting PostgreSQL and the emulators ({args.n_orgs} organisations)")
    async with LocalStack(neon_options=options, settings_overrides=settings) as stack:
        neon = stack.neon
        assert neon is not None
        names = await define_organisations(stack, args.n_orgs, args.max_projects)
        await stack.start_operator()
        assert stack.runtime is not None
        pool = stack.runtime.organizations
        assert pool is not None
        assert pool.in_use
        neon.reset_calls()

        peak: Counter[str] = Counter()

        async def sample() -> None:
            while True:
                for name, client in list(pool.clients().items()):
                    peak[name] = max(peak[name], client.calls_last_minute())
                await asyncio.sleep(1.0)

        sampler = asyncio.create_task(sample())
        gate = asyncio.Semaphore(50)

        async def apply(index: int) -> None:
            async with gate:
                await stack.apply(signup(index))

        async with httpx.AsyncClient(base_url=stack.kube_url, timeout=30) as http:
            say(f"applying {args.n} GlobalDatabases at once")
            started = time.monotonic()
            first = {f"bench-u-{i:05d}" for i in range(args.n)}
            await asyncio.gather(*(apply(i) for i in range(args.n)))
            ready_at = await wait_ready(http, first, args.timeout)
            if len(ready_at) < args.n:
                raise TimeoutError(f"only {len(ready_at)} of {args.n} Ready after {args.timeout:.0f}s")
            seconds = max(ready_at.values()) - started
            calls = len(neon.calls())
            say(f"{args.n} Ready in {seconds:.1f}s")

            # One organisation's key revoked in Neon's console; its status says so; new signups.
            revoked_name = names[0]
            for organization in neon.options.organizations:
                if organization.org_id == "org-bench-0":
                    organization.revoked = True
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if pool.rejected(revoked_name) is not None:
                    break
                await asyncio.sleep(0.5)
            say(f"{revoked_name}'s key revoked; applying {args.after_revoke} more")
            later = {f"bench-u-{i:05d}" for i in range(args.n, args.n + args.after_revoke)}
            await asyncio.gather(*(apply(i) for i in range(args.n, args.n + args.after_revoke)))
            later_ready = await wait_ready(http, later, args.timeout)
            # Where every tenant is (those of the revoked organisation too).
            placed = Counter(
                str((obj.get("status") or {}).get("organization"))
                for obj in (await all_objects(http)).values()
            )
            later_places = Counter(
                str(obj["status"].get("organization"))
                for name, obj in (await ready_objects(http)).items()
                if name in later
            )
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await stack.stop_operator()

    per_provision = calls / args.n
    ceiling = args.n_orgs * RATE_PER_MINUTE / max(1.0, per_provision)
    throughput = args.n / seconds * 60
    return {
        "n_orgs": args.n_orgs,
        "n": args.n,
        "seconds": round(seconds, 2),
        "provisions_per_minute": round(throughput, 1),
        "calls_per_provision": round(per_provision, 2),
        "ceiling_per_minute": round(ceiling, 1),
        "ratio_of_ceiling": round(throughput / ceiling, 3),
        "max_calls_per_minute_per_org": max(peak.values(), default=0),
        "calls_per_minute_per_org": dict(peak),
        "placements": dict(placed),
        "max_projects_per_org": args.max_projects,
        "placements_past_capacity": sum(max(0, count - args.max_projects) for count in placed.values()),
        "after_revoke": args.after_revoke,
        "revoked_org": revoked_name,
        "ready_ratio_with_one_org_revoked": round(len(later_ready) / max(1, args.after_revoke), 3),
        "placements_after_revoke": dict(later_places),
        "kubernetes_api": "kmock Kubernetes API emulator, in-process (tenantdb.testing.kube)",
        "projects": "real PostgreSQL databases and roles (not registry-only)",
        "limits_per_org": {"per_minute": RATE_PER_MINUTE, "per_route_per_second": ROUTE_RATE_PER_SECOND},
        "emulator": {
            "latency_seconds": list(LATENCY),
            "create_latency_seconds": list(CREATE_LATENCY),
            "operation_seconds": args.operation_seconds,
        },
        "note": "a quick run's throughput is mostly the rate limiters' burst; "
        "the ceiling is a full-size figure",
        "python": platform.python_version(),
        "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=60, help="signups applied at once (60; --full 600)")
    parser.add_argument(
        "--after-revoke", type=int, default=15, help="signups after one key is revoked (15; --full 100)"
    )
    parser.add_argument("--n-orgs", type=int, default=3, help="organisations in the pool (3)")
    parser.add_argument(
        "--max-projects",
        type=int,
        default=None,
        help="maxProjects of each (default: 45%% of n + after-revoke)",
    )
    parser.add_argument("--operation-seconds", type=float, default=1.0, help="Neon's operations (1.0)")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after this long (900)")
    parser.add_argument("--output", type=Path, default=None, help="result file (default: see --full)")
    args = _quick.parse(parser, full={"n": 600, "after_revoke": 100})
    if args.n_orgs < 2:
        parser.error("--n-orgs must be at least 2 (one is revoked)")
    if args.max_projects is None:
        args.max_projects = max(1, int(0.45 * (args.n + args.after_revoke)))
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    result = asyncio.run(run(args)) | _quick.commit()
    output = _quick.output(args, "orgs.json")
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}, indent=2))
    print(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
