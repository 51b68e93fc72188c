"""Effects that take hold when a mutation's operations finish, not when it is answered.

Neon answers ``reset_password`` at once, with the new password and its operations; the old
password keeps working until the operations finish, the new one only from then. Here the
effect (a coroutine against the PostgreSQL server) runs once the last operation's
``finishes_at`` has passed, under the project's lock; until it has been applied the
operations stay ``running`` (``held``), so a client that saw them finished can rely on the
effect. An effect that fails marks its operations ``failed``.

With ``operation_seconds`` 0 the effect is applied before the mutation is answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from tenantdb.testing.neon.clock import utcnow
from tenantdb.testing.neon.model import Operation
from tenantdb.testing.neon.state import EmulatorState

__all__ = ["apply_when_finished"]

logger = logging.getLogger(__name__)

Effect = Callable[[], Awaitable[None]]


async def apply_when_finished(
    state: EmulatorState, project_id: str, operations: Sequence[Operation], effect: Effect
) -> None:
    """Apply ``effect`` once ``operations`` have run their time; return without waiting for it."""
    for operation in operations:
        operation.held = True
    task = asyncio.ensure_future(_apply(state, project_id, operations, effect))
    state.effects.add(task)
    task.add_done_callback(state.effects.discard)
    if max(op.finishes_at for op in operations) <= utcnow():
        # Nothing to wait for: the answer shows the effect applied. Shielded, so that a
        # client going away does not leave the password half changed.
        await asyncio.shield(task)


async def _apply(
    state: EmulatorState, project_id: str, operations: Sequence[Operation], effect: Effect
) -> None:
    delay = (max(op.finishes_at for op in operations) - utcnow()).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)
    failed = False
    try:
        async with state.registry.lock(project_id):
            await effect()
    except Exception as exc:
        # Only the type: a database error's text is not worth the risk of echoing a password.
        logger.error("emulator effect on project %s failed: %s", project_id, type(exc).__name__)
        failed = True
    except asyncio.CancelledError:
        failed = True  # the emulator is stopping: the effect never took hold
        raise
    finally:
        for operation in operations:
            operation.held = False
            operation.failed = failed
