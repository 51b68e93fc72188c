"""The custom resources of ``tenantdb.io/v1alpha1``: pydantic models, the one source of truth.

The CRDs in ``crds/`` are generated from these models (``tenantdb crds``); a test fails when
the committed files drift from what the models generate.
"""

from tenantdb.api.budget import BudgetDatabase, DatabaseBudgetSpec, DatabaseBudgetStatus
from tenantdb.api.common import (
    AutoscalingSpec,
    Condition,
    ConditionStatus,
    ConnectionSecretSpec,
    DeletionPolicy,
    Phase,
)
from tenantdb.api.databases import (
    ROTATE_CREDENTIALS_ANNOTATION,
    CredentialsSpec,
    DatabaseSpec,
    DatabaseStatus,
    GlobalDatabaseSpec,
    WorkspaceDatabaseSpec,
)
from tenantdb.api.kinds import (
    CLUSTER_KINDS,
    DATABASE_BUDGET,
    DATABASE_KINDS,
    DATABASE_TIER,
    GLOBAL_DATABASE,
    GROUP,
    KINDS,
    MANAGED_LABEL,
    NEON_ORGANIZATION,
    VERSION,
    WORKSPACE_DATABASE,
    Kind,
    kind_named,
)
from tenantdb.api.organization import NeonOrganizationSpec, NeonOrganizationStatus
from tenantdb.api.tenant import Scope, Tenant
from tenantdb.api.tier import DatabaseTierSpec, DatabaseTierStatus, TierQuotas

__all__ = [
    "CLUSTER_KINDS",
    "DATABASE_BUDGET",
    "DATABASE_KINDS",
    "DATABASE_TIER",
    "GLOBAL_DATABASE",
    "GROUP",
    "KINDS",
    "MANAGED_LABEL",
    "NEON_ORGANIZATION",
    "ROTATE_CREDENTIALS_ANNOTATION",
    "VERSION",
    "WORKSPACE_DATABASE",
    "AutoscalingSpec",
    "BudgetDatabase",
    "Condition",
    "ConditionStatus",
    "ConnectionSecretSpec",
    "CredentialsSpec",
    "DatabaseBudgetSpec",
    "DatabaseBudgetStatus",
    "DatabaseSpec",
    "DatabaseStatus",
    "DatabaseTierSpec",
    "DatabaseTierStatus",
    "DeletionPolicy",
    "GlobalDatabaseSpec",
    "Kind",
    "NeonOrganizationSpec",
    "NeonOrganizationStatus",
    "Phase",
    "Scope",
    "Tenant",
    "TierQuotas",
    "WorkspaceDatabaseSpec",
    "kind_named",
]
