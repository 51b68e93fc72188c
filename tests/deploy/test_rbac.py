"""RBAC: exactly the grants kopf and the operator need, in each watch mode, never a wildcard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.deploy.support import NAMESPACE, Rendered, flatten_rules, rbac_rules

KINDS = ("globaldatabases", "workspacedatabases", "databasebudgets")


def grants(group: str, resources: tuple[str, ...] | list[str], verbs: str) -> set[tuple[str, str, str]]:
    return {(group, resource, verb) for resource in resources for verb in verbs.split()}


# The operator's own needs, wherever the objects live.
WORKLOAD = (
    grants("tenantdb.io", KINDS, "get list watch patch")
    | grants("tenantdb.io", [f"{kind}/status" for kind in KINDS], "get patch")
    | grants("", ["secrets"], "get create patch")
    | grants("", ["events"], "create patch")
    | grants("events.k8s.io", ["events"], "create patch")
)
# The tiers: cluster-scoped, so cluster-wide in every mode; read, and their status written.
TIERS = grants("tenantdb.io", ["databasetiers"], "get list watch") | grants(
    "tenantdb.io", ["databasetiers/status"], "get patch"
)
# kopf: discovering the served resources (always cluster-scoped); and the pool of Neon
# organisations, a cluster-scoped kind, read with its status written in every mode.
DISCOVERY = grants("apiextensions.k8s.io", ["customresourcedefinitions"], "list watch") | (
    grants("tenantdb.io", ["neonorganizations"], "get list watch")
    | grants("tenantdb.io", ["neonorganizations/status"], "get patch")
)
# kopf: resolving namespaces when it does not watch the whole cluster.
NAMESPACES = grants("", ["namespaces"], "list watch")
CLUSTER_PEERING = grants("kopf.dev", ["clusterkopfpeerings"], "get list watch patch")
NAMESPACED_PEERING = grants("kopf.dev", ["kopfpeerings"], "get list watch patch")

EXPECTED: dict[str, dict[tuple[str, str, str | None], set[tuple[str, str, str]]]] = {
    "default": {("ClusterRole", "tenantdb", None): DISCOVERY | TIERS | WORKLOAD},
    "peering": {("ClusterRole", "tenantdb", None): DISCOVERY | TIERS | WORKLOAD | CLUSTER_PEERING},
    "namespaced": {
        ("ClusterRole", "tenantdb", None): DISCOVERY | TIERS | NAMESPACES,
        ("Role", "tenantdb", "team-a"): WORKLOAD | NAMESPACED_PEERING,
        ("Role", "tenantdb", "team-b"): WORKLOAD | NAMESPACED_PEERING,
    },
    "patterns": {("ClusterRole", "tenantdb", None): DISCOVERY | TIERS | NAMESPACES | WORKLOAD},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_rbac_grants_exactly_what_is_needed(rendered_sets: Callable[[str], Rendered], name: str) -> None:
    rules = rbac_rules(rendered_sets(name))
    assert {key: flatten_rules(value) for key, value in rules.items()} == EXPECTED[name]


def test_namespaced_watch_grants_nothing_cluster_wide_beyond_discovery_and_tiers(
    render: Callable[..., Rendered],
) -> None:
    rendered = render({"watchNamespaces": ["only-here"]})
    cluster = rbac_rules(rendered)[("ClusterRole", "tenantdb", None)]
    assert flatten_rules(cluster) == DISCOVERY | TIERS | NAMESPACES
    assert flatten_rules(rbac_rules(rendered)[("Role", "tenantdb", "only-here")]) == WORKLOAD


def _no_wildcards(rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in rule.get(field, []), rule
        assert not rule.get("nonResourceURLs"), rule


def test_no_wildcards_anywhere(rendered: Rendered) -> None:
    for rules in rbac_rules(rendered).values():
        _no_wildcards(rules)


def test_no_wildcards_in_the_overlays(kustomized: Rendered) -> None:
    for rules in rbac_rules(kustomized).values():
        _no_wildcards(rules)


def test_bindings_tie_the_service_account_to_each_role(rendered: Rendered) -> None:
    roles = {(kind, name, namespace) for kind, name, namespace in rbac_rules(rendered)}
    bound = set()
    account = {o["metadata"]["name"] for o in rendered.kinds("ServiceAccount")}
    for binding in rendered.kinds("RoleBinding", "ClusterRoleBinding"):
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        bound.add((ref["kind"], ref["name"], namespace))
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": next(iter(account)), "namespace": NAMESPACE}
        ]
    assert bound == roles


def test_overlays_bind_the_account_in_their_own_namespace(kustomized: Rendered) -> None:
    (account,) = kustomized.kinds("ServiceAccount")
    for binding in kustomized.kinds("RoleBinding", "ClusterRoleBinding"):
        for subject in binding["subjects"]:
            assert subject == {
                "kind": "ServiceAccount",
                "name": account["metadata"]["name"],
                "namespace": account["metadata"]["namespace"],
            }


def test_the_overlays_grant_what_the_chart_grants(
    overlay: Callable[[str], Rendered], rendered_sets: Callable[[str], Rendered]
) -> None:
    chart = flatten_rules(rbac_rules(rendered_sets("default"))[("ClusterRole", "tenantdb", None)])
    for name in ("base", "production", "emulator"):
        (role,) = overlay(name).kinds("ClusterRole")
        assert flatten_rules(role["rules"]) == chart, name


def test_no_rbac_when_turned_off(render: Callable[..., Rendered]) -> None:
    rendered = render({"rbac": {"create": False}, "peering": {"enabled": True}})
    assert not rendered.kinds("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")


def test_the_platform_may_create_tenants_only_where_bound_and_editors_may_not(
    render: Callable[..., Rendered],
) -> None:
    rendered = render(
        {
            "watchNamespaces": ["platform"],
            "platformAccess": {"serviceAccount": {"name": "sim", "namespace": "platform"}},
        }
    )
    role = rendered.one("ClusterRole", "tenantdb-tenant-writer")
    # Never aggregated into the built-in edit/admin/view roles: a namespace editor could then
    # claim any user's or workspace's id (ids are global, RBAC is per namespace).
    labels = role["metadata"].get("labels") or {}
    assert not [k for k in labels if k.startswith("rbac.authorization.k8s.io/aggregate-to")]
    assert "aggregationRule" not in role
    assert flatten_rules(role["rules"]) == grants(
        "tenantdb.io", KINDS, "get list watch create update patch delete"
    )
    bindings = rendered.kinds("RoleBinding")
    ours = [b for b in bindings if b["roleRef"]["name"] == "tenantdb-tenant-writer"]
    assert [(b["metadata"]["namespace"], b["subjects"]) for b in ours] == [
        ("platform", [{"kind": "ServiceAccount", "name": "sim", "namespace": "platform"}])
    ]
    assert not [
        b for b in rendered.kinds("ClusterRoleBinding") if b["roleRef"]["name"] == "tenantdb-tenant-writer"
    ]


def test_no_chart_role_is_aggregated_into_the_built_in_roles(render: Callable[..., Rendered]) -> None:
    rendered = render({"platformAccess": {"serviceAccount": {"name": "sim"}}})
    for role in rendered.kinds("ClusterRole"):
        labels = role["metadata"].get("labels") or {}
        assert not [k for k in labels if k.startswith("rbac.authorization.k8s.io/aggregate-to")], role
