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

Priority (``tenantdb.neon.priority``): what is said above is the *interactive* lane, the calls
a user waits for. Background calls (sweeps, drift checks, consumption) never reserve a slot
in the future, so they can never sit in front of an interactive call: they wait in their own
first-in-first-out line (each waiter has its own event, set when it becomes first), and only the
first in line is awake. It sleeps until the moment a slot would be free and takes it only if
it still is (no interactive call reserved it meanwhile, and none is queued: slots stay in
time order, which is what keeps GCRA's window guarantee). So an interactive call finds at
most one background call ahead of it. Two more rules bound the background:

- a budget: background calls also pass their own bucket of ``background_share`` of the
  account's rate (default 10%: 70 of 700 a minute), so a sweep with a thousand pages paces
  itself and leaves the rest of the account to users, to the console, to other replicas;
- no starvation: once ``starved_after`` seconds (the time of ``1 / background_floor``
  background slots) have passed since the last background slot, the next interactive call to
  reserve gives its slot to the background call first in line and takes the one after (with
  no interactive call coming, the background call reserves the next slot itself). Under
  interactive load that never lets up, background still gets ``background_floor`` of its
  share (a quarter by default), and each interactive call is delayed by one slot at most.

Consumption: Neon limits its consumption endpoints (v2 and legacy, one token bucket) to
about 50 requests a minute per account, on top of the account's 700. Every route under
``/consumption_history/`` also passes a ``consumption`` bucket, whatever its priority.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tenantdb.neon.priority import Priority, current_priority

if TYPE_CHECKING:
    from tenantdb.config import Settings

__all__ = ["CONSUMPTION_ROUTES", "Rate", "RateLimiter", "shared"]

# Neon's consumption endpoints (v2 and legacy) share one rate limit of their own.
CONSUMPTION_ROUTES = "/consumption_history/"


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


class _Waiter:
    """A background call in line: ``turn`` is set when it is first; ``slot`` once it has one."""

    __slots__ = ("route", "slot", "turn")

    def __init__(self, route: str) -> None:
        self.route = route
        self.slot: float | None = None
        self.turn = asyncio.Event()


class RateLimiter:
    """Paces Neon calls: ``account`` overall, ``per_route`` per route template, ``consumption``
    for the consumption routes, and ``background_share`` of ``account`` for background calls."""

    def __init__(
        self,
        *,
        account: Rate | None = None,
        per_route: Rate | None = None,
        consumption: Rate | None = None,
        background_share: float = 0.1,
        background_floor: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not 0 < background_share <= 1:
            raise ValueError(f"background_share must be within (0, 1], got {background_share}")
        if not 0 < background_floor <= 1:
            raise ValueError(f"background_floor must be within (0, 1], got {background_floor}")
        self.account = account if account is not None else Rate(700, 60.0)
        self.per_route = per_route if per_route is not None else Rate(40, 1.0)
        self.consumption = consumption if consumption is not None else consumption_rate(50)
        # One at a time (burst 1): a sweep's pages are spread out, not sent as a volley.
        self.background = Rate(max(1, math.floor(self.account.limit * background_share)), self.account.per, 1)
        self.starved_after = self.background.interval / background_floor
        self._clock = clock
        self._sleep = sleep
        self._account = _Bucket(self.account)
        self._consumption = _Bucket(self.consumption)
        self._background = _Bucket(self.background)
        self._routes: dict[str, _Bucket] = {}  # keyed by route template: a small, bounded set
        self._line: deque[_Waiter] = deque()  # background calls without a slot, first in line first
        self._last_background_slot = -math.inf
        self._last_slot = -math.inf
        self._not_before = -math.inf
        self._granted: deque[float] = deque()  # when each call of the last minute was let through

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        """The process's limiter, from the ``neon_*`` rate settings (its shard's share of them)."""
        share = settings.neon_rate_limit_share
        return cls(
            account=Rate(shared(settings.neon_rate_limit_per_minute, share), 60.0),
            per_route=Rate(shared(settings.neon_route_rate_limit_per_second, share), 1.0),
            consumption=consumption_rate(shared(settings.neon_consumption_rate_limit_per_minute, share)),
            background_share=settings.neon_background_share,
        )

    def __repr__(self) -> str:
        return (
            f"RateLimiter(account={self.account!r}, per_route={self.per_route!r}, "
            f"consumption={self.consumption!r}, background={self.background!r})"
        )

    def _buckets(self, route: str, priority: Priority) -> list[_Bucket]:
        """The buckets a call passes: the account's first, then the route's own ones."""
        bucket = self._routes.get(route)
        if bucket is None:
            bucket = self._routes[route] = _Bucket(self.per_route)
        buckets = [self._account, bucket]
        if _is_consumption(route):
            buckets.append(self._consumption)
        if priority is Priority.BACKGROUND:
            buckets.append(self._background)
        return buckets

    def _earliest(self, now: float, buckets: list[_Bucket]) -> float:
        """The first free slot: after every reserved one, ``defer``, and within every bucket."""
        return max(now, self._last_slot, self._not_before, *(bucket.earliest() for bucket in buckets))

    def _admit(self, slot: float, buckets: list[_Bucket]) -> None:
        for bucket in buckets:
            bucket.admit(slot)
        self._last_slot = slot

    def _reserve(self, route: str) -> float:
        """Take the next interactive slot for ``route``; returns how long to wait. Never awaits.

        First, if the background call first in line is owed a slot (it is starved: none was
        granted for ``starved_after``), it gets this one and the caller takes the next.
        """
        now = self._clock()
        buckets = self._buckets(route, Priority.INTERACTIVE)
        slot = self._earliest(now, buckets)
        if self._line and self._line[0].slot is None and slot >= self._promoted_at():
            head = self._line[0]
            owed = self._buckets(head.route, Priority.BACKGROUND)
            if self._earliest(now, owed) <= slot:  # its own budgets allow it too
                self._grant(head, slot, owed)
                slot = self._earliest(now, buckets)
        self._admit(slot, buckets)
        return slot - now

    def _count_call(self) -> None:
        now = self._clock()
        self._granted.append(now)
        while self._granted and self._granted[0] <= now - 60.0:
            self._granted.popleft()

    def calls_last_minute(self) -> int:
        """Calls asked for in the past 60 s (a NeonOrganization's ``callsPerMinute``)."""
        now = self._clock()
        while self._granted and self._granted[0] <= now - 60.0:
            self._granted.popleft()
        return len(self._granted)

    async def acquire(self, route: str, priority: Priority | None = None) -> float:
        """Wait for this call's slot; returns the seconds waited.

        ``priority`` defaults to the caller's context (``tenantdb.neon.priority``). Consumption
        calls are always background: at 50 a minute, a backlog of them in the interactive
        queue (where nobody overtakes) would hold every later call behind it.
        """
        self._count_call()
        if (priority or current_priority()) is Priority.BACKGROUND or _is_consumption(route):
            return await self._acquire_background(route)
        delay = self._reserve(route)
        if delay > 0:
            await self._sleep(delay)
        return delay

    def _promoted_at(self) -> float:
        """When the first background call in line stops waiting for a free slot."""
        return self._last_background_slot + self.starved_after

    def _grant(self, waiter: _Waiter, slot: float, buckets: list[_Bucket]) -> None:
        """``waiter`` goes at ``slot``; the next one in line becomes first."""
        self._admit(slot, buckets)
        self._last_background_slot = slot
        waiter.slot = slot
        self._line.popleft()
        if self._line:
            self._line[0].turn.set()

    async def _acquire_background(self, route: str) -> float:
        arrived = self._clock()
        waiter = _Waiter(route)
        self._line.append(waiter)
        if len(self._line) == 1:
            waiter.turn.set()
        try:
            await waiter.turn.wait()
            while waiter.slot is None:
                now = self._clock()
                account, *own = buckets = self._buckets(route, Priority.BACKGROUND)
                # Ready: the call's own budgets (route, consumption, background share) allow
                # it. Free: and no interactive call holds or waits for the account's next slot.
                ready = max(now, self._not_before, *(bucket.earliest() for bucket in own))
                free = self._earliest(ready, [account])
                if free <= now or now >= max(self._promoted_at(), ready):
                    self._grant(waiter, free, buckets)  # now; or, starved, next in the queue
                else:
                    await self._sleep(min(free, max(self._promoted_at(), ready)) - now)
            if waiter.slot > self._clock():
                await self._sleep(waiter.slot - self._clock())
            return waiter.slot - arrived
        finally:
            if waiter.slot is None:  # cancelled in line: leave it, and pass the turn on
                first = self._line[0] is waiter
                self._line.remove(waiter)
                if first and self._line:
                    self._line[0].turn.set()

    def defer(self, seconds: float) -> None:
        """Hand out no new slot for ``seconds`` (Neon answered 429 with ``Retry-After``)."""
        self._not_before = max(self._not_before, self._clock() + seconds)


def shared(limit: int, share: float) -> int:
    """One shard's static share of a limit, rounded down (so the shards' sum never exceeds
    it) but never below one call."""
    return max(1, math.floor(limit * share))


def consumption_rate(per_minute: int) -> Rate:
    """The consumption routes' budget: a tenth at once (one budget sync's few batches go out
    without waiting), the rest paced; any minute still holds at most ``per_minute``."""
    return Rate(per_minute, 60.0, burst=max(1, per_minute // 10))


def _is_consumption(route: str) -> bool:
    """``GET /consumption_history/v2/projects`` and the legacy ``/consumption_history/...``."""
    return route.partition(" ")[2].startswith(CONSUMPTION_ROUTES)
