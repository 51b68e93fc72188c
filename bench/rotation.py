"""Benchmark: rotating the passwords of a whole fleet, within Neon's rate limit, while clients use it.

Everything is real except Neon and the API server (``LocalStack``: PostgreSQL, the Neon API
emulator with Neon's limits and latencies, the Kubernetes API emulator, the operator in kopf).
N WorkspaceDatabases are provisioned; then, as a platform does the day a connection string
leaked, every one of them gets a new value of the annotation ``tenantdb.io/rotate-credentials``
at once.

Measured:
* the rotations per minute, against the ceiling Neon's rate limit allows at the Neon calls one
  rotation took (700 a minute / calls per rotation);
* how long a client was without a connection: C clients, each on its own database, run a query
  every 50 ms; when Neon drops its connection (the reset's operations finish) or refuses its
  password, it reads the connection string from its Secret again and reconnects, as a client that
  re-reads its URI on an authentication failure does. Its time without a connection runs from the
  first failure to the first query that works again (p50, p95, max over the clients);
* that every database ends with a working password published and the old one refused.

Usage: ``.venv/bin/python bench/rotation.py [--n 100] [--clients 20] [--full]``; prints the
results and writes ``bench/results/quick/rotation.json``; ``--full`` is 2,000 databases and 50
clients and writes ``bench/results/rotation.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
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
import psycopg

import _quick
from tenantdb.api import ROTATE_CREDENTIALS_ANNOTATION
from tenantdb.crypto import EncryptionKey
from tenantdb.testing.neon import EmulatorOptions
from tenantdb.testing.stack import LocalStack, is_ready

RATE_PER_MINUTE, ROUTE_RATE_PER_SECOND = 700, 40
LATENCY, CREATE_LATENCY = (0.02, 0.08), (0.3, 0.8)
WORKSPACES = "/apis/tenantdb.io/v1alpha1/namespaces/default/workspacedatabases"
RESET = "POST /projects/{project_id}/branches/{branch_id}/roles/{role_name}/reset_password"
FLEET_LIST = "GET /projects"
WAVE = 200
_START = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - _START:6.1f}s] {message}", flush=True)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def name_of(index: int) -> str:
    return f"bench-rot-{index:05d}"


def workspace_database(index: int) -> dict[str, Any]:
    name = name_of(index)
    return {
        "apiVersion": "tenantdb.io/v1alpha1",
        "kind": "WorkspaceDatabase",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"userId": f"bench-user-{index % 50:03d}", "workspaceId": name},
    }


async def list_status(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    items: dict[str, dict[str, Any]] = {}
    with contextlib.suppress(httpx.HTTPError):
        response = await http.get(WORKSPACES)
        for obj in response.json().get("items", []):
            items[obj["metadata"]["name"]] = obj
    return items


async def wait_all(
    http: httpx.AsyncClient, n: int, done: Any, what: str, timeout: float, seen_at: dict[str, float]
) -> None:
    deadline = time.monotonic() + timeout
    last = 0.0
    while len(seen_at) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(seen_at)} of {n} {what} after {timeout:.0f}s")
        now = time.monotonic()
        for name, obj in (await list_status(http)).items():
            if done(obj):
                seen_at.setdefault(name, now)
        if now - last >= 15:
            last = now
            say(f"{len(seen_at)}/{n} {what}")
        await asyncio.sleep(0.5)


class Client:
    """One application on its own database: a query every ``period``; on failure, the URI read
    again from the Secret and a new connection tried until one works."""

    def __init__(self, stack: LocalStack, secret: str, period: float = 0.05) -> None:
        self.stack, self.secret, self.period = stack, secret, period
        self.key = EncryptionKey(stack.encryption_key)
        self.outages: list[float] = []
        self.failures = 0
        self.stop = asyncio.Event()

    async def uri(self) -> str:
        obj = await self.stack.get("Secret", self.secret)
        assert obj is not None
        return self.key.decrypt(base64.b64decode(obj["data"]["DATABASE_URL_ENCRYPTED"]).decode())

    async def run(self) -> None:
        conn: psycopg.AsyncConnection[Any] | None = None
        down_since: float | None = None
        while not self.stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = await psycopg.AsyncConnection.connect(
                        await self.uri(), connect_timeout=5, autocommit=True
                    )
                await conn.execute("select 1")
                if down_since is not None:
                    self.outages.append(time.monotonic() - down_since)
                    down_since = None
            except (psycopg.Error, OSError):
                self.failures += 1
                if down_since is None:
                    down_since = time.monotonic()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
                conn = None
            await asyncio.sleep(self.period)
        if conn is not None:
            await conn.close()


async def run(n: int, clients: int, operation_seconds: float, timeout: float) -> dict[str, Any]:
    options = EmulatorOptions(
        latency_seconds=LATENCY,
        create_latency_seconds=CREATE_LATENCY,
        rate_limit_per_minute=RATE_PER_MINUTE,
        route_rate_limit_per_second=ROUTE_RATE_PER_SECOND,
        operation_seconds=operation_seconds,
    )
    settings = {
        "resync_interval_seconds": 300.0,
        "neon_retry_deadline_seconds": 120.0,
        "neon_rate_limit_per_minute": RATE_PER_MINUTE,
        "neon_route_rate_limit_per_second": ROUTE_RATE_PER_SECOND,
    }
    say("starting PostgreSQL, the Neon and Kubernetes emulators, the operator")
    async with LocalStack(neon_options=options, settings_overrides=settings) as stack:
        neon = stack.neon
        assert neon is not None
        await stack.start_operator()
        gate = asyncio.Semaphore(50)

        async def apply(index: int) -> None:
            async with gate:
                await stack.apply(workspace_database(index))

        async with httpx.AsyncClient(base_url=stack.kube_url, timeout=60) as http:
            # In waves: the setup is not what is measured, and thousands of creates at once only
            # queue in the rate limiter and the metadata DB's pool.
            ready: dict[str, float] = {}
            for first in range(0, n, WAVE):
                last = min(n, first + WAVE)
                say(f"provisioning WorkspaceDatabases {first + 1}-{last} of {n}")
                await asyncio.gather(*(apply(i) for i in range(first, last)))
                await wait_all(http, last, is_ready, "Ready", timeout, ready)
            before = await list_status(http)
            secrets_of = {name: obj["status"]["secretName"] for name, obj in before.items()}
            old_uris = {name: await Client(stack, secret).uri() for name, secret in secrets_of.items()}

            probes = [Client(stack, secrets_of[name_of(i)]) for i in range(min(clients, n))]
            tasks = [asyncio.create_task(probe.run()) for probe in probes]
            await asyncio.sleep(2)  # every client connected and querying

            say(f"rotating all {n} at once (annotation {ROTATE_CREDENTIALS_ANNOTATION})")
            neon.reset_calls()
            value = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            started = time.monotonic()

            async def annotate(index: int) -> None:
                async with gate:
                    await stack.patch(
                        "WorkspaceDatabase",
                        name_of(index),
                        {"metadata": {"annotations": {ROTATE_CREDENTIALS_ANNOTATION: value}}},
                    )

            rotated: dict[str, float] = {}

            def done(obj: dict[str, Any]) -> bool:
                status = obj.get("status") or {}
                return status.get("credentialsRotationHandled") == value and not status.get(
                    "credentialsRotationStartedAt"
                )

            await asyncio.gather(*(annotate(i) for i in range(n)))
            await wait_all(http, n, done, "rotated", timeout, rotated)
            seconds = max(rotated.values()) - started
            calls = [c for c in neon.calls() if c.route != FLEET_LIST]
            await asyncio.sleep(3)  # the clients' last reconnects
            for probe in probes:
                probe.stop.set()
            await asyncio.gather(*tasks)

            say("checking every database: new password works, old one refused")
            checked = 0
            old_refused = new_works = 0
            for name, secret in list(secrets_of.items())[: max(clients, 50)]:
                new = await Client(stack, secret).uri()
                checked += 1
                new_works += await connects(new)
                old_refused += not await connects(old_uris[name])
            events = await stack.events_for(name_of(0))
        await stack.stop_operator()

    outages = [o for probe in probes for o in probe.outages]
    statuses = Counter(str(c.status) for c in calls)
    resets = sum(1 for c in calls if c.route == RESET)
    per_rotation = len(calls) / n
    ceiling = RATE_PER_MINUTE / per_rotation
    throughput = n / seconds * 60
    return {
        "n": n,
        "seconds": round(seconds, 2),
        "rotations_per_min": round(throughput, 1),
        "neon_calls_total": len(calls),
        "neon_calls_per_rotation": round(per_rotation, 2),
        "ceiling_per_min": round(ceiling, 1),
        "share_of_ceiling": round(throughput / ceiling, 3),
        "password_resets": resets,
        "clients": len(probes),
        "clients_interrupted": sum(1 for probe in probes if probe.outages),
        "p50_without_connection_s": round(percentile(outages, 0.50), 2),
        "p95_without_connection_s": round(percentile(outages, 0.95), 2),
        "max_without_connection_s": round(max(outages), 2) if outages else None,
        "failed_queries_or_connects": sum(probe.failures for probe in probes),
        "checked": checked,
        "new_password_works": new_works,
        "old_password_refused": old_refused,
        "events_of_one": sorted(Counter(str(e.get("reason")) for e in events).items()),
        "aim_met": {
            "one_reset_per_database": resets == n,
            "every_new_password_works": new_works == checked,
            "every_old_password_refused": old_refused == checked,
            "at_least_80pct_of_ceiling": throughput >= 0.8 * ceiling,
        },
        "calls_by_route": dict(Counter(c.route for c in calls).most_common()),
        "calls_by_status": dict(statuses.most_common()),
        "limits": {"per_minute": RATE_PER_MINUTE, "per_route_per_second": ROUTE_RATE_PER_SECOND},
        "emulator": {
            "latency_seconds": list(LATENCY),
            "operation_seconds": operation_seconds,
        },
        "python": platform.python_version(),
        "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


async def connects(uri: str) -> bool:
    try:
        async with await psycopg.AsyncConnection.connect(uri, connect_timeout=5) as conn:
            await conn.execute("select 1")
            return True
    except psycopg.OperationalError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=100, help="databases to rotate (100; --full 2000)")
    parser.add_argument("--clients", type=int, default=20, help="clients measured (20; --full 50)")
    parser.add_argument(
        "--operation-seconds", type=float, default=1.0, help="how long Neon's operations run (1.0)"
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up after this long (3600)")
    parser.add_argument("--output", type=Path, default=None, help="result file (default: see --full)")
    args = _quick.parse(parser, full={"n": 2000, "clients": 50})
    if args.n < 1 or args.clients < 1:
        parser.error("--n and --clients must be at least 1")
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    result = asyncio.run(run(args.n, args.clients, args.operation_seconds, args.timeout)) | _quick.commit()
    output = _quick.output(args, "rotation.json")
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict | list)}, indent=2))
    print(f"aim met: {result['aim_met']}; written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
