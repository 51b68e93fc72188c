"""Scale tests: hundreds of resources at once against the Neon emulator enforcing Neon's limits.

``Watcher`` samples every WorkspaceDatabase while a test runs, so a failure condition that
showed up for a moment and healed before the end is still seen, and measures apply → Ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest

from tenantdb.testing.stack import LocalStack, eventually, is_ready

WORKSPACE_PATH = "/apis/tenantdb.io/v1alpha1/namespaces/default/workspacedatabases"

# Ready=False reasons that only say "not there yet", never "something failed".
PROGRESS_REASONS = frozenset({"Creating"})


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    # Hundreds of resources: keep what pytest captures to warnings and up.
    caplog.set_level(logging.WARNING)


@dataclasses.dataclass
class Sighting:
    name: str
    phase: str | None
    ready: str | None
    reason: str | None
    message: str | None


@dataclasses.dataclass
class Watcher:
    """Lists the WorkspaceDatabases every ``interval`` seconds and remembers what it saw."""

    kube_url: str
    interval: float = 0.5
    applied_at: dict[str, float] = dataclasses.field(default_factory=dict)
    ready_at: dict[str, float] = dataclasses.field(default_factory=dict)
    failures: list[Sighting] = dataclasses.field(default_factory=list)
    reasons: Counter[tuple[str | None, str | None]] = dataclasses.field(default_factory=Counter)
    latest: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    async def list(self, http: httpx.AsyncClient) -> list[dict[str, Any]]:
        response = await http.get(WORKSPACE_PATH)
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json().get("items", [])
        return items

    async def list_once(self) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.kube_url, timeout=30) as http:
            return await self.list(http)

    def observe(self, items: Iterable[dict[str, Any]]) -> None:
        now = time.monotonic()
        for obj in items:
            name = obj["metadata"]["name"]
            self.latest[name] = obj
            status = obj.get("status") or {}
            ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
            if ready is not None:
                self.reasons[(ready.get("status"), ready.get("reason"))] += 1
            if is_ready(obj):
                self.ready_at.setdefault(name, now)
            failed_phase = status.get("phase") == "Failed"
            failed_ready = (
                ready is not None
                and ready.get("status") == "False"
                and ready.get("reason") not in PROGRESS_REASONS
            )
            if failed_phase or failed_ready:
                self.failures.append(
                    Sighting(
                        name=name,
                        phase=status.get("phase"),
                        ready=(ready or {}).get("status"),
                        reason=(ready or {}).get("reason"),
                        message=(ready or {}).get("message"),
                    )
                )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Watcher]:
        async with httpx.AsyncClient(
            base_url=self.kube_url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)
        ) as http:

            async def loop() -> None:
                while True:
                    with contextlib.suppress(httpx.HTTPError):
                        self.observe(await self.list(http))
                    await asyncio.sleep(self.interval)

            task = asyncio.create_task(loop())
            try:
                yield self
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                with contextlib.suppress(httpx.HTTPError):
                    self.observe(await self.list(http))

    def ready_seconds(self) -> list[float]:
        return sorted(self.ready_at[n] - self.applied_at[n] for n in self.ready_at if n in self.applied_at)


async def apply_all(stack: LocalStack, manifests: list[dict[str, Any]], watcher: Watcher) -> None:
    """Apply every manifest at once (as a platform would on a burst of sign-ups)."""
    gate = asyncio.Semaphore(50)

    async def one(manifest: dict[str, Any]) -> None:
        async with gate:
            await stack.apply(manifest)
            watcher.applied_at[manifest["metadata"]["name"]] = time.monotonic()

    await asyncio.gather(*(one(m) for m in manifests))


async def all_events(stack: LocalStack) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=stack.kube_url, timeout=30) as http:
        response = await http.get("/api/v1/namespaces/default/events")
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json().get("items", [])
        return items


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def operator_calls(stack: LocalStack, *, status: str) -> int:
    """Neon calls the operator itself made that were answered ``status`` (its own metrics)."""
    total = 0.0
    for metric in stack.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == "tenantdb_neon_api_calls_total" and sample.labels.get("status") == status:
                total += sample.value
    return int(total)


async def console_burst(stack: LocalStack, *, after_creates: int = 20, size: int = 40) -> int:
    """Someone else on the same Neon account (the Console, a script) spends a route's budget.

    Once the operator is busy creating, ``size`` requests hit ``POST /projects`` at once. They
    are invalid (Neon counts them all the same, and none makes a project), so for about a
    second the route's 40/s budget is gone and the operator's own creates are answered 429,
    whatever its own pacing: what it must then do is wait, not fail.
    """
    neon = stack.neon
    assert neon is not None

    async def busy() -> bool:
        return sum(c.route == "POST /projects" for c in neon.calls()) >= after_creates

    await eventually(busy, timeout=120, what=f"{after_creates} creates")
    refused = 0
    async with httpx.AsyncClient(
        base_url=neon.base_url, headers={"Authorization": f"Bearer {neon.api_key}"}, timeout=30
    ) as console:
        # Again until the operator has met a 429: on a loaded machine one burst can fall
        # between two of its creates.
        for _ in range(20):
            answers = await asyncio.gather(
                *(console.post("/projects", json={"project": {"pg_version": 1}}) for _ in range(size))
            )
            refused += sum(a.status_code == 400 for a in answers)
            await asyncio.sleep(0.3)
            if operator_calls(stack, status="429") > 0:
                break
    return refused
