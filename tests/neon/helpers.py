"""Test doubles for the Neon client: a scripted transport, a fake clock, answer builders."""

from __future__ import annotations

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
