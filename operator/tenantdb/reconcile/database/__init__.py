"""The lifecycle of one tenant database: Observe → Create → Update, and Delete.

Modelled on Crossplane's managed-resource reconciler, with one step further: the Neon
project's name is derived from the resource's identity (``naming.project_name``), so a
restarted operator that lost the project id finds the project by name and adopts it.
One resource, one project, always.

Every outside system comes in through ``DatabaseDeps``; errors of those systems are turned
into ``RetryLater`` / ``NeedsUserAction`` in ``errors`` and nowhere else.
"""

from tenantdb.reconcile.database.delete import delete_database
from tenantdb.reconcile.database.errors import CONFLICT_REASONS
from tenantdb.reconcile.database.flow import reconcile_database
from tenantdb.reconcile.database.model import DatabaseDeps, DatabaseObject, RotationRecord
from tenantdb.reconcile.database.publish import check_published
from tenantdb.reconcile.endpoint_budget import read_write_endpoint

__all__ = [
    "CONFLICT_REASONS",
    "DatabaseDeps",
    "DatabaseObject",
    "RotationRecord",
    "check_published",
    "delete_database",
    "read_write_endpoint",
    "reconcile_database",
]
