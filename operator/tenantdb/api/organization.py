"""NeonOrganization: one Neon organisation of the pool tenants are placed in (cluster-scoped)."""

from __future__ import annotations

from pydantic import Field

from tenantdb.api.common import Condition, Resource

__all__ = ["ApiKeySecretRef", "NeonOrganizationSpec", "NeonOrganizationStatus", "OrganizationRateLimits"]

ORG_ID_PATTERN = r"^[a-z0-9-]{1,60}$"  # Neon's pattern for organisation ids


class ApiKeySecretRef(Resource):
    name: str = Field(min_length=1, description="Name of the Secret holding the organisation's API key.")
    namespace: str = Field(min_length=1, description="Namespace of the Secret.")
    key: str = Field(default="NEON_API_KEY", min_length=1, description="Key of the API key in the Secret.")


class OrganizationRateLimits(Resource):
    """The budgets of this organisation's key (Neon's figures by default)."""

    per_minute: int = Field(default=700, ge=1, description="Requests per minute with this key (Neon: 700).")
    per_route_per_second: int = Field(
        default=40, ge=1, description="Requests per second per route (Neon: 40)."
    )
    consumption_per_minute: int = Field(
        default=50, ge=1, description="Requests per minute to the consumption routes (Neon: about 50)."
    )


class NeonOrganizationSpec(Resource):
    organization_id: str = Field(pattern=ORG_ID_PATTERN, description="The Neon organisation id (org-...).")
    api_key_secret_ref: ApiKeySecretRef = Field(description="The Secret holding its API key.")
    max_projects: int | None = Field(
        default=None,
        ge=0,
        description="Most projects the operator places in it; absent: Neon's own limit only.",
    )
    cordoned: bool = Field(
        default=False, description="No new tenants are placed in it (those it holds stay), as kubectl cordon."
    )
    rate_limits: OrganizationRateLimits = Field(
        default_factory=OrganizationRateLimits, description="Its key's request budgets."
    )


class NeonOrganizationStatus(Resource):
    projects: int | None = Field(default=None, description="Tenants the operator has placed in it.")
    room: int | None = Field(
        default=None, description="Tenants it may still take (maxProjects minus projects); absent: no limit."
    )
    calls_per_minute: int | None = Field(
        default=None, description="Neon calls made with its key in the last minute."
    )
    full: bool | None = Field(default=None, description="Neon refused a create for its project limit.")
    last_checked: str | None = Field(default=None, description="When its key was last checked (RFC 3339).")
    observed_generation: int | None = Field(default=None, description="Last generation reconciled.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready: its key works and reaches the organisation.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
