"""The fleet observation's loop: one pass every ``TENANTDB_RESYNC_INTERVAL_SECONDS``.

What a pass checks and why is in ``reconcile.fleet``. Here: the order, the pacing and the
priority of its work.

- The project list and the slow rotation of endpoint reads are background calls (the limiter
  serves them from its background share, after what users wait for). Repairing a project
  deleted or renamed outside the operator is not: a user's database is gone.
- Passwords old enough are rotated at ``TENANTDB_CREDENTIAL_ROTATIONS_PER_MINUTE`` (the
  allowance carries over like the endpoint reads'), the most overdue first, a few at a time:
  background calls too, so a fleet whose passwords all came due at once (a policy just set)
  never delays a signup or a rotation somebody asked for.
- The local checks (Kubernetes and the metadata DB only) are paced at
  ``TENANTDB_LOCAL_CHECKS_PER_SECOND``, a few at a time; a pass takes at most half an
  interval of them (by count at that ceiling, by the clock when they run slower), the least
  recently checked first, so a large fleet is covered over several passes and the project
  list still runs every interval.
- Only the active replica observes (``run_while_active``), like every loop of the operator.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Coroutine
from typing import Any

from tenantdb.api import kind_named
from tenantdb.handlers.background import ActiveGate, run_while_active
from tenantdb.handlers.driver import observe_database
from tenantdb.handlers.events import PostedEvents, event_poster
from tenantdb.handlers.runtime import Runtime
from tenantdb.handlers.sweep import OrphanSweep, refresh_left_behind
from tenantdb.kube.resources import CustomResources
from tenantdb.neon import NeonClient, background_calls
from tenantdb.reconcile.fleet import compare_with_list

__all__ = ["FleetObservation", "start_fleet_observation"]

_log = logging.getLogger(__name__)

_LOCAL_CONCURRENCY = 4
# Rotations by age under way at once: each mostly waits for Neon's operations (seconds).
_ROTATION_CONCURRENCY = 4


class _PausedError(Exception):
    """Another replica acts now: the pass ends where it is."""


class FleetObservation:
    """One pass at a time; the endpoint rotation's allowance carries over between passes."""

    def __init__(self, runtime: Runtime, resources: CustomResources, gate: ActiveGate) -> None:
        self._runtime = runtime
        self._gate = gate
        self._orphans = OrphanSweep(runtime)
        self._resources = resources
        self._post = event_poster(runtime)
        self._allowance = 0.0
        self._rotation_allowance = 0.0
        self._last_pass = time.monotonic()

    async def run_pass(self) -> None:
        metrics = self._runtime.metrics
        started = time.monotonic()
        with metrics.fleet_pass_in_progress.track_inprogress():
            try:
                await self._pass()
            except* _PausedError:
                _log.info("fleet observation: paused mid-pass (another replica acts now)")
            else:
                metrics.fleet_pass_duration.observe(time.monotonic() - started)

    async def _pass(self) -> None:
        runtime = self._runtime
        settings = runtime.settings
        now = time.monotonic()
        # Endpoint reads earned since the last pass (at most two intervals' worth after a pause).
        earned = settings.endpoint_checks_per_minute * (now - self._last_pass) / 60.0
        cap = max(1.0, settings.endpoint_checks_per_minute * settings.resync_interval_seconds / 30.0)
        self._allowance = min(self._allowance + earned, cap)
        rate = settings.credential_rotations_per_minute
        earned_rotations = rate * (now - self._last_pass) / 60.0
        rotation_cap = max(1.0, rate * settings.resync_interval_seconds / 30.0)
        self._rotation_allowance = min(self._rotation_allowance + earned_rotations, rotation_cap)
        self._last_pass = now

        # 1. Which projects are still there, under their own name.
        suspect = await self._compare_with_neon()
        for uid, why in suspect.items():
            _log.warning("fleet observation: %s; reconciling its resource", why)
            await self._check(uid, full=True, check="repair")

        # 2. The slow rotation: compute settings read back, least recently observed first.
        count = int(self._allowance)
        self._allowance -= count
        with background_calls():
            for uid in runtime.fleet.stalest(count, skip=suspect):
                await self._check(uid, full=True, check="endpoint")

        # 3. Passwords old enough: rotated, the most overdue first, within the allowance.
        await self._rotations(skip=suspect)

        # 4. Secrets, rows and env vars: no Neon call unless something must be put back. Half an
        # interval of them, by count at the ceiling and by the clock when they run slower (a busy
        # API server or metadata DB): a longer pass would delay the next project list.
        budget = max(1, int(settings.local_checks_per_second * settings.resync_interval_seconds / 2))
        deadline = time.monotonic() + settings.resync_interval_seconds / 2
        await self._local_round(
            runtime.fleet.local_round()[:budget], settings.local_checks_per_second, deadline=deadline
        )

    async def _rotations(self, *, skip: dict[str, str]) -> None:
        """The rotations due by age the allowance has room for, a few at a time; an allowance
        not used (nothing due) does not pile up past its cap."""
        count = int(self._rotation_allowance)
        due = self._runtime.fleet.due_for_rotation(datetime.datetime.now(datetime.UTC), count, skip=skip)
        self._rotation_allowance -= len(due)
        if not due:
            return
        gate = asyncio.Semaphore(_ROTATION_CONCURRENCY)

        async def one(uid: str) -> None:
            async with gate:
                await self._check(uid, full=True, check="rotation", rotate_due=True)

        with background_calls():
            async with asyncio.TaskGroup() as group:  # a pause ends every rotation of the step
                for uid in due:
                    group.create_task(one(uid))

    async def _compare_with_neon(self) -> dict[str, str]:
        """The resources whose project the list misses or names otherwise (uid -> why). A step of
        its own: the list (30,000 projects, tens of MB) is not held through the rest of the pass."""
        runtime = self._runtime
        settings = runtime.settings
        assert runtime.neon is not None
        mark = runtime.fleet.mark()
        if not await self._gate.is_active():
            raise _PausedError
        # Every organisation's projects, each listed with its own key: a project missing from
        # the implicit organisation's list may be in a NeonOrganization's.
        # An organisation whose key is rejected is not listed: its tenants, checked in full,
        # say so (OrganizationUnavailable) without a call.
        pool = runtime.organizations
        clients: list[NeonClient] = [runtime.neon]
        if pool is not None:
            clients.extend(client for name, client in pool.clients().items() if pool.rejected(name) is None)
        search = f"{settings.project_name_prefix}-"
        try:
            with background_calls():
                lists = await asyncio.gather(*(client.find_projects(search=search) for client in clients))
        except Exception as exc:  # an outage delays the observation, never ends it
            # One organisation's list missing would make each of its tenants look lost: no
            # comparison at all this pass, rather than thousands of needless full checks.
            runtime.metrics.fleet_checks.labels(check="listed", result="failed").inc()
            _log.warning("fleet observation: could not list the Neon projects: %s", exc)
            return {}
        runtime.metrics.fleet_checks.labels(check="listed", result="ok").inc()
        listed = [project for projects in lists for project in projects]
        findings = compare_with_list(
            runtime.fleet, listed, prefix=settings.project_name_prefix, listed_after=mark
        )
        runtime.projects.update(findings.proven)
        # The orphan sweep: each organisation's list, its projects deleted with its own key.
        await self._orphans.maybe_run(list(zip(clients, lists, strict=True)))
        return findings.suspect

    async def _local_round(self, uids: list[str], rate: float, *, deadline: float) -> None:
        """Checks paced at ``rate``; none starts after ``deadline`` (those left go first in the
        next pass: the least recently checked lead the round)."""
        gate = asyncio.Semaphore(_LOCAL_CONCURRENCY)
        started = time.monotonic()

        async def one(index: int, uid: str) -> None:
            async with gate:
                delay = started + index / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if time.monotonic() >= deadline:
                    return
                await self._check(uid, full=False, check="local")

        with background_calls():  # a put-back URI fetch is background work too
            async with asyncio.TaskGroup() as group:  # a pause ends every check of the round
                for index, uid in enumerate(uids):
                    group.create_task(one(index, uid))

    async def _check(self, uid: str, *, full: bool, check: str, rotate_due: bool = False) -> None:
        runtime = self._runtime
        # Asked before every check, not only before the pass (kopf pauses its handlers at once;
        # a pass may be long): a paused replica stops within the gate's answer time.
        if not await self._gate.is_active():
            raise _PausedError
        entry = runtime.fleet.get(uid)
        if entry is None:
            return  # deleted (or unsettled) since the pass began
        kind = kind_named(entry.kind)
        try:
            body = await self._resources.get(plural=kind.plural, namespace=entry.namespace, name=entry.name)
        except Exception as exc:
            runtime.metrics.fleet_checks.labels(check=check, result="failed").inc()
            where = f"{kind.kind} {entry.namespace}/{entry.name}"
            _log.warning("fleet observation: reading %s: %s", where, exc)
            return
        if body is None or str((body.get("metadata") or {}).get("uid")) != uid:
            runtime.fleet.drop(uid)  # gone; a namesake is another resource with its own resume
            return
        events = PostedEvents(self._post, kind=kind.kind, namespace=entry.namespace, name=entry.name)
        ok = await observe_database(runtime, kind, body, events, full=full, rotate_due=rotate_due)
        runtime.metrics.fleet_checks.labels(check=check, result="ok" if ok else "failed").inc()


def start_fleet_observation(runtime: Runtime) -> Coroutine[Any, Any, None]:
    """The observation's loop, for ``Loops`` to run. The first pass comes once the resume
    handlers had a moment to register the fleet."""
    assert runtime.kube is not None
    assert runtime.gate is not None
    gate = runtime.gate
    observation = FleetObservation(runtime, CustomResources(runtime.kube), gate)
    interval = runtime.settings.resync_interval_seconds
    runtime.metrics.fleet_pass_interval.set(interval)

    async def observe() -> None:
        await refresh_left_behind(runtime)  # at start-up: what earlier runs left on record
        await asyncio.sleep(min(interval, 30.0))
        await run_while_active(gate, observation.run_pass, interval=interval, what="fleet observation")

    return observe()
