"""``KubeClient`` and ``CustomResources`` on the Kubernetes emulator: what each call does to the
objects, what a missing object or a conflict means, and that errors say the status, never data.

The same calls against a real kube-apiserver (TLS, authentication, paging, 401 and re-login):
``tests/apiserver/test_kube_client.py``.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import kmock
import pytest

from tenantdb.kube import CustomResources, KubeClient, KubeError, SecretConflictError
from tenantdb.testing.kube import KubernetesEmulator
from tenantdb.testing.postgres import free_port
from tests.factories import global_database, owner_of

DATABASES = "/apis/tenantdb.io/v1alpha1/namespaces/default/globaldatabases"
SECRETS = "/api/v1/namespaces/default/secrets"
PASSWORD = "pw-Zq8-never-in-a-message"
URI = f"postgresql://alice_owner:{PASSWORD}@ep-1.example:5432/neondb"


class Cluster:
    def __init__(self, http: httpx.AsyncClient, kube: KubeClient) -> None:
        self.http = http
        self.kube = kube

    async def database(self, name: str, **spec: Any) -> dict[str, Any]:
        response = await self.http.post(DATABASES, json=global_database(name, name, **spec))
        response.raise_for_status()
        created: dict[str, Any] = response.json()
        return created

    async def secret(self, name: str) -> dict[str, Any] | None:
        response = await self.http.get(f"{SECRETS}/{name}")
        if response.status_code == 404:
            return None
        found: dict[str, Any] = response.json()
        return found


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    emulator = KubernetesEmulator()
    async with emulator, kmock.Server(emulator) as server:
        url = str(server.url).rstrip("/")
        kube = await KubeClient.connect(host=url)
        async with httpx.AsyncClient(base_url=url) as http:
            try:
                yield Cluster(http, kube)
            finally:
                await kube.close()


async def test_a_secret_is_created_read_and_rewritten_by_its_owner(cluster: Cluster) -> None:
    owner = owner_of(await cluster.database("a"))
    kube = cluster.kube
    assert await kube.read_secret(namespace="default", name="db-a") is None
    await kube.write_secret(
        namespace="default",
        name="db-a",
        data={"DATABASE_URL": URI, "PLAIN": "x"},
        labels={"app.kubernetes.io/managed-by": "tenantdb"},
        owner=owner,
    )
    assert await kube.read_secret(namespace="default", name="db-a") == {"DATABASE_URL": URI, "PLAIN": "x"}
    state = await kube.read_secret_state(namespace="default", name="db-a", owner_uid=owner.uid)
    assert state is not None
    assert state.owned
    assert state.owners == ["GlobalDatabase/a"]
    assert state.resource_version
    assert PASSWORD not in repr(state)
    # Written again by its owner: new data, and a key no longer written is gone.
    await kube.write_secret(
        namespace="default", name="db-a", data={"DATABASE_URL": "changed"}, labels={"v": "2"}, owner=owner
    )
    secret = await cluster.secret("db-a")
    assert secret is not None
    assert decoded(secret) == {"DATABASE_URL": "changed"}
    assert secret["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "tenantdb", "v": "2"}
    assert [ref["uid"] for ref in secret["metadata"]["ownerReferences"]] == [owner.uid]


async def test_a_secret_of_someone_else_is_left_as_it_is_and_the_error_carries_no_data(
    cluster: Cluster,
) -> None:
    owner = owner_of(await cluster.database("a"))
    theirs = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "platform", "namespace": "default"},
        "data": {"DATABASE_URL": base64.b64encode(URI.encode()).decode()},
    }
    (await cluster.http.post(SECRETS, json=theirs)).raise_for_status()
    with pytest.raises(SecretConflictError) as caught:
        await cluster.kube.write_secret(
            namespace="default", name="platform", data={"DATABASE_URL": "ours"}, labels={}, owner=owner
        )
    assert str(caught.value) == "Secret default/platform already exists and is not created by tenantdb"
    assert caught.value.status == 409
    secret = await cluster.secret("platform")
    assert secret is not None
    assert decoded(secret) == {"DATABASE_URL": URI}
    # The state a caller sees of it says whose it is, and shows no data in its repr.
    state = await cluster.kube.read_secret_state(namespace="default", name="platform", owner_uid=owner.uid)
    assert state is not None
    assert not state.owned
    assert URI not in repr(state)


async def test_status_is_patched_and_a_missing_object_is_not_an_error(cluster: Cluster) -> None:
    await cluster.database("a")
    await cluster.kube.patch_status(
        plural="globaldatabases", namespace="default", name="a", status={"phase": "Ready"}
    )
    got = (await cluster.http.get(f"{DATABASES}/a")).json()
    assert got["status"] == {"phase": "Ready"}
    assert got["spec"] == {"userId": "a"}
    await cluster.kube.patch_status(
        plural="globaldatabases", namespace="default", name="gone", status={"phase": "Ready"}
    )


async def test_an_event_names_its_object_by_uid_and_none_is_posted_for_a_missing_one(
    cluster: Cluster,
) -> None:
    made = await cluster.database("a")
    for name in ("a", "gone"):
        await cluster.kube.create_event(
            api_version="tenantdb.io/v1alpha1",
            kind="GlobalDatabase",
            namespace="default",
            name=name,
            type_="Normal",
            reason="Tested",
            message="m" * 2000,
        )
    events = (await cluster.http.get("/api/v1/namespaces/default/events")).json()["items"]
    assert [e["involvedObject"]["uid"] for e in events] == [made["metadata"]["uid"]]
    assert events[0]["reason"] == "Tested"
    assert len(events[0]["message"]) == 1024


async def test_uids_are_listed_and_a_missing_peering_is_none(cluster: Cluster) -> None:
    made = [await cluster.database(name) for name in ("a", "b", "c")]
    uids = await cluster.kube.list_uids(plural="globaldatabases")
    assert uids == {obj["metadata"]["uid"] for obj in made}
    assert await cluster.kube.list_uids(plural="globaldatabases", namespaces=["elsewhere"]) == set()
    assert await cluster.kube.read_peering(name="tenantdb") is None


async def test_custom_resources_create_get_list_patch_delete(cluster: Cluster) -> None:
    resources = CustomResources(cluster.kube)
    body = global_database("a", "a")
    assert await resources.create(plural="globaldatabases", namespace="default", body=body)
    assert not await resources.create(plural="globaldatabases", namespace="default", body=body)  # 409
    got = await resources.get(plural="globaldatabases", namespace="default", name="a")
    assert got is not None
    assert got["spec"] == {"userId": "a"}
    assert await resources.get(plural="globaldatabases", namespace="default", name="b") is None
    await resources.patch(
        plural="globaldatabases", namespace="default", name="a", patch={"spec": {"suspended": True}}
    )
    listed = await resources.list(plural="globaldatabases", namespace="default")
    assert [obj["spec"] for obj in listed] == [{"userId": "a", "suspended": True}]
    await resources.delete(plural="globaldatabases", namespace="default", name="a")
    await resources.delete(plural="globaldatabases", namespace="default", name="a")  # gone: no error
    assert await resources.list(plural="globaldatabases", namespace="default") == []


async def test_a_refused_call_says_what_and_the_status_and_nothing_of_the_request(cluster: Cluster) -> None:
    resources = CustomResources(cluster.kube)
    with pytest.raises(KubeError) as caught:
        await resources.patch(
            plural="globaldatabases", namespace="default", name="missing", patch={"spec": {"x": URI}}
        )
    assert caught.value.status == 404
    assert str(caught.value) == "patching a globaldatabases object failed: HTTP 404 Not Found"


async def test_an_unreachable_api_server_is_a_kube_error_without_a_status() -> None:
    kube = await KubeClient.connect(host=f"http://127.0.0.1:{free_port()}", timeout_seconds=5)
    try:
        with pytest.raises(KubeError) as caught:
            await kube.read_secret(namespace="default", name="db-a")
    finally:
        await kube.close()
    assert caught.value.status is None
    assert str(caught.value).startswith("reading a Secret failed: ConnectError")


async def test_connecting_without_a_host_or_a_login_is_refused_clearly() -> None:
    with pytest.raises(KubeError, match="neither a host nor a login"):
        await KubeClient.connect()
