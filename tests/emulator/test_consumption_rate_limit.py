"""The consumption endpoints' own budget (about 50 a minute per account, a token bucket)."""

from __future__ import annotations

import argparse
import datetime
from typing import Any

import httpx

from tenantdb.testing.neon import NeonEmulator
from tenantdb.testing.neon.options import add_emulator_arguments, options_from_args
from tenantdb.testing.neon.ratelimit import TokenBuckets
from tests.emulator.helpers import create_project

V2 = "/consumption_history/v2/projects"


def _params(neon: NeonEmulator, project_id: str) -> dict[str, Any]:
    now = datetime.datetime.now(datetime.UTC)
    return {
        "org_id": neon.org_id,
        "from": (now - datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "to": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "granularity": "daily",
        "metrics": "compute_unit_seconds",
        "project_ids": project_id,
    }


async def test_consumption_answers_429_past_its_own_budget_and_nothing_else_does(
    api: httpx.AsyncClient, neon: NeonEmulator
) -> None:
    project = (await create_project(api, name="usage"))["project"]
    neon.options.consumption_rate_limit_per_minute = 5
    neon.options.rate_limit_per_minute = 700  # the account's budget is far from spent
    statuses = [(await api.get(V2, params=_params(neon, project["id"]))).status_code for _ in range(5)]
    refused = await api.get(V2, params=_params(neon, project["id"]))
    legacy = await api.get("/consumption_history/projects")  # the legacy route shares the bucket
    other = await api.get(f"/projects/{project['id']}")
    assert statuses == [200] * 5
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 12  # one token back every 12 s
    assert set(refused.json()) >= {"code", "message"}
    assert legacy.status_code == 429
    assert other.status_code == 200


async def test_consumption_is_not_limited_unless_asked(api: httpx.AsyncClient, neon: NeonEmulator) -> None:
    project = (await create_project(api, name="usage"))["project"]
    statuses = [(await api.get(V2, params=_params(neon, project["id"]))).status_code for _ in range(60)]
    assert set(statuses) == {200}


def test_the_bucket_refills_at_its_rate_and_refused_requests_take_nothing() -> None:
    buckets = TokenBuckets()
    for _ in range(50):
        assert buckets.retry_after("consumption", limit=50, per=60.0, now=0.0) is None
        buckets.take("consumption", limit=50, per=60.0, now=0.0)
    assert buckets.retry_after("consumption", limit=50, per=60.0, now=0.0) == 2  # 1.2 s to a token
    assert buckets.retry_after("consumption", limit=50, per=60.0, now=0.5) == 1
    assert buckets.retry_after("consumption", limit=50, per=60.0, now=1.2) is None
    buckets.take("consumption", limit=50, per=60.0, now=1.2)
    assert buckets.retry_after("consumption", limit=50, per=60.0, now=1.2) is not None
    # A long pause fills the bucket, never beyond its size.
    for _ in range(50):
        buckets.take("consumption", limit=50, per=60.0, now=3600.0)
    assert buckets.retry_after("consumption", limit=50, per=60.0, now=3600.0) is not None


def test_the_command_line_sets_the_consumption_budget() -> None:
    parser = argparse.ArgumentParser()
    add_emulator_arguments(parser)
    args = parser.parse_args(
        ["--postgres-url", "postgresql://x", "--consumption-rate-limit-per-minute", "50"]
    )
    assert options_from_args(args).consumption_rate_limit_per_minute == 50
