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

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tenantdb.api import GROUP, VERSION
from tenantdb.kube.client import KubeClient, KubeError, api_error

__all__ = ["list_then_watch"]

_SERVER_TIMEOUT_SECONDS = 270  # the server ends each watch; it is then resumed from the last version


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
    custom: Any = client.CustomObjectsApi(kube.api_client)
    scope: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": plural}
    lister = custom.list_cluster_custom_object
    if namespace is not None:
        scope["namespace"] = namespace
        lister = custom.list_namespaced_custom_object
    version = ""
    while True:
        token = ""
        while not version or token:
            try:
                page = await lister(**scope, limit=page_size, **({"_continue": token} if token else {}))
            except ApiException as exc:
                raise api_error(f"listing {plural}", exc) from None
            metadata = page.get("metadata") or {}
            version = version or str(metadata.get("resourceVersion") or "")  # the first page's
            token = str(metadata.get("continue") or "")
            for obj in page.get("items") or []:
                yield "LISTED", obj
        try:
            response = await lister(
                **scope,
                watch="true",  # the lowercase a server and an emulator alike take
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=_SERVER_TIMEOUT_SECONDS,
                _preload_content=False,
            )
        except ApiException as exc:
            raise api_error(f"watching {plural}", exc) from None
        if opened is not None:
            opened()
        try:
            async for line in response.content:
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    raise KubeError(f"watching {plural}: an event that is not JSON") from None
                kind, obj = str(event.get("type")), event.get("object")
                if kind == "ERROR":  # 410 Gone, mostly: from now again
                    version = ""
                    break
                if isinstance(obj, dict):
                    version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                    if kind != "BOOKMARK":
                        yield kind, obj
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeError(f"watching {plural}: {type(exc).__name__}") from None
        finally:
            response.release()
