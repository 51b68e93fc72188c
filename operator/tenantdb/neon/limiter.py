"""The client-side rate limiter: one per operator process, shared by every Neon call.

Neon allows 700 requests per minute per account and bursts of 40 requests per second per
route; beyond that it answers 429. Those budgets are shared with everything else that uses
the account (the Neon Console included), so the operator should stay under them, not probe
them.

Design: a token bucket per limit, written as GCRA ("virtual scheduling"). Each limit is
``Rate(limit, per, burst)``. The bucket holds ``burst`` tokens and refills at
``(limit - burst) / per`` tokens a second, which is exactly what makes *any* window of
``per`` seconds hold at most ``burst + (limit - burst) = limit`` requests, wherever Neon's
window starts. A bucket as large as the limit (700) would be the classic mistake: 700
requests in the first second, 700 more over the next minute, and Neon's per-minute window
sees 1400. The default burst is 2% of the limit (14 of 700; 1 of 40 per second): a wave of
reconciles gets its first handful of calls out at once and the rest are paid out evenly
(~11.4/s), so a burst of 200 project creations takes about 16 s and earns no 429.

Fairness and cost: ``acquire`` reserves the caller's slot synchronously, in call order,
before it awaits anything, then sleeps exactly once until that slot. Slots never go
backwards, so waiters are served strictly first in, first out; nobody polls, nobody is woken
to find the token gone (no thundering herd), and a waiter costs one timer. The account-wide
and the per-route bucket both advance for each slot, and a call never overtakes an earlier
one even on another route: at the defaults the account's 11/s binds long before a route's
39/s, so a queue held up by one busy route is rare and brief, and nobody can starve. A
waiter cancelled while it sleeps does not hand its slot back: that costs at most one slot
of throughput, while handing it back would let a later caller jump the queue.

After a 429 the client calls ``defer(seconds)``: Neon has told us our budget is spent (the
console may have used some of it), so no new slot is handed out before that time.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenantdb.config import Settings

__all__ = ["Rate", "RateLimiter"]


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` requests in any window of ``per`` seconds.

    ``burst``: how many may go back to back; ``None`` picks 2% of ``limit`` (at least 1).
    """

    limit: int
    per: float
    burst: int | None = None

    def __post_init__(self) -> None:
        if self.limit < 1 or self.per <= 0:
            raise ValueError(f"a rate needs limit >= 1 and per > 0, got {self.limit}/{self.per}s")
        if self.burst is not None and not 1 <= self.burst <= self.limit:
            raise ValueError(f"burst must be within 1..{self.limit}, got {self.burst}")

    @property
    def capacity(self) -> int:
        if self.burst is not None:
            return self.burst
        return max(1, min(self.limit - 1, math.floor(self.limit * 0.02)))

    @property
    def interval(self) -> float:
        """Seconds between two slots once the burst is spent."""
        return self.per / max(1, self.limit - self.capacity)


class _Bucket:
    """GCRA state of one rate: the theoretical arrival time of the next request."""

    def __init__(self, rate: Rate) -> None:
        self._interval = rate.interval
        self._tolerance = (rate.capacity - 1) * rate.interval
        self._tat = -math.inf

    def earliest(self) -> float:
        return self._tat - self._tolerance

    def admit(self, at: float) -> None:
        self._tat = max(self._tat, at) + self._interval


class RateLimiter:
    """Paces Neon calls to ``account`` overall and ``per_route`` for each route template."""

    def __init__(
        self,
        *,
        account: Rate | None = None,
        per_route: Rate | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.account = account if account is not None else Rate(700, 60.0)
        self.per_route = per_route if per_route is not None else Rate(40, 1.0)
        self._clock = clock
        self._sleep = sleep
        self._account = _Bucket(self.account)
        self._routes: dict[str, _Bucket] = {}  # keyed by route template: a small, bounded set
        self._last_slot = -math.inf
        self._not_before = -math.inf

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        """The process's limiter: ``neon_rate_limit_per_minute``, ``neon_route_rate_limit_per_second``."""
        return cls(
            account=Rate(settings.neon_rate_limit_per_minute, 60.0),
            per_route=Rate(settings.neon_route_rate_limit_per_second, 1.0),
        )

    def __repr__(self) -> str:
        return f"RateLimiter(account={self.account!r}, per_route={self.per_route!r})"

    def _reserve(self, route: str) -> float:
        """Take the next slot for ``route``; returns how long to wait for it. Never awaits."""
        now = self._clock()
        bucket = self._routes.get(route)
        if bucket is None:
            bucket = self._routes[route] = _Bucket(self.per_route)
        slot = max(now, self._last_slot, self._not_before, self._account.earliest(), bucket.earliest())
        self._account.admit(slot)
        bucket.admit(slot)
        self._last_slot = slot
        return slot - now

    async def acquire(self, route: str) -> float:
        """Wait for this call's slot; returns the seconds waited."""
        delay = self._reserve(route)
        if delay > 0:
            await self._sleep(delay)
        return delay

    def defer(self, seconds: float) -> None:
        """Hand out no new slot for ``seconds`` (Neon answered 429 with ``Retry-After``)."""
        self._not_before = max(self._not_before, self._clock() + seconds)
