"""The CRDs: generated from the models, committed, and strict enough to reject bad specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import pytest
import yaml

from tenantdb.api.crd import generate_crds, render_crd_yaml
from tenantdb.testing.manifests import load_manifests

ROOT = Path(__file__).resolve().parents[2]


def _schema(kind: str) -> dict[str, Any]:
    crd = next(c for c in generate_crds() if c["spec"]["names"]["kind"] == kind)
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _validate(kind: str, spec: dict[str, Any]) -> None:
    jsonschema.validate(
        {"apiVersion": "tenantdb.io/v1alpha1", "kind": kind, "metadata": {}, "spec": spec}, _schema(kind)
    )


def test_committed_crds_match_the_models() -> None:
    for crd in generate_crds():
        path = ROOT / "crds" / f"{crd['metadata']['name']}.yaml"
        assert path.read_text() == render_crd_yaml(crd), f"{path.name} is stale: run `make crds`"


def test_crds_have_the_names_users_type() -> None:
    names = {c["spec"]["names"]["kind"]: c["spec"]["names"] for c in generate_crds()}
    assert names["GlobalDatabase"]["shortNames"] == ["gdb"]
    assert names["WorkspaceDatabase"]["shortNames"] == ["wdb"]
    assert names["DatabaseBudget"]["shortNames"] == ["dbb"]
    assert names["DatabaseTier"]["shortNames"] == ["dbt"]
    assert names["DatabaseTier"]["plural"] == "databasetiers"
    assert all(n["categories"] == ["tenantdb"] for n in names.values())
    for crd in generate_crds():
        version = crd["spec"]["versions"][0]
        kind = crd["spec"]["names"]["kind"]
        assert version["subresources"] == {"status": {}}
        columns = {c["name"] for c in version["additionalPrinterColumns"]}
        if kind == "NeonOrganization":  # the pool of organisations: one per cluster, not per namespace
            assert crd["spec"]["scope"] == "Cluster"
            assert crd["spec"]["names"]["plural"] == "neonorganizations"
            assert {"Organization", "Cordoned", "Projects", "Room", "Ready", "Age"} <= columns
            continue
        # A tier is cluster-wide, like a StorageClass; the rest live in the tenants' namespaces.
        assert crd["spec"]["scope"] == ("Cluster" if kind == "DatabaseTier" else "Namespaced")
        if kind == "DatabaseBudget":
            assert {"Tier", "Limit", "Spent", "Exceeded", "Age"} <= columns
        elif kind == "DatabaseTier":
            assert {"Limit", "MinCU", "MaxCU", "Databases", "Updated", "Ready", "Age"} <= columns
        else:
            assert {"Ready", "Phase", "Project", "Age"} <= columns


def _descriptions_everywhere(node: dict[str, Any], path: str) -> list[str]:
    missing = []
    for name, prop in (node.get("properties") or {}).items():
        if "description" not in prop:
            missing.append(f"{path}.{name}")
        missing += _descriptions_everywhere(prop, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        missing += _descriptions_everywhere(node["items"], f"{path}[]")
    return missing


@pytest.mark.parametrize("kind", ["GlobalDatabase", "WorkspaceDatabase", "DatabaseBudget", "DatabaseTier"])
def test_every_spec_field_is_documented_for_kubectl_explain(kind: str) -> None:
    assert _descriptions_everywhere(_schema(kind)["properties"]["spec"], "spec") == []


def test_samples_are_valid() -> None:
    for manifest in load_manifests(ROOT / "manifests" / "samples"):
        jsonschema.validate(manifest, _schema(manifest["kind"]))


# Wrong specs a user could write; tests/apiserver proves a real API server refuses each too.
INVALID_SPECS: list[tuple[str, dict[str, Any], str]] = [
    ("GlobalDatabase", {}, "userId is required"),
    ("GlobalDatabase", {"userId": "has spaces"}, "id pattern"),
    ("GlobalDatabase", {"userId": "x" * 129}, "id length"),
    ("WorkspaceDatabase", {"userId": "u1"}, "workspaceId is required"),
    ("WorkspaceDatabase", {"userId": "u1", "workspaceId": "w1", "billedUserId": "a b"}, "payer id pattern"),
    ("GlobalDatabase", {"userId": "u1", "deletionPolicy": "Orphan"}, "unknown deletion policy"),
    ("GlobalDatabase", {"userId": "u1", "pgVersion": 12}, "unsupported PostgreSQL"),
    ("GlobalDatabase", {"userId": "u1", "region": "mars-1"}, "region shape"),
    ("GlobalDatabase", {"userId": "u1", "autoscaling": {"minCu": 0.1}}, "CU below 0.25"),
    ("GlobalDatabase", {"userId": "u1", "suspendTimeoutSeconds": -5}, "suspend timeout"),
    ("GlobalDatabase", {"userId": "u1", "databaseName": "drop table;"}, "database name"),
    ("DatabaseBudget", {"userId": "u1", "tier": "Gold Plan"}, "tier not a DNS-1123 name"),
    ("DatabaseBudget", {"userId": "u1", "tier": "t" * 64}, "tier name too long"),
    ("DatabaseBudget", {"userId": "u1", "customLimitCents": -1}, "negative limit"),
    ("DatabaseTier", {"limitCents": -1}, "negative tier limit"),
    ("DatabaseTier", {"autoscaling": {"maxCu": 57}}, "tier CU above Neon's largest"),
    ("DatabaseTier", {"suspendTimeoutSeconds": -5}, "tier suspend timeout"),
    ("DatabaseTier", {"historyRetentionSeconds": 2592001}, "history beyond 30 days"),
    ("DatabaseTier", {"quotas": {"logicalSizeBytes": -1}}, "negative storage quota"),
    ("DatabaseTier", {"simPlans": [""]}, "empty Sim plan pattern"),
]


@pytest.mark.parametrize(("kind", "spec", "why"), INVALID_SPECS)
def test_invalid_specs_are_rejected_by_the_schema(kind: str, spec: dict[str, Any], why: str) -> None:
    with pytest.raises(jsonschema.ValidationError):
        _validate(kind, spec)


def test_immutable_fields_carry_cel_rules() -> None:
    spec = _schema("WorkspaceDatabase")["properties"]["spec"]
    for field in ("userId", "workspaceId", "region", "pgVersion", "databaseName"):
        rules = spec["properties"][field]["x-kubernetes-validations"]
        assert {"rule": "self == oldSelf", "message": f"{field} is immutable"} in rules
    autoscaling = spec["properties"]["autoscaling"]["x-kubernetes-validations"]
    assert autoscaling[0]["rule"].endswith("self.minCu <= self.maxCu")


def test_status_has_no_field_that_could_hold_a_secret() -> None:
    for kind in ("GlobalDatabase", "WorkspaceDatabase"):
        status = yaml.safe_dump(_schema(kind)["properties"]["status"]).lower()
        for word in ("password", "uri", "url", "connectionstring"):
            assert f"{word}:" not in status


@pytest.mark.parametrize("seconds", [1, 30, 59])
def test_a_suspend_timeout_neon_refuses_is_refused_by_the_crd_and_the_model(seconds: int) -> None:
    from tenantdb.api.databases import GlobalDatabaseSpec

    rules = _schema("GlobalDatabase")["properties"]["spec"]["properties"]["suspendTimeoutSeconds"][
        "x-kubernetes-validations"
    ]
    assert any(r["rule"] == "self == -1 || self == 0 || self >= 60" for r in rules)
    with pytest.raises(pydantic.ValidationError):
        GlobalDatabaseSpec.model_validate({"userId": "u1", "suspendTimeoutSeconds": seconds})
    for allowed in (-1, 0, 60, 604800):
        GlobalDatabaseSpec.model_validate({"userId": "u1", "suspendTimeoutSeconds": allowed})


def test_a_database_name_whose_default_role_is_too_long_needs_a_role_name() -> None:
    from tenantdb.api.databases import WorkspaceDatabaseSpec

    spec = _schema("WorkspaceDatabase")["properties"]["spec"]
    assert any("size(self.databaseName) <= 57" in r["rule"] for r in spec["x-kubernetes-validations"])
    long_name = "d" * 63
    with pytest.raises(pydantic.ValidationError, match="roleName"):
        WorkspaceDatabaseSpec.model_validate({"userId": "u1", "workspaceId": "w1", "databaseName": long_name})
    WorkspaceDatabaseSpec.model_validate(
        {"userId": "u1", "workspaceId": "w1", "databaseName": long_name, "roleName": "owner"}
    )
    WorkspaceDatabaseSpec.model_validate({"userId": "u1", "workspaceId": "w1", "databaseName": "d" * 57})
