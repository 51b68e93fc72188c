"""``tenantdb adopt``: make, at once and with progress, the resources the Sim sync would make.

Over a platform with 100,000 users the sync meets a backlog of hundreds of thousands of creates.
This works through it on its own, saying how far it has come: it computes what should exist
exactly as the sync does (``sim_sync.desired`` and ``sim_sync.plan``, same names, labels and
specs), keeps only the creates (never a patch or a delete: those stay the sync's), and sends
them through a token bucket at ``TENANTDB_SIM_WRITES_PER_SECOND``.

Idempotent and resumable: what exists is listed first and left alone, and a create answered
409 (made meanwhile, by the sync or an earlier run) counts as existing. Stopped half-way, it is
run again. Progress (exist, created now, Ready, rate, time left) is reported every interval,
from a listing of the namespace; that listing is spaced out to at least three times its own
duration, so a large namespace is not listed without pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from tenantdb.api import KINDS
from tenantdb.reconcile.sim_sync.bucket import TokenBucket
from tenantdb.reconcile.sim_sync.desired import DesiredResource, TenantKey
from tenantdb.reconcile.sim_sync.plan import cluster_resource, index_cluster, make_plan, manifest

__all__ = ["Progress", "SwitchOnResources", "count_ready", "switch_on"]

# The spacing of progress listings, as a multiple of how long the last one took.
_LISTING_SPACING = 3.0


class SwitchOnResources(Protocol):
    async def list(self, *, plural: str, namespace: str) -> list[dict[str, Any]]: ...

    async def create(self, *, plural: str, namespace: str, body: Mapping[str, Any]) -> bool: ...


@dataclasses.dataclass
class Progress:
    """How far the switch-on has come. Times are the clock's (monotonic seconds)."""

    wanted: int  # resources the Sim sync wants (databases and budgets)
    started: float
    existing: int = 0  # already there (listed at the start, or answered 409)
    created: int = 0  # made by this run
    to_create: int = 0  # creates this run set out to send
    ready: int = 0  # of the wanted, Ready at the last count
    ready_at_start: int | None = None
    creates_done_at: float | None = None
    done: bool = False

    @property
    def exist(self) -> int:
        return self.existing + self.created

    def create_rate(self, now: float) -> float:
        """Creates a second so far (the write pacing shows here)."""
        end = self.creates_done_at if self.creates_done_at is not None else now
        elapsed = end - self.started
        return self.created / elapsed if elapsed > 0 else 0.0

    def ready_rate(self, now: float) -> float:
        elapsed = now - self.started
        gained = self.ready - (self.ready_at_start or 0)
        return gained / elapsed if elapsed > 0 and gained > 0 else 0.0

    def seconds_left(self, now: float) -> float | None:
        """Until every wanted resource exists and is Ready, at the rates so far; None: unknown."""
        waiting_creates = self.wanted - self.exist
        if waiting_creates > 0:
            rate = self.create_rate(now)
            return waiting_creates / rate if rate > 0 else None
        missing = self.wanted - self.ready
        if missing <= 0:
            return 0.0
        rate = self.ready_rate(now)
        return missing / rate if rate > 0 else None


def _is_ready(obj: Mapping[str, Any]) -> bool:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def count_ready(
    listing: list[tuple[str, Mapping[str, Any]]], desired: Mapping[TenantKey, DesiredResource]
) -> int:
    """How many wanted resources are Ready: the sync's, or one made by hand for the same tenant."""
    ready: set[TenantKey] = set()
    for kind, obj in listing:
        resource = cluster_resource(kind, obj)
        if resource is not None and resource.key in desired and _is_ready(obj):
            ready.add(resource.key)
    return len(ready)


async def _list(resources: SwitchOnResources, namespace: str) -> list[tuple[str, Mapping[str, Any]]]:
    listing: list[tuple[str, Mapping[str, Any]]] = []
    for kind in KINDS:
        listing.extend(
            (kind.kind, obj) for obj in await resources.list(plural=kind.plural, namespace=namespace)
        )
    return listing


async def switch_on(
    *,
    desired: Mapping[TenantKey, DesiredResource],
    resources: SwitchOnResources,
    namespace: str,
    writes_per_second: float,
    report: Callable[[Progress], None],
    interval: float = 10.0,
    wait_ready: bool = True,
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Progress:
    """Create what the Sim sync would create and report progress until every wanted resource
    exists (and, with ``wait_ready``, is Ready) or ``timeout`` seconds have passed.

    ``report`` is called at the start and every ``interval``; the caller says the last word
    from the ``Progress`` returned (``done`` tells whether everything got there).
    """
    started = clock()
    listing = await _list(resources, namespace)
    plan = make_plan(
        desired,
        index_cluster(listing),
        archived_workspace_ids=set(),
        archived_deletion_policy="Retain",  # unused: nothing is deleted here
        delete_absent=False,
    )
    progress = Progress(wanted=len(desired), started=started, to_create=len(plan.create))
    progress.existing = len(desired) - len(plan.create)
    progress.ready = progress.ready_at_start = count_ready(listing, desired)
    report(progress)

    deadline = None if timeout is None else started + timeout
    reporter = asyncio.create_task(
        _report_while_running(progress, desired, resources, namespace, report, interval, clock)
    )
    try:
        bucket = TokenBucket(writes_per_second, clock=clock)
        for want in plan.create:
            if deadline is not None and clock() >= deadline:
                break
            await bucket.take()
            body = manifest(want, namespace)
            if await resources.create(plural=want.plural, namespace=namespace, body=body):
                progress.created += 1
            else:
                progress.existing += 1  # made meanwhile (the sync, another run): 409
        progress.creates_done_at = clock()
        while wait_ready and progress.exist >= progress.wanted and progress.ready < progress.wanted:
            if deadline is not None and clock() >= deadline:
                break
            await asyncio.sleep(interval)
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
    if progress.exist >= progress.wanted:
        progress.ready = count_ready(await _list(resources, namespace), desired)
    progress.done = progress.exist >= progress.wanted and (
        not wait_ready or progress.ready >= progress.wanted
    )
    return progress


async def _report_while_running(
    progress: Progress,
    desired: Mapping[TenantKey, DesiredResource],
    resources: SwitchOnResources,
    namespace: str,
    report: Callable[[Progress], None],
    interval: float,
    clock: Callable[[], float],
) -> None:
    """Every ``interval``: count Ready (a listing, spaced out) and report."""
    next_listing = clock()
    while True:
        await asyncio.sleep(interval)
        if clock() >= next_listing:
            began = clock()
            with contextlib.suppress(Exception):  # a failed count only leaves the last one
                progress.ready = count_ready(await _list(resources, namespace), desired)
            next_listing = clock() + _LISTING_SPACING * (clock() - began)
        report(progress)
