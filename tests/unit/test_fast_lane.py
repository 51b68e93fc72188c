"""The start-up fast lane's bookkeeping: what it takes, what kopf then skips, when it closes."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from tenantdb.api import GLOBAL_DATABASE, WORKSPACE_DATABASE
from tenantdb.config import Settings
from tenantdb.crypto import EncryptionKey
from tenantdb.handlers.background import ActiveGate
from tenantdb.handlers.fast_lane import FastLane
from tenantdb.handlers.runtime import Runtime
from tenantdb.metrics import Metrics

DIFFBASE = "tenantdb.io/last-handled-configuration"


def _lane() -> FastLane:
    runtime = Runtime(
        settings=Settings(encryption_key="0" * 64), cipher=EncryptionKey("0" * 64), metrics=Metrics()
    )
    return FastLane(runtime, finalizer="tenantdb.io/finalizer", diffbase_key=DIFFBASE)


def _obj(**parts: Any) -> dict[str, Any]:
    return {
        "metadata": {"uid": "u1", "name": "a", "namespace": "default", **parts.pop("metadata", {})},
        **parts,
    }


def test_only_what_kopf_never_handled_is_new() -> None:
    lane = _lane()
    assert lane.is_new(_obj(spec={"userId": "a"}))
    assert not lane.is_new(_obj(status={"phase": "Pending"}))  # a reconcile has written
    assert not lane.is_new(_obj(metadata={"annotations": {DIFFBASE: "{}"}}))  # kopf handled it
    assert not lane.is_new(_obj(metadata={"deletionTimestamp": "2026-12-03T07:00:00Z"}))


async def test_kopf_skips_only_what_the_lane_finished_at_that_generation() -> None:
    lane = _lane()
    lane._seen.add("u1")
    lane._handled["u1"] = 1
    assert await lane.kopf_reached(GLOBAL_DATABASE, "u1", 1, listing=True)
    assert not await lane.kopf_reached(GLOBAL_DATABASE, "u1", 2, listing=False)  # spec changed since
    assert not await lane.kopf_reached(GLOBAL_DATABASE, "u2", 1, listing=False)  # not the lane's


async def test_the_lane_closes_when_kopf_reaches_one_of_its_resources_outside_its_list() -> None:
    lane = _lane()
    live = lane._kopf_live
    lane._seen.update({"listed", "watched"})
    # Found by kopf in its start-up list: kopf is still listing, the lane stays open.
    await lane.kopf_reached(GLOBAL_DATABASE, "listed", 1, listing=True)
    await lane.kopf_reached(GLOBAL_DATABASE, "listed", 1, listing=False)
    assert not live["GlobalDatabase"].is_set()
    # Reached from kopf's watch: it is live for that kind, not for the other.
    await lane.kopf_reached(GLOBAL_DATABASE, "watched", 1, listing=False)
    assert live["GlobalDatabase"].is_set()
    assert not live["WorkspaceDatabase"].is_set()
    # kopf first, the lane later: the lane closes when it sees the resource.
    await lane.kopf_reached(WORKSPACE_DATABASE, "early", 1, listing=False)
    assert not live["WorkspaceDatabase"].is_set()
    assert "early" in lane._reached_by_kopf


class _Paused:
    """A peering object in which another replica of higher priority is alive."""

    async def read_peering(self, *, name: str, namespace: str | None = None) -> dict[str, Any]:
        seen = datetime.datetime.now(datetime.UTC).isoformat()
        return {"status": {"the-active-one": {"priority": 100, "lastseen": seen, "lifetime": 60}}}


async def test_a_standby_lane_stops_when_cancelled_as_it_holds_a_signup() -> None:
    """A signup held in the same turn of the loop as the operator stops it: the lane's gate
    follower ends (a swallowed cancellation kept a stopping replica alive until it was killed,
    and the handover waited for that)."""
    lane = _lane()
    gate = ActiveGate(identity="me", priority=50, peering_name="tenantdb", reader=_Paused())
    follower = asyncio.create_task(lane.standby.follow_the_gate(gate))
    await asyncio.sleep(0.1)  # paused, waiting for its next check
    lane.standby.more.set()
    follower.cancel()
    done, _ = await asyncio.wait({follower}, timeout=2.0)
    assert done, "the gate follower went on after it was cancelled"
    assert follower.cancelled()
