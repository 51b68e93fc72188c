"""Neon answers as the spec describes them (the contract tests check them against the spec)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

PASSWORD = "Pw/with@odd:chars%and-secret"  # needs percent-encoding in a URI
NOW = "2026-11-20T10:00:00Z"
PROJECT_ID = "tenantdb-proj-123456"
BRANCH_ID = "br-quiet-sea-123456"
ENDPOINT_ID = "ep-calm-hill-123456"
OP_TIMELINE = "a07f8772-1877-4da9-a939-3a3ae62d1d8d"
OP_COMPUTE = "9ffda74b-a582-4cff-b0f0-aaa8d14b8e6a"


def project(project_id: str = PROJECT_ID, name: str = "tenantdb-ws-abc", **extra: Any) -> dict[str, Any]:
    """A ``Project`` (also a valid ``ProjectListItem``: it has every field both require)."""
    return {
        "id": project_id,
        "platform_id": "aws",
        "region_id": "aws-us-east-2",
        "name": name,
        "provisioner": "k8s-neonvm",
        "pg_version": 17,
        "proxy_host": "us-east-2.aws.neon.tech",
        "branch_logical_size_limit": 0,
        "branch_logical_size_limit_bytes": 10800,
        "store_passwords": True,
        "active_time": 0,
        "cpu_used_sec": 0,
        "creation_source": "console",
        "created_at": NOW,
        "updated_at": NOW,
        "owner_id": "org-test-1",
        "org_id": "org-test-1",
        "history_retention_seconds": 86400,
        "consumption_period_start": NOW,
        "consumption_period_end": NOW,
        "active_time_seconds": 0,
        "compute_time_seconds": 0,
        "written_data_bytes": 0,
        "data_transfer_bytes": 0,
        "data_storage_bytes_hour": 0,
        **extra,
    }


def projects_page(
    projects: list[dict[str, Any]], *, cursor: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A page of ``GET /projects`` (the spec requires the ``applications`` and ``integrations`` maps)."""
    page: dict[str, Any] = {"projects": projects, "applications": {}, "integrations": {}, **extra}
    if cursor:
        page["pagination"] = {"cursor": cursor}
    return page


def endpoint(endpoint_id: str = ENDPOINT_ID, *, disabled: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "host": f"{endpoint_id}.us-east-2.aws.neon.tech",
        "id": endpoint_id,
        "project_id": PROJECT_ID,
        "branch_id": BRANCH_ID,
        "autoscaling_limit_min_cu": 0.25,
        "autoscaling_limit_max_cu": 2,
        "region_id": "aws-us-east-2",
        "type": "read_write",
        "current_state": "idle",
        "settings": {"pg_settings": {}},
        "pooler_enabled": False,
        "pooler_mode": "transaction",
        "disabled": disabled,
        "passwordless_access": True,
        "creation_source": "console",
        "created_at": NOW,
        "updated_at": NOW,
        "proxy_host": "us-east-2.aws.neon.tech",
        "suspend_timeout_seconds": 300,
        "provisioner": "k8s-neonvm",
        **extra,
    }


def operation(
    operation_id: str = OP_TIMELINE, *, action: str = "create_timeline", status: str = "running", **extra: Any
) -> dict[str, Any]:
    return {
        "id": operation_id,
        "project_id": PROJECT_ID,
        "branch_id": BRANCH_ID,
        "action": action,
        "status": status,
        "failures_count": 0,
        "created_at": NOW,
        "updated_at": NOW,
        "total_duration_ms": 10,
        **extra,
    }


def connection(
    database: str = "appdb", role: str = "appdb_owner", password: str = PASSWORD
) -> dict[str, Any]:
    host = f"{ENDPOINT_ID}.us-east-2.aws.neon.tech"
    return {
        "connection_uri": f"postgresql://{quote(role, safe='')}:{quote(password, safe='')}@{host}/{database}"
        "?sslmode=require&channel_binding=require",
        "connection_parameters": {
            "database": database,
            "password": password,
            "role": role,
            "host": host,
            "pooler_host": f"{ENDPOINT_ID}-pooler.us-east-2.aws.neon.tech",
        },
    }


def created_project(name: str = "tenantdb-ws-abc", **connection_args: str) -> dict[str, Any]:
    """The 201 answer of ``POST /projects``."""
    role = connection_args.get("role", "appdb_owner")
    return {
        "project": project(name=name),
        "connection_uris": [connection(**connection_args)],
        "roles": [
            {
                "branch_id": BRANCH_ID,
                "name": role,
                "password": PASSWORD,
                "protected": False,
                "created_at": NOW,
                "updated_at": NOW,
            }
        ],
        "databases": [
            {
                "id": 1,
                "branch_id": BRANCH_ID,
                "name": connection_args.get("database", "appdb"),
                "owner_name": role,
                "created_at": NOW,
                "updated_at": NOW,
            }
        ],
        "operations": [
            operation(OP_TIMELINE),
            operation(OP_COMPUTE, action="start_compute", status="scheduling", endpoint_id=ENDPOINT_ID),
        ],
        "branch": {
            "id": BRANCH_ID,
            "project_id": PROJECT_ID,
            "name": "main",
            "current_state": "init",
            "state_changed_at": NOW,
            "creation_source": "console",
            "created_at": NOW,
            "updated_at": NOW,
            "default": True,
            "protected": False,
            "cpu_used_sec": 0,
            "active_time_seconds": 0,
            "compute_time_seconds": 0,
            "written_data_bytes": 0,
            "data_transfer_bytes": 0,
        },
        "endpoints": [endpoint()],
    }


def consumption(*project_ids: str, compute: int = 3600, cursor: str | None = None) -> dict[str, Any]:
    """The answer of ``GET /consumption_history/v2/projects``: two daily timeframes per project."""
    body: dict[str, Any] = {
        "projects": [
            {
                "project_id": project_id,
                "periods": [
                    {
                        "period_id": "79ec829f-1828-4006-ac82-9f1828a0067d",
                        "period_plan": "launch",
                        "period_start": "2026-11-01T00:00:00Z",
                        "consumption": [
                            {
                                "timeframe_start": f"2026-11-0{day}T00:00:00Z",
                                "timeframe_end": f"2026-11-0{day + 1}T00:00:00Z",
                                "metrics": [
                                    {"metric_name": "compute_unit_seconds", "value": compute},
                                    {"metric_name": "root_branch_bytes_month", "value": 1000},
                                ],
                            }
                            for day in (1, 2)
                        ],
                    }
                ],
            }
            for project_id in project_ids
        ],
    }
    if cursor:
        body["pagination"] = {"cursor": cursor}
    return body
