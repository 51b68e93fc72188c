"""The client keeps to the consumption endpoints' own budget: a whole fleet's sync, no 429."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from tenantdb.metrics import Metrics
from tenantdb.neon import NeonClient, RateLimiter, Timing
from tenantdb.testing.neon.ratelimit import TokenBuckets
from tests.neon import samples
from tests.neon.helpers import API_KEY, BASE_URL, FakeTime, Script, answer, error


async def test_a_sync_of_ten_thousand_projects_never_meets_neons_consumption_limit() -> None:
    frozen = FakeTime()  # the clock moves as the client sleeps: 100 calls take no real time
    neon_bucket = TokenBuckets()  # Neon's own bucket: 50 a minute per account

    def neon(request: httpx.Request) -> httpx.Response:
        wait = neon_bucket.retry_after("consumption", limit=50, per=60.0, now=frozen.now)
        if wait is not None:
            return error(429, "", "too many requests", headers={"Retry-After": str(wait)})
        neon_bucket.take("consumption", limit=50, per=60.0, now=frozen.now)
        return answer(200, samples.consumption(*request.url.params.get_list("project_ids")))

    script = Script().then(neon)
    async with NeonClient(
        base_url=BASE_URL,
        api_key=API_KEY,
        org_id="org-test-1",
        limiter=RateLimiter(clock=frozen.clock, sleep=frozen.sleep),  # the defaults: 700/min, 50/min
        metrics=Metrics(),
        transport=httpx.MockTransport(script),
        timing=Timing(retry_deadline=600.0, clock=frozen.clock, sleep=frozen.sleep),
    ) as client:
        started = frozen.now
        result = await client.consumption(
            project_ids=[f"proj-{i:05d}" for i in range(10_000)],
            start=datetime(2026, 11, 1, tzinfo=UTC),
            end=datetime(2026, 11, 20, tzinfo=UTC),
        )
    assert len(result) == 10_000
    assert len(script.requests) == 100  # one per batch of 100: not one was refused
    took = frozen.now - started
    assert 60 <= took <= 150  # 100 calls: Neon's bucket of 50, then 45-50 a minute
