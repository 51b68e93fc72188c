"""DatabaseTier: what a plan gives its users' databases, one cluster-scoped object per tier.

Like a StorageClass: a DatabaseBudget names one (``spec.tier``), and every database of that
budget's user takes from it what its own spec leaves out (compute size, idle timeout), plus
the project settings a database spec does not carry (history retention, quotas).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from tenantdb.api.common import (
    SUSPEND_TIMEOUT_RULE,
    AutoscalingSpec,
    Condition,
    Resource,
    neon_suspend_timeout,
)

__all__ = ["MAX_HISTORY_RETENTION_SECONDS", "DatabaseTierSpec", "DatabaseTierStatus", "TierQuotas"]

# Neon keeps at most 30 days of history (``history_retention_seconds``).
MAX_HISTORY_RETENTION_SECONDS = 2_592_000
_INT64_MAX = 2**63 - 1


class TierQuotas(Resource):
    """Hard stops on each of the tier's projects (Neon's ``settings.quota``; 0 or absent: none).

    Neon stops a project's computes the moment it passes one, without waiting for the
    operator to notice."""

    logical_size_bytes: int | None = Field(
        default=None,
        ge=0,
        le=_INT64_MAX,
        description="Largest size of a database's data, in bytes (per branch, for its whole life): "
        "storage stops growing there.",
    )
    compute_time_seconds: int | None = Field(
        default=None,
        ge=0,
        le=_INT64_MAX,
        description="Most CU-seconds a project may use per billing period. The budget's own hard "
        "stop (from what is left of the limit) is lowered to this, never raised.",
    )
    active_time_seconds: int | None = Field(
        default=None, ge=0, le=_INT64_MAX, description="Most seconds a compute may be active per period."
    )
    written_data_bytes: int | None = Field(
        default=None, ge=0, le=_INT64_MAX, description="Most bytes a project may write per period."
    )
    data_transfer_bytes: int | None = Field(
        default=None, ge=0, le=_INT64_MAX, description="Most bytes a project may send out per period."
    )


class DatabaseTierSpec(Resource):
    limit_cents: int | None = Field(
        default=None,
        ge=0,
        description="Spending limit of each user on the tier per billing period, in cents; "
        "absent: unlimited.",
    )
    autoscaling: AutoscalingSpec | None = Field(
        default=None,
        description="Compute size of the databases whose spec names none. Absent: 0.25 CU.",
    )
    suspend_timeout_seconds: int | None = Field(
        default=None,
        ge=-1,
        le=604800,
        description="Idle seconds before the compute of a database whose spec names none suspends: "
        "0 is Neon's default (5 minutes), -1 never. Absent: 0.",
        json_schema_extra={"x-kubernetes-validations": [SUSPEND_TIMEOUT_RULE]},
    )
    history_retention_seconds: int | None = Field(
        default=None,
        ge=0,
        le=MAX_HISTORY_RETENTION_SECONDS,
        description="How far back each project keeps history (point-in-time restore), in seconds; "
        "up to 30 days. Absent: Neon's own default, left as it is.",
    )
    quotas: TierQuotas | None = Field(
        default=None, description="Hard stops on each project of the tier's users (Neon's settings.quota)."
    )
    sim_plans: list[Annotated[str, StringConstraints(min_length=1, max_length=128)]] = Field(
        default_factory=list,
        max_length=64,
        description="Sim Studio plans this tier stands for: plan names or glob patterns (team_*). "
        "An exact name wins over a pattern.",
    )

    @field_validator("suspend_timeout_seconds")
    @classmethod
    def _neon_accepts_the_suspend_timeout(cls, value: int | None) -> int | None:
        return neon_suspend_timeout(value)


class DatabaseTierStatus(Resource):
    databases: int | None = Field(
        default=None, ge=0, description="Databases whose user is on this tier (known to the operator)."
    )
    updated_databases: int | None = Field(
        default=None,
        ge=0,
        description="Of those, how many have this tier's settings applied on Neon (the rollout's progress).",
    )
    users: int | None = Field(default=None, ge=0, description="Budgets naming this tier.")
    observed_generation: int | None = Field(default=None, description="Last generation taken up.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready: every database follows the tier (False, RollingOut, while some do not yet).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
