"""The interfaces the reconcilers need from the outside world (structural Protocols)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

__all__ = ["Clock", "Events", "Metadata", "NeonLike", "SecretWriter", "StatusWriter"]


class Events(Protocol):
    """Kubernetes Events on the resource being reconciled."""

    def normal(self, reason: str, message: str) -> None: ...
    def warning(self, reason: str, message: str) -> None: ...


class StatusWriter(Protocol):
    async def __call__(self, status: Mapping[str, Any]) -> None: ...


class SecretWriter(Protocol):
    async def read_secret(self, *, namespace: str, name: str) -> dict[str, str] | None: ...
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
    ) -> Any: ...
    async def find_projects(self, *, search: str, recoverable: bool = False) -> list[Any]: ...
    async def recover_project(self, project_id: str) -> Any: ...
    async def get_project(self, project_id: str) -> Any: ...
    async def delete_project(self, project_id: str) -> bool: ...
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


class Metadata(Protocol):
    async def upsert_global_database(
        self, *, user_id: str, project_id: str, branch_id: str, encrypted_uri: str, database_name: str
    ) -> None: ...
    async def upsert_workspace_database(
        self, *, workspace_id: str, project_id: str, branch_id: str, encrypted_uri: str, database_name: str
    ) -> None: ...
    async def get_global_database(self, *, user_id: str) -> Any: ...
    async def get_workspace_database(self, *, workspace_id: str) -> Any: ...
    async def delete_global_database(self, *, user_id: str) -> bool: ...
    async def delete_workspace_database(self, *, workspace_id: str) -> bool: ...
    async def set_user_env_var(self, *, user_id: str, key: str, value: str) -> None: ...
    async def remove_user_env_var(self, *, user_id: str, key: str) -> bool: ...
    async def get_user_env_var(self, *, user_id: str, key: str) -> str | None: ...
    async def set_workspace_env_var(self, *, workspace_id: str, key: str, value: str) -> None: ...
    async def remove_workspace_env_var(self, *, workspace_id: str, key: str) -> bool: ...
    async def get_workspace_env_var(self, *, workspace_id: str, key: str) -> str | None: ...
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
