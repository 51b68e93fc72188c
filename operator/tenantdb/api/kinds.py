"""Names of the four kinds, their CRD metadata and printer columns."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from tenantdb.api.budget import DatabaseBudgetSpec, DatabaseBudgetStatus
from tenantdb.api.common import Resource
from tenantdb.api.databases import DatabaseStatus, GlobalDatabaseSpec, WorkspaceDatabaseSpec
from tenantdb.api.organization import NeonOrganizationSpec, NeonOrganizationStatus
from tenantdb.api.tier import DatabaseTierSpec, DatabaseTierStatus

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
    "VERSION",
    "WORKSPACE_DATABASE",
    "Kind",
    "kind_named",
]

GROUP = "tenantdb.io"
VERSION = "v1alpha1"
CATEGORY = "tenantdb"
# On every database resource the operator has taken up (with its finalizer): a restart lists
# only the resources without it (``!tenantdb.io/managed``), the ones made while it was down,
# instead of the whole fleet; ``kubectl get globaldatabases -l '!tenantdb.io/managed'`` shows
# what the operator has not reached yet.
MANAGED_LABEL = f"{GROUP}/managed"

_READY: Mapping[str, object] = {
    "name": "Ready",
    "type": "string",
    "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
}
_AGE: Mapping[str, object] = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
_DATABASE_COLUMNS: tuple[Mapping[str, object], ...] = (
    _READY,
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Project", "type": "string", "jsonPath": ".status.projectId"},
    {"name": "User", "type": "string", "jsonPath": ".spec.userId", "priority": 1},
    {"name": "Secret", "type": "string", "jsonPath": ".status.secretName", "priority": 1},
    {
        "name": "Cost",
        "type": "integer",
        "jsonPath": ".status.currentPeriodCostCents",
        "priority": 1,
        "description": "Cost this billing period, in cents",
    },
    {
        "name": "Reason",
        "type": "string",
        "priority": 1,
        "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
    },
    _AGE,
)


@dataclasses.dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    singular: str
    short_name: str
    spec: type[Resource]
    status: type[Resource]
    printer_columns: tuple[Mapping[str, object], ...]
    description: str
    scope: str = "Namespaced"
    # CEL rules on the whole object (``self.metadata.name`` is readable there).
    object_rules: tuple[Mapping[str, str], ...] = ()

    @property
    def api_version(self) -> str:
        return f"{GROUP}/{VERSION}"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


GLOBAL_DATABASE = Kind(
    kind="GlobalDatabase",
    plural="globaldatabases",
    singular="globaldatabase",
    short_name="gdb",
    spec=GlobalDatabaseSpec,
    status=DatabaseStatus,
    printer_columns=_DATABASE_COLUMNS,
    description="A user's global Neon database; its URL reaches Sim Studio as GLOBAL_DB_URL.",
)
WORKSPACE_DATABASE = Kind(
    kind="WorkspaceDatabase",
    plural="workspacedatabases",
    singular="workspacedatabase",
    short_name="wdb",
    spec=WorkspaceDatabaseSpec,
    status=DatabaseStatus,
    printer_columns=(
        *_DATABASE_COLUMNS[:3],
        {"name": "Workspace", "type": "string", "jsonPath": ".spec.workspaceId", "priority": 1},
        {
            "name": "Billed",
            "type": "string",
            "jsonPath": ".spec.billedUserId",
            "priority": 1,
            "description": "The user whose budget it counts against, when not its owner",
        },
        *_DATABASE_COLUMNS[3:],
    ),
    description="A workspace's agent Neon database; its URL reaches Sim Studio as AGENT_DB_URL.",
)
DATABASE_BUDGET = Kind(
    kind="DatabaseBudget",
    plural="databasebudgets",
    singular="databasebudget",
    short_name="dbb",
    spec=DatabaseBudgetSpec,
    status=DatabaseBudgetStatus,
    printer_columns=(
        {"name": "Tier", "type": "string", "jsonPath": ".status.tier"},
        {
            "name": "Limit",
            "type": "integer",
            "jsonPath": ".status.limitCents",
            "description": "Limit per billing period, in cents; empty is unlimited",
        },
        {
            "name": "Spent",
            "type": "integer",
            "jsonPath": ".status.totalCostCents",
            "description": "Spend this billing period, in cents",
        },
        {"name": "Exceeded", "type": "boolean", "jsonPath": ".status.exceeded"},
        _READY,
        {"name": "User", "type": "string", "jsonPath": ".spec.userId", "priority": 1},
        _AGE,
    ),
    description="A user's database budget: tier, limit and spend of all their databases.",
)
DATABASE_TIER = Kind(
    kind="DatabaseTier",
    plural="databasetiers",
    singular="databasetier",
    short_name="dbt",
    spec=DatabaseTierSpec,
    status=DatabaseTierStatus,
    printer_columns=(
        {
            "name": "Limit",
            "type": "integer",
            "jsonPath": ".spec.limitCents",
            "description": "Limit per user and billing period, in cents; empty is unlimited",
        },
        {"name": "MinCU", "type": "number", "jsonPath": ".spec.autoscaling.minCu"},
        {"name": "MaxCU", "type": "number", "jsonPath": ".spec.autoscaling.maxCu"},
        {
            "name": "Databases",
            "type": "integer",
            "jsonPath": ".status.databases",
            "description": "Databases whose user is on the tier",
        },
        {
            "name": "Updated",
            "type": "integer",
            "jsonPath": ".status.updatedDatabases",
            "description": "Databases with the tier's settings applied on Neon",
        },
        _READY,
        {"name": "Suspend", "type": "integer", "jsonPath": ".spec.suspendTimeoutSeconds", "priority": 1},
        {"name": "History", "type": "integer", "jsonPath": ".spec.historyRetentionSeconds", "priority": 1},
        _AGE,
    ),
    description="A tier of service (like a StorageClass): the spending limit, compute size, idle "
    "timeout, history and hard stops of the databases of every user whose DatabaseBudget names it.",
    scope="Cluster",
    object_rules=(
        {
            # A budget's spec.tier names it, and that is a DNS-1123 label.
            "rule": "size(self.metadata.name) <= 63 && !self.metadata.name.contains('.')",
            "message": "a DatabaseTier's name must be a DNS-1123 label (no dots, at most 63 characters)",
        },
    ),
)
KINDS = (GLOBAL_DATABASE, WORKSPACE_DATABASE, DATABASE_BUDGET)
DATABASE_KINDS = (GLOBAL_DATABASE, WORKSPACE_DATABASE)
# Cluster-scoped kinds, apart from KINDS (whose objects live in the watched namespaces).
NEON_ORGANIZATION = Kind(
    kind="NeonOrganization",
    plural="neonorganizations",
    singular="neonorganization",
    short_name="norg",
    spec=NeonOrganizationSpec,
    status=NeonOrganizationStatus,
    printer_columns=(
        {"name": "Organization", "type": "string", "jsonPath": ".spec.organizationId"},
        {"name": "Cordoned", "type": "boolean", "jsonPath": ".spec.cordoned"},
        {"name": "Projects", "type": "integer", "jsonPath": ".status.projects"},
        {"name": "Room", "type": "integer", "jsonPath": ".status.room"},
        {"name": "Calls/min", "type": "integer", "jsonPath": ".status.callsPerMinute"},
        _READY,
        _AGE,
    ),
    description="A Neon organisation of the pool new tenants are placed in, with its own API key and limits.",
    scope="Cluster",
)
CLUSTER_KINDS = (NEON_ORGANIZATION, DATABASE_TIER)
_BY_NAME = {kind.kind: kind for kind in (*KINDS, *CLUSTER_KINDS)}


def kind_named(name: str) -> Kind:
    """The kind called ``name`` ("GlobalDatabase", ...): its plural and the rest, in one place."""
    return _BY_NAME[name]
