"""A watch of one custom resource kind from *now* on: what is created from this moment.

kopf lists every object before it watches (its start-up: 30,000 resumes at a restart); a
resource created meanwhile is seen only after that list. This stream skips the list: it asks
the collection's current resourceVersion (a list of one item) and watches from there.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from tenantdb.kube.client import KubeClient, custom_path
from tenantdb.kube.transport import KubeError, json_object, transport_error

__all__ = ["watch_from_now"]

_SERVER_TIMEOUT_SECONDS = 270  # the server ends each watch; it is then resumed from the last version
# Reading waits for the server's end of the watch (and a bookmark or two before it), not for ever.
_WATCH_TIMEOUT = httpx.Timeout(10.0, read=_SERVER_TIMEOUT_SECONDS + 30.0)


async def watch_from_now(
    kube: KubeClient, *, plural: str, namespace: str | None, opened: Callable[[], None] | None = None
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event type, object) for every change of ``plural`` from the moment of the call, until
    the caller stops iterating; ``opened`` is called once the stream is open. A version the
    server forgot (410) starts again from now: a change in between may be missed, which suits
    a shortcut that kopf backs up."""
    http = kube.http
    path = custom_path(plural, namespace=namespace)
    version = ""
    while True:
        if not version:
            action = f"listing {plural}"
            page = json_object(action, await http.request("GET", path, action=action, params={"limit": 1}))
            version = str((page.get("metadata") or {}).get("resourceVersion") or "")
        params: dict[str, str | int] = {
            "watch": "true",  # the lowercase a server and an emulator alike take
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": _SERVER_TIMEOUT_SECONDS,
        }
        action = f"watching {plural}"
        async with http.stream(path, action=action, params=params, timeout=_WATCH_TIMEOUT) as response:
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
