"""One async client for Secrets and status patches (``kubernetes_asyncio``)."""

from __future__ import annotations

import base64
import dataclasses
import datetime
from collections.abc import AsyncIterator, Mapping
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from tenantdb.api import GROUP, KINDS, VERSION

__all__ = ["KubeClient", "KubeError", "OwnerReference", "SecretConflictError", "SecretState"]


class KubeError(Exception):
    """A Kubernetes API call failed. The message carries the status, never object data."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SecretConflictError(KubeError):
    """The Secret exists and is not ours: no ownerReference to the resource that wants to write it."""

    def __init__(self, namespace: str, name: str, owners: list[str]) -> None:
        held = f"owned by {', '.join(owners)}" if owners else "not created by tenantdb"
        super().__init__(f"Secret {namespace}/{name} already exists and is {held}", status=409)
        self.namespace = namespace
        self.name = name
        self.owners = owners


@dataclasses.dataclass(frozen=True)
class SecretState:
    """A Secret as the operator needs to see it before writing: its data and whose it is."""

    data: dict[str, str] = dataclasses.field(repr=False)
    owned: bool  # carries an ownerReference to the resource asking
    owners: list[str]  # "<Kind>/<name>" of every owner, for a message
    resource_version: str


def _owners(metadata: Any) -> tuple[set[str], list[str]]:
    refs = list(getattr(metadata, "owner_references", None) or [])
    return {str(r.uid) for r in refs}, [f"{r.kind}/{r.name}" for r in refs]


@dataclasses.dataclass(frozen=True)
class OwnerReference:
    api_version: str
    kind: str
    name: str
    uid: str

    def to_wire(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            # No blockOwnerDeletion: background deletion does not need it, and clusters that
            # enforce owner-reference permissions would then demand update on <kind>/finalizers.
        }


def api_error(action: str, exc: ApiException) -> KubeError:
    # The body of a Secret response may echo data: only the status and reason travel on.
    return KubeError(f"{action} failed: HTTP {exc.status} {exc.reason}", status=exc.status)


async def list_pages(
    custom: Any, *, plural: str, namespace: str | None, page_size: int = 500, timeout: float | None = None
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every object of one of our kinds, a page at a time (``namespace`` None: cluster-wide)."""
    token = ""
    while True:
        kwargs: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": plural, "limit": page_size}
        if token:
            kwargs["_continue"] = token
        if timeout is not None:
            kwargs["_request_timeout"] = timeout
        try:
            if namespace is None:
                page = await custom.list_cluster_custom_object(**kwargs)
            else:
                page = await custom.list_namespaced_custom_object(namespace=namespace, **kwargs)
        except ApiException as exc:
            raise api_error(f"listing {plural}", exc) from None
        yield list(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return


class KubeClient:
    """Secrets and custom-resource status, through ``kubernetes_asyncio``."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._api = api_client
        # Typed as Any: the generated client's annotations disagree with its own runtime
        # (dict bodies, ``_content_type``), and nothing of it leaks past this class.
        self._core: Any = client.CoreV1Api(api_client)
        self._custom: Any = client.CustomObjectsApi(api_client)

    @classmethod
    async def connect(cls, *, host: str | None = None) -> KubeClient:
        """In-cluster config, else kubeconfig; ``host`` (an emulator's URL) overrides both."""
        configuration = client.Configuration()
        if host is not None:
            configuration.host = host
        else:
            try:
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            except config.ConfigException:
                await config.load_kube_config(client_configuration=configuration)
        return cls(client.ApiClient(configuration))

    async def close(self) -> None:
        await self._api.close()

    @property
    def api_client(self) -> client.ApiClient:
        """The underlying connection, for the other clients of this package (``CustomResources``)."""
        return self._api

    async def read_secret(self, *, namespace: str, name: str) -> dict[str, str] | None:
        """The Secret's data, decoded; ``None`` when it does not exist."""
        try:
            secret = await self._core.read_namespaced_secret(name=name, namespace=namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise api_error("reading a Secret", exc) from None
        data: Mapping[str, str] = secret.data or {}
        return {key: base64.b64decode(value).decode("utf-8") for key, value in data.items()}

    async def read_secret_state(self, *, namespace: str, name: str, owner_uid: str) -> SecretState | None:
        """The Secret's data and whether it is owned by ``owner_uid``; ``None`` when it does not exist."""
        try:
            secret = await self._core.read_namespaced_secret(name=name, namespace=namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise api_error("reading a Secret", exc) from None
        uids, owners = _owners(secret.metadata)
        data: Mapping[str, str] = secret.data or {}
        return SecretState(
            data={key: base64.b64decode(value).decode("utf-8") for key, value in data.items()},
            owned=owner_uid in uids,
            owners=owners,
            resource_version=str(secret.metadata.resource_version or ""),
        )

    async def write_secret(
        self,
        *,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        labels: Mapping[str, str],
        owner: OwnerReference,
    ) -> None:
        """Create the Secret, or replace its data (keys not in ``data`` are removed).

        Only a Secret that carries an ownerReference to ``owner`` is ever changed: any other
        (a platform's own Secret, another resource's) raises ``SecretConflictError`` and is left
        exactly as it is. The update carries the resourceVersion it was decided on, so a
        Secret replaced in between (a create race lost to another writer) is a 409, not an
        overwrite.
        """
        encoded = {
            key: base64.b64encode(value.encode("utf-8")).decode("ascii") for key, value in data.items()
        }
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": dict(labels),
                "ownerReferences": [owner.to_wire()],
            },
            "data": encoded,
        }
        try:
            await self._core.create_namespaced_secret(namespace=namespace, body=body)
            return
        except ApiException as exc:
            if exc.status != 409:
                raise api_error("creating a Secret", exc) from None
        current = await self.read_secret_state(namespace=namespace, name=name, owner_uid=owner.uid)
        if current is None:  # deleted in between: the next reconcile creates it
            raise KubeError("updating a Secret failed: it was deleted meanwhile", status=404)
        if not current.owned:
            raise SecretConflictError(namespace, name, current.owners)
        # A merge patch: null removes keys we no longer write (e.g. plaintext switched off).
        patch_data: dict[str, str | None] = {key: None for key in current.data if key not in encoded}
        patch_data.update(encoded)
        patch = {
            "metadata": {"labels": dict(labels), "resourceVersion": current.resource_version},
            "data": patch_data,
        }
        try:
            await self._core.patch_namespaced_secret(
                name=name, namespace=namespace, body=patch, _content_type="application/merge-patch+json"
            )
        except ApiException as exc:
            raise api_error("updating a Secret", exc) from None

    async def create_event(
        self,
        *,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        type_: str,
        reason: str,
        message: str,
        component: str = "tenantdb",
    ) -> None:
        """Post a core/v1 Event about one of our objects, from outside any kopf handler.

        The object's uid is looked up first: ``kubectl describe`` selects events by it.
        """
        plural = next(k.plural for k in KINDS if k.kind == kind)
        try:
            obj = await self._custom.get_namespaced_custom_object(
                group=GROUP, version=VERSION, namespace=namespace, plural=plural, name=name
            )
        except ApiException as exc:
            if exc.status == 404:
                return  # the object is gone: nobody to tell
            raise api_error("reading the object of an event", exc) from None
        uid = str(obj.get("metadata", {}).get("uid", ""))
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        involved = {"apiVersion": api_version, "kind": kind, "namespace": namespace, "name": name, "uid": uid}
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{component}-event-", "namespace": namespace},
            "involvedObject": involved,
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self._core.create_namespaced_event(namespace=namespace, body=body)
        except ApiException as exc:
            raise api_error("posting an event", exc) from None

    async def list_uids(self, *, plural: str, namespaces: list[str] | None = None) -> set[str]:
        """The uids of every object of a custom resource kind (in ``namespaces``, or all), paged."""
        uids: set[str] = set()
        scopes: list[str | None] = list(namespaces) if namespaces else [None]
        for namespace in scopes:
            async for items in list_pages(self._custom, plural=plural, namespace=namespace):
                uids.update(str(item["metadata"]["uid"]) for item in items)
        return uids

    async def patch_status(
        self, *, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        """Merge-patch a custom resource's status right away (not at the end of a handler)."""
        try:
            await self._custom.patch_namespaced_custom_object_status(
                group=GROUP,
                version=VERSION,
                namespace=namespace,
                plural=plural,
                name=name,
                body={"status": dict(status)},
                _content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            if exc.status == 404:
                return  # the object is gone: nothing to record on it
            raise api_error("patching status", exc) from None

    async def read_peering(self, *, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """kopf's peering object (``ClusterKopfPeering``, or ``KopfPeering`` in a namespace)."""
        try:
            if namespace is None:
                found = await self._custom.get_cluster_custom_object(
                    group="kopf.dev", version="v1", plural="clusterkopfpeerings", name=name
                )
            else:
                found = await self._custom.get_namespaced_custom_object(
                    group="kopf.dev", version="v1", namespace=namespace, plural="kopfpeerings", name=name
                )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise api_error("reading the peering object", exc) from None
        return dict(found)
