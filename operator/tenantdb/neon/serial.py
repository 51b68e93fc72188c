"""One mutation at a time per Neon project.

Neon runs a project's operations one after another and answers ``423 Locked`` to a mutation
that arrives while one is still running. Retrying a 423 works, but costs rate-limited calls
and time; ``ProjectSerializer`` avoids it: a mutation of a project waits for the previous
mutation's operations to finish (the client already knows them), then goes out alone.

Two tasks of one process touch the same project (a reconcile patching drifted settings and
the budget loop disabling the endpoint, for example): the lock orders them; the operations
remembered here make the second wait for what the first started, even when the first has
already let go of the lock and is polling its operations itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from tenantdb.neon.models import Operation

__all__ = ["ProjectSerializer"]


class ProjectSerializer:
    """Per-project locks (created on demand, dropped when unused) and unfinished operations."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._holders: dict[str, int] = {}  # waiting or holding; the lock goes when it is 0
        self._owners: dict[str, asyncio.Task[object] | None] = {}
        self._unfinished: dict[str, list[Operation]] = {}

    @asynccontextmanager
    async def hold(self, project_id: str) -> AsyncIterator[None]:
        """Exclusive use of the project; re-entrant within one task."""
        task = asyncio.current_task()
        if task is not None and self._owners.get(project_id) is task:
            yield  # already ours: a caller holding it across a mutation and its wait
            return
        lock = self._locks.setdefault(project_id, asyncio.Lock())
        self._holders[project_id] = self._holders.get(project_id, 0) + 1
        try:
            async with lock:
                self._owners[project_id] = task
                try:
                    yield
                finally:
                    self._owners.pop(project_id, None)
        finally:
            self._holders[project_id] -= 1
            if not self._holders[project_id]:
                # Thousands of projects pass through one process: keep only the busy ones.
                del self._holders[project_id]
                del self._locks[project_id]

    def started(self, project_id: str, operations: Sequence[Operation]) -> None:
        """Remember what a mutation started, for the next mutation of the project to wait for."""
        pending = [op for op in operations if not op.done]
        if pending:
            self._unfinished[project_id] = pending
        else:
            self._unfinished.pop(project_id, None)

    def unfinished(self, project_id: str) -> list[Operation]:
        return list(self._unfinished.get(project_id, ()))

    def finished(self, project_id: str, operations: Sequence[Operation]) -> None:
        """Operations seen finished: forget them (and the project, once none is left)."""
        done = {op.id for op in operations}
        left = [op for op in self._unfinished.get(project_id, ()) if op.id not in done]
        if left:
            self._unfinished[project_id] = left
        else:
            self._unfinished.pop(project_id, None)

    def forget(self, project_id: str) -> None:
        self._unfinished.pop(project_id, None)

    def __len__(self) -> int:
        """Projects with a lock in use or operations remembered (a leak shows here)."""
        return len(self._locks.keys() | self._unfinished.keys())
