"""Fixtures for the Neon client tests: fake time, a private metrics registry, a scripted client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tenantdb.metrics import Metrics
from tenantdb.neon import NeonClient, Rate, RateLimiter, Timing
from tests.neon.helpers import API_KEY, BASE_URL, FakeTime, Script


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def unlimited(fake_time: FakeTime) -> RateLimiter:
    """A limiter that never makes anyone wait (its own behaviour is tested on its own)."""
    return RateLimiter(
        account=Rate(10**9, 1.0, burst=10**9),
        per_route=Rate(10**9, 1.0, burst=10**9),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )


@pytest.fixture
async def client(
    script: Script, fake_time: FakeTime, metrics: Metrics, unlimited: RateLimiter
) -> AsyncIterator[NeonClient]:
    timing = Timing(retry_deadline=60.0, clock=fake_time.clock, sleep=fake_time.sleep)
    async with NeonClient(
        base_url=BASE_URL,
        api_key=API_KEY,
        org_id="org-test-1",
        limiter=unlimited,
        metrics=metrics,
        transport=httpx.MockTransport(script),
        timing=timing,
    ) as neon:
        yield neon
