"""The metadata store: Sim Studio's PostgreSQL as the operator reads and writes it.

psycopg is imported only inside this package. ``MetadataStore`` is the whole interface; the
modules behind it hold one table family each (``databases``, ``env_vars``, ``budgets``,
``orphans``, ``decisions``), plus the pool, the migrations and the error tree.
"""

from tenantdb.store.adoption import AdoptionInventory, EnvValue, RecordedDatabase, SimWorkspaceRow
from tenantdb.store.budgets import BudgetRow
from tenantdb.store.databases import DatabaseRow
from tenantdb.store.decisions import DecisionRow
from tenantdb.store.env_vars import Cipher
from tenantdb.store.errors import (
    StoreError,
    StoreIntegrityError,
    StoreSchemaError,
    StoreTenantNotFoundError,
    StoreUnavailableError,
)
from tenantdb.store.migrate import migrate_database
from tenantdb.store.orphans import OrphanRow
from tenantdb.store.sim_tables import Fingerprint, SimSnapshot, SimWorkspace, TenantRow
from tenantdb.store.store import MetadataStore

__all__ = [
    "AdoptionInventory",
    "BudgetRow",
    "Cipher",
    "DatabaseRow",
    "DecisionRow",
    "EnvValue",
    "Fingerprint",
    "MetadataStore",
    "OrphanRow",
    "RecordedDatabase",
    "SimSnapshot",
    "SimWorkspace",
    "SimWorkspaceRow",
    "StoreError",
    "StoreIntegrityError",
    "StoreSchemaError",
    "StoreTenantNotFoundError",
    "StoreUnavailableError",
    "TenantRow",
    "migrate_database",
]
