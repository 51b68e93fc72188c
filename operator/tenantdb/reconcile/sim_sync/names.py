"""Deterministic names and the label of the resources the Sim sync makes."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Final

__all__ = [
    "MANAGED_BY_LABEL",
    "MANAGED_BY_VALUE",
    "is_ours",
    "resource_name",
    "shard_namespace",
    "valid_tenant_id",
]

MANAGED_BY_LABEL: Final = "tenantdb.io/managed-by"
MANAGED_BY_VALUE: Final = "sim-sync"
SIM_ID_ANNOTATION: Final = "tenantdb.io/sim-id"

# Sim's ids are UUID v4 text: lower-case hex and dashes, already a valid Kubernetes name.
_NAME_SAFE: Final = re.compile(r"^[a-z0-9]([a-z0-9-]{0,198}[a-z0-9])?$")
# What the CRDs accept in spec.userId / spec.workspaceId (tenantdb.api.common.ID_PATTERN, 128).
_TENANT_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


def resource_name(prefix: str, sim_id: str) -> str:
    """``<prefix>-<id>`` when the id is name-safe (Sim's UUIDs are), else a digest of it."""
    if _NAME_SAFE.fullmatch(sim_id):
        return f"{prefix}-{sim_id}"
    return f"{prefix}-{hashlib.sha256(sim_id.encode()).hexdigest()[:40]}"


def shard_namespace(user_id: str, namespaces: Sequence[str]) -> str:
    """Where a new tenant's resources go: a stable hash of its user id over the shard
    namespaces. sha256, not ``hash()``: the answer must be the same in every process, every
    shard and every release (``hash()`` is salted per process)."""
    if not namespaces:
        raise ValueError("no namespace to place tenants in")
    digest = hashlib.sha256(user_id.encode()).digest()
    return namespaces[int.from_bytes(digest[:8], "big") % len(namespaces)]


def valid_tenant_id(sim_id: str) -> bool:
    return bool(_TENANT_ID.fullmatch(sim_id))


def is_ours(obj: dict[str, object]) -> bool:
    metadata = obj.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    return isinstance(labels, dict) and labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE
