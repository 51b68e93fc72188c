"""The CRDs, samples and schemas, judged by a real kube-apiserver (not by our own validator)."""

from __future__ import annotations

import copy
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tenantdb.testing.apiserver import KubeApiServer, find_kube_assets
from tenantdb.testing.manifests import load_manifests
from tests.apiserver.conftest import CRD_FILES, global_database, workspace_database
from tests.deploy.support import MANIFESTS
from tests.unit.test_crds import INVALID_SPECS

pytestmark = pytest.mark.apiserver

Object = dict[str, Any]
_PLURALS = {
    "GlobalDatabase": "globaldatabases",
    "WorkspaceDatabase": "workspacedatabases",
    "DatabaseBudget": "databasebudgets",
    "DatabaseTier": "databasetiers",
}
_CLUSTER_SCOPED = {"DatabaseTier"}


def _collection(kind: str, namespace: str) -> str:
    if kind in _CLUSTER_SCOPED:
        return f"/apis/tenantdb.io/v1alpha1/{_PLURALS[kind]}"
    return f"/apis/tenantdb.io/v1alpha1/namespaces/{namespace}/{_PLURALS[kind]}"


def _placed(obj: Object, namespace: str) -> Object:
    """``obj`` in the test's namespace; a cluster-scoped one (a tier) named after it instead,
    so that tests sharing the session's API server never meet each other's."""
    obj = copy.deepcopy(obj)
    if obj["kind"] in _CLUSTER_SCOPED:
        obj["metadata"].pop("namespace", None)
        obj["metadata"]["name"] = f"{obj['metadata']['name']}-{namespace}"
    else:
        obj["metadata"]["namespace"] = namespace
    return obj


@pytest.fixture
def namespace(api_server: KubeApiServer) -> Iterator[str]:
    name = f"crd-{secrets.token_hex(4)}"
    with api_server.client() as http:
        http.post("/api/v1/namespaces", json={"metadata": {"name": name}}).raise_for_status()
        yield name
        for kind, plural in _PLURALS.items():
            if kind not in _CLUSTER_SCOPED:
                http.delete(f"/apis/tenantdb.io/v1alpha1/namespaces/{name}/{plural}")
        for tier in http.get(_collection("DatabaseTier", name)).json().get("items", []):
            if tier["metadata"]["name"].endswith(f"-{name}"):
                http.delete(f"{_collection('DatabaseTier', name)}/{tier['metadata']['name']}")
        http.delete(f"/api/v1/namespaces/{name}")


@pytest.fixture
def http(api_server: KubeApiServer) -> Iterator[httpx.Client]:
    with api_server.client() as client:
        yield client


def _kubectl(api_server: KubeApiServer, *args: str) -> subprocess.CompletedProcess[str]:
    # setup-envtest's folders carry a kubectl of the same release: prefer it.
    bundled = find_kube_assets() / "kubectl"
    binary = str(bundled) if os.access(bundled, os.X_OK) else shutil.which("kubectl")
    if binary is None:
        message = "kubectl is not installed (Debian: apt-get install kubectl)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)
    return subprocess.run(
        [binary, f"--kubeconfig={api_server.kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_every_crd_is_accepted_and_established(api_server: KubeApiServer, http: httpx.Client) -> None:
    names = [crd["metadata"]["name"] for path in CRD_FILES for crd in load_manifests(path)]
    assert {
        "globaldatabases.tenantdb.io",
        "workspacedatabases.tenantdb.io",
        "databasebudgets.tenantdb.io",
        "databasetiers.tenantdb.io",
    } <= set(names)
    for name in names:
        crd = http.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}").json()
        conditions = {c["type"]: c for c in crd["status"]["conditions"]}
        assert conditions["Established"]["status"] == "True", conditions
        assert conditions["NamesAccepted"]["status"] == "True", conditions
        # A structural schema: no NonStructuralSchema condition (it would disable pruning).
        assert "NonStructuralSchema" not in conditions, conditions["NonStructuralSchema"]["message"]


def test_the_shipped_samples_are_accepted_as_written(http: httpx.Client, namespace: str) -> None:
    samples = load_manifests(MANIFESTS / "samples")
    assert samples
    assert {"DatabaseTier", "DatabaseBudget", "GlobalDatabase"} <= {s["kind"] for s in samples}
    for sample in samples:
        sample = _placed(sample, namespace)
        response = http.post(_collection(sample["kind"], namespace), json=sample)
        assert response.status_code == 201, response.text
        stored = response.json()
        # Nothing the user wrote was pruned (defaults may be added).
        _assert_contains(
            stored["spec"], sample["spec"], path=f"{sample['kind']}/{sample['metadata']['name']}.spec"
        )


def _assert_contains(actual: Any, expected: Any, *, path: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} was pruned"
            _assert_contains(actual[key], value, path=f"{path}.{key}")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


@pytest.mark.parametrize(("kind", "spec", "why"), INVALID_SPECS, ids=[case[2] for case in INVALID_SPECS])
def test_wrong_objects_are_rejected_by_the_api_server(
    http: httpx.Client, namespace: str, kind: str, spec: Object, why: str
) -> None:
    body = _placed(
        {"apiVersion": "tenantdb.io/v1alpha1", "kind": kind, "metadata": {"name": "wrong"}, "spec": spec},
        namespace,
    )
    response = http.post(_collection(kind, namespace), json=body, params={"dryRun": "All"})
    assert response.status_code == 422, f"{why}: accepted ({response.status_code}): {response.text}"
    status = response.json()
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"], status  # each cause names the field at fault


def test_a_correct_object_passes_the_same_dry_run(http: httpx.Client, namespace: str) -> None:
    # The rejections above are about the specs, not about the way they are sent.
    body = global_database("right", namespace, "u1")
    response = http.post(_collection("GlobalDatabase", namespace), json=body, params={"dryRun": "All"})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("userId", "someone-else"),
        ("workspaceId", "ws-other"),
        ("region", "aws-eu-central-1"),
        ("pgVersion", 16),
        # spec.projectId is set at creation or never: adding it later is refused too.
        ("projectId", "wandering-fog-12345678"),
    ],
)
def test_changing_an_immutable_field_is_refused_with_the_cel_message(
    http: httpx.Client, namespace: str, field: str, value: Any
) -> None:
    body = workspace_database("ws-fixed", namespace, "u1", "ws-1", region="aws-us-east-2", pgVersion=17)
    created = http.post(_collection("WorkspaceDatabase", namespace), json=body)
    assert created.status_code == 201, created.text
    response = http.patch(
        f"{_collection('WorkspaceDatabase', namespace)}/ws-fixed",
        json={"spec": {field: value}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 422, response.text
    assert f"{field} is immutable" in response.json()["message"]
    # A mutable field still changes.
    allowed = http.patch(
        f"{_collection('WorkspaceDatabase', namespace)}/ws-fixed",
        json={"spec": {"autoscaling": {"minCu": 0.25, "maxCu": 2}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert allowed.status_code == 200, allowed.text


def test_whom_a_workspace_database_counts_against_may_change(http: httpx.Client, namespace: str) -> None:
    """``billedUserId`` is the one identity field that moves: the platform's payer may change."""
    body = workspace_database("ws-paid", namespace, "u1", "ws-1", billedUserId="u2")
    created = http.post(_collection("WorkspaceDatabase", namespace), json=body)
    assert created.status_code == 201, created.text
    url = f"{_collection('WorkspaceDatabase', namespace)}/ws-paid"
    merge = {"Content-Type": "application/merge-patch+json"}
    for value in ("u3", None):
        response = http.patch(url, json={"spec": {"billedUserId": value}}, headers=merge)
        assert response.status_code == 200, response.text
        assert response.json()["spec"].get("billedUserId") == value
    added = http.patch(url, json={"spec": {"billedUserId": "u4"}}, headers=merge)
    assert added.status_code == 200, added.text
    assert added.json()["spec"]["userId"] == "u1"


def test_kubectl_explain_shows_the_field_documentation(api_server: KubeApiServer) -> None:
    result = _kubectl(api_server, "explain", "globaldatabase.spec.userId")
    assert result.returncode == 0, result.stderr
    assert "GlobalDatabase" in result.stdout
    assert "userId" in result.stdout
    whole = _kubectl(api_server, "explain", "workspacedatabases.spec")
    assert whole.returncode == 0, whole.stderr
    assert "workspaceId" in whole.stdout
    assert "deletionPolicy" in whole.stdout


def test_kubectl_get_shows_the_printer_columns(
    api_server: KubeApiServer, http: httpx.Client, namespace: str
) -> None:
    for sample in load_manifests(MANIFESTS / "samples"):
        sample = _placed(sample, namespace)
        http.post(_collection(sample["kind"], namespace), json=sample).raise_for_status()
    result = _kubectl(api_server, "get", "gdb,wdb,dbb", "-n", namespace)
    assert result.returncode == 0, result.stderr
    headers = [line.split() for line in result.stdout.splitlines() if line.startswith("NAME")]
    assert len(headers) == 3, result.stdout
    tiers = _kubectl(api_server, "get", "dbt", f"paid-{namespace}")
    assert tiers.returncode == 0, tiers.stderr
    header, row = tiers.stdout.splitlines()[:2]
    assert {"LIMIT", "MINCU", "MAXCU", "DATABASES", "UPDATED", "READY", "AGE"} <= set(header.split()), header
    assert row.split()[1:4] == ["5000", "0.25", "2"], tiers.stdout
    database_columns = {"READY", "PHASE", "PROJECT", "AGE"}
    assert database_columns <= set(headers[0]), result.stdout
    assert database_columns <= set(headers[1]), result.stdout
    assert {"TIER", "LIMIT", "SPENT", "EXCEEDED", "AGE"} <= set(headers[2]), result.stdout
    for name in (
        "globaldatabase.tenantdb.io/user-alice",
        "workspacedatabase.tenantdb.io/ws-research",
        "databasebudget.tenantdb.io/user-alice",
    ):
        assert name in result.stdout, result.stdout


@pytest.mark.parametrize("kind", ["GlobalDatabase", "WorkspaceDatabase"])
def test_min_above_max_compute_is_refused_by_the_cel_rule(
    http: httpx.Client, namespace: str, kind: str
) -> None:
    body = (
        global_database("cu", namespace, "u1")
        if kind == "GlobalDatabase"
        else workspace_database("cu", namespace, "u1", "ws-1")
    )
    body["spec"]["autoscaling"] = {"minCu": 2, "maxCu": 1}
    response = http.post(_collection(kind, namespace), json=body, params={"dryRun": "All"})
    assert response.status_code == 422, response.text
    assert "minCu must not exceed maxCu" in response.json()["message"]
    # Only minCu given: maxCu's default (0.25) applies first, and 2 > 0.25 is refused too.
    body["spec"]["autoscaling"] = {"minCu": 2}
    response = http.post(_collection(kind, namespace), json=body, params={"dryRun": "All"})
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    ("size", "accepted"), [(1, True), (2, True), (0.75, True), (0.3, False), (1.1, False)]
)
def test_compute_sizes_are_quarter_steps_whole_numbers_included(
    http: httpx.Client, namespace: str, size: float, accepted: bool
) -> None:
    # A real API server checks `multipleOf: 0.25` on a whole number in integer arithmetic and
    # refused `maxCu: 1` (the shipped sample): the rule is CEL now, and this proves both ways.
    body = global_database("cu", namespace, "u1", autoscaling={"minCu": 0.25, "maxCu": size})
    response = http.post(_collection("GlobalDatabase", namespace), json=body, params={"dryRun": "All"})
    assert (response.status_code == 201) is accepted, response.text
    if not accepted:
        assert "must be a multiple of 0.25" in response.json()["message"]


@pytest.mark.parametrize(
    ("name", "spec", "message"),
    [
        ("has.a.dot", {}, "must be a DNS-1123 label"),
        ("tier-" + "x" * 60, {}, "must be a DNS-1123 label"),
        ("cu", {"autoscaling": {"minCu": 2, "maxCu": 1}}, "minCu must not exceed maxCu"),
        ("idle", {"suspendTimeoutSeconds": 30}, "at least 60"),
    ],
)
def test_a_tier_the_cel_rules_refuse(http: httpx.Client, name: str, spec: Object, message: str) -> None:
    body = {
        "apiVersion": "tenantdb.io/v1alpha1",
        "kind": "DatabaseTier",
        "metadata": {"name": name},
        "spec": spec,
    }
    response = http.post(_collection("DatabaseTier", ""), json=body, params={"dryRun": "All"})
    assert response.status_code == 422, response.text
    assert message in response.json()["message"]


def test_the_tiers_the_chart_ships_are_accepted(http: httpx.Client, namespace: str) -> None:
    from tests.apiserver.conftest import chart_tiers

    tiers = chart_tiers()
    assert {t["metadata"]["name"] for t in tiers} == {"free", "paid", "enterprise"}
    for tier in tiers:
        response = http.post(_collection("DatabaseTier", namespace), json=_placed(tier, namespace))
        assert response.status_code == 201, response.text
        _assert_contains(
            response.json()["spec"], tier["spec"], path=f"DatabaseTier/{tier['metadata']['name']}"
        )


def test_a_budget_names_any_tier_a_dns_label_can_name(http: httpx.Client, namespace: str) -> None:
    body = {
        "apiVersion": "tenantdb.io/v1alpha1",
        "kind": "DatabaseBudget",
        "metadata": {"name": "b", "namespace": namespace},
        "spec": {"userId": "u1", "tier": "pro-2026"},
    }
    response = http.post(_collection("DatabaseBudget", namespace), json=body, params={"dryRun": "All"})
    assert response.status_code == 201, response.text
