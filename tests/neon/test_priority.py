"""The client's calls take the caller's class: a sweep inside ``background_calls()`` is paced by
the background share, the same calls outside it are not."""

from __future__ import annotations

import httpx

from tenantdb.metrics import Metrics
from tenantdb.neon import NeonClient, Rate, RateLimiter, Timing, background_calls
from tests.neon import samples
from tests.neon.helpers import API_KEY, BASE_URL, FakeTime, Script, answer


def _client(frozen: FakeTime, script: Script) -> NeonClient:
    limiter = RateLimiter(
        account=Rate(600, 60.0, burst=10),  # 10 a second: never the limit here
        per_route=Rate(1000, 1.0, burst=1000),
        background_share=0.1,  # 60 a minute, one a second
        clock=frozen.clock,
        sleep=frozen.sleep,
    )
    return NeonClient(
        base_url=BASE_URL,
        api_key=API_KEY,
        org_id="org-test-1",
        limiter=limiter,
        metrics=Metrics(),
        transport=httpx.MockTransport(script),
        timing=Timing(retry_deadline=60.0, clock=frozen.clock, sleep=frozen.sleep),
    )


async def test_calls_made_in_a_background_loop_use_the_background_share() -> None:
    frozen = FakeTime()
    script = Script().then(answer(200, {"project": samples.project()}))
    async with _client(frozen, script) as client:
        started = frozen.now
        for _ in range(5):
            await client.get_project("falling-pond-12345678")
        interactive = frozen.now - started
        started = frozen.now
        with background_calls():
            for _ in range(5):
                await client.get_project("falling-pond-12345678")
        background = frozen.now - started
    assert interactive < 1.0  # within the account's burst
    assert background >= 4 * 60 / 59 - 1e-6  # one a second after the first
