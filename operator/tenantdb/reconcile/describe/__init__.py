"""``tenantdb describe user|workspace ID``: one screen about one tenant, for the on-call person.

``gather`` collects it (Kubernetes and the metadata DB, no Neon call), ``report`` shapes it
(JSON and text), ``command`` is the CLI's entry (settings, clients, exit codes).
"""

from tenantdb.reconcile.describe.command import describe_from_environment, describe_with
from tenantdb.reconcile.describe.gather import SCOPES, describe_tenant
from tenantdb.reconcile.describe.report import TenantReport, as_json, as_text

__all__ = [
    "SCOPES",
    "TenantReport",
    "as_json",
    "as_text",
    "describe_from_environment",
    "describe_tenant",
    "describe_with",
]
