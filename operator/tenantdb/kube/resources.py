"""Our custom resources as whole objects: list, create, patch the spec, delete (for the Sim sync).

The same connection as ``KubeClient`` (``CustomResources(kube)``); errors carry only the status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantdb.kube.client import KubeClient, custom_path, list_pages
from tenantdb.kube.transport import MERGE_PATCH, check, json_object

__all__ = ["CustomResources"]


class CustomResources:
    """``group tenantdb.io/v1alpha1`` objects of any of our kinds, by plural."""

    def __init__(self, kube: KubeClient, *, timeout_seconds: float = 30.0) -> None:
        self._http = kube.http
        # Every call is bounded: a connection that stops answering must not stop the caller.
        self._timeout = timeout_seconds

    async def list(self, *, plural: str, namespace: str | None, page_size: int = 500) -> list[dict[str, Any]]:
        """Every object of the kind in the namespace (``None``: a cluster-scoped kind, or every
        namespace), fetched in pages."""
        items: list[dict[str, Any]] = []
        async for page in list_pages(
            self._http, plural=plural, namespace=namespace, page_size=page_size, timeout=self._timeout
        ):
            items.extend(page)
        return items

    async def get(self, *, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        action = f"reading a {plural} object"
        response = await self._http.request(
            "GET", custom_path(plural, namespace=namespace, name=name), action=action, timeout=self._timeout
        )
        if response.status_code == 404:
            return None
        return json_object(action, response)

    async def create(self, *, plural: str, namespace: str, body: Mapping[str, Any]) -> bool:
        """Create; ``False`` when an object of that name exists already (HTTP 409)."""
        action = f"creating a {plural} object"
        response = await self._http.request(
            "POST",
            custom_path(plural, namespace=namespace),
            action=action,
            body=dict(body),
            timeout=self._timeout,
        )
        if response.status_code == 409:
            return False
        check(action, response)
        return True

    async def patch(self, *, plural: str, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        """Merge-patch the object (not its status)."""
        action = f"patching a {plural} object"
        response = await self._http.request(
            "PATCH",
            custom_path(plural, namespace=namespace, name=name),
            action=action,
            body=dict(patch),
            content_type=MERGE_PATCH,
            timeout=self._timeout,
        )
        check(action, response)

    async def delete(self, *, plural: str, namespace: str, name: str) -> None:
        """Delete (background propagation); a missing object is not an error."""
        action = f"deleting a {plural} object"
        response = await self._http.request(
            "DELETE",
            custom_path(plural, namespace=namespace, name=name),
            action=action,
            params={"propagationPolicy": "Background"},
            timeout=self._timeout,
        )
        if response.status_code != 404:
            check(action, response)
