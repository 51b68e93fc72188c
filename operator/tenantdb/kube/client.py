"""One async client for Secrets, events and status patches (plain HTTP through ``KubeHttp``)."""

from __future__ import annotations

import base64
import dataclasses
import datetime
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

from tenantdb.api import GROUP, KINDS, NEON_ORGANIZATION, VERSION
from tenantdb.kube.transport import (
    MERGE_PATCH,
    KubeCredentials,
    KubeError,
    KubeHttp,
    Login,
    check,
    json_object,
)

__all__ = ["KubeClient", "KubeError", "OwnerReference", "SecretConflictError", "SecretState"]


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


def _owners(metadata: Mapping[str, Any]) -> tuple[set[str], list[str]]:
    refs = list(metadata.get("ownerReferences") or [])
    return {str(r.get("uid")) for r in refs}, [f"{r.get('kind')}/{r.get('name')}" for r in refs]


def _decoded(secret: Mapping[str, Any]) -> dict[str, str]:
    data: Mapping[str, str] = secret.get("data") or {}
    return {key: base64.b64decode(value).decode("utf-8") for key, value in data.items()}


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


def _segment(value: str) -> str:
    return quote(value, safe="")


def secrets_path(namespace: str, name: str | None = None) -> str:
    path = f"/api/v1/namespaces/{_segment(namespace)}/secrets"
    return path if name is None else f"{path}/{_segment(name)}"


def custom_path(
    plural: str,
    *,
    namespace: str | None,
    name: str | None = None,
    subresource: str | None = None,
    group: str = GROUP,
    version: str = VERSION,
) -> str:
    """``/apis/<group>/<version>[/namespaces/<ns>]/<plural>[/<name>[/<subresource>]]``."""
    path = f"/apis/{group}/{version}"
    if namespace is not None:
        path += f"/namespaces/{_segment(namespace)}"
    path += f"/{_segment(plural)}"
    if name is not None:
        path += f"/{_segment(name)}"
        if subresource is not None:
            path += f"/{subresource}"
    return path


async def list_pages(
    http: KubeHttp,
    *,
    plural: str,
    namespace: str | None,
    page_size: int = 500,
    timeout: float | None = None,
    label_selector: str | None = None,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every object of one of our kinds, a page at a time (``namespace`` None: cluster-wide;
    ``label_selector``: only those it selects, chosen by the API server)."""
    token = ""
    while True:
        params: dict[str, str | int] = {"limit": page_size}
        if label_selector:
            params["labelSelector"] = label_selector
        if token:
            params["continue"] = token
        action = f"listing {plural}"
        response = await http.request(
            "GET", custom_path(plural, namespace=namespace), action=action, params=params, timeout=timeout
        )
        page = json_object(action, response)
        yield list(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return


class KubeClient:
    """Secrets, events and custom-resource status, over one HTTP connection pool (``KubeHttp``)."""

    def __init__(self, http: KubeHttp) -> None:
        self._http = http

    @classmethod
    async def connect(
        cls,
        *,
        host: str | None = None,
        login: Login | None = None,
        timeout_seconds: float | None = None,
    ) -> KubeClient:
        """To ``host`` (an emulator's URL: plain HTTP, no credentials), else as ``login`` says.

        ``login`` (the handlers give kopf's: the in-cluster ServiceAccount, else a kubeconfig)
        is asked again whenever the API server answers 401: a rotated token is read anew.
        """
        options: dict[str, Any] = {} if timeout_seconds is None else {"timeout_seconds": timeout_seconds}
        if host is not None:
            return cls(KubeHttp(KubeCredentials(server=host, insecure=True), **options))
        if login is None:
            raise KubeError("no Kubernetes API to connect to: neither a host nor a login was given")
        try:
            credentials = await login()
        except KubeError:
            raise
        except Exception as exc:  # the type only: a parser's message may quote a token
            raise KubeError(f"logging in to the Kubernetes API failed: {type(exc).__name__}") from None
        try:
            return cls(KubeHttp(credentials, login=login, **options))
        except OSError as exc:  # ssl.SSLError too: a CA or client certificate that does not load
            raise KubeError(f"setting up TLS to the Kubernetes API failed: {exc}") from None

    async def close(self) -> None:
        await self._http.close()

    @property
    def http(self) -> KubeHttp:
        """The underlying connection, for the other clients of this package (``CustomResources``)."""
        return self._http

    async def _read_secret_object(self, *, namespace: str, name: str) -> dict[str, Any] | None:
        action = "reading a Secret"
        response = await self._http.request("GET", secrets_path(namespace, name), action=action)
        if response.status_code == 404:
            return None
        return json_object(action, response)

    async def read_secret(self, *, namespace: str, name: str) -> dict[str, str] | None:
        """The Secret's data, decoded; ``None`` when it does not exist."""
        secret = await self._read_secret_object(namespace=namespace, name=name)
        return None if secret is None else _decoded(secret)

    async def read_secret_state(self, *, namespace: str, name: str, owner_uid: str) -> SecretState | None:
        """The Secret's data and whether it is owned by ``owner_uid``; ``None`` when it does not exist."""
        secret = await self._read_secret_object(namespace=namespace, name=name)
        if secret is None:
            return None
        metadata: Mapping[str, Any] = secret.get("metadata") or {}
        uids, owners = _owners(metadata)
        return SecretState(
            data=_decoded(secret),
            owned=owner_uid in uids,
            owners=owners,
            resource_version=str(metadata.get("resourceVersion") or ""),
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
        action = "creating a Secret"
        response = await self._http.request("POST", secrets_path(namespace), action=action, body=body)
        if response.status_code != 409:
            check(action, response)
            return
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
        action = "updating a Secret"
        response = await self._http.request(
            "PATCH", secrets_path(namespace, name), action=action, body=patch, content_type=MERGE_PATCH
        )
        check(action, response)

    def list_objects(self, *, plural: str, namespace: str | None) -> AsyncIterator[list[dict[str, Any]]]:
        """Every object of one of our kinds (in ``namespace``, or all), a page at a time."""
        return list_pages(self._http, plural=plural, namespace=namespace)

    async def replace_secret_values(
        self, *, namespace: str, name: str, values: Mapping[str, str], resource_version: str
    ) -> bool:
        """Set some keys of a Secret's data, only while it is at ``resource_version`` (else
        False: it changed since it was read, and is left as it is)."""
        encoded = {
            key: base64.b64encode(value.encode("utf-8")).decode("ascii") for key, value in values.items()
        }
        patch = {"metadata": {"resourceVersion": resource_version}, "data": encoded}
        action = "updating a Secret"
        response = await self._http.request(
            "PATCH", secrets_path(namespace, name), action=action, body=patch, content_type=MERGE_PATCH
        )
        if response.status_code in (404, 409):
            return False
        check(action, response)
        return True

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
        action = "reading the object of an event"
        response = await self._http.request(
            "GET", custom_path(plural, namespace=namespace, name=name), action=action
        )
        if response.status_code == 404:
            return  # the object is gone: nobody to tell
        obj = json_object(action, response)
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
        action = "posting an event"
        response = await self._http.request(
            "POST", f"/api/v1/namespaces/{_segment(namespace)}/events", action=action, body=body
        )
        check(action, response)

    async def list_uids(self, *, plural: str, namespaces: list[str] | None = None) -> set[str]:
        """The uids of every object of a custom resource kind (in ``namespaces``, or all), paged."""
        uids: set[str] = set()
        scopes: list[str | None] = list(namespaces) if namespaces else [None]
        for namespace in scopes:
            async for items in list_pages(self._http, plural=plural, namespace=namespace):
                uids.update(str(item["metadata"]["uid"]) for item in items)
        return uids

    async def list_holders(
        self, *, plural: str, namespaces: list[str] | None = None
    ) -> tuple[set[str], set[str]]:
        """Every object of a database kind (in ``namespaces``, or all), paged: their uids, and
        the Neon project ids they name in ``spec.projectId`` or ``status.projectId``."""
        uids: set[str] = set()
        projects: set[str] = set()
        scopes: list[str | None] = list(namespaces) if namespaces else [None]
        for namespace in scopes:
            async for items in list_pages(self._http, plural=plural, namespace=namespace):
                for item in items:
                    uids.add(str(item["metadata"]["uid"]))
                    for part in ("spec", "status"):
                        named = (item.get(part) or {}).get("projectId")
                        if isinstance(named, str) and named:
                            projects.add(named)
        return uids, projects

    async def patch_status(
        self, *, plural: str, namespace: str | None, name: str, status: Mapping[str, Any]
    ) -> None:
        """Merge-patch a custom resource's status right away (not at the end of a handler);
        ``namespace`` ``None``: a cluster-scoped kind (DatabaseTier)."""
        action = "patching status"
        response = await self._http.request(
            "PATCH",
            custom_path(plural, namespace=namespace, name=name, subresource="status"),
            action=action,
            body={"status": dict(status)},
            content_type=MERGE_PATCH,
        )
        if response.status_code == 404:
            return  # the object is gone: nothing to record on it
        check(action, response)

    # -- the pool of Neon organisations (cluster-scoped) -----------------------------------------
    async def list_organizations(self) -> list[Mapping[str, Any]]:
        """Every NeonOrganization (a handful: one list a minute, paged all the same)."""
        found: list[Mapping[str, Any]] = []
        async for items in list_pages(self._http, plural=NEON_ORGANIZATION.plural, namespace=None):
            found.extend(items)
        return found

    async def patch_organization_status(self, *, name: str, status: Mapping[str, Any]) -> None:
        """Merge-patch a NeonOrganization's status."""
        action = "patching a NeonOrganization's status"
        response = await self._http.request(
            "PATCH",
            custom_path(NEON_ORGANIZATION.plural, namespace=None, name=name, subresource="status"),
            action=action,
            body={"status": dict(status)},
            content_type=MERGE_PATCH,
        )
        if response.status_code == 404:
            return  # deleted meanwhile
        check(action, response)

    async def read_peering(self, *, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """kopf's peering object (``ClusterKopfPeering``, or ``KopfPeering`` in a namespace)."""
        plural = "clusterkopfpeerings" if namespace is None else "kopfpeerings"
        path = custom_path(plural, namespace=namespace, name=name, group="kopf.dev", version="v1")
        action = "reading the peering object"
        response = await self._http.request("GET", path, action=action)
        if response.status_code == 404:
            return None
        return json_object(action, response)
