"""``tenantdb_tenant_organization``: the Neon organisation each database resource was placed in.

Placement is recorded before the project is created and never changed: ``place`` keeps the
first organisation recorded for a resource and returns it, whatever a later (or a concurrent)
caller proposes, so two replicas or a retry cannot split a tenant across organisations.
"""

from __future__ import annotations

from tenantdb.store.pool import Connection

__all__ = ["counts", "forget", "get", "place"]


async def place(
    conn: Connection, *, uid: str, kind: str, namespace: str, name: str, organization: str
) -> str:
    """Record ``organization`` for the resource unless one is recorded; the one recorded after."""
    await conn.execute(
        """
        INSERT INTO tenantdb_tenant_organization
            (holder_uid, kind, holder_namespace, holder_name, organization)
        VALUES (%s, %s, %s, %s, %s)
        ON CONFLICT (holder_uid) DO NOTHING
        """,
        (uid, kind, namespace, name, organization),
    )
    recorded = await get(conn, uid=uid)
    assert recorded is not None  # just inserted, or there before
    return recorded


async def get(conn: Connection, *, uid: str) -> str | None:
    cursor = await conn.execute(
        "SELECT organization FROM tenantdb_tenant_organization WHERE holder_uid = %s", (uid,)
    )
    row = await cursor.fetchone()
    return str(row[0]) if row else None


async def counts(conn: Connection) -> dict[str, int]:
    """Resources placed per organisation."""
    cursor = await conn.execute(
        "SELECT organization, count(*) FROM tenantdb_tenant_organization GROUP BY organization"
    )
    return {str(organization): int(count) for organization, count in await cursor.fetchall()}


async def forget(conn: Connection, *, uid: str) -> bool:
    """The resource is gone (its project deleted or kept): it no longer counts."""
    cursor = await conn.execute("DELETE FROM tenantdb_tenant_organization WHERE holder_uid = %s", (uid,))
    return cursor.rowcount > 0
