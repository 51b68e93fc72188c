"""New database resources while kopf is still resuming the fleet: taken at once.

kopf lists every object of a kind before it watches the kind, and resumes each one listed; at
a restart with 30,000 resources that is half a minute of one event loop's work, and a user who
signs up meanwhile waits for all of it (measured: the signup's p95 equal to the whole start-up).
The fast lane starts first thing in kopf's start-up handler, before the Neon key check and the
metadata DB: it watches the database kinds from that moment (no list before the watch) and lists
the resources the operator has never taken up, the ones without the ``tenantdb.io/managed``
label (the API server selects them: a handful, not the fleet). A resource that kopf never
handled (no status, none of kopf's records: created while the operator was down or starting,
or since) is reconciled as soon as the operator's clients are open, as kopf's create handler
would: our finalizer and label first (nothing is created in Neon for an object that could
vanish without it), then the same reconcile, under the same lock.

kopf stays the source of truth: the lane is a shortcut it backs up. A resource the lane could
not finish is reconciled by kopf's create handler as ever; one it finished is only registered
there (no second round of Neon calls). Until kopf's handler comes for it, the lane retries a
failed reconcile itself, after the delay kopf would have waited: kopf may be a minute away
(its start-up list), or wait for the resource's next change (a cycle of kopf's whose
finalizer write lost the race to the lane's skips the handlers; in one CI run a signup whose
lane reconcile failed was never retried and stayed Creating). Once kopf's create handler
reaches, outside kopf's own start-up list, a resource the lane saw, kopf watches live again
and the lane stops for that kind. It acts only on the active replica, and never on what kopf
already handled (a resource with kopf's diff-base annotation or a status).

On a paused replica of a kopf peering (a hot standby) the lane keeps watching, and what it
sees is held by ``handlers/standby.py`` until this replica is the active one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from tenantdb.api import DATABASE_KINDS, MANAGED_LABEL, Kind
from tenantdb.handlers.background import wait_until_set
from tenantdb.handlers.driver import reconcile_new_database
from tenantdb.handlers.events import PostedEvents, event_poster
from tenantdb.handlers.runtime import Runtime
from tenantdb.handlers.standby import Standby
from tenantdb.kube import CustomResources, KubeError
from tenantdb.kube.watching import list_objects, watch_from_now

__all__ = ["FastLane", "LaneFailure"]

_log = logging.getLogger(__name__)
_NOT_TAKEN = f"!{MANAGED_LABEL}"  # what the lane lists and watches: resources never taken up
# A held signup's take that loses its write to another replica's (409) reads it again this many
# times: the other replica may have labelled it and stopped before anything else.
_TAKE_ATTEMPTS = 3


@dataclasses.dataclass(frozen=True)
class LaneFailure:
    """A reconcile of the lane's that failed: kopf's create handler, when it comes, fails as it
    did (and kopf retries it with a fresh body)."""

    generation: int
    message: str
    retry_after: float | None  # None: for good

    def as_kopf_error(self) -> kopf.TemporaryError | kopf.PermanentError:
        if self.retry_after is None:
            return kopf.PermanentError(self.message)
        return kopf.TemporaryError(self.message, delay=self.retry_after)


class FastLane:
    def __init__(self, runtime: Runtime, *, finalizer: str, diffbase_key: str) -> None:
        self._runtime = runtime
        self._finalizer = finalizer
        self._diffbase_key = diffbase_key
        self._seen: set[str] = set()  # new resources the lane saw
        self._handled: dict[str, int] = {}  # ... and reconciled, at this generation
        # ... or failed: (generation, message, retry delay; None: permanent), for kopf to take up
        self._failed: dict[str, LaneFailure] = {}
        self._listed_by_kopf: set[str] = set()  # ... and kopf found in its own start-up list
        self._reached_by_kopf: set[str] = set()  # kopf's create handler ran, outside its list
        self._kopf_live = {kind.kind: asyncio.Event() for kind in DATABASE_KINDS}
        self._post = event_poster(runtime)
        self._taking: dict[str, asyncio.Task[None]] = {}  # the lane's reconciles in flight
        self._kopf_came: dict[str, asyncio.Event] = {}  # ... and kopf's handler came: no more retries
        self._first_tries: set[asyncio.Future[None]] = set()  # ... whose first attempt is not over
        self.watching: set[str] = set()  # kinds whose watch is open (for a test to wait on)
        self._open = asyncio.Event()  # the operator's clients are open: the takes' reconciles may go ahead
        self._listing: asyncio.Task[None] | None = None
        # On a peered replica: what it holds while paused (handlers/standby.py).
        self.standby = Standby(self)

    def clients_open(self) -> None:
        """The Neon client, the metadata DB and the budgets' state are ready: take what waits."""
        self._open.set()

    async def listed(self) -> None:
        """Wait for the start-up list (what was made while the operator was down)."""
        if self._listing is not None:
            await asyncio.wait({self._listing})

    async def taken(self, *, timeout: float) -> None:
        """Wait (at most ``timeout``) for the reconciles in flight: kopf's start-up list and
        its thousands of resumes hold the event loop for a minute, and a signup made while the
        operator was down would share it with them (seconds per step, measured); a moment
        before them, it is Ready in a fraction of a second."""
        if self._first_tries:  # not their retries: those wait seconds, as kopf's would
            await asyncio.wait(set(self._first_tries), timeout=timeout)

    async def kopf_reached(self, kind: Kind, uid: str, generation: int, *, listing: bool) -> bool:
        """Called by kopf's handlers: whether the lane already reconciled this resource at this
        generation (kopf then has nothing to add); raises kopf's error when the lane's reconcile
        failed (kopf retries it, with a fresh body). ``listing``: kopf found it in its start-up
        list (its resume handler runs then, before the create handler). A resource the lane saw
        that kopf reaches outside its list means kopf watches live again: the lane closes for
        this kind."""
        live = self._kopf_live[kind.kind]
        if listing:
            self._listed_by_kopf.add(uid)
        elif not live.is_set():
            if uid in self._seen and uid not in self._listed_by_kopf:
                live.set()
            self._reached_by_kopf.add(uid)  # before the lane saw it: the lane closes when it does
        came = self._kopf_came.get(uid)
        if came is not None:
            came.set()  # the lane's attempt in flight is its last: kopf retries from here
        taking = self._taking.get(uid)
        if taking is not None:  # the lane is at it: its result, rather than a second reconcile
            await asyncio.wait({taking})
        failed = self._failed.pop(uid, None)
        if failed is not None and failed.generation == generation:
            # kopf's body may predate what the lane wrote (a create on record that is over):
            # its handler fails as the lane's reconcile did, and kopf retries with a fresh body.
            raise failed.as_kopf_error()
        return self._handled.get(uid) == generation

    def is_new(self, obj: Mapping[str, Any]) -> bool:
        meta: Mapping[str, Any] = obj.get("metadata") or {}
        annotations: Mapping[str, Any] = meta.get("annotations") or {}
        return not (meta.get("deletionTimestamp") or obj.get("status") or self._diffbase_key in annotations)

    async def close(self) -> None:
        """Cancel the reconciles in flight (the operator stops: as after a crash, what they did
        is on record and the next start goes on from it)."""
        tasks = list(self._taking.values())
        if self._listing is not None:
            tasks.append(self._listing)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Not kept: a task holds the context it was made in, kopf's settings and their
        # executor with it (whose idle worker thread then outlives the operator).
        self._listing = None

    async def run(self) -> None:
        scopes: list[str | None] = list(self._runtime.settings.namespaces) or [None]
        assert self._runtime.gate is not None
        peered = self._runtime.gate.peered
        async with asyncio.TaskGroup() as group:
            for kind in DATABASE_KINDS:
                for namespace in scopes:
                    # A standby's lane never closes: it opens again at every pause.
                    if peered:
                        group.create_task(self._watch(kind, namespace))
                    else:
                        group.create_task(self._watch_until_kopf_is_live(kind, namespace))
            if peered:
                group.create_task(self.standby.follow_the_gate(self._runtime.gate))

    def reopen(self) -> None:
        """Paused: another replica acts, and this one's kopf lists the fleet again when it
        resumes. Until kopf comes for a signup outside that list, the lane takes them."""
        for live in self._kopf_live.values():
            live.clear()
        self._reached_by_kopf.clear()
        self._listed_by_kopf.clear()

    @property
    def held(self) -> dict[str, tuple[Kind, dict[str, Any]]]:
        """What a paused replica holds (``Standby.held``)."""
        return self.standby.held

    def _left_selection(self, obj: Mapping[str, Any]) -> None:
        """The watch's DELETED: labelled (taken up by the active replica, or this one) or deleted."""
        self.standby.forget(obj)

    def forget_seen(self, uid: str) -> None:
        self._seen.discard(uid)

    def is_taking(self, uid: str) -> bool:
        return uid in self._taking

    async def still_waiting(self, kind: Kind, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        """The resource as it is now, if nobody began its reconcile: there, at the same
        generation, and new (no status, no record of kopf's), our label or not."""
        meta: Mapping[str, Any] = obj.get("metadata") or {}
        current = await self._still_ours(
            kind, str(meta.get("namespace")), str(meta.get("name")), int(meta.get("generation") or 1)
        )
        if current is None or not self.is_new(current):
            return None
        return current

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
        """New resources from the watch, at once."""
        assert self._runtime.kube is not None
        while True:
            try:
                async for event_type, obj in watch_from_now(
                    self._runtime.kube,
                    plural=kind.plural,
                    namespace=namespace,
                    label_selector=_NOT_TAKEN,
                    opened=lambda: self.watching.add(kind.kind),
                ):
                    if event_type == "ADDED":
                        self._offer(kind, obj)
                    elif event_type == "DELETED":
                        self._left_selection(obj)
            except KubeError as exc:  # kopf handles new resources meanwhile, as ever
                _log.warning("fast lane for %s: %s; watching again in 5s", kind.kind, exc)
                await asyncio.sleep(5)

    def start_listing(self) -> None:
        if self._listing is None:
            self._listing = asyncio.create_task(self._list_existing())

    async def _list_existing(self) -> None:
        """Offer what was made before the watch (while the operator was down or starting).

        Only the resources without our label: at 30,000 the whole fleet's list took seconds to
        serve and parse, which every signup made during a restart waited for (and two lists of
        30,000 parsed side by side, the lane's and kopf's, left the process 150 MB larger)."""
        scopes: list[str | None] = list(self._runtime.settings.namespaces) or [None]
        for kind in DATABASE_KINDS:
            for namespace in scopes:
                await self._list(kind, namespace)

    async def _list(self, kind: Kind, namespace: str | None) -> None:
        assert self._runtime.kube is not None
        page_size = self._runtime.settings.list_page_size
        try:
            async for page in list_objects(
                self._runtime.kube,
                plural=kind.plural,
                namespace=namespace,
                page_size=page_size,
                label_selector=_NOT_TAKEN,
            ):
                for obj in page:
                    self._offer(kind, obj)
        except KubeError as exc:  # kopf's own list finds them as ever
            _log.warning("fast lane for %s: %s", kind.kind, exc)

    def _offer(self, kind: Kind, obj: dict[str, Any]) -> None:
        uid = str((obj.get("metadata") or {}).get("uid"))
        if uid in self._seen or self.standby.holds(uid) or not self.is_new(obj):
            return  # listed and watched both (made between the watch and the list), or old
        if self._kopf_live[kind.kind].is_set():
            return  # kopf watches live (a peered replica's lane stays open, and takes nothing)
        self.start_take(kind, obj, fresh=True)

    def start_take(self, kind: Kind, obj: dict[str, Any], *, fresh: bool) -> None:
        """``fresh``: the object as the watch or list just gave it; else held a while (read
        again before the take writes anything)."""
        uid = str((obj.get("metadata") or {}).get("uid"))
        self._seen.add(uid)
        came = self._kopf_came[uid] = asyncio.Event()  # before the take starts: kopf may come at once
        first_try: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._first_tries.add(first_try)
        first_try.add_done_callback(self._first_tries.discard)
        task = asyncio.create_task(self._take(kind, obj, came, first_try, fresh=fresh))
        self._taking[uid] = task

        def done(_: asyncio.Task[None]) -> None:
            self._taking.pop(uid, None)
            self.standby.take_ended(uid)
            self._kopf_came.pop(uid, None)
            if not first_try.done():
                first_try.set_result(None)

        task.add_done_callback(done)

    async def _take(
        self,
        kind: Kind,
        obj: dict[str, Any],
        came: asyncio.Event,
        first_try: asyncio.Future[None],
        *,
        fresh: bool = True,
    ) -> None:
        runtime = self._runtime
        meta: dict[str, Any] = obj.get("metadata") or {}
        uid, namespace, name = str(meta.get("uid")), str(meta.get("namespace")), str(meta.get("name"))
        live = self._kopf_live[kind.kind]
        if uid in self._reached_by_kopf:
            live.set()  # kopf was there first: it watches live
        gate = runtime.gate
        assert gate is not None
        if live.is_set():
            return
        # A peered replica reads the peering object now: a replica that was paused a moment ago
        # (a higher one just started) must not write; a paused one holds the signup.
        if not await gate.is_active(max_age=0.0 if gate.peered else None):
            self.standby.hold(kind, obj)
            return
        # A held one is read again first: begun by the replica that was active (a status, or
        # kopf's record), deleted or changed, it is kopf's. Labelled by that replica and no
        # more (it stopped in between), it is still this one's to take.
        for attempt in range(_TAKE_ATTEMPTS):
            if not fresh or attempt:
                current = await self.still_waiting(kind, obj)
                if current is None:
                    return
                obj = current
            try:
                await self._make_ours(kind, obj)
            except KubeError as exc:
                if fresh or exc.status != 409 or attempt == _TAKE_ATTEMPTS - 1:
                    _log.info("fast lane: %s %s/%s left to kopf (%s)", kind.kind, namespace, name, exc)
                    return
            else:
                break
        # The write above needs only the Kubernetes client: it goes while the Neon key check and
        # the metadata DB open (a third of a second at a restart, measured), the reconcile after.
        await self._open.wait()
        await self._reconcile_until_kopf_comes(kind, obj, came, first_try)

    async def _make_ours(self, kind: Kind, obj: dict[str, Any]) -> None:
        """Our finalizer before anything exists outside: a resource deleted from now on waits
        for kopf's delete handler, which removes what the reconcile made. The label in the
        same write: the next start's list leaves this resource out. Raises ``KubeError`` (409:
        the resource changed since ``obj`` was read)."""
        meta: dict[str, Any] = obj.get("metadata") or {}
        finalizers = list(meta.get("finalizers") or [])
        labels: dict[str, Any] = meta.get("labels") or {}
        if self._finalizer in finalizers and MANAGED_LABEL in labels:
            return
        assert self._runtime.kube is not None
        patch = {
            "metadata": {
                "finalizers": finalizers if self._finalizer in finalizers else [*finalizers, self._finalizer],
                "labels": {MANAGED_LABEL: "true"},
                "resourceVersion": meta.get("resourceVersion"),  # changed meanwhile: 409
            }
        }
        await CustomResources(self._runtime.kube).patch(
            plural=kind.plural, namespace=str(meta.get("namespace")), name=str(meta.get("name")), patch=patch
        )
        meta["finalizers"] = patch["metadata"]["finalizers"]
        meta["labels"] = {**labels, MANAGED_LABEL: "true"}

    async def _reconcile_until_kopf_comes(
        self, kind: Kind, obj: dict[str, Any], came: asyncio.Event, first_try: asyncio.Future[None]
    ) -> None:
        """The reconcile, again after each temporary failure (its delay, as kopf's retry), until
        it ends well, fails for good, or kopf's handler comes (and raises the failure itself)."""
        runtime = self._runtime
        meta: dict[str, Any] = obj.get("metadata") or {}
        uid, namespace, name = str(meta.get("uid")), str(meta.get("namespace")), str(meta.get("name"))
        events = PostedEvents(self._post, kind=kind.kind, namespace=namespace, name=name)
        generation = int(meta.get("generation") or 1)
        while True:
            try:
                await reconcile_new_database(runtime, kind, obj, events)
            except (kopf.TemporaryError, kopf.PermanentError) as exc:  # kopf's create handler takes it up
                _log.warning("%s %s/%s: %s", kind.kind, namespace, name, exc)
                failure = LaneFailure(
                    generation, str(exc), exc.delay if isinstance(exc, kopf.TemporaryError) else None
                )
                self._failed[uid] = failure
                delay = failure.retry_after
                if delay is None:
                    return
            else:
                self._failed.pop(uid, None)
                self._handled[uid] = generation
                return
            if not first_try.done():
                first_try.set_result(None)
            await wait_until_set(came, delay)
            assert runtime.gate is not None
            if came.is_set() or not await runtime.gate.is_active():
                return
            fresh = await self._still_ours(kind, namespace, name, generation)
            if fresh is None:
                return
            obj = fresh

    async def _still_ours(
        self, kind: Kind, namespace: str, name: str, generation: int
    ) -> dict[str, Any] | None:
        """The resource as it is now, if the lane's retry still applies: not deleted, not changed
        (a new generation is kopf's update), not handled by kopf meanwhile. A failed read is
        retried at the next delay, as any temporary failure."""
        assert self._runtime.kube is not None
        try:
            fresh = await CustomResources(self._runtime.kube).get(
                plural=kind.plural, namespace=namespace, name=name
            )
        except KubeError as exc:
            _log.info(
                "fast lane: %s %s/%s not read again (%s); kopf takes it up", kind.kind, namespace, name, exc
            )
            return None
        if fresh is None:
            return None
        meta: Mapping[str, Any] = fresh.get("metadata") or {}
        annotations: Mapping[str, Any] = meta.get("annotations") or {}
        if meta.get("deletionTimestamp") or self._diffbase_key in annotations:
            return None
        return fresh if int(meta.get("generation") or 1) == generation else None
