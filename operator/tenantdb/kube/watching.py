"""Every object of one custom resource kind, then every change: a list and a watch.

kopf lists every object before it watches, and resumes each one as it goes (at a restart,
30,000 resumes); a resource created meanwhile is seen only after all of them. This stream is
for a caller that wants the new ones at once: the list costs only its parsing, page by page,
and the watch goes on from the list's resourceVersion.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from tenantdb.kube.client import KubeClient, custom_path
from tenantdb.kube.transport import KubeError, json_object, transport_error

__all__ = ["list_then_watch"]

_SERVER_TIMEOUT_SECONDS = 270  # the server ends each watch; it is then resumed from the last version
# Reading waits for the server's end of the watch (and bookmarks before it), not for ever.
_WATCH_TIMEOUT = httpx.Timeout(10.0, read=_SERVER_TIMEOUT_SECONDS + 30.0)


async def list_then_watch(
    kube: KubeClient,
    *,
    plural: str,
    namespace: str | None,
    page_size: int = 500,
    opened: Callable[[], None] | None = None,
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """("LISTED", object) for every object of ``plural`` as it stands, then (event type,
    object) for every change, until the caller stops iterating; ``opened`` is called once the
    watch is open. A version the server forgot (410) lists again: a change in between may be
    missed (or come twice), which suits a shortcut that kopf backs up."""
    http = kube.http
    path = custom_path(plural, namespace=namespace)
    version = ""
    while True:
        token = ""
        while not version or token:
            action = f"listing {plural}"
            params: dict[str, str | int] = {"limit": page_size}
            if token:
                params["continue"] = token
            page = json_object(action, await http.request("GET", path, action=action, params=params))
            metadata = page.get("metadata") or {}
            version = version or str(metadata.get("resourceVersion") or "")  # the first page's
            token = str(metadata.get("continue") or "")
            for obj in page.get("items") or []:
                yield "LISTED", obj
        watch: dict[str, str | int] = {
            "watch": "true",  # the lowercase a server and an emulator alike take
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": _SERVER_TIMEOUT_SECONDS,
        }
        action = f"watching {plural}"
        async with http.stream(path, action=action, params=watch, timeout=_WATCH_TIMEOUT) as response:
            if opened is not None:
                opened()
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
