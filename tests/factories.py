"""What tests build again and again, written once: manifests, the reconcile's inputs, stubs.

- Manifests as ``kubectl apply`` sends them: ``global_database``, ``workspace_database``,
  ``database_budget``, ``database_tier``; ``owner_of`` a stored object (its ``OwnerReference``).
- The database reconcile's inputs: ``database_object`` (a decoded GlobalDatabase),
  ``database_deps`` (stand-ins for the metadata DB and the Secrets: ``Claims``, ``NoSecret``),
  ``RecordedEvents`` (the Events sink) and ``StatusWrites`` (the status writer), both recording.
- The budget sync's ports: ``Store`` (the metadata DB's rows), ``Endpoints`` (Neon's endpoints),
  ``RecordingKube`` (budget status patches); ``add_user`` registers a user with one database.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Collection, Mapping
from types import SimpleNamespace
from typing import Any

from tenantdb.api import Scope, Tenant
from tenantdb.api.databases import DatabaseStatus, GlobalDatabaseSpec
from tenantdb.config import Settings, Tier
from tenantdb.crypto import EncryptionKey
from tenantdb.kube import OwnerReference
from tenantdb.reconcile.budget_sync import BudgetSync
from tenantdb.reconcile.database import DatabaseDeps, DatabaseObject
from tenantdb.reconcile.enforcement import BudgetRecord, DatabaseRecord
from tenantdb.reconcile.naming import DatabaseIdentity

API_VERSION = "tenantdb.io/v1alpha1"
KEY = "ab" * 32  # the encryption key of the reconcile's deps

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


def database_tier(name: str, **spec: Any) -> Object:
    """A DatabaseTier (cluster-scoped: no namespace)."""
    return {"apiVersion": API_VERSION, "kind": "DatabaseTier", "metadata": {"name": name}, "spec": dict(spec)}


def owner_of(obj: Mapping[str, Any]) -> OwnerReference:
    """The owner reference to an object the API server returned (it has a uid)."""
    return OwnerReference(
        api_version=obj["apiVersion"],
        kind=obj["kind"],
        name=obj["metadata"]["name"],
        uid=obj["metadata"]["uid"],
    )


# --- the database reconcile -------------------------------------------------------------------------
def database_object(name: str = "g", *, uid: str, user_id: str, generation: int = 1) -> DatabaseObject:
    """A GlobalDatabase in ``default`` as the handlers decode it, with no status yet."""
    identity = DatabaseIdentity(
        kind="GlobalDatabase",
        namespace="default",
        name=name,
        uid=uid,
        user_id=user_id,
        tenant=Tenant(Scope.GLOBAL, user_id),
    )
    return DatabaseObject(
        identity=identity,
        generation=generation,
        spec=GlobalDatabaseSpec.model_validate({"userId": user_id}),
        status=DatabaseStatus(),
        owner=OwnerReference(api_version=API_VERSION, kind="GlobalDatabase", name=name, uid=uid),
    )


class Claims:
    """The metadata DB: every tenant claim is granted to whoever asks; no tenant has a row yet."""

    async def claim_tenant(self, *, kind: str, tenant_id: str, claimant: Any) -> Any:
        return claimant

    async def get_database(self, tenant: Any) -> None:
        return None


class NoSecret:
    """The API server's Secrets: none exists yet."""

    async def read_secret_state(self, *, namespace: str, name: str, owner_uid: str) -> None:
        return None


def database_deps(neon: Any = None, **parts: Any) -> DatabaseDeps:
    """A reconcile's deps: ``neon`` (``object()`` when the test never reaches Neon), no Secret,
    every claim granted, the key ``KEY``; ``parts`` replace any of them or add the rest."""
    defaults: dict[str, Any] = {
        "neon": object() if neon is None else neon,
        "secrets": NoSecret(),
        "metadata": Claims(),
        "cipher": EncryptionKey(KEY),
        "settings": Settings(encryption_key=KEY, neon_api_key="k", metadata_database_url="postgresql://x"),
    }
    return DatabaseDeps(**(defaults | parts))


class RecordedEvents:
    """The Events a reconcile posts, recorded as (type, reason, message)."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str]] = []

    def normal(self, reason: str, message: str) -> None:
        self.posted.append(("Normal", reason, message))

    def warning(self, reason: str, message: str) -> None:
        self.posted.append(("Warning", reason, message))

    @property
    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.posted]


class StatusWrites:
    """A status writer that records every write: the status, and its patch as it was then.

    With ``error``, the writes numbered in ``failing`` (1 is the first; every write when
    ``failing`` is not given) raise it after being recorded."""

    def __init__(self, error: Exception | None = None, *, failing: Collection[int] | None = None) -> None:
        self.statuses: list[DatabaseStatus] = []
        self.patches: list[dict[str, Any]] = []
        self._error = error
        self._failing = failing

    async def __call__(self, status: DatabaseStatus) -> None:
        self.statuses.append(status)
        self.patches.append(status.to_patch())
        if self._error is not None and (self._failing is None or len(self.statuses) in self._failing):
            raise self._error


# --- the budget sync's ports ------------------------------------------------------------------------
class Store:
    """The metadata DB's cost and budget rows: written nowhere."""

    async def set_database_costs(self, costs: Mapping[str, int], *, synced_at: datetime.datetime) -> int:
        return len(costs)

    async def update_budget_usage(self, **_: Any) -> None:
        return None


class Endpoints:
    """One read-write endpoint per project (``ep-<project>``); ``disabled`` as last switched."""

    def __init__(self) -> None:
        self.disabled: dict[str, bool] = {}

    async def list_endpoints(self, project_id: str) -> list[Any]:
        return [
            SimpleNamespace(id=f"ep-{project_id}", type="read_write", disabled=self.disabled.get(project_id))
        ]

    async def update_endpoint(self, project_id: str, endpoint_id: str, **changes: Any) -> list[Any]:
        self.disabled[project_id] = bool(changes.get("disabled"))
        return []

    async def wait_for_operations(self, project_id: str, operations: Any, *, timeout: float = 300.0) -> None:
        return None

    def serialised(self, project_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()


class RecordingKube:
    """The API server: the last DatabaseBudget status patch (``budget_status``)."""

    def __init__(self) -> None:
        self.budget_status: Mapping[str, Any] = {}

    async def patch_status(
        self, *, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        if plural == "databasebudgets":
            self.budget_status = status


def add_user(sync: BudgetSync, user: str, *, cost_cents: int) -> None:
    """A free-tier budget and one GlobalDatabase (project ``p-<user>``) costing ``cost_cents``."""
    sync.put_budget("default", f"budget-{user}", BudgetRecord(user_id=user, tier=Tier.FREE))
    sync.put_database(
        DatabaseRecord(
            kind="GlobalDatabase", namespace="default", name=f"db-{user}", user_id=user,
            project_id=f"p-{user}", endpoint_id=f"ep-{user}",
        )
    )  # fmt: skip
    sync.costs[f"p-{user}"] = cost_cents
