"""The Kubernetes emulator at fleet size: one version per object, no tombstones, owners indexed."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import kmock
import pytest

from tenantdb.testing.kube import KubernetesEmulator
from tests.factories import global_database

DATABASES = "/apis/tenantdb.io/v1alpha1/namespaces/default/globaldatabases"
SECRETS = "/api/v1/namespaces/default/secrets"
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
async def kube() -> AsyncIterator[tuple[KubernetesEmulator, httpx.AsyncClient]]:
    emulator = KubernetesEmulator()
    async with (
        emulator,
        kmock.Server(emulator) as server,
        httpx.AsyncClient(base_url=str(server.url).rstrip("/")) as http,
    ):
        yield emulator, http


def _secret(name: str, *owners: dict[str, Any]) -> dict[str, Any]:
    references = [
        {
            "apiVersion": o["apiVersion"],
            "kind": o["kind"],
            "name": o["metadata"]["name"],
            "uid": o["metadata"]["uid"],
        }
        for o in owners
    ]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "default", "ownerReferences": references},
        "data": {},
    }


async def test_a_written_object_keeps_one_version_and_a_deleted_one_is_forgotten(
    kube: tuple[KubernetesEmulator, httpx.AsyncClient],
) -> None:
    emulator, http = kube
    (await http.post(DATABASES, json=global_database("a", "a"))).raise_for_status()
    for generation in range(2, 12):
        patch = {"spec": {"userId": "a", "n": generation}}
        (await http.patch(f"{DATABASES}/a", json=patch, headers=MERGE)).raise_for_status()
    fetched = (await http.get(f"{DATABASES}/a")).json()
    assert fetched["spec"]["n"] == 11
    assert fetched["metadata"]["generation"] == 11
    stored = list(emulator.objects.values())
    assert [len(obj.history) for obj in stored] == [1]  # not eleven copies
    (await http.delete(f"{DATABASES}/a")).raise_for_status()
    assert (await http.get(f"{DATABASES}/a")).status_code == 404
    assert len(emulator.objects) == 0  # no tombstone left behind
    (await http.post(DATABASES, json=global_database("a", "a"))).raise_for_status()  # the name is free again
    assert (await http.get(f"{DATABASES}/a")).json()["metadata"]["generation"] == 1


async def test_objects_are_found_by_name_and_namespace(
    kube: tuple[KubernetesEmulator, httpx.AsyncClient],
) -> None:
    _, http = kube
    for name in ("a", "b", "c"):
        (await http.post(DATABASES, json=global_database(name, name))).raise_for_status()
    other = "/apis/tenantdb.io/v1alpha1/namespaces/other/globaldatabases"
    (await http.post(other, json=global_database("a", "a", namespace="other"))).raise_for_status()
    assert (await http.get(f"{DATABASES}/b")).json()["metadata"]["name"] == "b"
    assert (await http.get(f"{other}/b")).status_code == 404
    assert len((await http.get(DATABASES)).json()["items"]) == 3
    assert len((await http.get("/apis/tenantdb.io/v1alpha1/globaldatabases")).json()["items"]) == 4


async def test_dependents_go_with_their_last_owner_and_cascade(
    kube: tuple[KubernetesEmulator, httpx.AsyncClient],
) -> None:
    _, http = kube
    first = (await http.post(DATABASES, json=global_database("first", "first"))).json()
    second = (await http.post(DATABASES, json=global_database("second", "second"))).json()
    both = (await http.post(SECRETS, json=_secret("both", first, second))).json()
    (await http.post(SECRETS, json=_secret("only-first", first))).raise_for_status()
    (await http.post(SECRETS, json=_secret("grandchild", both))).raise_for_status()
    (await http.post(SECRETS, json=_secret("unowned"))).raise_for_status()
    (await http.delete(f"{DATABASES}/first")).raise_for_status()
    assert (await http.get(f"{SECRETS}/only-first")).status_code == 404
    assert (await http.get(f"{SECRETS}/both")).status_code == 200  # "second" still owns it
    (await http.delete(f"{DATABASES}/second")).raise_for_status()
    assert (await http.get(f"{SECRETS}/both")).status_code == 404
    assert (await http.get(f"{SECRETS}/grandchild")).status_code == 404  # the cascade goes on
    assert (await http.get(f"{SECRETS}/unowned")).status_code == 200


async def test_an_object_whose_owners_do_not_exist_is_collected(
    kube: tuple[KubernetesEmulator, httpx.AsyncClient],
) -> None:
    _, http = kube
    ghost = global_database("ghost", "ghost") | {"metadata": {"name": "ghost", "uid": "no-such-uid"}}
    (await http.post(SECRETS, json=_secret("orphan", ghost))).raise_for_status()
    assert (await http.get(f"{SECRETS}/orphan")).status_code == 404


async def test_a_list_or_a_watch_with_a_label_selector_returns_only_the_matching_objects(
    kube: tuple[KubernetesEmulator, httpx.AsyncClient],
) -> None:
    _, http = kube
    for name, labels in (
        ("plain", {}),
        ("taken", {"tenantdb.io/managed": "true"}),
        ("other", {"tier": "free"}),
    ):
        body = global_database(name, name)
        body["metadata"]["labels"] = labels
        (await http.post(DATABASES, json=body)).raise_for_status()

    async def listed(selector: str) -> list[str]:
        response = await http.get(DATABASES, params={"labelSelector": selector})
        response.raise_for_status()
        return sorted(item["metadata"]["name"] for item in response.json()["items"])

    assert await listed("!tenantdb.io/managed") == ["other", "plain"]
    assert await listed("tenantdb.io/managed") == ["taken"]
    assert await listed("tier=free") == ["other"]
    assert await listed("tier!=free") == ["plain", "taken"]
    assert await listed("tier in (free, paid),!tenantdb.io/managed") == ["other"]
    assert await listed("tier notin (free)") == ["plain", "taken"]
    assert (await http.get(DATABASES, params={"labelSelector": "tier in free"})).status_code == 400

    version = (await http.get(DATABASES)).json()["metadata"]["resourceVersion"]
    params = {"watch": "true", "resourceVersion": version, "labelSelector": "!tenantdb.io/managed"}
    async with http.stream("GET", DATABASES, params=params, timeout=5) as stream:
        unlabelled = global_database("new", "new") | {"metadata": {"name": "new", "labels": {}}}
        (await http.post(DATABASES, json=unlabelled)).raise_for_status()
        labelled = global_database("new-taken", "new-taken")
        labelled["metadata"]["labels"] = {"tenantdb.io/managed": "true"}
        (await http.post(DATABASES, json=labelled)).raise_for_status()
        (await http.post(DATABASES, json=global_database("last", "last"))).raise_for_status()
        names = []
        async for line in stream.aiter_lines():
            if line.strip():
                names.append(json.loads(line)["object"]["metadata"]["name"])
            if len(names) == 2:
                break
    assert names == ["new", "last"]


async def test_a_list_comes_in_pages_of_the_limit_asked_for_each_at_the_first_page_s_version(
    kube: tuple[KubernetesEmulator, httpx.AsyncClient],
) -> None:
    """As the API server pages (kopf's ``chunk_size``, ``TENANTDB_LIST_PAGE_SIZE``): one page
    of 30,000 objects is tens of MB parsed in one go, blocking the operator's event loop."""
    _, http = kube
    for name in ("c", "a", "e", "b", "d"):
        (await http.post(DATABASES, json=global_database(name, name))).raise_for_status()
    pages: list[list[str]] = []
    versions: set[str] = set()
    token = ""
    while True:
        params = {"limit": "2"} | ({"continue": token} if token else {})
        page = (await http.get(DATABASES, params=params)).json()
        pages.append([item["metadata"]["name"] for item in page["items"]])
        versions.add(page["metadata"]["resourceVersion"])
        if not pages[1:]:  # a write between two pages: the later pages keep the first one's version
            (await http.post(DATABASES, json=global_database("f", "f"))).raise_for_status()
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert pages == [["a", "b"], ["c", "d"], ["e", "f"]]
    assert len(versions) == 1
    assert (await http.get(DATABASES, params={"limit": "2", "continue": "nonsense"})).status_code == 400
    assert len((await http.get(DATABASES)).json()["items"]) == 6  # no limit: all at once


async def test_a_list_across_namespaces_pages_in_namespace_then_name_order_without_the_deleted(
    kube: tuple[KubernetesEmulator, httpx.AsyncClient],
) -> None:
    """Pages are read from each resource's keys kept in order (not a scan and a sort of every
    stored object per page): what was deleted is gone, what was created again is listed once."""
    _, http = kube
    for namespace, name in (("team-b", "a"), ("default", "z"), ("team-a", "m"), ("default", "b")):
        body = global_database(name, name, namespace=namespace)
        path = DATABASES.replace("/namespaces/default/", f"/namespaces/{namespace}/")
        (await http.post(path, json=body)).raise_for_status()
    (await http.delete(f"{DATABASES}/z")).raise_for_status()
    (await http.post(SECRETS, json=_secret("s"))).raise_for_status()  # another resource: not listed
    (await http.delete(f"{DATABASES}/b")).raise_for_status()
    (await http.post(DATABASES, json=global_database("b", "b"))).raise_for_status()  # the name again
    everywhere = "/apis/tenantdb.io/v1alpha1/globaldatabases"
    listed: list[tuple[str, str]] = []
    token = ""
    while True:
        params = {"limit": "1"} | ({"continue": token} if token else {})
        page = (await http.get(everywhere, params=params)).json()
        listed += [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in page["items"]]
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert listed == [("default", "b"), ("team-a", "m"), ("team-b", "a")]
    in_default = (await http.get(DATABASES)).json()["items"]
    assert [i["metadata"]["name"] for i in in_default] == ["b"]


async def test_a_watch_with_a_label_selector_says_when_an_object_leaves_or_enters_the_selection(
    kube: tuple[KubernetesEmulator, httpx.AsyncClient],
) -> None:
    """As the API server's watch cache: an object whose labels no longer match comes as DELETED,
    one whose labels now match as ADDED (a standby's fast lane forgets what another replica took
    up from the DELETED)."""
    _, http = kube
    (await http.post(DATABASES, json=global_database("before", "before"))).raise_for_status()
    version = (await http.get(DATABASES)).json()["metadata"]["resourceVersion"]
    params = {"watch": "true", "resourceVersion": version, "labelSelector": "!tenantdb.io/managed"}
    taken = {"metadata": {"labels": {"tenantdb.io/managed": "true"}}}
    events: list[tuple[str, str]] = []
    async with http.stream("GET", DATABASES, params=params, timeout=5) as stream:
        (await http.post(DATABASES, json=global_database("new", "new"))).raise_for_status()
        for name in ("new", "before"):  # made while watched, and before the watch
            (await http.patch(f"{DATABASES}/{name}", json=taken, headers=MERGE)).raise_for_status()
        changed = {"spec": {"userId": "x"}}
        (await http.patch(f"{DATABASES}/new", json=changed, headers=MERGE)).raise_for_status()
        untaken = {"metadata": {"labels": {"tenantdb.io/managed": None}}}
        (await http.patch(f"{DATABASES}/new", json=untaken, headers=MERGE)).raise_for_status()
        async for line in stream.aiter_lines():
            if line.strip():
                event = json.loads(line)
                events.append((event["type"], event["object"]["metadata"]["name"]))
            if len(events) == 4:
                break
    assert events == [("ADDED", "new"), ("DELETED", "new"), ("DELETED", "before"), ("ADDED", "new")]


async def test_a_watch_ends_after_the_timeout_it_asked_for(
    kube: tuple[KubernetesEmulator, httpx.AsyncClient],
) -> None:
    """As the API server ends a watch at ``timeoutSeconds`` (the client then watches again from
    its last version): a watch the server never ends is read until the client times out."""
    _, http = kube
    version = (await http.get(DATABASES)).json()["metadata"]["resourceVersion"]
    params = {"watch": "true", "resourceVersion": version, "timeoutSeconds": "1"}
    started = time.monotonic()
    async with http.stream("GET", DATABASES, params=params, timeout=10) as stream:
        lines = [line async for line in stream.aiter_lines() if line.strip()]
    assert lines == []
    assert time.monotonic() - started < 5


async def test_a_cluster_scoped_kind_is_served_under_no_namespace_only(
    kube: tuple[KubernetesEmulator, httpx.AsyncClient],
) -> None:
    _, http = kube
    tiers = "/apis/tenantdb.io/v1alpha1/databasetiers"
    body = {
        "apiVersion": "tenantdb.io/v1alpha1",
        "kind": "DatabaseTier",
        "metadata": {"name": "pro"},
        "spec": {},
    }
    assert (await http.post(tiers, json=body)).status_code in (200, 201)
    assert [t["metadata"]["name"] for t in (await http.get(tiers)).json()["items"]] == ["pro"]
    # As a real API server: a namespaced path to it does not exist (a list there is no empty list).
    assert (await http.get("/apis/tenantdb.io/v1alpha1/namespaces/default/databasetiers")).status_code == 404
