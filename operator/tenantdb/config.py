"""Every setting of the operator, read once from the environment at start-up.

One ``Settings`` object is built in the CLI and passed down explicitly; nothing reads the
environment anywhere else. Secrets are ``SecretStr`` so they never print.

Names: ``ENCRYPTION_KEY`` is Sim Studio's own variable (the operator must use the same key),
``NEON_API_KEY`` / ``NEON_ORG_ID`` are Neon's conventional names; everything else is
``TENANTDB_*``.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["EnvVarFormat", "LogFormat", "Settings", "Tier"]


class EnvVarFormat(enum.StrEnum):
    """How ``GLOBAL_DB_URL`` / ``AGENT_DB_URL`` are written into Sim's ``variables`` column."""

    PER_VALUE = "per-value"  # {"KEY": "<iv>:<ct>:<tag>", ...}: what Sim reads today
    WHOLE_OBJECT = "whole-object"  # "<iv>:<ct>:<tag>" of the whole JSON object (the seed's design)


class LogFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"


class Tier(enum.StrEnum):
    FREE = "free"
    PAID = "paid"
    ENTERPRISE = "enterprise"


def _csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """The operator's configuration. Each field's description is its documentation."""

    model_config = SettingsConfigDict(env_prefix="TENANTDB_", extra="ignore", populate_by_name=True)

    # --- secrets ---------------------------------------------------------------------------
    encryption_key: SecretStr = Field(
        validation_alias=AliasChoices("ENCRYPTION_KEY", "TENANTDB_ENCRYPTION_KEY"),
        description="64 hex characters (32 bytes): Sim Studio's ENCRYPTION_KEY. Required.",
    )
    neon_api_key: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("NEON_API_KEY", "TENANTDB_NEON_API_KEY"),
        description="Neon API key (organisation key recommended). Required to run.",
    )
    neon_org_id: str = Field(
        default="",
        validation_alias=AliasChoices("NEON_ORG_ID", "TENANTDB_NEON_ORG_ID"),
        description="Neon organisation id; needed with a personal API key and for consumption.",
    )
    metadata_database_url: SecretStr = Field(
        default=SecretStr(""),
        description="libpq URI of the platform's metadata DB (Sim's PostgreSQL). Required to run.",
    )

    # --- Neon --------------------------------------------------------------------------------
    neon_api_url: str = Field(
        default="https://console.neon.tech/api/v2", description="Base URL of the Neon API v2."
    )
    neon_default_region: str = Field(
        default="aws-us-east-2", description="Region for databases whose spec names none."
    )
    neon_default_pg_version: int = Field(default=17, ge=14, le=18)
    neon_request_timeout_seconds: float = Field(default=30.0, gt=0)
    neon_retry_deadline_seconds: float = Field(
        default=120.0, gt=0, description="Give up retrying one call after this long (then requeue)."
    )
    neon_rate_limit_per_minute: int = Field(
        default=700, gt=0, description="Account-wide request budget (Neon: 700/min)."
    )
    neon_route_rate_limit_per_second: int = Field(
        default=40, gt=0, description="Per-route burst budget (Neon: 40/s per route)."
    )
    neon_consumption_rate_limit_per_minute: int = Field(
        default=50,
        gt=0,
        description="Budget of the consumption endpoints, v2 and legacy together (Neon: about 50/min).",
    )
    neon_background_share: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="Share of the account budget that background calls (sweeps, drift checks, "
        "consumption) may use; calls a user waits for go first.",
    )
    project_name_prefix: str = Field(
        default="tenantdb",
        pattern=r"^[a-z0-9][a-z0-9-]{0,30}$",
        description="Prefix of the Neon project names the operator derives from resource identity.",
    )

    # --- reconciling -------------------------------------------------------------------------
    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated namespaces to watch; empty means the whole cluster.",
    )
    resync_interval_seconds: float = Field(
        default=300.0, gt=0, description="How often each resource is checked for drift."
    )
    delete_give_up_seconds: float = Field(
        default=86400.0,
        gt=0,
        description="How long a failing Neon delete is retried before the finalizer is released "
        "with a Warning and the project is recorded in tenantdb_orphaned_project.",
    )
    env_var_format: EnvVarFormat = Field(default=EnvVarFormat.PER_VALUE)
    peering_name: str = Field(
        default="", description="kopf peering name for a hot standby; empty runs standalone."
    )
    peering_priority: int = Field(default=0)

    # --- budgets ---------------------------------------------------------------------------------
    default_tier: Tier = Field(default=Tier.FREE, description="Tier for users without a budget.")
    tier_free_limit_cents: int | None = Field(default=500, ge=0)
    tier_paid_limit_cents: int | None = Field(default=5000, ge=0)
    tier_enterprise_limit_cents: int | None = Field(default=None, ge=0, description="Empty: unlimited.")
    price_compute_cu_hour_usd: Decimal = Field(default=Decimal("0.106"), ge=0)
    price_storage_gb_month_usd: Decimal = Field(default=Decimal("0.35"), ge=0)
    price_instant_restore_gb_month_usd: Decimal = Field(default=Decimal("0.20"), ge=0)
    price_snapshot_gb_month_usd: Decimal = Field(default=Decimal("0.09"), ge=0)
    billing_period_anchor_day: int = Field(
        default=1, ge=1, le=28, description="Day of the month billing periods start (UTC)."
    )
    consumption_sync_interval_seconds: float = Field(default=900.0, gt=0)

    # --- process -------------------------------------------------------------------------------
    log_format: LogFormat = Field(default=LogFormat.TEXT)
    log_level: str = Field(default="INFO")
    health_port: int = Field(default=8080, ge=0, le=65535, description="Liveness/readiness port.")
    metrics_port: int = Field(default=9090, ge=0, le=65535, description="Prometheus metrics port.")
    metadata_pool_max_size: int = Field(default=10, gt=0)

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split_namespaces(cls, value: object) -> object:
        return _csv(value)

    @field_validator(
        "tier_free_limit_cents", "tier_paid_limit_cents", "tier_enterprise_limit_cents", mode="before"
    )
    @classmethod
    def _empty_means_unlimited(cls, value: object) -> object:
        return None if value == "" else value

    def tier_limit_cents(self, tier: Tier) -> int | None:
        """The spending limit of a tier in cents; ``None`` is unlimited."""
        return {
            Tier.FREE: self.tier_free_limit_cents,
            Tier.PAID: self.tier_paid_limit_cents,
            Tier.ENTERPRISE: self.tier_enterprise_limit_cents,
        }[tier]
