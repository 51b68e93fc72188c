"""Rendering the chart and the overlays, and validating what they produce.

The chart is rendered by Helm's own engine (helm-python-sdk binds Helm v4's Go SDK; no
cluster, no network). Built-in kinds are validated against the Kubernetes OpenAPI schemas
(kubernetes-validate, strict: unknown fields fail); custom resources against the CRDs the
repository ships; the few kinds whose CRDs live elsewhere get a structural check only.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, latest_version

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "tenantdb"
CRDS = ROOT / "crds"
MANIFESTS = ROOT / "manifests"
OVERLAYS = {
    "base": MANIFESTS / "base",
    "production": MANIFESTS / "overlays" / "production",
    "emulator": MANIFESTS / "overlays" / "emulator",
}
RELEASE = "tenantdb"
NAMESPACE = "tenantdb-system"

# Kinds whose CRDs are not ours: checked structurally (see validate_object).
EXTERNAL_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("argoproj.io/v1alpha1", "Application"),
}

Object = dict[str, Any]


def load_documents(text: str) -> list[Object]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def values_sets() -> dict[str, dict[str, Any]]:
    """The default values plus every ci/*-values.yaml of the chart (chart-testing's convention)."""
    sets: dict[str, dict[str, Any]] = {"default": {}}
    for path in sorted((CHART / "ci").glob("*-values.yaml")):
        sets[path.name.removesuffix("-values.yaml")] = yaml.safe_load(path.read_text()) or {}
    return sets


@dataclass(frozen=True)
class Rendered:
    """The objects of one rendering, with the lookups the tests need."""

    objects: list[Object]
    notes: str = ""

    def kinds(self, *kinds: str) -> list[Object]:
        return [obj for obj in self.objects if obj["kind"] in kinds]

    def one(self, kind: str, name: str | None = None) -> Object:
        found = [obj for obj in self.kinds(kind) if name is None or obj["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def pod_templates(self) -> Iterator[tuple[Object, Object]]:
        """(workload, pod spec) for every Deployment, StatefulSet, DaemonSet and Job."""
        for obj in self.kinds("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield obj, obj["spec"]["template"]["spec"]


def render_chart(chart: helm.Chart, values: dict[str, Any], *, namespace: str = NAMESPACE) -> Rendered:
    """Render templates (Helm's engine, values checked against values.schema.json) plus crds/."""
    manifests = chart.render(values, name=RELEASE, namespace=namespace, is_install=True)
    objects: list[Object] = []
    notes = ""
    for path in sorted(manifests):
        if path.endswith("NOTES.txt"):
            notes = manifests[path]
        else:
            objects.extend(load_documents(manifests[path]))
    for crd in chart.crds:
        objects.extend(load_documents(crd["data"]))
    return Rendered(objects=objects, notes=notes)


def kubectl() -> str | None:
    return shutil.which("kubectl")


@functools.cache
def kustomize(path: Path) -> Rendered:
    binary = kubectl()
    assert binary is not None
    result = subprocess.run(
        [binary, "kustomize", str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return Rendered(objects=load_documents(result.stdout))


# --- validation ------------------------------------------------------------------------------


def minimum_kube_version() -> str:
    """The oldest Kubernetes the chart claims (Chart.yaml kubeVersion), as "1.27"."""
    constraint = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    match = re.search(r">=\s*v?(\d+\.\d+)", constraint)
    assert match, constraint
    return match.group(1)


def kube_versions() -> tuple[str, ...]:
    latest = ".".join(latest_version().split(".")[:2])
    return (minimum_kube_version(), latest)


@functools.cache
def custom_resource_schemas() -> dict[tuple[str, str], Object]:
    """(apiVersion, kind) -> openAPIV3Schema, from every CRD the chart ships."""
    schemas: dict[tuple[str, str], Object] = {}
    for path in sorted((CHART / "crds").glob("*.yaml")):
        for crd in load_documents(path.read_text()):
            spec = crd["spec"]
            for version in spec["versions"]:
                api_version = f"{spec['group']}/{version['name']}"
                schemas[(api_version, spec["names"]["kind"])] = version["schema"]["openAPIV3Schema"]
    return schemas


def validate_object(obj: Object) -> None:
    """Fail unless ``obj`` is valid for its kind (strict schemas for built-in kinds)."""
    assert isinstance(obj.get("apiVersion"), str), obj
    assert isinstance(obj.get("kind"), str), obj
    assert obj.get("metadata", {}).get("name"), f"{obj['kind']} without a name"
    key = (obj["apiVersion"], obj["kind"])
    if key in custom_resource_schemas():
        jsonschema.Draft7Validator(custom_resource_schemas()[key]).validate(obj)
        return
    if key in EXTERNAL_KINDS:
        assert isinstance(obj.get("spec"), dict), f"{key} without a spec"
        return
    for version in kube_versions():
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except SchemaNotFoundError as exc:  # pragma: no cover - a failure path
            raise AssertionError(f"no Kubernetes {version} schema for {key}: {exc.message}") from exc


def validate_all(objects: Iterable[Object]) -> None:
    for obj in objects:
        try:
            validate_object(obj)
        except jsonschema.ValidationError as exc:
            where = ".".join(str(part) for part in exc.absolute_path)
            raise AssertionError(
                f"{obj['kind']}/{obj['metadata'].get('name')}: {where}: {exc.message}"
            ) from None


# --- small lookups -----------------------------------------------------------------------------


def containers(pod_spec: Object) -> list[Object]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def env_of(container: Object) -> dict[str, Object]:
    return {item["name"]: item for item in container.get("env", [])}


def operator_container(deployment: Object) -> Object:
    (container,) = [
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "operator"
    ]
    return container


def operator_deployments(rendered: Rendered) -> list[Object]:
    return [
        obj
        for obj in rendered.kinds("Deployment")
        if obj["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == "operator"
    ]


def rbac_rules(rendered: Rendered) -> dict[tuple[str, str, str | None], list[Object]]:
    """(kind, name, namespace) -> rules of every Role and ClusterRole."""
    return {
        (obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace")): obj["rules"]
        for obj in rendered.kinds("Role", "ClusterRole")
    }


def flatten_rules(rules: Iterable[Object]) -> set[tuple[str, str, str]]:
    """Rules as a set of (apiGroup, resource, verb): order and grouping do not matter."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }
