"""The tenant's row and env var in Sim's metadata DB, read and written the one way.

A GlobalDatabase's are the user's, a WorkspaceDatabase's the workspace's; the phases ask here
and never tell the two apart.
"""

from __future__ import annotations

from typing import Any

from tenantdb.api import Scope
from tenantdb.reconcile.naming import DatabaseIdentity
from tenantdb.reconcile.ports import Metadata
from tenantdb.store.errors import StoreIntegrityError

__all__ = [
    "delete_row_of_project",
    "read_env_var",
    "read_row",
    "remove_env_var",
    "write_env_var",
    "write_row",
]


def _workspace_id(identity: DatabaseIdentity) -> str | None:
    """The workspace whose row and env var these are; ``None``: the user's (a GlobalDatabase)."""
    tenant = identity.tenant
    return tenant.id if tenant.scope is Scope.WORKSPACE else None


async def read_row(metadata: Metadata, identity: DatabaseIdentity) -> Any:
    workspace_id = _workspace_id(identity)
    if workspace_id is not None:
        return await metadata.get_workspace_database(workspace_id=workspace_id)
    return await metadata.get_global_database(user_id=identity.user_id)


async def write_row(
    metadata: Metadata,
    identity: DatabaseIdentity,
    *,
    project_id: str,
    branch_id: str,
    encrypted_uri: str,
    database_name: str,
) -> None:
    workspace_id = _workspace_id(identity)
    if workspace_id is not None:
        await metadata.upsert_workspace_database(
            workspace_id=workspace_id,
            project_id=project_id,
            branch_id=branch_id,
            encrypted_uri=encrypted_uri,
            database_name=database_name,
        )
    else:
        await metadata.upsert_global_database(
            user_id=identity.user_id,
            project_id=project_id,
            branch_id=branch_id,
            encrypted_uri=encrypted_uri,
            database_name=database_name,
        )


async def delete_row_of_project(metadata: Metadata, identity: DatabaseIdentity, project_id: str) -> None:
    workspace_id = _workspace_id(identity)
    if workspace_id is not None:
        await metadata.delete_workspace_database_of_project(workspace_id=workspace_id, project_id=project_id)
    else:
        await metadata.delete_global_database_of_project(user_id=identity.user_id, project_id=project_id)


async def read_env_var(metadata: Metadata, identity: DatabaseIdentity) -> str | None:
    """Our env var as stored; a value that no longer decrypts counts as drift, not as an outage."""
    workspace_id = _workspace_id(identity)
    try:
        if workspace_id is not None:
            return await metadata.get_workspace_env_var(
                workspace_id=workspace_id, key=identity.tenant.env_var
            )
        return await metadata.get_user_env_var(user_id=identity.user_id, key=identity.tenant.env_var)
    except StoreIntegrityError:
        return None


async def write_env_var(metadata: Metadata, identity: DatabaseIdentity, value: str) -> None:
    workspace_id = _workspace_id(identity)
    if workspace_id is not None:
        await metadata.set_workspace_env_var(
            workspace_id=workspace_id, key=identity.tenant.env_var, value=value
        )
    else:
        await metadata.set_user_env_var(user_id=identity.user_id, key=identity.tenant.env_var, value=value)


async def remove_env_var(metadata: Metadata, identity: DatabaseIdentity) -> None:
    workspace_id = _workspace_id(identity)
    if workspace_id is not None:
        await metadata.remove_workspace_env_var(workspace_id=workspace_id, key=identity.tenant.env_var)
    else:
        await metadata.remove_user_env_var(user_id=identity.user_id, key=identity.tenant.env_var)
