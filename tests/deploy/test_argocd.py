"""Argo CD: the Lua health checks run for real (Lua 5.1, as Argo CD's gopher-lua) against
objects in each state; the argocd-cm snippet carries exactly those scripts; the example
Applications point at what exists."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from lupa import lua51

from tests.deploy.support import MANIFESTS, ROOT, Rendered, custom_resource_schemas

ARGOCD = MANIFESTS / "argocd"
HEALTH = ARGOCD / "health"
SCRIPTS = {
    "GlobalDatabase": HEALTH / "database.lua",
    "WorkspaceDatabase": HEALTH / "database.lua",
    "DatabaseBudget": HEALTH / "budget.lua",
    "DatabaseTier": HEALTH / "tier.lua",
    "NeonOrganization": HEALTH / "organization.lua",
}
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def health(script: Path, obj: dict[str, Any]) -> tuple[str, str]:
    """Run a health script as Argo CD does: ``obj`` is a global, the chunk returns ``hs``."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(script.read_text())
    status, message = result["status"], result["message"]
    assert status in ARGO_STATUSES
    assert isinstance(message, str)
    return status, message


def condition(kind: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }


def database(kind: str, status: dict[str, Any] | None, **metadata: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "tenantdb.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "user-alice", "namespace": "default", "generation": 2, **metadata},
        "spec": {"userId": "alice", **({"workspaceId": "ws-1"} if kind == "WorkspaceDatabase" else {})},
    }
    if status is not None:
        obj["status"] = status
    return obj


READY = condition("Ready", "True", "Available", "Connection string in Secret user-alice-connection")
DATABASE_CASES: list[tuple[str, dict[str, Any] | None, dict[str, Any], str, str]] = [
    ("no status yet", None, {}, "Progressing", "Waiting for the tenantdb operator"),
    ("pending", {"phase": "Pending"}, {}, "Progressing", "Pending"),
    (
        "provisioning",
        {
            "phase": "Provisioning",
            "observedGeneration": 2,
            "conditions": [condition("Ready", "False", "Creating", "creating the project")],
        },
        {},
        "Progressing",
        "Creating: creating the project",
    ),
    ("ready", {"phase": "Ready", "observedGeneration": 2, "conditions": [READY]}, {}, "Healthy", "Available"),
    (
        "ready phase but condition lags",
        {"phase": "Ready", "observedGeneration": 2, "conditions": [condition("Ready", "Unknown", "Syncing")]},
        {},
        "Progressing",
        "Ready: Syncing",
    ),
    (
        "transient Neon trouble",
        {
            "phase": "Provisioning",
            "observedGeneration": 2,
            "conditions": [condition("Ready", "False", "NeonUnavailable", "503, retrying")],
        },
        {},
        "Progressing",
        "NeonUnavailable",
    ),
    (
        "suspended phase",
        {
            "phase": "Suspended",
            "observedGeneration": 2,
            "conditions": [
                condition("Ready", "False", "BudgetExceeded", "spent 512 of 500 cents"),
                condition("BudgetExceeded", "True", "LimitReached", "over the free tier"),
            ],
        },
        {},
        "Suspended",
        "over the free tier",
    ),
    (
        "suspended by reason only",
        {
            "phase": "Ready",
            "observedGeneration": 2,
            "conditions": [condition("Ready", "False", "BudgetExceeded", "over budget")],
        },
        {},
        "Suspended",
        "BudgetExceeded: over budget",
    ),
    (
        "failed",
        {
            "phase": "Failed",
            "observedGeneration": 2,
            "conditions": [condition("Ready", "False", "NeonRejected", "region not allowed")],
        },
        {},
        "Degraded",
        "NeonRejected: region not allowed",
    ),
    *[
        (
            f"permanent reason {reason}",
            {
                "phase": "Provisioning",
                "observedGeneration": 2,
                "conditions": [condition("Ready", "False", reason, "cannot go on")],
            },
            {},
            "Degraded",
            reason,
        )
        for reason in ("InvalidSpec", "NeonRejected", "QuotaExceeded", "DeleteFailed")
    ],
    (
        "a fixed spec not yet seen",
        {
            "phase": "Failed",
            "observedGeneration": 1,
            "conditions": [condition("Ready", "False", "InvalidSpec", "bad")],
        },
        {},
        "Progressing",
        "generation 2",
    ),
    (
        "deleting phase",
        {"phase": "Deleting", "observedGeneration": 2, "conditions": [READY]},
        {},
        "Progressing",
        "Deleting",
    ),
    (
        "deletion requested",
        {"phase": "Ready", "observedGeneration": 2, "conditions": [READY]},
        {"deletionTimestamp": "2026-01-01T00:00:00Z"},
        "Progressing",
        "Deleting",
    ),
]


@pytest.mark.parametrize("kind", ["GlobalDatabase", "WorkspaceDatabase"])
@pytest.mark.parametrize(
    ("status", "metadata", "expected", "fragment"),
    [case[1:] for case in DATABASE_CASES],
    ids=[case[0] for case in DATABASE_CASES],
)
def test_database_health(
    kind: str, status: dict[str, Any] | None, metadata: dict[str, Any], expected: str, fragment: str
) -> None:
    obj = database(kind, status, **metadata)
    _valid_against_crd(obj)
    got, message = health(SCRIPTS[kind], obj)
    assert got == expected, message
    assert fragment in message


def budget(status: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "tenantdb.io/v1alpha1",
        "kind": "DatabaseBudget",
        "metadata": {"name": "user-alice", "namespace": "default", "generation": 1},
        "spec": {"userId": "alice", "tier": "free"},
    }
    if status is not None:
        obj["status"] = status
    return obj


BUDGET_CASES: list[tuple[str, dict[str, Any] | None, str, str]] = [
    ("no status yet", None, "Progressing", "Waiting for the tenantdb operator"),
    (
        "not synced yet",
        {"tier": "free", "limitCents": 500, "exceeded": False, "observedGeneration": 1},
        "Progressing",
        "first consumption sync",
    ),
    (
        "within budget",
        {
            "tier": "free",
            "limitCents": 500,
            "totalCostCents": 123,
            "exceeded": False,
            "observedGeneration": 1,
            "conditions": [condition("Ready", "True", "Synced", "synced")],
        },
        "Healthy",
        "spent $1.23 of $5.00 (free tier)",
    ),
    (
        "unlimited",
        {
            "tier": "enterprise",
            "totalCostCents": 99999,
            "exceeded": False,
            "observedGeneration": 1,
            "conditions": [condition("Ready", "True", "Synced")],
        },
        "Healthy",
        "of unlimited",
    ),
    (
        "exceeded",
        {
            "tier": "free",
            "limitCents": 500,
            "totalCostCents": 512,
            "exceeded": True,
            "observedGeneration": 1,
            "conditions": [
                condition("Ready", "True", "Synced"),
                condition("BudgetExceeded", "True", "LimitReached"),
            ],
        },
        "Degraded",
        "Budget exceeded: spent $5.12 of $5.00",
    ),
    (
        "stale",
        {"tier": "free", "limitCents": 500, "exceeded": True, "observedGeneration": 0},
        "Progressing",
        "generation 1",
    ),
    (
        "sync failing",
        {
            "tier": "free",
            "limitCents": 500,
            "exceeded": False,
            "observedGeneration": 1,
            "conditions": [condition("Ready", "False", "ConsumptionUnavailable", "Neon 503")],
        },
        "Progressing",
        "Neon 503",
    ),
    (
        "a tier that does not exist",
        {
            "tier": "free",
            "limitCents": 500,
            "exceeded": True,
            "observedGeneration": 1,
            "conditions": [condition("Ready", "False", "TierNotFound", "No DatabaseTier named fre")],
        },
        "Degraded",
        "No DatabaseTier named fre",
    ),
]


@pytest.mark.parametrize(
    ("status", "expected", "fragment"),
    [case[1:] for case in BUDGET_CASES],
    ids=[case[0] for case in BUDGET_CASES],
)
def test_budget_health(status: dict[str, Any] | None, expected: str, fragment: str) -> None:
    obj = budget(status)
    _valid_against_crd(obj)
    got, message = health(SCRIPTS["DatabaseBudget"], obj)
    assert got == expected, message
    assert fragment in message


def tier(status: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "tenantdb.io/v1alpha1",
        "kind": "DatabaseTier",
        "metadata": {"name": "pro", "generation": 2},
        "spec": {"limitCents": 5000, "autoscaling": {"minCu": 0.25, "maxCu": 2}},
    }
    if status is not None:
        obj["status"] = status
    return obj


TIER_CASES: list[tuple[str, dict[str, Any] | None, str, str]] = [
    ("no status yet", None, "Progressing", "Waiting for the tenantdb operator"),
    (
        "rolled out",
        {
            "databases": 3,
            "updatedDatabases": 3,
            "observedGeneration": 2,
            "conditions": [condition("Ready", "True", "RolledOut", "3 of 3 databases follow the tier")],
        },
        "Healthy",
        "3 of 3",
    ),
    (
        "rolling out",
        {
            "databases": 3,
            "updatedDatabases": 1,
            "observedGeneration": 2,
            "conditions": [condition("Ready", "False", "RollingOut", "1 of 3 databases follow the tier")],
        },
        "Progressing",
        "Rolling out: 1 of 3",
    ),
    ("stale", {"observedGeneration": 1}, "Progressing", "generation 2"),
]


@pytest.mark.parametrize(
    ("status", "expected", "fragment"),
    [case[1:] for case in TIER_CASES],
    ids=[case[0] for case in TIER_CASES],
)
def test_tier_health(status: dict[str, Any] | None, expected: str, fragment: str) -> None:
    obj = tier(status)
    _valid_against_crd(obj)
    got, message = health(SCRIPTS["DatabaseTier"], obj)
    assert got == expected, message
    assert fragment in message


def _valid_against_crd(obj: dict[str, Any]) -> None:
    """The fixtures are shaped like real objects: they pass the CRD schema."""
    import jsonschema

    jsonschema.Draft7Validator(custom_resource_schemas()[(obj["apiVersion"], obj["kind"])]).validate(obj)


def test_health_snippet_carries_exactly_the_tested_scripts() -> None:
    config = yaml.safe_load((ARGOCD / "argocd-cm-health.yaml").read_text())
    assert config["kind"] == "ConfigMap"
    assert config["metadata"]["name"] == "argocd-cm"
    expected = {
        f"resource.customizations.health.tenantdb.io_{kind}": path.read_text()
        for kind, path in SCRIPTS.items()
    }
    assert config["data"] == expected


def test_a_health_check_exists_for_every_kind_we_serve() -> None:
    served = {
        kind for api_version, kind in custom_resource_schemas() if api_version.startswith("tenantdb.io/")
    }
    assert served == set(SCRIPTS)


def _applications() -> dict[str, dict[str, Any]]:
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(ARGOCD.glob("application-*.yaml"))}


def test_applications_point_at_what_exists(overlay: Callable[[str], Rendered]) -> None:
    apps = _applications()
    assert set(apps) == {"application-helm.yaml", "application-kustomize.yaml"}
    for name, app in apps.items():
        assert app["apiVersion"] == "argoproj.io/v1alpha1", name
        assert app["kind"] == "Application", name
        source = app["spec"]["source"]
        assert (ROOT / source["path"]).is_dir(), f"{name}: {source['path']} does not exist"
        assert app["spec"]["destination"]["namespace"] == "tenantdb-system"
        assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    assert (
        ROOT / apps["application-kustomize.yaml"]["spec"]["source"]["path"] / "kustomization.yaml"
    ).exists()


def test_helm_application_values_pass_the_chart_schema(chart: helm.Chart) -> None:
    source = _applications()["application-helm.yaml"]["spec"]["source"]
    assert source["path"] == "charts/tenantdb"
    chart.validate_schema(source["helm"]["valuesObject"])
    chart.render(
        source["helm"]["valuesObject"], name=source["helm"]["releaseName"], namespace="tenantdb-system"
    )


def _organization(status: dict[str, Any] | None, *, cordoned: bool = False) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "tenantdb.io/v1alpha1",
        "kind": "NeonOrganization",
        "metadata": {"name": "org-a", "generation": 1},
        "spec": {
            "organizationId": "org-a",
            "apiKeySecretRef": {"name": "neon-org-a", "namespace": "tenantdb"},
            "cordoned": cordoned,
        },
    }
    if status is not None:
        obj["status"] = status
    return obj


@pytest.mark.parametrize(
    ("status", "cordoned", "expected", "fragment"),
    [
        (None, False, "Progressing", "check its API key"),
        ({"conditions": [condition("Ready", "False", "KeyRejected", "Neon rejected the key")]},
         False, "Degraded", "rejected"),
        ({"projects": 3, "room": 7, "conditions": [condition("Ready", "True", "KeyWorks", "")]},
         False, "Healthy", "room for 7"),
        ({"projects": 3, "conditions": [condition("Ready", "True", "KeyWorks", "")]},
         True, "Healthy", "cordoned"),
    ],
    ids=["unchecked", "key revoked", "room left", "cordoned"],
)  # fmt: skip
def test_organization_health(
    status: dict[str, Any] | None, cordoned: bool, expected: str, fragment: str
) -> None:
    obj = _organization(status, cordoned=cordoned)
    _valid_against_crd(obj)
    got, message = health(SCRIPTS["NeonOrganization"], obj)
    assert got == expected, message
    assert fragment in message
