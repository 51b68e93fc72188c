"""Generate CustomResourceDefinitions from the pydantic models.

Pydantic's JSON Schema is turned into a Kubernetes *structural* schema: references inlined,
``anyOf [T, null]`` folded to ``T``, titles dropped, and the Kubernetes extensions
(``x-kubernetes-validations``, list types) kept as they were declared on the models.
"""

from __future__ import annotations

from typing import Any

import yaml

from tenantdb.api.kinds import CATEGORY, CLUSTER_KINDS, GROUP, KINDS, VERSION, Kind

__all__ = ["generate_crd", "generate_crds", "render_crd_yaml"]

_DROPPED_KEYS = {"title", "$defs"}


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        variants = [v for v in node["anyOf"] if v.get("type") != "null"]
        if len(variants) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            if rest.get("default", "absent") is None:
                rest.pop("default")
            return _structural({**variants[0], **rest}, defs)
    if "allOf" in node and len(node["allOf"]) == 1:
        rest = {k: v for k, v in node.items() if k != "allOf"}
        return _structural({**node["allOf"][0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "properties":
            out[key] = {name: _structural(prop, defs) for name, prop in value.items()}
        elif key == "default" and isinstance(value, dict):
            out[key] = value
        else:
            out[key] = _structural(value, defs)
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    _fractional_multiple_of_as_cel(out)
    return out


def _fractional_multiple_of_as_cel(node: dict[str, Any]) -> None:
    """``multipleOf: 0.25`` as a CEL rule: the API server checks a whole number (``maxCu: 1``)
    against ``multipleOf`` in integer arithmetic, turns 0.25 into 0 and refuses every whole
    value ("factor MultipleOf ... must be positive: 0"). CEL sees a ``number`` as a double."""
    factor = node.get("multipleOf")
    if node.get("type") != "number" or not isinstance(factor, float) or factor.is_integer():
        return
    steps = 1 / factor
    if not steps.is_integer():  # pragma: no cover - only quarter steps are declared today
        return
    node.pop("multipleOf")
    rule = f"self * {steps:.1f} == double(int(self * {steps:.1f}))"
    node.setdefault("x-kubernetes-validations", []).append(
        {"rule": rule, "message": f"must be a multiple of {factor:g}"}
    )


def _schema_of(model: type[Any]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    schema: dict[str, Any] = _structural(raw, defs)
    return schema


def generate_crd(kind: Kind) -> dict[str, Any]:
    spec_schema = _schema_of(kind.spec)
    status_schema = _schema_of(kind.status)
    status_schema["description"] = "Observed state, written by the operator."
    root: dict[str, Any] = {
        "type": "object",
        "description": kind.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    if kind.object_rules:
        root["x-kubernetes-validations"] = [dict(rule) for rule in kind.object_rules]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/name": "tenantdb", "app.kubernetes.io/part-of": "tenantdb"},
        },
        "spec": {
            "group": GROUP,
            "scope": kind.scope,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": [kind.short_name],
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [dict(column) for column in kind.printer_columns],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def generate_crds() -> list[dict[str, Any]]:
    return [generate_crd(kind) for kind in (*KINDS, *CLUSTER_KINDS)]


def render_crd_yaml(crd: dict[str, Any]) -> str:
    """One CRD as YAML, byte-stable so drift tests can compare files."""
    return "---\n" + yaml.safe_dump(crd, sort_keys=False, width=100, default_flow_style=False)
