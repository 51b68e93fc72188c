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

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tenantdb.api import GROUP, VERSION
from tenantdb.kube.client import KubeClient, KubeError, api_error, list_pages

__all__ = ["list_objects", "watch_from_now"]

_SERVER_TIMEOUT_SECONDS = 270  # the server ends each watch; it is then resumed from the last version


def _lister(kube: KubeClient, plural: str, namespace: str | None) -> tuple[Any, dict[str, Any]]:
    custom: Any = client.CustomObjectsApi(kube.api_client)
    scope: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": plural}
    if namespace is None:
        return custom.list_cluster_custom_object, scope
    return custom.list_namespaced_custom_object, {**scope, "namespace": namespace}


async def list_objects(
    kube: KubeClient, *, plural: str, namespace: str | None, page_size: int = 500
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every object of ``plural`` as it stands, a page at a time."""
    custom: Any = client.CustomObjectsApi(kube.api_client)
    async for page in list_pages(custom, plural=plural, namespace=namespace, page_size=page_size):
        yield page


async def watch_from_now(
    kube: KubeClient, *, plural: str, namespace: str | None, opened: Callable[[], None] | None = None
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event type, object) for every change of ``plural`` from the moment of the call, until
    the caller stops iterating; ``opened`` is called once the first watch is open. A version
    the server forgot (410) starts again from now: a change in between may be missed, which
    suits a shortcut that kopf backs up."""
    lister, scope = _lister(kube, plural, namespace)
    version = ""
    while True:
        if not version:
            try:
                page = await lister(**scope, limit=1)
            except ApiException as exc:
                raise api_error(f"listing {plural}", exc) from None
            version = str((page.get("metadata") or {}).get("resourceVersion") or "")
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
            opened = None
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
