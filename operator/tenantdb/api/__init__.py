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
    DATABASE_BUDGET,
    DATABASE_KINDS,
    GLOBAL_DATABASE,
    GROUP,
    KINDS,
    MANAGED_LABEL,
    VERSION,
    WORKSPACE_DATABASE,
    Kind,
    kind_named,
)
from tenantdb.api.tenant import Scope, Tenant

__all__ = [
    "DATABASE_BUDGET",
    "DATABASE_KINDS",
    "GLOBAL_DATABASE",
    "GROUP",
    "KINDS",
    "MANAGED_LABEL",
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
    "DeletionPolicy",
    "GlobalDatabaseSpec",
    "Kind",
    "Phase",
    "Scope",
    "Tenant",
    "WorkspaceDatabaseSpec",
    "kind_named",
]
