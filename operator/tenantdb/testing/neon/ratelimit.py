"""Neon's two request budgets: per account per minute, and per route per second.

Sliding windows: a request is allowed when fewer than ``limit`` requests were allowed in
the past ``window`` seconds under the same key. Refused requests do not count. The answer
to a refused one is 429 with ``Retry-After``: whole seconds until the oldest counted
request leaves the window (at least 1).
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["SlidingWindows"]


class SlidingWindows:
    """Timestamps of allowed requests per key (``"account"``, ``"GET /projects"`` ...)."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}

    def retry_after(self, key: str, *, limit: int, window: float, now: float) -> int | None:
        """Seconds to wait if ``key`` is over its budget, else None. Records nothing."""
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) < limit:
            return None
        return max(1, math.ceil(hits[0] + window - now))

    def record(self, key: str, now: float) -> None:
        self._hits.setdefault(key, deque()).append(now)

    def reset(self) -> None:
        self._hits.clear()
