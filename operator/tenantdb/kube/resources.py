"""Our custom resources as whole objects: list, create, patch the spec, delete (for the Sim sync).

The same ``kubernetes_asyncio`` client as ``KubeClient``; errors carry only the status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tenantdb.api import GROUP, VERSION
from tenantdb.kube.client import api_error, list_pages

__all__ = ["CustomResources"]


class CustomResources:
    """``group tenantdb.io/v1alpha1`` objects of any of our kinds, by plural."""

    def __init__(self, api_client: client.ApiClient, *, timeout_seconds: float = 30.0) -> None:
        self._custom: Any = client.CustomObjectsApi(api_client)
        # Every call is bounded: a connection that stops answering must not stop the caller.
        self._timeout = timeout_seconds

    async def list(self, *, plural: str, namespace: str, page_size: int = 500) -> list[dict[str, Any]]:
        """Every object of the kind in the namespace, fetched in pages."""
        items: list[dict[str, Any]] = []
        async for page in list_pages(
            self._custom, plural=plural, namespace=namespace, page_size=page_size, timeout=self._timeout
        ):
            items.extend(page)
        return items

    async def get(self, *, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = await self._custom.get_namespaced_custom_object(
                group=GROUP,
                version=VERSION,
                namespace=namespace,
                plural=plural,
                name=name,
                _request_timeout=self._timeout,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise api_error(f"reading a {plural} object", exc) from None
        return obj

    async def create(self, *, plural: str, namespace: str, body: Mapping[str, Any]) -> bool:
        """Create; ``False`` when an object of that name exists already (HTTP 409)."""
        try:
            await self._custom.create_namespaced_custom_object(
                group=GROUP,
                version=VERSION,
                namespace=namespace,
                plural=plural,
                body=dict(body),
                _request_timeout=self._timeout,
            )
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise api_error(f"creating a {plural} object", exc) from None
        return True

    async def patch(self, *, plural: str, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        """Merge-patch the object (not its status)."""
        try:
            await self._custom.patch_namespaced_custom_object(
                group=GROUP,
                version=VERSION,
                namespace=namespace,
                plural=plural,
                name=name,
                body=dict(patch),
                _content_type="application/merge-patch+json",
                _request_timeout=self._timeout,
            )
        except ApiException as exc:
            raise api_error(f"patching a {plural} object", exc) from None

    async def delete(self, *, plural: str, namespace: str, name: str) -> None:
        """Delete (background propagation); a missing object is not an error."""
        try:
            await self._custom.delete_namespaced_custom_object(
                group=GROUP,
                version=VERSION,
                namespace=namespace,
                plural=plural,
                name=name,
                _request_timeout=self._timeout,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise api_error(f"deleting a {plural} object", exc) from None
