"""Benchmark: N workspace databases at once, through the running operator, within Neon's limits.

Everything is real except Neon and the API server: ``LocalStack`` starts PostgreSQL, the Neon
API emulator (every project a real database and role) and the Kubernetes API emulator, and
runs the operator (kopf) against them. The emulator enforces Neon's limits (700 requests a
minute per account, 40 a second per route) and answers with Neon's latencies (creates
0.3-0.8 s, other calls 20-80 ms); the operator keeps its production settings for those limits.

Measured: N WorkspaceDatabases applied at once, the time until all are Ready, each one's
time from apply to Ready, and every Neon call the emulator served meanwhile. The ceiling is
what the rate limit allows at that many calls per provision (700 / calls per provision).

Baseline, the seed's way: a platform request handler creating one database after another,
synchronously (``httpx.Client``: ``POST /projects``, then poll its operations until they
finish), on a smaller sample against the same emulator, before the operator starts.

Usage: ``.venv/bin/python bench/provision.py [--n 100] [--baseline-n 5] [--full]``; prints the
results and writes ``bench/results/quick/provision.json``; ``--full`` is 200 databases and a
baseline of 20 and writes ``bench/results/provision.json``. A quick run's throughput is partly
the rate limiter's burst: the ceiling is a full-size figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import logging
import math
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
WORKSPACES = "/apis/tenantdb.io/v1alpha1/namespaces/default/workspacedatabases"
_START = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - _START:6.1f}s] {message}", flush=True)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def workspace_database(index: int) -> dict[str, Any]:
    name = f"bench-ws-{index:05d}"
    return {
        "apiVersion": "tenantdb.io/v1alpha1",
        "kind": "WorkspaceDatabase",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"userId": f"bench-user-{index % 50:03d}", "workspaceId": name},
    }


# --- baseline: one synchronous create after another ------------------------------------------------
def baseline(base_url: str, api_key: str, n: int, poll_seconds: float = 0.5) -> dict[str, Any]:
    """What a request handler does without an operator: create, wait, next. Runs in a thread."""
    calls = 0
    started = time.monotonic()
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30) as http:
        for index in range(n):
            response = http.post(
                "/projects",
                json={"project": {"name": f"baseline-{index:04d}", "region_id": "aws-us-east-2"}},
            )
            calls += 1
            response.raise_for_status()
            body = response.json()
            project_id = body["project"]["id"]
            for operation in body.get("operations", []):
                status = operation["status"]
                while status not in ("finished", "skipped"):
                    if status in ("failed", "error", "cancelled"):
                        raise RuntimeError(f"baseline: operation {operation['id']} {status}")
                    time.sleep(poll_seconds)
                    polled = http.get(f"/projects/{project_id}/operations/{operation['id']}")
                    calls += 1
                    polled.raise_for_status()
                    status = polled.json()["operation"]["status"]
    seconds = time.monotonic() - started
    return {
        "n": n,
        "seconds": round(seconds, 2),
        "throughput_per_min": round(n / seconds * 60, 1),
        "api_calls_per_provision": round(calls / n, 2),
    }


# --- the operator ---------------------------------------------------------------------------------
async def watch_ready(
    http: httpx.AsyncClient, applied_at: dict[str, float], ready_at: dict[str, float], n: int, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    last_report = 0.0
    while len(ready_at) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(ready_at)} of {n} Ready after {timeout:.0f}s")
        with contextlib.suppress(httpx.HTTPError):
            response = await http.get(WORKSPACES)
            now = time.monotonic()
            for obj in response.json().get("items", []):
                if is_ready(obj):
                    ready_at.setdefault(obj["metadata"]["name"], now)
        if time.monotonic() - last_report >= 10:
            last_report = time.monotonic()
            say(f"{len(ready_at)}/{n} Ready")
        await asyncio.sleep(0.25)


async def run(n: int, baseline_n: int, operation_seconds: float, timeout: float) -> dict[str, Any]:
    options = EmulatorOptions(
        latency_seconds=LATENCY,
        create_latency_seconds=CREATE_LATENCY,
        rate_limit_per_minute=RATE_PER_MINUTE,
        route_rate_limit_per_second=ROUTE_RATE_PER_SECOND,
        operation_seconds=operation_seconds,
    )
    settings = {
        # Production values where LocalStack shortens them for the small tests.
        "resync_interval_seconds": 300.0,
        "neon_retry_deadline_seconds": 120.0,
        "neon_rate_limit_per_minute": RATE_PER_MINUTE,
        "neon_route_rate_limit_per_second": ROUTE_RATE_PER_SECOND,
    }
    say("starting PostgreSQL, the Neon and Kubernetes emulators")
    async with LocalStack(neon_options=options, settings_overrides=settings) as stack:
        neon = stack.neon
        assert neon is not None

        say(f"baseline: {baseline_n} synchronous creates, one after another")
        base = await asyncio.to_thread(baseline, neon.base_url, neon.api_key, baseline_n)
        say(f"baseline: {base['throughput_per_min']}/min")

        await stack.start_operator()
        neon.reset_calls()
        applied_at: dict[str, float] = {}
        ready_at: dict[str, float] = {}
        gate = asyncio.Semaphore(50)

        async def apply(index: int) -> None:
            manifest = workspace_database(index)
            async with gate:
                await stack.apply(manifest)
            applied_at[manifest["metadata"]["name"]] = time.monotonic()

        say(f"operator: applying {n} WorkspaceDatabases at once")
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=stack.kube_url, timeout=30) as http:
            watcher = asyncio.create_task(watch_ready(http, applied_at, ready_at, n, timeout))
            await asyncio.gather(*(apply(i) for i in range(n)))
            await watcher
        seconds = max(ready_at.values()) - started
        calls = neon.calls()
        await stack.stop_operator()
        say(f"operator: {n} Ready in {seconds:.1f}s; cleaning up")

    ready_times = [ready_at[name] - applied_at[name] for name in ready_at]
    statuses = Counter(str(c.status) for c in calls)
    per_provision = len(calls) / n
    ceiling = RATE_PER_MINUTE / max(1.0, per_provision)  # at least the create itself
    throughput = n / seconds * 60
    return {
        "n": n,
        "seconds": round(seconds, 2),
        "throughput_per_min": round(throughput, 1),
        "api_calls_total": len(calls),
        "api_calls_per_provision": round(per_provision, 2),
        "ceiling_per_min": round(ceiling, 1),
        "throughput_share_of_ceiling": round(throughput / ceiling, 3),
        "p50_ready_s": round(percentile(ready_times, 0.50), 2),
        "p95_ready_s": round(percentile(ready_times, 0.95), 2),
        "max_ready_s": round(max(ready_times), 2),
        "first_ready_s": round(min(ready_at.values()) - started, 2),
        "baseline_throughput_per_min": base["throughput_per_min"],
        "baseline": base,
        "speedup_vs_baseline": round(throughput / base["throughput_per_min"], 1),
        "aim_met": {
            "throughput_at_least_90pct_of_ceiling": throughput >= 0.9 * ceiling,
            "at_most_3_calls_per_provision": per_provision <= 3.0,
        },
        "calls_by_route": dict(Counter(c.route for c in calls).most_common()),
        "calls_by_status": dict(statuses.most_common()),
        "rate_limited_429": statuses.get("429", 0),
        "limits": {"per_minute": RATE_PER_MINUTE, "per_route_per_second": ROUTE_RATE_PER_SECOND},
        "emulator": {
            "latency_seconds": list(LATENCY),
            "create_latency_seconds": list(CREATE_LATENCY),
            "operation_seconds": operation_seconds,
        },
        "python": platform.python_version(),
        "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--n", type=int, default=100, help="workspace databases to provision (100; --full 200)"
    )
    parser.add_argument(
        "--baseline-n", type=int, default=5, help="sequential creates in the baseline (5; --full 20)"
    )
    parser.add_argument(
        "--operation-seconds", type=float, default=1.0, help="how long Neon's operations run (1.0)"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this long (600)")
    parser.add_argument("--output", type=Path, default=None, help="result file (default: see --full)")
    args = _quick.parse(parser, full={"n": 200, "baseline_n": 20})
    if args.n < 1 or args.baseline_n < 1:
        parser.error("--n and --baseline-n must be at least 1")
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    result = asyncio.run(run(args.n, args.baseline_n, args.operation_seconds, args.timeout)) | _quick.commit()
    output = _quick.output(args, "provision.json")
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}, indent=2))
    print(f"aim met: {result['aim_met']}; written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
