"""A hot standby's part of the fast lane: the signups a paused replica sees, held until it is
the active one.

On a paused replica of a kopf peering the lane keeps watching and holds what it sees: the
active replica takes it up and labels it, the watch then says it left the selection (DELETED),
and the standby keeps it aside (``taken_elsewhere``) until a status or kopf's record shows that
the other replica's reconcile began. When the active replica stops, the standby's kopf resumes
with a list of the whole fleet, as at a start; the standby, already running, takes what it
holds the moment the peering object says this replica is the one, those labelled and never
begun too: a replica stopped between its label write and its first status write leaves such
a signup, and kopf's cycle whose finalizer write lost the race to that label skips the
handlers until the resource changes again, which nothing does. A signup made during a rolling
restart so never waits for a process to start. A replica paused again opens its lane again
(kopf lists anew on every resume).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

from tenantdb.api import MANAGED_LABEL, Kind
from tenantdb.handlers.background import ActiveGate, wait_until_set

__all__ = ["Standby", "labelled"]

_log = logging.getLogger("tenantdb.handlers.fast_lane")  # one lane, one logger name in the logs
# A peered replica reads the peering object this often to find it was paused (the lane opens
# again) and, while it holds signups, this often to take them the moment it is the active one.
_GATE_CHECK_SECONDS = 5.0
_HELD_GATE_CHECK_SECONDS = 0.5
# What a paused replica holds is read again this often: a watch that restarted from now may
# have missed the event that said another replica took it up.
_HELD_REVIEW_SECONDS = 30.0

Held = dict[str, tuple[Kind, dict[str, Any]]]


class Lane(Protocol):
    """What the standby asks of the fast lane (``handlers.fast_lane.FastLane``)."""

    def reopen(self) -> None: ...
    def start_take(self, kind: Kind, obj: dict[str, Any], *, fresh: bool) -> None: ...
    def forget_seen(self, uid: str) -> None: ...
    def is_taking(self, uid: str) -> bool: ...
    async def still_waiting(self, kind: Kind, obj: Mapping[str, Any]) -> dict[str, Any] | None: ...


class Standby:
    def __init__(self, lane: Lane) -> None:
        self._lane = lane
        self.held: Held = {}  # new resources seen while this replica was paused
        # ... and those another replica took up (our label) while this one was paused, until
        # they show that its reconcile began (a status, kopf's record).
        self.taken_elsewhere: Held = {}
        self.more = asyncio.Event()  # the gate's check goes faster while something is held
        self._left: set[str] = set()  # left the selection while its take asked the gate

    def holds(self, uid: str) -> bool:
        return uid in self.held

    def holding(self) -> bool:
        return bool(self.held or self.taken_elsewhere)

    def hold(self, kind: Kind, obj: dict[str, Any]) -> None:
        """A take found this replica paused: held until it is the active one."""
        uid = str((obj.get("metadata") or {}).get("uid"))
        if uid in self._left:  # another replica took it up while this one asked the gate
            self.taken_elsewhere[uid] = (kind, obj)
        else:
            self.held[uid] = (kind, obj)
        self.more.set()

    def forget(self, obj: Mapping[str, Any]) -> None:
        """The watch's DELETED (labelled by a replica, or deleted), or a review's finding."""
        uid = str((obj.get("metadata") or {}).get("uid"))
        held = self.held.pop(uid, None)
        if held is not None:
            if labelled(obj) and not (obj.get("metadata") or {}).get("deletionTimestamp"):
                self.taken_elsewhere[uid] = held  # until its reconcile shows it began
            else:
                self._lane.forget_seen(uid)  # a standby keeps nothing per signup it never took
        elif self._lane.is_taking(uid):
            self._left.add(uid)  # until its take ends (this replica's own label write, too)

    def take_ended(self, uid: str) -> None:
        self._left.discard(uid)

    async def follow_the_gate(self, gate: ActiveGate) -> None:
        """Found paused, the lane opens again (kopf lists the fleet anew when it resumes);
        found active while it holds signups, it takes them."""
        paused = False
        reviewed = time.monotonic()
        while True:
            try:
                active = await gate.is_active(max_age=0.0 if self.holding() else None)
            except Exception as exc:  # the gate says why; try again at the next check
                _log.warning("fast lane: cannot tell whether this replica is active: %r", exc)
                active = False
            if not active and not paused:
                self._lane.reopen()
            paused = not active
            if active and self.holding():
                self._take_all()
            elif self.holding() and time.monotonic() - reviewed >= _HELD_REVIEW_SECONDS:
                await self._review()
            if not self.holding():
                reviewed = time.monotonic()
            self.more.clear()
            await wait_until_set(
                self.more, _HELD_GATE_CHECK_SECONDS if self.holding() else _GATE_CHECK_SECONDS
            )

    async def _review(self) -> None:
        """Forget what no longer waits (begun by another replica, deleted, changed), read from
        the API server; what another replica labelled stays until its reconcile shows."""
        for kind, obj in list(self.held.values()):
            current = await self._lane.still_waiting(kind, obj)
            if current is None or labelled(current):
                self.forget(current or obj)
        for uid, (kind, obj) in list(self.taken_elsewhere.items()):
            if await self._lane.still_waiting(kind, obj) is None:
                del self.taken_elsewhere[uid]
                self._lane.forget_seen(uid)

    def _take_all(self) -> None:
        held = {**self.held, **self.taken_elsewhere}
        self.held, self.taken_elsewhere = {}, {}
        _log.info("fast lane: this replica is active; taking %d new resources held while paused", len(held))
        for uid, (kind, obj) in held.items():
            self._lane.forget_seen(uid)
            self._lane.start_take(kind, obj, fresh=False)


def labelled(obj: Mapping[str, Any]) -> bool:
    """Carries our label: taken up by a replica (this one or another)."""
    return MANAGED_LABEL in ((obj.get("metadata") or {}).get("labels") or {})
