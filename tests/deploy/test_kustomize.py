"""The Kustomize base and overlays: they render, every object is valid, references resolve,
and the base stays the chart's default rendering in plain YAML."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.support import (
    MANIFESTS,
    Rendered,
    containers,
    env_of,
    load_documents,
    operator_container,
    validate_all,
)

OVERLAY_NAMESPACES = {
    "base": "tenantdb-system",
    "production": "tenantdb-system",
    "emulator": "tenantdb-emulator",
}


def test_every_object_is_valid(kustomized: Rendered) -> None:
    assert kustomized.objects
    validate_all(kustomized.objects)


@pytest.mark.parametrize("name", sorted(OVERLAY_NAMESPACES))
def test_everything_lives_in_the_overlays_namespace(overlay: Callable[[str], Rendered], name: str) -> None:
    rendered = overlay(name)
    namespace = OVERLAY_NAMESPACES[name]
    assert [o["metadata"]["name"] for o in rendered.kinds("Namespace")] == [namespace]
    for obj in rendered.objects:
        if obj["kind"] not in {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}:
            assert obj["metadata"]["namespace"] == namespace, (obj["kind"], obj["metadata"]["name"])
    labels = rendered.kinds("Namespace")[0]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def _secret_refs(rendered: Rendered) -> set[tuple[str, str]]:
    refs = set()
    for _, pod in rendered.pod_templates():
        for container in containers(pod):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    refs.add((ref["name"], ref["key"]))
    return refs


def test_base_and_production_reference_secrets_and_ship_none(overlay: Callable[[str], Rendered]) -> None:
    assert not overlay("base").kinds("Secret")
    production = overlay("production")
    assert not production.kinds("Secret")
    assert {name for name, _ in _secret_refs(production)} == {"tenantdb-production"}
    assert {key for _, key in _secret_refs(production)} == {
        "sim-encryption-key",
        "neon-api-key",
        "sim-database-url",
    }


def test_production_uses_its_image_and_resources(overlay: Callable[[str], Rendered]) -> None:
    deployment = overlay("production").one("Deployment", "tenantdb")
    container = operator_container(deployment)
    assert container["image"] == "registry.example.com/platform/tenantdb:0.1.0"
    assert container["resources"]["limits"]["memory"] == "1Gi"
    assert deployment["spec"]["template"]["spec"]["priorityClassName"] == "system-cluster-critical"
    policy = overlay("production").one("NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )


def test_emulator_overlay_is_self_contained(overlay: Callable[[str], Rendered]) -> None:
    rendered = overlay("emulator")
    secrets = {s["metadata"]["name"]: s for s in rendered.kinds("Secret")}
    for name, key in _secret_refs(rendered):
        assert name in secrets, f"no Secret {name}"
        assert key in secrets[name]["data"], f"Secret {name} has no key {key}"
    for secret in secrets.values():
        assert secret["metadata"]["annotations"]["tenantdb.io/demo-only"] == "true"

    services = {s["metadata"]["name"]: s for s in rendered.kinds("Service")}
    operator = operator_container(rendered.one("Deployment", "tenantdb"))
    api = urlsplit(env_of(operator)["TENANTDB_NEON_API_URL"]["value"])
    assert api.hostname in services
    assert api.port in [p["port"] for p in services[api.hostname]["spec"]["ports"]]
    assert api.path == "/api/v2"

    emulator = rendered.one("Deployment", "tenantdb-neon-emulator")
    container = emulator["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "tenantdb:0.1.0-emulator"
    assert "--host=0.0.0.0" in container["args"]
    postgres = urlsplit(
        next(a for a in container["args"] if a.startswith("--postgres-url=")).removeprefix("--postgres-url=")
    )
    assert postgres.hostname in services
    # The operator is given the one API key the emulator accepts.
    emulator_key = env_of(container)["NEON_API_KEY"]["valueFrom"]["secretKeyRef"]
    operator_key = env_of(operator)["NEON_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert (
        secrets[emulator_key["name"]]["data"][emulator_key["key"]]
        == secrets[operator_key["name"]]["data"][operator_key["key"]]
    )
    init = rendered.one("Deployment", "tenantdb")["spec"]["template"]["spec"]["initContainers"]
    assert [c["args"] for c in init] == [["migrate"]]


def _pod_essentials(deployment: dict[str, Any]) -> dict[str, Any]:
    """What must agree between the chart and the base: everything but names and labels."""
    spec = deployment["spec"]["template"]["spec"]
    container = operator_container(deployment)
    env = {name: item.get("value", item.get("valueFrom")) for name, item in env_of(container).items()}
    return {
        "strategy": deployment["spec"]["strategy"],
        "replicas": deployment["spec"]["replicas"],
        "podSecurityContext": spec["securityContext"],
        "automount": spec["automountServiceAccountToken"],
        "volumes": spec["volumes"],
        "args": container["args"],
        "ports": container["ports"],
        "env": env,
        "probes": [container[p] for p in ("startupProbe", "livenessProbe", "readinessProbe")],
        "securityContext": container["securityContext"],
        "resources": container["resources"],
        "mounts": container["volumeMounts"],
    }


def test_the_base_is_the_charts_default_deployment(
    overlay: Callable[[str], Rendered], rendered_sets: Callable[[str], Rendered]
) -> None:
    base = _pod_essentials(overlay("base").one("Deployment", "tenantdb"))
    chart = _pod_essentials(rendered_sets("default").one("Deployment", "tenantdb"))
    for key in chart:
        assert base[key] == chart[key], key


def test_samples_are_valid_custom_resources() -> None:
    samples = sorted((MANIFESTS / "samples").glob("*.yaml"))
    objects = [
        obj
        for path in samples
        if path.name != "kustomization.yaml"
        for obj in load_documents(path.read_text())
    ]
    if not objects:
        pytest.skip("manifests/samples/ has no samples yet")
    assert {obj["apiVersion"] for obj in objects} <= {"tenantdb.io/v1alpha1", "v1"}
    validate_all(objects)
