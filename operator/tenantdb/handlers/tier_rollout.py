"""The tiers' rollout loop: databases brought to their user's tier, paced, and each tier's
progress on its status.

What is behind and in which order is ``reconcile.tier_rollout``'s; what one database needs is
``reconcile.database_tier``'s (under the resource's lock: ``driver.tier_actuator``). Here:

- when: the handlers wake it (a tier changed, a user moved to another tier); it also looks
  once a minute, for databases registered since (a restart's resumes);
- the pace: at most ``TENANTDB_TIER_ROLLOUT_PER_MINUTE`` Neon calls a minute (a database whose
  tier's name alone changed costs none, and waits for no slot), their Neon calls
  background work (the limiter serves them from its background share, after what users wait
  for); a user's own move goes before the rest of a backlog, looked for again between two
  databases (a new move does not wait for a long rollout to end);
- progress: each tier's status (``databases``, ``updatedDatabases``, Ready) written when it
  changed, at most every few seconds while rolling out and once at the end;
- only on the active replica (``run_while_active``), like every loop of the operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import Coroutine
from typing import Any

from tenantdb.api import DATABASE_TIER, Condition
from tenantdb.handlers.background import run_while_active
from tenantdb.handlers.driver import tier_actuator
from tenantdb.handlers.events import event_poster
from tenantdb.handlers.runtime import Runtime
from tenantdb.kube import KubeError
from tenantdb.neon import background_calls
from tenantdb.neon.errors import NeonError
from tenantdb.reconcile.tier_rollout import Behind, behind, progress, tier_status

__all__ = ["TierRollout", "start_tier_rollout"]

_log = logging.getLogger(__name__)

_LOOK_EVERY_SECONDS = 60.0  # unasked, for databases registered since the last look
_PROGRESS_EVERY_SECONDS = 5.0  # the tiers' status while rolling out
_RETRY_FAILED_SECONDS = 300.0  # a database whose patch failed is left that long


class TierRollout:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._act = tier_actuator(runtime, event_poster(runtime))
        # Each tier's status as last written (a restart writes what differs from the object's).
        self._written: dict[str, dict[str, Any]] = {}
        self._conditions: dict[str, list[Condition]] = {}
        self._last_progress = 0.0
        self._failed: dict[tuple[str, str, str], float] = {}  # database -> not before (monotonic)
        self.calls = 0  # Neon calls made, for tests and the log

    def forget_written(self) -> None:
        """Another replica may have written the tiers' status: the next writes are sent whole."""
        self._written.clear()

    async def step(self) -> None:
        """Wait to be woken (or a minute), then bring every database that is behind level."""
        queue = self._runtime.tier_rollout
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(queue.changed.wait(), timeout=_LOOK_EVERY_SECONDS)
        await self.roll_out()

    async def roll_out(self) -> None:
        """Every database behind, paced; the tiers' progress written on the way and at the end."""
        queue = self._runtime.tier_rollout
        interval = 60.0 / self._runtime.settings.tier_rollout_per_minute
        next_slot = time.monotonic()
        pending: list[Behind] = []
        look = True
        while True:
            # Looked for again only when told of a change (a tier, a user's move): a scan of
            # every database per database done would cost 30,000 times 30,000.
            if look or queue.changed.is_set():
                queue.changed.clear()
                pending = self._behind()
                look = False
            if not pending:
                break
            item = pending.pop(0)
            queue.urgent.discard(item.record.user_id)
            calls = item.neon_calls
            if calls:  # a new tier name alone is a status write: no Neon slot to wait for
                wait = next_slot - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                next_slot = max(next_slot, time.monotonic()) + interval * calls
            await self._one(item)
            if time.monotonic() - self._last_progress >= _PROGRESS_EVERY_SECONDS:
                await self.write_progress()
        queue.urgent.clear()
        await self.write_progress()

    def _behind(self) -> list[Behind]:
        budgets = self._runtime.budgets
        now = time.monotonic()
        self._failed = {key: until for key, until in self._failed.items() if until > now}
        return [
            item
            for item in behind(
                list(budgets.databases.values()),
                tier_of=budgets.tier_name,
                policy=budgets.policy,
                urgent=self._runtime.tier_rollout.urgent,
            )
            if item.record.sort_key not in self._failed
        ]

    async def _one(self, item: Behind) -> None:
        record = item.record
        try:
            with background_calls():
                self.calls += await self._act(item)
        except (NeonError, KubeError) as exc:
            # Left behind a while (its reconcile, or a later look, tries again), so that one
            # database that fails does not hold up the others.
            self._failed[record.sort_key] = time.monotonic() + _RETRY_FAILED_SECONDS
            _log.warning(
                "tier %s: could not bring %s %s/%s to it: %s",
                item.wanted.tier, record.kind, record.namespace, record.name, exc,
            )  # fmt: skip

    async def write_progress(self) -> None:
        """Each tier's status, where it changed."""
        self._last_progress = time.monotonic()
        runtime = self._runtime
        assert runtime.kube is not None
        budgets = runtime.budgets
        policy = budgets.policy
        if not len(budgets.tiers):
            return  # the settings' tiers: no object to write on
        done = progress(
            list(budgets.budgets.values()),
            list(budgets.databases.values()),
            tier_of=budgets.tier_name,
            policy=policy,
        )
        now = datetime.datetime.now(datetime.UTC)
        for name, tier_progress in done.items():
            definition = policy.tier(name)
            generation = definition.generation if definition is not None else None
            wire, conditions = tier_status(
                tier_progress, conditions=self._conditions.get(name, []), generation=generation, now=now
            )
            held = self._written.get(name)
            if held is not None and all(held.get(field) == value for field, value in wire.items()):
                continue
            try:
                await runtime.kube.patch_status(
                    plural=DATABASE_TIER.plural, namespace=None, name=name, status=wire
                )
            except KubeError as exc:
                _log.warning("could not write the status of DatabaseTier %s: %s", name, exc)
                continue
            self._written[name] = wire
            self._conditions[name] = conditions


def start_tier_rollout(runtime: Runtime) -> Coroutine[Any, Any, None]:
    """The rollout's loop, for ``Loops`` to run; the first look once the resumes had a moment."""
    assert runtime.gate is not None
    rollout = TierRollout(runtime)
    runtime.tier_rollout.wake()  # a first look, whatever changed while the operator was down

    async def activated() -> None:
        rollout.forget_written()
        await asyncio.sleep(min(_LOOK_EVERY_SECONDS, 10.0))

    return run_while_active(
        runtime.gate,
        rollout.step,
        interval=1.0,
        on_activated=activated,
        what="tier rollout",
    )
