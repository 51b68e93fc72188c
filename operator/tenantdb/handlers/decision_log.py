"""The decision log's retention: decisions older than ``TENANTDB_DECISION_LOG_RETENTION_DAYS``
are deleted, once an hour, by the active replica (``run_while_active``, as every loop)."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Coroutine
from typing import Any

from tenantdb.handlers.background import run_while_active
from tenantdb.handlers.runtime import Runtime
from tenantdb.store import StoreError

__all__ = ["PRUNE_INTERVAL_SECONDS", "prune_decision_log", "start_decision_log_retention"]

_log = logging.getLogger(__name__)

# A day's worth of rows expires in an hour's worth of batches: hourly keeps each prune small.
PRUNE_INTERVAL_SECONDS = 3600.0


async def prune_decision_log(runtime: Runtime, *, now: datetime.datetime | None = None) -> int:
    """Delete the decisions past their retention; how many went (a failure: logged, 0)."""
    assert runtime.store is not None
    now = now or datetime.datetime.now(datetime.UTC)
    before = now - datetime.timedelta(days=runtime.settings.decision_log_retention_days)
    try:
        deleted = await runtime.store.prune_decisions(before=before)
    except StoreError as exc:
        _log.warning("could not prune the decision log (retried in an hour): %s", exc)
        return 0
    runtime.metrics.decision_log_pruned.inc(deleted)
    if deleted:
        _log.info("decision log: deleted %d decisions older than %s", deleted, before.date().isoformat())
    return deleted


def start_decision_log_retention(runtime: Runtime) -> Coroutine[Any, Any, None]:
    """The hourly prune, for ``Loops`` to run."""
    assert runtime.gate is not None

    async def prune() -> None:
        await prune_decision_log(runtime)

    return run_while_active(
        runtime.gate, prune, interval=PRUNE_INTERVAL_SECONDS, what="decision log retention"
    )
