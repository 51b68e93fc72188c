"""The operator's own Kubernetes client on a real kube-apiserver: TLS, who it authenticates as, paging,
and a rotated token, logged in from a kubeconfig the way the operator does (kopf's login, then
``tenantdb.handlers.kube_login``). No message and no log line carries a Secret's data or a
credential.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from tenantdb.api import GROUP, KINDS, MANAGED_LABEL, VERSION
from tenantdb.handlers.kube_login import kube_credentials
from tenantdb.kube import CustomResources, KubeClient, KubeError, OwnerReference, SecretConflictError
from tenantdb.kube import transport as kube_transport
from tenantdb.kube.watching import list_objects, watch_from_now
from tenantdb.testing.apiserver import KubeApiServer
from tests.apiserver.conftest import global_database, put

pytestmark = [pytest.mark.apiserver, pytest.mark.timeout(120)]

Object = dict[str, Any]
PASSWORD = "pw-Kq3-never-in-a-log"
URI = f"postgresql://alice_owner:{PASSWORD}@ep-1.example:5432/neondb"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, server: str, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server, **cluster}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
    }
    path.write_text(yaml.safe_dump(document))
    path.chmod(0o600)
    return path


@pytest.fixture
def namespace(api_server: KubeApiServer) -> Iterator[str]:
    name = f"kc-{secrets.token_hex(4)}"
    with api_server.client() as http:
        http.post("/api/v1/namespaces", json={"metadata": {"name": name}}).raise_for_status()
    yield name
    with api_server.client() as http:
        # Our kinds first, at once (none has a finalizer here): an operator of a later test
        # watches every namespace and would provision what the namespace's deletion has not
        # yet removed.
        for kind in KINDS:
            response = http.delete(f"/apis/{GROUP}/{VERSION}/namespaces/{name}/{kind.plural}")
            assert response.status_code == 200, response.text
            assert http.get(f"/apis/{GROUP}/{VERSION}/namespaces/{name}/{kind.plural}").json()["items"] == []
        http.delete(f"/api/v1/namespaces/{name}")


@pytest.fixture
def service_account(api_server: KubeApiServer, namespace: str) -> Iterator[str]:
    """A ServiceAccount of the test namespace bound to cluster-admin (the token tests' identity)."""
    binding = f"{namespace}-admin"
    with api_server.client() as http:
        put(http, _service_account("operator", namespace))
        put(
            http,
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": binding},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": namespace}],
            },
        )
    yield "operator"
    with api_server.client() as http:
        http.delete(f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{binding}")


def _service_account(name: str, namespace: str) -> Object:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}


async def _connect(monkeypatch: pytest.MonkeyPatch, kubeconfig: Path) -> KubeClient:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    # The kubeconfig even when the tests run in a pod (CI), where the ServiceAccount comes first.
    monkeypatch.setattr(kopf, "login_with_service_account", lambda **_: None)
    return await KubeClient.connect(login=kube_credentials, timeout_seconds=30)


def _owner(obj: Object) -> OwnerReference:
    return OwnerReference(
        api_version=obj["apiVersion"],
        kind=obj["kind"],
        name=obj["metadata"]["name"],
        uid=obj["metadata"]["uid"],
    )


async def test_every_call_works_with_a_client_certificate_given_as_data(
    api_server: KubeApiServer, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shape kind and cloud CLIs write: CA, certificate and key inline, base64.
    admin = api_server.admin
    assert admin.cert_path is not None
    assert admin.key_path is not None
    config = write_kubeconfig(
        tmp_path / "inline.kubeconfig",
        api_server.url,
        {"certificate-authority-data": _b64(admin.ca_path)},
        {"client-certificate-data": _b64(admin.cert_path), "client-key-data": _b64(admin.key_path)},
    )
    kube = await _connect(monkeypatch, config)
    try:
        resources = CustomResources(kube)
        for name in ("a", "b", "c"):
            assert await resources.create(
                plural="globaldatabases", namespace=namespace, body=global_database(name, namespace, name)
            )
        assert not await resources.create(
            plural="globaldatabases", namespace=namespace, body=global_database("a", namespace, "a")
        )
        # Paged: a page of one object at a time, followed through the continue tokens.
        listed = await resources.list(plural="globaldatabases", namespace=namespace, page_size=1)
        assert sorted(obj["metadata"]["name"] for obj in listed) == ["a", "b", "c"]
        assert await kube.list_uids(plural="globaldatabases", namespaces=[namespace]) == {
            obj["metadata"]["uid"] for obj in listed
        }
        owner = await resources.get(plural="globaldatabases", namespace=namespace, name="a")
        assert owner is not None
        assert await resources.get(plural="globaldatabases", namespace=namespace, name="zz") is None
        await resources.patch(
            plural="globaldatabases",
            namespace=namespace,
            name="a",
            patch={"spec": {"suspendTimeoutSeconds": 60}},
        )
        await kube.patch_status(
            plural="globaldatabases", namespace=namespace, name="a", status={"phase": "Ready"}
        )
        again = await resources.get(plural="globaldatabases", namespace=namespace, name="a")
        assert again is not None
        assert again["spec"]["suspendTimeoutSeconds"] == 60
        assert again["status"]["phase"] == "Ready"

        await kube.write_secret(
            namespace=namespace, name="db-a", data={"DATABASE_URL": URI}, labels={}, owner=_owner(owner)
        )
        await kube.write_secret(
            namespace=namespace,
            name="db-a",
            data={"DATABASE_URL": "v2"},
            labels={"v": "2"},
            owner=_owner(owner),
        )
        assert await kube.read_secret(namespace=namespace, name="db-a") == {"DATABASE_URL": "v2"}
        other = await resources.get(plural="globaldatabases", namespace=namespace, name="b")
        assert other is not None
        with pytest.raises(SecretConflictError, match="owned by GlobalDatabase/a"):
            await kube.write_secret(
                namespace=namespace, name="db-a", data={"DATABASE_URL": "x"}, labels={}, owner=_owner(other)
            )

        await kube.create_event(
            api_version="tenantdb.io/v1alpha1",
            kind="GlobalDatabase",
            namespace=namespace,
            name="a",
            type_="Normal",
            reason="Tested",
            message="an event",
        )
        assert await kube.read_peering(name="no-such-peering") is None
        assert await kube.read_peering(name="no-such-peering", namespace=namespace) is None
        await resources.delete(plural="globaldatabases", namespace=namespace, name="c")
        await resources.delete(plural="globaldatabases", namespace=namespace, name="c")
    finally:
        await kube.close()
    with api_server.client() as http:
        events = http.get(f"/api/v1/namespaces/{namespace}/events").json()["items"]
    assert [(e["reason"], e["involvedObject"]["uid"]) for e in events] == [
        ("Tested", owner["metadata"]["uid"])
    ]


async def test_a_service_account_token_from_a_kubeconfig_and_the_ca_by_path(
    api_server: KubeApiServer,
    namespace: str,
    service_account: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = api_server.token_for(service_account, namespace)
    config = write_kubeconfig(
        tmp_path / "token.kubeconfig",
        api_server.url,
        {"certificate-authority": str(api_server.admin.ca_path)},
        {"token": token},
    )
    kube = await _connect(monkeypatch, config)
    try:
        assert await kube.read_secret(namespace=namespace, name="nothing") is None
    finally:
        await kube.close()
    # Verification is on: a CA that did not sign the server's certificate is refused.
    wrong = write_kubeconfig(
        tmp_path / "wrong-ca.kubeconfig",
        api_server.url,
        {"certificate-authority-data": _b64(api_server.admin.cert_path or Path())},
        {"token": token},
    )
    kube = await _connect(monkeypatch, wrong)
    try:
        with pytest.raises(KubeError, match="CERTIFICATE_VERIFY_FAILED"):
            await kube.read_secret(namespace=namespace, name="nothing")
    finally:
        await kube.close()
    # ... unless the kubeconfig says to skip it.
    insecure = write_kubeconfig(
        tmp_path / "insecure.kubeconfig", api_server.url, {"insecure-skip-tls-verify": True}, {"token": token}
    )
    kube = await _connect(monkeypatch, insecure)
    try:
        assert await kube.read_secret(namespace=namespace, name="nothing") is None
    finally:
        await kube.close()


def _wait_refused(api_server: KubeApiServer, token: str, timeout: float = 30.0) -> None:
    access = api_server.access_for_token(token)
    deadline = time.monotonic() + timeout
    with access.client() as http:
        while http.get("/api").status_code != 401:
            assert time.monotonic() < deadline, "the old token is still accepted"
            time.sleep(0.2)


async def test_a_rotated_token_is_read_again_after_a_401(
    api_server: KubeApiServer,
    namespace: str,
    service_account: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tenantdb")  # the handler too (conftest left it at WARNING)
    old = api_server.token_for(service_account, namespace)
    config = tmp_path / "rotating.kubeconfig"
    cluster = {"certificate-authority": str(api_server.admin.ca_path)}
    write_kubeconfig(config, api_server.url, cluster, {"token": old})
    kube = await _connect(monkeypatch, config)
    try:
        assert await kube.read_secret(namespace=namespace, name="nothing") is None
        # The account is recreated: its old tokens stop working (what expiry does to a
        # projected token), and the kubelet's rewrite is this new one in the file.
        with api_server.client() as http:
            http.delete(
                f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}"
            ).raise_for_status()
            put(http, _service_account(service_account, namespace))
        _wait_refused(api_server, old)
        new = api_server.token_for(service_account, namespace)
        write_kubeconfig(config, api_server.url, cluster, {"token": new})

        # Just logged in: no second login yet, the 401 stands (what the client did before).
        monkeypatch.setattr(kube_transport, "RELOGIN_INTERVAL_SECONDS", 3600.0)
        with pytest.raises(KubeError) as caught:
            await kube.read_secret(namespace=namespace, name="nothing")
        assert caught.value.status == 401
        assert str(caught.value) == "reading a Secret failed: HTTP 401 Unauthorized"

        monkeypatch.setattr(kube_transport, "RELOGIN_INTERVAL_SECONDS", 0.0)
        assert await kube.read_secret(namespace=namespace, name="nothing") is None
        assert "logged in to the Kubernetes API again after HTTP 401" in caplog.text
        assert await CustomResources(kube).list(plural="globaldatabases", namespace=namespace) == []

        # The kubeconfig now holds a client certificate instead: new TLS material, a new pool.
        with api_server.client() as http:
            http.delete(
                f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}"
            ).raise_for_status()
        _wait_refused(api_server, new)
        admin = api_server.admin
        write_kubeconfig(
            config,
            api_server.url,
            cluster,
            {"client-certificate": str(admin.cert_path), "client-key": str(admin.key_path)},
        )
        assert await kube.read_secret(namespace=namespace, name="nothing") is None
    finally:
        await kube.close()
    assert old not in caplog.text
    assert new not in caplog.text


async def test_no_message_or_log_line_carries_a_secrets_data_or_a_credential(
    api_server: KubeApiServer,
    namespace: str,
    service_account: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Everything at DEBUG, the HTTP libraries included: nothing is held back by log levels.
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "tenantdb"):
        caplog.set_level(logging.DEBUG, logger=name)
    token = api_server.token_for(service_account, namespace)
    cluster = {"certificate-authority": str(api_server.admin.ca_path)}
    config = write_kubeconfig(tmp_path / "operator.kubeconfig", api_server.url, cluster, {"token": token})
    with api_server.client() as http:
        put(http, _service_account("nobody", namespace))
    nobody = api_server.token_for("nobody", namespace)
    refused_config = write_kubeconfig(
        tmp_path / "nobody.kubeconfig", api_server.url, cluster, {"token": nobody}
    )

    messages: list[str] = []
    kube = await _connect(monkeypatch, config)
    try:
        resources = CustomResources(kube)
        for name in ("a", "b"):
            await resources.create(
                plural="globaldatabases", namespace=namespace, body=global_database(name, namespace, name)
            )
        a = await resources.get(plural="globaldatabases", namespace=namespace, name="a")
        b = await resources.get(plural="globaldatabases", namespace=namespace, name="b")
        assert a is not None
        assert b is not None
        await kube.write_secret(
            namespace=namespace, name="db-a", data={"DATABASE_URL": URI}, labels={}, owner=_owner(a)
        )
        assert await kube.read_secret(namespace=namespace, name="db-a") == {"DATABASE_URL": URI}
        with pytest.raises(SecretConflictError) as conflict:
            await kube.write_secret(
                namespace=namespace, name="db-a", data={"DATABASE_URL": URI}, labels={}, owner=_owner(b)
            )
        messages.append(str(conflict.value))
    finally:
        await kube.close()
    # An identity without rights: every refusal names the call and the status only.
    refused = await _connect(monkeypatch, refused_config)
    try:
        for call in (
            refused.read_secret(namespace=namespace, name="db-a"),
            refused.write_secret(
                namespace=namespace, name="db-a", data={"DATABASE_URL": URI}, labels={}, owner=_owner(a)
            ),
        ):
            with pytest.raises(KubeError) as caught:
                await call
            assert caught.value.status == 403
            messages.append(str(caught.value))
    finally:
        await refused.close()
    assert messages[1:] == [
        "reading a Secret failed: HTTP 403 Forbidden",
        "creating a Secret failed: HTTP 403 Forbidden",
    ]
    assert any("HTTP Request" in record.getMessage() for record in caplog.records)  # httpx did log
    encoded = base64.b64encode(URI.encode()).decode()
    for text in [caplog.text, *messages]:
        for secret in (PASSWORD, encoded, token, nobody):
            assert secret not in text


async def test_the_list_pages_through_what_stands_and_the_watch_streams_only_what_comes(
    api_server: KubeApiServer, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    collection = f"/apis/tenantdb.io/v1alpha1/namespaces/{namespace}/globaldatabases"
    with api_server.client() as http:
        for name in ("one", "two", "three"):
            http.post(collection, json=global_database(name, namespace, name)).raise_for_status()
    kube = await _connect(monkeypatch, api_server.kubeconfig)
    opened = asyncio.Event()
    try:
        listed = [
            obj["metadata"]["name"]
            async for page in list_objects(kube, plural="globaldatabases", namespace=namespace, page_size=1)
            for obj in page
        ]
        stream = watch_from_now(kube, plural="globaldatabases", namespace=namespace, opened=opened.set)
        following = asyncio.create_task(anext(stream))
        await asyncio.wait_for(opened.wait(), 30)
        with api_server.client() as http:
            http.post(collection, json=global_database("after", namespace, "after")).raise_for_status()
        event_type, obj = await asyncio.wait_for(following, 30)
        await stream.aclose()
    finally:
        await kube.close()
    assert sorted(listed) == ["one", "three", "two"]
    # From now: what stood before the watch is not replayed, what came after is.
    assert (event_type, obj["metadata"]["name"]) == ("ADDED", "after")


async def test_the_list_and_the_watch_select_by_label_on_the_server(
    api_server: KubeApiServer, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast lane's start-up list and watch ask the server for the resources without our
    label: what a real kube-apiserver makes of ``!tenantdb.io/managed``."""
    collection = f"/apis/tenantdb.io/v1alpha1/namespaces/{namespace}/globaldatabases"

    def labelled(name: str, labels: dict[str, str]) -> dict[str, Any]:
        body = global_database(name, namespace, name)
        body["metadata"]["labels"] = labels
        return body

    with api_server.client() as http:
        http.post(collection, json=labelled("taken", {MANAGED_LABEL: "true"})).raise_for_status()
        http.post(collection, json=labelled("new", {"team": "a"})).raise_for_status()
    kube = await _connect(monkeypatch, api_server.kubeconfig)
    opened = asyncio.Event()
    selector = f"!{MANAGED_LABEL}"
    try:
        listed = [
            obj["metadata"]["name"]
            async for page in list_objects(
                kube, plural="globaldatabases", namespace=namespace, label_selector=selector
            )
            for obj in page
        ]
        stream = watch_from_now(
            kube, plural="globaldatabases", namespace=namespace, label_selector=selector, opened=opened.set
        )
        following = asyncio.create_task(anext(stream))
        await asyncio.wait_for(opened.wait(), 30)
        with api_server.client() as http:
            http.post(collection, json=labelled("later-taken", {MANAGED_LABEL: "true"})).raise_for_status()
            http.post(collection, json=labelled("later", {})).raise_for_status()
        event_type, obj = await asyncio.wait_for(following, 30)
        # Labelled (by another replica): it leaves the selection, and the watch says DELETED.
        with api_server.client() as http:
            http.patch(
                f"{collection}/later",
                json={"metadata": {"labels": {MANAGED_LABEL: "true"}}},
                headers={"Content-Type": "application/merge-patch+json"},
            ).raise_for_status()
        left_type, left = await asyncio.wait_for(anext(stream), 30)
        await stream.aclose()
    finally:
        await kube.close()
    assert listed == ["new"]
    assert (event_type, obj["metadata"]["name"]) == ("ADDED", "later")
    assert (left_type, left["metadata"]["name"]) == ("DELETED", "later")
