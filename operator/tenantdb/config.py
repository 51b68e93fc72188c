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
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["EnvVarFormat", "LogFormat", "OnProjectDeleted", "Settings", "SweepAction", "Tier"]


class EnvVarFormat(enum.StrEnum):
    """How ``GLOBAL_DB_URL`` / ``AGENT_DB_URL`` are written into Sim's ``variables`` column.

    Only Sim's own format is left. The seed's "whole-object" format (one encrypted string for the
    whole object) is gone: Sim cannot read it (its code takes the object's keys), so the setting
    now refuses it at start-up rather than break Sim's environment rows.
    """

    PER_VALUE = "per-value"  # {"KEY": "<iv>:<ct>:<tag>", ...}: what Sim reads


class LogFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"


class OnProjectDeleted(enum.StrEnum):
    """What a reconcile does when the resource's Neon project was deleted outside the operator."""

    RECOVER = "recover"  # recover it (data and all) while Neon can; otherwise create a new one
    RECREATE = "recreate"  # create a new, empty project at once (the old one stays recoverable)
    WAIT = "wait"  # do nothing: Ready=False until someone recovers it or clears status.projectId


class SweepAction(enum.StrEnum):
    """What the fleet sweep does with a project of ours whose resource no longer exists."""

    AUTO = "auto"  # delete when watching the whole cluster; record when watching some namespaces
    DELETE = "delete"
    RECORD = "record"  # record it in tenantdb_orphaned_project, touch nothing in Neon
    OFF = "off"


class Tier(enum.StrEnum):
    """The three tiers the settings define, used while the cluster has no DatabaseTier object.

    A tier is a name (``str``): any DatabaseTier's; these are only the built-in ones."""

    FREE = "free"
    PAID = "paid"
    ENTERPRISE = "enterprise"


# Sim's plan names -> our tiers, checked against Sim's plan-helpers.ts at commit 0b232eb8
# (v0.8.9, August 2026): free; pro_6000 (Pro) and pro_25000 (Max); team_6000 and team_25000
# (Pro and Max for Teams); enterprise; the legacy pro and team. The globs follow Sim's own
# isPro / isTeam (a `pro_` or `team_` prefix): a credit tier Sim adds later is still paid.
DEFAULT_SIM_PLAN_TIERS = "free=free,pro=paid,pro_*=paid,team=paid,team_*=paid,enterprise=enterprise"


def parse_plan_tiers(text: str) -> dict[str, Tier]:
    """``"plan=tier,..."`` -> ``{plan: Tier}``; ``ValueError`` naming the bad pair."""
    pairs: dict[str, Tier] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        plan, separator, tier = item.partition("=")
        if not separator or not plan.strip():
            raise ValueError(f"expected plan=tier pairs, got {item.strip()!r}")
        try:
            pairs[plan.strip()] = Tier(tier.strip())
        except ValueError:
            raise ValueError(f"unknown tier {tier.strip()!r} for plan {plan.strip()!r}") from None
    return pairs


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
    previous_encryption_keys: SecretStr = Field(
        default=SecretStr(""),
        description="Comma-separated keys the operator may still decrypt with, never encrypt with: "
        "the keys ENCRYPTION_KEY had before (see the README's procedure for changing it). Values "
        "sealed with one are written again with ENCRYPTION_KEY (by the fleet observation, slowly, "
        "or at once by `tenantdb rekey`).",
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
    neon_rate_limit_share: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="This process's share of every organisation's rate limits (the ``neon_*`` "
        "settings and each NeonOrganization's): operator shards that share organisations take "
        "a static share each (the chart sets 1/shards), so together they stay within them.",
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
        default=300.0,
        gt=0,
        description="How often the fleet observation runs: one paged project list (one Neon call "
        "per 400 projects) finds projects deleted or renamed outside the operator, and every "
        "Ready resource's Secret, row and env var are checked (no Neon call).",
    )
    endpoint_checks_per_minute: float = Field(
        default=10.0,
        gt=0,
        description="The slow rotation: Ready resources whose Neon compute settings are read back "
        "(two Neon calls each), least recently observed first. A spec change is checked at once.",
    )
    local_checks_per_second: float = Field(
        default=20.0,
        gt=0,
        description="Ceiling on the fleet observation's checks of Secrets, rows and env vars "
        "(Kubernetes and metadata DB reads, no Neon call).",
    )
    list_page_size: int = Field(
        default=500,
        gt=0,
        description="Objects per page of kopf's start-up list of each kind. Each page is resumed "
        "in one burst of the event loop: smaller pages let a new signup's reconcile (the start-up "
        "fast lane) go on between them.",
    )
    delete_give_up_seconds: float = Field(
        default=86400.0,
        gt=0,
        description="How long a failing Neon delete is retried before the finalizer is released "
        "with a Warning and the project is recorded in tenantdb_orphaned_project.",
    )
    env_var_format: EnvVarFormat = Field(
        default=EnvVarFormat.PER_VALUE,
        description="Only per-value, Sim's format (the whole-object format was removed: Sim cannot read it).",
    )
    standalone_env_tables: bool = Field(
        default=False,
        description="Create Sim's environment and workspace_environment tables when absent: only for "
        "a metadata DB without Sim. Never in Sim's database (its own migrations create them).",
    )
    on_project_deleted: OnProjectDeleted = Field(
        default=OnProjectDeleted.RECOVER,
        description="A project deleted outside the operator: recover (while Neon can, else create "
        "a new one and say the data is gone), recreate (a new, empty one), or wait (for a human).",
    )
    create_landing_seconds: float | None = Field(
        default=None,
        gt=0,
        description="How long a create whose answer was lost may still land in Neon: until then "
        "the project is looked for by name, never created again. Default: 10 x "
        "TENANTDB_NEON_REQUEST_TIMEOUT_SECONDS.",
    )
    sweep_interval_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How often the fleet sweep looks, in the fleet observation's project list "
        "(no call of its own), for projects of ours whose resource is gone.",
    )
    sweep_action: SweepAction = Field(
        default=SweepAction.AUTO,
        description="What the sweep does with a project whose resource is gone: delete, record "
        "(in tenantdb_orphaned_project), off, or auto (delete when cluster-wide, else record).",
    )
    retained_project_retention_days: int | None = Field(
        default=None,
        ge=1,
        description="Days a Neon project kept by deletionPolicy: Retain (an archived Sim workspace's, "
        "say) stays before the fleet sweep deletes it, counted from when it was kept. Empty: kept "
        "for ever. Only projects named as the operator names them, held by no live resource, "
        "metadata row or claim, are ever deleted.",
    )
    rotate_credentials_after_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Rotate a database's password when it is this many days old, for resources whose "
        "spec.credentials.rotateAfterDays says nothing. Empty: only when asked (the annotation "
        "tenantdb.io/rotate-credentials).",
    )
    credential_rotations_per_minute: float = Field(
        default=5.0,
        gt=0,
        description="Ceiling on the rotations by age (about four Neon calls each, background work: "
        "what users wait for goes first), fleet-wide. A rotation asked for by the annotation is not "
        "paced.",
    )
    peering_name: str = Field(
        default="", description="kopf peering name for a hot standby; empty runs standalone."
    )
    peering_priority: int = Field(default=0)

    # --- budgets ---------------------------------------------------------------------------------
    default_tier: str = Field(
        default=Tier.FREE.value,
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="Tier (a DatabaseTier's name) for users without a budget.",
    )
    tier_free_limit_cents: int | None = Field(
        default=500, ge=0, description="Limit of tier free while the cluster has no DatabaseTier object."
    )
    tier_paid_limit_cents: int | None = Field(
        default=5000, ge=0, description="Limit of tier paid while the cluster has no DatabaseTier object."
    )
    tier_enterprise_limit_cents: int | None = Field(
        default=None,
        ge=0,
        description="Limit of tier enterprise while the cluster has no DatabaseTier object. "
        "Empty: unlimited.",
    )
    price_compute_cu_hour_usd: Decimal = Field(default=Decimal("0.106"), ge=0)
    price_storage_gb_month_usd: Decimal = Field(default=Decimal("0.35"), ge=0)
    price_instant_restore_gb_month_usd: Decimal = Field(default=Decimal("0.20"), ge=0)
    price_snapshot_gb_month_usd: Decimal = Field(default=Decimal("0.09"), ge=0)
    billing_period_anchor_day: int = Field(
        default=1, ge=1, le=28, description="Day of the month billing periods start (UTC)."
    )
    consumption_sync_interval_seconds: float = Field(default=900.0, gt=0)
    tier_rollout_per_minute: float = Field(
        default=30.0,
        gt=0,
        description="Most Neon calls a minute of a tier's rollout (one per database whose compute "
        "changes, one more when the tier's history or quotas changed too; none for a new tier "
        "name alone), in the background share of the Neon budget: 30,000 databases take about "
        "17 hours at the default; a user's own move to another tier goes first.",
    )
    decision_log_retention_days: int = Field(
        default=400,
        ge=1,
        description="How long the decision log (tenantdb_decision_log: suspend, resume, hard "
        "stop, delete, adoption, rotation) keeps a decision, in days; older ones are pruned "
        "hourly. The default covers a yearly audit of last year's periods.",
    )
    organization_refresh_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often the NeonOrganization pool is read, each key checked (two calls per "
        "organisation) and each status written.",
    )

    # --- following Sim's tables (zero-code Sim) -----------------------------------------------
    sim_sync: bool = Field(
        default=False,
        description="Follow Sim's user, workspace and subscription tables and keep a GlobalDatabase "
        "and a DatabaseBudget per user and a WorkspaceDatabase per live workspace.",
    )
    sim_namespace: str = Field(
        default="default",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="Namespace of the resources the Sim sync makes.",
    )
    sim_namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated shard namespaces the Sim sync spreads tenants over, by a "
        "stable hash of the user id (a user's budget, global database and the workspaces billed "
        "to them land together); empty: ``sim_namespace`` alone. Only where a tenant's resources "
        "are first made: existing ones never move. Each process writes only in the namespaces it "
        "watches, so each operator shard makes its own tenants' resources.",
    )
    sim_poll_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often the Sim sync checks Sim's tables for a change (one cheap query).",
    )
    sim_full_sync_interval_seconds: float = Field(
        default=900.0,
        gt=0,
        description="How often the Sim sync compares all of Sim's rows with every resource in its "
        "namespace, changed or not (repairs anything changed behind its back).",
    )
    sim_writes_per_second: float = Field(
        default=20.0, gt=0, description="Most Kubernetes API writes per second the Sim sync makes."
    )
    sim_archived_workspace_deletion_policy: Literal["Delete", "Retain"] = Field(
        default="Retain",
        description="deletionPolicy set on a WorkspaceDatabase before it is deleted because Sim "
        "archived its workspace (Retain keeps the Neon project; a removed workspace row uses the "
        "resource's own policy).",
    )
    sim_plan_tiers: str = Field(
        default=DEFAULT_SIM_PLAN_TIERS,
        description="Sim plan name (glob patterns allowed) -> tier, as comma-separated plan=tier "
        "pairs; an exact name first, then the first matching pattern. A plan matching none gets the "
        "default tier, with a Warning Event on the user's budget.",
    )

    # --- process -------------------------------------------------------------------------------
    log_format: LogFormat = Field(default=LogFormat.TEXT)
    log_level: str = Field(default="INFO")
    health_port: int = Field(default=8080, ge=0, le=65535, description="Liveness/readiness port.")
    metrics_port: int = Field(default=9090, ge=0, le=65535, description="Prometheus metrics port.")
    metadata_pool_max_size: int = Field(default=10, gt=0)

    @field_validator("sim_plan_tiers")
    @classmethod
    def _plan_pairs(cls, value: str) -> str:
        parse_plan_tiers(value)  # a clear error at start-up, not at the first plan seen
        return value

    def plan_tiers(self) -> dict[str, Tier]:
        """``TENANTDB_SIM_PLAN_TIERS`` as a mapping, in the order given."""
        return parse_plan_tiers(self.sim_plan_tiers)

    @field_validator("namespaces", "sim_namespaces", mode="before")
    @classmethod
    def _split_namespaces(cls, value: object) -> object:
        return _csv(value)

    def sim_sync_namespaces(self) -> list[str]:
        """The namespaces the Sim sync spreads tenants over (``sim_namespaces`` or the one)."""
        return list(self.sim_namespaces) or [self.sim_namespace]

    @field_validator(
        "tier_free_limit_cents",
        "tier_paid_limit_cents",
        "tier_enterprise_limit_cents",
        "create_landing_seconds",
        "retained_project_retention_days",
        "rotate_credentials_after_days",
        mode="before",
    )
    @classmethod
    def _empty_means_unlimited(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def create_landing_window_seconds(self) -> float:
        """How long after it was sent a create may still land (see ``create_landing_seconds``)."""
        if self.create_landing_seconds is not None:
            return self.create_landing_seconds
        return 10 * self.neon_request_timeout_seconds

    @property
    def effective_sweep_action(self) -> SweepAction:
        """``auto`` resolved: a replica watching some namespaces cannot tell a live owner elsewhere."""
        if self.sweep_action is SweepAction.AUTO:
            return SweepAction.RECORD if self.namespaces else SweepAction.DELETE
        return self.sweep_action

    def tier_limit_cents(self, tier: Tier) -> int | None:
        """The spending limit of a tier in cents; ``None`` is unlimited."""
        return {
            Tier.FREE: self.tier_free_limit_cents,
            Tier.PAID: self.tier_paid_limit_cents,
            Tier.ENTERPRISE: self.tier_enterprise_limit_cents,
        }[tier]
