"""The interfaces the reconcilers need from the outside world (structural Protocols)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from tenantdb.api import Tenant
from tenantdb.api.databases import DatabaseStatus
from tenantdb.reconcile.reasons import Reason
from tenantdb.store.decisions import DecisionRow

__all__ = ["Clock", "Events", "Metadata", "NeonLike", "SecretWriter", "StatusWriter"]


class Events(Protocol):
    """Kubernetes Events on the resource being reconciled."""

    def normal(self, reason: Reason, message: str) -> None: ...
    def warning(self, reason: Reason, message: str) -> None: ...


class StatusWriter(Protocol):
    """Merge-patches the database's status with the fields set on ``status`` (``to_patch``)."""

    async def __call__(self, status: DatabaseStatus) -> None: ...


class SecretWriter(Protocol):
    async def read_secret(self, *, namespace: str, name: str) -> dict[str, str] | None: ...
    async def read_secret_state(self, *, namespace: str, name: str, owner_uid: str) -> Any: ...
    async def write_secret(
        self, *, namespace: str, name: str, data: Mapping[str, str], labels: Mapping[str, str], owner: Any
    ) -> None: ...


class Clock(Protocol):
    def __call__(self) -> datetime.datetime: ...


class NeonLike(Protocol):
    async def create_project(
        self,
        *,
        name: str,
        region_id: str,
        pg_version: int,
        database_name: str,
        role_name: str | None,
        autoscaling_min_cu: float,
        autoscaling_max_cu: float,
        suspend_timeout_seconds: int,
        history_retention_seconds: int | None = None,
        quotas: Mapping[str, int] | None = None,
    ) -> Any: ...
    async def find_projects(self, *, search: str, recoverable: bool = False) -> list[Any]: ...
    async def recover_project(self, project_id: str) -> Any: ...
    async def get_project(self, project_id: str) -> Any: ...
    async def delete_project(self, project_id: str) -> bool: ...
    async def update_project_settings(
        self,
        project_id: str,
        *,
        history_retention_seconds: int | None = None,
        quotas: Mapping[str, int] | None = None,
    ) -> None: ...
    async def list_endpoints(self, project_id: str) -> list[Any]: ...
    async def update_endpoint(
        self,
        project_id: str,
        endpoint_id: str,
        *,
        autoscaling_min_cu: float | None = None,
        autoscaling_max_cu: float | None = None,
        suspend_timeout_seconds: int | None = None,
        disabled: bool | None = None,
    ) -> list[Any]: ...
    async def wait_for_operations(
        self, project_id: str, operations: Sequence[Any], *, timeout: float = 300.0
    ) -> None: ...
    async def get_connection_uri(
        self, project_id: str, *, database_name: str, role_name: str, pooled: bool = False
    ) -> str: ...
    def serialised(self, project_id: str) -> AbstractAsyncContextManager[None]: ...
    # Adopting an existing project, and rotating its role's password.
    async def rename_project(self, project_id: str, name: str) -> Any: ...
    async def list_branches(self, project_id: str) -> list[Any]: ...
    async def list_roles(self, project_id: str, branch_id: str) -> list[Any]: ...
    async def list_databases(self, project_id: str, branch_id: str) -> list[Any]: ...
    async def reveal_password(self, project_id: str, branch_id: str, role_name: str) -> Any: ...
    async def reset_password(self, project_id: str, branch_id: str, role_name: str) -> Any: ...


class Metadata(Protocol):
    async def upsert_database(
        self, tenant: Tenant, *, project_id: str, branch_id: str, encrypted_uri: str, database_name: str
    ) -> None: ...
    async def get_database(self, tenant: Tenant) -> Any: ...
    async def delete_database(self, tenant: Tenant) -> bool: ...
    async def delete_database_of_project(self, tenant: Tenant, *, project_id: str) -> bool: ...
    async def set_env_var(self, tenant: Tenant, *, key: str, value: str) -> None: ...
    async def remove_env_var(self, tenant: Tenant, *, key: str) -> bool: ...
    async def get_env_var(self, tenant: Tenant, *, key: str) -> str | None: ...
    async def claim_tenant(self, *, kind: str, tenant_id: str, claimant: Any) -> Any: ...
    async def record_claim_project(
        self, *, kind: str, tenant_id: str, holder_uid: str, project_id: str
    ) -> bool: ...
    async def release_tenant_claim(self, *, kind: str, tenant_id: str, holder_uid: str) -> bool: ...
    async def project_holder(self, *, project_id: str) -> tuple[str, str, Any] | None: ...
    async def record_orphan(
        self,
        *,
        kind: str,
        namespace: str,
        name: str,
        project_id: str,
        reason: str,
        disposition: str = "orphaned",
        project_name: str | None = None,
    ) -> None: ...
    # The decision log (``reconcile.decisions.record_decision`` is the one way to write it).
    async def record_decision(self, row: DecisionRow) -> None: ...
