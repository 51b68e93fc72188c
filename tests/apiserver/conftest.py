"""The real API server tier: the session's ``kube_apiserver`` (tenantdb's pytest plugin) with
the CRDs installed, the chart rendered by Helm's own engine, and stacks that run the operator
against it as processes (``ApiServerStack``)."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from tenantdb.testing.apiserver import KubeApiServer
from tenantdb.testing.apiserver_stack import ApiServerStack
from tenantdb.testing.manifests import load_manifests
from tenantdb.testing.postgres import PostgresServer
from tests import factories
from tests.deploy.support import CHART, CRDS, NAMESPACE, render_chart

pytestmark = pytest.mark.apiserver

Object = dict[str, Any]

# What `kubectl apply -f crds/` and the chart's crds/ install (kopf's peering CRDs ship there).
CRD_FILES = [*sorted(CRDS.glob("*.yaml")), CHART / "crds" / "kopf-peering.yaml"]

_CLUSTER_SCOPED = {
    "ClusterRole",
    "ClusterRoleBinding",
    "Namespace",
    "CustomResourceDefinition",
    "ClusterKopfPeering",
}
_PLURAL = {
    "ServiceAccount": "serviceaccounts",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "ClusterKopfPeering": "clusterkopfpeerings",
    "KopfPeering": "kopfpeerings",
    "CustomResourceDefinition": "customresourcedefinitions",
    "Namespace": "namespaces",
}


def object_path(obj: Object) -> str:
    """The collection URL of ``obj``'s kind (and namespace)."""
    group_version = obj["apiVersion"]
    prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    plural = _PLURAL[obj["kind"]]
    if obj["kind"] in _CLUSTER_SCOPED:
        return f"{prefix}/{plural}"
    return f"{prefix}/namespaces/{obj['metadata']['namespace']}/{plural}"


def put(http: httpx.Client, obj: Object, *, timeout: float = 30.0) -> Object:
    """Create ``obj``, or replace it if it exists (``kubectl apply``, roughly).

    Transient answers (429 while storage initialises, 5xx, a conflict between read and
    replace) are retried as kubectl would; anything else fails at once with the server's words.
    """
    collection = object_path(obj)
    deadline = time.monotonic() + timeout
    while True:
        response = http.post(collection, json=obj)
        if response.status_code == 409:
            current = http.get(f"{collection}/{obj['metadata']['name']}").json()
            replacement = copy.deepcopy(obj)
            replacement["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            response = http.put(f"{collection}/{obj['metadata']['name']}", json=replacement)
        if response.status_code in (200, 201):
            result: Object = response.json()
            return result
        transient = response.status_code in (409, 429) or response.status_code >= 500
        if not transient or time.monotonic() > deadline:
            raise AssertionError(
                f"{obj['kind']} {obj['metadata']['name']}: {response.status_code} {response.text}"
            )
        time.sleep(0.5)


def install_crds(server: KubeApiServer) -> list[Object]:
    """Every CRD file, as `kubectl apply -f`; waits until each is Established."""
    crds = [doc for path in CRD_FILES for doc in load_manifests(path)]
    with server.client() as http:
        for crd in crds:
            put(http, crd)
        deadline = time.monotonic() + 60
        for crd in crds:
            while True:
                got = http.get(
                    f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}"
                )
                conditions = {
                    c["type"]: c["status"] for c in got.json().get("status", {}).get("conditions", [])
                }
                if conditions.get("Established") == "True":
                    break
                assert time.monotonic() < deadline, f"{crd['metadata']['name']} not Established: {conditions}"
                time.sleep(0.2)
    # Discovery catches up a moment after Established: wait until the kinds are served.
    with server.client() as http:
        deadline = time.monotonic() + 30
        while http.get("/apis/tenantdb.io/v1alpha1").status_code != 200:
            assert time.monotonic() < deadline, "tenantdb.io/v1alpha1 not served"
            time.sleep(0.2)
    return crds


@pytest.fixture(scope="session")
def api_server(kube_apiserver: KubeApiServer) -> KubeApiServer:
    """The session's real API server with the CRDs installed."""
    install_crds(kube_apiserver)
    return kube_apiserver


def chart_objects(values: dict[str, Any] | None = None) -> list[Object]:
    """The chart's ServiceAccount, RBAC and peering objects, rendered by Helm's engine."""
    import helm_python as helm

    with helm.Chart.load(str(CHART)) as chart:
        rendered = render_chart(chart, values or {})
    wanted = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    wanted |= {"ClusterKopfPeering", "KopfPeering"}
    return [obj for obj in rendered.objects if obj["kind"] in wanted]


def chart_tiers(values: dict[str, Any] | None = None) -> list[Object]:
    """The DatabaseTier objects the chart installs, rendered by Helm's engine."""
    import helm_python as helm

    with helm.Chart.load(str(CHART)) as chart:
        rendered = render_chart(chart, values or {})
    return [obj for obj in rendered.objects if obj["kind"] == "DatabaseTier"]


def service_account_of(objects: list[Object]) -> tuple[str, str]:
    (account,) = [obj for obj in objects if obj["kind"] == "ServiceAccount"]
    return account["metadata"].get("namespace", NAMESPACE), account["metadata"]["name"]


def install_chart_rbac(server: KubeApiServer, objects: list[Object]) -> None:
    """Apply the rendered objects (release namespace first), replacing earlier versions."""
    with server.client() as http:
        namespaces = {
            obj["metadata"].get("namespace", NAMESPACE)
            for obj in objects
            if obj["kind"] not in _CLUSTER_SCOPED
        }
        for namespace in sorted(namespaces):
            response = http.post("/api/v1/namespaces", json={"metadata": {"name": namespace}})
            assert response.status_code in (201, 409), response.text
        for obj in objects:
            obj = copy.deepcopy(obj)
            if obj["kind"] not in _CLUSTER_SCOPED:
                obj["metadata"].setdefault("namespace", NAMESPACE)
            put(http, obj)


@pytest.fixture
def chart_rbac(api_server: KubeApiServer) -> Callable[..., Any]:
    """``chart_rbac(values, edit=...)``: install the chart's RBAC; returns the operator's access
    (a ServiceAccount token from the TokenRequest API).

    ``edit`` changes the rendered rules before they are applied (to prove a missing rule is noticed).
    """

    def install(
        values: dict[str, Any] | None = None, *, edit: Callable[[list[Object]], None] | None = None
    ) -> Any:
        objects = chart_objects(values)
        if edit is not None:
            edit(objects)
        install_chart_rbac(api_server, objects)
        namespace, name = service_account_of(objects)
        return api_server.access_for_token(api_server.token_for(name, namespace))

    return install


@pytest.fixture
async def stack_factory(
    api_server: KubeApiServer, postgres_server: PostgresServer
) -> AsyncIterator[Callable[..., Awaitable[ApiServerStack]]]:
    """``await stack_factory(operator_access=..., **settings)``: an entered ApiServerStack."""
    stacks: list[ApiServerStack] = []

    async def make(**kwargs: Any) -> ApiServerStack:
        access = kwargs.pop("operator_access", None)
        stack = ApiServerStack(
            api_server, postgres=postgres_server, operator_access=access, settings_overrides=kwargs
        )
        await stack.__aenter__()
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        await stack.__aexit__(None, None, None)


@pytest.fixture(autouse=True)
def _all_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    # One line per poll drowns the rest; caplog puts the level back after the test.
    caplog.set_level(logging.WARNING, logger="httpx")


def global_database(name: str, namespace: str, user_id: str, **spec: Any) -> Object:
    """tests/factories.py's, with the namespace second: each test here has its own."""
    return factories.global_database(name, user_id, namespace=namespace, **spec)


def workspace_database(name: str, namespace: str, user_id: str, workspace_id: str, **spec: Any) -> Object:
    return factories.workspace_database(name, user_id, workspace_id, namespace=namespace, **spec)
