"""GlobalDatabase (one per user) and WorkspaceDatabase (one per workspace)."""

from __future__ import annotations

from typing import Self

from pydantic import ConfigDict, Field, JsonValue, field_validator, model_validator

from tenantdb.api.common import (
    ID_MAX_LENGTH,
    ID_PATTERN,
    SUSPEND_TIMEOUT_RULE,
    AutoscalingSpec,
    Condition,
    ConnectionSecretSpec,
    DeletionPolicy,
    Phase,
    Resource,
    immutable,
    neon_suspend_timeout,
)
from tenantdb.api.tier import TierQuotas

__all__ = [
    "ROTATE_CREDENTIALS_ANNOTATION",
    "AppliedSettings",
    "CredentialsSpec",
    "DatabaseSpec",
    "DatabaseStatus",
    "GlobalDatabaseSpec",
    "WorkspaceDatabaseSpec",
]

# Any new value rotates the database's password once (as ``kubectl rollout restart`` writes
# ``kubectl.kubernetes.io/restartedAt``); the value last acted on is in
# ``status.credentialsRotationHandled``, so the same value again does nothing.
ROTATE_CREDENTIALS_ANNOTATION = "tenantdb.io/rotate-credentials"

_SQL_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Presence of an immutable optional field may not change either (CEL on the spec).
_PRESENCE_RULES: list[JsonValue] = [
    {"rule": f"has(self.{field}) == has(oldSelf.{field})", "message": f"{field} is immutable"}
    for field in ("region", "pgVersion", "roleName", "projectId")
]
# PostgreSQL names are at most 63 bytes; the default role '<databaseName>_owner' adds 6.
_ROLE_SUFFIX = "_owner"
_MAX_NAME = 63
_ROLE_NAME_RULE: JsonValue = {
    "rule": "has(self.roleName) || !has(self.databaseName) || "
    f"size(self.databaseName) <= {_MAX_NAME - len(_ROLE_SUFFIX)}",
    "message": f"databaseName longer than {_MAX_NAME - len(_ROLE_SUFFIX)} characters needs a roleName: "
    f"the default role '<databaseName>{_ROLE_SUFFIX}' would exceed PostgreSQL's {_MAX_NAME} bytes",
}


class CredentialsSpec(Resource):
    """The database role's password: how often it is rotated."""

    rotate_after_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Rotate the password when it is this many days old: Neon resets it, the new "
        "connection string is published everywhere (Secret, metadata row, env var) and the old "
        "password is refused. Default: the operator's TENANTDB_ROTATE_CREDENTIALS_AFTER_DAYS "
        "(none: only when asked, with the annotation tenantdb.io/rotate-credentials).",
    )


class DatabaseSpec(Resource):
    """What both database kinds have in common."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [*_PRESENCE_RULES, _ROLE_NAME_RULE]}
    )

    user_id: str = Field(
        description="Id of the platform user who owns the database. Immutable.",
        pattern=ID_PATTERN,
        min_length=1,
        max_length=ID_MAX_LENGTH,
        json_schema_extra=immutable("userId"),
    )
    region: str | None = Field(
        default=None,
        description="Neon region id, e.g. aws-us-east-2. Default: the operator's "
        "TENANTDB_NEON_DEFAULT_REGION. Immutable.",
        pattern=r"^(aws|azure|gcp)-[a-z0-9-]+$",
        max_length=64,
        json_schema_extra=immutable("region"),
    )
    pg_version: int | None = Field(
        default=None,
        ge=14,
        le=18,
        description="PostgreSQL major version. Default: the operator's TENANTDB_NEON_DEFAULT_PG_VERSION. "
        "Immutable.",
        json_schema_extra=immutable("pgVersion"),
    )
    database_name: str = Field(
        default="neondb",
        description="Name of the database inside the Neon project. Immutable.",
        pattern=_SQL_NAME,
        max_length=63,
        json_schema_extra=immutable("databaseName"),
    )
    role_name: str | None = Field(
        default=None,
        description="Owner role of the database. Default: '<databaseName>_owner' (Neon's). Immutable.",
        pattern=_SQL_NAME,
        max_length=63,
        json_schema_extra=immutable("roleName"),
    )
    project_id: str | None = Field(
        default=None,
        description="Take over this existing Neon project instead of creating one (as a PVC's "
        "volumeName binds an existing volume). It must be in the operator's organisation and held by "
        "no other resource; it is renamed to the operator's name for this resource, and from then on "
        "is the operator's exactly as a created one (published, budgeted, deleted per deletionPolicy). "
        "Set at creation only. Immutable.",
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        max_length=64,
        json_schema_extra=immutable("projectId"),
    )
    # No default on either: left out, they come from the user's DatabaseTier (and follow it).
    autoscaling: AutoscalingSpec | None = Field(
        default=None,
        description="Compute autoscaling limits; drift on Neon is patched back. Absent: the "
        "user's DatabaseTier's (0.25 CU when it names none), following the tier as it changes.",
    )
    suspend_timeout_seconds: int | None = Field(
        default=None,
        ge=-1,
        le=604800,
        description="Idle seconds before the compute suspends: 0 is Neon's default (5 minutes), "
        "-1 never suspends; otherwise 60 (Neon's minimum) to 604800. Absent: the user's "
        "DatabaseTier's (0 when it names none).",
        json_schema_extra={"x-kubernetes-validations": [SUSPEND_TIMEOUT_RULE]},
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.DELETE,
        description="Delete removes the Neon project with the resource; Retain keeps it.",
    )
    connection_secret: ConnectionSecretSpec = Field(
        default_factory=ConnectionSecretSpec,
        description="The Secret that receives the (encrypted) connection string.",
        json_schema_extra={"default": {}},
    )
    credentials: CredentialsSpec = Field(
        default_factory=CredentialsSpec,
        description="Password rotation. On demand: set the annotation tenantdb.io/rotate-credentials "
        "to a new value.",
        json_schema_extra={"default": {}},
    )

    @field_validator("suspend_timeout_seconds")
    @classmethod
    def _neon_accepts_the_suspend_timeout(cls, value: int | None) -> int | None:
        return neon_suspend_timeout(value)

    @property
    def budget_user_id(self) -> str:
        """The user whose budget the database counts against: its owner."""
        return self.user_id

    @model_validator(mode="after")
    def _default_role_name_fits(self) -> Self:
        if self.role_name is None and len((self.database_name + _ROLE_SUFFIX).encode()) > _MAX_NAME:
            raise ValueError(
                f"databaseName longer than {_MAX_NAME - len(_ROLE_SUFFIX)} characters needs a roleName: "
                f"the default role '<databaseName>{_ROLE_SUFFIX}' would exceed {_MAX_NAME} bytes"
            )
        return self


class GlobalDatabaseSpec(DatabaseSpec):
    """A user's global database: GLOBAL_DB_URL."""


class WorkspaceDatabaseSpec(DatabaseSpec):
    """A workspace's agent database: AGENT_DB_URL."""

    workspace_id: str = Field(
        description="Id of the platform workspace the database belongs to. Immutable.",
        pattern=ID_PATTERN,
        min_length=1,
        max_length=ID_MAX_LENGTH,
        json_schema_extra=immutable("workspaceId"),
    )
    billed_user_id: str | None = Field(
        default=None,
        description="Id of the platform user whose budget the database counts against, when not "
        "userId: whom the platform bills for the workspace (Sim's workspace.billed_account_user_id, "
        "kept here by the Sim sync). May change: the database's spend this period then counts "
        "against the new user's budget, and no longer against the old one's. Default: userId.",
        pattern=ID_PATTERN,
        min_length=1,
        max_length=ID_MAX_LENGTH,
    )

    @property
    def budget_user_id(self) -> str:
        """The user whose budget the database counts against: ``billedUserId``, else its owner."""
        return self.billed_user_id or self.user_id


class AppliedSettings(Resource):
    """The settings last applied on Neon: the compute's, the project's, and the tier they follow."""

    tier: str | None = Field(default=None, description="The DatabaseTier these settings come from.")
    min_cu: float | None = Field(default=None, description="Smallest compute size, in CU.")
    max_cu: float | None = Field(default=None, description="Largest compute size, in CU.")
    suspend_timeout_seconds: int | None = Field(default=None, description="Idle seconds before suspending.")
    history_retention_seconds: int | None = Field(
        default=None, description="History kept, in seconds; absent: Neon's own, never set by the operator."
    )
    quotas: TierQuotas | None = Field(
        default=None, description="The tier's hard stops set on the project (not the budget's compute stop)."
    )


class DatabaseStatus(Resource):
    """Observed state. Never holds a secret."""

    phase: Phase | None = Field(
        default=None, description="Pending, Provisioning, Ready, Suspended, Failed or Deleting."
    )
    project_id: str | None = Field(default=None, description="Neon project id (the external name).")
    organization: str | None = Field(
        default=None,
        description="The NeonOrganization the tenant was placed in (absent with the implicit single "
        "organisation of NEON_API_KEY); set once, never changed.",
    )
    project_name: str | None = Field(
        default=None, description="Neon project name, derived from the resource's identity."
    )
    create_attempted_at: str | None = Field(
        default=None,
        description="When a create was last sent whose outcome is not recorded yet (RFC 3339): "
        "until it can no longer land, the project is looked for by name, not created again.",
    )
    original_project_name: str | None = Field(
        default=None,
        description="For a project taken over (spec.projectId): its name before the operator renamed "
        "it, recorded before the rename (to give the name back when leaving the operator).",
    )
    adopted_at: str | None = Field(
        default=None, description="When the project named by spec.projectId was taken over (RFC 3339)."
    )
    branch_id: str | None = Field(default=None, description="Neon default branch id.")
    endpoint_id: str | None = Field(default=None, description="Neon read-write compute endpoint id.")
    host: str | None = Field(default=None, description="Compute endpoint host name.")
    database_name: str | None = Field(default=None, description="Database name inside the project.")
    role_name: str | None = Field(default=None, description="Owner role name.")
    secret_name: str | None = Field(default=None, description="Secret holding the connection string.")
    region: str | None = Field(default=None, description="Region the project was created in.")
    pg_version: int | None = Field(default=None, description="PostgreSQL major version.")
    credentials_rotated_at: str | None = Field(
        default=None,
        description="When the role's password was last rotated and the new connection string "
        "published everywhere (RFC 3339).",
    )
    credentials_rotation_started_at: str | None = Field(
        default=None,
        description="A rotation under way (RFC 3339): recorded before Neon is asked to reset the "
        "password, cleared once the new connection string is published. While it is set, the "
        "connection string on record may hold a password Neon no longer accepts: the next attempt "
        "resets the password again and publishes the new one.",
    )
    credentials_rotation_handled: str | None = Field(
        default=None,
        description="The value of the annotation tenantdb.io/rotate-credentials last acted on: the "
        "same value again rotates nothing.",
    )
    current_period_cost_cents: int | None = Field(
        default=None, ge=0, description="Cost of this database in the current billing period, in cents."
    )
    last_consumption_sync: str | None = Field(default=None, description="When cost was last synced.")
    applied: AppliedSettings | None = Field(
        default=None,
        description="The compute and project settings last applied on Neon, from the spec and the "
        "user's DatabaseTier: a tier's rollout counts the databases whose record matches it.",
    )
    observed_generation: int | None = Field(default=None, description="Last generation reconciled.")
    observed_at: str | None = Field(
        default=None,
        description="When the Neon project and its compute settings were last read back and "
        "compared with the spec (RFC 3339): the fleet's slow rotation checks the oldest first.",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready and Synced (and BudgetExceeded when suspended).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
