"""A Kubernetes API emulator good enough to run kopf and the operator for real.

kmock's ``KubernetesEmulator`` keeps objects in memory and streams watch events, but treats
objects as plain JSON (its docstring invites subclassing for "special field treatment").
A real API server also does what kopf and the operator rely on, so this subclass adds:

- ``metadata.uid``, ``resourceVersion``, ``creationTimestamp`` and ``generation`` stamped on
  create; ``resourceVersion`` bumped on every write; ``generation`` bumped on spec changes;
- optimistic concurrency: a JSON-patch ``test`` of a stale ``resourceVersion`` answers 422
  (kopf then retries), a merge patch carrying a stale ``resourceVersion`` answers 409;
- the ``status`` subresource: writes to ``/status`` change only status, writes to the main
  resource never change status;
- a cluster-scoped kind (DatabaseTier) only without a namespace: under one it is a 404;
- garbage collection of dependents (``ownerReferences``) when the owner is gone;
- the four tenantdb custom resources and the CRD resources kopf watches, registered.

Sized for a fleet (``bench/kube_emulator_scale.py``: 30,000 databases, 10,000 budgets and
30,000 Secrets): kmock keeps every version of every object, finds an object by scanning all
of them, and this subclass used to look for orphans among all objects after every write;
each of those made a request cost more the more objects were held. Here an object is found
by its key, only its current version is kept, a deleted one is forgotten once its event is
out, orphans are found through an index of owners, and watch buffers are trimmed in chunks.

Still not emulated (the real-cluster suite, ``make e2e``, covers them): OpenAPI schema and
CEL validation (the tests validate specs against the generated CRD schema instead),
field selectors, server-side apply, admission webhooks. Lists are paged (``limit``,
``continue``); label selectors are read on lists and watches, where a watch streams the events
whose object matches (a real server also turns an object that starts or stops matching into
ADDED or DELETED).
"""

from __future__ import annotations

import asyncio
import collections
import copy
import datetime
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import attrs
import jsonpatch
import kmock
from kmock._internal import aiobus, enums, rendering

from tenantdb.api import CLUSTER_KINDS, GROUP, KINDS, VERSION
from tenantdb.testing.kube_store import ObjectKey, OrderedStore, Page
from tenantdb.testing.label_selectors import InvalidSelectorError, LabelSelector

__all__ = ["KubernetesEmulator", "register_tenantdb_resources"]

_VERBS = ["list", "watch", "get", "create", "patch", "update", "delete"]

# A watch's bus drops what every watcher has read: in chunks, since each drop moves the rest.
_BUS_FLUSH_THRESHOLD = 1024


def register_tenantdb_resources(emulator: kmock.KubernetesEmulator) -> None:
    """Declare the standard resources and the tenantdb kinds (as a CRD install would)."""
    emulator.resources.load_bundled()
    for kind in KINDS:
        emulator.resources[f"{GROUP}/{VERSION}/{kind.plural}"] = {
            "kind": kind.kind,
            "singular": kind.singular,
            "shortnames": [kind.short_name],
            "categories": ["tenantdb"],
            "namespaced": True,
            "verbs": _VERBS,
            "subresources": ["status"],
        }
    for kind in CLUSTER_KINDS:
        emulator.resources[f"{GROUP}/{VERSION}/{kind.plural}"] = {
            "kind": kind.kind,
            "singular": kind.singular,
            "shortnames": [kind.short_name],
            "categories": ["tenantdb"],
            "namespaced": False,
            "verbs": _VERBS,
            "subresources": ["status"],
        }
    # kopf's peering resources (its documentation's CRDs): a peering object lists the replicas.
    emulator.resources["kopf.dev/v1/clusterkopfpeerings"] = {
        "kind": "ClusterKopfPeering",
        "singular": "clusterkopfpeering",
        "shortnames": [],
        "categories": [],
        "namespaced": False,
        "verbs": _VERBS,
        "subresources": [],
    }
    emulator.resources["kopf.dev/v1/kopfpeerings"] = {
        "kind": "KopfPeering",
        "singular": "kopfpeering",
        "shortnames": [],
        "categories": [],
        "namespaced": True,
        "verbs": _VERBS,
        "subresources": [],
    }


def _merge_patch_between(old: Any, new: Any) -> Any:
    """A JSON merge patch that turns ``old`` into ``new`` (None removes a key)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return copy.deepcopy(new)
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = copy.deepcopy(value)
        elif old[key] != value:
            patch[key] = _merge_patch_between(old[key], value)
    return patch


def _apply_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _apply_merge_patch(result.get(key), value)
    return result


def _as_version(value: object) -> int:
    """A resourceVersion as a number; absent or unparsable means "from the beginning"."""
    try:
        return int(str(value))
    except ValueError:
        return 0


def _label_selector(request: rendering.Request) -> LabelSelector | None:
    text = request.params.get("labelSelector")
    if not text:
        return None
    try:
        return LabelSelector.parse(str(text))
    except InvalidSelectorError as exc:
        raise kmock.KubernetesError(status=400, reason="BadRequest", message=str(exc)) from None


def _name_key(obj: Any) -> tuple[str | None, str | None]:
    metadata = obj.get("metadata") or {}
    return metadata.get("namespace"), metadata.get("name")


def _selected(selector: LabelSelector, obj: Any) -> bool:
    return selector.matches((obj.get("metadata") or {}).get("labels"))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@attrs.define(kw_only=True)
class KubernetesEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with the API server behaviour kopf depends on (see module docstring)."""

    _last_version: int = attrs.field(default=0, init=False)
    _write_lock: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)
    _uids: dict[ObjectKey, str] = attrs.field(factory=dict, init=False)  # live objects
    _alive: set[str] = attrs.field(factory=set, init=False)  # their uids
    _dependents: dict[str, set[ObjectKey]] = attrs.field(factory=dict, init=False)  # by owner uid

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # kmock's store, kept in key order per resource (lists are slices, not scans): before
        # the first object is stored.
        object.__setattr__(self._objects, "_objects", OrderedStore())
        register_tenantdb_resources(self)
        self._buses = collections.defaultdict(lambda: aiobus.Bus(flush_threshold=_BUS_FLUSH_THRESHOLD))

    async def _handle(self, request: rendering.Request) -> Any:
        try:
            return await self._handle_like_an_api_server(request)
        finally:
            self._forget(request)

    def _forget(self, request: rendering.Request) -> None:
        """Drop an answered request from kmock's history.

        kmock keeps every request it served, and matching a new one against its reactions
        walks that whole history (under the write lock, for writes): each request costs more
        than the one before. At a few hundred resources the emulator, not the operator, was
        the bottleneck (applies took 0.1 s each; the Neon emulator, sharing the event loop,
        answered after the operator's timeout). Nothing here reads that history.
        """
        requests = self._requests
        for index in range(len(requests) - 1, -1, -1):
            if requests[index] is request:
                del requests[index]
                return

    async def _handle_like_an_api_server(self, request: rendering.Request) -> Any:
        if request.resource is not None and request.namespace and not self._namespaced(request):
            # A real API server serves a cluster-scoped kind (a DatabaseTier, a NeonOrganization)
            # under no namespace: a namespaced path to it is a 404, not an empty list.
            return await self._render_error(
                kmock.KubernetesError(status=404, reason="NotFound", message="404 page not found")
            )
        if request.resource is None or request.action not in (
            enums.action.CREATE,
            enums.action.UPDATE,
            enums.action.DELETE,
        ):
            return await super()._handle(request)
        # Writes are serialised so the resourceVersion check and the write are one step,
        # as they are in a real API server.
        async with self._write_lock:
            try:
                if request.action == enums.action.CREATE:
                    self._prepare_create(request)
                elif request.action == enums.action.UPDATE:
                    self._prepare_update(request)
            except kmock.KubernetesError as exc:
                return await self._render_error(exc)
            response = await super()._handle(request)
            key = self._key_of(request)
            if key is not None:
                await self._after_write(key)
            return response

    # -- create ------------------------------------------------------------------------------
    def _prepare_create(self, request: rendering.Request) -> None:
        data = request.data if isinstance(request.data, dict) else {}
        metadata = data.setdefault("metadata", {})
        if request.namespace and not metadata.get("namespace"):
            metadata["namespace"] = request.namespace
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = metadata["generateName"] + uuid.uuid4().hex[:12]  # no clashes by chance
        metadata["uid"] = str(uuid.uuid4())
        metadata["resourceVersion"] = self._next_version()
        metadata["creationTimestamp"] = _now()
        metadata["generation"] = 1
        metadata.pop("deletionTimestamp", None)
        if self._has_status_subresource(request):
            data.pop("status", None)  # as the API server: status is set through /status only

    # -- update ------------------------------------------------------------------------------
    def _prepare_update(self, request: rendering.Request) -> None:
        key: Any = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return  # kmock answers 404 itself
        current: dict[str, Any] = copy.deepcopy(dict(self.objects[key].raw))
        current_version = current.get("metadata", {}).get("resourceVersion")
        patch = request.data
        if isinstance(patch, list):  # JSON patch (kopf's finalizers and status functions)
            for op in patch:
                if (
                    op.get("op") == "test"
                    and op.get("path") == "/metadata/resourceVersion"
                    and op.get("value") != current_version
                ):
                    raise kmock.KubernetesError(
                        status=422, reason="Invalid", message="the resourceVersion test failed"
                    )
            try:
                desired = jsonpatch.apply_patch(current, patch, in_place=False)
            except jsonpatch.JsonPatchException as exc:
                raise kmock.KubernetesError(status=422, reason="Invalid", message=str(exc)) from exc
        elif isinstance(patch, dict):
            wanted = (patch.get("metadata") or {}).get("resourceVersion")
            if wanted is not None and wanted != current_version:
                raise kmock.KubernetesError(
                    status=409,
                    reason="Conflict",
                    message="the object has been modified; please apply your changes to the latest version",
                )
            desired = _apply_merge_patch(current, patch)
        else:
            raise kmock.KubernetesError(status=400, reason="BadRequest", message="unsupported patch body")

        if self._has_status_subresource(request):
            if request.subresource == "status":
                desired = {**current, "status": desired.get("status")}
                if desired["status"] is None:
                    desired.pop("status")
            elif "status" in current:
                desired["status"] = current["status"]
            else:
                desired.pop("status", None)
        desired = copy.deepcopy(desired)  # never share nested dicts with ``current``
        metadata = desired.setdefault("metadata", {})
        for immutable in ("uid", "creationTimestamp", "name", "namespace"):
            if immutable in current.get("metadata", {}):
                metadata[immutable] = current["metadata"][immutable]
        metadata["generation"] = current["metadata"].get("generation", 1) + (
            1 if desired.get("spec") != current.get("spec") else 0
        )
        metadata["resourceVersion"] = self._next_version()
        # kmock merges request.data into the stored object: hand it the exact difference.
        object.__setattr__(request, "data", _merge_patch_between(current, desired))

    # -- list and watch ----------------------------------------------------------------------
    # kmock lists with a placeholder resourceVersion and starts a watch by replaying every
    # object, then subscribing to changes *after* the replay: a write made while the replay
    # is being sent is never streamed, and the replay repeats what the list just returned.
    # kopf then patches a stale copy, gets a conflict, and waits for an event that never comes
    # (seen: a create handled 30 s late, on the next timer tick). A real API server does
    # neither, so: lists carry the current resourceVersion, a watch subscribes before it
    # replays, and replays only objects newer than the resourceVersion it was asked from.
    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        selector = _label_selector(request)
        page = Page.of(request)
        store = self._stored
        if not store.resources_like(request.resource):  # none stored: kmock knows if it exists
            payload = await super()._serve_list(request)
            if isinstance(payload, dict):
                payload["metadata"] = {"resourceVersion": page.version or str(self._last_version)}
            return payload

        def wanted(key: ObjectKey, obj: Any) -> bool:
            return (
                not obj.deleted
                and (request.namespace is None or key[1] == request.namespace)
                and (selector is None or _selected(selector, obj.raw))
            )

        async with self._lock:
            objects = store.in_order(request.resource, after=page.after)
            return page.collect(objects, wanted, str(self._last_version))

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[rendering.Payload]:
        selector = _label_selector(request)
        yield b""  # send the headers now: the stream is open even if nothing happens
        assert request.resource is not None
        bus = self._buses[request.resource]
        mark = await bus.mark()
        try:
            since = _as_version(request.params.get("resourceVersion"))
            async with self._lock:
                objects = [o for o in self._get_objects(request) if not o.deleted]
                selected = [o.raw for o in objects if selector is None or _selected(selector, o.raw)]
                replay = [
                    {"type": "ADDED", "object": raw}
                    for raw in selected
                    if _as_version(raw.get("metadata", {}).get("resourceVersion")) > since
                ]
            # With a selector, the API server's watch cache compares each change with the object
            # before it: one that leaves the selection comes as DELETED, one that enters as ADDED.
            # The bus carries only the object after, so the stream remembers what it selects.
            inside = {_name_key(raw) for raw in selected} if selector is not None else set()
            for event in replay:
                yield event
            # The API server ends a watch at the client's timeoutSeconds (kopf asks for 270 s, the
            # fast lane too): each then watches again from its last version.
            timeout = request.params.get("timeoutSeconds")
            deadline = time.monotonic() + float(str(timeout)) if timeout else None
            stream = bus.stream(since=mark)
            # asyncio.wait, not wait_for: Python 3.11's wait_for can swallow the cancellation of a
            # server shutting down when an event arrives at that moment (kmock then waited 60 s).
            nxt: asyncio.Future[Any] | None = None
            while True:
                if nxt is None:
                    nxt = asyncio.ensure_future(anext(stream))
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    done, _ = await asyncio.wait({nxt}, timeout=remaining)
                except BaseException:
                    nxt.cancel()
                    raise
                if not done:
                    nxt.cancel()
                    break
                arrived, nxt = nxt, None
                try:
                    event = arrived.result()
                except StopAsyncIteration:
                    break
                obj = event.get("object", {})
                metadata = obj.get("metadata", {})
                if not self._matches(request, metadata.get("namespace"), metadata.get("name")):
                    continue
                if selector is None:
                    yield event
                    continue
                key, matches = _name_key(obj), _selected(selector, obj)
                if event.get("type") == "DELETED" or not matches:
                    if key in inside:
                        inside.discard(key)
                        yield {**event, "type": "DELETED"}
                elif key not in inside:
                    inside.add(key)
                    yield {**event, "type": "ADDED"}
                else:
                    yield event
        finally:
            await bus.unmark(mark)

    def _get_objects(self, request: rendering.Request) -> list[Any]:
        return self._find_objects(request, strict=False)

    def _find_objects(self, request: rendering.Request, strict: bool) -> list[Any]:
        """kmock's object lookup: by key when the request names one object, else from the
        resource's keys in order (kmock scans every stored object of every resource)."""
        name, namespace = request.name, request.namespace
        if request.resource is not None and name is not None and (strict or namespace is not None):
            obj = self._stored.get((request.resource, namespace, name))
            return [] if obj is None else [obj]
        return [
            obj
            for (_, obj_namespace, obj_name), obj in self._stored.in_order(request.resource)
            if (obj_namespace == namespace if strict else namespace in (None, obj_namespace))
            and name in (None, obj_name)
        ]

    # kmock calls its private ``__get_objs``; in a class of the same name, that is this one.
    _KubernetesEmulator__get_objs = _find_objects

    @property
    def _stored(self) -> OrderedStore:
        stored = self._objects._objects
        assert isinstance(stored, OrderedStore)  # installed in __attrs_post_init__
        return stored

    def _matches(self, request: rendering.Request, namespace: str | None, name: str | None) -> bool:
        check = self._KubernetesEmulator__check  # type: ignore[attr-defined]
        return bool(check(request, request.resource, namespace, name, strict=False))

    # -- helpers -----------------------------------------------------------------------------
    def _next_version(self) -> str:
        self._last_version += 1
        return str(self._last_version)

    def _namespaced(self, request: rendering.Request) -> bool:
        if request.resource is None:
            return True
        try:
            info = self.resources[request.resource]
        except (KeyError, LookupError):
            return True
        return info.namespaced is not False

    def _has_status_subresource(self, request: rendering.Request) -> bool:
        if request.resource is None:
            return False
        try:
            info = self.resources[request.resource]
        except (KeyError, LookupError):
            return False
        return "status" in set(info.subresources or ())

    def _key_of(self, request: rendering.Request) -> ObjectKey | None:
        """The object a write was about (a create names it in its body)."""
        if request.resource is None:
            return None
        data = request.data if isinstance(request.data, dict) else {}
        metadata = (data.get("metadata") or {}) if request.action == enums.action.CREATE else {}
        name = request.name or metadata.get("name")
        if not name:
            return None
        return (request.resource, request.namespace or metadata.get("namespace"), name)

    async def _after_write(self, key: ObjectKey) -> None:
        """Keep only the object's current version, index its owners, collect orphans.

        Background cascading deletion: an object whose every owner is gone is deleted, when
        its last owner goes or when it is written naming only owners that do not exist.
        """
        obj = self._stored.get(key)
        if obj is None or obj.deleted:
            if obj is not None:
                del self._stored[key]  # the DELETED event is out: nothing reads the tombstone
            uid = self._uids.pop(key, None)
            if uid is not None:
                self._alive.discard(uid)
                for dependent in sorted(self._dependents.pop(uid, ()), key=str):
                    await self._collect_if_orphaned(dependent)
            return
        if len(obj.history) > 1:
            del obj.history[:-1]
        metadata = obj.raw.get("metadata", {})
        uid = metadata.get("uid", "")
        self._uids[key] = uid
        self._alive.add(uid)
        owners = [owner.get("uid", "") for owner in metadata.get("ownerReferences") or []]
        for owner in owners:
            self._dependents.setdefault(owner, set()).add(key)
        if owners and not any(owner in self._alive for owner in owners):
            await self._collect_if_orphaned(key)

    async def _collect_if_orphaned(self, key: ObjectKey) -> None:
        obj = self._stored.get(key)
        if obj is None or obj.deleted:
            return
        owners = obj.raw.get("metadata", {}).get("ownerReferences") or []
        if not owners or any(owner.get("uid") in self._alive for owner in owners):
            return
        async with self._lock:
            raw = obj.raw
            obj.delete()
            await self._buses[key[0]].put({"type": "DELETED", "object": raw})
        await self._after_write(key)
