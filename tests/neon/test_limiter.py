"""The shared rate limiter: smooth, within Neon's windows, first come first served."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from tenantdb.api.organization import NeonOrganizationSpec
from tenantdb.config import Settings
from tenantdb.neon import Priority, Rate, RateLimiter, background_calls, current_priority
from tenantdb.neon.limiter import shared
from tenantdb.reconcile.organizations.clients import organization_client
from tests.neon.helpers import FakeTime, VirtualTime


def _max_in_any_window(slots: list[float], window: float) -> int:
    """The most slots inside any closed window of ``window`` seconds."""
    slots = sorted(slots)
    most, first = 0, 0
    for last, slot in enumerate(slots):
        while slot - slots[first] > window + 1e-9:
            first += 1
        most = max(most, last - first + 1)
    return most


async def _slots(
    limiter: RateLimiter, frozen: FakeTime, arrivals: list[float], route: str = "GET /x"
) -> list[float]:
    slots = []
    for at in arrivals:
        frozen.now = at
        slots.append(at + await limiter.acquire(route))
    return slots


def test_default_rate_has_a_small_burst_and_a_smooth_refill() -> None:
    account, route = RateLimiter().account, RateLimiter().per_route
    assert (account.limit, account.per, account.capacity) == (700, 60.0, 14)
    assert account.interval == pytest.approx(60 / 686)
    assert (route.limit, route.per, route.capacity) == (40, 1.0, 1)


def test_rate_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="limit"):
        Rate(0, 1.0)
    with pytest.raises(ValueError, match="burst"):
        Rate(10, 1.0, burst=11)


async def test_a_burst_goes_at_once_and_the_rest_is_paced_evenly() -> None:
    frozen = FakeTime(advance=False)
    limiter = RateLimiter(
        account=Rate(12, 1.0, burst=2),
        per_route=Rate(1000, 1.0, burst=1000),
        clock=frozen.clock,
        sleep=frozen.sleep,
    )
    slots = await _slots(limiter, frozen, [0.0] * 6)
    assert slots == pytest.approx([0.0, 0.0, 0.1, 0.2, 0.3, 0.4])
    assert frozen.sleeps == pytest.approx([0.1, 0.2, 0.3, 0.4])  # one sleep per waiter, no polling


async def test_two_hundred_creates_stay_within_neons_minute_window() -> None:
    frozen = FakeTime(advance=False)
    limiter = RateLimiter(clock=frozen.clock, sleep=frozen.sleep)  # Neon's 700/min and 40/s per route
    slots = await _slots(limiter, frozen, [0.0] * 200, route="POST /projects")
    assert _max_in_any_window(slots, 60.0) <= 700
    assert _max_in_any_window(slots, 1.0) <= 40
    assert max(slots) == pytest.approx((200 - 14) * 60 / 686)  # about 16 s, not a 429 storm


@pytest.mark.parametrize("pattern", ["steady", "bursty", "idle-then-burst"])
async def test_no_window_ever_holds_more_than_the_limit(pattern: str) -> None:
    frozen = FakeTime(advance=False)
    rate = Rate(30, 2.0)
    limiter = RateLimiter(account=rate, per_route=Rate(10**6, 1.0), clock=frozen.clock, sleep=frozen.sleep)
    arrivals = {
        "steady": [i * 0.01 for i in range(300)],
        "bursty": [math.floor(i / 50) * 3.0 for i in range(300)],
        "idle-then-burst": [0.0] * 20 + [100.0] * 280,
    }[pattern]
    slots = await _slots(limiter, frozen, arrivals)
    assert _max_in_any_window(slots, rate.per) <= rate.limit


async def test_each_route_has_its_own_budget_within_the_account_budget() -> None:
    frozen = FakeTime(advance=False)
    limiter = RateLimiter(
        account=Rate(100, 1.0, burst=100),
        per_route=Rate(3, 1.0, burst=1),
        clock=frozen.clock,
        sleep=frozen.sleep,
    )
    a = await _slots(limiter, frozen, [0.0] * 3, route="GET /a")
    assert a == pytest.approx([0.0, 0.5, 1.0])  # 3 per second on one route
    frozen.now = 5.0
    b = await _slots(limiter, frozen, [5.0, 5.0], route="GET /b")
    assert b == pytest.approx([5.0, 5.5])


async def test_a_later_caller_never_overtakes_an_earlier_one_even_on_another_route() -> None:
    frozen = FakeTime(advance=False)
    limiter = RateLimiter(
        account=Rate(100, 1.0, burst=100),
        per_route=Rate(2, 1.0, burst=1),
        clock=frozen.clock,
        sleep=frozen.sleep,
    )
    slots = [await limiter.acquire(route) for route in ("GET /a", "GET /a", "GET /b")]
    assert slots == pytest.approx([0.0, 1.0, 1.0])


async def test_defer_holds_every_new_slot_back() -> None:
    frozen = FakeTime(advance=False)
    limiter = RateLimiter(clock=frozen.clock, sleep=frozen.sleep)
    limiter.defer(7.0)
    assert await limiter.acquire("GET /a") == pytest.approx(7.0)
    assert await limiter.acquire("GET /b") >= 7.0


def test_limiter_from_settings_uses_the_configured_budgets() -> None:
    settings = Settings(
        encryption_key="0" * 64,
        neon_rate_limit_per_minute=120,
        neon_route_rate_limit_per_second=5,
        neon_consumption_rate_limit_per_minute=30,
        neon_background_share=0.25,
    )
    limiter = RateLimiter.from_settings(settings)
    assert (limiter.account.limit, limiter.account.per) == (120, 60.0)
    assert (limiter.per_route.limit, limiter.per_route.per) == (5, 1.0)
    assert (limiter.consumption.limit, limiter.consumption.per) == (30, 60.0)
    assert (limiter.background.limit, limiter.background.per) == (30, 60.0)


def test_shards_sharing_organisations_each_take_their_static_share() -> None:
    # Three shards on one organisation: a third each, rounded down, so the three together
    # never exceed Neon's 700 a minute (nor 40 a second per route, nor 50 consumption calls).
    settings = Settings(encryption_key="0" * 64, neon_rate_limit_share=1 / 3)
    limiter = RateLimiter.from_settings(settings)
    assert limiter.account.limit == 233
    assert 3 * limiter.account.limit <= 700
    assert limiter.per_route.limit == 13
    assert limiter.consumption.limit == 16
    spec = NeonOrganizationSpec.model_validate(
        {
            "organizationId": "org-a",
            "apiKeySecretRef": {"name": "a", "namespace": "tenantdb-system"},
            "rateLimits": {"perMinute": 300},
        }
    )
    client = organization_client(spec, "key-a", settings=settings)
    assert client._session.limiter.account.limit == 100
    # A tiny limit still lets each shard make a call.
    assert shared(2, 1 / 3) == 1


def test_the_default_background_budget_is_a_tenth_of_the_account() -> None:
    limiter = RateLimiter()
    assert (limiter.background.limit, limiter.background.per) == (70, 60.0)  # 70 of 700 a minute
    assert (limiter.consumption.limit, limiter.consumption.per) == (50, 60.0)
    with pytest.raises(ValueError, match="background_share"):
        RateLimiter(background_share=0.0)


# --- priority: interactive first, background within its share and never starved --------------


class _Recorder:
    """Runs calls against a limiter on virtual time and records when each one got its slot."""

    def __init__(self, limiter: RateLimiter, time: VirtualTime) -> None:
        self.limiter, self.time = limiter, time
        self.slots: dict[str, list[float]] = {"interactive": [], "background": []}
        self.tasks: list[asyncio.Task[None]] = []

    def call(self, route: str, *, at: float = 0.0, priority: Priority | None = None) -> asyncio.Task[None]:
        async def one() -> None:
            if at > self.time.now:
                await self.time.sleep(at - self.time.now)
            klass = priority or current_priority()
            if "/consumption_history/" in route:
                klass = Priority.BACKGROUND
            await self.limiter.acquire(route, priority)
            self.slots[klass.value].append(self.time.now)

        task = asyncio.create_task(one())
        self.tasks.append(task)
        return task

    @property
    def every_slot(self) -> list[float]:
        return self.slots["interactive"] + self.slots["background"]


async def test_background_calls_queued_first_delay_a_signup_by_one_slot_at_most() -> None:
    time = VirtualTime()
    account = Rate(61, 60.0, burst=1)  # one slot a second
    limiter = RateLimiter(
        account=account, per_route=Rate(1000, 1.0), background_share=0.5, clock=time.clock, sleep=time.sleep
    )
    calls = _Recorder(limiter, time)
    with background_calls():  # a sweep: 50 pages queued at once, in tasks that inherit the class
        for _ in range(50):
            calls.call("GET /projects")
    signup = calls.call("POST /projects", at=10.3)
    await time.run(calls.tasks)
    assert len(calls.slots["background"]) == 50
    assert calls.slots["interactive"][0] - 10.3 <= account.interval + 1e-9
    assert signup.done()
    assert _max_in_any_window(calls.every_slot, account.per) <= account.limit


async def test_background_still_progresses_under_interactive_load_that_never_lets_up() -> None:
    time = VirtualTime()
    account = Rate(61, 60.0, burst=1)
    limiter = RateLimiter(
        account=account, per_route=Rate(1000, 1.0), background_share=0.5, clock=time.clock, sleep=time.sleep
    )
    calls = _Recorder(limiter, time)
    for _ in range(100):
        calls.call("GET /projects", priority=Priority.BACKGROUND)
    for i in range(480):  # twice what the account allows, for four minutes
        calls.call("POST /projects", at=i * 0.5)
    await time.run(calls.tasks, until=240.0)
    served = len(calls.slots["background"])
    # At least background_floor (a quarter) of the background share: one per starved_after.
    assert served >= math.floor(240.0 / limiter.starved_after) - 1
    assert served <= 240.0 / limiter.background.interval + 1  # and no more than the share
    assert len(calls.slots["interactive"]) >= 240 - served - 2  # users get the rest
    assert _max_in_any_window(calls.every_slot, account.per) <= account.limit
    for task in calls.tasks:
        task.cancel()
    await asyncio.gather(*calls.tasks, return_exceptions=True)


async def test_the_background_share_caps_background_throughput() -> None:
    time = VirtualTime()
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep)  # 700/min, 10% for background
    calls = _Recorder(limiter, time)
    for i in range(300):
        calls.call(("GET /projects", "GET /projects/{project_id}")[i % 2], priority=Priority.BACKGROUND)
    await time.run(calls.tasks, until=180.0)
    slots = calls.slots["background"]
    assert _max_in_any_window(slots, 60.0) <= 70
    assert len(slots) >= 3 * 69  # ... and the share is used: 69-70 a minute
    # An idle account still answers a signup at once, sweep or not.
    signup = calls.call("POST /projects", at=time.now + 0.01)
    await time.run([signup])
    assert calls.slots["interactive"][0] - calls.slots["background"][-1] <= limiter.account.interval + 0.01
    for task in calls.tasks:
        task.cancel()
    await asyncio.gather(*calls.tasks, return_exceptions=True)


async def test_consumption_routes_share_their_own_budget_and_hold_nobody_else() -> None:
    time = VirtualTime()
    limiter = RateLimiter(per_route=Rate(1000, 1.0), background_share=1.0, clock=time.clock, sleep=time.sleep)
    calls = _Recorder(limiter, time)
    consumption = [
        calls.call(("GET /consumption_history/v2/projects", "GET /consumption_history/projects")[i % 2])
        for i in range(120)
    ]
    others = [calls.call("GET /projects/{project_id}", at=30.0 + i) for i in range(5)]
    await time.run(calls.tasks)
    slots = calls.slots["background"]  # consumption is background work even when not marked
    assert len(slots) == len(consumption) == 120
    assert _max_in_any_window(slots, 60.0) <= 50  # v2 and legacy together
    assert max(slots) >= 60.0 * (120 - 50) / 50
    assert all(t.done() for t in others)
    assert calls.slots["interactive"] == pytest.approx([30.0 + i for i in range(5)], abs=0.1)


async def test_defer_holds_background_calls_back_too() -> None:
    time = VirtualTime()
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep)
    limiter.defer(7.0)
    calls = _Recorder(limiter, time)
    calls.call("GET /projects", priority=Priority.BACKGROUND)
    await time.run(calls.tasks)
    assert calls.slots["background"] == pytest.approx([7.0])


async def test_a_cancelled_background_waiter_does_not_stall_the_line() -> None:
    time = VirtualTime()
    limiter = RateLimiter(
        account=Rate(61, 60.0, burst=1), background_share=0.5, clock=time.clock, sleep=time.sleep
    )
    calls = _Recorder(limiter, time)
    tasks = [calls.call("GET /projects", priority=Priority.BACKGROUND) for _ in range(4)]
    await time.run(tasks[:1])
    tasks[1].cancel()  # first in line, asleep until its slot
    await time.run([tasks[0], tasks[2], tasks[3]])
    assert len(calls.slots["background"]) == 3


async def test_the_class_is_the_callers_context_and_interactive_by_default() -> None:
    assert current_priority() is Priority.INTERACTIVE
    with background_calls():
        assert current_priority() is Priority.BACKGROUND
        inherited = asyncio.create_task(asyncio.sleep(0, result=current_priority()))
    elsewhere = asyncio.create_task(asyncio.sleep(0, result=current_priority()))
    assert current_priority() is Priority.INTERACTIVE
    assert await inherited is Priority.BACKGROUND
    assert await elsewhere is Priority.INTERACTIVE


# --- real time, small windows: the waits really happen, in arrival order ---------------------


async def test_waiters_are_served_in_arrival_order() -> None:
    limiter = RateLimiter(account=Rate(100, 1.0, burst=1), per_route=Rate(100, 1.0, burst=1))
    served: list[int] = []

    async def call(i: int) -> None:
        await limiter.acquire("GET /projects" if i % 2 else "POST /projects")
        served.append(i)

    await asyncio.gather(*(call(i) for i in range(15)))
    assert served == list(range(15))


async def test_n_requests_take_about_the_paced_time() -> None:
    limiter = RateLimiter(account=Rate(22, 0.5, burst=2), per_route=Rate(1000, 1.0))
    started = time.monotonic()
    await asyncio.gather(*(limiter.acquire("GET /projects") for _ in range(22)))
    elapsed = time.monotonic() - started
    # 2 at once, then 20 spaced 0.5/20 s apart: 0.5 s. Only the lower bound is tight.
    assert elapsed >= 0.45
    assert elapsed < 5.0


async def test_a_cancelled_waiter_does_not_stall_the_queue() -> None:
    limiter = RateLimiter(account=Rate(50, 1.0, burst=1), per_route=Rate(1000, 1.0))
    served: list[int] = []

    async def call(i: int) -> None:
        await limiter.acquire("GET /x")
        served.append(i)

    tasks = [asyncio.create_task(call(i)) for i in range(6)]
    await asyncio.sleep(0)  # every task has taken its slot
    tasks[2].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert served == [0, 1, 3, 4, 5]
