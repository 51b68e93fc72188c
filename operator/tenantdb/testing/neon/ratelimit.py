"""Neon's request budgets: per account per minute, per route per second, and the
consumption endpoints' own budget.

Sliding windows (account, route): a request is allowed when fewer than ``limit`` requests
were allowed in the past ``window`` seconds under the same key. Token buckets (consumption:
about 50 requests a minute per account, one bucket for the v2 and the legacy endpoint, as
Neon documents it): ``limit`` tokens, refilled at ``limit`` per ``per`` seconds. Refused
requests do not count. The answer to a refused one is 429 with ``Retry-After``: whole
seconds until the request would be allowed (at least 1).
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["CONSUMPTION_ROUTES", "SlidingWindows", "TokenBuckets", "is_consumption"]

#: Every route below this path (v2 and legacy) shares the consumption budget.
CONSUMPTION_ROUTES = "/consumption_history/"


def is_consumption(route: str) -> bool:
    """``route`` is ``"GET /consumption_history/v2/projects"`` or another consumption route."""
    return route.partition(" ")[2].startswith(CONSUMPTION_ROUTES)


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


class TokenBuckets:
    """Tokens left and when they were counted, per key (``"consumption"``)."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    def _tokens(self, key: str, *, limit: int, per: float, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(limit), now))
        return min(float(limit), tokens + max(0.0, now - at) * limit / per)

    def retry_after(self, key: str, *, limit: int, per: float, now: float) -> int | None:
        """Seconds to wait if ``key`` has no token left, else None. Takes nothing."""
        tokens = self._tokens(key, limit=limit, per=per, now=now)
        if tokens >= 1.0:
            return None
        return max(1, math.ceil((1.0 - tokens) * per / limit))

    def take(self, key: str, *, limit: int, per: float, now: float) -> None:
        self._buckets[key] = (self._tokens(key, limit=limit, per=per, now=now) - 1.0, now)

    def reset(self) -> None:
        self._buckets.clear()
