"""Test doubles for the Neon client: a scripted transport, a fake clock, answer builders."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
from collections.abc import Callable
from typing import Any

import httpx

from tenantdb.metrics import Metrics

BASE_URL = "https://neon.test/api/v2"
API_KEY = "napi_TESTKEY_must_never_appear_0123456789"


class FakeTime:
    """A monotonic clock that only moves when someone sleeps: retry tests take no time.

    With ``advance=False`` sleeping only records, so the clock stays at the moment of interest.
    """

    def __init__(self, *, advance: bool = True) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._advance = advance

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self._advance:
            self.now += seconds


class VirtualTime:
    """A clock for many concurrent tasks: time jumps to the next timer once every task waits.

    ``sleep`` parks the task on a timer; ``run`` drives the given coroutines, letting the
    event loop settle between jumps, until they have all finished or ``until`` is reached.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(0.0, seconds), next(self._order), future))
        await future

    async def _settle(self) -> None:
        for _ in range(20):
            await asyncio.sleep(0)

    async def run(self, tasks: list[asyncio.Task[Any]], *, until: float = float("inf")) -> None:
        await self._settle()
        while not all(task.done() for task in tasks):
            while self._timers and self._timers[0][2].done():  # cancelled sleepers
                heapq.heappop(self._timers)
            if not self._timers:
                raise AssertionError("every task waits, yet no timer is set: a deadlock")
            at, _, future = heapq.heappop(self._timers)
            if at > until:
                heapq.heappush(self._timers, (at, next(self._order), future))
                return
            self.now = max(self.now, at)
            future.set_result(None)
            await self._settle()


Handler = Callable[[httpx.Request], httpx.Response]


class Script:
    """A transport handler: each request gets the next scripted answer (the last one repeats).

    Every request is recorded, so tests can look at what the client sent.
    """

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._answers: list[httpx.Response | Exception | Handler] = []

    def then(self, *answers: httpx.Response | Exception | Handler) -> Script:
        self._answers.extend(answers)
        return self

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self._answers:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        answer = self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)

    @property
    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else {}, headers=headers)


def error(
    status: int, code: str = "", message: str = "", headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "message": message}, headers=headers)


def count(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def create_args(**changes: Any) -> dict[str, Any]:
    """Arguments of ``NeonClient.create_project`` for one tenant database."""
    return {
        "name": "tenantdb-ws-abc",
        "region_id": "aws-us-east-2",
        "pg_version": 17,
        "database_name": "appdb",
        "role_name": "appdb_owner",
        "autoscaling_min_cu": 0.25,
        "autoscaling_max_cu": 2.0,
        "suspend_timeout_seconds": 300,
        **changes,
    }
