"""A watch of one custom resource kind from *now*, and a plain paged list beside it.

kopf lists every object before it watches, and resumes each one as it goes (at a restart,
30,000 resumes); a resource created meanwhile is seen only after all of them. These are for a
caller that wants the new ones at once: the watch starts from the collection's current
resourceVersion (a list of one item), with no list before it; the list, run beside it, costs
only its parsing, a page at a time.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from tenantdb.kube.client import KubeClient, custom_path, list_pages
from tenantdb.kube.transport import KubeError, json_object, transport_error

__all__ = ["list_objects", "watch_from_now"]

_SERVER_TIMEOUT_SECONDS = 270  # the server ends each watch; it is then resumed from the last version
# Reading waits for the server's end of the watch (and bookmarks before it), not for ever.
_WATCH_TIMEOUT = httpx.Timeout(10.0, read=_SERVER_TIMEOUT_SECONDS + 30.0)


async def list_objects(
    kube: KubeClient,
    *,
    plural: str,
    namespace: str | None,
    page_size: int = 500,
    label_selector: str | None = None,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every object of ``plural`` as it stands (or those ``label_selector`` selects), a page at
    a time."""
    async for page in list_pages(
        kube.http, plural=plural, namespace=namespace, page_size=page_size, label_selector=label_selector
    ):
        yield page


async def watch_from_now(
    kube: KubeClient,
    *,
    plural: str,
    namespace: str | None,
    label_selector: str | None = None,
    opened: Callable[[], None] | None = None,
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event type, object) for every change of ``plural`` (of the objects ``label_selector``
    selects) from the moment of the call, until the caller stops iterating; ``opened`` is
    called once the first watch is open. A version the server forgot (410) starts again from
    now: a change in between may be missed, which suits a shortcut that kopf backs up."""
    http = kube.http
    path = custom_path(plural, namespace=namespace)
    selection: dict[str, str | int] = {"labelSelector": label_selector} if label_selector else {}
    version = ""
    while True:
        if not version:
            version = await _current_version(kube, path=path, action=f"listing {plural}")
        watch: dict[str, str | int] = {
            "watch": "true",  # the lowercase a server and an emulator alike take
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": _SERVER_TIMEOUT_SECONDS,
            **selection,
        }
        action = f"watching {plural}"
        async with http.stream(path, action=action, params=watch, timeout=_WATCH_TIMEOUT) as response:
            if opened is not None:
                opened()
                opened = None
            try:
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    try:
                        event = json.loads(line)
                    except ValueError:
                        raise KubeError(f"{action}: an event that is not JSON") from None
                    kind, obj = str(event.get("type")), event.get("object")
                    if kind == "ERROR":  # 410 Gone, mostly: from now again
                        version = ""
                        break
                    if isinstance(obj, dict):
                        version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                        if kind != "BOOKMARK":
                            yield kind, obj
            except httpx.HTTPError as exc:
                raise transport_error(action, exc) from None


async def _current_version(kube: KubeClient, *, path: str, action: str) -> str:
    """The collection's resourceVersion, from a list of one item, with no selector: with one,
    a server reads on until it finds a match (through the whole collection when none does, as
    after a restart with every resource labelled). A function of its own: the answer is not
    kept alive in the watch's frame for the watch's lifetime."""
    response = await kube.http.request("GET", path, action=action, params={"limit": 1})
    page = json_object(action, response)
    return str((page.get("metadata") or {}).get("resourceVersion") or "")
