"""The Kubernetes emulator's object store, kept in key order per resource, and its list pages.

kmock keeps every object in one dict and answers a list by scanning all of it (and, to know
whether the resource exists at all, scanning it once more); the emulator then sorted the
answer for every page. At 30,000 tenants the store holds about 100,000 objects (databases,
budgets, Secrets) and one page of 500 cost about a second of the emulator's only thread: kopf's
start-up list of a kind took half a minute, and every other request (a signup's writes, the
watches) waited behind it. A real API server answers a page from its own sorted storage; so
does this: each resource's keys stay sorted as objects are stored, and a page is a slice.
"""

from __future__ import annotations

import base64
import bisect
import heapq
import json
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import kmock
from kmock._internal import rendering

__all__ = ["ObjectKey", "OrderedStore", "Page"]

ObjectKey = tuple[Any, str | None, str]  # (kmock resource, namespace, name)
_SortKey = tuple[str, str]  # (namespace, name); "" for a cluster-scoped object's namespace


class OrderedStore(dict[ObjectKey, Any]):
    """kmock's store of objects (``ObjectsArray._objects``), with each resource's keys sorted
    by (namespace, name). kmock writes it with ``[key] = value``, ``del`` and ``clear()``."""

    def __init__(self) -> None:
        super().__init__()
        self.sorted_keys: dict[Any, list[_SortKey]] = {}

    def __setitem__(self, key: ObjectKey, value: Any) -> None:
        if key not in self:
            resource, namespace, name = key
            bisect.insort(self.sorted_keys.setdefault(resource, []), (namespace or "", name))
        super().__setitem__(key, value)

    def __delitem__(self, key: ObjectKey) -> None:
        super().__delitem__(key)
        resource, namespace, name = key
        keys = self.sorted_keys.get(resource, [])
        index = bisect.bisect_left(keys, (namespace or "", name))
        if index < len(keys) and keys[index] == (namespace or "", name):
            del keys[index]

    def clear(self) -> None:
        super().clear()
        self.sorted_keys.clear()

    def resources_like(self, wanted: Any) -> list[Any]:
        """The stored resources equal to ``wanted`` (kmock's resources compare loosely)."""
        return [resource for resource in self.sorted_keys if resource == wanted]

    def in_order(self, wanted: Any, *, after: _SortKey | None = None) -> Iterator[tuple[ObjectKey, Any]]:
        """The objects of the resource, in (namespace, name) order, after ``after``."""
        runs = [self._run(resource, after) for resource in self.resources_like(wanted)]
        ordered = runs[0] if len(runs) == 1 else heapq.merge(*runs, key=lambda entry: entry[0])
        for (namespace, name), resource in ordered:
            key = (resource, namespace or None, name)
            obj = self.get(key)
            if obj is not None:
                yield key, obj

    def _run(self, resource: Any, after: _SortKey | None) -> Iterator[tuple[_SortKey, Any]]:
        keys = self.sorted_keys[resource]
        start = 0 if after is None else bisect.bisect_right(keys, after)
        for index in range(start, len(keys)):  # read as the page is filled: a page costs its size
            yield keys[index], resource


@attrs.frozen
class Page:
    """``?limit=`` and ``?continue=``, as the API server pages a list: in key order
    (namespace, name), each page after the last key of the one before, every page carrying the
    first page's resourceVersion (a watch from it replays what changed while paging). Pages
    come from the current objects, not a snapshot: an object changed meanwhile may show in a
    page and in the watch both, which kopf takes as it takes any repeated event."""

    limit: int
    version: str
    after: tuple[str, str] | None

    @classmethod
    def of(cls, request: rendering.Request) -> Page:
        try:
            limit = int(request.params.get("limit") or 0)
        except ValueError:
            raise kmock.KubernetesError(
                status=400, reason="BadRequest", message="limit is not a number"
            ) from None
        token = str(request.params.get("continue") or "")
        if not token:
            return cls(limit=max(0, limit), version="", after=None)
        try:
            state = json.loads(base64.urlsafe_b64decode(token))
            after = (str(state["after"][0]), str(state["after"][1]))
            return cls(limit=max(0, limit), version=str(state["rv"]), after=after)
        except (ValueError, KeyError, IndexError, TypeError):
            raise kmock.KubernetesError(
                status=400, reason="BadRequest", message="invalid continue token"
            ) from None

    def collect(
        self, objects: Iterator[tuple[ObjectKey, Any]], wanted: Callable[[ObjectKey, Any], bool], version: str
    ) -> dict[str, Any]:
        """The list's answer: the wanted objects of this page, and a continue token when more
        follow (looked ahead by one object, not counted: a page costs its own size)."""
        items: list[Any] = []
        more = False
        for key, obj in objects:
            if not wanted(key, obj):
                continue
            if self.limit and len(items) == self.limit:
                more = True
                break
            items.append(obj.raw)
        metadata: dict[str, Any] = {"resourceVersion": self.version or version}
        if more:
            last = items[-1].get("metadata") or {}
            state = {
                "rv": metadata["resourceVersion"],
                "after": [last.get("namespace") or "", last.get("name")],
            }
            metadata["continue"] = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
        return {"metadata": metadata, "items": items}
