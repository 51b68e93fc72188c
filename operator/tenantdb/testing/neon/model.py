"""The emulator's in-memory records: one project = one branch, one endpoint, one role, one database.

That is all a Neon project created by ``POST /projects`` holds, and all the operator uses.
Records keep both the logical names the API shows (``neondb``, ``neondb_owner``) and the
physical names on the PostgreSQL server (see :func:`tenantdb.testing.neon.ids.physical_name`).
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

__all__ = ["Branch", "Database", "Endpoint", "Operation", "Project", "Role"]


@dataclasses.dataclass
class Operation:
    """An asynchronous step a mutation started; ``running`` until ``finishes_at``.

    An operation that carries an effect (a new password taking hold) stays ``running`` past
    ``finishes_at`` until the effect is applied (``held``), so that no client sees it
    finished before its effect is real; ``failed`` when the effect could not be applied.
    """

    id: str
    project_id: str
    branch_id: str
    endpoint_id: str | None
    action: str
    created_at: datetime.datetime
    finishes_at: datetime.datetime
    held: bool = False
    failed: bool = False

    def running(self, now: datetime.datetime) -> bool:
        return not self.failed and (self.held or now < self.finishes_at)

    def status(self, now: datetime.datetime) -> str:
        if self.failed:
            return "failed"
        return "running" if self.running(now) else "finished"


@dataclasses.dataclass
class Branch:
    id: str
    name: str
    created_at: datetime.datetime


@dataclasses.dataclass
class Endpoint:
    id: str
    min_cu: float
    max_cu: float
    suspend_timeout_seconds: int
    created_at: datetime.datetime
    updated_at: datetime.datetime
    disabled: bool = False
    current_state: str = "active"
    suspended_at: datetime.datetime | None = None


@dataclasses.dataclass
class Role:
    name: str
    physical: str
    password: str
    """The current password: after a reset, the new one, even before it takes hold."""
    created_at: datetime.datetime
    updated_at: datetime.datetime | None = None


@dataclasses.dataclass
class Database:
    id: int
    name: str
    physical: str
    created_at: datetime.datetime


@dataclasses.dataclass
class Project:
    """A project and everything in it; kept after deletion (``deleted_at`` set)."""

    seq: int
    """Creation order, the key of keyset pagination."""
    id: str
    name: str
    org_id: str
    region_id: str
    pg_version: int
    history_retention_seconds: int
    store_passwords: bool
    settings: dict[str, Any]
    default_endpoint_settings: dict[str, Any]
    created_at: datetime.datetime
    updated_at: datetime.datetime
    branch: Branch
    endpoint: Endpoint
    role: Role
    database: Database
    operations: list[Operation] = dataclasses.field(default_factory=list)
    usage: dict[str, int] = dataclasses.field(default_factory=dict)
    """Consumption of the current billing period, by metric (see ``set_usage``)."""
    quota_stopped: bool = False
    """Its compute quota is passed: computes suspended until the quota rises (see ``quota``)."""
    deleted_at: datetime.datetime | None = None
    purged: bool = False
    """Deleted and past its recovery window: its data is gone for good."""

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def running_operations(self, now: datetime.datetime) -> list[Operation]:
        return [operation for operation in self.operations if operation.running(now)]
