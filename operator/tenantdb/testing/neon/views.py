"""Records -> JSON bodies, field for field as the spec's schemas require.

Logical names (``neondb``, ``neondb_owner``) appear in ``roles``, ``databases`` and
``owner_name``; physical names only where a client connects: ``connection_uris``.
"""

from __future__ import annotations

import datetime
from typing import Any

from tenantdb.testing.neon.clock import billing_period, timestamp
from tenantdb.testing.neon.model import Branch, Database, Endpoint, Operation, Project, Role
from tenantdb.testing.neon.uris import ServerAddress

__all__ = [
    "branch_view",
    "connection_details",
    "database_view",
    "endpoint_view",
    "operation_view",
    "project_list_item",
    "project_view",
    "role_view",
]

_OWNER_ID = "emulator-user"
_PROVISIONER = "k8s-neonvm"
_CREATION_SOURCE = "console"
_RECOVERY_WINDOW = datetime.timedelta(days=7)


def _platform(region_id: str) -> str:
    return region_id.split("-", 1)[0]


def _common_project_fields(project: Project, address: ServerAddress) -> dict[str, Any]:
    return {
        "id": project.id,
        "platform_id": _platform(project.region_id),
        "region_id": project.region_id,
        "name": project.name,
        "provisioner": _PROVISIONER,
        "default_endpoint_settings": dict(project.default_endpoint_settings),
        "settings": dict(project.settings),
        "pg_version": project.pg_version,
        "proxy_host": address.host,
        "branch_logical_size_limit": 0,
        "branch_logical_size_limit_bytes": 0,
        "store_passwords": project.store_passwords,
        "cpu_used_sec": project.usage.get("compute_unit_seconds", 0),
        "creation_source": _CREATION_SOURCE,
        "history_retention_seconds": project.history_retention_seconds,
        "created_at": timestamp(project.created_at),
        "updated_at": timestamp(project.updated_at),
        "owner_id": _OWNER_ID,
        "org_id": project.org_id,
    }


def project_view(project: Project, address: ServerAddress, now: datetime.datetime) -> dict[str, Any]:
    """The spec's ``Project`` (GET/DELETE/PATCH /projects/{id}, POST /projects)."""
    start, end = billing_period(now)
    usage = project.usage
    return {
        **_common_project_fields(project, address),
        # The legacy per-project counters, fed from the v2 metrics set with ``set_usage``.
        "active_time_seconds": usage.get("compute_unit_seconds", 0),
        "compute_time_seconds": usage.get("compute_unit_seconds", 0),
        "written_data_bytes": 0,
        "data_transfer_bytes": usage.get("public_network_transfer_bytes", 0),
        "data_storage_bytes_hour": 0,
        "synthetic_storage_size": usage.get("root_branch_bytes_month", 0),
        "consumption_period_start": timestamp(start),
        "consumption_period_end": timestamp(end),
    }


def project_list_item(
    project: Project, address: ServerAddress, recovery_window: datetime.timedelta = _RECOVERY_WINDOW
) -> dict[str, Any]:
    """The spec's ``ProjectListItem`` (GET /projects), with deletion dates when deleted."""
    item = {
        **_common_project_fields(project, address),
        "active_time": project.usage.get("compute_unit_seconds", 0),
    }
    if project.deleted_at is not None:
        item["deleted_at"] = timestamp(project.deleted_at)
        item["recoverable_until"] = timestamp(project.deleted_at + recovery_window)
    return item


def branch_view(project: Project) -> dict[str, Any]:
    branch: Branch = project.branch
    usage = project.usage
    return {
        "id": branch.id,
        "project_id": project.id,
        "name": branch.name,
        "current_state": "ready",
        "state_changed_at": timestamp(branch.created_at),
        "logical_size": 0,
        "creation_source": _CREATION_SOURCE,
        "primary": True,
        "default": True,
        "protected": False,
        "cpu_used_sec": usage.get("compute_unit_seconds", 0),
        "compute_time_seconds": usage.get("compute_unit_seconds", 0),
        "active_time_seconds": usage.get("compute_unit_seconds", 0),
        "written_data_bytes": 0,
        "data_transfer_bytes": usage.get("public_network_transfer_bytes", 0),
        "created_at": timestamp(branch.created_at),
        "updated_at": timestamp(branch.created_at),
    }


def endpoint_view(project: Project, address: ServerAddress) -> dict[str, Any]:
    endpoint: Endpoint = project.endpoint
    view: dict[str, Any] = {
        "host": address.host,
        "id": endpoint.id,
        "project_id": project.id,
        "branch_id": project.branch.id,
        "autoscaling_limit_min_cu": endpoint.min_cu,
        "autoscaling_limit_max_cu": endpoint.max_cu,
        "region_id": project.region_id,
        "type": "read_write",
        "current_state": endpoint.current_state,
        "settings": {"pg_settings": {}},
        "pooler_enabled": False,
        "pooler_mode": "transaction",
        "disabled": endpoint.disabled,
        "passwordless_access": False,
        "creation_source": _CREATION_SOURCE,
        "created_at": timestamp(endpoint.created_at),
        "updated_at": timestamp(endpoint.updated_at),
        "proxy_host": address.host,
        "suspend_timeout_seconds": endpoint.suspend_timeout_seconds,
        "provisioner": _PROVISIONER,
    }
    if endpoint.suspended_at is not None:
        view["suspended_at"] = timestamp(endpoint.suspended_at)
    return view


def role_view(project: Project, *, with_password: bool) -> dict[str, Any]:
    role: Role = project.role
    view: dict[str, Any] = {
        "branch_id": project.branch.id,
        "name": role.name,
        "protected": False,
        "authentication_method": "password",
        "created_at": timestamp(role.created_at),
        "updated_at": timestamp(role.updated_at or role.created_at),
    }
    if with_password:
        view["password"] = role.password
    return view


def database_view(project: Project) -> dict[str, Any]:
    database: Database = project.database
    return {
        "id": database.id,
        "branch_id": project.branch.id,
        "name": database.name,
        "owner_name": project.role.name,
        "created_at": timestamp(database.created_at),
        "updated_at": timestamp(database.created_at),
    }


def operation_view(operation: Operation, now: datetime.datetime) -> dict[str, Any]:
    ended = min(now, operation.finishes_at)
    view: dict[str, Any] = {
        "id": operation.id,
        "project_id": operation.project_id,
        "branch_id": operation.branch_id,
        "action": operation.action,
        "status": operation.status(now),
        "failures_count": 1 if operation.failed else 0,
        "created_at": timestamp(operation.created_at),
        "updated_at": timestamp(ended),
        "total_duration_ms": max(0, int((ended - operation.created_at).total_seconds() * 1000)),
    }
    if operation.endpoint_id is not None:
        view["endpoint_id"] = operation.endpoint_id
    if operation.failed:
        view["error"] = "the operation could not be applied"
    return view


def connection_details(project: Project, address: ServerAddress) -> dict[str, Any]:
    """One ``connection_uris`` entry: physical names, so the URI really connects."""
    role, database = project.role, project.database
    return {
        "connection_uri": address.uri(user=role.physical, password=role.password, database=database.physical),
        "connection_parameters": {
            "database": database.physical,
            "password": role.password,
            "role": role.physical,
            "host": address.host,
            "pooler_host": address.pooler_host,
        },
    }
