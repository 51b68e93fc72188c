"""Retries: what is retried, how long the client waits, when it gives up, and what it never repeats."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from tenantdb.metrics import Metrics
from tenantdb.neon import (
    NeonAuthError,
    NeonBadRequestError,
    NeonClient,
    NeonLimitError,
    NeonNotFoundError,
    NeonTransientError,
    Rate,
    RateLimiter,
    Timing,
)
from tenantdb.neon.retry import parse_retry_after
from tests.neon import samples
from tests.neon.helpers import API_KEY, BASE_URL, FakeTime, Script, answer, count, create_args, error

PROJECT = answer(200, {"project": samples.project()})
CREATED = answer(201, samples.created_project())


def _retries(metrics: Metrics, route: str, cause: str) -> float:
    return count(metrics, "tenantdb_neon_api_retries_total", route=route, cause=cause)


async def test_429_is_retried_after_exactly_the_retry_after_seconds(
    client: NeonClient, script: Script, fake_time: FakeTime, metrics: Metrics
) -> None:
    script.then(error(429, "", "too many requests", headers={"Retry-After": "7"}), PROJECT)
    project = await client.get_project(samples.PROJECT_ID)
    assert project.id == samples.PROJECT_ID
    assert fake_time.sleeps == [7.0]
    assert _retries(metrics, "GET /projects/{project_id}", "rate_limited") == 1
    route = "GET /projects/{project_id}"
    assert count(metrics, "tenantdb_neon_api_calls_total", route=route, status="429") == 1
    assert count(metrics, "tenantdb_neon_api_calls_total", route=route, status="200") == 1


async def test_429_holds_back_every_other_call_through_the_shared_limiter(script: Script) -> None:
    frozen = FakeTime(advance=False)  # the clock stays at the moment of the 429
    limiter = RateLimiter(account=Rate(10**6, 1.0, burst=10**6), clock=frozen.clock, sleep=frozen.sleep)
    script.then(error(429, headers={"Retry-After": "5"}), PROJECT)
    timing = Timing(clock=frozen.clock, sleep=frozen.sleep)
    async with NeonClient(
        base_url=BASE_URL,
        api_key=API_KEY,
        limiter=limiter,
        timing=timing,
        transport=httpx.MockTransport(script),
    ) as neon:
        await neon.get_project(samples.PROJECT_ID)
    # Any other call, on any route, waits out the same 5 s before it may go.
    assert await limiter.acquire("GET /other") == pytest.approx(5.0)


def test_retry_after_may_be_seconds_or_an_http_date() -> None:
    now = datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after("12", now=now) == 12.0
    assert parse_retry_after("Fri, 20 Nov 2026 10:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Fri, 20 Nov 2026 09:00:00 GMT", now=now) == 0.0  # in the past: now
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after("inf", now=now) is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize("status", [423, 500, 502, 503, 504])
async def test_locked_and_server_errors_are_retried_for_idempotent_calls(
    client: NeonClient, script: Script, fake_time: FakeTime, status: int
) -> None:
    script.then(error(status, "", "busy"), error(status, "", "busy"), PROJECT)
    await client.get_project(samples.PROJECT_ID)
    assert len(script.requests) == 3
    assert len(fake_time.sleeps) == 2


@pytest.mark.parametrize(
    ("exc", "cause"),
    [
        (httpx.ConnectError("refused"), "connect_error"),
        (httpx.ConnectTimeout("slow"), "connect_timeout"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.ReadError("reset"), "network_error"),
        (httpx.RemoteProtocolError("Server disconnected"), "network_error"),
    ],
)
async def test_network_errors_and_timeouts_are_retried_for_idempotent_calls(
    client: NeonClient, script: Script, metrics: Metrics, exc: Exception, cause: str
) -> None:
    script.then(exc, answer(200, {"endpoints": [samples.endpoint()]}))
    assert [e.id for e in await client.list_endpoints(samples.PROJECT_ID)] == [samples.ENDPOINT_ID]
    route = "GET /projects/{project_id}/endpoints"
    assert _retries(metrics, route, cause) == 1
    assert count(metrics, "tenantdb_neon_api_calls_total", route=route, status=cause) == 1


async def test_backoff_is_full_jitter_and_grows_until_the_deadline(
    client: NeonClient, script: Script, fake_time: FakeTime
) -> None:
    script.then(error(503, "", "unavailable"))  # for ever
    started = fake_time.now
    with pytest.raises(NeonTransientError) as caught:
        await client.get_project(samples.PROJECT_ID)
    timing = Timing()
    ceilings = [min(timing.backoff_max, timing.backoff_first * 2**i) for i in range(len(fake_time.sleeps))]
    assert all(0 <= slept <= ceiling for slept, ceiling in zip(fake_time.sleeps, ceilings, strict=True))
    assert fake_time.now - started <= 60.0  # the fixture's retry deadline
    assert len(script.requests) == len(fake_time.sleeps) + 1 > 5
    assert caught.value.status == 503
    assert not caught.value.ambiguous
    assert "gave up after" in str(caught.value)


def test_full_jitter_spreads_delays_over_the_whole_range() -> None:
    timing = Timing(backoff_first=1.0, backoff_max=8.0)
    delays = [timing.backoff(3) for _ in range(500)]
    assert all(0.0 <= d <= 8.0 for d in delays)
    assert min(delays) < 2.0
    assert max(delays) > 6.0


async def test_a_retry_after_beyond_the_deadline_gives_up_at_once_and_says_when_to_come_back(
    client: NeonClient, script: Script, fake_time: FakeTime
) -> None:
    script.then(error(429, headers={"Retry-After": "600"}))
    with pytest.raises(NeonTransientError) as caught:
        await client.get_project(samples.PROJECT_ID)
    assert fake_time.sleeps == []
    assert caught.value.retry_after == 600.0
    assert not caught.value.ambiguous


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (error(400, "", "bad region"), NeonBadRequestError),
        (error(401, "", "unauthorized"), NeonAuthError),
        (error(403, "", "forbidden"), NeonAuthError),
        (error(404, "", "not found"), NeonNotFoundError),
        (error(409, "", "conflict"), NeonBadRequestError),
        (error(422, "PROJECTS_LIMIT_EXCEEDED", "user projects limit of 1 exceeded, got 1"), NeonLimitError),
    ],
)
async def test_permanent_client_errors_are_raised_at_once(
    client: NeonClient,
    script: Script,
    fake_time: FakeTime,
    response: httpx.Response,
    expected: type[Exception],
) -> None:
    script.then(response)
    with pytest.raises(expected) as caught:
        await client.create_project(**create_args(role_name=None))
    assert len(script.requests) == 1
    assert fake_time.sleeps == []
    assert str(caught.value).startswith(f"Neon POST /projects: {response.status_code}")


async def test_the_limit_error_carries_neons_message(client: NeonClient, script: Script) -> None:
    script.then(error(422, "PROJECTS_LIMIT_EXCEEDED", "user projects limit of 1 exceeded, got 1"))
    with pytest.raises(NeonLimitError, match="user projects limit of 1 exceeded, got 1") as caught:
        await client.create_project(**create_args(role_name=None))
    assert caught.value.code == "PROJECTS_LIMIT_EXCEEDED"


# --- POST /projects is not idempotent ----------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("no answer"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset"),
        httpx.WriteTimeout("stuck"),
        error(500, "", "internal error"),
        error(502, "", "bad gateway"),
        error(503, "", "unavailable"),  # the spec says "safe to retry"; a proxy's 503 may not be
        error(504, "", "gateway timeout"),
    ],
)
async def test_an_ambiguous_create_failure_is_never_retried(
    client: NeonClient,
    script: Script,
    fake_time: FakeTime,
    metrics: Metrics,
    failure: httpx.Response | Exception,
) -> None:
    script.then(failure, CREATED)
    with pytest.raises(NeonTransientError) as caught:
        await client.create_project(**create_args(role_name=None))
    assert caught.value.ambiguous
    assert len(script.requests) == 1  # one POST: Neon may have made the project
    assert fake_time.sleeps == []
    assert sum(s.value for m in metrics.neon_retries.collect() for s in m.samples) == 0


@pytest.mark.parametrize(
    "failure",
    [
        error(429, "", "slow down", headers={"Retry-After": "1"}),
        error(423, "", "locked"),
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("no route"),
        httpx.PoolTimeout("pool busy"),
    ],
)
async def test_a_create_that_certainly_did_not_happen_is_retried(
    client: NeonClient, script: Script, failure: httpx.Response | Exception
) -> None:
    script.then(failure, CREATED)
    created = await client.create_project(**create_args(role_name=None))
    assert created.project.id == samples.PROJECT_ID
    assert [r.method for r in script.requests] == ["POST", "POST"]


async def test_a_create_that_keeps_being_refused_gives_up_unambiguously(
    client: NeonClient, script: Script
) -> None:
    script.then(error(423, "", "locked"))
    with pytest.raises(NeonTransientError) as caught:
        await client.create_project(**create_args(role_name=None))
    assert not caught.value.ambiguous
    assert len(script.requests) > 1


async def test_a_configuration_error_of_the_transport_is_not_retried(
    client: NeonClient, script: Script
) -> None:
    script.then(httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'"))
    with pytest.raises(NeonTransientError, match="UnsupportedProtocol"):
        await client.get_project(samples.PROJECT_ID)
    assert len(script.requests) == 1


async def test_a_non_json_error_page_becomes_a_short_message(client: NeonClient, script: Script) -> None:
    page = "<html><body>" + "Bad Gateway " * 200 + "</body></html>"
    script.then(httpx.Response(502, text=page, headers={"content-type": "text/html"}))
    with pytest.raises(NeonTransientError) as caught:
        await client.create_project(**create_args(role_name=None))
    assert caught.value.status == 502
    assert caught.value.ambiguous
    assert len(str(caught.value)) < 300
