"""The tenant's env var as the database path reads it.

The row and the env var are otherwise read and written straight through the ``Metadata`` port,
keyed by the identity's ``Tenant``: nothing here or in the phases tells a user's database from
a workspace's.
"""

from __future__ import annotations

from tenantdb.api import Tenant
from tenantdb.reconcile.ports import Metadata
from tenantdb.store.errors import StoreIntegrityError

__all__ = ["read_env_var", "read_sealed_env_var"]


async def read_env_var(metadata: Metadata, tenant: Tenant) -> str | None:
    """Our env var as stored; a value that no longer decrypts counts as drift, not as an outage."""
    try:
        return await metadata.get_env_var(tenant, key=tenant.env_var)
    except StoreIntegrityError:
        return None


async def read_sealed_env_var(metadata: Metadata, tenant: Tenant) -> str | None:
    """Our env var as stored, still encrypted (publish tells a value sealed with a previous key
    from one sealed with the current key); a row that cannot be read counts as drift too."""
    try:
        return await metadata.get_env_var_sealed(tenant, key=tenant.env_var)
    except StoreIntegrityError:
        return None
