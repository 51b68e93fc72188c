"""Which Neon calls a user waits for, and which are background work.

Every Neon call goes through the one ``RateLimiter`` of the process. Interactive calls
(creates, deletes, spec changes, their operation polls and connection-URI fetches: what a
user waits for) are served first; background calls (fleet sweeps, drift checks, consumption
sync) use what is left, within a share of the account's budget.

How a caller names its class: a context variable, set by the background loops around their
work (``with background_calls(): ...``), read by the limiter. Not an argument, because

- the class belongs to the *work*, not to the call: a sweep that ends up polling an
  operation or paging through ``GET /projects`` makes every one of those calls as
  background, through client methods (``wait_for_operations``, ``find_projects``,
  ``_mutation``) that are shared with interactive work and would otherwise all need a new
  parameter threaded through them;
- asyncio copies the context into every task a background loop creates, so work it fans
  out stays background without anyone remembering to pass a flag;
- the default is interactive: a call site nobody has classified is never starved, and a
  kopf handler (which runs in kopf's own tasks, never inside a background loop's context)
  stays interactive whatever a loop elsewhere has set.

``RateLimiter.acquire`` also takes an explicit ``priority`` that wins over the context, for
the rare caller that must say it on one call.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["Priority", "background_calls", "current_priority"]


class Priority(enum.Enum):
    INTERACTIVE = "interactive"
    BACKGROUND = "background"


_PRIORITY: ContextVar[Priority] = ContextVar("tenantdb_neon_priority", default=Priority.INTERACTIVE)


def current_priority() -> Priority:
    """The class of the Neon calls made here: interactive unless a background loop said so."""
    return _PRIORITY.get()


@contextmanager
def background_calls() -> Iterator[None]:
    """Neon calls made inside (and in tasks created inside) are background work."""
    token = _PRIORITY.set(Priority.BACKGROUND)
    try:
        yield
    finally:
        _PRIORITY.reset(token)
