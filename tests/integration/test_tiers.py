"""DatabaseTier for real: kopf against the Kubernetes emulator, the Neon emulator over HTTP and a
real PostgreSQL server.

What a platform would notice: a database whose spec names no compute size gets its user's
tier's; a user's move to a larger tier, and a change to the tier itself, reach the Neon
endpoint, each with one endpoint patch per database (the fleet's read-back is slowed to a
crawl here, so only the tier's rollout can have sent it); the tier's status counts the
databases that follow it; and a budget naming a tier that does not exist says so and
suspends or resumes nobody.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tenantdb.testing.stack import LocalStack, eventually
from tests.factories import database_budget, database_tier, global_database

SYNC_SECONDS = 1.0


@pytest.fixture
async def tiers(stack: LocalStack) -> AsyncIterator[LocalStack]:
    """The operator with a fast rollout and a fleet that (almost) never reads an endpoint back."""
    await stack.start_operator(
        consumption_sync_interval_seconds=SYNC_SECONDS,
        endpoint_checks_per_minute=0.01,
        tier_rollout_per_minute=600.0,
    )
    yield stack
    await stack.stop_operator()


def _neon(stack: LocalStack) -> httpx.AsyncClient:
    assert stack.neon is not None
    return httpx.AsyncClient(
        base_url=stack.neon.base_url, headers={"Authorization": f"Bearer {stack.neon.api_key}"}
    )


async def _endpoint(stack: LocalStack, obj: dict[str, Any]) -> dict[str, Any]:
    status = obj["status"]
    async with _neon(stack) as neon:
        response = await neon.get(f"/projects/{status['projectId']}/endpoints/{status['endpointId']}")
    endpoint: dict[str, Any] = response.json()["endpoint"]
    return endpoint


async def _project(stack: LocalStack, project_id: str) -> dict[str, Any]:
    async with _neon(stack) as neon:
        project: dict[str, Any] = (await neon.get(f"/projects/{project_id}")).json()["project"]
    return project


def _endpoint_patches(stack: LocalStack, project_id: str) -> int:
    assert stack.neon is not None
    return sum(
        1
        for call in stack.neon.calls()
        if call.route == "PATCH /projects/{project_id}/endpoints/{endpoint_id}" and project_id in call.path
    )


def _condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for condition in ((obj or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return {}


async def _max_cu_becomes(stack: LocalStack, obj: dict[str, Any], max_cu: float) -> None:
    async def reached() -> bool:
        return (await _endpoint(stack, obj))["autoscaling_limit_max_cu"] == max_cu

    await eventually(reached, timeout=20, what=f"maxCu {max_cu} on the Neon endpoint")


async def test_a_tier_reaches_the_endpoint_of_its_users_databases_and_follows_its_changes(
    tiers: LocalStack,
) -> None:
    stack = tiers
    gib = 1024**3
    await stack.apply(database_tier("free", limitCents=500, autoscaling={"minCu": 0.25, "maxCu": 0.5}))
    await stack.apply(
        database_tier(
            "pro",
            limitCents=5000,
            autoscaling={"minCu": 0.25, "maxCu": 2},
            suspendTimeoutSeconds=600,
            historyRetentionSeconds=7 * 86400,
            quotas={"logicalSizeBytes": 10 * gib},
        )
    )
    await stack.apply(database_budget("user-dana", "dana", tier="free"))
    # No compute size in the spec: the tier's. Erin's names one: hers wins, whatever the tier.
    await stack.apply(global_database("user-dana", "dana"))
    await stack.apply(database_budget("user-erin", "erin", tier="free"))
    await stack.apply(global_database("user-erin", "erin", autoscaling={"minCu": 0.25, "maxCu": 1}))
    dana = await stack.wait_ready("GlobalDatabase", "user-dana")
    erin = await stack.wait_ready("GlobalDatabase", "user-erin")
    project_id = dana["status"]["projectId"]
    await _max_cu_becomes(stack, dana, 0.5)  # created with the free tier's size
    assert dana["status"]["applied"]["tier"] == "free"
    assert (await _endpoint(stack, erin))["autoscaling_limit_max_cu"] == 1

    # Dana moves to pro: her compute grows, and her project keeps a week of history and stops
    # growing at 10 GiB; one endpoint patch did it.
    before = _endpoint_patches(stack, project_id)
    await stack.patch("DatabaseBudget", "user-dana", {"spec": {"tier": "pro"}})
    moved = await stack.wait_for(
        "GlobalDatabase",
        "user-dana",
        lambda o: ((o or {}).get("status") or {}).get("applied", {}).get("tier") == "pro",
        timeout=20,
        what="the pro tier recorded",
    )
    assert moved is not None
    assert moved["status"]["applied"]["maxCu"] == 2
    endpoint = await _endpoint(stack, dana)
    assert (endpoint["autoscaling_limit_max_cu"], endpoint["suspend_timeout_seconds"]) == (2, 600)
    project = await _project(stack, project_id)
    assert project["history_retention_seconds"] == 7 * 86400
    assert project["settings"]["quota"]["logical_size_bytes"] == 10 * gib
    assert _endpoint_patches(stack, project_id) == before + 1

    # The tier itself grows: it reaches dana's endpoint again, once more, and its status says
    # every database of its users follows it.
    before = _endpoint_patches(stack, project_id)
    await stack.patch("DatabaseTier", "pro", {"spec": {"autoscaling": {"minCu": 0.5, "maxCu": 4}}})
    await _max_cu_becomes(stack, dana, 4)
    assert (await _endpoint(stack, dana))["autoscaling_limit_min_cu"] == 0.5
    tier = await stack.wait_for(
        "DatabaseTier",
        "pro",
        lambda o: (
            _condition(o, "Ready").get("reason") == "RolledOut"
            and ((o or {}).get("status") or {}).get("updatedDatabases") == 1
        ),
        timeout=20,
        what="rolled out",
    )
    assert tier is not None
    assert (tier["status"]["databases"], tier["status"]["users"]) == (1, 1)
    assert _endpoint_patches(stack, project_id) == before + 1
    # Erin's own size still wins; the free tier counts her database, which follows it.
    assert (await _endpoint(stack, erin))["autoscaling_limit_max_cu"] == 1
    free = await stack.wait_for(
        "DatabaseTier",
        "free",
        lambda o: ((o or {}).get("status") or {}).get("databases") == 1,
        timeout=20,
        what="erin's database counted on free",
    )
    assert free is not None
    assert free["status"]["updatedDatabases"] == 1

    # Nothing is behind: no further patch, pass after pass.
    settled = _endpoint_patches(stack, project_id)
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        assert _endpoint_patches(stack, project_id) == settled
        await asyncio.sleep(0.5)


async def test_a_budget_naming_a_tier_that_does_not_exist_keeps_its_last_decision(tiers: LocalStack) -> None:
    stack = tiers
    assert stack.neon is not None
    # Without any DatabaseTier object the settings' three tiers apply: free allows 500 cents.
    await stack.apply(database_budget("user-finn", "finn", tier="free"))
    await stack.apply(global_database("user-finn", "finn"))
    obj = await stack.wait_ready("GlobalDatabase", "user-finn")
    stack.neon.set_usage(obj["status"]["projectId"], compute_unit_seconds=200_000)  # 589 cents
    await stack.wait_for(
        "GlobalDatabase",
        "user-finn",
        lambda o: ((o or {}).get("status") or {}).get("phase") == "Suspended",
        timeout=15,
        what="suspended",
    )

    # A typo: nothing resumes, the budget says why.
    await stack.patch("DatabaseBudget", "user-finn", {"spec": {"tier": "paid-typo"}})
    budget = await stack.wait_for(
        "DatabaseBudget",
        "user-finn",
        lambda o: _condition(o, "Ready").get("reason") == "TierNotFound",
        timeout=15,
        what="TierNotFound",
    )
    assert budget is not None
    assert _condition(budget, "Ready")["status"] == "False"
    assert "paid-typo" in _condition(budget, "Ready")["message"]
    assert budget["status"]["exceeded"] is True  # the decision in force, as it was
    assert budget["status"]["tier"] == "free"
    assert budget["status"]["limitCents"] == 500
    deadline = time.monotonic() + 4 * SYNC_SECONDS
    while time.monotonic() < deadline:  # several syncs: it stays suspended
        current = await stack.get("GlobalDatabase", "user-finn")
        assert ((current or {}).get("status") or {}).get("phase") == "Suspended"
        await asyncio.sleep(0.5)
    events = await stack.events_for("user-finn")
    assert any(e["reason"] == "TierNotFound" and e["type"] == "Warning" for e in events)

    # The tier comes to exist (an unlimited one): the user is decided again, and resumed.
    await stack.apply(database_tier("paid-typo"))
    await stack.wait_for(
        "GlobalDatabase",
        "user-finn",
        lambda o: ((o or {}).get("status") or {}).get("phase") == "Ready",
        timeout=15,
        what="resumed",
    )
    budget = await stack.wait_for(
        "DatabaseBudget",
        "user-finn",
        lambda o: _condition(o, "Ready").get("status") == "True",
        timeout=15,
        what="Ready again",
    )
    assert budget is not None
    assert budget["status"]["tier"] == "paid-typo"
