"""DatabaseBudget: one per user, the tier and the spend of all their databases."""

from __future__ import annotations

from pydantic import Field

from tenantdb.api.common import (
    ID_MAX_LENGTH,
    ID_PATTERN,
    TIER_NAME_MAX_LENGTH,
    TIER_NAME_PATTERN,
    Condition,
    Resource,
    immutable,
)

__all__ = ["BudgetDatabase", "DatabaseBudgetSpec", "DatabaseBudgetStatus"]


class DatabaseBudgetSpec(Resource):
    user_id: str = Field(
        description="Id of the platform user whose databases this budget covers. Immutable.",
        pattern=ID_PATTERN,
        min_length=1,
        max_length=ID_MAX_LENGTH,
        json_schema_extra=immutable("userId"),
    )
    tier: str = Field(
        default="free",
        pattern=TIER_NAME_PATTERN,
        max_length=TIER_NAME_MAX_LENGTH,
        description="Name of the user's DatabaseTier (free, paid, enterprise, or any other the "
        "cluster has). Without any DatabaseTier object: free, paid or enterprise, from the "
        "operator's settings.",
    )
    custom_limit_cents: int | None = Field(
        default=None, ge=0, description="Spending limit per billing period in cents; overrides the tier's."
    )


class BudgetDatabase(Resource):
    kind: str = Field(description="GlobalDatabase or WorkspaceDatabase.")
    name: str = Field(description="Name of the database resource.")
    project_id: str | None = Field(default=None, description="Neon project id.")
    cost_cents: int | None = Field(
        default=None, ge=0, description="Cost this period in cents; absent while not yet measured."
    )
    compute_quota_seconds: int | None = Field(
        default=None,
        ge=0,
        description="The hard stop last set on the project (settings.quota.compute_time_seconds, "
        "CU-seconds this period); 0 means unlimited.",
    )


class DatabaseBudgetStatus(Resource):
    tier: str | None = Field(default=None, description="The tier in force.")
    limit_cents: int | None = Field(default=None, description="Limit in cents; absent means unlimited.")
    total_cost_cents: int | None = Field(
        default=None, description="Spend of all the user's databases this period, in cents."
    )
    exceeded: bool | None = Field(default=None, description="Whether spend has reached the limit.")
    period_start: str | None = Field(default=None, description="Start of the current billing period.")
    last_sync_time: str | None = Field(default=None, description="When consumption was last synced.")
    databases: list[BudgetDatabase] = Field(default_factory=list, description="The user's databases.")
    observed_generation: int | None = Field(default=None, description="Last generation reconciled.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready and BudgetExceeded.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
