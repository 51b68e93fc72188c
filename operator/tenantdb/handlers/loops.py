"""The operator's own loops beside kopf's handlers, and who stops them.

The fast lane, the consumption sync and enforcement, the Sim sync, the fleet observation and
the heap trim are started by kopf's start-up handler and stopped by its clean-up handler, before
the clients they use are closed. ``Loops`` is owned by ``main`` (where both handlers are
registered); ``Runtime`` holds only the clients and caches the loops and handlers share.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from tenantdb.handlers.fast_lane import FastLane
from tenantdb.handlers.runtime import Runtime

__all__ = ["Loops"]

_log = logging.getLogger(__name__)


class Loops:
    def __init__(self) -> None:
        self.lane: FastLane | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, loop: Coroutine[Any, Any, None]) -> None:
        """Run ``loop`` as the task ``name`` until ``close`` (once per process: kopf runs the
        start-up handler again after a temporary failure)."""
        if name in self._tasks:
            loop.close()
            return
        self._tasks[name] = asyncio.create_task(loop, name=f"tenantdb-{name}")

    def start_fast_lane(self, runtime: Runtime, *, finalizer: str, diffbase_key: str) -> FastLane:
        """Start the fast lane's watches and its list; its takes wait for
        ``FastLane.clients_open``. Once per process, as every loop."""
        lane = self.lane
        if lane is None:
            lane = FastLane(runtime, finalizer=finalizer, diffbase_key=diffbase_key)
            runtime.fast_lane = self.lane = lane
            self.start("fast-lane", lane.run())
        lane.start_listing()
        return lane

    async def close(self) -> None:
        """The fast lane first, its takes in flight too: a stopping replica must not make new
        signups its own (its finalizer and label written, then stopped before anything else).
        Then the other loops, newest first."""
        lane_task = self._tasks.pop("fast-lane", None)
        await _cancel(lane_task)
        if self.lane is not None:
            await self.lane.close()
        for name in reversed(list(self._tasks)):
            await _cancel(self._tasks.pop(name))


async def _cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel a loop and wait for it to end (its own failure is not ours: logged)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        try:
            await task
        except Exception as exc:
            _log.warning("%s ended with an error: %r", task.get_name(), exc)
