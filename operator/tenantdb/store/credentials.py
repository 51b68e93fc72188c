"""Sim's ``credential`` / ``credential_member`` rows for a workspace env var we write.

Sim shows a workspace env var to a non-admin member only when a ``credential`` row of type
``env_workspace`` exists for the key and the member has an active ``credential_member`` row.
Sim's ``createWorkspaceEnvCredentials`` makes them when a key is saved through its UI: one
credential (``display_name`` and ``env_key`` = the key, ``created_by`` = the acting user) and one
membership per workspace member (the owner and every user with a ``permissions`` row on the
workspace): role ``admin`` for the owner, ``member`` for the others, ``invited_by`` the owner.
We do the same, acting as the workspace's owner, inside the env var's own transaction.

Idempotent: an existing credential is kept, and memberships are only added (a membership Sim
revoked stays revoked: ``ON CONFLICT DO NOTHING``). Removing the key deletes its credential;
the memberships go with it (``ON DELETE CASCADE``), as in Sim's ``deleteWorkspaceEnvCredentials``.

A standalone metadata DB has no ``credential`` table: then there is nothing to do.
"""

from __future__ import annotations

import uuid

from tenantdb.store.pool import Connection

__all__ = ["ensure_workspace_env_credential", "remove_workspace_env_credential"]


async def _has_credential_tables(conn: Connection) -> bool:
    cursor = await conn.execute(
        "SELECT to_regclass('credential') IS NOT NULL AND to_regclass('credential_member') IS NOT NULL"
    )
    row = await cursor.fetchone()
    return bool(row and row[0])


async def ensure_workspace_env_credential(conn: Connection, *, workspace_id: str, key: str) -> None:
    """Make the key's credential and its members' rows exist; call in the env var's transaction."""
    if not await _has_credential_tables(conn):
        return
    cursor = await conn.execute("SELECT owner_id FROM workspace WHERE id = %s", (workspace_id,))
    row = await cursor.fetchone()
    if row is None:
        return  # Sim's own rule: no workspace, no credential
    owner_id: str = row[0]
    await conn.execute(
        "INSERT INTO credential (id, workspace_id, type, display_name, env_key, created_by, "
        "created_at, updated_at) VALUES (%s, %s, 'env_workspace', %s, %s, %s, now(), now()) "
        "ON CONFLICT DO NOTHING",
        (str(uuid.uuid4()), workspace_id, key, key, owner_id),
    )
    cursor = await conn.execute(
        "SELECT id FROM credential WHERE workspace_id = %s AND type = 'env_workspace' AND env_key = %s",
        (workspace_id, key),
    )
    credential = await cursor.fetchone()
    if credential is None:  # pragma: no cover - inserted or found just above, in our transaction
        return
    # The members as Sim's getWorkspaceMemberUserIds finds them: the owner and every user with a
    # permission on the workspace.
    await conn.execute(
        """
        INSERT INTO credential_member
            (id, credential_id, user_id, role, status, joined_at, invited_by, created_at, updated_at)
        SELECT gen_random_uuid()::text, %(credential)s, members.user_id,
               (CASE WHEN members.user_id = %(owner)s THEN 'admin' ELSE 'member' END)::credential_member_role,
               'active', now(), %(owner)s, now(), now()
        FROM (
            SELECT user_id FROM permissions WHERE entity_type = 'workspace' AND entity_id = %(workspace)s
            UNION SELECT %(owner)s
        ) AS members
        ON CONFLICT DO NOTHING
        """,
        {"credential": credential[0], "owner": owner_id, "workspace": workspace_id},
    )


async def remove_workspace_env_credential(conn: Connection, *, workspace_id: str, key: str) -> None:
    """Delete the key's credential (and so its memberships); call in the env var's transaction."""
    if not await _has_credential_tables(conn):
        return
    await conn.execute(
        "DELETE FROM credential WHERE workspace_id = %s AND type = 'env_workspace' AND env_key = %s",
        (workspace_id, key),
    )
