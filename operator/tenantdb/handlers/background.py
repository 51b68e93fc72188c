"""Loops outside kopf's handlers act only on the replica kopf lets act.

kopf pauses a replica when a peer of higher (or equal) priority is alive in the peering
object; its own handlers, daemons and timers then stop. Its paused flag is internal (a toggle
inside ``kopf.spawn_tasks``); the public record of who may act is the peering object itself,
whose status lists every peer's ``priority``, ``lastseen`` and ``lifetime``. ``ActiveGate``
reads it with kopf's own rule (see ``kopf`` peering: a live peer with a higher priority, or the
same one, pauses us) before every round of a loop. ``run_while_active`` is the one way a loop
of this operator runs: the consumption sync and enforcement use it, and so must any loop added
later. A replica that was paused starts again from the durable state (``on_activated``),
never from its memory of before the pause.

Standalone (no peering name): always active.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from tenantdb.reconcile.conditions import parse_rfc3339

__all__ = ["ActiveGate", "PeeringReader", "peers_allow", "run_while_active", "wait_until_set"]

_log = logging.getLogger(__name__)


class PeeringReader(Protocol):
    async def read_peering(self, *, name: str, namespace: str | None = None) -> dict[str, Any] | None: ...


def peers_allow(status: Mapping[str, Any], *, identity: str, priority: int, now: datetime.datetime) -> bool:
    """kopf's rule: we act when we are announced and no other live peer has our priority or more."""
    me_seen = False
    for peer_id, info in status.items():
        if not isinstance(info, Mapping):
            continue
        seen = parse_rfc3339(info.get("lastseen"))
        # kopf's graceful stop writes lifetime 0 (gone now); only a missing one means kopf's 60.
        given = info.get("lifetime")
        lifetime = 60.0 if given is None else float(given)
        alive = seen is not None and seen + datetime.timedelta(seconds=lifetime) > now
        if peer_id == identity:
            me_seen = alive
        elif alive and int(info.get("priority") or 0) >= priority:
            return False
    return me_seen


@dataclasses.dataclass
class ActiveGate:
    """Whether this replica may act now; ``peering_name`` empty: standalone, always."""

    identity: str
    priority: int = 0
    peering_name: str = ""
    namespaces: Sequence[str] = ()
    reader: PeeringReader | None = None
    clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC)
    # Several loops ask (the Sim sync every second): one answer serves them all this long, so
    # the peering object is read at most once per this many seconds. Far below kopf's peer
    # lifetime (60 s), it adds at most this much to a handover.
    answer_ttl_seconds: float = 2.0
    _answer: tuple[float, bool] | None = dataclasses.field(default=None, init=False, repr=False)

    @property
    def peered(self) -> bool:
        return bool(self.peering_name)

    @property
    def last_answer(self) -> bool:
        """What the latest ``is_active`` said (standalone: always true; not asked yet: false),
        for the ``tenantdb_replica_active`` gauge: a paused replica asks every few seconds."""
        if not self.peering_name:
            return True
        return self._answer is not None and self._answer[1]

    async def is_active(self, *, max_age: float | None = None) -> bool:
        """``max_age``: the oldest answer that will do (seconds; default ``answer_ttl_seconds``),
        0 to read the peering object now (a take that must not act on a paused replica)."""
        if not self.peering_name:
            return True
        if self.reader is None:
            return False
        now = time.monotonic()
        ttl = self.answer_ttl_seconds if max_age is None else max_age
        if self._answer is not None and now - self._answer[0] < ttl:
            return self._answer[1]
        active = await self._read_active()
        self._answer = (time.monotonic(), active)
        return active

    async def _read_active(self) -> bool:
        assert self.reader is not None
        scopes: Sequence[str | None] = list(self.namespaces) or [None]
        for namespace in scopes:
            try:
                found = await self.reader.read_peering(name=self.peering_name, namespace=namespace)
            except Exception as exc:  # cannot tell: do not act
                _log.warning("cannot read the peering object %s: %s", self.peering_name, exc)
                return False
            status = (found or {}).get("status") or {}
            if not peers_allow(status, identity=self.identity, priority=self.priority, now=self.clock()):
                return False
        return True


async def run_while_active(
    gate: ActiveGate,
    step: Callable[[], Awaitable[None]],
    *,
    interval: float,
    on_activated: Callable[[], Awaitable[None]] | None = None,
    on_paused: Callable[[], None] | None = None,
    idle_check: float = 5.0,
    what: str = "background loop",
) -> None:
    """Start ``step`` every ``interval`` seconds while ``gate`` says this replica is active.

    Paused, it checks again every ``idle_check`` seconds; on becoming active (at the start too)
    ``on_activated`` runs first, so nothing acts from state kept across a pause; on being found
    paused (at the start too) ``on_paused`` runs, to forget what another replica may change.
    A step that runs longer than ``idle_check`` is checked on meanwhile, and cancelled the
    moment this replica is paused: two replicas never act together for longer than that.
    """
    was_active: bool | None = None
    while True:
        active = await gate.is_active()
        if not active:
            if was_active is not False:
                _log.info("%s paused: another replica is active", what)
                if on_paused is not None:
                    on_paused()
            was_active = False
            await asyncio.sleep(min(idle_check, interval))
            continue
        if was_active is not True:
            _log.info("%s active on this replica", what)
            if on_activated is not None:
                await on_activated()
            was_active = True
        started = time.monotonic()
        if not await _step_while_active(gate, step, idle_check=idle_check):
            continue  # paused mid-step: handled as a pause by the next check
        # Every ``interval`` from the start of a step, not after its end: a step that takes
        # minutes (a fleet pass at 30,000 resources) would otherwise come every interval + its
        # own length. One longer than the interval is followed at once by the next.
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))


async def _step_while_active(
    gate: ActiveGate, step: Callable[[], Awaitable[None]], *, idle_check: float
) -> bool:
    """Run one step; cancel it when the gate closes meanwhile. Returns whether it completed."""
    task = asyncio.ensure_future(step())
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=idle_check)
            if done:
                task.result()
                return True
            if not await gate.is_active():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                return False
    finally:
        if not task.done():  # this loop itself is being cancelled
            task.cancel()


async def wait_until_set(event: asyncio.Event, timeout: float) -> bool:
    """Whether ``event`` was set within ``timeout`` seconds.

    Not ``asyncio.wait_for``: on Python 3.11 it swallows a cancellation that arrives in the
    same turn of the loop as the event (it returns the finished wait instead of raising), and a
    loop built on it goes on after it was cancelled. A stopping operator then waited for it
    until it was killed (seen: a graceful stop took kopf's 30 s grace, not a moment).
    ``asyncio.timeout`` tells its own expiry from a cancellation from outside.
    """
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
