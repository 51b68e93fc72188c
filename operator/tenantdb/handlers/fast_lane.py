"""New database resources while kopf is still resuming the fleet: taken at once.

kopf lists every object of a kind before it watches the kind, and resumes each one listed; at
a restart with 30,000 resources that is half a minute of one event loop's work, and a user who
signs up meanwhile waits for all of it (measured: the signup's p95 equal to the whole start-up).
The fast lane lists the database kinds itself (parsing only, a page at a time: a few seconds
at 30,000) and watches them from there; a resource that kopf never handled (no status, none of
kopf's records: created while the operator was down or starting, or since) is reconciled right
away, as kopf's create handler would: our finalizer first (nothing is created in Neon for an
object that could vanish without it), then the same reconcile, under the same lock.

kopf stays the source of truth: the lane is a shortcut it backs up. A resource the lane could
not finish is reconciled by kopf's create handler as ever; one it finished is only registered
there (no second round of Neon calls). Once kopf's create handler reaches a resource the lane
saw, kopf watches live again and the lane stops for that kind. It acts only on the active
replica, and never on what kopf already handled (a resource with kopf's diff-base annotation or
a status).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from tenantdb.api import GLOBAL_DATABASE, WORKSPACE_DATABASE, Kind
from tenantdb.handlers.databases import observe_database
from tenantdb.handlers.events import PostedEvents, event_poster
from tenantdb.handlers.runtime import Runtime
from tenantdb.kube import CustomResources, KubeError
from tenantdb.kube.watching import list_then_watch

__all__ = ["FastLane", "start_fast_lane"]

_log = logging.getLogger(__name__)
_KINDS = (GLOBAL_DATABASE, WORKSPACE_DATABASE)


class FastLane:
    def __init__(self, runtime: Runtime, *, finalizer: str, diffbase_key: str) -> None:
        self._runtime = runtime
        self._finalizer = finalizer
        self._diffbase_key = diffbase_key
        self._seen: set[str] = set()  # new resources the lane saw
        self._handled: dict[str, int] = {}  # ... and reconciled, at this generation
        self._listed_by_kopf: set[str] = set()  # ... and kopf found in its own start-up list
        self._kopf_live = {kind.kind: asyncio.Event() for kind in _KINDS}
        self._post = event_poster(runtime)
        self._tasks: set[asyncio.Task[None]] = set()
        self.watching: set[str] = set()  # kinds whose watch is open (for a test to wait on)

    def kopf_reached(self, kind: Kind, uid: str, generation: int, *, listing: bool) -> bool:
        """Called by kopf's handlers: whether the lane already reconciled this resource at this
        generation (kopf then has nothing to add). ``listing``: kopf found it in its start-up
        list (its resume handler runs then, before the create handler). A resource the lane saw
        that kopf reaches outside its list means kopf watches live again: the lane closes for
        this kind."""
        if listing:
            self._listed_by_kopf.add(uid)
        elif uid in self._seen and uid not in self._listed_by_kopf:
            self._kopf_live[kind.kind].set()
        return self._handled.get(uid) == generation

    def is_new(self, obj: Mapping[str, Any]) -> bool:
        meta: Mapping[str, Any] = obj.get("metadata") or {}
        annotations: Mapping[str, Any] = meta.get("annotations") or {}
        return not (meta.get("deletionTimestamp") or obj.get("status") or self._diffbase_key in annotations)

    async def run(self) -> None:
        scopes: list[str | None] = list(self._runtime.settings.namespaces) or [None]
        async with asyncio.TaskGroup() as group:
            for kind in _KINDS:
                for namespace in scopes:
                    group.create_task(self._watch_until_kopf_is_live(kind, namespace))

    async def _watch_until_kopf_is_live(self, kind: Kind, namespace: str | None) -> None:
        live = self._kopf_live[kind.kind]
        watcher = asyncio.create_task(self._watch(kind, namespace))
        waiter = asyncio.create_task(live.wait())
        try:
            await asyncio.wait({watcher, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watcher, waiter):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(watcher, waiter, return_exceptions=True)
        if watcher.done() and not watcher.cancelled() and watcher.exception() is not None:
            _log.warning("fast lane for %s ended: %r", kind.kind, watcher.exception())
        _log.info("fast lane for new %s resources closed: kopf handles them now", kind.kind)

    async def _watch(self, kind: Kind, namespace: str | None) -> None:
        assert self._runtime.kube is not None
        while True:
            try:
                async for event_type, obj in list_then_watch(
                    self._runtime.kube,
                    plural=kind.plural,
                    namespace=namespace,
                    page_size=self._runtime.settings.list_page_size,
                    opened=lambda: self.watching.add(kind.kind),
                ):
                    if event_type in ("LISTED", "ADDED") and self.is_new(obj):
                        task = asyncio.create_task(self._take(kind, obj))
                        self._tasks.add(task)
                        task.add_done_callback(self._tasks.discard)
            except KubeError as exc:  # kopf handles new resources meanwhile, as ever
                _log.warning("fast lane for %s: %s; watching again in 5s", kind.kind, exc)
                await asyncio.sleep(5)

    async def _take(self, kind: Kind, obj: dict[str, Any]) -> None:
        runtime = self._runtime
        meta: dict[str, Any] = obj.get("metadata") or {}
        uid, namespace, name = str(meta.get("uid")), str(meta.get("namespace")), str(meta.get("name"))
        self._seen.add(uid)
        assert runtime.gate is not None
        if self._kopf_live[kind.kind].is_set() or not await runtime.gate.is_active():
            return
        # Our finalizer before anything exists outside: a resource deleted from now on waits
        # for kopf's delete handler, which removes what the reconcile made.
        finalizers = list(meta.get("finalizers") or [])
        if self._finalizer not in finalizers:
            assert runtime.kube is not None
            patch = {
                "metadata": {
                    "finalizers": [*finalizers, self._finalizer],
                    "resourceVersion": meta.get("resourceVersion"),  # changed meanwhile: 409
                }
            }
            try:
                await CustomResources(runtime.kube).patch(
                    plural=kind.plural, namespace=namespace, name=name, patch=patch
                )
            except KubeError as exc:
                _log.info("fast lane: %s %s/%s left to kopf (%s)", kind.kind, namespace, name, exc)
                return
            meta["finalizers"] = [*finalizers, self._finalizer]
        events = PostedEvents(self._post, kind=kind.kind, namespace=namespace, name=name)
        if await observe_database(runtime, kind, obj, events, full=True):
            self._handled[uid] = int(meta.get("generation") or 1)


def start_fast_lane(runtime: Runtime, *, finalizer: str, diffbase_key: str) -> None:
    """Start the lane as a task of the operator (cancelled by ``Runtime.close``)."""
    lane = FastLane(runtime, finalizer=finalizer, diffbase_key=diffbase_key)
    runtime.fast_lane = lane
    runtime.fast_lane_task = asyncio.create_task(lane.run())
