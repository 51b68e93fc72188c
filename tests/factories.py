"""What tests build again and again, written once.

- Manifests as ``kubectl apply`` sends them: ``global_database``, ``workspace_database``,
  ``database_budget``; ``owner_of`` a stored object (its ``OwnerReference``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantdb.kube import OwnerReference

API_VERSION = "tenantdb.io/v1alpha1"

Object = dict[str, Any]


# --- manifests --------------------------------------------------------------------------------------
def manifest(kind: str, name: str, spec: Mapping[str, Any], *, namespace: str = "default") -> Object:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": dict(spec),
    }


def global_database(name: str, user_id: str, *, namespace: str = "default", **spec: Any) -> Object:
    return manifest("GlobalDatabase", name, {"userId": user_id, **spec}, namespace=namespace)


def workspace_database(
    name: str, user_id: str, workspace_id: str, *, namespace: str = "default", **spec: Any
) -> Object:
    return manifest(
        "WorkspaceDatabase",
        name,
        {"userId": user_id, "workspaceId": workspace_id, **spec},
        namespace=namespace,
    )


def database_budget(name: str, user_id: str, *, namespace: str = "default", **spec: Any) -> Object:
    """A free-tier budget unless ``tier`` says otherwise."""
    return manifest("DatabaseBudget", name, {"userId": user_id, "tier": "free", **spec}, namespace=namespace)


def owner_of(obj: Mapping[str, Any]) -> OwnerReference:
    """The owner reference to an object the API server returned (it has a uid)."""
    return OwnerReference(
        api_version=obj["apiVersion"],
        kind=obj["kind"],
        name=obj["metadata"]["name"],
        uid=obj["metadata"]["uid"],
    )
