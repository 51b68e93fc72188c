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
- garbage collection of dependents (``ownerReferences``) when the owner is gone;
- the three tenantdb custom resources and the CRD resources kopf watches, registered.

Still not emulated (the real-cluster suite, ``make e2e``, covers them): OpenAPI schema and
CEL validation (the tests validate specs against the generated CRD schema instead),
label/field selectors, server-side apply, admission webhooks.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import uuid
from collections.abc import AsyncIterator
from typing import Any

import attrs
import jsonpatch
import kmock
from kmock._internal import enums, rendering

from tenantdb.api import GROUP, KINDS, VERSION

__all__ = ["KubernetesEmulator", "register_tenantdb_resources"]

_VERBS = ["list", "watch", "get", "create", "patch", "update", "delete"]


def register_tenantdb_resources(emulator: kmock.KubernetesEmulator) -> None:
    """Declare the standard resources and the three tenantdb kinds (as a CRD install would)."""
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


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@attrs.define(kw_only=True)
class KubernetesEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with the API server behaviour kopf depends on (see module docstring)."""

    _last_version: int = attrs.field(default=0, init=False)
    _write_lock: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        register_tenantdb_resources(self)

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
            await self._collect_garbage()
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
        payload = await super()._serve_list(request)
        if isinstance(payload, dict):
            payload["metadata"] = {"resourceVersion": str(self._last_version)}
        return payload

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[rendering.Payload]:
        yield b""  # send the headers now: the stream is open even if nothing happens
        assert request.resource is not None
        bus = self._buses[request.resource]
        mark = await bus.mark()
        try:
            since = _as_version(request.params.get("resourceVersion"))
            async with self._lock:
                objects = [o for o in self._get_objects(request) if not o.deleted]
                replay = [
                    {"type": "ADDED", "object": o.raw}
                    for o in objects
                    if _as_version(o.raw.get("metadata", {}).get("resourceVersion")) > since
                ]
            for event in replay:
                yield event
            async for event in bus.stream(since=mark):
                metadata = event.get("object", {}).get("metadata", {})
                if self._matches(request, metadata.get("namespace"), metadata.get("name")):
                    yield event
        finally:
            await bus.unmark(mark)

    def _get_objects(self, request: rendering.Request) -> list[Any]:
        objects: list[Any] = self._KubernetesEmulator__get_objs(request, strict=False)  # type: ignore[attr-defined]
        return objects

    def _matches(self, request: rendering.Request, namespace: str | None, name: str | None) -> bool:
        check = self._KubernetesEmulator__check  # type: ignore[attr-defined]
        return bool(check(request, request.resource, namespace, name, strict=False))

    # -- helpers -----------------------------------------------------------------------------
    def _next_version(self) -> str:
        self._last_version += 1
        return str(self._last_version)

    def _has_status_subresource(self, request: rendering.Request) -> bool:
        if request.resource is None:
            return False
        try:
            info = self.resources[request.resource]
        except (KeyError, LookupError):
            return False
        return "status" in set(info.subresources or ())

    async def _collect_garbage(self) -> None:
        """Delete objects whose every owner is gone (background cascading deletion)."""
        alive: set[str] = set()
        for _key, obj in self.objects.items():
            if not obj.deleted:
                alive.add(obj.raw.get("metadata", {}).get("uid", ""))
        orphans = []
        for key, obj in self.objects.items():
            if obj.deleted:
                continue
            owners = obj.raw.get("metadata", {}).get("ownerReferences") or []
            if owners and not any(owner.get("uid") in alive for owner in owners):
                orphans.append(key)
        for resource, namespace, name in orphans:
            async with self._lock:
                obj = self.objects[resource, namespace, name]
                raw = obj.raw
                obj.delete()
                await self._buses[resource].put({"type": "DELETED", "object": raw})
