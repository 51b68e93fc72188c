"""Observation by the fleet, not by the object (issue 11): what a platform sees of it.

A restart costs no Neon call for a settled resource; steady state costs one project list per
pass, not two calls per resource; and what the per-object resync healed still heals: a project
deleted in Neon's console, a deleted Secret (put back from our own row, without Neon)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tenantdb.handlers import fleet as fleet_handlers
from tenantdb.testing.stack import LocalStack, eventually
from tests.factories import global_database
from tests.integration.test_neon_side import _metadata_db_reachable

USERS = ("ann", "ben", "cat", "dan")


async def _fleet(stack: LocalStack) -> dict[str, str]:
    """Apply one GlobalDatabase per user; wait for all; resource name -> project id."""
    for user in USERS:
        await stack.apply(global_database(f"user-{user}", user))
    projects = {}
    for user in USERS:
        obj = await stack.wait_ready("GlobalDatabase", f"user-{user}")
        projects[f"user-{user}"] = obj["status"]["projectId"]
    return projects


def _per_resource_calls(stack: LocalStack, project_ids: set[str]) -> list[str]:
    """Neon calls about one project (get project, list endpoints, URIs ...), as route lines."""
    assert stack.neon is not None
    return [f"{c.method} {c.path}" for c in stack.neon.calls() if any(p in c.path for p in project_ids)]


def _fleet_size(stack: LocalStack) -> float:
    assert stack.runtime is not None
    return stack.runtime.metrics.registry.get_sample_value("tenantdb_fleet_resources") or 0.0


async def test_a_restart_makes_no_neon_call_for_settled_resources(stack: LocalStack) -> None:
    assert stack.neon is not None
    await stack.start_operator(resync_interval_seconds=3600.0)  # the fleet pass out of the picture
    projects = await _fleet(stack)
    # Killed mid-work: a new resource is being created as the process dies.
    await stack.apply(global_database("user-eve", "eve"))
    await stack.stop_operator(abruptly=True)
    stack.neon.reset_calls()

    await stack.start_operator()
    await eventually(
        lambda: _async(_fleet_size(stack) >= len(USERS)), timeout=30, what="every resource resumed"
    )
    await asyncio.sleep(2)  # whatever a resume would still do, it would have done by now
    assert _per_resource_calls(stack, set(projects.values())) == []
    for name in projects:
        assert (await stack.get("GlobalDatabase", name) or {})["status"]["phase"] == "Ready"
    # The interrupted one is finished, with one project; nothing else was made or lost.
    eve = await stack.wait_ready("GlobalDatabase", "user-eve")
    assert sorted(p["id"] for p in stack.neon.projects()) == sorted(
        [*projects.values(), eve["status"]["projectId"]]
    )
    await stack.stop_operator()


async def test_steady_state_costs_a_list_per_pass_not_calls_per_resource(stack: LocalStack) -> None:
    assert stack.neon is not None
    # A pass every 2 s, and the slow rotation as slow as it gets: one read in an hour.
    await stack.start_operator(endpoint_checks_per_minute=1 / 60)
    projects = await _fleet(stack)
    await asyncio.sleep(1)
    stack.neon.reset_calls()
    await asyncio.sleep(8)
    lists = [c for c in stack.neon.calls() if c.route == "GET /projects"]
    assert len(lists) >= 2, "the fleet observation did not run"
    # The per-object resync made 2 calls per resource per pass: 4 resources, 4 passes, 32.
    assert _per_resource_calls(stack, set(projects.values())) == []
    await stack.stop_operator()


async def test_a_project_deleted_in_the_console_is_found_by_the_list_and_recovered(stack: LocalStack) -> None:
    assert stack.neon is not None
    await stack.start_operator(endpoint_checks_per_minute=1 / 60)
    projects = await _fleet(stack)
    victim = projects["user-cat"]
    async with httpx.AsyncClient(
        base_url=stack.neon.base_url, headers={"Authorization": f"Bearer {stack.neon.api_key}"}
    ) as neon:
        assert (await neon.delete(f"/projects/{victim}")).status_code == 200

    async def recovered() -> bool:
        reasons = [e.get("reason") for e in await stack.events_for("user-cat")]
        return "ProjectRecovered" in reasons and victim in {p["id"] for p in stack.neon.projects()}

    await eventually(recovered, timeout=30, what="the deleted project recovered, with a Warning")
    obj = await stack.wait_ready("GlobalDatabase", "user-cat")
    assert obj["status"]["projectId"] == victim
    # Only the victim was looked at one by one.
    others = set(projects.values()) - {victim}
    assert _per_resource_calls(stack, others) == []
    await stack.stop_operator()


async def test_a_deleted_secret_is_put_back_from_our_own_row_without_neon(stack: LocalStack) -> None:
    assert stack.neon is not None
    await stack.start_operator(endpoint_checks_per_minute=1 / 60)
    projects = await _fleet(stack)
    before = await stack.get("Secret", "user-ben-connection")
    assert before is not None
    await asyncio.sleep(2.5)  # one pass at least: the project proven by the list
    stack.neon.reset_calls()
    await stack.delete("Secret", "user-ben-connection")

    async def restored() -> bool:
        return await stack.get("Secret", "user-ben-connection") is not None

    await eventually(restored, timeout=30, what="the Secret put back")
    after = await stack.get("Secret", "user-ben-connection")
    assert after is not None
    assert after["data"]["DATABASE_URL_ENCRYPTED"]  # (a fresh IV: the value itself differs)
    assert _per_resource_calls(stack, set(projects.values())) == []
    reasons = [e.get("reason") for e in await stack.events_for("user-ben")]
    assert "SecretRestored" in reasons
    await stack.stop_operator()


async def _async(value: bool) -> bool:
    return value


async def test_an_outage_of_the_metadata_db_leaves_every_status_as_it_is(stack: LocalStack) -> None:
    # The resources work; only our check cannot run. Writing Synced=False into each of them
    # would be 30,000 status writes per outage, set right again only by the slow rotation.
    await stack.start_operator(endpoint_checks_per_minute=1 / 60)
    await _fleet(stack)
    await asyncio.sleep(2.5)
    before = {u: (await stack.get("GlobalDatabase", f"user-{u}") or {}) for u in USERS}
    await _metadata_db_reachable(stack, False)
    try:
        assert stack.runtime is not None
        failed = stack.runtime.metrics.fleet_checks.labels(check="local", result="failed")
        # (A check fails once the store's wait for a connection has timed out.)
        await eventually(lambda: _async(failed._value.get() >= 2), timeout=60, what="checks failing")
        for user, obj in before.items():
            now = await stack.get("GlobalDatabase", f"user-{user}") or {}
            assert now["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"], user
    finally:
        await _metadata_db_reachable(stack, True)
    await stack.stop_operator()


async def test_whether_a_pass_runs_and_how_long_passes_take_are_on_the_metrics(stack: LocalStack) -> None:
    """A platform team sizing TENANTDB_RESYNC_INTERVAL_SECONDS needs to see how long a pass
    takes (one near the interval leaves no rest between passes) and when one runs."""
    assert stack.neon is not None
    await stack.start_operator(resync_interval_seconds=2.0)
    assert stack.runtime is not None
    metrics = stack.runtime.metrics.registry
    await _fleet(stack)
    stack.neon.options.latency_seconds = (1.5, 1.5)  # every list page: a pass of seconds

    async def in_progress() -> bool:
        return metrics.get_sample_value("tenantdb_fleet_pass_in_progress") == 1.0

    await eventually(in_progress, timeout=15, what="a pass in progress")
    passes = metrics.get_sample_value("tenantdb_fleet_pass_duration_seconds_count") or 0.0
    stack.neon.options.latency_seconds = (0.0, 0.0)

    async def one_more_pass() -> bool:
        return (metrics.get_sample_value("tenantdb_fleet_pass_duration_seconds_count") or 0.0) > passes

    await eventually(one_more_pass, timeout=15, what="the pass's end")
    # The held pass took its 1.5 s list at least; fast ones took less.
    slow = metrics.get_sample_value("tenantdb_fleet_pass_duration_seconds_bucket", {"le": "1.0"}) or 0.0
    total = metrics.get_sample_value("tenantdb_fleet_pass_duration_seconds_count") or 0.0
    assert total > slow
    await stack.stop_operator()


async def test_slow_local_checks_do_not_stretch_a_pass_past_its_interval(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Local checks slower than their ceiling (a busy API server or metadata DB) must not make
    passes longer than the interval: the project list, which finds a project deleted in Neon's
    console, would come that much later. A round stops starting checks after half an interval;
    the checks it did not reach go first in the next pass."""
    original = fleet_handlers.observe_database
    checked: list[str] = []

    async def slow(
        runtime: Any, kind: Any, body: Any, events: Any, *, full: bool, rotate_due: bool = False
    ) -> bool:
        if not full:
            await asyncio.sleep(1.5)
            checked.append(str(body["metadata"]["name"]))
        return await original(runtime, kind, body, events, full=full, rotate_due=rotate_due)

    monkeypatch.setattr(fleet_handlers, "observe_database", slow)
    monkeypatch.setattr(fleet_handlers, "_LOCAL_CONCURRENCY", 1)
    # At most 1 s of local checks a pass; the endpoint rotation (full checks) out of the picture.
    await stack.start_operator(resync_interval_seconds=2.0, endpoint_checks_per_minute=1 / 60)
    assert stack.runtime is not None
    metrics = stack.runtime.metrics.registry
    await _fleet(stack)

    def passes() -> float:
        return metrics.get_sample_value("tenantdb_fleet_pass_duration_seconds_count") or 0.0

    before = passes()
    await eventually(lambda: _async(passes() >= before + 4), timeout=60, what="four more passes")
    await stack.stop_operator()
    # Each pass: the list, then one 1.5 s check (the next would start after the 1 s mark). The
    # four checks of one round by count would take 6 s, and the list would run every 6 s.
    slow_passes = metrics.get_sample_value("tenantdb_fleet_pass_duration_seconds_count") or 0.0
    within = metrics.get_sample_value("tenantdb_fleet_pass_duration_seconds_bucket", {"le": "5.0"}) or 0.0
    assert within == slow_passes, f"{slow_passes - within} of {slow_passes} passes took more than 5 s"
    # ... and the rotation goes on: every resource was checked, the least recently checked first.
    assert {f"user-{user}" for user in USERS} <= set(checked), checked
