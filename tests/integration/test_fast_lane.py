"""A signup while kopf is still resuming the fleet is Ready at once (issue 11).

kopf lists every object of a kind before it watches the kind; at 30,000 resources that list and
its resumes take the event loop half a minute, and a resource created meanwhile waited for all
of it. Here kopf's start-up list is held back on purpose (a list that takes as long as a big
fleet's) and a user signs up: the start-up fast lane makes the database Ready before kopf has
even listed it, with one project, and kopf, once it gets there, adds no Neon call of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kopf._cogs.clients import fetching

from tenantdb.api import MANAGED_LABEL
from tenantdb.handlers import fast_lane, main, standby
from tenantdb.handlers import runtime as runtime_module
from tenantdb.kube import CustomResources
from tenantdb.testing.stack import LocalStack, eventually
from tests.factories import global_database
from tests.integration.conftest import one_by_one

SLOW_LIST_SECONDS = 12.0  # kopf's start-up list of each kind, as long as a big fleet's
PEERING = "tenantdb"


@pytest.fixture
def slow_start_up_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """kopf's start-up list of the database kinds takes SLOW_LIST_SECONDS (in the operator's
    own thread and loop, like a list of 30,000 resumes)."""
    original = fetching.fetch_objs

    async def slow(*args: Any, resource: Any, **kwargs: Any) -> AsyncIterator[Any]:
        if resource.plural in ("globaldatabases", "workspacedatabases"):
            await asyncio.sleep(SLOW_LIST_SECONDS)
        async for item in original(*args, resource=resource, **kwargs):
            yield item

    monkeypatch.setattr(fetching, "fetch_objs", slow)


async def _lane_open(stack: LocalStack) -> None:
    runtime = stack.runtime
    assert runtime is not None

    async def lane_open() -> bool:
        return runtime.fast_lane is not None and "GlobalDatabase" in runtime.fast_lane.watching

    await eventually(lane_open, timeout=10, what="the fast lane's watch")


async def _handled_by_kopf(stack: LocalStack, name: str) -> dict[str, Any]:
    """The resource once kopf recorded its create (its diff-base annotation)."""
    handled = await stack.wait_for(
        "GlobalDatabase",
        name,
        lambda o: (
            "tenantdb.io/last-handled-configuration"
            in ((o or {}).get("metadata") or {}).get("annotations", {})
        ),
        timeout=SLOW_LIST_SECONDS + 30,
        what="kopf's record of the create",
    )
    assert handled is not None
    return handled


async def _kopf_adds_nothing(stack: LocalStack, obj: dict[str, Any]) -> None:
    """kopf records the lane's resource as handled, with the lane's project, the only one."""
    assert stack.neon is not None
    handled = await _handled_by_kopf(stack, obj["metadata"]["name"])
    assert handled["status"]["projectId"] == obj["status"]["projectId"]
    assert len(stack.neon.projects()) == 1


async def test_a_signup_during_the_start_up_is_ready_before_kopf_lists_it(
    stack: LocalStack, slow_start_up_list: None
) -> None:
    assert stack.neon is not None
    # A user who signed up while the operator was down: taken at once too.
    await stack.apply(global_database("user-early", "early"))
    await stack.start_operator(resync_interval_seconds=3600.0)  # the fleet pass out of the picture
    await _lane_open(stack)
    applied = time.monotonic()
    await stack.apply(global_database("user-new", "new"))
    obj = await stack.wait_ready("GlobalDatabase", "user-new", timeout=SLOW_LIST_SECONDS - 2)
    ready_after = time.monotonic() - applied
    assert ready_after < SLOW_LIST_SECONDS - 2, f"Ready after {ready_after:.1f}s"
    assert "tenantdb.io/finalizer" in obj["metadata"]["finalizers"]
    early = await stack.wait_ready("GlobalDatabase", "user-early", timeout=1)
    assert time.monotonic() - applied < SLOW_LIST_SECONDS - 2
    project_id, early_id = obj["status"]["projectId"], early["status"]["projectId"]
    secret = await stack.get("Secret", obj["status"]["secretName"])
    assert secret is not None

    # kopf gets there: it records the resource as handled and sends nothing to Neon for it.
    calls_before = len(one_by_one(stack.neon.calls()))
    await _handled_by_kopf(stack, "user-new")
    await asyncio.sleep(1)
    about_it = [
        f"{c.method} {c.path}"
        for c in one_by_one(stack.neon.calls())[calls_before:]
        if project_id in c.path or early_id in c.path or c.route == "POST /projects"
    ]
    assert about_it == []
    assert sorted(p["id"] for p in stack.neon.projects()) == sorted([project_id, early_id])

    # The lane is closed; kopf takes what comes next, as ever.
    await stack.apply(global_database("user-later", "later"))
    later = await stack.wait_ready("GlobalDatabase", "user-later", timeout=30)
    assert later["status"]["phase"] == "Ready"
    assert len(stack.neon.projects()) == 3

    # And a delete goes through kopf's finalizer: the lane's resource leaves nothing behind.
    await stack.delete("GlobalDatabase", "user-new")
    await stack.wait_gone("GlobalDatabase", "user-new", timeout=30)
    assert sorted(p["id"] for p in stack.neon.projects()) == sorted([early_id, later["status"]["projectId"]])
    await stack.stop_operator()


async def _start_paused(stack: LocalStack) -> fast_lane.FastLane:
    """The operator as a standby: another replica of higher priority is alive in the peering
    object, so this one starts paused (kopf reads the same); its fast lane."""
    await stack.create_peering(PEERING)
    await stack.patch_peering(PEERING, {"the-active-one": _peer(100)})
    await stack.start_operator(resync_interval_seconds=3600.0, peering_name=PEERING, peering_priority=50)
    await _lane_open(stack)
    assert stack.runtime is not None
    assert stack.runtime.fast_lane is not None
    return stack.runtime.fast_lane


def _peer(priority: int, *, lifetime: int = 60) -> dict[str, Any]:
    """A keep-alive as kopf writes it (``lifetime: 0`` is its goodbye on a graceful stop)."""
    seen = datetime.datetime.now(datetime.UTC).isoformat()
    return {"priority": priority, "lastseen": seen, "lifetime": lifetime}


async def test_a_standby_holds_a_signup_and_takes_it_the_moment_the_active_replica_leaves(
    stack: LocalStack, slow_start_up_list: None
) -> None:
    """A rolling restart with a hot standby: the signup made as the active replica stops is
    Ready from the standby before the standby's kopf has listed the fleet, and one the active
    replica took up is forgotten, not taken twice."""
    assert stack.neon is not None
    neon = stack.neon
    lane = await _start_paused(stack)

    async def holding(name: str) -> bool:
        return any(obj["metadata"]["name"] == name for _, obj in lane.held.values())

    # The active replica takes this one up (its label): the standby forgets it.
    await stack.apply(global_database("user-theirs", "theirs"))
    await eventually(lambda: holding("user-theirs"), timeout=10, what="the standby holding the signup")
    await stack.patch("GlobalDatabase", "user-theirs", {"metadata": {"labels": {MANAGED_LABEL: "true"}}})
    await eventually(lambda: _async(not lane.held), timeout=10, what="the standby forgetting it")
    await stack.delete("GlobalDatabase", "user-theirs")

    # This one comes as the active replica stops: held while it is there, and nothing done.
    await stack.apply(global_database("user-new", "new"))
    await eventually(lambda: holding("user-new"), timeout=10, what="the standby holding the signup")
    await asyncio.sleep(1)
    assert neon.projects() == []
    left = time.monotonic()
    await stack.patch_peering(PEERING, {"the-active-one": _peer(100, lifetime=0)})  # kopf's goodbye
    obj = await stack.wait_ready("GlobalDatabase", "user-new", timeout=SLOW_LIST_SECONDS - 2)
    assert time.monotonic() - left < SLOW_LIST_SECONDS - 2  # the standby's kopf had not listed it
    assert [p["name"] for p in neon.projects()] == [obj["status"]["projectName"]]
    # The standby's kopf gets there and adds nothing.
    await _kopf_adds_nothing(stack, obj)
    await stack.stop_operator()


async def test_a_signup_the_stopping_replica_labelled_and_left_is_taken_by_the_standby(
    stack: LocalStack, slow_start_up_list: None
) -> None:
    """A rolling restart, as seen on a real API server: the active replica's lane wrote its
    finalizer and label on a new signup and was stopped before anything else (no status). The
    standby must not take the label for a reconcile under way: it takes the signup the moment
    the active replica leaves, not when its own kopf gets there (there, kopf's cycle whose
    finalizer write lost the race to that label skipped the handlers, and nothing came again)."""
    lane = await _start_paused(stack)
    await stack.apply(global_database("user-gina", "gina"))
    await eventually(lambda: _async(bool(lane.held)), timeout=10, what="the standby holding the signup")
    # What the stopping replica's lane wrote, and all it wrote.
    await stack.patch(
        "GlobalDatabase",
        "user-gina",
        {"metadata": {"labels": {MANAGED_LABEL: "true"}, "finalizers": ["tenantdb.io/finalizer"]}},
    )
    await eventually(lambda: _async(not lane.held), timeout=10, what="the label seen by the standby")
    left = time.monotonic()
    await stack.patch_peering(PEERING, {"the-active-one": _peer(100, lifetime=0)})  # kopf's goodbye
    obj = await stack.wait_ready("GlobalDatabase", "user-gina", timeout=SLOW_LIST_SECONDS - 2)
    assert time.monotonic() - left < SLOW_LIST_SECONDS - 2  # the standby's kopf had not listed it
    assert stack.neon is not None
    assert [p["name"] for p in stack.neon.projects()] == [obj["status"]["projectName"]]
    await _kopf_adds_nothing(stack, obj)
    await stack.stop_operator()


async def test_a_standby_that_missed_the_event_still_forgets_what_the_active_one_took(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A watch that restarts from now can miss the DELETED that says another replica took a
    signup up. The standby reads what it holds again now and then, or it would hold it (and
    read the peering object twice a second) until its next activation."""
    monkeypatch.setattr(standby, "_HELD_REVIEW_SECONDS", 1.0)
    lane = await _start_paused(stack)
    await stack.apply(global_database("user-theirs", "theirs"))
    await eventually(lambda: _async(bool(lane.held)), timeout=10, what="the standby holding the signup")
    monkeypatch.setattr(lane, "_left_selection", lambda obj: None)  # the event is missed
    await stack.patch("GlobalDatabase", "user-theirs", {"metadata": {"labels": {MANAGED_LABEL: "true"}}})
    await eventually(lambda: _async(not lane.held), timeout=10, what="the standby forgetting it")
    await stack.stop_operator()


async def test_a_signup_whose_first_create_fails_is_retried_before_kopf_gets_there(
    stack: LocalStack, slow_start_up_list: None
) -> None:
    """The lane does not leave its failure to kopf's create handler alone: kopf may be busy
    for a minute yet (its start-up list), or not come back until the resource changes again."""
    assert stack.neon is not None
    neon = stack.neon
    await stack.start_operator(resync_interval_seconds=3600.0)
    await _lane_open(stack)
    neon.options.refuse = {"POST /projects": 503}  # answered, not carried out: tried again soon
    applied = time.monotonic()
    await stack.apply(global_database("user-unlucky", "unlucky"))

    async def refused() -> bool:
        return any(c.route == "POST /projects" and c.status == 503 for c in neon.calls())

    await eventually(refused, timeout=10, what="the refused create")
    neon.options.refuse = {}
    obj = await stack.wait_ready("GlobalDatabase", "user-unlucky", timeout=SLOW_LIST_SECONDS - 2)
    assert time.monotonic() - applied < SLOW_LIST_SECONDS - 2  # kopf had not even listed it
    assert [p["name"] for p in neon.projects()] == [obj["status"]["projectName"]]
    # kopf gets there and adds nothing: the lane's retry stands.
    await _kopf_adds_nothing(stack, obj)
    await stack.stop_operator()


async def test_a_signup_made_while_the_operator_was_down_goes_before_the_background_loops(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loops' first rounds (consumption and enforcement, the Sim sync, the fleet pass) read
    thousands of rows on the event loop at a large fleet: a user who signed up while the operator
    was down waited for them (half a second at 10,000 budgets). The lane's first try goes first."""
    assert stack.neon is not None
    neon = stack.neon
    created_when_loops_started: list[int] = []
    original = main.start_budget_loop

    def recording(runtime: Any) -> Any:
        created = [c for c in neon.calls() if c.route == "POST /projects" and c.status < 300]
        created_when_loops_started.append(len(created))
        return original(runtime)

    monkeypatch.setattr(main, "start_budget_loop", recording)
    await stack.apply(global_database("user-waiting", "waiting"))
    await stack.start_operator(resync_interval_seconds=3600.0)
    obj = await stack.wait_ready("GlobalDatabase", "user-waiting", timeout=30)
    assert created_when_loops_started == [1]
    assert [p["id"] for p in neon.projects()] == [obj["status"]["projectId"]]
    await stack.stop_operator()


async def test_a_waiting_signup_is_made_ours_while_the_clients_open(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our finalizer and label need only the Kubernetes client: they are written while the Neon
    key check and the metadata DB open (a third of a second at a restart), not after."""
    moments: dict[str, float] = {}
    original_open = runtime_module.Runtime.open
    original_patch = CustomResources.patch

    async def slow_open(self: runtime_module.Runtime) -> None:
        await asyncio.sleep(1.5)  # a slow Neon or metadata DB
        await original_open(self)
        moments.setdefault("opened", time.monotonic())

    async def recording_patch(self: CustomResources, **kwargs: Any) -> None:
        await original_patch(self, **kwargs)
        if kwargs.get("name") == "user-waiting":
            moments.setdefault("made_ours", time.monotonic())

    monkeypatch.setattr(runtime_module.Runtime, "open", slow_open)
    monkeypatch.setattr(CustomResources, "patch", recording_patch)
    await stack.apply(global_database("user-waiting", "waiting"))
    await stack.start_operator(resync_interval_seconds=3600.0)
    obj = await stack.wait_ready("GlobalDatabase", "user-waiting", timeout=30)
    assert MANAGED_LABEL in labels_of(obj)
    assert moments["made_ours"] < moments["opened"]
    await stack.stop_operator()


async def test_killed_after_the_lane_made_a_signup_ours_the_next_start_finishes_it(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lane writes our finalizer and label before the clients are open: a process killed
    right then leaves a labelled resource with no status, which the next start's lane does not
    list (label) and kopf's create handler finishes, with one project."""
    assert stack.neon is not None
    made_ours = asyncio.Event()
    original_open = runtime_module.Runtime.open
    original_patch = CustomResources.patch

    async def stuck_open(self: runtime_module.Runtime) -> None:
        await asyncio.sleep(3600)  # killed before it ends
        await original_open(self)

    async def recording_patch(self: CustomResources, **kwargs: Any) -> None:
        await original_patch(self, **kwargs)
        made_ours.set()

    monkeypatch.setattr(runtime_module.Runtime, "open", stuck_open)
    monkeypatch.setattr(CustomResources, "patch", recording_patch)
    await stack.apply(global_database("user-cut", "cut"))
    starting = asyncio.create_task(stack.start_operator(resync_interval_seconds=3600.0))
    await eventually(lambda: _async(made_ours.is_set()), timeout=10, what="the lane's write")
    obj = await stack.get("GlobalDatabase", "user-cut")
    assert MANAGED_LABEL in labels_of(obj)
    assert "status" not in (obj or {})
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await starting
    await stack.stop_operator(abruptly=True)
    assert stack.neon.projects() == []

    monkeypatch.setattr(runtime_module.Runtime, "open", original_open)
    await stack.start_operator(resync_interval_seconds=3600.0)
    ready = await stack.wait_ready("GlobalDatabase", "user-cut", timeout=30)
    assert [p["id"] for p in stack.neon.projects()] == [ready["status"]["projectId"]]
    await stack.stop_operator()


async def _async(value: bool) -> bool:
    return value


async def test_a_restart_lists_only_the_resources_the_operator_never_took_up(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every resource the operator takes carries ``tenantdb.io/managed``; the next start-up
    lists only the ones without it (at 30,000 the whole fleet's list was seconds that a signup
    during a restart waited for). A resource from before the label gets it at its first resume."""
    listed: list[str] = []
    original = fast_lane.list_objects

    async def recording(*args: Any, **kwargs: Any) -> AsyncIterator[list[dict[str, Any]]]:
        async for page in original(*args, **kwargs):
            listed.extend(obj["metadata"]["name"] for obj in page)
            yield page

    monkeypatch.setattr(fast_lane, "list_objects", recording)
    await stack.apply(global_database("user-before", "before"))  # taken by the lane
    await stack.start_operator(resync_interval_seconds=3600.0)
    await stack.wait_ready("GlobalDatabase", "user-before", timeout=30)
    await stack.apply(global_database("user-live", "live"))  # taken by kopf's create handler
    await stack.wait_ready("GlobalDatabase", "user-live", timeout=30)
    for name in ("user-before", "user-live"):
        obj = await stack.wait_for(
            "GlobalDatabase", name, lambda o: MANAGED_LABEL in labels_of(o), timeout=10, what="our label"
        )
        assert obj is not None
    assert listed == ["user-before"]
    await stack.stop_operator()

    # A resource from an operator that set no label yet, and a signup while it was down.
    await stack.patch("GlobalDatabase", "user-live", {"metadata": {"labels": {MANAGED_LABEL: None}}})
    await stack.apply(global_database("user-down", "down"))
    listed.clear()
    await stack.start_operator(resync_interval_seconds=3600.0)
    await stack.wait_ready("GlobalDatabase", "user-down", timeout=30)
    assert sorted(listed) == ["user-down", "user-live"]
    relabelled = await stack.wait_for(
        "GlobalDatabase", "user-live", lambda o: MANAGED_LABEL in labels_of(o), timeout=30, what="our label"
    )
    assert relabelled is not None
    await stack.stop_operator()

    listed.clear()
    await stack.start_operator(resync_interval_seconds=3600.0)
    assert stack.runtime is not None
    assert stack.runtime.fast_lane is not None
    await stack.runtime.fast_lane.listed()
    assert listed == []
    assert stack.neon is not None
    assert len(stack.neon.projects()) == 3
    await stack.stop_operator()


def labels_of(obj: dict[str, Any] | None) -> dict[str, str]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}
