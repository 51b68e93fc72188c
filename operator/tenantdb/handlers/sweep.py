"""The fleet sweep (run by the fleet observation's pass), and the left-behind metrics read
from the orphan table."""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

from tenantdb.api import DATABASE_KINDS
from tenantdb.handlers.runtime import Runtime
from tenantdb.reconcile.sweep import ProjectSweeper, sweep_once
from tenantdb.store import StoreError

__all__ = ["OrphanSweep", "refresh_left_behind"]

_log = logging.getLogger(__name__)

_DATABASE_PLURALS = [kind.plural for kind in DATABASE_KINDS]


async def refresh_left_behind(runtime: Runtime) -> None:
    """Set the orphaned and retained gauges from ``tenantdb_orphaned_project`` (one query)."""
    if runtime.store is None:
        return
    try:
        counts = await runtime.store.count_orphans()
    except StoreError as exc:
        _log.warning("could not count the orphaned projects: %s", exc)
        return
    runtime.metrics.orphaned_projects.set(counts.get("orphaned", 0))
    runtime.metrics.retained_projects.set(counts.get("retained", 0))


class _AlreadyListed:
    """The sweep's Neon, with the fleet observation's list of this pass as its list."""

    def __init__(self, neon: ProjectSweeper, listed: list[Any]) -> None:
        self._neon, self._listed = neon, listed

    async def find_projects(self, *, search: str, recoverable: bool = False) -> list[Any]:
        assert not recoverable
        return self._listed

    async def delete_project(self, project_id: str) -> bool:
        return await self._neon.delete_project(project_id)


class OrphanSweep:
    """Projects of ours whose resource is gone, found in the fleet observation's project list
    (no list of its own), at most once per ``TENANTDB_SWEEP_INTERVAL_SECONDS``; the first one
    interval after start-up. Runs inside the observation's pass: only on the active replica."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._last = time.monotonic()

    async def maybe_run(self, listed: list[Any]) -> None:
        runtime, settings = self._runtime, self._runtime.settings
        if settings.effective_sweep_action.value == "off":
            return
        if time.monotonic() - self._last < settings.sweep_interval_seconds:
            return
        assert runtime.store is not None
        assert runtime.kube is not None
        assert runtime.neon is not None
        store, kube = runtime.store, runtime.kube

        async def live_uids() -> set[str]:
            uids: set[str] = set()
            for plural in _DATABASE_PLURALS:
                uids |= await kube.list_uids(plural=plural, namespaces=settings.namespaces or None)
            return uids

        async def left_behind() -> dict[str, str]:
            return {row.project_id: row.disposition for row in await store.list_orphans()}

        try:
            result = await sweep_once(
                neon=_AlreadyListed(runtime.neon, listed),
                store=store,
                live_uids=live_uids,
                left_behind=left_behind,
                settings=settings,
                now=datetime.datetime.now(datetime.UTC),
            )
        except Exception as exc:  # an outage delays the sweep, never ends it
            _log.warning("fleet sweep failed, retrying at the next pass: %s", exc)
            return
        self._last = time.monotonic()
        if result.deleted:
            runtime.metrics.swept_projects.labels(action="deleted").inc(len(result.deleted))
        if result.recorded:
            runtime.metrics.swept_projects.labels(action="recorded").inc(len(result.recorded))
        await refresh_left_behind(runtime)
