"""The body of ``POST /projects`` (and the settings ``PATCH`` shares), read and checked.

Defaults follow Neon: region = the first accepted one, ``pg_version`` 17, branch ``main``,
database ``neondb``, role ``{database_name}_owner``, autoscaling 0.25-2 CU, suspend
timeout 0 (Neon's default of 5 minutes), history retention 1 day.

``settings.quota`` is stored as given. Zero or absent quota values mean "unlimited" on
Neon, and the emulator never reads a zero as "paused".
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from tenantdb.testing.neon import ids
from tenantdb.testing.neon.callers import Caller, check_org
from tenantdb.testing.neon.errors import bad_request
from tenantdb.testing.neon.model import Branch, Database, Endpoint, Project, Role
from tenantdb.testing.neon.options import EmulatorOptions
from tenantdb.testing.neon.parsing import (
    optional_bool,
    optional_int,
    optional_number,
    optional_object,
    optional_str,
)

__all__ = [
    "CreateRequest",
    "build_project",
    "parse_create_request",
    "parse_endpoint_limits",
    "parse_settings",
]

QUOTA_FIELDS = (
    "active_time_seconds",
    "compute_time_seconds",
    "written_data_bytes",
    "data_transfer_bytes",
    "logical_size_bytes",
)
_DEFAULT_SETTINGS: dict[str, Any] = {
    "allowed_ips": {"ips": [], "protected_branches_only": False},
    "enable_logical_replication": False,
    "block_public_connections": False,
    "block_vpc_connections": False,
    "hipaa": False,
}
_DEFAULT_PG_VERSION = 17
_DEFAULT_MIN_CU, _DEFAULT_MAX_CU = 0.25, 2.0
_MAX_CU = 56.0
_MAX_SUSPEND_TIMEOUT = 604800
_MIN_SUSPEND_TIMEOUT = 60
_NAME_BYTES = 63  # Neon's limit on role and database names, PostgreSQL's on identifiers
_DEFAULT_HISTORY_RETENTION = 86400
_MAX_HISTORY_RETENTION = 2592000
_INT64_MAX = 2**63 - 1


@dataclasses.dataclass(frozen=True)
class EndpointLimits:
    min_cu: float | None
    max_cu: float | None
    suspend_timeout_seconds: int | None


@dataclasses.dataclass(frozen=True)
class CreateRequest:
    name: str | None
    org_id: str
    region_id: str
    pg_version: int
    branch_name: str
    database_name: str
    role_name: str
    min_cu: float
    max_cu: float
    suspend_timeout_seconds: int
    settings: dict[str, Any]
    history_retention_seconds: int
    store_passwords: bool


def parse_settings(project: dict[str, Any], *, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """``project.settings`` over ``base`` (the defaults when creating); quota values checked."""
    given = optional_object(project, "settings")
    settings = {**(base if base is not None else _DEFAULT_SETTINGS), **given}
    if "quota" in given:
        quota = optional_object(given, "quota")
        for field in quota:
            if field not in QUOTA_FIELDS:
                raise bad_request(f"settings.quota.{field}: unknown quota")
            optional_int(quota, field, minimum=0, maximum=_INT64_MAX)
        # PATCH changes the quotas it names and keeps the others.
        settings["quota"] = {**(base or {}).get("quota", {}), **quota}
    return settings


def parse_endpoint_limits(data: dict[str, Any], *, prefix: str) -> EndpointLimits:
    """Autoscaling limits and suspend timeout, as in ``default_endpoint_settings`` or ``endpoint``."""
    min_cu = optional_number(data, "autoscaling_limit_min_cu", minimum=0.25, maximum=_MAX_CU)
    max_cu = optional_number(data, "autoscaling_limit_max_cu", minimum=0.25, maximum=_MAX_CU)
    suspend = optional_int(data, "suspend_timeout_seconds", minimum=-1, maximum=_MAX_SUSPEND_TIMEOUT)
    if suspend is not None and 0 < suspend < _MIN_SUSPEND_TIMEOUT:
        # The spec: 0 is the default, -1 never suspends, and otherwise "the minimum value is 60".
        raise bad_request(
            f"{prefix}suspend_timeout_seconds: the minimum is {_MIN_SUSPEND_TIMEOUT} seconds "
            "(0 for the default, -1 to never suspend)"
        )
    if min_cu is not None and max_cu is not None and min_cu > max_cu:
        raise bad_request(f"{prefix}autoscaling_limit_min_cu must not exceed autoscaling_limit_max_cu")
    return EndpointLimits(min_cu=min_cu, max_cu=max_cu, suspend_timeout_seconds=suspend)


def _name(branch: dict[str, Any], field: str, default: str) -> str:
    value = optional_str(branch, field, max_length=_NAME_BYTES)
    if value is None:
        return default
    if len(value.encode()) > _NAME_BYTES:
        raise bad_request(f"branch.{field}: at most {_NAME_BYTES} bytes")
    return value


def parse_create_request(project: dict[str, Any], options: EmulatorOptions, caller: Caller) -> CreateRequest:
    """The ``project`` object of a create body, with Neon's defaults filled in."""
    region_id = project.get("region_id", options.regions[0] if options.regions else "aws-us-east-2")
    if region_id not in options.regions:
        raise bad_request(
            f"region_id: unsupported region {region_id!r}; supported: {', '.join(options.regions)}"
        )
    pg_version = project.get("pg_version", _DEFAULT_PG_VERSION)
    if (
        not isinstance(pg_version, int)
        or isinstance(pg_version, bool)
        or pg_version not in options.pg_versions
    ):
        supported = ", ".join(str(v) for v in options.pg_versions)
        raise bad_request(f"pg_version: unsupported version {pg_version!r}; supported: {supported}")
    branch = optional_object(project, "branch")
    database_name = _name(branch, "database_name", "neondb")
    role_name = _name(branch, "role_name", f"{database_name}_owner")
    # The deprecated project-level limits still count, under the endpoint defaults.
    legacy = parse_endpoint_limits(project, prefix="")
    limits = parse_endpoint_limits(
        optional_object(project, "default_endpoint_settings"), prefix="default_endpoint_settings."
    )
    min_cu = limits.min_cu or legacy.min_cu or _DEFAULT_MIN_CU
    max_cu = limits.max_cu or legacy.max_cu or max(_DEFAULT_MAX_CU, min_cu)
    if min_cu > max_cu:
        raise bad_request("autoscaling_limit_min_cu must not exceed autoscaling_limit_max_cu")
    retention = optional_int(project, "history_retention_seconds", minimum=0, maximum=_MAX_HISTORY_RETENTION)
    org_id = project.get("org_id")
    return CreateRequest(
        name=optional_str(project, "name"),
        org_id=check_org(org_id if isinstance(org_id, str) else None, caller),
        region_id=region_id,
        pg_version=pg_version,
        branch_name=optional_str(branch, "name") or "main",
        database_name=database_name,
        role_name=role_name,
        min_cu=min_cu,
        max_cu=max_cu,
        suspend_timeout_seconds=limits.suspend_timeout_seconds or 0,
        settings=parse_settings(project),
        history_retention_seconds=_DEFAULT_HISTORY_RETENTION if retention is None else retention,
        store_passwords=optional_bool(project, "store_passwords") is not False,
    )


def build_project(
    request: CreateRequest,
    *,
    project_id: str,
    seq: int,
    database_id: int,
    password: str,
    now: datetime.datetime,
) -> Project:
    """The records of a new project (its PostgreSQL objects are made separately)."""
    endpoint_defaults = {
        "autoscaling_limit_min_cu": request.min_cu,
        "autoscaling_limit_max_cu": request.max_cu,
        "suspend_timeout_seconds": request.suspend_timeout_seconds,
    }
    return Project(
        seq=seq,
        id=project_id,
        name=request.name or project_id,
        org_id=request.org_id,
        region_id=request.region_id,
        pg_version=request.pg_version,
        history_retention_seconds=request.history_retention_seconds,
        store_passwords=request.store_passwords,
        settings=request.settings,
        default_endpoint_settings=endpoint_defaults,
        created_at=now,
        updated_at=now,
        branch=Branch(id=ids.branch_id(), name=request.branch_name, created_at=now),
        endpoint=Endpoint(
            id=ids.endpoint_id(),
            min_cu=request.min_cu,
            max_cu=request.max_cu,
            suspend_timeout_seconds=request.suspend_timeout_seconds,
            created_at=now,
            updated_at=now,
        ),
        role=Role(
            name=request.role_name,
            physical=ids.physical_name(request.role_name, project_id),
            password=password,
            created_at=now,
        ),
        database=Database(
            id=database_id,
            name=request.database_name,
            physical=ids.physical_name(request.database_name, project_id),
            created_at=now,
        ),
    )
