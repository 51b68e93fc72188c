"""The few Neon payloads the operator reads, with only the fields it uses.

Extra fields are ignored, so Neon can add to its answers without breaking us. Passwords and
connection URIs are ``SecretStr``: a repr, a log line or a validation error never shows them
(``hide_input_in_errors`` keeps pydantic from quoting the answer it could not read).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = [
    "Branch",
    "ConnectionDetails",
    "ConsumptionTimeframe",
    "CreatedProject",
    "CredentialCheck",
    "Database",
    "Endpoint",
    "Operation",
    "PasswordReset",
    "ProjectConsumption",
    "ProjectSummary",
    "Role",
]

# Operation states after which nothing will change. ``skipped`` means Neon found the work
# unnecessary; ``error`` and ``failed`` both mean it did not happen.
DONE_STATUSES = frozenset({"finished", "skipped"})
FAILED_STATUSES = frozenset({"failed", "error", "cancelled"})

DEFAULT_PORT = 5432


class NeonModel(BaseModel):
    """Base of every Neon payload: extra fields ignored, frozen, inputs never quoted in errors."""

    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)


class ProjectSummary(NeonModel):
    id: str
    name: str
    region_id: str
    pg_version: int
    created_at: datetime
    recoverable_until: datetime | None = None  # deleted projects (``recoverable`` lists) only
    org_id: str = ""  # Neon leaves it out for a project of a personal account
    store_passwords: bool = True  # False: ``reveal_password`` cannot answer, only a reset can


class Branch(NeonModel):
    id: str
    name: str = ""
    default: bool = False  # the branch a project's connection URI leads to


class Role(NeonModel):
    """A Postgres role of a branch (never with its password: see ``reveal_password``)."""

    name: str
    branch_id: str
    protected: bool = False  # Neon's own system roles


class Database(NeonModel):
    id: int
    name: str
    owner_name: str
    branch_id: str


class Endpoint(NeonModel):
    id: str
    branch_id: str
    host: str
    type: str  # read_write | read_only
    disabled: bool = False
    autoscaling_limit_min_cu: float
    autoscaling_limit_max_cu: float
    suspend_timeout_seconds: int = 0  # 0: Neon's default (300 s); -1: never suspend
    current_state: str  # init | active | idle


class Operation(NeonModel):
    id: str
    project_id: str
    action: str
    status: str
    error: str = ""

    @property
    def done(self) -> bool:
        return self.status in DONE_STATUSES

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES


class PasswordReset(NeonModel):
    """A role's new password, which holds only once ``operations`` have finished.

    Until then the old password still works and the new one does not: wait for the
    operations (``wait_for_operations``) before publishing or using it.
    """

    role_name: str
    password: SecretStr
    operations: list[Operation]


class ConnectionDetails(NeonModel):
    """How to reach the project's database as its owner role."""

    uri: SecretStr
    pooled_uri: SecretStr
    host: str
    pooler_host: str
    database: str
    role: str
    password: SecretStr
    port: int = DEFAULT_PORT


class CreatedProject(NeonModel):
    """What ``POST /projects`` returns that the operator needs: one call tells everything."""

    project: ProjectSummary
    branch_id: str
    endpoints: list[Endpoint]
    operations: list[Operation]  # wait for these before connecting
    connection: ConnectionDetails


class ConsumptionTimeframe(NeonModel):
    """One granule (hour, day or month) of a project's consumption."""

    start: datetime
    end: datetime | None = None
    metrics: dict[str, int] = Field(default_factory=dict)


class ProjectConsumption(NeonModel):
    """A project's consumption over the asked range: totals, and the granules they sum."""

    project_id: str
    metrics: dict[str, int]  # metric name -> total over every timeframe returned
    timeframes: list[ConsumptionTimeframe] = Field(default_factory=list)


class CredentialCheck(NeonModel):
    """What ``validate()`` learned about the API key."""

    account_id: str
    auth_method: str  # api_key_org (organisation key) | api_key_user (personal key) | ...
    org_id: str  # the organisation the operator works in (configured, or the key's own)

    @property
    def personal_key(self) -> bool:
        return self.auth_method == "api_key_user"
