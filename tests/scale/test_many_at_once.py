"""200 WorkspaceDatabases at once, against the Neon emulator enforcing Neon's real limits
(700 requests a minute per account, 40 a second per route), with and without faults.

What a platform would notice at scale: every workspace gets its database, none is ever
shown as failed because Neon said "slow down", one Neon project per workspace (no
duplicate after a lost answer, no leftover after a delete).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from typing import Any

import pytest

from tenantdb.testing.neon import EmulatorOptions
from tenantdb.testing.neon.calls import DROPPED_STATUS
from tenantdb.testing.postgres import PostgresServer
from tenantdb.testing.stack import LocalStack, eventually
from tests.factories import workspace_database
from tests.scale.conftest import Watcher, all_events, apply_all, console_burst, operator_calls, percentile

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

N = 200
PREFIX = "tenantdb"
# Neon's published limits, enforced by the emulator; the operator paces itself to the same.
NEON_LIMITS: dict[str, Any] = {"rate_limit_per_minute": 700, "route_rate_limit_per_second": 40}
# The real defaults where LocalStack shortens them for the small tests: a resync every 2 s of
# 200 resources would be 200 calls a second, and the retry deadline is the production one.
OPERATOR_SETTINGS: dict[str, Any] = {
    "resync_interval_seconds": 600.0,
    "neon_retry_deadline_seconds": 120.0,
    # A create whose connection was dropped is not repeated until it can no longer land; the
    # emulator's creates land within their latency, so 20 s is an honest bound here.
    "create_landing_seconds": 20.0,
}
READY_TIMEOUT = 200.0
OPERATION_SECONDS = 0.5
# How a 429 would read in an event message (project ids are 8 digits: no false match).
RATE_LIMITED = re.compile(r"\b429\b|rate.?limit|too many requests", re.IGNORECASE)


def _neon(**faults: Any) -> EmulatorOptions:
    """Neon's limits and a little latency; operations stay running a while, so a mutation of
    a project meanwhile would answer 423."""
    return EmulatorOptions(
        **NEON_LIMITS,
        latency_seconds=(0.005, 0.03),
        create_latency_seconds=(0.05, 0.2),
        operation_seconds=OPERATION_SECONDS,
        **faults,
    )


def _manifests() -> list[dict[str, Any]]:
    return [workspace_database(f"ws-{i:03d}", f"user-{i % 40:02d}", f"ws-{i:03d}") for i in range(N)]


def _expected_project_names(objects: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Project name -> resource name, as the operator derives it from the resource's identity."""
    return {
        f"{PREFIX}-w-{obj['spec']['workspaceId']}-{obj['metadata']['uid']}": name
        for name, obj in objects.items()
    }


async def _wait_all_ready(watcher: Watcher, timeout: float) -> None:
    async def all_ready() -> bool:
        return len(watcher.ready_at) >= N

    try:
        await eventually(all_ready, timeout=timeout, what=f"all {N} WorkspaceDatabases Ready")
    except TimeoutError:
        stuck = {
            name: (obj.get("status") or {}).get("conditions")
            for name, obj in watcher.latest.items()
            if name not in watcher.ready_at
        }
        raise AssertionError(f"{len(stuck)} not Ready, e.g. {list(stuck.items())[:3]}") from None


def _assert_one_project_per_resource(stack: LocalStack, watcher: Watcher) -> None:
    assert stack.neon is not None
    projects = stack.neon.projects()
    by_name = Counter(p["name"] for p in projects)
    duplicates = {name: count for name, count in by_name.items() if count > 1}
    assert not duplicates, f"duplicate Neon projects: {duplicates}"
    expected = _expected_project_names(watcher.latest)
    assert len(expected) == N
    assert set(by_name) == set(expected), (
        f"projects without a resource: {sorted(set(by_name) - set(expected))[:5]}; "
        f"resources without a project: {sorted(set(expected) - set(by_name))[:5]}"
    )
    ids_by_name = {p["name"]: p["id"] for p in projects}
    for project_name, resource in expected.items():
        assert watcher.latest[resource]["status"]["projectId"] == ids_by_name[project_name], resource
    assert len(projects) == N


def _call_summary(stack: LocalStack) -> dict[str, Any]:
    assert stack.neon is not None
    calls = stack.neon.calls()
    statuses = Counter(c.status for c in calls)
    return {
        "calls": len(calls),
        "by_route": dict(Counter(c.route for c in calls).most_common()),
        "statuses": dict(statuses.most_common()),
        "injected": sum(c.injected for c in calls),
        "dropped": statuses.get(DROPPED_STATUS, 0),
        "rate_limited": statuses.get(429, 0),
        "locked": statuses.get(423, 0),
    }


def _report(label: str, started: float, watcher: Watcher, summary: dict[str, Any]) -> None:
    times = watcher.ready_seconds()
    print(
        f"\n[{label}] {N} Ready in {time.monotonic() - started:.1f}s; apply→Ready "
        f"p50 {percentile(times, 0.5):.1f}s p95 {percentile(times, 0.95):.1f}s; "
        f"Neon calls {summary['calls']} ({summary['calls'] / N:.2f}/provision); "
        f"statuses {summary['statuses']}; ready reasons seen {dict(watcher.reasons)}"
    )


async def test_200_at_once_within_neons_limits_all_ready_no_429_failures(
    postgres_server: PostgresServer,
) -> None:
    options = _neon()
    async with LocalStack(
        postgres=postgres_server, neon_options=options, settings_overrides=dict(OPERATOR_SETTINGS)
    ) as stack:
        await stack.start_operator()
        watcher = Watcher(stack.kube_url)
        started = time.monotonic()
        async with watcher.running():
            console = asyncio.create_task(console_burst(stack))
            await apply_all(stack, _manifests(), watcher)
            await _wait_all_ready(watcher, READY_TIMEOUT)
            await console
        summary = _call_summary(stack)
        _report("limits", started, watcher, summary)
        throttled = operator_calls(stack, status="429")
        print(f"[limits] the operator's own calls answered 429: {throttled}")
        # The account's budget was shared (console_burst): Neon did say "too many requests".
        assert throttled > 0

        assert len(watcher.ready_at) == N
        # Never shown as failed, not even for a moment: a 429 is Neon saying "later", not an error.
        assert watcher.failures == [], watcher.failures[:5]
        events = await all_events(stack)
        not_normal = [
            (e["involvedObject"]["name"], e["reason"], e["message"]) for e in events if e["type"] != "Normal"
        ]
        assert not_normal == [], not_normal[:5]
        assert not [e for e in events if RATE_LIMITED.search(e["message"])]
        _assert_one_project_per_resource(stack, watcher)
        assert stack.neon is not None
        assert stack.neon.deleted_projects() == []
        creates = [c for c in stack.neon.calls() if c.route == "POST /projects" and c.status == 201]
        assert len(creates) == N  # every project created once, none created and thrown away
        await stack.stop_operator()


async def test_200_at_once_with_faults_one_project_each_and_nothing_left_after_delete(
    postgres_server: PostgresServer,
) -> None:
    # 10% of requests fail: half answered 500/503, half dropped unanswered; half of those
    # strike after Neon did the work (a project created, the answer lost).
    options = _neon(error_rate=0.05, drop_rate=0.05, fault_after_processing=True)
    async with LocalStack(
        postgres=postgres_server, neon_options=options, settings_overrides=dict(OPERATOR_SETTINGS)
    ) as stack:
        assert stack.neon is not None
        stack.neon.seed(20240611)
        await stack.start_operator()
        watcher = Watcher(stack.kube_url)
        started = time.monotonic()
        async with watcher.running():
            await apply_all(stack, _manifests(), watcher)
            await _wait_all_ready(watcher, READY_TIMEOUT)
        summary = _call_summary(stack)
        _report("faults", started, watcher, summary)
        assert summary["injected"] > 0
        creates_lost = [c for c in stack.neon.calls() if c.route == "POST /projects" and c.injected]
        adopted = [e for e in await all_events(stack) if e["reason"] == "Adopted"]
        print(
            f"[faults] creates answered by an injected fault: {len(creates_lost)}; adopted: {len(adopted)}; "
            f"failure conditions seen: {Counter(f.reason for f in watcher.failures)}"
        )
        # Some creates really happened while their answer was lost: found by name, not made twice.
        assert adopted
        assert not [f for f in watcher.failures if RATE_LIMITED.search(f.message or "")]

        _assert_one_project_per_resource(stack, watcher)
        rows = await stack.metadata_query("select workspace_id, neon_project_id from workspace_database")
        assert len(rows) == N
        status_ids = {
            obj["spec"]["workspaceId"]: obj["status"]["projectId"] for obj in watcher.latest.values()
        }
        assert dict(rows) == status_ids
        events = await all_events(stack)
        assert not [e for e in events if RATE_LIMITED.search(e["message"])]

        # Delete them all at once, faults still on.
        deleting = time.monotonic()
        gate = asyncio.Semaphore(50)

        async def delete(name: str) -> None:
            async with gate:
                await stack.delete("WorkspaceDatabase", name)

        await asyncio.gather(*(delete(name) for name in watcher.latest))

        async def all_gone() -> bool:
            return await watcher.list_once() == []

        await eventually(all_gone, timeout=READY_TIMEOUT, what=f"all {N} WorkspaceDatabases deleted")
        took, total = time.monotonic() - deleting, time.monotonic() - started
        print(f"[faults] {N} deleted in {took:.1f}s; total {total:.1f}s")

        assert stack.neon.projects() == []
        assert len(stack.neon.deleted_projects()) == N
        assert await stack.metadata_query("select workspace_id from workspace_database") == []
        assert await stack.metadata_query("select neon_project_id from tenantdb_orphaned_project") == []
        leftover_env = []
        for workspace_id, variables in await stack.metadata_query(
            "select workspace_id, variables from workspace_environment"
        ):
            values = json.loads(variables) if isinstance(variables, str) else dict(variables or {})
            if "AGENT_DB_URL" in values:
                leftover_env.append(workspace_id)
        assert leftover_env == []
        await stack.stop_operator()
