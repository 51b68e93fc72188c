"""The fleet sweep's loop, and the left-behind metrics read from the orphan table."""

from __future__ import annotations

import asyncio
import datetime
import logging

from tenantdb.api import KINDS
from tenantdb.handlers.background import run_while_active
from tenantdb.handlers.runtime import Runtime
from tenantdb.reconcile.sweep import sweep_once
from tenantdb.store import StoreError

__all__ = ["refresh_left_behind", "start_sweep_loop"]

_log = logging.getLogger(__name__)

_DATABASE_PLURALS = [kind.plural for kind in KINDS if kind.kind in ("GlobalDatabase", "WorkspaceDatabase")]


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


def start_sweep_loop(runtime: Runtime) -> None:
    """Start the sweep as a task of the operator (cancelled by ``Runtime.close``).

    Like every loop outside kopf's handlers it runs through ``run_while_active``: only the
    replica kopf peering lets act sweeps. The first round comes one interval after start-up.
    """
    assert runtime.store is not None
    assert runtime.kube is not None
    assert runtime.neon is not None
    store, kube, neon, settings = runtime.store, runtime.kube, runtime.neon, runtime.settings

    async def live_uids() -> set[str]:
        uids: set[str] = set()
        for plural in _DATABASE_PLURALS:
            uids |= await kube.list_uids(plural=plural, namespaces=settings.namespaces or None)
        return uids

    async def left_behind() -> dict[str, str]:
        return {row.project_id: row.disposition for row in await store.list_orphans()}

    async def round_() -> None:
        try:
            result = await sweep_once(
                neon=neon,
                store=store,
                live_uids=live_uids,
                left_behind=left_behind,
                settings=settings,
                now=datetime.datetime.now(datetime.UTC),
            )
        except Exception as exc:  # an outage delays the sweep, never ends it
            _log.warning("fleet sweep failed, retrying in %.0fs: %s", settings.sweep_interval_seconds, exc)
            return
        if result.deleted:
            runtime.metrics.swept_projects.labels(action="deleted").inc(len(result.deleted))
        if result.recorded:
            runtime.metrics.swept_projects.labels(action="recorded").inc(len(result.recorded))
        await refresh_left_behind(runtime)

    async def metrics_then_sweep() -> None:
        await refresh_left_behind(runtime)  # at start-up: what earlier runs left on record
        if settings.effective_sweep_action.value == "off":
            return
        assert runtime.gate is not None
        await asyncio.sleep(settings.sweep_interval_seconds)
        await run_while_active(
            runtime.gate, round_, interval=settings.sweep_interval_seconds, what="fleet sweep"
        )

    runtime.sweep_task = asyncio.create_task(metrics_then_sweep())
